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
``InputError``         an input file is missing, unreadable or not what it claims
``OutputError``        an output location is unusable: not writable, an input, or
                       the same as another output (checked before any work)
=====================  =====================================================
"""

__all__ = ["DensemapError", "MeshError", "PartError", "AtlasError", "RigError", "AnnotationError", "GLBackendError",
           "InputError", "OutputError"]


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


class InputError(DensemapError, ValueError):
    """An input file is missing, unreadable (a folder, a pipe, a link loop) or not valid text."""


class OutputError(DensemapError, ValueError):
    """An output location cannot be used: not writable, an input of the same command, or
    the same file as another output."""
