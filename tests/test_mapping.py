"""Tests of densemap.mapping: matching, surface points, transfer, alignment IO, quality.

Descriptors are built here from potpourri3d heat geodesics (mean distance to a few
sampled vertices of each part), so these tests do not depend on densemap.descriptors.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
from devices import DEVICES

from densemap.errors import DensemapError, PartError
from densemap.mapping import (
    Alignment,
    VertexMap,
    align,
    load_alignment,
    map_quality,
    match_descriptors,
    shared_time_step,
    surface_points,
    transfer,
)
from densemap.mesh import Mesh
from densemap.parts import PartLabels
from densemap.surface import closest_point_on_triangles


# ----------------------------------------------------------------------------- fixtures
def blob(subdivisions: int = 3) -> Mesh:
    """A bumpy ellipsoid with no symmetry (so every vertex has its own descriptor)."""
    import trimesh

    s = trimesh.creation.icosphere(subdivisions=subdivisions)
    v = s.vertices * [1.0, 0.7, 0.5]
    v = v + 0.08 * np.sin(3 * v[:, [1]] + 1) * v
    return Mesh(v, s.faces, name=f"blob{subdivisions}")


def voronoi_parts(mesh: Mesh, seeds: np.ndarray) -> PartLabels:
    d = np.linalg.norm(mesh.vertices[:, None] - seeds[None], axis=2)
    return PartLabels(d.argmin(1), [f"p{k}" for k in range(len(seeds))], source="voronoi")


def heat_descriptors(mesh: Mesh, parts: PartLabels, sources: list[np.ndarray], t_coef: float = 1.0) -> np.ndarray:
    """(V, L): mean heat-method geodesic distance to the given source vertices of each part."""
    import potpourri3d as pp

    s = pp.MeshHeatMethodDistanceSolver(np.asarray(mesh.vertices), np.asarray(mesh.faces), t_coef=t_coef)
    return np.stack([np.mean([s.compute_distance(int(i)) for i in src], axis=0) for src in sources], axis=1)


class PPSolver:
    """potpourri3d heat geodesics behind GeodesicSolver's ``.distances(sources)`` API."""

    def __init__(self, mesh: Mesh):
        import potpourri3d as pp

        self.s = pp.MeshHeatMethodDistanceSolver(np.asarray(mesh.vertices), np.asarray(mesh.faces))

    def distances(self, sources):
        return np.stack([self.s.compute_distance(int(i)) for i in sources])


@pytest.fixture(scope="module")
def setup():
    """A 642-vertex blob in 6 parts, its 1-to-4 subdivision, and descriptors on both."""
    import trimesh

    m = blob(3)
    rng = np.random.default_rng(0)
    seeds = m.vertices[rng.choice(m.n_vertices, 6, replace=False)]
    parts = voronoi_parts(m, seeds)
    # sources among the original vertices, which keep their ids in the subdivision
    sources = [rng.choice(np.flatnonzero(parts.labels == k), 12, replace=False) for k in range(parts.n_parts)]
    d = heat_descriptors(m, parts, sources)
    v2, f2 = trimesh.remesh.subdivide(m.vertices, m.faces)
    m2 = Mesh(v2, f2, name="blob3-subdivided")
    assert np.array_equal(m2.vertices[: m.n_vertices], m.vertices)
    parts2 = voronoi_parts(m2, seeds)
    # edges halve: t_coef 4 keeps the absolute time step of the coarse mesh
    d2 = heat_descriptors(m2, parts2, sources, t_coef=4.0)
    return types.SimpleNamespace(m=m, parts=parts, d=d, m2=m2, parts2=parts2, d2=d2, sources=sources)


def frac_identity(idx) -> float:
    return float((np.asarray(idx) == np.arange(len(idx))).mean())


# ----------------------------------------------------------------------------- matching
def test_identity_match(setup):
    vm = match_descriptors(setup.d, setup.d)
    assert frac_identity(vm.indices) >= 0.99
    assert np.allclose(vm.distances, 0.0)
    assert vm.n_target == setup.m.n_vertices
    assert not vm.indices.flags.writeable


def test_subdivided_copy_maps_original_vertices_to_themselves(setup):
    n = setup.m.n_vertices
    vm = match_descriptors(setup.d, setup.d2)
    assert frac_identity(vm.indices) >= 0.95
    # and the subdivision's original vertices come back too
    back = match_descriptors(setup.d2, setup.d)
    assert frac_identity(back.indices[:n]) >= 0.95


def test_same_part_restricts_matches(setup):
    d, parts = setup.d, setup.parts
    rng = np.random.default_rng(1)
    noisy = d + rng.normal(scale=0.3 * d.std(), size=d.shape)
    free = match_descriptors(noisy, d)
    assert (parts.labels[free.indices] != parts.labels).any()  # noise crosses parts
    lab = parts.labels.copy()
    unl = rng.choice(len(lab), 40, replace=False)
    lab[unl] = -1
    src_parts = PartLabels(lab, parts.names)
    vm = match_descriptors(noisy, d, parts_src=src_parts, parts_tgt=parts, same_part=True)
    ok = lab >= 0
    assert np.array_equal(parts.labels[vm.indices[ok]], lab[ok])
    # unlabelled vertices match anywhere: as without the restriction
    assert np.array_equal(vm.indices[unl], free.indices[unl])
    # raw label arrays work too
    vm2 = match_descriptors(noisy, d, parts_src=lab, parts_tgt=parts.labels, same_part=True)
    assert np.array_equal(vm.indices, vm2.indices)


def test_torch_path_equals_kdtree():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(500, 7)), rng.normal(size=(300, 7))
    ref = match_descriptors(a, b)
    got = match_descriptors(a, b, backend="torch", chunk=64)
    assert np.array_equal(got.indices, ref.indices)
    assert np.allclose(got.distances, ref.distances, rtol=1e-12)
    la, lb = rng.integers(-1, 3, 500), rng.integers(0, 3, 300)
    ref = match_descriptors(a, b, parts_src=la, parts_tgt=lb, same_part=True)
    got = match_descriptors(a, b, parts_src=la, parts_tgt=lb, same_part=True, backend="torch")
    assert np.array_equal(got.indices, ref.indices)


def test_torch_tensors_accepted():
    import torch
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(40, 4))
    got = match_descriptors(torch.as_tensor(a), torch.as_tensor(b))
    assert np.array_equal(got.indices, match_descriptors(a, b).indices)


@pytest.mark.parametrize("device", DEVICES)
def test_device_matching_equals_kdtree(device):
    # float32 candidates re-ranked in float64: the KD-tree's matches exactly, not 99.9 %
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(3000, 16)), rng.normal(size=(2000, 16))
    ref = match_descriptors(a, b)
    got = match_descriptors(a, b, device=device, backend="torch", chunk=700)
    assert np.array_equal(got.indices, ref.indices)
    assert np.allclose(got.distances, ref.distances, rtol=1e-12)
    la, lb = rng.integers(0, 4, 3000), rng.integers(0, 4, 2000)
    got = match_descriptors(a, b, parts_src=la, parts_tgt=lb, same_part=True, device=device, backend="torch")
    assert np.array_equal(lb[got.indices], la)
    assert np.array_equal(got.indices, match_descriptors(a, b, parts_src=la, parts_tgt=lb, same_part=True).indices)


@pytest.mark.parametrize("device", DEVICES)
def test_device_matching_resolves_float32_near_ties(device):
    # targets at distance 1 + j * 1e-9 from the queries: float32 sees exact ties (and so would
    # pick the lowest index), float64 and the KD-tree see the true order. Query 0 has 3 tied
    # targets (re-ranked among the float32 candidates), query 1 has 20 (more than the
    # candidates: searched again in float64).
    rng = np.random.default_rng(5)
    v = rng.normal(size=8)
    v /= np.linalg.norm(v)
    far = 5 + rng.normal(size=(300, 8))
    near3 = v * (1 + 1e-9 * np.array([3.0, 1.0, 2.0]))[:, None]
    w = np.roll(v, 1)
    near20 = 10 + w * (1 + 1e-9 * rng.permutation(20) + 1e-9)[:, None]
    tgt = np.r_[near3, far, near20]
    src = np.stack([np.zeros(8), 10 + np.zeros(8)])
    ref = match_descriptors(src, tgt)
    assert ref.indices.tolist() == [1, 303 + int(np.argmin(np.linalg.norm(near20 - 10, axis=1)))]
    d32 = np.linalg.norm(src.astype(np.float32)[:, None] - tgt.astype(np.float32)[None], axis=2)
    assert not np.array_equal(d32.argmin(1), ref.indices)  # plain float32 gets them wrong
    got = match_descriptors(src, tgt, device=device, backend="torch")
    assert np.array_equal(got.indices, ref.indices)


def test_match_validation():
    a = np.zeros((3, 2))
    with pytest.raises(ValueError, match="unknown backend 'faiss'"):
        match_descriptors(a, a, backend="faiss")
    with pytest.raises(ValueError, match="descriptors differ in length: 2 .source. vs 3"):
        match_descriptors(a, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="same_part=True needs parts_src and parts_tgt"):
        match_descriptors(a, a, same_part=True)
    bad = a.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"desc_src\[1\] is not finite"):
        match_descriptors(bad, a)
    with pytest.raises(ValueError, match="parts_src must have one label per vertex"):
        match_descriptors(a, a, parts_src=np.zeros(2, int), parts_tgt=np.zeros(3, int), same_part=True)


def test_vertexmap_validation():
    with pytest.raises(ValueError, match=r"indices\[1\] = 5 but the target has 4 vertices"):
        VertexMap([0, 5], [0.0, 0.0], n_target=4)
    with pytest.raises(ValueError, match="faces and bary must be given together"):
        VertexMap([0, 1], [0.0, 0.0], faces=[0, 0])
    with pytest.raises(ValueError, match=r"distances must have shape \(2,\)"):
        VertexMap([0, 1], [0.0])


# ----------------------------------------------------------------------------- surface points
def test_closest_point_in_descriptor_dimensions_matches_dense_sampling():
    # surface_points relies on closest_point_on_triangles beyond 3-D
    rng = np.random.default_rng(5)
    n, dim = 200, 5
    q, a, b, c = (rng.normal(size=(n, dim)) for _ in range(4))
    w, cost = closest_point_on_triangles(q, a, b, c)
    assert np.all(w >= -1e-12) and np.allclose(w.sum(1), 1)
    p = w[:, :1] * a + w[:, 1:2] * b + w[:, 2:] * c
    assert np.allclose(((p - q) ** 2).sum(1), cost)
    s = np.linspace(0, 1, 41)
    u, v = np.meshgrid(s, s)
    keep = (u + v) <= 1
    u, v = u[keep], v[keep]
    samples = (1 - u - v)[None, :, None] * a[:, None] + u[None, :, None] * b[:, None] + v[None, :, None] * c[:, None]
    brute = ((samples - q[:, None]) ** 2).sum(2).min(1)
    assert np.all(cost <= brute + 1e-12)


def test_surface_points_recover_linear_descriptors(grid):
    # descriptors = coordinates: linear over each face, so the surface point is exact
    rng = np.random.default_rng(6)
    g = grid
    f = rng.choice(g.n_faces, 30, replace=False)
    w = rng.dirichlet([1, 1, 1], size=30)
    q = np.einsum("nk,nkd->nd", w, g.vertices[g.faces[f]])
    near = match_descriptors(q, g.vertices).indices
    faces, bary, dist = surface_points(q, g.vertices, g, near)
    got = np.einsum("nk,nkd->nd", bary, g.vertices[g.faces[faces]])
    assert np.allclose(got, q, atol=1e-12)
    assert np.allclose(dist, 0, atol=1e-12)
    assert np.all(np.isin(faces, np.flatnonzero((g.faces == near[:, None, None]).any(-1).any(0))))


def test_cell_surface_points_stay_in_the_matched_vertex_cell(grid):
    """within="cell": the matched vertex keeps the largest weight (>= 0.51), and a query
    inside that cell is found exactly."""
    rng = np.random.default_rng(7)
    g = grid
    q = g.vertices[rng.choice(g.n_vertices, 40)] + rng.normal(scale=0.3, size=(40, 3)) * [1, 1, 0]
    near = match_descriptors(q, g.vertices).indices
    faces, bary, dist = surface_points(q, g.vertices, g, near, within="cell")
    ok = faces >= 0
    dominant = g.faces[faces[ok], np.argmax(bary[ok], axis=1)]
    assert np.array_equal(dominant, near[ok])
    assert (bary[ok].max(1) >= 0.51 - 1e-12).all()
    ring, _, d_ring = surface_points(q, g.vertices, g, near)
    assert (dist >= d_ring - 1e-12).all()  # a smaller search region: never closer than the one-ring
    # a point at 0.2 of an edge from a vertex, inside a face: recovered exactly
    f0 = g.faces[len(g.faces) // 2]
    w = np.array([[0.8, 0.1, 0.1]])
    p = w @ g.vertices[f0]
    faces, bary, dist = surface_points(p, g.vertices, g, f0[:1], within="cell")
    assert np.allclose(bary @ g.vertices[g.faces[faces]][0], p, atol=1e-12) and dist[0] < 1e-12
    with pytest.raises(ValueError, match="unknown within 'disk'"):
        surface_points(p, g.vertices, g, f0[:1], within="disk")


@pytest.mark.parametrize("within", ["ring", "cell"])
def test_surface_points_do_not_depend_on_the_block_size(grid, within):
    # blocks keep each source's faces together, so any size gives the same points, bit for bit
    rng = np.random.default_rng(8)
    q = rng.normal(size=(300, 12))
    t = rng.normal(size=(grid.n_vertices, 12))
    near = rng.integers(0, grid.n_vertices, 300)
    ref = surface_points(q, t, grid, near, within=within, chunk=10**9)
    for chunk in (1, 7, 100, None):
        for a, b in zip(ref, surface_points(q, t, grid, near, within=within, chunk=chunk)):
            np.testing.assert_array_equal(a, b)


def test_surface_points_of_identity_are_the_vertices(setup):
    d, m = setup.d, setup.m
    faces, bary, dist = surface_points(d, d, m, np.arange(m.n_vertices))
    corner = m.faces[faces, np.argmax(bary, axis=1)]
    assert frac_identity(corner) == 1.0
    assert np.allclose(bary.max(1), 1.0) and np.allclose(dist, 0)


# ----------------------------------------------------------------------------- transfer
def test_transfer_identity(setup):
    m, parts = setup.m, setup.parts
    al = align(m, parts, m, parts, descriptors=(setup.d, setup.d))
    ident = al.a_to_b
    assert np.array_equal(transfer(parts.labels, ident), parts.labels)
    colours = np.random.default_rng(7).random((m.n_vertices, 3))
    assert np.allclose(transfer(colours, ident), colours)
    assert np.allclose(transfer(colours, ident, surface=True), colours)
    assert np.array_equal(transfer(parts.labels, ident, surface=True), parts.labels)


def test_transfer_surface_interpolates(tetra):
    vm = VertexMap([0, 3], [0.0, 0.0], faces=[0, 3], bary=[[0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3]],
                   corners=tetra.faces[[0, 3]], n_target=4)
    vals = np.array([0.0, 1.0, 2.0, 3.0])
    got = transfer(vals, vm, surface=True)
    assert np.allclose(got, [0.3 * 2 + 0.5 * 1, 2.0])
    assert np.array_equal(transfer(np.arange(4), vm, surface=True), [0, 3])
    with pytest.raises(ValueError, match="values has 3 rows but the map's target has 4 vertices"):
        transfer(vals[:3], vm)
    with pytest.raises(ValueError, match="surface=True needs a map with surface points"):
        transfer(vals, VertexMap([0, 1], [0, 0]), surface=True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
def test_device_transfer_surface_tensors(tetra, device, dtype):
    # tensors stay on their device in their dtype; bfloat16 (no numpy twin) used to fail
    import torch

    bary = [[0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3], [1, 0, 0]]
    vm = VertexMap([0, 3, 1], [0.0, 0.0, 0.0], faces=[0, 3, -1], bary=bary, corners=tetra.faces[[0, 3, 0]], n_target=4)
    vals = np.array([[0.0, 10.0], [1.0, 11.0], [2.0, 12.0], [3.0, 13.0]])
    expect = transfer(vals, vm, surface=True)
    assert np.allclose(expect[:, 0], [0.3 * 2 + 0.5 * 1, 2.0, 1.0])  # the third: no face, its vertex
    t = torch.tensor(vals, dtype=getattr(torch, dtype), device=device)
    got = transfer(t, vm, surface=True)
    assert got.dtype == t.dtype and got.device.type == device and got.shape == (3, 2)
    tol = {"float64": 1e-12, "float32": 1e-6, "float16": 1e-2, "bfloat16": 1e-1}[dtype]
    np.testing.assert_allclose(got.double().cpu().numpy(), expect, atol=tol)
    labels = torch.tensor([5, 6, 7, 8], device=device)
    assert transfer(labels, vm, surface=True).tolist() == [5, 8, 6]
    with pytest.raises(ValueError, match="points at target vertex 3 but values has 3 rows"):
        transfer(t[:3], VertexMap([0, 3], [0.0, 0.0]))


# ----------------------------------------------------------------------------- align
def test_align_identity_with_given_descriptors(setup):
    m, parts = setup.m, setup.parts
    al = align(m, parts, m, parts, descriptors=(setup.d, setup.d))
    assert isinstance(al, Alignment)
    assert frac_identity(al.a_to_b.indices) >= 0.99 and frac_identity(al.b_to_a.indices) >= 0.99
    assert al.a_to_b.has_surface
    assert np.allclose(al.a_to_b.points(m), m.vertices)
    # refinement is on by default; the consistent refinement gives the surface points itself;
    # with this few parts the self-landmark rounds follow, and the identity survives them
    assert set(al.timings) == {"match", "refine", "landmarks"} and al.options["refine"] == "consistent"
    assert al.options["landmark_rounds"] == 3 and setup.parts.n_parts <= 12
    assert al.metadata["mesh_a"]["sha1"] == m.sha1
    assert al.part_names == parts.names
    assert al.metadata["versions"]["numpy"] == np.__version__


def test_align_renumbers_parts_and_checks_names(setup):
    m, parts = setup.m, setup.parts
    rev = parts.reorder(parts.names[::-1])
    al = align(m, parts, m, rev, descriptors=(setup.d, setup.d), same_part=True, surface=False)
    assert frac_identity(al.a_to_b.indices) >= 0.99
    assert al.parts_b.names == parts.names and np.array_equal(al.parts_b.labels, parts.labels)
    other = PartLabels(parts.labels, [f"q{k}" for k in range(parts.n_parts)], source="other")
    with pytest.raises(PartError, match="part names differ"):
        align(m, parts, m, other, descriptors=(setup.d, setup.d))
    with pytest.raises(ValueError, match="unknown refine 'icp'"):
        align(m, parts, m, parts, descriptors=(setup.d, setup.d), refine="icp")
    with pytest.raises(ValueError, match="desc_b has 5 rows"):
        align(m, parts, m, parts, descriptors=(setup.d, setup.d[:5]))


def test_align_uses_one_time_step(setup):
    from densemap.descriptors import part_descriptors
    from densemap.geodesics import default_time_step, length_scale
    from densemap.mapping import Aligner

    m, m2 = setup.m, setup.m2
    h = max(m.edge_lengths.mean(), m2.edge_lengths.mean())
    t = shared_time_step(m, m2, t_scale=2.0)
    assert t == pytest.approx(2.0 * h * h, rel=1e-9)
    aligner = Aligner(m, setup.parts, m2, setup.parts2, t_scale=2.0)
    assert aligner.solver_a.t == pytest.approx(t) and aligner.solver_b.t == pytest.approx(t)
    al = aligner.align(surface=False, weighting="area", sources=8)
    assert al.options["t"] == pytest.approx(t) and "descriptors" in al.timings
    # the descriptors came from the kept solvers: those of part_descriptors with the shared step
    np.testing.assert_allclose(al.desc_a, part_descriptors(m, setup.parts, t=t, weighting="area", sources=8))
    assert frac_identity(al.a_to_b.indices) >= 0.95
    own = Aligner(m, setup.parts, m2, setup.parts2, common_time_step=False)
    assert own.solver_a.t == pytest.approx(default_time_step(length_scale(m)))
    assert own.solver_b.t == pytest.approx(default_time_step(length_scale(m2)))
    assert "t" not in own.align(surface=False, refine=False, sources=4).options
    hm = (m.edge_lengths.sum() + m2.edge_lengths.sum()) / (len(m.edges) + len(m2.edges))
    assert shared_time_step(m, m2, length_scale="mean") == pytest.approx(hm * hm, rel=1e-9)


def test_align_quality_reuses_the_descriptor_solvers(setup):
    from densemap.mapping import Aligner

    m, parts = setup.m, setup.parts
    aligner = Aligner(m, parts, m, parts)
    al = aligner.align(descriptors=(setup.d, setup.d), refine=False)
    solvers = (aligner.solver_a, aligner.solver_b)
    q = aligner.quality(al, ground_truth_b_to_a=np.arange(m.n_vertices))
    assert (aligner.solver_a, aligner.solver_b) == solvers  # no new factorisation
    assert q["a_to_b"]["part_agreement"] == 1.0 and q["b_to_a"]["gt_error_mean"] == 0.0


def test_align_with_part_descriptors(setup):
    m, parts = setup.m, setup.parts
    al = align(m, parts, m, parts, surface=False)
    assert frac_identity(al.a_to_b.indices) >= 0.99


# ----------------------------------------------------------------------------- save / load
def test_save_load_round_trip(setup, tmp_path):
    m, parts = setup.m, setup.parts
    al = align(m, parts, m, parts, descriptors=(setup.d, setup.d))
    path = al.save(tmp_path / "al.npz")
    back = load_alignment(path, m, m)
    for key in ("a_to_b", "b_to_a"):
        x, y = getattr(al, key), getattr(back, key)
        for f in ("indices", "distances", "faces", "bary", "corners"):
            assert np.array_equal(getattr(x, f), getattr(y, f))
        assert (x.source_name, x.target_name, x.n_target) == (y.source_name, y.target_name, y.n_target)
    assert np.array_equal(back.desc_a, al.desc_a)
    assert back.part_names == al.part_names
    assert np.array_equal(back.parts_b.labels, al.parts_b.labels) and back.parts_b.names == parts.names
    assert back.options == al.options and back.metadata == al.metadata and back.timings == al.timings
    assert [p.name for p in tmp_path.iterdir()] == ["al.npz"]  # no temporary left behind


def test_load_errors(setup, tmp_path):
    m, parts = setup.m, setup.parts
    al = align(m, parts, m, parts, descriptors=(setup.d, setup.d), surface=False)
    path = al.save(tmp_path / "al.npz")
    with pytest.raises(DensemapError, match="computed for mesh_b with sha1 .* but mesh 'blob3-subdivided' has sha1"):
        load_alignment(path, m, setup.m2)
    with pytest.raises(DensemapError, match="no such alignment file"):
        load_alignment(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(DensemapError, match="cannot read alignment"):
        load_alignment(bad)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(DensemapError, match="cannot read alignment"):
        load_alignment(other)


# ----------------------------------------------------------------------------- quality
@pytest.mark.parametrize("solver", [None, "potpourri3d", "densemap"])
def test_quality_of_identity(setup, solver):
    m, parts = setup.m, setup.parts
    al = align(m, parts, m, parts, descriptors=(setup.d, setup.d))
    geodesic = solver is not None
    solver = PPSolver(m) if solver == "potpourri3d" else None  # None: GeodesicSolver
    q = map_quality(m, m, al.a_to_b, parts_a=parts, parts_b=parts, b_to_a=al.b_to_a,
                    ground_truth=np.arange(m.n_vertices), geodesic=geodesic, solver_a=solver, solver_b=solver,
                    surface=True)
    assert q["part_agreement"] == 1.0 and q["coverage"] == 1.0 and q["coverage_area"] == pytest.approx(1.0)
    for key in ("stretch_median", "stretch_p10", "stretch_p90"):
        assert q[key] == pytest.approx(1.0, abs=1e-12), key
    assert q["collapsed_edges"] == 0.0
    assert q["consistency_mean"] == 0.0 and q["consistency_median"] == 0.0
    assert q["gt_error_mean"] == pytest.approx(0.0, abs=1e-9) and q["gt_error_p90"] == pytest.approx(0.0, abs=1e-9)


def test_quality_of_shuffled_map_and_surface_ground_truth(setup):
    m = setup.m
    n = m.n_vertices
    rng = np.random.default_rng(8)
    shuffled = VertexMap(rng.permutation(n), np.zeros(n), n_target=n)
    solver = PPSolver(m)
    q = map_quality(m, m, shuffled, ground_truth=np.arange(n), solver_b=solver)
    # random points on a closed surface are about 0.4 sqrt(area) apart
    assert q["gt_error_mean"] > 0.2 and q["gt_error_median"] > 0.2
    q_euc = map_quality(m, m, shuffled, ground_truth=np.arange(n), geodesic=False)
    assert 0.5 * q["gt_error_mean"] < q_euc["gt_error_mean"] <= q["gt_error_mean"] * 1.01
    # ground truth as surface points: each vertex as a corner of one of its faces
    face_of = np.empty(n, np.int64)
    bary = np.zeros((n, 3))
    for j in range(3):
        face_of[m.faces[:, j]] = np.arange(m.n_faces)
    for i in range(n):
        bary[i, list(m.faces[face_of[i]]).index(i)] = 1.0
    ident = VertexMap(np.arange(n), np.zeros(n), n_target=n)
    q0 = map_quality(m, m, ident, ground_truth=(face_of, bary), solver_b=solver)
    assert q0["gt_error_mean"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="ground_truth vertex ids must be in"):
        map_quality(m, m, ident, ground_truth=np.full(n, n), geodesic=False)


def test_quality_collapse_and_coverage(grid):
    # everything onto vertex 0: one vertex hit, all edges collapsed, stretch 0
    n = grid.n_vertices
    vm = VertexMap(np.zeros(n, np.int64), np.zeros(n), n_target=n)
    q = map_quality(grid, grid, vm, geodesic=False)
    assert q["coverage"] == pytest.approx(1 / n)
    assert q["collapsed_edges"] == 1.0 and q["stretch_median"] == 0.0
    # vertex 0 and its one ring, by area
    ring = np.r_[0, grid.adjacency[0].indices]
    assert q["coverage_area"] == pytest.approx(grid.vertex_areas[ring].sum() / grid.area)
