"""Tracking detections across video frames: Hungarian assignment on IoU, tracks born and ended with hysteresis.

Each frame, :meth:`Tracker.update` matches the frame's detections to the live tracks by
maximising the total IoU with the last box (or mask) of each track
(``scipy.optimize.linear_sum_assignment`` on ``1 - IoU``; pairs under ``iou_thresh`` are
not matched). Hysteresis, on both ends of a track's life:

* **birth** -- an unmatched detection starts a track only if its score is at least
  ``birth_score``; a weaker one (down to the caller's detection threshold) may only
  *continue* a track. A detection that neither continues nor starts a track gets the
  track id ``-1``;
* **death** -- a track survives up to ``max_gap`` consecutive frames without a match
  (an animal behind a tree for a moment keeps its id), and ends after that.

Track ids are 1, 2, 3, ... in order of birth within one clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from densemap._validate import check_choice

__all__ = ["Tracker", "Track", "box_iou_matrix"]

MatchBy = Literal["box", "mask"]


def box_iou_matrix(a, b) -> np.ndarray:
    """(n, m) IoU of boxes ``a`` (n, 4) and ``b`` (m, 4), both x0, y0, x1, y1.

    Examples
    --------
    >>> box_iou_matrix([[0, 0, 2, 2]], [[1, 0, 3, 2], [5, 5, 6, 6]]).round(3).tolist()
    [[0.333, 0.0]]
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _mask_iou_matrix(a: list, b: list) -> np.ndarray:
    """(n, m) IoU of COCO RLE masks (str or bytes counts)."""
    from pycocotools import mask as mask_utils

    from densemap.annotation.coco import rle_for_pycocotools

    if not a or not b:
        return np.zeros((len(a), len(b)))
    ra = [rle_for_pycocotools(r) for r in a]
    rb = [rle_for_pycocotools(r) for r in b]
    return np.asarray(mask_utils.iou(ra, rb, [0] * len(rb)), dtype=np.float64).reshape(len(a), len(b))


@dataclass
class Track:
    """One track: its id, last box / mask, the frame it was last matched in, and its history."""

    id: int
    box: np.ndarray
    mask: object
    last_frame: int
    first_frame: int
    frames: list = field(default_factory=list)

    @property
    def length(self) -> int:
        return len(self.frames)


class Tracker:
    """Online multi-object tracker for one clip (see the module doc).

    Parameters
    ----------
    iou_thresh : float
        Least IoU of a detection with a track's last box (mask) to continue it.
    birth_score : float
        Least score of an unmatched detection to start a track.
    max_gap : int
        Frames a track may go unmatched and still continue (0 = ends at the first miss).
    match_by : {"box", "mask"}
        Which IoU to match on (masks as COCO RLEs).

    Examples
    --------
    >>> t = Tracker(birth_score=0.5, max_gap=1)
    >>> t.update([[0, 0, 10, 10]], [0.9]).tolist()
    [1]
    >>> t.update(np.zeros((0, 4)), []).tolist()   # missed once: still alive
    []
    >>> t.update([[1, 0, 11, 10], [50, 50, 60, 60]], [0.9, 0.3]).tolist()  # 2nd too weak to start a track
    [1, -1]
    """

    def __init__(self, *, iou_thresh: float = 0.3, birth_score: float = 0.5, max_gap: int = 2,
                 match_by: MatchBy = "box"):
        check_choice("match_by", match_by, ("box", "mask"))
        if not 0 <= iou_thresh <= 1:
            raise ValueError(f"iou_thresh must be in [0, 1], got {iou_thresh}")
        if int(max_gap) < 0:
            raise ValueError(f"max_gap must be >= 0, got {max_gap}")
        self.iou_thresh = float(iou_thresh)
        self.birth_score = float(birth_score)
        self.max_gap = int(max_gap)
        self.match_by = match_by
        self.live: list[Track] = []
        self.tracks: list[Track] = []  # every track ever born, in birth order
        self.frame = -1

    def _iou(self, boxes, masks) -> np.ndarray:
        if self.match_by == "mask" and masks is not None:
            return _mask_iou_matrix([t.mask for t in self.live], list(masks))
        return box_iou_matrix([t.box for t in self.live], boxes)

    def update(self, boxes, scores, masks=None) -> np.ndarray:
        """Add one frame's detections; returns their track ids (``-1``: untracked).

        Parameters
        ----------
        boxes : (n, 4) float
            x0, y0, x1, y1.
        scores : (n,) float
        masks : list of n COCO RLEs, optional
            Needed with ``match_by="mask"``.

        Returns
        -------
        (n,) int64
        """
        self.frame += 1
        f = self.frame
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        if self.match_by == "mask" and masks is None and len(boxes):
            raise ValueError("match_by='mask' needs the detections' masks")
        self.live = [t for t in self.live if f - t.last_frame <= self.max_gap + 1]
        ids = -np.ones(len(boxes), np.int64)
        matched = set()
        if self.live and len(boxes):
            iou = self._iou(boxes, masks)
            rows, cols = linear_sum_assignment(1.0 - iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= self.iou_thresh and iou[r, c] > 0:
                    self._extend(self.live[r], c, boxes, masks)
                    ids[c] = self.live[r].id
                    matched.add(c)
        for c in np.argsort(-scores, kind="stable"):
            if c in matched or scores[c] < self.birth_score:
                continue
            t = Track(len(self.tracks) + 1, boxes[c], None if masks is None else masks[c], f, f)
            t.frames.append(f)
            self.tracks.append(t)
            self.live.append(t)
            ids[c] = t.id
        return ids

    def _extend(self, t: Track, c: int, boxes, masks) -> None:
        t.box = boxes[c]
        t.mask = None if masks is None else masks[c]
        t.last_frame = self.frame
        t.frames.append(self.frame)
