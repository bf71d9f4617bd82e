"""Prediction on video clips: detect, track, smooth and write each clip (used by :mod:`densemap_models.predict`).

:func:`predict_clips` consumes a :class:`~densemap_models.video.ClipStream` (decoding in a
background thread) and, per clip, runs the model on each sampled frame
(:func:`detect`), gives the detections track ids (:class:`~densemap_models.tracking.Tracker`),
fuses them along their tracks (:class:`~densemap_models.smoothing.WindowSmoother`, ``radius``
frames behind) and writes the finished frames: the overlay video as they come, the clip
JSON at the end. Both go through temporary files renamed when complete, the JSON last, so
a clip whose JSON exists is complete (:func:`clip_is_complete`) and an interrupted one
leaves nothing behind.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from densemap._io import atomic_path, json_default
from densemap.annotation.coco import encode_rle

from .clip_outputs import ClipResult, Detection, OverlayVideo, error_row
from .drawing import overlay as draw_overlay
from .drawing import paste_iuv
from .inputs import MediaItem, output_paths
from .smoothing import WindowSmoother
from .surface_outputs import SurfaceFile, detection_surface
from .tracking import Tracker
from .video import ClipStream, Sampling

__all__ = ["ClipSettings", "detect", "predict_clips", "clip_is_complete", "completed_row"]


@dataclass(frozen=True)
class ClipSettings:
    """How clips are processed.

    score_thresh : least detection score kept; max_dets : most detections per frame;
    smooth_radius : frames on each side fused by the smoother (0 = no smoothing);
    smooth_align : how neighbours are carried onto the current box ("image" or "box", see
    :func:`~densemap_models.smoothing.box_transform`);
    birth_score, max_gap, iou_thresh, match_by : the :class:`~densemap_models.tracking.Tracker`'s;
    overlay : write ``<clip>_overlay.mp4`` too; surface : write ``<clip>_surface.npz`` too, each
    detection's pixels as points on the reference mesh (:mod:`densemap_models.surface_outputs`).
    """

    score_thresh: float = 0.5
    max_dets: int = 20
    smooth_radius: int = 2
    birth_score: float = 0.5
    max_gap: int = 2
    iou_thresh: float = 0.3
    match_by: str = "box"
    smooth_align: str = "image"
    overlay: bool = False
    surface: bool = False
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("score_thresh", "max_dets", "smooth_radius", "birth_score", "max_gap",
                                              "iou_thresh", "match_by", "smooth_align", "overlay", "surface")}


@torch.no_grad()
def detect(model, image: np.ndarray, *, device="cpu", score_thresh: float = 0.5, max_dets: int = 20
           ) -> list[Detection]:
    """The model's detections of one (H, W, 3) uint8 RGB image at ``score >= score_thresh``, best first."""
    image = image if image.flags.writeable and image.flags.c_contiguous else np.array(image)
    x = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0).to(device)
    r = model([x])[0]
    order = torch.argsort(r["scores"], descending=True)
    order = order[r["scores"][order] >= score_thresh][:max_dets]
    boxes = r["boxes"][order].cpu().numpy().astype(np.float64)
    scores = r["scores"][order].cpu().numpy()
    masks = (r["masks"][order, 0] >= 0.5).cpu().numpy().astype(np.uint8) if "masks" in r else None
    dp = r["densepose"][order.to(r["densepose"].fine_segm.device)].to("cpu")
    return [Detection(boxes[k], float(scores[k]),
                      encode_rle(masks[k]) if masks is not None else encode_rle(np.zeros(image.shape[:2], np.uint8)),
                      dp[k]) for k in range(len(order))]


def clip_is_complete(item: MediaItem, out_dir, *, overlay: bool, surface: bool = False) -> bool:
    """Whether a clip's outputs are all there (its JSON is written last, atomically)."""
    return all(p.is_file() for p in output_paths(item, out_dir, overlay=overlay, surface=surface))


def completed_row(item: MediaItem, out_dir) -> dict:
    """The summary row kept in a finished clip's JSON."""
    with open(output_paths(item, out_dir)[0]) as fh:
        return json.load(fh)["summary"]


def _overlay_frame(image, dets: list[Detection], score_thresh: float):
    iuv = paste_iuv(image.shape[:2], [d.box for d in dets], [d.maps for d in dets])
    labels = [(f"#{d.track_id} " if d.track_id >= 0 else "") + f"{d.score:.2f}" for d in dets]
    caption = None if dets else f"no detection at score >= {score_thresh:g}"
    return draw_overlay(image, iuv, [d.box for d in dets], labels=labels, caption=caption)


class _Clip:
    """The state of the clip being predicted."""

    def __init__(self, item: MediaItem, info, out_dir, sampling: Sampling, settings: ClipSettings):
        self.item, self.settings, self.t0 = item, settings, time.perf_counter()
        self.paths = output_paths(item, out_dir, overlay=settings.overlay, surface=settings.surface)
        self.tracker = Tracker(iou_thresh=settings.iou_thresh, birth_score=settings.birth_score,
                               max_gap=settings.max_gap, match_by=settings.match_by)
        self.smoother = WindowSmoother(settings.smooth_radius, align=settings.smooth_align)
        self.result = ClipResult(item.rel, info, sampling, settings=settings.to_dict())
        self.pending: deque = deque()
        rate = info.fps or 30.0
        rate = sampling.fps if sampling.fps else rate / (sampling.every or 1)
        self.video = OverlayVideo(self.paths[1], min(rate, info.fps or rate)) if settings.overlay else None
        self.surface = SurfaceFile(self.paths[-1]) if settings.surface else None
        self.surface_name = Path(item.stem).as_posix() + "_surface.npz"

    def add(self, frame, dets: list[Detection]) -> None:
        boxes = np.array([d.box for d in dets]).reshape(-1, 4)
        ids = self.tracker.update(boxes, [d.score for d in dets], [d.mask for d in dets])
        for d, t in zip(dets, ids):
            d.track_id = int(t)
        self.pending.append(frame)
        self._write(self.smoother.push(dets))

    def _write(self, finished: list[list[Detection]]) -> None:
        for dets in finished:
            frame = self.pending.popleft()
            if self.video is not None:
                self.video.write(_overlay_frame(frame.image, dets, self.settings.score_thresh))
            if self.surface is not None:
                for k, d in enumerate(dets):
                    key = f"f{len(self.result.frames)}_d{k}"
                    arrays = detection_surface(d.maps["iuv"], d.box)
                    self.surface.add(key, arrays)
                    d.extra["surface"] = {"file": self.surface_name, "key": key, "points": len(arrays["vertex"])}
            self.result.add_frame(frame, dets)  # the detections go when the smoother's window moves on

    def finish(self, frames_read: int) -> dict:
        self._write(self.smoother.flush())
        self.result.frames_read = int(frames_read)
        if self.video is not None:
            self.video.close()
        if self.surface is not None:
            self.surface.close()  # before the JSON: a clip whose JSON exists is complete
        seconds = time.perf_counter() - self.t0
        doc = self.result.document(seconds)
        with atomic_path(self.paths[0]) as tmp:
            tmp.write_text(json.dumps(doc, default=json_default, separators=(",", ":")))
        return doc["summary"]

    def abort(self) -> None:
        if self.video is not None:
            self.video.abort()
        if self.surface is not None:
            self.surface.abort()


def predict_clips(model, items: list[MediaItem], out_dir, *, sampling: Sampling, settings: ClipSettings,
                  device="cpu", progress: bool = False) -> list[dict]:
    """Predict the clips ``items`` (not yet complete) and write their outputs; returns their summary rows.

    A clip that cannot be opened or decoded gets an ``"error"`` row with the decoder's
    one-line reason and no outputs. On any exception (``KeyboardInterrupt`` included) the
    clip in progress leaves no file behind.
    """
    rows = []
    by_path = {it.path: it for it in items}
    bar = fbar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="clips", unit="clip", position=0)
    clip = None
    t_start = time.perf_counter()
    try:
        with ClipStream([it.path for it in items], sampling) as stream:
            for kind, path, payload in stream:
                item = by_path[Path(path)]
                if kind == "start":
                    clip = _Clip(item, payload, out_dir, sampling, settings)
                    if bar is not None:
                        fbar = tqdm(total=sampling.expected(duration=payload.duration, n_frames=payload.n_frames),
                                    desc=Path(item.rel).name[-30:], unit="frame", position=1, leave=False)
                elif kind == "frame":
                    clip.add(payload, detect(model, payload.image, device=device, score_thresh=settings.score_thresh,
                                             max_dets=settings.max_dets))
                    if fbar is not None:
                        fbar.update(1)
                else:
                    if kind == "end":
                        rows.append(clip.finish(payload))
                    else:  # "error": possibly after some frames
                        if clip is not None and clip.item is item:
                            clip.abort()
                        rows.append(error_row(item.rel, str(payload).removeprefix(f"{path}: "),
                                             time.perf_counter() - t_start))
                    clip = None
                    t_start = time.perf_counter()
                    if fbar is not None:
                        fbar.close()
                        fbar = None
                    if bar is not None:
                        bar.update(1)
    except BaseException:
        if clip is not None:
            clip.abort()
        raise
    finally:
        for b in (fbar, bar):
            if b is not None:
                b.close()
    return rows
