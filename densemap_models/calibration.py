"""Calibration of the predicted uncertainties on annotated points, and its reliability plot.

For every annotated point inside its best-matching detection (box IoU >= 0.5), the predicted
sigma of u and v against the actual error where the chart is right, and the calibrated chart
posterior ``max softmax(alpha * z)`` against accuracy; :func:`reliability_plot` draws both.
"""

from __future__ import annotations

import os

import numpy as np

from densemap._display import Table

from .boxes import box_iou_xywh
from .densepose_ap import gt_points_in_detection

__all__ = ["calibration", "Calibration", "reliability_plot"]

_SUMMARY = {
    "uv_points": "u/v points (chart right, inside the best detection)",
    "uv_rms_error": "RMS |u - u_gt|, |v - v_gt|",
    "uv_mean_sigma": "mean predicted sigma",
    "uv_within_1sigma": "fraction with error <= sigma (0.683 if calibrated)",
    "uv_sigma_error_spearman": "rank correlation of sigma and error",
    "i_points": "chart points (predicted foreground)",
    "i_accuracy": "chart accuracy",
    "i_mean_conf": "mean calibrated confidence",
    "i_ece": "expected calibration error (lower is better)",
}


class Calibration(dict):
    """What :func:`calibration` returns: a ``dict`` (``summary``, ``uv_bins``, ``i_bins``) that
    shows as a table; :meth:`plot` draws the reliability diagram."""

    def _table(self) -> Table:
        rows = [(k, v, _SUMMARY.get(k, "")) for k, v in self.get("summary", {}).items()]
        if self.get("uv_bins"):
            rows.append(("u/v by predicted sigma: mean sigma -> RMS error (n)",))
            rows += [(f"sigma {r['sigma_lo']:.3g}..{r['sigma_hi']:.3g}", r["rms_error"],
                      f"mean sigma {r['mean_sigma']:.3g}, {r['n']} points") for r in self["uv_bins"]]
        if self.get("i_bins"):
            rows.append(("chart I by calibrated confidence: accuracy (n)",))
            rows += [(f"confidence {r['conf_lo']:.3g}..{r['conf_hi']:.3g}", r["accuracy"],
                      f"mean confidence {r['mean_conf']:.3g}, {r['n']} points") for r in self["i_bins"]]
        return Table("Calibration", ("", "value", "meaning"), rows)

    def __repr__(self):
        return self._table().text()

    def _repr_html_(self):
        return self._table().html()

    def plot(self, path: str | os.PathLike | None = None, *, title: str = ""):
        """The reliability diagram (:func:`reliability_plot`)."""
        return reliability_plot(self, path, title=title)


def calibration(gt_by_image: dict, preds: list[dict], *, bins: int = 8) -> Calibration:
    """Predicted uncertainty against actual error on annotated points.

    For each GT with points, its best detection (box IoU >= 0.5, top 20); at GT points inside it:

    * u/v: where the predicted chart equals the GT chart, pairs (sigma_u, |u - u_gt|) and
      (sigma_v, |v - v_gt|), binned by sigma quantiles: mean sigma, RMS error, mean |error|,
      fraction with |error| <= sigma (0.683 for a calibrated Gaussian);
    * I: calibrated confidence ``max softmax(alpha * z)`` against chart accuracy, in equal-width
      bins, with the expected calibration error (ECE).
    """
    sig, err, conf, correct = _calibration_points(gt_by_image, preds)
    uv_rows = _uv_bins(sig, err, bins)
    i_rows, ece = _i_bins(conf, correct, bins)
    summary = {
        "uv_points": int(len(sig)),
        "uv_rms_error": float(np.sqrt((err**2).mean())) if len(err) else None,
        "uv_mean_sigma": float(sig.mean()) if len(sig) else None,
        "uv_within_1sigma": float((err <= sig).mean()) if len(sig) else None,
        "uv_sigma_error_spearman": _spearman(sig, err),
        "i_points": int(len(conf)),
        "i_accuracy": float(correct.mean()) if len(correct) else None,
        "i_mean_conf": float(conf.mean()) if len(conf) else None,
        "i_ece": float(ece) if len(conf) else None,
    }
    return Calibration(summary=summary, uv_bins=uv_rows, i_bins=i_rows)


def _calibration_points(gt_by_image: dict, preds: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``sigma, |error|`` (M,) of u and v where the chart is right, ``conf, correct`` (N,) of the chart
    at predicted-foreground points, over every annotated GT's best detection."""
    sig, err, conf, correct = [], [], [], []
    for p in preds:
        anns = gt_by_image.get(p["image_id"], [])
        D = len(p["dp"])
        if not D:
            continue
        det_xywh = np.array([[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in p["boxes"][:D]])
        for a in anns:
            if not a.get("dp_x"):
                continue
            iou = box_iou_xywh(det_xywh, np.asarray([a["bbox"]], dtype=np.float64))[:, 0]
            d = int(np.argmax(iou))
            if iou[d] < 0.5:
                continue
            px, py, ok = gt_points_in_detection(a, p["boxes"][d])
            r = p["dp"][d]
            gI = np.asarray(a["dp_I"]).astype(np.int64)[ok]
            pI = r["iuv"][0, py[ok], px[ok]].astype(np.int64)
            fg = pI > 0
            conf.append(r["conf"][py[ok], px[ok]][fg])
            correct.append((pI == gI)[fg])
            same = pI == gI
            for c, key in ((1, "dp_U"), (2, "dp_V")):
                pred = r["iuv"][c, py[ok], px[ok]][same] / 255.0
                gt = np.asarray(a[key], dtype=np.float64)[ok][same]
                sig.append(r["sigma"][c - 1, py[ok], px[ok]][same])
                err.append(np.abs(pred - gt))
    return (np.concatenate(sig) if sig else np.zeros(0), np.concatenate(err) if err else np.zeros(0),
            np.concatenate(conf) if conf else np.zeros(0), np.concatenate(correct) if correct else np.zeros(0, bool))


def _uv_bins(sig: np.ndarray, err: np.ndarray, bins: int) -> list[dict]:
    """Rows of (sigma, error) pairs binned by sigma quantiles."""
    rows = []
    if len(sig):
        edges = np.unique(np.quantile(sig, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, sig, side="right") - 1, 0, max(len(edges) - 2, 0))
        for b in range(max(len(edges) - 1, 1)):
            m = which == b
            if m.any():
                rows.append({"sigma_lo": float(edges[b]), "sigma_hi": float(edges[min(b + 1, len(edges) - 1)]),
                             "n": int(m.sum()), "mean_sigma": float(sig[m].mean()),
                             "rms_error": float(np.sqrt((err[m] ** 2).mean())), "mean_abs_error": float(err[m].mean()),
                             "within_1sigma": float((err[m] <= sig[m]).mean())})
    return rows


def _i_bins(conf: np.ndarray, correct: np.ndarray, bins: int) -> tuple[list[dict], float]:
    """Reliability rows of the chart confidence in equal-width bins, and the ECE."""
    rows = []
    ece = 0.0
    if len(conf):
        edges = np.linspace(0, 1, bins + 1)
        which = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)
        for b in range(bins):
            m = which == b
            if m.any():
                rows.append({"conf_lo": float(edges[b]), "conf_hi": float(edges[b + 1]), "n": int(m.sum()),
                             "mean_conf": float(conf[m].mean()), "accuracy": float(correct[m].mean())})
                ece += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return rows, ece


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    from scipy.stats import spearmanr

    r = spearmanr(a, b).statistic
    return None if not np.isfinite(r) else float(r)


def reliability_plot(calib: dict, path: str | os.PathLike | None = None, *, title: str = ""):
    """Two panels: RMS u/v error vs predicted sigma; chart accuracy vs calibrated confidence.

    Parameters
    ----------
    calib : dict
        From :func:`calibration`.
    path : path-like, optional
        Where to write the picture (PNG); None: only return the figure.

    Returns
    -------
    matplotlib.figure.Figure
        Displayed inline by a notebook. Made without pyplot, so no backend is chosen or
        changed.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4))
    a1, a2 = fig.subplots(1, 2)
    rows = calib["uv_bins"]
    if rows:
        s = [r["mean_sigma"] for r in rows]
        a1.plot(s, [r["rms_error"] for r in rows], "o-", label="RMS error")
        a1.plot(s, [r["mean_abs_error"] for r in rows], "s--", label="mean |error|")
        hi = max(max(s), max(r["rms_error"] for r in rows)) * 1.1
        a1.plot([0, hi], [0, hi], "k:", label="ideal (error = sigma)")
    else:
        a1.text(0.5, 0.5, "no matched points\n(no detection with the right chart\nat an annotated point)",
                ha="center", va="center", transform=a1.transAxes, color="0.4")
    a1.set_xlabel("predicted sigma (u, v)")
    a1.set_ylabel("actual error")
    a1.set_title("u/v: sigma vs error")
    if rows:
        a1.legend(fontsize=8)
    rows = calib["i_bins"]
    if rows:
        a2.bar([r["mean_conf"] for r in rows], [r["accuracy"] for r in rows], width=0.08, alpha=0.7, label="accuracy")
    else:
        a2.text(0.5, 0.5, "no matched points\n(no detection covers an annotated point)", ha="center", va="center",
                transform=a2.transAxes, color="0.4")
    a2.plot([0, 1], [0, 1], "k:", label="ideal")
    a2.set_xlim(0, 1)
    a2.set_ylim(0, 1)
    a2.set_xlabel("calibrated confidence max softmax(alpha z)")
    a2.set_ylabel("chart accuracy")
    ece = calib["summary"].get("i_ece")
    a2.set_title(f"chart I: reliability (ECE {ece:.3f})" if ece is not None else "chart I: reliability")
    a2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100, format="png")
    return fig
