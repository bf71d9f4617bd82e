"""Converters between two charted meshes: :class:`AnnotationConverter` and how to build one.

A point labelled ``(I, U, V)`` on the source's charts, or ``dp_vertex`` on the source
mesh, becomes a source surface point (:meth:`ChartAtlas.locate`), goes to the target
surface through the map (:class:`densemap.surface.SurfaceMap`), and is written as the
target's ``(I, U, V)`` (:meth:`ChartAtlas.chart_coords`) plus its nearest target vertex.
:func:`mesh_converter` builds one from the embedded meshes or files, with a map read from
an alignment file or computed for the embedded pair.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from densemap._io import file_sha256
from densemap._validate import check_choice
from densemap.charts import ChartAtlas
from densemap.data import SPECIES, Species
from densemap.errors import AnnotationError, DensemapError
from densemap.mesh import Mesh
from densemap.surface import SurfaceMap, vertex_face_incidence

from .coco import REFERENCE_NAMES

__all__ = ["PointResult", "AnnotationConverter", "reference_converter", "mesh_converter", "map_from_file"]


class PointResult(NamedTuple):
    """Converted points (arrays of length P).

    i, u, v : target chart id (0 where dropped) and chart coordinates
    vertex : nearest target vertex (-1 where dropped)
    face, bary : target surface point (face -1 where dropped)
    status : 0 kept, 1 moved to the nearest point of its chart, 2 dropped
    uv_distance : (u, v) distance of a moved point (0 if kept)
    reason : dict point -> reason for dropped points
    """

    i: np.ndarray
    u: np.ndarray
    v: np.ndarray
    vertex: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    status: np.ndarray
    uv_distance: np.ndarray
    reason: dict


@dataclass(eq=False)
class AnnotationConverter:
    """Converts points between two charted meshes; reusable for many files.

    Parameters
    ----------
    source, target : Mesh
    source_atlas, target_atlas : ChartAtlas
        Charts on each mesh's vertices.
    vmap : VertexMap or None
        Source-to-target map (``indices``, optional surface points). None means the
        identity and needs ``source`` and ``target`` to be the same mesh.
    source_name, target_name : str
        ``ref_model`` names: ``dp_vertex`` annotations must name the source; outputs
        name the target.
    map_info : dict
        Provenance of the map (file and hash, or how it was computed).
    """

    source: Mesh
    source_atlas: ChartAtlas
    target: Mesh
    target_atlas: ChartAtlas
    vmap: object = None
    source_name: str = "source"
    target_name: str = "target"
    map_info: dict | None = None

    def __post_init__(self):
        self.source_atlas.check_mesh(self.source)
        self.target_atlas.check_mesh(self.target)
        if self.vmap is None:
            if self.source.sha1 != self.target.sha1:
                raise DensemapError(f"no map given from {self.source.name} to a different mesh {self.target.name}")
            idx = np.arange(self.source.n_vertices)
            pos = self.target.vertices
            self.map_info = self.map_info or {"kind": "identity"}
        else:
            if len(self.vmap.indices) != self.source.n_vertices:
                raise DensemapError(f"the map has {len(self.vmap.indices)} source vertices but {self.source.name} has {self.source.n_vertices}")
            if self.vmap.indices.max() >= self.target.n_vertices:
                raise DensemapError(f"the map points at vertex {int(self.vmap.indices.max())} but {self.target.name} has {self.target.n_vertices}")
            idx = self.vmap.indices
            pos = self.vmap.points(self.target) if hasattr(self.vmap, "points") else self.target.vertices[idx]
        self._smap = SurfaceMap(idx, pos, self.source_atlas.faces, self.target.vertices, self.target_atlas.faces,
                                face_labels=self.target_atlas.charts)
        self._same_surface = self.source.sha1 == self.target.sha1 and np.array_equal(self.source_atlas.faces, self.target_atlas.faces)
        # a charted source face for every vertex (for dp_vertex points)
        on = self.source_atlas.charts > 0
        inc = vertex_face_incidence(self.source_atlas.faces[on], self.source.n_vertices).tocsr()
        nz = np.diff(inc.indptr) > 0
        first = np.full(self.source.n_vertices, -1, np.int64)
        first[nz] = np.flatnonzero(on)[inc.indices[inc.indptr[:-1][nz]]]
        self._vertex_face = first

    @property
    def source_names(self) -> tuple[str, ...]:
        return (self.source_name,)

    # ------------------------------------------------------------------ points
    def convert_charts(self, i, u, v) -> PointResult:
        """Convert chart points ``(I, U, V)`` on the source's charts (invalid ones are dropped)."""
        i = np.asarray(i, dtype=np.float64)
        loc = self.source_atlas.locate(np.where(np.isfinite(i), i, -1).astype(np.int64), u, v)
        reason = {}
        bad = np.flatnonzero(loc.face < 0)
        for k in bad:
            reason[int(k)] = f"chart {i[k]:g} has no face on the source atlas" if np.isfinite(u[k]) and np.isfinite(v[k]) \
                else "non-finite (U, V)"
        return self._finish(loc.face, loc.bary, np.where(loc.face >= 0, loc.distance, np.nan), reason)

    def convert_vertices(self, vertex) -> PointResult:
        """Convert source vertices (``dp_vertex``)."""
        vertex = np.asarray(vertex, dtype=np.int64)
        ok = (vertex >= 0) & (vertex < self.source.n_vertices)
        face = np.where(ok, self._vertex_face[np.where(ok, vertex, 0)], -1)
        bary = np.zeros((len(vertex), 3))
        good = face >= 0
        corner = np.argmax(self.source_atlas.faces[face[good]] == vertex[good, None], axis=1)
        bary[np.flatnonzero(good), corner] = 1.0
        reason = {int(k): (f"dp_vertex {vertex[k]} is in no charted face of the source atlas" if ok[k]
                           else f"dp_vertex = {vertex[k]} is not a vertex of the source mesh")
                  for k in np.flatnonzero(~good)}
        return self._finish(face, bary, np.where(good, 0.0, np.nan), reason)

    def _finish(self, face, bary, uv_dist, reason) -> PointResult:
        n = len(face)
        ok = face >= 0
        sf = face[ok]
        prefer_label = self.source_atlas.charts[sf]
        prefer_face = sf if self._same_surface else None
        tf, tb, _ = self._smap.map(sf, bary[ok], prefer_label=prefer_label, prefer_face=prefer_face)
        t_face = -np.ones(n, np.int64)
        t_bary = np.zeros((n, 3))
        t_face[ok], t_bary[ok] = tf, tb
        lost = ok & (t_face < 0)
        for k in np.flatnonzero(lost):
            reason[int(k)] = "the mapped point has no target face nearby"
        ok &= ~lost
        c = np.zeros(n, np.int64)
        u = np.zeros(n)
        v = np.zeros(n)
        c[ok], u[ok], v[ok] = self.target_atlas.chart_coords(t_face[ok], t_bary[ok])
        nochart = ok & (c == 0)
        for k in np.flatnonzero(nochart):
            reason[int(k)] = "the mapped point lands on a target face in no chart"
        ok &= ~nochart
        vert = -np.ones(n, np.int64)
        if ok.any():
            tri = self.target.vertices[self.target_atlas.faces[t_face[ok]]]
            p = np.einsum("pk,pkd->pd", t_bary[ok], tri)
            near = np.argmin(((tri - p[:, None]) ** 2).sum(-1), axis=1)
            vert[ok] = self.target_atlas.faces[t_face[ok], near]
        status = np.where(ok, np.where(uv_dist > 0, 1, 0), 2)
        return PointResult(c, np.clip(u, 0, 1), np.clip(v, 0, 1), vert, np.where(ok, t_face, -1), t_bary, status,
                           np.where(ok, uv_dist, np.nan), reason)

    def provenance(self) -> dict:
        return {
            "source": {"ref_model": self.source_name, "mesh": self.source.name, "sha1": self.source.sha1,
                       "n_vertices": self.source.n_vertices, "atlas": self.source_atlas.name},
            "target": {"ref_model": self.target_name, "mesh": self.target.name, "sha1": self.target.sha1,
                       "n_vertices": self.target.n_vertices, "atlas": self.target_atlas.name},
            "map": self.map_info or {},
        }


def _map_direction(alignment, source: Mesh, target: Mesh, where: str):
    """The source-to-target VertexMap of an Alignment, chosen by mesh sha1."""
    md = alignment.metadata or {}
    a, b = md.get("mesh_a", {}).get("sha1"), md.get("mesh_b", {}).get("sha1")
    if a == source.sha1 and b == target.sha1:
        return alignment.a_to_b
    if b == source.sha1 and a == target.sha1:
        return alignment.b_to_a
    raise DensemapError(f"{where}: the map is between meshes with sha1 {a} and {b}, not between "
                        f"{source.name} ({source.sha1}) and {target.name} ({target.sha1})")


def _computed_map(source: Species, target: Species, sources, progress: bool):
    """The source -> target map of two embedded meshes, computed now with :func:`densemap.mapping.align`."""
    from densemap.data import reference
    from densemap.mapping import align

    src, dst = reference(source), reference(target)
    t0 = time.perf_counter()
    al = align(src.mesh, src.parts, dst.mesh, dst.parts, sources=sources, progress=progress)
    info = {"kind": "computed", "function": "densemap.mapping.align", "options": {"sources": sources},
            "seconds": round(time.perf_counter() - t0, 2)}
    return al.a_to_b, info


def map_from_file(path: str | os.PathLike, source: Mesh, target: Mesh):
    """(source-to-target VertexMap, provenance) from an alignment ``.npz`` made either way round."""
    from densemap.mapping import load_alignment

    al = load_alignment(path)
    vmap = _map_direction(al, source, target, str(path))
    return vmap, {"kind": "file", "file": str(path), "sha256": file_sha256(path)}


def reference_converter(source: Species = "chimp", target: Species = "human", **options) -> AnnotationConverter:
    """Converter between the embedded meshes (default: chimpanzee to human).

    ``source`` and ``target`` are ``"chimp"`` or ``"human"``; ``options`` are those of
    :func:`mesh_converter` (``map_path``, ``sources``, ...). Without ``map_path`` the map is
    computed with :func:`densemap.mapping.align` on the embedded pair, and the provenance
    records it.

    Examples
    --------
    >>> conv = reference_converter("human", "human")
    >>> res = conv.convert_charts([1, 2], [0.5, 0.5], [0.5, 0.5])
    >>> res.i.tolist(), res.status.tolist()
    ([1, 2], [0, 0])
    """
    for s in (source, target):
        check_choice("reference mesh", s, SPECIES)
    return mesh_converter(source, target, **options)


def _side(mesh, atlas, name, flag: str):
    """(mesh, atlas, ref_model name, species or None) of one side of a conversion."""
    from densemap.charts import load_atlas, load_obj_atlas, reference_atlas
    from densemap.data import reference
    from densemap.mesh import load_mesh

    if isinstance(mesh, str) and mesh in SPECIES:
        ref = reference(mesh)
        return ref.mesh, (load_atlas(atlas, ref.mesh) if atlas else reference_atlas(mesh)), name or REFERENCE_NAMES[mesh], mesh
    path = Path(mesh)
    if atlas:
        m = load_mesh(path)
        return m, load_atlas(atlas, m), name or path.stem, None
    if path.suffix.lower() == ".obj":
        m, at = load_obj_atlas(path)
        return Mesh(m.vertices, m.faces, name=m.name), at, name or path.stem, None
    raise AnnotationError(f"{mesh}: give {flag}-atlas (an .npz, UV_Processed.mat or OBJ with vt and groups)")


def mesh_converter(
    source: str | os.PathLike = "chimp",
    target: str | os.PathLike = "human",
    *,
    source_atlas: str | os.PathLike | None = None,
    target_atlas: str | os.PathLike | None = None,
    source_name: str | None = None,
    target_name: str | None = None,
    map_path: str | os.PathLike | None = None,
    sources: int | Literal["all"] = 16,
    progress: bool = False,
) -> AnnotationConverter:
    """Converter between two charted meshes: embedded (``"chimp"``, ``"human"``) or files.

    Parameters
    ----------
    source, target : "chimp", "human" or path-like
        A mesh file needs its atlas (``source_atlas`` / ``target_atlas``: a densemap
        ``.npz``, DensePose's ``UV_Processed.mat`` or an OBJ with ``vt`` and chart groups)
        unless it is itself such an OBJ.
    source_name, target_name : str, optional
        ``ref_model`` names (default: ``densemap_chimp`` / ``densemap_human`` or the file stem).
    map_path : path-like, optional
        Alignment ``.npz`` between the two meshes (either direction). Without it: the
        identity for one mesh, a map computed now for the two embedded meshes, else an error.
    sources : int or "all"
        Geodesic sources per part when the map is computed.

    Raises
    ------
    DensemapError
        No map between two different meshes that are not both embedded; unreadable files.
    """
    ms, sa, sn, s_ref = _side(source, source_atlas, source_name, "--src")
    md, da, dn, d_ref = _side(target, target_atlas, target_name, "--dst")
    vmap, info = None, None
    if map_path is not None:
        vmap, info = map_from_file(map_path, ms, md)
    elif ms.sha1 != md.sha1:
        if not (s_ref and d_ref):
            raise DensemapError("give --map (an alignment between the two meshes); it is computed on the fly "
                                "only for the embedded chimp and human")
        vmap, info = _computed_map(s_ref, d_ref, sources, progress)
    return AnnotationConverter(ms, sa, md, da, vmap, source_name=sn, target_name=dn, map_info=info)
