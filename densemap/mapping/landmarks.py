"""Landmark pairs between two meshes, and the per-vertex features they give.

A landmark file pairs points a user clicked on a reference mesh and on a new one:
``{"pairs": [[ref_vertex, new_vertex], ...]}``, or ``{"points": [[[x, y, z], [x, y, z]],
...]}`` (snapped to the nearest vertex of each mesh). :func:`load_landmarks` reads and
checks either; :func:`save_landmarks` writes the first form.

:func:`landmark_features` describes every vertex by its geodesic distances to the
landmarks (the heat method of :class:`densemap.geodesics.GeodesicSolver`, as for the
part descriptors) in two ways that both survive changes of proportion:

* how near each landmark is, as a soft assignment ``softmax(-d_k / (tau sqrt(area)))``
  (square-rooted, so that Euclidean distances compare like Hellinger distances);
* on which side of the surface the vertex sees a pair of nearby landmarks: the sine of
  the signed angle between the directions (geodesic gradients) towards landmarks ``i``
  and ``j``, ``(grad d_i x grad d_j) . n``, weighted by a wider nearness
  ``sqrt(r_i r_j)`` (``r`` the softmax at ``orientation_tau``). Distances alone are blind
  to mirror images (the palm and the back of a hand, the front and back of a limb are at
  the same distances from the fingertips); the sign of this angle is not.

On the embedded pair with 20 landmarks (``benchmarks/transfer_parts.py``), the nearest
part by these features agrees with the true parts on 72% of the area with distances
only, 83% with the orientation terms weighted by the narrow nearness, and 86% with the
wider one (``orientation_tau = 0.3``, ``orientation = 2``).

Two meshes get comparable features when the same landmark pairs are used on both
(:func:`landmark_pairs`), and the features then give a correspondence by nearest
neighbour, or per-part costs (:func:`part_costs`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ..errors import DensemapError
from ..mesh import Mesh

__all__ = ["Landmarks", "load_landmarks", "save_landmarks", "landmark_pairs", "vertex_directions",
           "landmark_features", "paired_landmark_features", "part_costs", "normalise_costs", "landmarks_from_ground_truth"]

MIN_LANDMARKS = 3


@dataclass(frozen=True)
class Landmarks:
    """Matched vertices: ``ref[k]`` on the reference mesh is ``new[k]`` on the new mesh."""

    ref: np.ndarray
    new: np.ndarray
    source: str = "landmarks"

    def __len__(self) -> int:
        return len(self.ref)


def _snap(points, mesh: Mesh) -> np.ndarray:
    from scipy.spatial import cKDTree

    return cKDTree(mesh.vertices).query(np.asarray(points, dtype=np.float64))[1].astype(np.int64)


def _bad(path, msg: str) -> DensemapError:
    return DensemapError(f"{path}: {msg}")


def load_landmarks(path: str | os.PathLike, ref_mesh: Mesh, new_mesh: Mesh) -> Landmarks:
    """Read a landmark file (``pairs`` of vertex ids, or ``points`` snapped to the meshes).

    Parameters
    ----------
    path : path-like
        JSON ``{"pairs": [[ref, new], ...]}`` or ``{"points": [[[x, y, z], [x, y, z]], ...]}``.
    ref_mesh, new_mesh : Mesh

    Returns
    -------
    Landmarks

    Raises
    ------
    DensemapError
        Unreadable file, neither key, a malformed entry (named by index), a vertex id out
        of range, fewer than 3 pairs, or one vertex used twice on a side.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> from densemap.data import reference
    >>> h, c = reference("human").mesh, reference("chimp").mesh
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "l.json"
    >>> _ = p.write_text(json.dumps({"pairs": [[0, 5], [100, 200], [3000, 4000]]}))
    >>> load_landmarks(p, h, c).new.tolist()
    [5, 200, 4000]
    """
    from .._paths import read_json

    path = Path(path)
    data = read_json(path, what="landmark file", error=DensemapError)
    if not isinstance(data, dict) or not ({"pairs", "points"} & set(data)):
        raise _bad(path, 'expected {"pairs": [[ref_vertex, new_vertex], ...]} or {"points": [[[x, y, z], [x, y, z]], ...]}')
    if "pairs" in data:
        ref, new = _read_pairs(path, data["pairs"], ref_mesh, new_mesh)
    else:
        ref, new = _read_points(path, data["points"], ref_mesh, new_mesh)
    if len(ref) < MIN_LANDMARKS:
        raise _bad(path, f"{len(ref)} landmark pairs; need at least {MIN_LANDMARKS} (10-40 work well)")
    for side, ids in (("reference", ref), ("new", new)):
        u, c = np.unique(ids, return_counts=True)
        if (c > 1).any():
            k = int(np.flatnonzero(ids == u[np.argmax(c > 1)])[1])
            raise _bad(path, f"landmark {k} uses {side} vertex {int(ids[k])} again; each vertex may be used once")
    return Landmarks(ref, new, source=str(path))


def _read_pairs(path, pairs, ref_mesh: Mesh, new_mesh: Mesh):
    if not isinstance(pairs, list):
        raise _bad(path, f"'pairs' must be a list of [ref_vertex, new_vertex], got {type(pairs).__name__}")
    out = []
    for k, p in enumerate(pairs):
        if (not isinstance(p, (list, tuple)) or len(p) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in p)):
            raise _bad(path, f"pairs[{k}] = {json.dumps(p)[:60]} is not a pair of integer vertex ids")
        for x, mesh, side in ((p[0], ref_mesh, "reference"), (p[1], new_mesh, "new")):
            if not 0 <= x < mesh.n_vertices:
                raise _bad(path, f"pairs[{k}]: {side} vertex {x} is out of range 0..{mesh.n_vertices - 1} ({mesh.name})")
        out.append(p)
    a = np.asarray(out, dtype=np.int64).reshape(-1, 2)
    return a[:, 0], a[:, 1]


def _read_points(path, points, ref_mesh: Mesh, new_mesh: Mesh):
    if not isinstance(points, list):
        raise _bad(path, f"'points' must be a list of [[x, y, z], [x, y, z]], got {type(points).__name__}")
    for k, p in enumerate(points):
        ok = isinstance(p, (list, tuple)) and len(p) == 2 and all(
            isinstance(q, (list, tuple)) and len(q) == 3
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) for x in q) for q in p)
        if not ok:
            raise _bad(path, f"points[{k}] = {json.dumps(p)[:60]} is not a pair of finite [x, y, z] points")
    a = np.asarray(points, dtype=np.float64).reshape(-1, 2, 3)
    return _snap(a[:, 0], ref_mesh), _snap(a[:, 1], new_mesh)


def save_landmarks(landmarks: Landmarks, path: str | os.PathLike) -> Path:
    """Write ``{"pairs": [[ref, new], ...]}`` (atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"pairs": np.c_[landmarks.ref, landmarks.new].tolist()}) + "\n")
    return path


def landmark_pairs(distances: np.ndarray, k: int = 8) -> np.ndarray:
    """(P, 2) int: pairs of landmarks among each other's ``k`` nearest (from (K, K) distances)."""
    K = len(distances)
    d = np.asarray(distances, dtype=np.float64) + np.diag(np.full(K, np.inf))
    nearest = np.argsort(d, axis=1)[:, : min(k, K - 1)]
    pairs = {(min(i, j), max(i, j)) for i in range(K) for j in nearest[i].tolist()}
    return np.asarray(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def vertex_directions(mesh: Mesh, fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit tangent directions of the gradients of per-vertex fields, and vertex normals.

    Per face, the gradient of the linear interpolant; per vertex, the area-weighted
    mean of its faces', projected onto the vertex's tangent plane and normalised.

    Parameters
    ----------
    mesh : Mesh
    fields : (V, K) float

    Returns
    -------
    directions : (V, 3, K) float
    normals : (V, 3) float
        Area-weighted vertex normals (the faces' winding decides their side).
    """
    v, f = mesh.vertices, mesh.faces
    p = v[f]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    a2 = np.maximum(np.linalg.norm(n, axis=1), 1e-300)
    nu = n / a2[:, None]
    g = np.zeros((len(f), 3, fields.shape[1]))
    for k in range(3):
        e = p[:, (k + 2) % 3] - p[:, (k + 1) % 3]  # edge opposite corner k
        g += (np.cross(nu, e) / a2[:, None])[:, :, None] * fields[f[:, k]][:, None, :]
    g *= (0.5 * a2)[:, None, None]
    vg = np.zeros((mesh.n_vertices, 3, fields.shape[1]))
    for k in range(3):
        np.add.at(vg, f[:, k], g)
    vn = np.zeros((mesh.n_vertices, 3))
    for k in range(3):
        np.add.at(vn, f[:, k], n)
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-300)
    vg -= vn[:, :, None] * np.einsum("vi,vik->vk", vn, vg)[:, None, :]
    vg /= np.maximum(np.linalg.norm(vg, axis=1, keepdims=True), 1e-300)
    return vg, vn


def _nearness(D: np.ndarray, mesh: Mesh, tau: float) -> np.ndarray:
    """(V, K) softmax of ``-D / (tau sqrt(area))`` over the landmarks."""
    x = -D / (tau * np.sqrt(mesh.area))
    x -= x.max(axis=1, keepdims=True)
    q = np.exp(x)
    return q / q.sum(axis=1, keepdims=True)


def landmark_features(mesh: Mesh, vertices, *, solver=None, pairs=None, tau: float = 0.05,
                      orientation: float = 2.0, orientation_tau: float = 0.3) -> np.ndarray:
    """(V, K + P) features of every vertex from K landmark vertices (see the module docstring).

    Parameters
    ----------
    mesh : Mesh
    vertices : (K,) int
        The landmark vertices.
    solver : GeodesicSolver, optional
        A prefactored solver of ``mesh`` to reuse.
    pairs : (P, 2) int, optional
        Landmark pairs for the orientation terms (default: :func:`landmark_pairs` of this
        mesh's landmark distances; give the same pairs to both meshes).
    tau : float
        Softness of the nearness, as a fraction of ``sqrt(area)``.
    orientation : float
        Weight of the orientation terms (0 = distances only).
    orientation_tau : float
        Softness of the nearness that weighs each orientation term.

    Returns
    -------
    (V, K + P) float
        ``sqrt(softmax)`` nearness, then ``orientation * sqrt(r_i r_j) * sin(angle_ij)``.

    Examples
    --------
    The features of a landmark are nearest to its own:

    >>> import numpy as np
    >>> from densemap.data import reference
    >>> mesh = reference("chimp").mesh
    >>> f = landmark_features(mesh, [10, 2000, 5000])
    >>> f.shape, int(np.argmax(f[2000, :3]))
    ((7049, 6), 1)
    """
    vertices = np.asarray(vertices, dtype=np.int64)
    D = _landmark_distances(mesh, vertices, solver)
    pairs = landmark_pairs(D[vertices]) if pairs is None else pairs
    return _features(mesh, vertices, D, pairs, tau=tau, orientation=orientation, orientation_tau=orientation_tau)


def paired_landmark_features(ref_mesh: Mesh, new_mesh: Mesh, landmarks: Landmarks, *, solver_ref=None, solver_new=None,
                             **options) -> tuple[np.ndarray, np.ndarray]:
    """:func:`landmark_features` of both meshes, comparable: the orientation terms of both
    use the pairs of :func:`landmark_pairs` from the reference's landmark distances.

    ``options`` (``tau``, ``orientation``, ``orientation_tau``) go to both meshes' features.

    Returns
    -------
    (V_ref, F) and (V_new, F) float
    """
    ref = np.asarray(landmarks.ref, dtype=np.int64)
    D = _landmark_distances(ref_mesh, ref, solver_ref)
    pairs = landmark_pairs(D[ref].T)  # row k: the distances from landmark k
    return (_features(ref_mesh, ref, D, pairs, **options),
            landmark_features(new_mesh, landmarks.new, solver=solver_new, pairs=pairs, **options))


def _landmark_distances(mesh: Mesh, vertices: np.ndarray, solver) -> np.ndarray:
    """(V, K) geodesic distances from each landmark vertex."""
    from ..geodesics import GeodesicSolver

    solver = GeodesicSolver(mesh) if solver is None else solver
    return np.asarray(solver.distances(vertices), dtype=np.float64).T


def _features(mesh: Mesh, vertices: np.ndarray, D: np.ndarray, pairs, *, tau: float = 0.05, orientation: float = 2.0,
              orientation_tau: float = 0.3) -> np.ndarray:
    """:func:`landmark_features` from the landmarks' (V, K) distances ``D``."""
    q = _nearness(D, mesh, tau)
    if not orientation:
        return np.sqrt(q)
    pairs = np.asarray(pairs, dtype=np.int64)
    g, n = vertex_directions(mesh, D)
    i, j = pairs[:, 0], pairs[:, 1]
    sin = np.einsum("vpd,vd->vp", np.cross(g[:, :, i].transpose(0, 2, 1), g[:, :, j].transpose(0, 2, 1)), n)
    # at a landmark its own distance has no gradient (the faces' gradients cancel): no side to tell
    sin[vertices[i], np.arange(len(pairs))] = 0.0
    sin[vertices[j], np.arange(len(pairs))] = 0.0
    r = _nearness(D, mesh, orientation_tau)
    return np.hstack([np.sqrt(q), orientation * np.sqrt(r[:, i] * r[:, j]) * sin])


def part_costs(features_new: np.ndarray, features_ref: np.ndarray, ref_labels: np.ndarray, n_parts: int, *,
               chunk: int = 512) -> np.ndarray:
    """(V_new, L): distance from each new vertex's features to the nearest reference vertex of each part.

    Dense distances in float64 blocks (torch ``cdist``; float32 would let a neighbour a hair
    away in feature space beat a vertex's own exact match), reduced per part.
    """
    import torch

    lab = np.asarray(ref_labels, dtype=np.int64)
    keep = lab >= 0
    order = np.flatnonzero(keep)[np.argsort(lab[keep], kind="stable")]
    counts = np.bincount(lab[keep], minlength=n_parts)
    if (counts == 0).any():
        raise ValueError(f"reference part {int(np.flatnonzero(counts == 0)[0])} has no vertex")
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    ref = torch.as_tensor(np.ascontiguousarray(features_ref[order]), dtype=torch.float64)
    out = np.empty((len(features_new), n_parts))
    for s in range(0, len(features_new), chunk):
        q = torch.as_tensor(np.ascontiguousarray(features_new[s : s + chunk]), dtype=torch.float64)
        out[s : s + chunk] = np.minimum.reduceat(torch.cdist(q, ref).numpy(), starts, axis=1)
    return out


def normalise_costs(costs: np.ndarray) -> np.ndarray:
    """Costs minus each row's minimum, over the median gap between the best and second-best part."""
    c = np.asarray(costs, dtype=np.float64)
    c = c - c.min(axis=1, keepdims=True)
    gap = float(np.median(np.partition(c, 1, axis=1)[:, 1])) if c.shape[1] > 1 else 1.0
    return c / max(gap, 1e-12)


def landmarks_from_ground_truth(new_mesh: Mesh, ref_faces, face, bary, n: int, *, noise: float = 0.0, seed: int = 0,
                                ref_n_vertices: int | None = None, start: int | None = None) -> Landmarks:
    """``n`` landmark pairs taken from a known correspondence, optionally with clicking noise.

    The new mesh's landmarks are spread by farthest-point sampling (Euclidean, from the
    highest vertex or ``start``); each one's reference vertex is the corner of largest weight of its
    true surface point ``(face, bary)`` on the reference. With ``noise > 0`` every new
    landmark is moved by ``noise`` (mesh units) in a random tangent direction and
    snapped to the nearest vertex, as a user's imprecise click would be.

    Parameters
    ----------
    new_mesh : Mesh
    ref_faces : (F_ref, 3) int
        The reference mesh's faces.
    face : (V_new,) int
    bary : (V_new, 3) float
        True reference surface point of each new vertex
        (e.g. :func:`densemap.data.chimp_to_human_ground_truth`).
    n : int
    noise : float
    seed : int
        Of the noise.
    start : int, optional
        The first landmark (default: the highest vertex, the top of the head); another
        start gives another well-spread set.

    Returns
    -------
    Landmarks
    """
    from scipy.spatial import cKDTree

    x = new_mesh.vertices
    picked = [int(np.argmax(x[:, 1])) if start is None else int(start)]
    d = np.linalg.norm(x - x[picked[0]], axis=1)
    for _ in range(int(n) - 1):
        picked.append(int(np.argmax(d)))
        d = np.minimum(d, np.linalg.norm(x - x[picked[-1]], axis=1))
    new = np.asarray(picked, dtype=np.int64)
    ref = np.asarray(ref_faces)[np.asarray(face)[new], np.argmax(np.asarray(bary)[new], axis=1)]
    if noise > 0:
        rng = np.random.default_rng(seed)
        nrm = np.zeros((new_mesh.n_vertices, 3))
        p = x[new_mesh.faces]
        fn = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        for k in range(3):
            np.add.at(nrm, new_mesh.faces[:, k], fn)
        nv = nrm[new] / np.maximum(np.linalg.norm(nrm[new], axis=1, keepdims=True), 1e-300)
        r = rng.standard_normal((len(new), 3))
        r -= (r * nv).sum(1, keepdims=True) * nv
        r /= np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-300)
        moved = cKDTree(x).query(x[new] + noise * r)[1].astype(np.int64)
        for k in range(len(new)):  # each vertex once: a click landing on a taken vertex stays put
            if moved[k] not in np.delete(new, k):
                new[k] = moved[k]
    return Landmarks(ref, new, source=f"{n} ground-truth landmarks" + (f", noise {noise:g}" if noise else ""))
