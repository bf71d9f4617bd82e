"""Chart atlases: construction, (c, u, v) <-> surface round trips, loaders, surface maps."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from conftest import grid_mesh, icosphere, octant_parts
from densemap.charts import (
    AtlasError,
    ChartAtlas,
    atlas_from_uv,
    build_atlas,
    load_atlas,
    load_obj_atlas,
    load_uv_processed,
    save_atlas,
)
from densemap.mesh import Mesh
from densemap.parts import PartLabels
from densemap.surface import SurfaceMap, closest_point_on_triangles, surface_positions


@pytest.fixture(scope="module")
def sphere_atlas():
    m = icosphere(3)
    return m, build_atlas(m, octant_parts(m))


def random_surface_points(atlas, n, seed=0):
    rng = np.random.default_rng(seed)
    charted = np.flatnonzero(atlas.charts > 0)
    return rng.choice(charted, n), rng.dirichlet([1, 1, 1], n)


def check_round_trips(mesh_vertices, atlas, n=5000, tol=1e-6):
    face, bary = random_surface_points(atlas, n)
    c, u, v = atlas.chart_coords(face, bary)
    loc = atlas.locate(c, u, v)
    assert (loc.face >= 0).all() and (loc.distance == 0).all()
    c2, u2, v2 = atlas.chart_coords(loc.face, loc.bary)
    assert np.array_equal(c, c2)
    assert np.abs(u2 - u).max() < tol and np.abs(v2 - v).max() < tol
    p1 = surface_positions(mesh_vertices, atlas.faces, face, bary)
    p2 = surface_positions(mesh_vertices, atlas.faces, loc.face, loc.bary)
    assert np.abs(p1 - p2).max() < tol


# ----------------------------------------------------------------------------- geometry helpers
@pytest.mark.parametrize("dim", [2, 3])
def test_closest_point_on_triangles_matches_dense_sampling(dim):
    rng = np.random.default_rng(dim)
    n = 200
    a, b, c = (rng.normal(size=(n, dim)) for _ in range(3))
    q = 2 * rng.normal(size=(n, dim))
    w, d2 = closest_point_on_triangles(q, a, b, c)
    assert np.allclose(w.sum(1), 1) and (w >= -1e-12).all()
    s = np.linspace(0, 1, 61)
    uu, vv = np.meshgrid(s, s)
    keep = uu + vv <= 1
    W = np.c_[1 - uu[keep] - vv[keep], uu[keep], vv[keep]]  # (K, 3)
    pts = W[None, :, :1] * a[:, None] + W[None, :, 1:2] * b[:, None] + W[None, :, 2:] * c[:, None]
    brute = ((pts - q[:, None]) ** 2).sum(-1).min(1)
    assert (d2 <= brute + 1e-12).all()  # never worse than any sample
    assert np.allclose(d2, brute, atol=5e-3 * (1 + brute))


# ----------------------------------------------------------------------------- build_atlas
def test_build_atlas_octants(sphere_atlas):
    m, atlas = sphere_atlas
    assert atlas.n_charts == 8 and set(np.unique(atlas.charts)) == set(range(1, 9))
    on = atlas.uv[atlas.charts > 0]
    assert on.min() >= 0.02 - 1e-12 and on.max() <= 0.98 + 1e-12
    d = atlas.distortion
    assert d["flipped"] == 0 and d["angle"] < 1.2 and d["area"] < 2.0
    assert set(d["per_chart"]) == set(range(1, 9))
    check_round_trips(m.vertices, atlas, tol=1e-9)


@pytest.mark.parametrize("method", ["conformal", "harmonic"])
def test_build_atlas_splits_closed_and_tubular_parts(method):
    import trimesh

    sphere = icosphere(2)
    cyl = trimesh.creation.cylinder(radius=0.3, height=2.0, sections=24)
    for mesh in (sphere, Mesh(cyl.vertices, cyl.faces, name="cylinder")):
        parts = PartLabels(np.zeros(mesh.n_vertices, int), ["all"])
        atlas = build_atlas(mesh, parts, method=method)
        assert atlas.distortion["per_chart"][1]["pieces"] >= 2  # neither a sphere nor a tube is a disk
        assert atlas.distortion["flipped"] == 0
        check_round_trips(mesh.vertices, atlas, n=2000, tol=1e-9)


def test_build_atlas_rejects_bad_options(sphere_atlas):
    m, _ = sphere_atlas
    with pytest.raises(ValueError, match="unknown method 'lscm'; expected one of"):
        build_atlas(m, octant_parts(m), method="lscm")
    with pytest.raises(ValueError, match="margin"):
        build_atlas(m, octant_parts(m), margin=0.6)


# ----------------------------------------------------------------------------- locate
def test_locate_outside_goes_to_nearest_point_of_same_chart(sphere_atlas):
    _, atlas = sphere_atlas
    rng = np.random.default_rng(1)
    c = rng.integers(1, 9, 300)
    u, v = rng.random(300), rng.random(300)
    loc = atlas.locate(c, u, v)
    assert (loc.face >= 0).all()
    assert (atlas.charts[loc.face] == c).all()
    moved = loc.moved
    assert moved.any() and (~moved).any()
    c2, u2, v2 = atlas.chart_coords(loc.face, loc.bary)
    assert np.allclose(np.hypot(u2 - u, v2 - v), loc.distance, atol=1e-12)
    # independent slow path: distance to every triangle of the chart
    for k in np.flatnonzero(moved)[:40]:
        tri = atlas.uv[atlas.charts == c[k]]
        q = np.repeat([[u[k], v[k]]], len(tri), axis=0)
        _, d2 = closest_point_on_triangles(q, tri[:, 0], tri[:, 1], tri[:, 2])
        assert loc.distance[k] == pytest.approx(np.sqrt(d2.min()), abs=1e-12)


def test_locate_unknown_chart_and_nan(sphere_atlas):
    _, atlas = sphere_atlas
    loc = atlas.locate(np.array([0, 9, 3, 3]), np.array([0.5, 0.5, np.nan, 0.5]), np.array([0.5, 0.5, 0.5, 0.5]))
    assert loc.face.tolist()[:3] == [-1, -1, -1] and loc.face[3] >= 0
    with pytest.raises(AtlasError, match="1-D arrays of one length"):
        atlas.locate(np.array([1, 2]), np.array([0.5]), np.array([0.5]))


# ----------------------------------------------------------------------------- validation
def test_atlas_validation():
    f = np.array([[0, 1, 2]])
    uv = np.array([[[0, 0], [1, 0], [0, 1]]], float)
    with pytest.raises(AtlasError, match=r"faces\[0\] references vertex 2 but the mesh has 2 vertices"):
        ChartAtlas(f, [1], uv, 2)
    with pytest.raises(AtlasError, match=r"outside \[0, 1\]"):
        ChartAtlas(f, [1], uv * 1.5, 3)
    with pytest.raises(AtlasError, match=r"charts\[0\] = 5; chart ids must be in 1..4"):
        ChartAtlas(f, [5], uv, 3, n_charts=4)
    with pytest.raises(AtlasError, match=r"uv must have shape \(1, 3, 2\)"):
        ChartAtlas(f, [1], uv[:, :2], 3)
    a = ChartAtlas(f, [1], uv, 3)
    with pytest.raises(AtlasError, match=r"face\[0\] = 3 but the atlas has 1 faces"):
        a.chart_coords([3], [[1, 0, 0]])


# ----------------------------------------------------------------------------- loaders
def _uv_processed_from(atlas: ChartAtlas, path):
    """Write a synthetic UV_Processed.mat: seam-duplicated vertices, 1-based indices."""
    key = np.c_[atlas.faces.reshape(-1, 1), atlas.uv.reshape(-1, 2)]
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    scipy.io.savemat(path, {
        "All_vertices": (uniq[:, 0].astype(np.uint32) + 1)[None, :],
        "All_U_norm": uniq[:, 1:2],
        "All_V_norm": uniq[:, 2:3],
        "All_Faces": inv.reshape(-1, 3) + 1,
        "All_FaceIndices": atlas.charts[:, None].astype(np.float64),
    })
    return len(uniq)


def test_uv_processed_round_trip(tmp_path, sphere_atlas):
    m, built = sphere_atlas
    path = tmp_path / "UV_Processed.mat"
    n_dp = _uv_processed_from(built, path)
    assert n_dp > m.n_vertices  # seams duplicate vertices
    atlas = load_uv_processed(path, m)
    assert np.array_equal(atlas.faces, m.faces) and np.array_equal(atlas.charts, built.charts)
    assert np.allclose(atlas.uv, built.uv)
    check_round_trips(m.vertices, atlas, tol=1e-6)
    assert load_atlas(path, m).n_faces == m.n_faces


def test_uv_processed_errors(tmp_path, sphere_atlas):
    m, built = sphere_atlas
    path = tmp_path / "bad.mat"
    scipy.io.savemat(path, {"All_Faces": np.ones((2, 3))})
    with pytest.raises(AtlasError, match=r"missing variables \['All_FaceIndices'"):
        load_uv_processed(path)
    good = tmp_path / "UV_Processed.mat"
    _uv_processed_from(built, good)
    with pytest.raises(AtlasError, match=r"All_vertices references vertex 642 \(1-based\) but mesh grid has 121 vertices"):
        load_uv_processed(good, grid_mesh())


def test_obj_atlas(tmp_path):
    m = grid_mesh(5)
    xy = m.vertices[:, :2]
    left = xy[m.faces].mean(1)[:, 0] < 0.5
    uv = np.where(left[:, None, None], xy[m.faces] * [2, 1], (xy[m.faces] - [0.5, 0]) * [2, 1])
    uv = np.clip(uv, 0, 1)
    lines = [f"v {x} {y} {z}" for x, y, z in m.vertices]
    lines += [f"vt {a} {b}" for a, b in uv.reshape(-1, 2)]
    for name, sel in (("chart_1", left), ("chart_2", ~left)):
        lines.append(f"g {name}")
        for i in np.flatnonzero(sel):
            a, b, c = m.faces[i] + 1
            t = 3 * i + 1
            lines.append(f"f {a}/{t} {b}/{t + 1} {c}/{t + 2}")
    path = tmp_path / "charts.obj"
    path.write_text("\n".join(lines) + "\n")
    mesh, atlas = load_obj_atlas(path)
    assert atlas.n_charts == 2 and (atlas.charts[: len(m.faces)] > 0).all()
    check_round_trips(mesh.vertices, atlas, n=1000, tol=1e-9)
    with pytest.raises(AtlasError, match="has no texture coordinates"):
        atlas_from_uv(m, np.ones(m.n_faces, int))


def test_save_load_atlas(tmp_path, sphere_atlas):
    m, atlas = sphere_atlas
    p = save_atlas(atlas, tmp_path / "a.npz", store_faces=False)
    back = load_atlas(p, m)
    assert np.array_equal(back.charts, atlas.charts) and np.abs(back.uv - atlas.uv).max() < 1e-6
    check_round_trips(m.vertices, back, tol=1e-6)  # float32 (u, v): round trips are atlas-internal
    with pytest.raises(AtlasError, match="has no faces stored; pass its mesh"):
        load_atlas(p)
    other = Mesh(m.vertices * 2, m.faces, name="bigger")
    with pytest.raises(AtlasError, match="was made for a mesh with sha1"):
        load_atlas(p, other)
    with pytest.raises(AtlasError, match="unsupported atlas format '.txt'"):
        (tmp_path / "a.txt").write_text("x")
        load_atlas(tmp_path / "a.txt")


# ----------------------------------------------------------------------------- surface maps
def test_surface_map_identity_and_scaled_copy(sphere_atlas):
    m, atlas = sphere_atlas
    face, bary = random_surface_points(atlas, 3000, seed=3)
    ident = SurfaceMap(np.arange(m.n_vertices), m.vertices, m.faces, m.vertices, m.faces)
    f2, b2, d = ident.map(face, bary, prefer_face=face)
    assert np.array_equal(f2, face) and np.abs(b2 - bary).max() < 1e-12 and d.max() < 1e-12
    # a perturbed copy: mapped points land on the copy, close to the original positions
    rng = np.random.default_rng(0)
    v2 = m.vertices * (1 + 0.01 * rng.normal(size=(m.n_vertices, 1)))
    smap = SurfaceMap(np.arange(m.n_vertices), v2, m.faces, v2, m.faces)
    f3, b3, d3 = smap.map(face, bary)
    p = surface_positions(v2, m.faces, f3, b3)
    assert np.abs(p - surface_positions(v2, m.faces, face, bary)).max() < 1e-9


@pytest.mark.slow
def test_reference_atlases_round_trip():
    from densemap.charts import reference_atlas
    from densemap.data import reference_chimp, reference_human

    for species, ref in (("human", reference_human()), ("chimp", reference_chimp())):
        atlas = reference_atlas(species)
        assert atlas.n_charts == 24 and (atlas.charts > 0).all()
        check_round_trips(ref.mesh.vertices, atlas, n=20000, tol=1e-6)
