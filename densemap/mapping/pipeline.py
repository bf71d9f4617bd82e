"""The alignment pipeline: descriptors on both meshes, matching, refinement, surface points.

:class:`Aligner` holds one mesh pair and one prefactored geodesic solver per mesh (the
potpourri3d pattern: factor once, query many times), built with one shared heat time
step; the same solvers serve the descriptors and the quality report. :func:`align` is
the one-off form: ``Aligner(...).align(...)``.

Stages of :meth:`Aligner.align`: part descriptors on both meshes
(:func:`densemap.descriptors.part_descriptors`) -> nearest descriptor
(:func:`~densemap.mapping.matching.match_descriptors`) -> optional ZoomOut refinement of
both maps together (:func:`~densemap.mapping.refine.refine_maps`) -> optional surface
points (:func:`~densemap.mapping.matching.surface_points`).
"""

from __future__ import annotations

import sys
import time
from typing import Literal, get_args

import numpy as np

from .._io import package_versions
from .._validate import check_choice
from ..islands import IslandReport
from ..islands import merge_islands as _merge_islands
from ..mesh import Mesh, check_connected
from ..parts import PartLabels, match_parts
from .alignment import Alignment
from .matching import as_descriptor_array, match_descriptors, surface_points
from .quality import QualityReport, map_quality
from .vertex_map import VertexMap

__all__ = ["Aligner", "align", "shared_time_step", "DEFAULT_SOURCES"]

RefineMethod = Literal["consistent", "zoomout"]
LengthScale = Literal["max", "mean"]

# sampled geodesic sources per part used by align() unless told otherwise (docs/alignment.md)
DEFAULT_SOURCES = 16
# source vertices per direction of the quality report's geodesic metrics (Aligner.quality)
QUALITY_SAMPLE = 1000
# weight of the orientation columns appended to the descriptors for matching and refinement
DEFAULT_ORIENTATION = 0.0
# the consistent refinement ends with one more full-resolution step in this many times its
# last basis size (120 -> 200 eigenfunctions), from the final maps: -2 to -11 % mean error on every
# clean pair and -3 to -5 % with coarse labels (docs/alignment.md, "The polish step");
# refine_options={"polish": None}: off
POLISH_FACTOR = 5 / 3


def shared_time_step(mesh_a: Mesh, mesh_b: Mesh, *, t_scale: float = 1.0, length_scale: LengthScale = "max") -> float:
    """One heat-method time step for both meshes: ``t_scale * h**2``.

    ``h`` is the larger of the two meshes' mean edge lengths (``"max"``: enough
    smoothing for the coarser mesh) or the mean edge length over both meshes' edges
    together (``"mean"``).
    """
    from ..geodesics import length_scale as mean_edge

    check_choice("length_scale", length_scale, get_args(LengthScale))
    ha, hb = mean_edge(mesh_a), mean_edge(mesh_b)
    if length_scale == "max":
        h = max(ha, hb)
    else:
        na, nb = len(mesh_a.edges), len(mesh_b.edges)
        h = (ha * na + hb * nb) / max(na + nb, 1)
    return float(t_scale) * h * h


def with_orientation(mesh_a: Mesh, desc_a: np.ndarray, mesh_b: Mesh, desc_b: np.ndarray, weight: float, *,
                     fields: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Both descriptors with orientation columns appended (:func:`densemap.descriptors.orientation_descriptors`).

    The fields are the first ``fields`` principal directions of A's descriptors (area-
    weighted), the same projection on both meshes; the new columns are scaled so that
    their RMS is ``weight`` times the descriptors'.
    """
    from ..descriptors import orientation_descriptors

    if weight <= 0 or desc_a.shape[1] < 2:
        return desc_a, desc_b
    w = mesh_a.vertex_areas / mesh_a.area
    mu = w @ desc_a
    cov = (desc_a - mu).T @ ((desc_a - mu) * w[:, None])
    _, vecs = np.linalg.eigh(cov)
    u = vecs[:, ::-1][:, : min(fields, desc_a.shape[1])]
    oa = orientation_descriptors(mesh_a, (desc_a - mu) @ u)
    ob = orientation_descriptors(mesh_b, (desc_b - mu) @ u)

    def rms(x, m):
        a = m.vertex_areas / m.area
        return np.sqrt(a @ ((x - a @ x) ** 2).sum(1))

    scale = weight * rms(desc_a, mesh_a) / max(rms(oa, mesh_a), 1e-300)
    return np.hstack([desc_a, scale * oa]), np.hstack([desc_b, scale * ob])


def _with_surface(vmap: VertexMap, desc_src, desc_tgt, target: Mesh) -> VertexMap:
    """``vmap`` refined to surface points on ``target`` (corners: the face's, or the vertex thrice)."""
    f, w, _ = surface_points(desc_src, desc_tgt, target, vmap.indices)
    corners = np.where(f[:, None] >= 0, target.faces[np.maximum(f, 0)], vmap.indices[:, None])
    return vmap.with_surface(f, w, corners)


class Aligner:
    """Dense correspondence between two meshes cut into the same parts, with reusable solvers.

    Parameters
    ----------
    mesh_a, mesh_b : Mesh
    parts_a, parts_b : PartLabels
        Same part names (any order; ``parts_b`` is renumbered to ``parts_a``'s order).
    common_time_step : bool
        Both meshes' geodesics use one absolute heat time step ``t = t_scale * h**2``
        (:func:`shared_time_step`), so that the descriptors smooth alike; False lets each
        mesh use its own default step.
    t_scale : float
    length_scale : {"max", "mean"}
    method : {"heat", "potpourri3d", "exact"}
        Geodesic method of the solvers.
    device : optional
        Where geodesics and matching run (None: CPU).
    merge_islands : bool
        Give every stray island of a part label (a piece under a quarter of the part's
        largest, :func:`densemap.islands.merge_islands`) the label around it before
        aligning; the labels used and what was merged (``islands``) are kept. Careful
        labels have none (the embedded meshes, the evaluation pairs); on rough labels it
        cuts the error by 17-40 % (docs/alignment.md).
    rough_labels : bool or None
        The labels are rough (boundaries a few rings off): the consistent refinement's
        polish step then matches across parts, and B's eigenbasis is the plain one, not
        matched to A's part areas (``refine_options={"polish_parts": False,
        "area_match": False}``, unless given). None (the default) decides from the labels: rough when either
        labelling has stray islands (found whether or not they are merged), careful
        otherwise; the answer is ``rough_labels`` and goes into the metadata.

    Attributes
    ----------
    solver_a, solver_b : GeodesicSolver
        Built on first use and kept.
    islands : dict
        ``{"a": ..., "b": ...}``: the islands merged in each labelling (``IslandReport.to_dict``).
    rough_labels : bool
        Whether the labels are treated as rough (see the parameter).

    Raises
    ------
    PartError
        ``parts_b`` names other parts than ``parts_a``, or a labelling does not fit its mesh.

    Examples
    --------
    >>> from densemap.data import reference
    >>> human, chimp = reference("human"), reference("chimp")
    >>> aligner = Aligner(human.mesh, human.parts, chimp.mesh, chimp.parts)
    >>> result = aligner.align(sources=4, refine=False, surface=False)
    >>> len(result.a_to_b), len(result.b_to_a)
    (13380, 7049)
    >>> quality = aligner.quality(result, geodesic=False)
    >>> quality["a_to_b"]["part_agreement"]
    1.0
    """

    def __init__(self, mesh_a: Mesh, parts_a: PartLabels, mesh_b: Mesh, parts_b: PartLabels, *,
                 common_time_step: bool = True, t_scale: float = 1.0, length_scale: LengthScale = "max",
                 method: Literal["heat", "potpourri3d", "exact"] = "heat", device=None, merge_islands: bool = True,
                 rough_labels: bool | None = None):
        check_choice("length_scale", length_scale, get_args(LengthScale))
        self.mesh_a, self.mesh_b = mesh_a, mesh_b
        parts_a, parts_b = parts_a.check_mesh(mesh_a), match_parts(parts_a, parts_b.check_mesh(mesh_b))
        reports = {"a": IslandReport(), "b": IslandReport()}
        found = False
        if merge_islands or rough_labels is None:
            (merged_a, reports["a"]), (merged_b, reports["b"]) = _merge_islands(mesh_a, parts_a), _merge_islands(mesh_b, parts_b)
            found = bool(reports["a"].islands or reports["b"].islands)
            if merge_islands:
                parts_a, parts_b = merged_a, merged_b
            else:
                reports = {"a": IslandReport(), "b": IslandReport()}
        self.parts_a, self.parts_b = parts_a, parts_b
        self.islands = {k: r.to_dict() for k, r in reports.items()}
        self.rough_labels = found if rough_labels is None else bool(rough_labels)
        self.common_time_step, self.t_scale, self.length_scale = bool(common_time_step), float(t_scale), length_scale
        self.method, self.device = method, device
        self.t = shared_time_step(mesh_a, mesh_b, t_scale=t_scale, length_scale=length_scale) if common_time_step else None
        self._solvers: dict[str, object] = {}

    def _solver(self, which: str):
        if which not in self._solvers:
            from ..geodesics import GeodesicSolver

            mesh = self.mesh_a if which == "a" else self.mesh_b
            check_connected(mesh)
            self._solvers[which] = GeodesicSolver(mesh, method=self.method, device=self.device, t=self.t)
        return self._solvers[which]

    @property
    def solver_a(self):
        return self._solver("a")

    @property
    def solver_b(self):
        return self._solver("b")

    def descriptors(self, *, progress: bool = False, **options) -> tuple[np.ndarray, np.ndarray]:
        """(desc_a (V_a, L), desc_b (V_b, L)) in ``parts_a``'s part order, from the kept solvers.

        ``options`` go to :func:`densemap.descriptors.part_descriptors` (weighting, sources,
        normalize, seed, ...); ``sources`` defaults to :data:`DEFAULT_SOURCES`.
        """
        from ..descriptors import part_descriptors

        check_connected(self.mesh_a)  # fail before any geodesic work
        check_connected(self.mesh_b)
        opts = {"sources": DEFAULT_SOURCES, **options, "progress": progress}
        for key in ("method", "t", "device", "solver"):
            if key in opts:
                raise TypeError(f"descriptor option {key!r} belongs to the Aligner (its solvers), not to descriptors()")
        desc_a = part_descriptors(self.mesh_a, self.parts_a, solver=self.solver_a, **opts)
        desc_b = part_descriptors(self.mesh_b, self.parts_b, solver=self.solver_b, **opts)
        return np.asarray(desc_a, dtype=np.float64), np.asarray(desc_b, dtype=np.float64)

    def _options(self, descriptors, same_part, refine, refine_options, surface, descriptor_options) -> dict:
        out = {
            "orientation": descriptor_options.pop("orientation", DEFAULT_ORIENTATION),
            "same_part": same_part,
            "standardize_parts": bool(descriptor_options.pop("standardize_parts", True)) and same_part,
            "refine": refine or False,
            "refine_options": dict(refine_options or {}),
            "surface": surface,
            "common_time_step": self.common_time_step,
            "t_scale": self.t_scale,
            "length_scale": self.length_scale,
            "device": None if self.device is None else str(self.device),
            # the sources actually used are recorded, the default included
            "descriptor_options": ({} if descriptors is not None else {"sources": DEFAULT_SOURCES})
            | dict(descriptor_options),
            "descriptors_given": descriptors is not None,
            "method": self.method,
        }
        if self.t is not None and descriptors is None:
            out["t"] = self.t
        return out

    def _match(self, desc_a, desc_b, same_part: bool, standardize: bool = False) -> tuple[VertexMap, VertexMap]:
        kw = dict(same_part=same_part, device=self.device, standardize=standardize)
        wa, wb = self.mesh_a.vertex_areas, self.mesh_b.vertex_areas
        a_to_b = match_descriptors(desc_a, desc_b, parts_src=self.parts_a, parts_tgt=self.parts_b, weights_src=wa,
                                   weights_tgt=wb, source_name=self.mesh_a.name, target_name=self.mesh_b.name, **kw)
        b_to_a = match_descriptors(desc_b, desc_a, parts_src=self.parts_b, parts_tgt=self.parts_a, weights_src=wb,
                                   weights_tgt=wa, source_name=self.mesh_b.name, target_name=self.mesh_a.name, **kw)
        return a_to_b, b_to_a

    def align(self, *, descriptors: tuple | None = None, same_part: bool = True, refine: bool | RefineMethod = "consistent",
              refine_options: dict | None = None, surface: bool = True, landmark_rounds: int | str = "auto",
              progress: bool = False, **descriptor_options) -> Alignment:
        """Align the pair; see :func:`align` for the parameters."""
        from .self_landmarks import landmark_rounds as resolve_rounds

        refine = "consistent" if refine is True else refine
        if refine:
            check_choice("refine", refine, get_args(RefineMethod))
        rounds = resolve_rounds(landmark_rounds, self.parts_a.n_parts) if refine == "consistent" else 0
        descriptor_options = dict(descriptor_options)
        options = self._options(descriptors, same_part, refine, refine_options, surface, descriptor_options)
        options["landmark_rounds"] = rounds
        timings: dict[str, float] = {}

        def stage(name, t0):
            timings[name] = time.perf_counter() - t0
            if progress:
                print(f"densemap.align: {name} {timings[name]:.2f} s", file=sys.stderr, flush=True)

        t0 = time.perf_counter()
        if descriptors is None:
            desc_a, desc_b = self.descriptors(progress=progress, **descriptor_options)
            stage("descriptors", t0)
        else:
            desc_a, _ = as_descriptor_array(descriptors[0], "desc_a")
            desc_b, _ = as_descriptor_array(descriptors[1], "desc_b")
        for d, m, w in ((desc_a, self.mesh_a, "desc_a"), (desc_b, self.mesh_b, "desc_b")):
            if len(d) != m.n_vertices:
                raise ValueError(f"{w} has {len(d)} rows but mesh {m.name!r} has {m.n_vertices} vertices")

        t0 = time.perf_counter()
        # matching and refinement see the orientation columns too; the result keeps (V, L)
        ext_a, ext_b = with_orientation(self.mesh_a, desc_a, self.mesh_b, desc_b, float(options["orientation"]))
        a_to_b, b_to_a = self._match(ext_a, ext_b, same_part, options["standardize_parts"])
        stage("match", t0)
        if refine:
            from .refine import K_FINAL, refine_maps

            t0 = time.perf_counter()
            ropts = {"same_part": same_part, "progress": progress, **(refine_options or {})}
            if refine == "consistent":
                ropts.setdefault("surface", surface)
                ropts.setdefault("polish", round(POLISH_FACTOR * ropts.get("k_final", K_FINAL)))
                if self.rough_labels and same_part:
                    # rough labels: the polish step across parts, and the plain eigenbasis
                    # (their part areas are too far off to match; docs/alignment.md)
                    ropts.setdefault("polish_parts", False)
                    ropts.setdefault("area_match", False)
            # the last round gives the surface points and the polish step
            first = {**ropts, "surface": False, "polish": None} if rounds else ropts
            a_to_b, b_to_a = refine_maps(self.mesh_a, self.mesh_b, a_to_b, b_to_a, method=refine, parts_a=self.parts_a,
                                         parts_b=self.parts_b, desc_a=ext_a, desc_b=ext_b, **first)
            stage("refine", t0)
            if rounds:
                t0 = time.perf_counter()
                a_to_b, b_to_a = self._landmark_rounds(a_to_b, b_to_a, rounds, ropts, progress)
                stage("landmarks", t0)
        if surface and not a_to_b.has_surface:
            t0 = time.perf_counter()
            a_to_b = _with_surface(a_to_b, ext_a, ext_b, self.mesh_b)
            b_to_a = _with_surface(b_to_a, ext_b, ext_a, self.mesh_a)
            stage("surface", t0)
        metadata = {
            "mesh_a": {"name": self.mesh_a.name, "sha1": self.mesh_a.sha1, "n_vertices": self.mesh_a.n_vertices},
            "mesh_b": {"name": self.mesh_b.name, "sha1": self.mesh_b.sha1, "n_vertices": self.mesh_b.n_vertices},
            "versions": package_versions("scipy", "torch"),
            "islands_merged": self.islands,
            "rough_labels": self.rough_labels,
        }
        return Alignment(a_to_b=a_to_b, b_to_a=b_to_a, desc_a=desc_a, desc_b=desc_b, part_names=tuple(self.parts_a.names),
                         parts_a=self.parts_a, parts_b=self.parts_b, options=options, timings=timings, metadata=metadata)

    def _landmark_rounds(self, a_to_b: VertexMap, b_to_a: VertexMap, rounds: int, ropts: dict, progress: bool):
        """The self-landmark stage (:mod:`densemap.mapping.self_landmarks`), from the refined maps."""
        from tqdm.auto import tqdm

        from .landmarks import Landmarks, paired_landmark_features
        from .refine import refine_maps
        from .self_landmarks import LANDMARK_WEIGHT, map_landmarks

        maps = (a_to_b, b_to_a)
        for r in tqdm(range(rounds), desc="self-landmark rounds", unit="round", disable=not progress, leave=False):
            ref, new = map_landmarks(self.mesh_a, self.solver_a, maps[0].indices, maps[1].indices)
            feat_a, feat_b = paired_landmark_features(self.mesh_a, self.mesh_b, Landmarks(ref, new),
                                                      solver_ref=self.solver_a, solver_new=self.solver_b)
            opts = {**ropts, "desc_weight": LANDMARK_WEIGHT, "progress": False}
            if r < rounds - 1:
                opts["surface"], opts["polish"] = False, None
            maps = refine_maps(self.mesh_a, self.mesh_b, a_to_b, b_to_a, method="consistent", parts_a=self.parts_a,
                               parts_b=self.parts_b, desc_a=feat_a, desc_b=feat_b, **opts)
        return maps

    def quality(self, alignment: Alignment, *, ground_truth_b_to_a=None, geodesic: bool = True,
                geodesic_sample: int | None = QUALITY_SAMPLE, surface: bool = False, progress: bool = False) -> QualityReport:
        """Map quality of both directions, with the kept solvers.

        Parameters
        ----------
        alignment : Alignment
            From :meth:`align` on this pair.
        ground_truth_b_to_a : optional
            The true A point of each B vertex (see :func:`~densemap.mapping.quality.map_quality`),
            e.g. :func:`densemap.data.chimp_to_human_ground_truth` for the embedded pair.
        geodesic : bool
        geodesic_sample : int or None
            Geodesic metrics (round trip, ground-truth error) on this many random source
            vertices per direction (seeded), one distance field each; None: all of them.
            The default (:data:`QUALITY_SAMPLE`) keeps the report to a few hundred
            solves; the standard error of the mean is then ~3% of it.
        surface : bool
            Score the surface points (when the maps have them) for the ground-truth
            error and the stretch.
        progress : bool
            tqdm bars over the geodesic solves.

        Returns
        -------
        QualityReport
            A ``dict`` ``{"a_to_b": {...}, "b_to_a": {...}}`` shown as one table, each from :func:`map_quality`
            (part agreement, coverage, stretch, round-trip consistency, ground-truth error).
        """
        kw = dict(geodesic=geodesic, device=self.device, geodesic_sample=geodesic_sample, surface=surface,
                  progress=progress)
        solvers = dict(solver_a=self.solver_a, solver_b=self.solver_b) if geodesic else {}
        return QualityReport({
            "a_to_b": map_quality(self.mesh_a, self.mesh_b, alignment.a_to_b, parts_a=self.parts_a, parts_b=self.parts_b,
                                  b_to_a=alignment.b_to_a, **solvers, **kw),
            "b_to_a": map_quality(self.mesh_b, self.mesh_a, alignment.b_to_a, parts_a=self.parts_b, parts_b=self.parts_a,
                                  b_to_a=alignment.a_to_b, ground_truth=ground_truth_b_to_a,
                                  **({"solver_a": self.solver_b, "solver_b": self.solver_a} if geodesic else {}), **kw),
        })


def align(
    mesh_a: Mesh,
    parts_a: PartLabels,
    mesh_b: Mesh,
    parts_b: PartLabels,
    *,
    descriptors: tuple | None = None,
    same_part: bool = True,
    refine: bool | RefineMethod = "consistent",
    refine_options: dict | None = None,
    surface: bool = True,
    landmark_rounds: int | str = "auto",
    common_time_step: bool = True,
    t_scale: float = 1.0,
    length_scale: LengthScale = "max",
    device=None,
    progress: bool = False,
    **descriptor_options,
) -> Alignment:
    """Dense correspondence between two meshes labelled with the same parts.

    Parameters
    ----------
    mesh_a, mesh_b : Mesh
    parts_a, parts_b : PartLabels
        Same part names (any order; ``parts_b`` is renumbered to ``parts_a``'s order).
    descriptors : (desc_a (V_a, L), desc_b (V_b, L)), optional
        Precomputed descriptors, in ``parts_a``'s part order; skips computing them.
    same_part : bool
        Match (and refine) only within the same part (default; see docs/alignment.md
        for the measurements behind the defaults).
    standardize_parts (keyword, default True)
        With ``same_part``, the first match compares each part's descriptors centred and
        scaled over the part on each mesh (``match_descriptors(standardize=True)``);
        False compares them as they are (the paper's form).
    refine : bool or {"consistent", "zoomout"}
        Spectral refinement of both maps (:func:`densemap.mapping.refine.refine_maps`):
        "consistent" (the default; True means it) refines both directions with a
        bijectivity term, and gives the surface points in the final spectral embedding;
        "zoomout" is the paper's ZoomOut. ``refine_options`` go to it (k_init, k_final,
        bijective_weight, max_samples, ...). "consistent" ends with a polish step in
        ``POLISH_FACTOR`` times ``k_final`` eigenfunctions (200 by default;
        ``{"polish": None}`` turns it off); ``{"polish_parts": False}`` lets that step
        match across parts, for rough labels (``densemap align --rough-labels``).
    surface : bool
        Add surface points (:func:`~densemap.mapping.matching.surface_points`) to both maps.
    landmark_rounds : int or "auto"
        Rounds of the self-landmark stage after the consistent refinement
        (:mod:`densemap.mapping.self_landmarks`: spread vertices that the maps send back
        to themselves become landmarks, and their features drive a second refinement).
        "auto": 3 rounds when ``parts_a`` has at most 12 parts (coarse labels, where it
        cuts the error by half or more), else none; 0 turns it off.
    common_time_step, t_scale, length_scale
        The heat time step shared by both meshes (see :class:`Aligner`).
    merge_islands (keyword, default True), rough_labels (keyword, default None: from the labels)
        Merge stray islands of the part labels first; treat the labels as rough (see :class:`Aligner`).
    device : optional
        Where descriptors and matching run (None: CPU).
    progress : bool
        Progress bars over the geodesic sources and one line per stage (on stderr).
    **descriptor_options
        Passed to :func:`densemap.descriptors.part_descriptors` (weighting, sources,
        normalize, seed, ...); ``method`` picks the geodesic method. ``sources`` defaults
        to :data:`DEFAULT_SOURCES` (16 sampled sources per part: the same ground-truth
        error as all sources on the embedded pair, at a quarter of the time).

    Returns
    -------
    Alignment

    Raises
    ------
    PartError
        The two labellings name different parts or do not fit their meshes.

    Examples
    --------
    A mesh aligned with itself maps every vertex (and surface point) to itself:

    >>> import numpy as np, densemap
    >>> chimp = densemap.reference("chimp")
    >>> result = densemap.align(chimp.mesh, chimp.parts, chimp.mesh, chimp.parts, sources=4, refine=False)
    >>> bool((result.b_to_a.indices == np.arange(chimp.mesh.n_vertices)).all()), result.b_to_a.has_surface
    (True, True)
    """
    method = descriptor_options.pop("method", "heat")
    aligner = Aligner(mesh_a, parts_a, mesh_b, parts_b, common_time_step=common_time_step, t_scale=t_scale,
                      length_scale=length_scale, method=method, device=device,
                      merge_islands=descriptor_options.pop("merge_islands", True),
                      rough_labels=descriptor_options.pop("rough_labels", None))
    return aligner.align(descriptors=descriptors, same_part=same_part, refine=refine, refine_options=refine_options,
                         surface=surface, landmark_rounds=landmark_rounds, progress=progress, **descriptor_options)
