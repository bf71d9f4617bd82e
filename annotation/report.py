"""The per-point report of an annotation conversion: kept, moved to nearest, or dropped (why)."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from densemap._display import Table
from densemap._io import atomic_path

__all__ = ["KEPT", "MOVED", "DROPPED", "AnnotationRecord", "ConversionReport"]

KEPT, MOVED, DROPPED = "kept", "moved-to-nearest", "dropped"
_CODE = {KEPT: "k", MOVED: "m", DROPPED: "d"}


@dataclass
class AnnotationRecord:
    """The fate of one annotation's points.

    Attributes
    ----------
    index : int
        Position in the input's ``annotations`` list.
    id : object
        The annotation's ``id`` (None if absent).
    status : str
        ``"converted"`` (every point kept or moved), ``"partial"`` (some dropped),
        ``"dropped"`` (invalid as a whole, or every point dropped) or ``"no-points"``
        (DensePose masks only).
    reason : str or None
        Why the whole annotation was dropped.
    points : list of str
        Status of every point (:data:`KEPT`, :data:`MOVED`, :data:`DROPPED`).
    dropped : dict
        Point index -> reason.
    moved : dict
        Point index -> (u, v) distance to the nearest point of its chart.
    notes : list of str
    """

    index: int
    id: object
    status: str = "converted"
    reason: str | None = None
    points: list = field(default_factory=list)
    dropped: dict = field(default_factory=dict)
    moved: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def to_json(self) -> dict:
        out = {"index": self.index, "id": self.id, "status": self.status, "n_points": len(self.points),
               "points": "".join(_CODE[s] for s in self.points)}
        if self.reason:
            out["reason"] = self.reason
        if self.dropped:
            out["dropped"] = [{"point": k, "reason": r} for k, r in sorted(self.dropped.items())]
        if self.moved:
            out["moved"] = [{"point": k, "uv_distance": d} for k, d in sorted(self.moved.items())]
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass
class ConversionReport:
    """Everything a conversion did, point by point.

    ``records`` holds one :class:`AnnotationRecord` per annotation with DensePose
    fields; ``provenance`` describes the meshes, atlases and map used.
    """

    records: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    n_annotations: int = 0

    @property
    def counts(self) -> dict:
        c = Counter(s for r in self.records for s in r.points)
        return {KEPT: c[KEPT], MOVED: c[MOVED], DROPPED: c[DROPPED]}

    @property
    def n_points(self) -> int:
        return sum(len(r.points) for r in self.records)

    @property
    def drop_reasons(self) -> Counter:
        """Dropped points per reason (reasons with their first offender's specifics cut off)."""
        return Counter(_kind(reason) for r in self.records for reason in r.dropped.values())

    def first_drop(self) -> tuple[AnnotationRecord, int, str] | None:
        """The first dropped point: (record, point index, reason)."""
        for r in self.records:
            for k in sorted(r.dropped):
                return r, k, r.dropped[k]
        return None

    def summary(self) -> str:
        """One line: what was converted, kept, moved and dropped (and why)."""
        c = self.counts
        n_dp = len(self.records)
        line = (f"{self.n_points} points in {n_dp} DensePose annotations "
                f"(of {self.n_annotations}): {c[KEPT]} kept, {c[MOVED]} moved to nearest, {c[DROPPED]} dropped")
        reasons = self.drop_reasons
        if reasons:
            line += " (" + ", ".join(f"{n} {k}" for k, n in reasons.most_common()) + ")"
        whole = sum(r.status == "dropped" and r.reason is not None for r in self.records)
        if whole:
            line += f"; {whole} annotations invalid as a whole"
        return line

    def _table(self) -> Table:
        c, n = self.counts, max(self.n_points, 1)
        rows = [("annotations", self.n_annotations, None), ("with DensePose points", len(self.records), None),
                ("points", self.n_points, None)]
        rows += [(f"points {k}", c[k], c[k] / n) for k in (KEPT, MOVED, DROPPED)]
        rows += [(f"dropped: {k}", m, m / n) for k, m in self.drop_reasons.most_common()]
        status = Counter(r.status for r in self.records)
        rows += [(f"annotations {k}", m, m / max(len(self.records), 1)) for k, m in sorted(status.items())]
        src, dst = (self.provenance.get(k) if isinstance(self.provenance.get(k), dict) else {} for k in ("source", "target"))
        title = "Annotation conversion" + (f": {src.get('mesh')} -> {dst.get('mesh')}" if src and dst else "")
        return Table(title, ("", "count", "fraction"), rows)

    def __repr__(self):
        return self._table().text()

    def _repr_html_(self):
        return self._table().html()

    def to_json(self) -> dict:
        return {
            "format": "densemap.conversion-report",
            "summary": self.summary(),
            "counts": {**self.counts, "points": self.n_points, "annotations": self.n_annotations,
                       "densepose_annotations": len(self.records)},
            "drop_reasons": dict(self.drop_reasons.most_common()),
            "provenance": self.provenance,
            "annotations": [r.to_json() for r in self.records],
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the report as JSON (atomically)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_json(), indent=1))
        return path


def _kind(reason: str) -> str:
    """'dp_I = 25 is not a chart id in 1..24' -> 'dp_I is not a chart id in 1..24'-like short key."""
    head = reason.split(":")[0]
    parts = head.split(" = ")
    if len(parts) == 2:
        rest = parts[1].split(" ", 1)
        return f"{parts[0]} {rest[1]}" if len(rest) == 2 else parts[0]
    return head
