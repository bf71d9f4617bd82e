"""Reading image files a user gives: checked before decoding, one clear error for every failure.

A PNG of a hundred bytes can declare 12000 x 12000 pixels; decoding it would take 430 MB and
the models would then try to resize it. :func:`image_size` reads only the header and
:func:`read_image` refuses an image above :data:`MAX_IMAGE_PIXELS` before decoding it, and
turns "not an image", truncated and corrupt files into :class:`~densemap.errors.InputError`
naming the file.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ._paths import check_input_file
from .errors import InputError

__all__ = ["MAX_IMAGE_PIXELS", "image_size", "read_image"]

# the most pixels an input image may have (100 megapixels: 10000 x 10000, twice a 50 MP camera's)
MAX_IMAGE_PIXELS = 100_000_000


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is checked next
            return Image.open(path)
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file (PIL cannot identify it)") from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: the image declares too many pixels ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{path}: cannot read the image ({exc})") from None


def image_size(path: str | os.PathLike, *, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[int, int]:
    """``(width, height)`` from the file's header, checked against ``max_pixels`` (nothing decoded).

    Raises
    ------
    InputError
        Missing or unreadable file, not an image, or more than ``max_pixels`` pixels.

    Examples
    --------
    >>> import tempfile, pathlib, zlib, struct
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "bomb.png"
    >>> ihdr = struct.pack(">IIBBBBB", 12000, 12000, 8, 2, 0, 0, 0)
    >>> chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    >>> _ = p.write_bytes(b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    >>> image_size(p)
    Traceback (most recent call last):
    ...
    densemap.errors.InputError: ...bomb.png: 12000 x 12000 pixels (144.0 megapixels) is more than the 100.0 megapixels an input image may have
    """
    p = check_input_file(path, what="image file", error=InputError)
    im = _open(p)
    with im:
        w, h = im.size
    _check_pixels(p, w, h, max_pixels)
    return int(w), int(h)


def _check_pixels(p: Path, w: int, h: int, max_pixels: int) -> None:
    if w < 1 or h < 1:
        raise InputError(f"{p}: the image is {w} x {h} pixels")
    if w * h > max_pixels:
        raise InputError(f"{p}: {w} x {h} pixels ({w * h / 1e6:.1f} megapixels) is more than the "
                         f"{max_pixels / 1e6:.1f} megapixels an input image may have")


def read_image(path: str | os.PathLike, *, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of an image file, its size checked before decoding.

    Raises
    ------
    InputError
        Missing, not an image, truncated or corrupt, or more than ``max_pixels`` pixels.
    """
    p = check_input_file(path, what="image file", error=InputError)
    im = _open(p)
    with im:
        _check_pixels(p, *im.size, max_pixels)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return np.asarray(im.convert("RGB"))
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise InputError(f"{p}: cannot decode the image ({exc}); the file is truncated or corrupt") from None
