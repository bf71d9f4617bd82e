"""Synthetic DensePose datasets rendered from the embedded human and chimpanzee meshes.

Each image shows 1-4 randomly posed, scaled and turned copies of one reference mesh in
front of a random background, seen by a random pinhole camera, with exact ground truth
(COCO ``bbox``, RLE ``segmentation``, the 14 coarse ``dp_masks`` and ~100 points with
``dp_x, dp_y, dp_I, dp_U, dp_V`` on the mesh's *own* charts, plus ``dp_vertex``). A chimp
dataset is labelled on the chimp's charts (``ref_model = "densemap_chimp"``), so
``densemap convert-annotations`` carries it to the human.

==============  ================================================================
module          what it holds
==============  ================================================================
``raster``      the exact torch rasteriser and pinhole cameras
``rig``         19-joint skeletons, linear-blend skinning, random poses
``appearance``  backgrounds, sensor grain, shaded fur/cloth-textured bodies
``scene``       :func:`render_scene`: one random image and its geometry
``dataset``     :func:`annotate_scene`, :func:`synth_dataset` (COCO on disk)
``overlay``     :func:`draw_annotations`: labels over an image, to check by eye
==============  ================================================================

This is the only part of ``densemap`` that imports :mod:`densemap.annotation` (for the
COCO writer, the RLE codec and the chart -> coarse-part table).
"""

from ..annotation.coco import COARSE_OF_CHART
from .dataset import CATEGORIES, MASK_GRID, annotate_scene, synth_dataset, synth_image
from .overlay import draw_annotations
from .scene import Scene, SceneOptions, render_scene

__all__ = [
    "Scene",
    "SceneOptions",
    "render_scene",
    "annotate_scene",
    "synth_image",
    "synth_dataset",
    "draw_annotations",
    "CATEGORIES",
    "COARSE_OF_CHART",
    "MASK_GRID",
]
