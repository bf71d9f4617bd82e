"""Atlas exports: UV_Processed.mat (DensePose's variables), texture atlas, OBJ with vt, PLY properties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

import densemap
from densemap.charts import (export_atlas, load_atlas, load_obj_atlas, load_uv_processed, reference_atlas,
                             render_texture_atlas, sample_texture_atlas, save_ply_atlas, save_uv_processed,
                             surface_to_iuv, texture_atlas_coords, uv_processed_arrays, vertex_to_iuv)
from densemap.charts.atlas import ChartAtlas
from densemap.data import reference
from densemap.errors import AtlasError

# DensePose's UV_Processed.mat for SMPL: name -> (shape pattern, dtype); N seam-duplicated vertices, F faces
DENSEPOSE_LAYOUT = {
    "All_FaceIndices": (("F", 1), np.uint8),
    "All_Faces": (("F", 3), np.uint32),
    "All_U": (("N", 1), np.float64),
    "All_V": (("N", 1), np.float64),
    "All_U_norm": (("N", 1), np.float64),
    "All_V_norm": (("N", 1), np.float64),
    "All_vertices": ((1, "N"), np.uint32),
}


@pytest.fixture(scope="module")
def chimp_mat(tmp_path_factory):
    return save_uv_processed(reference_atlas("chimp"), tmp_path_factory.mktemp("mat") / "UV_Processed.mat")


def test_uv_processed_has_densepose_names_shapes_dtypes(chimp_mat):
    raw = {k: v for k, v in scipy.io.loadmat(chimp_mat).items() if not k.startswith("__")}
    assert set(raw) == set(DENSEPOSE_LAYOUT)
    F, N = raw["All_Faces"].shape[0], raw["All_vertices"].shape[1]
    for name, (shape, dtype) in DENSEPOSE_LAYOUT.items():
        want = tuple(F if s == "F" else N if s == "N" else s for s in shape)
        assert raw[name].shape == want and raw[name].dtype == dtype, name
    assert raw["All_Faces"].min() == 1 and raw["All_Faces"].max() == N  # 1-based, every vertex used
    assert raw["All_vertices"].min() == 1 and raw["All_vertices"].max() == reference("chimp").mesh.n_vertices
    assert set(np.unique(raw["All_FaceIndices"])) == set(range(1, 25))
    assert np.allclose(raw["All_U"], 255 * raw["All_U_norm"])
    # DensePose's own reading recipe: corners' (U_norm, V_norm) per face, vertex ids through All_vertices
    atlas, mesh = reference_atlas("chimp"), reference("chimp").mesh
    faces_dp = raw["All_Faces"] - 1
    assert np.array_equal(raw["All_vertices"][0][faces_dp] - 1, atlas.faces)
    assert np.array_equal(np.stack([raw["All_U_norm"][:, 0][faces_dp], raw["All_V_norm"][:, 0][faces_dp]], -1), atlas.uv)
    assert N > mesh.n_vertices  # seams duplicate vertices


def test_uv_processed_round_trip_100k_points(chimp_mat):
    atlas, mesh = reference_atlas("chimp"), reference("chimp").mesh
    back = load_uv_processed(chimp_mat, mesh)
    assert np.array_equal(back.faces, atlas.faces) and np.array_equal(back.uv, atlas.uv)  # bit for bit
    rng = np.random.default_rng(0)
    face, bary = rng.integers(0, atlas.n_faces, 100_000), rng.dirichlet([1, 1, 1], 100_000)
    assert np.abs(surface_to_iuv(face, bary, back) - surface_to_iuv(face, bary, atlas)).max() < 1e-9
    assert load_atlas(chimp_mat, mesh).n_faces == atlas.n_faces  # by suffix too


def test_uv_processed_leaves_out_uncharted_faces(tmp_path):
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[[0, 0], [1, 0], [1, 1]], [[0, 0], [1, 1], [0, 1]]], float)
    atlas = ChartAtlas(faces, [2, 0], uv, 4)
    arr = uv_processed_arrays(atlas)
    assert arr["All_Faces"].tolist() == [[1, 2, 3]] and arr["All_FaceIndices"].tolist() == [[2]]
    assert arr["All_vertices"].tolist() == [[1, 2, 3]]
    with pytest.raises(AtlasError, match="no face is in a chart"):
        uv_processed_arrays(ChartAtlas(faces, [0, 0], uv, 4))


def test_texture_atlas_layout_and_colours_come_back():
    atlas, mesh = reference_atlas("chimp"), reference("chimp").mesh
    x, y = texture_atlas_coords([1, 7, 24], [0.0, 1.0, 0.5], [1.0, 0.0, 0.5], tile=10)
    assert x.tolist() == [0.0, 9.0 + 10, 3 * 10 + 4.5] and y.tolist() == [0.0, 9.0, 5 * 10 + 4.5]
    colors = np.random.default_rng(0).random((mesh.n_vertices, 3))
    smooth = (mesh.vertices - mesh.vertices.min(0)) / np.ptp(mesh.vertices, axis=0)
    img = render_texture_atlas(atlas, smooth, tile=128)
    assert img.shape == (6 * 128, 4 * 128, 3) and img.dtype == np.uint8
    iuv = vertex_to_iuv(np.arange(mesh.n_vertices), atlas)
    got = sample_texture_atlas(img, iuv[:, 0], iuv[:, 1], iuv[:, 2]) / 255.0
    err = np.abs(got - smooth).max(axis=1)
    assert np.median(err) < 0.01 and np.percentile(err, 95) < 0.05  # a smooth field survives the pixels
    with pytest.raises(AtlasError, match="colors must have shape"):
        render_texture_atlas(atlas, colors[:10])


def test_obj_round_trip_keeps_vertices_faces_and_charts(tmp_path):
    atlas, mesh = reference_atlas("chimp"), reference("chimp").mesh
    p = export_atlas(mesh, atlas, tmp_path / "chimp_charts.obj")
    m2, a2 = load_obj_atlas(p)
    assert np.array_equal(m2.vertices, mesh.vertices) and np.array_equal(m2.faces, mesh.faces)
    assert np.array_equal(a2.charts, atlas.charts) and np.array_equal(a2.uv, atlas.uv)
    text = p.read_text()
    assert text.count("\nvt ") < 3 * mesh.n_faces  # shared corners share their vt
    parts = densemap.load_parts(p, mesh)
    assert parts.n_parts == 24


def test_ply_carries_part_chart_u_v(tmp_path):
    ref = reference("chimp")
    atlas = reference_atlas("chimp")
    p = save_ply_atlas(ref.mesh, atlas, tmp_path / "chimp.ply", parts=ref.parts)
    back = densemap.load_parts(p, ref.mesh, field="part")
    assert np.array_equal(back.labels, ref.parts.labels) and back.names == ref.parts.names
    import trimesh

    raw = trimesh.load(str(p), process=False, force="mesh").metadata["_ply_raw"]["vertex"]["data"]
    iuv = vertex_to_iuv(np.arange(ref.mesh.n_vertices), atlas)
    assert np.array_equal(raw["chart"], iuv[:, 0].astype(int))
    assert np.array_equal(raw["u"], iuv[:, 1]) and np.array_equal(raw["v"], iuv[:, 2])
    mesh = densemap.load_mesh(p)
    assert np.array_equal(mesh.faces, ref.mesh.faces) and np.allclose(mesh.vertices, ref.mesh.vertices)


def test_export_atlas_dispatch_and_errors(tmp_path):
    atlas, mesh = reference_atlas("chimp"), reference("chimp").mesh
    for suffix in (".npz", ".mat", ".png"):
        assert export_atlas(mesh, atlas, tmp_path / f"a{suffix}").is_file()
    with pytest.raises(AtlasError, match="unsupported atlas format '.xyz'"):
        export_atlas(mesh, atlas, tmp_path / "a.xyz")
    with pytest.raises(AtlasError, match="does not stand on the faces"):
        export_atlas(reference("human").mesh, atlas, tmp_path / "a.obj")
