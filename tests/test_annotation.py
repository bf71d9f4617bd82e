"""COCO DensePose annotation validation, conversion, report and the convert-annotations command."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import icosphere, octant_parts
from densemap.annotation import AnnotationConverter, convert_annotations, convert_file, read_coco
from densemap.annotation.coco import check_annotation, encode_rle
from densemap.charts import build_atlas
from densemap.errors import AnnotationError
from densemap.mesh import Mesh

NAME = "sphere_642"


@pytest.fixture(scope="module")
def sphere():
    m = icosphere(3)
    return m, build_atlas(m, octant_parts(m))


@pytest.fixture(scope="module")
def identity(sphere):
    m, atlas = sphere
    return AnnotationConverter(m, atlas, m, atlas, None, source_name=NAME, target_name=NAME)


def rle():
    """A valid 256x256 RLE (a square), as DensePose's dp_masks hold."""
    mask = np.zeros((256, 256), np.uint8)
    mask[64:192, 64:192] = 1
    return encode_rle(mask)


def chart_ann(atlas, n=20, seed=0, **over):
    rng = np.random.default_rng(seed)
    face = rng.integers(0, atlas.n_faces, n)
    c, u, v = atlas.chart_coords(face, rng.dirichlet([1, 1, 1], n))
    ann = {"id": 7 + seed, "image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40], "area": 1200.0, "iscrowd": 0,
           "keypoints": [0] * 51, "dp_x": rng.uniform(0, 256, n).tolist(), "dp_y": rng.uniform(0, 256, n).tolist(),
           "dp_I": [float(x) for x in c], "dp_U": u.tolist(), "dp_V": v.tolist(),
           "dp_masks": [rle()] + [[]] * 13}
    ann.update(over)
    return ann


def coco(*anns):
    return {"info": {"description": "test"}, "images": [{"id": 1, "width": 100, "height": 80, "file_name": "a.jpg"}],
            "annotations": list(anns), "categories": [{"id": 1, "name": "person"}], "licenses": []}


# ----------------------------------------------------------------------------- identity conversion
def test_identity_conversion_keeps_everything(identity, sphere):
    m, atlas = sphere
    a1 = chart_ann(atlas, 50, seed=1)
    verts = list(range(0, 600, 13))
    a2 = {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "dp_x": [10.0] * len(verts),
          "dp_y": [20.0] * len(verts), "dp_vertex": verts, "ref_model": NAME}
    plain = {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "segmentation": [[0, 0, 1, 1, 2, 0]]}
    data = coco(a1, a2, plain)
    before = copy.deepcopy(data)
    out, rep = convert_annotations(data, identity)
    assert data == before  # the input is not modified
    assert out["images"] == data["images"] and out["categories"] == data["categories"]
    assert out["annotations"][2] == plain
    o1 = out["annotations"][0]
    assert o1["dp_I"] == a1["dp_I"]
    assert np.abs(np.subtract(o1["dp_U"], a1["dp_U"])).max() < 1e-9
    assert np.abs(np.subtract(o1["dp_V"], a1["dp_V"])).max() < 1e-9
    assert o1["dp_x"] == a1["dp_x"] and o1["dp_masks"] == a1["dp_masks"] and o1["keypoints"] == a1["keypoints"]
    assert o1["ref_model"] == NAME and len(o1["dp_vertex"]) == 50
    assert out["annotations"][1]["dp_vertex"] == verts
    assert rep.counts == {"kept": 50 + len(verts), "moved-to-nearest": 0, "dropped": 0}
    conv = out["info"]["densemap_conversions"][-1]
    assert conv["source"]["sha1"] == m.sha1 and conv["map"] == {"kind": "identity"}
    assert out["info"]["description"] == "test"


def test_conversion_through_a_map_between_different_meshes(tmp_path, sphere):
    """A scaled copy with its own atlas: (c, u, v) come back (build_atlas is scale-free)."""
    from densemap.annotation.converter import map_from_file
    from densemap.mapping import Alignment, VertexMap

    m, atlas = sphere
    big = Mesh(m.vertices * 3.0, m.faces, name="big sphere")
    big_atlas = build_atlas(big, octant_parts(big))
    n = m.n_vertices
    vm = VertexMap(np.arange(n), np.zeros(n), n_target=n)
    al = Alignment(a_to_b=vm, b_to_a=vm, metadata={"mesh_a": {"name": "a", "sha1": m.sha1}, "mesh_b": {"name": "b", "sha1": big.sha1}})
    path = al.save(tmp_path / "map.npz")
    vmap, info = map_from_file(path, big, m)  # either direction of the file
    assert info["kind"] == "file" and len(info["sha256"]) == 64
    conv = AnnotationConverter(m, atlas, big, big_atlas, vmap, source_name=NAME, target_name="big")
    a = chart_ann(atlas, 200, seed=2)
    out, rep = convert_annotations(coco(a), conv)
    o = out["annotations"][0]
    assert o["dp_I"] == a["dp_I"] and o["ref_model"] == "big"
    assert np.abs(np.subtract(o["dp_U"], a["dp_U"])).max() < 1e-6
    with pytest.raises(Exception, match="the map is between meshes with sha1"):
        map_from_file(path, m, Mesh(m.vertices * 2, m.faces))


def test_moved_to_nearest(identity, sphere):
    _, atlas = sphere
    a = chart_ann(atlas, 3, dp_I=[1.0, 1.0, 2.0], dp_U=[0.0, 0.5, 1.0], dp_V=[0.0, 0.5, 1.0])
    out, rep = convert_annotations(coco(a), identity)
    rec = rep.records[0]
    assert rec.points[0] == "moved-to-nearest" and rec.moved[0] > 0.01
    assert rep.counts["moved-to-nearest"] >= 2
    assert rec.to_json()["moved"][0]["point"] == 0
    assert len(out["annotations"][0]["dp_I"]) == 3


# ----------------------------------------------------------------------------- validation rules
POINT_RULES = [
    ("dp_I", 0, "dp_I = 0 is not a chart id in 1..24"),
    ("dp_I", 25, "dp_I = 25 is not a chart id in 1..24"),
    ("dp_I", 2.5, "dp_I = 2.5 is not a chart id in 1..24"),
    ("dp_I", "x", "dp_I is not a number: 'x'"),
    ("dp_U", -0.1, r"dp_U = -0.1 outside \[0, 1\]"),
    ("dp_U", 1.5, r"dp_U = 1.5 outside \[0, 1\]"),
    ("dp_V", 2.0, r"dp_V = 2 outside \[0, 1\]"),
    ("dp_V", None, "dp_V is not a number: None"),
    ("dp_x", -1.0, r"dp_x = -1 outside \[0, 256\]"),
    ("dp_x", 300.0, r"dp_x = 300 outside \[0, 256\]"),
    ("dp_y", 256.5, r"dp_y = 256.5 outside \[0, 256\]"),
]


@pytest.mark.parametrize("key,value,reason", POINT_RULES)
def test_bad_point_is_dropped_with_reason(identity, sphere, key, value, reason):
    _, atlas = sphere
    a = chart_ann(atlas, 10)
    a[key] = list(a[key])
    a[key][4] = value
    out, rep = convert_annotations(coco(a), identity)
    rec = rep.records[0]
    assert rec.points[4] == "dropped" and rec.status == "partial"
    assert rec.points.count("kept") == 9
    import re

    assert re.fullmatch(reason, rec.dropped[4])
    o = out["annotations"][0]
    assert len(o["dp_I"]) == len(o["dp_x"]) == len(o["dp_vertex"]) == 9
    with pytest.raises(AnnotationError, match=r"in.json: annotation id 7 \(annotations\[0\]\) point 4: " + reason):
        convert_annotations(coco(a), identity, strict=True, where="in.json")


@pytest.mark.parametrize("value,reason", [
    (642, r"dp_vertex = 642 is not a vertex of the source mesh \(0..641\)"),
    (-1, r"dp_vertex = -1 is not a vertex of the source mesh \(0..641\)"),
    (1.5, "dp_vertex is not an integer: 1.5"),
])
def test_bad_vertex_is_dropped(identity, value, reason):
    a = {"id": 1, "dp_x": [1.0, 2.0], "dp_y": [1.0, 2.0], "dp_vertex": [5, value], "ref_model": NAME}
    out, rep = convert_annotations(coco(a), identity)
    import re

    assert re.fullmatch(reason, rep.records[0].dropped[1])
    assert out["annotations"][0]["dp_vertex"] == [5]


WHOLE_RULES = [
    ({"dp_U": [0.5] * 9}, "unequal list lengths: dp_x 10, dp_y 10, dp_I 10, dp_U 9, dp_V 10"),
    ({"dp_masks": [rle()] * 13}, "dp_masks must have 14 entries, got 13"),
    ({"dp_masks": [{"counts": "a", "size": [128, 128]}] + [[]] * 13}, r"dp_masks\[0\] has size \[128, 128\]; expected \[256, 256\]"),
    ({"dp_masks": [[]] * 13 + [{"size": [256, 256]}]}, r"dp_masks\[13\] must be an RLE .*"),
    ({"dp_masks": "oops"}, "dp_masks must be a list of 14 RLE masks, got str"),
    ({"ref_model": "smpl_27554"}, r"unknown ref_model 'smpl_27554'; expected one of \['sphere_642'\]"),
    ({"dp_x": "nope"}, "dp_x must be a list, got str"),
]


@pytest.mark.parametrize("over,reason", WHOLE_RULES)
def test_invalid_annotation_is_dropped_whole(identity, sphere, over, reason):
    _, atlas = sphere
    a = chart_ann(atlas, 10, **over)
    out, rep = convert_annotations(coco(a), identity)
    rec = rep.records[0]
    import re

    assert rec.status == "dropped" and re.fullmatch(reason, rec.reason)
    assert set(rec.points) <= {"dropped"}
    o = out["annotations"][0]
    assert not any(k.startswith("dp_") for k in o) and "ref_model" not in o
    assert o["bbox"] == a["bbox"] and o["keypoints"] == a["keypoints"]
    assert "1 annotations invalid as a whole" in rep.summary()
    with pytest.raises(AnnotationError, match="strict mode"):
        convert_annotations(coco(a), identity, strict=True)


def test_missing_and_incomplete_fields():
    base = {"dp_x": [1.0], "dp_y": [1.0], "dp_I": [1.0], "dp_U": [0.5], "dp_V": [0.5]}
    assert check_annotation({k: v for k, v in base.items() if k != "dp_y"}, n_vertices=10).error == "missing dp_y"
    assert "incomplete chart fields" in check_annotation({k: v for k, v in base.items() if k != "dp_V"}, n_vertices=10).error
    assert "no point labels" in check_annotation({"dp_x": [1.0], "dp_y": [1.0]}, n_vertices=10).error
    assert check_annotation(base, n_vertices=10).error is None
    # a single foreground RLE (DensePose Chimps form) is accepted
    assert check_annotation({**base, "dp_masks": rle()}, n_vertices=10).error is None


def test_structure_errors(identity, tmp_path):
    with pytest.raises(AnnotationError, match="no 'annotations' field"):
        convert_annotations({"images": []}, identity)
    with pytest.raises(AnnotationError, match=r"annotations\[1\] must be an object, got int"):
        convert_annotations({"annotations": [{}, 3]}, identity)
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(AnnotationError, match="bad.json: invalid JSON"):
        read_coco(p)


# ----------------------------------------------------------------------------- files and report
def test_convert_file_atomic_report_and_refusals(identity, sphere, tmp_path):
    _, atlas = sphere
    bad = chart_ann(atlas, 5)
    bad["dp_I"][0] = 30.0
    src = tmp_path / "in.json"
    src.write_text(json.dumps(coco(bad)))
    text = src.read_text()
    with pytest.raises(AnnotationError, match="refusing to overwrite the input file"):
        convert_file(src, src, identity)
    out = tmp_path / "out.json"
    with pytest.raises(AnnotationError, match="strict mode"):
        convert_file(src, out, identity, strict=True)
    assert not out.exists() and not list(tmp_path.glob(".out.json*"))
    rep = convert_file(src, out, identity, report_path=tmp_path / "r.json")
    assert src.read_text() == text
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["counts"]["dropped"] == 1 and r["annotations"][0]["points"] == "dkkkk"
    assert r["annotations"][0]["dropped"] == [{"point": 0, "reason": "dp_I = 30 is not a chart id in 1..24"}]
    assert r["provenance"]["input"]["sha256"]
    assert rep.summary().startswith("5 points in 1 DensePose annotations (of 1): 4 kept, 0 moved to nearest, 1 dropped")
    assert len(json.loads(out.read_text())["annotations"][0]["dp_I"]) == 4


def test_cli_human_to_human_identity(tmp_path):
    from densemap.charts import reference_atlas
    from densemap.cli.main import main

    atlas = reference_atlas("human")
    a = chart_ann(atlas, 30, seed=5)
    src = tmp_path / "in.json"
    src.write_text(json.dumps(coco(a)))
    runner = CliRunner()
    res = runner.invoke(main, ["convert-annotations", str(src), "-o", str(tmp_path / "out.json"),
                               "--src-mesh", "human", "--dst-mesh", "human", "--src-name", NAME])
    assert res.exit_code == 0, res.output
    assert "30 kept, 0 moved to nearest, 0 dropped" in res.output
    o = json.loads((tmp_path / "out.json").read_text())["annotations"][0]
    assert o["dp_I"] == a["dp_I"] and np.abs(np.subtract(o["dp_U"], a["dp_U"])).max() < 1e-6
    assert (tmp_path / "out.report.json").exists()
    res = runner.invoke(main, ["convert-annotations", str(src), "-o", str(src), "--src-mesh", "human",
                               "--dst-mesh", "human"])
    assert res.exit_code != 0 and "refusing to overwrite the input file" in res.output
    a["dp_U"][2] = 7.0
    src.write_text(json.dumps(coco(a)))
    res = runner.invoke(main, ["convert-annotations", str(src), "-o", str(tmp_path / "o2.json"), "--src-mesh",
                               "human", "--dst-mesh", "human", "--src-name", NAME, "--strict"])
    assert res.exit_code == 1
    assert f"Error: {src}: annotation id 12 (annotations[0]) point 2: dp_U = 7 outside [0, 1]" in res.output
    assert not (tmp_path / "o2.json").exists()


def test_example_file_is_valid():
    from densemap.annotation import example_annotations_path
    from densemap.annotation.convert import REFERENCE_NAMES
    from densemap.data import reference_chimp

    data = read_coco(example_annotations_path())
    n = reference_chimp().mesh.n_vertices
    pts = 0
    for a in data["annotations"]:
        if "dp_x" in a:
            chk = check_annotation(a, n_vertices=n, ref_models=(REFERENCE_NAMES["chimp"],))
            assert chk.error is None and not any(chk.reasons)
            pts += chk.n_points
    assert 200 <= pts <= 1000


@pytest.mark.slow
def test_cli_default_chimp_to_human(tmp_path):
    from densemap.annotation import example_annotations_path
    from densemap.cli.main import main

    res = CliRunner().invoke(main, ["convert-annotations", str(example_annotations_path()), "-o",
                                    str(tmp_path / "human.json")])
    assert res.exit_code == 0, res.output
    assert "0 dropped" in res.output and "computed with align" in res.output
