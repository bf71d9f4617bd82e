"""IUV <-> surface points on the embedded atlases: round trips to 1e-9, background, poses, errors."""

from __future__ import annotations

import numpy as np
import pytest

import densemap
from densemap.charts import (iuv_to_surface, points_to_iuv, reference_atlas, surface_to_iuv, vertex_iuv_table,
                             vertex_to_iuv)
from densemap.data import reference
from densemap.errors import AtlasError


def _random_points(n_faces: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_faces, n), rng.dirichlet([1.0, 1.0, 1.0], n)


@pytest.mark.parametrize("species", ["human", "chimp"])
def test_surface_iuv_surface_round_trip(species):
    atlas, mesh = reference_atlas(species), reference(species).mesh
    face, bary = _random_points(atlas.n_faces, 20000, seed=1)
    iuv = surface_to_iuv(face, bary, atlas)
    assert iuv.shape == (20000, 3) and set(np.unique(iuv[:, 0])) <= set(range(1, 25))
    sp = iuv_to_surface(iuv, atlas, vertices=mesh.vertices)
    truth = np.einsum("pk,pkd->pd", bary, mesh.vertices[mesh.faces[face]])
    assert np.abs(sp.point - truth).max() < 1e-9
    assert (sp.distance == 0).all()
    # and back to the same (I, U, V)
    again = surface_to_iuv(sp.face, sp.bary, atlas)
    assert np.abs(again - iuv).max() < 1e-9


@pytest.mark.parametrize("species", ["human", "chimp"])
def test_vertex_iuv_vertex_round_trip(species):
    atlas, mesh = reference_atlas(species), reference(species).mesh
    v = np.arange(mesh.n_vertices)
    sp = iuv_to_surface(vertex_to_iuv(v, atlas), atlas, vertices=mesh.vertices)
    assert (sp.vertex == v).all()
    assert np.abs(sp.point - mesh.vertices).max() < 1e-9


def test_any_pose_gives_the_posed_point():
    atlas, mesh = reference_atlas("chimp"), reference("chimp").mesh
    face, bary = _random_points(atlas.n_faces, 500, seed=2)
    iuv = surface_to_iuv(face, bary, atlas)
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    posed = mesh.vertices @ q.T * 1.7 + [1.0, -2.0, 0.5] + 0.01 * rng.normal(size=mesh.vertices.shape)
    sp = iuv_to_surface(iuv, atlas, vertices=posed)
    assert np.abs(sp.point - np.einsum("pk,pkd->pd", bary, posed[mesh.faces[face]])).max() < 1e-9


def test_image_layouts_uint8_background_and_triples():
    atlas = reference_atlas("human")
    c, u, v = atlas.chart_coords([7, 7], [[1 / 3, 1 / 3, 1 / 3]] * 2)
    img = np.zeros((2, 3, 3), np.uint8)
    img[0, 1] = [c[0], round(u[0] * 255), round(v[0] * 255)]
    sp = iuv_to_surface(img, atlas)
    assert sp.face.shape == (2, 3) and sp.bary.shape == (2, 3, 3)
    assert (sp.face[img[..., 0] == 0] == -1).all() and sp.face[0, 1] >= 0
    assert np.isnan(sp.bary[1, 1]).all() and sp.point is None
    # three arrays of one shape work like the stacked array
    triple = iuv_to_surface((c, u, v), atlas)
    assert triple.face.tolist() == [7, 7]
    # unknown charts and NaN are background
    odd = iuv_to_surface(np.array([[30.0, 0.5, 0.5], [np.nan, 0.5, 0.5]]), atlas)
    assert odd.face.tolist() == [-1, -1] and odd.vertex.tolist() == [-1, -1]


def test_outside_uv_moves_to_the_nearest_chart_point():
    atlas = reference_atlas("chimp")
    sp = iuv_to_surface(np.array([[1.0, 0.0, 0.0]]), atlas)  # a chart corner no triangle covers
    assert sp.face[0] >= 0 and sp.distance[0] > 0 and atlas.charts[sp.face[0]] == 1


def test_seam_vertices_have_one_row_per_chart():
    atlas = reference_atlas("chimp")
    table = vertex_iuv_table(atlas)
    ids, counts = np.unique(table[:, 0].astype(int), return_counts=True)
    assert len(ids) == atlas.n_vertices and counts.max() >= 2  # seams exist
    seam = ids[np.argmax(counts)]
    rows = table[table[:, 0] == seam]
    for _, i, u, w in rows:  # each copy locates back to the same vertex
        assert iuv_to_surface(np.array([[i, u, w]]), atlas).vertex[0] == seam
    assert vertex_to_iuv([seam], atlas)[0, 0] == rows[:, 1].min()


def test_points_to_iuv_projects_onto_the_mesh():
    atlas, mesh = reference_atlas("chimp"), reference("chimp").mesh
    face, bary = _random_points(atlas.n_faces, 200, seed=4)
    x = np.einsum("pk,pkd->pd", bary, mesh.vertices[mesh.faces[face]])
    iuv, f2, b2 = points_to_iuv(x, mesh, atlas)
    back = iuv_to_surface(iuv, atlas, vertices=mesh.vertices)
    assert np.abs(back.point - x).max() < 1e-6


def test_lazy_names_and_errors():
    assert densemap.iuv_to_surface is iuv_to_surface and densemap.vertex_to_iuv is vertex_to_iuv
    atlas = reference_atlas("chimp")
    with pytest.raises(AtlasError, match=r"shape \(\.\.\., 3\)"):
        iuv_to_surface(np.zeros((4, 2)), atlas)
    with pytest.raises(AtlasError, match="vertices must have shape"):
        iuv_to_surface(np.zeros((1, 3)), atlas, vertices=np.zeros((5, 3)))
    with pytest.raises(AtlasError, match="vertex 99999 is out of range"):
        vertex_to_iuv([0, 99999], atlas)
    with pytest.raises(AtlasError, match="one shape"):
        iuv_to_surface((np.zeros(2), np.zeros(3), np.zeros(2)), atlas)
