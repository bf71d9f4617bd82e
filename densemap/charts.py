"""DensePose-style chart atlases: a chart id per face and a (u, v) in [0, 1] per face corner.

Three ways to get one:

* :func:`load_uv_processed`: DensePose's ``UV_Processed.mat`` for SMPL (24 charts);
* :func:`atlas_from_uv` / :func:`load_obj_atlas`: per-corner texture coordinates (OBJ ``vt``)
  plus a chart label per face;
* :func:`build_atlas`: flatten every part of any labelled mesh into its own chart.

Queries are vectorised: :meth:`ChartAtlas.locate` turns ``(c, u, v)`` into surface points
(face, barycentric) and :meth:`ChartAtlas.chart_coords` goes back.
:func:`reference_atlas` gives the atlases of the embedded human and chimpanzee.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal, NamedTuple, get_args

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components

from .errors import MeshError
from .mesh import Mesh, atomic_path
from .parts import PartLabels
from .surface import closest_point_on_triangles

__all__ = [
    "AtlasError",
    "ChartAtlas",
    "ChartLocation",
    "face_labels_from_vertices",
    "build_atlas",
    "atlas_from_uv",
    "load_obj_atlas",
    "load_uv_processed",
    "save_atlas",
    "load_atlas",
    "reference_atlas",
]

FORMAT = "densemap.atlas"
FORMAT_VERSION = 1
_INSIDE_EPS = 1e-10  # barycentric slack for "inside a triangle"
_UV_SLACK = 1e-7  # stored uv may exceed [0, 1] by this much (float32 rounding)

Species = Literal["human", "chimp"]


class AtlasError(MeshError):
    """A chart atlas is malformed or does not fit its mesh."""


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
        area = _signed_area_2d(uv)
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


def _signed_area_2d(tri) -> np.ndarray:
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    return 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])


# ----------------------------------------------------------------------------- face labels
def face_labels_from_vertices(faces, labels) -> np.ndarray:
    """Label of each face from per-vertex labels: the majority of its corners.

    Ties go to the lowest label; unlabelled corners (``-1``) do not vote; a face with no
    labelled corner gets ``-1``.

    Parameters
    ----------
    faces : (F, 3) int
    labels : (V,) int

    Returns
    -------
    (F,) int
    """
    lab = np.asarray(labels, dtype=np.int64)[np.asarray(faces)]
    out = -np.ones(len(lab), np.int64)
    best = np.zeros(len(lab), np.int64)
    for k in range(3):
        votes = (lab == lab[:, k : k + 1]).sum(axis=1)
        better = (lab[:, k] >= 0) & ((votes > best) | ((votes == best) & (lab[:, k] < out)))
        out[better], best[better] = lab[better, k], votes[better]
    return out


# ----------------------------------------------------------------------------- build_atlas
Method = Literal["conformal", "harmonic"]


def build_atlas(
    mesh: Mesh,
    parts: PartLabels,
    *,
    margin: float = 0.02,
    method: Method = "conformal",
    max_distortion: float = 3.0,
    name: str | None = None,
) -> ChartAtlas:
    """Flatten each part of a labelled mesh into its own chart.

    Part label ``k`` becomes chart ``k + 1`` (so the 24 DensePose charts stored as
    labels 0..23 keep their ids). A face takes the part of the majority of its corners
    (ties: the lowest label). Each connected piece of a part that is not a topological
    disk is split by planes through its centroid until every piece is one. Each disk is
    flattened with least-squares conformal maps (``"conformal"``, free boundary, two
    pinned boundary vertices; a piece that folds falls back to the harmonic map) or
    harmonically (``"harmonic"``: mean-value weights onto a circle with boundary spacing
    proportional to arc length, which never folds). A chart's pieces are scaled to
    their surface area, laid side by side and fitted into ``[margin, 1 - margin]^2``.

    Parameters
    ----------
    mesh : Mesh
    parts : PartLabels
    margin : float
        Empty border of each chart, in (u, v) units.
    method : {"conformal", "harmonic"}
    max_distortion : float
        A piece whose area or angle distortion (below) exceeds this is cut in two
        across its longest direction and flattened again (fingers, ears, ...).
    name : str, optional

    Returns
    -------
    ChartAtlas
        With ``distortion``: per chart ``pieces``, ``area`` (area-weighted mean of
        ``max(s1 s2, 1 / (s1 s2))``, 1 = area-preserving up to the chart's scale),
        ``angle`` (area-weighted mean of ``s1 / s2``, 1 = conformal), ``flipped`` (faces
        whose orientation reversed), where ``s1 >= s2`` are the singular values of each
        face's map to (u, v); plus the same figures over the whole atlas and
        ``harmonic_fallbacks`` (pieces where the conformal map folded).
    """
    if method not in get_args(Method):
        raise ValueError(f"unknown method {method!r}; expected one of {list(get_args(Method))}")
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    parts.check_mesh(mesh)
    flab = face_labels_from_vertices(mesh.faces, parts.labels)
    charts = np.where(flab >= 0, flab + 1, 0)
    uv = np.full((mesh.n_faces, 3, 2), np.nan)
    per_chart = {}
    fallbacks = 0
    for c in range(1, parts.n_parts + 1):
        fids = np.flatnonzero(charts == c)
        if not len(fids):
            continue
        flat = []
        for comp in _edge_components(mesh.faces[fids]):
            for disk in _disks(mesh.vertices, mesh.faces, fids[comp]):
                flat += _flatten_pieces(mesh.vertices, mesh.faces, disk, method, max_distortion)
        pieces = [p for p, _, _ in flat]
        local = [w for _, w, _ in flat]
        fallbacks += sum(fb for _, _, fb in flat)
        _pack(local, [mesh.face_areas[p].sum() for p in pieces], margin)
        for p, w in zip(pieces, local):
            uv[p] = w
        per_chart[c] = _distortion(mesh.vertices, mesh.faces[fids], uv[fids]) | {"pieces": len(pieces)}
    # whole-atlas figures: per-chart figures weighted by surface area (each chart has its own scale)
    total = {}
    if per_chart:
        w = np.array([mesh.face_areas[charts == c].sum() for c in per_chart])
        w = w / max(w.sum(), 1e-300)
        for k in ("area", "angle"):
            total[k] = float(sum(wi * d[k] for wi, d in zip(w, per_chart.values())))
        for k in ("faces", "flipped", "degenerate", "pieces"):
            total[k] = int(sum(d[k] for d in per_chart.values()))
    dist = {"method": method, "margin": margin, **total, "harmonic_fallbacks": fallbacks, "per_chart": per_chart}
    return ChartAtlas(mesh.faces, charts, uv, mesh.n_vertices, n_charts=parts.n_parts,
                      name=name or f"atlas of {mesh.name}", mesh_sha1=mesh.sha1, distortion=dist)


def _edge_components(faces) -> list[np.ndarray]:
    """Face sets connected through shared edges (indices into ``faces``)."""
    m = len(faces)
    e = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    _, inv = np.unique(e, axis=0, return_inverse=True)
    inv = inv.ravel()
    fe = sp.csr_matrix((np.ones(3 * m), (np.repeat(np.arange(m), 3), inv)), shape=(m, inv.max() + 1))
    n, lab = connected_components(fe @ fe.T, directed=False)
    return [np.flatnonzero(lab == k) for k in range(n)]


def _boundary_loop(faces) -> np.ndarray | None:
    """The single boundary loop of a disk (local vertex ids in order), or None if not a disk."""
    verts, f = np.unique(faces, return_inverse=True)
    f = f.reshape(-1, 3)
    nv = len(verts)
    d = np.c_[f[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)]
    und = np.sort(d, axis=1)
    _, inv, cnt = np.unique(und, axis=0, return_inverse=True, return_counts=True)
    if (cnt > 2).any():
        return None
    n_edges = len(cnt)
    if nv - n_edges + len(f) != 1:
        return None
    bd = d[cnt[inv.ravel()] == 1]
    if not len(bd):
        return None
    # each boundary vertex must start exactly one boundary edge (consistent orientation, no bow-tie)
    if np.bincount(bd[:, 0], minlength=nv).max() > 1 or len(np.unique(bd[:, 0])) != len(bd):
        return None
    nxt = -np.ones(nv, np.int64)
    nxt[bd[:, 0]] = bd[:, 1]
    loop = [bd[0, 0]]
    for _ in range(len(bd)):
        j = nxt[loop[-1]]
        if j < 0:
            return None
        if j == loop[0]:
            break
        loop.append(j)
    if len(loop) != len(bd):
        return None  # several boundary loops
    return np.asarray(loop)


def _plane_halves(vertices, faces, fids, axis: int) -> list[np.ndarray] | None:
    """Cut ``fids`` by the plane through the face centroids' median across principal ``axis``;
    return the edge-connected pieces of both sides (None if one side is empty)."""
    cen = vertices[faces[fids]].mean(axis=1)
    x = cen - cen.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    if axis >= len(vt):
        return None
    t = x @ vt[axis]
    side = t > np.median(t)
    if side.all() or not side.any():
        return None
    return [fids[h][comp] for h in (side, ~side) for comp in _edge_components(faces[fids[h]])]


def _disks(vertices, faces, fids, depth: int = 0) -> list[np.ndarray]:
    """Split the face set ``fids`` (connected) into disks."""
    if len(fids) == 1 or _boundary_loop(faces[fids]) is not None:
        return [fids]
    if depth > 24:
        raise AtlasError(f"cannot cut a piece of {len(fids)} faces into disks")
    best = None
    for axis in (1, 2, 0):  # across a tube first: a half-tube is a disk
        halves = _plane_halves(vertices, faces, fids, axis)
        if halves is None:
            continue
        bad = sum(len(p) > 1 and _boundary_loop(faces[p]) is None for p in halves)
        if best is None or bad < best[0]:
            best = (bad, halves)
        if bad == 0:
            break
    if best is None:  # all centroids at one position along every axis: split by index
        halves = [fids[: len(fids) // 2], fids[len(fids) // 2 :]]
        best = (None, [p[c] for p in halves for c in _edge_components(faces[p])])
    out = []
    for p in best[1]:
        out += _disks(vertices, faces, p, depth + 1)
    return out


def _flatten_pieces(vertices, faces, fids, method, max_distortion, depth: int = 0) -> list:
    """[(fids, uv (m, 3, 2), fell_back)] for a disk, cut further while too distorted."""
    w, fb = _flatten(vertices, faces[fids], method)
    d = _distortion(vertices, faces[fids], w)
    overlap = _overlaps(w)
    if overlap and (len(fids) < 16 or depth >= 10):
        w, fb = _flatten_disk(vertices, faces[fids]), True  # mean-value weights never overlap
    elif (overlap or max(d["area"], d["angle"]) > max_distortion) and len(fids) >= 16 and depth < 10:
        halves = _plane_halves(vertices, faces, fids, 0)
        if halves is not None:
            out = []
            for h in halves:
                for disk in _disks(vertices, faces, h):
                    out += _flatten_pieces(vertices, faces, disk, method, max_distortion, depth + 1)
            return out
    return [(fids, w, fb)]


def _flatten_disk(vertices, faces) -> np.ndarray:
    """(m, 3, 2) per-corner (u, v) of a disk mapped into the unit disk (mean-value weights)."""
    verts, f = np.unique(faces, return_inverse=True)
    f = f.reshape(-1, 3)
    x = vertices[verts]
    n = len(verts)
    loop = _boundary_loop(faces)
    if loop is None:  # a single face (the only non-disk piece _disks lets through)
        loop = np.arange(n)
    seg = np.linalg.norm(x[np.roll(loop, -1)] - x[loop], axis=1)
    t = np.r_[0.0, np.cumsum(seg)[:-1]] / seg.sum() if seg.sum() > 0 else np.arange(len(loop)) / len(loop)
    pos = np.zeros((n, 2))
    pos[loop] = np.c_[np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)]
    inner = np.setdiff1d(np.arange(n), loop)
    if len(inner):
        rows, cols, vals = [], [], []
        for k in range(3):
            i, j, l = f[:, k], f[:, (k + 1) % 3], f[:, (k + 2) % 3]
            eij, eil = x[j] - x[i], x[l] - x[i]
            lij = np.maximum(np.linalg.norm(eij, axis=1), 1e-300)
            lil = np.maximum(np.linalg.norm(eil, axis=1), 1e-300)
            cos = np.clip((eij * eil).sum(1) / (lij * lil), -1.0, 1.0)
            th = np.tan(np.arccos(cos) / 2.0)
            rows += [i, i]
            cols += [j, l]
            vals += [th / lij, th / lil]
        W = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        L = (sp.diags(np.asarray(W.sum(axis=1)).ravel()) - W).tocsr()
        rhs = -(L[inner][:, loop] @ pos[loop])
        pos[inner] = spla.splu(L[inner][:, inner].tocsc()).solve(rhs)
    w = pos[f]
    if _signed_area_2d(w).sum() < 0:
        w[..., 0] *= -1
    return w


def _overlaps(w: np.ndarray) -> bool:
    """Whether a flattened piece (m, 3, 2) overlaps itself: a point of some face (its centroid or
    near a corner) lies strictly inside another face."""
    m = len(w)
    if m < 2:
        return False
    lo = w.reshape(-1, 2).min(axis=0)
    span = max(float((w.reshape(-1, 2) - lo).max()), 1e-300)
    uv = (w - lo) / span
    a = ChartAtlas(np.arange(3 * m).reshape(m, 3), np.ones(m, np.int64), uv, 3 * m)
    # test points: each face's centroid and three points near its corners
    wts = np.array([[1 / 3, 1 / 3, 1 / 3], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    cen = np.einsum("tk,mkd->tmd", wts, uv).reshape(-1, 2)
    own = np.tile(np.arange(m), 4)
    g = a._grid
    G = g["G"][1]
    ix = np.clip((cen[:, 0] * G).astype(np.int64), 0, G - 1)
    iy = np.clip((cen[:, 1] * G).astype(np.int64), 0, G - 1)
    cell = g["offset"][1] + iy * G + ix
    lo_, hi_ = g["indptr"][cell], g["indptr"][cell + 1]
    cnt = hi_ - lo_
    rep = np.repeat(np.arange(len(cen)), cnt)
    fid = g["faces"][np.arange(cnt.sum()) + np.repeat(lo_ - (np.cumsum(cnt) - cnt), cnt)]
    aff = g["affine"]
    dx, dy = cen[rep, 0] - aff[0][fid], cen[rep, 1] - aff[1][fid]
    l1 = aff[2][fid] * dx + aff[3][fid] * dy
    l2 = aff[4][fid] * dx + aff[5][fid] * dy
    inside = (np.minimum(np.minimum(l1, l2), 1 - l1 - l2) > 1e-9) & (fid != own[rep])
    return bool(inside.any())


def _flatten(vertices, faces, method: str) -> tuple[np.ndarray, bool]:
    """(m, 3, 2) per-corner (u, v) of a disk, and whether the conformal map fell back to harmonic."""
    if method == "conformal" and len(faces) > 1:
        w = _lscm_disk(vertices, faces)
        if w is not None:
            return w, False
        return _flatten_disk(vertices, faces), True
    return _flatten_disk(vertices, faces), False


def _lscm_disk(vertices, faces) -> np.ndarray | None:
    """Least-squares conformal map of a disk (Levy et al. 2002); None if it folds or fails."""
    verts, f = np.unique(faces, return_inverse=True)
    f = f.reshape(-1, 3)
    x = vertices[verts]
    n, m = len(verts), len(f)
    loop = _boundary_loop(faces)
    if loop is None or n < 3:
        return None
    # pin two boundary vertices far apart
    d0 = np.linalg.norm(x[loop] - x[loop[0]], axis=1)
    p1 = loop[int(np.argmax(d0))]
    p0 = loop[int(np.argmax(np.linalg.norm(x[loop] - x[p1], axis=1)))]
    if p0 == p1:
        return None
    # each triangle in its own orthonormal 2-D frame
    p = x[f]
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    nrm = np.cross(e1, e2)
    dbl = np.linalg.norm(nrm, axis=1)
    if (dbl <= 1e-14 * max(float((e1 * e1).sum(1).max()), 1e-300)).any():
        return None
    xa = e1 / np.linalg.norm(e1, axis=1, keepdims=True)
    ya = np.cross(nrm / dbl[:, None], xa)
    q = np.zeros((m, 3, 2))
    q[:, 1] = np.c_[(e1 * xa).sum(1), 0.0 * dbl]
    q[:, 2] = np.c_[(e2 * xa).sum(1), (e2 * ya).sum(1)]
    s = 1.0 / np.sqrt(dbl)
    wr = np.stack([q[:, 2, 0] - q[:, 1, 0], q[:, 0, 0] - q[:, 2, 0], q[:, 1, 0] - q[:, 0, 0]], 1) * s[:, None]
    wi = np.stack([q[:, 2, 1] - q[:, 1, 1], q[:, 0, 1] - q[:, 2, 1], q[:, 1, 1] - q[:, 0, 1]], 1) * s[:, None]
    rows = np.repeat(np.arange(m), 3)
    M1 = sp.csr_matrix((wr.ravel(), (rows, f.ravel())), shape=(m, n))
    M2 = sp.csr_matrix((wi.ravel(), (rows, f.ravel())), shape=(m, n))
    A = sp.bmat([[M1, -M2], [M2, M1]]).tocsc()
    pinned = np.array([p0, p1, n + p0, n + p1])
    up = np.array([0.0, 1.0, 0.0, 0.0]) * float(np.linalg.norm(x[p1] - x[p0]))
    free = np.setdiff1d(np.arange(2 * n), pinned)
    Af, Ap = A[:, free], A[:, pinned]
    rhs = -(Ap @ up)
    try:
        sol = spla.splu((Af.T @ Af).tocsc()).solve(Af.T @ rhs)
    except RuntimeError:
        return None
    z = np.zeros(2 * n)
    z[free], z[pinned] = sol, up
    uv = np.c_[z[:n], z[n:]]
    if not np.isfinite(uv).all():
        return None
    w = uv[f]
    a = _signed_area_2d(w)
    if a.sum() < 0:
        w[..., 0] *= -1
        a = -a
    if (a <= 0).any():
        return None
    return w


def _pack(local: list[np.ndarray], areas, margin: float) -> None:
    """Scale pieces to their surface area, shelf-pack them, fit into [margin, 1 - margin]^2 (in place)."""
    boxes = []
    for w, area in zip(local, areas):
        a2 = np.abs(_signed_area_2d(w)).sum()
        w *= np.sqrt(area / a2) if a2 > 0 else 1.0
        w -= w.reshape(-1, 2).min(axis=0)
        boxes.append(w.reshape(-1, 2).max(axis=0))
    boxes = np.asarray(boxes)
    gap = 0.02 * float(np.sqrt((boxes[:, 0] * boxes[:, 1]).sum()))
    width = max(float(boxes[:, 0].max()), 1.1 * float(np.sqrt(((boxes[:, 0] + gap) * (boxes[:, 1] + gap)).sum())))
    x = y = row_h = 0.0
    for i in np.argsort(-boxes[:, 1], kind="stable"):  # tallest first, rows left to right
        if x > 0 and x + boxes[i, 0] > width:
            x, y, row_h = 0.0, y + row_h + gap, 0.0
        local[i][..., 0] += x
        local[i][..., 1] += y
        x += boxes[i, 0] + gap
        row_h = max(row_h, boxes[i, 1])
    allp = np.concatenate([w.reshape(-1, 2) for w in local])
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    span = max((hi - lo).max(), 1e-300)
    k = (1.0 - 2.0 * margin) / span
    centre = (lo + hi) / 2
    for w in local:
        w -= centre
        w *= k
        w += 0.5
        np.clip(w, 0.0, 1.0, out=w)


def _distortion(vertices, faces, uv) -> dict:
    """Area and angle distortion of a face set's map to (u, v) (see :func:`build_atlas`)."""
    p = vertices[faces]
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    a3 = 0.5 * np.linalg.norm(np.cross(e1, e2), axis=1)
    # local 2-D frame of each 3-D triangle
    x_ax = e1 / np.maximum(np.linalg.norm(e1, axis=1, keepdims=True), 1e-300)
    nrm = np.cross(e1, e2)
    y_ax = np.cross(nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-300), x_ax)
    P = np.stack([np.c_[(e1 * x_ax).sum(1), (e1 * y_ax).sum(1)], np.c_[(e2 * x_ax).sum(1), (e2 * y_ax).sum(1)]], axis=2)
    Q = np.stack([uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]], axis=2)  # (m, 2, 2), columns = edges
    a2 = _signed_area_2d(uv)
    ok = (a3 > 0) & (np.abs(a2) > 0)
    J = np.zeros((len(faces), 2, 2))
    J[ok] = Q[ok] @ np.linalg.inv(P[ok])
    s = np.linalg.svd(J, compute_uv=False)
    s1, s2 = s[:, 0], s[:, 1]
    scale = np.abs(a2).sum() / max(a3.sum(), 1e-300)  # the chart's overall area scale
    with np.errstate(divide="ignore", invalid="ignore"):
        det = s1 * s2 / scale
        area = np.where(ok, np.maximum(det, 1 / det), np.inf)
        angle = np.where(ok, s1 / s2, np.inf)
    w = a3 / max(a3.sum(), 1e-300)
    fin = np.isfinite(area) & np.isfinite(angle)
    return {
        "faces": int(len(faces)),
        "area": float((w[fin] * area[fin]).sum() / max(w[fin].sum(), 1e-300)),
        "angle": float((w[fin] * angle[fin]).sum() / max(w[fin].sum(), 1e-300)),
        "flipped": int((a2 < 0).sum()),
        "degenerate": int((~ok).sum()),
    }


# ----------------------------------------------------------------------------- other sources
def atlas_from_uv(mesh: Mesh, face_charts, *, name: str | None = None) -> ChartAtlas:
    """Atlas from a mesh's per-corner texture coordinates and a chart id per face.

    Parameters
    ----------
    mesh : Mesh
        With ``uv`` (F, 3, 2) in [0, 1] (e.g. read from OBJ ``vt``).
    face_charts : (F,) int
        Chart id (1..C) of each face, 0 = none.
    """
    if mesh.uv is None:
        raise AtlasError(f"{mesh.name}: the mesh has no texture coordinates (OBJ 'vt')")
    fc = np.asarray(face_charts)
    if fc.shape != (mesh.n_faces,):
        raise AtlasError(f"{mesh.name}: face_charts must have one chart id per face ({mesh.n_faces}), got shape {fc.shape}")
    missing = (fc > 0) & ~np.isfinite(mesh.uv).all(axis=(1, 2))
    if missing.any():
        raise AtlasError(f"{mesh.name}: face {int(np.flatnonzero(missing)[0])} has a chart but no texture coordinates")
    return ChartAtlas(mesh.faces, fc, mesh.uv, mesh.n_vertices, name=name or f"uv atlas of {mesh.name}", mesh_sha1=mesh.sha1)


def _chart_id(name: str, chart_names: tuple[str, ...] | None) -> int | None:
    m = re.search(r"(\d+)\s*$", name)
    if m:
        return int(m.group(1))
    if chart_names and name in chart_names:
        return chart_names.index(name) + 1
    return None


def load_obj_atlas(path: str | os.PathLike, *, face_charts=None) -> tuple[Mesh, ChartAtlas]:
    """Mesh and atlas from an OBJ file with ``vt`` coordinates.

    Chart ids come from ``face_charts`` (F,) or else from the face groups: a group name
    ending in an integer (``chart_7``, ``7``) or one of the 24 DensePose chart names
    (:func:`densemap.data.chart_names`) gives its chart; faces in no group get chart 0.
    """
    from .mesh import read_obj

    path = Path(path)
    d = read_obj(path)
    mesh = Mesh(d.vertices, d.faces, d.uv, name=str(path))
    if face_charts is None:
        if not d.group_names:
            raise AtlasError(f"{path}: no 'g'/'o' groups to take chart ids from; pass face_charts")
        try:
            from .data import chart_names

            names = chart_names()
        except (OSError, FileNotFoundError):
            names = None
        ids = [_chart_id(g, names) for g in d.group_names]
        if None in ids:
            raise AtlasError(f"{path}: cannot read a chart id from group {d.group_names[ids.index(None)]!r}; "
                             "expected a name ending in an integer or a DensePose chart name")
        face_charts = np.where(d.face_groups >= 0, np.asarray(ids, np.int64)[np.maximum(d.face_groups, 0)], 0)
    return mesh, atlas_from_uv(mesh, face_charts, name=f"uv atlas of {path.name}")


def load_uv_processed(path: str | os.PathLike, mesh: Mesh | None = None) -> ChartAtlas:
    """DensePose's SMPL atlas from ``UV_Processed.mat``.

    Reads ``All_FaceIndices`` (chart of each face), ``All_Faces`` (1-based corners into the
    seam-duplicated "DensePose vertices"), ``All_U_norm``, ``All_V_norm`` (their (u, v))
    and ``All_vertices`` (1-based SMPL vertex of each DensePose vertex).

    Parameters
    ----------
    path : path-like
    mesh : Mesh, optional
        The SMPL mesh (6890 vertices) the atlas stands on; checked when given.

    Returns
    -------
    ChartAtlas
        On the SMPL vertices (its faces are DensePose's 13774, not SMPL's 13776).
    """
    import scipy.io

    path = Path(path)
    try:
        m = scipy.io.loadmat(str(path))
    except (OSError, ValueError, TypeError) as exc:
        raise AtlasError(f"{path}: cannot read MATLAB file ({exc})") from None
    need = ("All_FaceIndices", "All_Faces", "All_U_norm", "All_V_norm", "All_vertices")
    missing = [k for k in need if k not in m]
    if missing:
        raise AtlasError(f"{path}: missing variables {missing}; expected {list(need)} (DensePose UV_Processed.mat)")
    fi = np.asarray(m["All_FaceIndices"]).ravel()
    fa = np.asarray(m["All_Faces"])
    un, vn = np.asarray(m["All_U_norm"], np.float64).ravel(), np.asarray(m["All_V_norm"], np.float64).ravel()
    av = np.asarray(m["All_vertices"]).ravel().astype(np.int64)
    if fa.ndim != 2 or fa.shape[1] != 3 or len(fi) != len(fa):
        raise AtlasError(f"{path}: All_Faces must be (F, 3) with one All_FaceIndices entry per face, got {fa.shape} and {fi.shape}")
    if not (len(un) == len(vn) == len(av)):
        raise AtlasError(f"{path}: All_U_norm, All_V_norm and All_vertices differ in length: {len(un)}, {len(vn)}, {len(av)}")
    fa = fa.astype(np.int64)
    if fa.min() < 1 or fa.max() > len(av):
        raise AtlasError(f"{path}: All_Faces must hold 1-based indices in 1..{len(av)}, got {fa.min()}..{fa.max()}")
    if av.min() < 1:
        raise AtlasError(f"{path}: All_vertices must be 1-based SMPL vertex ids, got {av.min()}")
    if mesh is not None and av.max() > mesh.n_vertices:
        raise AtlasError(f"{path}: All_vertices references vertex {int(av.max())} (1-based) but mesh {mesh.name} "
                         f"has {mesh.n_vertices} vertices")
    n_vertices = mesh.n_vertices if mesh is not None else int(av.max())
    faces = av[fa - 1] - 1
    uv = np.stack([un, vn], axis=1)[fa - 1]
    atlas = ChartAtlas(faces, fi, uv, n_vertices, name=f"DensePose atlas {path.name}",
                       mesh_sha1=None)
    if mesh is not None:
        atlas.check_mesh(mesh)
    return atlas


# ----------------------------------------------------------------------------- save / load
def save_atlas(atlas: ChartAtlas, path: str | os.PathLike, *, store_faces: bool = True) -> Path:
    """Write an atlas as a compressed ``.npz`` (atomically).

    (u, v) are stored as float32 through a table of unique values; ``store_faces=False``
    leaves the faces out (they are then the mesh's, given to :func:`load_atlas`).
    """
    import json

    path = Path(path)
    uv32 = np.ascontiguousarray(atlas.uv.astype(np.float32).reshape(-1, 2))
    table, idx = np.unique(uv32.view(np.uint64).ravel(), return_inverse=True)
    arrays = {
        "charts": atlas.charts.astype(np.uint8 if atlas.n_charts < 256 else np.int32),
        "uv_table": table.view(np.float32).reshape(-1, 2),
        "uv_index": idx.reshape(-1, 3).astype(np.uint16 if len(table) < 65536 else np.int32),
    }
    if store_faces:
        arrays["faces"] = atlas.faces.astype(np.int32)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": atlas.name, "n_vertices": atlas.n_vertices,
            "n_charts": atlas.n_charts, "mesh_sha1": atlas.mesh_sha1, "distortion": atlas.distortion}
    arrays["meta.json"] = np.array(json.dumps(meta))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return path


def load_atlas(path: str | os.PathLike, mesh: Mesh | None = None) -> ChartAtlas:
    """Read an atlas: ``.npz`` (:func:`save_atlas`), ``.mat`` (UV_Processed) or ``.obj`` (vt + groups).

    Parameters
    ----------
    path : path-like
    mesh : Mesh, optional
        Checked against the atlas (vertex count, sha1 when recorded); supplies the faces
        of an ``.npz`` written without them.
    """
    import json
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise AtlasError(f"{path}: no such atlas file")
    suffix = path.suffix.lower()
    if suffix == ".mat":
        return load_uv_processed(path, mesh)
    if suffix == ".obj":
        m, atlas = load_obj_atlas(path)
        if mesh is not None:
            atlas = ChartAtlas(atlas.faces, atlas.charts, atlas.uv, atlas.n_vertices, name=atlas.name).check_mesh(mesh)
        return atlas
    if suffix != ".npz":
        raise AtlasError(f"{path}: unsupported atlas format {suffix!r}; expected .npz, .mat or .obj")
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        meta = json.loads(str(d["meta.json"]))
        if meta.get("format") != FORMAT:
            raise ValueError("not a densemap atlas")
        uv = d["uv_table"].astype(np.float64)[d["uv_index"].astype(np.int64)]
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise AtlasError(f"{path}: cannot read atlas ({type(exc).__name__}: {exc})") from None
    faces = d.get("faces")
    if faces is None:
        if mesh is None:
            raise AtlasError(f"{path}: the atlas has no faces stored; pass its mesh")
        faces = mesh.faces
    atlas = ChartAtlas(faces, d["charts"], uv, meta["n_vertices"], n_charts=meta.get("n_charts"),
                       name=meta.get("name", path.name), mesh_sha1=meta.get("mesh_sha1"), distortion=meta.get("distortion"))
    if mesh is not None:
        atlas.check_mesh(mesh)
    return atlas


@lru_cache(maxsize=None)
def reference_atlas(species: Species) -> ChartAtlas:
    """Atlas of an embedded reference mesh (its 24 charts flattened by :func:`build_atlas`).

    Read from ``densemap/data/<species>_atlas.npz`` (written by
    ``scripts/make_example_annotations.py``) when that file matches the mesh; built
    (about a second) otherwise.
    """
    from . import data

    if species not in get_args(Species):
        raise ValueError(f"unknown species {species!r}; expected one of {list(get_args(Species))}")
    ref = data.reference_human() if species == "human" else data.reference_chimp()
    path = data.data_path(f"{species}_atlas.npz")
    if path.is_file():
        try:
            return load_atlas(path, ref.mesh)
        except AtlasError:
            pass  # stale file (the mesh changed): rebuild
    return build_atlas(ref.mesh, ref.charts, name=f"reference {species} atlas")
