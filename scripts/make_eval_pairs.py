#!/usr/bin/env python
"""Build the evaluation pairs of ``benchmarks/alignment_accuracy.py``: the embedded human
against posed, re-proportioned, remeshed copies of itself, with exact ground truth.

    pip install pymeshlab                          # dev-only remesher (as for the reference meshes)
    python scripts/make_eval_pairs.py              # builds every pair into the cache, prints a summary
    python scripts/make_eval_pairs.py --pair asym6k --force

Each pair is mesh A = the embedded human (its 32 parts) and a mesh B made from it:

* ``asym6k`` — an asymmetric pose (right arm reaching forward, left arm lifted a little,
  head and neck turned 45 degrees to the left, trunk twisted), arms 1.5x as long and
  legs 0.7x (upper and lower segments scaled along their bone axes, not inherited),
  then an *irregular anisotropic* remesh: isotropic remeshing of the mesh stretched 1.8x
  along its height (so the triangles come back squashed 1.8:1), with curvature-adaptive
  edge lengths, at ~6k vertices, then every vertex jittered in its tangent plane by up
  to 0.3 of its mean edge length and projected back onto the posed surface.
* ``fine50k`` — another pose (arms abducted, left hip and knee flexed, head tilted), the
  human's proportions, and a fine remesh at ~50k vertices with a *different density
  pattern*: the body below the chest twice as dense (in edge length) as above it, the
  opposite of the human's dense face and hands.

Posing uses the embedded 19-joint rig (``densemap.synth.rig``) by linear-blend
skinning, which keeps the human's connectivity, so every point of the posed surface is
a (face, barycentric) point of the rest human. The ground truth of a B vertex is its
exact closest point on the posed human (point-triangle projection, as in
``scripts/make_reference_meshes.py``); the remesher re-projects its vertices onto its
input and the jitter is projected back, so the distances are ~0.

Labels of B (what a user would give): ``clean`` — the human part of the dominant corner
of each vertex's ground-truth point, cleaned (2 passes of majority smoothing, one
patch per part); ``noisy`` — the clean labels with every part boundary moved by 0-3
rings (a smooth random field along the boundary says how far and which way) and 24
small islands (1-ring patches) of a neighbouring part (:func:`noisy_draw` makes further draws of it); ``coarse`` — the 32 parts merged
into 5 (trunk with head and neck, two arms with hands, two legs with feet), on both
meshes. :func:`coarse_labels` does the merge for any pair, the embedded chimp included.

Pairs are cached (``$DENSEMAP_CACHE`` or ``~/.cache/densemap``, sub-folder
``eval_pairs``), keyed by the pair's recipe, so they are built once per machine; they
are not committed (the 50k pair is ~5 MB). Deterministic (fixed seeds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from make_reference_meshes import (closest_point_on_mesh, enforce_connected, majority_smooth,  # noqa: E402
                                   vertex_adjacency, vertex_normals)

RECIPE_VERSION = 1
PAIRS = ("asym6k", "fine50k")

COARSE = {
    "trunk_head": ["face", "head_back", "neck", "chest", "belly", "upper_back", "lower_back", "pelvis"],
    **{f"arm_{s}": [f"{p}_{s}" for p in ("upper_arm_front", "upper_arm_back", "lower_arm_front", "lower_arm_back",
                                          "hand_palm", "hand_back")] for s in ("left", "right")},
    **{f"leg_{s}": [f"{p}_{s}" for p in ("upper_leg_front", "upper_leg_back", "lower_leg_front", "lower_leg_back",
                                          "foot_top", "foot_sole")] for s in ("left", "right")},
}

# (flex, twist, abduct) degrees per joint; see densemap.synth.rig for the conventions
POSES = {
    "asym6k": {"shoulder_right": (85, 0, 10), "elbow_right": (15, 0, 0), "shoulder_left": (10, 0, 25),
               "elbow_left": (30, 0, 0), "neck": (0, 20, 0), "head": (5, 25, 0), "chest": (0, 10, 0),
               "hip_left": (10, 0, 5), "knee_left": (-15, 0, 0)},
    "fine50k": {"shoulder_left": (0, 0, 45), "shoulder_right": (20, 0, 35), "elbow_right": (40, 0, 0),
                "hip_left": (35, 0, 5), "knee_left": (-50, 0, 0), "head": (-10, 0, 8), "spine": (8, 0, 0)},
}
SCALES = {"asym6k": {"shoulder": 1.5, "elbow": 1.5, "hip": 0.7, "knee": 0.7}, "fine50k": {}}


def coarse_labels(parts):
    """The 32-part labels merged into the 5 coarse parts of :data:`COARSE` (a PartLabels)."""
    from densemap.parts import PartLabels

    names = list(COARSE)
    table = np.full(parts.n_parts, -1, np.int64)
    for k, members in enumerate(COARSE.values()):
        for m in members:
            table[list(parts.names).index(m)] = k
    lab = np.where(parts.labels >= 0, table[np.maximum(parts.labels, 0)], -1)
    return PartLabels(lab, tuple(names), source=f"{parts.source} (coarse)")


def scaled_pose(rig, angles: dict, scales: dict, vertices):
    """Linear-blend skinning with per-segment scales along the bone axes (not inherited).

    ``G_j = Rw_j S_j`` with ``Rw_j = Rw_parent R_j`` and ``S_j`` a stretch by ``scales[kind]``
    along joint j's twist axis; each joint goes where its parent's transform puts it.
    """
    from densemap.synth.rig import joint_rotations

    ang = np.zeros((rig.n_joints, 3))
    for name, a in angles.items():
        ang[rig.index(name)] = a
    R = joint_rotations(rig, ang)
    J = rig.n_joints
    G, Rw, t = np.empty((J, 3, 3)), np.empty((J, 3, 3)), np.empty((J, 3))
    P = rig.joints
    for j in range(J):
        kind = rig.names[j].rsplit("_", 1)[0]
        a = rig.axes[j][:, 1]
        S = np.eye(3) + (scales.get(kind, 1.0) - 1.0) * np.outer(a, a)
        p = rig.parents[j]
        Rw[j] = R[j] if p < 0 else Rw[p] @ R[j]
        G[j] = Rw[j] @ S
        pj = P[j] if p < 0 else G[p] @ P[j] + t[p]
        t[j] = pj - G[j] @ P[j]
    M = rig.sparse_weights @ np.concatenate([G.reshape(-1, 9), t], 1)
    return np.einsum("vij,vj->vi", M[:, :9].reshape(-1, 3, 3), vertices) + M[:, 9:]


def remesh(V, F, target_len, *, iterations=12, adaptive=False, select=None, select_len=None):
    """pymeshlab isotropic explicit remeshing; optionally a second pass on the faces whose
    centroid satisfies ``select`` at ``select_len``."""
    import pymeshlab  # dev-only

    ms = pymeshlab.MeshSet()
    ms.add_mesh(pymeshlab.Mesh(vertex_matrix=np.ascontiguousarray(V, dtype=np.float64),
                               face_matrix=np.ascontiguousarray(F, dtype=np.int32)))
    ms.meshing_isotropic_explicit_remeshing(iterations=iterations, targetlen=pymeshlab.PureValue(target_len),
                                            featuredeg=180, adaptive=adaptive)
    if select is not None:
        m = ms.current_mesh()
        c = m.vertex_matrix()[m.face_matrix()].mean(1)
        ms.add_mesh(pymeshlab.Mesh(vertex_matrix=m.vertex_matrix(), face_matrix=m.face_matrix(),
                                   f_scalar_array=select(c).astype(np.float64)))
        ms.compute_selection_by_condition_per_face(condselect="fq > 0.5")
        ms.meshing_isotropic_explicit_remeshing(iterations=iterations, targetlen=pymeshlab.PureValue(select_len),
                                                featuredeg=180, adaptive=False, selectedonly=True)
    m = ms.current_mesh()
    return m.vertex_matrix().astype(np.float64), m.face_matrix().astype(np.int64)


def _clean(V, F):
    """Drop unreferenced vertices; keep the largest component."""
    from scipy.sparse.csgraph import connected_components

    n = len(V)
    A = vertex_adjacency(F, n)
    _, cc = connected_components(A, directed=False)
    big = np.bincount(cc[np.unique(F)]).argmax()
    keepf = cc[F[:, 0]] == big
    F = F[keepf]
    used = np.unique(F)
    remap = -np.ones(n, np.int64)
    remap[used] = np.arange(len(used))
    return V[used], remap[F]


def jitter_on_surface(V, F, posed, faces, amount, rng):
    """Move every vertex in its tangent plane by up to ``amount`` of its mean edge length,
    back onto the posed surface; a vertex whose move flips a face stays put."""
    from densemap.mesh import Mesh

    m = Mesh(V, F)
    n = vertex_normals(V, F)
    e = m.edges
    lens = np.bincount(e.ravel(), weights=np.repeat(m.edge_lengths, 2), minlength=len(V))
    deg = np.bincount(e.ravel(), minlength=len(V))
    h = lens / np.maximum(deg, 1)
    d = rng.normal(size=V.shape)
    d -= (d * n).sum(1, keepdims=True) * n
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    W = V + d * (amount * h * rng.uniform(0, 1, len(V)))[:, None]
    W = closest_point_on_mesh(posed, faces, W)[2]

    def normals(X):
        nn = np.cross(X[F[:, 1]] - X[F[:, 0]], X[F[:, 2]] - X[F[:, 0]])
        return nn / np.maximum(np.linalg.norm(nn, axis=1, keepdims=True), 1e-300)

    n0 = normals(V)
    for _ in range(10):  # undo moves around faces that flipped or degenerated
        bad = ((normals(W) * n0).sum(1) < 0.3)
        if not bad.any():
            break
        undo = np.unique(F[bad])
        W[undo] = V[undo]
    return W


def boundary_noise(lab, A, rng, positions, *, max_rings=2, islands=24):
    """Move part boundaries by 0..max_rings rings (a smooth random field says how far, and
    which side wins) and add small islands of a neighbouring part; a part never loses more
    than a third of its vertices (its losses are undone)."""
    n = len(lab)
    # smooth random field in [-1, 1]: random Gaussian bumps over the body
    cen = positions[rng.choice(n, 40, replace=False)]
    amp = rng.uniform(-1, 1, 40)
    r2 = ((positions[:, None, :] - cen[None]) ** 2).sum(-1)
    field = np.tanh(2 * (np.exp(-r2 / (2 * 1.5**2)) * amp).sum(1))
    rings = np.rint(np.abs(field) * max_rings).astype(int)
    out = lab.copy()
    Ab = (A > 0).astype(np.int8).tocsr()
    for r in range(1, max_rings + 1):
        # a vertex with rings >= r takes the label of a neighbour in another part when the
        # field says that part wins here (sign of the field vs the order of the two labels)
        new = out.copy()
        indptr, ind = Ab.indptr, Ab.indices
        for v in np.flatnonzero(rings >= r):
            nb = ind[indptr[v]:indptr[v + 1]]
            other = out[nb][out[nb] != out[v]]
            if len(other) == 0:
                continue
            q = int(np.bincount(other).argmax())
            if (field[v] > 0) == (q > out[v]):
                new[v] = q
        out = new
    for v in rng.choice(n, islands, replace=False):
        nb = np.r_[v, Ab.indices[Ab.indptr[v]:Ab.indptr[v + 1]]]
        ring2 = np.unique(np.concatenate([Ab.indices[Ab.indptr[u]:Ab.indptr[u + 1]] for u in nb]))
        cand = np.unique(out[ring2][out[ring2] != out[v]])
        q = int(rng.choice(cand)) if len(cand) else int(rng.integers(lab.max() + 1))
        out[nb] = q
    for k in range(lab.max() + 1):
        lost = (lab == k) & (out != k)
        if (out == k).sum() < 2 / 3 * (lab == k).sum():
            out[lost] = k
    return out


def noise_rings(n_vertices: int) -> int:
    """How many rings the ``noisy`` recipe moves boundaries by, at most, on a mesh of this size."""
    return 2 if n_vertices < 20000 else 3


def noisy_draw(mesh, clean, seed: int):
    """Another draw of the ``noisy`` recipe: ``clean`` (PartLabels of ``mesh``) with its
    boundaries moved and islands added, from ``numpy.random.default_rng(100 + seed)``.

    The stored ``noisy`` labels are one draw; the noisy-label cost depends on the draw by
    more than the 10 % target (docs/alignment.md), so it is measured over several.
    """
    from densemap.parts import PartLabels

    A = vertex_adjacency(mesh.faces, mesh.n_vertices, self_loops=True)
    out = boundary_noise(clean.labels.astype(np.int64), A, np.random.default_rng(100 + int(seed)), mesh.vertices,
                         max_rings=noise_rings(mesh.n_vertices))
    return PartLabels(out, clean.names, source=f"{mesh.name} noisy labels, draw {seed}")


def build_pair(name: str, *, verbose=True):
    """Build pair ``name``: dict of B's vertices, faces, ground truth and labels."""
    from densemap.data import reference
    from densemap.synth.rig import load_rig

    t0 = time.perf_counter()
    human = reference("human")
    rig = load_rig("human")
    rng = np.random.default_rng({"asym6k": 61, "fine50k": 50}[name])
    posed = scaled_pose(rig, POSES[name], SCALES[name], human.mesh.vertices)
    hf = human.mesh.faces
    if name == "asym6k":
        stretch = np.array([1.0, 1.8, 1.0])
        V, F = remesh(posed * stretch, hf, 0.21, adaptive=True)
        V, F = _clean(V / stretch, F)
        V = jitter_on_surface(V, F, posed, hf, 0.3, rng)
    else:
        chest_y = rig.joints[rig.index("chest")][1]
        V, F = remesh(posed, hf, 0.085, select=lambda c: c[:, 1] < chest_y, select_len=0.045)
        V, F = _clean(V, F)
    gface, gbary, _, gdist = closest_point_on_mesh(posed, hf, V)
    corner = hf[gface, np.argmax(gbary, 1)]
    A = vertex_adjacency(F, len(V), self_loops=True)
    clean = majority_smooth(human.parts.labels[corner].astype(np.int64), A, 32, passes=2)
    clean = enforce_connected(clean, A, 32)
    noisy = boundary_noise(clean, A, rng, V, max_rings=noise_rings(len(V)))
    if verbose:
        print(f"{name}: {len(V)} vertices, {len(F)} faces, ground-truth distance max {gdist.max():.2e} dm, "
              f"{(noisy != clean).mean():.1%} labels changed by the noise, {time.perf_counter() - t0:.0f} s", flush=True)
    return {"vertices": V, "faces": F, "gt_face": gface, "gt_bary": gbary, "gt_dist": gdist,
            "parts_clean": clean.astype(np.int16), "parts_noisy": noisy.astype(np.int16)}


def _key(name):
    from densemap.data import reference

    return {"pair": name, "recipe": RECIPE_VERSION, "human": reference("human").mesh.sha1}


def load_pair(name: str, *, force=False, verbose=True):
    """(mesh_b, {"clean": PartLabels, "noisy": PartLabels}, (gt_face, gt_bary)) of pair ``name``, built if needed."""
    from densemap._cache import load_arrays, save_arrays
    from densemap.data import part_names
    from densemap.mesh import Mesh
    from densemap.parts import PartLabels

    if name not in PAIRS:
        raise SystemExit(f"unknown pair {name!r}; expected one of {list(PAIRS)}")
    data = None if force else load_arrays("eval_pairs", _key(name))
    if data is None:
        data = build_pair(name, verbose=verbose)
        save_arrays("eval_pairs", _key(name), data)
    mesh = Mesh(data["vertices"], data["faces"], name=name)
    labels = {k: PartLabels(data[f"parts_{k}"].astype(np.int64), part_names(), source=f"{name} {k} parts")
              for k in ("clean", "noisy")}
    return mesh, labels, (data["gt_face"].astype(np.int64), data["gt_bary"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pair", choices=PAIRS, action="append", help="build only these (default: all)")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = ap.parse_args(argv)
    for name in args.pair or PAIRS:
        mesh, labels, (gf, gb) = load_pair(name, force=args.force)
        print(f"{name}: V={mesh.n_vertices} F={mesh.n_faces} area={mesh.area:.1f} dm^2, parts "
              f"{len(np.unique(labels['clean'].labels))} clean / {len(np.unique(labels['noisy'].labels))} noisy")


if __name__ == "__main__":
    main()
