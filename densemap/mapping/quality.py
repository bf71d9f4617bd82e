"""Map quality: how good is a dense map from mesh A to mesh B.

:func:`map_quality` scores a :class:`~densemap.mapping.VertexMap` by part agreement,
coverage of the target, edge stretch, A -> B -> A round-trip consistency and, when a
ground truth is given, the distance from each mapped point to its true match (along the
surface by heat-method geodesics, or Euclidean as a fast proxy).
"""

from __future__ import annotations

import numpy as np

from .._display import Table
from ..mesh import Mesh
from ..parts import PartLabels, match_parts
from ..surface import surface_positions
from .vertex_map import VertexMap

__all__ = ["map_quality", "MapQuality", "QualityReport", "part_agreement", "coverage", "edge_stretch", "round_trip_consistency", "ground_truth_error"]


# what each metric of map_quality means, for the tables below (lower or higher is better)
METRICS = {
    "part_agreement": "source vertices matched into their own part (higher is better)",
    "coverage": "target vertices hit by the map",
    "coverage_area": "target area within one ring of a hit vertex",
    "stretch_median": "mapped edge length / edge length, area-normalised (1 is ideal)",
    "stretch_p10": "10th percentile of the stretch",
    "stretch_p90": "90th percentile of the stretch",
    "collapsed_edges": "source edges whose ends map to one target vertex (lower is better)",
    "consistency_mean": "source -> target -> source distance / sqrt(area) (lower is better)",
    "consistency_median": "median round-trip distance / sqrt(area)",
    "gt_error_mean": "distance to the true match / sqrt(area) (lower is better)",
    "gt_error_median": "median distance to the true match / sqrt(area)",
    "gt_error_p90": "90th percentile of the distance to the true match",
    "geodesic_sample": "source vertices the geodesic metrics were estimated on",
}


def _rows(q: dict) -> list[tuple]:
    return [(k, v) for k, v in q.items() if not isinstance(v, dict)]


def _worst_part(q: dict):
    per = q.get("part_agreement_per_part") or {}
    if not per or min(per.values()) >= 1:
        return None
    name = min(per, key=lambda n: (per[n], n))
    return f"lowest part agreement: {name} ({per[name]:.3g})"


class MapQuality(dict):
    """The metrics of one map, from :func:`map_quality`: a plain ``dict`` (metric name ->
    value) that shows as a table in a notebook and as aligned text in ``repr``."""

    title = "Map quality"

    def _table(self) -> Table:
        rows = [(k, v, METRICS.get(k, "")) for k, v in _rows(self)]
        return Table(self.title, ("metric", "value", "meaning"), rows, notes=[n for n in [_worst_part(self)] if n])

    def __repr__(self):
        return self._table().text()

    def _repr_html_(self):
        return self._table().html()


class QualityReport(dict):
    """Both directions' :class:`MapQuality`, ``{"a_to_b": ..., "b_to_a": ...}`` (from
    :meth:`~densemap.mapping.Aligner.quality`): a ``dict`` shown as one table, a column per direction."""

    def _table(self) -> Table:
        keys = list(dict.fromkeys(k for q in self.values() for k, _ in _rows(q)))
        names = list(self)
        rows = [(k, *(self[n].get(k) for n in names), METRICS.get(k, "")) for k in keys]
        notes = [f"{n}: {w}" for n in names if (w := _worst_part(self[n]))]
        return Table("Map quality", ("metric", *(n.replace("_to_", " -> ").upper() for n in names), "meaning"), rows,
                     notes=notes)

    def __repr__(self):
        return self._table().text()

    def _repr_html_(self):
        return self._table().html()


def _field_at(rows: np.ndarray, where: np.ndarray, vmap: VertexMap | None, sel: np.ndarray, surface: bool):
    """Values of distance fields ``rows[k]`` at the mapped points of sources ``sel``."""
    if vmap is not None and surface and vmap.has_surface and vmap.corners is not None:
        k = np.arange(len(sel))
        vals = rows[k[:, None], vmap.corners[sel]]
        ok = vmap.faces[sel] >= 0
        return np.where(ok, (vals * vmap.bary[sel]).sum(1), rows[k, where])
    return rows[np.arange(len(sel)), where]


def _geodesic_pairs(solver, src: np.ndarray, dst: np.ndarray, chunk: int, vmap=None, surface=False,
                    progress: bool = False) -> np.ndarray:
    """Geodesic distance from vertex ``src[i]`` to vertex ``dst[i]`` (or to ``vmap``'s surface point i).

    One distance field per unique source vertex, computed ``chunk`` sources at a time.
    """
    from tqdm.auto import tqdm

    out = np.zeros(len(src))
    uniq, inv = np.unique(src, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(0, len(uniq) + chunk, chunk))
    for c, s in enumerate(tqdm(range(0, len(uniq), chunk), desc="quality geodesics", unit="chunk",
                               disable=not progress, leave=False)):
        rows = np.asarray(solver.distances(uniq[s : s + chunk]), dtype=np.float64)
        sel = order[bounds[c] : bounds[c + 1]]
        out[sel] = _field_at(rows[inv[sel] - s], dst[sel], vmap, sel, surface)
    return out


def _subset(vmap: VertexMap, rows: np.ndarray) -> VertexMap:
    """The map restricted to source vertices ``rows``."""
    if len(rows) == len(vmap):
        return vmap
    pick = lambda a: None if a is None else a[rows]  # noqa: E731
    return VertexMap(vmap.indices[rows], vmap.distances[rows], faces=pick(vmap.faces), bary=pick(vmap.bary),
                     corners=pick(vmap.corners), n_target=vmap.n_target)


def _solver(mesh: Mesh, given, device):
    if given is not None:
        return given
    from ..geodesics import GeodesicSolver

    return GeodesicSolver(mesh, device=device)


def _stats(x: np.ndarray, prefix: str, pcts=(50, 90)) -> dict:
    x = x[np.isfinite(x)]
    out = {f"{prefix}_mean": float(x.mean()) if len(x) else float("nan")}
    for p in pcts:
        out[f"{prefix}_median" if p == 50 else f"{prefix}_p{p}"] = float(np.percentile(x, p)) if len(x) else float("nan")
    return out


def _check_map(mesh_a: Mesh, mesh_b: Mesh, a_to_b: VertexMap, what: str = "a_to_b") -> None:
    na, nb = mesh_a.n_vertices, mesh_b.n_vertices
    if len(a_to_b) != na:
        raise ValueError(f"{what} has {len(a_to_b)} entries but mesh {mesh_a.name!r} has {na} vertices")
    if len(a_to_b) and a_to_b.indices.max() >= nb:
        raise ValueError(f"{what} points at vertex {int(a_to_b.indices.max())} but mesh {mesh_b.name!r} has {nb}")


def part_agreement(mesh_a: Mesh, mesh_b: Mesh, a_to_b: VertexMap, parts_a: PartLabels, parts_b: PartLabels) -> dict:
    """``part_agreement``: fraction of labelled A vertices whose match has the same part, and
    ``part_agreement_per_part`` by part name (``parts_b`` is renumbered to ``parts_a``'s order)."""
    parts_a.check_mesh(mesh_a)
    parts_b = match_parts(parts_a, parts_b.check_mesh(mesh_b))
    la, lb = parts_a.labels, parts_b.labels[a_to_b.indices]
    lab = la >= 0
    return {
        "part_agreement": float((la[lab] == lb[lab]).mean()) if lab.any() else float("nan"),
        "part_agreement_per_part": {n: float((lb[la == k] == k).mean()) for k, n in enumerate(parts_a.names)},
    }


def coverage(mesh_b: Mesh, a_to_b: VertexMap) -> dict:
    """``coverage``: fraction of B vertices hit; ``coverage_area``: fraction of B's area within
    one ring of a hit vertex."""
    hit = np.zeros(mesh_b.n_vertices, bool)
    hit[a_to_b.indices] = True
    near = hit | (mesh_b.adjacency @ hit.astype(np.int64) > 0)
    return {"coverage": float(hit.mean()),
            "coverage_area": float(mesh_b.vertex_areas[near].sum() / max(mesh_b.area, 1e-300))}


def edge_stretch(mesh_a: Mesh, mesh_b: Mesh, a_to_b: VertexMap, *, surface: bool = False) -> dict:
    """``stretch_median``/``_p10``/``_p90``: mapped edge length on B over the edge's length on A,
    divided by ``sqrt(area_B / area_A)`` (collapsed edges included); ``collapsed_edges``:
    fraction of A's edges with both ends on one B vertex."""
    e, la_e = mesh_a.edges, mesh_a.edge_lengths
    m = a_to_b.indices
    pts = a_to_b.points(mesh_b, surface=surface)
    scale = np.sqrt(mesh_b.area / max(mesh_a.area, 1e-300))
    ok = la_e > 0
    ratio = np.linalg.norm(pts[e[ok, 0]] - pts[e[ok, 1]], axis=1) / la_e[ok] / scale
    out = {}
    if len(ratio):
        out["stretch_median"] = float(np.median(ratio))
        out["stretch_p10"] = float(np.percentile(ratio, 10))
        out["stretch_p90"] = float(np.percentile(ratio, 90))
    out["collapsed_edges"] = float((m[e[:, 0]] == m[e[:, 1]]).mean()) if len(e) else 0.0
    return out


def _sample(n: int, sample: int | None, seed: int = 0) -> np.ndarray:
    """All of ``0..n-1``, or ``sample`` of them drawn without replacement (seeded), sorted."""
    if sample is None or sample >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, int(sample), replace=False))


def round_trip_consistency(mesh_a: Mesh, a_to_b: VertexMap, b_to_a: VertexMap, *, geodesic: bool = True,
                           solver_a=None, device=None, chunk: int = 256, sample: int | None = None,
                           progress: bool = False) -> dict:
    """``consistency_mean``/``_median``: distance on A from a vertex to its A -> B -> A round
    trip, over ``sqrt(area_A)`` (geodesic, or Euclidean with ``geodesic=False``); with
    ``sample``, over that many random A vertices (seeded)."""
    rows = _sample(mesh_a.n_vertices, sample)
    na = len(rows)
    rt = b_to_a.indices[a_to_b.indices[rows]]
    d = np.zeros(na)
    moved = np.flatnonzero(rt != rows)
    if len(moved):
        if geodesic:
            # distance fields from the round-trip ends: maps collapse, so these are few
            d[moved] = _geodesic_pairs(_solver(mesh_a, solver_a, device), rt[moved], rows[moved], chunk,
                                       progress=progress)
        else:
            d[moved] = np.linalg.norm(mesh_a.vertices[rt[moved]] - mesh_a.vertices[rows[moved]], axis=1)
    d /= np.sqrt(max(mesh_a.area, 1e-300))
    return {"consistency_mean": float(d.mean()), "consistency_median": float(np.median(d))}


def _ground_truth_points(mesh_b: Mesh, n_a: int, ground_truth) -> tuple[np.ndarray, np.ndarray]:
    """(vertex (V_a,), position (V_a, 3)) on B of a ground truth given as vertices or surface points."""
    if isinstance(ground_truth, (tuple, list)) and len(ground_truth) == 2:
        gf = np.asarray(ground_truth[0], dtype=np.int64)
        gb = np.asarray(ground_truth[1], dtype=np.float64)
        if gf.shape != (n_a,) or gb.shape != (n_a, 3):
            raise ValueError(f"ground_truth (faces, bary) must have shapes ({n_a},) and ({n_a}, 3), got {gf.shape} and {gb.shape}")
        if gf.size and (gf.min() < 0 or gf.max() >= mesh_b.n_faces):
            raise ValueError(f"ground_truth faces must be in 0..{mesh_b.n_faces - 1}")
        return mesh_b.faces[gf, np.argmax(gb, axis=1)], surface_positions(mesh_b.vertices, mesh_b.faces, gf, gb)
    g_vert = np.asarray(ground_truth)
    if g_vert.shape != (n_a,) or (g_vert.size and g_vert.dtype.kind not in "iu"):
        raise ValueError(f"ground_truth must be ({n_a},) B vertex ids or (faces, bary), got shape {g_vert.shape}")
    if g_vert.size and (g_vert.min() < 0 or g_vert.max() >= mesh_b.n_vertices):
        raise ValueError(f"ground_truth vertex ids must be in 0..{mesh_b.n_vertices - 1}")
    g_vert = g_vert.astype(np.int64)
    return g_vert, mesh_b.vertices[g_vert]


def ground_truth_error(mesh_b: Mesh, a_to_b: VertexMap, ground_truth, *, geodesic: bool = True, surface: bool = False,
                       solver_b=None, device=None, chunk: int = 256, sample: int | None = None,
                       progress: bool = False) -> dict:
    """``gt_error_mean``/``_median``/``_p90``: distance on B from each mapped point to its true
    match, over ``sqrt(area_B)`` (see :func:`map_quality` for the conventions); with
    ``sample``, over that many random A vertices (seeded)."""
    g_vert, g_pos = _ground_truth_points(mesh_b, len(a_to_b), ground_truth)
    rows = _sample(len(a_to_b), sample)
    if geodesic:
        err = _geodesic_pairs(_solver(mesh_b, solver_b, device), g_vert[rows], a_to_b.indices[rows], chunk,
                              vmap=_subset(a_to_b, rows), surface=surface, progress=progress)
    else:
        err = np.linalg.norm(a_to_b.points(mesh_b, surface=surface)[rows] - g_pos[rows], axis=1)
    return _stats(err / np.sqrt(max(mesh_b.area, 1e-300)), "gt_error")


def map_quality(
    mesh_a: Mesh,
    mesh_b: Mesh,
    a_to_b: VertexMap,
    *,
    parts_a: PartLabels | None = None,
    parts_b: PartLabels | None = None,
    b_to_a: VertexMap | None = None,
    ground_truth=None,
    geodesic: bool = True,
    surface: bool = False,
    solver_a=None,
    solver_b=None,
    device=None,
    chunk: int = 256,
    geodesic_sample: int | None = None,
    progress: bool = False,
) -> MapQuality:
    """Score a map from mesh A to mesh B: every metric that the inputs allow.

    Parameters
    ----------
    mesh_a, mesh_b : Mesh
    a_to_b : VertexMap
    parts_a, parts_b : PartLabels, optional
        For the part agreement (``parts_b`` is renumbered to ``parts_a``'s order).
    b_to_a : VertexMap, optional
        For the A -> B -> A round-trip consistency.
    ground_truth : (V_a,) int or (faces (V_a,) int, bary (V_a, 3) float), optional
        The true B vertex, or the true point on B's surface, of each A vertex.
    geodesic : bool
        Measure consistency and ground-truth error along the surface (heat-method
        distance fields, one per unique source vertex, ``chunk`` at a time); False
        uses the Euclidean distance, a fast proxy.
    surface : bool
        Use ``a_to_b``'s surface points (when it has them) instead of its vertices for
        the edge stretch and ground-truth error.
    solver_a, solver_b : object with ``.distances(sources) -> (S, V)``, optional
        Prefactored geodesic solvers to reuse (default: :class:`~densemap.geodesics.GeodesicSolver`).
    geodesic_sample : int, optional
        Estimate the consistency and the ground-truth error on this many random A
        vertices (seeded; one distance field each) instead of all; the result then
        holds ``geodesic_sample``. None: every vertex.
    progress : bool
        tqdm bars over the geodesic chunks.

    Returns
    -------
    MapQuality
        A ``dict`` (shown as a table): the union of :func:`part_agreement` (with parts), :func:`coverage`,
        :func:`edge_stretch`, :func:`round_trip_consistency` (with ``b_to_a``) and
        :func:`ground_truth_error` (with ``ground_truth``).

    Notes
    -----
    Geodesic ground-truth error snaps a ground-truth surface point to its nearest
    corner (largest barycentric weight) and measures from that vertex, so errors
    below about half an edge length are not resolved; a mapped surface point takes
    the barycentric interpolation of that distance field at its face's corners.

    Examples
    --------
    >>> import numpy as np
    >>> from densemap.data import reference
    >>> from densemap.mapping import VertexMap
    >>> mesh, parts, _ = reference("chimp")
    >>> ident = VertexMap(np.arange(mesh.n_vertices), np.zeros(mesh.n_vertices))
    >>> q = map_quality(mesh, mesh, ident, parts_a=parts, parts_b=parts, geodesic=False)
    >>> q["part_agreement"], q["coverage"], q["stretch_median"], q["collapsed_edges"]
    (1.0, 1.0, 1.0, 0.0)
    """
    _check_map(mesh_a, mesh_b, a_to_b)
    out = MapQuality()
    if parts_a is not None and parts_b is not None:
        out.update(part_agreement(mesh_a, mesh_b, a_to_b, parts_a, parts_b))
    out.update(coverage(mesh_b, a_to_b))
    out.update(edge_stretch(mesh_a, mesh_b, a_to_b, surface=surface))
    if b_to_a is not None:
        nb, na = mesh_b.n_vertices, mesh_a.n_vertices
        if len(b_to_a) != nb or (len(b_to_a) and b_to_a.indices.max() >= na):
            raise ValueError(f"b_to_a must map the {nb} vertices of {mesh_b.name!r} to the {na} of {mesh_a.name!r}")
        out.update(round_trip_consistency(mesh_a, a_to_b, b_to_a, geodesic=geodesic, solver_a=solver_a, device=device,
                                          chunk=chunk, sample=geodesic_sample, progress=progress))
    if ground_truth is not None:
        out.update(ground_truth_error(mesh_b, a_to_b, ground_truth, geodesic=geodesic, surface=surface,
                                      solver_b=solver_b, device=device, chunk=chunk, sample=geodesic_sample,
                                      progress=progress))
    if geodesic_sample is not None and geodesic_sample < mesh_a.n_vertices:
        out["geodesic_sample"] = int(geodesic_sample)
    return out
