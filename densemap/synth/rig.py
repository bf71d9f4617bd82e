"""Posing the reference meshes: a 19-joint skeleton, linear-blend skinning, random poses.

A :class:`Rig` holds the rest positions of 19 major joints (pelvis, spine, chest, neck,
head; per side clavicle, shoulder, elbow, wrist, hip, knee, ankle), each joint's parent,
an anatomical rotation frame per joint, and top-4 skinning weights per vertex (rows sum
to 1). The embedded rigs come from MakeHuman's weights (``scripts/make_reference_rigs.py``);
:func:`load_rig` reads them.

Rotations are given per joint as three angles in degrees, ``(flex, twist, abduct)``,
about the axes of the joint's frame (applied in that order, intrinsic):

* **twist** is along the segment the joint moves (joint -> next joint);
* **flex** is ``twist x forward`` (forward = +Z): a positive flex swings the segment
  forward (hip and shoulder flexion, elbow flexion, the trunk and head bending
  forward); knees flex with a *negative* angle;
* **abduct** completes the frame: a positive value lifts a limb away from the body's
  midline (trunk and head: a side bend).

Frames of right-side joints are the mirror images of the left ones, so one set of
angles gives mirror-image poses on both sides. :func:`pose` moves vertices only, so
anything defined on the rest mesh's faces (charts, atlases) stays valid on the posed one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
import numpy as np

from ..data import Species, data_path, reference
from ..errors import RigError

__all__ = ["Rig", "RigError", "load_rig", "pose", "forward_kinematics", "joint_rotations", "random_pose",
           "DEFAULT_LIMITS", "SPECIES_LIMITS"]

_MIRROR = np.diag([-1.0, 1.0, 1.0])

# (flex, twist, abduct) ranges in degrees, per joint kind; sides share limits (mirrored frames).
# Modest on purpose: arms never swing into the trunk (abduction >= 0), knees only bend backward.
DEFAULT_LIMITS: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "pelvis": ((0, 0), (0, 0), (0, 0)),  # global orientation is the camera's business
    "spine": ((-10, 20), (-15, 15), (-10, 10)),
    "chest": ((-8, 15), (-15, 15), (-8, 8)),
    "neck": ((-15, 20), (-25, 25), (-10, 10)),
    "head": ((-20, 20), (-30, 30), (-10, 10)),
    "clavicle": ((-8, 8), (0, 0), (-5, 10)),
    "shoulder": ((-30, 70), (-30, 30), (0, 55)),
    "elbow": ((0, 90), (-20, 20), (0, 0)),
    "wrist": ((-30, 30), (0, 0), (-15, 15)),
    "hip": ((-20, 50), (-15, 15), (-5, 30)),
    "knee": ((-75, 0), (0, 0), (0, 0)),
    "ankle": ((-20, 20), (-10, 10), (-10, 10)),
}

# the chimp's rest pose is already a crouch (hips flexed ~32 deg, knees ~52 deg): bend less, allow extension
SPECIES_LIMITS = {
    "human": DEFAULT_LIMITS,
    "chimp": {**DEFAULT_LIMITS, "hip": ((-25, 35), (-15, 15), (-5, 25)), "knee": ((-35, 30), (0, 0), (0, 0))},
}


@dataclass(frozen=True, eq=False)
class Rig:
    """A skeleton with skinning weights for one mesh.

    Parameters
    ----------
    names : tuple of str
        Joint names (J of them); sided joints end in ``_left`` / ``_right``.
    parents : (J,) int
        Parent joint of each joint, ``-1`` for the root; parents come before children.
    joints : (J, 3) float
        Rest positions.
    tips : (J, 3) float
        Where each joint's segment points (next joint, or the bone tail): fixes the twist axis.
    weight_index : (V, K) int
        Joints skinning each vertex.
    weight : (V, K) float
        Their weights (>= 0, rows sum to 1).
    name : str

    Attributes
    ----------
    axes : (J, 3, 3) float
        Each joint's frame; columns are the flex, twist and abduct axes (see the module).

    Raises
    ------
    RigError
        Wrong shapes, parents out of order, joint ids out of range, weights not summing to 1.
    """

    names: tuple
    parents: np.ndarray
    joints: np.ndarray
    tips: np.ndarray
    weight_index: np.ndarray
    weight: np.ndarray
    name: str = "rig"
    axes: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        w = self.name
        names = tuple(str(n) for n in self.names)
        J = len(names)
        par = np.array(self.parents, dtype=np.int64)
        P = np.array(self.joints, dtype=np.float64)
        T = np.array(self.tips, dtype=np.float64)
        if par.shape != (J,) or P.shape != (J, 3) or T.shape != (J, 3):
            raise RigError(f"{w}: parents, joints, tips must have shapes ({J},), ({J}, 3), ({J}, 3); "
                           f"got {par.shape}, {P.shape}, {T.shape}")
        bad = (par >= np.arange(J)) | (par < -1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise RigError(f"{w}: parents[{i}] = {par[i]}; a parent must come before its child (or be -1)")
        idx = np.array(self.weight_index, dtype=np.int64)
        wt = np.array(self.weight, dtype=np.float64)
        if idx.ndim != 2 or idx.shape != wt.shape:
            raise RigError(f"{w}: weight_index and weight must be (V, K) arrays of one shape, "
                           f"got {idx.shape}, {wt.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= J):
            v = int(np.flatnonzero(((idx < 0) | (idx >= J)).any(1))[0])
            raise RigError(f"{w}: weight_index[{v}] = {idx[v].tolist()} names a joint outside 0..{J - 1}")
        s = wt.sum(1)
        if (wt < 0).any() or (len(s) and np.abs(s - 1).max() > 1e-4):
            v = int(np.flatnonzero((np.abs(s - 1) > 1e-4) | (wt < 0).any(1))[0])
            raise RigError(f"{w}: weights of vertex {v} are {wt[v].tolist()}; expected >= 0 summing to 1")
        wt /= s[:, None]
        axes = _frames(names, P, T)
        for a in (par, P, T, idx, wt, axes):
            a.setflags(write=False)
        for k, a in (("names", names), ("parents", par), ("joints", P), ("tips", T), ("weight_index", idx),
                     ("weight", wt), ("axes", axes)):
            object.__setattr__(self, k, a)

    def __repr__(self):
        return f"Rig(name={self.name!r}, J={self.n_joints}, V={self.n_vertices})"

    @cached_property
    def sparse_weights(self):
        """(V, J) scipy.sparse.csr_matrix: the skinning weights."""
        import scipy.sparse as sp

        V, K = self.weight.shape
        return sp.csr_matrix((self.weight.ravel(), self.weight_index.ravel(), np.arange(0, V * K + 1, K)),
                             shape=(V, self.n_joints))

    @property
    def n_joints(self) -> int:
        return len(self.names)

    @property
    def n_vertices(self) -> int:
        return len(self.weight)

    def index(self, name: str) -> int:
        """Position of joint ``name``."""
        try:
            return self.names.index(name)
        except ValueError:
            raise RigError(f"{self.name}: no joint {name!r}; expected one of {list(self.names)}") from None


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _frames(names, P, T) -> np.ndarray:
    """(J, 3, 3) frames (columns flex, twist, abduct); right joints mirror their left partner."""
    J = len(names)
    axes = np.zeros((J, 3, 3))
    fwd = np.array([0.0, 0.0, 1.0])
    for i in range(J):
        t = T[i] - P[i]
        n = np.linalg.norm(t)
        t = t / n if n > 0 else np.array([0.0, 1.0, 0.0])
        f = np.cross(t, fwd)
        if np.linalg.norm(f) < 1e-6:  # segment along +-Z: flex about X
            f = np.array([1.0, 0.0, 0.0])
        f = _unit(f - (f @ t) * t)
        axes[i] = np.c_[f, t, np.cross(f, t)]
    for i, n in enumerate(names):
        if n.endswith("_right") and n[:-6] + "_left" in names:
            axes[i] = _MIRROR @ axes[names.index(n[:-6] + "_left")]
    return axes


@lru_cache(maxsize=None)
def load_rig(species: Species) -> Rig:
    """The rig of an embedded reference mesh (``densemap/data/<species>_rig.npz``).

    Raises
    ------
    ValueError
        Unknown species.
    RigError
        The file does not fit the embedded mesh (regenerate with
        ``scripts/make_reference_rigs.py``).
    """
    ref = reference(species)  # checks the species name
    path = data_path(f"{species}_rig.npz")
    with np.load(path, allow_pickle=False) as d:
        rig = Rig(tuple(d["names"].tolist()), d["parents"], d["joints"], d["tips"], d["weight_index"], d["weight"],
                  name=f"reference {species} rig")
        sha1 = str(d["mesh_sha1"])
        meta = json.loads(str(d["meta"]))
    if sha1 != ref.mesh.sha1 or rig.n_vertices != ref.mesh.n_vertices:
        raise RigError(f"{path}: made for a mesh with sha1 {sha1}, but the embedded {species} has "
                       f"{ref.mesh.sha1}; run scripts/make_reference_rigs.py")
    object.__setattr__(rig, "meta", meta)
    return rig


def joint_rotations(rig: Rig, angles) -> np.ndarray:
    """Rotation matrices (rest-pose world axes, about each joint) from per-joint angles.

    Parameters
    ----------
    angles : (J, 3) float
        ``(flex, twist, abduct)`` in degrees, in each joint's frame (:attr:`Rig.axes`).

    Returns
    -------
    (J, 3, 3) float
        ``A @ Rx(flex) @ Ry(twist) @ Rz(abduct) @ A.T`` with ``A`` the joint's frame.
    """
    a = np.radians(np.asarray(angles, dtype=np.float64))
    if a.shape != (rig.n_joints, 3):
        raise RigError(f"{rig.name}: angles must have shape ({rig.n_joints}, 3), got {a.shape}")
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones(len(a)), np.zeros(len(a))
    Rx = np.stack([one, zero, zero, zero, c[:, 0], -s[:, 0], zero, s[:, 0], c[:, 0]], 1).reshape(-1, 3, 3)
    Ry = np.stack([c[:, 1], zero, s[:, 1], zero, one, zero, -s[:, 1], zero, c[:, 1]], 1).reshape(-1, 3, 3)
    Rz = np.stack([c[:, 2], -s[:, 2], zero, s[:, 2], c[:, 2], zero, zero, zero, one], 1).reshape(-1, 3, 3)
    A = rig.axes
    return A @ Rx @ Ry @ Rz @ np.swapaxes(A, 1, 2)


def forward_kinematics(rig: Rig, rotations) -> tuple[np.ndarray, np.ndarray]:
    """World transforms of the joints: posed ``x = G[j] @ x_rest + t[j]``.

    Parameters
    ----------
    rotations : (J, 3) float or (J, 3, 3) float
        Angles in degrees (see :func:`joint_rotations`) or local rotation matrices.

    Returns
    -------
    G : (J, 3, 3) float
    t : (J, 3) float
    """
    R = np.asarray(rotations, dtype=np.float64)
    if R.shape == (rig.n_joints, 3):
        R = joint_rotations(rig, R)
    if R.shape != (rig.n_joints, 3, 3):
        raise RigError(f"{rig.name}: rotations must have shape ({rig.n_joints}, 3) (degrees) or "
                       f"({rig.n_joints}, 3, 3), got {R.shape}")
    J = rig.n_joints
    G = np.empty((J, 3, 3))
    t = np.empty((J, 3))
    P = rig.joints
    for j in range(J):
        p = rig.parents[j]
        if p < 0:
            G[j] = R[j]
            t[j] = P[j] - R[j] @ P[j]
        else:
            G[j] = G[p] @ R[j]
            pj = G[p] @ P[j] + t[p]  # where the parent's motion puts this joint
            t[j] = pj - G[j] @ P[j]
    return G, t


def pose(vertices, rig: Rig, rotations, *, normals=None, return_joints: bool = False):
    """Linear-blend skinning of rest vertices.

    Parameters
    ----------
    vertices : (V, 3) float
        Rest positions (the rig's mesh; a :class:`~densemap.mesh.Mesh` is accepted too).
    rig : Rig
    rotations : (J, 3) float or (J, 3, 3) float
        Per-joint angles in degrees or local rotation matrices (:func:`forward_kinematics`).
    normals : (V, 3) float, optional
        Rest normals to carry along (blended rotations, renormalised).
    return_joints : bool
        Also return the posed joint positions.

    Returns
    -------
    posed : (V, 3) float
    posed_normals : (V, 3) float
        Only with ``normals``.
    joints : (J, 3) float
        Only with ``return_joints``.

    Raises
    ------
    RigError
        ``vertices`` (or ``normals``) does not have the rig's vertex count; bad ``rotations``.
    """
    X = np.asarray(getattr(vertices, "vertices", vertices), dtype=np.float64)
    if X.shape != (rig.n_vertices, 3):
        raise RigError(f"{rig.name}: vertices must have shape ({rig.n_vertices}, 3), got {X.shape}")
    G, t = forward_kinematics(rig, rotations)
    # blended affine map per vertex: sparse (V, J) weights x (J, 12) joint transforms
    # (scipy's sparse product: single-threaded, no BLAS)
    M = rig.sparse_weights @ np.concatenate([G.reshape(-1, 9), t], 1)
    out = [np.einsum("vij,vj->vi", M[:, :9].reshape(-1, 3, 3), X) + M[:, 9:]]
    if normals is not None:
        N = np.asarray(normals, dtype=np.float64)
        if N.shape != X.shape:
            raise RigError(f"{rig.name}: normals must have shape {X.shape}, got {N.shape}")
        n = np.einsum("vij,vj->vi", M[:, :9].reshape(-1, 3, 3), N)
        out.append(n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300))
    if return_joints:
        out.append(np.einsum("jik,jk->ji", G, rig.joints) + t)
    return out[0] if len(out) == 1 else tuple(out)


def random_pose(rig: Rig, rng: np.random.Generator, *, limits: dict | None = None, scale: float = 1.0) -> np.ndarray:
    """Random joint angles, uniform within per-joint limits.

    Parameters
    ----------
    rig : Rig
    rng : numpy.random.Generator
    limits : dict, optional
        Joint kind (``"shoulder"``) or full joint name (``"shoulder_left"``, which wins)
        -> ``((flex_lo, flex_hi), (twist_lo, twist_hi), (abduct_lo, abduct_hi))`` in
        degrees. Default :data:`DEFAULT_LIMITS`; joints not listed stay at rest.
    scale : float
        Multiplies every range (0 = rest pose).

    Returns
    -------
    (J, 3) float
        Angles in degrees, for :func:`pose`.
    """
    limits = DEFAULT_LIMITS if limits is None else limits
    lo = np.zeros((rig.n_joints, 3))
    hi = np.zeros((rig.n_joints, 3))
    for j, n in enumerate(rig.names):
        kind = n.rsplit("_", 1)[0] if n.endswith(("_left", "_right")) else n
        lim = limits.get(n, limits.get(kind))
        if lim is None:
            continue
        lim = np.asarray(lim, dtype=np.float64)
        if lim.shape != (3, 2) or (lim[:, 0] > lim[:, 1]).any():
            raise RigError(f"limits for {n!r} must be ((lo, hi), (lo, hi), (lo, hi)) with lo <= hi, got {lim.tolist()}")
        lo[j], hi[j] = lim[:, 0], lim[:, 1]
    return scale * rng.uniform(lo, hi)
