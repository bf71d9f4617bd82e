#!/usr/bin/env python
"""Self-training with graded pseudo-labels: the paper's Tables 3-4 in miniature, on synthetic data.

    # the full grid (4 strategies x k in {1, 2, 5, 10, 1000} x 3 seeds = 60 students; hours on a CPU)
    OMP_WAIT_POLICY=PASSIVE python benchmarks/self_training.py
    # a miniature (~21 students; a few hours on 2 shared CPU cores, minutes on a GPU with --device cuda)
    OMP_WAIT_POLICY=PASSIVE python benchmarks/self_training.py --train-images 48 --pool-images 32 \\
        --test-images 16 --size 128 --teacher-iters 300 --student-iters 60 --strategies uniform I uv --k 5 1000

Protocol (every size is a flag; seeds fixed; see docs/self-training.md):

1. Data, rendered with ``densemap synth`` (different seeds, so no image is shared):
   human renders with labels (teacher training), chimp renders whose labels are *never read*
   (the unlabelled pool), held-out chimp renders converted to the human charts with
   ``densemap convert-annotations`` (the test set; GPS on the embedded human).
2. Teacher: :func:`densemap_models.train.train` on the human renders only
   (``configs/synth_cpu.yaml`` + the flags).
3. The teacher runs once on the pool (:func:`~densemap_models.pseudo_labels.iter_teacher_predictions`);
   for every strategy, k and seed the pseudo-labels are sampled from those predictions
   (detections with score >= ``--score-min``).
4. Students: initialised from the teacher, trained ``--student-iters`` on the human ground
   truth plus the pool images carrying pseudo-labels (``train(..., pseudo=...)``, as
   ``densemap train --init TEACHER --pseudo pseudo.json`` does). Control: the same fine-tuning without pseudo-labels (human
   ground truth only), so that a gain from more iterations is not mistaken for one from
   pseudo-labels.
5. Every model is evaluated on the converted chimp test set
   (:func:`densemap_models.evaluate.evaluate`): DensePose AP (GPS and GPSm), box AP, mask AP.

Prints the table (mean +- std over seeds) and writes it, with the command and a closing
note, into the "Results" section of docs/self-training.md. Finished runs are cached in
``--work`` (``metrics.json`` per run), so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

DOC = ROOT / "docs" / "self-training.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
STRATEGY_NAMES = {"uniform": "uniform", "mask": "mask-based", "I": "I-based", "uv": "uv-based"}
# "S+ignore": strategy S, and the teacher's detections scoring from --ignore-min up to --score-min
# written as ignore regions (a student learns them neither as chimps nor as background)
IGNORE = "+ignore"
STRATEGY_NAMES.update({f"{k}{IGNORE}": f"{v} + ignore regions" for k, v in list(STRATEGY_NAMES.items())})
METRICS = (("DP AP (GPS)", ("densepose", "GPS", "AP")), ("DP AP (GPSm)", ("densepose", "GPSm", "AP")),
           ("box AP", ("bbox", "AP")), ("mask AP", ("segm", "AP")))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def densemap(*args: str) -> None:
    """Run a densemap command in a fresh interpreter (as a user would)."""
    cmd = [sys.executable, "-m", "densemap.cli.main", *args]
    log("$ densemap " + " ".join(shlex.quote(a) for a in args))
    subprocess.run(cmd, check=True, cwd=ROOT)


# ----------------------------------------------------------------------------- data
def make_data(a, work: Path) -> dict:
    """Render the three sets and the conversion; returns their paths."""
    d = work / "data"
    if a.human_data and not (d / "human_train").exists():  # the teacher's own training set, reused
        d.mkdir(parents=True, exist_ok=True)
        (d / "human_train").symlink_to(Path(a.human_data).resolve(), target_is_directory=True)
    sets = {"human_train": ("human", a.train_images, a.data_seed),
            "chimp_pool": ("chimp", a.pool_images, a.data_seed + 1),
            "chimp_test": ("chimp", a.test_images, a.data_seed + 2)}
    for name, (species, n, seed) in sets.items():
        if not (d / name / "annotations.json").is_file():
            densemap("-q", "synth", "--species", species, "--images", str(n), "--out", str(d / name), "--seed", str(seed),
                     "--size", str(a.size), "--instances", a.instances, "--workers", str(a.workers))
    test_json = d / "chimp_test" / "annotations_human.json"
    if not test_json.is_file():
        extra = ["--map", a.map] if a.map else []
        densemap("-q", "convert-annotations", str(d / "chimp_test" / "annotations.json"), "-o", str(test_json), *extra)
    # one image root for the students: ROOT/human/* (labelled) and ROOT/pool/* (pseudo-labelled)
    mix = work / "mix"
    (mix / "images").mkdir(parents=True, exist_ok=True)
    for link, target in (("human", d / "human_train" / "images"), ("pool", d / "chimp_pool" / "images")):
        p = mix / "images" / link
        if not p.exists():
            p.symlink_to(target.resolve(), target_is_directory=True)
    base = mix / "base.json"
    if not base.is_file():
        human = json.loads((d / "human_train" / "annotations.json").read_text())
        pool = json.loads((d / "chimp_pool" / "annotations.json").read_text())
        off = max(im["id"] for im in human["images"])
        images = [dict(im, file_name=f"human/{im['file_name']}") for im in human["images"]]
        # the pool's own labels are dropped here: only its images are used
        images += [{"id": off + im["id"], "file_name": f"pool/{im['file_name']}", "width": im["width"],
                    "height": im["height"]} for im in pool["images"]]
        base.write_text(json.dumps({"info": {"description": "human ground truth + unlabelled chimp pool"},
                                    "images": images, "annotations": human["annotations"],
                                    "categories": human["categories"]}))
    return {"human": d / "human_train", "pool_json": d / "chimp_pool" / "annotations.json",
            "pool_images": mix / "images" / "pool", "mix_images": mix / "images",
            "base": base, "test_json": test_json, "test_images": d / "chimp_test" / "images"}


# ----------------------------------------------------------------------------- models
def base_config(a):
    from densemap_models.config import load_config

    overrides = [f"min_size={a.size}", f"max_size={a.size}", "workers=0", f"checkpoint_every={10**9}", *a.set]
    return load_config(a.config, overrides)


def evaluate_run(ckpt: Path, paths: dict, a, out: Path) -> dict:
    from densemap_models.evaluate import evaluate
    from densemap_models.train import load_checkpoint

    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    model, _, _ = load_checkpoint(ckpt, device=a.device)
    t0 = time.perf_counter()
    res = evaluate(model, paths["test_json"], paths["test_images"], target="densemap_human", device=a.device)
    d = res.to_dict()
    d.pop("calibration", None)
    d["eval_seconds"] = round(time.perf_counter() - t0, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(d, indent=2))
    return d


def train_teacher(a, paths: dict, work: Path) -> Path:
    from densemap_models.train import train

    if a.teacher_ckpt:
        return Path(a.teacher_ckpt)
    run = work / "teacher"
    ck = run / "model_final.pt"
    if ck.is_file():
        return ck
    cfg = base_config(a).replace(max_iter=a.teacher_iters, seed=a.teacher_seed)
    log(f"teacher: {a.teacher_iters} iterations on {paths['human']}")
    res = train(cfg, data=paths["human"], out=run, device=a.device, progress=a.progress)
    return res.checkpoint


def train_student(a, paths: dict, teacher: Path, run: Path, seed: int, pseudo: Path | None) -> Path:
    from densemap_models.checkpoints import read_checkpoint
    from densemap_models.train import train

    ck = run / "model_final.pt"
    if ck.is_file() and read_checkpoint(ck).get("finished", True):
        return ck
    resume = (run / "last.pt").is_file()  # a run a previous session left unfinished
    cfg = base_config(a).replace(max_iter=a.student_iters, seed=seed, lr=a.student_lr,
                                 warmup_iters=min(a.student_warmup, a.student_iters), lr_steps=())
    # what `densemap train --init TEACHER --pseudo pseudo.json` does
    res = train(cfg, data=paths["human"], out=run, init=None if resume else teacher, resume=resume,
                pseudo=[(pseudo, paths["mix_images"])] if pseudo is not None else [], device=a.device,
                progress=a.progress, max_minutes=a.max_minutes)
    if not res.finished:
        raise SystemExit(f"stopped after --max-minutes in {run}; run the same command again to continue")
    return res.checkpoint


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


def write_doc(text: str) -> None:
    doc = DOC.read_text() if DOC.is_file() else "# Self-training with graded pseudo-labels\n\n## Results\n\n"
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in doc and END in doc:
        doc = doc[: doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    tmp = DOC.with_name(DOC.name + ".tmp")  # never a half-written page
    tmp.write_text(doc)
    os.replace(tmp, DOC)


# ----------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "densemap-self-training"),
                    help="working folder (data, runs, cached metrics)")
    ap.add_argument("--train-images", type=int, default=200, help="human renders for the teacher")
    ap.add_argument("--pool-images", type=int, default=100, help="unlabelled chimp renders")
    ap.add_argument("--test-images", type=int, default=50, help="held-out chimp renders (converted to the human)")
    ap.add_argument("--size", type=int, default=192, help="image side (renders and model input)")
    ap.add_argument("--instances", default="1-2", help="bodies per image (densemap synth --instances)")
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--map", default=None, help="alignment .npz for convert-annotations (default: computed)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "synth_cpu.yaml"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    ap.add_argument("--teacher-iters", type=int, default=900)
    ap.add_argument("--teacher-seed", type=int, default=0)
    ap.add_argument("--teacher-ckpt", default=None, help="reuse a trained teacher instead of training one")
    ap.add_argument("--student-iters", type=int, default=300)
    ap.add_argument("--student-lr", type=float, default=3e-4)
    ap.add_argument("--student-warmup", type=int, default=20)
    ap.add_argument("--strategies", nargs="+", default=["uniform", "mask", "I", "uv"], choices=list(STRATEGY_NAMES),
                    help=f"point strategies; S{IGNORE} adds ignore regions (see --ignore-min)")
    ap.add_argument("--design", choices=["passes", "grid"], default="passes",
                    help="passes: every strategy at --pass1-k, then the best at --pass2-k; grid: strategies x --k")
    ap.add_argument("--pass1-k", type=int, default=5)
    ap.add_argument("--pass2-k", nargs="+", type=int, default=[1, 2, 10, 1000])
    ap.add_argument("--k", nargs="+", type=int, default=[1, 2, 5, 10, 1000], help="points per detection (grid)")
    ap.add_argument("--human-data", default=None, help="a rendered human set (folder) to reuse as the ground truth")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="stop a student (resumably) after this long; the same command continues it")
    ap.add_argument("--seeds", type=int, default=3, help="student seeds 0..N-1 (N >= 3 for a std)")
    ap.add_argument("--score-min", type=float, default=0.8, help="detections kept for pseudo-labels")
    ap.add_argument("--ignore-min", type=float, default=0.3,
                    help=f"S{IGNORE} strategies: detections from this score up to --score-min become ignore regions")
    ap.add_argument("--no-control", action="store_true", help="skip the no-pseudo-label control students")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="densemap synth processes")
    ap.add_argument("--progress", action="store_true", help="training progress bars")
    ap.add_argument("--collect", action="store_true",
                    help="train nothing: table the runs that have finished (the rest are listed as left out)")
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/self-training.md")
    ap.add_argument("--plan", action="store_true", help="print what would run and exit")
    a = ap.parse_args(argv)
    if any(k < 0 for k in a.k) or a.seeds < 1:
        ap.error("--k values must be >= 0 and --seeds >= 1")
    seeds = list(range(a.seeds))
    n_rows = len(a.strategies) * len(a.k) if a.design == "grid" else len(a.strategies) + len(a.pass2_k)
    n_students = n_rows * len(seeds) + (0 if a.no_control else len(seeds))
    log(f"plan: teacher ({a.teacher_iters} it) + {n_students} students ({a.student_iters} it each) "
        f"+ {n_students + 1} evaluations on {a.test_images} chimp renders; work folder {a.work}")
    if a.plan:
        return 0

    import torch

    from densemap_models.pseudo_labels import iter_teacher_predictions, list_images, pseudo_coco, write_pseudo_coco
    from densemap_models.train import load_checkpoint

    torch.set_num_threads(a.threads)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    paths = make_data(a, work)
    teacher = train_teacher(a, paths, work)
    results = {"teacher": evaluate_run(teacher, paths, a, work / "teacher" / "eval")}
    log(f"teacher: {results['teacher']['densepose']['GPS']['AP']:.1f} DP AP")

    def pseudo_path(s, k, seed):
        return work / "pseudo" / f"{s}_k{k}_s{seed}.json"

    # the teacher's predictions on the pool, once, when a pseudo-label file is missing
    cache = {}

    def teacher_predictions():
        if "preds" not in cache:
            model, _, _ = load_checkpoint(teacher, device=a.device)
            cache["preds"] = list(iter_teacher_predictions(model, list_images(paths["pool_images"]),
                                                           root=paths["mix_images"], score_min=0.0, device=a.device))
            log(f"pool: {sum(len(p.detections) for p in cache['preds'])} teacher detections on "
                f"{len(cache['preds'])} images")
        return cache["preds"]

    def finished_run(run: Path) -> bool:  # --collect: only runs that finished and were scored
        return (run / "eval" / "metrics.json").is_file()

    results["control"] = []
    if not a.no_control:
        for seed in seeds:
            run = work / "control" / f"s{seed}"
            if a.collect and not finished_run(run):
                log(f"--collect: control seed {seed} has not run; left out")
                continue
            ck = train_student(a, paths, teacher, run, seed, None)
            results["control"].append(evaluate_run(ck, paths, a, run / "eval"))
            log(f"control seed {seed}: {results['control'][-1]['densepose']['GPS']['AP']:.1f} DP AP")
    results["students"] = {}

    def run_row(s, k):
        runs = []
        for seed in seeds:
            name = f"{s}_k{k}_s{seed}"
            pj = pseudo_path(s, k, seed)
            run = work / "students" / name
            if a.collect and not finished_run(run):
                log(f"--collect: {name} has not run; left out")
                continue
            if not pj.is_file():
                data = pseudo_coco(teacher_predictions(), strategy=s.removesuffix(IGNORE), k=k,
                                   score_min=a.score_min, seed=seed, info={"teacher": str(teacher)},
                                   ignore_min=a.ignore_min if s.endswith(IGNORE) else None)
                write_pseudo_coco(data["images"], data["annotations"], pj, info=data["info"],
                                  categories=data["categories"])
            counts = json.loads(pj.read_text())["info"]["counts"]
            t0 = time.perf_counter()
            ck = train_student(a, paths, teacher, run, seed, pj)
            m = evaluate_run(ck, paths, a, run / "eval")
            m["pseudo_counts"] = counts
            runs.append(m)
            log(f"{name}: {m['densepose']['GPS']['AP']:.1f} DP AP ({time.perf_counter() - t0:.0f} s)")
        if runs:
            results["students"][f"{s}_k{k}"] = runs

    if a.design == "grid":
        for s in a.strategies:
            for k in a.k:
                run_row(s, k)
    else:  # pass 1: every strategy at one k; pass 2: the best of them at the other k (the paper's Table 4)
        for s in a.strategies:
            run_row(s, a.pass1_k)
        present = [s for s in a.strategies if f"{s}_k{a.pass1_k}" in results["students"]]
        if not present:
            raise SystemExit("--collect: no pass-1 run has finished yet")
        best = max(present, key=lambda s: summarise(results["students"][f"{s}_k{a.pass1_k}"])["DP AP (GPS)"][0])
        log(f"pass 1 winner: {best}")
        for k in a.pass2_k:
            run_row(best, k)
        a.k = sorted({a.pass1_k, *a.pass2_k})
        results["pass1_winner"] = best

    tab = table(results, a)
    note = closing_note(results, a)
    done = [(s, k) for s in a.strategies for k in a.k if f"{s}_k{k}" in results["students"]]
    acc = pseudo_label_accuracy({f"{s}_k{k}": [p for seed in seeds if (p := pseudo_path(s, k, seed)).is_file()]
                                 for s, k in done}, paths["pool_json"])
    results["pseudo_accuracy"] = acc
    # a file with ignore regions also holds the boxes below --score-min
    det = pseudo_detection_quality(pseudo_path(*next((d for d in done if d[0].endswith(IGNORE)), done[0]), seeds[0]),
                                   paths["pool_json"])
    results["pseudo_detections"] = det
    cmd = "OMP_WAIT_POLICY=PASSIVE python benchmarks/self_training.py " + " ".join(
        shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    minutes = (time.perf_counter() - t_all) / 60
    if a.teacher_ckpt:
        from densemap_models.checkpoints import read_checkpoint

        teacher_text = f"`{a.teacher_ckpt}` (reused, {read_checkpoint(teacher).get('step', '?')} steps)"
    else:
        teacher_text = f"{a.teacher_iters} it (seed {a.teacher_seed})"
    text = (f"Produced by `{cmd}` ({time.strftime('%Y-%m-%d')}, {minutes:.0f} min in this call, device {a.device}, "
            f"{a.threads} threads; the students' training and evaluation took {run_minutes(work):.0f} min of run "
            f"time in all, cached in `--work`).\n\nSettings: {a.train_images} human / {a.pool_images} pool / {a.test_images} test "
            f"images at {a.size} px, teacher {teacher_text}, students {a.student_iters} it "
            f"(lr {a.student_lr}), score >= {a.score_min}, seeds {seeds}; mean ± std (ddof 1) over seeds.\n\n"
            f"{tab}\n\n{note}\n\n"
            "Pseudo-label accuracy against the pool's hidden ground truth (the pool is synthetic, so the surface "
            "under every pixel is known; GPS-style point similarity on the human, background pixels score 0; "
            f"no training involved). The pool's {a.pool_images} images hold {det[0]['instances']} chimps. Boxes the "
            "teacher keeps, by score threshold (a box is right when it overlaps a chimp's box with IoU >= 0.5):\n\n"
            "| score >= | detections | precision | chimps found |\n|---|---|---|---|\n"
            + "".join(f"| {r['score_min']:g} | {r['detections']} | {100 * r['precision']:.0f}% | "
                      f"{100 * r['recall']:.0f}% |\n" for r in det)
            + "\nPoints, per strategy and k:\n\n"
            f"{accuracy_table(acc, a)}\n")
    print(text)
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    if not a.no_doc:
        write_doc(text)
        log(f"written {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
