"""Losses of the auto-calibrated DensePose head, one per concept.

* :func:`scaled_cross_entropy` -- ``-log softmax(alpha * z)_y`` (paper Eq. 2), the chart index
  I loss on annotated points and the foreground mask loss;
* :func:`gaussian_nll` -- the diagonal Gaussian negative log-likelihood of Eq. 3,
  ``D/2 log 2pi + 1/2 sum_i (log sigma_i^2 + (y_hat_i - y_i)^2 / sigma_i^2)``, for (u, v) (D = 2);
* :func:`densepose_losses` -- the three DensePose terms ``loss_densepose_S`` (mask),
  ``loss_densepose_I`` (chart, annotated points only) and ``loss_densepose_UV`` (NLL) for RoIs
  with their targets (:class:`RoITargets`, built by :func:`roi_targets`).

Empty inputs give a zero loss that still depends on the predictions, so the graph (and DDP's
gradient bookkeeping) is the same for every batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from .heads import DensePoseOutput

__all__ = ["scaled_cross_entropy", "gaussian_nll", "sample_maps", "RoITargets", "roi_targets", "densepose_losses"]

LOG_2PI = math.log(2.0 * math.pi)


def scaled_cross_entropy(logits: torch.Tensor, alpha: torch.Tensor, target: torch.Tensor, *,
                         reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of the scaled softmax: ``-log softmax(alpha * z)_y``.

    Parameters
    ----------
    logits : (P, K) float
        Raw class scores z.
    alpha : (P,) or (P, 1) float
        Positive inverse temperatures (high = confident).
    target : (P,) int
        Class index y in 0..K-1.
    reduction : {"mean", "sum", "none"}
    """
    alpha = alpha.reshape(-1, 1)
    loss = F.cross_entropy(alpha * logits, target.long(), reduction="none")
    return _reduce(loss, reduction, logits)


def gaussian_nll(pred: torch.Tensor, target: torch.Tensor, sigma: torch.Tensor, *, reduction: str = "sum") -> torch.Tensor:
    """Negative log-likelihood of ``target`` under N(pred, diag(sigma^2)) (paper Eq. 3).

    Parameters
    ----------
    pred, target, sigma : (P, D) or (P,) float
        Prediction, ground truth and standard deviation (> 0; low = confident).
    reduction : {"sum", "mean", "none"}
        Over points P; the D components of one point are always summed.

    Returns
    -------
    Tensor
        ``D/2 log 2pi + 1/2 sum_d (log sigma_d^2 + (pred_d - target_d)^2 / sigma_d^2)`` per point, reduced.
    """
    if pred.dim() == 1:
        pred, target, sigma = pred[:, None], target[:, None], sigma[:, None]
    # Not torch.nn.functional.gaussian_nll_loss(pred, target, sigma**2, full=True): it clamps the
    # variance at eps (default 1e-6, so it differs for sigma < 1e-3, and sigma_min may be set that
    # low), and even with eps = finfo.tiny it agrees only to float32 rounding (<= 3e-7 of the
    # terms' size, but up to 4e-3 relative where a point's NLL crosses 0), which is enough to change
    # a training run's trajectory within a few steps; it also syncs with the device (any(var < 0)).
    per = 0.5 * LOG_2PI + torch.log(sigma) + 0.5 * ((pred - target) / sigma) ** 2
    return _reduce(per.sum(dim=1), reduction, pred)


def _reduce(loss: torch.Tensor, reduction: str, like: torch.Tensor) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction not in ("mean", "sum"):
        raise ValueError(f"unknown reduction {reduction!r}; expected one of ['mean', 'sum', 'none']")
    if loss.numel() == 0:
        return like.sum(dtype=torch.float32) * 0.0
    return loss.mean() if reduction == "mean" else loss.sum()


def sample_maps(maps: torch.Tensor, roi: torch.Tensor, xy: torch.Tensor,
                channel: torch.Tensor | None = None) -> torch.Tensor:
    """Bilinear samples of per-RoI maps at points (pixel centres at ``(i + 0.5) / S``).

    Parameters
    ----------
    maps : (R, C, S, S)
    roi : (P,) int -- RoI of each point
    xy : (P, 2) float -- position in the RoI, in [0, 1] (x right, y down)
    channel : (P,) int, optional -- sample this channel only

    Returns
    -------
    (P, C), or (P,) with ``channel``
    """
    S_h, S_w = maps.shape[-2:]
    x = xy[:, 0] * S_w - 0.5
    y = xy[:, 1] * S_h - 0.5
    xf, yf = torch.floor(x), torch.floor(y)
    wx, wy = (x - xf)[:, None], (y - yf)[:, None]
    x0, x1 = xf.clamp(0, S_w - 1).long(), (xf + 1).clamp(0, S_w - 1).long()
    y0, y1 = yf.clamp(0, S_h - 1).long(), (yf + 1).clamp(0, S_h - 1).long()

    def at(yy, xx):
        if channel is None:
            return maps[roi, :, yy, xx]
        return maps[roi, channel, yy, xx][:, None]

    out = (at(y0, x0) * (1 - wx) * (1 - wy) + at(y0, x1) * wx * (1 - wy)
           + at(y1, x0) * (1 - wx) * wy + at(y1, x1) * wx * wy)
    return out if channel is None else out[:, 0]


@dataclass
class RoITargets:
    """DensePose targets of R RoIs (P annotated points in them).

    mask : (R, S, S) float {0, 1} -- foreground of the matched instance in the RoI's heatmap grid
    mask_valid : (R,) bool -- whether the instance has a mask (dp_masks or segmentation)
    point_roi : (P,) int
    point_xy : (P, 2) float -- position in the RoI, [0, 1]
    point_i : (P,) int -- chart 1..24
    point_uv : (P, 2) float
    parts : (R, S, S) int, optional -- coarse part 1..14 of each heatmap pixel (0 = background)
    parts_valid : (R,) bool, optional -- whether the instance has per-part masks (``dp_masks``)
    """

    mask: torch.Tensor
    mask_valid: torch.Tensor
    point_roi: torch.Tensor
    point_xy: torch.Tensor
    point_i: torch.Tensor
    point_uv: torch.Tensor
    parts: torch.Tensor | None = None
    parts_valid: torch.Tensor | None = None

    def to(self, device) -> "RoITargets":
        return RoITargets(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
                             for f in fields(self)})


def roi_targets(rois: list[torch.Tensor], matched: list[torch.Tensor], targets: list[dict], *,
                heatmap_size: int) -> RoITargets:
    """Targets of DensePose RoIs from their matched ground-truth instances.

    Parameters
    ----------
    rois : per image (R_i, 4) float -- proposals (x0, y0, x1, y1) in the model's input frame
    matched : per image (R_i,) int -- index of the ground-truth instance of each RoI
    targets : per image dict with ``boxes`` (N, 4), ``dp_box_masks`` (N, 256, 256) uint8
        (foreground on the 256 x 256 box grid; all zeros + ``dp_mask_valid`` False when absent)
        and ``dp_points`` (Q, 6) float: instance, x_rel, y_rel (box-relative, dp_x / 256), I, U, V.
    heatmap_size : int

    Notes
    -----
    Points outside the RoI are dropped (they carry no signal for that RoI).
    """
    S = heatmap_size
    ref = rois[0] if rois else torch.zeros(0, 4)
    masks, valid, parts, parts_ok, p_roi, p_xy, p_i, p_uv = [], [], [], [], [], [], [], []
    offset = 0
    for r, m, t in zip(rois, matched, targets):
        R = len(r)
        if R == 0:
            continue
        gt = t["boxes"][m]  # (R, 4)
        gw = (gt[:, 2] - gt[:, 0]).clamp(min=1e-6)
        gh = (gt[:, 3] - gt[:, 1]).clamp(min=1e-6)
        # heatmap pixel centres of each RoI, in the matched box's [0, 1] frame -> grid_sample coords
        c = (torch.arange(S, device=r.device, dtype=r.dtype) + 0.5) / S
        xs = r[:, 0:1] + c[None] * (r[:, 2:3] - r[:, 0:1])  # (R, S)
        ys = r[:, 1:2] + c[None] * (r[:, 3:4] - r[:, 1:2])
        gx = (xs - gt[:, 0:1]) / gw[:, None] * 2 - 1
        gy = (ys - gt[:, 1:2]) / gh[:, None] * 2 - 1
        grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)  # (R, S, S, 2)
        box_masks = t["dp_box_masks"][m].to(dtype=r.dtype)[:, None]
        mk = F.grid_sample(box_masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
        masks.append((mk >= 0.5).to(r.dtype))
        valid.append(t["dp_mask_valid"][m])
        if "dp_box_parts" in t:  # labels: nearest, not interpolated
            pl = t["dp_box_parts"][m].to(dtype=r.dtype)[:, None]
            parts.append(F.grid_sample(pl, grid, mode="nearest", padding_mode="zeros", align_corners=False)[:, 0].long())
            parts_ok.append(t["dp_parts_valid"][m])
        else:
            parts.append(torch.zeros((R, S, S), dtype=torch.long, device=r.device))
            parts_ok.append(torch.zeros(R, dtype=torch.bool, device=r.device))
        pts = t["dp_points"]
        if len(pts):
            inst = pts[:, 0].long()
            # all (roi, point) pairs whose point belongs to the roi's instance
            pair_roi, pair_pt = torch.nonzero(m[:, None] == inst[None, :], as_tuple=True)
            if len(pair_roi):
                b = t["boxes"][inst[pair_pt]]
                x = b[:, 0] + pts[pair_pt, 1] * (b[:, 2] - b[:, 0])
                y = b[:, 1] + pts[pair_pt, 2] * (b[:, 3] - b[:, 1])
                rr = r[pair_roi]
                px = (x - rr[:, 0]) / (rr[:, 2] - rr[:, 0]).clamp(min=1e-6)
                py = (y - rr[:, 1]) / (rr[:, 3] - rr[:, 1]).clamp(min=1e-6)
                keep = (px >= 0) & (px < 1) & (py >= 0) & (py < 1)
                p_roi.append(pair_roi[keep] + offset)
                p_xy.append(torch.stack([px, py], dim=1)[keep])
                p_i.append(pts[pair_pt[keep], 3].long())
                p_uv.append(pts[pair_pt[keep], 4:6])
        offset += R
    dev, dt = ref.device, ref.dtype
    cat = lambda xs, shape, dtype: torch.cat(xs) if xs else torch.zeros(shape, device=dev, dtype=dtype)  # noqa: E731
    return RoITargets(
        mask=cat(masks, (0, S, S), dt),
        mask_valid=cat(valid, (0,), torch.bool),
        point_roi=cat(p_roi, (0,), torch.long),
        point_xy=cat(p_xy, (0, 2), dt),
        point_i=cat(p_i, (0,), torch.long),
        point_uv=cat(p_uv, (0, 2), dt),
        parts=cat(parts, (0, S, S), torch.long),
        parts_valid=cat(parts_ok, (0,), torch.bool),
    )


def _zero(output: DensePoseOutput) -> torch.Tensor:
    """A float32 zero that depends on every output (keeps the graph when a batch has nothing to
    learn). The sums run in float32: a float16 map of 112 x 112 values sums past 65504 (inf, and
    inf * 0 = nan) under autocast or in a ``.half()`` model."""
    return sum(getattr(output, f.name).sum(dtype=torch.float32) for f in fields(output)) * 0.0


def coarse_part_loss(output: DensePoseOutput, targets: RoITargets) -> torch.Tensor | None:
    """Dense chart supervision from the coarse part masks: ``-log sum_{c in part k} softmax(alpha z)_c``.

    Every heatmap pixel of an instance with per-part masks (``dp_masks``) whose coarse part is
    ``k`` (1..14) asks the calibrated chart posterior to put its mass on the charts of part
    ``k`` (DensePose's chart -> coarse-part table); the mean over those pixels, or None when
    there are none. Unlike the chart loss of the annotated points it covers the whole body.
    """
    if targets.parts is None or not len(output) or not bool(targets.parts_valid.any()):
        return None
    from densemap.annotation.coco import COARSE_OF_CHART

    sel = targets.parts_valid
    lab = targets.parts[sel]  # (R', S, S)
    fg = lab > 0
    if not bool(fg.any()):
        return None
    logp = torch.log_softmax((output.alpha[sel] * output.fine_segm[sel]).float(), dim=1)  # (R', 25, S, S)
    member = torch.as_tensor(COARSE_OF_CHART, device=logp.device)  # chart -> coarse part
    # log of the summed posterior of each coarse part, by logsumexp over its charts
    parts = torch.stack([torch.logsumexp(logp[:, member == k], dim=1) for k in range(1, 15)], dim=1)  # (R', 14, S, S)
    picked = parts.gather(1, (lab.clamp(min=1) - 1)[:, None])[:, 0]
    return -picked[fg].mean()


def densepose_losses(output: DensePoseOutput, targets: RoITargets, *, mask_weight: float = 5.0,
                     part_weight: float = 1.0, uv_weight: float = 0.0005,
                     coarse_part_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """The DensePose head's losses.

    Parameters
    ----------
    output : DensePoseOutput
        Predictions for R RoIs (maps of side S).
    targets : RoITargets
        Their targets (same R and S), e.g. from :func:`roi_targets`.
    mask_weight, part_weight, uv_weight : float
        Weights of the three terms.
    coarse_part_weight : float
        Weight of :func:`coarse_part_loss` (``loss_densepose_P``, dense chart supervision from
        the coarse part masks); 0 (the default) leaves the term out.

    Returns
    -------
    dict
        ``loss_densepose_S``: mean scaled-softmax CE of the foreground over RoIs with a mask, x mask_weight;
        ``loss_densepose_I``: mean scaled-softmax CE of the chart (25-way, annotated points only), x part_weight;
        ``loss_densepose_UV``: Gaussian NLL (Eq. 3, D = 2) of (u, v) in the GT chart's channels,
        **summed** over points as detectron2 does, x uv_weight.
        Each a scalar tensor; zero (with a gradient) when there is nothing to learn.

    Examples
    --------
    A fresh predictor (logits ~ 0, alpha ~ 1) on one RoI with a full mask and one point: the
    mask term is about ``5 log 2`` and the chart term about ``log 25``.

    >>> import torch
    >>> from densemap_models.heads import DensePosePredictor
    >>> _ = torch.manual_seed(0)
    >>> out = DensePosePredictor(16, roi_size=4, heatmap_size=8)(torch.randn(1, 16, 4, 4))
    >>> targets = RoITargets(mask=torch.ones(1, 8, 8), mask_valid=torch.tensor([True]),
    ...                      point_roi=torch.tensor([0]), point_xy=torch.tensor([[0.5, 0.5]]),
    ...                      point_i=torch.tensor([3]), point_uv=torch.tensor([[0.2, 0.7]]))
    >>> losses = densepose_losses(out, targets)
    >>> sorted(losses)
    ['loss_densepose_I', 'loss_densepose_S', 'loss_densepose_UV']
    >>> round(losses["loss_densepose_S"].item(), 2), round(losses["loss_densepose_I"].item(), 2)
    (3.47, 3.22)
    """
    zero = _zero(output)
    losses = {}
    if len(output) and targets.mask_valid.any():
        sel = targets.mask_valid
        z = output.coarse_segm[sel]  # (R, 2, S, S)
        a = output.alpha_coarse[sel]
        ce = F.cross_entropy(a * z, targets.mask[sel].long(), reduction="mean")
        losses["loss_densepose_S"] = mask_weight * ce + zero
    else:
        losses["loss_densepose_S"] = zero
    if len(targets.point_roi):
        r, xy, c = targets.point_roi, targets.point_xy, targets.point_i
        z = sample_maps(output.fine_segm, r, xy)
        a = sample_maps(output.alpha, r, xy)
        losses["loss_densepose_I"] = part_weight * scaled_cross_entropy(z, a, c) + zero
        uv = torch.stack([sample_maps(output.u, r, xy, c), sample_maps(output.v, r, xy, c)], dim=1)
        sig = torch.stack([sample_maps(output.sigma_u, r, xy, c), sample_maps(output.sigma_v, r, xy, c)], dim=1)
        losses["loss_densepose_UV"] = uv_weight * gaussian_nll(uv, targets.point_uv, sig, reduction="sum") + zero
    else:
        losses["loss_densepose_I"] = zero
        losses["loss_densepose_UV"] = zero.clone()
    if coarse_part_weight > 0:
        p = coarse_part_loss(output, targets)
        losses["loss_densepose_P"] = zero.clone() if p is None else coarse_part_weight * p + zero
    return losses
