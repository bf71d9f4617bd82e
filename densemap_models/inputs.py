"""The inputs of ``densemap predict``: files and folders -> media items with mirrored output paths; sharding.

:func:`collect_inputs` expands each input (an image, a video, or a folder searched
recursively for both) into :class:`MediaItem` s, each with a relative path ``rel`` that
mirrors where it lies: relative to the folder for a single folder, else relative to the
deepest folder holding every input. Outputs are named from ``rel`` (``DIR/<rel
parent>/<stem>.json`` for a clip, ``..._iuv.png`` for an image), so two ``000002.png``
in different folders cannot collide; a collision that remains (``a.mp4`` beside
``a.avi``, or ``x.png`` beside ``x.jpg``) is an error raised before any work.

:func:`shard` gives the items of one ``torchrun`` rank: a deterministic round robin over
the sorted items.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from densemap.errors import DensemapError

from .video import IMAGE_SUFFIXES, VIDEO_SUFFIXES

__all__ = ["MediaItem", "collect_inputs", "output_paths", "shard", "rank_world"]

Kind = Literal["image", "video"]


@dataclass(frozen=True)
class MediaItem:
    """One input file: ``path`` on disk, ``rel`` (POSIX, mirrored into the output folder), ``kind``."""

    path: Path
    rel: str
    kind: Kind

    @property
    def stem(self) -> str:
        """The output stem: ``rel`` without its suffix (``site1/cam2/clip``)."""
        r = Path(self.rel)
        return (r.parent / r.stem).as_posix()


def _kind(p: Path) -> Kind | None:
    s = p.suffix.lower()
    return "video" if s in VIDEO_SUFFIXES else "image" if s in IMAGE_SUFFIXES else None


def output_paths(item: MediaItem, out_dir, *, overlay: bool = False, surface: bool = False) -> list[Path]:
    """The files ``densemap predict`` writes for one item.

    A clip: its JSON [+ the overlay mp4]; an image: two PNGs; with ``surface``, last, the
    ``_surface.npz`` of either.
    """
    base = Path(out_dir) / item.stem
    if item.kind == "video":
        out = [base.with_name(base.name + ".json")] + ([base.with_name(base.name + "_overlay.mp4")] if overlay else [])
    else:
        out = [base.with_name(base.name + "_iuv.png"), base.with_name(base.name + "_overlay.png")]
    return out + ([base.with_name(base.name + "_surface.npz")] if surface else [])


def collect_inputs(inputs, out_dir=None, *, overlay: bool = False, surface: bool = False) -> list[MediaItem]:
    """Expand files and folders into media items (sorted by ``rel``), checking that no outputs collide.

    Parameters
    ----------
    inputs : sequence of path-like
        Images, videos (``.mp4 .avi .asf .mov .mkv``, any case) and folders (searched
        recursively; hidden files and folders are skipped, and so is ``out_dir`` itself).
    out_dir : path-like, optional
        The output folder (files under it are never inputs).
    overlay : bool
        Whether clips write an overlay video too (its name takes part in the collision check).
    surface : bool
        Whether every item writes a ``_surface.npz`` too (likewise).

    Returns
    -------
    list of MediaItem

    Raises
    ------
    DensemapError
        A missing input, a file that is neither image nor video, or two inputs that would
        write the same output file (the message names both).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for rel in ("a/000002.png", "b/000002.png", "b/c/clip.MP4", "notes.txt"):
    ...     (root / rel).parent.mkdir(parents=True, exist_ok=True); _ = (root / rel).write_bytes(b"")
    >>> [(m.rel, m.kind) for m in collect_inputs([root])]
    [('a/000002.png', 'image'), ('b/000002.png', 'image'), ('b/c/clip.MP4', 'video')]
    """
    out_abs = Path(out_dir).resolve() if out_dir is not None else None
    found: dict[Path, Path] = {}  # absolute file -> its base folder
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            raise DensemapError(f"{p}: no such file or folder")
        if p.is_dir():
            base = p.resolve()
            for root, dirs, files in os.walk(base):
                r = Path(root)
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (out_abs is None or r / d != out_abs))
                for f in sorted(files):
                    q = r / f
                    if not f.startswith(".") and _kind(q):
                        found.setdefault(q, base)
        else:
            if _kind(p) is None:
                raise DensemapError(f"{p}: not an image or video (expected one of "
                                    f"{', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)})")
            found.setdefault(p.resolve(), p.resolve().parent)
    if not found:
        raise DensemapError(f"no images or videos in {', '.join(str(i) for i in inputs)}")
    bases = set(found.values())
    common = Path(os.path.commonpath([str(b) for b in bases]))
    items = sorted((MediaItem(f, f.relative_to(common).as_posix(), _kind(f)) for f in found), key=lambda m: m.rel)
    root = Path(out_dir or ".")
    reserved = MediaItem(Path("densemap predict"), "", "image")  # names the run writes itself
    seen: dict[Path, MediaItem] = {root / "results.json": reserved, root / "summary.csv": reserved}
    for it in items:
        for o in output_paths(it, root, overlay=overlay, surface=surface):
            if o in seen:
                raise DensemapError(f"outputs collide: {seen[o].path} and {it.path} would both write "
                                    f"{o.relative_to(root)}; rename one or predict them separately")
            seen[o] = it
    return items


def rank_world() -> tuple[int, int]:
    """``(rank, world size)`` of this process under ``torchrun`` (``(0, 1)`` otherwise)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def shard(items: list, rank: int, world: int) -> list:
    """The items of ``rank`` out of ``world``: ``items[rank::world]`` (callers pass them sorted).

    Examples
    --------
    >>> shard(list("abcde"), 1, 2)
    ['b', 'd']
    """
    if not (world >= 1 and 0 <= rank < world):
        raise ValueError(f"rank must be in 0..{world - 1}, got {rank}")
    return list(items[rank::world])
