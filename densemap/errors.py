"""Exceptions raised by densemap, all in one place.

Every error that bad input can cause derives from :class:`DensemapError`; the
input-validation errors also derive from :class:`ValueError` so that generic
callers can catch them the usual way.

=====================  =====================================================
class                  raised when
=====================  =====================================================
``MeshError``          a mesh is unreadable, malformed or unsuitable
``PartError``          part labels are malformed or do not match
``AtlasError``         a chart atlas is malformed or does not fit its mesh
``RigError``           a rig (skeleton + skinning) is malformed
``AnnotationError``    a DensePose annotation file or field is malformed
``GLBackendError``     no off-screen OpenGL backend can render pictures
=====================  =====================================================
"""

__all__ = ["DensemapError", "MeshError", "PartError", "AtlasError", "RigError", "AnnotationError", "GLBackendError"]


class DensemapError(Exception):
    """Base class of all densemap errors."""


class MeshError(DensemapError, ValueError):
    """A mesh is unreadable, malformed or unsuitable (e.g. disconnected)."""


class PartError(DensemapError, ValueError):
    """Part labels are malformed or do not match between two meshes."""


class AtlasError(MeshError):
    """A chart atlas is malformed or does not fit its mesh."""


class RigError(MeshError):
    """A rig is malformed or does not fit its mesh."""


class AnnotationError(DensemapError, ValueError):
    """A DensePose annotation file or field is malformed."""


class GLBackendError(DensemapError, RuntimeError):
    """No off-screen OpenGL backend is available for rendering."""
