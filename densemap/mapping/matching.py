"""Nearest-descriptor matching and its refinement to points on the target surface.

:func:`match_descriptors` sends every source vertex to the target vertex with the nearest
descriptor (L2; scipy's KD-tree on the CPU, chunked float32 distances re-ranked in float64
on a device), optionally only within the same part. :func:`surface_points` refines a vertex
match to the point of the target's surface, among the faces around the matched vertex,
whose linearly interpolated descriptor is nearest.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
from scipy.spatial import cKDTree

from .._validate import check_choice
from ..mesh import Mesh
from ..parts import PartLabels
from ..surface import closest_point_from_edges, surface_positions, vertex_face_incidence
from .vertex_map import VertexMap

__all__ = ["MatchBackend", "match_descriptors", "standardize_part", "surface_points", "as_descriptor_array"]

MatchBackend = Literal["auto", "kdtree", "torch"]


def _labels(parts, n: int, what: str) -> np.ndarray:
    lab = parts.labels if isinstance(parts, PartLabels) else np.asarray(parts)
    if lab.shape != (n,):
        raise ValueError(f"{what} must have one label per vertex ({n}), got shape {lab.shape}")
    return lab.astype(np.int64, copy=False)


def as_descriptor_array(x, what: str):
    """numpy float64 array of ``x`` and the device of ``x`` if it is a tensor."""
    dev = None
    if type(x).__module__.startswith("torch"):
        dev = x.device
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{what} must have shape (V, L), got {a.shape}")
    bad = ~np.isfinite(a).all(axis=1)
    if bad.any():
        raise ValueError(f"{what}[{int(np.flatnonzero(bad)[0])}] is not finite ({int(bad.sum())} such rows)")
    return a, dev


def _nn_kdtree(q: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d, i = cKDTree(ref).query(q, k=1, workers=-1)
    return i.astype(np.int64), d


_CANDIDATES = 8  # float32 nearest candidates per source row, re-ranked in float64


def _nn_torch(q: np.ndarray, ref: np.ndarray, device, chunk: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Nearest ``ref`` row of every ``q`` row: float32 distances through one GEMM per block
    (float64 runs at 1/32-1/64 of the rate on consumer GPUs), then the best few candidates
    re-ranked with exact float64 differences. A row whose candidates might not contain the
    true nearest neighbour (the float32 error bound is wider than the gap to the last
    candidate) is searched again in float64, so the result is the KD-tree's."""
    import torch

    device = torch.device(device)
    mu = ref.mean(axis=0)  # centred: the float32 error scales with the norms, not the distances
    r64 = torch.tensor(ref - mu, device=device)
    r32 = r64.float()
    rn32 = r32.square().sum(1)
    rmax = float(r64.square().sum(1).max())
    # unit roundoff of float32 products: TF32 or bfloat16 when torch is allowed to use them
    eps = {"highest": 2.0**-24, "high": 2.0**-11}.get(torch.get_float32_matmul_precision(), 2.0**-8)
    slack = 2 * (2 * ref.shape[1] + 16) * eps  # twice a bound on |d2_32 - d2_64| / (|q|^2 + max |r|^2)
    k = min(_CANDIDATES, len(ref))
    if chunk is None:  # 2**24 float32 distances per block on the CPU (64 MB), 2**26 on a GPU
        chunk = max(1, (1 << (26 if device.type == "cuda" else 24)) // max(len(ref), 1))
    out = torch.empty(len(q), dtype=torch.long, device=device)
    for s in range(0, len(q), chunk):
        q64 = torch.tensor(q[s : s + chunk] - mu, device=device)
        q32 = q64.float()
        d2 = torch.addmm(rn32[None, :], q32, r32.T, alpha=-2.0).add_(q32.square().sum(1, keepdim=True))
        top, cand = torch.topk(d2, k, dim=1, largest=False)  # ascending
        e2 = (q64[:, None, :] - r64[cand]).square_().sum(-1)  # exact float64, (c, k)
        # exact ties go to the lowest index (the KD-tree picks any of them)
        e2min = e2.amin(1, keepdim=True)
        best = torch.where(e2 == e2min, cand, torch.iinfo(torch.long).max).amin(1)
        if k < len(ref):
            tol = slack * (q64.square().sum(1) + rmax)
            unsure = torch.nonzero(top[:, -1].double() - top[:, 0].double() <= tol).squeeze(1)
            if len(unsure):
                full = torch.cdist(q64[unsure], r64, compute_mode="donot_use_mm_for_euclid_dist")
                best[unsure] = full.argmin(1)
        out[s : s + chunk] = best
    idx = out.cpu().numpy()
    return idx, np.linalg.norm(q - ref[idx], axis=1)


def match_descriptors(
    desc_src,
    desc_tgt,
    *,
    parts_src: PartLabels | np.ndarray | None = None,
    parts_tgt: PartLabels | np.ndarray | None = None,
    same_part: bool = False,
    device=None,
    backend: MatchBackend = "auto",
    chunk: int | None = None,
    source_name: str = "source",
    target_name: str = "target",
    standardize: bool = False,
    weights_src=None,
    weights_tgt=None,
) -> VertexMap:
    """Match every source vertex to the target vertex with the nearest descriptor (L2).

    Parameters
    ----------
    desc_src : (V_src, L) float
        Source descriptors (numpy array or tensor).
    desc_tgt : (V_tgt, L) float
    parts_src, parts_tgt : PartLabels or (V,) int, optional
        Part labels, in the same part order (see :func:`~densemap.parts.match_parts`);
        needed for ``same_part``.
    same_part : bool
        Restrict each labelled source vertex to the target vertices of its part (one
        search per part); unlabelled source vertices (``-1``) match anywhere.
    device : str or torch.device, optional
        None (or a tensor's device if tensors are given) searches on the CPU with a
        KD-tree; a device runs chunked float32 distances + a float64 re-ranking there.
    backend : {"auto", "kdtree", "torch"}
        "auto" = KD-tree on the CPU, torch on a device; "torch" forces the torch path
        (also on the CPU, e.g. to compare the two paths).
    chunk : int, optional
        Source rows per distance block (default: about 2**24 distances per block on the
        CPU, 2**26 on CUDA). The torch path ranks float32 distances and re-ranks the best
        candidates in float64, so it returns the KD-tree's matches (exact ties aside).
    standardize : bool
        With ``same_part``: compare each part's descriptors after centring and scaling
        them over the part on each mesh (:func:`standardize_part`), so the match follows
        the shape of the descriptors within the part, not their offset and spread, which
        the two meshes' proportions change (docs/alignment.md). Unlabelled source
        vertices, and parts missing from the target, match the raw descriptors anywhere.
    weights_src, weights_tgt : (V,) float, optional
        Vertex weights of those means (e.g. vertex areas; default: equal).

    Returns
    -------
    VertexMap
        ``distances`` holds the (unsquared) descriptor distance of each match.

    Examples
    --------
    >>> import numpy as np
    >>> m = match_descriptors(np.array([[0.0], [0.9], [2.2]]), np.array([[0.0], [1.0], [2.0]]))
    >>> m.indices, m.distances.round(2)
    (array([0, 1, 2]), array([0. , 0.1, 0.2]))
    """
    check_choice("backend", backend, get_args(MatchBackend))
    src, dev_s = as_descriptor_array(desc_src, "desc_src")
    tgt, dev_t = as_descriptor_array(desc_tgt, "desc_tgt")
    if src.shape[1] != tgt.shape[1]:
        raise ValueError(f"descriptors differ in length: {src.shape[1]} (source) vs {tgt.shape[1]} (target)")
    if len(tgt) == 0:
        raise ValueError("the target has no vertex to match")
    if device is None:
        device = dev_s if dev_s is not None else dev_t
    if backend == "auto":
        backend = "kdtree" if device is None or str(device) == "cpu" else "torch"
    if backend == "torch" and device is None:
        device = "cpu"

    def nn(q, ref):
        if backend == "kdtree":
            return _nn_kdtree(q, ref)
        return _nn_torch(q, ref, device, chunk)

    idx = np.empty(len(src), np.int64)
    dist = np.empty(len(src), np.float64)
    if not same_part:
        idx[:], dist[:] = nn(src, tgt)
    else:
        if parts_src is None or parts_tgt is None:
            raise ValueError("same_part=True needs parts_src and parts_tgt")
        ls = _labels(parts_src, len(src), "parts_src")
        lt = _labels(parts_tgt, len(tgt), "parts_tgt")
        ws = _weights(weights_src, len(src), "weights_src")
        wt = _weights(weights_tgt, len(tgt), "weights_tgt")
        for k in np.unique(ls):
            rows = np.flatnonzero(ls == k)
            cols = np.flatnonzero(lt == k) if k >= 0 else np.arange(len(tgt))
            within = k >= 0 and len(cols) > 0
            if not within:  # unlabelled, or a part missing from the target: match anywhere
                cols = np.arange(len(tgt))
            q, t = src[rows], tgt[cols]
            if standardize and within:
                i, _ = nn(standardize_part(q, None if ws is None else ws[rows]),
                          standardize_part(t, None if wt is None else wt[cols]))
                d = np.linalg.norm(q - t[i], axis=1)  # reported in the descriptors' own units
            else:
                i, d = nn(q, t)
            idx[rows], dist[rows] = cols[i], d
    return VertexMap(idx, dist, source_name=source_name, target_name=target_name, n_target=len(tgt))


def _weights(w, n: int, what: str) -> np.ndarray | None:
    """``w`` as (n,) float64 (None stays None); refuses another length."""
    if w is None:
        return None
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    if len(w) != n:
        raise ValueError(f"{what} has {len(w)} values but the descriptors have {n} rows")
    return w


def standardize_part(desc: np.ndarray, weights=None) -> np.ndarray:
    """One part's descriptors (n, L) centred on their (weighted) mean and divided by their
    RMS distance from it (one scale for all columns, so their relative weights stay).

    Distances to the other parts shift and stretch together with the proportions: a foot
    at the end of a shorter leg has every column lower, and the plain nearest neighbour
    then follows that offset (on the asymmetric test pair it turned whole feet toe to
    heel). Standardised, the match compares where each vertex lies *within* the part.
    A part whose descriptors are all equal is only centred.

    >>> standardize_part(np.array([[1.0, 2.0], [3.0, 2.0]]))
    array([[-1.,  0.],
           [ 1.,  0.]])
    """
    d = np.asarray(desc, dtype=np.float64)
    w = np.full(len(d), 1.0 / max(len(d), 1)) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    centred = d - w @ d
    rms = float(np.sqrt(w @ (centred * centred).sum(1)))
    return centred / rms if rms > 0 else centred


_CELL = 0.49  # "cell" surface points: the matched vertex keeps a barycentric weight >= 1 - _CELL


def surface_points(desc_src, desc_tgt, target: Mesh, indices, *, within: Literal["ring", "cell"] = "ring",
                   chunk: int | None = None):
    """Refine vertex matches to points on the target surface.

    Among the faces around each matched target vertex (its one-ring), find the point
    whose linearly interpolated descriptor (any per-vertex embedding) is nearest to the
    source descriptor.

    Parameters
    ----------
    desc_src : (V_src, L) float
    desc_tgt : (V_tgt, L) float
    target : Mesh
    indices : (V_src,) int
        Matched target vertex of each source vertex.
    within : {"ring", "cell"}
        ``"ring"``: anywhere on the one-ring's faces; ``"cell"``: only where the matched
        vertex keeps the largest barycentric weight (>= 0.51), so the surface point
        rounds back to its vertex and stays in its part.
    chunk : int, optional
        Candidate faces per block (None: about 8 MB per (rows, L) float64 array). The
        result does not depend on it; small blocks are faster (a first block of 100k rows
        in 200 dimensions cost 1.3-1.7 s of fresh memory against 0.3 s in blocks of 5k).

    Returns
    -------
    faces : (V_src,) int
        Face of each surface point; ``-1`` where the vertex has no face.
    bary : (V_src, 3) float
        Barycentric coordinates in that face (``[1, 0, 0]`` where ``faces == -1``).
    distances : (V_src,) float
        Descriptor distance at the surface point (never above the vertex's).
    """
    check_choice("within", within, ("ring", "cell"))
    src, _ = as_descriptor_array(desc_src, "desc_src")
    tgt, _ = as_descriptor_array(desc_tgt, "desc_tgt")
    idx = np.asarray(indices, dtype=np.int64)
    F = target.faces
    inc = vertex_face_incidence(F, target.n_vertices)
    counts = np.diff(inc.indptr)[idx]
    n = len(idx)
    faces = -np.ones(n, np.int64)
    bary = np.tile([1.0, 0.0, 0.0], (n, 1))
    dist = np.linalg.norm(src - tgt[idx], axis=1)
    if chunk is None:
        chunk = max(256, (1 << 23) // (8 * max(src.shape[1], 1)))
    # process whole sources per block so that each source's faces stay together
    ends = np.cumsum(counts)
    s = 0
    while s < n:
        e = int(np.searchsorted(ends, (ends[s - 1] if s else 0) + chunk, side="right"))
        e = max(e, s + 1)
        rows = np.arange(s, e)
        cnt = counts[rows]
        rep = np.repeat(rows, cnt)
        if len(rep):
            start = np.repeat(inc.indptr[idx[rows]], cnt)
            off = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            fid = inc.indices[start + off]
            tri = F[fid]
            if within == "cell":  # rotate each face so that the matched vertex comes first
                first = np.argmax(tri == idx[rep][:, None], axis=1)
                rot = (first[:, None] + np.arange(3)[None]) % 3
                tri = np.take_along_axis(tri, rot, axis=1)
                t0 = tgt[tri[:, 0]]
                w, cost = closest_point_from_edges(src[rep] - t0, _CELL * (tgt[tri[:, 1]] - t0),
                                                   _CELL * (tgt[tri[:, 2]] - t0))
                # back to the face's corners: (a, b, c) on the shrunk triangle -> (a + (b + c)(1 - CELL), CELL b, CELL c)
                w = np.stack([w[:, 0] + (1 - _CELL) * (w[:, 1] + w[:, 2]), _CELL * w[:, 1], _CELL * w[:, 2]], 1)
                w = np.take_along_axis(w, np.argsort(rot, axis=1), axis=1)
            else:
                # descriptors are linear over each face: the closest point in descriptor space
                t0 = tgt[tri[:, 0]]
                w, cost = closest_point_from_edges(src[rep] - t0, tgt[tri[:, 1]] - t0, tgt[tri[:, 2]] - t0)
            order = np.lexsort((cost, rep))
            first = order[np.r_[0, np.flatnonzero(np.diff(rep[order])) + 1]]
            who = rep[first]
            faces[who] = fid[first]
            bary[who] = w[first]
            # the winners' distances directly (the expansion that ranked them rounds near 0)
            at = surface_positions(tgt, F, fid[first], w[first])
            dist[who] = np.minimum(np.linalg.norm(src[who] - at, axis=1), dist[who])
        s = e
    return faces, bary, dist
