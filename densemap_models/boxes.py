"""Box IoU, all on :func:`torchvision.ops.box_iou` (the one the detector's matchers use).

* :func:`box_iou_pairs` -- IoU of row-aligned pairs (a proposal and its matched ground truth);
* :func:`box_iou_xywh` -- the (D, G) IoU matrix of COCO ``[x, y, w, h]`` boxes (evaluation);
* :func:`ignore_background` -- training labels: background boxes mostly inside an ignore
  region are left out of the sampling.

Boxes without area on both sides (union 0) have IoU 0, not NaN.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_convert, box_iou

__all__ = ["box_iou_pairs", "box_iou_xywh", "ignore_background"]

PAIR_CHUNK = 256
IGNORE_COVER = 0.5  # an anchor or proposal with at least half its area inside an ignore box is not background


def box_iou_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of row-aligned box pairs.

    Parameters
    ----------
    a, b : (R, 4) float
        Boxes (x0, y0, x1, y1); row ``i`` of ``a`` is paired with row ``i`` of ``b``.

    Returns
    -------
    (R,) float
        The diagonal of ``box_iou(a, b)``, computed in blocks of 256 rows (memory ``256 x 256``).
    """
    if len(a) != len(b):
        raise ValueError(f"box_iou_pairs needs as many boxes in a as in b, got {len(a)} and {len(b)}")
    parts = [box_iou(a[i : i + PAIR_CHUNK], b[i : i + PAIR_CHUNK]).diagonal() for i in range(0, len(a), PAIR_CHUNK)]
    iou = torch.cat(parts) if parts else a.new_zeros(0)
    return torch.nan_to_num(iou, nan=0.0)


def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of COCO boxes.

    Parameters
    ----------
    a : (D, 4) float
    b : (G, 4) float
        Boxes ``[x, y, w, h]``.

    Returns
    -------
    (D, G) float64
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ta = box_convert(torch.from_numpy(a), "xywh", "xyxy")
    tb = box_convert(torch.from_numpy(b), "xywh", "xyxy")
    return torch.nan_to_num(box_iou(ta, tb), nan=0.0).numpy()


def ignore_background(labels: torch.Tensor, boxes: torch.Tensor, ignore: torch.Tensor | None) -> torch.Tensor:
    """Background labels of boxes mostly inside an ignore region, made "not sampled".

    Parameters
    ----------
    labels : (N,) tensor
        A matcher's labels of ``boxes``: 0 background, -1 not sampled, >= 1 foreground (the
        RPN's float labels or the box head's integer ones).
    boxes : (N, 4) float
        Anchors or proposals (x0, y0, x1, y1).
    ignore : (K, 4) float or None
        Ignore regions (a dataset's ``iscrowd`` boxes).

    Returns
    -------
    (N,) tensor
        ``labels`` with 0 replaced by -1 where at least ``IGNORE_COVER`` of a box's area lies
        inside one ignore box; foreground labels are never changed. ``labels`` itself when
        there is nothing to ignore.
    """
    if ignore is None or not len(ignore) or not len(boxes):
        return labels
    lt = torch.maximum(boxes[:, None, :2], ignore[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], ignore[None, :, 2:])
    inside = (rb - lt).clamp(min=0).prod(-1)
    area = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(-1)
    covered = (inside >= IGNORE_COVER * area[:, None]).any(1) & (area > 0)
    out = labels.clone()
    out[(labels == 0) & covered] = -1
    return out
