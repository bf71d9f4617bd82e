"""DensePose-style chart atlases: a chart id per face and a (u, v) in [0, 1] per face corner.

==============  ================================================================
module          what it holds
==============  ================================================================
``atlas``       :class:`ChartAtlas` (locate ``(c, u, v)`` on the surface and back)
``flatten``     :func:`build_atlas`: flatten every part of a labelled mesh
``io``          DensePose's ``UV_Processed.mat``, OBJ ``vt`` + groups, densemap ``.npz``
``reference``   :func:`reference_atlas` of the embedded human and chimpanzee
==============  ================================================================
"""

from ..errors import AtlasError
from .atlas import ChartAtlas, ChartLocation, face_labels_from_vertices
from .flatten import build_atlas
from .io import FORMAT, FORMAT_VERSION, atlas_from_uv, load_atlas, load_obj_atlas, load_uv_processed, save_atlas
from .reference import reference_atlas

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
]
