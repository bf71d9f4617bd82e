"""Evaluation: box and mask AP (pycocotools), DensePose AP with GPS / GPSm, and calibration.

DensePose AP follows the protocol of ``../shared/densepose-formats.md`` §3: per (detection,
ground truth) similarity GPS (per-part kappa, :mod:`densemap_models.gps`) or
GPSm = sqrt(GPS * mask IoU); thresholds 0.5:0.05:0.95; the 20 best-scoring detections per
image; ground truth without ``dp_x`` is ignore-GT; a detection left unmatched that overlaps an
ignore-GT with box IoU >= 0.8 is ignored; area ranges all / medium / large; COCO's
101-point interpolated precision. Ground-truth points are placed in the detection with
DensePose's evaluation convention ``x = x0 + dp_x * w / 255`` truncated to the detection's
integer pixel grid, and predictions are quantised to uint8 (U, V x 255) as in the challenge.

Calibration: for every annotated point inside its best-matching detection (box IoU >= 0.5),
the predicted sigma of u and v against the actual error where the chart is right, and the
calibrated chart posterior ``max softmax(alpha * z)`` against accuracy; :func:`reliability_plot`
draws both.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .boxes import box_iou_xywh
from .gps import GeodesicTarget, default_target, gps_from_vertices
from .heads import DensePoseOutput

__all__ = ["chart_result", "run_inference", "densepose_ap", "box_mask_ap", "calibration", "evaluate", "EvalResult",
           "reliability_plot", "merged_coco"]

log = logging.getLogger(__name__)
IOU_THRS = np.round(np.linspace(0.5, 0.95, 10), 2)
REC_THRS = np.linspace(0.0, 1.0, 101)
AREAS = {"all": (0, 1e10), "medium": (32**2, 96**2), "large": (96**2, 1e10)}


# ----------------------------------------------------------------------------- predictions
def chart_result(output: DensePoseOutput, box) -> dict:
    """Box-size IUV of one detection.

    Parameters
    ----------
    output : DensePoseOutput of one RoI
    box : (4,) x0, y0, x1, y1 in image pixels

    Returns
    -------
    dict
        ``iuv`` (3, h, w) uint8 [I, U * 255, V * 255] (h, w = int box size, at least 1);
        ``sigma`` (2, h, w) float32 (sigma_u, sigma_v of the pixel's chart);
        ``conf`` (h, w) float32 calibrated chart posterior of the predicted label (fg pixels);
        ``fg_conf`` (h, w) float32 calibrated foreground posterior.
    """
    x0, y0, x1, y1 = [float(t) for t in box]
    w, h = max(int(x1 - x0), 1), max(int(y1 - y0), 1)

    def up(t):
        return F.interpolate(t.float(), size=(h, w), mode="bilinear", align_corners=False)[0]

    fine = up(output.fine_segm)
    alpha = up(output.alpha)
    coarse = up(output.coarse_segm)
    alpha_c = up(output.alpha_coarse)
    probs = torch.softmax(alpha * fine, dim=0)
    conf, lab = probs.max(dim=0)
    fg_prob = torch.softmax(alpha_c * coarse, dim=0)[1]
    lab = lab * (coarse.argmax(dim=0) > 0)
    idx = lab[None]
    u = up(output.u).gather(0, idx)[0].clamp(0, 1)
    v = up(output.v).gather(0, idx)[0].clamp(0, 1)
    su = up(output.sigma_u).gather(0, idx)[0]
    sv = up(output.sigma_v).gather(0, idx)[0]
    iuv = torch.stack([lab.to(torch.uint8), (u * 255).to(torch.uint8), (v * 255).to(torch.uint8)])
    fgm = lab > 0
    return {"iuv": iuv.cpu().numpy(), "sigma": torch.stack([su, sv]).cpu().numpy().astype(np.float32),
            "conf": (conf * fgm).cpu().numpy().astype(np.float32), "fg_conf": fg_prob.cpu().numpy().astype(np.float32)}


@torch.no_grad()
def run_inference(model, dataset, *, device="cpu", max_dets: int = 20, progress: bool = False) -> list[dict]:
    """Detections per image of a :class:`~densemap_models.datasets.DensePoseDataset` (``train=False``).

    Returns a list (dataset order) of dicts: ``image_id``, ``boxes`` (n, 4) xyxy, ``scores`` (n,),
    ``masks`` (list of RLE of the Mask R-CNN masks), ``dp`` (chart results of the top
    ``max_dets`` detections).
    """
    from pycocotools import mask as mask_utils

    model.eval().to(device)
    out = []
    it = range(len(dataset))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="inference", unit="img", leave=False)
    for i in it:
        img = dataset.load_image(i)
        x = torch.from_numpy(img.copy()).permute(2, 0, 1).float().div_(255.0).to(device)
        r = model([x])[0]
        order = torch.argsort(r["scores"], descending=True)
        boxes = r["boxes"][order].cpu().numpy()
        scores = r["scores"][order].cpu().numpy()
        masks = (r["masks"][order, 0] >= 0.5).cpu().numpy().astype(np.uint8)
        rles = [mask_utils.encode(np.asfortranarray(m)) for m in masks]
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

    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
    res_box, res_seg = [], []
    for p in preds:
        for b, s, m in zip(p["boxes"], p["scores"], p["masks"]):
            xywh = [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]
            res_box.append({"image_id": p["image_id"], "category_id": 1, "bbox": xywh, "score": float(s)})
            mm = dict(m, counts=m["counts"].decode("ascii") if isinstance(m["counts"], bytes) else m["counts"])
            res_seg.append({"image_id": p["image_id"], "category_id": 1, "segmentation": mm, "score": float(s)})
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


# ----------------------------------------------------------------------------- DensePose AP
def _gt_points_in_det(ann: dict, det_box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GT points as integer pixels of the detection box (/255 convention) and their validity."""
    x, y, w, h = [float(t) for t in ann["bbox"]]
    dx0, dy0, dx1, dy1 = [float(t) for t in det_box]
    wd, hd = max(int(dx1 - dx0), 1), max(int(dy1 - dy0), 1)
    px = np.trunc(x + np.asarray(ann["dp_x"], dtype=np.float64) * w / 255.0 - dx0).astype(np.int64)
    py = np.trunc(y + np.asarray(ann["dp_y"], dtype=np.float64) * h / 255.0 - dy0).astype(np.int64)
    ok = (px >= 0) & (py >= 0) & (px < wd) & (py < hd)
    return px, py, ok


def _gt_mask_rle(ann: dict, height: int, width: int):
    """Full-image RLE of a GT mask: dp_masks foreground (zoomed to the box), else segmentation."""
    from pycocotools import mask as mask_utils

    from .datasets import box_grid_mask, instance_mask

    g = box_grid_mask(ann)
    if g is not None:
        from scipy.ndimage import zoom

        x, y, w, h = [float(t) for t in ann["bbox"]]
        wi, hi = max(int(w), 1), max(int(h), 1)
        m = zoom(g.astype(np.float32), (hi / 256.0, wi / 256.0), order=1) > 0.5
        full = np.zeros((height, width), np.uint8)
        xi, yi = int(x), int(y)
        ys, xs = slice(max(yi, 0), min(yi + m.shape[0], height)), slice(max(xi, 0), min(xi + m.shape[1], width))
        full[ys, xs] = m[ys.start - yi : ys.stop - yi, xs.start - xi : xs.stop - xi]
    else:
        full = instance_mask(ann, height, width)
        if full is None:
            full = np.zeros((height, width), np.uint8)
    return mask_utils.encode(np.asfortranarray(full))


def _dp_mask_rle(dp: dict, box, height: int, width: int):
    from pycocotools import mask as mask_utils

    full = np.zeros((height, width), np.uint8)
    m = (dp["iuv"][0] > 0).astype(np.uint8)
    xi, yi = int(box[0]), int(box[1])
    ys, xs = slice(max(yi, 0), min(yi + m.shape[0], height)), slice(max(xi, 0), min(xi + m.shape[1], width))
    if ys.stop > ys.start and xs.stop > xs.start:
        full[ys, xs] = m[ys.start - yi : ys.stop - yi, xs.start - xi : xs.stop - xi]
    return mask_utils.encode(np.asfortranarray(full))


def _similarities(gt_by_image: dict, preds: list[dict], target: GeodesicTarget, *, kappa="per_part",
                  progress: bool = False) -> dict:
    """Per image: GPS and mask-IoU matrices (D, G) of the top detections vs the ground truth."""
    from pycocotools import mask as mask_utils

    pairs = []  # (image, d, g, gv, pv, gI)
    per_image = {}
    for p in preds:
        anns = gt_by_image.get(p["image_id"], [])
        D, G = len(p["dp"]), len(anns)
        det_xywh = np.array([[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in p["boxes"][:D]]).reshape(D, 4)
        gt_xywh = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(G, 4)
        biou = box_iou_xywh(det_xywh, gt_xywh)
        gps = np.zeros((D, G))
        gt_v = {}
        for g, a in enumerate(anns):
            if a.get("dp_x"):
                gt_v[g] = target.vertices(np.asarray(a["dp_I"]).astype(np.int64), a["dp_U"], a["dp_V"])
        for d in range(D):
            for g in gt_v:
                if biou[d, g] <= 0:
                    continue
                a = anns[g]
                px, py, ok = _gt_points_in_det(a, p["boxes"][d])
                iuv = p["dp"][d]["iuv"]
                pI = np.zeros(len(px), np.int64)
                pU = np.zeros(len(px))
                pV = np.zeros(len(px))
                pI[ok] = iuv[0, py[ok], px[ok]]
                pU[ok] = iuv[1, py[ok], px[ok]] / 255.0
                pV[ok] = iuv[2, py[ok], px[ok]] / 255.0
                pv = target.vertices(pI, pU, pV)
                pairs.append((p["image_id"], d, g, gt_v[g], pv, np.asarray(a["dp_I"]).astype(np.int64)))
        # mask IoU for GPSm
        if D and G:
            gt_rles = [_gt_mask_rle(a, p["height"], p["width"]) for a in anns]
            dt_rles = [_dp_mask_rle(p["dp"][d], p["boxes"][d], p["height"], p["width"]) for d in range(D)]
            miou = np.asarray(mask_utils.iou(dt_rles, gt_rles, [0] * G)).reshape(D, G)
        else:
            miou = np.zeros((D, G))
        per_image[p["image_id"]] = {"gps": gps, "miou": miou, "biou": biou, "det_area": det_xywh[:, 2] * det_xywh[:, 3],
                                    "scores": np.asarray(p["scores"][:D])}
    # all geodesic distances in one pass
    if pairs:
        gv = np.concatenate([q[3] for q in pairs])
        pv = np.concatenate([q[4] for q in pairs])
        both = (gv >= 0) & (pv >= 0)
        dist = np.zeros(len(gv))
        dist[both] = target.pair_distances(gv[both], pv[both], progress=progress)
        start = 0
        for img, d, g, a_gv, a_pv, a_gi in pairs:
            n = len(a_gv)
            per_image[img]["gps"][d, g] = gps_from_vertices(a_gv, a_pv, a_gi, dist[start : start + n], kappa=kappa)
            start += n
    for v in per_image.values():
        v["gpsm"] = np.sqrt(v["gps"] * v["miou"])
    return per_image


def _evaluate_image(sim, anns, det_area, scores, biou, area_rng, iou_thrs):
    """COCO-style greedy matching with DensePose's ignore rules for one image and area range."""
    G = len(anns)
    gt_ig = np.array([(not a.get("dp_x")) or bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
    area = np.array([float(a.get("area", a["bbox"][2] * a["bbox"][3])) for a in anns]).reshape(G)
    out_rng = (area < area_rng[0]) | (area > area_rng[1])
    ig = gt_ig | out_rng
    gorder = np.argsort(ig, kind="stable")  # regular GT first
    D = len(scores)
    T = len(iou_thrs)
    dtm = -np.ones((T, D), np.int64)
    gtm = -np.ones((T, G), np.int64)
    dt_ig = np.zeros((T, D), bool)
    if G and D:
        for t, thr in enumerate(iou_thrs):
            for d in range(D):
                best, m = min(thr, 1 - 1e-10), -1
                for g in gorder:
                    if gtm[t, g] >= 0:
                        continue
                    if m > -1 and not ig[m] and ig[g]:
                        break
                    if sim[d, g] < best or sim[d, g] <= 0:
                        continue
                    best, m = sim[d, g], g
                if m == -1:
                    continue
                dt_ig[t, d] = ig[m]
                dtm[t, d], gtm[t, m] = m, d
        # DensePose's box fallback: an unmatched detection on an ignore-GT (box IoU >= 0.8) is ignored
        for d in range(D):
            if dtm[-1, d] >= 0:
                continue
            best, m = 0.8, -1
            for g in range(G):
                if gtm[-1, g] >= 0:
                    continue
                if biou[d, g] >= best:
                    best, m = biou[d, g], g
            if m > -1 and gt_ig[m]:
                dt_ig[:, d] = True
    out_det = (det_area < area_rng[0]) | (det_area > area_rng[1])
    dt_ig |= (dtm < 0) & out_det[None]
    return {"scores": scores, "dtm": dtm, "dt_ig": dt_ig, "n_gt": int((~ig).sum())}


def _accumulate(evals: list[dict], iou_thrs) -> tuple[np.ndarray, np.ndarray]:
    """Precision (T, 101) and recall (T,) from per-image matches; -1 where there is no GT."""
    T = len(iou_thrs)
    n_gt = sum(e["n_gt"] for e in evals)
    precision = -np.ones((T, len(REC_THRS)))
    recall = -np.ones(T)
    if n_gt == 0:
        return precision, recall
    scores = np.concatenate([e["scores"] for e in evals]) if evals else np.zeros(0)
    order = np.argsort(-scores, kind="mergesort")
    dtm = np.concatenate([e["dtm"] for e in evals], axis=1)[:, order] if evals else np.zeros((T, 0))
    dt_ig = np.concatenate([e["dt_ig"] for e in evals], axis=1)[:, order] if evals else np.zeros((T, 0), bool)
    tps = (dtm >= 0) & ~dt_ig
    fps = (dtm < 0) & ~dt_ig
    tp_sum = np.cumsum(tps, axis=1).astype(float)
    fp_sum = np.cumsum(fps, axis=1).astype(float)
    for t in range(T):
        tp, fp = tp_sum[t], fp_sum[t]
        rc = tp / n_gt
        pr = tp / np.maximum(tp + fp, np.spacing(1))
        recall[t] = rc[-1] if len(rc) else 0.0
        pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr
        q = np.zeros(len(REC_THRS))
        inds = np.searchsorted(rc, REC_THRS, side="left")
        for ri, pi in enumerate(inds):
            if pi < len(pr):
                q[ri] = pr[pi]
        precision[t] = q
    return precision, recall


def densepose_ap(gt_by_image: dict, preds: list[dict], target: GeodesicTarget | None = None, *,
                 kappa="per_part", min_iou: float = 0.5, progress: bool = False) -> dict:
    """DensePose AP / AR (x100) with GPS and GPSm similarities.

    Parameters
    ----------
    gt_by_image : image id -> list of GT annotations (merged class)
    preds : from :func:`run_inference` (the top 20 detections carry chart results)
    target : GeodesicTarget (default: the embedded human)
    min_iou : float
        Lowest threshold (0.5; 0.2 gives DensePose's relaxed "APex").
    """
    target = target or default_target()
    iou_thrs = np.round(np.linspace(min_iou, 0.95, int(round((0.95 - min_iou) / 0.05)) + 1), 2)
    sims = _similarities(gt_by_image, preds, target, kappa=kappa, progress=progress)
    out = {}
    for metric in ("gps", "gpsm"):
        res = {}
        for name, rng in AREAS.items():
            evals = []
            for p in preds:
                s = sims[p["image_id"]]
                anns = gt_by_image.get(p["image_id"], [])
                evals.append(_evaluate_image(s[metric], anns, s["det_area"], s["scores"], s["biou"], rng, iou_thrs))
            prec, rec = _accumulate(evals, iou_thrs)

            def ap(sel):
                v = prec[sel]
                v = v[v > -1]
                return round(100 * float(v.mean()), 2) if v.size else -1.0

            if name == "all":
                res["AP"] = ap(slice(None))
                for thr in (0.5, 0.75):
                    k = np.flatnonzero(np.abs(iou_thrs - thr) < 1e-3)
                    res[f"AP{int(thr * 100)}"] = ap(k) if len(k) else -1.0
                r = rec[rec > -1]
                res["AR"] = round(100 * float(r.mean()), 2) if r.size else -1.0
            else:
                res[f"AP{name[0]}"] = ap(slice(None))
        out["GPS" if metric == "gps" else "GPSm"] = res
    vals = [s["gps"][s["gps"] > 0] for s in sims.values()]
    vals = np.concatenate(vals) if vals else np.zeros(0)
    out["mean_best_GPS"] = round(float(np.mean([s["gps"].max(0).mean() for s in sims.values() if s["gps"].size])), 4) \
        if any(s["gps"].size for s in sims.values()) else 0.0
    return out


# ----------------------------------------------------------------------------- calibration
def calibration(gt_by_image: dict, preds: list[dict], *, bins: int = 8) -> dict:
    """Predicted uncertainty against actual error on annotated points.

    For each GT with points, its best detection (box IoU >= 0.5, top 20); at GT points inside it:

    * u/v: where the predicted chart equals the GT chart, pairs (sigma_u, |u - u_gt|) and
      (sigma_v, |v - v_gt|), binned by sigma quantiles: mean sigma, RMS error, mean |error|,
      fraction with |error| <= sigma (0.683 for a calibrated Gaussian);
    * I: calibrated confidence ``max softmax(alpha * z)`` against chart accuracy, in equal-width
      bins, with the expected calibration error (ECE).
    """
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
            px, py, ok = _gt_points_in_det(a, p["boxes"][d])
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
    sig = np.concatenate(sig) if sig else np.zeros(0)
    err = np.concatenate(err) if err else np.zeros(0)
    conf = np.concatenate(conf) if conf else np.zeros(0)
    correct = np.concatenate(correct) if correct else np.zeros(0, bool)
    uv_rows = []
    if len(sig):
        edges = np.unique(np.quantile(sig, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, sig, side="right") - 1, 0, max(len(edges) - 2, 0))
        for b in range(max(len(edges) - 1, 1)):
            m = which == b
            if m.any():
                uv_rows.append({"sigma_lo": float(edges[b]), "sigma_hi": float(edges[min(b + 1, len(edges) - 1)]),
                                "n": int(m.sum()), "mean_sigma": float(sig[m].mean()),
                                "rms_error": float(np.sqrt((err[m] ** 2).mean())), "mean_abs_error": float(err[m].mean()),
                                "within_1sigma": float((err[m] <= sig[m]).mean())})
    i_rows = []
    ece = 0.0
    if len(conf):
        edges = np.linspace(0, 1, bins + 1)
        which = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)
        for b in range(bins):
            m = which == b
            if m.any():
                i_rows.append({"conf_lo": float(edges[b]), "conf_hi": float(edges[b + 1]), "n": int(m.sum()),
                               "mean_conf": float(conf[m].mean()), "accuracy": float(correct[m].mean())})
                ece += m.mean() * abs(conf[m].mean() - correct[m].mean())
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
    return {"summary": summary, "uv_bins": uv_rows, "i_bins": i_rows}


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    from scipy.stats import spearmanr

    r = spearmanr(a, b).statistic
    return None if not np.isfinite(r) else float(r)


def reliability_plot(calib: dict, path: str | os.PathLike, *, title: str = "") -> None:
    """Two panels: RMS u/v error vs predicted sigma; chart accuracy vs calibrated confidence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4))
    rows = calib["uv_bins"]
    if rows:
        s = [r["mean_sigma"] for r in rows]
        a1.plot(s, [r["rms_error"] for r in rows], "o-", label="RMS error")
        a1.plot(s, [r["mean_abs_error"] for r in rows], "s--", label="mean |error|")
        hi = max(max(s), max(r["rms_error"] for r in rows)) * 1.1
        a1.plot([0, hi], [0, hi], "k:", label="ideal (error = sigma)")
    a1.set_xlabel("predicted sigma (u, v)")
    a1.set_ylabel("actual error")
    a1.set_title("u/v: sigma vs error")
    a1.legend(fontsize=8)
    rows = calib["i_bins"]
    if rows:
        a2.bar([r["mean_conf"] for r in rows], [r["accuracy"] for r in rows], width=0.08, alpha=0.7, label="accuracy")
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
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- all together
@dataclass
class EvalResult:
    bbox: dict
    segm: dict
    densepose: dict
    calibration: dict
    n_images: int
    n_instances: int
    extra: dict = field(default_factory=dict)

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
                      extra={"target": target.name, "min_iou": min_iou, "max_dets": max_dets})
