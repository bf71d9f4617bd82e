"""Small file helpers shared by every writer: atomic writes, JSON of numpy values, hashes.

Nothing here imports more than the standard library and numpy, so every module
(torch-free or not) can use it.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_path", "streamed_output", "output_folder", "json_default", "json_finite", "file_sha256",
           "package_versions", "available_memory"]


class atomic_path:
    """Context manager yielding a temporary path beside ``path``; renamed onto it on success.

    Nothing is left half-written: on error the temporary file is removed. The file gets
    the mode a plain ``open`` would give it (``0o666`` less the umask), not ``mkstemp``'s
    private ``0o600``. The temporary's name holds the writer's process id, so the
    temporaries a killed process left beside ``path`` are removed by the next write.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> out.read_text()
    'hello'
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_dead(self.path.parent, f".{self.path.name}.")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.{os.getpid()}-", suffix=self.path.suffix,
                                   dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _remove_dead(folder: Path, prefix: str) -> None:
    """Remove ``prefix<pid>-*`` temporaries in ``folder`` whose writing process is gone."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix)]
    except OSError:
        return
    for n in names:
        head = n[len(prefix):].split("-", 1)[0]
        if head.isdigit() and int(head) != os.getpid() and not _pid_alive(int(head)):
            q = folder / n
            if q.is_dir() and not q.is_symlink():
                shutil.rmtree(q, ignore_errors=True)
            else:
                q.unlink(missing_ok=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported.

    Written with ctypes because the standard library has no atomic exchange; the fallback
    (two renames) leaves a moment without ``b``.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


class streamed_output:
    """Base of a writer that streams into an :class:`atomic_path` and is finished or abandoned.

    A subclass defines ``close()`` (finish the file: it appears under its name) and
    ``abort()`` (remove what was written); used as a context manager, a clean exit closes
    and an exception aborts.
    """

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class output_folder:
    """Context manager for a set of outputs that appear together or not at all.

    Yields a fresh hidden folder beside ``path`` to write every output into. On success the
    new set replaces the folder's previous one: the two folders are exchanged in one step when
    ``path`` holds nothing but a previous set (names in ``owned``), else the files are moved in
    one by one with the ``manifest`` (the file that lists the set) removed first and moved in
    last, so other files in ``path`` are kept. On error (or Ctrl-C) the hidden folder is
    removed and ``path`` is untouched; folders a killed process left are removed by the
    next run.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> with output_folder(out, owned=("a.txt", "report.json")) as tmp:
    ...     _ = (tmp / "a.txt").write_text("new")
    >>> sorted(p.name for p in out.iterdir())
    ['a.txt']
    """

    def __init__(self, path: str | os.PathLike, *, owned=(), manifest: str | None = None):
        self.path = Path(os.path.abspath(path))
        self.owned = set(owned)
        self.manifest = manifest

    def __enter__(self) -> Path:
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{self.path.name}.partial-"
        _remove_dead(parent, prefix)
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        try:
            self._commit()
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        return False

    def _commit(self) -> None:
        os.chmod(self.tmp, 0o777 & ~_umask())
        if not self.path.exists():
            os.rename(self.tmp, self.path)
            return
        present = set(os.listdir(self.path))
        cwd = os.path.realpath(os.getcwd())
        holds_cwd = cwd == os.path.realpath(self.path) or cwd.startswith(os.path.realpath(self.path) + os.sep)
        if present <= self.owned and not holds_cwd and _exchange(self.tmp, self.path):
            shutil.rmtree(self.tmp, ignore_errors=True)  # now holds the previous set
            return
        new = sorted(os.listdir(self.tmp), key=lambda n: n == self.manifest)  # the manifest last
        if self.manifest:
            (self.path / self.manifest).unlink(missing_ok=True)
        for name in sorted((present & self.owned) - set(new)):  # the previous set's leftovers
            _remove(self.path / name)
        for name in new:
            dest = self.path / name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(self.tmp / name, dest)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def available_memory() -> int | None:
    """Bytes of memory available to this process now (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def json_finite(o):
    """A copy of a JSON-like value with NaN and infinities as ``None`` (strict JSON has neither).

    Examples
    --------
    >>> json_finite({"a": float("nan"), "b": [1.0, float("inf")]})
    {'a': None, 'b': [1.0, None]}
    """
    if isinstance(o, float) or isinstance(o, np.floating):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, dict):
        return {k: json_finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_finite(v) for v in o]
    return o


def json_default(o):
    """``json.dumps`` fallback: numpy scalars and arrays as Python values, anything else as ``str``."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_versions(*packages: str) -> dict:
    """``{"densemap": ..., "numpy": ..., package: version or None}`` for provenance records."""
    from importlib.metadata import PackageNotFoundError, version

    from ._version import __version__

    out = {"densemap": __version__, "numpy": np.__version__}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out
