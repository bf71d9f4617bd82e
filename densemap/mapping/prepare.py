"""Meshes made fit for the aligner, and the alignment carried back to the meshes as given.

:func:`prepare_pair` checks both meshes (:func:`densemap.mesh_repair.check_alignable`:
zero-area, sliver and duplicate faces, non-manifold edges, stray vertices), or repairs them
(:func:`densemap.mesh_repair.repair_mesh`), scales both by one common factor when their size
is far from 1 (each to a unit bounding-box diagonal, so 1e-150- and 1e150-scale meshes work
like metre-scale ones; the descriptors and every quality figure are scale-free), and checks
the memory the alignment needs.
:meth:`PreparedPair.restore` turns the alignment of the prepared meshes into one on the
original vertex ids, faces and hashes, so every output refers to the files as given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .._io import available_memory
from .._meshfix import normalised
from ..errors import MeshError
from ..mesh import Mesh
from ..mesh_repair import MeshRepair, check_alignable, repair_mesh
from ..parts import PartLabels, match_parts
from .alignment import Alignment
from .vertex_map import VertexMap

__all__ = ["AlignInputs", "PreparedPair", "prepare_pair", "estimate_memory"]

_SCALE_OK = (1e-3, 1e3)  # bounding-box diagonals in this range are used as they are


@dataclass
class AlignInputs:
    """A mesh pair with parts, and the B -> A ground truth when it is known."""

    mesh_a: Mesh
    parts_a: PartLabels
    mesh_b: Mesh
    parts_b: PartLabels
    ground_truth_b_to_a: tuple | None = None


@dataclass
class PreparedPair:
    """The pair the aligner sees, and how to go back to the inputs."""

    inputs: AlignInputs
    mesh_a: Mesh
    parts_a: PartLabels
    mesh_b: Mesh
    parts_b: PartLabels
    scale_a: float = 1.0
    scale_b: float = 1.0
    repair_a: MeshRepair | None = None
    repair_b: MeshRepair | None = None

    @property
    def changed(self) -> bool:
        return self.scale_a != 1.0 or self.scale_b != 1.0 or any(r is not None and r.changed for r in (self.repair_a, self.repair_b))

    def record(self) -> dict:
        """What was done to the meshes (for the report and the alignment's metadata)."""
        out = {"scale_a": self.scale_a, "scale_b": self.scale_b}
        for key, r in (("repair_a", self.repair_a), ("repair_b", self.repair_b)):
            if r is not None and r.changed:
                out[key] = {"welded": r.welded, "removed_faces": r.removed_faces, "removed_vertices": r.removed_vertices}
        return out

    def restore(self, alignment: Alignment) -> Alignment:
        """The alignment on the original meshes' vertex ids, faces, parts and hashes."""
        if not self.changed:
            return alignment
        ia = _source_rows(self.inputs.mesh_a, self.mesh_a, self.repair_a)
        ib = _source_rows(self.inputs.mesh_b, self.mesh_b, self.repair_b)
        a_to_b = _restore_map(alignment.a_to_b, ia, self.inputs.mesh_b, self.repair_b)
        b_to_a = _restore_map(alignment.b_to_a, ib, self.inputs.mesh_a, self.repair_a)
        md = dict(alignment.metadata)
        for key, mesh in (("mesh_a", self.inputs.mesh_a), ("mesh_b", self.inputs.mesh_b)):
            md[key] = {**md.get(key, {}), "name": mesh.name, "sha1": mesh.sha1, "n_vertices": mesh.n_vertices}
        md["prepared"] = self.record()
        parts_b = match_parts(self.inputs.parts_a, self.inputs.parts_b)
        return dataclasses.replace(
            alignment, a_to_b=a_to_b, b_to_a=b_to_a, metadata=md, parts_a=self.inputs.parts_a, parts_b=parts_b,
            desc_a=None if alignment.desc_a is None else alignment.desc_a[ia],
            desc_b=None if alignment.desc_b is None else alignment.desc_b[ib])


def _source_rows(original: Mesh, prepared: Mesh, repair: MeshRepair | None) -> np.ndarray:
    """(V_orig,) int: the prepared vertex whose result each original vertex takes.

    A vertex the repair removed (it was in no face) takes its nearest prepared vertex's.
    """
    if repair is None:
        return np.arange(original.n_vertices)
    rows = repair.vertex_map.copy()
    lost = rows < 0
    if lost.any():
        from scipy.spatial import cKDTree

        here = repair.original_vertex()
        tree = cKDTree(normalised(original.vertices)[0][here])
        rows[lost] = tree.query(normalised(original.vertices)[0][lost])[1]
    return rows


def _restore_map(m: VertexMap, rows: np.ndarray, target: Mesh, repair: MeshRepair | None) -> VertexMap:
    idx = m.indices[rows]
    faces = bary = corners = None
    if m.has_surface:
        faces, bary = m.faces[rows], m.bary[rows]
    if repair is not None:
        idx = repair.original_vertex()[idx]
        if faces is not None:
            faces = np.where(faces >= 0, repair.face_map[np.maximum(faces, 0)], -1)
    if faces is not None:
        corners = np.where((faces >= 0)[:, None], target.faces[np.maximum(faces, 0)], -1)
    return VertexMap(idx, m.distances[rows], faces=faces, bary=bary, corners=corners, source_name=m.source_name,
                     target_name=m.target_name, n_target=target.n_vertices)


def estimate_memory(n_vertices: int, n_parts: int) -> int:
    """Bytes the alignment of one mesh of ``n_vertices`` needs, roughly and on the high side.

    A sparse Cholesky factor of the Laplacian (~100 non-zeros a row), the descriptors and
    their copies (8 float64 per part), the ZoomOut eigenbasis (~100 columns).
    """
    return int(n_vertices) * (100 * 16 + 8 * 8 * max(int(n_parts), 1) + 100 * 8 * 3)


def _scale(mesh: Mesh) -> float:
    diag = normalised(mesh.vertices)[1]
    return 1.0 if _SCALE_OK[0] <= diag <= _SCALE_OK[1] else 1.0 / diag


def _scaled(mesh: Mesh, scale: float) -> Mesh:
    if scale == 1.0:
        return mesh
    return Mesh(mesh.vertices * scale, mesh.faces, mesh.uv, name=mesh.name)


def prepare_pair(inputs: AlignInputs, *, repair: bool = False) -> PreparedPair:
    """Check (or repair) both meshes, scale them when far from unit size, check the memory.

    Raises
    ------
    MeshError
        The first face, edge or vertex that breaks the geodesics (without ``repair``, or what
        a repair cannot fix), or a pair too large for the available memory.

    Examples
    --------
    >>> import numpy as np
    >>> from densemap.data import reference
    >>> c = reference("chimp")
    >>> tiny = Mesh(c.mesh.vertices * 1e-150, c.mesh.faces, name="tiny")
    >>> p = prepare_pair(AlignInputs(tiny, c.parts, c.mesh, c.parts))
    >>> p.scale_a > 1e100, round(p.mesh_a.bounding_box_diagonal, 12), p.scale_b
    (True, 1.0, 1.0)
    """
    hint = "pass --repair to weld coincident vertices and drop such faces and vertices (the outputs keep the " \
           "original vertex ids)"
    meshes, parts, repairs = [], [], []
    for mesh, labels in ((inputs.mesh_a, inputs.parts_a), (inputs.mesh_b, inputs.parts_b)):
        labels.check_mesh(mesh)
        rep = None
        if repair:
            fixed, rep = repair_mesh(mesh)
            if rep.changed:
                labels = PartLabels(labels.labels[rep.original_vertex()], labels.names, source=labels.source)
                mesh = fixed
        check_alignable(mesh, hint="" if repair else hint)
        meshes.append(mesh)
        parts.append(labels)
        repairs.append(rep)
    need = sum(estimate_memory(m.n_vertices, p.n_parts) for m, p in zip(meshes, parts))
    have = available_memory()
    if have is not None and need > have:
        raise MeshError(f"aligning {meshes[0].name} ({meshes[0].n_vertices} vertices) and {meshes[1].name} "
                        f"({meshes[1].n_vertices} vertices) needs about {need / 2**30:.1f} GiB; "
                        f"{have / 2**30:.1f} GiB are available (simplify the meshes)")
    sa, sb = _scale(meshes[0]), _scale(meshes[1])
    return PreparedPair(inputs, _scaled(meshes[0], sa), parts[0], _scaled(meshes[1], sb), parts[1], sa, sb,
                        repairs[0], repairs[1])
