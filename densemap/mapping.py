"""Dense correspondence between two meshes by nearest part descriptors.

A map says its direction in its name: ``a_to_b.indices[i]`` is the B vertex for A
vertex ``i``, so ``values_on_a = values_on_b[a_to_b.indices]`` (:func:`transfer`).

Pipeline of :func:`align`: part descriptors on both meshes (one shared heat time step)
-> nearest descriptor (:func:`match_descriptors`) -> optional spectral refinement
(:mod:`densemap.refine`) -> optional surface points (:func:`surface_points`).
:class:`Alignment` (defined in :mod:`densemap.alignment`, re-exported here with
:func:`load_alignment`) holds the result; :func:`map_quality` (defined in
:mod:`densemap.quality`, re-exported here) scores one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from scipy.spatial import cKDTree

from ._validate import check_choice
from .alignment import FORMAT_VERSION, Alignment, _versions, json_default, load_alignment
from .mesh import Mesh, check_connected
from .parts import PartLabels, match_parts
from .quality import map_quality
from .surface import closest_point_on_triangles, surface_positions, vertex_face_incidence

__all__ = [
    "VertexMap",
    "Alignment",
    "match_descriptors",
    "surface_points",
    "align",
    "shared_time_step",
    "transfer",
    "load_alignment",
    "map_quality",
]

Backend = Literal["auto", "kdtree", "torch"]
RefineMethod = Literal["zoomout"]
LengthScale = Literal["max", "mean"]


# sampled geodesic sources per part used by align() unless told otherwise (docs/alignment.md)
DEFAULT_SOURCES = 64


# ----------------------------------------------------------------------------- maps
@dataclass(frozen=True, eq=False)
class VertexMap:
    """A map from the vertices of a source mesh to a target mesh.

    Parameters
    ----------
    indices : (V_src,) int
        Target vertex of each source vertex.
    distances : (V_src,) float
        Descriptor distance (L2) of each match; NaN where unknown (e.g. after refinement).
    faces : (V_src,) int, optional
        Target face holding the surface point of each source vertex (``-1``: none, use
        the vertex ``indices``).
    bary : (V_src, 3) float, optional
        Barycentric coordinates of the surface point in ``faces``.
    corners : (V_src, 3) int, optional
        Target vertices of each face in ``faces``, so that surface points can be used
        without the target mesh (:func:`transfer`).
    source_name, target_name : str
    n_target : int, optional
        Number of target vertices, to check values given to :func:`transfer`.
    """

    indices: np.ndarray
    distances: np.ndarray
    faces: np.ndarray | None = None
    bary: np.ndarray | None = None
    corners: np.ndarray | None = None
    source_name: str = "source"
    target_name: str = "target"
    n_target: int | None = None

    def __post_init__(self):
        idx = np.array(self.indices, copy=True)
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise ValueError(f"indices must be a 1-D integer array, got shape {idx.shape} dtype {idx.dtype}")
        idx = idx.astype(np.int64)
        n = len(idx)
        if idx.size and idx.min() < 0:
            i = int(np.argmin(idx))
            raise ValueError(f"indices[{i}] = {idx[i]} is negative")
        if self.n_target is not None and idx.size and idx.max() >= self.n_target:
            i = int(np.argmax(idx))
            raise ValueError(f"indices[{i}] = {idx[i]} but the target has {self.n_target} vertices")
        dist = np.array(self.distances, dtype=np.float64, copy=True)
        if dist.shape != (n,):
            raise ValueError(f"distances must have shape ({n},), got {dist.shape}")
        arrays = {"indices": idx, "distances": dist}
        if (self.faces is None) != (self.bary is None):
            raise ValueError("faces and bary must be given together")
        if self.faces is not None:
            fc = np.array(self.faces, dtype=np.int64, copy=True)
            bc = np.array(self.bary, dtype=np.float64, copy=True)
            if fc.shape != (n,) or bc.shape != (n, 3):
                raise ValueError(f"faces and bary must have shapes ({n},) and ({n}, 3), got {fc.shape} and {bc.shape}")
            arrays.update(faces=fc, bary=bc)
        if self.corners is not None:
            cn = np.array(self.corners, dtype=np.int64, copy=True)
            if cn.shape != (n, 3):
                raise ValueError(f"corners must have shape ({n}, 3), got {cn.shape}")
            arrays["corners"] = cn
        for k, a in arrays.items():
            a.setflags(write=False)
            object.__setattr__(self, k, a)

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self):
        s = ", surface" if self.has_surface else ""
        return f"VertexMap({self.source_name} -> {self.target_name}, V_src={len(self)}{s})"

    @property
    def has_surface(self) -> bool:
        return self.faces is not None

    def points(self, target: Mesh, *, surface: bool = True) -> np.ndarray:
        """(V_src, 3) float: positions of the matches on ``target`` (surface points if any)."""
        p = target.vertices[self.indices]
        if surface and self.has_surface:
            ok = self.faces >= 0
            p = p.copy()
            p[ok] = surface_positions(target.vertices, target.faces, self.faces[ok], self.bary[ok])
        return p

    def with_surface(self, faces, bary, corners) -> "VertexMap":
        return VertexMap(self.indices, self.distances, faces, bary, corners,
                         self.source_name, self.target_name, self.n_target)


# ----------------------------------------------------------------------------- matching
def _labels(parts, n: int, what: str) -> np.ndarray:
    lab = parts.labels if isinstance(parts, PartLabels) else np.asarray(parts)
    if lab.shape != (n,):
        raise ValueError(f"{what} must have one label per vertex ({n}), got shape {lab.shape}")
    return lab.astype(np.int64, copy=False)


def _as_numpy(x, what: str):
    """numpy float64 array of ``x`` and the device of ``x`` if it is a tensor."""
    dev = None
    if type(x).__module__.startswith("torch"):
        dev = x.device
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{what} must have shape (V, L), got {a.shape}")
    bad = ~np.isfinite(a).all(axis=1)
    if bad.any():
        raise ValueError(f"{what}[{int(np.flatnonzero(bad)[0])}] is not finite ({int(bad.sum())} such rows)")
    return a, dev


def _nn_kdtree(q: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d, i = cKDTree(ref).query(q, k=1, workers=-1)
    return i.astype(np.int64), d


def _nn_torch(q: np.ndarray, ref: np.ndarray, device, chunk: int | None) -> tuple[np.ndarray, np.ndarray]:
    import torch

    ref_t = torch.tensor(ref, device=device)
    if chunk is None:  # about 2**24 distances (128 MB of float64) per block
        chunk = max(1, (1 << 24) // max(len(ref), 1))
    out = np.empty(len(q), np.int64)
    for s in range(0, len(q), chunk):
        d = torch.cdist(torch.tensor(q[s : s + chunk], device=device), ref_t)
        out[s : s + chunk] = d.argmin(dim=1).cpu().numpy()
    # cdist's matrix-product shortcut loses digits: report the exact distance of each pair
    return out, np.linalg.norm(q - ref[out], axis=1)


def match_descriptors(
    desc_src,
    desc_tgt,
    *,
    parts_src: PartLabels | np.ndarray | None = None,
    parts_tgt: PartLabels | np.ndarray | None = None,
    same_part: bool = False,
    device=None,
    backend: Backend = "auto",
    chunk: int | None = None,
    source_name: str = "source",
    target_name: str = "target",
) -> VertexMap:
    """Match every source vertex to the target vertex with the nearest descriptor (L2).

    Parameters
    ----------
    desc_src : (V_src, L) float
        Source descriptors (numpy array or tensor).
    desc_tgt : (V_tgt, L) float
    parts_src, parts_tgt : PartLabels or (V,) int, optional
        Part labels, in the same part order (see :func:`~densemap.parts.match_parts`);
        needed for ``same_part``.
    same_part : bool
        Restrict each labelled source vertex to the target vertices of its part (one
        search per part); unlabelled source vertices (``-1``) match anywhere.
    device : str or torch.device, optional
        None (or a tensor's device if tensors are given) searches on the CPU with a
        KD-tree; a device runs chunked ``torch.cdist`` + argmin there.
    backend : {"auto", "kdtree", "torch"}
        "auto" = KD-tree on the CPU, torch on a device; "torch" forces ``torch.cdist``
        (also on the CPU, e.g. to compare the two paths).
    chunk : int, optional
        Source rows per ``cdist`` block (default: about 2**24 distances per block).

    Returns
    -------
    VertexMap
        ``distances`` holds the (unsquared) descriptor distance of each match.
    """
    check_choice("backend", backend, get_args(Backend))
    src, dev_s = _as_numpy(desc_src, "desc_src")
    tgt, dev_t = _as_numpy(desc_tgt, "desc_tgt")
    if src.shape[1] != tgt.shape[1]:
        raise ValueError(f"descriptors differ in length: {src.shape[1]} (source) vs {tgt.shape[1]} (target)")
    if len(tgt) == 0:
        raise ValueError("the target has no vertex to match")
    if device is None:
        device = dev_s if dev_s is not None else dev_t
    if backend == "auto":
        backend = "kdtree" if device is None or str(device) == "cpu" else "torch"
    if backend == "torch" and device is None:
        device = "cpu"

    def nn(q, ref):
        if backend == "kdtree":
            return _nn_kdtree(q, ref)
        return _nn_torch(q, ref, device, chunk)

    idx = np.empty(len(src), np.int64)
    dist = np.empty(len(src), np.float64)
    if not same_part:
        idx[:], dist[:] = nn(src, tgt)
    else:
        if parts_src is None or parts_tgt is None:
            raise ValueError("same_part=True needs parts_src and parts_tgt")
        ls = _labels(parts_src, len(src), "parts_src")
        lt = _labels(parts_tgt, len(tgt), "parts_tgt")
        for k in np.unique(ls):
            rows = np.flatnonzero(ls == k)
            cols = np.flatnonzero(lt == k) if k >= 0 else np.arange(len(tgt))
            if len(cols) == 0:  # a part missing from the target: match anywhere
                cols = np.arange(len(tgt))
            i, d = nn(src[rows], tgt[cols])
            idx[rows], dist[rows] = cols[i], d
    return VertexMap(idx, dist, source_name=source_name, target_name=target_name, n_target=len(tgt))


# ----------------------------------------------------------------------------- surface points
def surface_points(desc_src, desc_tgt, target: Mesh, indices, *, chunk: int = 100_000):
    """Refine vertex matches to points on the target surface.

    Among the faces around each matched target vertex (its one-ring), find the point
    whose linearly interpolated descriptor is nearest to the source descriptor.

    Parameters
    ----------
    desc_src : (V_src, L) float
    desc_tgt : (V_tgt, L) float
    target : Mesh
    indices : (V_src,) int
        Matched target vertex of each source vertex.

    Returns
    -------
    faces : (V_src,) int
        Face of each surface point; ``-1`` where the vertex has no face.
    bary : (V_src, 3) float
        Barycentric coordinates in that face (``[1, 0, 0]`` where ``faces == -1``).
    distances : (V_src,) float
        Descriptor distance at the surface point (never above the vertex's).
    """
    src, _ = _as_numpy(desc_src, "desc_src")
    tgt, _ = _as_numpy(desc_tgt, "desc_tgt")
    idx = np.asarray(indices, dtype=np.int64)
    F = target.faces
    inc = vertex_face_incidence(F, target.n_vertices)
    counts = np.diff(inc.indptr)[idx]
    n = len(idx)
    faces = -np.ones(n, np.int64)
    bary = np.tile([1.0, 0.0, 0.0], (n, 1))
    dist = np.linalg.norm(src - tgt[idx], axis=1)
    # process whole sources per block so that each source's faces stay together
    ends = np.cumsum(counts)
    s = 0
    while s < n:
        e = int(np.searchsorted(ends, (ends[s - 1] if s else 0) + chunk, side="right"))
        e = max(e, s + 1)
        rows = np.arange(s, e)
        cnt = counts[rows]
        rep = np.repeat(rows, cnt)
        if len(rep):
            start = np.repeat(inc.indptr[idx[rows]], cnt)
            off = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            fid = inc.indices[start + off]
            tri = F[fid]
            # descriptors are linear over each face: the closest point in descriptor space
            w, cost = closest_point_on_triangles(src[rep], tgt[tri[:, 0]], tgt[tri[:, 1]], tgt[tri[:, 2]])
            order = np.lexsort((cost, rep))
            first = order[np.r_[0, np.flatnonzero(np.diff(rep[order])) + 1]]
            who = rep[first]
            faces[who] = fid[first]
            bary[who] = w[first]
            dist[who] = np.sqrt(np.minimum(cost[first], dist[who] ** 2))
        s = e
    return faces, bary, dist


# ----------------------------------------------------------------------------- transfer
def transfer(values, vmap: VertexMap, *, surface: bool = False):
    """Carry per-vertex values from the target of a map back to its source vertices.

    Parameters
    ----------
    values : (V_tgt, ...) array
        Labels, colours ``(V_tgt, 3)``, scalars... on the target mesh.
    vmap : VertexMap
        A ``source_to_target`` map.
    surface : bool
        Interpolate float values barycentrically at the map's surface points (needs a
        map with surface points and corners). Integer and bool values always take the
        matched vertex's value.

    Returns
    -------
    (V_src, ...) array
        ``values[vmap.indices]`` (or the interpolated values).
    """
    is_tensor = type(values).__module__.startswith("torch")
    if vmap.n_target is not None and len(values) != vmap.n_target:
        raise ValueError(f"values has {len(values)} rows but the map's target has {vmap.n_target} vertices")
    if is_tensor:
        import torch

        idx = torch.as_tensor(vmap.indices, device=values.device)
        out = values[idx]
        if surface and values.is_floating_point():
            vals = transfer(values.detach().cpu().numpy(), vmap, surface=True)
            out = torch.as_tensor(vals, dtype=values.dtype, device=values.device)
        return out
    vals = np.asarray(values)
    if len(vmap) and vmap.indices.max() >= len(vals):
        raise ValueError(f"the map points at target vertex {int(vmap.indices.max())} but values has {len(vals)} rows")
    out = vals[vmap.indices]
    if surface and vals.dtype.kind in "fc":
        if not vmap.has_surface or vmap.corners is None:
            raise ValueError("surface=True needs a map with surface points (faces, bary and corners)")
        ok = vmap.faces >= 0
        w = vmap.bary[ok].reshape((-1, 3) + (1,) * (vals.ndim - 1))
        out = out.copy()
        out[ok] = (w * vals[vmap.corners[ok]]).sum(axis=1)
    return out


# ----------------------------------------------------------------------------- align
def shared_time_step(mesh_a: Mesh, mesh_b: Mesh, *, t_scale: float = 1.0, length_scale: LengthScale = "max") -> float:
    """One heat-method time step for both meshes: ``t_scale * h**2``.

    ``h`` is the larger of the two meshes' mean edge lengths (``"max"``: enough
    smoothing for the coarser mesh) or the mean edge length over both meshes' edges
    together (``"mean"``).
    """
    from .geodesics import length_scale as mean_edge

    check_choice("length_scale", length_scale, get_args(LengthScale))
    ha, hb = mean_edge(mesh_a), mean_edge(mesh_b)
    if length_scale == "max":
        h = max(ha, hb)
    else:
        na, nb = len(mesh_a.edges), len(mesh_b.edges)
        h = (ha * na + hb * nb) / max(na + nb, 1)
    return float(t_scale) * h * h


def align(
    mesh_a: Mesh,
    parts_a: PartLabels,
    mesh_b: Mesh,
    parts_b: PartLabels,
    *,
    descriptors: tuple | None = None,
    same_part: bool = True,
    refine: bool | RefineMethod = "zoomout",
    refine_options: dict | None = None,
    surface: bool = True,
    common_time_step: bool = True,
    t_scale: float = 1.0,
    length_scale: LengthScale = "max",
    device=None,
    progress: bool = False,
    **descriptor_options,
) -> Alignment:
    """Dense correspondence between two meshes labelled with the same parts.

    Parameters
    ----------
    mesh_a, mesh_b : Mesh
    parts_a, parts_b : PartLabels
        Same part names (any order; ``parts_b`` is renumbered to ``parts_a``'s order).
    descriptors : (desc_a (V_a, L), desc_b (V_b, L)), optional
        Precomputed descriptors, in ``parts_a``'s part order; skips computing them.
    same_part : bool
        Match (and refine) only within the same part (default; see docs/alignment.md
        for the measurements behind the defaults).
    refine : bool or "zoomout"
        Spectral refinement of both maps (:func:`densemap.refine.refine_maps`);
        True means "zoomout" (the default). ``refine_options`` go to it (k_init, k_final, ...).
    surface : bool
        Add surface points (:func:`surface_points`) to both maps.
    common_time_step : bool
        Compute both meshes' geodesics with one absolute heat time step
        ``t = t_scale * h**2`` (:func:`shared_time_step`), so that the descriptors
        smooth alike; False lets each mesh use its own default step.
    t_scale : float
    length_scale : {"max", "mean"}
    device : optional
        Where descriptors and matching run (None: CPU).
    progress : bool
        Print one line per stage.
    **descriptor_options
        Passed to :func:`densemap.descriptors.part_descriptors` (weighting, sources,
        normalize, seed, ...). ``sources`` defaults to ``DEFAULT_SOURCES`` (64 sampled
        sources per part: the same ground-truth error as all sources on the embedded
        pair, at a quarter of the time).

    Returns
    -------
    Alignment

    Raises
    ------
    PartError
        The two labellings name different parts or do not fit their meshes.
    """
    if refine is True:
        refine = "zoomout"
    if refine:
        check_choice("refine", refine, get_args(RefineMethod))
    check_choice("length_scale", length_scale, get_args(LengthScale))
    parts_a.check_mesh(mesh_a)
    parts_b = match_parts(parts_a, parts_b.check_mesh(mesh_b))
    if descriptors is None:
        check_connected(mesh_a)  # fail before any geodesic work
        check_connected(mesh_b)
    timings: dict[str, float] = {}
    options = {
        "same_part": same_part,
        "refine": refine or False,
        "refine_options": dict(refine_options or {}),
        "surface": surface,
        "common_time_step": common_time_step,
        "t_scale": t_scale,
        "length_scale": length_scale,
        "device": None if device is None else str(device),
        "descriptor_options": dict(descriptor_options),
        "descriptors_given": descriptors is not None,
    }

    def stage(name, t0):
        timings[name] = time.perf_counter() - t0
        if progress:
            print(f"densemap.align: {name} {timings[name]:.2f} s", flush=True)

    t0 = time.perf_counter()
    if descriptors is None:
        from .descriptors import part_descriptors

        opts = dict(descriptor_options)
        opts.setdefault("sources", DEFAULT_SOURCES)
        opts.setdefault("progress", progress)
        if common_time_step:
            opts["t"] = shared_time_step(mesh_a, mesh_b, t_scale=t_scale, length_scale=length_scale)
            options["t"] = opts["t"]
        desc_a = np.asarray(part_descriptors(mesh_a, parts_a, device=device, **opts), dtype=np.float64)
        desc_b = np.asarray(part_descriptors(mesh_b, parts_b, device=device, **opts), dtype=np.float64)
        stage("descriptors", t0)
    else:
        desc_a, _ = _as_numpy(descriptors[0], "desc_a")
        desc_b, _ = _as_numpy(descriptors[1], "desc_b")
    for d, m, w in ((desc_a, mesh_a, "desc_a"), (desc_b, mesh_b, "desc_b")):
        if len(d) != m.n_vertices:
            raise ValueError(f"{w} has {len(d)} rows but mesh {m.name!r} has {m.n_vertices} vertices")

    t0 = time.perf_counter()
    kw = dict(parts_src=parts_a, parts_tgt=parts_b, same_part=same_part, device=device)
    a_to_b = match_descriptors(desc_a, desc_b, source_name=mesh_a.name, target_name=mesh_b.name, **kw)
    kw.update(parts_src=parts_b, parts_tgt=parts_a)
    b_to_a = match_descriptors(desc_b, desc_a, source_name=mesh_b.name, target_name=mesh_a.name, **kw)
    stage("match", t0)

    if refine:
        from .refine import refine_maps

        t0 = time.perf_counter()
        ropts = dict(refine_options or {})
        ropts.setdefault("same_part", same_part)
        a_to_b, b_to_a = refine_maps(
            mesh_a, mesh_b, a_to_b, b_to_a, method=refine, parts_a=parts_a, parts_b=parts_b,
            desc_a=desc_a, desc_b=desc_b, **ropts,
        )
        stage("refine", t0)

    if surface:
        t0 = time.perf_counter()
        f, w, _ = surface_points(desc_a, desc_b, mesh_b, a_to_b.indices)
        a_to_b = a_to_b.with_surface(f, w, np.where(f[:, None] >= 0, mesh_b.faces[np.maximum(f, 0)], a_to_b.indices[:, None]))
        f, w, _ = surface_points(desc_b, desc_a, mesh_a, b_to_a.indices)
        b_to_a = b_to_a.with_surface(f, w, np.where(f[:, None] >= 0, mesh_a.faces[np.maximum(f, 0)], b_to_a.indices[:, None]))
        stage("surface", t0)

    metadata = {
        "mesh_a": {"name": mesh_a.name, "sha1": mesh_a.sha1, "n_vertices": mesh_a.n_vertices},
        "mesh_b": {"name": mesh_b.name, "sha1": mesh_b.sha1, "n_vertices": mesh_b.n_vertices},
        "versions": _versions(),
    }
    return Alignment(a_to_b, b_to_a, desc_a, desc_b, tuple(parts_a.names), parts_a, parts_b, options, timings, metadata)
