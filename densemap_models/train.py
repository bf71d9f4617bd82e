"""Training loop: iteration-based, resumable, AMP on CUDA, gradient accumulation, DDP via torchrun.

:func:`train` writes into a run folder ``RUN`` (see :mod:`densemap_models.checkpoints`):

* ``config.yaml`` -- the resolved :class:`~densemap_models.config.Config`;
* ``model_final.pt`` at the end, model-only ``model_XXXXXXX.pt`` snapshots every
  ``checkpoint_every`` steps (the last ``keep_snapshots`` kept) and ``last.pt``, the training
  state (optimizer, schedule, AMP scaler, step, every rank's RNG) without a copy of the weights;
* ``log.jsonl`` and ``log.csv`` -- step, learning rate, every loss, images/s.

Exact resume: the sample order is a function of (seed, position in the sample stream) and each
image's flip of (seed, epoch, index), the RNG states are saved, so an interrupted run continued
with ``resume=True`` sees the same batches as an uninterrupted one; the logs are cut back to the
resumed step. A run whose loss is not finite for ``max_nonfinite_steps`` steps in a row stops
with an error instead of "finishing" an untrained model.

Multi-GPU: launch with ``torchrun --nproc_per_node=G -m densemap.cli.main train ...``; each
rank reads its own slice of every global batch (``batch_size`` is per GPU), only rank 0 writes
files. :func:`run_training` is what ``densemap train`` calls: it picks the config
(:func:`densemap_models.recipe.run_config`) and trains.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from densemap.errors import DensemapError

from . import checkpoints as ck
from .checkpoints import load_checkpoint
from .config import Config, save_config
from .datasets import DensePoseDataset, collate, resolve_data
from .distributed import Dist, rng_state, set_rng_state, setup_distributed
from .rcnn import DensePoseRCNN, build_model
from .train_log import Meter, truncate_logs

__all__ = ["train", "run_training", "TrainResult", "TrainingError", "load_checkpoint", "StreamSampler",
           "synthetic_default_data"]

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
    notes: list = field(default_factory=list)
    model: DensePoseRCNN | None = field(default=None, repr=False)  # the trained model (this rank's copy)


class TrainingError(DensemapError, RuntimeError):
    """Training cannot go on sensibly (e.g. the loss stayed non-finite)."""


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


def _lr_lambda(config: Config, taken: list[int] | None = None, progress: list[float] | None = None):
    """LR factor at ``step``: linear warmup from 0.1 over ``warmup_iters``, then the schedule.

    ``lr_schedule: step``: x0.1 at every ``lr_steps``. ``taken`` (filled in by
    :func:`_take_lr_drops` as the run goes) holds, for the first drops in ``sorted(lr_steps)``,
    the step from which each is in force; a drop counts from that step or from
    ``lr_steps[i] * max_iter``, whichever is first.
    ``lr_schedule: cosine``: ``0.01 + 0.99 * (1 + cos(pi p)) / 2`` where the progress ``p`` is
    the larger of ``step / max_iter`` and ``progress[0]`` (the clock's share, kept by
    :func:`_take_lr_drops`; it never goes back, so extending a run does not raise the rate).

    Kept as a LambdaLR rather than ``SequentialLR(LinearLR(0.1), MultiStepLR)``: that chain
    matches this only to ~5e-15 (its factors are products updated step by step), needs its
    milestones shifted by the warmup and rounded up, cannot drop the LR during the warmup
    (a drop at ``lr_steps * max_iter < warmup_iters`` is applied on top of the warmup here),
    and could not resume the LambdaLR state stored in existing ``last.pt`` files.
    """
    taken = [] if taken is None else taken
    progress = [0.0] if progress is None else progress
    fractions = sorted(config.lr_steps)

    def f(step: int) -> float:
        warm = 1.0
        if step < config.warmup_iters:
            a = step / max(config.warmup_iters, 1)
            warm = 0.1 * (1 - a) + a
        if config.lr_schedule == "cosine":
            p = min(1.0, max(step / config.max_iter, progress[0]))
            return warm * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * p)))
        drops = sum(step >= s * config.max_iter or (i < len(taken) and step >= taken[i])
                    for i, s in enumerate(fractions))
        return warm * 0.1**drops

    return f


def _optimizer(model: torch.nn.Module, config: Config) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def synthetic_default_data(out: Path, *, n_images: int = 64, seed: int = 0, size: int = 256) -> Path:
    """Render (once) a small synthetic human dataset under ``out`` for runs without ``--data``."""
    if (out / "annotations.json").is_file():
        return out
    from densemap.synth import SceneOptions, synth_dataset

    synth_dataset("human", n_images, out, seed=seed, options=SceneOptions(size=size))
    return out


def _training_dataset(config: Config, *, data, images, extra_annotations, pseudo, out: Path,
                      dist: Dist) -> DensePoseDataset:
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
    AMP scaler, the step count and the run of non-finite losses."""

    model: DensePoseRCNN
    ddp: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    use_amp: bool
    autocast_dtype: torch.dtype | None = None  # None: no autocast
    step: int = 0
    nonfinite: int = 0
    model_file: str | None = None  # the file holding the current weights, once written
    lr_taken: list = field(default_factory=list)  # see _lr_lambda; stored in last.pt
    lr_progress: list = field(default_factory=lambda: [0.0])  # the cosine's clock progress, ditto
    progress_start: float = 0.0  # lr_progress when this call began (a resumed run compresses the rest)


def _restore(run: _Run, state: dict, weights: dict, dist: Dist) -> None:
    """Continue from a training state: weights, optimizer, schedule, scaler, step, this rank's RNG."""
    run.model.load_state_dict(weights)
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    if state.get("scaler"):  # a run started on CPU or without AMP stores an empty scaler state
        run.scaler.load_state_dict(state["scaler"])
    run.step = int(state["step"])
    run.lr_taken[:] = [int(x) for x in state.get("lr_taken", [])]  # in place: the schedule holds this list
    run.lr_progress[0] = run.progress_start = float(state.get("lr_progress", 0.0))
    ranks = state.get("rng_ranks") or [state["rng"]]
    if len(ranks) == dist.world:
        set_rng_state(ranks[dist.rank], dist.device)
    else:  # another world size: fresh, distinct streams per rank
        torch.manual_seed(hash((state.get("config", {}).get("seed", 0), dist.rank, run.step)) % 2**31)
        random.seed(dist.rank * 100003 + run.step)


def _build_run(config: Config, *, init, init_partial: bool, resumed: tuple | None, dist: Dist) -> _Run:
    """Seeded model, optimizer, schedule and scaler; restored from ``resumed`` (state, weights)."""
    dev = dist.device
    torch.manual_seed(config.seed + dist.rank)
    random.seed(config.seed + dist.rank)
    model = build_model(config)
    if init is not None and resumed is None:
        weights, _ = ck.load_model_state(init)
        ck.match_init_weights(model, weights, where=str(init), partial=init_partial)
    if dist.distributed and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training
                                for m in model.modules()):
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # plain BN would normalise per rank
    model.to(dev).train()
    opt = _optimizer(model, config)
    taken: list[int] = []
    progress = [0.0]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(config, taken, progress))
    use_amp = config.amp and dev.type == "cuda"
    dtype = torch.float16 if use_amp else (torch.bfloat16 if config.cpu_bf16 and dev.type == "cpu" else None)
    run = _Run(model, model, opt, sched, torch.amp.GradScaler("cuda", enabled=use_amp), use_amp, dtype,
               lr_taken=taken, lr_progress=progress)
    if resumed is not None:
        _restore(run, *resumed, dist)
    if dist.distributed:
        run.ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dist.local_rank] if dev.type == "cuda" else None, find_unused_parameters=False)
    return run


def _loader(dataset: DensePoseDataset, config: Config, *, step: int, dist: Dist) -> torch.utils.data.DataLoader:
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


def _forward_backward(run: _Run, images, targets, *, accumulate: int, dev: torch.device, sync: bool) -> dict:
    """Losses of one micro-batch; their sum / ``accumulate`` is backpropagated (scaled under AMP).

    ``sync`` False (all but the last micro-batch of an accumulated step) skips DDP's gradient
    all-reduce, which then happens once per optimizer step.
    """
    images = [im.to(dev, non_blocking=True) for im in images]
    targets = [{k: (v.to(dev, non_blocking=True) if torch.is_tensor(v) else v) for k, v in t.items()}
               for t in targets]
    no_sync = run.ddp.no_sync() if (not sync and run.ddp is not run.model) else contextlib.nullcontext()
    with no_sync:
        with torch.autocast(device_type=dev.type, dtype=run.autocast_dtype or torch.float32,
                            enabled=run.autocast_dtype is not None):
            losses = run.ddp(images, targets)
        loss = sum(losses.values()) / accumulate
        run.scaler.scale(loss).backward()
    return losses


def _optimizer_step(run: _Run, config: Config, loss_finite: bool) -> torch.Tensor:
    """Clip, step, advance the schedule; returns the gradient norm.

    Under AMP a non-finite gradient is GradScaler's business (it skips the step and lowers
    its scale; usual in the first steps), so it is not reported. Without AMP such a step is
    skipped with a warning. A loss that is not finite ``max_nonfinite_steps`` steps in a row
    raises :class:`TrainingError`.
    """
    run.scaler.unscale_(run.opt)
    gnorm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), config.clip_grad_norm)
    finite = bool(torch.isfinite(gnorm))
    if finite or run.use_amp:
        run.scaler.step(run.opt)
    else:
        log.warning("step %d: non-finite gradient norm, update skipped", run.step)
    run.scaler.update()
    run.opt.zero_grad(set_to_none=True)
    run.sched.step()
    run.step += 1
    run.nonfinite = 0 if loss_finite else run.nonfinite + 1
    if run.nonfinite >= config.max_nonfinite_steps:
        raise TrainingError(f"the loss was not finite for {run.nonfinite} steps in a row (up to step {run.step}); "
                            "check the annotations for NaN or huge values, or lower the learning rate")
    return gnorm


def _clock() -> float:
    """The training clock (a test replaces it to run the time-limited schedule fast)."""
    return time.perf_counter()


def _take_lr_drops(run: _Run, config: Config, dist: Dist, *, elapsed_min: float, max_minutes: float | None) -> None:
    """Record the next LR drop as taken once its step has come or, with ``lr_by_time`` and a
    time limit, once its fraction of ``max_minutes`` has passed (the new rate then applies from
    the next optimizer step). Every rank decides alike: any rank's clock suffices.
    For ``lr_schedule: cosine`` it moves the clock's progress instead: the remaining
    ``1 - progress_start`` of the cosine spread over ``max_minutes`` (the latest rank's clock).
    """
    if config.lr_schedule == "cosine":
        p = run.step / config.max_iter
        if config.lr_by_time and max_minutes is not None:
            clock = run.progress_start + (1 - run.progress_start) * min(1.0, elapsed_min / max_minutes)
            p = max(p, dist.max(clock))
        run.lr_progress[0] = min(1.0, max(run.lr_progress[0], p))
        return
    fractions = sorted(config.lr_steps)
    while len(run.lr_taken) < len(fractions):
        s = fractions[len(run.lr_taken)]
        if run.step >= s * config.max_iter:  # in force by its step already
            run.lr_taken.append(run.step)
            continue
        timed = config.lr_by_time and max_minutes is not None and elapsed_min >= s * max_minutes
        if not dist.any(timed):
            return
        run.lr_taken.append(run.step)
        factor = run.sched.lr_lambdas[0](run.step)
        for group, base in zip(run.opt.param_groups, run.sched.base_lrs):
            group["lr"] = base * factor
        log.info("LR x0.1 from step %d: %.0f%% of the %g minutes have passed (lr_by_time)", run.step + 1,
                 100 * s, max_minutes)
        return


def _train_loop(run: _Run, loader, config: Config, *, out: Path, dist: Dist, meter: Meter,
                max_minutes: float | None) -> bool:
    """Optimizer steps until ``max_iter`` (True) or ``max_minutes`` (False)."""
    finished = run.step >= config.max_iter
    micro, all_finite = 0, True
    for images, targets in loader:
        micro += 1
        losses = _forward_backward(run, images, targets, accumulate=config.accumulate, dev=dist.device,
                                   sync=micro == config.accumulate)
        all_finite &= meter.add(losses, len(images))
        if micro < config.accumulate:
            continue
        gnorm = _optimizer_step(run, config, all_finite)
        micro, all_finite = 0, True
        if meter.bar is not None:
            meter.bar.update(1)
        if run.step % config.log_every == 0 or run.step == config.max_iter:
            meter.emit(run.step, run.opt.param_groups[0]["lr"], gnorm)
        elapsed_min = (_clock() - meter.t_start) / 60
        _take_lr_drops(run, config, dist, elapsed_min=elapsed_min, max_minutes=max_minutes)
        stop_time = dist.any(max_minutes is not None and elapsed_min >= max_minutes)
        if run.step >= config.max_iter:
            return True
        if run.step % config.checkpoint_every == 0:
            _checkpoint(out, run, config, dist, final=False)
        if stop_time:
            log.info("stopping at step %d after %.1f minutes (resume with --resume)", run.step, max_minutes)
            return False
    return finished


def _prepare_out(out: Path, dist: Dist, resumed: tuple | None) -> None:
    """Create the run folder, drop temporaries a killed run left, cut the logs back on resume."""
    if not dist.main:
        return
    out.mkdir(parents=True, exist_ok=True)
    ck.remove_stale_temporaries(out)
    if resumed is not None:
        truncate_logs(out, int(resumed[0]["step"]))


def train(config: Config, *, data, out: str | os.PathLike, images=None, extra_annotations=(), pseudo=(), init=None,
          init_partial: bool = False, resume: bool = False, max_minutes: float | None = None, device: str = "cpu",
          progress: bool = False, resumed: tuple | None = None) -> TrainResult:
    """Train a :class:`~densemap_models.rcnn.DensePoseRCNN`.

    Parameters
    ----------
    config : Config
        On resume, the run's own config (with any allowed override, see
        :func:`densemap_models.recipe.run_config`).
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
        Initial weights (a densemap checkpoint). Refused when fewer than 95% of the model's
        tensors fit, unless ``init_partial``.
    resume : bool
        Continue ``out/last.pt`` exactly.
    max_minutes : float, optional
        Stop (with a resumable checkpoint) after this much wall time.
    device : "cpu" | "cuda" | "cuda:N"
        Under torchrun each rank uses ``cuda:LOCAL_RANK``.
    resumed : (state, weights), optional
        The loaded training state (what :func:`run_training` passes, having read it already).
    progress : bool
        A tqdm bar over the steps (a widget in a notebook); off by default, like every
        library call.

    Raises
    ------
    TrainingError
        The loss stayed non-finite for ``config.max_nonfinite_steps`` steps.
    """
    t_start = _clock()
    dist = setup_distributed(device)
    out = Path(out)
    try:
        if resume and resumed is None:
            resumed = ck.load_train_state(out)
        _prepare_out(out, dist, resumed)
        dataset = _training_dataset(config, data=data, images=images, extra_annotations=extra_annotations,
                                    pseudo=pseudo, out=out, dist=dist)
        run = _build_run(config, init=init, init_partial=init_partial, resumed=resumed, dist=dist)
        if dist.main:
            save_config(config, out / "config.yaml")
        loader = _loader(dataset, config, step=run.step, dist=dist)
        bar = None
        if progress and dist.main:
            from tqdm.auto import tqdm

            bar = tqdm(total=config.max_iter, initial=run.step, unit="it", desc="train", dynamic_ncols=True)
        meter = Meter(out, world=dist.world, main=dist.main, t_start=t_start, bar=bar)
        try:
            finished = _train_loop(run, loader, config, out=out, dist=dist, meter=meter, max_minutes=max_minutes)
        finally:
            if bar is not None:
                bar.close()
        _checkpoint(out, run, config, dist, final=True, finished=finished)
        dist.barrier()
    finally:
        dist.close()
    return TrainResult(out, run.step, finished, meter.last, time.perf_counter() - t_start, out / "model_final.pt",
                       model=run.model)


def _checkpoint(out: Path, run: _Run, config: Config, dist: Dist, *, final: bool, finished: bool = False) -> None:
    """The model file (``model_final.pt`` or a snapshot) and ``last.pt`` pointing at it (rank 0 writes)."""
    rngs = dist.all_gather(rng_state(dist.device))  # every rank's streams, for an exact resume
    if not dist.main:
        return
    name = "model_final.pt" if final else ck.snapshot_name(run.step)
    weights = run.model.state_dict()
    ck.save_model_file(out / name, weights, config=config.to_dict(), step=run.step, finished=finished if final else None)
    state = {"optimizer": run.opt.state_dict(), "scheduler": run.sched.state_dict(),
             "scaler": run.scaler.state_dict(), "step": run.step, "lr_taken": list(run.lr_taken),
             "lr_progress": run.lr_progress[0],
             "config": config.to_dict(), "rng": rngs[0], "rng_ranks": rngs}
    ck.save_train_state(out, state, model_file=name, model_sha256=ck.tensor_hash(weights))
    run.model_file = name
    ck.prune_snapshots(out, config.keep_snapshots, protect=name)


def run_training(out: str | os.PathLike, *, data=None, config=None, overrides=(), values: dict | None = None,
                 images=None, extra_annotations=(), pseudo=(), init=None, init_partial: bool = False,
                 resume: bool = False, max_minutes: float | None = None, device: str = "cpu",
                 progress: bool = False) -> TrainResult:
    """What ``densemap train`` does: choose the config (:func:`densemap_models.recipe.run_config`,
    every choice noted in ``TrainResult.notes``) and :func:`train`.

    ``config`` is a YAML file, a packaged recipe name or None (by device, or the ``init``
    checkpoint's); ``overrides`` are ``key=value`` strings, ``values`` keyword overrides.
    On ``resume`` only :data:`~densemap_models.config.RESUME_OVERRIDABLE` keys may change
    (``max_iter`` extends a finished run); ``max_minutes`` extends it by that long.
    """
    from .recipe import run_config

    out = Path(out)
    resumed = ck.load_train_state(out) if resume else None
    cfg, notes = run_config(config, overrides, values=values, device=device, init=init,
                            resume_state=None if resumed is None else resumed[0], where=str(out))
    if resumed is not None and int(resumed[0]["step"]) >= cfg.max_iter and max_minutes is not None:
        big = 10**9  # a time-limited extension of a finished run; the LR drops keep their steps
        cfg = cfg.replace(max_iter=big, lr_steps=tuple(f * cfg.max_iter / big for f in cfg.lr_steps))
        notes.append(f"extending the finished run for {max_minutes:g} minutes")
    for note in notes:
        log.warning("%s", note)
    result = train(cfg, data=data, out=out, images=images, extra_annotations=extra_annotations, pseudo=pseudo,
                   init=init, init_partial=init_partial, resume=resume, max_minutes=max_minutes, device=device,
                   progress=progress, resumed=resumed)
    result.notes = notes
    return result
