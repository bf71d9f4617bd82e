"""Options and helpers shared by the densemap commands: defined once, used by every command."""

from __future__ import annotations

import errno
import functools
import logging
import sys
import traceback

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


def parse_rounds(rounds: str) -> int | str:
    """A ``--landmark-rounds`` value: ``"auto"`` or an integer >= 0."""
    if rounds == "auto":
        return rounds
    try:
        n = int(rounds)
    except ValueError:
        n = -1
    if n < 0:
        raise click.BadParameter(f"expected 'auto' or an integer >= 0, got {rounds!r}", param_hint="--landmark-rounds")
    return n


def parse_sources(sources: str) -> int | str:
    """A ``--sources`` value: ``"all"`` or an integer number of geodesic sources per part."""
    if sources == "all":
        return sources
    try:
        return int(sources)
    except ValueError:
        raise click.BadParameter(f"expected 'all' or an integer, got {sources!r}", param_hint="--sources") from None


def library_errors(f):
    """The one error boundary of every command: an anticipated failure is one line and exit 1.

    densemap's own errors and the ``ValueError``s the library raises for bad arguments print
    their message; ``OSError``s (missing file, permission, read-only file system, full disk,
    link loop) print the path and the reason; the failures of reading hostile input
    (``UnicodeDecodeError``, ``RecursionError``, ``OverflowError``, ``MemoryError``) say what
    they mean. Anything else is a bug: one line that says so. ``-v`` before the command
    prints the traceback first (to stderr).
    """

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            raise click.exceptions.Abort() from None
        except Exception as exc:  # the boundary: everything becomes one line
            ctx = click.get_current_context(silent=True)
            if ctx is not None and verbosity(ctx) > 1:
                traceback.print_exc(file=sys.stderr)
            raise click.ClickException(error_line(exc)) from None

    return wrapper


def error_line(exc: BaseException) -> str:
    """One line that says what went wrong (see :func:`library_errors`)."""
    from densemap._paths import describe_os_error

    if isinstance(exc, (DensemapError, ValueError)) and not isinstance(exc, UnicodeError):
        text = str(exc)
        if "Original Traceback" in text:  # re-raised from a DataLoader worker: the original last line
            text = text.strip().splitlines()[-1]
        return _one_line(text) or type(exc).__name__
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else "output"
        if exc.errno == errno.ENOENT:
            return f"{where}: no such file or folder"
        return f"{where}: {describe_os_error(exc)}"
    if isinstance(exc, UnicodeDecodeError):
        return f"cannot decode text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start} is not {exc.encoding}"
    if isinstance(exc, UnicodeError):
        return f"cannot encode or decode text ({_one_line(str(exc))})"
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to read"
    if isinstance(exc, OverflowError):
        return f"a number in the input is too large ({_one_line(str(exc))})"
    if isinstance(exc, MemoryError):
        return f"out of memory ({_one_line(str(exc)) or 'an allocation failed'}); the input is too large for this machine"
    return (f"internal error: {type(exc).__name__}: {_one_line(str(exc))[:300]} (a densemap bug: run with -v "
            "for the traceback and report it)")


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return "; ".join(lines)


def check_outputs(outputs, inputs=None) -> None:
    """Check the command's output locations before any work (:func:`densemap._paths.check_outputs`).

    ``outputs`` are :class:`densemap._paths.Output` s or ``(flag, path, kind)`` tuples.
    """
    from densemap._paths import Output, check_outputs as check

    check([o if isinstance(o, Output) else Output(*o) for o in outputs], inputs)


def echo_result(text: str) -> None:
    """A command's result: stdout, printed whatever ``-q`` says."""
    click.echo(text)


def echo_log(ctx: click.Context, text: str, *, level: int = 1) -> None:
    """A log line or note: stderr, silenced by ``-q`` (``level`` 2: only with ``-v``)."""
    if verbosity(ctx) >= level:
        click.echo(text, err=True)


def verbosity(ctx: click.Context) -> int:
    """0 = quiet, 1 = normal, 2 = verbose (from the group's -q/-v)."""
    return (ctx.find_root().obj or {}).get("verbosity", 1)
