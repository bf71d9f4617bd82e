"""Geodesic distances: heat method (batched torch), potpourri3d reference, exact MMP."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import grid_mesh, icosphere
from devices import DEVICES

from densemap import _factor
from densemap._factor import cholespy_cuda_refusal, factor
from densemap.errors import DensemapError, MeshError
from densemap.geodesics import GeodesicSolver, default_time_step, geodesic_distances, length_scale
from densemap.mesh import Mesh


@pytest.fixture(scope="module")
def grid41():
    return grid_mesh(41)  # h = 1/40, 1681 vertices


@pytest.fixture(scope="module")
def sphere4():
    return icosphere(4)  # 2562 vertices, h ~ 0.0755


def two_spheres() -> Mesh:
    s = icosphere(2)
    n = len(s.vertices)
    return Mesh(np.r_[s.vertices, s.vertices + 3.0], np.r_[s.faces, s.faces + n], name="two spheres")


def arc_length(v: np.ndarray, src) -> np.ndarray:
    return np.arccos(np.clip(v[src] @ v.T, -1.0, 1.0))


def euclid(v: np.ndarray, src) -> np.ndarray:
    return np.linalg.norm(v[src][:, None] - v[None], axis=2)


# ----------------------------------------------------------------------------- accuracy
def test_grid_heat_close_to_euclidean(grid41):
    # Region compared: vertices farther than 2.5 h from the source (beyond its first
    # rings, where the heat method's smoothing dominates); the source sits in the
    # middle so the Neumann-boundary bending stays small. Measured: relative L2
    # error 2.1 %; the pointwise maximum (8 %) is at 3 h from the source.
    src = [840, 0]
    d = GeodesicSolver(grid41).distances(src)
    e = euclid(grid41.vertices, src)
    h = 1 / 40
    far = e[0] > 2.5 * h
    assert np.linalg.norm((d - e)[0, far]) / np.linalg.norm(e[0, far]) < 0.03
    assert np.abs(d - e).max() < 2 * h
    assert d[0, 840] == 0.0 and d[1, 0] == 0.0


def test_sphere_heat_close_to_arc_length(sphere4):
    # Measured: relative L2 error 0.8 % overall; pointwise < 3.5 % beyond 4 h.
    src = [0, 17, 900]
    d = GeodesicSolver(sphere4).distances(src)
    e = arc_length(sphere4.vertices, src)
    assert np.linalg.norm(d - e) / np.linalg.norm(e) < 0.03
    far = e > 4 * length_scale(sphere4)
    assert (np.abs(d - e)[far] / e[far]).max() < 0.04


@pytest.mark.parametrize("mesh", ["grid", "sphere"])
def test_heat_matches_potpourri3d(mesh, grid41, sphere4):
    # Same t = h^2, same cotan operators; measured max difference 2e-4 (grid, sphere),
    # from geometry-central regularising its Poisson matrix where we pin a vertex.
    m = grid41 if mesh == "grid" else sphere4
    src = np.arange(0, len(m.vertices), 97)
    ours = GeodesicSolver(m, laplacian="cotan").distances(src)
    ref = GeodesicSolver(m, method="potpourri3d", laplacian="cotan").distances(src)
    assert np.abs(ours - ref).max() < 1e-3 * ref.max()


def test_exact_on_grid_is_euclidean():
    pytest.importorskip("pygeodesic")
    g = grid_mesh(11)
    src = [0, 60, 120]
    d = geodesic_distances(g, src, method="exact")
    np.testing.assert_allclose(d, euclid(g.vertices, src), atol=1e-6)


def test_float32_close_to_float64(sphere4):
    # measured 2.2e-7 of the largest distance (1.3e-5 while cholespy got float32 matrix values)
    src = [0, 100]
    d64 = GeodesicSolver(sphere4).distances(src)
    d32 = GeodesicSolver(sphere4, dtype=torch.float32).distances(src)
    assert d32.dtype == np.float32
    assert np.abs(d32 - d64).max() < 2e-6 * d64.max()


def body_submesh(species: str, parts: list[str]) -> Mesh:
    """The faces of an embedded mesh whose corners all lie in ``parts``, compacted."""
    from densemap.data import reference

    r = reference(species)
    keep = np.isin(r.parts.labels, [r.parts.names.index(p) for p in parts])
    f = r.mesh.faces[keep[r.mesh.faces].all(axis=1)]
    used = np.unique(f)
    new = np.full(r.mesh.n_vertices, -1)
    new[used] = np.arange(len(used))
    return Mesh(r.mesh.vertices[used], new[f], name=f"{species} {parts[0]}...")


LEFT_ARM = ["upper_arm_front_left", "upper_arm_back_left", "lower_arm_front_left", "lower_arm_back_left",
            "hand_palm_left", "hand_back_left"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dense", [True, False])
def test_float32_on_a_body_matches_float64(device, dense):
    # The GPU algorithms (dense float32 Cholesky; cholespy's float32 solves on CUDA) on the
    # human's left arm and hand (2154 vertices; the irregular tessellation of the body, a
    # hand meshed ~10x denser than the arm). Measured max error / max distance: dense
    # float32 1.8e-4 before the float64 factor and the refinement step, 1.7e-7 after;
    # sparse (CPU cholespy) 1.3e-5 before (float32 matrix values), 1.7e-7 after.
    m = body_submesh("human", LEFT_ARM)
    src = np.arange(0, m.n_vertices, 37)
    d64 = GeodesicSolver(m).distances(src)
    d32 = GeodesicSolver(m, device=device, dense=dense, dtype=torch.float32).distances(src)
    assert np.abs(d32 - d64).max() < 2e-6 * d64.max()


@pytest.mark.slow
def test_dense_float32_on_the_chimp_matches_float64():
    # the whole embedded chimp (7049 vertices), ~25 s of dense factorisations on 2 CPU cores;
    # measured 1.4e-7 of the largest distance (3.5e-4 with float32 factors and solves)
    from densemap.data import reference

    m = reference("chimp").mesh
    src = np.arange(0, m.n_vertices, 220)
    d64 = GeodesicSolver(m).distances(src)
    d32 = GeodesicSolver(m, dense=True, dtype=torch.float32).distances(src)
    assert np.abs(d32 - d64).max() < 2e-6 * d64.max()


@pytest.mark.parametrize("kw", [dict(solver="scipy"), dict(dense=True), dict(n_threads=1), dict(laplacian="cotan")])
def test_backends_agree(sphere4, kw):
    src = [3, 1000]
    ref = GeodesicSolver(sphere4).distances(src)
    d = GeodesicSolver(sphere4, **kw).distances(src)
    assert np.abs(d - ref).max() < (1e-2 if "laplacian" in kw else 1e-9)


def test_length_scale_and_time_step(grid41):
    # 40*41*2 axis edges of length h, 40*40 diagonals of length sqrt(2) h
    h = 1 / 40
    expect = (3280 * h + 1600 * np.sqrt(2) * h) / 4880
    assert length_scale(grid41) == pytest.approx(expect)
    assert default_time_step(0.5, t_scale=2.0) == pytest.approx(0.5)
    s = GeodesicSolver(grid41, t_scale=3.0)
    assert s.t == pytest.approx(3.0 * expect**2)
    assert GeodesicSolver(grid41, t=1e-3, t_scale=3.0).t == 1e-3  # absolute t wins


def test_plain_arrays_and_tensor_output(sphere4):
    class Plain:
        vertices = np.asarray(sphere4.vertices)
        faces = np.asarray(sphere4.faces)

    d = geodesic_distances(Plain(), np.array([5]))
    assert isinstance(d, np.ndarray) and d.shape == (1, len(Plain.vertices)) and d.dtype == np.float64
    t = geodesic_distances(Plain(), [5], return_tensor=True)
    assert isinstance(t, torch.Tensor) and t.device.type == "cpu"
    np.testing.assert_allclose(t.numpy(), d)


# ----------------------------------------------------------------------------- reduce and chunks
def test_reduce_equals_weighted_sum_in_chunks(sphere4, monkeypatch):
    rng = np.random.default_rng(0)
    src = rng.choice(len(sphere4.vertices), 40, replace=False)
    w = rng.normal(size=(40, 3))
    full = GeodesicSolver(sphere4).distances(src)
    solver = GeodesicSolver(sphere4, memory_budget=1)  # placeholder, resized below
    per = solver._bytes_per_source()
    solver.memory_budget = 7.5 * per  # 7 sources per chunk -> 6 chunks
    assert solver.chunk_size() == 7
    sizes = []
    block = solver._heat_block
    monkeypatch.setattr(solver, "_heat_block", lambda s: sizes.append(len(s)) or block(s))
    out = solver.reduce(src, w, progress=True)
    assert sizes == [7] * 5 + [5]
    assert max(sizes) * per <= solver.memory_budget
    np.testing.assert_allclose(out, full.T @ w, rtol=1e-10, atol=1e-10)
    one = solver.reduce(src, w[:, 0], return_tensor=True)
    assert isinstance(one, torch.Tensor) and one.shape == (len(sphere4.vertices),)
    np.testing.assert_allclose(one.numpy(), full.T @ w[:, 0], rtol=1e-10, atol=1e-10)
    sq = solver.reduce(src, w, transform=lambda d: d * d)
    np.testing.assert_allclose(sq, (full**2).T @ w, rtol=1e-10, atol=1e-10)


def test_budget_too_small_for_one_source(sphere4):
    with pytest.raises(ValueError, match="cannot hold one source"):
        GeodesicSolver(sphere4, memory_budget=1000).distances([0])


# ----------------------------------------------------------------------------- components
@pytest.mark.parametrize("method", ["heat", "potpourri3d", "exact"])
def test_disconnected_mesh_gives_inf_across_components(method):
    if method == "exact":
        pytest.importorskip("pygeodesic")
    m = two_spheres()
    n = len(m.vertices) // 2
    d = GeodesicSolver(m, method=method).distances([0, n + 7])
    assert np.isinf(d[0, n:]).all() and np.isfinite(d[0, :n]).all()
    assert np.isinf(d[1, :n]).all() and np.isfinite(d[1, n:]).all()
    # each component alone gives the same distances
    alone = GeodesicSolver(icosphere(2), method=method).distances([0, 7])
    tol = 1e-9 if method != "potpourri3d" else 1e-3
    np.testing.assert_allclose(d[0, :n], alone[0], atol=tol)
    np.testing.assert_allclose(d[1, n:], alone[1], atol=tol)


def test_reduce_inf_only_where_weight_nonzero():
    m = two_spheres()
    n = len(m.vertices) // 2
    w = np.array([[1.0, 0.0], [0.0, -2.0]])
    out = GeodesicSolver(m).reduce([0, n + 7], w)
    d = GeodesicSolver(m).distances([0, n + 7])
    np.testing.assert_allclose(out[:n, 0], d[0, :n])
    assert np.isposinf(out[n:, 0]).all()
    assert np.isneginf(out[:n, 1]).all()
    np.testing.assert_allclose(out[n:, 1], -2 * d[1, n:])


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "sources, match",
    [
        ([0, 1, 2, 9000], r"sources\[3\] = 9000 but the mesh has 2562 vertices"),
        ([0, -1], r"sources\[1\] = -1 but the mesh has 2562 vertices"),
        ([0.0, 1.5], r"sources\[1\] = 1.5 is not an integer"),
        (np.array([0.0, 1.0]), "integer dtype"),
        ([], "empty"),
        (np.zeros((2, 2), int), "1-D"),
        ([True, False], "integer vertex indices"),
    ],
)
def test_bad_sources(sphere4, sources, match):
    solver = GeodesicSolver(sphere4)
    with pytest.raises(MeshError, match=match):
        solver.distances(sources)
    with pytest.raises(ValueError, match=match):  # MeshError is a ValueError
        solver.reduce(sources, np.ones(max(len(np.atleast_1d(sources)), 1)))


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(method="foo"), r"unknown method 'foo'; expected one of \['heat', 'potpourri3d', 'exact'\]"),
        (dict(laplacian="x"), r"unknown laplacian 'x'; expected one of \['cotan', 'robust'\]"),
        (dict(solver="x"), "unknown solver"),
        (dict(dtype=torch.float16), "unknown dtype"),
        (dict(t=-1.0), "positive"),
    ],
)
def test_bad_options(grid41, kw, match):
    with pytest.raises(ValueError, match=match):
        GeodesicSolver(grid41, **kw)


def test_bad_weights(sphere4):
    with pytest.raises(ValueError, match="weights must have shape"):
        GeodesicSolver(sphere4).reduce([0, 1], np.ones((3, 2)))


# ----------------------------------------------------------------------------- slow / cuda
@pytest.mark.slow
def test_exact_process_pool_matches_serial(sphere4):
    pytest.importorskip("pygeodesic")
    src = [0, 5, 50, 500]
    a = GeodesicSolver(sphere4, method="exact").distances(src)
    b = GeodesicSolver(sphere4, method="exact", n_jobs=2).distances(src)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, arc_length(sphere4.vertices, src), rtol=0.02, atol=1e-3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dense", [True, False])
def test_device_matches_cpu(sphere4, device, dense):
    src = np.arange(0, 2562, 11)
    cpu = GeodesicSolver(sphere4).distances(src)
    solver = GeodesicSolver(sphere4, device=device, dense=dense)
    d = solver.distances(src)  # numpy in, numpy out
    assert isinstance(d, np.ndarray)
    np.testing.assert_allclose(d, cpu, atol=1e-8)
    t = solver.distances(src, return_tensor=True)
    assert t.device.type == device
    w = np.random.default_rng(1).normal(size=(len(src), 4))
    np.testing.assert_allclose(solver.reduce(src, w), cpu.T @ w, rtol=1e-8, atol=1e-8)
    m = two_spheres()
    n = len(m.vertices) // 2
    d = GeodesicSolver(m, device=device, dense=dense).distances([0, n + 7])
    assert np.isinf(d[0, n:]).all() and np.isfinite(d[0, :n]).all()
    d32 = GeodesicSolver(sphere4, device=device, dense=dense, dtype=torch.float32).distances(src)
    assert np.abs(d32 - cpu).max() < 2e-6 * cpu.max()


# ----------------------------------------------------------------------------- cholespy on CUDA
def test_cholespy_cuda_refusal_names_the_device_and_the_fix():
    why = cholespy_cuda_refusal(1, 0, True)
    assert "cuda:1" in why and "CUDA_VISIBLE_DEVICES=1" in why and "dense=True" in why
    why = cholespy_cuda_refusal(None, 2, True)  # device="cuda" while another GPU is current
    assert "the current device is cuda:2" in why and "CUDA_VISIBLE_DEVICES=2" in why
    assert cholespy_cuda_refusal(0, 3, True) is None  # an explicit cuda:0 is device 0 whatever is current
    assert cholespy_cuda_refusal(None, 0, True) is None
    why = cholespy_cuda_refusal(0, 0, False)
    assert "libcuda.so" in why and "libcuda.so.1" in why and "LD_LIBRARY_PATH" in why


def _poisson_like(n=60):
    a = sp.diags([-1.0, 2.5, -1.0], [-1, 0, 1], shape=(n, n))
    return sp.coo_matrix(a)


def test_cholespy_refused_off_device_zero(monkeypatch):
    a = _poisson_like()
    with pytest.raises(DensemapError, match=r"cuda:1.*CUDA_VISIBLE_DEVICES=1"):
        factor(a, "cholespy", False, torch.device("cuda", 1), torch.float64)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    with pytest.raises(DensemapError, match="the current device is cuda:1"):
        factor(a, "cholespy", False, torch.device("cuda"), torch.float64)
    monkeypatch.setattr(_factor, "_libcuda_loadable", lambda: False)
    with pytest.raises(DensemapError, match="libcuda.so"):
        factor(a, "cholespy", False, torch.device("cuda", 0), torch.float64)
    # solver="auto" warns and factorises with SuperLU (CPU) instead; nothing touched CUDA
    with pytest.warns(UserWarning, match="CUDA_VISIBLE_DEVICES=1.*SuperLU"):
        solve = factor(a, "auto", False, torch.device("cuda", 1), torch.float64)
    b = torch.tensor(np.random.default_rng(0).normal(size=(60, 3)))
    x = torch.empty_like(b)
    solve(b, x)
    np.testing.assert_allclose(a @ x.numpy(), b.numpy(), atol=1e-12)


def test_cholespy_cuda_solves_always_get_128_columns():
    # cholespy reallocates its GPU scratch buffer whenever the number of right-hand sides
    # changes (478 = 128 + 128 + 128 + 94 cost two reallocations per chunk): every call is
    # padded to 128 columns. A fake cholespy solver (x = 3 b) records what it is given.
    calls = []

    class Fake:
        def solve(self, b, x):
            assert b.is_contiguous() and x.is_contiguous() and b.shape == x.shape
            calls.append(b.clone())
            x.copy_(3 * b)

    chol = _factor._Cholespy.__new__(_factor._Cholespy)
    chol.cuda, chol.solver, chol._pad = True, Fake(), None
    rng = np.random.default_rng(0)
    for c in (478, 128, 50, 300):
        calls.clear()
        b = torch.tensor(rng.normal(size=(40, c)))
        x = torch.full_like(b, np.nan)
        chol.solve(b, x)
        assert [t.shape[1] for t in calls] == [128] * (-(-c // 128))
        np.testing.assert_array_equal(x.numpy(), 3 * b.numpy())
        last = c - 128 * (len(calls) - 1)
        assert torch.all(calls[-1][:, last:] == 0)  # the padding is zeros
