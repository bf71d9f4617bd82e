"""Carry DensePose annotations from a source mesh to a target mesh.

A point labelled ``(I, U, V)`` on the source's charts, or ``dp_vertex`` on the source
mesh, becomes a source surface point (:meth:`ChartAtlas.locate`), goes to the target
surface through the map (:class:`densemap.surface.SurfaceMap`), and is written as the
target's ``(I, U, V)`` (:meth:`ChartAtlas.chart_coords`) plus its nearest target vertex
(``dp_vertex``). Every point is kept, moved to the nearest point of its chart, or
dropped with a reason (:class:`~densemap.annotation.report.ConversionReport`).
"""

from __future__ import annotations

import copy
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, get_args

import numpy as np

from densemap._validate import check_choice
from densemap.charts import ChartAtlas
from densemap.data import Species
from densemap.errors import AnnotationError, DensemapError
from densemap.mesh import Mesh
from densemap.surface import SurfaceMap, vertex_face_incidence

from .coco import DP_FIELDS, POINT_FIELDS, check_annotation, check_structure, has_densepose, read_coco, write_coco
from .report import DROPPED, KEPT, MOVED, AnnotationRecord, ConversionReport

__all__ = [
    "REFERENCE_NAMES",
    "PointResult",
    "AnnotationConverter",
    "reference_converter",
    "convert_annotations",
    "convert_file",
    "file_sha256",
]

# ref_model names of the embedded meshes
REFERENCE_NAMES = {"chimp": "densemap_chimp", "human": "densemap_human"}
STATUS = (KEPT, MOVED, DROPPED)


class PointResult(NamedTuple):
    """Converted points (arrays of length P).

    i, u, v : target chart id (0 where dropped) and chart coordinates
    vertex : nearest target vertex (-1 where dropped)
    face, bary : target surface point (face -1 where dropped)
    status : 0 kept, 1 moved to the nearest point of its chart, 2 dropped
    uv_distance : (u, v) distance of a moved point (0 if kept)
    reason : dict point -> reason for dropped points
    """

    i: np.ndarray
    u: np.ndarray
    v: np.ndarray
    vertex: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    status: np.ndarray
    uv_distance: np.ndarray
    reason: dict


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(eq=False)
class AnnotationConverter:
    """Converts points between two charted meshes; reusable for many files.

    Parameters
    ----------
    source, target : Mesh
    source_atlas, target_atlas : ChartAtlas
        Charts on each mesh's vertices.
    vmap : VertexMap or None
        Source-to-target map (``indices``, optional surface points). None means the
        identity and needs ``source`` and ``target`` to be the same mesh.
    source_name, target_name : str
        ``ref_model`` names: ``dp_vertex`` annotations must name the source; outputs
        name the target.
    map_info : dict
        Provenance of the map (file and hash, or how it was computed).
    """

    source: Mesh
    source_atlas: ChartAtlas
    target: Mesh
    target_atlas: ChartAtlas
    vmap: object = None
    source_name: str = "source"
    target_name: str = "target"
    map_info: dict | None = None

    def __post_init__(self):
        self.source_atlas.check_mesh(self.source)
        self.target_atlas.check_mesh(self.target)
        if self.vmap is None:
            if self.source.sha1 != self.target.sha1:
                raise DensemapError(f"no map given from {self.source.name} to a different mesh {self.target.name}")
            idx = np.arange(self.source.n_vertices)
            pos = self.target.vertices
            self.map_info = self.map_info or {"kind": "identity"}
        else:
            if len(self.vmap.indices) != self.source.n_vertices:
                raise DensemapError(f"the map has {len(self.vmap.indices)} source vertices but {self.source.name} has {self.source.n_vertices}")
            if self.vmap.indices.max() >= self.target.n_vertices:
                raise DensemapError(f"the map points at vertex {int(self.vmap.indices.max())} but {self.target.name} has {self.target.n_vertices}")
            idx = self.vmap.indices
            pos = self.vmap.points(self.target) if hasattr(self.vmap, "points") else self.target.vertices[idx]
        self._smap = SurfaceMap(idx, pos, self.source_atlas.faces, self.target.vertices, self.target_atlas.faces,
                                face_labels=self.target_atlas.charts)
        self._same_surface = self.source.sha1 == self.target.sha1 and np.array_equal(self.source_atlas.faces, self.target_atlas.faces)
        # a charted source face for every vertex (for dp_vertex points)
        on = self.source_atlas.charts > 0
        inc = vertex_face_incidence(self.source_atlas.faces[on], self.source.n_vertices).tocsr()
        nz = np.diff(inc.indptr) > 0
        first = np.full(self.source.n_vertices, -1, np.int64)
        first[nz] = np.flatnonzero(on)[inc.indices[inc.indptr[:-1][nz]]]
        self._vertex_face = first

    @property
    def source_names(self) -> tuple[str, ...]:
        return (self.source_name,)

    # ------------------------------------------------------------------ points
    def convert_charts(self, i, u, v) -> PointResult:
        """Convert chart points ``(I, U, V)`` on the source's charts (invalid ones are dropped)."""
        i = np.asarray(i, dtype=np.float64)
        loc = self.source_atlas.locate(np.where(np.isfinite(i), i, -1).astype(np.int64), u, v)
        reason = {}
        bad = np.flatnonzero(loc.face < 0)
        for k in bad:
            reason[int(k)] = f"chart {i[k]:g} has no face on the source atlas" if np.isfinite(u[k]) and np.isfinite(v[k]) \
                else "non-finite (U, V)"
        return self._finish(loc.face, loc.bary, np.where(loc.face >= 0, loc.distance, np.nan), reason)

    def convert_vertices(self, vertex) -> PointResult:
        """Convert source vertices (``dp_vertex``)."""
        vertex = np.asarray(vertex, dtype=np.int64)
        ok = (vertex >= 0) & (vertex < self.source.n_vertices)
        face = np.where(ok, self._vertex_face[np.where(ok, vertex, 0)], -1)
        bary = np.zeros((len(vertex), 3))
        good = face >= 0
        corner = np.argmax(self.source_atlas.faces[face[good]] == vertex[good, None], axis=1)
        bary[np.flatnonzero(good), corner] = 1.0
        reason = {int(k): (f"dp_vertex {vertex[k]} is in no charted face of the source atlas" if ok[k]
                           else f"dp_vertex = {vertex[k]} is not a vertex of the source mesh")
                  for k in np.flatnonzero(~good)}
        return self._finish(face, bary, np.where(good, 0.0, np.nan), reason)

    def _finish(self, face, bary, uv_dist, reason) -> PointResult:
        n = len(face)
        ok = face >= 0
        sf = face[ok]
        prefer_label = self.source_atlas.charts[sf]
        prefer_face = sf if self._same_surface else None
        tf, tb, _ = self._smap.map(sf, bary[ok], prefer_label=prefer_label, prefer_face=prefer_face)
        t_face = -np.ones(n, np.int64)
        t_bary = np.zeros((n, 3))
        t_face[ok], t_bary[ok] = tf, tb
        lost = ok & (t_face < 0)
        for k in np.flatnonzero(lost):
            reason[int(k)] = "the mapped point has no target face nearby"
        ok &= ~lost
        c = np.zeros(n, np.int64)
        u = np.zeros(n)
        v = np.zeros(n)
        c[ok], u[ok], v[ok] = self.target_atlas.chart_coords(t_face[ok], t_bary[ok])
        nochart = ok & (c == 0)
        for k in np.flatnonzero(nochart):
            reason[int(k)] = "the mapped point lands on a target face in no chart"
        ok &= ~nochart
        vert = -np.ones(n, np.int64)
        if ok.any():
            tri = self.target.vertices[self.target_atlas.faces[t_face[ok]]]
            p = np.einsum("pk,pkd->pd", t_bary[ok], tri)
            near = np.argmin(((tri - p[:, None]) ** 2).sum(-1), axis=1)
            vert[ok] = self.target_atlas.faces[t_face[ok], near]
        status = np.where(ok, np.where(uv_dist > 0, 1, 0), 2)
        return PointResult(c, np.clip(u, 0, 1), np.clip(v, 0, 1), vert, np.where(ok, t_face, -1), t_bary, status,
                           np.where(ok, uv_dist, np.nan), reason)

    def provenance(self) -> dict:
        return {
            "source": {"ref_model": self.source_name, "mesh": self.source.name, "sha1": self.source.sha1,
                       "n_vertices": self.source.n_vertices, "atlas": self.source_atlas.name},
            "target": {"ref_model": self.target_name, "mesh": self.target.name, "sha1": self.target.sha1,
                       "n_vertices": self.target.n_vertices, "atlas": self.target_atlas.name},
            "map": self.map_info or {},
        }


def _map_direction(alignment, source: Mesh, target: Mesh, where: str):
    """The source-to-target VertexMap of an Alignment, chosen by mesh sha1."""
    md = alignment.metadata or {}
    a, b = md.get("mesh_a", {}).get("sha1"), md.get("mesh_b", {}).get("sha1")
    if a == source.sha1 and b == target.sha1:
        return alignment.a_to_b
    if b == source.sha1 and a == target.sha1:
        return alignment.b_to_a
    raise DensemapError(f"{where}: the map is between meshes with sha1 {a} and {b}, not between "
                        f"{source.name} ({source.sha1}) and {target.name} ({target.sha1})")


def reference_converter(
    source: Species = "chimp",
    target: Species = "human",
    *,
    map_path: str | os.PathLike | None = None,
    sources: int | Literal["all"] = 16,
    progress: bool = False,
) -> AnnotationConverter:
    """Converter between the embedded meshes (default: chimpanzee to human).

    Parameters
    ----------
    source, target : {"chimp", "human"}
    map_path : path-like, optional
        An alignment ``.npz`` (``densemap align``) between the two meshes, either way
        round. Without it the map is computed with :func:`densemap.mapping.align` on the
        reference pair (``sources`` sampled geodesic sources per part; "all" = the
        library default, slower), which the provenance records.
    """
    from densemap import data
    from densemap.charts import reference_atlas

    for s in (source, target):
        check_choice("reference mesh", s, get_args(Species))
    ref = {"chimp": data.reference_chimp, "human": data.reference_human}
    src, dst = ref[source](), ref[target]()
    vmap, info = None, None
    if source != target:
        if map_path is not None:
            vmap, info = _load_map(map_path, src.mesh, dst.mesh)
        else:
            from densemap.mapping import align

            t0 = time.perf_counter()
            al = align(src.mesh, src.parts, dst.mesh, dst.parts, sources=sources, progress=progress)
            vmap = al.a_to_b
            info = {"kind": "computed", "function": "densemap.mapping.align", "options": {"sources": sources},
                    "seconds": round(time.perf_counter() - t0, 2)}
    return AnnotationConverter(src.mesh, reference_atlas(source), dst.mesh, reference_atlas(target), vmap,
                               source_name=REFERENCE_NAMES[source], target_name=REFERENCE_NAMES[target], map_info=info)


def _load_map(path, source: Mesh, target: Mesh):
    from densemap.mapping import load_alignment

    al = load_alignment(path)
    vmap = _map_direction(al, source, target, str(path))
    return vmap, {"kind": "file", "file": str(path), "sha256": file_sha256(path)}


# ----------------------------------------------------------------------------- annotations
def convert_annotations(data: dict, converter: AnnotationConverter, *, strict: bool = False,
                        where: str = "annotations") -> tuple[dict, ConversionReport]:
    """Convert the DensePose fields of a COCO dict.

    Parameters
    ----------
    data : dict
        COCO JSON content; not modified.
    converter : AnnotationConverter
    strict : bool
        Raise on the first dropped point instead of reporting it.
    where : str
        Name used in error messages (the input file).

    Returns
    -------
    out : dict
        A copy of ``data``: every field and image untouched except the annotations'
        ``dp_x``, ``dp_y``, ``dp_I``, ``dp_U``, ``dp_V``, ``dp_vertex``, ``ref_model``
        (kept points only, on the target; ``dp_masks`` are kept as they are) and
        ``info.densemap_conversions`` (provenance, appended).
    report : ConversionReport

    Raises
    ------
    AnnotationError
        Malformed structure; with ``strict``, any dropped point (naming the first).
    """
    check_structure(data, where)
    anns = data["annotations"]
    report = ConversionReport(n_annotations=len(anns), provenance=converter.provenance())
    checks = {}
    chart_rows, vertex_rows = [], []  # (annotation index, point index)
    for a, ann in enumerate(anns):
        if not has_densepose(ann):
            continue
        chk = check_annotation(ann, n_vertices=converter.source.n_vertices, ref_models=converter.source_names)
        checks[a] = chk
        rec = AnnotationRecord(index=a, id=ann.get("id"), notes=list(chk.notes))
        rec.points = [DROPPED if r else KEPT for r in chk.reasons]
        rec.dropped = {k: r for k, r in enumerate(chk.reasons) if r}
        if chk.error:
            rec.status, rec.reason = "dropped", chk.error
        report.records.append(rec)
        if chk.error is None:
            good = [k for k, r in enumerate(chk.reasons) if r is None]
            (chart_rows if chk.kind == "chart" else vertex_rows).extend((a, k) for k in good)
    recs = {r.index: r for r in report.records}
    results = {}
    if chart_rows:
        ai = np.array(chart_rows)
        i = np.array([checks[a].i[k] for a, k in chart_rows])
        u = np.array([checks[a].u[k] for a, k in chart_rows])
        v = np.array([checks[a].v[k] for a, k in chart_rows])
        results["chart"] = (ai, converter.convert_charts(i, u, v))
    if vertex_rows:
        ai = np.array(vertex_rows)
        vx = np.array([checks[a].vertex[k] for a, k in vertex_rows])
        results["vertex"] = (ai, converter.convert_vertices(vx))
    per_ann: dict[int, dict[int, tuple]] = {}
    for ai, res in results.values():
        st = res.status
        for row, (a, k) in enumerate(ai.tolist()):
            rec = recs[a]
            if st[row] == 2:
                rec.points[k] = DROPPED
                rec.dropped[k] = res.reason.get(row, "dropped")
                continue
            if st[row] == 1:
                rec.points[k] = MOVED
                rec.moved[k] = float(res.uv_distance[row])
            per_ann.setdefault(a, {})[k] = (int(res.i[row]), float(res.u[row]), float(res.v[row]), int(res.vertex[row]))
    if strict:
        first = report.first_drop()
        if first is not None:
            rec, k, why = first
            n = report.counts[DROPPED]
            raise AnnotationError(f"{where}: annotation id {rec.id} (annotations[{rec.index}]) point {k}: {why} "
                                  f"({n} point{'s' if n != 1 else ''} would be dropped; strict mode)")
    out = {k: v for k, v in data.items() if k != "annotations"}
    new_anns = list(anns)
    for rec in report.records:
        ann = anns[rec.index]
        new = {k: val for k, val in ann.items() if k not in POINT_FIELDS and k != "ref_model"}
        if rec.reason is not None:  # invalid as a whole: a plain COCO instance
            new = {k: val for k, val in new.items() if k not in DP_FIELDS}
        pts = per_ann.get(rec.index, {})
        if pts:
            ks = sorted(pts)
            new["dp_x"] = [ann["dp_x"][k] for k in ks]
            new["dp_y"] = [ann["dp_y"][k] for k in ks]
            new["dp_I"] = [float(pts[k][0]) for k in ks]
            new["dp_U"] = [pts[k][1] for k in ks]
            new["dp_V"] = [pts[k][2] for k in ks]
            new["dp_vertex"] = [pts[k][3] for k in ks]
            new["ref_model"] = converter.target_name
        if rec.reason is None:
            if not rec.points:
                rec.status = "no-points"
            elif not pts:
                rec.status = "dropped"
            elif rec.dropped:
                rec.status = "partial"
        new_anns[rec.index] = new
    out["annotations"] = new_anns
    info = copy.deepcopy(data.get("info", {}))
    entry = {**report.provenance, "counts": {**report.counts, "points": report.n_points},
             "densemap_version": _version()}
    info.setdefault("densemap_conversions", []).append(entry)
    out["info"] = info
    # keep the input's key order, with info where it was (or last)
    order = list(data) + ([] if "info" in data else ["info"])
    return {k: out[k] for k in order}, report


def _version() -> str:
    from densemap import __version__

    return __version__


def convert_file(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    converter: AnnotationConverter,
    *,
    strict: bool = False,
    report_path: str | os.PathLike | None = None,
) -> ConversionReport:
    """Read COCO JSON, convert (:func:`convert_annotations`), write it atomically.

    Refuses to write over the input. With ``report_path`` the per-point report is
    written there as JSON. Nothing is written when ``strict`` fails.
    """
    in_path, out_path = Path(in_path), Path(out_path)
    if out_path.exists() and in_path.exists() and os.path.samefile(in_path, out_path):
        raise AnnotationError(f"{out_path}: refusing to overwrite the input file")
    if report_path is not None and Path(report_path).exists() and in_path.exists() and os.path.samefile(in_path, report_path):
        raise AnnotationError(f"{report_path}: refusing to overwrite the input file with the report")
    data = read_coco(in_path)
    out, report = convert_annotations(data, converter, strict=strict, where=str(in_path))
    report.provenance["input"] = {"file": str(in_path), "sha256": file_sha256(in_path)}
    write_coco(out, out_path)
    if report_path is not None:
        report.save(report_path)
    return report
