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
    """LR factor at ``step``: linear warmup from 0.1 over ``warmup_iters``, x0.1 at every ``lr_steps``.

    Kept as a LambdaLR rather than ``SequentialLR(LinearLR(0.1), MultiStepLR)``: that chain
    matches this only to ~5e-15 (its factors are products updated step by step), needs its
    milestones shifted by the warmup and rounded up, cannot drop the LR during the warmup
    (a drop at ``lr_steps * max_iter < warmup_iters`` is applied on top of the warmup here),
    and could not resume the LambdaLR state stored in existing ``last.pt`` files.
    """

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


@dataclass(frozen=True)
class _Dist:
    """Where this process runs: its rank among ``world`` and its torch device."""

    rank: int
    local_rank: int
    world: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def _setup_distributed(device: str) -> _Dist:
    """Join the torchrun process group (if any); under torchrun with CUDA, use ``cuda:LOCAL_RANK``."""
    rank, local_rank, world = _dist_info()
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            device = f"cuda:{local_rank}"
            torch.cuda.set_device(local_rank)
    return _Dist(rank, local_rank, world, torch.device(device))


def _save(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _resume_state(out: Path, resume: bool) -> dict | None:
    """The full state in ``out/last.pt`` to continue from (None without ``resume``)."""
    if not resume:
        return None
    if not (out / "last.pt").is_file():
        raise DensemapError(f"{out}: nothing to resume (no last.pt)")
    return torch.load(out / "last.pt", map_location="cpu", weights_only=False)


def _training_dataset(config: Config, *, data, images, extra_annotations, pseudo, out: Path,
                      dist: _Dist) -> DensePoseDataset:
    """The training set (``data`` None: the synthetic default set, rendered by rank 0)."""
    if data is None:
        data = synthetic_default_data(out / "synth_data", seed=config.seed) if dist.main else out / "synth_data"
        dist.barrier()
    js, root = resolve_data(data, images)
    from .symmetry import default_uv_symmetry

    dataset = DensePoseDataset([js, *extra_annotations], root, classes=config.classes, train=True,
                               flip_prob=config.flip_prob, uv_symmetry=default_uv_symmetry(config.uv_symmetry),
                               skip_empty=True, seed=config.seed, pseudo=pseudo)
    if len(dataset) == 0:
        raise DensemapError(f"{js}: no image with a usable instance")
    return dataset


@dataclass
class _Run:
    """What one training step changes: the model (and its DDP wrapper), optimizer, LR schedule,
    AMP scaler and the step count."""

    model: DensePoseRCNN
    ddp: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    use_amp: bool
    step: int = 0


def _init_weights(model: DensePoseRCNN, init) -> None:
    """Load the tensors of checkpoint ``init`` whose names and shapes match (the rest is logged)."""
    ck = torch.load(init, map_location="cpu", weights_only=False)
    sd = ck.get("model", ck)
    own = model.state_dict()
    ok = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(ok, strict=False)
    log.info("init: %d of %d tensors from %s", len(ok), len(own), init)


def _build_run(config: Config, *, init, state: dict | None, dist: _Dist) -> _Run:
    """Seeded model, optimizer, schedule and scaler; restored from ``state`` when resuming."""
    dev = dist.device
    torch.manual_seed(config.seed + dist.rank)
    random.seed(config.seed + dist.rank)
    model = build_model(config)
    if init is not None and state is None:
        _init_weights(model, init)
    model.to(dev).train()
    opt = _optimizer(model, config)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(config))
    use_amp = config.amp and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    run = _Run(model, model, opt, sched, scaler, use_amp)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        run.step = int(state["step"])
        torch.set_rng_state(state["rng"]["torch"])
        if dev.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], dev)
        random.setstate(state["rng"]["python"])
    if dist.distributed:
        run.ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dist.local_rank] if dev.type == "cuda" else None, find_unused_parameters=False)
    return run


def _loader(dataset: DensePoseDataset, config: Config, *, step: int, dist: _Dist) -> torch.utils.data.DataLoader:
    """Batches of the sample stream from optimizer step ``step`` to ``max_iter`` (this rank's share)."""
    remaining = config.max_iter - step
    sampler = StreamSampler(len(dataset), seed=config.seed, batch_size=config.batch_size,
                            start_batch=step * config.accumulate, n_batches=max(remaining, 0) * config.accumulate,
                            rank=dist.rank, world=dist.world)
    return torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, collate_fn=collate,
                                       num_workers=config.workers, persistent_workers=False,
                                       pin_memory=dist.device.type == "cuda",
                                       # own generator: creating the iterator must not draw from the global
                                       # RNG, or a resumed run would diverge from an uninterrupted one
                                       generator=torch.Generator().manual_seed(config.seed))


def _forward_backward(run: _Run, images, targets, *, accumulate: int, dev: torch.device) -> dict:
    """Losses of one micro-batch; their sum / ``accumulate`` is backpropagated (scaled under AMP)."""
    images = [im.to(dev, non_blocking=True) for im in images]
    targets = [{k: (v.to(dev, non_blocking=True) if torch.is_tensor(v) else v) for k, v in t.items()}
               for t in targets]
    with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=run.use_amp):
        losses = run.ddp(images, targets)
    loss = sum(losses.values()) / accumulate
    run.scaler.scale(loss).backward()
    return losses


def _optimizer_step(run: _Run, clip_grad_norm: float) -> torch.Tensor:
    """Clip, step (skipped on a non-finite gradient norm), advance the schedule; returns the norm."""
    run.scaler.unscale_(run.opt)
    gnorm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), clip_grad_norm)
    if torch.isfinite(gnorm):
        run.scaler.step(run.opt)
    else:
        log.warning("step %d: non-finite gradient norm, update skipped", run.step)
    run.scaler.update()
    run.opt.zero_grad(set_to_none=True)
    run.sched.step()
    run.step += 1
    return gnorm


_BAR_KEYS = ("loss", "loss_classifier", "loss_mask", "loss_densepose_I", "loss_densepose_UV", "loss_densepose_S")


class _Meter:
    """Running means of the losses between log rows, the rows (``log.jsonl``, ``log.csv``) and the bar."""

    def __init__(self, out: Path, *, world: int, main: bool, t_start: float, bar=None):
        self.out, self.world, self.main, self.t_start, self.bar = out, world, main, t_start, bar
        self.last: dict = {}
        self._reset()

    def _reset(self) -> None:
        self.running: dict[str, float] = {}
        self.n, self.images, self.t = 0, 0, time.perf_counter()

    def add(self, losses: dict, n_images: int) -> None:
        for k, v in losses.items():
            self.running[k] = self.running.get(k, 0.0) + float(v.detach())
        self.n += 1
        self.images += n_images

    def emit(self, step: int, lr: float, gnorm) -> dict:
        """Write the row of ``step`` (rank 0) and start a new averaging window."""
        last = {k: v / self.n for k, v in self.running.items()}
        last["loss"] = sum(last.values())
        dt = time.perf_counter() - self.t
        row = {"step": step, "lr": lr, **{k: round(v, 5) for k, v in last.items()},
               "grad_norm": round(float(gnorm), 4), "images_per_s": round(self.images * self.world / max(dt, 1e-9), 3),
               "elapsed_s": round(time.perf_counter() - self.t_start, 1)}
        if self.main:
            _append_logs(self.out, row)
        if self.bar is not None:
            self.bar.set_postfix({k.replace("loss_", "").replace("densepose_", "dp_"): f"{v:.3g}"
                                  for k, v in last.items() if k in _BAR_KEYS})
        self.last = last
        self._reset()
        return row


def _out_of_time(t_start: float, max_minutes: float | None, dist: _Dist) -> bool:
    """Whether ``max_minutes`` have passed (on any rank, so that all ranks stop together)."""
    stop = max_minutes is not None and (time.perf_counter() - t_start) / 60 >= max_minutes
    if dist.distributed:
        flag = torch.tensor([float(stop)], device=dist.device)
        torch.distributed.all_reduce(flag)
        stop = bool(flag.item() > 0)
    return stop


def _train_loop(run: _Run, loader, config: Config, *, out: Path, dist: _Dist, meter: _Meter,
                max_minutes: float | None) -> bool:
    """Optimizer steps until ``max_iter`` (True) or ``max_minutes`` (False)."""
    finished = run.step >= config.max_iter
    micro = 0
    for images, targets in loader:
        losses = _forward_backward(run, images, targets, accumulate=config.accumulate, dev=dist.device)
        meter.add(losses, len(images))
        micro += 1
        if micro < config.accumulate:
            continue
        micro = 0
        gnorm = _optimizer_step(run, config.clip_grad_norm)
        if meter.bar is not None:
            meter.bar.update(1)
        if run.step % config.log_every == 0 or run.step == config.max_iter:
            meter.emit(run.step, run.opt.param_groups[0]["lr"], gnorm)
        stop_time = _out_of_time(meter.t_start, max_minutes, dist)
        if run.step % config.checkpoint_every == 0 and dist.main:
            _checkpoint(out, run, config, dist.device, keep_model=True)
        if run.step >= config.max_iter:
            return True
        if stop_time:
            log.info("stopping at step %d after %.1f minutes (resume with --resume)", run.step, max_minutes)
            return False
    return finished


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
    dist = _setup_distributed(device)
    out = Path(out)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
    state = _resume_state(out, resume)
    if state is not None:
        config = config_from_dict(state["config"])
    dataset = _training_dataset(config, data=data, images=images, extra_annotations=extra_annotations, pseudo=pseudo,
                                out=out, dist=dist)
    run = _build_run(config, init=init, state=state, dist=dist)
    if dist.main:
        save_config(config, out / "config.yaml")
    loader = _loader(dataset, config, step=run.step, dist=dist)
    bar = None
    if progress and dist.main:
        from tqdm import tqdm

        bar = tqdm(total=config.max_iter, initial=run.step, unit="it", desc="train", dynamic_ncols=True)
    meter = _Meter(out, world=dist.world, main=dist.main, t_start=t_start, bar=bar)
    try:
        finished = _train_loop(run, loader, config, out=out, dist=dist, meter=meter, max_minutes=max_minutes)
    finally:
        if bar is not None:
            bar.close()
    ck = out / "model_final.pt"
    if dist.main:
        _checkpoint(out, run, config, dist.device, keep_model=False)
        _save(ck, {"model": run.model.state_dict(), "config": config.to_dict(), "step": run.step, "finished": finished})
    dist.barrier()
    return TrainResult(out, run.step, finished, meter.last, time.perf_counter() - t_start, ck)


def _checkpoint(out: Path, run: _Run, config: Config, dev: torch.device, *, keep_model: bool) -> None:
    """``last.pt`` (everything :func:`train` needs to resume) and, with ``keep_model``, ``model_XXXXXXX.pt``."""
    rng = {"torch": torch.get_rng_state(), "python": random.getstate(),
           "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}
    model, step = run.model, run.step
    _save(out / "last.pt", {"model": model.state_dict(), "optimizer": run.opt.state_dict(),
                            "scheduler": run.sched.state_dict(), "scaler": run.scaler.state_dict(), "step": step,
                            "config": config.to_dict(), "rng": rng})
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
