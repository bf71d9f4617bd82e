"""Training configuration: a frozen dataclass read from YAML, with ``key=value`` overrides.

Defaults follow detectron2's DensePose R-CNN (its ``R_50_FPN_WC1M`` settings) where they exist.
The recipes ship with the package (the repository's ``configs/`` folder, installed as
``densemap_models.configs``) and load by name: ``load_config("synth_cpu")`` is the laptop
recipe for the synthetic sets, ``load_config("densepose_coco_r50")`` the GPU recipe for
DensePose-COCO; :func:`default_config_name` picks one by device.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from densemap.errors import DensemapError

__all__ = ["Config", "ConfigError", "load_config", "apply_overrides", "save_config", "config_from_dict",
           "config_names", "default_config_name", "RESUME_OVERRIDABLE"]

# keys a resumed run may change: they do not alter the model or the sample stream
RESUME_OVERRIDABLE = ("max_iter", "checkpoint_every", "log_every", "keep_snapshots", "workers", "max_nonfinite_steps")


class ConfigError(DensemapError, ValueError):
    """A configuration file or override is malformed."""


@dataclass(frozen=True)
class Config:
    """Everything that defines a model and its training run.

    Model
    -----
    backbone : {"resnet18", "resnet34", "resnet50", "mobilenet_v3"}
        FPN backbone (``weights=None``: trained from scratch unless ``backbone_weights``).
    backbone_weights : str or None
        Local state-dict file (e.g. torchvision's ImageNet resnet50) loaded into the backbone body.
    norm : {"auto", "frozen_bn", "bn", "gn"}
        Backbone normalisation; "auto" = GroupNorm from scratch, frozen BN with weights.
    head : {"conv", "deeplab"}
        DensePose head: a conv stack (DensePoseV1ConvXHead) or ASPP + non-local + convs.
    head_convs, head_channels : int
        Depth and width of the DensePose head's conv stack (detectron2: 8, 512).
    fpn_channels : int
        Channels of the FPN levels (and so of every RoI head's input; torchvision: 256).
    fpn_levels : (int, ...)
        ResNet stages whose outputs feed the FPN (1 = stride 4 ... 4 = stride 32; torchvision:
        1, 2, 3, 4). Leaving out stage 1 drops the stride-4 level, the costliest on a CPU.
    dp_roi_size : {14, 28}
        Side of the DensePose branch's RoIAlign features (detectron2: 28).
    heatmap_size : {28, 56, 112}
        Output side of the DensePose head: 2x or 4x ``dp_roi_size`` (deconv x2, then
        bilinear x2 for 4x).
    sigma_min : float
        Lower clamp of the u/v standard deviation: ``sigma = softplus(raw) + sigma_min``.
    alpha_min : float
        Lower clamp of the classifier temperature: ``alpha = softplus(raw) + alpha_min``.
    min_size, max_size : int
        Image resizing of torchvision's GeneralizedRCNNTransform.

    Detector thresholds (torchvision's MaskRCNN defaults)
    -----------------------------------------------------
    rpn_fg_iou_thresh, rpn_bg_iou_thresh : float
        Anchors with IoU >= fg are RPN positives, < bg negatives (0.7, 0.3).
    rpn_batch_size_per_image : int
        Anchors sampled per image for the RPN losses, ``rpn_positive_fraction`` (0.5) positive.
    rpn_pre_nms_top_n_train, rpn_pre_nms_top_n_test : int
        Proposals kept per level before NMS (2000 / 1000).
    rpn_post_nms_top_n_train, rpn_post_nms_top_n_test : int
        Proposals kept per image after NMS (2000 / 1000).
    rpn_nms_thresh, rpn_score_thresh : float
        NMS IoU of the proposals (0.7) and the lowest objectness probability kept (0.0).
    box_fg_iou_thresh, box_bg_iou_thresh : float
        Proposals with IoU >= fg are box-head positives, < bg negatives (0.5, 0.5).
    box_batch_size_per_image : int
        Proposals sampled per image for the box-head losses, ``box_positive_fraction`` (0.25) positive.
    box_reg_weights : (4,) float
        Weights (wx, wy, ww, wh) of the box-head's box coder (10, 10, 5, 5).
    box_score_thresh, box_nms_thresh : float
        A detection's class score must exceed ``box_score_thresh`` (0.05); per-class NMS IoU (0.5).
    box_detections_per_img : int
        Detections kept per image (100).

    Losses (weights as detectron2's WC1M configs)
    ------
    mask_weight : float  -- DensePose foreground mask loss (INDEX_WEIGHTS)
    part_weight : float  -- chart index I loss (PART_WEIGHTS), mean over points
    uv_weight : float    -- u/v Gaussian NLL, **summed** over points (POINT_REGRESSION_WEIGHTS)
    coarse_part_weight : float -- dense chart supervision from the 14 coarse part masks (0 = off;
    densemap's addition, see :func:`densemap_models.losses.coarse_part_loss`)
    dp_fg_iou : float    -- proposals with IoU above this train the DensePose head

    Training
    --------
    batch_size, accumulate, max_iter, lr, optimizer, weight_decay, warmup_iters, lr_schedule
    ("step": x0.1 at each of lr_steps, fractions of max_iter; "cosine": a half cosine from lr
    to lr / 100 over the run, lr_steps unused), lr_by_time (with a time limit, ``max_minutes``,
    drop i also comes once lr_steps[i] of the minutes have passed, if that is earlier, and the
    cosine follows the larger of the two fractions, so a run cut short by the clock is still
    annealed), clip_grad_norm, amp (float16 autocast +
    GradScaler on CUDA), cpu_bf16 (bfloat16 autocast on a CPU), checkpoint_every
    (model-only snapshots; the last ``keep_snapshots`` are kept), max_nonfinite_steps (a run
    whose loss is not finite this many steps in a row stops with an error), log_every, workers,
    seed, flip_prob, classes (category names or ids merged into one foreground class; empty = all),
    invalid_annotations ("error": a bad image or annotation stops the run before its first step,
    naming it; "drop": dropped and counted, see :mod:`densemap_models.dataset_checks`).
    """

    # model
    backbone: str = "resnet50"
    backbone_weights: str | None = None
    norm: str = "auto"
    trainable_layers: int = 5
    head: str = "conv"
    head_convs: int = 8
    head_channels: int = 512
    fpn_channels: int = 256
    fpn_levels: tuple = (1, 2, 3, 4)
    dp_roi_size: int = 28
    heatmap_size: int = 112
    sigma_min: float = 0.05
    alpha_min: float = 0.01
    min_size: int = 800
    max_size: int = 1333
    rpn_fg_iou_thresh: float = 0.7
    rpn_bg_iou_thresh: float = 0.3
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_score_thresh: float = 0.0
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    box_batch_size_per_image: int = 512
    box_positive_fraction: float = 0.25
    box_reg_weights: tuple = (10.0, 10.0, 5.0, 5.0)
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    box_detections_per_img: int = 100
    box_head_dim: int = 1024
    mask_head_convs: int = 4
    mask_head_channels: int = 256
    # losses
    mask_weight: float = 5.0
    part_weight: float = 1.0
    uv_weight: float = 0.0005
    coarse_part_weight: float = 0.0
    dp_fg_iou: float = 0.7
    dp_max_rois_per_image: int = 64
    # data
    classes: tuple = ()
    invalid_annotations: str = "error"
    flip_prob: float = 0.5
    uv_symmetry: str | None = None
    # training
    batch_size: int = 2
    accumulate: int = 1
    max_iter: int = 90000
    optimizer: str = "sgd"
    lr: float = 0.01
    weight_decay: float = 1e-4
    momentum: float = 0.9
    warmup_iters: int = 1000
    lr_steps: tuple = (0.77, 0.92)
    lr_schedule: str = "step"
    lr_by_time: bool = False
    clip_grad_norm: float = 10.0
    amp: bool = True
    cpu_bf16: bool = False
    checkpoint_every: int = 5000
    keep_snapshots: int = 3
    max_nonfinite_steps: int = 20
    log_every: int = 20
    workers: int = 2
    seed: int = 0

    def __post_init__(self):
        choices = {
            "backbone": ("resnet18", "resnet34", "resnet50", "mobilenet_v3"),
            "norm": ("auto", "frozen_bn", "bn", "gn"),
            "head": ("conv", "deeplab"),
            "optimizer": ("sgd", "adamw"),
            "lr_schedule": ("step", "cosine"),
            "invalid_annotations": ("error", "drop"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"unknown {name} {getattr(self, name)!r}; expected one of {list(allowed)}")
        if self.dp_roi_size not in (14, 28):
            raise ConfigError(f"dp_roi_size must be 14 or 28, got {self.dp_roi_size}")
        if self.heatmap_size not in (2 * self.dp_roi_size, 4 * self.dp_roi_size):
            raise ConfigError(f"heatmap_size must be 2x or 4x dp_roi_size ({self.dp_roi_size}): "
                              f"{2 * self.dp_roi_size} or {4 * self.dp_roi_size}, got {self.heatmap_size}")
        levels = tuple(int(x) for x in (self.fpn_levels or ()))
        if not levels or sorted(set(levels)) != list(levels) or levels[0] < 1 or levels[-1] > 4:
            raise ConfigError(f"fpn_levels must be increasing ResNet stages in 1..4, got {self.fpn_levels}")
        object.__setattr__(self, "fpn_levels", levels)
        if not self.sigma_min > 0:
            raise ConfigError(f"sigma_min must be positive (the NLL diverges at sigma = 0), got {self.sigma_min}")
        for name in ("batch_size", "accumulate", "max_iter", "head_convs", "head_channels", "checkpoint_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        object.__setattr__(self, "classes", tuple(self.classes or ()))
        object.__setattr__(self, "lr_steps", _numbers("lr_steps", self.lr_steps or ()))
        object.__setattr__(self, "box_reg_weights", _numbers("box_reg_weights", self.box_reg_weights))
        if len(self.box_reg_weights) != 4:
            raise ConfigError(f"box_reg_weights must be 4 numbers (wx, wy, ww, wh), got {list(self.box_reg_weights)}")
        _check_ranges(self)

    @property
    def resolved_norm(self) -> str:
        if self.norm != "auto":
            return self.norm
        return "frozen_bn" if self.backbone_weights else "gn"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def replace(self, **kw) -> "Config":
        return dataclasses.replace(self, **kw)


_FIELDS = {f.name: f for f in fields(Config)}

# (lowest, highest) of every number; "(" marks an open lower end. Anything else is refused with
# the key, the value and the range (a NaN learning rate or -1 workers never reaches a run).
_INF = float("inf")
_RANGES = {
    "lr": ("(", 0, _INF), "weight_decay": (0, _INF), "momentum": (0, 1.0), "clip_grad_norm": ("(", 0, _INF),
    "alpha_min": ("(", 0, _INF), "sigma_min": ("(", 0, _INF), "flip_prob": (0, 1), "dp_fg_iou": (0, 1),
    "mask_weight": (0, _INF), "part_weight": (0, _INF), "uv_weight": (0, _INF), "coarse_part_weight": (0, _INF),
    "rpn_fg_iou_thresh": (0, 1), "rpn_bg_iou_thresh": (0, 1), "rpn_positive_fraction": (0, 1),
    "rpn_nms_thresh": (0, 1), "rpn_score_thresh": (0, 1), "box_fg_iou_thresh": (0, 1), "box_bg_iou_thresh": (0, 1),
    "box_positive_fraction": (0, 1), "box_score_thresh": (0, 1), "box_nms_thresh": (0, 1),
    "min_size": (1, 16384), "max_size": (1, 16384), "max_iter": (1, 10**9), "warmup_iters": (0, 10**9),
    "workers": (0, 256), "seed": (0, 2**32 - 1), "keep_snapshots": (0, 10**6), "max_nonfinite_steps": (1, 10**9),
    "trainable_layers": (0, 5), "box_detections_per_img": (1, 10**5), "dp_max_rois_per_image": (1, 10**5),
    "rpn_batch_size_per_image": (1, 10**6), "box_batch_size_per_image": (1, 10**6),
    "rpn_pre_nms_top_n_train": (1, 10**6), "rpn_pre_nms_top_n_test": (1, 10**6),
    "rpn_post_nms_top_n_train": (1, 10**6), "rpn_post_nms_top_n_test": (1, 10**6), "box_head_dim": (1, 65536),
    "mask_head_convs": (0, 64), "mask_head_channels": (1, 65536), "fpn_channels": (1, 65536),
    "batch_size": (1, 4096), "accumulate": (1, 4096), "head_convs": (1, 64), "head_channels": (1, 65536),
    "checkpoint_every": (1, 10**9), "log_every": (1, 10**9),
}


def _numbers(name: str, values) -> tuple:
    try:
        out = tuple(float(v) for v in values if not isinstance(v, bool))
    except (TypeError, ValueError, OverflowError):
        out = None
    if out is None or len(out) != len(values) or not all(math.isfinite(v) for v in out):
        raise ConfigError(f"{name} must be a list of finite numbers, got {list(values)}")
    return out


def _check_ranges(cfg: "Config") -> None:
    for name, spec in _RANGES.items():
        open_lo = spec[0] == "("
        lo, hi = spec[1:] if open_lo else spec
        v = getattr(cfg, name)
        if not (lo < v if open_lo else lo <= v) or not v <= hi or not math.isfinite(v):
            left, right = "(" if open_lo else "[", ")" if hi == _INF else "]"
            shown = repr(v) if len(repr(v)) < 24 else f"{repr(v)[:12]}... ({len(repr(v))} digits)"
            raise ConfigError(f"{name} = {shown} is out of range; expected a finite number in {left}{lo}, {hi}{right}")
    if cfg.max_size < cfg.min_size:
        raise ConfigError(f"max_size ({cfg.max_size}) must be at least min_size ({cfg.min_size})")
    bad = [s for s in cfg.lr_steps if not 0 < s < 1]
    if bad:
        raise ConfigError(f"lr_steps are fractions of max_iter in (0, 1), got {list(cfg.lr_steps)}")


def _coerce(name: str, value: Any) -> Any:
    """Check ``value`` against the type of field ``name`` (ints widen to floats)."""
    if name not in _FIELDS:
        raise ConfigError(f"unknown config key {name!r}; expected one of {sorted(_FIELDS)}")
    default = _FIELDS[name].default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, tuple):
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(value)
    if default is None:  # optional string
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{name} must be a string or null, got {value!r}")
        return value
    if not isinstance(value, type(default)) or isinstance(value, bool) != isinstance(default, bool):
        raise ConfigError(f"{name} must be of type {type(default).__name__}, got {value!r}")
    return value


def apply_overrides(config: Config, overrides=(), **values) -> Config:
    """A copy of ``config`` with ``"key=value"`` strings (YAML-parsed values) and keyword values applied.

    Raises
    ------
    ConfigError
        Unknown key, missing ``=``, or a value of the wrong type.
    """
    new = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, text = item.split("=", 1)
        try:
            new[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: cannot parse the value ({exc})") from None
    new.update(values)
    return dataclasses.replace(config, **{k: _coerce(k, v) for k, v in new.items()})


def _packaged(name: str) -> Path | None:
    from importlib import resources

    stem = name[:-5] if name.endswith(".yaml") else name
    path = Path(str(resources.files("densemap_models.configs").joinpath(f"{stem}.yaml")))
    return path if path.is_file() else None


def config_names() -> list[str]:
    """Names of the recipes that ship with the package (``load_config(name)``)."""
    from importlib import resources

    return sorted(p.name[:-5] for p in resources.files("densemap_models.configs").iterdir() if p.name.endswith(".yaml"))


def default_config_name(device) -> str:
    """The recipe a run gets without ``--config``: ``synth_cpu`` on a CPU, ``densepose_coco_r50`` on CUDA."""
    return "densepose_coco_r50" if str(device).startswith("cuda") else "synth_cpu"


def load_config(path: str | os.PathLike | None = None, overrides=()) -> Config:
    """Read a YAML config and apply ``key=value`` overrides.

    Parameters
    ----------
    path : path-like or str, optional
        A YAML file, or the name of a packaged recipe (:func:`config_names`, e.g.
        ``"synth_cpu"``); ``None`` = the dataclass defaults.
    overrides : sequence of "key=value"

    Examples
    --------
    >>> cfg = load_config("synth_cpu", ["max_iter=10"])
    >>> cfg.backbone, cfg.max_iter
    ('resnet18', 10)
    """
    base = Config()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            packaged = _packaged(str(path)) if os.sep not in str(path) else None
            if packaged is None:
                raise ConfigError(f"{path}: no such config file, and no packaged config of that name "
                                  f"(packaged: {config_names()})")
            p = packaged
        from densemap._paths import read_text

        text = read_text(p, what="YAML config file", error=ConfigError, max_bytes=1 << 20)
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: invalid YAML ({' '.join(str(exc).split())[:200]})") from None
        except RecursionError:
            raise ConfigError(f"{p}: YAML nested too deeply to read") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: a config must be a mapping of keys to values, got {type(data).__name__}")
        base = apply_overrides(base, **data)
    return apply_overrides(base, overrides)


def config_from_dict(data: dict) -> Config:
    """Config from :meth:`Config.to_dict` output (as stored in checkpoints)."""
    return apply_overrides(Config(), **data)


def save_config(config: Config, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return p

