"""Random scenes of the embedded meshes: posed, scaled, turned bodies before a random camera.

:func:`render_scene` draws one image and keeps the geometry behind it (a :class:`Scene`):
the exact rasteriser (:mod:`densemap.synth.raster`) gives the visible surface point under
every pixel, so the ground truth of :mod:`densemap.synth.dataset` is exact. All randomness
comes from the caller's ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..annotation.coco import COARSE_OF_CHART
from ..data import SPECIES, Species, reference
from .._validate import check_choice
from ..parts import face_labels
from .appearance import shade

__all__ = ["Scene", "SceneOptions", "render_scene", "species_assets"]

@dataclass(frozen=True)
class SceneOptions:
    """What varies between images, and by how much.

    Parameters
    ----------
    size : int or (int, int)
        Square image side in pixels, or a ``(lo, hi)`` range drawn per image.
    instances : (int, int)
        Fewest and most bodies per image.
    points : int
        DensePose points sampled per annotated instance (fewer if its mask is smaller).
    min_area : int
        Instances with fewer visible pixels are dropped (hidden or nearly).
    min_point_area : int
        Instances with fewer visible pixels keep box and mask but get no points.
    pose_scale : float
        Multiplies the joint-angle limits of :func:`densemap.synth.rig.random_pose` (0 = rest pose).
    """

    size: int | tuple[int, int] = 320
    instances: tuple[int, int] = (1, 4)
    points: int = 100
    min_area: int = 16
    min_point_area: int = 200
    pose_scale: float = 1.0

    def __post_init__(self):
        lo, hi = (self.size, self.size) if np.isscalar(self.size) else tuple(self.size)
        if not (32 <= int(lo) <= int(hi) <= 4096):
            raise ValueError(f"size must be an integer or (lo, hi) range in 32..4096, got {self.size!r}")
        a, b = self.instances
        if not (1 <= int(a) <= int(b) <= 16):
            raise ValueError(f"instances must be (lo, hi) with 1 <= lo <= hi <= 16, got {self.instances!r}")
        if self.points < 1 or self.min_area < 1 or self.min_point_area < 1:
            raise ValueError("points, min_area and min_point_area must be >= 1, got "
                             f"{self.points}, {self.min_area}, {self.min_point_area}")
        if not (0 <= self.pose_scale <= 2):
            raise ValueError(f"pose_scale must be in [0, 2], got {self.pose_scale}")


@dataclass
class Scene:
    """One rendered image and the geometry behind it.

    Attributes
    ----------
    image : (H, W, 3) uint8
    species : str
    camera : densemap.synth.raster.Camera
    vertices : list of (V, 3) float
        Posed world vertices of each instance (the reference mesh's topology).
    face_offset : (N + 1,) int
        Instance ``i`` owns the faces ``face_offset[i]:face_offset[i + 1]`` of ``face``.
    face : (H, W) int
        Visible face of the combined mesh per pixel (``-1`` = background).
    bary : (H, W, 3) float
        Barycentric coordinates of each pixel centre in ``face``.
    """

    image: np.ndarray
    species: str
    camera: object
    vertices: list
    face_offset: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def instance(self) -> np.ndarray:
        """(H, W) int: instance per pixel (``-1`` = background)."""
        inst = np.searchsorted(self.face_offset[1:], self.face, side="right")
        return np.where(self.face >= 0, inst, -1)


# ----------------------------------------------------------------------------- assets
@lru_cache(maxsize=None)
def species_assets(species: str) -> dict:
    """Per-species constants (mesh, rig, atlas, per-face tables), loaded once per process."""
    from ..charts import reference_atlas
    from .rig import load_rig

    ref = reference(species)
    atlas = reference_atlas(species).check_mesh(ref.mesh)
    F = ref.mesh.faces
    names = ref.parts.names
    face_part = face_labels(F, ref.parts.labels)  # the atlas's face-majority rule
    skin = np.isin(face_part, [names.index(n) for n in names
                               if n == "face" or n.startswith(("hand_palm", "foot_sole"))])
    if species == "human":  # bare skin: head, hands, feet; the rest may be clothed
        skin = np.isin(face_part, [names.index(n) for n in names
                                   if n in ("face", "head_back", "neck") or n.startswith(("hand", "foot"))])
    V = ref.mesh.vertices
    fn = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    vn = np.stack([np.bincount(F.ravel(), weights=np.repeat(fn[:, k], 3), minlength=len(V)) for k in range(3)], 1)
    vn /= np.linalg.norm(vn, axis=1, keepdims=True)
    legs = np.isin(atlas.charts, [5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
    return {"mesh": ref.mesh, "rig": load_rig(species), "atlas": atlas, "faces": F, "normals": vn,
            "region": np.where(skin, 0, np.where(legs, 2, 1)).astype(np.int64),  # 0 skin, 1 upper, 2 legs
            "coarse": COARSE_OF_CHART[atlas.charts]}


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


# ----------------------------------------------------------------------------- scenes
def _place_instances(species: str, rng: np.random.Generator, n: int, pose_scale: float):
    """Posed, scaled, turned and placed copies of the mesh: lists of (V, 3) world vertices and normals."""
    from .rig import SPECIES_LIMITS, pose, random_pose

    A = species_assets(species)
    rig = A["rig"]
    rest = A["mesh"].vertices
    out, normals, spots = [], [], []
    for _ in range(n):
        angles = random_pose(rig, rng, limits=SPECIES_LIMITS[species], scale=pose_scale)
        X, N, J = pose(rest, rig, angles, normals=A["normals"], return_joints=True)
        s = rng.uniform(0.85, 1.15)
        aspect = rng.uniform(0.85, 1.15)  # girth relative to height
        root = J[rig.index("pelvis")]
        X = (X - [root[0], X[:, 1].min(), root[2]]) * np.array([s * aspect, s, s * aspect])
        N = N * np.array([1.0, aspect, 1.0])  # inverse-transpose of the scaling, up to a factor
        turn = _rot_y(rng.uniform(0, 2 * np.pi))
        X = np.einsum("ij,vj->vi", turn, X)  # einsum, not BLAS: one thread per worker
        for _try in range(30):  # keep bodies apart (they may still overlap on screen)
            spot = np.zeros(2) if not spots else rng.uniform(-1, 1, 2) * (6.0 + 3.0 * len(spots))
            if all(np.hypot(*(spot - q)) > 6.0 for q in spots):
                break
        spots.append(spot)
        out.append(X + [spot[0], 0.0, spot[1]])
        normals.append(np.einsum("ij,vj->vi", turn, N))
    return out, normals


def _camera(rng: np.random.Generator, verts: list, W: int, H: int):
    """A random camera that frames the bodies: yaw all round, pitch -10..35 deg, some roll."""
    from .raster import look_at

    allv = np.concatenate(verts)
    lo, hi = allv.min(0), allv.max(0)
    target = 0.5 * (lo + hi) + rng.normal(0, 0.08, 3) * (hi - lo)
    radius = float(np.linalg.norm(allv - target, axis=1).max())
    yaw = rng.uniform(0, 2 * np.pi)
    pitch = np.radians(rng.uniform(-10, 35))
    d = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    focal = min(W, H) * rng.uniform(1.0, 2.0)
    fill = rng.uniform(0.75, 1.05)  # > 1 crops a little
    dist = max(radius * focal / (0.5 * min(W, H) * fill), 1.5 * radius)
    roll = np.radians(rng.normal(0, 6))
    fwd = -d
    side = np.cross(fwd, [0.0, 1.0, 0.0])
    side /= np.linalg.norm(side)
    up = np.cos(roll) * np.cross(side, fwd) + np.sin(roll) * side
    return look_at(target + dist * d, target, up=up, focal=focal, width=W, height=H)


def render_scene(species: Species, rng: np.random.Generator, *, options: SceneOptions | None = None,
                 device=None) -> Scene:
    """Render one random image of ``species`` bodies.

    Parameters
    ----------
    species : {"human", "chimp"}
    rng : numpy.random.Generator
        All randomness comes from here.
    options : SceneOptions, optional
    device : str or torch.device, optional
        Where the rasteriser runs (default CPU). Shading runs in numpy.

    Returns
    -------
    Scene
    """
    from .raster import rasterize

    check_choice("species", species, SPECIES)
    opt = options or SceneOptions()
    A = species_assets(species)
    lo, hi = (opt.size, opt.size) if np.isscalar(opt.size) else opt.size
    S = int(rng.integers(int(lo), int(hi) + 1))
    H = W = S
    n = int(rng.integers(opt.instances[0], opt.instances[1] + 1))
    verts, normals = _place_instances(species, rng, n, opt.pose_scale)
    cam = _camera(rng, verts, W, H)
    F = A["faces"]
    nf = len(F)
    offsets = np.arange(n + 1) * nf
    allv = np.concatenate(verts)
    allf = (F[None] + (np.arange(n) * len(A["mesh"].vertices))[:, None, None]).reshape(-1, 3)
    import torch

    fr = rasterize(torch.from_numpy(allv), torch.from_numpy(allf), cam, cull_backfaces=True,
                   device=device)
    face, bary = fr.face.cpu().numpy(), fr.bary.cpu().numpy()
    image = shade(A, species, rng, normals, cam, face, bary)
    return Scene(image=image, species=species, camera=cam, vertices=verts, face_offset=offsets, face=face,
                 bary=bary, info={"size": S, "instances": n})
