"""Parts from landmarks: the landmark file, the Potts graph cut, connected parts, the transfer."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from conftest import grid_mesh, icosphere, octant_parts
from densemap.errors import DensemapError
from densemap.mapping.landmarks import Landmarks, landmark_features, load_landmarks, save_landmarks
from densemap.mapping.partcut import clean_parts, connect_parts, potts_cut
from densemap.mapping.transfer_parts import confidence_of, transfer_parts


def _energy(costs, edges, w, lab):
    return costs[np.arange(len(lab)), lab].sum() + (w * (lab[edges[:, 0]] != lab[edges[:, 1]])).sum()


def _brute(costs, edges, w):
    n, L = costs.shape
    return min(_energy(costs, edges, w, np.array(x)) for x in itertools.product(range(L), repeat=n))


@pytest.mark.parametrize("seed", range(6))
def test_potts_cut_two_labels_is_the_exact_optimum(seed):
    # with two labels an expansion move is the whole problem: one minimum cut solves it exactly
    rng = np.random.default_rng(seed)
    n = 9
    edges = np.array([(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.4])
    w = rng.random(len(edges))
    costs = rng.random((n, 2)) * 2
    lab = potts_cut(costs, edges, w)
    assert _energy(costs, edges, w, lab) == pytest.approx(_brute(costs, edges, w), abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_potts_cut_three_labels_within_the_expansion_bound(seed):
    # alpha-expansion is within a factor 2 of the optimum for Potts (Boykov, Veksler, Zabih 2001)
    rng = np.random.default_rng(seed)
    n = 7
    edges = np.array([(i, i + 1) for i in range(n - 1)] + [(0, n - 1), (1, 4)])
    w = rng.random(len(edges))
    costs = rng.random((n, 3)) * 2
    lab = potts_cut(costs, edges, w)
    best = _brute(costs, edges, w)
    e = _energy(costs, edges, w, lab)
    assert best - 1e-9 <= e <= 2 * best + 1e-9
    assert e <= _energy(costs, edges, w, costs.argmin(axis=1)) + 1e-9  # never worse than its start


def test_potts_cut_known_chain_optimum_and_fixed_vertices():
    costs = np.array([[0, 1], [0, 1], [0.6, 0.4], [0, 1], [1, 0], [1, 0]], float)
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]])
    assert potts_cut(costs, edges, np.full(5, 0.5)).tolist() == [0, 0, 0, 0, 1, 1]
    fixed = np.zeros(6, bool)
    fixed[2] = True
    start = np.array([0, 0, 1, 0, 1, 1])
    assert potts_cut(costs, edges, np.full(5, 0.5), start, fixed=fixed)[2] == 1


def test_connect_parts_gives_one_region_per_part():
    mesh = grid_mesh(9)
    x, y = mesh.vertices[:, 0], mesh.vertices[:, 1]
    lab = (x > 0.5).astype(int)
    island = (np.abs(x - 0.125) < 0.01) & (np.abs(y - 0.5) < 0.01)  # a lone vertex of part 1 inside part 0
    lab[island] = 1
    out = connect_parts(mesh, lab, n_parts=2)
    assert out[island].tolist() == [0]
    assert np.array_equal(out[~island], lab[~island])


def test_clean_parts_removes_noise_on_a_sphere():
    mesh = icosphere(3)
    truth = octant_parts(mesh).labels
    rng = np.random.default_rng(0)
    costs = np.ones((mesh.n_vertices, 8))
    costs[np.arange(mesh.n_vertices), truth] = 0.0
    noisy = rng.random(mesh.n_vertices) < 0.1
    costs[noisy] = rng.random((noisy.sum(), 8))  # 10% of the vertices get random costs
    out = clean_parts(mesh, costs, smoothness=0.3)
    assert (out == truth).mean() > 0.97
    from scipy.sparse.csgraph import connected_components

    A = mesh.adjacency.tocsr()
    for k in range(8):
        idx = np.flatnonzero(out == k)
        assert connected_components(A[idx][:, idx], directed=False)[0] == 1


def test_identity_landmarks_give_the_mesh_its_own_parts_exactly():
    mesh = icosphere(3)
    parts = octant_parts(mesh)
    ids = np.arange(0, mesh.n_vertices, 50)
    out = transfer_parts(mesh, parts, mesh, Landmarks(ids, ids), iterations=0, smoothness=0.0)
    assert np.array_equal(out.parts.labels, parts.labels)
    assert out.parts.names == parts.names
    assert set(out.per_part) == set(parts.names) and out.history[0]["stage"] == "bootstrap"
    assert ((out.confidence >= 0) & (out.confidence <= 1)).all()


@pytest.mark.parametrize("n", [6, 10])
def test_dense_stage_beats_the_landmark_bootstrap_on_a_stretched_sphere(n):
    # octants of a sphere carried to a finer, anisotropically stretched sphere: the true
    # octant of a vertex is the sign pattern of its coordinates (stretching along the axes
    # keeps it), so the agreement is known exactly
    from scipy.spatial import cKDTree

    from densemap.mesh import Mesh

    ref = icosphere(3)
    fine = icosphere(4)
    new = Mesh(fine.vertices * np.array([1.6, 1.0, 0.7]), fine.faces)
    truth = octant_parts(fine).labels
    ids = np.random.default_rng(0).choice(ref.n_vertices, n, replace=False)
    lm = Landmarks(ids, cKDTree(fine.vertices).query(ref.vertices[ids])[1])
    area = new.vertex_areas / new.area
    boot = transfer_parts(ref, octant_parts(ref), new, lm, dense=False)
    dense = transfer_parts(ref, octant_parts(ref), new, lm, basis=60)
    assert [h["stage"] for h in dense.history] == ["bootstrap", "dense map"]
    acc_boot, acc_dense = area @ (boot.parts.labels == truth), area @ (dense.parts.labels == truth)
    assert acc_dense > acc_boot + 0.01 and acc_dense > 0.9
    assert np.array_equal(dense.parts.labels[lm.new], octant_parts(ref).labels[lm.ref])  # landmarks keep their part


def test_landmark_features_are_rotation_invariant():
    # a flat convex grid: no cut locus, so every distance has a gradient away from its source
    mesh = grid_mesh(15)
    from densemap.mesh import Mesh

    c, s = np.cos(0.7), np.sin(0.7)
    rot = Mesh(mesh.vertices @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]]).T + 3.0, mesh.faces)
    ids = [0, 30, 112, 200]
    a, b = landmark_features(mesh, ids), landmark_features(rot, ids)
    np.testing.assert_allclose(a, b, atol=1e-8)
    mirror = Mesh(mesh.vertices * [-1, 1, 1], mesh.faces[:, ::-1])  # a reflection flips the sides only
    m = landmark_features(mirror, ids)
    np.testing.assert_allclose(m[:, :4], a[:, :4], atol=1e-8)
    np.testing.assert_allclose(m[:, 4:], -a[:, 4:], atol=1e-8)


def test_confidence_is_zero_where_the_label_is_not_the_cheapest():
    costs = np.array([[0.0, 2.0], [1.0, 0.0]])
    conf = confidence_of(costs, np.array([0, 0]))
    assert conf[0] == pytest.approx(1 - np.exp(-2)) and conf[1] == 0.0


def test_landmark_file_round_trip_and_errors(tmp_path):
    mesh = icosphere(2)
    lm = Landmarks(np.array([1, 5, 9]), np.array([2, 6, 10]))
    p = save_landmarks(lm, tmp_path / "l.json")
    back = load_landmarks(p, mesh, mesh)
    assert back.ref.tolist() == [1, 5, 9] and back.new.tolist() == [2, 6, 10]
    pts = tmp_path / "pts.json"
    pts.write_text(json.dumps({"points": [[mesh.vertices[k].tolist(), mesh.vertices[k + 1].tolist()] for k in (3, 7, 11)]}))
    snapped = load_landmarks(pts, mesh, mesh)
    assert snapped.ref.tolist() == [3, 7, 11] and snapped.new.tolist() == [4, 8, 12]
    bad = tmp_path / "bad.json"
    for content, match in ((json.dumps({"pairs": [[0, 1], [2, 3]]}), "need at least 3"),
                           (json.dumps({"pairs": [[0, 1], [2, 3], [4, 10**6]]}), r"pairs\[2\]: new vertex 1000000"),
                           (json.dumps({"pairs": [[0, 1], [0, 3], [4, 5]]}), "uses reference vertex 0 again"),
                           (json.dumps({"nothing": 1}), "expected"), ("{", "invalid JSON")):
        bad.write_text(content)
        with pytest.raises(DensemapError, match=match):
            load_landmarks(bad, mesh, mesh)


def test_cli_transfer_parts_help_names_the_library_defaults():
    # the options default to None (the library decides); the help must say what that is
    from click.testing import CliRunner

    from densemap.cli.main import main
    from densemap.mapping.transfer_parts import DENSE_BASIS, DENSE_SMOOTHNESS

    out = " ".join(CliRunner().invoke(main, ["transfer-parts", "--help"]).output.split())
    assert f"default: ({DENSE_BASIS}, the library's DENSE_BASIS)" in out
    assert f"default: ({DENSE_SMOOTHNESS}, the library's DENSE_SMOOTHNESS)" in out


def test_cli_transfer_parts_on_a_mesh_with_itself(tmp_path):
    from click.testing import CliRunner

    from densemap.cli.main import main
    from densemap.mesh import save_mesh
    from densemap.parts import load_parts, save_parts

    mesh = icosphere(3)
    parts = octant_parts(mesh)
    save_mesh(mesh, tmp_path / "s.obj")
    save_parts(parts, tmp_path / "p.json")
    ids = np.arange(0, mesh.n_vertices, 40)
    save_landmarks(Landmarks(ids, ids), tmp_path / "l.json")
    out = tmp_path / "new.json"
    r = CliRunner().invoke(main, ["transfer-parts", str(tmp_path / "s.obj"), str(tmp_path / "s.obj"), "--landmarks",
                                  str(tmp_path / "l.json"), "--ref-parts", str(tmp_path / "p.json"), "-o", str(out),
                                  "--iterations", "0", "--basis", "40"])
    assert r.exit_code == 0, r.output
    assert "octant0" in r.output and "dense map" in r.output and (tmp_path / "new.json.report.json").is_file()
    got = load_parts(out, mesh).reorder(parts.names)
    assert (got.labels == parts.labels).mean() > 0.97
    r = CliRunner().invoke(main, ["transfer-parts", str(tmp_path / "s.obj"), str(tmp_path / "s.obj"), "--landmarks",
                                  str(tmp_path / "missing.json"), "--ref-parts", str(tmp_path / "p.json"), "-o", str(out)])
    assert r.exit_code == 1 and "missing.json" in r.output and "Traceback" not in r.output
