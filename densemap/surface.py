"""Surface points and carrying them from one mesh to another through a vertex map.

A surface point is a face index and barycentric coordinates in that face. A
:class:`~densemap.mapping.VertexMap` sends vertices to vertices (or to surface points);
:class:`SurfaceMap` extends it to any surface point: interpolate the mapped positions of
the face's three corners, then re-project onto the target surface among the faces
around the three mapped vertices.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["closest_point_on_triangles", "closest_point_from_edges", "vertex_face_incidence", "surface_positions", "SurfaceMap"]


def closest_point_on_triangles(points, a, b, c) -> tuple[np.ndarray, np.ndarray]:
    """Closest point to each query on its triangle, in any dimension.

    Parameters
    ----------
    points : (P, D) float
    a, b, c : (P, D) float
        Corners of the triangle of each query.

    Returns
    -------
    bary : (P, 3) float
        Barycentric coordinates of the closest point (non-negative, summing to 1).
    sqdist : (P,) float
        Squared distance from the query to that point.

    Notes
    -----
    Ericson, *Real-Time Collision Detection*, 5.1.5 (Voronoi regions of the corners,
    then of the edges, then the interior), written with dot products only so that it
    works in 2-D and 3-D alike. Degenerate triangles fall to the edge regions.
    """
    q = np.asarray(points, dtype=np.float64)
    a, b, c = (np.asarray(x, dtype=np.float64) for x in (a, b, c))
    w, _ = closest_point_from_edges(q - a, b - a, c - a)
    p = w[:, :1] * a + w[:, 1:2] * b + w[:, 2:] * c  # the distance directly: exact near 0
    return w, np.einsum("ij,ij->i", p - q, p - q)


def closest_point_from_edges(ap, ab, ac) -> tuple[np.ndarray, np.ndarray]:
    """:func:`closest_point_on_triangles` from the query and the two edges, each relative to
    the first corner ``a``: ``ap = p - a``, ``ab = b - a``, ``ac = c - a`` (each (P, D)).

    Ericson's six dot products are formed from ``ab.ap``, ``ac.ap`` and the edges' Gram
    matrix (``bp = ap - ab``, ``cp = ap - ac``), and the squared distance by expanding
    ``|ap - v ab - w ac|^2``: 6 passes over the (P, D) arrays (9 with the differences)
    instead of 18, which matters in the 100-dimensional descriptor spaces of the
    surface-point refinement. The expansion rounds to ``eps * |ap|^2`` (so a distance
    near 0 comes out near ``sqrt(eps) |ap|``); it is clamped at 0. Good for ranking
    candidates; recompute the distance of the winner directly where it must be exact.
    """
    ap, ab, ac = (np.asarray(x, dtype=np.float64) for x in (ap, ab, ac))
    d1 = np.einsum("ij,ij->i", ab, ap)
    d2 = np.einsum("ij,ij->i", ac, ap)
    bb = np.einsum("ij,ij->i", ab, ab)
    bc = np.einsum("ij,ij->i", ab, ac)
    cc = np.einsum("ij,ij->i", ac, ac)
    pp = np.einsum("ij,ij->i", ap, ap)
    d3, d4, d5, d6 = d1 - bb, d2 - bc, d1 - bc, d2 - cc
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    n = len(ap)
    w = np.empty((n, 3))
    with np.errstate(divide="ignore", invalid="ignore"):
        s = va + vb + vc
        v_in = vb / s
        w_in = vc / s
        w[:, 0], w[:, 1], w[:, 2] = 1.0 - v_in - w_in, v_in, w_in
        # edges, lowest priority first (later assignments win, as in Ericson's order)
        m = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
        t = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        w[m] = np.c_[np.zeros(m.sum()), 1 - t[m], t[m]]
        m = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
        t = d2 / (d2 - d6)
        w[m] = np.c_[1 - t[m], np.zeros(m.sum()), t[m]]
        m = (d6 >= 0) & (d5 <= d6)
        w[m] = (0.0, 0.0, 1.0)
        m = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
        t = d1 / (d1 - d3)
        w[m] = np.c_[1 - t[m], t[m], np.zeros(m.sum())]
        m = (d3 >= 0) & (d4 <= d3)
        w[m] = (0.0, 1.0, 0.0)
        m = (d1 <= 0) & (d2 <= 0)
        w[m] = (1.0, 0.0, 0.0)
    bad = ~np.isfinite(w).all(axis=1)
    if bad.any():  # fully degenerate triangle (a point): its first corner
        w[bad] = (1.0, 0.0, 0.0)
    v, u = w[:, 1], w[:, 2]
    d2min = pp - 2 * (v * d1 + u * d2) + v * v * bb + 2 * v * u * bc + u * u * cc
    return w, np.maximum(d2min, 0.0)


def vertex_face_incidence(faces, n_vertices: int) -> sp.csr_matrix:
    """(V, F) sparse: row ``v`` lists the faces that use vertex ``v``."""
    f = np.asarray(faces, dtype=np.int64)
    return sp.csr_matrix(
        (np.ones(f.size, np.int8), (f.ravel(), np.repeat(np.arange(len(f)), 3))), shape=(n_vertices, len(f))
    )


def surface_positions(vertices, faces, face, bary) -> np.ndarray:
    """(P, 3) float: positions of surface points ``(face, bary)`` on a mesh."""
    v = np.asarray(vertices)
    tri = v[np.asarray(faces)[face]]
    return np.einsum("pk,pkd->pd", np.asarray(bary, dtype=np.float64), tri)


class SurfaceMap:
    """Carry surface points of a source mesh to a target surface through a vertex map.

    Parameters
    ----------
    indices : (V_src,) int
        Target vertex of each source vertex (``VertexMap.indices``).
    positions : (V_src, 3) float
        Mapped position of each source vertex on the target (``VertexMap.points(target)``:
        the map's surface points where it has them).
    source_faces : (F_src, 3) int
        The source triangles that surface points refer to.
    target_vertices : (V_tgt, 3) float
    target_faces : (F_tgt, 3) int
        The target surface (e.g. the faces of a :class:`~densemap.charts.ChartAtlas`).
    face_labels : (F_tgt,) int, optional
        A label per target face (e.g. its chart) used to break ties, see :meth:`map`.

    Notes
    -----
    A source point ``sum_k w_k x_k`` goes to ``sum_k w_k m(x_k)`` (the mapped corner
    positions), then to the closest point on the target faces around the three mapped
    corner vertices (their one-rings, listed once per source face). Each candidate is
    first tested by projecting onto its plane; the nearest candidate whose projection
    falls inside wins, and only points with no such candidate get the full
    point-triangle distance to every candidate. Points whose corners map onto the
    target's vertices exactly (an identity map) therefore come back unchanged.
    """

    def __init__(self, indices, positions, source_faces, target_vertices, target_faces, *, face_labels=None):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.positions = np.asarray(positions, dtype=np.float64)
        self.source_faces = np.asarray(source_faces, dtype=np.int64)
        self.vertices = np.asarray(target_vertices, dtype=np.float64)
        self.faces = np.asarray(target_faces, dtype=np.int64)
        if self.positions.shape != (len(self.indices), 3):
            raise ValueError(f"positions must have shape ({len(self.indices)}, 3), got {self.positions.shape}")
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= len(self.vertices)):
            raise ValueError(f"indices must be target vertices in 0..{len(self.vertices) - 1}")
        if self.source_faces.size and self.source_faces.max() >= len(self.indices):
            raise ValueError(f"source_faces reference vertex {int(self.source_faces.max())} but the map has {len(self.indices)}")
        self.face_labels = None if face_labels is None else np.asarray(face_labels, dtype=np.int64)
        diag = float(np.linalg.norm(self.vertices.max(0) - self.vertices.min(0))) if len(self.vertices) else 1.0
        self._tie = (1e-9 * max(diag, 1e-300)) ** 2
        self._candidates()
        self._planes()

    def _candidates(self) -> None:
        """CSR (per source face) of the target faces around its three mapped corners, each once."""
        inc = vertex_face_incidence(self.faces, len(self.vertices))
        indptr, ring = inc.indptr.astype(np.int64), inc.indices.astype(np.int64)
        self._ring_ptr, self._ring = indptr, ring
        tv = self.indices[self.source_faces].ravel()  # (3 F_src,)
        ln = indptr[tv + 1] - indptr[tv]
        owner = np.repeat(np.repeat(np.arange(len(self.source_faces)), 3), ln)
        fid = ring[np.arange(ln.sum()) + np.repeat(indptr[tv] - (np.cumsum(ln) - ln), ln)]
        key = np.unique(owner * len(self.faces) + fid)
        owner, fid = key // max(len(self.faces), 1), key % max(len(self.faces), 1)
        self._cand_ptr = np.r_[0, np.cumsum(np.bincount(owner, minlength=len(self.source_faces)))]
        self._cand = fid

    def _planes(self) -> None:
        """Per target face: corner a, the pseudo-inverse rows (x - a) -> (l1, l2), unit normal."""
        v, f = self.vertices, self.faces
        a = v[f[:, 0]]
        e1, e2 = v[f[:, 1]] - a, v[f[:, 2]] - a
        g11, g12, g22 = (e1 * e1).sum(1), (e1 * e2).sum(1), (e2 * e2).sum(1)
        det = g11 * g22 - g12 * g12
        ok = det > 1e-14 * np.maximum(g11 * g22, 1e-300)
        with np.errstate(divide="ignore", invalid="ignore"):
            m1 = (g22[:, None] * e1 - g12[:, None] * e2) / det[:, None]
            m2 = (g11[:, None] * e2 - g12[:, None] * e1) / det[:, None]
        m1[~ok] = 0.0
        m2[~ok] = 0.0
        nrm = np.cross(e1, e2)
        nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-300)
        self._plane = np.ascontiguousarray(np.c_[a, m1, m2, nrm])  # (F, 12)
        self._plane_ok = ok

    @classmethod
    def from_vertex_map(cls, vmap, source_faces, target_mesh, *, faces=None, face_labels=None) -> "SurfaceMap":
        """Build from a :class:`~densemap.mapping.VertexMap`, the source faces and the target mesh.

        ``faces`` (default: the target mesh's) is the target surface to land on.
        """
        pos = vmap.points(target_mesh) if hasattr(vmap, "points") else target_mesh.vertices[vmap.indices]
        return cls(vmap.indices, pos, source_faces, target_mesh.vertices,
                   target_mesh.faces if faces is None else faces, face_labels=face_labels)

    def map(self, face, bary, *, prefer_label=None, prefer_face=None, chunk: int = 32768):
        """Map source surface points onto the target surface.

        Parameters
        ----------
        face : (P,) int
            Source face (row of ``source_faces``) holding each point.
        bary : (P, 3) float
            Barycentric coordinates in that face.
        prefer_label : (P,) int, optional
            Among target faces at the same distance (within 1e-9 of the bounding-box
            diagonal), take one whose ``face_labels`` equals this.
        prefer_face : (P,) int, optional
            Stronger tie-break: this target face (used when source and target surfaces
            are the same, so that a point on an edge keeps its face).
        chunk : int
            Points per vectorised block.

        Returns
        -------
        face : (P,) int
            Target face (``-1`` where no target face is near the mapped corners).
        bary : (P, 3) float
        distance : (P,) float
            How far the interpolated position was from the target surface.
        """
        face = np.asarray(face, dtype=np.int64)
        w = np.asarray(bary, dtype=np.float64)
        n = len(face)
        if face.size and (face.min() < 0 or face.max() >= len(self.source_faces)):
            raise ValueError(f"face must be source faces in 0..{len(self.source_faces) - 1}")
        out_f = -np.ones(n, np.int64)
        out_b = np.zeros((n, 3))
        out_d = np.full(n, np.nan)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            pl = None if prefer_label is None else np.asarray(prefer_label)[s:e]
            pf = None if prefer_face is None else np.asarray(prefer_face)[s:e]
            out_f[s:e], out_b[s:e], out_d[s:e] = self._map_block(face[s:e], w[s:e], pl, pf)
        return out_f, out_b, out_d

    def _map_block(self, sface, w, prefer_label, prefer_face):
        n = len(sface)
        corners = self.source_faces[sface]
        x = np.einsum("pk,pkd->pd", w, self.positions[corners])
        face = -np.ones(n, np.int64)
        bary = np.zeros((n, 3))
        dist = np.full(n, np.nan)
        # 1. the one-ring of the dominant corner's mapped vertex, plane test only
        dom = self.indices[corners[np.arange(n), np.argmax(w, axis=1)]]
        lo, hi = self._ring_ptr[dom], self._ring_ptr[dom + 1]
        found = self._best(x, lo, hi, self._ring, prefer_label, prefer_face, face, bary, dist, exact=False)
        # 2. the rest: every face around the three mapped corners, exact distances if needed
        rest = np.flatnonzero(~found)
        if len(rest):
            sf = sface[rest]
            sub = [None if p is None else p[rest] for p in (prefer_label, prefer_face)]
            f2, b2, d2 = -np.ones(len(rest), np.int64), np.zeros((len(rest), 3)), np.full(len(rest), np.nan)
            self._best(x[rest], self._cand_ptr[sf], self._cand_ptr[sf + 1], self._cand, sub[0], sub[1], f2, b2, d2, exact=True)
            face[rest], bary[rest], dist[rest] = f2, b2, d2
        return face, bary, dist

    def _best(self, x, lo, hi, table, prefer_label, prefer_face, face, bary, dist, *, exact: bool) -> np.ndarray:
        """Closest candidate ``table[lo:hi]`` of each point; writes face/bary/dist; returns found (P,) bool.

        Without ``exact`` only candidates whose plane projection falls inside count.
        """
        n = len(x)
        cnt = hi - lo
        start = np.cumsum(cnt) - cnt
        rep = np.repeat(np.arange(n), cnt)
        fid = table[np.arange(cnt.sum()) + np.repeat(lo - start, cnt)]
        pl = self._plane[fid]
        r = x[rep] - pl[:, 0:3]
        l1 = np.einsum("ij,ij->i", r, pl[:, 3:6])
        l2 = np.einsum("ij,ij->i", r, pl[:, 6:9])
        h = np.einsum("ij,ij->i", r, pl[:, 9:12])
        inside = (l1 >= 0) & (l2 >= 0) & (l1 + l2 <= 1) & self._plane_ok[fid]
        d2 = np.where(inside, h * h, np.inf)
        found = np.zeros(n, bool)
        found[rep[inside]] = True
        wb = None  # barycentric coordinates of every candidate, only when some need exact distances
        if exact:
            redo = ~found[rep]
            if redo.any():
                wb = np.stack([1.0 - l1 - l2, l1, l2], axis=1)
                t = self.faces[fid[redo]]
                wb[redo], d2[redo] = closest_point_on_triangles(
                    x[rep[redo]], self.vertices[t[:, 0]], self.vertices[t[:, 1]], self.vertices[t[:, 2]])
            found = cnt > 0
        key = d2
        if prefer_label is not None and self.face_labels is not None:
            key = key - self._tie * (self.face_labels[fid] == prefer_label[rep])
        if prefer_face is not None:
            key = key - 2 * self._tie * (fid == prefer_face[rep])
        has = cnt > 0
        if has.any():
            first = start[has]
            kmin = np.minimum.reduceat(key, first)
            pos = np.where(key == np.repeat(kmin, cnt[has]), np.arange(len(key)), len(key))
            best = np.minimum.reduceat(pos, first)
            sel = np.flatnonzero(has)
            keep = found[sel]
            sel, best = sel[keep], best[keep]
            face[sel] = fid[best]
            w = wb[best] if wb is not None else np.stack([1.0 - l1[best] - l2[best], l1[best], l2[best]], axis=1)
            bary[sel] = np.clip(w, 0.0, 1.0)
            dist[sel] = np.sqrt(d2[best])
        return found
