"""Cleaning a part labelling on a mesh: a graph cut, then one connected region per part.

:func:`potts_cut` minimises ``sum_i D[i, l_i] + sum_(i,j) w_ij [l_i != l_j]`` over the
mesh's edges by alpha-expansion (Boykov, Veksler and Zabih 2001): each move solves one
s-t minimum cut (scipy's ``maximum_flow``), built as in Kolmogorov and Zabih, "What
energy functions can be minimized via graph cuts?" (2004). With ``w_ij`` proportional
to edge length the smoothness term is the length of the part boundaries, so a cut
straightens ragged boundaries where the data term is unsure. :func:`connect_parts`
then keeps, of every part, its largest connected region and gives the rest to the
neighbouring part with the lowest data cost. :func:`clean_parts` does both.

Hand-written around scipy's max-flow: the libraries that do expansion moves are not
allowed dependencies here (PyMaxflow is GPL-3; gco-wrapper wraps GCO, whose licence is
for research only) and networkx's max-flow is pure Python; scipy provides the minimum
cut in compiled code, the moves are a few vectorised lines.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components, maximum_flow

from ..errors import PartError
from ..mesh import Mesh

__all__ = ["potts_cut", "connect_parts", "clean_parts"]

_FLOW_SCALE = 2**30  # integer capacities for scipy's max-flow: their sum stays below 2**31


def _min_cut(cost0: np.ndarray, cost1: np.ndarray, ei: np.ndarray, ej: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(n,) bool x minimising ``sum cost_x + sum_e w_e [x_i = 0 and x_j = 1]`` (w >= 0).

    Nodes on the sink side of the minimum cut take x = 1.
    """
    n = len(cost0)
    s, t = n, n + 1
    net = cost1 - cost0
    up, down = np.flatnonzero(net > 0), np.flatnonzero(net < 0)
    rows = np.concatenate([np.full(len(up), s), down, ei])
    cols = np.concatenate([up, np.full(len(down), t), ej])
    cap = np.concatenate([net[up], -net[down], w])
    keep = cap > 0
    rows, cols, cap = rows[keep], cols[keep], cap[keep]
    if not len(cap):
        return net < 0
    scale = _FLOW_SCALE / cap.sum()
    ci = np.maximum(np.rint(cap * scale), 0).astype(np.int32)
    # every edge also gets a zero-capacity reverse twin, so the residual graph has it
    C = sp.csr_matrix((np.r_[ci, np.zeros(len(ci), np.int32)], (np.r_[rows, cols], np.r_[cols, rows])), shape=(n + 2, n + 2))
    C.sum_duplicates()
    R = (C - maximum_flow(C, s, t).flow).tocsr()
    R.data[R.data < 0] = 0
    R.eliminate_zeros()
    source_side = np.zeros(n + 2, bool)
    source_side[breadth_first_order(R, s, directed=True, return_predecessors=False)] = True
    return ~source_side[:n]


def potts_cut(costs, edges, weights, labels=None, *, fixed=None, sweeps: int = 4) -> np.ndarray:
    """Alpha-expansion for a Potts energy on a graph.

    Parameters
    ----------
    costs : (V, L) float
        Data cost of each label at each vertex.
    edges : (E, 2) int
    weights : (E,) float
        Cost of a label change across each edge (>= 0).
    labels : (V,) int, optional
        Start (default: the cheapest label per vertex).
    fixed : (V,) bool, optional
        Vertices that keep their starting label.
    sweeps : int
        Passes over all labels (stops early when a pass changes nothing).

    Returns
    -------
    (V,) int

    Examples
    --------
    A noisy two-label path: the cut removes the lone flip.

    >>> import numpy as np
    >>> costs = np.array([[0, 1], [0, 1], [0.6, 0.4], [0, 1], [1, 0], [1, 0]], float)
    >>> edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]])
    >>> potts_cut(costs, edges, np.full(5, 0.5)).tolist()
    [0, 0, 0, 0, 1, 1]
    """
    D = np.asarray(costs, dtype=np.float64)
    e = np.asarray(edges, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    n, L = D.shape
    if e.shape != (len(w), 2) or (w < 0).any():
        raise ValueError(f"edges must be (E, 2) with E non-negative weights, got {e.shape} and {w.shape}")
    lab = D.argmin(axis=1) if labels is None else np.asarray(labels, dtype=np.int64).copy()
    fix = np.zeros(n, bool) if fixed is None else np.asarray(fixed, bool)
    ei, ej = e[:, 0], e[:, 1]
    rows = np.arange(n)

    def energy(lb):
        return D[rows, lb].sum() + (w * (lb[ei] != lb[ej])).sum()

    best = energy(lab)
    for _ in range(sweeps):
        improved = False
        for a in range(L):
            c0 = D[rows, lab]
            c1 = np.where(fix & (lab != a), np.inf, D[:, a])
            c1 = np.where(np.isfinite(c1), c1, c0 + 1e6 * (1.0 + np.abs(c0)))
            li, lj = lab[ei], lab[ej]
            # pairwise (x_i, x_j) costs A = (0,0), B = (0,1), C = (1,0), D = (1,1) = 0, folded into
            # A + (C - A) x_i + (D - C) x_j + (B + C - A - D)(1 - x_i) x_j
            A, B, C = w * (li != lj), w * (li != a), w * (lj != a)
            u1 = np.bincount(ei, weights=C - A, minlength=n) - np.bincount(ej, weights=C, minlength=n)
            x = _min_cut(c0, c1 + u1, ei, ej, B + C - A)
            new = np.where(x, a, lab)
            e_new = energy(new)
            if e_new < best - 1e-12 * max(abs(best), 1.0):
                lab, best, improved = new, e_new, True
        if not improved:
            break
    return lab


def connect_parts(mesh: Mesh, labels, costs=None, *, fixed=None, n_parts: int | None = None) -> np.ndarray:
    """Labels with every part one edge-connected region.

    Each part keeps its largest region (by area, or the one holding a ``fixed`` vertex);
    the other regions are unlabelled and refilled from their labelled neighbours, each
    vertex taking the neighbouring label of lowest ``costs`` (default: the most common).
    A part left with no vertex gets the vertex where its cost is lowest, and its ring.

    Parameters
    ----------
    mesh : Mesh
    labels : (V,) int
    costs : (V, L) float, optional
    fixed : (V,) bool, optional
        Vertices whose labels must not change.
    n_parts : int, optional
        Number of parts (default: from ``costs`` or the largest label).
    """
    lab = np.asarray(labels, dtype=np.int64).copy()
    n = mesh.n_vertices
    L = n_parts or (costs.shape[1] if costs is not None else int(lab.max()) + 1)
    D = np.zeros((n, L)) if costs is None else np.asarray(costs, dtype=np.float64)
    fix = np.zeros(n, bool) if fixed is None else np.asarray(fixed, bool)
    A = mesh.adjacency.tocsr()
    area = mesh.vertex_areas
    for _ in range(2 * L):
        changed = False
        for k in range(L):
            idx = np.flatnonzero(lab == k)
            if not len(idx):
                cand = np.flatnonzero(~fix)
                if not len(cand):
                    raise PartError(f"{mesh.name}: part {k} has no vertex and every vertex is fixed")
                v = cand[np.argmin(D[cand, k] - D[cand].min(axis=1))]
                ring = np.r_[v, A[v].indices]
                lab[ring[~fix[ring]]] = k
                changed = True
                continue
            ncomp, comp = connected_components(A[idx][:, idx], directed=False)
            if ncomp <= 1:
                continue
            score = np.bincount(comp, weights=area[idx]) + 1e9 * np.bincount(comp, weights=fix[idx].astype(float))
            drop = idx[(comp != np.argmax(score)) & ~fix[idx]]
            lab[drop] = -1
            changed = changed or len(drop) > 0
        _refill(lab, A, D, L)
        if not changed:
            break
    return lab


def _refill(lab: np.ndarray, A: sp.csr_matrix, D: np.ndarray, L: int) -> None:
    """Give unlabelled vertices (-1) a neighbour's label, front by front (in place)."""
    while (lab < 0).any():
        un = np.flatnonzero(lab < 0)
        sub = A[un]
        rows = np.repeat(np.arange(len(un)), np.diff(sub.indptr))
        nl = lab[sub.indices]
        ok = nl >= 0
        if not ok.any():
            lab[un] = int(np.argmin(D[un].sum(axis=0)))  # a component with no label at all
            return
        rows, nl = rows[ok], nl[ok]
        cost = D[un[rows], nl] - 1e-9 * np.bincount(rows * L + nl, minlength=len(un) * L)[rows * L + nl]
        order = np.lexsort((cost, rows))
        first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
        lab[un[rows[first]]] = nl[first]


def clean_parts(mesh: Mesh, costs, *, smoothness: float = 0.05, labels=None, fixed=None) -> np.ndarray:
    """A graph cut on the mesh with data term ``costs``, then one region per part.

    Parameters
    ----------
    mesh : Mesh
    costs : (V, L) float
        Data cost of each part at each vertex, in units where the median gap between a
        vertex's best and second-best part is about 1 (see
        :func:`~densemap.mapping.landmarks.normalise_costs`).
    smoothness : float
        Cost of a part boundary per mean edge length.
    labels : (V,) int, optional
        Start of the cut (default: the cheapest part per vertex).
    fixed : (V,) bool, optional
        Vertices that keep their label (e.g. landmarks).

    Returns
    -------
    (V,) int
    """
    D = np.asarray(costs, dtype=np.float64)
    if D.shape[0] != mesh.n_vertices:
        raise ValueError(f"costs has {D.shape[0]} rows but mesh {mesh.name!r} has {mesh.n_vertices} vertices")
    w = smoothness * mesh.edge_lengths / max(float(mesh.edge_lengths.mean()), 1e-300)
    lab = potts_cut(D, mesh.edges, w, labels, fixed=fixed)
    return connect_parts(mesh, lab, D, fixed=fixed, n_parts=D.shape[1])
