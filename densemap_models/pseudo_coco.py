"""Pseudo-labels as COCO DensePose annotations, and their validated writer.

:func:`pseudo_annotations` turns one image's teacher detections (:class:`Detection`) into
annotations: box, RLE mask, the 14 coarse ``dp_masks`` and -- for the points chosen by
:func:`~densemap_models.pseudo_points.choose_points` -- ``dp_x/dp_y/dp_I/dp_U/dp_V`` and a
per-point ``dp_confidence``; :func:`pseudo_coco` makes a whole COCO dict and
:func:`write_pseudo_coco` checks and writes it.

Pseudo-label points follow detectron2's sampler convention: pixel centres of the integer box,
``dp_x = (col + 0.5) / w * 256``, ``dp_y = (row + 0.5) / h * 256`` with ``w, h`` the integer box
size, so the written ``bbox`` is ``[x0, y0, w, h]`` with those integers (at most one pixel
smaller than the predicted float box) and every point falls on the pixel it was sampled from.
"""

from __future__ import annotations

from collections import Counter

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from densemap._validate import check_choice
from densemap.annotation.coco import COARSE_OF_CHART, decode_rle, encode_rle, encode_rles
from densemap.errors import AnnotationError

from .pseudo_points import CONFIDENCE_FIELD, STRATEGIES, BoxPrediction, Strategy, check_k, choose_points, \
    strategy_confidence

__all__ = ["Detection", "ImagePredictions", "coarse_box_masks", "pseudo_annotations", "pseudo_coco",
           "write_pseudo_coco"]

GRID = 256
N_COARSE = 14


def coarse_box_masks(labels: np.ndarray) -> list:
    """The 14 coarse-part ``dp_masks`` (256 x 256 over the box) of a (h, w) chart label map.

    Grid cell (i, j) takes the label of the box pixel under its centre, mapped fine -> coarse
    (``densemap.annotation.coco.COARSE_OF_CHART``); an absent part is ``[]`` (as ``densemap synth`` writes).
    """
    labels = np.asarray(labels)
    h, w = labels.shape
    gy = np.minimum(((np.arange(GRID) + 0.5) * h / GRID).astype(np.int64), h - 1)
    gx = np.minimum(((np.arange(GRID) + 0.5) * w / GRID).astype(np.int64), w - 1)
    coarse = COARSE_OF_CHART[labels[np.ix_(gy, gx)]]
    out: list = [[] for _ in range(N_COARSE)]
    ks = np.flatnonzero(np.bincount(coarse.ravel(), minlength=N_COARSE + 1)[1:] > 0) + 1
    if len(ks):
        for part, r in zip(ks, encode_rles(coarse[..., None] == ks)):
            out[part - 1] = r
    return out


# ----------------------------------------------------------------------------- detections -> COCO
@dataclass
class Detection:
    """One teacher detection.

    box : (4,) x0, y0, x1, y1 image pixels; score : calibrated detection score;
    pred : its :class:`BoxPrediction` (h, w = integer box size);
    mask : optional instance mask as a COCO RLE over the image (the Mask R-CNN head's);
    without it the DensePose foreground pasted into the image is the segmentation.
    """

    box: np.ndarray
    score: float
    pred: BoxPrediction
    mask: dict | None = None


@dataclass
class ImagePredictions:
    """The teacher's detections on one image (``file_name`` relative to the image folder)."""

    file_name: str
    width: int
    height: int
    detections: list[Detection] = field(default_factory=list)


def _paste_foreground(pred: BoxPrediction, x0: float, y0: float, height: int, width: int) -> np.ndarray:
    """(H, W) uint8: image pixels whose centre falls on a foreground pixel of the box grid."""
    h, w = pred.shape
    full = np.zeros((height, width), np.uint8)
    cols = np.arange(width)
    rows = np.arange(height)
    bc = np.floor(cols + 0.5 - x0).astype(np.int64)
    br = np.floor(rows + 0.5 - y0).astype(np.int64)
    cs, rs = cols[(bc >= 0) & (bc < w)], rows[(br >= 0) & (br < h)]
    if len(cs) and len(rs):
        full[np.ix_(rs, cs)] = pred.foreground[np.ix_(br[rs], bc[cs])]
    return full


def _r6(a) -> list:
    return [round(float(t), 6) for t in a]


def pseudo_annotations(detections: Sequence[Detection], image_id: int, *, height: int, width: int,
                       strategy: Strategy, k: int, score_min: float = 0.8, seed: int = 0, first_id: int = 1,
                       category_id: int = 1, drops: Counter | None = None,
                       ignore_min: float | None = None) -> list[dict]:
    """COCO DensePose annotations of one image's detections.

    Detections with ``score >= score_min`` and a non-empty predicted foreground are kept. Each
    gets ``bbox`` ``[x0, y0, w, h]`` (integer box size, see the module doc), ``segmentation``
    (the detection's mask RLE, else the DensePose foreground pasted into the image; counts as
    str), ``area``, ``iscrowd`` 0, ``dp_masks`` (14 coarse parts from the predicted labels),
    ``score``, ``pseudo: True``, and -- when points are sampled -- ``dp_x, dp_y, dp_I, dp_U,
    dp_V`` (U, V clamped to [0, 1]) and ``dp_confidence`` (see
    :func:`~densemap_models.pseudo_points.strategy_confidence`).

    Parameters
    ----------
    detections : Detection sequence
    image_id : int
    height, width : int
        Image size (for the RLE segmentation).
    strategy, k
        See :func:`~densemap_models.pseudo_points.choose_points`.
    score_min : float
        Lowest detection score kept.
    seed : int
        Uniform sampling of detection ``d`` draws from ``default_rng([seed, image_id, d])``.
    first_id : int
        Id of the first annotation (the rest follow).
    drops : collections.Counter, optional
        Counts every reason a detection or point was dropped: ``score < S`` (detections),
        ``no foreground predicted`` (detections), ``points short: foreground under k pixels``
        (points that a small foreground could not give); with ``ignore_min``,
        ``score in [I, S): kept as an ignore region``.
    ignore_min : float, optional
        Detections scoring from ``ignore_min`` up to ``score_min`` are written as ignore
        regions: ``iscrowd`` 1, the box, ``area``, ``score``, ``pseudo: True``, no mask or
        points. A student then trains neither foreground nor background there, instead of
        learning the animals the teacher was unsure of as background.
    """
    check_choice("strategy", strategy, STRATEGIES)
    k = check_k(k)
    out = []
    drops = Counter() if drops is None else drops
    if ignore_min is not None and not 0 <= ignore_min <= score_min:
        raise ValueError(f"ignore_min must lie in [0, score_min = {score_min:g}], got {ignore_min!r}")
    for d, det in enumerate(detections):
        if float(det.score) < score_min:
            if ignore_min is not None and float(det.score) >= ignore_min:
                drops[f"score in [{ignore_min:g}, {score_min:g}): kept as an ignore region"] += 1
                x0, y0, x1, y1 = (float(t) for t in det.box)
                out.append({"id": first_id + len(out), "image_id": int(image_id), "category_id": int(category_id),
                            "iscrowd": 1, "bbox": _r6([x0, y0, x1 - x0, y1 - y0]),
                            "area": round((x1 - x0) * (y1 - y0), 3), "score": round(float(det.score), 6),
                            "pseudo": True})
            else:
                drops[f"score < {score_min:g}" if ignore_min is None else f"score < {ignore_min:g}"] += 1
            continue
        pred = det.pred
        if not pred.foreground.any():
            drops["no foreground predicted"] += 1
            continue
        h, w = pred.shape
        x0, y0 = float(det.box[0]), float(det.box[1])
        full = decode_rle(det.mask) if det.mask is not None else None
        if full is None or not full.any():
            full = _paste_foreground(pred, x0, y0, height, width)
        ann = {"id": first_id + len(out), "image_id": int(image_id), "category_id": int(category_id), "iscrowd": 0,
               "bbox": [round(x0, 3), round(y0, 3), float(w), float(h)],
               "area": float(full.sum()), "segmentation": encode_rle(full),
               "score": round(float(det.score), 6), "pseudo": True,
               "dp_masks": coarse_box_masks(pred.labels)}
        rng = np.random.default_rng([int(seed), int(image_id), d]) if strategy == "uniform" else None
        rows, cols = choose_points(pred, strategy=strategy, k=k, rng=rng)
        if len(rows) < k:
            drops["points short: foreground under k pixels"] += k - len(rows)
        if len(rows):
            ann.update({
                "dp_x": _r6((cols + 0.5) / w * GRID), "dp_y": _r6((rows + 0.5) / h * GRID),
                "dp_I": [float(t) for t in pred.labels[rows, cols]],
                "dp_U": _r6(np.clip(pred.u[rows, cols], 0, 1)), "dp_V": _r6(np.clip(pred.v[rows, cols], 0, 1)),
                "dp_confidence": _r6(strategy_confidence(pred, strategy)[rows, cols]),
            })
        out.append(ann)
    return out


def pseudo_coco(predictions: Iterable[ImagePredictions], *, strategy: Strategy, k: int, score_min: float = 0.8,
                seed: int = 0, category: str = "chimp", info: dict | None = None,
                ignore_min: float | None = None) -> dict:
    """A COCO DensePose dict of pseudo-labels for a sequence of :class:`ImagePredictions`.

    Image ``n`` (0-based, iteration order) gets id ``n + 1``; ``info`` records the strategy,
    k, score_min, ignore_min, seed, the meaning and direction of ``dp_confidence`` and counts
    (``detections`` the teacher made, before any filter; ``kept``; ``ignored``: ignore
    regions, see :func:`pseudo_annotations`; ``points``; ``dropped``: every reason a
    detection or point was dropped, with its count).
    """
    check_choice("strategy", strategy, STRATEGIES)
    k = check_k(k)
    images, anns = [], []
    n_det = 0
    drops: Counter = Counter()
    for n, ip in enumerate(predictions):
        images.append({"id": n + 1, "file_name": ip.file_name, "width": int(ip.width), "height": int(ip.height)})
        n_det += len(ip.detections)
        anns += pseudo_annotations(ip.detections, n + 1, height=ip.height, width=ip.width, strategy=strategy, k=k,
                                   score_min=score_min, seed=seed, first_id=len(anns) + 1, drops=drops,
                                   ignore_min=ignore_min)
    chan = CONFIDENCE_FIELD[strategy]
    meta = {
        "description": f"densemap pseudo-labels ({strategy}, k={k})",
        "generator": "densemap pseudo-label",
        "strategy": strategy, "k": k, "score_min": float(score_min), "seed": int(seed),
        "ignore_min": None if ignore_min is None else float(ignore_min),
        "dp_confidence": {"channel": chan, "higher_is_more_confident": chan != "sigma"},
        "counts": {"images": len(images), "detections": n_det, "kept": sum(not a["iscrowd"] for a in anns),
                   "ignored": sum(a["iscrowd"] for a in anns),
                   "points": sum(len(a.get("dp_x", ())) for a in anns), "dropped": dict(drops.most_common())},
    }
    meta.update(info or {})
    return {"info": meta, "licenses": [], "images": images, "annotations": anns,
            "categories": [{"id": 1, "name": category, "supercategory": category}]}


def write_pseudo_coco(images: list[dict], annotations: list[dict], path: str | os.PathLike, *,
                      info: dict | None = None, categories: list[dict] | None = None) -> Path:
    """Validate and write a pseudo-label COCO file atomically.

    Every annotation must pass :func:`densemap.annotation.coco.check_annotation` with no
    dropped point, reference a listed image and have a unique id; otherwise
    :class:`~densemap.errors.AnnotationError` names the first offender and nothing is written.
    """
    from densemap.annotation.coco import check_annotation, check_structure, write_coco

    data = {"info": dict(info or {}), "licenses": [], "images": list(images), "annotations": list(annotations),
            "categories": list(categories or [{"id": 1, "name": "chimp", "supercategory": "chimp"}])}
    check_structure(data, str(path))
    img_ids = {im.get("id") for im in data["images"]}
    seen = set()
    for n, a in enumerate(data["annotations"]):
        if a.get("id") in seen:
            raise AnnotationError(f"{path}: annotations[{n}] repeats id {a.get('id')}")
        seen.add(a.get("id"))
        if a.get("image_id") not in img_ids:
            raise AnnotationError(f"{path}: annotations[{n}] refers to image {a.get('image_id')}, not in 'images'")
        chk = check_annotation(a, n_vertices=None)
        why = chk.error or next((r for r in chk.reasons if r), None)
        if why:
            raise AnnotationError(f"{path}: annotations[{n}] (id {a.get('id')}): {why}")
    write_coco(data, path)
    return Path(path)
