"""Rich display of the result objects: ``repr`` is a readable table, ``_repr_html_`` the same
table in HTML, both holding the result's own numbers; the dict results stay plain dicts."""

from __future__ import annotations

import html
import json

import numpy as np
import pytest

from conftest import icosphere, octant_parts
from densemap._display import Table, format_value
from densemap.annotation.report import DROPPED, KEPT, MOVED, AnnotationRecord, ConversionReport
from densemap.mapping import Alignment, MapQuality, QualityReport, VertexMap, map_quality


def cells(text: str) -> list[list[str]]:
    """The whitespace-separated cells of each line of a text table."""
    return [line.split() for line in text.splitlines()]


def row(text: str, label: str) -> list[str]:
    """The cells after ``label`` on the line that starts with it."""
    for line in text.splitlines():
        if line.startswith(label + " ") or line == label:
            return line[len(label):].split()
    raise AssertionError(f"no row {label!r} in\n{text}")


def test_format_value():
    assert format_value(0.123456) == "0.1235"
    assert format_value(float("nan")) == "-" and format_value(None) == "-"
    assert format_value(True) == "yes" and format_value(np.int64(7)) == "7"
    assert format_value(np.float32(2.5)) == "2.5"
    assert format_value((1, 2.0)) == "1, 2"


def test_table_text_aligns_and_html_escapes():
    t = Table("T <1>", ("", "n", "what"), [("a", 1, "x"), ("section",), ("bb", 22.5, "<b>")], notes=["n & m"])
    text = t.text()
    lines = text.splitlines()
    assert lines[0] == "T <1>"
    assert row(text, "a") == ["1", "x"] and row(text, "bb") == ["22.5", "<b>"]
    assert "  section" in lines
    # numbers right-aligned: the last digit of 1 and of 22.5 end in the same column
    a, b = next(l for l in lines if l.startswith("a ")), next(l for l in lines if l.startswith("bb"))
    assert a.index("1") + 1 == b.index("22.5") + 4
    h = t.html()
    assert "&lt;b&gt;" in h and "<b>" not in h.replace("<b>T &lt;1&gt;</b>", "")
    assert "<td>22.5</td>" in h and 'colspan="3"' in h and "n &amp; m" in h


# ----------------------------------------------------------------------------- alignment
def _alignment() -> Alignment:
    n_a, n_b = 5, 3
    a_to_b = VertexMap(np.array([0, 1, 2, 2, 1]), np.array([0.1, 0.2, 0.3, 0.4, 0.5]), source_name="a", target_name="b",
                       n_target=n_b)
    b_to_a = VertexMap(np.array([0, 1, 4]), np.array([0.25, 0.5, 0.75]), source_name="b", target_name="a", n_target=n_a)
    return Alignment(a_to_b=a_to_b, b_to_a=b_to_a, desc_a=np.zeros((n_a, 2)), desc_b=np.zeros((n_b, 2)),
                     part_names=("p", "q"), options={"sources": 16, "refine": "consistent"},
                     timings={"descriptors": 1.25, "match": 0.5},
                     metadata={"mesh_a": {"name": "human", "n_vertices": n_a}, "mesh_b": {"name": "chimp", "n_vertices": n_b}})


def test_alignment_repr_is_a_table_of_its_numbers():
    al = _alignment()
    text = repr(al)
    assert text.splitlines()[0] == "Alignment of 'human' (A) and 'chimp' (B)"
    assert row(text, "vertices") == ["5", "3"]
    assert row(text, "descriptor width") == ["2", "2"]
    assert row(text, "median descriptor distance") == ["0.3", "0.5"]
    assert row(text, "sources") == ["16"] and row(text, "refine") == ["consistent"]
    assert row(text, "descriptors") == ["1.25"] and row(text, "match") == ["0.5"]
    h = al._repr_html_()
    assert h.startswith("<table") and "<td>5</td><td>3</td>" in h and "<td>1.25</td>" in h
    assert html.escape("'human'") in h


# ----------------------------------------------------------------------------- map quality
@pytest.fixture(scope="module")
def identity_quality():
    mesh = icosphere(2)
    parts = octant_parts(mesh)
    ident = VertexMap(np.arange(mesh.n_vertices), np.zeros(mesh.n_vertices))
    return map_quality(mesh, mesh, ident, parts_a=parts, parts_b=parts, b_to_a=ident, geodesic=False)


def test_map_quality_is_a_dict_shown_as_a_table(identity_quality):
    q = identity_quality
    assert isinstance(q, MapQuality) and isinstance(q, dict)
    assert q["part_agreement"] == 1.0 and q["coverage"] == 1.0 and q["consistency_mean"] == 0.0
    plain = json.loads(json.dumps(q))
    assert plain == dict(q) == q  # still serialises and compares as the plain dict it was
    text = repr(q)
    assert row(text, "part_agreement")[0] == "1" and row(text, "collapsed_edges")[0] == "0"
    assert row(text, "stretch_median")[0] == format_value(q["stretch_median"])
    assert "part_agreement_per_part" not in text  # the nested dict is summarised, not dumped
    assert "<td>coverage</td><td>1</td>" in q._repr_html_().replace(' style="text-align:left"', "")


def test_map_quality_names_the_worst_part():
    mesh = icosphere(2)
    parts = octant_parts(mesh)
    labels = parts.labels.copy()
    idx = np.arange(mesh.n_vertices)
    first = np.flatnonzero(labels == 0)
    other = np.flatnonzero(labels == 1)[0]
    idx[first[: len(first) // 2]] = other  # half of part 0 mapped into part 1
    q = map_quality(mesh, mesh, VertexMap(idx, np.zeros(len(idx))), parts_a=parts, parts_b=parts, geodesic=False)
    worst = parts.names[0]
    assert f"lowest part agreement: {worst} ({q['part_agreement_per_part'][worst]:.3g})" in repr(q)


def test_quality_report_has_a_column_per_direction(identity_quality):
    half = MapQuality({**identity_quality, "coverage": 0.5})
    rep = QualityReport(a_to_b=identity_quality, b_to_a=half)
    text = repr(rep)
    assert cells(text)[1][:3] == ["metric", "A", "->"]
    assert row(text, "coverage")[:2] == ["1", "0.5"]
    assert rep["b_to_a"]["coverage"] == 0.5 and json.loads(json.dumps(rep))["a_to_b"]["coverage"] == 1.0
    assert "<td>1</td><td>0.5</td>" in rep._repr_html_()


# ----------------------------------------------------------------------------- conversion report
def test_conversion_report_table_counts_points():
    rep = ConversionReport(n_annotations=3, provenance={"source": {"mesh": "chimp"}, "target": {"mesh": "human"}})
    rep.records = [AnnotationRecord(0, 1, points=[KEPT, KEPT, MOVED], moved={2: 0.01}),
                   AnnotationRecord(1, 2, status="partial", points=[KEPT, DROPPED],
                                    dropped={1: "dp_I = 25 is not a chart id in 1..24"})]
    text = repr(rep)
    assert text.splitlines()[0] == "Annotation conversion: chimp -> human"
    assert row(text, "points") == ["5", "-"]
    assert row(text, "points kept") == ["3", "0.6"]
    assert row(text, "points moved-to-nearest") == ["1", "0.2"]
    assert row(text, "points dropped") == ["1", "0.2"]
    assert row(text, "annotations partial") == ["1", "0.5"]
    assert "dp_I is not a chart id in 1..24" in text
    assert "<td>3</td><td>0.6</td>" in rep._repr_html_()


# ----------------------------------------------------------------------------- models
def test_eval_result_and_calibration_tables():
    pytest.importorskip("torch")
    from densemap_models.calibration import Calibration
    from densemap_models.evaluate import EvalResult

    cal = Calibration(summary={"uv_points": 40, "uv_rms_error": 0.0625, "i_ece": 0.125},
                      uv_bins=[{"sigma_lo": 0.01, "sigma_hi": 0.02, "n": 40, "mean_sigma": 0.015, "rms_error": 0.0625,
                                "mean_abs_error": 0.05, "within_1sigma": 0.5}],
                      i_bins=[{"conf_lo": 0.75, "conf_hi": 0.875, "n": 9, "mean_conf": 0.8, "accuracy": 0.625}])
    text = repr(cal)
    assert row(text, "uv_points")[0] == "40" and row(text, "i_ece")[0] == "0.125"
    assert row(text, "sigma 0.01..0.02")[0] == "0.0625" and row(text, "confidence 0.75..0.875")[0] == "0.625"
    res = EvalResult(bbox={"AP": 61.5, "AP50": 90.0}, segm={"AP": 55.25}, densepose={"GPS": {"AP": 12.5}, "mean_best_GPS": 0.4},
                     calibration=cal, n_images=4, n_instances=7, extra={"target": "densemap_human", "min_iou": 0.5})
    text = repr(res)
    lines = text.splitlines()
    assert row(text, "images") == ["4"] and row(text, "instances") == ["7"]
    # each AP under its own heading
    assert lines[lines.index("  box AP") + 1].split() == ["AP", "61.5"]
    assert lines[lines.index("  mask AP") + 1].split() == ["AP", "55.25"]
    assert lines[lines.index("  DensePose AP (GPS)") + 1].split() == ["AP", "12.5"]
    assert row(text, "target") == ["densemap_human"] and row(text, "mean best GPS") == ["0.4"]
    assert "<td>61.5</td>" in res._repr_html_() and "<td>0.125</td>" in res._repr_html_()


def test_reliability_plot_returns_a_figure_and_writes_png(tmp_path):
    pytest.importorskip("torch")
    from densemap_models.calibration import Calibration

    cal = Calibration(summary={"i_ece": 0.1}, uv_bins=[{"mean_sigma": 0.1, "rms_error": 0.12, "mean_abs_error": 0.1}],
                      i_bins=[{"mean_conf": 0.6, "accuracy": 0.5}])
    fig = cal.plot(tmp_path / "r.png", title="t")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 2 and fig.axes[1].get_title() == "chart I: reliability (ECE 0.100)"
    assert cal.plot().axes[0].get_xlabel() == "predicted sigma (u, v)"  # no path: nothing written, a figure back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.png"]
