"""The result of :func:`densemap.mapping.align` and its file format.

An :class:`Alignment` holds both maps (:class:`~densemap.mapping.VertexMap`), the
descriptors, the part labels used and provenance. :meth:`Alignment.save` writes it as one
compressed ``.npz`` with the metadata as JSON inside; :func:`load_alignment` reads it
back and, given the meshes, checks they are the ones it was computed for.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np

from .._display import Table
from .._io import atomic_path, json_default
from .._paths import check_input_file
from ..errors import DensemapError
from ..mesh import Mesh
from ..parts import PartLabels
from .vertex_map import VertexMap

__all__ = ["Alignment", "load_alignment", "FORMAT_VERSION"]

FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False, kw_only=True)
class Alignment:
    """Result of :func:`~densemap.mapping.align`: maps both ways, descriptors and provenance.

    Attributes
    ----------
    a_to_b, b_to_a : VertexMap
    desc_a : (V_a, L) float or None
    desc_b : (V_b, L) float or None
    part_names : tuple of str
    parts_a, parts_b : PartLabels or None
        The part labels used; ``parts_b`` renumbered to ``parts_a``'s part order.
    options : dict
        The options used (JSON-serialisable).
    timings : dict
        Seconds per stage.
    metadata : dict
        Mesh names and sha1s, vertex counts, package versions.
    """

    a_to_b: VertexMap
    b_to_a: VertexMap
    desc_a: np.ndarray | None = None
    desc_b: np.ndarray | None = None
    part_names: tuple[str, ...] = ()
    parts_a: PartLabels | None = None
    parts_b: PartLabels | None = None
    options: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def __repr__(self):
        return self._table().text()

    def _repr_html_(self):
        return self._table().html()

    def _table(self) -> Table:
        """Both meshes side by side, then the options and the seconds per stage."""
        a, b = self.metadata.get("mesh_a", {}), self.metadata.get("mesh_b", {})
        rows = [("mesh", a.get("name"), b.get("name")), ("vertices", len(self.a_to_b), len(self.b_to_a)),
                ("parts", len(self.part_names), len(self.part_names)),
                ("descriptor width", *(None if d is None else d.shape[1] for d in (self.desc_a, self.desc_b))),
                ("map to the other", self.a_to_b.target_name or "B", self.b_to_a.target_name or "A"),
                ("surface points", self.a_to_b.has_surface, self.b_to_a.has_surface),
                ("median descriptor distance", *(float(np.median(m.distances)) if len(m) else None
                                                 for m in (self.a_to_b, self.b_to_a)))]
        rows += [("options",)] + [(k, json.dumps(v, default=json_default) if isinstance(v, (dict, list)) else v, "")
                                  for k, v in self.options.items()]
        if self.timings:
            rows += [("seconds",)] + [(k, v, "") for k, v in self.timings.items()]
        return Table(f"Alignment of {a.get('name')!r} (A) and {b.get('name')!r} (B)", ("", "A", "B"), rows)

    def save(self, path: str | os.PathLike) -> Path:
        """Write a compressed ``.npz`` (atomically), metadata as JSON inside."""
        path = Path(path)
        arrays = {}
        for key in ("a_to_b", "b_to_a"):
            m = getattr(self, key)
            for f in ("indices", "distances", "faces", "bary", "corners"):
                if getattr(m, f) is not None:
                    arrays[f"{key}.{f}"] = getattr(m, f)
        if self.desc_a is not None:
            arrays["desc_a"] = self.desc_a
        if self.desc_b is not None:
            arrays["desc_b"] = self.desc_b
        for key in ("parts_a", "parts_b"):
            if getattr(self, key) is not None:
                arrays[f"{key}.labels"] = getattr(self, key).labels
        meta = {
            "format": "densemap.alignment",
            "format_version": FORMAT_VERSION,
            "part_names": list(self.part_names),
            "options": self.options,
            "timings": self.timings,
            "metadata": self.metadata,
            "names": {k: [getattr(self, k).source_name, getattr(self, k).target_name] for k in ("a_to_b", "b_to_a")},
            "n_target": {k: getattr(self, k).n_target for k in ("a_to_b", "b_to_a")},
        }
        arrays["meta.json"] = np.array(json.dumps(meta, default=json_default))
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        return path


_BARY_TOL = 1e-6  # barycentric coordinates may leave the simplex by this much (float rounding)


def _check_map(path: Path, key: str, m: VertexMap, n_source: int, mesh_target: Mesh | None) -> None:
    """Refuse a map whose values cannot be right: NaN/inf, ids out of range, barycentrics off the simplex."""
    where = f"{path}: {key}"
    if len(m) != n_source:
        raise DensemapError(f"{where} has {len(m)} entries but the source mesh has {n_source} vertices")
    if m.n_target is None or m.n_target < 1:
        raise DensemapError(f"{where}: no target vertex count recorded")
    if len(m) and m.indices.max() >= m.n_target:
        i = int(np.argmax(m.indices))
        raise DensemapError(f"{where}.indices[{i}] = {m.indices[i]} but the target has {m.n_target} vertices")
    bad = np.isinf(m.distances)
    if bad.any():
        raise DensemapError(f"{where}.distances[{int(np.flatnonzero(bad)[0])}] is infinite")
    if mesh_target is not None and mesh_target.n_vertices != m.n_target:
        raise DensemapError(f"{where}: the map is onto {m.n_target} vertices but {mesh_target.name} has "
                            f"{mesh_target.n_vertices}")
    if not m.has_surface:
        return
    on = m.faces >= 0
    if (m.faces < -1).any():
        i = int(np.flatnonzero(m.faces < -1)[0])
        raise DensemapError(f"{where}.faces[{i}] = {m.faces[i]}; expected a face index or -1")
    b = m.bary[on]
    off = ~np.isfinite(b).all(axis=1) | (b < -_BARY_TOL).any(axis=1) | (np.abs(b.sum(axis=1) - 1) > _BARY_TOL)
    if off.any():
        i = int(np.flatnonzero(on)[np.flatnonzero(off)[0]])
        raise DensemapError(f"{where}.bary[{i}] = {m.bary[i].tolist()} is not on the simplex (non-negative, summing "
                            f"to 1; {int(off.sum())} such rows): the file is corrupt")
    if m.corners is not None:
        c = m.corners[on]
        if c.size and (c.min() < 0 or c.max() >= m.n_target):
            i = int(np.flatnonzero(on)[np.flatnonzero((c < 0).any(1) | (c >= m.n_target).any(1))[0]])
            raise DensemapError(f"{where}.corners[{i}] = {m.corners[i].tolist()} but the target has {m.n_target} "
                                "vertices")
    if mesh_target is not None:
        if on.any() and m.faces[on].max() >= mesh_target.n_faces:
            raise DensemapError(f"{where}: a surface point is in face {int(m.faces[on].max())} but "
                                f"{mesh_target.name} has {mesh_target.n_faces} faces")
        if m.corners is not None and not np.array_equal(mesh_target.faces[m.faces[on]], m.corners[on]):
            raise DensemapError(f"{where}: the surface points' faces are not those of {mesh_target.name}")


def _check_descriptors(path: Path, key: str, d, n: int, width: int) -> None:
    if d is None:
        return
    if d.ndim != 2 or len(d) != n or (width and d.shape[1] != width):
        raise DensemapError(f"{path}: {key} has shape {d.shape}; expected ({n}, {width or 'L'})")
    if d.dtype.kind != "f" or not np.isfinite(d).all():
        raise DensemapError(f"{path}: {key} holds non-finite values" if d.dtype.kind == "f" else
                            f"{path}: {key} must be floats, got dtype {d.dtype}")


def load_alignment(path: str | os.PathLike, mesh_a: Mesh | None = None, mesh_b: Mesh | None = None) -> Alignment:
    """Read an :class:`Alignment` written by :meth:`Alignment.save`.

    Parameters
    ----------
    path : path-like
    mesh_a, mesh_b : Mesh, optional
        When given, their sha1 must match the meshes the alignment was computed for.

    Raises
    ------
    DensemapError
        Missing or unreadable file, not an alignment, a mesh that does not match, or values
        that cannot be right: vertex, face or corner ids out of range, barycentric
        coordinates off the simplex, non-finite descriptors or distances, map lengths that
        disagree with the vertex counts.
    """
    if not os.path.lexists(path):
        raise DensemapError(f"{path}: no such alignment file")
    path = check_input_file(path, what="alignment file (.npz)", error=DensemapError)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(str(data.pop("meta.json")))
        if meta.get("format") != "densemap.alignment":
            raise ValueError("not a densemap alignment")
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"format version {meta['format_version']} is newer than this densemap reads ({FORMAT_VERSION})")
        maps = {}
        for key in ("a_to_b", "b_to_a"):
            src, tgt = meta["names"][key]
            maps[key] = VertexMap(
                data[f"{key}.indices"],
                data[f"{key}.distances"],
                faces=data.get(f"{key}.faces"),
                bary=data.get(f"{key}.bary"),
                corners=data.get(f"{key}.corners"),
                source_name=src,
                target_name=tgt,
                n_target=meta["n_target"][key],
            )
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError, IndexError,
            RecursionError, json.JSONDecodeError) as exc:
        raise DensemapError(f"{path}: cannot read alignment ({type(exc).__name__}: {str(exc)[:200]})") from None
    md = meta.get("metadata", {})
    if not isinstance(md, dict):
        raise DensemapError(f"{path}: cannot read alignment (metadata is not an object)")
    na, nb = maps["b_to_a"].n_target or 0, maps["a_to_b"].n_target or 0
    for which, mesh, n in (("mesh_a", mesh_a, na), ("mesh_b", mesh_b, nb)):
        rec = md.get(which) if isinstance(md.get(which), dict) else {}
        if rec.get("n_vertices") is not None and rec["n_vertices"] != n:
            raise DensemapError(f"{path}: the metadata says {which} has {rec['n_vertices']} vertices but the maps say {n}")
        if mesh is not None and rec.get("sha1") != mesh.sha1:
            raise DensemapError(
                f"{path}: the alignment was computed for {which} with sha1 {rec.get('sha1')} "
                f"({rec.get('name')!r}), but mesh {mesh.name!r} has sha1 {mesh.sha1}"
            )
    _check_map(path, "a_to_b", maps["a_to_b"], na, mesh_b)
    _check_map(path, "b_to_a", maps["b_to_a"], nb, mesh_a)
    names = tuple(meta.get("part_names", ()))
    cols = {d.shape[1] for d in (data.get("desc_a"), data.get("desc_b")) if d is not None and d.ndim == 2}
    _check_descriptors(path, "desc_a", data.get("desc_a"), na, max(cols) if len(cols) == 1 else 0)
    _check_descriptors(path, "desc_b", data.get("desc_b"), nb, max(cols) if len(cols) == 1 else 0)
    if len(cols) > 1:
        raise DensemapError(f"{path}: desc_a and desc_b have different widths {sorted(cols)}")
    try:
        parts = {
            k: PartLabels(data[f"{k}.labels"], names, source=f"{path}:{k}") if f"{k}.labels" in data else None
            for k in ("parts_a", "parts_b")
        }
    except DensemapError as exc:
        raise DensemapError(f"cannot read alignment: {exc}") from None
    return Alignment(
        a_to_b=maps["a_to_b"],
        b_to_a=maps["b_to_a"],
        desc_a=data.get("desc_a"),
        desc_b=data.get("desc_b"),
        part_names=names,
        parts_a=parts["parts_a"],
        parts_b=parts["parts_b"],
        options=meta.get("options", {}),
        timings=meta.get("timings", {}),
        metadata=md,
    )
