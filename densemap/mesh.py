"""Triangle meshes: an immutable container, file IO that never reorders vertices, and checks.

A file's vertex ``i`` is always ``mesh.vertices[i]``: OBJ is parsed here (trimesh
would merge and reorder vertices and forget face-group order), the other formats go
through trimesh with ``process=False``. Polygons are fan-triangulated.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ._io import atomic_path
from .errors import MeshError

__all__ = ["Mesh", "MeshReport", "load_mesh", "save_mesh", "check_mesh", "check_connected", "mesh_info", "read_obj",
           "MESH_SUFFIXES"]

MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".glb")


@dataclass(frozen=True, eq=False)
class Mesh:
    """An immutable triangle mesh.

    Parameters
    ----------
    vertices : (V, 3) float
        Vertex positions; copied, stored as read-only float64.
    faces : (F, 3) int
        Vertex indices of each triangle; copied, stored as read-only int64.
    uv : (F, 3, 2) float, optional
        Per-corner texture coordinates (NaN where a face has none).
    name : str
        Where the mesh came from (file name), used in error messages.

    Raises
    ------
    MeshError
        Wrong shapes, non-finite coordinates, or faces referencing missing vertices.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None = None
    name: str = field(default="mesh", compare=False)

    def __post_init__(self):
        where = self.name
        v = np.array(self.vertices, dtype=np.float64, copy=True)
        if v.ndim != 2 or v.shape[1] != 3:
            raise MeshError(f"{where}: vertices must have shape (V, 3), got {v.shape}")
        bad = ~np.isfinite(v).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise MeshError(f"{where}: vertices[{i}] = {v[i].tolist()} is not finite ({int(bad.sum())} such vertices)")
        f = np.asarray(self.faces)
        if f.size == 0:
            f = f.reshape(0, 3)
        if f.ndim != 2 or f.shape[1] != 3:
            raise MeshError(f"{where}: faces must have shape (F, 3), got {f.shape}")
        if f.dtype.kind not in "iu":
            if f.dtype.kind == "f" and np.all(np.mod(f, 1) == 0):
                f = f.astype(np.int64)
            else:
                raise MeshError(f"{where}: faces must be integers, got dtype {f.dtype}")
        f = np.array(f, dtype=np.int64, copy=True)
        if f.size:
            out = (f < 0) | (f >= len(v))
            if out.any():
                i, j = np.argwhere(out)[0]
                raise MeshError(
                    f"{where}: faces[{i}] references vertex {f[i, j]} but the mesh has {len(v)} vertices"
                )
        v.setflags(write=False)
        f.setflags(write=False)
        object.__setattr__(self, "vertices", v)
        object.__setattr__(self, "faces", f)
        if self.uv is not None:
            uv = np.array(self.uv, dtype=np.float64, copy=True)
            if uv.shape != (len(f), 3, 2):
                raise MeshError(f"{where}: uv must have shape (F, 3, 2) = ({len(f)}, 3, 2), got {uv.shape}")
            uv.setflags(write=False)
            object.__setattr__(self, "uv", uv)

    def __repr__(self):
        return f"Mesh(name={self.name!r}, V={self.n_vertices}, F={self.n_faces})"

    @property
    def n_vertices(self) -> int:
        return len(self.vertices)

    @property
    def n_faces(self) -> int:
        return len(self.faces)

    @cached_property
    def face_areas(self) -> np.ndarray:
        """(F,) float: area of each triangle."""
        a, b, c = (self.vertices[self.faces[:, k]] for k in range(3))
        out = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
        out.setflags(write=False)
        return out

    @cached_property
    def vertex_areas(self) -> np.ndarray:
        """(V,) float: barycentric vertex areas (a third of each incident triangle's area)."""
        out = np.bincount(self.faces.ravel(), weights=np.repeat(self.face_areas / 3.0, 3), minlength=self.n_vertices)
        out.setflags(write=False)
        return out

    @cached_property
    def area(self) -> float:
        """Total surface area."""
        return float(self.face_areas.sum())

    @cached_property
    def edges(self) -> np.ndarray:
        """(E, 2) int: unique undirected edges, each sorted, in lexicographic order."""
        e = np.sort(self.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        out = np.unique(e, axis=0) if len(e) else np.zeros((0, 2), np.int64)
        out.setflags(write=False)
        return out

    @cached_property
    def edge_lengths(self) -> np.ndarray:
        """(E,) float: length of each of :attr:`edges`."""
        out = np.linalg.norm(self.vertices[self.edges[:, 0]] - self.vertices[self.edges[:, 1]], axis=1)
        out.setflags(write=False)
        return out

    @cached_property
    def adjacency(self) -> sp.csr_matrix:
        """(V, V) sparse bool: vertex adjacency through edges."""
        e = self.edges
        n = self.n_vertices
        a = sp.coo_matrix((np.ones(2 * len(e), bool), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(n, n))
        return a.tocsr()

    @cached_property
    def components(self) -> np.ndarray:
        """(V,) int: connected-component id of each vertex (components ordered by first vertex)."""
        _, lab = connected_components(self.adjacency, directed=False)
        # relabel so that component ids follow the order of their first vertex
        _, first = np.unique(lab, return_index=True)
        order = np.argsort(np.argsort(first))
        out = order[lab].astype(np.int64)
        out.setflags(write=False)
        return out

    @cached_property
    def n_components(self) -> int:
        return int(self.components.max()) + 1 if self.n_vertices else 0

    @cached_property
    def bounding_box_diagonal(self) -> float:
        if not self.n_vertices:
            return 0.0
        return float(np.linalg.norm(self.vertices.max(0) - self.vertices.min(0)))

    @cached_property
    def sha1(self) -> str:
        """Hash of the geometry (vertices and faces), to tie results to a mesh."""
        h = hashlib.sha1()
        h.update(np.ascontiguousarray(self.vertices).tobytes())
        h.update(np.ascontiguousarray(self.faces).tobytes())
        return h.hexdigest()


@dataclass(frozen=True)
class MeshReport:
    """What :func:`check_mesh` found. Counts, plus the first offender of each kind (or None)."""

    n_vertices: int
    n_faces: int
    n_components: int
    component_sizes: tuple[int, ...]
    boundary_edges: int
    nonmanifold_edges: int
    degenerate_faces: int
    unreferenced_vertices: int
    nonfinite_vertices: int
    first_boundary_edge: tuple[int, int] | None
    first_nonmanifold_edge: tuple[int, int] | None
    first_degenerate_face: int | None
    first_unreferenced_vertex: int | None

    @property
    def is_closed_manifold(self) -> bool:
        return self.boundary_edges == 0 and self.nonmanifold_edges == 0

    @property
    def ok(self) -> bool:
        """A single closed manifold component without degenerate faces or stray vertices."""
        return (
            self.is_closed_manifold
            and self.n_components == 1
            and self.degenerate_faces == 0
            and self.unreferenced_vertices == 0
        )

    def summary(self) -> str:
        parts = [f"{self.n_vertices} vertices, {self.n_faces} faces, {self.n_components} component(s)"]
        for label, n, first in [
            ("boundary edges", self.boundary_edges, self.first_boundary_edge),
            ("non-manifold edges", self.nonmanifold_edges, self.first_nonmanifold_edge),
            ("degenerate faces", self.degenerate_faces, self.first_degenerate_face),
            ("unreferenced vertices", self.unreferenced_vertices, self.first_unreferenced_vertex),
        ]:
            if n:
                parts.append(f"{n} {label} (first: {first})")
        return "; ".join(parts)


def check_mesh(mesh: Mesh, *, area_tol: float = 1e-12) -> MeshReport:
    """Report the topological and numerical health of a mesh.

    Parameters
    ----------
    mesh : Mesh
    area_tol : float
        Faces with area below ``area_tol * bbox_diagonal**2`` (or with a repeated
        vertex) count as degenerate.

    Returns
    -------
    MeshReport
    """
    f = mesh.faces
    e = np.sort(f[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    uniq, counts = (np.unique(e, axis=0, return_counts=True) if len(e) else (np.zeros((0, 2), int), np.zeros(0, int)))
    boundary = uniq[counts == 1]
    nonman = uniq[counts > 2]
    repeated = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 2] == f[:, 0])
    tiny = mesh.face_areas <= area_tol * max(mesh.bounding_box_diagonal, 1e-300) ** 2
    degenerate = np.flatnonzero(repeated | tiny)
    referenced = np.zeros(mesh.n_vertices, bool)
    referenced[f.ravel()] = True
    unref = np.flatnonzero(~referenced)
    # components over referenced vertices only: stray vertices are reported separately
    comp = mesh.components[referenced]
    sizes = np.bincount(comp) if comp.size else np.zeros(0, int)
    sizes = tuple(int(s) for s in sizes[sizes > 0])

    def first(a):
        return tuple(int(x) for x in a[0]) if len(a) else None

    return MeshReport(
        n_vertices=mesh.n_vertices,
        n_faces=mesh.n_faces,
        n_components=len(sizes),
        component_sizes=sizes,
        boundary_edges=len(boundary),
        nonmanifold_edges=len(nonman),
        degenerate_faces=len(degenerate),
        unreferenced_vertices=len(unref),
        nonfinite_vertices=int((~np.isfinite(mesh.vertices).all(axis=1)).sum()),
        first_boundary_edge=first(boundary),
        first_nonmanifold_edge=first(nonman),
        first_degenerate_face=int(degenerate[0]) if len(degenerate) else None,
        first_unreferenced_vertex=int(unref[0]) if len(unref) else None,
    )


def mesh_info(mesh: Mesh, parts=None, charts=None) -> dict:
    """Statistics of a mesh (what ``densemap info`` prints): sizes, health, area, edge length.

    ``parts`` / ``charts`` (:class:`~densemap.parts.PartLabels`) add their counts.

    Examples
    --------
    >>> from densemap.data import reference
    >>> info = mesh_info(*reference("chimp"))
    >>> info["vertices"], info["components"], info["closed_manifold"], info["parts"], info["charts"]
    (7049, 1, True, 32, 24)
    """
    rep = check_mesh(mesh)
    out = {
        "vertices": mesh.n_vertices,
        "faces": mesh.n_faces,
        "components": rep.n_components,
        "closed_manifold": rep.is_closed_manifold,
        "area": mesh.area,
        "bbox_diagonal": mesh.bounding_box_diagonal,
        "mean_edge_length": float(mesh.edge_lengths.mean()) if len(mesh.edges) else 0.0,
        "check": rep.summary(),
    }
    if parts is not None:
        out["parts"] = parts.n_parts
        out["unlabelled_vertices"] = int((parts.labels < 0).sum())
    if charts is not None:
        out["charts"] = charts.n_parts
    return out


def check_connected(mesh: Mesh) -> None:
    """Raise :class:`MeshError` naming the components when ``mesh`` is not connected."""
    if mesh.n_components > 1:
        sizes = np.bincount(mesh.components)
        desc = ", ".join(f"#{i}: {s} vertices" for i, s in enumerate(sizes[:10]))
        more = "" if len(sizes) <= 10 else f", ... ({len(sizes)} in all)"
        raise MeshError(
            f"{mesh.name}: the mesh has {len(sizes)} connected components ({desc}{more}); geodesic distances "
            "between them are infinite, so part descriptors are undefined. Repair the mesh or keep its largest component."
        )


# ----------------------------------------------------------------------------- OBJ
@dataclass
class ObjData:
    """Raw content of an OBJ file, in file order (faces already triangulated)."""

    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    uv: np.ndarray | None  # (F, 3, 2) or None
    face_groups: np.ndarray  # (F,) int index into group_names, -1 = no group
    group_names: list[str]


def read_obj(path: str | os.PathLike) -> ObjData:
    """Parse an OBJ file keeping vertex order and face groups (``g`` or ``o``).

    Hand-written because trimesh merges/reorders vertices and drops group order.
    Polygons are fan-triangulated; the triangles of one polygon share its group.
    """
    path = Path(path)
    verts: list[list[float]] = []
    texcoords: list[list[float]] = []
    tris: list[tuple[int, int, int]] = []
    tri_vt: list[tuple[int, int, int]] = []
    groups: list[int] = []
    names: list[str] = []
    name_index: dict[str, int] = {}
    current = -1
    try:
        fh = open(path, "r", encoding="utf-8", errors="replace")
    except OSError as exc:
        raise MeshError(f"{path}: cannot read mesh file ({exc.strerror})") from None
    with fh:
        for lineno, line in enumerate(fh, 1):
            tok = line.split()
            if not tok or tok[0].startswith("#"):
                continue
            key = tok[0]
            try:
                if key == "v":
                    if len(tok) < 4:
                        raise ValueError("a vertex needs 3 coordinates")
                    verts.append([float(tok[1]), float(tok[2]), float(tok[3])])
                elif key == "vt":
                    texcoords.append([float(tok[1]), float(tok[2]) if len(tok) > 2 else 0.0])
                elif key in ("g", "o"):
                    gname = " ".join(tok[1:]) or "default"
                    if gname not in name_index:
                        name_index[gname] = len(names)
                        names.append(gname)
                    current = name_index[gname]
                elif key == "f":
                    if len(tok) < 4:
                        raise ValueError("a face needs at least 3 vertices")
                    vi, ti = [], []
                    for corner in tok[1:]:
                        fields = corner.split("/")
                        a = int(fields[0])
                        vi.append(a - 1 if a > 0 else len(verts) + a)
                        if len(fields) > 1 and fields[1]:
                            t = int(fields[1])
                            ti.append(t - 1 if t > 0 else len(texcoords) + t)
                        else:
                            ti.append(-1)
                    for k in range(1, len(vi) - 1):
                        tris.append((vi[0], vi[k], vi[k + 1]))
                        tri_vt.append((ti[0], ti[k], ti[k + 1]))
                        groups.append(current)
            except ValueError as exc:
                raise MeshError(f"{path}:{lineno}: cannot parse {key!r} line {line.strip()!r} ({exc})") from None
    if not verts:
        raise MeshError(f"{path}: no vertices found (is this an OBJ file?)")
    v = np.asarray(verts, dtype=np.float64)
    f = np.asarray(tris, dtype=np.int64).reshape(-1, 3)
    uv = None
    vt = np.asarray(tri_vt, dtype=np.int64).reshape(-1, 3)
    if texcoords and (vt >= 0).any():
        tc = np.asarray(texcoords, dtype=np.float64)
        if vt.max() >= len(tc):
            i = int(np.argwhere(vt >= len(tc))[0, 0])
            raise MeshError(f"{path}: face {i} references texture coordinate {vt.max() + 1} but the file has {len(tc)}")
        uv = np.where((vt >= 0)[..., None], tc[np.clip(vt, 0, None)], np.nan)
    return ObjData(v, f, uv, np.asarray(groups, dtype=np.int64), names)


def _write_obj(mesh: Mesh, fh, *, groups=None, group_names=None, precision=8) -> None:
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


# ----------------------------------------------------------------------------- public IO
def load_mesh(path: str | os.PathLike) -> Mesh:
    """Load a triangle mesh from OBJ, PLY, OFF, STL or GLB, keeping the file's vertex order.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    Mesh
        ``mesh.vertices[i]`` is the file's vertex ``i``; polygons are fan-triangulated.

    Raises
    ------
    MeshError
        Missing or unreadable file, unknown format, non-finite coordinates, bad face indices.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "tri.obj"
    >>> _ = p.write_text("v 0 0 0\\nv 1 0 0\\nv 0 1 0\\nf 1 2 3\\n")
    >>> m = load_mesh(p)
    >>> m.n_vertices, m.faces.tolist(), m.area
    (3, [[0, 1, 2]], 0.5)
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise MeshError(f"{path}: unsupported mesh format {suffix!r}; expected one of {list(MESH_SUFFIXES)}")
    if not path.is_file():
        raise MeshError(f"{path}: no such file")
    if suffix == ".obj":
        d = read_obj(path)
        return Mesh(d.vertices, d.faces, d.uv, name=str(path))
    import trimesh

    try:
        loaded = trimesh.load(str(path), process=False, maintain_order=True, force="mesh")
    except Exception as exc:  # trimesh raises many kinds of errors for corrupt files
        raise MeshError(f"{path}: cannot read mesh file ({type(exc).__name__}: {exc})") from None
    if not hasattr(loaded, "faces") or loaded.vertices is None or len(loaded.vertices) == 0:
        raise MeshError(f"{path}: no triangle mesh found in file")
    uv = None
    visual = getattr(loaded, "visual", None)
    vuv = getattr(visual, "uv", None)
    if vuv is not None and len(vuv) == len(loaded.vertices):
        uv = np.asarray(vuv, dtype=np.float64)[np.asarray(loaded.faces)]
    return Mesh(np.asarray(loaded.vertices), np.asarray(loaded.faces), uv, name=str(path))


def save_mesh(mesh: Mesh, path: str | os.PathLike) -> Path:
    """Write a mesh to OBJ, PLY, OFF, STL or GLB (atomically), keeping vertex order.

    OBJ keeps per-corner UVs. STL stores triangles without shared vertices, so it
    does not round-trip vertex indices.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise MeshError(f"{path}: unsupported mesh format {suffix!r}; expected one of {list(MESH_SUFFIXES)}")
    with atomic_path(path) as tmp:
        if suffix == ".obj":
            with open(tmp, "w") as fh:
                _write_obj(mesh, fh)
        else:
            import trimesh

            tm = trimesh.Trimesh(np.array(mesh.vertices), np.array(mesh.faces), process=False)
            data = tm.export(file_type=suffix[1:])
            with open(tmp, "wb" if isinstance(data, bytes) else "w") as fh:
                fh.write(data)
    return path
