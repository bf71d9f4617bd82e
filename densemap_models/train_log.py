"""The log of a training run: running loss means, ``log.jsonl`` / ``log.csv`` rows, the bar."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np

from densemap._io import atomic_path

__all__ = ["Meter", "append_logs", "truncate_logs", "read_log"]

_BAR_KEYS = ("loss", "loss_classifier", "loss_mask", "loss_densepose_I", "loss_densepose_UV", "loss_densepose_S")


class Meter:
    """Running means of the losses between log rows, the rows (``log.jsonl``, ``log.csv``) and the bar."""

    def __init__(self, out: Path, *, world: int, main: bool, t_start: float, bar=None):
        self.out, self.world, self.main, self.t_start, self.bar = out, world, main, t_start, bar
        self.last: dict = {}
        self._reset()

    def _reset(self) -> None:
        self.running: dict[str, float] = {}
        self.n, self.images, self.t = 0, 0, time.perf_counter()

    def add(self, losses: dict, n_images: int) -> bool:
        """Add one micro-batch's losses; returns whether they were all finite."""
        vals = {k: float(v.detach()) for k, v in losses.items()}
        finite = all(np.isfinite(v) for v in vals.values())
        if finite:
            for k, v in vals.items():
                self.running[k] = self.running.get(k, 0.0) + v
            self.n += 1
        self.images += n_images
        return finite

    def emit(self, step: int, lr: float, gnorm) -> dict:
        """Write the row of ``step`` (rank 0) and start a new averaging window."""
        last = {k: v / max(self.n, 1) for k, v in self.running.items()}
        last["loss"] = sum(last.values()) if last else float("nan")
        dt = time.perf_counter() - self.t
        row = {"step": step, "lr": lr, **{k: round(v, 5) for k, v in last.items()},
               "grad_norm": round(float(gnorm), 4), "images_per_s": round(self.images * self.world / max(dt, 1e-9), 3),
               "elapsed_s": round(time.perf_counter() - self.t_start, 1)}
        if self.main:
            append_logs(self.out, row)
        if self.bar is not None:
            self.bar.set_postfix({k.replace("loss_", "").replace("densepose_", "dp_"): f"{v:.3g}"
                                  for k, v in last.items() if k in _BAR_KEYS})
        self.last = last
        self._reset()
        return row


def append_logs(out: Path, row: dict) -> None:
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    path = out / "log.csv"
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


def truncate_logs(out: Path, step: int) -> None:
    """Drop the log rows after ``step`` (a resumed run replays those steps)."""
    path = out / "log.jsonl"
    if not path.is_file():
        return
    rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    keep = [r for r in rows if int(r.get("step", 0)) <= step]
    if len(keep) == len(rows):
        return
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
    with atomic_path(out / "log.csv") as tmp:
        if keep:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(keep[0]), extrasaction="ignore")
                w.writeheader()
                w.writerows(keep)
        else:
            tmp.write_text("")


def read_log(out: str | Path) -> list[dict]:
    """The rows of a run's ``log.jsonl`` (empty without one)."""
    path = Path(out) / "log.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.is_file() else []
