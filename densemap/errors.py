"""Exceptions raised by densemap.

Every error that bad input can cause derives from :class:`DensemapError`; the
input-validation errors also derive from :class:`ValueError` so that generic
callers can catch them the usual way.
"""

__all__ = ["DensemapError", "MeshError", "PartError", "AnnotationError", "GLBackendError"]


class DensemapError(Exception):
    """Base class of all densemap errors."""


class MeshError(DensemapError, ValueError):
    """A mesh is unreadable, malformed or unsuitable (e.g. disconnected)."""


class PartError(DensemapError, ValueError):
    """Part labels are malformed or do not match between two meshes."""


class AnnotationError(DensemapError, ValueError):
    """A DensePose annotation file or field is malformed."""


class GLBackendError(DensemapError, RuntimeError):
    """No off-screen OpenGL backend is available for rendering."""
