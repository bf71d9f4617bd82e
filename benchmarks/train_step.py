#!/usr/bin/env python
"""Cost of one training step of a recipe against a plain torchvision resnet18 step on the same batch.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/train_step.py                         # synth_cpu vs resnet18
    OMP_WAIT_POLICY=PASSIVE python benchmarks/train_step.py --config synth_cpu_v1 --config densepose_coco_r50
    OMP_WAIT_POLICY=PASSIVE python benchmarks/train_step.py --profile               # + where the time goes

Each recipe trains on the same few synthetic human images (rendered once into a temporary
folder at 256 px, the size of the CPU recipe's data); a step is forward, backward and the
optimizer step of one batch (``batch_size`` images), timed over ``--steps`` steps after
``--warmup``. The reference is ``torchvision.models.resnet18(weights=None)`` trained with
AdamW on the same images (batched at 256 x 256, cross-entropy on a fixed label): what a
plain classification step of the same backbone costs. The two are timed alternately, step
by step, so that a busy machine slows both alike; the table reports the median step of each
and their ratio. ``--profile`` adds torch.profiler's top operators for the first recipe.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402


def batches(root: Path, n_images: int, batch_size: int):
    from densemap.synth import SceneOptions, synth_dataset
    from densemap_models.datasets import DensePoseDataset, collate

    if not (root / "annotations.json").is_file():
        synth_dataset("human", n_images, root, seed=0, options=SceneOptions(size=256), workers=1)
    ds = DensePoseDataset(root / "annotations.json", root / "images", train=True, skip_empty=True)
    items = [ds[i % len(ds)] for i in range(n_images)]
    return [collate(items[i : i + batch_size]) for i in range(0, len(items) - batch_size + 1, batch_size)]


def recipe_step(config):
    from densemap_models.rcnn import build_model
    from densemap_models.train import _optimizer

    torch.manual_seed(0)
    model = build_model(config).train()
    opt = _optimizer(model, config)

    bf16 = config.cpu_bf16

    def step(batch):
        images, targets = batch
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = sum(model(images, targets).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def resnet18_step():
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)

    def step(batch):
        images, _ = batch
        x = torch.stack([torch.nn.functional.interpolate(im[None], size=(256, 256), mode="bilinear")[0] for im in images])
        loss = torch.nn.functional.cross_entropy(net(x), torch.zeros(len(images), dtype=torch.long))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", action="append", help="recipe name or YAML (repeatable; default synth_cpu)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=None, help="override every recipe's batch_size")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every recipe (e.g. cpu_bf16=true)")
    ap.add_argument("--profile", action="store_true", help="torch.profiler's top operators of the first recipe")
    ap.add_argument("--data", type=Path, default=None, help="folder for the rendered images (kept)")
    a = ap.parse_args(argv)
    from densemap_models.config import load_config

    torch.set_num_threads(a.threads)
    names = a.config or ["synth_cpu"]
    root = a.data or Path(tempfile.mkdtemp(prefix="densemap_train_step_"))
    rows = []
    for name in names:
        cfg = load_config(name, a.overrides)
        if a.batch_size:
            cfg = cfg.replace(batch_size=a.batch_size)
        data = batches(root, (a.steps + a.warmup) * cfg.batch_size, cfg.batch_size)
        ours, ref = recipe_step(cfg), resnet18_step()
        t_ours, t_ref = [], []
        for k, batch in enumerate(data):
            for fn, acc in ((ours, t_ours), (ref, t_ref)):
                t0 = time.perf_counter()
                fn(batch)
                if k >= a.warmup:
                    acc.append(time.perf_counter() - t0)
        m_ours, m_ref = statistics.median(t_ours), statistics.median(t_ref)
        label = name + "".join(f" {o}" for o in a.overrides)
        rows.append((label, cfg.backbone, cfg.min_size, cfg.batch_size, m_ours, m_ref, m_ours / m_ref))
        if a.profile and name == names[0]:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for batch in data[:2]:
                    ours(batch)
            profile_table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    print(f"\n{len(t_ours)} timed steps each after {a.warmup} warm-up steps, {a.threads} torch threads, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| recipe | backbone | image px | batch | step (s) | resnet18 step (s) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.3f} | {r[5]:.3f} | **{r[6]:.2f}x** |")
    if a.profile:
        print("\n" + profile_table)


if __name__ == "__main__":
    main()
