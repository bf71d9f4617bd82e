"""Flatten the parts of a labelled mesh into charts: :func:`build_atlas`.

Each part becomes one chart. A part's edge-connected pieces are cut by planes until
every piece is a topological disk (:func:`_disks`); each disk is flattened by
least-squares conformal maps (:func:`_lscm_disk`, falling back to the harmonic map
when it folds) or harmonically (:func:`_flatten_disk`), cut again while too distorted
or self-overlapping, and the pieces of a chart are shelf-packed into
``[margin, 1 - margin]^2`` (:func:`_pack`). The result is a
:class:`~densemap.charts.ChartAtlas` with the measured distortion.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components

from .._validate import check_choice
from ..errors import AtlasError
from ..mesh import Mesh
from ..parts import PartLabels, face_labels
from .atlas import ChartAtlas, signed_area_2d

__all__ = ["build_atlas"]

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
    check_choice("method", method, get_args(Method))
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    parts.check_mesh(mesh)
    flab = face_labels(mesh.faces, parts.labels)
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
    if signed_area_2d(w).sum() < 0:
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
    a = signed_area_2d(w)
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
        a2 = np.abs(signed_area_2d(w)).sum()
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
    a2 = signed_area_2d(uv)
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
