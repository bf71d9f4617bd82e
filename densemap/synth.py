"""Synthetic DensePose datasets rendered from the embedded human and chimpanzee meshes.

Each image shows 1-4 randomly posed, scaled and turned copies of one reference mesh in
front of a random background, seen by a random pinhole camera. The exact rasteriser
(:mod:`densemap.render`) gives the visible surface point under every pixel, so the
ground truth is exact: per instance a COCO ``bbox``, ``segmentation`` (RLE), ``area``,
the 14 coarse ``dp_masks`` on the 256 x 256 box grid and ~100 points with ``dp_x``,
``dp_y``, ``dp_I``, ``dp_U``, ``dp_V`` (in the mesh's *own* charts,
:func:`~densemap.charts.reference_atlas`) and ``dp_vertex``, exactly as DensePose-COCO
stores them. A chimp dataset is labelled on the chimp's charts
(``ref_model = "densemap_chimp"``), so ``densemap convert-annotations`` carries it to the
human.

* :func:`render_scene` draws one image (and keeps the geometry, for checks);
* :func:`annotate_scene` turns it into COCO annotations;
* :func:`synth_dataset` writes ``images/*.png`` and ``annotations.json`` (both cores);
* :func:`draw_annotations` draws boxes, masks and points over an image, to check by eye.

Image ``k`` of a dataset draws all its randomness from ``numpy.random.default_rng([seed, k])``,
so a dataset is the same whatever the number of worker processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, get_args

import numpy as np

from ._validate import check_choice
from .data import Species
from .appearance import shade

__all__ = [
    "Scene",
    "SceneOptions",
    "render_scene",
    "annotate_scene",
    "synth_image",
    "synth_dataset",
    "draw_annotations",
    "CATEGORIES",
    "COARSE_OF_CHART",
]

CATEGORIES = {"human": "person", "chimp": "chimp"}
# DensePose chart (1..24) -> coarse part (1..14) of dp_masks; index 0 = background
COARSE_OF_CHART = np.array([0, 1, 1, 2, 3, 4, 5, 6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11, 12, 13, 12, 13, 14, 14])
MASK_GRID = 256


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
        Multiplies the joint-angle limits of :func:`densemap.rig.random_pose` (0 = rest pose).
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
    camera : densemap.render.Camera
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
def _assets(species: str) -> dict:
    """Per-species constants (mesh, rig, atlas, per-face tables), loaded once per process."""
    from . import data
    from .charts import reference_atlas
    from .rig import load_rig

    ref = data.reference_human() if species == "human" else data.reference_chimp()
    atlas = reference_atlas(species).check_mesh(ref.mesh)
    F = ref.mesh.faces
    parts = np.asarray(ref.parts.labels)
    names = ref.parts.names
    # face part by majority of corners (ties: first corner)
    fp = parts[F]
    face_part = np.where(fp[:, 1] == fp[:, 2], fp[:, 1], fp[:, 0])
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

    A = _assets(species)
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
    from .render import look_at

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
    from .render import rasterize

    check_choice("species", species, get_args(Species))
    opt = options or SceneOptions()
    A = _assets(species)
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
    image = shade(_assets(species), species, rng, normals, cam, face, bary)
    return Scene(image=image, species=species, camera=cam, vertices=verts, face_offset=offsets, face=face,
                 bary=bary, info={"size": S, "instances": n})


# ----------------------------------------------------------------------------- annotations
def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}


def _part_rles(coarse: np.ndarray) -> list:
    """The 14 coarse-part masks of a (256, 256) label map as RLEs (``[]`` for an absent part)."""
    from pycocotools import mask as mask_utils

    present = np.bincount(coarse.ravel(), minlength=15)[1:] > 0
    ks = np.flatnonzero(present) + 1
    out: list = [[] for _ in range(14)]
    if len(ks):
        stack = np.asfortranarray((coarse[..., None] == ks).astype(np.uint8))
        for k, r in zip(ks, mask_utils.encode(stack)):
            out[k - 1] = {"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}
    return out


def annotate_scene(scene: Scene, rng: np.random.Generator, *, options: SceneOptions | None = None) -> list[dict]:
    """COCO DensePose annotations of the visible instances of ``scene``.

    Parameters
    ----------
    scene : Scene
    rng : numpy.random.Generator
        Chooses the sampled points.
    options : SceneOptions, optional
        ``points``, ``min_area`` and ``min_point_area`` are used.

    Returns
    -------
    list of dict
        One per instance with at least ``min_area`` visible pixels, without ``id`` /
        ``image_id``: ``category_id`` (1), ``bbox`` (tight box of the visible mask,
        ``[x, y, w, h]``), ``area``, ``iscrowd`` (0), ``segmentation`` (RLE, counts as
        str), ``dp_masks`` (14 RLEs of 256 x 256 over the box, ``[]`` for an absent
        part), ``ref_model``; and, when at least ``min_point_area`` pixels are visible,
        ``dp_x``, ``dp_y`` (pixel centres, ``(col + 0.5 - x) / w * 256``), ``dp_I``,
        ``dp_U``, ``dp_V`` (the mesh's own charts) and ``dp_vertex`` (corner with the
        largest barycentric weight).
    """
    from .annotation.convert import REFERENCE_NAMES

    opt = options or SceneOptions()
    A = _assets(scene.species)
    atlas = A["atlas"]
    nf = len(A["faces"])
    inst = scene.instance
    H, W = inst.shape
    anns = []
    for i in range(len(scene.vertices)):
        mask = inst == i
        area = int(mask.sum())
        if area < opt.min_area:
            continue
        rows = np.flatnonzero(mask.any(1))
        cols = np.flatnonzero(mask.any(0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        w, h = x1 - x0, y1 - y0
        ann = {"category_id": 1, "iscrowd": 0, "bbox": [float(x0), float(y0), float(w), float(h)],
               "area": float(area), "segmentation": _rle(mask)}
        # coarse parts on the 256 x 256 grid over the box (nearest pixel centre)
        gx = x0 + np.minimum(((np.arange(MASK_GRID) + 0.5) * w / MASK_GRID).astype(np.int64), w - 1)
        gy = y0 + np.minimum(((np.arange(MASK_GRID) + 0.5) * h / MASK_GRID).astype(np.int64), h - 1)
        fsub = scene.face[np.ix_(gy, gx)]
        on = (fsub >= i * nf) & (fsub < (i + 1) * nf)
        coarse = np.where(on, A["coarse"][np.where(on, fsub - i * nf, 0)], 0)
        ann["dp_masks"] = _part_rles(coarse)
        ann["ref_model"] = REFERENCE_NAMES[scene.species]
        if area >= opt.min_point_area:
            pix = np.flatnonzero(mask.ravel())
            pick = np.sort(rng.choice(pix, size=min(opt.points, len(pix)), replace=False))
            r, c = np.divmod(pick, W)
            f = scene.face.ravel()[pick] - i * nf
            b = scene.bary.reshape(-1, 3)[pick]
            I, U, V = atlas.chart_coords(f, b)
            ann["dp_x"] = np.round((c + 0.5 - x0) / w * 256.0, 4).tolist()
            ann["dp_y"] = np.round((r + 0.5 - y0) / h * 256.0, 4).tolist()
            ann["dp_I"] = I.astype(float).tolist()
            ann["dp_U"] = np.round(U, 6).tolist()
            ann["dp_V"] = np.round(V, 6).tolist()
            ann["dp_vertex"] = atlas.nearest_vertex(f, b).tolist()
        anns.append(ann)
    return anns


def synth_image(species: Species, seed: int, index: int, *, options: SceneOptions | None = None,
                device=None) -> tuple[Scene, list[dict]]:
    """Image ``index`` of the dataset with ``seed``: its scene and annotations (no ids)."""
    rng = np.random.default_rng([int(seed), int(index)])
    scene = render_scene(species, rng, options=options, device=device)
    return scene, annotate_scene(scene, rng, options=options)


# ----------------------------------------------------------------------------- datasets
def _work(args) -> tuple[int, dict, list[dict]]:
    species, seed, index, options, image_dir, name = args
    from PIL import Image

    scene, anns = synth_image(species, seed, index, options=options)
    Image.fromarray(scene.image).save(os.path.join(image_dir, name), compress_level=1)
    H, W = scene.face.shape
    return index, {"file_name": name, "width": int(W), "height": int(H)}, anns


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _init_worker():
    import torch

    torch.set_num_threads(1)


def synth_dataset(species: Species, n_images: int, out_dir: str | os.PathLike, *, seed: int = 0,
                  options: SceneOptions | None = None, workers: int | None = None,
                  progress: Callable[[int], None] | None = None) -> dict:
    """Write a synthetic COCO DensePose dataset: ``out_dir/images/*.png`` and ``out_dir/annotations.json``.

    Parameters
    ----------
    species : {"human", "chimp"}
    n_images : int
    out_dir : path
        Created if missing; existing images of the same names are overwritten.
    seed : int
        Image ``k`` uses ``numpy.random.default_rng([seed, k])``: the output does not
        depend on ``workers``.
    options : SceneOptions, optional
    workers : int, optional
        Processes (default: the CPUs this process may use, at most 8; 1 for fewer than
        16 images). Each runs torch on one thread.
    progress : callable, optional
        Called with the number of images finished after each one.

    Returns
    -------
    dict
        The COCO dict that was written (``info``, ``images``, ``annotations``, ``categories``).

    Raises
    ------
    ValueError
        Unknown species, ``n_images < 1``.
    """
    from . import __version__
    from .annotation.coco import write_coco

    check_choice("species", species, get_args(Species))
    if int(n_images) < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    opt = options or SceneOptions()
    out_dir = Path(out_dir)
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    if workers is None:
        avail = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        workers = 1 if n_images < 16 else max(1, min(8, avail))
    width = max(6, len(str(n_images - 1)))
    jobs = [(species, int(seed), k, opt, str(image_dir), f"{k:0{width}d}.png") for k in range(int(n_images))]
    results = [None] * len(jobs)
    if workers <= 1:
        for done, job in enumerate(jobs, 1):
            r = _work(job)
            results[r[0]] = r
            if progress:
                progress(done)
    else:
        import multiprocessing as mp

        # torch and a plain fork do not mix; a fork server imports torch once, then forks workers
        if "forkserver" in mp.get_all_start_methods():
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["torch", "densemap.synth"])
        else:
            ctx = mp.get_context("spawn")
        # one BLAS / OpenMP thread per worker: the processes share the cores; the variables
        # must be set before the workers (or the fork server) import numpy, then are restored
        saved = {k: os.environ.get(k) for k in _THREAD_VARS}
        os.environ.update({k: "1" for k in _THREAD_VARS})
        try:
            pool = ctx.Pool(workers, initializer=_init_worker)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        with pool:
            for done, r in enumerate(pool.imap_unordered(_work, jobs, chunksize=4), 1):
                results[r[0]] = r
                if progress:
                    progress(done)
    images, annotations = [], []
    for index, img, anns in results:
        image_id = index + 1
        images.append({"id": image_id, **img})
        for a in anns:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **a})
    size = opt.size if np.isscalar(opt.size) else list(opt.size)
    coco = {
        "info": {"description": f"densemap synthetic DensePose dataset ({species})",
                 "generator": "densemap.synth.synth_dataset", "densemap_version": __version__,
                 "species": species, "seed": int(seed), "images": int(n_images),
                 "options": {"size": size, "instances": list(opt.instances), "points": opt.points,
                             "min_area": opt.min_area, "min_point_area": opt.min_point_area,
                             "pose_scale": opt.pose_scale},
                 "charts": f"dp_I/U/V on the {species} reference atlas (densemap.charts.reference_atlas)"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": CATEGORIES[species], "supercategory": CATEGORIES[species]}],
    }
    write_coco(coco, out_dir / "annotations.json")
    return coco


# ----------------------------------------------------------------------------- overlays
def draw_annotations(image: np.ndarray, annotations: list[dict], *, point_radius: float | None = None) -> np.ndarray:
    """Four panels side by side: masks and boxes; coarse parts (``dp_masks``) and points by
    chart; points by U; points by V.

    Parameters
    ----------
    image : (H, W, 3) uint8
    annotations : list of dict
        COCO DensePose annotations of this image.

    Returns
    -------
    (H, 4 W, 3) uint8
    """
    from matplotlib import colormaps
    from PIL import Image, ImageDraw
    from pycocotools import mask as mask_utils

    from .annotation.coco import dp_mask_labels
    from .palette import part_palette

    image = np.asarray(image, dtype=np.uint8)
    H, W = image.shape[:2]
    inst_col = (part_palette(max(len(annotations), 1)) * 255).astype(np.float64)
    coarse_col = part_palette(14) * 255
    chart_col = part_palette(24) * 255
    cmap = colormaps["viridis"]
    panels = [image.astype(np.float64).copy() for _ in range(4)]
    radius = point_radius or max(1.5, min(H, W) / 220)
    pts = []
    for j, a in enumerate(annotations):
        seg = a.get("segmentation")
        if isinstance(seg, dict):
            s = dict(seg, counts=seg["counts"].encode("ascii") if isinstance(seg["counts"], str) else seg["counts"])
            if isinstance(s["counts"], list):
                s = mask_utils.frPyObjects(s, *s["size"])
            m = mask_utils.decode(s).astype(bool)
            panels[0][m] = 0.5 * panels[0][m] + 0.5 * inst_col[j]
        x, y, w, h = a["bbox"]
        lab = dp_mask_labels(a)
        if lab is not None and w >= 1 and h >= 1:
            xs = np.arange(int(np.floor(x)), int(np.ceil(x + w)))
            ys = np.arange(int(np.floor(y)), int(np.ceil(y + h)))
            xs, ys = xs[(xs >= 0) & (xs < W)], ys[(ys >= 0) & (ys < H)]
            gx = np.clip(((xs + 0.5 - x) / w * MASK_GRID).astype(np.int64), 0, MASK_GRID - 1)
            gy = np.clip(((ys + 0.5 - y) / h * MASK_GRID).astype(np.int64), 0, MASK_GRID - 1)
            sub = lab[np.ix_(gy, gx)]
            region = panels[1][np.ix_(ys, xs)]
            on = sub > 0
            region[on] = 0.45 * region[on] + 0.55 * coarse_col[sub[on] - 1]
            panels[1][np.ix_(ys, xs)] = region
        if "dp_x" in a and len(a["dp_x"]):
            px = x + np.asarray(a["dp_x"], float) * w / 256.0
            py = y + np.asarray(a["dp_y"], float) * h / 256.0
            pts.append((px, py, a.get("dp_I"), a.get("dp_U"), a.get("dp_V")))
    ims = [Image.fromarray(np.clip(p, 0, 255).astype(np.uint8)) for p in panels]
    draws = [ImageDraw.Draw(im) for im in ims]
    for j, a in enumerate(annotations):
        x, y, w, h = a["bbox"]
        for d in draws:
            d.rectangle([x, y, x + w - 1, y + h - 1], outline=tuple(int(v) for v in inst_col[j]), width=2)
    for px, py, I, U, V in pts:
        for k in range(len(px)):
            box = [px[k] - radius, py[k] - radius, px[k] + radius, py[k] + radius]
            if I is not None:
                c = chart_col[int(I[k]) - 1] if 1 <= int(I[k]) <= 24 else np.array([128, 128, 128])
                draws[1].ellipse(box, fill=tuple(int(v) for v in c), outline=(0, 0, 0))
            for d, val in ((draws[2], U), (draws[3], V)):
                if val is not None:
                    c = np.asarray(cmap(float(val[k]))[:3]) * 255
                    d.ellipse(box, fill=tuple(int(v) for v in c), outline=(0, 0, 0))
    for d, title in zip(draws, ("masks + boxes", "dp_masks + points by chart (I)", "points by U", "points by V")):
        d.text((4, 3), title, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    return np.concatenate([np.asarray(im) for im in ims], axis=1)
