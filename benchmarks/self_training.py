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

DOC = ROOT / "docs" / "self-training.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
from self_training_report import (  # noqa: E402
    IGNORE, STRATEGY_NAMES, accuracy_table, closing_note, log, pseudo_detection_quality, pseudo_label_accuracy,
    run_minutes, summarise, table,
)


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
