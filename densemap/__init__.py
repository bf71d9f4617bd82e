"""densemap: carry dense-pose knowledge from humans to proximal animals.

The light core (meshes, parts, errors) is imported eagerly; everything else is imported
on first use of its name, so ``import densemap`` and ``densemap --help`` stay fast (and
torch is imported only by the names that need it). See ``docs/architecture.md`` for the
layers and where each concept lives.
"""

from importlib import import_module

from .errors import AnnotationError, AtlasError, DensemapError, GLBackendError, MeshError, PartError, RigError
from .mesh import Mesh, MeshReport, check_mesh, load_mesh, save_mesh
from .parts import PartLabels, face_labels, load_parts, match_parts, part_adjacency, save_parts

from ._version import __version__

# public name -> module that defines it (imported lazily)
_LAZY = {
    "GeodesicSolver": "geodesics",
    "geodesic_distances": "geodesics",
    "part_descriptors": "descriptors",
    "mesh_laplacian": "laplacian",
    "Alignment": "mapping",
    "Aligner": "mapping",
    "VertexMap": "mapping",
    "align": "mapping",
    "run_align": "mapping",
    "transfer": "mapping",
    "map_quality": "mapping",
    "load_alignment": "mapping",
    "match_descriptors": "mapping",
    "refine_maps": "mapping",
    "refine_map": "mapping",
    "ChartAtlas": "charts",
    "build_atlas": "charts",
    "load_atlas": "charts",
    "reference_atlas": "charts",
    "iuv_to_surface": "charts",
    "surface_to_iuv": "charts",
    "vertex_to_iuv": "charts",
    "points_to_iuv": "charts",
    "reference": "data",
    "reference_human": "data",
    "reference_chimp": "data",
}

__all__ = [
    "__version__",
    "DensemapError",
    "MeshError",
    "PartError",
    "AnnotationError",
    "AtlasError",
    "RigError",
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
    "face_labels",
    "part_adjacency",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        module = import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'densemap' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
