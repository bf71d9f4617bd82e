"""Property tests (hypothesis): round trips of the file formats, and readers that fail only one way.

* OBJ and PLY: a random mesh written and read back has the same faces and (to the written
  precision) the same vertices, in the same order; OBJ groups come back as the parts;
* part files: random labellings survive JSON and ``.npy`` + names; random bytes given to
  the readers raise :class:`PartError` and nothing else;
* ``check_annotation``: random mutations of a valid COCO DensePose annotation are accepted
  or rejected (an error, or per-point reasons) -- never another exception -- and what is
  accepted is in range; ``convert_annotations`` on a mutated file raises only
  :class:`AnnotationError`; RLE run lengths agree with pycocotools;
* charts: a point in a chart goes to the surface and back to the same (c, u, v); atlases
  survive ``save_atlas`` / ``load_atlas``.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from densemap.errors import AnnotationError, AtlasError, MeshError, PartError
from densemap.mesh import Mesh, load_mesh, save_mesh
from densemap.parts import PartLabels, load_parts, save_parts

from badinput_kit import charted_obj, grouped_obj, sphere

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SPHERE = sphere(1)


@st.composite
def meshes(draw, max_vertices: int = 30):
    """A random triangle soup over its own vertices (every vertex used, no repeated corner)."""
    n = draw(st.integers(3, max_vertices))
    coord = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32)
    v = np.array(draw(st.lists(st.tuples(coord, coord, coord), min_size=n, max_size=n)), dtype=np.float64)
    n_faces = draw(st.integers(1, 2 * n))
    faces = [draw(st.permutations(range(n)))[:3] for _ in range(n_faces)]
    faces += [[k, (k + 1) % n, (k + 2) % n] for k in range(n)]  # every vertex in a face
    return Mesh(v, np.array(faces, dtype=np.int64))


@FAST
@given(m=meshes())
def test_obj_round_trip_keeps_vertices_faces_and_order(tmp_path_factory, m):
    p = save_mesh(m, tmp_path_factory.mktemp("obj") / "m.obj")
    back = load_mesh(p)
    np.testing.assert_array_equal(back.faces, m.faces)
    np.testing.assert_allclose(back.vertices, m.vertices, rtol=1e-7, atol=1e-7 * np.abs(m.vertices).max())


@FAST
@given(m=meshes())
def test_ply_round_trip_keeps_vertices_faces_and_order(tmp_path_factory, m):
    p = save_mesh(m, tmp_path_factory.mktemp("ply") / "m.ply")
    back = load_mesh(p)
    np.testing.assert_array_equal(back.faces, m.faces)
    np.testing.assert_allclose(back.vertices, m.vertices, rtol=1e-6, atol=1e-6 * np.abs(m.vertices).max())


@st.composite
def labellings(draw, n: int = 42):
    n_parts = draw(st.integers(1, 6))
    lab = np.array(draw(st.lists(st.integers(-1, n_parts - 1), min_size=n, max_size=n)))
    lab[:n_parts] = np.arange(n_parts)  # every part has a vertex
    names = draw(st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8),
                          min_size=n_parts, max_size=n_parts, unique=True))
    return PartLabels(lab[draw(st.permutations(range(n)))], names)


@FAST
@given(parts=labellings(), suffix=st.sampled_from([".json", ".npy"]))
def test_part_files_round_trip(tmp_path_factory, parts, suffix):
    p = save_parts(parts, tmp_path_factory.mktemp("parts") / f"p{suffix}")
    back = load_parts(p, SPHERE)
    assert back.names == parts.names
    np.testing.assert_array_equal(back.labels, parts.labels)


@FAST
@given(parts=labellings(n=42))
def test_obj_groups_round_trip(tmp_path_factory, parts):
    """Each face comes back in the group of its label (the writer orders faces by group)."""
    from densemap.mesh import read_obj
    from densemap.parts import face_labels

    s = SPHERE
    fl = face_labels(s.faces, parts.labels)
    assume((fl >= 0).all())
    try:
        p = grouped_obj(tmp_path_factory.mktemp("g") / "g.obj", s, parts)
    except MeshError:  # a name OBJ cannot hold (line break, tab, control character, padding): refused, never garbled
        assert any(n != " ".join(n.split()) or any(ord(c) < 32 or ord(c) == 127 for c in n) for n in parts.names)
        return
    d = read_obj(p)
    written = {tuple(sorted(f)): parts.names[k] for f, k in zip(s.faces.tolist(), fl)}
    read = {tuple(sorted(f)): d.group_names[g] for f, g in zip(d.faces.tolist(), d.face_groups)}
    assert read == written
    back = load_parts(p, s)  # and the vertex labels are the majority of each vertex's faces
    assert set(back.names) <= set(parts.names) and (back.labels >= 0).all()


@FAST
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".json", ".npy", ".txt", ".obj", ".ply"]))
def test_part_readers_fail_only_with_part_error(tmp_path_factory, data, suffix):
    p = tmp_path_factory.mktemp("junk") / f"p{suffix}"
    p.write_bytes(data)
    try:
        load_parts(p, SPHERE)
    except PartError:
        pass


@FAST
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".obj", ".ply", ".off", ".stl"]))
def test_mesh_readers_fail_only_with_mesh_error(tmp_path_factory, data, suffix):
    p = tmp_path_factory.mktemp("junk") / f"m{suffix}"
    p.write_bytes(data)
    try:
        load_mesh(p)
    except MeshError:
        pass


# ----------------------------------------------------------------------------- annotations
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.just(10**400)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=8,
)
VALID = {"id": 3, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [2.0, 3.0, 40.0, 30.0],
         "dp_x": [10.0, 100.5, 250.0], "dp_y": [5.0, 128.0, 255.0], "dp_I": [1.0, 12.0, 24.0],
         "dp_U": [0.0, 0.5, 1.0], "dp_V": [0.25, 0.5, 0.75], "dp_vertex": [0, 5, 41], "ref_model": "m"}
FIELDS = ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V", "dp_vertex", "ref_model", "dp_masks")


@st.composite
def mutated(draw):
    ann = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(FIELDS))
        how = draw(st.sampled_from(["replace", "delete", "element", "truncate"]))
        if how == "delete":
            ann.pop(key, None)
        elif how == "replace" or not isinstance(ann.get(key), list) or not ann[key]:
            ann[key] = draw(JSON_VALUES)
        elif how == "element":
            ann[key][draw(st.integers(0, len(ann[key]) - 1))] = draw(JSON_VALUES)
        else:
            ann[key] = ann[key][: draw(st.integers(0, len(ann[key])))]
    return ann


def _valid_points(chk) -> bool:
    ok = [k for k, r in enumerate(chk.reasons) if r is None]
    if chk.kind == "chart":
        i, u, v = chk.i[ok], chk.u[ok], chk.v[ok]
        return bool(np.all((i >= 1) & (i <= 24) & (i == np.round(i)) & (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)))
    return bool(np.all((chk.vertex[ok] >= 0) & (chk.vertex[ok] < 42)))


@settings(max_examples=150, deadline=None)
@given(ann=mutated())
def test_check_annotation_accepts_or_rejects_never_crashes(ann):
    from densemap.annotation.coco import check_annotation

    try:
        chk = check_annotation(ann, n_vertices=42, ref_models=("m",))
    except AnnotationError:
        return
    if chk.error is None and chk.kind is not None:
        x, y = chk.x[[r is None for r in chk.reasons]], chk.y[[r is None for r in chk.reasons]]
        assert np.all((x >= 0) & (x <= 256) & (y >= 0) & (y <= 256))
        assert _valid_points(chk)


@settings(max_examples=60, deadline=None)
@given(ann=mutated(), extra=st.dictionaries(st.sampled_from(["images", "categories", "info"]), JSON_VALUES, max_size=2))
def test_convert_annotations_raises_only_annotation_error(ann, extra):
    from densemap.annotation import convert_annotations

    conv = _identity_converter()
    data = {"annotations": [ann], **extra}
    try:
        out, report = convert_annotations(data, conv)
    except AnnotationError:
        return
    json.dumps(out)  # what is written is JSON
    assert report.n_points >= 0


_CONVERTER = {}


def _identity_converter():
    if "c" not in _CONVERTER:
        import tempfile
        from pathlib import Path

        from densemap.annotation import mesh_converter

        p = charted_obj(Path(tempfile.mkdtemp()) / "m.obj")
        _CONVERTER["c"] = mesh_converter(str(p), str(p))
    return _CONVERTER["c"]


@FAST
@given(text=st.text(max_size=200))
def test_read_coco_fails_only_with_annotation_error(tmp_path_factory, text):
    from densemap.annotation.coco import read_coco

    p = tmp_path_factory.mktemp("coco") / "a.json"
    p.write_text(text)
    try:
        read_coco(p)
    except AnnotationError:
        pass


@settings(max_examples=100, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), density=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_rle_counts_agree_with_pycocotools(h, w, density, seed):
    from densemap.annotation.coco import decode_rle, encode_rle
    from densemap.annotation.validate import rle_counts

    m = (np.random.default_rng(seed).random((h, w)) < density).astype(np.uint8)
    r = encode_rle(m)
    c = rle_counts(r)
    assert c.sum() == h * w and (decode_rle(r) == m).all()
    np.testing.assert_array_equal(np.repeat(np.arange(len(c)) % 2, c).reshape(w, h).T, m)


@settings(max_examples=200, deadline=None)
@given(counts=st.text(max_size=30) | st.lists(st.integers(-5, 10**12), max_size=6) | JSON_VALUES,
       size=st.lists(st.integers(-2, 50), max_size=3) | JSON_VALUES)
def test_rle_validation_fails_only_with_value_error(counts, size):
    from densemap.annotation.validate import rle_counts

    try:
        rle_counts({"counts": counts, "size": size})
    except ValueError:
        pass


# ----------------------------------------------------------------------------- charts
@pytest.fixture(scope="module")
def charted(tmp_path_factory):
    from densemap.charts import load_obj_atlas

    return load_obj_atlas(charted_obj(tmp_path_factory.mktemp("chart") / "m.obj", sub=2))


@FAST
@given(face=st.integers(0, 319), w=st.tuples(st.floats(0.01, 1), st.floats(0.01, 1), st.floats(0.01, 1)))
def test_chart_round_trip_surface_to_chart_and_back(charted, face, w):
    mesh, atlas = charted
    bary = np.array([w]) / sum(w)
    c, u, v = atlas.chart_coords([face], bary)
    loc = atlas.locate(c, u, v)
    assert loc.face[0] >= 0 and loc.distance[0] == 0
    c2, u2, v2 = atlas.chart_coords(loc.face, loc.bary)
    assert c2[0] == c[0] and math.isclose(u2[0], u[0], abs_tol=1e-9) and math.isclose(v2[0], v[0], abs_tol=1e-9)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(store_faces=st.booleans())
def test_atlas_file_round_trip(charted, tmp_path_factory, store_faces):
    from densemap.charts import load_atlas, save_atlas

    mesh, atlas = charted
    p = save_atlas(atlas, tmp_path_factory.mktemp("atlas") / "a.npz", store_faces=store_faces)
    back = load_atlas(p, mesh)
    np.testing.assert_array_equal(back.faces, atlas.faces)
    np.testing.assert_array_equal(back.charts, atlas.charts)
    np.testing.assert_allclose(back.uv, atlas.uv, atol=1e-7)  # stored as float32


@FAST
@given(data=st.binary(max_size=300))
def test_atlas_reader_fails_only_with_atlas_error(tmp_path_factory, data):
    from densemap.charts import load_atlas

    p = tmp_path_factory.mktemp("junk") / "a.npz"
    p.write_bytes(b"PK\x03\x04" + data)
    try:
        load_atlas(p)
    except AtlasError:
        pass
