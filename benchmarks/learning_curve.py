#!/usr/bin/env python
"""Learning curve of a training run: every snapshot evaluated on held-out sets, tabled and plotted.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/learning_curve.py RUN \\
        --set human=data/human_val --set chimp=data/chimp_val/annotations_human.json \\
        --plot docs/img/learning_curve.png --json RUN/curve.json

For every ``model_XXXXXXX.pt`` snapshot (and ``model_final.pt``) of the run folder, the
model is evaluated on each ``--set NAME=DATA`` (a dataset folder or COCO JSON; the chimp
set converted to the human charts) with :func:`densemap_models.evaluate.evaluate`: box AP,
mask AP, DensePose AP with GPS and GPSm. The wall time of the run at each snapshot comes
from its ``log.jsonl``. Results are cached per snapshot in ``--json``, so a second call only
evaluates new snapshots. Prints a markdown table; ``--plot`` draws AP against steps (and
minutes) per set and metric.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METRICS = (("box AP", ("bbox", "AP")), ("mask AP", ("segm", "AP")), ("GPS AP", ("densepose", "GPS", "AP")),
           ("GPSm AP", ("densepose", "GPSm", "AP")))


def _get(d, keys):
    for k in keys:
        d = d[k]
    return float(d)


def snapshots(run: Path) -> list[tuple[int, Path]]:
    from densemap_models.checkpoints import read_checkpoint

    out = [(int(p.stem.split("_")[1]), p) for p in sorted(run.glob("model_[0-9]*.pt"))]
    final = run / "model_final.pt"
    if final.is_file():
        step = int(read_checkpoint(final)["step"])
        if step not in {s for s, _ in out}:
            out.append((step, final))
    return sorted(out)


def minutes_at(run: Path) -> dict[int, float]:
    from densemap_models.train_log import read_log

    return {int(r["step"]): float(r.get("elapsed_s", 0.0)) / 60 for r in read_log(run)}


def plot(rows: list[dict], sets: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 4), squeeze=False)
    for ax, name in zip(axes[0], sets):
        steps = [r["step"] for r in rows]
        for label, _ in METRICS:
            ax.plot(steps, [r["sets"][name][label] for r in rows], "o-", label=label)
        ax.set_xlabel("training step")
        ax.set_ylabel("AP (x100)")
        ax.set_title(f"held-out {name}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if rows and rows[-1].get("minutes"):
            top = ax.secondary_xaxis("top", functions=(lambda s, r=rows: s * r[-1]["minutes"] / max(r[-1]["step"], 1),
                                                       lambda m, r=rows: m * max(r[-1]["step"], 1) / r[-1]["minutes"]))
            top.set_xlabel("minutes (mean pace of the run)")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--set", dest="sets", action="append", required=True, metavar="NAME=DATA")
    ap.add_argument("--json", type=Path, default=None, help="cache of the per-snapshot results (default RUN/curve.json)")
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--every", type=int, default=1, help="evaluate every n-th snapshot (the final one always)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    import torch

    from densemap_models.datasets import resolve_data
    from densemap_models.evaluate import evaluate
    from densemap_models.train import load_checkpoint

    torch.set_num_threads(a.threads)
    sets = dict(s.split("=", 1) for s in a.sets)
    cache_path = a.json or a.run / "curve.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    snaps = snapshots(a.run)
    snaps = [s for i, s in enumerate(snaps) if i % a.every == 0 or i == len(snaps) - 1]
    mins = minutes_at(a.run)
    rows = []
    for step, path in snaps:
        key = str(step)
        entry = cache.get(key, {"step": step, "sets": {}})
        model = None
        for name, data in sets.items():
            if name in entry["sets"]:
                continue
            if model is None:
                model, _, _ = load_checkpoint(path, device=a.device)
            js, root = resolve_data(data)
            res = evaluate(model, js, root, device=a.device).to_dict()
            entry["sets"][name] = {label: _get(res, keys) for label, keys in METRICS}
            entry["sets"][name]["chart accuracy"] = res["calibration"]["summary"]["i_accuracy"]
            print(f"step {step} {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in entry["sets"][name].items()
                                                     if k != "chart accuracy"), file=sys.stderr, flush=True)
        logged = [k for k in mins if k <= step]
        entry["minutes"] = mins[max(logged)] if logged else None
        cache[key] = entry
        cache_path.write_text(json.dumps(cache, indent=1))
        rows.append(entry)
    head = "| step | minutes | " + " | ".join(f"{n}: {m}" for n in sets for m, _ in METRICS) + " |"
    print(head)
    print("|" + "---|" * (2 + len(sets) * len(METRICS)))
    for r in rows:
        m = f"{r['minutes']:.0f}" if r.get("minutes") is not None else "-"
        print(f"| {r['step']} | {m} | " + " | ".join(f"{r['sets'][n][k]:.1f}" for n in sets for k, _ in METRICS) + " |")
    if a.plot:
        plot(rows, list(sets), a.plot, f"learning curve of {a.run.name}")
        print(f"written {a.plot}", file=sys.stderr)


if __name__ == "__main__":
    main()
