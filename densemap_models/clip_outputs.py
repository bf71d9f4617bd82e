"""What ``densemap predict`` writes for a video: the clip JSON, the overlay video, the summary rows.

* :class:`Detection` -- one detection of one frame (box, score, mask, the model's RoI output,
  the fused output after smoothing, the track id, and ``extra`` fields that go into its
  JSON record as they are);
* :func:`encode_iuv` / :func:`decode_iuv` -- the box IUV as base64 PNG (lossless, the
  DensePose challenge's ``uv_data``);
* :class:`ClipResult` -- the frames of one clip, its JSON document and its summary row;
* :class:`OverlayVideo` -- the overlay mp4 (IUV colours, boxes, track ids, scores), written
  to a temporary file and renamed when complete;
* :func:`write_summary` / :func:`read_summary` -- ``summary.csv``.
"""

from __future__ import annotations

import base64
import csv
import io
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from densemap._io import atomic_path, streamed_output

from .heads import DensePoseOutput
from .postprocess import chart_result

__all__ = ["Detection", "encode_iuv", "decode_iuv", "ClipResult", "OverlayVideo", "SUMMARY_FIELDS",
           "write_summary", "read_summary", "error_row"]

SUMMARY_FIELDS = ("clip", "status", "frames_read", "frames_sampled", "frames_with_detection", "detections", "tracks",
                  "mean_score", "charts_per_track", "seconds", "error")


def encode_iuv(iuv: np.ndarray) -> str:
    """(3, h, w) uint8 IUV -> base64 PNG (lossless).

    Examples
    --------
    >>> x = np.random.default_rng(0).integers(0, 255, (3, 5, 7), dtype=np.uint8)
    >>> bool((decode_iuv(encode_iuv(x)) == x).all())
    True
    """
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(iuv.transpose(1, 2, 0))).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_iuv(data: str) -> np.ndarray:
    """base64 PNG -> (3, h, w) uint8 IUV (the inverse of :func:`encode_iuv`)."""
    with Image.open(io.BytesIO(base64.b64decode(data))) as im:
        return np.asarray(im.convert("RGB")).transpose(2, 0, 1).copy()


@dataclass(eq=False)
class Detection:
    """One detection in one frame.

    box : (4,) float x0, y0, x1, y1; score : float; mask : COCO RLE (full frame, str counts);
    output : the model's DensePose output of this RoI (tensors (1, C, S, S), CPU);
    track_id : int (-1 = untracked); fused : the smoothed output (None = not smoothed);
    extra : further fields for the JSON record (name -> JSON value).
    """

    box: np.ndarray
    score: float
    mask: dict
    output: DensePoseOutput
    track_id: int = -1
    fused: DensePoseOutput | None = None
    extra: dict = field(default_factory=dict)
    _maps: dict | None = field(default=None, repr=False)

    @property
    def maps(self) -> dict:
        """:func:`~densemap_models.postprocess.chart_result` of the fused output (else the raw one)."""
        if self._maps is None:
            self._maps = chart_result(self.fused if self.fused is not None else self.output, self.box)
        return self._maps

    def record(self) -> dict:
        """The JSON record (COCO results style, plus DensePose ``uv_data`` and the track id)."""
        b = [float(t) for t in self.box]
        m = self.maps
        fg = m["iuv"][0] > 0
        return {"bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": round(float(self.score), 5),
                "category_id": 1, "track_id": int(self.track_id), "segmentation": self.mask,
                "uv_shape": list(m["iuv"].shape), "uv_data": encode_iuv(m["iuv"]),
                "mean_sigma_uv": float(m["sigma"][:, fg].mean()) if fg.any() else None,
                "mean_chart_confidence": float(m["conf"][fg].mean()) if fg.any() else None,
                "smoothed": self.fused is not None, **self.extra}


class ClipResult:
    """The frames of one clip as they are finished, its JSON document and its summary row."""

    def __init__(self, rel: str, info, sampling, *, settings: dict):
        self.rel, self.info, self.sampling, self.settings = rel, info, sampling, settings
        self.frames: list[dict] = []
        self.charts: dict[int, set] = {}
        self.tracks: dict[int, list] = {}
        self.scores: list[float] = []
        self.frames_read = 0

    def add_frame(self, frame, detections: list[Detection]) -> None:
        recs = []
        for d in detections:
            r = d.record()
            recs.append(r)
            self.scores.append(float(d.score))
            if d.track_id >= 0:
                self.charts.setdefault(d.track_id, set()).update(int(c) for c in np.unique(d.maps["iuv"][0]) if c)
                self.tracks.setdefault(d.track_id, []).append(len(self.frames))
        self.frames.append({"frame": len(self.frames), "frame_index": int(frame.index),
                            "timestamp": round(float(frame.time), 6), "detections": recs})

    def summary_row(self, seconds: float) -> dict:
        with_det = sum(1 for f in self.frames if f["detections"])
        charts = ";".join(f"{t}:{','.join(str(c) for c in sorted(cs))}" for t, cs in sorted(self.charts.items()))
        return {"clip": self.rel, "status": "ok", "frames_read": self.frames_read, "frames_sampled": len(self.frames),
                "frames_with_detection": with_det, "detections": len(self.scores), "tracks": len(self.tracks),
                "mean_score": round(float(np.mean(self.scores)), 4) if self.scores else "",
                "charts_per_track": charts, "seconds": round(seconds, 3), "error": ""}

    def document(self, seconds: float) -> dict:
        from densemap._version import __version__

        i = self.info
        tracks = [{"track_id": t, "first_frame": fr[0], "last_frame": fr[-1], "n_frames": len(fr),
                   "charts": sorted(self.charts.get(t, ()))} for t, fr in sorted(self.tracks.items())]
        return {"video": self.rel, "width": i.width, "height": i.height, "fps": i.fps, "codec": i.codec,
                "duration": i.duration, "sampling": self.sampling.to_dict(), "settings": self.settings,
                "frames_read": self.frames_read, "n_frames": len(self.frames), "frames": self.frames,
                "tracks": tracks, "summary": self.summary_row(seconds), "densemap_version": __version__}


def error_row(rel: str, reason: str, seconds: float = 0.0) -> dict:
    """The summary row of a clip that could not be read."""
    return {**{k: "" for k in SUMMARY_FIELDS}, "clip": rel, "status": "error", "seconds": round(seconds, 3),
            "error": " ".join(str(reason).split())}


class OverlayVideo(streamed_output):
    """An mp4 of overlay frames, written to a temporary file beside ``path`` and renamed on :meth:`close`.

    H.264 (libx264) when FFmpeg has it, else MPEG-4 Part 2; odd frame sizes are padded by one
    pixel (4:2:0 chroma needs even sizes). :meth:`abort` (or leaving a ``with`` block by an
    exception) removes the temporary file.
    """

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(1)
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._container = self._stream = None

    def write(self, image: Image.Image) -> None:
        import av

        a = np.asarray(image.convert("RGB"))
        H, W = a.shape[:2]
        if self._container is None:
            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
            self._container = av.open(str(self._tmp), mode="w", format="mp4")
            self._stream = self._container.add_stream(codec, rate=self.fps)
            self._stream.width, self._stream.height = W + W % 2, H + H % 2
            self._stream.pix_fmt = "yuv420p"
            if codec == "libx264":
                self._stream.options = {"crf": "20", "preset": "veryfast"}
        if H % 2 or W % 2:
            a = np.pad(a, ((0, H % 2), (0, W % 2), (0, 0)))
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")):
            self._container.mux(packet)

    def close(self) -> None:
        """Finish the file and move it into place (an empty clip gives a one-frame black video)."""
        if self._container is None:
            self.write(Image.new("RGB", (16, 16)))
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._atomic.__exit__(None, None, None)

    def abort(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file is removed anyway
                pass
        self._atomic.__exit__(RuntimeError, None, None)


def write_summary(rows: list[dict], path: str | os.PathLike) -> Path:
    """``summary.csv`` (one row per clip, sorted by clip), written atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=SUMMARY_FIELDS)
            w.writeheader()
            for r in sorted(rows, key=lambda r: r["clip"]):
                w.writerow({k: r.get(k, "") for k in SUMMARY_FIELDS})
    return path


def read_summary(path: str | os.PathLike) -> list[dict]:
    """The rows of a ``summary.csv`` (values as str)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
