"""DensePose-style chart atlases: a chart id per face and a (u, v) in [0, 1] per face corner.

==============  ================================================================
module          what it holds
==============  ================================================================
``atlas``       :class:`ChartAtlas` (locate ``(c, u, v)`` on the surface and back)
``flatten``     :func:`build_atlas`: flatten every part of a labelled mesh
``io``          DensePose's ``UV_Processed.mat``, OBJ ``vt`` + groups, densemap ``.npz``
``reference``   :func:`reference_atlas` of the embedded human and chimpanzee
``iuv``         DensePose (I, U, V) <-> surface points: :func:`iuv_to_surface` and back
``export``      UV_Processed.mat, the texture-atlas picture, OBJ ``vt``, PLY properties
==============  ================================================================
"""

from ..errors import AtlasError
from .atlas import ChartAtlas, ChartLocation, face_labels_from_vertices
from .flatten import build_atlas
from .io import FORMAT, FORMAT_VERSION, atlas_from_uv, load_atlas, load_obj_atlas, load_uv_processed, save_atlas
from .reference import reference_atlas
from .iuv import SurfacePoints, iuv_to_surface, points_to_iuv, surface_to_iuv, vertex_iuv_table, vertex_to_iuv
from .export import (export_atlas, render_texture_atlas, sample_texture_atlas, save_obj_atlas, save_ply_atlas,
                     save_texture_atlas, save_uv_processed, texture_atlas_coords, uv_processed_arrays)

__all__ = [
    "AtlasError",
    "ChartAtlas",
    "ChartLocation",
    "face_labels_from_vertices",
    "build_atlas",
    "atlas_from_uv",
    "load_obj_atlas",
    "load_uv_processed",
    "save_atlas",
    "load_atlas",
    "reference_atlas",
    "FORMAT",
    "FORMAT_VERSION",
    "SurfacePoints",
    "iuv_to_surface",
    "surface_to_iuv",
    "vertex_to_iuv",
    "vertex_iuv_table",
    "points_to_iuv",
    "uv_processed_arrays",
    "save_uv_processed",
    "texture_atlas_coords",
    "render_texture_atlas",
    "save_texture_atlas",
    "sample_texture_atlas",
    "save_obj_atlas",
    "save_ply_atlas",
    "export_atlas",
]
