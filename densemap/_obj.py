"""The OBJ reader and writer behind :func:`densemap.mesh.load_mesh` (vertex order kept exactly).

Hand-written because trimesh merges and reorders vertices and drops the order of face
groups. Every message names the file and the line, and face indices are printed as the file
writes them (1-based, or negative for relative ones).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._io import available_memory
from ._paths import check_input_file, describe_os_error
from .errors import MeshError

__all__ = ["ObjData", "read_obj", "write_obj"]

# face indices beyond this cannot be vertex ids of a mesh that fits in memory
_MAX_INDEX = 2**40
# reading keeps the bytes, their text and Python lists of numbers: about this many bytes per byte
_BYTES_PER_FILE_BYTE = 12


@dataclass
class ObjData:
    """Raw content of an OBJ file, in file order (faces already triangulated)."""

    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    uv: np.ndarray | None  # (F, 3, 2) or None
    face_groups: np.ndarray  # (F,) int index into group_names, -1 = no group
    group_names: list[str]


class _Parser:
    """State of one pass over an OBJ file."""

    def __init__(self, path: Path):
        self.path = path
        self.verts: list[list[float]] = []
        self.texcoords: list[list[float]] = []
        self.tris: list[tuple[int, int, int]] = []
        self.tri_vt: list[tuple[int, int, int]] = []
        self.groups: list[int] = []
        self.names: list[str] = []
        self.name_index: dict[str, int] = {}
        self.current = -1

    def number(self, tok: str) -> float:
        x = float(tok)
        if not np.isfinite(x):
            raise ValueError(f"coordinate {tok!r} is not finite")
        return x

    def index(self, tok: str, count: int, what: str) -> int:
        """A 0-based index from an OBJ index token (1-based, or negative = relative to the end)."""
        a = int(tok)
        if a == 0:
            raise ValueError(f"{what} index 0 is invalid (OBJ indices start at 1)")
        if abs(a) > _MAX_INDEX:
            raise ValueError(f"{what} index {a} is too large")
        k = a - 1 if a > 0 else count + a
        if not 0 <= k < count:
            raise ValueError(f"{what} index {a} is out of range: {count} {what} coordinates defined so far"
                             if what == "texture" else
                             f"{what} index {a} is out of range: the file defines {count} vertices before this line")
        return k

    def line(self, key: str, tok: list[str]) -> None:
        if key == "v":
            if len(tok) < 4:
                raise ValueError("a vertex needs 3 coordinates")
            self.verts.append([self.number(tok[1]), self.number(tok[2]), self.number(tok[3])])
        elif key == "vt":
            if len(tok) < 2:
                raise ValueError("a texture coordinate needs at least u")
            self.texcoords.append([self.number(tok[1]), self.number(tok[2]) if len(tok) > 2 else 0.0])
        elif key in ("g", "o"):
            gname = " ".join(tok[1:]) or "default"
            if gname not in self.name_index:
                self.name_index[gname] = len(self.names)
                self.names.append(gname)
            self.current = self.name_index[gname]
        elif key == "f":
            self.face(tok)

    def face(self, tok: list[str]) -> None:
        if len(tok) < 4:
            raise ValueError("a face needs at least 3 vertices")
        vi, ti = [], []
        for corner in tok[1:]:
            fields = corner.split("/")
            vi.append(self.index(fields[0], len(self.verts), "vertex"))
            if len(fields) > 1 and fields[1]:
                ti.append(self.index(fields[1], len(self.texcoords), "texture"))
            else:
                ti.append(-1)
        for k in range(1, len(vi) - 1):
            self.tris.append((vi[0], vi[k], vi[k + 1]))
            self.tri_vt.append((ti[0], ti[k], ti[k + 1]))
            self.groups.append(self.current)


def _read_simple(text: str) -> ObjData | None:
    """The common case in bulk: only ``v x y z`` and triangle ``f a b c`` lines (positive
    plain indices), groups and comments, every vertex above every face. None for anything
    else, which the line parser reads (and reports with its line numbers).

    The same arrays as the line parser, 5-10x faster: the numbers are converted by numpy
    in one call per kind instead of one ``float``/``int`` call per token."""
    verts: list[str] = []
    tris: list[str] = []
    groups: list[int] = []
    names: list[str] = []
    index: dict[str, int] = {}
    current = -1
    for line in text.splitlines():
        head = line[:2]
        if head == "v ":
            if tris:
                return None  # a vertex below a face: the line parser checks each face's range
            verts.append(line[2:])
        elif head == "f ":
            tris.append(line[2:])
            groups.append(current)
        elif head in ("g ", "o ") or line in ("g", "o"):
            tok = line.split()
            gname = " ".join(tok[1:]) or "default"
            if gname not in index:
                index[gname] = len(names)
                names.append(gname)
            current = index[gname]
        else:
            tok = line.split()
            if tok and tok[0] in ("v", "vt", "f", "g", "o"):
                return None  # texture coordinates, leading blanks, tabs: the line parser
            # comments and the keys the line parser ignores too (vn, s, usemtl, mtllib, l, ...)
    if not verts:
        return None
    try:
        v = np.array(" ".join(verts).split(), dtype=np.float64)
        f = np.array(" ".join(tris).split(), dtype=np.int64) if tris else np.zeros(0, np.int64)
    except (ValueError, OverflowError):
        return None
    if len(v) != 3 * len(verts) or len(f) != 3 * len(tris) or not np.isfinite(v).all():
        return None  # 2 or 4+ numbers on a line, a polygon, slashes (failed above), inf or nan
    if len(f) and (f.min() < 1 or f.max() > len(verts)):
        return None
    return ObjData(v.reshape(-1, 3), f.reshape(-1, 3) - 1, None, np.asarray(groups, dtype=np.int64), names)


def read_obj(path: str | os.PathLike) -> ObjData:
    """Parse an OBJ file keeping vertex order and face groups (``g`` or ``o``).

    Polygons are fan-triangulated; the triangles of one polygon share its group. A UTF-8
    byte-order mark is skipped. Faces may only use vertices defined above them (as OBJ
    writers do), so an index out of range is reported with its line.

    Raises
    ------
    MeshError
        Naming the file and line: a line that does not parse, a non-finite coordinate, a face
        index 0 or out of range (as written in the file), a binary file.
    """
    path = check_input_file(path, what="mesh file", error=MeshError)
    size, have = path.stat().st_size, available_memory()
    if have is not None and size * _BYTES_PER_FILE_BYTE > have:
        raise MeshError(f"{path}: a {size / 2**30:.1f} GiB OBJ needs about {size * _BYTES_PER_FILE_BYTE / 2**30:.0f} GiB "
                        f"to read; {have / 2**30:.1f} GiB are available")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MeshError(f"{path}: cannot read mesh file ({describe_os_error(exc)})") from None
    nul = raw.find(b"\x00", 0, 65536)
    if nul >= 0:
        raise MeshError(f"{path}: a binary file, not OBJ text (NUL byte at offset {nul})")
    text = raw.decode("utf-8-sig", errors="replace")
    fast = _read_simple(text)
    return fast if fast is not None else _read_lines(text, path)


def _read_lines(text: str, path: Path) -> ObjData:
    """The line parser: every OBJ this reader accepts, each error with its line."""
    p = _Parser(path)
    for lineno, line in enumerate(text.splitlines(), 1):
        tok = line.split()
        if not tok or tok[0].startswith("#"):
            continue
        try:
            p.line(tok[0], tok)
        except (ValueError, OverflowError) as exc:
            raise MeshError(f"{path}:{lineno}: cannot use {tok[0]!r} line {line.strip()[:80]!r} ({exc})") from None
    if not p.verts:
        raise MeshError(f"{path}: no vertices found (is this an OBJ file?)")
    v = np.asarray(p.verts, dtype=np.float64)
    f = np.asarray(p.tris, dtype=np.int64).reshape(-1, 3)
    uv = None
    vt = np.asarray(p.tri_vt, dtype=np.int64).reshape(-1, 3)
    if p.texcoords and (vt >= 0).any():
        tc = np.asarray(p.texcoords, dtype=np.float64)
        uv = np.where((vt >= 0)[..., None], tc[np.clip(vt, 0, None)], np.nan)
    return ObjData(v, f, uv, np.asarray(p.groups, dtype=np.int64), p.names)


def write_obj(mesh, fh, *, groups=None, group_names=None, precision=8) -> None:
    """Write ``mesh`` (vertices, faces, optional per-corner uv) as OBJ text to an open file.

    Raises
    ------
    MeshError
        A group name that OBJ cannot hold as it is: empty, or with line breaks, tabs,
        other control characters (a NUL makes the file binary to every reader), or leading,
        trailing or repeated spaces (the reader would give back another name).
    """
    for name in group_names or ():
        name = str(name)
        if not name or name != " ".join(name.split()) or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
            raise MeshError(f"group name {name[:40]!r} cannot be written in OBJ (no line breaks, tabs, control "
                            "characters or leading, trailing or repeated spaces)")
    fmt = f"{{:.{precision}g}}"
    fh.write(f"# written by densemap: {mesh.n_vertices} vertices, {mesh.n_faces} faces\n")
    fh.write("".join(f"v {fmt.format(x)} {fmt.format(y)} {fmt.format(z)}\n" for x, y, z in mesh.vertices))
    has_uv = mesh.uv is not None
    if has_uv:
        fh.write("".join(f"vt {fmt.format(u)} {fmt.format(w)}\n" for u, w in mesh.uv.reshape(-1, 2)))
    f1 = mesh.faces + 1
    order = np.arange(mesh.n_faces) if groups is None else np.argsort(groups, kind="stable")
    last = None
    for i in order:
        if groups is not None and groups[i] != last:
            last = groups[i]
            fh.write(f"g {group_names[last]}\n")
        a, b, c = f1[i]
        if has_uv:
            t = 3 * i + 1
            fh.write(f"f {a}/{t} {b}/{t + 1} {c}/{t + 2}\n")
        else:
            fh.write(f"f {a} {b} {c}\n")
