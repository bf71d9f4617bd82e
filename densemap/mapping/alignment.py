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

from .._io import atomic_path, json_default
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
        a, b = self.metadata.get("mesh_a", {}), self.metadata.get("mesh_b", {})
        return f"Alignment({a.get('name')!r} V={len(self.a_to_b)} <-> {b.get('name')!r} V={len(self.b_to_a)})"

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
        Missing or unreadable file, not an alignment, or a mesh that does not match.
    """
    path = Path(path)
    if not path.is_file():
        raise DensemapError(f"{path}: no such alignment file")
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
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise DensemapError(f"{path}: cannot read alignment ({type(exc).__name__}: {exc})") from None
    md = meta.get("metadata", {})
    for which, mesh in (("mesh_a", mesh_a), ("mesh_b", mesh_b)):
        if mesh is None:
            continue
        want = md.get(which, {}).get("sha1")
        if want != mesh.sha1:
            raise DensemapError(
                f"{path}: the alignment was computed for {which} with sha1 {want} "
                f"({md.get(which, {}).get('name')!r}), but mesh {mesh.name!r} has sha1 {mesh.sha1}"
            )
    names = tuple(meta.get("part_names", ()))
    parts = {
        k: PartLabels(data[f"{k}.labels"], names, source=f"{path}:{k}") if f"{k}.labels" in data else None
        for k in ("parts_a", "parts_b")
    }
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
