"""The part-standardised first match (``match_descriptors(standardize=True)``)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import icosphere

from densemap.mapping import align, match_descriptors
from densemap.mapping.matching import standardize_part
from densemap.mesh import Mesh
from densemap.parts import PartLabels


def test_standardize_part_is_centred_unit_and_affine_invariant():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(50, 5))
    w = rng.uniform(0.5, 2.0, 50)
    z = standardize_part(d, w)
    wn = w / w.sum()
    np.testing.assert_allclose(wn @ z, 0.0, atol=1e-12)
    np.testing.assert_allclose(np.sqrt(wn @ (z * z).sum(1)), 1.0)
    # a shift and a positive scale of the whole part (what different proportions do) change nothing
    np.testing.assert_allclose(standardize_part(0.3 * d + rng.normal(size=5), w), z, atol=1e-12)
    # the columns keep their relative weights: one scale for the part, not one per column
    d2 = d * np.array([1.0, 1.0, 1.0, 1.0, 10.0])
    z2 = standardize_part(d2, w)
    assert z2[:, 4].std() > 5 * z2[:, 0].std()
    # a part whose descriptors are all equal is only centred
    assert np.array_equal(standardize_part(np.ones((4, 3))), np.zeros((4, 3)))


def _pair(seed=1):
    """A source of two parts, and a target that is the source permuted with part 1's
    descriptors shifted and shrunk (a part of other proportions)."""
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(80, 4))
    lab = np.repeat([0, 1], 40)
    perm = rng.permutation(80)
    tgt = src[perm].copy()
    lt = lab[perm]
    tgt[lt == 1] = 0.5 * tgt[lt == 1] + 2.0
    truth = np.argsort(perm)  # src row i is tgt row truth[i]
    return src, lab, tgt, lt, truth


def test_standardized_match_recovers_a_shifted_and_scaled_part():
    src, lab, tgt, lt, truth = _pair()
    plain = match_descriptors(src, tgt, parts_src=lab, parts_tgt=lt, same_part=True)
    std = match_descriptors(src, tgt, parts_src=lab, parts_tgt=lt, same_part=True, standardize=True)
    # part 0 is untouched: both find it; part 1 is shifted: only the standardised match does
    assert np.array_equal(plain.indices[:40], truth[:40])
    assert (plain.indices[40:] != truth[40:]).mean() > 0.5
    assert np.array_equal(std.indices, truth)
    # the distances stay in the descriptors' own units, as with the plain match
    np.testing.assert_allclose(std.distances, np.linalg.norm(src - tgt[std.indices], axis=1))
    # weights follow the vertices: permuted with them, the answer is the same
    w = np.random.default_rng(2).uniform(0.5, 2.0, 80)
    std_w = match_descriptors(src, tgt, parts_src=lab, parts_tgt=lt, same_part=True, standardize=True,
                              weights_src=w, weights_tgt=w[np.argsort(truth)])  # tgt row j is src row perm[j]
    assert np.array_equal(std_w.indices, truth)
    with pytest.raises(ValueError, match="weights_tgt has 79 values but the descriptors have 80 rows"):
        match_descriptors(src, tgt, parts_src=lab, parts_tgt=lt, same_part=True, standardize=True, weights_tgt=w[:79])


def test_standardized_match_leaves_unlabelled_and_missing_parts_raw():
    src, lab, tgt, lt, truth = _pair()
    lab = lab.copy()
    lab[[3, 50]] = -1  # unlabelled source vertices match the raw descriptors anywhere
    free = match_descriptors(src, tgt)
    std = match_descriptors(src, tgt, parts_src=lab, parts_tgt=lt, same_part=True, standardize=True)
    assert np.array_equal(std.indices[[3, 50]], free.indices[[3, 50]])
    # a part the target lacks: raw, anywhere
    lt_missing = np.zeros_like(lt)
    std2 = match_descriptors(src, tgt, parts_src=np.repeat([0, 1], 40), parts_tgt=lt_missing, same_part=True,
                             standardize=True)
    assert np.array_equal(std2.indices[40:], free.indices[40:])
    # without same_part the flag has nothing to standardise over
    assert np.array_equal(match_descriptors(src, tgt, standardize=True).indices, free.indices)


def test_first_match_keeps_a_part_in_order_when_its_neighbour_is_stretched():
    """An elongated ellipsoid in four bands along its axis against itself with the second
    band stretched 1.8x (the bands beyond it moved along): every descriptor of the far
    bands shifts, and the plain first match follows the shift along the axis; the
    standardised one keeps each vertex at its own height (the truth is the identity)."""
    s = icosphere(4)
    va = s.vertices * np.array([1.0, 1.0, 4.0])
    z = va[:, 2]
    parts = PartLabels(np.digitize(z, [-2.0, 0.0, 2.0]), ["p0", "p1", "p2", "p3"])
    vb = va.copy()
    vb[:, 2] = np.where(z < -2, z - 1.6, np.where(z < 0, 1.8 * z, z))
    a, b = Mesh(va, s.faces, name="a"), Mesh(vb, s.faces, name="b")
    err = {}
    for std in (True, False):
        m = align(a, parts, b, parts, refine=False, surface=False, sources=4, standardize_parts=std).b_to_a.indices
        err[std] = np.abs(z[m] - z).mean()  # along the axis: around it the ellipsoid is symmetric
    assert err[True] < 0.05 and err[True] < 0.3 * err[False], err
