"""Options and helpers shared by the densemap commands."""

from __future__ import annotations

import functools
import logging

import click

from densemap.errors import DensemapError

log = logging.getLogger("densemap")


def device_option(f):
    return click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda"]),
        default="auto",
        show_default=True,
        help="Where geodesics run: 'auto' uses CUDA when torch sees a GPU.",
    )(f)


def resolve_device(device: str) -> str:
    """The CLI's 'auto' device: CUDA when available (the library itself never picks CUDA)."""
    if device != "auto":
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise click.ClickException("--device cuda was requested but torch sees no CUDA device")
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def parse_sources(sources: str) -> int | str:
    """A ``--sources`` value: ``"all"`` or an integer number of geodesic sources per part."""
    if sources == "all":
        return sources
    try:
        return int(sources)
    except ValueError:
        raise click.BadParameter(f"expected 'all' or an integer, got {sources!r}", param_hint="--sources") from None


def library_errors(f):
    """Turn densemap's own errors into one clear line and a non-zero exit."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except DensemapError as exc:
            raise click.ClickException(str(exc)) from None
        except FileNotFoundError as exc:
            raise click.ClickException(f"{exc.filename}: no such file") from None

    return wrapper


def verbosity(ctx: click.Context) -> int:
    """0 = quiet, 1 = normal, 2 = verbose (from the group's -q/-v)."""
    return (ctx.find_root().obj or {}).get("verbosity", 1)
