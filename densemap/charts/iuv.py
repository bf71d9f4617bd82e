"""DensePose IUV values and mesh surface points, both ways.

A DensePose prediction gives every foreground pixel a chart ``I`` (1..24) and chart
coordinates ``(U, V)``. :func:`iuv_to_surface` turns such values into points on the mesh
the atlas belongs to (face, barycentric coordinates, nearest vertex, and the 3-D point
for any pose of the mesh); :func:`surface_to_iuv`, :func:`vertex_to_iuv` and
:func:`points_to_iuv` go back. This is what DensePose's original ``IUV2FBC`` /
``FBC2PointOnSurface`` helpers did for SMPL, for any :class:`ChartAtlas`.

Values may come as one ``(..., 3)`` array ``[I, U, V]`` or as three arrays of one shape.
Integer arrays follow DensePose's 8-bit IUV images (``U`` and ``V`` stored times 255);
float arrays hold ``U`` and ``V`` in [0, 1]. ``I = 0`` is background.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import AtlasError
from ..surface import closest_point_on_triangles, surface_positions
from .atlas import ChartAtlas

__all__ = ["SurfacePoints", "iuv_to_surface", "surface_to_iuv", "vertex_to_iuv", "vertex_iuv_table", "points_to_iuv"]


class SurfacePoints(NamedTuple):
    """Points on a mesh, one per input value (the input's shape, ``S``).

    face : S int
        Face of the atlas (``-1``: background, unknown chart or non-finite value).
    bary : S + (3,) float
        Barycentric coordinates in ``face`` (NaN where ``face == -1``).
    vertex : S int
        The face corner with the largest weight (``-1`` where ``face == -1``).
    point : S + (3,) float or None
        3-D position on the ``vertices`` given (NaN where ``face == -1``).
    distance : S float
        0 where (U, V) fell inside a triangle of its chart; else the (U, V) distance to
        the nearest point of the chart, which was taken instead (NaN where ``face == -1``).
    """

    face: np.ndarray
    bary: np.ndarray
    vertex: np.ndarray
    point: np.ndarray | None
    distance: np.ndarray


def _split_iuv(iuv, uv_scale):
    """(i, u, v) float arrays of one shape from a ``(..., 3)`` array or an (I, U, V) triple."""
    if isinstance(iuv, (tuple, list)) and len(iuv) == 3:
        arrs = [np.asarray(a) for a in iuv]
        if not (arrs[0].shape == arrs[1].shape == arrs[2].shape):
            raise AtlasError(f"I, U, V must have one shape, got {arrs[0].shape}, {arrs[1].shape}, {arrs[2].shape}")
        integer = all(a.dtype.kind in "iub" for a in arrs[1:])
        i, u, v = arrs
    else:
        a = np.asarray(iuv)
        if a.ndim < 1 or a.shape[-1] != 3:
            raise AtlasError(f"iuv must have shape (..., 3) = [I, U, V] or be an (I, U, V) triple, got shape {a.shape}")
        integer = a.dtype.kind in "iub"
        i, u, v = a[..., 0], a[..., 1], a[..., 2]
    scale = (1.0 / 255.0 if integer else 1.0) if uv_scale is None else float(uv_scale)
    i = np.asarray(i, dtype=np.float64)
    return i, np.asarray(u, dtype=np.float64) * scale, np.asarray(v, dtype=np.float64) * scale


def _positions(vertices, atlas: ChartAtlas):
    if vertices is None:
        return None
    x = np.asarray(getattr(vertices, "vertices", vertices), dtype=np.float64)
    if x.shape != (atlas.n_vertices, 3):
        raise AtlasError(f"{atlas.name}: vertices must have shape ({atlas.n_vertices}, 3) (the atlas's mesh in any pose), "
                         f"got {x.shape}")
    return x


def iuv_to_surface(iuv, atlas: ChartAtlas, *, vertices=None, uv_scale: float | None = None) -> SurfacePoints:
    """Mesh surface points of DensePose (I, U, V) values.

    Parameters
    ----------
    iuv : (..., 3) array or (I, U, V) triple of arrays of one shape
        Chart ids and chart coordinates, e.g. a predicted IUV image ``(H, W, 3)``.
    atlas : ChartAtlas
    vertices : (V, 3) float or Mesh, optional
        The atlas's mesh in any pose (same vertex order); gives ``point``.
    uv_scale : float, optional
        Multiplier of U and V (default: 1/255 for integer input, 1 for float input).

    Returns
    -------
    SurfacePoints
        Of the input's shape; background (``I = 0``), unknown charts and non-finite
        values get ``face = vertex = -1``. A (U, V) outside every triangle of its chart
        is moved to the chart's nearest point (``distance > 0``), as DensePose did.

    Examples
    --------
    A surface point to (I, U, V) and back:

    >>> import numpy as np
    >>> from densemap.charts import reference_atlas
    >>> from densemap.data import reference
    >>> atlas, mesh = reference_atlas("chimp"), reference("chimp").mesh
    >>> iuv = surface_to_iuv([10, 5000], [[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]], atlas)
    >>> sp = iuv_to_surface(iuv, atlas, vertices=mesh.vertices)
    >>> sp.face.tolist(), bool(np.allclose(sp.bary[0], [0.2, 0.3, 0.5]))
    ([10, 5000], True)
    >>> iuv_to_surface(np.zeros((2, 2, 3), np.uint8), atlas).face.tolist()  # background
    [[-1, -1], [-1, -1]]
    """
    if not isinstance(atlas, ChartAtlas):
        raise AtlasError(f"atlas must be a ChartAtlas, got {type(atlas).__name__}")
    i, u, v = _split_iuv(iuv, uv_scale)
    x = _positions(vertices, atlas)
    shape = i.shape
    ci = np.where(np.isfinite(i), np.rint(i), -1).astype(np.int64).ravel()
    loc = atlas.locate(ci, u.ravel(), v.ravel())
    ok = loc.face >= 0
    vert = -np.ones(len(ci), np.int64)
    vert[ok] = atlas.nearest_vertex(loc.face[ok], loc.bary[ok])
    point = None
    if x is not None:
        point = np.full((len(ci), 3), np.nan)
        point[ok] = surface_positions(x, atlas.faces, loc.face[ok], loc.bary[ok])
        point = point.reshape(shape + (3,))
    return SurfacePoints(loc.face.reshape(shape), loc.bary.reshape(shape + (3,)), vert.reshape(shape), point,
                         loc.distance.reshape(shape))


def surface_to_iuv(face, bary, atlas: ChartAtlas) -> np.ndarray:
    """(..., 3) float ``[I, U, V]`` of surface points ``(face (...,), bary (..., 3))`` of the atlas.

    Faces in no chart give ``I = 0`` and NaN coordinates.
    """
    face = np.asarray(face, dtype=np.int64)
    bary = np.asarray(bary, dtype=np.float64)
    if bary.shape != face.shape + (3,):
        raise AtlasError(f"{atlas.name}: bary must have shape {face.shape + (3,)}, got {bary.shape}")
    c, u, v = atlas.chart_coords(face.ravel(), bary.reshape(-1, 3))
    out = np.stack([c.astype(np.float64), u, v], axis=-1)
    out[c == 0, 1:] = np.nan
    return out.reshape(face.shape + (3,))


def vertex_iuv_table(atlas: ChartAtlas) -> np.ndarray:
    """(N, 4) float: every distinct ``(vertex, I, U, V)`` of the atlas's charted face corners.

    A vertex on a chart seam appears once per chart copy (DensePose's seam-duplicated
    vertices); rows are sorted by vertex, then chart.
    """
    on = np.flatnonzero(atlas.charts > 0)
    rows = np.c_[atlas.faces[on].reshape(-1), np.repeat(atlas.charts[on], 3), atlas.uv[on].reshape(-1, 2)]
    return np.unique(rows, axis=0)


def vertex_to_iuv(vertex, atlas: ChartAtlas) -> np.ndarray:
    """(..., 3) float ``[I, U, V]`` of mesh vertices.

    A seam vertex has one (I, U, V) per chart it belongs to; this returns the one of
    the lowest chart id (all of them: :func:`vertex_iuv_table`). A vertex in no
    charted face gets ``I = 0`` and NaN coordinates.

    Examples
    --------
    >>> from densemap.charts import reference_atlas
    >>> atlas = reference_atlas("human")
    >>> iuv = vertex_to_iuv([0, 100], atlas)
    >>> iuv_to_surface(iuv, atlas).vertex.tolist()
    [0, 100]
    """
    vertex = np.asarray(vertex, dtype=np.int64)
    if vertex.size and (vertex.min() < 0 or vertex.max() >= atlas.n_vertices):
        bad = vertex.ravel()[(vertex.ravel() < 0) | (vertex.ravel() >= atlas.n_vertices)][0]
        raise AtlasError(f"{atlas.name}: vertex {int(bad)} is out of range 0..{atlas.n_vertices - 1}")
    table = vertex_iuv_table(atlas)
    first = np.full((atlas.n_vertices, 3), np.nan)
    first[:, 0] = 0.0
    ids = table[:, 0].astype(np.int64)
    keep = np.r_[True, ids[1:] != ids[:-1]]  # sorted by vertex then chart: the lowest chart first
    first[ids[keep]] = table[keep, 1:]
    return first[vertex]


def points_to_iuv(points, mesh, atlas: ChartAtlas, *, k: int = 8, chunk: int = 8192):
    """(I, U, V) of 3-D points near a mesh: each goes to the closest point of the surface.

    The closest point is searched among the faces around the ``k`` nearest vertices of
    each point (a KD-tree), which finds it for points on or near the surface (e.g. the
    vertices of a fitted or posed copy); far-away points may get a nearby, not the
    nearest, face.

    Parameters
    ----------
    points : (P, 3) float
    mesh : Mesh
        The atlas's mesh (same vertices, any pose).
    atlas : ChartAtlas
    k : int

    Returns
    -------
    iuv : (P, 3) float
    face : (P,) int
    bary : (P, 3) float
        The surface point taken for each input point.
    """
    from scipy.spatial import cKDTree

    from ..surface import vertex_face_incidence

    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise AtlasError(f"points must have shape (P, 3), got {pts.shape}")
    if mesh.n_vertices != atlas.n_vertices:
        raise AtlasError(f"{atlas.name}: the atlas is for {atlas.n_vertices} vertices but {mesh.name} has {mesh.n_vertices}")
    x, faces = mesh.vertices, atlas.faces
    inc = vertex_face_incidence(faces, atlas.n_vertices).tocsr()
    tree = cKDTree(x)
    face = np.empty(len(pts), np.int64)
    bary = np.empty((len(pts), 3))
    for s in range(0, len(pts), chunk):
        q = pts[s : s + chunk]
        _, near = tree.query(q, k=min(k, len(x)))
        near = near.reshape(len(q), -1)
        sub = inc[near.ravel()]
        rows = np.repeat(np.arange(len(q)), np.diff(sub.indptr).reshape(len(q), -1).sum(axis=1))
        cand = sub.indices
        tri = x[faces[cand]]
        w, d2 = closest_point_on_triangles(q[rows], tri[:, 0], tri[:, 1], tri[:, 2])
        order = np.lexsort((d2, rows))
        first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
        face[s + rows[first]] = cand[first]
        bary[s + rows[first]] = w[first]
    return surface_to_iuv(face, bary, atlas), face, bary
