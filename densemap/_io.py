"""Small file helpers shared by every writer: atomic writes, JSON of numpy values, hashes.

Nothing here imports more than the standard library and numpy, so every module
(torch-free or not) can use it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_path", "json_default", "file_sha256", "package_versions"]


class atomic_path:
    """Context manager yielding a temporary path beside ``path``; renamed onto it on success.

    Nothing is left half-written: on error the temporary file is removed. The file gets
    the mode a plain ``open`` would give it (``0o666`` less the umask), not ``mkstemp``'s
    private ``0o600``.

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
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=self.path.suffix, dir=self.path.parent)
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
