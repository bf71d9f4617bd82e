"""Parts for a mesh with none: from a labelled reference and a few landmark pairs.

:func:`transfer_parts` cuts a new mesh into the reference's parts:

1. **bootstrap**: every vertex of both meshes gets landmark-geodesic features
   (:func:`~densemap.mapping.landmarks.landmark_features`: nearness to each landmark and
   on which side it sees pairs of them); a new vertex's cost for part ``k`` is its
   feature distance to the nearest reference vertex of part ``k``
   (:func:`~densemap.mapping.landmarks.part_costs`);
2. **clean**: a Potts graph cut on the new mesh with those costs as data term and the
   boundary length as smoothness, then one connected region per part
   (:func:`~densemap.mapping.partcut.clean_parts`); the landmarks keep their reference
   vertex's part; a part left below a quarter of its reference share of the area grows
   ring by ring, so that every part can be aligned;
3. **dense map** (on by default, ``dense=True``): the landmark features' nearest neighbours
   give a map each way, which the consistent spectral refinement of the align
   (:func:`~densemap.mapping.consistent.consistent_zoomout`, ``basis`` eigenfunctions,
   the landmark features appended to its embedding at ``dense_weight``) turns into one
   smooth, near-bijective map; a new vertex's cost for part ``k`` is its distance in that
   embedding to the nearest reference vertex of part ``k`` (:func:`dense_costs`), and the
   cut and connected regions of step 2 run again on these costs. The landmark features
   alone decide each vertex by its own nearness to the landmarks, so a boundary between
   two landmarks falls where their nearness balances and a limb's front and back, which
   the landmarks see alike, are confused; the refined map has to be smooth and nearly
   one-to-one over the whole surface, which places such boundaries from the shape of the
   mesh between the landmarks. On the embedded pair it raises the agreement with the true
   parts from 86.0% to 90.2% with 20 landmarks and from 64% to 80% with 5, for about 4
   minutes on two cores (``benchmarks/transfer_parts.py``, docs/new-species.md);
4. **iterate**: the part-wise align's descriptors (:meth:`Aligner.descriptors`: mean
   geodesic distance to each part) are computed on both meshes with the current parts
   (each column over its standard deviation: a shrunken part cannot break the scale) and
   appended to the landmark features; costs, cut and connected regions again. An
   iteration is kept while it raises the mean confidence (below) and changes at least
   ``tol`` of the area; the first that does not ends the loop. Off by default
   (``iterations=0``): on the embedded pair the kept iterations *lowered* the agreement
   with the true parts by about 1 point for 10-40 landmarks (the mean confidence is not
   a reliable judge of them: descriptors built from the current parts confirm them) and
   raised it by 2 points with 5 (``benchmarks/transfer_parts.py``, docs/new-species.md).

Confidence of a vertex: ``1 - exp(-m)``, ``m`` the margin between its part's cost and
the best other part's, in units of the median such gap over the mesh (0 where the cut
overruled the data term). Each part reports its area-weighted mean confidence.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..mesh import Mesh, check_connected
from ..parts import PartLabels
from .landmarks import Landmarks, normalise_costs, paired_landmark_features, part_costs
from .partcut import clean_parts

__all__ = ["PartTransfer", "transfer_parts", "run_transfer_parts", "confidence_of", "dense_costs", "DENSE_BASIS",
           "DENSE_WEIGHT", "DENSE_SMOOTHNESS"]

#: descriptor sources per part in the iterations (the align's default is 16; 8 halves the time
#: and gives the same part costs to within the cut's resolution on the embedded pair)
ITERATION_SOURCES = 8
#: eigenfunctions of the dense stage's spectral refinement, and the weight of the landmark
#: features in its embedding (``benchmarks/transfer_parts.py``: see the module notes)
DENSE_BASIS = 300
DENSE_WEIGHT = 3.0
DENSE_SMOOTHNESS = 0.2


@dataclass(frozen=True, eq=False)
class PartTransfer:
    """Result of :func:`transfer_parts`.

    Attributes
    ----------
    parts : PartLabels
        On the new mesh, with the reference's part names.
    confidence : (V_new,) float in [0, 1]
    per_part : dict
        Part name -> ``{"area_fraction", "confidence", "low_confidence_area"}`` (the
        share of the part's area with confidence below 0.5).
    history : list of dict
        One entry per stage: ``stage``, ``mean_confidence``, ``changed_area``, ``seconds``,
        ``kept``.
    landmarks : Landmarks
    """

    parts: PartLabels
    confidence: np.ndarray
    per_part: dict
    history: list = field(default_factory=list)
    landmarks: Landmarks | None = None

    def report(self) -> dict:
        """A JSON-ready summary (what ``densemap transfer-parts`` writes beside the parts)."""
        return {"landmarks": 0 if self.landmarks is None else len(self.landmarks),
                "mean_confidence": float(np.mean(self.confidence)), "history": self.history,
                "per_part": self.per_part}


def confidence_of(costs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(V,) ``1 - exp(-margin)`` of each vertex's label under normalised costs (V, L)."""
    c = np.asarray(costs, dtype=np.float64)
    rows = np.arange(len(c))
    own = c[rows, labels]
    other = c.copy()
    other[rows, labels] = np.inf
    margin = np.maximum(other.min(axis=1) - own, 0.0)
    return 1.0 - np.exp(-margin)


def _per_part(mesh: Mesh, labels: np.ndarray, conf: np.ndarray, names) -> dict:
    a = mesh.vertex_areas
    out = {}
    for k, name in enumerate(names):
        sel = labels == k
        area = float(a[sel].sum())
        out[name] = {"area_fraction": area / mesh.area,
                     "confidence": float((a[sel] * conf[sel]).sum() / max(area, 1e-300)),
                     "low_confidence_area": float(a[sel & (conf < 0.5)].sum() / max(area, 1e-300))}
    return out


def _grow_small(mesh: Mesh, labels: np.ndarray, costs: np.ndarray, share: np.ndarray, fixed: np.ndarray, *,
                frac: float = 0.25) -> np.ndarray:
    """Parts below ``frac`` of their reference share of the area grow ring by ring (cheapest
    neighbours first) until they reach it; then one connected region per part again.

    A part the cut squeezed to a landmark or two cannot be aligned (its descriptor column
    has no scale); growing it keeps every part alignable, and its low confidence says why.
    """
    from .partcut import connect_parts

    lab = labels.copy()
    A = mesh.adjacency.tocsr()
    area = mesh.vertex_areas
    for k in range(costs.shape[1]):
        target = frac * share[k] * mesh.area
        for _ in range(mesh.n_vertices):
            inside = lab == k
            if area[inside].sum() >= target:
                break
            ring = np.flatnonzero((A @ inside.astype(np.float64) > 0) & ~inside & ~fixed)
            if not len(ring):
                break
            take = ring[np.argsort(costs[ring, k], kind="stable")[: max(1, len(ring) // 2)]]
            lab[take] = k
    return connect_parts(mesh, lab, costs, fixed=fixed, n_parts=costs.shape[1])


def dense_costs(ref_mesh: Mesh, ref_labels: np.ndarray, new_mesh: Mesh, feat_r: np.ndarray, feat_n: np.ndarray,
                n_parts: int, *, basis: int = DENSE_BASIS, weight: float = DENSE_WEIGHT, samples: int = 10000,
                device=None, progress: bool = False) -> np.ndarray:
    """Part costs of the new mesh's vertices from a dense map (the dense stage of the module notes).

    The nearest neighbours in the landmark features give a map each way; the consistent
    spectral refinement (:func:`~densemap.mapping.consistent.consistent_zoomout`, with the
    features appended to its embedding at ``weight``) turns them into one smooth,
    near-bijective map; a new vertex's cost for part ``k`` is then its distance, in the
    refined embedding, to the nearest reference vertex of part ``k``. The refinement's
    iterations run on about ``samples`` spread vertices per mesh (10,000: the measured
    90 % at 20 landmarks used ~10k of the human's 13k vertices and all of the chimp's).

    Returns
    -------
    (V_new, L) float
        Normalised (:func:`~densemap.mapping.landmarks.normalise_costs`).
    """
    from .basis import laplacian_basis
    from .consistent import consistent_zoomout, spectral_embeddings, spread_samples
    from .matching import match_descriptors

    k = min(int(basis), ref_mesh.n_vertices - 1, new_mesh.n_vertices - 1)
    _, phi_r, mass_r = laplacian_basis(ref_mesh, k)
    _, phi_n, mass_n = laplacian_basis(new_mesh, k)
    spread = [spread_samples(m.vertices, mass, samples) if m.n_vertices > samples else None
              for m, mass in ((ref_mesh, mass_r), (new_mesh, mass_n))]
    r2n = match_descriptors(feat_r, feat_n, device=device).indices
    n2r = match_descriptors(feat_n, feat_r, device=device).indices
    res = consistent_zoomout(phi_r, mass_r, phi_n, mass_n, r2n, n2r, desc_a=feat_r, desc_b=feat_n,
                             desc_weight=float(weight), samples_a=spread[0], samples_b=spread[1], device=device,
                             progress=progress)
    w, scale = res.weights
    q, t = spectral_embeddings(phi_n, phi_r, res.c_ba, res.c_ab, w, feat_n, feat_r, scale)
    return normalise_costs(part_costs(q, t, ref_labels, n_parts))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(((x - x.mean(axis=0)) ** 2).sum(axis=1).mean()))


def transfer_parts(ref_mesh: Mesh, ref_parts: PartLabels, new_mesh: Mesh, landmarks: Landmarks, *,
                   dense: bool = True, basis: int = DENSE_BASIS, dense_weight: float = DENSE_WEIGHT,
                   dense_smoothness: float = DENSE_SMOOTHNESS,
                   iterations: int = 0, smoothness: float = 0.05, descriptor_weight: float = 0.5,
                   sources: int = ITERATION_SOURCES, tol: float = 0.005, device=None,
                   progress: bool = False) -> PartTransfer:
    """Cut ``new_mesh`` into the parts of ``ref_mesh`` from landmark pairs (see the module notes).

    Parameters
    ----------
    ref_mesh : Mesh
    ref_parts : PartLabels
        The reference's parts (one label per vertex; unlabelled vertices take no part).
    new_mesh : Mesh
        Connected.
    landmarks : Landmarks
        ``ref[k]`` on the reference is ``new[k]`` on the new mesh (at least 3).
    dense : bool
        Run the dense stage after the bootstrap (see the module notes; False: the
        landmark bootstrap alone, a few seconds instead of a few minutes).
    basis : int
        Eigenfunctions of the dense stage's refinement.
    dense_weight : float
        Weight of the landmark features in the dense stage's embedding (0: spectral only).
    dense_smoothness : float
        ``smoothness`` of the dense stage's cut (its costs are smoother than the
        bootstrap's, so a boundary may cost more).
    iterations : int
        At most this many descriptor iterations after the bootstrap and the dense stage
        (0, the default: none; see the module notes for why).
    smoothness : float
        Cost of a part boundary per mean edge length, in units of the median cost gap.
    descriptor_weight : float
        Weight of the part descriptors against the landmark features (RMS to RMS).
    sources : int
        Geodesic sources per part of the descriptors.
    tol : float
        An iteration that changes less than this share of the area ends the loop.
    device : optional
        Where the geodesics run (None: CPU).
    progress : bool
        One line per stage on stderr.

    Returns
    -------
    PartTransfer

    Examples
    --------
    Landmarks that pair a mesh with itself give it back its own parts:

    >>> import numpy as np, trimesh
    >>> from densemap import Mesh, PartLabels
    >>> from densemap.mapping.landmarks import Landmarks
    >>> s = trimesh.creation.icosphere(subdivisions=3)
    >>> ball = Mesh(s.vertices, s.faces)
    >>> halves = PartLabels((s.vertices[:, 0] > 0) + 2 * (s.vertices[:, 2] > 0), ["a", "b", "c", "d"])
    >>> ids = np.arange(0, ball.n_vertices, 60)
    >>> out = transfer_parts(ball, halves, ball, Landmarks(ids, ids), smoothness=0.0)
    >>> bool(np.array_equal(out.parts.labels, halves.labels)), sorted(out.per_part)
    (True, ['a', 'b', 'c', 'd'])
    """
    from ..geodesics import GeodesicSolver
    from .pipeline import Aligner, shared_time_step

    ref_parts.check_mesh(ref_mesh)
    check_connected(ref_mesh)
    check_connected(new_mesh)
    if len(landmarks) < 3:
        raise ValueError(f"transfer_parts needs at least 3 landmark pairs, got {len(landmarks)}")
    if min(int(iterations), smoothness, descriptor_weight, dense_weight, dense_smoothness) < 0:
        raise ValueError(f"iterations, smoothness, descriptor_weight, dense_weight and dense_smoothness must be >= 0, got "
                         f"{iterations}, {smoothness}, {descriptor_weight}, {dense_weight}, {dense_smoothness}")
    if int(basis) < 1:
        raise ValueError(f"basis must be >= 1, got {basis}")
    L, names = ref_parts.n_parts, ref_parts.names
    t = shared_time_step(ref_mesh, new_mesh)
    solver_r = GeodesicSolver(ref_mesh, t=t, device=device)
    solver_n = GeodesicSolver(new_mesh, t=t, device=device)
    history: list[dict] = []

    def note(stage, labels, conf, changed, t0, kept=True):
        history.append({"stage": stage, "mean_confidence": float((new_mesh.vertex_areas * conf).sum() / new_mesh.area),
                        "changed_area": changed, "seconds": time.perf_counter() - t0, "kept": kept})
        if progress:
            h = history[-1]
            print(f"densemap.transfer_parts: {stage}: confidence {h['mean_confidence']:.3f}, changed {changed:.3f} "
                  f"of the area, {h['seconds']:.1f} s{'' if kept else ' (not kept)'}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    feat_r, feat_n = paired_landmark_features(ref_mesh, new_mesh, landmarks, solver_ref=solver_r, solver_new=solver_n)
    known = ref_parts.labels[landmarks.ref]
    fixed = np.zeros(new_mesh.n_vertices, bool)
    fixed[landmarks.new[known >= 0]] = True
    costs = normalise_costs(part_costs(feat_n, feat_r, ref_parts.labels, L))
    start = costs.argmin(axis=1)
    start[landmarks.new[known >= 0]] = known[known >= 0]
    share = np.bincount(ref_parts.labels[ref_parts.labels >= 0], weights=ref_mesh.vertex_areas[ref_parts.labels >= 0],
                        minlength=L) / ref_mesh.area

    def clean(c, start_labels, smooth=smoothness):
        return _grow_small(new_mesh, clean_parts(new_mesh, c, smoothness=smooth, labels=start_labels, fixed=fixed),
                           c, share, fixed)

    labels = clean(costs, start)
    conf = confidence_of(costs, labels)
    note("bootstrap", labels, conf, 1.0, t0)
    if dense:
        t0 = time.perf_counter()
        costs = dense_costs(ref_mesh, ref_parts.labels, new_mesh, feat_r, feat_n, L, basis=basis,
                            weight=dense_weight, device=device, progress=progress)
        start = costs.argmin(axis=1)
        start[landmarks.new[known >= 0]] = known[known >= 0]
        new = clean(costs, start, dense_smoothness)
        changed = float(new_mesh.vertex_areas[new != labels].sum() / new_mesh.area)
        labels, conf = new, confidence_of(costs, new)
        note("dense map", labels, conf, changed, t0)

    scale_f = _rms(feat_r)
    for it in range(int(iterations)):
        t0 = time.perf_counter()
        aligner = Aligner(ref_mesh, ref_parts, new_mesh, PartLabels(labels, names, source="transferred parts"), device=device)
        aligner._solvers.update(a=solver_r, b=solver_n)  # reuse the factorisations (same time step)
        desc_r, desc_n = aligner.descriptors(sources=int(sources), normalize="std")
        w = descriptor_weight * scale_f / max(_rms(desc_r), 1e-300)
        c = normalise_costs(part_costs(np.hstack([feat_n, w * desc_n]), np.hstack([feat_r, w * desc_r]),
                                       ref_parts.labels, L))
        new = clean(c, labels)
        new_conf = confidence_of(c, new)
        changed = float(new_mesh.vertex_areas[new != labels].sum() / new_mesh.area)
        better = (new_mesh.vertex_areas @ new_conf) > (new_mesh.vertex_areas @ conf)
        note(f"iteration {it + 1}", new, new_conf, changed, t0, kept=bool(better))
        if not better:
            break
        labels, conf = new, new_conf
        if changed < tol:
            break
    parts = PartLabels(labels, names, source=f"parts transferred from {ref_mesh.name} to {new_mesh.name}")
    return PartTransfer(parts, conf, _per_part(new_mesh, labels, conf, names), history, landmarks)


def _load_mesh(spec):
    """A mesh file, or ``human``/``chimp`` (the embedded mesh and its parts)."""
    from ..data import SPECIES, reference
    from ..mesh import load_mesh

    if str(spec) in SPECIES:
        ref = reference(str(spec))
        return ref.mesh, ref.parts
    return load_mesh(spec), None


def run_transfer_parts(ref_mesh, new_mesh, landmarks, out, *, ref_parts=None, report=None,
                       **options) -> tuple[PartTransfer, list[Path]]:
    """What ``densemap transfer-parts`` does: load, :func:`transfer_parts`, write the parts and a report.

    Parameters
    ----------
    ref_mesh, new_mesh : path-like or {"human", "chimp"}
        An embedded mesh comes with its parts (the default ``ref_parts``; a new mesh's
        own parts are ignored).
    landmarks : path-like
        :func:`~densemap.mapping.landmarks.load_landmarks`'s file.
    out : path-like
        Parts file (``.json`` ``{name: [ids]}`` or ``.npy`` + names sidecar).
    ref_parts : path-like, optional
        The reference's parts (default: the embedded mesh's, or the OBJ groups).
    report : path-like, optional
        JSON report (default: ``<out>.report.json``).
    **options
        :func:`transfer_parts` options.

    Returns
    -------
    (PartTransfer, files written)
    """
    import json

    from .._io import atomic_path, json_default
    from ..errors import PartError
    from ..parts import load_parts, save_parts
    from .landmarks import load_landmarks

    ref, embedded_parts = _load_mesh(ref_mesh)
    new, _ = _load_mesh(new_mesh)
    if ref_parts is not None:
        parts = load_parts(ref_parts, ref)
    elif embedded_parts is not None:
        parts = embedded_parts
    elif str(ref_mesh).lower().endswith(".obj"):
        parts = load_parts(ref_mesh, ref)
    else:
        raise PartError(f"{ref_mesh}: no part labels; give --ref-parts")
    lm = load_landmarks(landmarks, ref, new)
    result = transfer_parts(ref, parts, new, lm, **options)
    out = Path(out)
    report = Path(report) if report is not None else out.with_name(out.name + ".report.json")
    files = [save_parts(result.parts, out)]
    with atomic_path(report) as tmp:
        tmp.write_text(json.dumps({"reference": ref.name, "mesh": new.name, "landmarks": str(landmarks),
                                   **result.report()}, indent=1, default=json_default))
    return result, files + [report]
