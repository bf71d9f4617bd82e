import json

import numpy as np
import pytest

from densemap.errors import PartError
from densemap.mesh import Mesh, save_mesh
from densemap.parts import PartLabels, labels_from_face_groups, load_parts, match_parts, save_parts

from conftest import octant_parts


@pytest.fixture
def parts(sphere):
    return octant_parts(sphere)


def test_obj_groups_majority_vote(tmp_path):
    # a strip of 4 triangles: faces 0,1 in group a, faces 2,3 in group b
    p = tmp_path / "strip.obj"
    p.write_text(
        "v 0 0 0\nv 0 1 0\nv 1 0 0\nv 1 1 0\nv 2 0 0\nv 2 1 0\n"
        "g a\nf 1 3 2\nf 2 3 4\ng b\nf 3 5 4\nf 4 5 6\n"
    )
    parts = load_parts(p)
    assert parts.names == ("a", "b")
    # vertex 2 (0-based) touches 2 faces of a and 1 of b; vertex 3 touches 1 of a and 2 of b
    np.testing.assert_array_equal(parts.labels, [0, 0, 0, 1, 1, 1])


def test_face_groups_tie_goes_to_first_group():
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    lab = labels_from_face_groups(5, faces, np.array([1, 0]), 2)
    np.testing.assert_array_equal(lab, [0, 1, 0, 0, -1])


def test_obj_groups_round_trip_with_mesh_writer(tmp_path, sphere, parts):
    # write the sphere with one group per octant face-majority, read labels back
    from densemap.mesh import _write_obj

    fl = labels_from_face_groups(sphere.n_faces, np.arange(sphere.n_faces)[:, None].repeat(3, 1), np.zeros(sphere.n_faces, int), 1)
    assert (fl == 0).all()
    face_lab = np.array([np.bincount(parts.labels[f], minlength=8).argmax() for f in sphere.faces])
    p = tmp_path / "g.obj"
    with open(p, "w") as fh:
        _write_obj(sphere, fh, groups=face_lab, group_names=parts.names)
    back = load_parts(p, sphere)
    assert set(back.names) == set(parts.names)
    agree = np.mean(np.array(back.names)[back.labels] == np.array(parts.names)[parts.labels])
    assert agree > 0.85


@pytest.mark.parametrize("suffix", [".json", ".npy"])
def test_write_read_round_trip(tmp_path, sphere, parts, suffix):
    lab = parts.labels.copy()
    lab[:5] = -1
    p0 = PartLabels(lab, parts.names)
    path = save_parts(p0, tmp_path / f"parts{suffix}")
    back = load_parts(path, sphere)
    assert back.names == p0.names
    np.testing.assert_array_equal(back.labels, p0.labels)


def test_txt_with_names_file(tmp_path, sphere, parts):
    np.savetxt(tmp_path / "l.txt", parts.labels, fmt="%d")
    (tmp_path / "names.txt").write_text("\n".join(parts.names))
    back = load_parts(tmp_path / "l.txt", sphere, names=tmp_path / "names.txt")
    assert back.names == parts.names
    np.testing.assert_array_equal(back.labels, parts.labels)


def test_npy_without_names(tmp_path, sphere, parts):
    np.save(tmp_path / "l.npy", parts.labels)
    back = load_parts(tmp_path / "l.npy", sphere)
    assert back.names == tuple(f"part_{k}" for k in range(8))


def test_ply_vertex_property(tmp_path):
    lines = ["ply", "format ascii 1.0", "element vertex 4", "property float x", "property float y", "property float z",
             "property int part", "element face 2", "property list uchar int vertex_indices", "end_header",
             "0 0 0 0", "1 0 0 0", "0 1 0 1", "1 1 0 1", "3 0 1 2", "3 1 3 2"]
    p = tmp_path / "m.ply"
    p.write_text("\n".join(lines) + "\n")
    back = load_parts(p, names=["a", "b"])
    np.testing.assert_array_equal(back.labels, [0, 0, 1, 1])
    with pytest.raises(PartError, match=r"m.ply: the PLY vertices have no property 'seg'; vertex properties are \['part'\]"):
        load_parts(p, field="seg")


def test_match_parts_reorders(parts):
    rev = parts.reorder(parts.names[::-1])
    assert rev.names[0] == "octant7"
    back = match_parts(parts, rev)
    assert back.names == parts.names
    np.testing.assert_array_equal(back.labels, parts.labels)


def test_match_parts_lists_missing_and_extra(parts):
    names = list(parts.names)
    names[2] = "elbow"
    other = PartLabels(parts.labels, names, source="chimp.json")
    with pytest.raises(PartError, match=r"missing from chimp.json: \['octant2'\]; extra in chimp.json: \['elbow'\]"):
        match_parts(parts, other)


# ------------------------------------------------------------------ bad input
def test_wrong_length(tmp_path, sphere, parts):
    np.save(tmp_path / "l.npy", parts.labels[:-3])
    with pytest.raises(PartError, match=rf"l.npy: {sphere.n_vertices - 3} labels but mesh icosphere has {sphere.n_vertices} vertices"):
        load_parts(tmp_path / "l.npy", sphere)


def test_out_of_range_label(tmp_path, sphere, parts):
    lab = parts.labels.copy()
    lab[7] = 8
    np.save(tmp_path / "l.npy", lab)
    with pytest.raises(PartError, match=r"labels\[7\] = 8 is out of range"):
        load_parts(tmp_path / "l.npy", sphere, names=list(parts.names))


def test_empty_part(sphere, parts):
    lab = parts.labels.copy()
    lab[lab == 3] = 2
    with pytest.raises(PartError, match=r"1 part\(s\) have no vertex: \['octant3'\]"):
        PartLabels(lab, parts.names)


def test_json_errors(tmp_path, sphere):
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"a": [0, 1, 2], "b": []}))
    with pytest.raises(PartError, match="part 'b' has no vertex"):
        load_parts(p, sphere)
    p.write_text(json.dumps({"a": [0, 1, 2], "b": [2, 3]}))
    with pytest.raises(PartError, match="vertex 2 is in both 'a' and 'b'"):
        load_parts(p, sphere)
    p.write_text(json.dumps({"a": [0, 1, 5000]}))
    with pytest.raises(PartError, match=rf"part 'a' lists vertex 5000 but mesh icosphere has {sphere.n_vertices} vertices"):
        load_parts(p, sphere)
    p.write_text("{not json")
    with pytest.raises(PartError, match="p.json: invalid JSON at line 1 column 2"):
        load_parts(p)


def test_duplicate_names():
    with pytest.raises(PartError, match="part name 'a' appears twice"):
        PartLabels(np.array([0, 1]), ["a", "a"])


def test_obj_without_groups(tmp_path, sphere):
    p = save_mesh(sphere, tmp_path / "s.obj")
    with pytest.raises(PartError, match="has no 'g' or 'o' groups"):
        load_parts(p, sphere)


def test_unknown_format(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("1,2")
    with pytest.raises(PartError, match="unsupported part-label format '.csv'"):
        load_parts(p)


def test_inputs_not_modified(tmp_path, sphere, parts):
    path = save_parts(parts, tmp_path / "p.json")
    before = path.read_bytes()
    load_parts(path, sphere)
    assert path.read_bytes() == before


def test_face_labels_majority_and_ties():
    from densemap.parts import face_labels

    faces = np.array([[0, 1, 2], [0, 1, 3], [3, 4, 5], [5, 5, 5], [6, 7, 4]])
    labels = np.array([2, 2, 1, 0, -1, -1, 7, 5])
    # majority 2; 2/2/0 -> 2; 0 with two unlabelled; all unlabelled -> -1; (7, 5, -1) -> the lower, 5
    assert face_labels(faces, labels).tolist() == [2, 2, 0, -1, 5]
    assert face_labels(np.array([[0, 1, 2]]), np.array([3, 1, 2])).tolist() == [1]  # all differ -> lowest


def test_part_adjacency_graph():
    from densemap.parts import part_adjacency

    # a strip of 4 x 1 squares, labelled by column: parts a | b | c, each touching the next only
    v = np.array([[x, y, 0.0] for y in (0, 1) for x in range(5)])
    f = np.array([[i, i + 1, i + 6] for i in range(4)] + [[i, i + 6, i + 5] for i in range(4)])
    labels = np.array([0, 0, 1, 2, 2] * 2)
    g = part_adjacency(Mesh(v, f), PartLabels(labels, ["a", "b", "c"]))
    assert sorted(g.nodes) == ["a", "b", "c"]
    assert sorted(map(sorted, g.edges)) == [["a", "b"], ["b", "c"]]
    # the cut edges between a (x <= 1) and b (x = 2): (1,0)-(2,0), (1,1)-(2,1) and the diagonal (1,0)-(2,1)
    assert g.edges["a", "b"]["edges"] == 3
    assert g.edges["a", "b"]["length"] == pytest.approx(2 + np.sqrt(2))
