"""DensePose CSE export: the files load as DensePose's readers load them; the transported basis."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import icosphere, octant_parts
from densemap.charts import build_atlas
from densemap.charts.cse import cse_texcoords, export_cse, load_cse, transport_basis
from densemap.errors import DensemapError
from densemap.mapping import VertexMap, laplacian_basis


def _as_densepose_reads(path):
    """What detectron2's DensePose does with each file: pickle.load, then torch.as_tensor / torch.tensor."""
    torch = pytest.importorskip("torch")
    with open(path, "rb") as fh:
        data = pickle.load(fh)
    if isinstance(data, dict):
        return {k: torch.tensor(v) for k, v in data.items()}
    return torch.as_tensor(data, dtype=torch.float)


def test_export_cse_files_have_densepose_keys_shapes_and_dtypes(tmp_path):
    mesh = icosphere(2)
    atlas = build_atlas(mesh, octant_parts(mesh))
    res = export_cse(mesh, tmp_path, name="ball_162", atlas=atlas, k=16, geodists=True)
    data = _as_densepose_reads(tmp_path / "ball_162.pkl")
    assert set(data) == {"vertices", "faces"}
    assert tuple(data["vertices"].shape) == (162, 3) and tuple(data["faces"].shape) == (320, 3)
    assert str(data["faces"].dtype) == "torch.int64"
    np.testing.assert_allclose(data["vertices"].numpy(), mesh.vertices, atol=1e-6)
    lbo = _as_densepose_reads(tmp_path / "phi_ball_162_16.pkl")
    assert set(lbo) == {"features"} and tuple(lbo["features"].shape) == (162, 16)
    tex = _as_densepose_reads(tmp_path / "texcoords_ball_162.pkl")
    assert tuple(tex.shape) == (162, 2) and float(tex.min()) >= 0 and float(tex.max()) <= 1
    geo = _as_densepose_reads(tmp_path / "geodists_ball_162.pkl")
    assert tuple(geo.shape) == (162, 162) and float(geo.diagonal().abs().max()) < 1e-6
    assert res.info["embedder"] == {"TYPE": "vertex_feature", "NUM_VERTICES": 162, "FEATURE_DIM": 16,
                                    "INIT_FILE": "phi_ball_162_16.pkl"}
    back = load_cse(tmp_path, "ball_162")
    assert np.array_equal(back["faces"], mesh.faces)
    # the basis is the mesh's eigenbasis: orthonormal for its unit-area mass
    _, phi, mass = laplacian_basis(mesh, 16)
    np.testing.assert_allclose(back["features"], phi, atol=1e-6)


def test_texcoords_put_each_chart_in_its_tile():
    mesh = icosphere(2)
    atlas = build_atlas(mesh, octant_parts(mesh))
    from densemap.charts import vertex_to_iuv

    iuv = vertex_to_iuv(np.arange(mesh.n_vertices), atlas)
    t = cse_texcoords(atlas)
    col, row = (iuv[:, 0].astype(int) - 1) // 6, (iuv[:, 0].astype(int) - 1) % 6
    np.testing.assert_allclose(t[:, 0] * 4 - col, iuv[:, 1], atol=1e-12)
    np.testing.assert_allclose(6 - t[:, 1] * 6 - row, 1 - iuv[:, 2], atol=1e-12)


def test_identity_map_transports_the_reference_basis_unchanged():
    mesh = icosphere(2)
    _, phi, mass = laplacian_basis(mesh, 12)
    n = mesh.n_vertices
    plain = VertexMap(np.arange(n), np.zeros(n))
    np.testing.assert_allclose(transport_basis(phi, plain, mesh), phi, atol=1e-9)
    # the same through surface points: each vertex as a corner of one of its faces (weight 1)
    face = np.array([np.flatnonzero((mesh.faces == i).any(axis=1))[0] for i in range(n)])
    bary = (mesh.faces[face] == np.arange(n)[:, None]).astype(float)
    surf = VertexMap(np.arange(n), np.zeros(n), faces=face, bary=bary, corners=mesh.faces[face])
    np.testing.assert_allclose(transport_basis(phi, surf, mesh), phi, atol=1e-9)


def test_transported_basis_is_orthonormal_and_follows_the_map():
    mesh = icosphere(3)
    _, phi, _ = laplacian_basis(mesh, 10)
    rng = np.random.default_rng(0)
    idx = np.arange(mesh.n_vertices)
    sel = rng.choice(mesh.n_vertices, 60, replace=False)
    idx[sel] = idx[np.roll(sel, 1)]  # 60 vertices sent to each other's places
    out = transport_basis(phi, VertexMap(idx, np.zeros(len(idx))), mesh)
    from densemap.charts.cse import _mass

    m = _mass(mesh)
    np.testing.assert_allclose(out.T @ (out * m[:, None]), np.eye(10), atol=1e-9)
    # nearly the carried functions: the orthonormalisation is a small correction
    carried = phi[idx]
    assert np.linalg.norm(out - carried) < 0.5 * np.linalg.norm(carried)
    with pytest.raises(DensemapError, match="rank-deficient"):
        transport_basis(phi, VertexMap(np.zeros(mesh.n_vertices, int), np.zeros(mesh.n_vertices)), mesh)


def test_cli_export_cse(tmp_path):
    from densemap.cli.main import main
    from densemap.mesh import save_mesh

    save_mesh(icosphere(2), tmp_path / "ball.obj")
    r = CliRunner().invoke(main, ["export-cse", str(tmp_path / "ball.obj"), "-o", str(tmp_path / "cse"), "--k", "8"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cse" / "ball_162.pkl").is_file() and (tmp_path / "cse" / "phi_ball_162_8.pkl").is_file()
    assert not (tmp_path / "cse" / "texcoords_ball_162.pkl").exists()  # no atlas given
    r = CliRunner().invoke(main, ["export-cse", str(tmp_path / "ball.obj"), "-o", str(tmp_path / "cse"),
                                  "--map", str(tmp_path / "none.npz")])
    assert r.exit_code == 1 and "--ref" in r.output
