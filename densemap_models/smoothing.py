"""Temporal smoothing of DensePose predictions along a track, weighted by the calibrated confidences.

For the detection of a track at frame ``t``, the detections of the same track at frames
``t - r .. t + r`` are fused with it:

1. **alignment** -- each neighbour's RoI maps are carried onto the current box by a box
   transform. With ``align="box"`` this is: the affine map taking the
   neighbour's box onto the current one (translation and scale per axis), i.e. a body
   that moves with its box keeps its box-relative layout; both RoIs are S x S grids over
   their boxes, so in RoI coordinates the map is the identity. ``align="image"`` (the default: it measured
   better, ``docs/video.md``) samples the neighbour at the same *image* position, the affine
   map between the two boxes' pixel grids (right for a still body under a jittering box); where the current box reaches outside the neighbour's box the
   neighbour has no weight there. Resampling is ``torch.nn.functional.grid_sample``;
2. **foreground** -- with ``foreground="current"`` (the default) the current frame's own
   foreground posterior is kept, and a neighbour counts at a pixel in proportion to its
   own foreground probability there (``k_j * P_j(fg)``). Averaging the foreground of
   neighbours (``foreground="fused"``, the first design) erodes a moving body's thin
   parts -- displaced silhouettes overlap only partly -- and measured 35 % lower GPS AP
   (``docs/video.md``);
3. **charts (I)** -- the calibrated posteriors ``softmax(alpha * z)`` (fine) are averaged
   with those weights; the fused output carries their logarithms with ``alpha = 1``, so the
   usual post-processing (:func:`~densemap_models.postprocess.box_maps`) reads the fused posterior;
4. **U, V** -- per chart channel ``c``, an inverse-variance mean with weights
   ``w_j = k_j * P_j(c) / sigma_j(c)^2`` (``P_j(c)``: the neighbour's posterior of chart
   ``c`` at that pixel, so a neighbour whose pixel lies on another chart hardly counts);
   the fused sigma is that of the weighted mean of independent estimates,
   ``sqrt(sum w_j^2 sigma_j^2) / sum w_j`` (``1 / sqrt(sum 1 / sigma_j^2)`` for equal
   ``k_j P_j``).

:func:`fuse_outputs` fuses one window; :class:`WindowSmoother` runs it along a clip
(frames come in one at a time and leave ``radius`` frames later).
"""

from __future__ import annotations

from collections import deque
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F

from densemap._validate import check_choice

from .heads import DensePoseOutput

Align = Literal["box", "image"]
Foreground = Literal["current", "fused"]

__all__ = ["box_transform", "align_output", "fuse_outputs", "temporal_weights", "WindowSmoother"]

_TINY = 1e-12


def box_transform(box_to, box_from, *, align: Align = "image") -> torch.Tensor:
    """(2, 3) affine ``theta`` for ``affine_grid``: ``box_to``'s RoI grid in ``box_from``'s normalised coordinates.

    Both boxes are x0, y0, x1, y1 in image pixels; an RoI map spans its box edge to edge
    (``align_corners=False``). ``align="image"``: the same image points; ``"box"``: the same
    box-relative points (the identity).

    Examples
    --------
    >>> box_transform([0, 0, 10, 10], [0, 0, 10, 10]).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    >>> box_transform([0, 0, 10, 10], [0, 0, 20, 10]).tolist()  # left half of a box twice as wide
    [[0.5, 0.0, -0.5], [0.0, 1.0, 0.0]]
    >>> box_transform([0, 0, 10, 10], [0, 0, 20, 10], align="box").tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    check_choice("align", align, ("box", "image"))
    if align == "box":
        return torch.eye(2, 3, dtype=torch.float64)
    x0, y0, x1, y1 = [float(t) for t in box_to]
    a0, b0, a1, b1 = [float(t) for t in box_from]
    wf, hf = max(a1 - a0, 1e-6), max(b1 - b0, 1e-6)
    sx, sy = (x1 - x0) / wf, (y1 - y0) / hf
    tx = ((x0 + x1) - (a0 + a1)) / wf
    ty = ((y0 + y1) - (b0 + b1)) / hf
    return torch.tensor([[sx, 0.0, tx], [0.0, sy, ty]], dtype=torch.float64)


def align_output(output: DensePoseOutput, box_from, box_to, *, align: Align = "image") -> tuple[dict, torch.Tensor]:
    """One RoI's posteriors and regressions resampled from ``box_from`` onto ``box_to``'s RoI grid.

    ``align`` as in :func:`box_transform` (``"box"``: nothing to resample).

    Returns
    -------
    maps : dict
        ``fine`` (25, S, S) and ``coarse`` (2, S, S) calibrated posteriors; ``u``, ``v``,
        ``sigma_u``, ``sigma_v`` (25, S, S).
    inside : (S, S) float
        Share of each resampled pixel that came from inside ``box_from`` (0..1).
    """
    maps = {"fine": output.fine_probs()[0], "coarse": output.coarse_probs()[0],
            **{k: getattr(output, k)[0] for k in ("u", "v", "sigma_u", "sigma_v")}}
    S = maps["fine"].shape[-1]
    if align == "box" or np.allclose(np.asarray(box_from, float), np.asarray(box_to, float)):
        return {k: m.float() for k, m in maps.items()}, torch.ones(S, S, device=maps["fine"].device)
    stack = torch.cat([m.float() for m in maps.values()] + [torch.ones(1, S, S, dtype=torch.float32,
                                                                         device=maps["fine"].device)])
    theta = box_transform(box_to, box_from, align=align).float().to(stack.device)[None]
    grid = F.affine_grid(theta, [1, stack.shape[0], S, S], align_corners=False)
    out = F.grid_sample(stack[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    # the regressions are sampled with zero padding too; they only count where inside > 0
    sizes = [m.shape[0] for m in maps.values()]
    parts = torch.split(out[:-1], sizes)
    return dict(zip(maps, parts)), out[-1]


def temporal_weights(radius: int) -> np.ndarray:
    """(2 r + 1,) triangular weights ``1 - |dt| / (r + 1)`` of the frames ``t - r .. t + r``.

    Examples
    --------
    >>> temporal_weights(2).round(3).tolist()
    [0.333, 0.667, 1.0, 0.667, 0.333]
    """
    dt = np.abs(np.arange(-int(radius), int(radius) + 1))
    return 1.0 - dt / (int(radius) + 1.0)


@torch.no_grad()
def fuse_outputs(outputs: list[DensePoseOutput], boxes, weights, *, center: int, align: Align = "image",
                 foreground: Foreground = "current") -> DensePoseOutput:
    """Fuse one RoI per frame of a window onto the box of ``outputs[center]`` (see the module doc).

    Parameters
    ----------
    outputs : list of DensePoseOutput
        One RoI each (tensors (1, C, S, S)), the same track in different frames.
    boxes : (n, 4) float
        Their boxes, x0, y0, x1, y1.
    weights : (n,) float
        Temporal weights ``k_j`` (> 0).
    center : int
        Which one is the current frame (its box is the output's frame of reference).
    align : {"box", "image"}
        How neighbours are carried onto the current box (:func:`box_transform`).
    foreground : {"current", "fused"}
        Keep the current frame's foreground and weigh each neighbour by its own foreground
        probability (default), or average the foreground posteriors too.

    Returns
    -------
    DensePoseOutput
        One RoI: ``fine_segm`` / ``coarse_segm`` = log of the fused posteriors with
        ``alpha = alpha_coarse = 1``; fused ``u``, ``v``, ``sigma_u``, ``sigma_v``.

    Examples
    --------
    >>> S = 4
    >>> def roi(u, s):
    ...     z = torch.zeros(1, 25, S, S); z[:, 3] = 10.0
    ...     c = torch.zeros(1, 2, S, S); c[:, 1] = 10.0
    ...     one = torch.ones(1, 1, S, S)
    ...     return DensePoseOutput(c, z, torch.full((1, 25, S, S), u), torch.full((1, 25, S, S), 0.5),
    ...                            torch.full((1, 25, S, S), s), torch.full((1, 25, S, S), s), one, one)
    >>> f = fuse_outputs([roi(0.2, 0.1), roi(0.5, 0.2)], [[0, 0, 8, 8]] * 2, [1.0, 1.0], center=0)
    >>> round(float(f.u[0, 3, 0, 0]), 3), round(float(f.sigma_u[0, 3, 0, 0]), 4)  # (0.2/0.01 + 0.5/0.04) / 125
    (0.26, 0.0894)
    """
    check_choice("align", align, ("box", "image"))
    check_choice("foreground", foreground, get_args(Foreground))
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not (len(outputs) == len(boxes) == len(weights)) or not 0 <= center < len(outputs):
        raise ValueError(f"outputs, boxes and weights must have one length and center an index in it; got "
                         f"{len(outputs)}, {len(boxes)}, {len(weights)}, center={center}")
    fine = coarse = wsum = csum = 0.0
    num_u = num_v = den_u = den_v = var_u = var_v = 0.0
    for o, b, k in zip(outputs, boxes, weights):
        m, inside = align_output(o, b, boxes[center], align=align)
        kk = float(k) * inside  # (S, S)
        if foreground == "current":  # a neighbour says nothing about the charts where it sees background
            kk = kk * m["coarse"][1]
        else:  # the first design: the foreground averaged too
            coarse, csum = coarse + kk * m["coarse"], csum + kk
        fine = fine + kk * m["fine"]
        wsum = wsum + kk
        wu = kk * m["fine"] / m["sigma_u"].clamp_min(1e-6) ** 2
        wv = kk * m["fine"] / m["sigma_v"].clamp_min(1e-6) ** 2
        num_u, den_u, var_u = num_u + wu * m["u"], den_u + wu, var_u + wu**2 * m["sigma_u"] ** 2
        num_v, den_v, var_v = num_v + wv * m["v"], den_v + wv, var_v + wv**2 * m["sigma_v"] ** 2
    ref = outputs[center]
    # the current frame's own foreground, or the neighbours' average
    coarse = ref.coarse_probs()[0].float() if foreground == "current" else coarse / csum.clamp_min(_TINY)
    wsum = wsum.clamp_min(_TINY)
    den_u, den_v = den_u.clamp_min(_TINY), den_v.clamp_min(_TINY)
    one = torch.ones_like(ref.alpha)
    return DensePoseOutput(
        coarse_segm=torch.log(coarse.clamp_min(_TINY))[None],
        fine_segm=torch.log((fine / wsum).clamp_min(_TINY))[None],
        u=(num_u / den_u)[None], v=(num_v / den_v)[None],
        sigma_u=(var_u.sqrt() / den_u)[None], sigma_v=(var_v.sqrt() / den_v)[None],
        alpha=one, alpha_coarse=one.clone())


class WindowSmoother:
    """Smooth the detections of a clip along their tracks, ``radius`` frames behind the input.

    Feed each frame's detections with :meth:`push` (objects with ``box``, ``output`` (one
    RoI) and ``track_id``); it returns the frames that are complete -- those ``radius``
    frames back -- with ``det.fused`` set to the fused :class:`DensePoseOutput` (or left
    ``None`` for untracked detections, ``track_id < 0``, and for ``radius = 0``).
    :meth:`flush` returns the rest at the end of the clip.

    Examples
    --------
    >>> s = WindowSmoother(radius=1)
    >>> s.push([]), s.push([]), s.flush()
    ([], [[]], [[]])
    """

    def __init__(self, radius: int = 2, *, align: Align = "image", foreground: Foreground = "current"):
        if int(radius) < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        check_choice("align", align, ("box", "image"))
        check_choice("foreground", foreground, get_args(Foreground))
        self.radius = int(radius)
        self.align = align
        self.foreground = foreground
        self.weights = temporal_weights(self.radius)
        self._frames: deque = deque()  # (frame number, detections)
        self._next = 0  # next frame number to hand out
        self._count = 0

    def push(self, detections: list) -> list[list]:
        self._frames.append((self._count, list(detections)))
        self._count += 1
        out = []
        while self._next + self.radius < self._count:
            out.append(self._finish(self._next))
        return out

    def flush(self) -> list[list]:
        out = []
        while self._next < self._count:
            out.append(self._finish(self._next))
        return out

    def _finish(self, t: int) -> list:
        by_frame = {n: dets for n, dets in self._frames}
        dets = by_frame[t]
        if self.radius:
            for d in dets:
                if d.track_id < 0:
                    continue
                window = [(n - t, e) for n in range(t - self.radius, t + self.radius + 1) if n in by_frame
                          for e in by_frame[n] if e.track_id == d.track_id]
                center = next(i for i, (dt, e) in enumerate(window) if e is d)
                d.fused = fuse_outputs([e.output for _, e in window], [e.box for _, e in window],
                                       [self.weights[dt + self.radius] for dt, _ in window], center=center,
                                       align=self.align, foreground=self.foreground)
        self._next = t + 1
        while self._frames and self._frames[0][0] < self._next - self.radius:
            self._frames.popleft()
        return dets

