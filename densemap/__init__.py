"""densemap: carry dense-pose knowledge from humans to proximal animals.

The light core (meshes, parts, errors) is imported eagerly; modules that need torch
(geodesics, descriptors, mapping) are imported on first use, so ``import densemap``
and ``densemap --help`` stay fast.
"""

from importlib import import_module

from .errors import AnnotationError, DensemapError, GLBackendError, MeshError, PartError
from .mesh import Mesh, MeshReport, check_mesh, load_mesh, save_mesh
from .parts import PartLabels, load_parts, match_parts, save_parts

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily)
_LAZY = {
    "GeodesicSolver": "geodesics",
    "geodesic_distances": "geodesics",
    "part_descriptors": "descriptors",
    "Alignment": "alignment",
    "VertexMap": "mapping",
    "align": "mapping",
    "transfer": "mapping",
    "map_quality": "quality",
    "load_alignment": "alignment",
    "match_descriptors": "mapping",
    "refine_maps": "refine",
    "refine_map": "refine",
    "ChartAtlas": "charts",
    "build_atlas": "flatten",
    "reference_atlas": "charts",
    "reference_human": "data",
    "reference_chimp": "data",
}

__all__ = [
    "__version__",
    "DensemapError",
    "MeshError",
    "PartError",
    "AnnotationError",
    "GLBackendError",
    "Mesh",
    "MeshReport",
    "check_mesh",
    "load_mesh",
    "save_mesh",
    "PartLabels",
    "load_parts",
    "save_parts",
    "match_parts",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        module = import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'densemap' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
