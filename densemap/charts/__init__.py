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
``relax``       :func:`carry_atlas` through a map, :func:`relax_atlas` fold-free, :func:`chart_report`
``make``        :func:`make_charts`: what ``densemap charts`` does
``cse``         DensePose CSE files (:func:`export_cse`), :func:`transport_basis`
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
from .relax import carry_atlas, chart_report, relax_atlas
from .make import make_charts
from .cse import export_cse, transport_basis

__all__ = [
    "carry_atlas",
    "relax_atlas",
    "chart_report",
    "make_charts",
    "export_cse",
    "transport_basis",
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
