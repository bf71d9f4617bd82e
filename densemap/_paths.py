"""Checked paths: inputs that say exactly what is wrong with them, outputs checked before any work.

Every reader of a user's file goes through :func:`check_input_file` (and :func:`read_text` /
:func:`read_json` for text), so a folder, a named pipe, a link loop, a missing file and binary
bytes each get their own one-line message naming the file. :func:`check_outputs` is what a
command runs on its output locations before it starts: each must be writable, none may be one
of the command's inputs, and no two outputs may be the same file. Standard library only.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, OutputError

__all__ = ["check_input_file", "read_text", "read_json", "Output", "check_outputs", "describe_os_error",
           "MAX_JSON_BYTES"]

# refuse text inputs larger than this before reading them (a JSON of this size would need
# several times as much memory as Python objects)
MAX_JSON_BYTES = 4 << 30

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def describe_os_error(exc: OSError) -> str:
    """A short lower-case reason for an ``OSError``: ``permission denied``, ``read-only file system``, ..."""
    reasons = {errno.EACCES: "permission denied", errno.EPERM: "operation not permitted (an immutable file or folder?)",
               errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device",
               errno.EDQUOT: "disk quota exceeded", errno.ELOOP: "a symbolic link loop",
               errno.ENOTDIR: "a part of the path is a file, not a folder", errno.EISDIR: "is a folder",
               errno.ENOENT: "no such file or folder", errno.ENAMETOOLONG: "file name too long",
               errno.EIO: "input/output error"}
    return reasons.get(exc.errno, (exc.strerror or str(exc)).lower())


def check_input_file(path: str | os.PathLike, *, what: str = "file", error: type = InputError) -> Path:
    """``path`` as a :class:`~pathlib.Path` when it is a readable regular file; else raise ``error``.

    The message names the path and the problem: no such file, a broken symbolic link, a link
    loop, a folder, a named pipe or device (never opened: reading a pipe would block),
    permission denied.

    Examples
    --------
    >>> import tempfile
    >>> check_input_file(tempfile.gettempdir(), what="mesh file")
    Traceback (most recent call last):
    ...
    densemap.errors.InputError: ...: is a folder, expected a mesh file
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ENOENT and os.path.islink(p):
            raise error(f"{p}: a symbolic link to a missing file ({os.readlink(p)})") from None
        if exc.errno == errno.ENOENT:
            raise error(f"{p}: no such file") from None
        raise error(f"{p}: cannot read the {what} ({describe_os_error(exc)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{p}: is a folder, expected a {what}")
    for test, kind in _KINDS:
        if test(st.st_mode):
            raise error(f"{p}: is {kind}, not a regular file; expected a {what}")
    if not os.access(p, os.R_OK):
        raise error(f"{p}: cannot read the {what} (permission denied)")
    return p


def read_text(path: str | os.PathLike, *, what: str = "file", error: type = InputError,
              max_bytes: int = MAX_JSON_BYTES) -> str:
    """The UTF-8 text of a file (a leading byte-order mark dropped), or ``error`` naming the first bad byte."""
    p = check_input_file(path, what=what, error=error)
    size = p.stat().st_size
    if size > max_bytes:
        raise error(f"{p}: {size / 2**30:.1f} GiB is larger than the {max_bytes / 2**30:.1f} GiB a {what} may be")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise error(f"{p}: cannot read the {what} ({describe_os_error(exc)})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{p}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); expected a {what}, "
                    "is this a binary file?") from None


def read_json(path: str | os.PathLike, *, what: str = "JSON file", error: type = InputError):
    """Parse a JSON file; every failure (binary bytes, syntax, nesting too deep) is one ``error``.

    ``NaN`` and ``Infinity`` are read (Python writes them); the callers' validators refuse
    them where a finite number is needed, naming the field.
    """
    text = read_text(path, what=what, error=error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply to read (more than ~{_depth_limit()} levels); expected a "
                    f"{what}") from None


def _depth_limit() -> int:
    import sys

    return sys.getrecursionlimit()


# ----------------------------------------------------------------------------- outputs
@dataclass(frozen=True)
class Output:
    """One output location of a command.

    Attributes
    ----------
    flag : str
        The option that names it (``-o``, ``--report``), used in messages.
    path : path-like
    kind : {"file", "dir"}
    writes : tuple of str
        For a folder, the names the command writes in it (each must not be an input).
    need_bytes : int
        Free space the outputs need (checked against the file system).
    """

    flag: str
    path: str | os.PathLike
    kind: str = "file"
    writes: tuple = ()
    need_bytes: int = 0


def _inputs(inputs: Mapping) -> list[tuple[str, Path]]:
    out = []
    for flag, val in inputs.items():
        if val is None:
            continue
        vals = [val] if isinstance(val, (str, os.PathLike)) else list(val)
        out += [(flag, Path(v)) for v in vals if v is not None]
    return out


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _inside(p: Path, folder: Path) -> bool:
    try:
        Path(os.path.realpath(p)).relative_to(os.path.realpath(folder))
        return True
    except ValueError:
        return False


def _nearest_existing(p: Path, flag: str) -> Path:
    """The nearest existing ancestor of ``p`` (``p`` itself if it exists); it must be a folder."""
    q = Path(os.path.abspath(p))
    while True:
        try:
            st = os.stat(q)
        except OSError as exc:
            if exc.errno in (errno.ENOENT,):
                if q.parent == q:
                    raise OutputError(f"{flag} {p}: no existing folder above it") from None
                q = q.parent
                continue
            if exc.errno == errno.ENOTDIR:
                q = q.parent
                continue
            raise OutputError(f"{flag} {p}: cannot use {q} ({describe_os_error(exc)})") from None
        if not stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{flag} {p}: {q} is a file, not a folder")
        return q


def _probe(folder: Path, flag: str, p: Path, need: int) -> None:
    """Create and remove a file in ``folder`` (access() is not enough: root, immutable, read-only)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".densemap-probe-", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"{flag} {p}: cannot write in {folder} ({describe_os_error(exc)})") from None
    if need:
        free = shutil.disk_usage(folder).free
        if free < need:
            raise OutputError(f"{flag} {p}: {free / 2**20:.1f} MiB free in {folder}, the outputs need about "
                              f"{need / 2**20:.1f} MiB")


def _check_one(o: Output) -> None:
    p = Path(o.path)
    try:
        st = os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputError(f"{o.flag} {p}: a symbolic link loop") from None
        if exc.errno == errno.ENOENT and os.path.islink(p):
            raise OutputError(f"{o.flag} {p}: a symbolic link to a missing {o.kind} ({os.readlink(p)})") from None
        st = None
    if st is not None:
        if o.kind == "file" and stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{o.flag} {p}: is a folder; expected a file name")
        if o.kind == "dir" and not stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{o.flag} {p}: is a file; expected a folder")
        for test, kind in _KINDS:
            if test(st.st_mode):
                raise OutputError(f"{o.flag} {p}: is {kind}, not a regular file")
    folder = _nearest_existing(p if o.kind == "dir" else p.parent, o.flag)
    _probe(folder, o.flag, p, o.need_bytes)


def check_outputs(outputs: Iterable[Output], inputs: Mapping | None = None) -> None:
    """Check output locations before any work; raise :class:`OutputError` naming the first problem.

    Parameters
    ----------
    outputs : iterable of Output
    inputs : mapping of flag -> path, list of paths or None
        The command's inputs. An input folder protects every file already in it.

    Raises
    ------
    OutputError
        An output that is not writable (read-only file system, permission, a file where a
        folder must be, a link loop, too little free space), one that is an input (or, for a
        folder, whose written names are inputs), or two outputs that are the same file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); src = d / "in.json"; _ = src.write_text("{}")
    >>> check_outputs([Output("-o", d / "out.json")], {"IN": src})
    >>> check_outputs([Output("-o", src)], {"IN": src})
    Traceback (most recent call last):
    ...
    densemap.errors.OutputError: -o ... is the input IN (...); refusing to overwrite the input file
    """
    outputs = [o for o in outputs if o.path is not None]
    ins = _inputs(inputs or {})
    files: list[tuple[str, Path]] = []
    for o in outputs:
        _check_one(o)
        p = Path(o.path)
        files += [(o.flag, p / n) for n in o.writes] if o.kind == "dir" else [(o.flag, p)]
    for flag, f in files:
        for iflag, i in ins:
            if _same(f, i):
                raise OutputError(f"{flag} {f} is the input {iflag} ({i}); refusing to overwrite the input file")
            if i.is_dir() and f.exists() and _inside(f, i):
                raise OutputError(f"{flag} {f} is a file inside the input folder {iflag} ({i}); refusing to "
                                  "overwrite an input")
    for k, (flag, f) in enumerate(files):
        for flag2, f2 in files[k + 1:]:
            if _same(f, f2):
                raise OutputError(f"{flag} and {flag2} are the same file ({f}); give them different names")
