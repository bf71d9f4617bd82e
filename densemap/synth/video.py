"""Synthetic video clips with exact per-frame DensePose ground truth, to measure tracking and smoothing.

A clip shows 1-2 bodies of one reference mesh moving between random key poses (the rig's
joint angles eased from key to key), turning and walking across the ground while the
camera pans and zooms, with occluders (trunks and branches of random colour) that enter on
one side and leave on the other. Every frame is rendered by the exact rasteriser, so its
ground truth is exact: the COCO DensePose annotations of
:func:`~densemap.synth.dataset.annotate_scene` (occluded pixels are not part of any
instance) with a ``track_id`` (the body's identity, 1, 2, ...), and a fixed set of surface
points per body tracked through the clip (where each lands in every frame and whether it
is visible there) -- the same surface point in two frames should get the same predicted
(I, U, V), which is what a flicker measure needs.

The appearance (background, skin, fur, lighting) is drawn once per clip, so frames differ
by motion only. Clip ``k`` of a dataset draws everything from
``numpy.random.default_rng([seed, k])``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .._validate import check_choice
from ..data import SPECIES, Species
from .dataset import CATEGORIES, annotate_scene
from .scene import Scene, SceneOptions, species_assets

__all__ = ["VideoOptions", "Clip", "render_clip", "synth_video_dataset"]


@dataclass(frozen=True)
class VideoOptions:
    """What a synthetic clip holds.

    Parameters
    ----------
    frames : int
        Frames per clip.
    fps : float
        The clip's frame rate (timestamps, the mp4's rate).
    size : int
        Square frame side in pixels.
    instances : (int, int)
        Fewest and most bodies per clip.
    keyframes : int
        Random key poses per clip (the motion eases between them).
    pose_scale : float
        Multiplies the joint-angle limits of the key poses.
    walk : float
        Distance each body walks over the clip, in body heights.
    pan : float
        Camera yaw change over the clip, in degrees.
    zoom : float
        Relative change of the camera distance over the clip (0.2: 20 % closer at the end).
    occluders : int
        Most occluders crossing the frame per clip.
    points, min_area, min_point_area : int
        As in :class:`~densemap.synth.scene.SceneOptions` (per-frame annotations).
    track_points : int
        Surface points per body followed through the clip.
    """

    frames: int = 24
    fps: float = 6.0
    size: int = 256
    instances: tuple[int, int] = (1, 2)
    keyframes: int = 4
    pose_scale: float = 1.0
    walk: float = 0.5
    pan: float = 25.0
    zoom: float = 0.2
    occluders: int = 2
    points: int = 100
    min_area: int = 16
    min_point_area: int = 200
    track_points: int = 300

    def __post_init__(self):
        if not (2 <= int(self.frames) <= 10000):
            raise ValueError(f"frames must be in 2..10000, got {self.frames}")
        if not (self.fps > 0):
            raise ValueError(f"fps must be positive, got {self.fps}")
        if int(self.keyframes) < 2 or int(self.occluders) < 0 or int(self.track_points) < 1:
            raise ValueError(f"keyframes must be >= 2, occluders >= 0, track_points >= 1; got "
                             f"{self.keyframes}, {self.occluders}, {self.track_points}")
        SceneOptions(size=self.size, instances=tuple(self.instances), points=self.points, min_area=self.min_area,
                     min_point_area=self.min_point_area, pose_scale=self.pose_scale)  # checks the rest

    @property
    def scene_options(self) -> SceneOptions:
        return SceneOptions(size=self.size, instances=tuple(self.instances), points=self.points,
                            min_area=self.min_area, min_point_area=self.min_point_area, pose_scale=self.pose_scale)


@dataclass
class Clip:
    """A rendered clip.

    Attributes
    ----------
    scenes : list of Scene
        One per frame (``scene.face`` is -1 where an occluder covers a body).
    annotations : list of list of dict
        Per frame, COCO DensePose annotations (no ids) with ``track_id``.
    point_iuv : (P, 3) float
        Chart, U, V of the tracked surface points (the species' own charts).
    point_track : (P,) int
        Which body (track id) each point lies on.
    point_xy : (T, P, 2) float
        Where each point projects in each frame (``col, row`` in pixels; a pixel's centre is
        at ``index + 0.5``).
    point_visible : (T, P) bool
        The point is the visible surface at its pixel (not hidden by itself, another body or
        an occluder, and inside the frame).
    """

    scenes: list
    annotations: list
    point_iuv: np.ndarray
    point_track: np.ndarray
    point_xy: np.ndarray
    point_visible: np.ndarray


def _ease(x: np.ndarray) -> np.ndarray:
    return x * x * (3.0 - 2.0 * x)


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _body_motion(species: str, rng: np.random.Generator, n: int, opt: VideoOptions):
    """Per body: key poses, size, turn, start spot and walk; drawn once per clip."""
    from .rig import SPECIES_LIMITS, random_pose

    rig = species_assets(species)["rig"]
    height = float(np.ptp(species_assets(species)["mesh"].vertices[:, 1]))
    bodies = []
    for i in range(n):
        keys = np.stack([random_pose(rig, rng, limits=SPECIES_LIMITS[species], scale=opt.pose_scale)
                         for _ in range(int(opt.keyframes))])
        heading = rng.uniform(0, 2 * np.pi)
        bodies.append({"keys": keys, "s": rng.uniform(0.85, 1.15), "aspect": rng.uniform(0.85, 1.15),
                       "turn0": rng.uniform(0, 2 * np.pi), "turn": np.radians(rng.uniform(-60, 60)),
                       "spot": np.array([i * 1.3 * height * np.cos(heading), i * 1.3 * height * np.sin(heading)]),
                       "walk": opt.walk * height * np.array([np.cos(heading + np.pi / 2), np.sin(heading + np.pi / 2)])
                       * rng.uniform(0.5, 1.0)})
    return bodies


def _posed(species: str, body: dict, u: float):
    """World vertices and normals of one body at clip time ``u`` in [0, 1]."""
    from .rig import pose

    A = species_assets(species)
    rig = A["rig"]
    keys = body["keys"]
    x = u * (len(keys) - 1)
    k = min(int(x), len(keys) - 2)
    angles = keys[k] + _ease(np.float64(x - k)) * (keys[k + 1] - keys[k])
    X, N, J = pose(A["mesh"].vertices, rig, angles, normals=A["normals"], return_joints=True)
    s, aspect = body["s"], body["aspect"]
    root = J[rig.index("pelvis")]
    X = (X - [root[0], X[:, 1].min(), root[2]]) * np.array([s * aspect, s, s * aspect])
    N = N * np.array([1.0, aspect, 1.0])
    turn = _rot_y(body["turn0"] + body["turn"] * u)
    X = np.einsum("ij,vj->vi", turn, X)
    pos = body["spot"] + body["walk"] * (u - 0.5)
    return X + [pos[0], 0.0, pos[1]], np.einsum("ij,vj->vi", turn, N)


def _cameras(rng: np.random.Generator, all_verts: np.ndarray, opt: VideoOptions) -> list:
    """One camera per frame: framing every body over the whole clip, panning and zooming."""
    from .raster import look_at

    W = H = int(opt.size)
    lo, hi = all_verts.min(0), all_verts.max(0)
    target = 0.5 * (lo + hi)
    radius = float(np.linalg.norm(all_verts - target, axis=1).max())
    yaw0 = rng.uniform(0, 2 * np.pi)
    pitch = np.radians(rng.uniform(0, 30))
    focal = W * rng.uniform(1.0, 1.6)
    fill = rng.uniform(0.8, 1.0)
    dist0 = max(radius * focal / (0.5 * W * fill), 1.5 * radius)
    cams = []
    for t in range(int(opt.frames)):
        u = t / (opt.frames - 1)
        yaw = yaw0 + np.radians(opt.pan) * (u - 0.5)
        d = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
        dist = dist0 * (1.0 + opt.zoom * (0.5 - u))
        cams.append(look_at(target + dist * d, target, focal=focal, width=W, height=H))
    return cams


def _occluder_masks(rng: np.random.Generator, opt: VideoOptions) -> list:
    """Per occluder a function frame -> (H, W) bool mask and its colour: bars crossing the frame."""
    from PIL import Image, ImageDraw

    S = int(opt.size)
    out = []
    for _ in range(int(rng.integers(0, int(opt.occluders) + 1))):
        a = rng.uniform(0.0, 0.5)
        b = min(a + rng.uniform(0.4, 0.8), 1.0)
        w = rng.uniform(0.08, 0.22) * S
        tilt = rng.uniform(-0.4, 0.4) * S
        colour = tuple(int(c) for c in rng.integers(20, 200, 3))
        leftwards = rng.random() < 0.5

        def mask(u, a=a, b=b, w=w, tilt=tilt, leftwards=leftwards):
            if not a <= u <= b:
                return None
            x = -w - abs(tilt) + (S + 2 * w + 2 * abs(tilt)) * (u - a) / max(b - a, 1e-9)
            x = S - x if leftwards else x
            im = Image.new("L", (S, S))
            ImageDraw.Draw(im).polygon([(x, 0), (x + w, 0), (x + w + tilt, S), (x + tilt, S)], fill=255)
            return np.asarray(im) > 127

        out.append((mask, colour))
    return out


def _surface_points(species: str, rng: np.random.Generator, n_points: int):
    """Faces and barycentric coordinates of points uniform over the mesh's area."""
    A = species_assets(species)
    V, F = A["mesh"].vertices, A["faces"]
    area = 0.5 * np.linalg.norm(np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]]), axis=1)
    f = rng.choice(len(F), size=n_points, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(n_points)), rng.random(n_points)
    bary = np.c_[1 - r1, r1 * (1 - r2), r1 * r2]
    return f, bary


def render_clip(species: Species, rng: np.random.Generator, *, options: VideoOptions | None = None,
                device=None) -> Clip:
    """Render one random clip of ``species`` bodies and its exact ground truth.

    Examples
    --------
    >>> clip = render_clip("human", np.random.default_rng(0),
    ...                    options=VideoOptions(frames=3, size=64, instances=(1, 1), track_points=20))
    >>> len(clip.scenes), clip.scenes[0].image.shape, clip.point_xy.shape, clip.point_visible.shape
    (3, (64, 64, 3), (3, 20, 2), (3, 20))
    """
    import torch

    from .appearance import shade
    from .raster import project, rasterize

    check_choice("species", species, SPECIES)
    opt = options or VideoOptions()
    A = species_assets(species)
    F, nf, nv = A["faces"], len(A["faces"]), len(A["mesh"].vertices)
    n = int(rng.integers(opt.instances[0], opt.instances[1] + 1))
    bodies = _body_motion(species, rng, n, opt)
    T = int(opt.frames)
    posed = [[_posed(species, b, t / (T - 1)) for b in bodies] for t in range(T)]
    cams = _cameras(rng, np.concatenate([X for frame in posed[:: max(1, T // 6)] + [posed[-1]] for X, _ in frame]),
                    opt)
    occluders = _occluder_masks(rng, opt)
    pf, pb = _surface_points(species, rng, int(opt.track_points))
    I, U, V = A["atlas"].chart_coords(pf, pb)
    appearance_seed = int(rng.integers(0, 2**31))
    point_seed = int(rng.integers(0, 2**31))
    allf = (F[None] + (np.arange(n) * nv)[:, None, None]).reshape(-1, 3)
    scenes, anns, xy, vis = [], [], [], []
    for t in range(T):
        verts = [X for X, _ in posed[t]]
        allv = np.concatenate(verts)
        fr = rasterize(torch.from_numpy(allv), torch.from_numpy(allf), cams[t], cull_backfaces=True, device=device)
        face, bary = fr.face.cpu().numpy(), fr.bary.cpu().numpy()
        # the same draws every frame: the clip keeps its background, skins and light
        image = shade(A, species, np.random.default_rng(appearance_seed), [N for _, N in posed[t]], cams[t], face, bary)
        for mask, colour in occluders:
            m = mask(t / (T - 1))
            if m is not None:
                image[m] = colour
                face = np.where(m, -1, face)
                bary = np.where(m[..., None], 0.0, bary)
        scene = Scene(image=image, species=species, camera=cams[t], vertices=verts,
                      face_offset=np.arange(n + 1) * nf, face=face, bary=bary, info={"frame": t})
        a = annotate_scene(scene, np.random.default_rng([point_seed, t]), options=opt.scene_options)
        inst = scene.instance
        kept = [i for i in range(n) if int((inst == i).sum()) >= opt.min_area]  # annotate_scene's rule
        for ann, i in zip(a, kept):
            ann["track_id"] = i + 1
        p_xy, p_vis = _track_points(scene, verts, pf, pb, project, F)
        scenes.append(scene)
        anns.append(a)
        xy.append(p_xy)
        vis.append(p_vis)
    return Clip(scenes, anns, np.tile(np.c_[I, U, V], (n, 1)), np.repeat(np.arange(1, n + 1), len(pf)),
                np.stack(xy), np.stack(vis))


def _track_points(scene: Scene, verts: list, pf, pb, project, F):
    """(n P, 2) pixel positions and (n P,) visibility of the tracked points of every body in one frame."""
    H, W = scene.face.shape
    nf = len(F)
    xy, vis = [], []
    allv = np.concatenate(verts)
    for i, X in enumerate(verts):
        p = np.einsum("pk,pkd->pd", pb, X[F[pf]])
        uv, depth = project(p, scene.camera)
        col, row = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
        inside = (col >= 0) & (row >= 0) & (col < W) & (row < H) & (depth > 0)
        ok = np.zeros(len(p), bool)
        c, r = col[inside], row[inside]
        f_hit = scene.face[r, c]
        on = (f_hit >= i * nf) & (f_hit < (i + 1) * nf)
        g = np.where(on, f_hit, 0)
        hit = np.einsum("pk,pkd->pd", scene.bary[r, c], allv[(F[g - (g // nf) * nf] + (g // nf)[:, None] * len(X))])
        # visible: the surface seen through this pixel is this point (within 1.5 pixels at its depth)
        tol = 1.5 * depth[inside] / scene.camera.K[0, 0]
        ok[np.flatnonzero(inside)] = on & (np.linalg.norm(hit - p[inside], axis=1) <= tol)
        xy.append(uv)
        vis.append(ok)
    return np.concatenate(xy), np.concatenate(vis)


def _write_mp4(frames: list, path: Path, fps: float) -> None:
    """A high-quality H.264 mp4 (MPEG-4 Part 2 where FFmpeg lacks libx264), written atomically."""
    from fractions import Fraction

    import av

    from .._io import atomic_path

    with atomic_path(path) as tmp:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        with av.open(str(tmp), mode="w", format="mp4") as c:
            s = c.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            s.height, s.width = frames[0].shape[:2]
            s.pix_fmt = "yuv420p"
            s.options = {"crf": "12"} if codec == "libx264" else {"qscale": "2"}
            for im in frames:
                for pkt in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(im), format="rgb24")):
                    c.mux(pkt)
            for pkt in s.encode():
                c.mux(pkt)


def synth_video_dataset(species: Species, n_clips: int, out_dir: str | os.PathLike, *, seed: int = 0,
                        options: VideoOptions | None = None,
                        progress: bool | Callable[[int], None] | None = None) -> dict:
    """Write synthetic clips with per-frame COCO DensePose ground truth.

    Writes ``out_dir/clips/clip_KKKK.mp4`` (the video), ``out_dir/images/clip_KKKK/TTTTTT.png``
    (its frames, lossless), ``out_dir/clips/clip_KKKK.npz`` (the tracked surface points:
    ``point_iuv``, ``point_track``, ``point_xy``, ``point_visible``, see :class:`Clip`) and
    ``out_dir/annotations.json``: one COCO image per frame (``file_name`` under ``images/``,
    with ``video``, ``frame_index`` and ``timestamp``) and its annotations (with ``track_id``),
    so ``densemap eval --data out_dir`` scores a model frame by frame.

    ``progress``: True for a tqdm bar over the clips (a widget in a notebook), or a callable
    called with the number of clips finished; None or False: silent.

    Returns
    -------
    dict
        The COCO dict that was written.
    """
    from PIL import Image
    from tqdm.auto import tqdm

    from .._version import __version__
    from ..annotation.coco import write_coco

    check_choice("species", species, SPECIES)
    if int(n_clips) < 1:
        raise ValueError(f"n_clips must be >= 1, got {n_clips}")
    opt = options or VideoOptions()
    out = Path(out_dir)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for k in tqdm(range(int(n_clips)), desc=f"synth {species} clips", unit="clip", disable=progress is not True):
        clip = render_clip(species, np.random.default_rng([int(seed), k]), options=opt)
        name = f"clip_{k:04d}"
        (out / "images" / name).mkdir(parents=True, exist_ok=True)
        for t, (scene, anns) in enumerate(zip(clip.scenes, clip.annotations)):
            fn = f"{name}/{t:06d}.png"
            Image.fromarray(scene.image).save(out / "images" / fn, compress_level=1)
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": fn, "width": int(opt.size), "height": int(opt.size),
                           "video": f"{name}.mp4", "frame_index": t, "timestamp": round(t / opt.fps, 6)})
            for a in anns:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, **a})
        _write_mp4([s.image for s in clip.scenes], out / "clips" / f"{name}.mp4", opt.fps)
        np.savez_compressed(out / "clips" / f"{name}.npz", point_iuv=clip.point_iuv, point_track=clip.point_track,
                            point_xy=clip.point_xy.astype(np.float32), point_visible=clip.point_visible)
        if callable(progress):
            progress(k + 1)
    coco = {"info": {"description": f"densemap synthetic DensePose video ({species})",
                     "generator": "densemap.synth.synth_video_dataset", "densemap_version": __version__,
                     "species": species, "seed": int(seed), "clips": int(n_clips),
                     "options": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(opt).items()}},
            "licenses": [], "images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": CATEGORIES[species], "supercategory": CATEGORIES[species]}]}
    write_coco(coco, out / "annotations.json")
    return coco
