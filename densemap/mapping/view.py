"""The interactive viewer of an alignment: what ``densemap view`` and ``densemap align --view`` write.

:func:`view_alignment` reads an alignment folder (or its ``alignment.npz``), finds the two
meshes it was computed for, and writes ``view.html`` (:mod:`densemap.viz.viewer`);
:func:`write_view` does the same for an alignment in memory. The meshes are found by the
hashes the alignment recorded: the embedded human or chimp (whose charts and, for the pair,
ground-truth correspondence come with them), the file named in the alignment when it is
still there and unchanged, or a file given by the caller.

Per-vertex map quality, one value per vertex of each mesh (the report's figures are
averages of the same quantities):

* :func:`vertex_stretch` -- log2 of how much the map stretches the vertex's edges;
* :func:`vertex_round_trip` -- how far the map there and back lands from the vertex;
* :func:`vertex_gt_error` -- how far the mapped point is from the true match.

Distances here are straight-line (the report's are along the surface), over the square root
of the mesh's area, so that the field of 20 000 vertices takes milliseconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DensemapError
from ..mesh import Mesh, load_mesh
from ..parts import PartLabels, load_parts
from .alignment import Alignment, load_alignment
from .prepare import AlignInputs
from .quality import _ground_truth_points
from .vertex_map import VertexMap

__all__ = ["vertex_stretch", "vertex_round_trip", "vertex_gt_error", "write_view",
           "load_view_inputs", "view_alignment"]

_MAX_RATIO = 64.0  # edge stretch ratios are clipped to [1/64, 64] (a collapsed edge counts as 1/64)


def vertex_stretch(mesh_src: Mesh, mesh_tgt: Mesh, vmap: VertexMap) -> np.ndarray:
    """(V_src,) float: log2 stretch of the map at each source vertex.

    For each edge of the source, the length of its image on the target (between the mapped
    surface points, or vertices) over its own length, divided by ``sqrt(area_tgt /
    area_src)``; the log2 of that ratio (clipped to ``[1/64, 64]``, so a collapsed edge
    counts as 1/64) averaged over the vertex's edges. 0 means lengths are kept; NaN for a
    vertex in no edge of positive length.

    Examples
    --------
    A map of a mesh onto itself stretches nothing:

    >>> from densemap.data import reference
    >>> m = reference("chimp").mesh
    >>> same = VertexMap(np.arange(m.n_vertices), np.zeros(m.n_vertices))
    >>> float(np.abs(vertex_stretch(m, m, same)).max())
    0.0
    """
    e, length = mesh_src.edges, mesh_src.edge_lengths
    ok = length > 0
    e, length = e[ok], length[ok]
    pts = vmap.points(mesh_tgt, surface=True)
    scale = np.sqrt(mesh_tgt.area / max(mesh_src.area, 1e-300))
    ratio = np.linalg.norm(pts[e[:, 0]] - pts[e[:, 1]], axis=1) / length / scale
    lr = np.log2(np.clip(ratio, 1 / _MAX_RATIO, _MAX_RATIO))
    n = mesh_src.n_vertices
    total = np.bincount(e[:, 0], lr, n) + np.bincount(e[:, 1], lr, n)
    count = np.bincount(e[:, 0], minlength=n) + np.bincount(e[:, 1], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def vertex_round_trip(mesh: Mesh, there: VertexMap, back: VertexMap) -> np.ndarray:
    """(V,) float: straight-line distance from each vertex to ``back[there[v]]``, over ``sqrt(area)``."""
    rt = back.indices[there.indices]
    d = np.linalg.norm(mesh.vertices[rt] - mesh.vertices, axis=1)
    return d / np.sqrt(max(mesh.area, 1e-300))


def vertex_gt_error(mesh_tgt: Mesh, vmap: VertexMap, ground_truth) -> np.ndarray:
    """(V_src,) float: straight-line distance from each mapped point to its true match, over ``sqrt(area_tgt)``.

    ``ground_truth`` is the true target vertex of each source vertex, or its true surface
    point ``(faces, bary)`` on the target.
    """
    _, true_pos = _ground_truth_points(mesh_tgt, len(vmap), ground_truth)
    d = np.linalg.norm(vmap.points(mesh_tgt, surface=True) - true_pos, axis=1)
    return d / np.sqrt(max(mesh_tgt.area, 1e-300))


def _fields():
    from ..viz.viewer import ViewerField

    return (
        ViewerField("stretch", "Stretch",
                    "How the map stretches each vertex's edges: the mapped length over the length (scaled by the "
                    "meshes' size ratio), averaged in log2 over the vertex's edges. Blue: compressed (collapsed edges "
                    "count as 1/64), red: stretched.", "log2 stretch", cmap="coolwarm", lo=-2.0, hi=2.0,
                    ticks=("1/4 x", "1 x", "4 x")),
        ViewerField("consistency", "Round trip",
                    "How far the map there and back (A->B->A on A, B->A->B on B) lands from each vertex: straight-line "
                    "distance over the square root of the mesh's area; 0 = consistent.", "round trip"),
        ViewerField("gt_error", "Ground-truth error",
                    "How far each vertex's mapped point is from its true match: straight-line distance over the square "
                    "root of the target mesh's area. Only where the true correspondence is known.", "error",
                    missing="no ground truth in this direction"),
    )


def _species(mesh: Mesh) -> str | None:
    """The embedded species whose mesh this is (same hash; the embedded mesh is loaded only if the sizes agree)."""
    from ..data import SPECIES, data_path, reference

    for s in SPECIES:
        n = len(np.load(data_path(f"{s}_parts.npy"), mmap_mode="r"))  # its vertex count, without loading it
        if n == mesh.n_vertices and reference(s).mesh.sha1 == mesh.sha1:
            return s
    return None


def _sides(inputs: AlignInputs, alignment: Alignment, charts_a=None, charts_b=None):
    from ..data import reference
    from ..viz.viewer import ViewerSide

    ma, mb = inputs.mesh_a, inputs.mesh_b
    a_to_b, b_to_a = alignment.a_to_b, alignment.b_to_a
    fields_a = {"stretch": vertex_stretch(ma, mb, a_to_b), "consistency": vertex_round_trip(ma, a_to_b, b_to_a)}
    fields_b = {"stretch": vertex_stretch(mb, ma, b_to_a), "consistency": vertex_round_trip(mb, b_to_a, a_to_b)}
    sa, sb = _species(ma), _species(mb)
    gt_b_to_a = inputs.ground_truth_b_to_a
    if gt_b_to_a is None and (sa, sb) == ("human", "chimp"):
        from ..data import chimp_to_human_ground_truth

        gt_b_to_a = chimp_to_human_ground_truth()
    if gt_b_to_a is not None:
        fields_b["gt_error"] = vertex_gt_error(ma, b_to_a, gt_b_to_a)
    if (sa, sb) == ("chimp", "human"):
        from ..data import chimp_to_human_ground_truth

        fields_a["gt_error"] = vertex_gt_error(mb, a_to_b, chimp_to_human_ground_truth())
    charts_a = charts_a if charts_a is not None else (reference(sa).charts if sa else None)
    charts_b = charts_b if charts_b is not None else (reference(sb).charts if sb else None)
    parts_a = alignment.parts_a if alignment.parts_a is not None else inputs.parts_a
    parts_b = alignment.parts_b if alignment.parts_b is not None else inputs.parts_b
    return (ViewerSide(ma, "A", a_to_b.indices, parts=parts_a, charts=charts_a, fields=fields_a),
            ViewerSide(mb, "B", b_to_a.indices, parts=parts_b, charts=charts_b, fields=fields_b))


def write_view(path: str | os.PathLike, inputs: AlignInputs, alignment: Alignment, *, charts_a: PartLabels | None = None,
               charts_b: PartLabels | None = None) -> Path:
    """Write the viewer page of ``alignment`` between ``inputs``' meshes to ``path`` (atomically).

    Parameters
    ----------
    path : path-like
    inputs : AlignInputs
        The meshes (as the alignment's vertex ids refer to them), parts, and the B -> A
        ground truth when known (found for the embedded human -> chimp pair otherwise).
    alignment : Alignment
    charts_a, charts_b : PartLabels, optional
        Per-vertex chart labels (default: the embedded meshes' 24 DensePose charts, none
        for other meshes).

    Returns
    -------
    Path
    """
    from ..viz.viewer import write_viewer

    side_a, side_b = _sides(inputs, alignment, charts_a, charts_b)
    return write_viewer(path, side_a, side_b, fields=_fields())


def _alignment_file(align: str | os.PathLike) -> Path:
    p = Path(align)
    if p.is_dir():
        p = p / "alignment.npz"
        if not p.exists():
            raise DensemapError(f"{align}: no alignment.npz in this folder (run 'densemap align -o {align}' first)")
    return p


def _find_mesh(path: Path, which: str, record: dict, given, flag: str) -> Mesh:
    """The mesh ``record`` (name, sha1 from the alignment's metadata) describes."""
    from ..data import SPECIES, data_path, reference

    sha1, name = record.get("sha1"), record.get("name")
    if given is not None:
        mesh = load_mesh(given)
        if sha1 is not None and mesh.sha1 != sha1:
            raise DensemapError(f"{path}: {which} was {name!r} (sha1 {sha1}) but {flag} {given} has sha1 {mesh.sha1}")
        return mesh
    if name and Path(name).is_file():
        mesh = load_mesh(name)
        if mesh.sha1 == sha1:
            return mesh
        raise DensemapError(f"{path}: {which} {name!r} changed since the alignment (sha1 {mesh.sha1}, was {sha1}); "
                            f"give the original with {flag}")
    for s in SPECIES:
        if record.get("n_vertices") in (None, len(np.load(data_path(f"{s}_parts.npy"), mmap_mode="r"))) and \
                reference(s).mesh.sha1 == sha1:
            return reference(s).mesh
    raise DensemapError(f"{path}: {which} {name!r} is not an embedded mesh and no such file is here; give it with {flag}")


def load_view_inputs(align: str | os.PathLike, *, mesh_a=None, mesh_b=None) -> tuple[AlignInputs, Alignment]:
    """The meshes, parts and alignment of an alignment folder (or ``alignment.npz``).

    Raises
    ------
    DensemapError
        No alignment there, a mesh that cannot be found, or one that is not the mesh the
        alignment was computed for.
    """
    path = _alignment_file(align)
    al = load_alignment(path)
    md = al.metadata
    ma = _find_mesh(path, "mesh_a", md.get("mesh_a") or {}, mesh_a, "--mesh-a")
    mb = _find_mesh(path, "mesh_b", md.get("mesh_b") or {}, mesh_b, "--mesh-b")
    for which, mesh, n in (("mesh_a", ma, len(al.a_to_b)), ("mesh_b", mb, len(al.b_to_a))):
        if mesh.n_vertices != n:
            raise DensemapError(f"{path}: the alignment maps {n} vertices of {which} but {mesh.name} has "
                                f"{mesh.n_vertices}")
    if al.parts_a is None or al.parts_b is None:
        raise DensemapError(f"{path}: the alignment holds no part labels (written by an older densemap?); "
                            "run 'densemap align' again")
    return AlignInputs(ma, al.parts_a, mb, al.parts_b), al


def view_alignment(align: str | os.PathLike, out: str | os.PathLike | None = None, *, mesh_a=None, mesh_b=None,
                   charts_a=None, charts_b=None) -> Path:
    """What ``densemap view`` does: the viewer page of an alignment folder.

    Parameters
    ----------
    align : path-like
        A folder written by ``densemap align`` (or its ``alignment.npz``).
    out : path-like, optional
        The page (default: ``view.html`` beside the alignment).
    mesh_a, mesh_b : path-like, optional
        The meshes, when they are neither embedded nor where the alignment says.
    charts_a, charts_b : path-like, optional
        Per-vertex chart label files (any part-label format) for meshes that are not embedded.

    Returns
    -------
    Path

    Examples
    --------
    The embedded chimp mapped onto itself, saved as ``densemap align`` would:

    >>> import tempfile, pathlib
    >>> from densemap.data import reference
    >>> mesh, parts, _ = reference("chimp")
    >>> n, folder = mesh.n_vertices, pathlib.Path(tempfile.mkdtemp())
    >>> same = VertexMap(np.arange(n), np.zeros(n), n_target=n)
    >>> record = {"name": mesh.name, "sha1": mesh.sha1, "n_vertices": n}
    >>> _ = Alignment(a_to_b=same, b_to_a=same, part_names=parts.names, parts_a=parts, parts_b=parts,
    ...               metadata={"mesh_a": record, "mesh_b": record}).save(folder / "alignment.npz")
    >>> page = view_alignment(folder)
    >>> page.name, 'id="densemap-data"' in page.read_text()
    ('view.html', True)
    """
    inputs, al = load_view_inputs(align, mesh_a=mesh_a, mesh_b=mesh_b)
    ca = load_parts(charts_a, inputs.mesh_a) if charts_a is not None else None
    cb = load_parts(charts_b, inputs.mesh_b) if charts_b is not None else None
    out = Path(out) if out is not None else _alignment_file(align).parent / "view.html"
    return write_view(out, inputs, al, charts_a=ca, charts_b=cb)
