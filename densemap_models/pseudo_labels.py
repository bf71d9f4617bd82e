"""Graded DensePose pseudo-labels from a teacher model (Sanakoyeu et al. 2020, §3.5).

A teacher runs on unlabelled images; detections with a calibrated score of at least
``score_min`` are kept, and for each one ``k`` points are sampled from its box-resolution
prediction and written as COCO DensePose annotations (box, RLE mask, 14 ``dp_masks``,
``dp_x/dp_y/dp_I/dp_U/dp_V`` and a per-point ``dp_confidence``) that a student trains on.

Strategies (one detection's predicted foreground = pixels whose chart label is > 0):

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

Pseudo-label points follow detectron2's sampler convention: pixel centres of the integer box,
``dp_x = (col + 0.5) / w * 256``, ``dp_y = (row + 0.5) / h * 256`` with ``w, h`` the integer box
size, so the written ``bbox`` is ``[x0, y0, w, h]`` with those integers (at most one pixel
smaller than the predicted float box) and every point falls on the pixel it was sampled from.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from densemap._validate import check_choice
from densemap.errors import AnnotationError, DensemapError

__all__ = [
    "STRATEGIES",
    "RANKING",
    "BoxPrediction",
    "Detection",
    "ImagePredictions",
    "box_prediction",
    "sample_points",
    "strategy_confidence",
    "coarse_box_masks",
    "pseudo_annotations",
    "pseudo_coco",
    "write_pseudo_coco",
    "list_images",
    "iter_teacher_predictions",
    "pseudo_label",
]

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
GRID = 256
N_COARSE = 14
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


# ----------------------------------------------------------------------------- one detection
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

    Same post-processing as :func:`densemap_models.evaluate.chart_result` (DensePose's
    ``ToChartResult``), without quantising U and V: the heatmaps are resized bilinearly to the
    integer box size, ``labels = argmax(softmax(alpha * z_fine)) * (argmax(z_coarse) > 0)``, and
    u, v, sigma_u, sigma_v are read from the pixel's chart channel.

    Parameters
    ----------
    output : DensePoseOutput of one RoI (tensors of shape (1, C, S, S))
    box : (4,) x0, y0, x1, y1 in image pixels
    """
    import torch
    import torch.nn.functional as F

    if len(output) != 1:
        raise ValueError(f"expected the output of one RoI, got {len(output)}")
    x0, y0, x1, y1 = [float(t) for t in box]
    w, h = max(int(x1 - x0), 1), max(int(y1 - y0), 1)

    def up(t):
        return F.interpolate(t.float(), size=(h, w), mode="bilinear", align_corners=False)[0]

    with torch.no_grad():
        probs = torch.softmax(up(output.alpha) * up(output.fine_segm), dim=0)
        conf, lab = probs.max(dim=0)
        coarse = up(output.coarse_segm)
        fg_prob = torch.softmax(up(output.alpha_coarse) * coarse, dim=0)[1]
        lab = lab * (coarse.argmax(dim=0) > 0)
        idx = lab[None]
        u = up(output.u).gather(0, idx)[0]
        v = up(output.v).gather(0, idx)[0]
        su = up(output.sigma_u).gather(0, idx)[0]
        sv = up(output.sigma_v).gather(0, idx)[0]
        sigma = torch.sqrt(0.5 * (su * su + sv * sv))
    return BoxPrediction(labels=lab.cpu().numpy(), u=u.cpu().numpy(), v=v.cpu().numpy(),
                         mask_prob=fg_prob.clamp(0, 1).cpu().numpy(), chart_conf=conf.clamp(0, 1).cpu().numpy(),
                         sigma=sigma.cpu().numpy())


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be an integer >= 0 (points per detection), got {k!r}")
    return int(k)


def strategy_confidence(pred: BoxPrediction, strategy: Strategy) -> np.ndarray:
    """(h, w) the value written as ``dp_confidence`` for ``strategy`` (its ranking channel;
    ``chart_conf`` for uniform). Direction: see :data:`RANKING` (``sigma``: low = confident)."""
    check_choice("strategy", strategy, STRATEGIES)
    return getattr(pred, CONFIDENCE_FIELD[strategy])


def sample_points(pred: BoxPrediction, *, strategy: Strategy, k: int,
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
    k = _check_k(k)
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


def coarse_box_masks(labels: np.ndarray) -> list:
    """The 14 coarse-part ``dp_masks`` (256 x 256 over the box) of a (h, w) chart label map.

    Grid cell (i, j) takes the label of the box pixel under its centre, mapped fine -> coarse
    (``densemap.synth.COARSE_OF_CHART``); an absent part is ``[]`` (as ``densemap synth`` writes).
    """
    from pycocotools import mask as mask_utils

    from densemap.synth import COARSE_OF_CHART

    labels = np.asarray(labels)
    h, w = labels.shape
    gy = np.minimum(((np.arange(GRID) + 0.5) * h / GRID).astype(np.int64), h - 1)
    gx = np.minimum(((np.arange(GRID) + 0.5) * w / GRID).astype(np.int64), w - 1)
    coarse = COARSE_OF_CHART[labels[np.ix_(gy, gx)]]
    out: list = [[] for _ in range(N_COARSE)]
    ks = np.flatnonzero(np.bincount(coarse.ravel(), minlength=N_COARSE + 1)[1:] > 0) + 1
    if len(ks):
        stack = np.asfortranarray((coarse[..., None] == ks).astype(np.uint8))
        for part, r in zip(ks, mask_utils.encode(stack)):
            out[part - 1] = {"size": [GRID, GRID], "counts": r["counts"].decode("ascii")}
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


def _rle_str(rle: dict) -> dict:
    c = rle["counts"]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": c.decode("ascii") if isinstance(c, bytes) else c}


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
                       category_id: int = 1) -> list[dict]:
    """COCO DensePose annotations of one image's detections.

    Detections with ``score >= score_min`` and a non-empty predicted foreground are kept. Each
    gets ``bbox`` ``[x0, y0, w, h]`` (integer box size, see the module doc), ``segmentation``
    (the detection's mask RLE, else the DensePose foreground pasted into the image; counts as
    str), ``area``, ``iscrowd`` 0, ``dp_masks`` (14 coarse parts from the predicted labels),
    ``score``, ``pseudo: True``, and -- when points are sampled -- ``dp_x, dp_y, dp_I, dp_U,
    dp_V`` (U, V clamped to [0, 1]) and ``dp_confidence`` (see :func:`strategy_confidence`).

    Parameters
    ----------
    detections : Detection sequence
    image_id : int
    height, width : int
        Image size (for the RLE segmentation).
    strategy, k
        See :func:`sample_points`.
    score_min : float
        Lowest detection score kept.
    seed : int
        Uniform sampling of detection ``d`` draws from ``default_rng([seed, image_id, d])``.
    first_id : int
        Id of the first annotation (the rest follow).
    """
    from pycocotools import mask as mask_utils

    check_choice("strategy", strategy, STRATEGIES)
    k = _check_k(k)
    out = []
    for d, det in enumerate(detections):
        if float(det.score) < score_min:
            continue
        pred = det.pred
        if not pred.foreground.any():
            continue
        h, w = pred.shape
        x0, y0 = float(det.box[0]), float(det.box[1])
        seg = det.mask
        if seg is not None and float(mask_utils.area(_rle_bytes(seg))) == 0:
            seg = None
        if seg is None:
            seg = mask_utils.encode(np.asfortranarray(_paste_foreground(pred, x0, y0, height, width)))
        seg = _rle_str(seg)
        ann = {"id": first_id + len(out), "image_id": int(image_id), "category_id": int(category_id), "iscrowd": 0,
               "bbox": [round(x0, 3), round(y0, 3), float(w), float(h)],
               "area": float(mask_utils.area(_rle_bytes(seg))), "segmentation": seg,
               "score": round(float(det.score), 6), "pseudo": True,
               "dp_masks": coarse_box_masks(pred.labels)}
        rng = np.random.default_rng([int(seed), int(image_id), d]) if strategy == "uniform" else None
        rows, cols = sample_points(pred, strategy=strategy, k=k, rng=rng)
        if len(rows):
            ann.update({
                "dp_x": _r6((cols + 0.5) / w * GRID), "dp_y": _r6((rows + 0.5) / h * GRID),
                "dp_I": [float(t) for t in pred.labels[rows, cols]],
                "dp_U": _r6(np.clip(pred.u[rows, cols], 0, 1)), "dp_V": _r6(np.clip(pred.v[rows, cols], 0, 1)),
                "dp_confidence": _r6(strategy_confidence(pred, strategy)[rows, cols]),
            })
        out.append(ann)
    return out


def _rle_bytes(rle: dict) -> dict:
    c = rle["counts"]
    return {"size": list(rle["size"]), "counts": c.encode("ascii") if isinstance(c, str) else c}


def pseudo_coco(predictions: Iterable[ImagePredictions], *, strategy: Strategy, k: int, score_min: float = 0.8,
                seed: int = 0, category: str = "chimp", info: dict | None = None) -> dict:
    """A COCO DensePose dict of pseudo-labels for a sequence of :class:`ImagePredictions`.

    Image ``n`` (0-based, iteration order) gets id ``n + 1``; ``info`` records the strategy,
    k, score_min, seed, the meaning and direction of ``dp_confidence`` and counts
    (``detections`` seen, ``kept``, ``points``).
    """
    check_choice("strategy", strategy, STRATEGIES)
    k = _check_k(k)
    images, anns = [], []
    n_det = 0
    for n, ip in enumerate(predictions):
        images.append({"id": n + 1, "file_name": ip.file_name, "width": int(ip.width), "height": int(ip.height)})
        n_det += len(ip.detections)
        anns += pseudo_annotations(ip.detections, n + 1, height=ip.height, width=ip.width, strategy=strategy, k=k,
                                   score_min=score_min, seed=seed, first_id=len(anns) + 1)
    chan = CONFIDENCE_FIELD[strategy]
    meta = {
        "description": f"densemap pseudo-labels ({strategy}, k={k})",
        "generator": "densemap pseudo-label",
        "strategy": strategy, "k": k, "score_min": float(score_min), "seed": int(seed),
        "dp_confidence": {"channel": chan, "higher_is_more_confident": chan != "sigma"},
        "counts": {"images": len(images), "detections": n_det, "kept": len(anns),
                   "points": sum(len(a.get("dp_x", ())) for a in anns)},
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


# ----------------------------------------------------------------------------- running a teacher
def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder`` (by suffix, sorted by name)."""
    p = Path(folder)
    if not p.is_dir():
        raise DensemapError(f"{p}: not a folder of images")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DensemapError(f"{p}: no images ({', '.join('*' + s for s in IMAGE_SUFFIXES)})")
    return files


def iter_teacher_predictions(model, image_paths: Iterable[str | os.PathLike], *, root: str | os.PathLike | None = None,
                             score_min: float = 0.0, device=None, progress: bool = False) -> Iterator[ImagePredictions]:
    """Run ``model`` (eval mode, no gradients) on image files, one at a time.

    Yields one :class:`ImagePredictions` per image, holding the detections with
    ``score >= score_min``, each with its :class:`BoxPrediction` and Mask R-CNN mask
    (probability >= 0.5, as RLE). ``file_name`` is the path relative to ``root`` (default:
    the file name). ``device`` None: the model's device.
    """
    import torch
    from PIL import Image
    from pycocotools import mask as mask_utils

    if device is None:
        device = next(model.parameters()).device
    model.eval().to(device)
    paths = [Path(p) for p in image_paths]
    it = paths
    if progress:
        from tqdm import tqdm

        it = tqdm(paths, desc="pseudo-label", unit="img")
    for p in it:
        with Image.open(p) as f:
            img = np.asarray(f.convert("RGB"))
        x = torch.from_numpy(img.copy()).permute(2, 0, 1).float().div_(255.0).to(device)
        with torch.no_grad():
            r = model([x])[0]
        keep = torch.nonzero(r["scores"] >= score_min).flatten()
        keep = keep[torch.argsort(r["scores"][keep], descending=True)]
        dets = []
        dp = r["densepose"]
        for j in keep.tolist():
            box = r["boxes"][j].detach().cpu().numpy().astype(np.float64)
            m = (r["masks"][j, 0] >= 0.5).cpu().numpy().astype(np.uint8) if "masks" in r else None
            rle = _rle_str(mask_utils.encode(np.asfortranarray(m))) if m is not None else None
            dets.append(Detection(box=box, score=float(r["scores"][j]), pred=box_prediction(dp[j], box), mask=rle))
        name = str(p.relative_to(root)) if root is not None else p.name
        yield ImagePredictions(name, int(img.shape[1]), int(img.shape[0]), dets)


def pseudo_label(model, image_paths, *, strategy: Strategy, k: int, score_min: float = 0.8, device=None,
                 seed: int = 0, root=None, out: str | os.PathLike | None = None, category: str = "chimp",
                 info: dict | None = None, progress: bool = False) -> dict:
    """Pseudo-label images with a teacher: run it, keep detections with score >= ``score_min``,
    sample ``k`` points per detection by ``strategy`` (:func:`sample_points`).

    Returns the COCO dict (see :func:`pseudo_coco`); with ``out`` also writes it
    (:func:`write_pseudo_coco`). Images are processed one at a time, so memory does not grow
    with their number beyond the annotations.
    """
    check_choice("strategy", strategy, STRATEGIES)
    k = _check_k(k)
    preds = iter_teacher_predictions(model, image_paths, root=root, score_min=score_min, device=device,
                                     progress=progress)
    data = pseudo_coco(preds, strategy=strategy, k=k, score_min=score_min, seed=seed, category=category, info=info)
    if out is not None:
        write_pseudo_coco(data["images"], data["annotations"], out, info=data["info"], categories=data["categories"])
    return data
