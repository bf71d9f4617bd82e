"""Consistent spectral refinement: both maps refined together, each pulled toward the other's inverse.

ZoomOut (Melzi et al. 2019) refines each direction on its own: a vertex of A goes to the
B vertex whose eigenfunctions best match the functional map's image of its own, and
nothing stops many A vertices from landing on one B vertex. The discrete optimisation of
Ren et al. ("Discrete Optimization for Shape Matching", SGP 2021) adds pointwise forms of
the functional-map energies; the one used here is the *bijectivity* term
``|| Pi_ab Phi_b C_ba - Phi_a ||``: vertex i of A should go to a B vertex j that the
reverse map (seen through its functional map ``C_ba``) sends back to i. Both terms are
nearest neighbours in one stacked embedding, so each step stays one nearest-neighbour
search per direction (within parts):

    query  (A rows):  [ Phi_a C_ab ,   w Phi_a      , d desc_a ]
    target (B rows):  [ Phi_b      ,   w Phi_b C_ba , d desc_b ]

and the mirror image for ``b_to_a``. ``C_ab = Phi_a^T diag(mass_a) Phi_b[a_to_b]`` (and
``C_ba``) are re-estimated from the current maps at every size of the basis, which grows
from ``k_init`` to ``k_final`` as in ZoomOut. With ``w = 0`` this is ZoomOut on both
directions separately (the paper's form, kept as ``method="zoomout"`` in
:func:`~densemap.mapping.refine.refine_maps`).

Large meshes: the iterations run on a spread subset of about ``max_samples`` vertices
per mesh (one per cell of a voxel grid, each weighted by the mass of the vertices nearest
to it), and only the final step, with the final functional maps, runs on every vertex:
the full-resolution map is exact for those functional maps, not interpolated.

Written by hand (a few lines of linear algebra around the nearest-neighbour search that
:mod:`densemap.mapping.matching` already has) rather than through ``pyfmaps`` or
``geomfum``: neither restricts the search to parts, appends descriptors, or subsamples
the iterations, and both would bring several dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .within_parts import _assign, _balanced, _match

__all__ = ["SpectralMaps", "consistent_zoomout", "spread_samples", "spectral_embeddings"]


@dataclass
class SpectralMaps:
    """Result of :func:`consistent_zoomout`: both point maps and the final functional maps."""

    a_to_b: np.ndarray
    b_to_a: np.ndarray
    c_ab: np.ndarray
    c_ba: np.ndarray
    weights: tuple[float, float]  # (bijective weight, descriptor scale) used in the embeddings


def _voxel_cells(points: np.ndarray, n: int) -> np.ndarray:
    """Cell index of every point in a voxel grid whose occupied cells number about ``n``
    (within 0.8-1.25 x when the points allow), found by bisection on the voxel edge.

    The edge is searched in the points' own units: a surface of area A occupies about
    A / h^2 voxels of edge h, but the caller's masses are often normalised to unit area,
    so they cannot give A (taking them as the area gave 10k of 13k vertices when 4k were asked).
    """
    ext = float(np.ptp(points, axis=0).max()) or 1.0
    lo_h, hi_h = ext / (8 * np.sqrt(n)), 2 * ext  # too many cells at lo_h (for surfaces), one cell at hi_h
    best = None
    for _ in range(40):
        h = np.sqrt(lo_h * hi_h)
        cell = np.floor(points / h).astype(np.int64)
        key = (cell[:, 0] * (cell[:, 1].max() + 1) + cell[:, 1]) * (cell[:, 2].max() + 1) + cell[:, 2]
        _, inv = np.unique(key, return_inverse=True)
        m = int(inv.max()) + 1
        if best is None or abs(np.log(m / n)) < abs(np.log(best[0] / n)):
            best = (m, inv)
        if m < 0.8 * n:
            hi_h = h
        elif m > 1.25 * n:
            lo_h = h
        else:
            break
    return best[1].ravel()


def spread_samples(points: np.ndarray, mass: np.ndarray, n: int, labels: np.ndarray | None = None,
                   *, per_label: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """About ``n`` well-spread vertices (one per voxel; 0.8-1.25 x ``n`` on a surface) and
    the mass of each one's nearest vertices.

    Parameters
    ----------
    points : (V, 3) float
    mass : (V,) float
    n : int
    labels : (V,) int, optional
        Every label gets at least ``per_label`` samples (or all its vertices).

    Returns
    -------
    samples : (S,) int
        Sorted vertex indices.
    cell_mass : (S,) float
        Sum of ``mass`` over the vertices nearest (Euclidean) to each sample.
    """
    V = len(points)
    if n >= V:
        return np.arange(V), np.asarray(mass, dtype=np.float64).copy()
    lo = points.min(0)
    inv = _voxel_cells(points - lo, n)
    # the vertex nearest each occupied voxel's centre of mass
    cnt = np.bincount(inv)
    cen = np.stack([np.bincount(inv, weights=points[:, d]) for d in range(3)], 1) / cnt[:, None]
    dist = np.linalg.norm(points - cen[inv], axis=1)
    order = np.lexsort((dist, inv))
    pick = order[np.r_[0, np.flatnonzero(np.diff(inv[order])) + 1]]
    samples = set(pick.tolist())
    if labels is not None:
        rng = np.random.default_rng(0)
        for lab in np.unique(labels):
            members = np.flatnonzero(labels == lab)
            have = np.isin(members, pick).sum()
            if have < per_label:
                samples.update(rng.choice(members, min(per_label, len(members)), replace=False).tolist())
    samples = np.array(sorted(samples), dtype=np.int64)
    _, near = cKDTree(points[samples]).query(points, workers=-1)
    return samples, np.bincount(near, weights=mass, minlength=len(samples))


def _fmap(phi_src, mass_src, phi_tgt, src_to_tgt):
    """C with ``Phi_src @ C ~ Pi Phi_tgt``: the mass-weighted projection."""
    return phi_src.T @ (mass_src[:, None] * phi_tgt[src_to_tgt])


def spectral_embeddings(phi_src, phi_tgt, c_st, c_ts, w: float, desc_src=None, desc_tgt=None, dscale: float = 0.0,
                        dtype=np.float64):
    """(query rows of the source, target rows) of the stacked embedding (see the module docstring)."""
    # each block computed in float64 and rounded straight into its columns of the result:
    # the values of np.hstack(...).astype(dtype), without the float64 stack and its copy
    q = [(c_st.shape[1], lambda: phi_src @ c_st)]
    t = [(phi_tgt.shape[1], lambda: phi_tgt)]
    if w > 0:
        q.append((phi_src.shape[1], lambda: w * phi_src))
        t.append((c_ts.shape[1], lambda: w * (phi_tgt @ c_ts)))
    if dscale > 0 and desc_src is not None:
        q.append((desc_src.shape[1], lambda: dscale * desc_src))
        t.append((desc_tgt.shape[1], lambda: dscale * desc_tgt))
    return _stacked(q, len(phi_src), dtype), _stacked(t, len(phi_tgt), dtype)


def _stacked(blocks, n: int, dtype) -> np.ndarray:
    out = np.empty((n, sum(w for w, _ in blocks)), dtype=dtype)
    c = 0
    for width, make in blocks:
        out[:, c : c + width] = make()
        c += width
    return out


def _schedule(k_init: int, k_max: int, step: int) -> list[int]:
    ks = list(range(min(k_init, k_max), k_max + 1, max(int(step), 1)))
    if ks[-1] != k_max:
        ks.append(k_max)
    return ks


def _desc_scale(desc_a, desc_b) -> float:
    """1 / RMS deviation of the descriptors over both meshes (0 if constant)."""
    both = np.concatenate([desc_a, desc_b])
    rms = np.sqrt(((both - both.mean(0)) ** 2).sum(1).mean())
    return 1.0 / rms if rms > 0 else 0.0


def _agreed_fmaps(c_ab: np.ndarray, c_ba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One functional map for both directions: the mean of ``C_ab`` and ``C_ba.T`` (they are
    each other's transposes for an isometry of unit-area shapes), and its transpose."""
    return 0.5 * (c_ab + c_ba.T), 0.5 * (c_ab.T + c_ba)


def consistent_zoomout(phi_a, mass_a, phi_b, mass_b, a_to_b, b_to_a, *, k_init: int = 20, step: int = 5,
                       bijective_weight: float = 1.0, labels_a=None, labels_b=None, desc_a=None, desc_b=None,
                       desc_weight: float = 0.0, samples_a=None, samples_b=None, agree: bool = True,
                       neighbours: dict | None = None, label_penalty: float = 0.0, assign: bool = False,
                       balance: float = 0.0, k_final: int | None = None, polish: int | None = None,
                       polish_parts: bool = True, device=None, progress: bool = False) -> SpectralMaps:
    """Refine both point maps together on plain arrays (see the module docstring).

    Parameters
    ----------
    phi_a : (V_a, K) float
        Eigenfunctions of A, orthonormal for ``mass_a``; likewise ``phi_b`` (V_b, K).
    mass_a, mass_b : (V,) float
    a_to_b : (V_a,) int
        Initial B vertex of each A vertex; ``b_to_a`` (V_b,) the initial reverse map
        (None: started from the transpose of ``a_to_b``'s functional map).
    k_init, step : int
        The basis grows from ``k_init`` to all ``K`` columns by ``step``.
    bijective_weight : float
        ``w`` of the bijectivity term (0: ZoomOut on each direction alone).
    labels_a, labels_b : (V,) int, optional
        Nearest neighbours only within the same part.
    desc_a, desc_b : (V, L) float, optional
        Descriptors appended to the embedding, scaled to unit RMS deviation times
        ``desc_weight * sqrt(k)`` (the spectral rows' norm grows like ``sqrt(k)``).
    samples_a, samples_b : ((S,) int, (S,) float), optional
        Vertices (and their cell masses) on which the iterations run; the final step
        runs on every vertex. None: every vertex.
    neighbours : dict, optional
        Part label -> array of the labels adjacent to it (itself included). With
        ``label_penalty > 0``, the final full-resolution step lets a vertex match into
        the parts next to its own, at an added squared distance of
        ``(label_penalty * r)**2`` (``r``: the RMS norm of the target embedding's rows),
        so that a boundary drawn a few rings off does not force vertices into the wrong
        part; the iterations stay within parts.
    label_penalty : float
    assign : bool
        In the final step, solve each part whose source has no more vertices than its
        target as a one-to-one assignment (:func:`scipy.optimize.linear_sum_assignment`
        on the embedding distances, parts up to 2e6 vertex pairs) instead of nearest
        neighbours: the map is then injective there, as the truth is.
    balance : float
        In the final step, no target vertex takes more than ``balance`` times its share of
        the matches (its mass's share of the part; :func:`_balanced`, among each source
        vertex's 8 nearest), so that matches spread instead of piling up (0: plain nearest
        neighbours). A ``label_penalty`` (with ``neighbours``) turns it off: the final step
        is then the penalised nearest neighbours across part boundaries.
    k_final : int, optional
        The basis grows to this many columns (None: all of ``phi_a`` and ``phi_b``).
    polish : int, optional
        After the final step, one more full-resolution step in the first ``polish``
        eigenfunctions (more than ``k_final``; ``phi_a`` and ``phi_b`` must have them),
        its functional maps estimated from the full-resolution maps (exact quadrature,
        not the samples), matched as the final step is (parts, ``balance`` or
        ``label_penalty``) but without descriptors or ``assign``: a
        larger basis is too detailed to iterate from a rough start, but from the final
        maps it resolves finer detail (docs/alignment.md: -2 to -11 % mean error with
        200 after 120).
    polish_parts : bool
        False: the polish step matches across parts (the labels only shaped the maps it
        starts from), for labels known to be rough: their wrongly labelled bands are then
        not forced into the wrong part (docs/alignment.md: noisy labels -15 to -38 %,
        clean +2 to +21 %).
    agree : bool
        Use one functional map for both directions, the mean of ``C_ab`` and ``C_ba.T``
        (they are each other's transposes for an isometry of unit-area shapes); the map
        of the denser mesh, whose many-to-one collapse makes its own estimate poor, is
        then corrected by the other's.
    device : optional
        Where the nearest-neighbour searches run (None: CPU).
    progress : bool
        A tqdm bar over the basis sizes.

    Returns
    -------
    SpectralMaps

    Examples
    --------
    The identity is a fixed point:

    >>> import numpy as np
    >>> from densemap.data import reference
    >>> from densemap.mapping.refine import laplacian_basis
    >>> _, phi, mass = laplacian_basis(reference("chimp").mesh, 30)
    >>> ident = np.arange(len(phi))
    >>> out = consistent_zoomout(phi, mass, phi, mass, ident, ident, k_init=10, step=10)
    >>> bool((out.a_to_b == ident).all() and (out.b_to_a == ident).all())
    True
    """
    from tqdm.auto import tqdm

    k_cols = min(phi_a.shape[1], phi_b.shape[1])
    k_max = k_cols if k_final is None else min(int(k_final), k_cols)
    if polish is not None and not k_max < polish <= k_cols:
        raise ValueError(f"polish needs k_final < polish <= the basis size, got polish={polish}, "
                         f"k_final={k_max}, basis {k_cols}")
    use_desc = desc_weight > 0 and desc_a is not None and desc_b is not None
    s = _desc_scale(desc_a, desc_b) if use_desc else 0.0
    w = float(bijective_weight)
    sa, ma = samples_a if samples_a is not None else (np.arange(len(phi_a)), mass_a)
    sb, mb = samples_b if samples_b is not None else (np.arange(len(phi_b)), mass_b)
    la = None if labels_a is None else np.asarray(labels_a)
    lb = None if labels_b is None else np.asarray(labels_b)
    def match(q, t, lq, lt):
        return _match(q, t, lq, lt, device)

    def match_soft(q, t, lq, lt):
        """The final step: other parts next to a vertex's own at a penalty (see ``neighbours``)."""
        if lq is None or neighbours is None or label_penalty <= 0:
            return match(q, t, lq, lt)
        lam = label_penalty * float(np.sqrt(((t - t.mean(0)) ** 2).sum(1).mean()))
        return _match(q, t, lq, lt, device, lam, neighbours)

    def da(rows):
        return None if not use_desc else desc_a[rows]

    def db(rows):
        return None if not use_desc else desc_b[rows]

    # maps from the samples of one mesh to any vertex of the other (the initial maps),
    # then to the other's samples
    ab = np.asarray(a_to_b, dtype=np.int64)[sa]
    ba = None if b_to_a is None else np.asarray(b_to_a, dtype=np.int64)[sb]
    ks = _schedule(k_init, k_max, step)
    c_ab = c_ba = None

    def agreed(c_ab, c_ba):  # one functional map for both directions (``agree``)
        return _agreed_fmaps(c_ab, c_ba) if agree else (c_ab, c_ba)

    def fmaps(pa, pb):
        c_ab = _fmap(pa[sa], ma, pb, ab)
        if ba is None:  # no reverse map yet: start it from the transpose
            return c_ab, c_ab.T
        return agreed(c_ab, _fmap(pb[sb], mb, pa, ba))

    for k in tqdm(ks, desc="spectral refinement", unit="basis size", disable=not progress, leave=False):
        pa, pb = phi_a[:, :k], phi_b[:, :k]
        c_ab, c_ba = fmaps(pa, pb)
        ds = s * desc_weight * np.sqrt(k)
        qa, tb = spectral_embeddings(pa[sa], pb[sb], c_ab, c_ba, w, da(sa), db(sb), ds, np.float32)
        qb, ta = spectral_embeddings(pb[sb], pa[sa], c_ba, c_ab, w, db(sb), da(sa), ds, np.float32)
        ab_new = sb[match(qa, tb, None if la is None else la[sa], None if lb is None else lb[sb])]
        ba = sa[match(qb, ta, None if lb is None else lb[sb], None if la is None else la[sa])]
        ab = ab_new
    # final functional maps from the sampled maps, then the exact full-resolution maps
    pa, pb = phi_a[:, :k_max], phi_b[:, :k_max]
    c_ab, c_ba = fmaps(pa, pb)
    ds = s * desc_weight * np.sqrt(k_max)
    qa, tb = spectral_embeddings(pa, pb, c_ab, c_ba, w, desc_a if use_desc else None, desc_b, ds, np.float32)
    capped = balance > 0 and not (neighbours is not None and label_penalty > 0)  # a label penalty comes first

    def full_step(q, t, lq, lt, mq, mt):  # a full-resolution matching: capped, or (penalised) nearest
        return _balanced(q, t, lq, lt, mq, mt, balance, device) if capped else match_soft(q, t, lq, lt)

    a_out = full_step(qa, tb, la, lb, mass_a, mass_b)
    if assign:
        a_out = _assign(qa, tb, la, lb, a_out)
    del qa, tb
    qb, ta = spectral_embeddings(pb, pa, c_ba, c_ab, w, desc_b if use_desc else None, desc_a, ds, np.float32)
    b_out = full_step(qb, ta, lb, la, mass_b, mass_a)
    if assign:
        b_out = _assign(qb, ta, lb, la, b_out)
    del qb, ta

    def exact_fmaps(pa, pb):  # of the full-resolution maps (exact quadrature)
        return agreed(_fmap(pa, mass_a, pb, a_out), _fmap(pb, mass_b, pa, b_out))

    if (samples_a is not None or samples_b is not None) and polish is None:  # for what follows
        c_ab, c_ba = exact_fmaps(pa, pb)
    if polish is not None:
        pa, pb = phi_a[:, :polish], phi_b[:, :polish]
        c_ab, c_ba = exact_fmaps(pa, pb)
        ds = 0.0
        pla, plb = (la, lb) if polish_parts else (None, None)
        a_out = full_step(*spectral_embeddings(pa, pb, c_ab, c_ba, w, dtype=np.float32), pla, plb, mass_a, mass_b)
        b_out = full_step(*spectral_embeddings(pb, pa, c_ba, c_ab, w, dtype=np.float32), plb, pla, mass_b, mass_a)
        c_ab, c_ba = exact_fmaps(pa, pb)
    return SpectralMaps(a_out, b_out, c_ab, c_ba, (w, ds))
