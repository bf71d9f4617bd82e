"""Which config a training run gets: chosen by device, taken from a checkpoint, or resumed.

:func:`run_config` is the one place that decides, so that no choice is silent:

* a new run without ``config`` gets the packaged recipe for its device
  (:func:`~densemap_models.config.default_config_name`: ``synth_cpu`` on a CPU,
  ``densepose_coco_r50`` on CUDA), said in a note;
* a new run with ``init`` but without ``config`` takes the initial checkpoint's config
  (its architecture, so every tensor loads);
* a resumed run keeps its stored config; overrides of :data:`RESUME_OVERRIDABLE` keys are
  applied (``max_iter`` extends a finished run, keeping the LR drops at their steps), any
  other override is refused.
"""

from __future__ import annotations

from .checkpoints import read_checkpoint
from .config import RESUME_OVERRIDABLE, Config, ConfigError, apply_overrides, config_from_dict, default_config_name, load_config

__all__ = ["run_config"]


def _resumed(stored: dict, overrides, values: dict, where: str, taken=()) -> tuple[Config, list[str]]:
    old = config_from_dict(stored)
    new = apply_overrides(old, overrides, **values)
    changed = {k: (v, getattr(new, k)) for k, v in old.to_dict().items() if new.to_dict()[k] != v}
    refused = sorted(set(changed) - set(RESUME_OVERRIDABLE))
    if refused:
        k = refused[0]
        raise ConfigError(f"{where}: cannot change {k} on --resume (the run has {k}={changed[k][0]!r}); only "
                          f"{list(RESUME_OVERRIDABLE)} may change; start a new run with --init to change the rest")
    notes = []
    if "max_iter" in changed and old.lr_schedule == "cosine":
        a, b = changed["max_iter"]
        notes.append(f"max_iter {a} -> {b}; the cosine goes on from its progress so far (the LR never rises)")
    elif "max_iter" in changed:
        a, b = changed["max_iter"]
        # keep the LR drops at the steps they had (fractions of the old length)
        # (a drop taken early by lr_by_time stays at its step; one at or past a shortened run's
        # new end would never come: it is left out)
        at = [min(s * a, taken[i]) if i < len(taken) else s * a for i, s in enumerate(sorted(old.lr_steps))]
        new = new.replace(lr_steps=tuple(x / b for x in at if x < b))
        drops = [round(x) for x in at if x < b]
        gone = [round(x) for x in at if x >= b]
        notes.append(f"max_iter {a} -> {b}" + (f"; the LR drops stay at steps {drops}" if drops else "")
                     + (f"; the drops at steps {gone} fall past the new end" if gone else ""))
    notes += [f"{k} {v[0]} -> {v[1]}" for k, v in changed.items() if k != "max_iter"]
    return new, notes


def run_config(config=None, overrides=(), *, values: dict | None = None, device="cpu", init=None,
               resume_state: dict | None = None, where: str = "run") -> tuple[Config, list[str]]:
    """The config of a training run and the notes that say how it was chosen.

    Parameters
    ----------
    config : Config, str or path, optional
        A Config, a YAML file or a packaged recipe name.
    overrides : sequence of "key=value"
    values : dict, optional
        Keyword overrides (e.g. ``classes``, ``backbone_weights`` from command-line options).
    device : str
        Where the run trains (picks the default recipe).
    init : path, optional
        Initial weights; without ``config`` their checkpoint's config is used.
    resume_state : dict, optional
        The stored training state of a run being resumed (``config`` inside).

    Raises
    ------
    ConfigError
        A config together with ``resume_state``; a refused override on resume; bad keys or values.
    """
    values = {k: v for k, v in (values or {}).items() if v is not None}
    if resume_state is not None:
        if config is not None:
            raise ConfigError(f"{where}: --config cannot be given with --resume (the run keeps its config; "
                              f"--set {' / '.join(RESUME_OVERRIDABLE[:2])}=... may change)")
        return _resumed(resume_state["config"], overrides, values, where, resume_state.get("lr_taken", ()))
    if isinstance(config, Config):
        return apply_overrides(config, overrides, **values), []
    if config is None and init is not None:
        ck = read_checkpoint(init)
        base = config_from_dict(ck["config"]).replace(backbone_weights=None)
        return apply_overrides(base, overrides, **values), [f"architecture and recipe from {init} (no --config given)"]
    notes = []
    if config is None:
        config = default_config_name(device)
        notes.append(f"no --config given: using the packaged '{config}' recipe for {device}")
    return apply_overrides(load_config(config), overrides, **values), notes
