"""Vertex maps between two meshes and carrying values through them.

A map says its direction in its name: ``a_to_b.indices[i]`` is the B vertex for A
vertex ``i``, so ``values_on_a = values_on_b[a_to_b.indices]`` (:func:`transfer`).
A :class:`VertexMap` may also hold a surface point (face + barycentric coordinates) on
the target for every source vertex.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import numpy as np

from ..mesh import Mesh
from ..surface import surface_positions

__all__ = ["VertexMap", "transfer"]


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
    _: KW_ONLY
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
        """The same map with surface points ``(faces, bary)`` and their face ``corners``."""
        return VertexMap(self.indices, self.distances, faces=faces, bary=bary, corners=corners,
                         source_name=self.source_name, target_name=self.target_name, n_target=self.n_target)


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

    Examples
    --------
    >>> import numpy as np
    >>> src_to_tgt = VertexMap([2, 0, 0], np.zeros(3), n_target=3)
    >>> transfer(np.array([10, 20, 30]), src_to_tgt)
    array([30, 10, 10])
    """
    if vmap.n_target is not None and len(values) != vmap.n_target:
        raise ValueError(f"values has {len(values)} rows but the map's target has {vmap.n_target} vertices")
    if len(vmap) and vmap.indices.max() >= len(values):
        raise ValueError(f"the map points at target vertex {int(vmap.indices.max())} but values has {len(values)} rows")
    if type(values).__module__.startswith("torch"):
        return _transfer_tensor(values, vmap, surface)
    vals = np.asarray(values)
    out = vals[vmap.indices]
    if surface and vals.dtype.kind in "fc":
        ok, w, corners = _surface_weights(vmap, vals.ndim)
        out = out.copy()
        out[ok] = (w * vals[corners]).sum(axis=1)
    return out


def _surface_weights(vmap: VertexMap, ndim: int):
    """Rows with a surface point, their (n, 3, 1...) barycentric weights and (n, 3) corners."""
    if not vmap.has_surface or vmap.corners is None:
        raise ValueError("surface=True needs a map with surface points (faces, bary and corners)")
    ok = vmap.faces >= 0
    return ok, vmap.bary[ok].reshape((-1, 3) + (1,) * (ndim - 1)), vmap.corners[ok]


def _transfer_tensor(values, vmap: VertexMap, surface: bool):
    """:func:`transfer` of a torch tensor, on its device, for every float dtype (bfloat16 has no
    numpy twin); the interpolation runs in at least float32 and is cast back."""
    import torch

    dev = values.device
    out = values[torch.tensor(vmap.indices, device=dev)]  # a copy: the map's arrays are read-only
    if surface and values.is_floating_point():
        ok, w, corners = _surface_weights(vmap, values.ndim)
        dt = torch.promote_types(values.dtype, torch.float32)
        w = torch.as_tensor(w, dtype=dt, device=dev)
        hit = (w * values[torch.as_tensor(corners, device=dev)].to(dt)).sum(dim=1)
        out = out.clone()
        out[torch.as_tensor(ok, device=dev)] = hit.to(values.dtype)
    return out
