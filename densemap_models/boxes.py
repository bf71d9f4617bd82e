"""Box IoU, all on :func:`torchvision.ops.box_iou` (the one the detector's matchers use).

* :func:`box_iou_pairs` -- IoU of row-aligned pairs (a proposal and its matched ground truth);
* :func:`box_iou_xywh` -- the (D, G) IoU matrix of COCO ``[x, y, w, h]`` boxes (evaluation).

Boxes without area on both sides (union 0) have IoU 0, not NaN.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_convert, box_iou

__all__ = ["box_iou_pairs", "box_iou_xywh"]

PAIR_CHUNK = 256


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
