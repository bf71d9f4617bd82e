"""Triangle meshes: an immutable container, file IO that never reorders vertices, and checks.

A file's vertex ``i`` is always ``mesh.vertices[i]``: OBJ is parsed by densemap
(:mod:`densemap._obj`; trimesh would merge and reorder vertices and forget face-group
order), the other formats go through trimesh with ``process=False``. Polygons are
fan-triangulated. STL stores every triangle with its own three corners; its coincident
corners are welded on load (:func:`weld`, which returns the map back).

:func:`check_mesh` reports the health of a mesh (components, boundary and non-manifold
edges, zero-area, sliver and duplicate faces, stray vertices);
:mod:`densemap.mesh_repair` refuses what breaks the geodesics (``check_alignable``) and
fixes what can be fixed, returning the map back to the original vertex ids (``repair_mesh``).
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
from ._meshfix import duplicate_faces, face_shape, weld as _weld
from ._obj import ObjData, read_obj, write_obj as _write_obj
from ._paths import check_input_file
from .errors import MeshError

__all__ = ["Mesh", "MeshReport", "load_mesh", "save_mesh", "check_mesh", "check_connected", "mesh_info", "read_obj",
           "ObjData", "MESH_SUFFIXES"]

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
    """What :func:`check_mesh` found. Counts, plus the first offender of each kind (or None).

    ``degenerate_faces`` have a repeated corner or (near) zero area; ``sliver_faces`` have a
    positive area but a shape quality below the tolerance (needles and caps whose cotangent
    weights blow up); ``duplicate_faces`` repeat an earlier face's three vertices.
    """

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
    sliver_faces: int = 0
    duplicate_faces: int = 0
    first_sliver_face: int | None = None
    first_duplicate_face: int | None = None

    @property
    def is_closed_manifold(self) -> bool:
        return self.boundary_edges == 0 and self.nonmanifold_edges == 0

    @property
    def ok(self) -> bool:
        """A single closed manifold component without bad faces or stray vertices."""
        return (
            self.is_closed_manifold
            and self.n_components == 1
            and self.degenerate_faces == 0
            and self.sliver_faces == 0
            and self.duplicate_faces == 0
            and self.unreferenced_vertices == 0
        )

    def summary(self) -> str:
        parts = [f"{self.n_vertices} vertices, {self.n_faces} faces, {self.n_components} component(s)"]
        for label, n, first in [
            ("boundary edges", self.boundary_edges, self.first_boundary_edge),
            ("non-manifold edges", self.nonmanifold_edges, self.first_nonmanifold_edge),
            ("degenerate faces", self.degenerate_faces, self.first_degenerate_face),
            ("sliver faces", self.sliver_faces, self.first_sliver_face),
            ("duplicate faces", self.duplicate_faces, self.first_duplicate_face),
            ("unreferenced vertices", self.unreferenced_vertices, self.first_unreferenced_vertex),
        ]:
            if n:
                parts.append(f"{n} {label} (first: {first})")
        return "; ".join(parts)


def check_mesh(mesh: Mesh, *, area_tol: float = 1e-12, sliver_tol: float = 1e-6) -> MeshReport:
    """Report the topological and numerical health of a mesh.

    Parameters
    ----------
    mesh : Mesh
    area_tol : float
        Faces with area below ``area_tol * bbox_diagonal**2`` (or with a repeated
        vertex) count as degenerate.
    sliver_tol : float
        Faces of positive area whose shape quality ``4 sqrt(3) area / sum(edge^2)`` (1 for
        an equilateral triangle) is below this count as slivers.

    Returns
    -------
    MeshReport

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0]], float)
    >>> rep = check_mesh(Mesh(v, [[0, 1, 2], [0, 1, 3], [1, 0, 2]]))
    >>> rep.degenerate_faces, rep.first_degenerate_face, rep.duplicate_faces, rep.first_duplicate_face
    (1, 1, 1, 2)
    """
    f = mesh.faces
    e = np.sort(f[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    uniq, counts = (np.unique(e, axis=0, return_counts=True) if len(e) else (np.zeros((0, 2), int), np.zeros(0, int)))
    boundary = uniq[counts == 1]
    nonman = uniq[counts > 2]
    repeated = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 2] == f[:, 0])
    area, quality = face_shape(mesh.vertices, f)  # scale-free: a unit bounding-box diagonal
    tiny = area <= area_tol
    degenerate = np.flatnonzero(repeated | tiny)
    sliver = np.flatnonzero(~(repeated | tiny) & (quality < sliver_tol))
    dup = np.flatnonzero(duplicate_faces(f) & ~repeated)
    referenced = np.zeros(mesh.n_vertices, bool)
    referenced[f.ravel()] = True
    unref = np.flatnonzero(~referenced)
    # components over referenced vertices only: stray vertices are reported separately
    comp = mesh.components[referenced]
    sizes = np.bincount(comp) if comp.size else np.zeros(0, int)
    sizes = tuple(int(s) for s in sizes[sizes > 0])

    def first(a):
        return tuple(int(x) for x in a[0]) if len(a) else None

    def first_index(a):
        return int(a[0]) if len(a) else None

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
        first_degenerate_face=first_index(degenerate),
        first_unreferenced_vertex=first_index(unref),
        sliver_faces=len(sliver),
        duplicate_faces=len(dup),
        first_sliver_face=first_index(sliver),
        first_duplicate_face=first_index(dup),
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
    with np.errstate(over="ignore", invalid="ignore"):  # a mesh at 1e200 has an infinite area
        area, diag = mesh.area, mesh.bounding_box_diagonal
        edge = float(mesh.edge_lengths.mean()) if len(mesh.edges) else 0.0
    out = {
        "vertices": mesh.n_vertices,
        "faces": mesh.n_faces,
        "components": rep.n_components,
        "closed_manifold": rep.is_closed_manifold,
        "area": area,
        "bbox_diagonal": diag,
        "mean_edge_length": edge,
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
        Missing or unreadable file (a folder, a pipe, a link loop), unknown format,
        non-finite coordinates, bad face indices (with the OBJ line), a PLY header that
        declares more elements than the file can hold.

    Notes
    -----
    STL repeats each vertex in every triangle that uses it; its exactly coincident corners
    are welded (vertex ``i`` is the ``i``-th distinct corner in file order; see
    :func:`densemap.mesh_repair.weld` for the map from corners).

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
    check_input_file(path, what="mesh file", error=MeshError)
    if suffix == ".obj":
        d = read_obj(path)
        return Mesh(d.vertices, d.faces, d.uv, name=str(path))
    if suffix == ".ply":
        _check_ply_header(path)
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
    v, f = np.asarray(loaded.vertices), np.asarray(loaded.faces)
    if suffix == ".stl":  # corners -> shared vertices (STL has no vertex ids of its own)
        v, f, _ = _weld(v, f)
    return Mesh(v, f, uv, name=str(path))


def _check_ply_header(path: Path) -> None:
    """Refuse a PLY whose header declares more vertices or faces than its size can hold.

    A 200-byte file may declare 10**12 vertices; without this the reader would try to
    allocate them. Each ASCII element takes at least two bytes, each binary one its size.
    """
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if not head.startswith(b"ply"):
        return  # not our business: trimesh says what it is
    end = head.find(b"end_header")
    if end < 0:
        return
    size = path.stat().st_size
    for line in head[:end].decode("ascii", errors="replace").splitlines():
        tok = line.split()
        if len(tok) == 3 and tok[0] == "element" and tok[2].isdigit():
            n = int(tok[2])
            if n * 2 > size:
                raise MeshError(f"{path}: the PLY header declares {n} {tok[1]} elements but the file has only "
                                f"{size} bytes (truncated or corrupt)")


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
