"""What the rendering functions return: :class:`Picture`, an image that shows itself in a notebook.

A :class:`Picture` holds the pixels (``numpy.asarray(picture)`` is the ``(H, W, 3)`` uint8
array), the PNG file it was saved to (if any), which renderer drew it and, when the
matplotlib fallback drew it, a note saying why. Jupyter displays it inline (``_repr_png_``;
with a note, ``_repr_html_`` shows the image and the note under it); ``picture.show()``
displays it from a script or a cell, and ``picture.save(path)`` writes it later.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np

from .._io import atomic_path

__all__ = ["Picture", "write_png"]


def _png_path(path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: pictures are written as PNG; expected a path ending in '.png'")
    return path


def _check_image(image) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
        raise ValueError(f"image must be an (H, W, 3|4) uint8 array, got shape {img.shape} dtype {img.dtype}")
    return np.ascontiguousarray(img)


def write_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an image to a PNG file atomically (temporary file beside it, then rename).

    Parameters
    ----------
    image : (H, W, 3) or (H, W, 4) uint8
    path : path-like
        Must end in ``.png``.

    Returns
    -------
    Path
    """
    path = _png_path(path)
    img = _check_image(image)
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format="PNG")
    return path


class Picture:
    """A rendered picture: its pixels, where it was saved, and how it was drawn.

    Parameters
    ----------
    image : (H, W, 3) or (H, W, 4) uint8
    path : Path, optional
        The PNG file it was saved to.
    renderer : {"vtk", "matplotlib"}
        ``"matplotlib"`` when no off-screen OpenGL backend was found and the fallback drew it.
    note : str, optional
        Why the fallback was used (shown under the picture in a notebook).

    Examples
    --------
    >>> import numpy as np
    >>> pic = Picture(np.zeros((2, 3, 3), np.uint8))
    >>> pic.size, np.asarray(pic).shape, pic.path is None
    ((3, 2), (2, 3, 3), True)
    """

    def __init__(self, image, *, path: Path | None = None, renderer: str = "vtk", note: str | None = None):
        self.image = _check_image(image)
        self.path = None if path is None else Path(path)
        self.renderer = renderer
        self.note = note

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])

    def __array__(self, dtype=None, copy=None):
        return self.image if dtype is None else self.image.astype(dtype)

    def __fspath__(self) -> str:
        if self.path is None:
            raise TypeError("this picture was not saved to a file; call .save(path) first")
        return os.fspath(self.path)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the picture as PNG (atomically); it then remembers ``path``."""
        self.path = write_png(self.image, path)
        return self.path

    def to_pil(self):
        """The picture as a ``PIL.Image.Image``."""
        from PIL import Image

        return Image.fromarray(self.image)

    def png(self) -> bytes:
        """The PNG-encoded bytes."""
        buf = io.BytesIO()
        self.to_pil().save(buf, format="PNG")
        return buf.getvalue()

    def show(self) -> None:
        """Display the picture: inline under IPython/Jupyter, else in the system's image viewer."""
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            get_ipython = None
        if get_ipython is not None and get_ipython() is not None:
            display(self)
        else:
            self.to_pil().show()

    def _repr_png_(self) -> bytes:
        return self.png()

    def _repr_html_(self) -> str | None:
        if not self.note:
            return None  # the front end then shows the PNG
        data = base64.b64encode(self.png()).decode("ascii")
        return (f'<img src="data:image/png;base64,{data}" width="{self.size[0]}"/>'
                f"<p><i>note: {html.escape(self.note)}</i></p>")

    def __repr__(self) -> str:
        where = f", saved to {str(self.path)!r}" if self.path else ""
        note = f"; note: {self.note}" if self.note else ""
        return f"Picture({self.size[0]}x{self.size[1]}, drawn by {self.renderer}{where}{note})"
