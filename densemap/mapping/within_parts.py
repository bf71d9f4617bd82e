"""Nearest neighbours within parts, for the spectral refinement's matching steps.

Every step of :func:`~densemap.mapping.consistent.consistent_zoomout` matches rows of one
embedding to rows of another, part by part: plain nearest neighbours (:func:`_match`, with
an optional penalty for a neighbouring part), the same under per-vertex capacities
(:func:`_balanced`, so that matches spread instead of piling up) and one-to-one
assignments (:func:`_assign`). The searches are float32 GEMMs in chunks, the best few
candidates re-ranked by their direct differences (:func:`_knn32`).

Written by hand: scipy's and torch's nearest-neighbour searches have no notion of parts or
capacities; the capped form is one sparse assignment per part (scipy's LAPJVsp).
"""

from __future__ import annotations

import numpy as np

__all__: list[str] = []  # internal to densemap.mapping


def _knn32(q, t, k: int = 1, chunk: int = 1 << 22, extra: int = 3):
    """The ``k`` nearest ``t`` rows of each ``q`` row (float32 torch tensors), nearest first:
    (indices (n, k) int64 tensor, squared distances (n, k) float32 tensor).

    The refinement's searches run in 100-300 dimensions, where a KD-tree degenerates into
    a slow brute force; a GEMM is the fast brute force. ``|t|^2 - 2 q.t`` (one GEMM per
    block) ranks the candidates, but it cancels: its error grows with the norms, not with
    the distance, so two rows a few 1e-3 apart can swap. The best ``k + extra`` are
    therefore re-ranked by their direct differences ``|q - t|^2``, which are accurate to
    float32's relative precision of the distance itself (the identity is then a fixed point)."""
    import torch

    tn = t.square().sum(1)
    step = max(1, chunk // max(len(t), 1))
    kk = min(k + extra, len(t))
    idx, d2 = [], []
    for s0 in range(0, len(q), step):
        qq = q[s0 : s0 + step]
        cand = torch.addmm(tn[None, :], qq, t.T, alpha=-2.0).topk(kk, dim=1, largest=False).indices
        exact = (qq[:, None, :] - t[cand]).square().sum(-1)
        order = exact.sort(dim=1, stable=True).indices[:, :k]
        idx.append(cand.gather(1, order))
        d2.append(exact.gather(1, order))
    return torch.cat(idx), torch.cat(d2)


def _nn32(q, t) -> np.ndarray:
    """Nearest ``t`` row of each ``q`` row (see :func:`_knn32`)."""
    return _knn32(q, t, 1)[0][:, 0].cpu().numpy()


def _part_groups(lq, lt, n_t: int, neighbours: dict | None = None):
    """(part, source rows, target columns) per part of ``lq``: the target's vertices of that
    part (and of its ``neighbours``, when given); anywhere for label -1 or a part missing
    from the target."""
    for p in np.unique(lq):
        rows = np.flatnonzero(lq == p)
        if p < 0:
            cols = np.arange(n_t)
        else:
            cols = np.flatnonzero(np.isin(lt, neighbours.get(int(p), [p])) if neighbours is not None else lt == p)
        if len(cols) == 0:
            cols = np.arange(n_t)
        yield p, rows, cols


def _match(q, t, lq, lt, device=None, penalty: float = 0.0, neighbours: dict | None = None) -> np.ndarray:
    """Nearest neighbours within parts (labels -1, or a part missing from ``t``: anywhere).

    With ``neighbours`` and ``penalty > 0``: within each part and its neighbours, a
    neighbour part's vertex at an added squared distance ``penalty**2``."""
    import torch

    dev = torch.device("cpu" if device is None else device)
    qt = torch.as_tensor(np.ascontiguousarray(q, dtype=np.float32), device=dev)
    tt = torch.as_tensor(np.ascontiguousarray(t, dtype=np.float32), device=dev)
    if lq is None:
        return _nn32(qt, tt)
    out = np.empty(len(q), np.int64)
    soft = neighbours is not None and penalty > 0
    for p, rows, cols in _part_groups(lq, lt, len(t), neighbours if soft else None):
        qq, tc = qt[torch.as_tensor(rows, device=dev)], tt[torch.as_tensor(cols, device=dev)]
        if soft and p >= 0:  # one more coordinate: penalty on A's side, penalty * [same part] on B's
            qq = torch.cat([qq, torch.full((len(rows), 1), penalty, dtype=qq.dtype, device=dev)], 1)
            same = torch.as_tensor(lt[cols] == p, dtype=qq.dtype, device=dev)[:, None]
            tc = torch.cat([tc, penalty * same], 1)
        out[rows] = cols[_nn32(qq, tc)]
    return out


# a part whose target vertices would take more source vertices than this on average is left
# to nearest neighbours: a source that much denser maps many-to-one in truth, and the slots
# (one per unit of capacity) would make the assignment large (30 per vertex at 214k x 7k)
BALANCE_MAX_SHARE = 4.0
# the cost, in median gaps, at which a source vertex goes over capacity to its nearest
# rather than to a candidate with room (it also keeps every capped assignment feasible).
# Measured on asym6k (alignment_accuracy.py): a hard cap (1000) spread wrongly labelled
# boundary bands over whole parts (noisy labels 0.0281 -> 0.0302); 30 keeps the clean
# labels' gain (0.0160 -> 0.0135) at +2% for noisy labels (0.0287); 3 and 10 keep less of it
_OVERFLOW = 30.0


def _balanced(q, t, lq, lt, mass_q, mass_t, capacity: float, device=None, k: int = 8) -> np.ndarray:
    """Nearest neighbours within parts where no target vertex takes much more than its share.

    A target vertex's share is its part of the target's mass times the source's mass, in
    source vertices: divided by the mean mass of the source vertices nearest to it (of all
    of them if none is), so that a densely meshed source region gets more of them. It may
    take ``max(1, round(capacity * share))`` vertices. Among each source vertex's
    ``k`` nearest candidates, the assignment of least total squared embedding distance
    under those capacities (each target vertex as that many one-to-one slots, solved by
    :func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`, LAPJVsp); a source
    vertex may still go to its nearest over capacity at an added ``_OVERFLOW`` median gaps
    (between the nearest and the second nearest), so the problem is always feasible.
    Where no capacity binds the result is the nearest neighbours (the identity stays a
    fixed point); so it is where a part's source has more than ``BALANCE_MAX_SHARE``
    times as many vertices as its target.
    """
    import torch
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    dev = torch.device("cpu" if device is None else device)
    qt = torch.as_tensor(np.ascontiguousarray(q, dtype=np.float32), device=dev)
    tt = torch.as_tensor(np.ascontiguousarray(t, dtype=np.float32), device=dev)
    lq = np.zeros(len(q), np.int64) if lq is None else lq
    lt = np.zeros(len(t), np.int64) if lt is None else lt
    out = np.empty(len(q), np.int64)
    for _, rows, cols in _part_groups(lq, lt, len(t)):
        idx, d2 = _knn32(qt[torch.as_tensor(rows, device=dev)], tt[torch.as_tensor(cols, device=dev)],
                         min(k, len(cols)))
        idx, d2 = idx.cpu().numpy(), d2.double().cpu().numpy()
        c = d2 - d2[:, :1]
        gap = float(np.median(c[:, 1])) if c.shape[1] > 1 else 0.0
        if not gap > 0 or len(rows) > BALANCE_MAX_SHARE * len(cols):
            out[rows] = cols[idx[:, 0]]
            continue
        n = len(rows)
        a = mass_q[rows]
        hits = np.bincount(idx[:, 0], minlength=len(cols))
        local = np.where(hits > 0, np.bincount(idx[:, 0], a, len(cols)) / np.maximum(hits, 1), a.mean())
        share = mass_t[cols] / mass_t[cols].sum() * a.sum() / local
        cap = np.maximum(1, np.rint(capacity * share)).astype(np.int64)
        first = np.r_[0, np.cumsum(cap)]  # target j's slots: first[j] ... first[j + 1] - 1
        reps = cap[idx]  # (n, k)
        r = np.repeat(np.arange(n), reps.sum(1))
        j = np.repeat(idx.ravel(), reps.ravel())
        slot = first[j] + (np.arange(len(j)) - np.repeat(np.cumsum(reps.ravel()) - reps.ravel(), reps.ravel()))
        w = np.repeat(c.ravel(), reps.ravel()) / gap + 1.0  # > 0: csgraph reads zeros as no edge
        rr = np.r_[r, np.arange(n)]  # the overflow slots, one per source vertex, at its nearest
        ss = np.r_[slot, first[-1] + np.arange(n)]
        ww = np.r_[w, np.full(n, 1.0 + _OVERFLOW)]
        m = csr_matrix((ww, (rr, ss)), shape=(n, first[-1] + n))
        got = min_weight_full_bipartite_matching(m)[1]
        target = np.searchsorted(first, got, side="right") - 1
        over = got >= first[-1]
        target[over] = idx[over, 0]
        out[rows] = cols[target]
    return out


# largest (source x target) block of one part solved as a linear assignment (scipy's LAP)
ASSIGN_MAX_PAIRS = 2_000_000


def _assign(q: np.ndarray, t: np.ndarray, lq, lt, current: np.ndarray) -> np.ndarray:
    """Per part with no more source than target vertices: the one-to-one assignment of
    least total squared embedding distance (Vestner et al.'s product-manifold filter uses
    the same step) instead of independent nearest neighbours; other parts keep ``current``."""
    from scipy.optimize import linear_sum_assignment

    out = current.copy()
    if lq is None:
        return out
    for p in np.unique(lq[lq >= 0]):
        rows, cols = np.flatnonzero(lq == p), np.flatnonzero(lt == p)
        if not 0 < len(rows) <= len(cols) or len(rows) * len(cols) > ASSIGN_MAX_PAIRS:
            continue
        a, b = q[rows].astype(np.float64), t[cols].astype(np.float64)
        cost = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        r, c = linear_sum_assignment(cost)
        out[rows[r]] = cols[c]
    return out
