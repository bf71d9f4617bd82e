"""Training loop: iteration-based, resumable, AMP on CUDA, gradient accumulation, DDP via torchrun.

:func:`train` writes into a run folder ``RUN``:

* ``config.yaml`` -- the resolved :class:`~densemap_models.config.Config` (beside the checkpoints);
* ``last.pt`` -- full state (model, optimizer, scheduler, AMP scaler, step, RNG) for ``resume``;
* ``model_XXXXXXX.pt`` every ``checkpoint_every`` steps and ``model_final.pt`` at the end
  (model weights + config: what :func:`load_checkpoint` reads);
* ``log.jsonl`` and ``log.csv`` -- step, learning rate, every loss, images/s.

Exact resume: the sample order is a function of (seed, position in the sample stream) and each
image's flip of (seed, epoch, index), the torch RNG state is saved, so an interrupted run
continued with ``resume=True`` sees the same batches as an uninterrupted one.

Multi-GPU: launch with ``torchrun --nproc_per_node=G -m densemap.cli.main train ...``; each
rank reads its own slice of every global batch (``batch_size`` is per GPU) and only rank 0
writes files.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from densemap.errors import DensemapError
from densemap._io import atomic_path

from .config import Config, config_from_dict, save_config
from .datasets import DensePoseDataset, collate, resolve_data
from .rcnn import DensePoseRCNN, build_model

__all__ = ["train", "TrainResult", "load_checkpoint", "StreamSampler", "synthetic_default_data"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :func:`train` did."""

    run: Path
    step: int
    finished: bool  # reached max_iter (False: stopped by max_minutes)
    last_losses: dict
    seconds: float
    checkpoint: Path


class StreamSampler(torch.utils.data.Sampler):
    """Dataset indices of an endless shuffled stream, from position ``start`` on.

    Position ``p`` is sample ``perm_e[p % N]`` of epoch ``e = p // N`` (``perm_e`` drawn from
    ``(seed, e)``), yielded as ``e * N + i`` (the dataset reads the epoch from it). Rank ``r`` of
    ``world`` takes samples ``[r * B, (r + 1) * B)`` of each global batch of ``world * B``.
    """

    def __init__(self, n: int, *, seed: int, batch_size: int, start_batch: int = 0, n_batches: int | None = None,
                 rank: int = 0, world: int = 1):
        self.n, self.seed, self.B = n, seed, batch_size
        self.start, self.n_batches = start_batch, n_batches
        self.rank, self.world = rank, world
        self._perm: dict[int, np.ndarray] = {}

    def _at(self, p: int) -> int:
        e, k = divmod(p, self.n)
        if e not in self._perm:
            self._perm = {e: np.random.default_rng([self.seed, e]).permutation(self.n)}
        return e * self.n + int(self._perm[e][k])

    def __iter__(self):
        g = self.start
        while self.n_batches is None or g < self.start + self.n_batches:
            base = g * self.B * self.world + self.rank * self.B
            for j in range(self.B):
                yield self._at(base + j)
            g += 1

    def __len__(self):
        return (self.n_batches or 0) * self.B


def _lr_lambda(config: Config):
    def f(step: int) -> float:
        warm = 1.0
        if step < config.warmup_iters:
            a = step / max(config.warmup_iters, 1)
            warm = 0.1 * (1 - a) + a
        drops = sum(step >= s * config.max_iter for s in config.lr_steps)
        return warm * 0.1**drops

    return f


def _optimizer(model: torch.nn.Module, config: Config) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def load_checkpoint(path: str | os.PathLike, *, device=None) -> tuple[DensePoseRCNN, Config, dict]:
    """Model (eval mode), config and raw checkpoint from ``model_*.pt`` / ``last.pt``."""
    p = Path(path)
    if p.is_dir():
        p = p / "model_final.pt" if (p / "model_final.pt").is_file() else p / "last.pt"
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise DensemapError(f"{p}: cannot read the checkpoint ({exc})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise DensemapError(f"{p}: not a densemap checkpoint (expected keys 'model' and 'config')")
    config = config_from_dict(ckpt["config"]).replace(backbone_weights=None)
    model = build_model(config)
    model.load_state_dict(ckpt["model"])
    model.eval()
    if device is not None:
        model.to(device)
    return model, config, ckpt


def synthetic_default_data(out: Path, *, n_images: int = 64, seed: int = 0, size: int = 256) -> Path:
    """Render (once) a small synthetic human dataset under ``out`` for runs without ``--data``."""
    if (out / "annotations.json").is_file():
        return out
    from densemap.synth import SceneOptions, synth_dataset

    synth_dataset("human", n_images, out, seed=seed, options=SceneOptions(size=size))
    return out


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def _save(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train(config: Config, *, data, out: str | os.PathLike, images=None, extra_annotations=(), pseudo=(), init=None,
          resume: bool = False, max_minutes: float | None = None, device: str = "cpu",
          progress: bool = True) -> TrainResult:
    """Train a :class:`~densemap_models.rcnn.DensePoseRCNN`.

    Parameters
    ----------
    config : Config
    data : path or None
        Dataset folder or COCO JSON (see :func:`~densemap_models.datasets.resolve_data`);
        None renders a small synthetic human set into ``out/synth_data``.
    out : path
        Run folder (created).
    images : path, optional
        Image folder when ``data`` is a JSON file elsewhere (DensePose-COCO).
    extra_annotations : paths
        More COCO files merged into the dataset by image ``file_name``.
    pseudo : sequence of (path, image_root or None)
        Pseudo-labelled COCO files whose images are added to the training set (a student
        trains on ground truth plus these; see ``densemap pseudo-label``).
    init : path, optional
        Initial weights (a densemap checkpoint; non-matching keys are skipped and logged).
    resume : bool
        Continue ``out/last.pt`` exactly.
    max_minutes : float, optional
        Stop (with a resumable checkpoint) after this much wall time.
    device : "cpu" | "cuda" | "cuda:N"
        Under torchrun each rank uses ``cuda:LOCAL_RANK``.
    """
    t_start = time.perf_counter()
    rank, local_rank, world = _dist_info()
    distributed = world > 1
    if distributed:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            device = f"cuda:{local_rank}"
            torch.cuda.set_device(local_rank)
    dev = torch.device(device)
    main = rank == 0
    out = Path(out)
    if main:
        out.mkdir(parents=True, exist_ok=True)
    if resume and not (out / "last.pt").is_file():
        raise DensemapError(f"{out}: nothing to resume (no last.pt)")

    state = torch.load(out / "last.pt", map_location="cpu", weights_only=False) if resume else None
    if state is not None:
        config = config_from_dict(state["config"])
    if data is None:
        data = synthetic_default_data(out / "synth_data", seed=config.seed) if main else out / "synth_data"
        if distributed:
            torch.distributed.barrier()
    js, root = resolve_data(data, images)
    from .symmetry import default_uv_symmetry

    dataset = DensePoseDataset([js, *extra_annotations], root, classes=config.classes, train=True,
                               flip_prob=config.flip_prob, uv_symmetry=default_uv_symmetry(config.uv_symmetry),
                               skip_empty=True, seed=config.seed, pseudo=pseudo)
    if len(dataset) == 0:
        raise DensemapError(f"{js}: no image with a usable instance")

    torch.manual_seed(config.seed + rank)
    random.seed(config.seed + rank)
    model = build_model(config)
    if init is not None and state is None:
        ck = torch.load(init, map_location="cpu", weights_only=False)
        sd = ck.get("model", ck)
        own = model.state_dict()
        ok = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(ok, strict=False)
        log.info("init: %d of %d tensors from %s", len(ok), len(own), init)
    model.to(dev).train()
    opt = _optimizer(model, config)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(config))
    use_amp = config.amp and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    step = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        step = int(state["step"])
        torch.set_rng_state(state["rng"]["torch"])
        if dev.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], dev)
        random.setstate(state["rng"]["python"])
    ddp = model
    if distributed:
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if dev.type == "cuda" else None,
                                                        find_unused_parameters=False)
    if main:
        save_config(config, out / "config.yaml")

    remaining = config.max_iter - step
    sampler = StreamSampler(len(dataset), seed=config.seed, batch_size=config.batch_size,
                            start_batch=step * config.accumulate, n_batches=max(remaining, 0) * config.accumulate,
                            rank=rank, world=world)
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, collate_fn=collate,
                                         num_workers=config.workers, persistent_workers=False,
                                         pin_memory=dev.type == "cuda",
                                         # own generator: creating the iterator must not draw from the global
                                         # RNG, or a resumed run would diverge from an uninterrupted one
                                         generator=torch.Generator().manual_seed(config.seed))
    log_rows = []
    bar = None
    if progress and main:
        from tqdm import tqdm

        bar = tqdm(total=config.max_iter, initial=step, unit="it", desc="train", dynamic_ncols=True)
    running: dict[str, float] = {}
    n_run = 0
    last: dict = {}
    finished = step >= config.max_iter
    t_log, imgs_log = time.perf_counter(), 0
    micro = 0
    try:
        for images_b, targets_b in loader:
            images_b = [im.to(dev, non_blocking=True) for im in images_b]
            targets_b = [{k: (v.to(dev, non_blocking=True) if torch.is_tensor(v) else v) for k, v in t.items()}
                         for t in targets_b]
            with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=use_amp):
                losses = ddp(images_b, targets_b)
            loss = sum(losses.values()) / config.accumulate
            scaler.scale(loss).backward()
            for k, v in losses.items():
                running[k] = running.get(k, 0.0) + float(v.detach())
            n_run += 1
            imgs_log += len(images_b)
            micro += 1
            if micro < config.accumulate:
                continue
            micro = 0
            scaler.unscale_(opt)
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
            if torch.isfinite(gnorm):
                scaler.step(opt)
            else:
                log.warning("step %d: non-finite gradient norm, update skipped", step)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            sched.step()
            step += 1
            if bar is not None:
                bar.update(1)
            if step % config.log_every == 0 or step == config.max_iter:
                last = {k: v / n_run for k, v in running.items()}
                last["loss"] = sum(last.values())
                dt = time.perf_counter() - t_log
                row = {"step": step, "lr": opt.param_groups[0]["lr"], **{k: round(v, 5) for k, v in last.items()},
                       "grad_norm": round(float(gnorm), 4), "images_per_s": round(imgs_log * world / max(dt, 1e-9), 3),
                       "elapsed_s": round(time.perf_counter() - t_start, 1)}
                log_rows.append(row)
                if main:
                    _append_logs(out, row)
                if bar is not None:
                    bar.set_postfix({k.replace("loss_", "").replace("densepose_", "dp_"): f"{v:.3g}" for k, v in last.items()
                                     if k in ("loss", "loss_classifier", "loss_mask", "loss_densepose_I",
                                              "loss_densepose_UV", "loss_densepose_S")})
                running, n_run, t_log, imgs_log = {}, 0, time.perf_counter(), 0
            stop_time = max_minutes is not None and (time.perf_counter() - t_start) / 60 >= max_minutes
            if distributed:
                flag = torch.tensor([float(stop_time)], device=dev)
                torch.distributed.all_reduce(flag)
                stop_time = bool(flag.item() > 0)
            if step % config.checkpoint_every == 0 and main:
                _checkpoint(out, model, opt, sched, scaler, config, step, dev, keep_model=True)
            if step >= config.max_iter:
                finished = True
                break
            if stop_time:
                log.info("stopping at step %d after %.1f minutes (resume with --resume)", step, max_minutes)
                break
    finally:
        if bar is not None:
            bar.close()
    ck = out / "model_final.pt"
    if main:
        _checkpoint(out, model, opt, sched, scaler, config, step, dev, keep_model=False)
        _save(ck, {"model": model.state_dict(), "config": config.to_dict(), "step": step, "finished": finished})
    if distributed:
        torch.distributed.barrier()
    return TrainResult(out, step, finished, last, time.perf_counter() - t_start, ck)


def _checkpoint(out: Path, model, opt, sched, scaler, config: Config, step: int, dev, *, keep_model: bool) -> None:
    rng = {"torch": torch.get_rng_state(), "python": random.getstate(),
           "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}
    _save(out / "last.pt", {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                            "scaler": scaler.state_dict(), "step": step, "config": config.to_dict(), "rng": rng})
    if keep_model:
        _save(out / f"model_{step:07d}.pt", {"model": model.state_dict(), "config": config.to_dict(), "step": step})


def _append_logs(out: Path, row: dict) -> None:
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    path = out / "log.csv"
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)

