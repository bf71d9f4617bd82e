import numpy as np
import pytest

from densemap.errors import MeshError
from densemap.mesh import Mesh, check_mesh, load_mesh, read_obj, save_mesh

# A unit cube written with quads, texture coordinates and a scrambled vertex order:
# vertex i of the file must stay vertex i.
CUBE_V = np.array(
    [[1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1], [0, 1, 0], [1, 0, 1]], float
)
CUBE_QUADS = [[1, 6, 4, 2], [5, 7, 0, 3], [1, 2, 7, 5], [6, 3, 0, 4], [1, 5, 3, 6], [2, 4, 0, 7]]


def _cube_obj(path, with_vt=True):
    lines = ["# cube", "o cube"]
    lines += [f"v {x} {y} {z}" for x, y, z in CUBE_V]
    if with_vt:
        lines += ["vt 0 0", "vt 1 0", "vt 1 1", "vt 0 1"]
        lines += ["f " + " ".join(f"{i + 1}/{k + 1}" for k, i in enumerate(q)) for q in CUBE_QUADS]
    else:
        lines += ["f " + " ".join(str(i + 1) for i in q) for q in CUBE_QUADS]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cube_ply(path):
    head = ["ply", "format ascii 1.0", f"element vertex {len(CUBE_V)}", "property float x", "property float y",
            "property float z", f"element face {len(CUBE_QUADS)}", "property list uchar int vertex_indices", "end_header"]
    body = [f"{x} {y} {z}" for x, y, z in CUBE_V] + ["4 " + " ".join(map(str, q)) for q in CUBE_QUADS]
    path.write_text("\n".join(head + body) + "\n")
    return path


def _cube_off(path):
    body = ["OFF", f"{len(CUBE_V)} {len(CUBE_QUADS)} 0"] + [f"{x} {y} {z}" for x, y, z in CUBE_V]
    body += ["4 " + " ".join(map(str, q)) for q in CUBE_QUADS]
    path.write_text("\n".join(body) + "\n")
    return path


def _assert_cube(mesh):
    np.testing.assert_array_equal(mesh.vertices, CUBE_V)
    assert mesh.faces.shape == (12, 3)
    # every quad became two triangles on its own four vertices
    for q in CUBE_QUADS:
        hits = [f for f in mesh.faces.tolist() if set(f) <= set(q)]
        assert len(hits) == 2, q
    assert mesh.area == pytest.approx(6.0)
    assert check_mesh(mesh).ok


@pytest.mark.parametrize("writer", [_cube_obj, _cube_ply, _cube_off])
def test_quads_load_in_file_order(tmp_path, writer):
    suffix = {"_cube_obj": ".obj", "_cube_ply": ".ply", "_cube_off": ".off"}[writer.__name__]
    mesh = load_mesh(writer(tmp_path / f"cube{suffix}"))
    _assert_cube(mesh)


def test_obj_vt_per_corner(tmp_path):
    mesh = load_mesh(_cube_obj(tmp_path / "cube.obj"))
    assert mesh.uv is not None and mesh.uv.shape == (12, 3, 2)
    # the first quad's corners carry vt 1..4; its fan triangles are (0,1,2) and (0,2,3)
    np.testing.assert_array_equal(mesh.uv[0], [[0, 0], [1, 0], [1, 1]])
    np.testing.assert_array_equal(mesh.uv[1], [[0, 0], [1, 1], [0, 1]])


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".off"])
def test_round_trip_keeps_order(tmp_path, suffix, sphere):
    rng = np.random.default_rng(0)
    perm = rng.permutation(sphere.n_vertices)
    inv = np.argsort(perm)
    shuffled = Mesh(sphere.vertices[perm], inv[sphere.faces])
    path = save_mesh(shuffled, tmp_path / f"m{suffix}")
    back = load_mesh(path)
    np.testing.assert_allclose(back.vertices, shuffled.vertices, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(back.faces, shuffled.faces)


def test_obj_round_trip_with_uv(tmp_path):
    mesh = load_mesh(_cube_obj(tmp_path / "cube.obj"))
    back = load_mesh(save_mesh(mesh, tmp_path / "out.obj"))
    np.testing.assert_array_equal(back.vertices, mesh.vertices)
    np.testing.assert_array_equal(back.faces, mesh.faces)
    np.testing.assert_array_equal(back.uv, mesh.uv)


def test_stl_and_glb_load(tmp_path, sphere):
    for suffix in (".stl", ".glb"):
        back = load_mesh(save_mesh(sphere, tmp_path / f"m{suffix}"))
        assert back.n_faces == sphere.n_faces
        assert back.area == pytest.approx(sphere.area, rel=1e-5)


def test_mesh_is_immutable_and_copies_input():
    v = np.eye(3)
    f = np.array([[0, 1, 2]])
    m = Mesh(v, f)
    v[0, 0] = 5.0
    assert m.vertices[0, 0] == 1.0
    with pytest.raises(ValueError):
        m.vertices[0, 0] = 2.0
    with pytest.raises(AttributeError):
        m.vertices = v


def test_cached_properties(tetra):
    assert tetra.edges.shape == (6, 2)
    assert tetra.vertex_areas.sum() == pytest.approx(tetra.area)
    assert tetra.n_components == 1
    rep = check_mesh(tetra)
    assert rep.ok and rep.component_sizes == (4,)


def test_check_mesh_reports_problems():
    # two triangles sharing an edge (boundary), one degenerate face, one stray vertex, a second component
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [5, 5, 5], [9, 9, 9], [3, 3, 0], [4, 3, 0], [3, 4, 0]], float)
    f = np.array([[0, 1, 2], [1, 3, 2], [0, 0, 1], [6, 7, 8]])
    rep = check_mesh(Mesh(v, f))
    assert rep.boundary_edges == 7
    assert rep.degenerate_faces == 1 and rep.first_degenerate_face == 2
    assert rep.unreferenced_vertices == 2 and rep.first_unreferenced_vertex == 4
    assert rep.n_components == 2 and rep.component_sizes == (4, 3)
    assert not rep.ok
    assert "degenerate" in rep.summary()


def test_check_mesh_nonmanifold():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1]], float)
    f = np.array([[0, 1, 2], [1, 0, 3], [0, 1, 4]])
    rep = check_mesh(Mesh(v, f))
    assert rep.nonmanifold_edges == 1 and rep.first_nonmanifold_edge == (0, 1)


# ------------------------------------------------------------------ bad input
def test_missing_file(tmp_path):
    with pytest.raises(MeshError, match="nope.obj: no such file"):
        load_mesh(tmp_path / "nope.obj")


@pytest.mark.parametrize("name, text, match", [
    ("m.xyz", "1 2 3\n", r"m.xyz: unsupported mesh format '.xyz'"),
    ("bad.obj", "v 0 0 0\nv 1 0 0\nv nan 1 0\nf 1 2 3\n", r"bad.obj:3: cannot use 'v' line .*'nan' is not finite"),
    ("bad.obj", "v 0 0 0\nv 1 0 zero\n", r"bad.obj:2: cannot use 'v' line"),
    ("bad.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1 2 7\n",
     r"bad.obj:5: .*vertex index 7 is out of range: the file defines 3 vertices before this line"),
    ("bad.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", r"bad.obj:4: .*vertex index 0 is invalid \(OBJ indices start at 1\)"),
    ("bad.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt\nf 1 2 3\n", r"bad.obj:4: .*a texture coordinate needs at least u"),
])
def test_bad_mesh_file_names_file_and_offender(tmp_path, name, text, match):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(MeshError, match=match):
        load_mesh(p)


def test_unreadable_binary(tmp_path):
    p = tmp_path / "bad.ply"
    p.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(MeshError, match="bad.ply: cannot read mesh file"):
        load_mesh(p)


def test_nonfinite_ply(tmp_path):
    p = tmp_path / "bad.ply"
    p.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
                 "element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 inf 0\n0 1 0\n3 0 1 2\n")
    with pytest.raises(MeshError, match=r"bad.ply: vertices\[1\]"):
        load_mesh(p)


def test_bad_shapes():
    with pytest.raises(MeshError, match=r"vertices must have shape \(V, 3\)"):
        Mesh(np.zeros((3, 2)), np.zeros((1, 3), int))
    with pytest.raises(MeshError, match=r"faces must have shape \(F, 3\)"):
        Mesh(np.zeros((3, 3)), np.zeros((1, 4), int))
    with pytest.raises(MeshError, match="faces must be integers"):
        Mesh(np.zeros((3, 3)), np.array([[0, 1, 2.5]]))


def test_save_is_atomic(tmp_path, sphere, monkeypatch):
    target = tmp_path / "m.obj"
    target.write_text("old")
    import densemap.mesh as mm

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(mm, "_write_obj", boom)
    with pytest.raises(RuntimeError):
        save_mesh(sphere, target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.obj"]


def test_read_obj_groups(tmp_path):
    p = tmp_path / "g.obj"
    p.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\ng left\nf 1 2 3\ng right\nf 2 4 3\n")
    d = read_obj(p)
    assert d.group_names == ["left", "right"]
    np.testing.assert_array_equal(d.face_groups, [0, 1])


TRI4 = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\n"


@pytest.mark.parametrize("text, bulk", [
    (TRI4 + "g left\nf 1 2 3\ng right\nf 2 4 3\n", True),
    ("# c\nmtllib m.mtl\no body\n" + TRI4 + "vn 0 0 1\ns off\nusemtl skin\nf 1 2 3\ng\nf 2 4 3\n", True),
    ("v 0 0 0\nv 1e-3 2.5 -7\nv 0 1 0\nf 1 2 3\n", True),
    (TRI4, True),  # vertices only
    (TRI4 + "f 1 2 3 4\n", False),  # a quad
    (TRI4 + "vt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n", False),  # slashes
    (TRI4 + "f -1 -2 -3\n", False),  # relative indices
    (TRI4 + "vt 0 0\nf 1 2 3\n", False),  # texture coordinates
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nv 1 1 0\nf 2 4 3\n", False),  # a vertex below a face
    (TRI4.replace("v 1 0 0", "v 1 0 0 0.5 0.5 0.5") + "f 1 2 3\n", False),  # vertex colours
    (TRI4 + "  f 1 2 3\n", False),  # leading blanks
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\ng two words\nf 3 2 1\n", True),
])
def test_bulk_obj_reading_is_the_line_parser_or_declines(tmp_path, text, bulk):
    from densemap._obj import _read_lines, _read_simple

    fast = _read_simple(text)
    assert (fast is not None) == bulk
    slow = _read_lines(text, tmp_path / "m.obj")
    p = tmp_path / "m.obj"
    p.write_text(text)
    for got in (read_obj(p),) + ((fast,) if bulk else ()):
        np.testing.assert_array_equal(got.vertices, slow.vertices)
        np.testing.assert_array_equal(got.faces, slow.faces)
        np.testing.assert_array_equal(got.face_groups, slow.face_groups)
        assert got.group_names == slow.group_names
        if got is fast:
            assert fast.uv is None and slow.uv is None
        assert got.vertices.dtype == np.float64 and got.faces.dtype == np.int64


def test_bulk_obj_reading_of_the_embedded_meshes_is_the_line_parser():
    from densemap._obj import _read_lines, _read_simple
    from densemap.data import data_path

    for name in ("human.obj", "chimp.obj"):
        text = data_path(name).read_text()
        fast, slow = _read_simple(text), _read_lines(text, data_path(name))
        assert fast is not None
        for a, b in ((fast.vertices, slow.vertices), (fast.faces, slow.faces), (fast.face_groups, slow.face_groups)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("text, message", [
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", r"m\.obj:4: .*vertex index 9 is out of range"),
    ("v 0 0 0\nv 1 0 inf\nv 0 1 0\nf 1 2 3\n", r"m\.obj:2: .*not finite"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", r"m\.obj:4: .*index 0 is invalid"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3 # note\n", r"m\.obj:4: cannot use 'f' line"),
])
def test_what_the_bulk_reader_declines_is_still_reported_with_its_line(tmp_path, text, message):
    p = tmp_path / "m.obj"
    p.write_text(text)
    with pytest.raises(MeshError, match=message):
        read_obj(p)


@pytest.mark.parametrize("name", ["a\x00b", "tab\there", "line\nbreak", " padded", "two  spaces", "bell\x07", ""])
def test_obj_writer_refuses_group_names_the_reader_would_change(tmp_path, name):
    """A NUL would make the file binary; other control characters and padding come back changed."""
    import io

    from densemap._obj import write_obj

    m = Mesh(np.eye(3), np.array([[0, 1, 2]]))
    with pytest.raises(MeshError, match="cannot be written in OBJ"):
        write_obj(m, io.StringIO(), groups=np.array([0]), group_names=[name])
    write_obj(m, io.StringIO(), groups=np.array([0]), group_names=["a fine name"])  # and a plain one is written
