"""The tables and the verdict of ``benchmarks/self_training.py``: strategy names, pseudo-label
accuracy against the pool's hidden ground truth, the teacher's box precision and recall by
score, mean +- std over seeds, and the closing note with its standard errors.

Kept apart from the runner (data, teacher, students) so that each stays one concept;
``self_training.py`` imports everything it needs from here.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

STRATEGY_NAMES = {"uniform": "uniform", "mask": "mask-based", "I": "I-based", "uv": "uv-based"}
# "S+ignore": strategy S, and the teacher's detections scoring from --ignore-min up to --score-min
# written as ignore regions (a student learns them neither as chimps nor as background)
IGNORE = "+ignore"
STRATEGY_NAMES.update({f"{k}{IGNORE}": f"{v} + ignore regions" for k, v in list(STRATEGY_NAMES.items())})
METRICS = (("DP AP (GPS)", ("densepose", "GPS", "AP")), ("DP AP (GPSm)", ("densepose", "GPSm", "AP")),
           ("box AP", ("bbox", "AP")), ("mask AP", ("segm", "AP")))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- pseudo-label accuracy
def pseudo_label_accuracy(pseudo_files: dict, pool_json: Path) -> dict:
    """Score pseudo-labelled points against the pool's hidden ground truth (no training involved).

    The pool is synthetic, so the surface under every pixel is known: the scene is re-rendered
    from its seed (``densemap.synth.synth_image``), the chimp point under each pseudo point's
    pixel is carried to the human with the embedded ground-truth correspondence, and the
    teacher's (I, U, V) is compared with it on the human, as GPS does: geodesic error d (metres)
    and per-point similarity ``exp(-d^2 / (2 kappa^2))`` with the ground-truth chart's kappa.
    A point whose pixel is background scores 0. The chimp point is taken at the pixel's face
    corner with the largest barycentric weight (an error below one chimp edge, ~1 cm).

    ``pseudo_files`` maps a row name to a list of pseudo-label JSON files (one per seed);
    returns per row: points, fraction on background, median error (cm), mean point GPS.
    """
    from densemap.charts import reference_atlas
    from densemap.data import chimp_to_human_ground_truth, reference_human
    from densemap.synth import SceneOptions, synth_image
    from densemap_models.gps import default_target, part_kappa

    info = json.loads(pool_json.read_text())["info"]
    o = info["options"]
    size = o["size"] if np.isscalar(o["size"]) else tuple(o["size"])
    options = SceneOptions(size=size, instances=tuple(o["instances"]), points=o["points"], min_area=o["min_area"],
                           min_point_area=o["min_point_area"], pose_scale=o["pose_scale"])
    target = default_target("densemap_human")
    human = reference_human()
    chimp_gt_vertex = target.atlas.nearest_vertex(*chimp_to_human_ground_truth())  # chimp vertex -> human vertex
    chimp_atlas = reference_atlas("chimp")
    scenes = {}

    def scene(name: str):
        if name not in scenes:
            index = int(Path(name).stem)
            scenes[name] = synth_image(info["species"], int(info["seed"]), index, options=options)[0]
        return scenes[name]

    # gather every point of every file, then one geodesic pass over the unique pairs
    per_file = []
    for row, files in pseudo_files.items():
        for f in files:
            d = json.loads(Path(f).read_text())
            names = {im["id"]: im["file_name"] for im in d["images"]}
            gt, pred = [], []
            for a in d["annotations"]:
                if not a.get("dp_x"):
                    continue
                sc = scene(names[a["image_id"]])
                x0, y0, w, h = a["bbox"]
                col = np.floor(x0 + np.asarray(a["dp_x"]) / 256.0 * w).astype(np.int64)
                rowp = np.floor(y0 + np.asarray(a["dp_y"]) / 256.0 * h).astype(np.int64)
                H, W = sc.face.shape
                inside = (col >= 0) & (col < W) & (rowp >= 0) & (rowp < H)
                face = np.full(len(col), -1)
                face[inside] = sc.face[rowp[inside], col[inside]]
                g = np.full(len(col), -1)
                on = face >= 0
                if on.any():
                    inst = np.searchsorted(sc.face_offset[1:], face[on], side="right")
                    local = face[on] - sc.face_offset[inst]
                    g[on] = chimp_gt_vertex[chimp_atlas.nearest_vertex(local, sc.bary[rowp[on], col[on]])]
                gt.append(g)
                pred.append(target.vertices(a["dp_I"], a["dp_U"], a["dp_V"]))
            per_file.append((row, np.concatenate(gt) if gt else np.zeros(0, int),
                             np.concatenate(pred) if pred else np.zeros(0, int)))
    all_gt = np.concatenate([g for _, g, _ in per_file]) if per_file else np.zeros(0, int)
    all_pred = np.concatenate([p for _, _, p in per_file]) if per_file else np.zeros(0, int)
    both = (all_gt >= 0) & (all_pred >= 0)
    pairs = np.unique(np.stack([all_gt[both], all_pred[both]], axis=1), axis=0)
    log(f"pseudo-label accuracy: {len(all_gt)} points, {len(pairs)} distinct pairs, "
        f"{len(np.unique(pairs[:, 0]))} geodesic sources")
    dist = target.pair_distances(pairs[:, 0], pairs[:, 1], progress=True)
    lookup = {(int(a), int(b)): float(x) for (a, b), x in zip(pairs, dist)}
    kappa_of = human.chart_ids

    out = {}
    for row, g, p in per_file:
        ok = (g >= 0) & (p >= 0)
        d = np.full(len(g), np.inf)
        d[ok] = [lookup[(int(a), int(b))] for a, b in zip(g[ok], p[ok])]
        score = np.zeros(len(g))
        k = part_kappa(kappa_of[g[g >= 0]])
        score[g >= 0] = np.exp(-(d[g >= 0] ** 2) / (2 * k**2))
        r = out.setdefault(row, {"points": [], "background": [], "median_cm": [], "gps": []})
        r["points"].append(len(g))
        r["background"].append(float(np.mean(g < 0)) if len(g) else float("nan"))
        r["median_cm"].append(float(np.median(d) * 100) if len(g) else float("nan"))
        r["gps"].append(float(np.mean(score)) if len(g) else float("nan"))
    return {row: {k: float(np.mean(v)) for k, v in r.items()} for row, r in out.items()}


def pseudo_detection_quality(pseudo_json: Path, pool_json: Path, iou_min: float = 0.5,
                             thresholds=(0.3, 0.5, 0.8, 0.9, 0.95, 0.98)) -> list[dict]:
    """Precision and recall of the pseudo-label boxes (ignore regions included) against the
    pool's hidden boxes, per score threshold; only thresholds the file holds every box above."""
    from pycocotools import mask as mask_utils

    d, gt = json.loads(Path(pseudo_json).read_text()), json.loads(Path(pool_json).read_text())
    gt_id = {im["file_name"]: im["id"] for im in gt["images"]}
    gt_boxes = {}
    for ann in gt["annotations"]:
        gt_boxes.setdefault(ann["image_id"], []).append(ann["bbox"])
    names = {im["id"]: Path(im["file_name"]).name for im in d["images"]}
    lowest = d["info"].get("ignore_min")
    lowest = d["info"]["score_min"] if lowest is None else lowest
    out = []
    for t in (t for t in thresholds if t >= lowest):
        det_boxes = {}
        for ann in d["annotations"]:
            if ann["score"] >= t:
                det_boxes.setdefault(gt_id[names[ann["image_id"]]], []).append(ann["bbox"])
        tp = n_det = found = 0
        for image_id, g in gt_boxes.items():
            p = det_boxes.get(image_id, [])
            n_det += len(p)
            if g and p:
                hit = mask_utils.iou(p, g, [0] * len(g)) >= iou_min
                tp += int(hit.any(axis=1).sum())
                found += int(hit.any(axis=0).sum())
        n_gt = sum(len(g) for g in gt_boxes.values())
        out.append({"score_min": t, "detections": n_det, "instances": n_gt, "precision": tp / max(n_det, 1),
                    "recall": found / max(n_gt, 1)})
    return out


def accuracy_table(acc: dict, a) -> str:
    lines = ["| sampling | k | points (mean over seeds) | on background | median error (cm) | mean point GPS |",
             "|---|---|---|---|---|---|"]
    for s in a.strategies:
        for k in a.k:
            r = acc.get(f"{s}_k{k}")
            if r:
                lines.append(f"| {STRATEGY_NAMES[s]} | {k} | {r['points']:.0f} | {100 * r['background']:.1f}% | "
                             f"{r['median_cm']:.1f} | {r['gps']:.3f} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- table
def get(d: dict, keys) -> float:
    for k in keys:
        d = d[k]
    return float(d)


def summarise(rows: list[dict]) -> dict:
    out = {}
    for name, keys in METRICS:
        v = np.array([get(r, keys) for r in rows], dtype=np.float64)
        out[name] = (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"), len(v))
    return out


def fmt(mean: float, std: float) -> str:
    return f"{mean:.1f}" if not np.isfinite(std) else f"{mean:.1f} ± {std:.1f}"


def table(results: dict, a) -> str:
    head = "| sampling | k | " + " | ".join(n for n, _ in METRICS) + " | pseudo dets / points |"
    lines = [head, "|" + "---|" * (len(METRICS) + 3)]

    def row(label, k, s, extra=""):
        return f"| {label} | {k} | " + " | ".join(fmt(*s[n][:2]) for n, _ in METRICS) + f" | {extra} |"

    lines.append(row("teacher", "-", summarise([results["teacher"]])))
    if results.get("control"):
        lines.append(row("no pseudo-labels (control)", "-", summarise(results["control"])))
    for s in a.strategies:
        for k in a.k:
            runs = results["students"].get(f"{s}_k{k}")
            if runs:
                c = runs[0].get("pseudo_counts", {})
                lines.append(row(STRATEGY_NAMES[s], k, summarise(runs), f"{c.get('kept', '?')} / {c.get('points', '?')}"))
    return "\n".join(lines)


def closing_note(results: dict, a, metric: str = "DP AP (GPS)") -> str:
    """Do students beat the teacher, which strategy wins, by how much against the seed spread."""
    teacher = summarise([results["teacher"]])[metric][0]
    control = summarise(results["control"])[metric] if results.get("control") else None
    best = {}
    for s in a.strategies:
        cands = [(summarise(r)[metric], k) for k in a.k if (r := results["students"].get(f"{s}_k{k}"))]
        if cands:
            (m, sd, n), k = max(cands, key=lambda c: c[0][0])
            best[s] = (m, sd, n, k)
    if not best:
        return "No student finished."
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
    # a row of one seed has no spread of its own: the control's seed std stands in for it (said in the note)
    proxy = control is not None and control[2] > 1 and np.isfinite(control[1])
    single = [s for s, v in ranked if v[2] < 2]
    measured_sd = {s: v[1] for s, v in best.items()}
    if single and proxy:
        best = {s: (m, control[1] if n < 2 else sd, n, k) for s, (m, sd, n, k) in best.items()}
        ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
    vs_control = {}  # strategy -> (difference to the control, standard error of that difference)
    if control is not None:
        for s, (m, sd, n, _) in ranked:
            se = np.sqrt(sd**2 / n + control[1] ** 2 / control[2]) if control[2] > 1 else sd / np.sqrt(n)
            vs_control[s] = (m - control[0], se)
    lines = [f"Metric: {metric} on the held-out chimp renders; best k per strategy chosen on that same test set "
             f"(as the paper's Table 3 does), so the winners' numbers are optimistic."]
    if single:
        lines.append(f"- {', '.join(STRATEGY_NAMES[s] for s in single)}: one seed each; "
                     + (f"their seed std is taken to be the control's ({control[1]:.1f}) in the comparisons below."
                        if proxy else "no seed spread is known, so no difference below is tested."))
    for s, (m, sd, n, k) in ranked:
        d = m - teacher
        rel = f"{abs(d) / sd:.1f} seed std" if sd > 0 else "n/a"
        vs_c = ""
        if s in vs_control and vs_control[s][1] > 0:
            dc, se = vs_control[s]
            vs_c = f"; vs the no-pseudo-label control {dc:+.1f} ({abs(dc) / se:.1f} standard errors)"
        side = "equal to" if abs(d) < 0.05 else ("above" if d > 0 else "below")
        by = "" if side == "equal to" else f" by {abs(d):.1f} = {rel}"
        lines.append(f"- {STRATEGY_NAMES[s]} (best k = {k}): {fmt(m, measured_sd[s])} over {n} seed{'s' * (n > 1)}, "
                     f"{side} the teacher ({teacher:.1f}){by}{vs_c}.")
    beat = [s for s, v in ranked if v[0] > teacher + (v[1] if np.isfinite(v[1]) else 0)]
    lines.append(f"- Students beat the teacher by more than one seed std with: "
                 f"{', '.join(STRATEGY_NAMES[s] for s in beat) if beat else 'no strategy'}.")
    if control is not None:
        above = [s for s, _ in ranked if vs_control[s][0] > 2 * vs_control[s][1]]
        gain = "also" if control[0] > teacher + (control[1] if np.isfinite(control[1]) else 0) else "not"
        lines.append(f"- The control (same fine-tuning, no pseudo-labels) scores {fmt(*control[:2])}: the gain over "
                     f"the teacher is {gain} there without pseudo-labels. Students above the control by more than two "
                     f"standard errors: {', '.join(STRATEGY_NAMES[s] for s in above) if above else 'none'}.")
    if len(ranked) > 1:
        (s1, (m1, sd1, n1, _)), (s2, (m2, sd2, n2, _)) = ranked[0], ranked[1]
        se = np.sqrt(sd1**2 / n1 + sd2**2 / n2)
        z = (m1 - m2) / se if se > 0 else (float("inf") if m1 > m2 and np.isfinite(se) else float("nan"))
        verdict = ("untested (no seed spread)" if not np.isfinite(z) and np.isnan(z) else
                   "a clear win" if z >= 2 else "within the seed spread (not a reliable ranking)")
        if m1 == m2:
            lines.append(f"- No winner: {STRATEGY_NAMES[s1]} and {STRATEGY_NAMES[s2]} tie.")
        else:
            lines.append(f"- Winner: {STRATEGY_NAMES[s1]}, {m1 - m2:.1f} AP above {STRATEGY_NAMES[s2]} "
                         f"({z:.1f} standard errors of the difference): {verdict}.")
    return "\n".join(lines)


def run_minutes(work: Path) -> float:
    """Training plus evaluation wall time of every student and control run found in ``work``."""
    total = 0.0
    for log_file in list((work / "students").glob("*/log.jsonl")) + list((work / "control").glob("*/log.jsonl")):
        last = log_file.read_text().strip().splitlines()[-1]
        total += float(json.loads(last).get("elapsed_s", 0.0))
        m = log_file.parent / "eval" / "metrics.json"
        if m.is_file():
            total += float(json.loads(m.read_text()).get("eval_seconds", 0.0))
    return total / 60
