"""densemap's on-disk cache: where it lives, and arrays stored there by key.

The folder is ``$DENSEMAP_CACHE`` when set, else ``~/.cache/densemap``. Entries are
``.npz`` files named by a hash of their key (a JSON-able dict: mesh sha1, options,
format version), written atomically through :func:`densemap._io.atomic_path`: two
processes writing the same entry at once each write a private temporary file and
rename it into place, so a reader sees one complete file or none. A file that cannot be
read (truncated by a crash of an older writer, or from another version) counts as a
miss and is rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ._io import atomic_path

__all__ = ["cache_dir", "cache_key", "load_arrays", "save_arrays"]


def cache_dir(*parts: str) -> Path:
    """The cache folder (``$DENSEMAP_CACHE`` or ``~/.cache/densemap``), or a sub-folder of it.

    The folder is not created here; :func:`save_arrays` creates what it writes into.
    """
    root = os.environ.get("DENSEMAP_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "densemap"
    return base.joinpath(*parts)


def cache_key(key: dict) -> str:
    """A stable file stem for a JSON-able key: sha1 of its canonical JSON (24 hex digits)."""
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:24]


def _path(kind: str, key: dict) -> Path:
    return cache_dir(kind) / f"{cache_key(key)}.npz"


def load_arrays(kind: str, key: dict) -> dict[str, np.ndarray] | None:
    """The arrays stored under ``key`` in the ``kind`` sub-folder, or None (missing or unreadable)."""
    path = _path(kind, key)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, KeyError):
        return None
    stored = data.pop("key.json", None)
    if stored is None or json.loads(str(stored)) != json.loads(json.dumps(key, sort_keys=True, default=str)):
        return None  # a hash collision or a foreign file: treat as a miss
    return data


def save_arrays(kind: str, key: dict, arrays: dict[str, np.ndarray]) -> Path | None:
    """Store ``arrays`` under ``key`` (atomically); returns the path, or None if the cache is not writable."""
    path = _path(kind, key)
    payload = dict(arrays)
    payload["key.json"] = np.array(json.dumps(key, sort_keys=True, default=str))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **payload)
    except OSError:
        return None  # a read-only or full disk must not stop the computation
    return path
