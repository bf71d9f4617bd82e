"""The embedded reference meshes: closed, fully labelled, symmetric, with a valid ground truth."""

import re

import numpy as np
import pytest

from densemap.data import (
    chart_names,
    chimp_to_human_ground_truth,
    part_names,
    reference_chimp,
    reference_human,
)
from densemap.mesh import check_mesh

REFS = {"human": reference_human, "chimp": reference_chimp}


@pytest.mark.parametrize("species", REFS)
def test_single_closed_component(species):
    mesh, parts, charts = REFS[species]()
    rep = check_mesh(mesh)
    assert rep.ok, rep.summary()
    assert rep.n_components == 1
    # closed genus-0 surface: V - E + F = 2
    assert mesh.n_vertices - len(mesh.edges) + mesh.n_faces == 2


def test_different_topology():
    h, c = reference_human().mesh, reference_chimp().mesh
    assert h.n_vertices == 13380
    assert 5000 <= c.n_vertices <= 9000
    assert c.n_vertices != h.n_vertices


@pytest.mark.parametrize("species", REFS)
def test_labels_cover_every_vertex(species):
    mesh, parts, charts = REFS[species]()
    assert parts.n_parts == 32 and charts.n_parts == 24
    assert (parts.labels >= 0).all() and (charts.labels >= 0).all()
    assert (parts.counts > 0).all() and (charts.counts > 0).all()
    assert set(REFS[species]().chart_ids) == set(range(1, 25))


def _pairs(names):
    out = []
    for i, n in enumerate(names):
        if re.search(r"(left|Left)", n):
            m = n.replace("left", "right").replace("Left", "Right")
            out.append((i, names.index(m)))
    return out


@pytest.mark.parametrize("species", REFS)
def test_left_right_symmetric_sizes(species):
    mesh, parts, charts = REFS[species]()
    for labels in (parts, charts):
        pairs = _pairs(list(labels.names))
        assert len(pairs) >= 10
        for i, j in pairs:
            a, b = labels.counts[i], labels.counts[j]
            assert abs(a - b) <= 0.1 * max(a, b), (labels.names[i], a, labels.names[j], b)
    # head charts 23/24 (right/left halves) too
    assert len(_pairs(list(part_names()))) == 12


def test_chart_names_follow_densepose_numbering():
    names = chart_names()
    assert len(names) == 24
    assert "torso" in names[0].lower() and "back" in names[0].lower()
    assert "right" in names[2].lower() and "hand" in names[2].lower()
    assert "head" in names[23].lower() and "left" in names[23].lower()


def test_ground_truth_correspondence_is_valid():
    face, bary = chimp_to_human_ground_truth()
    human, chimp = reference_human().mesh, reference_chimp().mesh
    assert face.shape == (chimp.n_vertices,) and bary.shape == (chimp.n_vertices, 3)
    assert (face >= 0).all() and (face < human.n_faces).all()
    assert (bary >= -1e-9).all()
    np.testing.assert_allclose(bary.sum(1), 1.0, atol=1e-9)


def test_ground_truth_agrees_with_labels():
    """The chimp's parts were carried from the human through the ground truth: they agree almost everywhere."""
    face, bary = chimp_to_human_ground_truth()
    human, hparts, _ = reference_human()
    chimp, cparts, _ = reference_chimp()
    corner = human.faces[face, np.argmax(bary, 1)]
    agree = np.mean(hparts.labels[corner] == cparts.labels)
    assert agree > 0.95
