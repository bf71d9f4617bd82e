"""Tests of densemap.mapping.refine: Laplacian eigenbases and ZoomOut refinement."""

from __future__ import annotations

import numpy as np
import pytest

from densemap.mapping import VertexMap, align, map_quality
from densemap.mesh import Mesh
from densemap.parts import PartLabels
from densemap.mapping.refine import clear_basis_cache, laplacian_basis, refine_map, refine_maps


def blob(subdivisions: int = 3) -> Mesh:
    """A bumpy ellipsoid with no symmetry."""
    import trimesh

    s = trimesh.creation.icosphere(subdivisions=subdivisions)
    v = s.vertices * [1.0, 0.7, 0.5]
    v = v + 0.08 * np.sin(3 * v[:, [1]] + 1) * v
    return Mesh(v, s.faces, name=f"blob{subdivisions}")


@pytest.fixture(scope="module")
def pair():
    """A blob, a vertex-permuted copy (an exact isometry), parts, descriptors and a noisy map."""
    m = blob(3)
    n = m.n_vertices
    rng = np.random.default_rng(0)
    perm = rng.permutation(n)  # B vertex j is A vertex perm[j]
    gt = np.argsort(perm)  # A vertex i is B vertex gt[i]
    mb = Mesh(m.vertices[perm], gt[m.faces], name="blob3-permuted")
    seeds = m.vertices[rng.choice(n, 6, replace=False)]
    lab = np.linalg.norm(m.vertices[:, None] - seeds[None], axis=2).argmin(1)
    parts_a = PartLabels(lab, [f"p{k}" for k in range(6)])
    parts_b = PartLabels(lab[perm], parts_a.names)
    # descriptors: Euclidean distance to each part's centroid (enough for these tests)
    cent = np.stack([m.vertices[lab == k].mean(0) for k in range(6)])
    desc_a = np.linalg.norm(m.vertices[:, None] - cent[None], axis=2)
    desc_b = desc_a[perm]
    noisy = gt.copy()
    bad = rng.random(n) < 0.2
    noisy[bad] = rng.integers(0, n, bad.sum())
    noisy_ba = perm.copy()
    bad_b = rng.random(n) < 0.2
    noisy_ba[bad_b] = rng.integers(0, n, bad_b.sum())
    return dict(
        m=m, mb=mb, gt=gt, perm=perm, parts_a=parts_a, parts_b=parts_b, desc_a=desc_a, desc_b=desc_b,
        init=VertexMap(noisy, np.zeros(n), n_target=n), init_ba=VertexMap(noisy_ba, np.zeros(n), n_target=n),
    )


FAST = dict(k_init=10, k_final=60, step=5)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Eigenbases go to a temporary cache, not the user's."""
    monkeypatch.setenv("DENSEMAP_CACHE", str(tmp_path_factory.getbasetemp() / "densemap-cache"))


def gt_error(p, vmap) -> float:
    return map_quality(p["m"], p["mb"], vmap, ground_truth=p["gt"], geodesic=False)["gt_error_mean"]


def test_basis_of_a_sphere_is_spherical_harmonics():
    import trimesh

    s = trimesh.creation.icosphere(subdivisions=3)
    m = Mesh(s.vertices, s.faces, name="sphere")
    evals, evecs, mass = laplacian_basis(m, 16)
    assert mass.sum() == pytest.approx(1.0)
    assert np.allclose(evecs.T @ (mass[:, None] * evecs), np.eye(16), atol=1e-8)
    # unit-area sphere: r^2 = 1 / (4 pi), eigenvalues l (l + 1) / r^2 with multiplicity 2l + 1
    expect = np.repeat([0, 2, 6, 12], [1, 3, 5, 7]) * 4 * np.pi
    assert evals[0] == pytest.approx(0.0, abs=1e-8)
    assert np.allclose(evals[1:], expect[1:], rtol=0.03)
    assert np.allclose(evecs[:, 0], evecs[0, 0])  # constant first eigenfunction


def test_basis_is_cached_and_grows():
    clear_basis_cache()
    m = blob(2)
    _, a, _ = laplacian_basis(m, 10)
    _, b, _ = laplacian_basis(m, 8)
    assert np.shares_memory(a, b)  # served from the cache
    _, c, _ = laplacian_basis(m, 20)
    assert np.allclose(np.abs(c[:, :5]), np.abs(a[:, :5]), atol=1e-6)
    with pytest.raises(ValueError, match="k must be in 1..161"):
        laplacian_basis(m, 500)
    with pytest.raises(ValueError, match="unknown laplacian 'fem'"):
        laplacian_basis(m, 5, laplacian="fem")


def test_sparse_eigensolver_matches_dense(monkeypatch):
    import densemap.mapping.basis as r

    m = blob(3)
    clear_basis_cache()
    e_dense, _, _ = laplacian_basis(m, 12)
    clear_basis_cache()
    monkeypatch.setattr(r, "EIGEN_DENSE_MAX_VERTICES", 10)
    e_sparse, phi, mass = laplacian_basis(m, 12, cache=False)
    clear_basis_cache()
    assert np.allclose(e_sparse, e_dense, rtol=1e-6, atol=1e-8)
    assert np.allclose(phi.T @ (mass[:, None] * phi), np.eye(12), atol=1e-8)
    for solver in ("superlu", "lobpcg"):
        e, phi, mass = laplacian_basis(m, 12, eigensolver=solver, cache=False)
        clear_basis_cache()
        assert np.allclose(e, e_dense, rtol=1e-6, atol=1e-7), solver
        assert np.allclose(phi.T @ (mass[:, None] * phi), np.eye(12), atol=1e-6), solver


def test_zoomout_repairs_noisy_map_on_isometric_pair(pair):
    before = gt_error(pair, pair["init"])
    out = refine_map(pair["m"], pair["mb"], pair["init"], **FAST)
    after = gt_error(pair, out)
    assert before > 0.02
    assert after < 0.2 * before
    assert (out.indices == pair["gt"]).mean() >= 0.95
    assert np.isnan(out.distances).all()  # no descriptors given
    assert out.n_target == pair["mb"].n_vertices


def test_zoomout_with_parts_and_descriptors(pair):
    p = pair
    out = refine_map(p["m"], p["mb"], p["init"], same_part=True, parts_a=p["parts_a"], parts_b=p["parts_b"],
                     desc_a=p["desc_a"], desc_b=p["desc_b"], desc_weight=0.5, **FAST)
    assert np.array_equal(p["parts_b"].labels[out.indices], p["parts_a"].labels)
    assert (out.indices == p["gt"]).mean() >= 0.95
    assert np.allclose(out.distances, np.linalg.norm(p["desc_a"] - p["desc_b"][out.indices], axis=1))


def test_zoomout_both_directions(pair):
    p = pair
    ab, ba = refine_maps(p["m"], p["mb"], p["init"], p["init_ba"], **FAST)
    assert (ab.indices == p["gt"]).mean() >= 0.95
    assert (ba.indices == p["perm"]).mean() >= 0.95


def test_refinement_keeps_the_identity():
    m = blob(3)
    n = m.n_vertices
    ident = VertexMap(np.arange(n), np.zeros(n), n_target=n)
    out = refine_map(m, m, ident, **FAST)
    assert (out.indices == np.arange(n)).mean() >= 0.99


def test_align_with_refinement_is_identity(pair):
    p = pair
    m, parts, d = p["m"], p["parts_a"], p["desc_a"]
    al = align(m, parts, m, parts, descriptors=(d, d), refine=True, refine_options=FAST)
    n = m.n_vertices
    assert (al.a_to_b.indices == np.arange(n)).mean() >= 0.99
    assert (al.b_to_a.indices == np.arange(n)).mean() >= 0.99
    assert "refine" in al.timings and al.a_to_b.has_surface
    assert al.options["refine"] == "consistent"


def test_refine_validation(pair):
    p = pair
    args = (p["m"], p["mb"], p["init"])
    with pytest.raises(ValueError, match="unknown method 'icp'"):
        refine_map(*args, method="icp")
    with pytest.raises(ValueError, match="need 1 <= k_init <= k_final"):
        refine_map(*args, k_init=50, k_final=20)
    with pytest.raises(ValueError, match="same_part=True needs parts_a and parts_b"):
        refine_map(*args, same_part=True)
    with pytest.raises(ValueError, match="desc_a and desc_b must be given together"):
        refine_map(*args, desc_a=p["desc_a"])
    with pytest.raises(ValueError, match="a_to_b has 3 entries"):
        refine_map(p["m"], p["mb"], VertexMap([0, 1, 2], [0, 0, 0]))
    for bad in (-0.5, float("nan")):
        with pytest.raises(ValueError, match=r"balance must be >= 0 \(0: off\), got"):
            refine_map(*args, balance=bad)
    with pytest.raises(ValueError, match="polish must be more eigenfunctions than k_final=60, got 60"):
        refine_map(*args, polish=60, **FAST)


def test_polish_step_runs_in_the_larger_basis_and_keeps_the_repair(pair):
    """The polish step's functional maps are of its own size, and it keeps (or improves) the repaired map."""
    from densemap.mapping.basis import laplacian_basis
    from densemap.mapping.consistent import consistent_zoomout

    p = pair
    _, phi_a, mass_a = laplacian_basis(p["m"], 90)
    _, phi_b, mass_b = laplacian_basis(p["mb"], 90)
    args = (phi_a, mass_a, phi_b, mass_b, p["init"].indices, p["init_ba"].indices)
    plain = consistent_zoomout(*args, k_init=10, step=5, k_final=60, balance=1.0)
    polished = consistent_zoomout(*args, k_init=10, step=5, k_final=60, polish=90, balance=1.0)
    assert plain.c_ab.shape == (60, 60) and polished.c_ab.shape == (90, 90)
    assert (polished.a_to_b == p["gt"]).mean() >= (plain.a_to_b == p["gt"]).mean() >= 0.98
    with pytest.raises(ValueError, match="polish needs k_final < polish <= the basis size"):
        consistent_zoomout(*args, k_final=60, polish=120)


def test_polish_across_parts_undoes_wrong_labels(pair):
    """B's labels wrong on a patch: with the parts kept the patch is forced into the wrong part;
    a polish step across parts (``polish_parts=False``, for rough labels) maps it right."""
    p = pair
    m, mb, perm = p["m"], p["mb"], p["perm"]
    lab_b = p["parts_b"].labels.copy()
    # the 25 B vertices of part 0 nearest to part 1 take label 1 (a boundary drawn too far)
    v = mb.vertices
    in0, in1 = np.flatnonzero(lab_b == 0), np.flatnonzero(lab_b == 1)
    d = np.linalg.norm(v[in0][:, None] - v[in1][None], axis=2).min(1)
    wrong = in0[np.argsort(d)[:25]]
    lab_b[wrong] = 1
    rough = PartLabels(lab_b, p["parts_b"].names)
    out = {}
    for keep in (True, False):
        ab, ba = refine_maps(m, mb, p["init"], p["init_ba"], same_part=True, parts_a=p["parts_a"], parts_b=rough,
                             polish=90, polish_parts=keep, **FAST)
        out[keep] = (ba.indices[wrong] == perm[wrong]).mean()
    assert out[True] == 0.0  # forced into part 1, where they are not
    assert out[False] >= 0.8, out


# ----------------------------------------------------------------------------- consistent refinement
def test_consistent_refinement_maps_the_identity_exactly(pair):
    """One mesh against itself: the identity is a fixed point, for the vertex maps and the surface points."""
    p = pair
    m, parts, d = p["m"], p["parts_a"], p["desc_a"]
    n = m.n_vertices
    ident = VertexMap(np.arange(n), np.zeros(n), n_target=n)
    for opts in ({}, {"bijective_weight": 2.0, "desc_weight": 0.5}, {"max_samples": 200}, {"balance": 1.5},
                 {"polish": 90}, {"polish": 90, "balance": 0.0, "max_samples": 200}):
        ab, ba = refine_maps(m, m, ident, ident, same_part=True, parts_a=parts, parts_b=parts, desc_a=d, desc_b=d,
                             surface=True, **FAST, **opts)
        for vm in (ab, ba):
            assert np.array_equal(vm.indices, np.arange(n)), opts
            # the surface point is the vertex itself: weight 1 on the matched corner
            w = vm.bary[np.arange(n), np.argmax(vm.corners == np.arange(n)[:, None], axis=1)]
            assert np.allclose(w, 1.0), opts


def test_consistent_refinement_repairs_a_noisy_map_and_reduces_collapse(pair):
    p = pair
    ab, ba = refine_maps(p["m"], p["mb"], p["init"], p["init_ba"], **FAST)
    assert (ab.indices == p["gt"]).mean() >= 0.98
    assert (ba.indices == p["perm"]).mean() >= 0.98
    e = p["m"].edges
    assert (ab.indices[e[:, 0]] == ab.indices[e[:, 1]]).mean() < 0.01
    # the paper's ZoomOut is still there
    zab, _ = refine_maps(p["m"], p["mb"], p["init"], p["init_ba"], method="zoomout", **FAST)
    assert (zab.indices == p["gt"]).mean() >= 0.95


def test_balanced_matching_caps_what_a_target_vertex_takes():
    """A known answer in 1-D: three sources crowd the target at 0; with room for one each they
    spread in order (the least total squared distance), with room for three they stay."""
    from densemap.mapping.within_parts import _balanced

    t = np.array([[0.0], [1.0], [2.0], [3.0]])
    q = np.array([[0.0], [0.1], [0.2], [2.9]])
    ones = np.ones(4)
    assert _balanced(q, t, None, None, ones, ones, 1.0).tolist() == [0, 1, 2, 3]
    assert _balanced(q, t, None, None, ones, ones, 3.0).tolist() == [0, 0, 0, 3]
    # within parts: the same crowd split over two parts never crosses between them
    lq, lt = np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])
    assert _balanced(q, t, lq, lt, ones, ones, 1.0).tolist() == [0, 1, 2, 3]
    # a target vertex of twice the area has room for two
    assert _balanced(q, t, None, None, ones, np.array([2.0, 1.0, 1.0, 1.0]) * 0.8, 1.0).tolist() == [0, 0, 1, 3]
    # shares count source vertices of the local size: a crowd of three thirds-of-a-vertex
    # (a densely meshed region) is worth 1.5 vertices of the 0.5 share at 0, so two may stay
    thirds = np.array([1 / 3, 1 / 3, 1 / 3, 1.0])
    assert _balanced(q, t, None, None, thirds, ones, 1.0).tolist() == [0, 0, 1, 3]


def test_label_penalty_lets_matches_cross_wrong_boundaries_with_the_caps_on(pair):
    """B's labels wrong on 10 % of its vertices: within parts every match obeys them; a small
    label penalty lets the true images across (the caps, on by default, must not hide it)."""
    p = pair
    rng = np.random.default_rng(3)
    lab = p["parts_b"].labels.copy()
    flip = rng.random(len(lab)) < 0.1
    lab[flip] = (lab[flip] + 1) % 6
    noisy_b = PartLabels(lab, p["parts_b"].names)
    opts = dict(same_part=True, parts_a=p["parts_a"], parts_b=noisy_b, **FAST)
    crossed = []
    for penalty in (0.0, 0.05):
        ab, _ = refine_maps(p["m"], p["mb"], p["init"], p["init_ba"], label_penalty=penalty, **opts)
        crossed.append(float((p["parts_a"].labels != lab[ab.indices]).mean()))
        if penalty:
            assert (ab.indices == p["gt"]).mean() > 0.95  # across the wrong boundaries, to the truth
    assert crossed[0] == 0.0 and crossed[1] > 0.05


def test_subsampled_refinement_upsamples_exactly(pair):
    """Iterating on 300 of 642 vertices still recovers the full-resolution isometry."""
    p = pair
    ab, ba = refine_maps(p["m"], p["mb"], p["init"], p["init_ba"], max_samples=300, **FAST)
    assert (ab.indices == p["gt"]).mean() >= 0.95
    assert (ba.indices == p["perm"]).mean() >= 0.95


def test_spread_samples_count_does_not_depend_on_units():
    """About n samples whatever the units of the points or of the masses (unit-area masses
    on a mesh in decimetres once gave 10k of 13k vertices when 4k were asked)."""
    from densemap.mapping.consistent import spread_samples

    m = blob(5)  # 10242 vertices
    mass = np.full(m.n_vertices, 1.0 / m.n_vertices)
    base, cell = spread_samples(m.vertices, mass, 1000)
    assert 800 <= len(base) <= 1250 and np.isclose(cell.sum(), 1.0)
    for scale, mscale in ((100.0, 1.0), (0.01, 1.0), (1.0, 1e4)):
        got, _ = spread_samples(m.vertices * scale, mass * mscale, 1000)
        assert 800 <= len(got) <= 1250, (scale, mscale, len(got))
    got, _ = spread_samples(m.vertices * 64.0, mass, 1000)  # a power of two: the same grid exactly
    assert np.array_equal(got, base)


def symmetric_blob() -> tuple[Mesh, np.ndarray]:
    """A shape mirror-symmetric in x only (bumps that depend on y and z), and the mirror partner of each vertex."""
    import trimesh
    from scipy.spatial import cKDTree

    s = trimesh.creation.icosphere(subdivisions=3)
    v = s.vertices * [1.0, 0.7, 0.5]
    v = v + 0.1 * np.sin(3 * v[:, [1]] + 1) * v + 0.08 * np.cos(4 * v[:, [2]]) * v
    mirror = cKDTree(v).query(v * [-1, 1, 1])[1]
    assert np.allclose(v[mirror], v * [-1, 1, 1], atol=1e-9)
    return Mesh(v, s.faces, name="symmetric blob"), mirror


def test_mirrored_mesh_with_mirrored_labels_is_not_flipped():
    """B = A reflected in x (an intrinsic isometry of A: vertex i <-> i), with A's labels reflected too.
    The right map follows the labels (B vertex i -> A's mirror partner of i), not the intrinsic
    isometry i -> i, which a spectral refinement cannot tell apart."""
    m, mirror = symmetric_blob()
    v = m.vertices
    names = ["front_left", "front_right", "back_left", "back_right", "top"]
    lab = np.where(v[:, 2] > 0, 0, 2) + (v[:, 0] < 0)
    lab[v[:, 1] > 0.45] = 4
    swap = np.array([1, 0, 3, 2, 4])
    mb = Mesh(v * [-1, 1, 1], m.faces[:, ::-1], name="mirrored blob")
    parts_a = PartLabels(lab, names)
    parts_b = PartLabels(swap[lab], names)  # vertex i of B lies on the other side
    # the vertices on x = 0 are "left" on A and so "right" on B: the labels are one ring off
    # there, which gives the left parts 10 % more area on A than their partners on B. The
    # area-matched basis (the default) takes that for a change of proportions and costs
    # this tiny mesh accuracy (mean error 0.005 -> 0.037), but it must not flip the map
    for same_part in (True, False):
        for area_match in (True, False):
            al = align(m, parts_a, mb, parts_b, sources=4, same_part=same_part,
                       refine_options={**FAST, "area_match": area_match})
            # B vertex i sits where A vertex mirror[i] sits
            err = np.linalg.norm(v[al.b_to_a.indices] - v[mirror], axis=1).mean()
            flipped = np.linalg.norm(v[al.b_to_a.indices] - v, axis=1).mean()
            assert err < 0.05 < flipped, (same_part, area_match, err, flipped)
            if not area_match:
                assert (al.b_to_a.indices == mirror).mean() > 0.8


# ----------------------------------------------------------------------------- the on-disk basis cache
def test_disk_cache_returns_the_same_basis(tmp_path, monkeypatch):
    monkeypatch.setenv("DENSEMAP_CACHE", str(tmp_path))
    m = blob(3)
    clear_basis_cache()
    e1, p1, m1 = laplacian_basis(m, 12)
    files = list((tmp_path / "eigenbasis").glob("*.npz"))
    assert len(files) == 1
    clear_basis_cache()  # memory gone: the next call reads the file
    e2, p2, m2 = laplacian_basis(m, 8)
    assert np.array_equal(e2, e1[:8]) and np.array_equal(p2, p1[:, :8]) and np.array_equal(m2, m1)
    clear_basis_cache()
    files[0].write_bytes(b"not an npz")  # a damaged entry is a miss, recomputed and rewritten
    e3, _, _ = laplacian_basis(m, 12)
    assert np.allclose(e3, e1)
    clear_basis_cache(disk=True)
    assert not list((tmp_path / "eigenbasis").glob("*.npz"))


def _writer(cache: str, seed: int, rounds: int) -> None:
    import os

    os.environ["DENSEMAP_CACHE"] = cache
    from densemap._cache import save_arrays

    big = np.arange(300_000, dtype=np.float64)  # 2.4 MB: a write takes a while
    for _ in range(rounds):
        save_arrays("race", {"k": 1}, {"x": big})


def test_disk_cache_survives_two_processes_writing_at_once(tmp_path, monkeypatch):
    import multiprocessing as mp

    from densemap._cache import load_arrays

    monkeypatch.setenv("DENSEMAP_CACHE", str(tmp_path))
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s, 15)) for s in range(2)]
    for pr in procs:
        pr.start()
    seen = 0
    while any(pr.is_alive() for pr in procs):
        got = load_arrays("race", {"k": 1})
        if got is not None:  # never a partial file: absent, or complete and right
            assert np.array_equal(got["x"], np.arange(300_000, dtype=np.float64))
            seen += 1
    for pr in procs:
        pr.join()
        assert pr.exitcode == 0
    assert load_arrays("race", {"k": 1}) is not None
    assert not [p for p in (tmp_path / "race").iterdir() if p.name.startswith(".")]  # no temporaries left


def _stretched_pair():
    """A blob and a copy stretched 1.8x along x (same connectivity), labelled by the same seeds."""
    m = blob(3)
    mb = Mesh(m.vertices * [1.8, 1.0, 1.0], m.faces, name="blob3-stretched")
    rng = np.random.default_rng(1)
    seeds = rng.choice(m.n_vertices, 5, replace=False)
    lab = np.linalg.norm(m.vertices[:, None] - m.vertices[seeds][None], axis=2).argmin(1)
    return m, mb, lab


def test_part_area_scale_gives_b_the_part_areas_of_a():
    from densemap.mapping.basis import part_area_scale

    m, mb, lab = _stretched_pair()
    share_a = np.bincount(lab, m.vertex_areas) / m.area
    share_b = np.bincount(lab, mb.vertex_areas) / mb.area
    assert np.abs(share_a - share_b).max() > 0.01  # the stretch changed the proportions
    f = part_area_scale(m, lab, mb, lab)
    clear_basis_cache()
    evals, phi, mass = laplacian_basis(mb, 12, mass_scale=f, cache=False)
    assert mass.sum() == pytest.approx(1.0)
    assert np.allclose(np.bincount(lab, mass), share_a, atol=1e-9)  # each part has A's share
    assert np.allclose(phi.T @ (mass[:, None] * phi), np.eye(12), atol=1e-8)
    assert evals[0] == pytest.approx(0.0, abs=1e-8)
    # a uniform scale is no change of proportions: the factors are 1
    big = Mesh(m.vertices * 3.0, m.faces, name="blob3-big")
    assert np.allclose(part_area_scale(m, lab, big, lab), 1.0)
    # unlabelled vertices and parts one mesh lacks keep 1
    lb = lab.copy()
    lb[:10] = -1
    lb[lb == 4] = 3
    g = part_area_scale(m, lab, mb, lb)
    assert np.all(g[:10] == 1.0) and not np.allclose(g[10:], 1.0)
    with pytest.raises(ValueError, match="one entry per vertex"):
        part_area_scale(m, lab[:-1], mb, lab)


def test_a_constant_mass_scale_changes_nothing_and_scaled_bases_are_cached_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("DENSEMAP_CACHE", str(tmp_path))
    m = blob(2)
    clear_basis_cache()
    e0, p0, m0 = laplacian_basis(m, 10)
    e1, p1, m1 = laplacian_basis(m, 10, mass_scale=np.full(m.n_vertices, 7.0))  # renormalised away
    assert np.allclose(e1, e0, atol=1e-9) and np.allclose(m1, m0)
    assert np.allclose(np.abs(p1[:, :4]), np.abs(p0[:, :4]), atol=1e-6)
    f = np.where(m.vertices[:, 0] > 0, 2.0, 1.0)
    e2, _, m2 = laplacian_basis(m, 10, mass_scale=f)
    assert not np.allclose(e2, e0, rtol=1e-3)  # a real change of metric
    assert np.allclose(m2, m0 * f / (m0 * f).sum())
    assert len(list((tmp_path / "eigenbasis").glob("*.npz"))) == 3  # one file per factor set
    clear_basis_cache()
    e3, _, _ = laplacian_basis(m, 10, mass_scale=f)  # read back from disk
    assert np.array_equal(e3, e2)
    for bad in (f[:-1], -f, np.full(m.n_vertices, np.nan)):
        with pytest.raises(ValueError, match="mass_scale must be"):
            laplacian_basis(m, 5, mass_scale=bad)
    zero = f.copy()
    zero[7] = 0.0
    with pytest.raises(ValueError, match=r"got 0.0 at vertex 7 \(1 such\)"):  # names the first offender
        laplacian_basis(m, 5, mass_scale=zero)


def test_area_matched_refinement_keeps_the_identity_and_only_scales_b(monkeypatch):
    import densemap.mapping.refine as r

    m, mb, lab = _stretched_pair()
    parts = PartLabels(lab, [f"p{k}" for k in range(5)])
    seen = []
    real = r.laplacian_basis

    def spy(mesh, k, **kw):
        seen.append((mesh.name, kw.get("mass_scale") is not None))
        return real(mesh, k, **kw)

    monkeypatch.setattr(r, "laplacian_basis", spy)
    n = m.n_vertices
    ident = VertexMap(np.arange(n), np.zeros(n), n_target=n)
    # the same mesh and labels on both sides: the factors are 1, the plain basis, the identity
    out, back = refine_maps(m, m, ident, ident, same_part=True, parts_a=parts, parts_b=parts, **FAST)
    assert seen == [("blob3", False), ("blob3", False)]
    assert np.array_equal(out.indices, np.arange(n)) and np.array_equal(back.indices, np.arange(n))
    seen.clear()
    # the stretched copy: only B's basis is area-matched (A's, the template's, stays cacheable),
    # and the true map (the identity: same connectivity) stays a fixed point
    out, back = refine_maps(m, mb, ident, ident, same_part=True, parts_a=parts, parts_b=parts, **FAST)
    assert seen == [("blob3", False), ("blob3-stretched", True)]
    assert (out.indices == np.arange(n)).mean() > 0.95 and (back.indices == np.arange(n)).mean() > 0.95
    seen.clear()
    refine_maps(m, mb, ident, ident, same_part=True, parts_a=parts, parts_b=parts, area_match=False, **FAST)
    assert seen == [("blob3", False), ("blob3-stretched", False)]
