"""One RoI's DensePose maps at the resolution of its box (DensePose's ``ToChartResult``).

:func:`box_maps` is the one post-processing step of a :class:`~densemap_models.heads.DensePoseOutput`:
the heatmaps are resized bilinearly to the integer box size, ``labels = argmax softmax(alpha *
z_fine) * (argmax z_coarse > 0)``, and u, v, sigma_u, sigma_v are read from the pixel's chart
channel. Two results are built on it:

* :func:`chart_result` -- what evaluation and ``densemap predict`` use (U, V quantised to uint8);
* :func:`densemap_models.pseudo_points.box_prediction` -- what pseudo-labels sample from
  (float U, V and the confidence channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .heads import DensePoseOutput

__all__ = ["BoxMaps", "box_size", "box_maps", "chart_result"]


@dataclass(frozen=True)
class BoxMaps:
    """DensePose maps of one detection at box resolution (h rows, w columns), torch tensors.

    labels : (h, w) int64 -- chart 1..24, 0 = background
    u, v : (h, w) float -- chart coordinates in the pixel's chart (not clamped)
    sigma_u, sigma_v : (h, w) float -- u/v standard deviations in the pixel's chart (low = confident)
    chart_conf : (h, w) float -- calibrated posterior ``max softmax(alpha * z_fine)`` of the best chart
        (at every pixel, background included)
    mask_prob : (h, w) float -- calibrated foreground posterior ``softmax(alpha_coarse * z_coarse)[1]``
    """

    labels: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    sigma_u: torch.Tensor
    sigma_v: torch.Tensor
    chart_conf: torch.Tensor
    mask_prob: torch.Tensor


def box_size(box) -> tuple[int, int]:
    """``(w, h)``: the integer size of a box ``(x0, y0, x1, y1)``, at least 1 x 1."""
    x0, y0, x1, y1 = [float(t) for t in box]
    return max(int(x1 - x0), 1), max(int(y1 - y0), 1)


@torch.no_grad()
def box_maps(output: DensePoseOutput, box) -> BoxMaps:
    """The box-resolution maps of one RoI.

    Parameters
    ----------
    output : DensePoseOutput
        One RoI (tensors of shape (1, C, S, S)).
    box : (4,) float
        x0, y0, x1, y1 in image pixels (only the size is used).

    Returns
    -------
    BoxMaps
        Maps of shape (h, w) = the integer box size (:func:`box_size`), float32.
    """
    if len(output) != 1:
        raise ValueError(f"expected the output of one RoI, got {len(output)}")
    w, h = box_size(box)

    def up(t):
        return F.interpolate(t.float(), size=(h, w), mode="bilinear", align_corners=False)[0]

    probs = torch.softmax(up(output.alpha) * up(output.fine_segm), dim=0)
    conf, lab = probs.max(dim=0)
    coarse = up(output.coarse_segm)
    fg_prob = torch.softmax(up(output.alpha_coarse) * coarse, dim=0)[1]
    lab = lab * (coarse.argmax(dim=0) > 0)
    idx = lab[None]
    return BoxMaps(labels=lab, u=up(output.u).gather(0, idx)[0], v=up(output.v).gather(0, idx)[0],
                   sigma_u=up(output.sigma_u).gather(0, idx)[0], sigma_v=up(output.sigma_v).gather(0, idx)[0],
                   chart_conf=conf, mask_prob=fg_prob)


def chart_result(output: DensePoseOutput, box) -> dict:
    """Box-size IUV of one detection (``output`` and ``box`` as in :func:`box_maps`).

    Returns
    -------
    dict
        ``iuv`` (3, h, w) uint8 [I, U * 255, V * 255] (h, w = int box size, at least 1; U, V
        clamped to [0, 1] and truncated); ``sigma`` (2, h, w) float32 (sigma_u, sigma_v of the
        pixel's chart); ``conf`` (h, w) float32 calibrated chart posterior of the predicted label
        (0 on background); ``fg_conf`` (h, w) float32 calibrated foreground posterior.
    """
    m = box_maps(output, box)
    u, v = m.u.clamp(0, 1), m.v.clamp(0, 1)
    iuv = torch.stack([m.labels.to(torch.uint8), (u * 255).to(torch.uint8), (v * 255).to(torch.uint8)])
    fg = m.labels > 0
    return {"iuv": iuv.cpu().numpy(), "sigma": torch.stack([m.sigma_u, m.sigma_v]).cpu().numpy().astype(np.float32),
            "conf": (m.chart_conf * fg).cpu().numpy().astype(np.float32),
            "fg_conf": m.mask_prob.cpu().numpy().astype(np.float32)}
