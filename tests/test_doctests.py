"""The numpydoc ``Examples`` of the public entry points run as doctests."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

from test_layout import MODULES

WITH_EXAMPLES = sorted(n for n, p in MODULES.items() if ">>> " in p.read_text())
# the public entry points that must show an example (the README's and the API reference's first names)
ENTRY_POINTS = [
    "densemap.mapping.pipeline.align", "densemap.mapping.pipeline.Aligner", "densemap.mapping.outputs.run_align",
    "densemap.mapping.quality.map_quality", "densemap.mapping.vertex_map.transfer",
    "densemap.mapping.matching.match_descriptors", "densemap.mapping.refine.zoomout",
    "densemap.descriptors.part_descriptors", "densemap.geodesics.geodesic_distances", "densemap.mesh.load_mesh",
    "densemap.parts.load_parts", "densemap.data.reference", "densemap.charts.reference.reference_atlas",
    "densemap.charts.atlas.ChartAtlas.locate", "densemap.synth.dataset.synth_image",
    "densemap.annotation.convert.convert_annotation_file", "densemap.annotation.coco.encode_rle",
    "densemap_models.rcnn.build_model",
]


@pytest.mark.parametrize("dotted", ENTRY_POINTS)
def test_entry_point_has_an_example(dotted):
    doc = pkgutil.resolve_name(dotted).__doc__ or ""
    assert "Examples\n" in doc and ">>> " in doc, f"{dotted} has no numpydoc Examples section"


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed in {name}"
