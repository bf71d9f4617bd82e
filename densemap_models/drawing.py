"""Pictures of predictions: box IUV pasted into an image, and IUV colours, boxes and labels over a frame.

Used by ``densemap predict`` for the image outputs (``NAME_iuv.png``, ``NAME_overlay.png``)
and the frames of the overlay video.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["paste_iuv", "overlay", "CHART_COLOURS"]


def _chart_colours() -> np.ndarray:
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return (np.array([cmap(i % 20)[:3] for i in range(25)]) * 255).astype(np.uint8)


CHART_COLOURS = _chart_colours()  # (25, 3) uint8, index = chart (0 = background, unused)


def paste_iuv(shape, boxes, results) -> np.ndarray:
    """Image-size IUV from box results.

    Parameters
    ----------
    shape : (H, W)
    boxes : (n, 4) float
        x0, y0, x1, y1, by decreasing score (the first is drawn last, on top).
    results : list of n dicts with ``iuv`` (3, h, w) uint8 (:func:`~densemap_models.postprocess.chart_result`)

    Returns
    -------
    (H, W, 3) uint8
        I, U x 255, V x 255 (0 = background).

    Examples
    --------
    >>> iuv = np.zeros((3, 2, 2), np.uint8); iuv[0] = 5
    >>> paste_iuv((4, 4), [[1, 1, 3, 3]], [{"iuv": iuv}])[..., 0].tolist()
    [[0, 0, 0, 0], [0, 5, 5, 0], [0, 5, 5, 0], [0, 0, 0, 0]]
    """
    H, W = shape
    out = np.zeros((H, W, 3), np.uint8)
    for b, r in reversed(list(zip(boxes, results))):
        iuv = r["iuv"].transpose(1, 2, 0)
        x0, y0 = int(b[0]), int(b[1])
        ys, xs = slice(max(y0, 0), min(y0 + iuv.shape[0], H)), slice(max(x0, 0), min(x0 + iuv.shape[1], W))
        if ys.stop <= ys.start or xs.stop <= xs.start:
            continue
        patch = iuv[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
        fg = patch[..., 0] > 0
        out[ys, xs][fg] = patch[fg]
    return out


def overlay(image: np.ndarray, iuv: np.ndarray, boxes=(), scores=(), *, labels=None, caption: str | None = None
            ) -> Image.Image:
    """Charts coloured over the image, U/V iso-lines every 0.1, boxes with their scores.

    Parameters
    ----------
    image : (H, W, 3) uint8
    iuv : (H, W, 3) uint8
        From :func:`paste_iuv`.
    boxes : (n, 4) float
    scores : (n,) float
    labels : list of n str, optional
        Text per box instead of the bare score (e.g. ``"#3 0.87"`` with a track id).
    caption : str, optional
        A line at the top left (e.g. ``"no detection at score >= 0.5"``).
    """
    img = image.astype(np.float32).copy()
    fg = iuv[..., 0] > 0
    img[fg] = 0.45 * img[fg] + 0.55 * CHART_COLOURS[iuv[..., 0][fg]]
    for c in (1, 2):
        q = iuv[..., c].astype(np.int32) * 10 // 256
        edge = np.zeros_like(fg)
        edge[:, 1:] |= q[:, 1:] != q[:, :-1]
        edge[1:] |= q[1:] != q[:-1]
        img[edge & fg] = 255
    pil = Image.fromarray(img.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    texts = labels if labels is not None else [f"{s:.2f}" for s in scores]
    for b, t in zip(boxes, texts):
        draw.rectangle([float(v) for v in b], outline=(255, 255, 0))
        draw.text((float(b[0]) + 2, float(b[1]) + 1), t, fill=(255, 255, 0))
    if caption:
        draw.text((3, 2), caption, fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0))
    return pil
