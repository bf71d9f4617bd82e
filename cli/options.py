"""Options and helpers shared by the densemap commands: defined once, used by every command."""

from __future__ import annotations

import functools
import logging

import click

from densemap.errors import DensemapError

log = logging.getLogger("densemap")


def device_option(what: str = "the computation"):
    """``--device auto|cpu|cuda``; ``what`` says in the help what runs there."""

    def deco(f):
        return click.option(
            "--device",
            type=click.Choice(["auto", "cpu", "cuda"]),
            default="auto",
            show_default=True,
            help=f"Where {what} runs: 'auto' uses CUDA when torch sees a GPU.",
        )(f)

    return deco


def threads_option(f):
    """``--threads N``: torch's CPU threads (set before any work)."""
    return click.option("--threads", type=click.IntRange(min=1), default=None,
                        help="torch CPU threads (default: torch's own choice).")(f)


def resolve_device(device: str, threads: int | None = None) -> str:
    """The CLI's 'auto' device: CUDA when available (the library itself never picks CUDA).

    Also applies ``--threads`` to torch when given.
    """
    if threads:
        import torch

        torch.set_num_threads(threads)
    if device == "cpu":
        return device
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda was requested but torch sees no CUDA device")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def parse_sources(sources: str) -> int | str:
    """A ``--sources`` value: ``"all"`` or an integer number of geodesic sources per part."""
    if sources == "all":
        return sources
    try:
        return int(sources)
    except ValueError:
        raise click.BadParameter(f"expected 'all' or an integer, got {sources!r}", param_hint="--sources") from None


def library_errors(f):
    """Turn the library's errors into one clear line and a non-zero exit.

    densemap's own errors and the ``ValueError``s the library raises for bad arguments
    (``unknown method 'foo'; expected ...``, ``sources per part must be a positive
    integer``) print their message; a missing file prints its name.
    """

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except (DensemapError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        except FileNotFoundError as exc:
            raise click.ClickException(f"{exc.filename}: no such file") from None

    return wrapper


def verbosity(ctx: click.Context) -> int:
    """0 = quiet, 1 = normal, 2 = verbose (from the group's -q/-v)."""
    return (ctx.find_root().obj or {}).get("verbosity", 1)
