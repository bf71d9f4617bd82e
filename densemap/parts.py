"""Semantic part labels on mesh vertices: reading, writing, validating and matching.

Formats read by :func:`load_parts`:

* OBJ ``g``/``o`` face groups (a vertex takes the group of most of its faces; ties
  go to the group that appears first in the file);
* JSON ``{"part name": [vertex ids, ...], ...}``;
* ``.npy`` or ``.txt`` per-vertex integers (``-1`` = unlabelled), with names from a
  ``names=`` argument, a sidecar ``<file>.names.json`` / ``.names.txt``, or ``part_<k>``;
* a PLY vertex property (``label``, ``part``, ``parts``, ``segment`` or a named field).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ._io import atomic_path
from ._paths import check_input_file, read_json, read_text
from .errors import MeshError, PartError
from .mesh import Mesh, read_obj

__all__ = ["PartLabels", "load_parts", "save_parts", "match_parts", "labels_from_face_groups", "face_labels",
           "part_adjacency"]


@dataclass(frozen=True, eq=False)
class PartLabels:
    """Per-vertex part labels.

    Parameters
    ----------
    labels : (V,) int
        Part index of each vertex in ``0..L-1``; ``-1`` marks an unlabelled vertex.
    names : sequence of str
        ``L`` unique part names; ``names[k]`` is the name of label ``k``.
    source : str
        Where the labels came from, used in error messages.

    Raises
    ------
    PartError
        Labels out of range, duplicate or empty names, or a named part with no vertex.
    """

    labels: np.ndarray
    names: tuple[str, ...]
    source: str = "parts"

    def __post_init__(self):
        where = self.source
        lab = _integer_labels(np.asarray(self.labels), where)
        names = tuple(str(n) for n in self.names)
        if len(names) < 1:
            raise PartError(f"{where}: no part names")
        seen = set()
        for n in names:
            if not n:
                raise PartError(f"{where}: empty part name")
            if n in seen:
                raise PartError(f"{where}: part name {n!r} appears twice")
            seen.add(n)
        bad = (lab < -1) | (lab >= len(names))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise PartError(
                f"{where}: labels[{i}] = {lab[i]} is out of range; expected -1 (unlabelled) or 0..{len(names) - 1} "
                f"for {len(names)} parts"
            )
        counts = np.bincount(lab[lab >= 0], minlength=len(names))
        empty = [names[k] for k in np.flatnonzero(counts == 0)]
        if empty:
            raise PartError(f"{where}: {len(empty)} part(s) have no vertex: {empty}")
        lab.setflags(write=False)
        object.__setattr__(self, "labels", lab)
        object.__setattr__(self, "names", names)

    def __repr__(self):
        return f"PartLabels(L={self.n_parts}, V={len(self.labels)}, unlabelled={int((self.labels < 0).sum())})"

    @property
    def n_parts(self) -> int:
        return len(self.names)

    @property
    def counts(self) -> np.ndarray:
        """(L,) int: number of vertices in each part."""
        return np.bincount(self.labels[self.labels >= 0], minlength=self.n_parts)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise PartError(f"{self.source}: no part named {name!r}; parts are {list(self.names)}") from None

    def mask(self, name_or_index: str | int) -> np.ndarray:
        """(V,) bool: vertices of one part."""
        k = self.index(name_or_index) if isinstance(name_or_index, str) else int(name_or_index)
        return self.labels == k

    def check_mesh(self, mesh: Mesh) -> "PartLabels":
        """Raise :class:`PartError` unless there is exactly one label per vertex of ``mesh``."""
        if len(self.labels) != mesh.n_vertices:
            raise PartError(
                f"{self.source}: {len(self.labels)} labels but mesh {mesh.name} has {mesh.n_vertices} vertices"
            )
        return self

    def reorder(self, names: Sequence[str]) -> "PartLabels":
        """The same labelling with parts renumbered to follow ``names`` (a permutation of ours)."""
        names = tuple(names)
        if sorted(names) != sorted(self.names):
            raise PartError(f"{self.source}: cannot reorder to {list(names)}; parts are {list(self.names)}")
        perm = np.array([names.index(n) for n in self.names], dtype=np.int64)
        lab = np.where(self.labels >= 0, perm[np.clip(self.labels, 0, None)], -1)
        return PartLabels(lab, names, source=self.source)


def _integer_labels(lab: np.ndarray, where: str, *, limit: int | None = None) -> np.ndarray:
    """(V,) int64 copy of per-vertex labels; refuses non-integers and values outside -1..limit-1
    (naming the first) *before* any conversion, so 1e20 or 2**40 never becomes an allocation."""
    if lab.ndim != 1:
        raise PartError(f"{where}: labels must be a 1-D array of per-vertex integers, got shape {lab.shape}")
    if lab.size and lab.dtype.kind not in "iuf":
        raise PartError(f"{where}: labels must be integers, got dtype {lab.dtype}")
    if lab.size and lab.dtype.kind == "f":
        bad = ~np.isfinite(lab) | (np.mod(lab, 1) != 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise PartError(f"{where}: labels[{i}] = {lab[i]} is not an integer")
    hi = np.iinfo(np.int64).max if limit is None else limit - 1
    if lab.size:
        out = (lab < -1) | (lab > hi)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            what = "-1 (unlabelled) or a part index" if limit is None else \
                f"-1 (unlabelled) or 0..{limit - 1} (at most one part per vertex; give names= for more)"
            raise PartError(f"{where}: labels[{i}] = {lab[i]:.17g} is out of range; expected {what}")
    return np.array(lab, dtype=np.int64, copy=True)


def labels_from_face_groups(n_vertices: int, faces: np.ndarray, face_groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Per-vertex labels from per-face groups by majority vote (ties: lowest group id).

    Parameters
    ----------
    n_vertices : int
    faces : (F, 3) int
    face_groups : (F,) int
        Group of each face, ``-1`` for none.
    n_groups : int

    Returns
    -------
    (V,) int
        ``-1`` for vertices not in any grouped face.
    """
    fg = np.asarray(face_groups)
    keep = fg >= 0
    votes = np.zeros((n_vertices, max(n_groups, 1)), dtype=np.int64)
    np.add.at(votes, (faces[keep].ravel(), np.repeat(fg[keep], 3)), 1)
    lab = np.argmax(votes, axis=1)  # argmax takes the first maximum: the lowest group id
    lab[votes.max(axis=1) == 0] = -1
    return lab


def face_labels(faces, labels) -> np.ndarray:
    """Label of each face from per-vertex labels: the majority of its three corners.

    The one face-majority rule of densemap (atlases, pictures and synthetic skin all use
    it): a label held by two or three corners wins; when all three differ the **lowest**
    label wins; unlabelled corners (``-1``) do not vote, and a face with no labelled
    corner gets ``-1``.

    Parameters
    ----------
    faces : (F, 3) int
    labels : (V,) int

    Returns
    -------
    (F,) int

    Examples
    --------
    >>> import numpy as np
    >>> face_labels(np.array([[0, 1, 2], [0, 1, 3], [2, 4, 2]]), np.array([7, 5, -1, 5, -1]))
    array([ 5,  5, -1])
    """
    lab = np.asarray(labels, dtype=np.int64)[np.asarray(faces)]
    out = -np.ones(len(lab), np.int64)
    best = np.zeros(len(lab), np.int64)
    for k in range(3):
        votes = (lab == lab[:, k : k + 1]).sum(axis=1)
        better = (lab[:, k] >= 0) & ((votes > best) | ((votes == best) & (lab[:, k] < out)))
        out[better], best[better] = lab[better, k], votes[better]
    return out


def part_adjacency(mesh: Mesh, parts: PartLabels):
    """The part adjacency graph: parts are nodes, two parts sharing a mesh edge are joined.

    Parameters
    ----------
    mesh : Mesh
    parts : PartLabels
        One label per vertex of ``mesh``.

    Returns
    -------
    networkx.Graph
        Nodes are part names (with attribute ``index``); each edge has ``length``, the
        total length of the mesh edges between the two parts, and ``edges``, their count.

    Examples
    --------
    >>> from densemap.data import reference
    >>> human = reference("human")
    >>> g = part_adjacency(human.mesh, human.parts)
    >>> g.has_edge("face", "head_back"), g.has_edge("face", "foot_sole_left")
    (True, False)
    """
    import networkx as nx

    parts.check_mesh(mesh)
    e = mesh.edges
    la, lb = parts.labels[e[:, 0]], parts.labels[e[:, 1]]
    cut = (la != lb) & (la >= 0) & (lb >= 0)
    a, b = np.minimum(la[cut], lb[cut]), np.maximum(la[cut], lb[cut])
    key = a * parts.n_parts + b
    uniq, inv = np.unique(key, return_inverse=True)
    length = np.bincount(inv, weights=mesh.edge_lengths[cut], minlength=len(uniq))
    count = np.bincount(inv, minlength=len(uniq))
    g = nx.Graph()
    g.add_nodes_from((n, {"index": k}) for k, n in enumerate(parts.names))
    for kk, ln, c in zip(uniq, length, count):
        i, j = divmod(int(kk), parts.n_parts)
        g.add_edge(parts.names[i], parts.names[j], length=float(ln), edges=int(c))
    return g


def _names_sidecar(path: Path) -> list[str] | None:
    for cand in (path.with_suffix(".names.json"), path.with_suffix(".names.txt")):
        if cand.is_file():
            return _read_names(cand)
    return None


def _read_names(path: Path) -> list[str]:
    path = Path(path)
    if path.suffix.lower() == ".json":
        names = read_json(path, what="JSON list of part names", error=PartError)
        if not isinstance(names, list):
            raise PartError(f"{path}: expected a JSON list of part names, got {type(names).__name__}")
        bad = [k for k, n in enumerate(names) if not isinstance(n, str)]
        if bad:
            raise PartError(f"{path}: names[{bad[0]}] = {str(names[bad[0]])[:40]!r} is not a string; expected a JSON "
                            "list of part names")
        return names
    text = read_text(path, what="text file of part names (one per line)", error=PartError)
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def load_parts(
    path: str | os.PathLike,
    mesh: Mesh | None = None,
    *,
    names: Sequence[str] | str | os.PathLike | None = None,
    field: str | None = None,
) -> PartLabels:
    """Read per-vertex part labels.

    Parameters
    ----------
    path : path-like
        ``.obj`` (face groups), ``.json`` (name -> vertex ids), ``.npy``/``.txt``
        (per-vertex ints) or ``.ply`` (a vertex property).
    mesh : Mesh, optional
        When given, the labels must have one entry per vertex and ids must be in range.
    names : sequence of str or path, optional
        Part names for integer formats (a list, or a JSON list / text file of names).
    field : str, optional
        PLY vertex property holding the labels.

    Returns
    -------
    PartLabels

    Raises
    ------
    PartError
        Unreadable file, wrong length, out-of-range ids, duplicate assignment, empty parts.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "parts.json"
    >>> _ = p.write_text(json.dumps({"left": [0, 1], "right": [2, 3]}))
    >>> load_parts(p).labels
    array([0, 0, 1, 1])
    """
    path = check_input_file(path, what="part-label file", error=PartError)
    readers = {".obj": lambda: _parts_from_obj(path, mesh), ".json": lambda: _parts_from_json(path, mesh)}
    readers.update(dict.fromkeys((".npy", ".txt", ".ply"), lambda: _parts_from_integers(path, mesh, names, field)))
    read = readers.get(path.suffix.lower())
    if read is None:
        raise PartError(f"{path}: unsupported part-label format {path.suffix.lower()!r}; expected .obj, .json, .npy, "
                        ".txt or .ply")
    return read()


def _parts_from_obj(path: Path, mesh: Mesh | None) -> PartLabels:
    """Labels from an OBJ file's ``g``/``o`` face groups (groups without a vertex are not parts)."""
    try:
        d = read_obj(path)
    except MeshError as exc:
        raise PartError(str(exc)) from None
    if not d.group_names:
        raise PartError(f"{path}: the OBJ file has no 'g' or 'o' groups to read parts from")
    if mesh is not None and len(d.vertices) != mesh.n_vertices:
        raise PartError(f"{path}: the OBJ file has {len(d.vertices)} vertices but mesh {mesh.name} has {mesh.n_vertices}")
    lab = labels_from_face_groups(len(d.vertices), d.faces, d.face_groups, len(d.group_names))
    used = np.unique(lab[lab >= 0])
    remap = -np.ones(len(d.group_names), np.int64)
    remap[used] = np.arange(len(used))
    lab = np.where(lab >= 0, remap[np.clip(lab, 0, None)], -1)
    return PartLabels(lab, [d.group_names[k] for k in used], source=str(path))


def _json_ids(path: Path, name: str, ids) -> np.ndarray:
    """The vertex ids of one part, checked element by element (ragged, bool, float, huge: refused)."""
    if not isinstance(ids, list):
        raise PartError(f"{path}: part {name!r} must be a list of integer vertex ids, got {type(ids).__name__}")
    if not ids:
        raise PartError(f"{path}: part {name!r} has no vertex")
    for k, x in enumerate(ids):
        if not isinstance(x, int) or isinstance(x, bool):
            raise PartError(f"{path}: part {name!r} entry {k} is {str(x)[:40]!r}; expected an integer vertex id")
        if x < 0:
            raise PartError(f"{path}: part {name!r} lists negative vertex id {x}")
        if x > _MAX_VERTEX_ID:
            digits = str(x)
            raise PartError(f"{path}: part {name!r} lists vertex id {digits[:12]}... ({len(digits)} digits), beyond "
                            "any mesh")
    return np.asarray(ids, dtype=np.int64)


# no mesh has more vertices; larger ids are refused before anything is allocated for them
_MAX_VERTEX_ID = 2**31 - 1


def _parts_from_json(path: Path, mesh: Mesh | None) -> PartLabels:
    """Labels from JSON ``{part name: [vertex ids]}``."""
    data = read_json(path, what="part JSON {part name: [vertex ids]}", error=PartError)
    if not isinstance(data, dict) or not data:
        raise PartError(f"{path}: expected a JSON object {{part name: [vertex ids]}}")
    ids_all = [_json_ids(path, name, ids) for name, ids in data.items()]
    top = max(int(ids.max()) for ids in ids_all)
    total = sum(len(ids) for ids in ids_all)
    if mesh is None and top + 1 > 16 * total + (1 << 20):
        raise PartError(f"{path}: vertex id {top} is far beyond the {total} ids listed; pass the mesh to know its "
                        "vertex count")
    n = mesh.n_vertices if mesh is not None else top + 1
    if top >= n:
        name, ids = next((nm, i) for nm, i in zip(data, ids_all) if i.max() >= n)
        raise PartError(f"{path}: part {name!r} lists vertex {int(ids.max())} but mesh {mesh.name} has {n} vertices")
    lab = -np.ones(n, dtype=np.int64)
    for k, (name, ids) in enumerate(zip(data, ids_all)):
        clash = lab[ids] >= 0
        if clash.any():
            v = int(ids[clash][0])
            raise PartError(f"{path}: vertex {v} is in both {list(data)[lab[v]]!r} and {name!r}")
        lab[ids] = k
    return PartLabels(lab, list(data), source=str(path))


def _parts_from_integers(path: Path, mesh: Mesh | None, names, field: str | None) -> PartLabels:
    """Labels from per-vertex integers: ``.npy``, ``.txt`` or a PLY vertex property."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            lab = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise PartError(f"{path}: cannot read labels ({exc})") from None
    elif suffix == ".txt":
        lab = _read_txt_labels(path)
    else:
        lab = _read_ply_labels(path, field)
    lab = np.asarray(lab)
    if lab.ndim != 1:
        raise PartError(f"{path}: labels must be a 1-D array of per-vertex ints, got shape {lab.shape}")
    if mesh is not None and len(lab) != mesh.n_vertices:
        raise PartError(f"{path}: {len(lab)} labels but mesh {mesh.name} has {mesh.n_vertices} vertices")
    if names is None:
        names = _names_sidecar(path)
    elif isinstance(names, (str, os.PathLike)):
        names = _read_names(Path(names))
    if names is None:
        # one name per label value: the values are checked against the vertex count first, so
        # a label of 2**40 is an error, not 2**40 names
        lab = _integer_labels(lab, str(path), limit=len(lab))
        top = int(lab.max()) if lab.size else -1
        names = [f"part_{k}" for k in range(top + 1)]
    return PartLabels(lab, names, source=str(path))


def _read_txt_labels(path: Path) -> np.ndarray:
    """One integer per line (``#`` comments allowed), with the line of the first bad one."""
    text = read_text(path, what="text file of per-vertex labels", error=PartError)
    values = []
    for lineno, line in enumerate(text.splitlines(), 1):
        tok = line.split("#", 1)[0].split()
        if not tok:
            continue
        if len(tok) > 1:
            raise PartError(f"{path}:{lineno}: expected one integer label per line, got {line.strip()[:60]!r}")
        try:
            values.append(float(tok[0]))
        except ValueError:
            raise PartError(f"{path}:{lineno}: {tok[0][:40]!r} is not an integer label") from None
    return np.asarray(values, dtype=np.float64)


_PLY_FIELDS = ("label", "labels", "part", "parts", "segment", "segmentation")


def _read_ply_labels(path: Path, field: str | None) -> np.ndarray:
    import trimesh

    try:
        m = trimesh.load(str(path), process=False, force="mesh")
    except Exception as exc:
        raise PartError(f"{path}: cannot read PLY ({type(exc).__name__}: {exc})") from None
    raw = (m.metadata.get("_ply_raw") or {}).get("vertex", {}).get("data")
    props = {}
    if isinstance(raw, dict):  # ASCII PLY: {property: (V, 1) array}
        props = {n: np.asarray(a) for n, a in raw.items()}
    elif raw is not None and getattr(raw, "dtype", None) is not None and raw.dtype.names:  # binary: structured
        props = {n: raw[n] for n in raw.dtype.names}
    props.update({k: np.asarray(v) for k, v in getattr(m, "vertex_attributes", {}).items()})
    wanted = [field] if field else [f for f in _PLY_FIELDS if f in props]
    if not wanted or wanted[0] not in props:
        avail = sorted(k for k in props if k not in ("x", "y", "z"))
        what = f"property {field!r}" if field else f"any of the properties {list(_PLY_FIELDS)}"
        raise PartError(f"{path}: the PLY vertices have no {what}; vertex properties are {avail}")
    return np.asarray(props[wanted[0]]).reshape(-1)


def save_parts(parts: PartLabels, path: str | os.PathLike) -> Path:
    """Write labels as JSON ``{name: [ids]}`` or as ``.npy`` plus a ``.names.json`` sidecar (atomically)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = {n: np.flatnonzero(parts.labels == k).tolist() for k, n in enumerate(parts.names)}
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(data))
    elif suffix == ".npy":
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.asarray(parts.labels))
        with atomic_path(path.with_suffix(".names.json")) as tmp:
            tmp.write_text(json.dumps(list(parts.names), indent=0))
    else:
        raise PartError(f"{path}: cannot write part labels as {suffix!r}; expected .json or .npy")
    return path


def match_parts(a: PartLabels, b: PartLabels) -> PartLabels:
    """Check two labellings name the same parts; return ``b`` renumbered to ``a``'s order.

    Raises
    ------
    PartError
        Listing the names missing from ``b`` and the extra ones.
    """
    missing = [n for n in a.names if n not in b.names]
    extra = [n for n in b.names if n not in a.names]
    if missing or extra:
        msg = [f"part names differ between {a.source} ({a.n_parts} parts) and {b.source} ({b.n_parts} parts)"]
        if missing:
            msg.append(f"missing from {b.source}: {missing}")
        if extra:
            msg.append(f"extra in {b.source}: {extra}")
        raise PartError("; ".join(msg))
    return b if b.names == a.names else b.reorder(a.names)
