"""Checkpoint files: safe to load, checked for integrity, written once, pruned.

A run folder holds

* ``model_final.pt`` -- the weights at the end of a ``train`` call (finished or stopped);
* ``model_XXXXXXX.pt`` -- model-only snapshots every ``checkpoint_every`` steps, the last
  ``keep_snapshots`` of them kept (none at the step ``model_final.pt`` already holds);
* ``last.pt`` -- the training state (optimizer, schedule, AMP scaler, step, RNG of every
  rank) and the name and hash of the model file it continues from, so weights are never
  stored twice.

Every file is written atomically and loaded with ``torch.load(weights_only=True)``: a file
can hold tensors and plain Python values only, never code to run. Model files carry a
SHA-256 of their tensors (names, dtypes, shapes, bytes), checked on load, so a corrupted file
is refused rather than silently changing predictions.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import zipfile
from pathlib import Path

import torch

from densemap._io import atomic_path
from densemap.errors import DensemapError

__all__ = ["CheckpointError", "FORMAT", "tensor_hash", "save_model_file", "read_checkpoint", "load_model_state",
           "save_train_state", "load_train_state", "prune_snapshots", "remove_stale_temporaries", "snapshot_name",
           "match_init_weights", "load_checkpoint"]

log = logging.getLogger(__name__)

FORMAT = "densemap.checkpoint"
FORMAT_VERSION = 2


class CheckpointError(DensemapError, ValueError):
    """A checkpoint file is unreadable, corrupted, unsafe or does not fit the model."""


def tensor_hash(state: dict) -> str:
    """SHA-256 of a state dict: every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        h.update(name.encode())
        if torch.is_tensor(t):
            t = t.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(t).encode())
    return h.hexdigest()


def snapshot_name(step: int) -> str:
    return f"model_{step:07d}.pt"


def save_model_file(path: str | os.PathLike, model_state: dict, *, config: dict, step: int, finished: bool | None = None,
                    meta: dict | None = None) -> Path:
    """Write a model-only checkpoint (weights + config + step + content hash) atomically."""
    obj = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model_state, "config": config,
           "step": int(step), "sha256": tensor_hash(model_state)}
    if finished is not None:
        obj["finished"] = bool(finished)
    if meta:
        obj["meta"] = meta
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The content of a densemap checkpoint file, loaded safely (``weights_only=True``).

    Raises
    ------
    CheckpointError
        Missing, truncated or not a torch file; a file that holds anything but tensors and
        plain values (e.g. a pickled object that would run code); not a densemap checkpoint.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "GLOBAL" in text:  # the pickle names a Python object to build: code would run
            unsupported = next(ln.strip() for ln in text.splitlines() if "GLOBAL" in ln)
            raise CheckpointError(f"{p}: refused: the file holds more than tensors and plain values "
                                  f"({unsupported[:160]}); densemap checkpoints never do, so it was not made by "
                                  "densemap or was tampered with") from None
        raise CheckpointError(f"{p}: cannot read the checkpoint (not a torch checkpoint file)") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError, AttributeError,
            IndexError, TypeError) as exc:
        raise CheckpointError(f"{p}: cannot read the checkpoint ({type(exc).__name__}: {str(exc)[:160]})") from None
    if not isinstance(obj, dict) or "config" not in obj or ("model" not in obj and "model_file" not in obj):
        raise CheckpointError(f"{p}: not a densemap checkpoint (expected a dict with 'config' and 'model')")
    return obj


def load_model_state(path: str | os.PathLike) -> tuple[dict, dict]:
    """(model state dict, whole checkpoint) of a model file, its content hash checked.

    Files written before hashes existed (format 1) have none and load unchecked.
    """
    obj = read_checkpoint(path)
    if "model" not in obj:
        raise CheckpointError(f"{path}: holds no weights (a training state: load its model file "
                              f"{obj.get('model_file')!r} instead)")
    state = obj["model"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: 'model' is not a state dict of tensors")
    want = obj.get("sha256")
    if want is not None and tensor_hash(state) != want:
        raise CheckpointError(f"{path}: the weights do not match the file's content hash (the file is corrupted); "
                              "use another snapshot or retrain")
    return state, obj


def save_train_state(out: Path, state: dict, *, model_file: str, model_sha256: str) -> Path:
    """``out/last.pt``: the training state without the weights, pointing at ``model_file``."""
    obj = {"format": FORMAT, "format_version": FORMAT_VERSION, **state, "model_file": model_file,
           "model_sha256": model_sha256}
    path = out / "last.pt"
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def load_train_state(out: Path) -> tuple[dict, dict]:
    """(training state, model state dict) to resume the run in ``out``.

    Raises
    ------
    CheckpointError
        No ``last.pt``, an unreadable one, or its model file missing or not the one it names.
    """
    path = out / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"{out}: nothing to resume (no last.pt)")
    state = read_checkpoint(path)
    if "model" in state:  # format 1: the weights inside
        return state, state["model"]
    model_path = out / str(state.get("model_file"))
    if not model_path.is_file():
        raise CheckpointError(f"{path}: its model file {model_path.name} is missing")
    weights, _ = load_model_state(model_path)
    if tensor_hash(weights) != state.get("model_sha256"):
        raise CheckpointError(f"{path}: {model_path.name} holds other weights than the ones this state continues "
                              "(it was overwritten by another run?)")
    return state, weights


def prune_snapshots(out: Path, keep: int, *, protect: str | None = None) -> list[Path]:
    """Delete all but the ``keep`` newest ``model_XXXXXXX.pt`` snapshots (never ``protect``)."""
    snaps = sorted(out.glob("model_[0-9]*.pt"))
    gone = [p for p in snaps[: max(len(snaps) - max(int(keep), 0), 0)] if p.name != protect]
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Delete the temporary files an interrupted run (kill -9 during a write) left in ``out``."""
    stale = [p for pat in (".model_*.pt.*", ".last.pt.*", ".log.*") for p in out.glob(pat) if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def match_init_weights(model: torch.nn.Module, state: dict, *, where: str, min_fraction: float = 0.95,
                       partial: bool = False) -> tuple[int, int]:
    """Load the tensors of ``state`` that fit ``model`` (same name and shape).

    Refuses (:class:`CheckpointError` naming the first missing and mismatched tensors) when
    fewer than ``min_fraction`` of the model's tensors would load, unless ``partial``.
    Returns (loaded, total).
    """
    own = model.state_dict()
    ok = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in state]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                  if k in state and state[k].shape != own[k].shape]
    if len(ok) < min_fraction * len(own) and not partial:
        raise CheckpointError(
            f"{where}: only {len(ok)} of the model's {len(own)} tensors fit "
            f"({len(mismatched)} of other shape, e.g. {mismatched[:3]}; {len(missing)} missing, e.g. {missing[:3]}); "
            "the checkpoint is of another architecture: drop --config to take the checkpoint's, or pass "
            "--init-partial to load what fits")
    model.load_state_dict(ok, strict=False)
    log.info("init: %d of %d tensors from %s", len(ok), len(own), where)
    return len(ok), len(own)


def load_checkpoint(path: str | os.PathLike, *, device=None):
    """Model (eval mode), config and raw checkpoint from a model file or a run folder.

    A folder gives its ``model_final.pt`` (else the model file its ``last.pt`` names).
    The file is loaded safely and its content hash checked (:func:`load_model_state`).

    Returns
    -------
    (DensePoseRCNN, Config, dict)

    Raises
    ------
    CheckpointError
        Unreadable, unsafe or corrupted file; weights that do not fit the stored config.
    """
    from .config import config_from_dict
    from .rcnn import build_model

    p = Path(path)
    if p.is_dir():
        if (p / "model_final.pt").is_file():
            p = p / "model_final.pt"
        elif (p / "last.pt").is_file():
            p = p / str(read_checkpoint(p / "last.pt").get("model_file", "last.pt"))
        else:
            raise CheckpointError(f"{path}: no model_final.pt or last.pt in this run folder")
    state, ckpt = load_model_state(p)
    config = config_from_dict(ckpt["config"]).replace(backbone_weights=None)
    model = build_model(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise CheckpointError(f"{p}: the weights do not fit the checkpoint's own config ({lines[1][:200] if len(lines) > 1 else lines[0][:200]})") from None
    model.eval()
    if device is not None:
        model.to(device)
    return model, config, ckpt
