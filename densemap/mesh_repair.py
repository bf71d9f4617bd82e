"""Meshes fit for geodesics: refuse what breaks them, or repair it keeping a map back.

:func:`check_alignable` names the first zero-area, sliver or duplicate face, non-manifold
edge or stray vertex (each makes the cotangent operators singular or meaningless);
:func:`repair_mesh` welds coincident vertices and removes bad faces and stray vertices,
keeping the vertex order and returning a :class:`MeshRepair` that maps between the two
meshes; :func:`weld` merges coincident vertices only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._meshfix import clean_faces, weld as _weld
from .errors import MeshError
from .mesh import Mesh, MeshReport, check_mesh

__all__ = ["check_alignable", "MeshRepair", "repair_mesh", "weld"]


def check_alignable(mesh: Mesh, *, hint: str = "") -> MeshReport:
    """Raise :class:`MeshError` naming the first face or vertex that breaks the geodesics.

    Refused: zero-area and sliver faces (their cotangent weights are infinite or huge: NaN
    in the solvers), duplicate faces and non-manifold edges, vertices in no face. ``hint``
    is appended to the message (e.g. how to repair). Returns the report otherwise.
    """
    rep = check_mesh(mesh)
    f = mesh.faces
    tail = f"; {hint}" if hint else ""

    def face(i):
        return f"face {i} (vertices {', '.join(str(int(x)) for x in f[i])})"

    if rep.degenerate_faces:
        raise MeshError(f"{mesh.name}: {rep.degenerate_faces} faces have zero area, first {face(rep.first_degenerate_face)}"
                        f"; the geodesic operators divide by face areas{tail}")
    if rep.sliver_faces:
        raise MeshError(f"{mesh.name}: {rep.sliver_faces} sliver faces (shape quality below 1e-6), first "
                        f"{face(rep.first_sliver_face)}; their cotangent weights are too large to solve with{tail}")
    if rep.duplicate_faces:
        raise MeshError(f"{mesh.name}: {rep.duplicate_faces} duplicate faces, first {face(rep.first_duplicate_face)}"
                        f" repeats an earlier face{tail}")
    if rep.nonmanifold_edges:
        a, b = rep.first_nonmanifold_edge
        raise MeshError(f"{mesh.name}: {rep.nonmanifold_edges} non-manifold edges (in more than two faces), first "
                        f"({a}, {b}); expected a manifold surface (repair the mesh in a mesh editor)")
    if rep.unreferenced_vertices:
        raise MeshError(f"{mesh.name}: {rep.unreferenced_vertices} vertices are in no face, first vertex "
                        f"{rep.first_unreferenced_vertex}{tail}")
    return rep


@dataclass(frozen=True)
class MeshRepair:
    """What :func:`repair_mesh` changed, with the maps between the two meshes.

    Attributes
    ----------
    vertex_map : (V_orig,) int
        Repaired vertex of each original vertex (``-1``: removed, it was in no face).
    face_map : (F_new,) int
        Original face of each repaired face.
    welded, removed_faces, removed_vertices : int
    """

    vertex_map: np.ndarray
    face_map: np.ndarray
    welded: int
    removed_faces: int
    removed_vertices: int

    @property
    def changed(self) -> bool:
        return bool(self.welded or self.removed_faces or self.removed_vertices)

    def summary(self) -> str:
        return (f"{self.welded} coincident vertices welded, {self.removed_faces} faces removed (zero-area, sliver or "
                f"duplicate), {self.removed_vertices} vertices in no face removed")

    def original_vertex(self) -> np.ndarray:
        """(V_new,) int: an original vertex of each repaired vertex (the first one)."""
        back = np.full(int(self.vertex_map.max()) + 1 if len(self.vertex_map) else 0, -1, np.int64)
        keep = self.vertex_map >= 0
        idx = np.flatnonzero(keep)[::-1]
        back[self.vertex_map[idx]] = idx  # written last-to-first: the first original wins
        return back


def repair_mesh(mesh: Mesh, *, area_tol: float = 1e-12, sliver_tol: float = 1e-6,
                weld_tol: float = 1e-12) -> tuple[Mesh, MeshRepair]:
    """Weld coincident vertices, drop zero-area, sliver and duplicate faces and stray vertices.

    Vertex order is kept (welded vertices take the first one's place, removed ones close up),
    and :class:`MeshRepair` maps between the original and repaired ids. Non-manifold edges
    that remain are not touched (:func:`check_alignable` still names them).

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [1, 0, 0]], float)
    >>> m, rep = repair_mesh(Mesh(v, [[0, 1, 2], [1, 3, 2], [0, 4, 1]]))
    >>> m.faces.tolist(), rep.vertex_map.tolist(), rep.removed_faces
    ([[0, 1, 2], [1, 3, 2]], [0, 1, 2, 3, 1], 1)
    """
    v, f, weld_map = _weld(mesh.vertices, mesh.faces, tol=weld_tol)
    keep = clean_faces(v, f, area_tol=area_tol, sliver_tol=sliver_tol)
    f = f[keep]
    used = np.zeros(len(v), bool)
    used[f.ravel()] = True
    renum = np.full(len(v), -1, np.int64)
    renum[used] = np.arange(int(used.sum()))
    uv = mesh.uv[keep] if mesh.uv is not None else None
    out = Mesh(v[used], renum[f], uv, name=mesh.name)
    vmap = renum[weld_map]
    rep = MeshRepair(vmap, np.flatnonzero(keep), welded=mesh.n_vertices - len(v),
                     removed_faces=int((~keep).sum()), removed_vertices=int((~used).sum()))
    return out, rep


def weld(mesh: Mesh, *, tol: float = 0.0) -> tuple[Mesh, np.ndarray]:
    """The mesh with coincident vertices merged, and ``old_to_new`` (V,) int (the map back).

    ``tol`` is relative to the bounding-box diagonal (0: exactly equal positions).
    """
    v, f, old_to_new = _weld(mesh.vertices, mesh.faces, tol=tol)
    return Mesh(v, f, mesh.uv, name=mesh.name), old_to_new
