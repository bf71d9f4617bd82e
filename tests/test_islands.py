"""Stray part islands found and merged into what surrounds them (densemap.islands)."""

import numpy as np
import pytest

from densemap.data import reference
from densemap.islands import merge_islands
from densemap.parts import PartLabels


@pytest.fixture(scope="module")
def chimp():
    return reference("chimp")


def interior_vertex(ref, part, rings=3):
    """A vertex of ``part`` whose ``rings``-ring lies inside the part."""
    lab, adj = ref.parts.labels, ref.mesh.adjacency.tocsr()
    k = ref.parts.index(part)
    for v in np.flatnonzero(lab == k):
        ball = {int(v)}
        for _ in range(rings):
            ball |= set(adj[sorted(ball)].indices.tolist())
        if (lab[sorted(ball)] == k).all():
            return int(v), np.array(sorted(ball))
    raise AssertionError(f"no interior vertex in {part}")


def one_ring(ref, v):
    return np.r_[v, ref.mesh.adjacency.tocsr()[v].indices]


def test_clean_labels_have_no_islands(chimp):
    for species in ("human", "chimp"):
        ref = reference(species)
        fixed, report = merge_islands(ref.mesh, ref.parts)
        assert fixed is ref.parts and (report.islands, report.vertices) == (0, 0)


def test_islands_in_several_parts_go_back_to_the_labels_around_them(chimp):
    lab = chimp.parts.labels.copy()
    planted = {}
    for host, stray in (("chest", "hand_palm_left"), ("belly", "foot_sole_right"), ("upper_back", "face"),
                        ("upper_leg_front_left", "chest")):
        v, _ = interior_vertex(chimp, host)
        patch = one_ring(chimp, v)
        lab[patch] = chimp.parts.index(stray)
        planted[stray] = planted.get(stray, 0) + 1
    fixed, report = merge_islands(chimp.mesh, PartLabels(lab, chimp.parts.names))
    np.testing.assert_array_equal(fixed.labels, chimp.parts.labels)
    assert report.islands == 4 and report.per_part == planted
    assert report.vertices == int((lab != chimp.parts.labels).sum())


def test_an_island_inside_an_island_joins_the_outer_part(chimp):
    lab = chimp.parts.labels.copy()
    v, ball = interior_vertex(chimp, "belly", rings=3)
    ring2 = np.unique(np.concatenate([one_ring(chimp, u) for u in one_ring(chimp, v)]))
    lab[ring2] = chimp.parts.index("face")  # a 2-ring patch of face on the belly ...
    lab[v] = chimp.parts.index("neck")  # ... with a vertex of neck in its middle
    fixed, report = merge_islands(chimp.mesh, PartLabels(lab, chimp.parts.names))
    np.testing.assert_array_equal(fixed.labels, chimp.parts.labels)
    assert report.islands == 2


def test_two_pieces_of_comparable_size_are_left_alone(chimp):
    # both palms under one name: two pieces of one part, each a real region
    names = list(chimp.parts.names)
    lab = chimp.parts.labels.copy()
    lab[lab == names.index("hand_palm_right")] = names.index("hand_palm_left")
    lab[lab > names.index("hand_palm_right")] -= 1
    merged = PartLabels(lab, [n for n in names if n != "hand_palm_right"])
    fixed, report = merge_islands(chimp.mesh, merged)
    assert fixed is merged and report.islands == 0


def test_unlabelled_vertices_stay_unlabelled(chimp):
    lab = chimp.parts.labels.copy()
    v, _ = interior_vertex(chimp, "chest")
    lab[one_ring(chimp, v)] = -1
    parts = PartLabels(lab, chimp.parts.names)
    fixed, report = merge_islands(chimp.mesh, parts)
    assert fixed is parts and report.islands == 0


def test_max_share_is_checked(chimp):
    with pytest.raises(ValueError, match=r"max_share must be in \(0, 1\)"):
        merge_islands(chimp.mesh, chimp.parts, max_share=1.5)


def test_labels_with_islands_are_taken_for_rough_ones():
    """The Aligner treats labels with stray islands as rough (its polish step then matches across parts,
    in the plain eigenbasis): the same maps as asking for that by hand, and an override either way."""
    from conftest import icosphere, octant_parts

    from densemap.mapping import Aligner

    mesh = icosphere(3)
    clean = octant_parts(mesh)
    lab = clean.labels.copy()
    adj = mesh.adjacency.tocsr()
    v = next(v for v in np.flatnonzero(lab == 0) if (lab[adj[adj[v].indices].indices] == 0).all())
    lab[np.r_[v, adj[v].indices]] = 7  # a one-ring patch of the opposite octant
    noisy = PartLabels(lab, clean.names)
    assert Aligner(mesh, clean, mesh, clean).rough_labels is False
    assert Aligner(mesh, clean, mesh, clean, rough_labels=True).rough_labels is True
    for merge in (True, False):  # found whether or not the islands are merged
        assert Aligner(mesh, clean, mesh, noisy, merge_islands=merge).rough_labels is True
        assert Aligner(mesh, clean, mesh, noisy, merge_islands=merge, rough_labels=False).rough_labels is False
    kw = dict(sources=4, landmark_rounds=0)
    auto = Aligner(mesh, clean, mesh, noisy, merge_islands=False).align(**kw)
    by_hand = Aligner(mesh, clean, mesh, noisy, merge_islands=False, rough_labels=False).align(
        refine_options={"polish_parts": False, "area_match": False}, **kw)
    careful = Aligner(mesh, clean, mesh, noisy, merge_islands=False, rough_labels=False).align(**kw)
    assert auto.metadata["rough_labels"] is True and careful.metadata["rough_labels"] is False
    assert np.array_equal(auto.b_to_a.indices, by_hand.b_to_a.indices)
    # careful labels force the island into the far octant; rough ones let it go home
    ring = np.r_[v, adj[v].indices]
    far = np.linalg.norm(mesh.vertices[careful.b_to_a.indices[ring]] - mesh.vertices[ring], axis=1)
    near = np.linalg.norm(mesh.vertices[auto.b_to_a.indices[ring]] - mesh.vertices[ring], axis=1)
    assert far.min() > 1 and near.max() < far.min()
