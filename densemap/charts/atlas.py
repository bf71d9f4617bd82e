"""DensePose-style chart atlases: a chart id per face and a (u, v) in [0, 1] per face corner.

:class:`ChartAtlas` holds the charts of a mesh and answers vectorised queries:
:meth:`ChartAtlas.locate` turns ``(c, u, v)`` into surface points (face, barycentric) and
:meth:`ChartAtlas.chart_coords` goes back. Atlases are read and written by
:mod:`densemap.charts.io`, built by :mod:`densemap.charts.flatten`, and the embedded
meshes' come from :mod:`densemap.charts.reference`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np

from ..errors import AtlasError
from ..mesh import Mesh
from ..parts import face_labels

__all__ = ["ChartAtlas", "ChartLocation", "face_labels_from_vertices", "signed_area_2d"]

_INSIDE_EPS = 1e-10  # barycentric slack for "inside a triangle"
_UV_SLACK = 1e-7  # stored uv may exceed [0, 1] by this much (float32 rounding)


class ChartLocation(NamedTuple):
    """Result of :meth:`ChartAtlas.locate`.

    face : (P,) int
        Face holding each point; ``-1`` where the chart is unknown or has no face.
    bary : (P, 3) float
        Barycentric coordinates in ``face`` (NaN where ``face == -1``).
    distance : (P,) float
        0 where (u, v) lies in a triangle of its chart, else the (u, v) distance to the
        nearest point of the chart that was taken instead; NaN where ``face == -1``.
    """

    face: np.ndarray
    bary: np.ndarray
    distance: np.ndarray

    @property
    def moved(self) -> np.ndarray:
        """(P,) bool: points that fell in no triangle and were moved to the nearest one."""
        return (self.face >= 0) & (self.distance > 0)


@dataclass(frozen=True, eq=False)
class ChartAtlas:
    """Charts on the faces of a mesh.

    Parameters
    ----------
    faces : (F, 3) int
        Triangles on the mesh's vertices (usually the mesh's own faces; DensePose's
        SMPL atlas lacks two of them).
    charts : (F,) int
        Chart id of each face in ``1..n_charts``; ``0`` = the face is in no chart.
    uv : (F, 3, 2) float
        (u, v) of each face corner, in [0, 1] (NaN allowed on faces of chart 0).
    n_vertices : int
        Number of vertices of the mesh the faces index.
    n_charts : int, optional
        Default: the largest chart id.
    name : str
    mesh_sha1 : str, optional
        :attr:`Mesh.sha1` of the mesh the atlas was made for (checked by loaders).
    distortion : dict, optional
        What :func:`build_atlas` measured.

    Raises
    ------
    AtlasError
        Wrong shapes, vertex ids or chart ids out of range, (u, v) outside [0, 1].
    """

    faces: np.ndarray
    charts: np.ndarray
    uv: np.ndarray
    n_vertices: int
    n_charts: int | None = None
    name: str = "atlas"
    mesh_sha1: str | None = None
    distortion: dict | None = field(default=None, repr=False)

    def __post_init__(self):
        w = self.name
        f = np.array(self.faces, copy=True)
        if f.ndim != 2 or f.shape[1] != 3 or (f.size and f.dtype.kind not in "iu"):
            raise AtlasError(f"{w}: faces must be an (F, 3) integer array, got shape {f.shape} dtype {f.dtype}")
        f = f.astype(np.int64)
        nf = len(f)
        if f.size and (f.min() < 0 or f.max() >= self.n_vertices):
            i, j = np.argwhere((f < 0) | (f >= self.n_vertices))[0]
            raise AtlasError(f"{w}: faces[{i}] references vertex {f[i, j]} but the mesh has {self.n_vertices} vertices")
        c = np.array(self.charts, copy=True)
        if c.shape != (nf,) or (c.size and c.dtype.kind not in "iuf"):
            raise AtlasError(f"{w}: charts must have shape ({nf},), got {c.shape}")
        if c.dtype.kind == "f":
            if not np.all(np.mod(c, 1) == 0):
                i = int(np.flatnonzero(np.mod(c, 1) != 0)[0])
                raise AtlasError(f"{w}: charts[{i}] = {c[i]} is not an integer")
        c = c.astype(np.int64)
        nc = int(c.max()) if c.size else 0
        nc = nc if self.n_charts is None else int(self.n_charts)
        if c.size and (c.min() < 0 or c.max() > nc):
            i = int(np.flatnonzero((c < 0) | (c > nc))[0])
            raise AtlasError(f"{w}: charts[{i}] = {c[i]}; chart ids must be in 1..{nc} (0 = no chart)")
        uv = np.array(self.uv, dtype=np.float64, copy=True)
        if uv.shape != (nf, 3, 2):
            raise AtlasError(f"{w}: uv must have shape ({nf}, 3, 2), got {uv.shape}")
        on = c > 0
        bad = on & ~(np.isfinite(uv).all(axis=(1, 2)) & (uv >= -_UV_SLACK).all(axis=(1, 2)) & (uv <= 1 + _UV_SLACK).all(axis=(1, 2)))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AtlasError(f"{w}: uv of face {i} (chart {c[i]}) is {uv[i].tolist()}, outside [0, 1] ({int(bad.sum())} such faces)")
        uv[on] = np.clip(uv[on], 0.0, 1.0)
        for a in (f, c, uv):
            a.setflags(write=False)
        object.__setattr__(self, "faces", f)
        object.__setattr__(self, "charts", c)
        object.__setattr__(self, "uv", uv)
        object.__setattr__(self, "n_charts", nc)
        object.__setattr__(self, "n_vertices", int(self.n_vertices))

    def __repr__(self):
        return f"ChartAtlas(name={self.name!r}, F={self.n_faces}, charts={self.n_charts})"

    @property
    def n_faces(self) -> int:
        return len(self.faces)

    def check_mesh(self, mesh: Mesh) -> "ChartAtlas":
        """Check that the atlas fits ``mesh`` (vertex count, and sha1 when recorded); return self."""
        if mesh.n_vertices != self.n_vertices:
            raise AtlasError(f"{self.name}: the atlas is for a mesh of {self.n_vertices} vertices but {mesh.name} has {mesh.n_vertices}")
        if self.mesh_sha1 is not None and self.mesh_sha1 != mesh.sha1:
            raise AtlasError(f"{self.name}: the atlas was made for a mesh with sha1 {self.mesh_sha1}, but {mesh.name} has sha1 {mesh.sha1}")
        return self

    # ------------------------------------------------------------------ queries
    def chart_coords(self, face, bary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Chart coordinates of surface points.

        Parameters
        ----------
        face : (P,) int
        bary : (P, 3) float

        Returns
        -------
        c : (P,) int
            Chart id (0 where the face is in no chart).
        u, v : (P,) float
        """
        face = np.asarray(face, dtype=np.int64)
        bary = np.asarray(bary, dtype=np.float64)
        if face.size and (face.min() < 0 or face.max() >= self.n_faces):
            i = int(np.flatnonzero((face < 0) | (face >= self.n_faces))[0])
            raise AtlasError(f"{self.name}: face[{i}] = {face[i]} but the atlas has {self.n_faces} faces")
        if bary.shape != (len(face), 3):
            raise AtlasError(f"{self.name}: bary must have shape ({len(face)}, 3), got {bary.shape}")
        uv = np.einsum("pk,pkd->pd", bary, self.uv[face])
        return self.charts[face], uv[:, 0], uv[:, 1]

    def nearest_vertex(self, face, bary) -> np.ndarray:
        """(P,) int: the corner with the largest barycentric weight of each surface point."""
        face = np.asarray(face, dtype=np.int64)
        return self.faces[face, np.argmax(np.asarray(bary), axis=1)]

    def locate(self, c, u, v, *, chunk: int = 32768) -> ChartLocation:
        """Surface points of chart coordinates.

        Parameters
        ----------
        c : (P,) int
            Chart ids (1..n_charts).
        u, v : (P,) float

        Returns
        -------
        ChartLocation
            ``(face, bary, distance)``: the triangle of chart ``c`` holding (u, v), or,
            when none does, the nearest point of chart ``c`` (``distance > 0``, in (u, v)
            units). ``face = -1`` for an unknown chart, a chart without faces or a
            non-finite (u, v).

        Notes
        -----
        Each chart has a uniform grid over [0, 1]^2 listing the triangles whose (u, v)
        box meets each cell; a point is tested against the triangles of its cell only.
        Points in no triangle go to the nearest point of the chart's boundary edges.

        Examples
        --------
        A round trip surface point -> (c, u, v) -> surface point:

        >>> import numpy as np
        >>> from densemap.charts import reference_atlas
        >>> atlas = reference_atlas("human")
        >>> c, u, v = atlas.chart_coords([100, 2000], [[0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3]])
        >>> loc = atlas.locate(c, u, v)
        >>> loc.face.tolist(), bool(np.allclose(loc.bary[0], [0.2, 0.3, 0.5]))
        ([100, 2000], True)
        """
        c = np.asarray(c)
        u = np.asarray(u, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64)
        if not (c.shape == u.shape == v.shape) or c.ndim != 1:
            raise AtlasError(f"{self.name}: c, u, v must be 1-D arrays of one length, got {c.shape}, {u.shape}, {v.shape}")
        n = len(c)
        ci = np.where(np.isfinite(c), c, -1).astype(np.int64) if c.dtype.kind == "f" else c.astype(np.int64)
        face = -np.ones(n, np.int64)
        bary = np.full((n, 3), np.nan)
        dist = np.full(n, np.nan)
        g = self._grid
        ok = (ci >= 1) & (ci <= self.n_charts) & np.isfinite(u) & np.isfinite(v)
        ok[ok] &= g["chart_faces"][ci[ok]] > 0
        for s in range(0, n, chunk):
            idx = s + np.flatnonzero(ok[s : s + chunk])
            if len(idx):
                self._locate_block(idx, ci, u, v, face, bary, dist)
        return ChartLocation(face, bary, dist)

    def _locate_block(self, idx, ci, u, v, face, bary, dist) -> None:
        """Locate points ``idx`` (valid chart ids), writing into ``face``, ``bary``, ``dist``."""
        g = self._grid
        c = ci[idx]
        uq, vq = u[idx], v[idx]
        G = g["G"][c]
        ix = np.clip((uq * G).astype(np.int64), 0, G - 1)
        iy = np.clip((vq * G).astype(np.int64), 0, G - 1)
        cell = g["offset"][c] + iy * G + ix
        lo, hi = g["indptr"][cell], g["indptr"][cell + 1]
        cnt = hi - lo
        start = np.cumsum(cnt) - cnt
        rep = np.repeat(np.arange(len(idx)), cnt)
        fid = g["faces"][np.arange(cnt.sum()) + np.repeat(lo - start, cnt)]
        aff = g["affine"]
        dx = uq[rep] - aff[0][fid]
        dy = vq[rep] - aff[1][fid]
        l1 = aff[2][fid] * dx + aff[3][fid] * dy
        l2 = aff[4][fid] * dx + aff[5][fid] * dy
        score = np.minimum(np.minimum(l1, l2), 1.0 - l1 - l2)
        has = cnt > 0
        inside = np.zeros(len(idx), bool)
        if has.any():
            first = start[has]
            best_score = np.maximum.reduceat(score, first)
            pos = np.where(score == np.repeat(best_score, cnt[has]), np.arange(len(score)), len(score))
            best = np.minimum.reduceat(pos, first)
            hit = best_score >= -_INSIDE_EPS
            sel = idx[has][hit]
            bh = best[hit]
            b = np.clip(np.c_[1.0 - l1[bh] - l2[bh], l1[bh], l2[bh]], 0.0, None)
            face[sel] = fid[bh]
            bary[sel] = b / b.sum(axis=1, keepdims=True)
            dist[sel] = 0.0
            inside[np.flatnonzero(has)[hit]] = True
        out = idx[~inside]
        if len(out):
            face[out], bary[out], dist[out] = self._nearest_on_chart(ci[out], u[out], v[out])

    def _nearest_on_chart(self, c, u, v, chunk: int = 1 << 22):
        """Nearest point of chart ``c`` (on its boundary segments) for points in no triangle."""
        g = self._grid
        face = np.empty(len(c), np.int64)
        bary = np.empty((len(c), 3))
        dist = np.empty(len(c))
        seg_chart, seg_face, seg_k = g["seg_chart"], g["seg_face"], g["seg_k"]
        for cid in np.unique(c):
            rows = np.flatnonzero(c == cid)
            s = np.flatnonzero(seg_chart == cid)
            fa, k = seg_face[s], seg_k[s]
            p0 = self.uv[fa, k]
            p1 = self.uv[fa, (k + 1) % 3]
            step = max(1, chunk // max(len(s), 1))
            for r0 in range(0, len(rows), step):
                r = rows[r0 : r0 + step]
                q = np.c_[u[r], v[r]]
                d = p1 - p0
                dd = np.maximum((d * d).sum(1), 1e-300)
                t = np.clip(((q[:, None, :] - p0[None]) * d[None]).sum(-1) / dd[None], 0.0, 1.0)  # (R, S)
                foot = p0[None] + t[..., None] * d[None]
                d2 = ((foot - q[:, None, :]) ** 2).sum(-1)
                j = np.argmin(d2, axis=1)
                tj = t[np.arange(len(r)), j]
                w = np.zeros((len(r), 3))
                kk = k[j]
                w[np.arange(len(r)), kk] = 1.0 - tj
                w[np.arange(len(r)), (kk + 1) % 3] += tj
                face[r] = fa[j]
                bary[r] = w
                dist[r] = np.sqrt(d2[np.arange(len(r)), j])
        return face, bary, dist

    @cached_property
    def _grid(self) -> dict:
        """Per chart, a uniform grid over [0, 1]^2 listing the faces whose (u, v) box meets each
        cell (about two cells per triangle), each face's affine map (u, v) -> barycentric, and
        the boundary segments of each chart (for points in no triangle)."""
        on = np.flatnonzero(self.charts > 0)
        ch = self.charts[on]
        uv = self.uv[on]
        chart_faces = np.bincount(ch, minlength=self.n_charts + 1)
        area = signed_area_2d(uv)
        cover = np.bincount(ch, weights=np.abs(area), minlength=self.n_charts + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            G = np.sqrt(2.0 * chart_faces / np.maximum(cover, 1e-12))
        G = np.clip(np.nan_to_num(np.ceil(G), nan=4), 4, 2048).astype(np.int64)
        offset = np.r_[0, np.cumsum(G * G)[:-1]]
        pad = 1e-9
        Gf = G[ch]
        lo = np.clip(np.floor((uv.min(axis=1) - pad) * Gf[:, None]).astype(np.int64), 0, Gf[:, None] - 1)
        hi = np.clip(np.floor((uv.max(axis=1) + pad) * Gf[:, None]).astype(np.int64), 0, Gf[:, None] - 1)
        nx, ny = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
        cnt = nx * ny
        rep = np.repeat(np.arange(len(on)), cnt)
        k = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        cx = lo[rep, 0] + k % nx[rep]
        cy = lo[rep, 1] + k // nx[rep]
        cell = offset[ch[rep]] + cy * Gf[rep] + cx
        order = np.argsort(cell, kind="stable")
        # affine (u, v) -> (l1, l2): inverse of the 2x2 matrix of edge vectors
        affine = np.zeros((6, self.n_faces))
        e1, e2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
        det = e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]
        good = det != 0
        affine[0, on], affine[1, on] = uv[:, 0, 0], uv[:, 0, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.stack([e2[:, 1] / det, -e2[:, 0] / det, -e1[:, 1] / det, e1[:, 0] / det])
        m[:, ~good] = 0.0
        affine[2:, on] = m
        keep = good[rep[order]]  # a degenerate (u, v) triangle is never "inside"
        indptr = np.r_[0, np.cumsum(np.bincount(cell[order][keep], minlength=int((G * G).sum())))]
        order = order[keep]
        # boundary segments: edges of a chart used once, corners identified by (vertex, u, v);
        # edges of faces flipped against their chart's orientation are added (folds)
        key = np.c_[self.faces[on].reshape(-1, 1), self.uv[on].reshape(-1, 2)]
        _, cid = np.unique(key, axis=0, return_inverse=True)
        cid = cid.reshape(-1, 3)
        a = np.r_[cid[:, 0], cid[:, 1], cid[:, 2]]
        b = np.r_[cid[:, 1], cid[:, 2], cid[:, 0]]
        fk = np.r_[on, on, on]
        kk = np.repeat(np.arange(3), len(on))
        chk = np.r_[ch, ch, ch]
        und = np.c_[chk, np.minimum(a, b), np.maximum(a, b)]
        _, inv, count = np.unique(und, axis=0, return_inverse=True, return_counts=True)
        boundary = count[inv.ravel()] == 1
        sign = np.zeros(self.n_charts + 1)
        np.add.at(sign, ch, area)
        flipped = np.sign(area) * np.sign(sign[ch]) < 0
        boundary |= np.r_[flipped, flipped, flipped]
        return {
            "G": G,
            "offset": offset,
            "affine": affine,
            "indptr": indptr,
            "faces": on[rep[order]],
            "chart_faces": chart_faces,
            "seg_chart": chk[boundary],
            "seg_face": fk[boundary],
            "seg_k": kk[boundary],
        }


def signed_area_2d(tri) -> np.ndarray:
    """(m,) signed area of 2-D triangles (m, 3, 2); positive when counter-clockwise."""
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    return 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])


# ----------------------------------------------------------------------------- face labels
def face_labels_from_vertices(faces, labels) -> np.ndarray:
    """(F,) int label of each face: :func:`densemap.parts.face_labels` (majority; ties to the lowest)."""
    return face_labels(faces, labels)
