"""Charts carried from a reference atlas through a map, then relaxed to a valid parametrisation.

:func:`carry_atlas` gives every vertex of a new mesh the (chart, u, v) of its matched
point on the reference atlas; faces take the chart of most of their corners, and a
corner matched into another chart takes the chart-``c`` copy of its matched seam vertex
(or, failing that, no target). Carried coordinates fold where the map does (flipped or
degenerate triangles), so :func:`relax_atlas` re-solves each chart piece:

1. each edge-connected piece of a chart is cut into topological disks and given a
   fold-free start, the mean-value (Tutte) map onto a disk, fitted to the carried
   coordinates by a weighted affine map of positive determinant;
2. from there it minimises ``distortion + fit_weight * misfit``: the area-weighted
   symmetric Dirichlet energy of each triangle's map from its 3-D shape (scaled to the
   chart's size), which grows without bound as a triangle degenerates, plus the
   confidence-weighted squared distance to the carried coordinates, over the mean
   edge length in (u, v). L-BFGS steps are cut short before any triangle would flip
   (the largest safe step solves a quadratic per triangle, as in Smith and Schaefer,
   "Bijective parameterization with free boundaries", 2015), so no iterate ever folds;
3. each chart is finally scaled (a similarity: orientations kept) into
   ``[margin, 1 - margin]^2`` if it left it.

Hand-written because no dependency we allow offers a fold-free, free-boundary
parametrisation with a data term; the method is a few vectorised lines.
"""

from __future__ import annotations

import numpy as np

from ..errors import AtlasError
from ..mesh import Mesh
from .atlas import ChartAtlas, signed_area_2d
from .flatten import _disks, _distortion, _edge_components, _flatten_disk, _lscm_disk
from .iuv import vertex_iuv_table

__all__ = ["carry_atlas", "relax_atlas", "chart_report"]


def _map_points(new_to_ref, n_new: int, ref_faces: np.ndarray, atlas: ChartAtlas):
    """(atlas face (V,), bary (V, 3), ref vertex (V,)) of every new vertex's matched point."""
    idx = np.asarray(getattr(new_to_ref, "indices", new_to_ref), dtype=np.int64)
    if idx.shape != (n_new,):
        raise AtlasError(f"the map must send each of the {n_new} new vertices to a reference vertex, got shape {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= atlas.n_vertices):
        raise AtlasError(f"the map points at reference vertex {int(idx.max())} but the atlas has {atlas.n_vertices}")
    face = -np.ones(n_new, np.int64)
    bary = np.zeros((n_new, 3))
    f_ref, b_ref = getattr(new_to_ref, "faces", None), getattr(new_to_ref, "bary", None)
    if f_ref is not None and b_ref is not None:
        # surface points on the reference mesh's faces -> the atlas's faces (same corner set)
        lookup = {tuple(sorted(t)): k for k, t in enumerate(atlas.faces.tolist())}
        on = np.flatnonzero(np.asarray(f_ref) >= 0)
        tri = np.asarray(ref_faces)[np.asarray(f_ref)[on]]
        for i, t, w in zip(on, tri.tolist(), np.asarray(b_ref)[on]):
            k = lookup.get(tuple(sorted(t)))
            if k is not None and atlas.charts[k] > 0:
                perm = [t.index(c) for c in atlas.faces[k].tolist()]
                face[i], bary[i] = k, w[perm]
    return face, bary, idx


def carry_atlas(ref_atlas: ChartAtlas, new_mesh: Mesh, new_to_ref, *, ref_faces=None, confidence=None,
                name: str | None = None) -> tuple[ChartAtlas, np.ndarray]:
    """The reference atlas's charts and (u, v) carried onto a new mesh through a map.

    Parameters
    ----------
    ref_atlas : ChartAtlas
    new_mesh : Mesh
    new_to_ref : VertexMap or (V_new,) int
        The reference vertex of each new vertex; a map with surface points (``faces``,
        ``bary`` on the reference mesh's faces ``ref_faces``) carries exact (u, v).
    ref_faces : (F_ref, 3) int, optional
        The reference mesh's faces (default: the atlas's).
    confidence : (V_new,) float in [0, 1], optional
        How much each vertex's carried (u, v) is trusted (default 1).

    Returns
    -------
    atlas : ChartAtlas
        On ``new_mesh``'s faces; it may have flipped or degenerate triangles.
    weight : (F_new, 3) float
        Confidence of each face corner's carried (u, v): 0 where a corner had no
        coordinate in its face's chart (it got its face's mean instead).
    """
    nv = new_mesh.n_vertices
    ref_faces = ref_atlas.faces if ref_faces is None else np.asarray(ref_faces)
    face, bary, vidx = _map_points(new_to_ref, nv, ref_faces, ref_atlas)
    conf = np.ones(nv) if confidence is None else np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)
    if conf.shape != (nv,):
        raise AtlasError(f"confidence must have shape ({nv},), got {conf.shape}")
    table = vertex_iuv_table(ref_atlas)  # (vertex, chart, u, v) of every chart copy of every vertex
    tv = table[:, 0].astype(np.int64)
    # per new vertex: chart and (u, v) of the matched surface point, else of the matched vertex's first copy
    c = np.zeros(nv, np.int64)
    uv = np.full((nv, 2), np.nan)
    s = face >= 0
    cc, uu, vv = ref_atlas.chart_coords(face[s], bary[s])
    c[s], uv[s] = cc, np.c_[uu, vv]
    first = np.searchsorted(tv, vidx[~s])
    ok = (first < len(tv)) & (tv[np.minimum(first, len(tv) - 1)] == vidx[~s])
    rows = np.flatnonzero(~s)[ok]
    c[rows], uv[rows] = table[first[ok], 1].astype(np.int64), table[first[ok], 2:]
    from ..parts import face_labels

    fc = face_labels(new_mesh.faces, np.where(c > 0, c, -1))
    fc = np.where(fc > 0, fc, 0)
    corner_v = new_mesh.faces
    cuv = uv[corner_v].copy()  # (F, 3, 2)
    w = conf[corner_v] * (c[corner_v] == fc[:, None])
    # corners matched into another chart: the chart-fc copy of the matched reference vertex, if it has one
    key = {(int(a), int(b)): k for k, (a, b) in enumerate(table[:, :2].astype(np.int64).tolist())}
    for f, k in np.argwhere((c[corner_v] != fc[:, None]) & (fc[:, None] > 0)):
        j = key.get((int(vidx[corner_v[f, k]]), int(fc[f])))
        if j is not None:
            cuv[f, k] = table[j, 2:]
            w[f, k] = 0.5 * conf[corner_v[f, k]]
        else:
            cuv[f, k] = np.nan
    # what is left without a coordinate takes its face's other corners' mean (weight 0)
    miss = ~np.isfinite(cuv).all(axis=2) & (fc[:, None] > 0)
    mean = np.nanmean(np.where(miss[..., None], np.nan, cuv), axis=1)
    cuv[miss] = np.repeat(mean[:, None], 3, axis=1)[miss]
    w[miss] = 0.0
    _whole_faces(ref_atlas, vidx[new_mesh.faces], conf[new_mesh.faces], fc, cuv, w)
    dead = (fc > 0) & ~np.isfinite(cuv).all(axis=(1, 2))
    cuv[dead], fc[dead], w[dead] = np.nan, 0, 0.0
    cuv[fc > 0] = np.clip(cuv[fc > 0], 0.0, 1.0)
    atlas = ChartAtlas(new_mesh.faces, fc, cuv, nv, n_charts=ref_atlas.n_charts,
                       name=name or f"{ref_atlas.name} carried to {new_mesh.name}", mesh_sha1=new_mesh.sha1)
    return atlas, w


def _whole_faces(ref_atlas: ChartAtlas, matched, conf, fc, cuv, w) -> None:
    """Faces whose three corners map onto the corners of one charted reference face take that
    face's chart and corner (u, v) (in place): the identity map gives the atlas back exactly."""
    lookup = {tuple(sorted(t)): k for k, t in enumerate(ref_atlas.faces.tolist()) if ref_atlas.charts[k] > 0}
    for f, t in enumerate(matched.tolist()):
        k = lookup.get(tuple(sorted(t)))
        if k is None or len(set(t)) < 3:
            continue
        perm = [ref_atlas.faces[k].tolist().index(c) for c in t]
        fc[f], cuv[f], w[f] = ref_atlas.charts[k], ref_atlas.uv[k][perm], conf[f]


# ----------------------------------------------------------------------------- relaxation
def _rest_frames(x3, scale):
    """(m, 2, 2) inverse of each triangle's edge matrix in its own 2-D frame, scaled, and areas."""
    e1, e2 = x3[:, 1] - x3[:, 0], x3[:, 2] - x3[:, 0]
    n = np.cross(e1, e2)
    a2 = np.linalg.norm(n, axis=1)
    xa = e1 / np.linalg.norm(e1, axis=1, keepdims=True)
    ya = np.cross(n / a2[:, None], xa)
    P = np.stack([np.c_[(e1 * xa).sum(1), (e1 * ya).sum(1)], np.c_[(e2 * xa).sum(1), (e2 * ya).sum(1)]], axis=2) * scale[:, None, None]
    return np.linalg.inv(P), 0.5 * a2 * scale**2


def _scatter(tri: np.ndarray, n: int):
    """(n, 3m) sparse matrix summing per-corner values into vertices."""
    import scipy.sparse as sp

    m = len(tri)
    return sp.csr_matrix((np.ones(3 * m), (tri.T.ravel(), np.arange(3 * m))), shape=(n, 3 * m))


def _energy(x, tri, S, Pinv, area, target, tw, mu):
    """Energy and gradient (n, 2): area-weighted symmetric Dirichlet + mu * weighted squared misfit."""
    q = x[tri]
    Q = np.stack([q[:, 1] - q[:, 0], q[:, 2] - q[:, 0]], axis=2)  # (m, 2, 2) columns = edges
    J = Q @ Pinv
    det = J[:, 0, 0] * J[:, 1, 1] - J[:, 0, 1] * J[:, 1, 0]
    if not (det > 0).all():
        return np.inf, None
    fro = (J**2).sum(axis=(1, 2))
    e_sd = (area * fro * (1.0 + 1.0 / det**2)).sum()
    cof = np.stack([np.stack([J[:, 1, 1], -J[:, 1, 0]], 1), np.stack([-J[:, 0, 1], J[:, 0, 0]], 1)], 1)
    dJ = area[:, None, None] * (2.0 * J * (1.0 + 1.0 / det**2)[:, None, None] - (2.0 * fro / det**3)[:, None, None] * cof)
    dQ = dJ @ np.transpose(Pinv, (0, 2, 1))
    per_corner = np.concatenate([-dQ[:, :, 0] - dQ[:, :, 1], dQ[:, :, 0], dQ[:, :, 1]])  # corner 0, 1, 2 blocks
    r = x - target
    return e_sd + mu * (tw * (r**2).sum(1)).sum(), S @ per_corner + 2.0 * mu * tw[:, None] * r


def _max_step(x, p, tri) -> float:
    """Largest step along p before some triangle's signed area reaches zero."""
    q, d = x[tri], p[tri]
    a1, a2 = q[:, 1] - q[:, 0], q[:, 2] - q[:, 0]
    b1, b2 = d[:, 1] - d[:, 0], d[:, 2] - d[:, 0]
    c0 = a1[:, 0] * a2[:, 1] - a1[:, 1] * a2[:, 0]
    c1 = a1[:, 0] * b2[:, 1] + b1[:, 0] * a2[:, 1] - a1[:, 1] * b2[:, 0] - b1[:, 1] * a2[:, 0]
    c2 = b1[:, 0] * b2[:, 1] - b1[:, 1] * b2[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = c1**2 - 4 * c2 * c0
        sq = np.sqrt(np.maximum(disc, 0))
        r = np.stack([(-c1 - sq) / (2 * c2), (-c1 + sq) / (2 * c2), -c0 / c1], 1)
        r[:, :2][np.abs(c2) < 1e-300] = np.inf
        r[:, :2][disc < 0] = np.inf
        r[:, 2][(np.abs(c2) >= 1e-300) | (np.abs(c1) < 1e-300)] = np.inf
    r[~(r > 0)] = np.inf
    return float(r.min()) if r.size else np.inf


def _lbfgs(x, fun, tri, iterations: int, *, step0: float, memory: int = 8, tol: float = 1e-9):
    """Fold-free L-BFGS: every step stops short of the first triangle flip.

    Without curvature history (the first step, and after a restart) the gradient is
    scaled so that no vertex moves more than ``step0``.
    """
    f, g = fun(x)
    s_hist, y_hist = [], []
    for _ in range(iterations):
        q = g.ravel().copy()
        alphas = []
        for s, y in reversed(list(zip(s_hist, y_hist))):
            a = (s @ q) / (y @ s)
            alphas.append(a)
            q -= a * y
        if s_hist:
            q *= (s_hist[-1] @ y_hist[-1]) / (y_hist[-1] @ y_hist[-1])
        else:
            q *= step0 / max(float(np.abs(q).max()), 1e-300)
        for (s, y), a in zip(zip(s_hist, y_hist), reversed(alphas)):
            q += (a - (y @ q) / (y @ s)) * s
        p = -q.reshape(x.shape)
        if (p.ravel() @ g.ravel()) >= 0:  # not a descent direction: restart from the gradient
            p, s_hist, y_hist = -g * (step0 / max(float(np.abs(g).max()), 1e-300)), [], []
        step = min(1.0, 0.8 * _max_step(x, p, tri))
        slope = p.ravel() @ g.ravel()
        while step > 1e-16:
            xn = x + step * p
            fn, gn = fun(xn)
            if fn <= f + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break
        s_vec, y_vec = (xn - x).ravel(), (gn - g).ravel()
        if y_vec @ s_vec > 1e-300:
            s_hist.append(s_vec)
            y_hist.append(y_vec)
            s_hist, y_hist = s_hist[-memory:], y_hist[-memory:]
        done = abs(f - fn) <= tol * max(abs(f), 1.0)
        x, f, g = xn, fn, gn
        if done:
            break
    return x


def _fit_start(start, target, w, size: float):
    """Affine map (positive determinant) of a fold-free start onto the weighted targets.

    Falls back to a rotation and scale (Procrustes), and, where the targets are
    degenerate (all at one point), to the start scaled to ``size`` (its (u, v) area)
    and centred on them.
    """
    wt = np.maximum(w, 1e-6)
    mu_s, mu_t = (wt[:, None] * start).sum(0) / wt.sum(), (wt[:, None] * target).sum(0) / wt.sum()
    a, b = start - mu_s, target - mu_t
    a_size = max(float(np.sqrt((a**2).sum(1).mean())), 1e-300)
    M = np.linalg.lstsq(np.sqrt(wt)[:, None] * a, np.sqrt(wt)[:, None] * b, rcond=None)[0].T
    if not np.linalg.det(M) > 1e-6 * (size / a_size) ** 2:
        u, sv, vt = np.linalg.svd((wt[:, None] * b).T @ a)
        r = u @ np.diag([1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
        k = sv.sum() / max((wt * (a**2).sum(1)).sum(), 1e-300)
        M = r * (k if k > 1e-3 * size / a_size else size / a_size)
    return a @ M.T + mu_t


def _pieces(mesh: Mesh, atlas: ChartAtlas) -> list[np.ndarray]:
    out = []
    for cid in range(1, atlas.n_charts + 1):
        fids = np.flatnonzero(atlas.charts == cid)
        for comp in _edge_components(mesh.faces[fids]) if len(fids) else []:
            out += _disks(mesh.vertices, mesh.faces, fids[comp])
    return out


def _problem(mesh: Mesh, atlas: ChartAtlas, pieces, w_corner) -> dict:
    """The pieces as one problem: one (u, v) variable per (piece, vertex), sharing nothing.

    Returns tri (m, 3) local corners, target (n, 2) carried (u, v), tw (n,) their
    weights, start (n, 2) a fold-free start, Pinv (m, 2, 2) rest frames (3-D shape at the
    chart's (u, v) scale, mirrored where the chart's orientation is), area (m,) rest
    areas, sign (m,) the orientation each triangle must keep, piece (n,) owner.
    """
    a3 = mesh.face_areas
    n_c = atlas.n_charts + 1
    uv_area = np.bincount(atlas.charts, weights=np.abs(signed_area_2d(atlas.uv)), minlength=n_c)
    chart_scale = np.sqrt(uv_area / np.maximum(np.bincount(atlas.charts, weights=a3, minlength=n_c), 1e-300))
    # each chart keeps one orientation: that of most of its carried area
    chart_sign = np.where(np.bincount(atlas.charts, weights=signed_area_2d(atlas.uv), minlength=n_c) < 0, -1.0, 1.0)
    out = {k: [] for k in ("tri", "target", "tw", "start", "Pinv", "area", "sign", "piece")}
    base = 0
    for pid, fids in enumerate(pieces):
        verts, local = np.unique(mesh.faces[fids], return_inverse=True)
        local, n = local.reshape(-1, 3), len(verts)
        cnt = np.bincount(local.ravel(), minlength=n).astype(np.float64)
        t = np.stack([np.bincount(local.ravel(), weights=atlas.uv[fids][..., d].ravel(), minlength=n) for d in (0, 1)], 1)
        t /= cnt[:, None]
        wv = np.bincount(local.ravel(), weights=w_corner[fids].ravel(), minlength=n) / cnt
        cid = atlas.charts[fids[0]]
        start = _lscm_disk(mesh.vertices, mesh.faces[fids]) if len(fids) > 1 else None  # None if it folds
        if start is None:
            start = _flatten_disk(mesh.vertices, mesh.faces[fids])  # mean-value weights never fold
        sv = np.zeros((n, 2))
        sv[local.ravel()] = start.reshape(-1, 2)
        sv[:, 0] *= chart_sign[cid]
        scale = chart_scale[cid]
        Pinv, ar = _rest_frames(mesh.vertices[mesh.faces[fids]], np.full(len(fids), scale))
        Pinv = Pinv @ np.diag([chart_sign[cid], 1.0])  # mirrored with the chart: the optimum keeps its orientation
        for key, val in (("tri", local + base), ("target", t), ("tw", wv), ("start", _fit_start(sv, t, wv, scale * np.sqrt(a3[fids].sum()))),
                         ("Pinv", Pinv), ("area", ar), ("sign", np.full(len(fids), chart_sign[cid])), ("piece", np.full(n, pid))):
            out[key].append(val)
        base += n
    return {k: np.concatenate(v) for k, v in out.items()}


def _det(x, tri):
    q = x[tri]
    a, b = q[:, 1] - q[:, 0], q[:, 2] - q[:, 0]
    return a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0], a, b


def relax_atlas(mesh: Mesh, atlas: ChartAtlas, weight=None, *, fit_weight: float = 1.0, iterations: int = 1500,
                margin: float = 0.02, name: str | None = None) -> ChartAtlas:
    """Re-solve every chart piece of a carried atlas into a fold-free parametrisation near it.

    Parameters
    ----------
    mesh : Mesh
        The mesh the atlas's faces stand on.
    atlas : ChartAtlas
        Carried charts (:func:`carry_atlas`), possibly folded.
    weight : (F, 3) float, optional
        Confidence of each corner's carried (u, v) (default 1); a vertex's weight is
        the mean over its corners in the piece.
    fit_weight : float
        Weight of the misfit (in squared mean (u, v) edge lengths per vertex) against the
        distortion (symmetric Dirichlet, 4 per unit area at an isometry).
    iterations : int
        L-BFGS iterations of the final, fold-free stage (it stops earlier once it stalls).
        Hands need many: on the embedded chimp 300 leave their median area distortion
        at about 400 (the fingers of a conformal start), 1500 bring it to 2.
    margin : float
        A chart that left ``[0, 1]^2`` is scaled into ``[margin, 1 - margin]^2``.

    Returns
    -------
    ChartAtlas
        Same charts; no flipped or degenerate triangle; ``distortion`` holds
        :func:`chart_report` before and after.

    Notes
    -----
    A piece whose carried coordinates do not fold (every triangle keeps its chart's
    orientation and 5% of its expected area) starts from them; the others start from a
    fold-free flattening (LSCM, or mean-value weights) fitted to them. The fold-free
    descent then runs three times with the misfit weight growing to ``fit_weight``.
    """
    if mesh.n_faces != atlas.n_faces or not np.array_equal(mesh.faces, atlas.faces):
        raise AtlasError(f"{atlas.name}: the atlas does not stand on the faces of {mesh.name}")
    w_corner = np.ones((atlas.n_faces, 3)) if weight is None else np.asarray(weight, dtype=np.float64)
    if w_corner.shape != (atlas.n_faces, 3):
        raise AtlasError(f"weight must have shape ({atlas.n_faces}, 3), got {w_corner.shape}")
    before = chart_report(mesh, atlas)
    pieces = _pieces(mesh, atlas)
    if not pieces:
        return atlas
    pb = _problem(mesh, atlas, pieces, w_corner)
    tri, target, tw, piece = pb["tri"], pb["target"], pb["tw"], pb["piece"]
    e = max(float(np.linalg.norm(target[tri[:, [1, 2, 0]]] - target[tri], axis=2).mean()), 1e-12)
    # a piece whose carried (u, v) do not fold starts there, the others from a fold-free flattening
    ratio = pb["sign"] * _det(target, tri)[0] / (2.0 * pb["area"])
    folded = np.unique(piece[tri[~(ratio > 0.05)].ravel()])
    restart = np.isin(piece, folded)
    x = np.where(restart[:, None], pb["start"], target)
    S = _scatter(tri, len(x))
    area_n = pb["area"] / pb["area"].sum()
    # continuation: the misfit weight grows to fit_weight, so the early steps stay well conditioned
    for k, frac in enumerate((0.01, 0.1, 1.0)):
        mu = frac * fit_weight / (e**2 * max(tw.sum(), 1e-12))
        x = _lbfgs(x, lambda z: _energy(z, tri, S, pb["Pinv"], area_n, target, tw, mu), tri,
                   iterations if k == 2 else iterations // 3, step0=0.1 * e)
    uv = atlas.uv.copy()
    uv[np.concatenate(pieces)] = x[tri]
    uv = _fit_unit_square(uv, atlas.charts, margin)
    out = ChartAtlas(mesh.faces, atlas.charts, uv, mesh.n_vertices, n_charts=atlas.n_charts,
                     name=name or f"{atlas.name} (relaxed)", mesh_sha1=mesh.sha1)
    dev = np.linalg.norm(x - target, axis=1)
    report = {"before": before, "after": chart_report(mesh, out), "pieces": len(pieces),
              "restarted_pieces": int(len(folded)), "fit_weight": fit_weight,
              "misfit_median": float(np.median(dev)), "misfit_p90": float(np.percentile(dev, 90))}
    return ChartAtlas(out.faces, out.charts, out.uv, out.n_vertices, n_charts=out.n_charts, name=out.name,
                      mesh_sha1=out.mesh_sha1, distortion=report)


def _fit_unit_square(uv, charts, margin):
    """Scale each chart that left [0, 1]^2 uniformly about its centre into [margin, 1 - margin]^2."""
    for cid in np.unique(charts[charts > 0]):
        f = charts == cid
        pts = uv[f].reshape(-1, 2)
        lo, hi = pts.min(0), pts.max(0)
        if lo.min() >= 0 and hi.max() <= 1:
            continue
        span = max(float((hi - lo).max()), 1e-300)
        k = min(1.0, (1 - 2 * margin) / span)
        uv[f] = (uv[f] - (lo + hi) / 2) * k + 0.5
    return uv


def _face_distortion(vertices, faces, uv) -> tuple[np.ndarray, np.ndarray]:
    """Per face ``max(J, 1 / J)`` of the area ratio (relative to the piece's overall scale)
    and ``s1 / s2``: the per-face terms behind :func:`~densemap.charts.flatten.build_atlas`'s
    means (inf for a flipped or degenerate face, as they count against it)."""
    p = vertices[faces]
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    n = np.cross(e1, e2)
    a3 = 0.5 * np.linalg.norm(n, axis=1)
    x = e1 / np.maximum(np.linalg.norm(e1, axis=1, keepdims=True), 1e-300)
    y = np.cross(n / np.maximum(2 * a3[:, None], 1e-300), x)
    P = np.stack([np.c_[(e1 * x).sum(1), (e1 * y).sum(1)], np.c_[(e2 * x).sum(1), (e2 * y).sum(1)]], axis=2)
    Q = np.stack([uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]], axis=2)
    a2 = signed_area_2d(uv)
    ok = (a3 > 0) & (a2 > 0)
    area, angle = np.full(len(faces), np.inf), np.full(len(faces), np.inf)
    if ok.any():
        s = np.linalg.svd(Q[ok] @ np.linalg.inv(P[ok]), compute_uv=False)
        scale = np.abs(a2).sum() / max(a3.sum(), 1e-300)
        det = s[:, 0] * s[:, 1] / scale
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero singular value: infinite distortion
            area[ok], angle[ok] = np.maximum(det, 1 / det), s[:, 0] / s[:, 1]
    return area, angle


def chart_report(mesh: Mesh, atlas: ChartAtlas) -> dict:
    """Per chart and overall: area and angle distortion, flipped and degenerate triangles.

    Flipped = signed (u, v) area of the opposite sign to its chart's total; degenerate =
    zero (u, v) or 3-D area. ``area`` and ``angle`` are those of :func:`build_atlas`
    (area-weighted means of ``max(s1 s2, 1 / (s1 s2))`` relative to the chart's scale and
    of ``s1 / s2``) over the non-flipped, non-degenerate triangles; overall, the charts'
    figures weighted by their surface area (``surface``). A few nearly degenerate
    triangles dominate those means; ``area_median`` and ``angle_median`` (per chart and
    over all faces, flipped and degenerate ones counting as infinite) are the robust figures.

    Examples
    --------
    >>> from densemap.charts import reference_atlas
    >>> from densemap.data import reference
    >>> r = chart_report(reference("chimp").mesh, reference_atlas("chimp"))
    >>> r["flipped"], len(r["per_chart"]), bool(1 <= r["angle"] < 2)
    (0, 24, True)
    """
    per, medians = {}, []
    for cid in np.unique(atlas.charts[atlas.charts > 0]).tolist():
        f = np.flatnonzero(atlas.charts == cid)
        uv = atlas.uv[f].copy()
        sa = signed_area_2d(uv)
        if sa.sum() < 0:
            uv[..., 0] *= -1
        d = _distortion(mesh.vertices, mesh.faces[f], uv)
        per[cid] = {k: d[k] for k in ("faces", "area", "angle", "flipped", "degenerate")}
        per[cid]["surface"] = float(mesh.face_areas[f].sum())
        fa, fg = _face_distortion(mesh.vertices, mesh.faces[f], uv)
        per[cid]["area_median"], per[cid]["angle_median"] = float(np.median(fa)), float(np.median(fg))
        medians.append((fa, fg))
    n = max(sum(d["faces"] for d in per.values()), 1)
    total = {k: int(sum(d[k] for d in per.values())) for k in ("faces", "flipped", "degenerate")}
    total["flipped_fraction"] = total["flipped"] / n
    total["degenerate_fraction"] = total["degenerate"] / n
    s = max(sum(d["surface"] for d in per.values()), 1e-300)
    for k in ("area", "angle"):  # surface-weighted means of the charts' figures
        total[k] = float(sum(d[k] * d["surface"] for d in per.values()) / s)
    if medians:
        total["area_median"] = float(np.median(np.concatenate([m[0] for m in medians])))
        total["angle_median"] = float(np.median(np.concatenate([m[1] for m in medians])))
    return {**total, "per_chart": per}
