"""Inference on images, video clips and folders of both: IUV images, overlays, clip JSON, summary.csv.

:func:`predict_media` takes images, videos and folders (searched recursively,
:func:`~densemap_models.inputs.collect_inputs`); every output path mirrors the input's
relative path. Per image ``<rel>/NAME``:

* ``NAME_iuv.png`` -- the image-size IUV (channel 0 = I, 1 = U x 255, 2 = V x 255; DensePose's
  ``labels_uv_uint8`` pasted at each box, higher scores on top);
* ``NAME_overlay.png`` -- the image with the charts (I) coloured and U/V iso-lines, boxes drawn
  (and, without detections, a caption saying so);
* one ``results.json`` for all images: per detection ``file_name`` (the relative path),
  ``bbox`` (XYWH), ``score``, ``segmentation`` (RLE), ``uv_shape`` (3, h, w) and ``uv_data``
  (base64 PNG of the box IUV, the DensePose challenge format), plus the mean predicted sigma
  and calibrated confidence of the detection;
* with ``ClipSettings(surface=True)`` (``--surface``), ``NAME_surface.npz``: each detection's
  foreground pixels as points on the reference mesh (vertex, face, barycentric coordinates,
  3-D point; :mod:`densemap_models.surface_outputs`), named in its record's ``surface``.

Per clip ``<rel>/CLIP`` (:mod:`densemap_models.clip_predict`): ``CLIP.json`` (per sampled
frame its index, timestamp and detections with a track id, smoothed along the track),
optionally ``CLIP_overlay.mp4`` and ``CLIP_surface.npz``, and a row in ``summary.csv``. Clips whose outputs are
complete are skipped, so an interrupted run continues where it stopped. Under ``torchrun``
the inputs are sharded over the ranks and rank 0 merges ``summary.csv`` and ``results.json``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from densemap._io import atomic_path, json_default

from .clip_outputs import write_summary
from .clip_predict import ClipSettings, clip_is_complete, completed_row, detect, predict_clips
from .drawing import overlay, paste_iuv
from .inputs import collect_inputs, output_paths, rank_world, shard
from .surface_outputs import detection_surface, write_surface_file
from .video import Sampling

__all__ = ["predict_media", "predict_images", "predict_checkpoint", "PredictSummary", "ClipSettings", "Sampling",
           "paste_iuv", "overlay"]


@dataclass
class PredictSummary:
    """What a run did (on this rank; rank 0 also holds the merged ``rows``)."""

    out_dir: Path
    images: int = 0
    images_without_detection: int = 0
    clips: int = 0
    clips_skipped: int = 0
    clips_without_detection: int = 0
    errors: list = field(default_factory=list)  # (clip, reason)
    rows: list = field(default_factory=list)  # summary.csv rows
    seconds: float = 0.0
    frames: int = 0


def _image_records(image_rel: str, dets) -> list[dict]:
    out = []
    for d in dets:
        r = d.record()
        for k in ("track_id", "smoothed"):
            r.pop(k)
        out.append({"file_name": image_rel, **r})
    return out


def _predict_image(model, item, out_dir, *, device, score_thresh: float, max_dets: int, surface: bool = False
                   ) -> list[dict]:
    with Image.open(item.path) as f:
        img = np.asarray(f.convert("RGB"))
    dets = detect(model, img, device=device, score_thresh=score_thresh, max_dets=max_dets)
    iuv = paste_iuv(img.shape[:2], [d.box for d in dets], [d.maps for d in dets])
    iuv_path, overlay_path, *surface_path = output_paths(item, out_dir, surface=surface)
    if surface:
        points = {}
        for k, d in enumerate(dets):
            points[f"d{k}"] = detection_surface(d.maps["iuv"], d.box)
            d.extra["surface"] = {"file": Path(item.stem).as_posix() + "_surface.npz", "key": f"d{k}",
                                  "points": len(points[f"d{k}"]["vertex"])}
        write_surface_file(surface_path[0], points)
    caption = None if dets else f"no detection at score >= {score_thresh:g}"
    with atomic_path(iuv_path) as tmp:
        Image.fromarray(iuv).save(tmp, format="PNG")
    with atomic_path(overlay_path) as tmp:
        overlay(img, iuv, [d.box for d in dets], [d.score for d in dets], caption=caption).save(tmp, format="PNG")
    return _image_records(item.rel, dets)


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (torchrun stopping a worker, a batch system's kill) unwinds like Ctrl-C: nothing half-written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _gather(obj, rank: int, world: int):
    """Rank 0 gets the list of every rank's ``obj`` (gloo process group; None on other ranks)."""
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        # gloo even with GPUs: only small Python objects travel; a long timeout, since ranks
        # finish their shares of a large folder at different times
        dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(days=7))
    got = [None] * world if rank == 0 else None
    dist.gather_object(obj, got, dst=0)
    return got


@torch.no_grad()
def predict_media(model, inputs, out_dir: str | os.PathLike, *, device="cpu", sampling: Sampling = Sampling(),
                  settings: ClipSettings = ClipSettings(), progress: bool = False, rank: int | None = None,
                  world: int | None = None) -> PredictSummary:
    """Run ``model`` on images, clips and folders; write every output under ``out_dir``.

    Parameters
    ----------
    model : DensePoseRCNN
    inputs : sequence of path-like
        Images, videos and folders (see :func:`~densemap_models.inputs.collect_inputs`).
    out_dir : path-like
    device : str or torch.device
    sampling : Sampling
        Which frames of each clip (``fps``, ``every``, ``max_frames``).
    settings : ClipSettings
        Detection threshold, tracking, smoothing, overlay video.
    rank, world : int, optional
        This process's share (default: torchrun's ``RANK`` / ``WORLD_SIZE``). With
        ``world > 1`` the ranks meet in a gloo process group at the end.

    Returns
    -------
    PredictSummary

    Raises
    ------
    DensemapError
        Missing inputs, inputs that are neither images nor videos, colliding outputs (before any work).
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    items = collect_inputs(inputs, out, overlay=settings.overlay, surface=settings.surface)
    env_rank, env_world = rank_world()
    rank, world = (env_rank if rank is None else rank), (env_world if world is None else world)
    mine = shard(items, rank, world)
    out.mkdir(parents=True, exist_ok=True)
    model.eval().to(device)
    summary = PredictSummary(out)
    images = [m for m in mine if m.kind == "image"]
    clips = [m for m in mine if m.kind == "video"]
    records: list[dict] = []
    with _sigterm_as_interrupt():
        it = images
        if progress and images:
            from tqdm import tqdm

            it = tqdm(images, desc="images", unit="img")
        for item in it:
            recs = _predict_image(model, item, out, device=device, score_thresh=settings.score_thresh,
                                  max_dets=settings.max_dets, surface=settings.surface)
            summary.images += 1
            summary.images_without_detection += not recs
            records += recs
        done = [c for c in clips if clip_is_complete(c, out, overlay=settings.overlay, surface=settings.surface)]
        todo = [c for c in clips if c not in done]
        rows = [completed_row(c, out) for c in done]
        rows += predict_clips(model, todo, out, sampling=sampling, settings=settings, device=device, progress=progress)
    summary.clips, summary.clips_skipped = len(todo), len(done)
    has_images = any(m.kind == "image" for m in items)
    has_clips = any(m.kind == "video" for m in items)
    if world > 1:
        got = _gather((rows, records), rank, world)
        if rank == 0:
            rows = [r for part in got for r in part[0]]
            records = sorted((r for part in got for r in part[1]), key=lambda r: r["file_name"])
    if rank == 0:
        if has_clips:
            write_summary(rows, out / "summary.csv")
        if has_images:
            with atomic_path(out / "results.json") as tmp:
                tmp.write_text(json.dumps(records, default=json_default))
    summary.rows = rows
    summary.errors = [(r["clip"], r["error"]) for r in rows if r["status"] == "error"]
    ok = [r for r in rows if r["status"] == "ok"]
    summary.clips_without_detection = sum(1 for r in ok if not int(r["frames_with_detection"]))
    summary.frames = sum(int(r["frames_sampled"]) for r in ok)
    summary.seconds = time.perf_counter() - t0
    return summary


def predict_images(model, paths, out_dir: str | os.PathLike, *, device="cpu", score_thresh: float = 0.5,
                   max_dets: int = 20, progress: bool = False) -> Path:
    """Run ``model`` on image files; write IUV PNGs, overlays and ``results.json`` into ``out_dir``."""
    predict_media(model, paths, out_dir, device=device, settings=ClipSettings(score_thresh=score_thresh,
                                                                              max_dets=max_dets),
                  progress=progress, rank=0, world=1)
    return Path(out_dir)


def predict_checkpoint(ckpt, inputs, out_dir, *, device="cpu", sampling: Sampling = Sampling(),
                       settings: ClipSettings = ClipSettings(), progress: bool = False) -> PredictSummary:
    """What ``densemap predict`` does: load a checkpoint and run :func:`predict_media`.

    Under ``torchrun`` with ``device="cuda"`` each rank uses ``cuda:LOCAL_RANK``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from densemap_models.config import Config
    >>> from densemap_models.rcnn import build_model
    >>> torch.manual_seed(0) and None
    >>> cfg = Config(backbone="resnet18", backbone_weights=None, min_size=64, max_size=64)
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> torch.save({"model": build_model(cfg).state_dict(), "config": cfg.to_dict()}, tmp / "random.pt")
    >>> Image.new("RGB", (64, 48)).save(tmp / "black.png")
    >>> s = predict_checkpoint(tmp / "random.pt", [tmp / "black.png"], tmp / "out",
    ...                        settings=ClipSettings(score_thresh=1.01))
    >>> s.images, s.images_without_detection, sorted(p.name for p in (tmp / "out").iterdir())
    (1, 1, ['black_iuv.png', 'black_overlay.png', 'results.json'])
    """
    from .train import load_checkpoint

    if str(device).startswith("cuda") and rank_world()[1] > 1 and torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    model, _, _ = load_checkpoint(ckpt, device=device)
    return predict_media(model, inputs, out_dir, device=device, sampling=sampling, settings=settings,
                         progress=progress)
