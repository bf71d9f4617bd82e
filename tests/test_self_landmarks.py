"""The self-landmark stage: landmarks from the map's own round trips, for coarse part labels."""

import sys
from pathlib import Path

import numpy as np
import pytest

from densemap.data import reference
from densemap.geodesics import GeodesicSolver
from densemap.mapping.self_landmarks import AUTO_ROUNDS, COARSE_MAX_PARTS, landmark_rounds, map_landmarks


def test_rounds_auto_follows_the_number_of_parts():
    assert landmark_rounds("auto", 5) == AUTO_ROUNDS and landmark_rounds("auto", COARSE_MAX_PARTS) == AUTO_ROUNDS
    assert landmark_rounds("auto", 32) == 0 and landmark_rounds(2, 32) == 2 and landmark_rounds(0, 5) == 0
    for bad in (-1, 1.5, "two", True):
        with pytest.raises(ValueError, match="landmark_rounds must be 'auto' or an integer >= 0"):
            landmark_rounds(bad, 5)


def test_map_landmarks_are_spread_and_avoid_what_does_not_come_back():
    chimp = reference("chimp")
    m = chimp.mesh
    solver = GeodesicSolver(m)
    ident = np.arange(m.n_vertices)
    # the maps send the left arm's vertices back to the far end of the body: their round trip fails
    arm = np.flatnonzero(np.isin(chimp.parts.labels, [chimp.parts.index(n) for n in chimp.parts.names if "arm" in n
                                                      and n.endswith("left")]))
    assert len(arm) > 100
    b_to_a = ident.copy()
    b_to_a[arm] = np.argmin(m.vertices[:, 1])
    ref, new = map_landmarks(m, solver, ident, b_to_a, n=10)
    assert len(set(ref.tolist())) == 10 and np.array_equal(new, ref)  # a_to_b is the identity
    assert not np.isin(ref, arm).any()
    # farthest-point order: each pick is no closer to the earlier ones than any later pick is
    d = np.asarray(solver.distances(ref), dtype=np.float64)[:, ref]
    gaps = [d[k, :k].min() for k in range(1, 10)]
    assert all(a >= b - 1e-9 for a, b in zip(gaps, gaps[1:]))
    # the first is the consistent vertex farthest from the centre
    w = m.vertex_areas
    centre = (w[:, None] * m.vertices).sum(0) / w.sum()
    ok = np.setdiff1d(ident, arm)
    assert ref[0] == ok[np.argmax(np.linalg.norm(m.vertices[ok] - centre, axis=1))]


@pytest.mark.slow  # ~30 s
def test_coarse_labels_on_the_embedded_pair_gain_from_the_stage():
    """With 5 coarse parts the stage (auto: on) at least halves the ground-truth error."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from make_eval_pairs import coarse_labels

    from densemap.data import chimp_to_human_ground_truth
    from densemap.mapping import Aligner

    h, c = reference("human"), reference("chimp")
    al = Aligner(h.mesh, coarse_labels(h.parts), c.mesh, coarse_labels(c.parts))
    desc = al.descriptors()
    gt = chimp_to_human_ground_truth()
    err = {}
    for rounds in (0, "auto"):
        res = al.align(descriptors=desc, landmark_rounds=rounds, surface=False)
        err[rounds] = al.quality(res, ground_truth_b_to_a=gt, geodesic=False)["b_to_a"]["gt_error_mean"]
    assert err["auto"] < 0.5 * err[0], err
