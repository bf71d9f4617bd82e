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
import os
from pathlib import Path
from typing import Literal

import numpy as np

from densemap._io import file_sha256
from densemap.errors import AnnotationError

from .coco import DP_FIELDS, POINT_FIELDS, REFERENCE_NAMES, check_annotation, check_structure, has_densepose, read_coco, write_coco
from .converter import AnnotationConverter, PointResult, map_from_file, mesh_converter, reference_converter
from .report import DROPPED, KEPT, MOVED, AnnotationRecord, ConversionReport

__all__ = [
    "REFERENCE_NAMES",
    "PointResult",
    "AnnotationConverter",
    "reference_converter",
    "mesh_converter",
    "map_from_file",
    "convert_annotations",
    "convert_file",
    "convert_annotation_file",
    "default_report_path",
]

STATUS = (KEPT, MOVED, DROPPED)


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
    checks, chart_rows, vertex_rows = _check_all(anns, converter, report)
    per_ann = _convert_points(converter, report, checks, chart_rows, vertex_rows)
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
        new_anns[rec.index] = _rewrite(anns[rec.index], rec, per_ann.get(rec.index, {}), converter.target_name)
    out["annotations"] = new_anns
    info = copy.deepcopy(data.get("info", {}))
    entry = {**report.provenance, "counts": {**report.counts, "points": report.n_points},
             "densemap_version": _version()}
    info.setdefault("densemap_conversions", []).append(entry)
    out["info"] = info
    # keep the input's key order, with info where it was (or last)
    order = list(data) + ([] if "info" in data else ["info"])
    return {k: out[k] for k in order}, report


def _check_all(anns: list, converter: AnnotationConverter, report: ConversionReport):
    """Validate every DensePose annotation, recording each in ``report``; returns the checks and
    the (annotation, point) rows of valid chart points and valid vertex points."""
    checks = {}
    chart_rows, vertex_rows = [], []
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
    return checks, chart_rows, vertex_rows


def _convert_points(converter, report, checks, chart_rows, vertex_rows) -> dict[int, dict[int, tuple]]:
    """Convert all valid points in two batches; per annotation, point -> (I, U, V, vertex)."""
    recs = {r.index: r for r in report.records}
    results = []
    if chart_rows:
        i, u, v = (np.array([getattr(checks[a], f)[k] for a, k in chart_rows]) for f in ("i", "u", "v"))
        results.append((chart_rows, converter.convert_charts(i, u, v)))
    if vertex_rows:
        vx = np.array([checks[a].vertex[k] for a, k in vertex_rows])
        results.append((vertex_rows, converter.convert_vertices(vx)))
    per_ann: dict[int, dict[int, tuple]] = {}
    for rows, res in results:
        for row, (a, k) in enumerate(rows):
            rec = recs[a]
            if res.status[row] == 2:
                rec.points[k] = DROPPED
                rec.dropped[k] = res.reason.get(row, "dropped")
                continue
            if res.status[row] == 1:
                rec.points[k] = MOVED
                rec.moved[k] = float(res.uv_distance[row])
            per_ann.setdefault(a, {})[k] = (int(res.i[row]), float(res.u[row]), float(res.v[row]), int(res.vertex[row]))
    return per_ann


def _rewrite(ann: dict, rec: AnnotationRecord, pts: dict, target_name: str) -> dict:
    """The converted annotation: kept points on the target; an invalid one becomes a plain instance."""
    new = {k: val for k, val in ann.items() if k not in POINT_FIELDS and k != "ref_model"}
    if rec.reason is not None:  # invalid as a whole: a plain COCO instance
        return {k: val for k, val in new.items() if k not in DP_FIELDS}
    if pts:
        ks = sorted(pts)
        new["dp_x"] = [ann["dp_x"][k] for k in ks]
        new["dp_y"] = [ann["dp_y"][k] for k in ks]
        new["dp_I"] = [float(pts[k][0]) for k in ks]
        new["dp_U"] = [pts[k][1] for k in ks]
        new["dp_V"] = [pts[k][2] for k in ks]
        new["dp_vertex"] = [pts[k][3] for k in ks]
        new["ref_model"] = target_name
    if not rec.points:
        rec.status = "no-points"
    elif not pts:
        rec.status = "dropped"
    elif rec.dropped:
        rec.status = "partial"
    return new


def _version() -> str:
    from densemap._version import __version__

    return __version__


def convert_file(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    converter: AnnotationConverter,
    *,
    strict: bool = False,
    report_path: str | os.PathLike | None = None,
    allow_empty: bool = False,
) -> ConversionReport:
    """Read COCO JSON, convert (:func:`convert_annotations`), write it atomically.

    Refuses to write over the input (or the map a converter was read from), and a report
    path equal to the output. With ``report_path`` the per-point report is written there as
    JSON. Nothing is written when ``strict`` fails, nor when no point at all converts
    (unless ``allow_empty``): the error says why the points were dropped and, when they
    name another mesh than the source, that the direction may be wrong.
    """
    in_path, out_path = Path(in_path), Path(out_path)
    _check_paths(in_path, out_path, report_path, (converter.map_info or {}).get("file"))
    data = read_coco(in_path)
    out, report = convert_annotations(data, converter, strict=strict, where=str(in_path))
    if not allow_empty:
        _refuse_empty(report, converter, str(in_path))
    report.provenance["input"] = {"file": str(in_path), "sha256": file_sha256(in_path)}
    write_coco(out, out_path)
    if report_path is not None:
        report.save(report_path)
    return report


def _check_paths(in_path: Path, out_path: Path, report_path, map_path) -> None:
    """Outputs writable, not an input, not the same file (an :class:`AnnotationError`, as always)."""
    from densemap._paths import Output, check_outputs
    from densemap.errors import OutputError

    outs = [Output("-o", out_path)] + ([Output("--report", report_path)] if report_path is not None else [])
    try:
        check_outputs(outs, {"IN_JSON": in_path, "--map": map_path})
    except OutputError as exc:
        raise AnnotationError(str(exc)) from None


def _refuse_empty(report: ConversionReport, converter: AnnotationConverter, where: str) -> None:
    """Raise when points were given and none converted, saying why (and if the direction looks wrong)."""
    c = report.counts
    if not report.n_points or c[KEPT] + c[MOVED]:
        return
    reasons = report.drop_reasons.most_common()
    why = ", ".join(f"{n} {k}" for k, n in reasons[:3])
    named = [r for r in reasons if r[0].startswith("unknown ref_model")]
    hint = ""
    if named and named[0][1] * 2 >= c[DROPPED]:
        other = named[0][0].split("'")[1] if "'" in named[0][0] else "another mesh"
        hint = (f"; they name ref_model '{other}' but the source mesh is '{converter.source_name}': wrong direction? "
                "(swap --src-mesh and --dst-mesh, or give --src-name)")
        why = f"all {c[DROPPED]} points are labelled on ref_model '{other}'"
    raise AnnotationError(f"{where}: no point converted: {why}{hint}; nothing written (--allow-empty writes the "
                          "empty result)")


def default_report_path(out_path: str | os.PathLike) -> Path:
    """Where the per-point report of a conversion to ``out_path`` goes by default: ``OUT.report.json``."""
    return Path(str(Path(out_path).with_suffix("")) + ".report.json")


def convert_annotation_file(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    source: str | os.PathLike = "chimp",
    target: str | os.PathLike = "human",
    source_atlas=None,
    target_atlas=None,
    source_name: str | None = None,
    target_name: str | None = None,
    map_path=None,
    sources: int | Literal["all"] = 16,
    strict: bool = False,
    report_path=None,
    allow_empty: bool = False,
    progress: bool = False,
) -> ConversionReport:
    """What ``densemap convert-annotations`` does: build the converter (:func:`mesh_converter`)
    and convert one file (:func:`convert_file`), the report beside ``out_path`` by default
    (``OUT.report.json``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from densemap.annotation import example_annotations_path
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "same.json"
    >>> rep = convert_annotation_file(example_annotations_path(), out, source="chimp", target="chimp")
    >>> rep.counts["dropped"], out.with_suffix(".report.json").is_file()
    (0, True)
    """
    in_path, out_path = Path(in_path), Path(out_path)
    report_path = report_path or default_report_path(out_path)
    _check_paths(in_path, out_path, report_path, map_path)  # before the (long) map computation
    converter = mesh_converter(source, target, source_atlas=source_atlas, target_atlas=target_atlas,
                               source_name=source_name, target_name=target_name, map_path=map_path, sources=sources,
                               progress=progress)
    return convert_file(in_path, out_path, converter, strict=strict, report_path=report_path, allow_empty=allow_empty)
