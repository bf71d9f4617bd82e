"""Evaluation of a model on a COCO DensePose set: box and mask AP, DensePose AP, calibration.

:func:`evaluate` runs the model (:func:`run_inference`) and computes

* box and mask AP with pycocotools (:func:`box_mask_ap`, the kept categories merged into one);
* DensePose AP with GPS / GPSm (:func:`~densemap_models.densepose_ap.densepose_ap`, the
  protocol of ``../shared/densepose-formats.md`` §3);
* the calibration of the predicted sigma and chart posterior
  (:func:`~densemap_models.calibration.calibration`, :func:`~densemap_models.calibration.reliability_plot`).

``chart_result``, ``densepose_ap``, ``calibration`` and ``reliability_plot`` are importable
from here as well.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from densemap._display import Table
from densemap.annotation.coco import encode_rle, rle_for_pycocotools

from .calibration import calibration, reliability_plot
from .densepose_ap import densepose_ap
from .gps import GeodesicTarget, default_target
from .postprocess import chart_result

__all__ = ["chart_result", "run_inference", "densepose_ap", "box_mask_ap", "calibration", "evaluate", "EvalResult",
           "reliability_plot", "merged_coco", "evaluate_checkpoint"]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- predictions
@torch.no_grad()
def run_inference(model, dataset, *, device="cpu", max_dets: int = 20, progress: bool = False) -> list[dict]:
    """Detections per image of a :class:`~densemap_models.datasets.DensePoseDataset` (``train=False``).

    Returns a list (dataset order) of dicts: ``image_id``, ``height``, ``width``, ``boxes`` (n, 4)
    xyxy, ``scores`` (n,) (both by decreasing score), ``masks`` (n COCO RLEs, str counts, of the
    Mask R-CNN masks at probability >= 0.5), ``dp`` (the
    :func:`~densemap_models.postprocess.chart_result` of the top ``max_dets`` detections).
    """
    model.eval().to(device)
    out = []
    it = range(len(dataset))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="inference", unit="img", leave=False)
    for i in it:
        img = dataset.load_image(i)
        x = torch.from_numpy(img.copy()).permute(2, 0, 1).float().div_(255.0).to(device)
        r = model([x])[0]
        order = torch.argsort(r["scores"], descending=True)
        boxes = r["boxes"][order].cpu().numpy()
        scores = r["scores"][order].cpu().numpy()
        masks = (r["masks"][order, 0] >= 0.5).cpu().numpy().astype(np.uint8)
        rles = [encode_rle(m) for m in masks]
        dp = r["densepose"][order.to(r["densepose"].fine_segm.device)]
        dps = [chart_result(dp[k], boxes[k]) for k in range(min(max_dets, len(boxes)))]
        out.append({"image_id": dataset.images[i]["id"], "height": img.shape[0], "width": img.shape[1],
                    "boxes": boxes, "scores": scores, "masks": rles, "dp": dps})
    return out


# ----------------------------------------------------------------------------- box / mask AP
def merged_coco(data: dict, category_ids) -> dict:
    """A copy of a COCO dict with the kept categories merged into category 1 (others dropped)."""
    d = copy.deepcopy(data)
    keep = set(category_ids)
    d["annotations"] = [dict(a, category_id=1) for a in d["annotations"] if a.get("category_id") in keep]
    for k, a in enumerate(d["annotations"]):
        a.setdefault("id", k + 1)
        a.setdefault("iscrowd", 0)
        if "area" not in a:
            a["area"] = float(a["bbox"][2] * a["bbox"][3])
    d["categories"] = [{"id": 1, "name": "foreground", "supercategory": "foreground"}]
    return d


def box_mask_ap(gt: dict, preds: list[dict]) -> dict:
    """COCO box and mask AP (x100) of ``preds`` (from :func:`run_inference`) against merged GT."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
    res_box, res_seg = [], []
    for p in preds:
        for b, s, m in zip(p["boxes"], p["scores"], p["masks"]):
            xywh = [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]
            res_box.append({"image_id": p["image_id"], "category_id": 1, "bbox": xywh, "score": float(s)})
            res_seg.append({"image_id": p["image_id"], "category_id": 1, "segmentation": rle_for_pycocotools(m),
                            "score": float(s)})
    names = ["AP", "AP50", "AP75", "APs", "APm", "APl"]
    out = {}
    for kind, res in (("bbox", res_box), ("segm", res_seg)):
        if not res:
            out[kind] = {n: 0.0 for n in names}
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            cd = cg.loadRes(res)
            ev = COCOeval(cg, cd, kind)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        out[kind] = {n: round(100 * float(max(v, 0.0)), 2) for n, v in zip(names, ev.stats[:6])}
    return out


# ----------------------------------------------------------------------------- all together
@dataclass
class EvalResult:
    """Every metric of :func:`evaluate`; shows as a table (``repr``, and HTML in a notebook).

    Attributes
    ----------
    bbox, segm : dict
        COCO box and mask AP (x100): ``AP``, ``AP50``, ``AP75``, ``APs``, ``APm``, ``APl``.
    densepose : dict
        DensePose AP (x100) with GPS and GPSm (``{"GPS": {...}, "GPSm": {...}, "mean_best_GPS": ...}``).
    calibration : Calibration
        See :func:`~densemap_models.calibration.calibration`.
    n_images, n_instances : int
    extra : dict
        The target mesh, IoU threshold, detections per image, detections made.
    """

    bbox: dict
    segm: dict
    densepose: dict
    calibration: dict
    n_images: int
    n_instances: int
    extra: dict = field(default_factory=dict)

    def _table(self) -> Table:
        rows = [("images", self.n_images), ("instances", self.n_instances)]
        rows += [(k, v) for k, v in self.extra.items() if not isinstance(v, (dict, list))]
        if "mean_best_GPS" in self.densepose:
            rows.append(("mean best GPS", self.densepose["mean_best_GPS"]))
        for what, d in (("box AP", self.bbox), ("mask AP", self.segm), ("DensePose AP (GPS)", self.densepose.get("GPS")),
                        ("DensePose AP (GPSm)", self.densepose.get("GPSm"))):
            if d:
                rows += [(what,)] + [(k, v) for k, v in d.items()]
        summary = (self.calibration or {}).get("summary", {})
        if summary:
            rows += [("calibration",)] + list(summary.items())
        return Table("Evaluation (AP x100)", ("", "value"), rows)

    def __repr__(self):
        return self._table().text()

    def _repr_html_(self):
        return self._table().html()

    def to_dict(self) -> dict:
        return {"n_images": self.n_images, "n_instances": self.n_instances, "bbox": self.bbox, "segm": self.segm,
                "densepose": self.densepose, "calibration": self.calibration, **self.extra}


def evaluate(model, annotations, image_root, *, target: GeodesicTarget | str = "densemap_human", classes=(),
             device="cpu", max_dets: int = 20, min_iou: float = 0.5, progress: bool = False) -> EvalResult:
    """Run ``model`` on a COCO DensePose set and compute every metric (see the module doc)."""
    from densemap.annotation.coco import read_coco

    from .datasets import DensePoseDataset

    if isinstance(target, str):
        target = default_target(target)
    ds = DensePoseDataset(annotations, image_root, classes=classes, train=False)
    preds = run_inference(model, ds, device=device, max_dets=max_dets, progress=progress)
    data = read_coco(annotations)
    gt = merged_coco(data, ds.category_ids if data.get("categories") else {a.get("category_id") for a in data["annotations"]})
    gt_by_image: dict = {}
    for a in gt["annotations"]:
        gt_by_image.setdefault(a["image_id"], []).append(a)
    ap = box_mask_ap(gt, preds)
    dp = densepose_ap(gt_by_image, preds, target, min_iou=min_iou, progress=progress)
    cal = calibration(gt_by_image, preds)
    return EvalResult(ap["bbox"], ap["segm"], dp, cal, len(ds), len(gt["annotations"]),
                      extra={"target": target.name, "min_iou": min_iou, "max_dets": max_dets,
                             "n_detections": int(sum(len(p["scores"]) for p in preds))})


def evaluate_checkpoint(ckpt, data, *, images=None, target: str = "densemap_human", classes=(), min_iou: float = 0.5,
                        out=None, device="cpu", progress: bool = False) -> tuple[dict, Path]:
    """What ``densemap eval`` does: load a checkpoint, evaluate it on a dataset, write the results.

    Parameters
    ----------
    ckpt : path-like
        Checkpoint file or run folder.
    data : path-like
        Dataset folder or COCO DensePose JSON (``images`` for its image folder).
    out : path-like, optional
        Folder for ``metrics.json`` and ``reliability.png`` (default: ``eval_<dataset>``
        beside the checkpoint).

    Returns
    -------
    metrics : dict
        :meth:`EvalResult.to_dict` plus ``checkpoint`` and ``data``.
    out_dir : Path
    """
    import json

    from densemap._io import atomic_path

    from .datasets import resolve_data
    from .train import load_checkpoint

    model, _, _ = load_checkpoint(ckpt, device=device)
    js, root = resolve_data(data, images)
    res = evaluate(model, js, root, target=target, classes=classes, device=device, min_iou=min_iou, progress=progress)
    ck = Path(ckpt)
    out_dir = Path(out) if out else (ck if ck.is_dir() else ck.parent) / f"eval_{Path(js).parent.name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = {**res.to_dict(), "checkpoint": str(ckpt), "data": str(js)}
    with atomic_path(out_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    with atomic_path(out_dir / "reliability.png") as tmp:
        reliability_plot(res.calibration, tmp, title=f"{Path(js).parent.name}")
    return metrics, out_dir
