"""Which pixels of a teacher's detection become pseudo-label points (Sanakoyeu et al. 2020, §3.5).

A detection's prediction at box resolution is a :class:`BoxPrediction`
(:func:`box_prediction` makes it from the model's output); :func:`choose_points` picks ``k``
pixels of its predicted foreground (pixels whose chart label is > 0) by a strategy:

=========  ======================================================  ==========================
strategy   ranking channel (:class:`BoxPrediction` field)           direction
=========  ======================================================  ==========================
uniform    none: ``k`` pixels drawn uniformly without replacement   --
mask       ``mask_prob``: calibrated foreground posterior           **largest first**
           ``softmax(alpha_coarse * z_coarse)[fg]``
I          ``chart_conf``: calibrated chart posterior               **largest first**
           ``max softmax(alpha * z_fine)``
uv         ``sigma``: predicted u/v standard deviation              **smallest first**
           ``sqrt((sigma_u**2 + sigma_v**2) / 2)``
=========  ======================================================  ==========================

The directions are stated explicitly because detectron2's confidence samplers sort every
channel ascending, which is right for sigma but picks the *least* confident pixels for the
segmentation temperatures (``../shared/densepose-formats.md`` §4.10). Here alpha is an
inverse temperature (a large alpha sharpens the softmax), so a large posterior is confident.

Ties are broken by row-major pixel order (a stable sort), so the top-k strategies are
deterministic; ``k`` at least the foreground size takes all of it; ``k = 0`` keeps boxes,
masks and ``dp_masks`` without points (the paper's Table 4, first row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from densemap._validate import check_choice

__all__ = ["Strategy", "STRATEGIES", "RANKING", "CONFIDENCE_FIELD", "BoxPrediction", "box_prediction", "check_k",
           "strategy_confidence", "choose_points"]

Strategy = Literal["uniform", "mask", "I", "uv"]
STRATEGIES: tuple[str, ...] = ("uniform", "mask", "I", "uv")
# strategy -> (BoxPrediction field it ranks by, whether a larger value is more confident)
RANKING: dict[str, tuple[str, bool]] = {
    "mask": ("mask_prob", True),  # calibrated foreground posterior: high = confident
    "I": ("chart_conf", True),  # calibrated chart posterior max softmax(alpha z): high = confident
    "uv": ("sigma", False),  # predicted u/v standard deviation: LOW = confident
}
# the value written to dp_confidence per strategy (uniform records the chart posterior)
CONFIDENCE_FIELD = {"uniform": "chart_conf", "mask": "mask_prob", "I": "chart_conf", "uv": "sigma"}


@dataclass(frozen=True)
class BoxPrediction:
    """One detection's DensePose prediction at box resolution (h rows, w columns).

    Attributes
    ----------
    labels : (h, w) int
        Chart 1..24, 0 = background (the predicted foreground is ``labels > 0``).
    u, v : (h, w) float
        Chart coordinates of the pixel's chart (clamped to [0, 1] when written).
    mask_prob : (h, w) float in [0, 1]
        Calibrated foreground posterior (high = confident).
    chart_conf : (h, w) float in [0, 1]
        Calibrated posterior of the predicted chart, ``max softmax(alpha * z)`` (high = confident).
    sigma : (h, w) float > 0
        Predicted u/v standard deviation of the pixel's chart (low = confident).

    The arrays are copied and made read-only; shapes, ranges and finiteness are checked.
    """

    labels: np.ndarray
    u: np.ndarray
    v: np.ndarray
    mask_prob: np.ndarray
    chart_conf: np.ndarray
    sigma: np.ndarray

    def __post_init__(self):
        lab = np.array(self.labels)
        if lab.ndim != 2 or lab.shape[0] < 1 or lab.shape[1] < 1:
            raise ValueError(f"labels must be a non-empty (h, w) array, got shape {lab.shape}")
        if not np.issubdtype(lab.dtype, np.integer) and (not np.all(np.isfinite(lab)) or np.any(lab != np.round(lab))):
            raise ValueError(f"labels must be integers 0..24, got dtype {lab.dtype} with non-integer values")
        lab = lab.astype(np.int64)
        bad = np.flatnonzero((lab < 0) | (lab > 24))
        if len(bad):
            r, c = divmod(int(bad[0]), lab.shape[1])
            raise ValueError(f"labels[{r}, {c}] = {lab[r, c]} is not a chart 0..24")
        lab.setflags(write=False)
        object.__setattr__(self, "labels", lab)
        for name in ("u", "v", "mask_prob", "chart_conf", "sigma"):
            a = np.array(getattr(self, name), dtype=np.float32)
            if a.shape != lab.shape:
                raise ValueError(f"{name} has shape {a.shape}; expected the labels' shape {lab.shape}")
            checks = [(~np.isfinite(a), "is not finite")]
            if name in ("mask_prob", "chart_conf"):
                checks.append(((a < 0) | (a > 1), "is outside [0, 1]"))
            elif name == "sigma":
                checks.append((a <= 0, "is not > 0"))
            for bad, why in checks:
                idx = np.flatnonzero(bad)
                if len(idx):
                    r, c = divmod(int(idx[0]), lab.shape[1])
                    raise ValueError(f"{name}[{r}, {c}] = {a[r, c]:g} {why}")
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape

    @property
    def foreground(self) -> np.ndarray:
        """(h, w) bool predicted foreground (``labels > 0``)."""
        return self.labels > 0


def box_prediction(output, box) -> BoxPrediction:
    """The :class:`BoxPrediction` of one RoI of a :class:`~densemap_models.heads.DensePoseOutput`.

    The maps of :func:`densemap_models.postprocess.box_maps` (the post-processing of
    :func:`~densemap_models.postprocess.chart_result`, DensePose's ``ToChartResult``) without
    quantising U and V; ``sigma = sqrt((sigma_u**2 + sigma_v**2) / 2)`` of the pixel's chart.
    ``output`` (one RoI) and ``box`` (x0, y0, x1, y1 in pixels) as in ``box_maps``.
    """
    import torch

    from .postprocess import box_maps

    m = box_maps(output, box)
    sigma = torch.sqrt(0.5 * (m.sigma_u * m.sigma_u + m.sigma_v * m.sigma_v))
    return BoxPrediction(labels=m.labels.cpu().numpy(), u=m.u.cpu().numpy(), v=m.v.cpu().numpy(),
                         mask_prob=m.mask_prob.clamp(0, 1).cpu().numpy(),
                         chart_conf=m.chart_conf.clamp(0, 1).cpu().numpy(), sigma=sigma.cpu().numpy())


def check_k(k) -> int:
    """``k`` as an int; ValueError unless it is an integer >= 0."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be an integer >= 0 (points per detection), got {k!r}")
    return int(k)


def strategy_confidence(pred: BoxPrediction, strategy: Strategy) -> np.ndarray:
    """(h, w) the value written as ``dp_confidence`` for ``strategy`` (its ranking channel;
    ``chart_conf`` for uniform). Direction: see :data:`RANKING` (``sigma``: low = confident)."""
    check_choice("strategy", strategy, STRATEGIES)
    return getattr(pred, CONFIDENCE_FIELD[strategy])


def choose_points(pred: BoxPrediction, *, strategy: Strategy, k: int,
                  rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Choose up to ``k`` pixels of one detection's predicted foreground.

    Parameters
    ----------
    pred : BoxPrediction
    strategy : {"uniform", "mask", "I", "uv"}
        ``uniform``: ``k`` foreground pixels drawn without replacement (returned in row-major
        order). ``mask`` / ``I``: the ``k`` pixels with the **largest** ``mask_prob`` /
        ``chart_conf``. ``uv``: the ``k`` pixels with the **smallest** ``sigma``. Top-k results
        are ordered most confident first; ties go to the earlier pixel in row-major order.
    k : int >= 0
        Points per detection; ``k`` >= the foreground size returns the whole foreground.
    rng : numpy.random.Generator
        Required for ``uniform`` (unused otherwise).

    Returns
    -------
    rows, cols : (m,) int64, m = min(k, foreground pixels)
    """
    check_choice("strategy", strategy, STRATEGIES)
    k = check_k(k)
    fg = np.flatnonzero(pred.foreground.ravel())  # row-major
    w = pred.shape[1]
    if strategy == "uniform":
        if rng is None:
            raise ValueError("strategy 'uniform' needs rng (a numpy.random.Generator)")
        chosen = fg if k >= len(fg) else np.sort(rng.choice(fg, size=k, replace=False))
    else:
        name, larger_is_better = RANKING[strategy]
        vals = getattr(pred, name).ravel()[fg].astype(np.float64)
        order = np.argsort(-vals if larger_is_better else vals, kind="stable")
        chosen = fg[order[:k]]
    chosen = np.asarray(chosen, dtype=np.int64)
    return chosen // w, chosen % w
