"""Graded DensePose pseudo-labels from a teacher model (Sanakoyeu et al. 2020, §3.5).

A teacher runs on unlabelled images (:func:`iter_teacher_predictions`); detections with a
calibrated score of at least ``score_min`` are kept, and for each one ``k`` points are chosen
from its box-resolution prediction and written as COCO DensePose annotations (box, RLE mask,
14 ``dp_masks``, ``dp_x/dp_y/dp_I/dp_U/dp_V`` and a per-point ``dp_confidence``) that a student
trains on (:func:`pseudo_label` does it all).

The parts live in two modules, re-exported here:

* :mod:`densemap_models.pseudo_points` -- :class:`BoxPrediction`, :func:`box_prediction` and the
  point-choosing strategies (:data:`STRATEGIES`, :data:`RANKING`, :func:`choose_points`,
  :func:`strategy_confidence`);
* :mod:`densemap_models.pseudo_coco` -- :class:`Detection`, :class:`ImagePredictions`,
  :func:`coarse_box_masks`, :func:`pseudo_annotations`, :func:`pseudo_coco`,
  :func:`write_pseudo_coco`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from densemap._validate import check_choice
from densemap.annotation.coco import encode_rle
from densemap.errors import DensemapError

from .pseudo_coco import (Detection, ImagePredictions, coarse_box_masks, pseudo_annotations, pseudo_coco,
                          write_pseudo_coco)
from .pseudo_points import (RANKING, STRATEGIES, BoxPrediction, Strategy, box_prediction, check_k, choose_points,
                            strategy_confidence)

__all__ = [
    "STRATEGIES",
    "RANKING",
    "BoxPrediction",
    "Detection",
    "ImagePredictions",
    "box_prediction",
    "choose_points",
    "strategy_confidence",
    "coarse_box_masks",
    "pseudo_annotations",
    "pseudo_coco",
    "write_pseudo_coco",
    "list_images",
    "iter_teacher_predictions",
    "pseudo_label",
    "pseudo_label_folder",
    "PseudoLabelError",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


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

    from densemap._images import read_image

    if device is None:
        device = next(model.parameters()).device
    model.eval().to(device)
    paths = [Path(p) for p in image_paths]
    it = paths
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(paths, desc="pseudo-label", unit="img")
    for p in it:
        img = read_image(p)  # checked: an image, not corrupt, under the pixel limit
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
            rle = encode_rle(m) if m is not None else None
            dets.append(Detection(box=box, score=float(r["scores"][j]), pred=box_prediction(dp[j], box), mask=rle))
        name = str(p.relative_to(root)) if root is not None else p.name
        yield ImagePredictions(name, int(img.shape[1]), int(img.shape[0]), dets)


def pseudo_label(model, image_paths, *, strategy: Strategy, k: int, score_min: float = 0.8, device=None,
                 seed: int = 0, root=None, out: str | os.PathLike | None = None, category: str = "chimp",
                 info: dict | None = None, allow_empty: bool = False, progress: bool = False,
                 ignore_min: float | None = None) -> dict:
    """Pseudo-label images with a teacher: run it, keep detections with score >= ``score_min``,
    choose ``k`` points per detection by ``strategy`` (:func:`choose_points`); with
    ``ignore_min``, detections scoring from it up to ``score_min`` become ignore regions
    (:func:`~densemap_models.pseudo_coco.pseudo_annotations`).

    Returns the COCO dict (see :func:`pseudo_coco`; ``info["counts"]`` says what was dropped
    and why); with ``out`` also writes it (:func:`write_pseudo_coco`). Images are processed one
    at a time, so memory does not grow with their number beyond the annotations.

    Raises
    ------
    PseudoLabelError
        Nothing kept (no detection, or no point with ``k > 0``), unless ``allow_empty``;
        nothing is written then.
    """
    check_choice("strategy", strategy, STRATEGIES)
    k = check_k(k)
    preds = iter_teacher_predictions(model, image_paths, root=root, score_min=0.0, device=device,
                                     progress=progress)
    data = pseudo_coco(preds, strategy=strategy, k=k, score_min=score_min, seed=seed, category=category, info=info,
                       ignore_min=ignore_min)
    c = data["info"]["counts"]
    if not allow_empty and (c["kept"] == 0 or (k > 0 and c["points"] == 0)):
        why = ", ".join(f"{n} {r}" for r, n in c["dropped"].items()) or "the teacher detected nothing"
        raise PseudoLabelError(f"{out or 'pseudo-labels'}: no pseudo-label kept from {c['images']} images and "
                               f"{c['detections']} detections ({why}); pass --allow-empty to write the empty file")
    if out is not None:
        write_pseudo_coco(data["images"], data["annotations"], out, info=data["info"], categories=data["categories"])
    return data


class PseudoLabelError(DensemapError):
    """The teacher gave no usable pseudo-label."""


def pseudo_label_folder(ckpt, images_dir, out, *, strategy: Strategy, k: int, score_min: float = 0.8,
                        category: str = "chimp", seed: int = 0, device="cpu", allow_empty: bool = False,
                        progress: bool = False, ignore_min: float | None = None) -> dict:
    """What ``densemap pseudo-label`` does: load the teacher checkpoint, pseudo-label the
    images of ``images_dir`` (:func:`list_images`) and write ``out`` (:func:`pseudo_label`)."""
    from .train import load_checkpoint

    model, _, _ = load_checkpoint(ckpt, device=device)
    info = {"teacher": str(ckpt), "image_root": str(Path(images_dir).resolve())}
    return pseudo_label(model, list_images(images_dir), strategy=strategy, k=k, score_min=score_min, device=device,
                        seed=seed, root=images_dir, out=out, category=category, info=info, allow_empty=allow_empty,
                        progress=progress, ignore_min=ignore_min)
