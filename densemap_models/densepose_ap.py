"""DensePose AP with GPS and GPSm similarities (``../shared/densepose-formats.md`` §3).

Per (detection, ground truth) similarity GPS (per-part kappa, :mod:`densemap_models.gps`) or
GPSm = sqrt(GPS * mask IoU); thresholds 0.5:0.05:0.95; the 20 best-scoring detections per
image; ground truth without ``dp_x`` is ignore-GT; a detection left unmatched that overlaps an
ignore-GT with box IoU >= 0.8 is ignored; area ranges all / medium / large; COCO's
101-point interpolated precision. Ground-truth points are placed in the detection with
DensePose's evaluation convention ``x = x0 + dp_x * w / 255`` truncated to the detection's
integer pixel grid, and predictions are quantised to uint8 (U, V x 255) as in the challenge.

Predictions are the dicts of :func:`densemap_models.evaluate.run_inference` (``image_id``,
``height``, ``width``, ``boxes`` (n, 4) xyxy, ``scores`` (n,), ``dp``: the
:func:`~densemap_models.postprocess.chart_result` of the top detections).
"""

from __future__ import annotations

import numpy as np

from .boxes import box_iou_xywh
from .gps import GeodesicTarget, default_target, gps_from_vertices

__all__ = ["densepose_ap", "gt_points_in_detection", "IOU_THRS", "REC_THRS", "AREAS"]

IOU_THRS = np.round(np.linspace(0.5, 0.95, 10), 2)
REC_THRS = np.linspace(0.0, 1.0, 101)
AREAS = {"all": (0, 1e10), "medium": (32**2, 96**2), "large": (96**2, 1e10)}


def gt_points_in_detection(ann: dict, det_box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An annotation's points as integer pixels of a detection box (DensePose's /255 convention).

    Parameters
    ----------
    ann : dict
        COCO DensePose annotation with ``bbox`` and ``dp_x``, ``dp_y`` (P points).
    det_box : (4,) float
        Detection x0, y0, x1, y1 in image pixels.

    Returns
    -------
    px, py : (P,) int64
        Column and row of each point in the detection's integer grid.
    ok : (P,) bool
        Inside the detection (its integer size, at least 1 x 1).
    """
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
                px, py, ok = gt_points_in_detection(a, p["boxes"][d])
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
