"""Dense correspondence between two meshes by nearest part descriptors, and its quality.

A map says its direction in its name: ``a_to_b.indices[i]`` is the B vertex for A
vertex ``i``, so ``values_on_a = values_on_b[a_to_b.indices]`` (:func:`transfer`).

==================  ====================================================================
module              what it holds
==================  ====================================================================
``vertex_map``      :class:`VertexMap` (the bottom data type) and :func:`transfer`
``matching``        :func:`match_descriptors`, :func:`surface_points`
``refine``          ZoomOut on plain arrays (:func:`zoomout`), on meshes
                    (:func:`refine_maps`), Laplacian eigenbases
``quality``         one function per metric, composed by :func:`map_quality`
``alignment``       :class:`Alignment` (both maps + provenance), its ``.npz`` file format
``pipeline``        :class:`Aligner` (one prefactored solver per mesh) and :func:`align`
``landmarks``       landmark files, landmark-geodesic features, per-part feature costs
``partcut``         Potts graph cut (alpha-expansion) and one connected region per part
``transfer_parts``  :func:`transfer_parts`: a reference's parts on a new mesh from landmarks
``view``            the viewer page of an alignment (:func:`~densemap.mapping.view.view_alignment`),
                    per-vertex stretch, round trip and ground-truth error
``outputs``         :func:`run_align`: what ``densemap align`` does, outputs included
==================  ====================================================================

The modules import each other only downwards in that table; none imports torch at
import time.
"""

from .alignment import Alignment, load_alignment
from .matching import MatchBackend, match_descriptors, surface_points
from .outputs import AlignInputs, AlignRun, load_pair, run_align, write_alignment_outputs
from .pipeline import DEFAULT_SOURCES, Aligner, align, shared_time_step
from .quality import MapQuality, QualityReport, map_quality
from .refine import clear_basis_cache, laplacian_basis, refine_map, refine_maps, zoomout
from .vertex_map import VertexMap, transfer
from .landmarks import Landmarks, load_landmarks, save_landmarks
from .transfer_parts import PartTransfer, run_transfer_parts, transfer_parts

__all__ = [
    "Landmarks",
    "load_landmarks",
    "save_landmarks",
    "PartTransfer",
    "transfer_parts",
    "run_transfer_parts",
    "VertexMap",
    "transfer",
    "MatchBackend",
    "match_descriptors",
    "surface_points",
    "laplacian_basis",
    "zoomout",
    "refine_map",
    "refine_maps",
    "clear_basis_cache",
    "map_quality",
    "MapQuality",
    "QualityReport",
    "Alignment",
    "load_alignment",
    "Aligner",
    "align",
    "shared_time_step",
    "DEFAULT_SOURCES",
    "AlignInputs",
    "AlignRun",
    "load_pair",
    "run_align",
    "write_alignment_outputs",
]
