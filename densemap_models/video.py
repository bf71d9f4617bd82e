"""Video decoding for ``densemap predict``: frame sampling, and a background decoder over many clips.

Clips are decoded with PyAV (FFmpeg), so every container and codec FFmpeg reads works:
camera-trap AVI with MPEG-4 Part 2, ASF with MS-MPEG4, MP4 / MOV / MKV with H.264, ...

* :class:`Sampling` says which frames to keep: every frame, every N-th (``every``), or the
  first frame at or after each multiple of ``1 / fps`` seconds (``fps``; ``fps=1`` is the
  1-frame-per-second protocol of camera-trap evaluations), at most ``max_frames``.
* :func:`iter_frames` decodes one clip and yields the sampled frames.
* :class:`ClipStream` decodes a list of clips in a background thread into a bounded queue,
  so inference never waits on decoding (it starts on the next clip while the model is
  still busy with the last frames of the current one). A clip that cannot be opened or
  decoded becomes one ``"error"`` event with FFmpeg's one-line reason.
"""

from __future__ import annotations

import math
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from densemap.errors import DensemapError

__all__ = ["VIDEO_SUFFIXES", "IMAGE_SUFFIXES", "VideoError", "Sampling", "Frame", "ClipInfo", "open_clip",
           "iter_frames", "ClipStream"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".asf", ".mov", ".mkv")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class VideoError(DensemapError):
    """A clip that cannot be opened or decoded (the message is one line)."""


@dataclass(frozen=True)
class Sampling:
    """Which decoded frames to keep.

    Parameters
    ----------
    fps : float, optional
        Keep the first frame at or after each multiple of ``1 / fps`` seconds.
    every : int, optional
        Keep frames 0, N, 2N, ... (decoding order). At most one of ``fps`` / ``every``.
    max_frames : int, optional
        Stop after this many kept frames.

    Examples
    --------
    >>> s = Sampling(fps=1.0)
    >>> [s.expected(duration=15.0, n_frames=450)]
    [15]
    >>> Sampling(every=4, max_frames=3).expected(duration=10.0, n_frames=100)
    3
    """

    fps: float | None = None
    every: int | None = None
    max_frames: int | None = None

    def __post_init__(self):
        if self.fps is not None and self.every is not None:
            raise ValueError("give at most one of fps and every")
        if self.fps is not None and not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be a positive number, got {self.fps}")
        if self.every is not None and int(self.every) < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")
        if self.max_frames is not None and int(self.max_frames) < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")

    def expected(self, *, duration: float, n_frames: int) -> int:
        """How many frames a clip of ``duration`` seconds and ``n_frames`` frames yields."""
        if self.fps is not None:
            n = int(math.ceil(duration * self.fps - 1e-9))
        elif self.every is not None:
            n = (n_frames + self.every - 1) // self.every
        else:
            n = n_frames
        return min(n, self.max_frames) if self.max_frames else n

    def to_dict(self) -> dict:
        return {"fps": self.fps, "every": self.every, "max_frames": self.max_frames}


@dataclass(frozen=True)
class Frame:
    """A sampled frame: ``index`` among the decoded frames, ``time`` in seconds, ``image`` (H, W, 3) uint8."""

    index: int
    time: float
    image: np.ndarray


@dataclass(frozen=True)
class ClipInfo:
    """What the container says about a clip's video stream (``n_frames`` 0 when it does not say)."""

    width: int
    height: int
    fps: float
    n_frames: int
    duration: float
    codec: str


def _reason(exc: BaseException) -> str:
    """FFmpeg's (or Python's) message as one line."""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return msg[:300]


def open_clip(path):
    """Open a clip with PyAV: ``(container, stream, ClipInfo)``.

    Raises
    ------
    VideoError
        The file cannot be opened or holds no video stream (one line, naming the file).
    """
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:  # noqa: BLE001 - FFmpeg raises many kinds; all mean "unreadable"
        raise VideoError(f"{path}: cannot open the video ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: no video stream")
    s = container.streams.video[0]
    s.thread_type = "AUTO"
    rate = s.average_rate or s.guessed_rate or s.base_rate
    fps = float(rate) if rate else 0.0
    if s.duration is not None and s.time_base is not None:
        duration = float(s.duration * s.time_base)
    elif container.duration is not None:
        duration = container.duration / 1e6
    else:
        duration = 0.0
    n = int(s.frames or 0) or (int(round(duration * fps)) if fps else 0)
    info = ClipInfo(int(s.codec_context.width), int(s.codec_context.height), fps, n, duration, s.codec_context.name)
    return container, s, info


def iter_frames(path, sampling: Sampling = Sampling(), *, stats: dict | None = None) -> Iterator[Frame]:
    """Decode one clip and yield its sampled frames (RGB).

    Parameters
    ----------
    path : path-like
    sampling : Sampling
    stats : dict, optional
        Filled with ``info`` (:class:`ClipInfo`) on opening and ``decoded`` (frames decoded).

    Raises
    ------
    VideoError
        Unreadable file, no video stream, or a decoding error (FFmpeg's one-line reason).
    """
    container, stream, info = open_clip(path)
    stats = {} if stats is None else stats
    stats.update(info=info, decoded=0)
    src_fps = info.fps or 30.0
    tol = 0.25 / src_fps  # a frame a quarter of a frame early still counts as "at" the sampling time
    kept, k = 0, 0
    try:
        try:
            for i, fr in enumerate(container.decode(stream)):
                stats["decoded"] = i + 1
                t = float(fr.time) if fr.time is not None else i / src_fps
                if sampling.fps is not None:
                    if t < k / sampling.fps - tol:
                        continue
                    k = int(math.floor((t + tol) * sampling.fps)) + 1
                elif sampling.every is not None and i % sampling.every:
                    continue
                yield Frame(i, t, fr.to_ndarray(format="rgb24"))
                kept += 1
                if sampling.max_frames and kept >= sampling.max_frames:
                    return
        except VideoError:
            raise
        except Exception as exc:  # noqa: BLE001 - FFmpeg decoding errors of any kind
            raise VideoError(f"{path}: cannot decode frame {stats['decoded']} ({_reason(exc)})") from None
    finally:
        container.close()


_END = object()


class ClipStream:
    """Decode clips in a background thread; iterate over ``(kind, clip, payload)`` events.

    ``kind`` is ``"start"`` (payload: :class:`ClipInfo`), ``"frame"`` (a :class:`Frame`),
    ``"end"`` (frames decoded) or ``"error"`` (the one-line reason); the events of one clip
    come in that order and clips one after the other, in the given order.

    Parameters
    ----------
    clips : sequence of path-like
    sampling : Sampling
    buffer : int
        Most decoded frames waiting in the queue (bounds memory).

    Examples
    --------
    >>> with ClipStream([], Sampling()) as events:
    ...     list(events)
    []
    """

    def __init__(self, clips, sampling: Sampling = Sampling(), *, buffer: int = 16):
        self.clips = [Path(c) for c in clips]
        self.sampling = sampling
        self._q: queue.Queue = queue.Queue(maxsize=max(1, int(buffer)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="densemap-decode", daemon=True)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for clip in self.clips:
                stats: dict = {}
                try:
                    started = False
                    for fr in iter_frames(clip, self.sampling, stats=stats):
                        if not started:
                            started = self._put(("start", clip, stats["info"]))
                        if not self._put(("frame", clip, fr)):
                            return
                    if not started and not self._put(("start", clip, stats["info"])):
                        return
                    if not self._put(("end", clip, stats["decoded"])):
                        return
                except VideoError as exc:
                    if not self._put(("error", clip, str(exc))):
                        return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            self._put(("crash", None, exc))
        finally:
            self._put(_END)

    def __iter__(self):
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()
        while True:
            item = self._q.get()
            if item is _END:
                return
            if item[0] == "crash":
                raise item[2]
            yield item

    def close(self) -> None:
        """Stop the decoder (it finishes the frame in hand) and drop what is queued."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def __enter__(self) -> "ClipStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
