"""Drawing COCO DensePose labels over an image, to check them by eye."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..annotation.coco import check_annotation, decode_rle, dp_mask_labels, has_densepose, read_coco
from ..errors import AnnotationError
from ..viz.palette import part_palette
from .dataset import MASK_GRID

__all__ = ["draw_annotations", "draw_annotation_file"]


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one small bitmap font
        return ImageFont.load_default()


def _colour_bar(draw, cmap, x0: int, y0: int, height: int, label: str, font) -> None:
    """A vertical colour bar (0 at the bottom, 1 at the top) with its label and ends."""
    width = max(8, height // 12)
    for k in range(height):
        c = np.asarray(cmap(1.0 - k / max(height - 1, 1))[:3]) * 255
        draw.line([(x0, y0 + k), (x0 + width, y0 + k)], fill=tuple(int(v) for v in c))
    draw.rectangle([x0, y0, x0 + width, y0 + height], outline=(0, 0, 0))
    text = dict(fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0), font=font, anchor="rm")
    draw.text((x0 - 4, y0), "1", **text)
    draw.text((x0 - 4, y0 + height), "0", **text)
    draw.text((x0 + width, y0 - 6), label, **{**text, "anchor": "rb"})


def draw_annotations(image: np.ndarray, annotations: list[dict], *, point_radius: float | None = None,
                     scale: int = 1) -> np.ndarray:
    """Four panels side by side: masks and boxes; coarse parts (``dp_masks``) and points by
    chart; points by U; points by V (the last two with a colour bar from 0 to 1).

    Parameters
    ----------
    image : (H, W, 3) uint8
    annotations : list of dict
        COCO DensePose annotations of this image (checked by the caller, see
        :func:`draw_annotation_file`).
    point_radius : float, optional
        Radius of the point dots in output pixels (default: 1/100 of the short side, >= 3).
    scale : int
        Each panel is the image enlarged this many times (nearest neighbour).

    Returns
    -------
    (scale H, 4 scale W, 3) uint8
    """
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    image = np.asarray(image, dtype=np.uint8)
    if scale > 1:
        image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    H, W = image.shape[:2]
    inst_col = (part_palette(max(len(annotations), 1)) * 255).astype(np.float64)
    coarse_col = part_palette(14) * 255
    chart_col = part_palette(24) * 255
    cmap = colormaps["viridis"]
    panels = [image.astype(np.float64).copy() for _ in range(4)]
    radius = point_radius or max(3.0, min(H, W) / 100)
    pts = []
    for j, a in enumerate(annotations):
        seg = a.get("segmentation")
        if isinstance(seg, dict):
            m = decode_rle(seg).astype(bool)
            if scale > 1:
                m = np.repeat(np.repeat(m, scale, axis=0), scale, axis=1)
            panels[0][m] = 0.5 * panels[0][m] + 0.5 * inst_col[j]
        x, y, w, h = (float(t) * scale for t in a["bbox"])
        lab = dp_mask_labels(a)
        if lab is not None and w >= 1 and h >= 1:
            xs = np.arange(max(int(np.floor(x)), 0), min(int(np.ceil(x + w)), W))
            ys = np.arange(max(int(np.floor(y)), 0), min(int(np.ceil(y + h)), H))
            gx = np.clip(((xs + 0.5 - x) / w * MASK_GRID).astype(np.int64), 0, MASK_GRID - 1)
            gy = np.clip(((ys + 0.5 - y) / h * MASK_GRID).astype(np.int64), 0, MASK_GRID - 1)
            sub = lab[np.ix_(gy, gx)]
            region = panels[1][np.ix_(ys, xs)]
            on = sub > 0
            region[on] = 0.45 * region[on] + 0.55 * coarse_col[sub[on] - 1]
            panels[1][np.ix_(ys, xs)] = region
        if "dp_x" in a and len(a["dp_x"]):
            px = x + np.asarray(a["dp_x"], float) * w / 256.0
            py = y + np.asarray(a["dp_y"], float) * h / 256.0
            pts.append((px, py, a.get("dp_I"), a.get("dp_U"), a.get("dp_V")))
    ims = [Image.fromarray(np.clip(p, 0, 255).astype(np.uint8)) for p in panels]
    draws = [ImageDraw.Draw(im) for im in ims]
    for j, a in enumerate(annotations):
        x, y, w, h = (float(t) * scale for t in a["bbox"])
        for d in draws:
            d.rectangle([x, y, x + max(w - 1, 0), y + max(h - 1, 0)], outline=tuple(int(v) for v in inst_col[j]),
                        width=max(2, scale))
    for px, py, I, U, V in pts:
        for k in range(len(px)):
            box = [px[k] - radius, py[k] - radius, px[k] + radius, py[k] + radius]
            if I is not None:
                c = chart_col[int(I[k]) - 1] if 1 <= I[k] <= 24 else np.array([128, 128, 128])
                draws[1].ellipse(box, fill=tuple(int(v) for v in c), outline=(0, 0, 0))
            for d, val in ((draws[2], U), (draws[3], V)):
                if val is not None:
                    c = np.asarray(cmap(float(np.clip(val[k], 0, 1)))[:3]) * 255
                    d.ellipse(box, fill=tuple(int(v) for v in c), outline=(0, 0, 0))
    titles = ("masks + boxes", "dp_masks + points, colour = chart I (1-24)", "points by U", "points by V")
    font = _font(max(11, min(H, W) // 28))
    for d, title in zip(draws, titles):
        d.text((6, 4), title, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0), font=font)
    bar = max(H // 2, 24)
    for d, label in ((draws[2], "U"), (draws[3], "V")):
        _colour_bar(d, cmap, W - max(8, bar // 12) - 6, (H - bar) // 2, bar, label, font)
    return np.concatenate([np.asarray(im) for im in ims], axis=1)


# panels are enlarged until their short side has at least this many pixels (readable dots)
MIN_PANEL = 512


def _check_annotations(where: str, info: dict, anns: list[dict]) -> tuple[int, int]:
    """The image's (width, height) from its record, and every annotation checked against it."""
    from ..annotation.validate import check_instance
    from .._images import MAX_IMAGE_PIXELS

    w, h = info.get("width"), info.get("height")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
        raise AnnotationError(f"{where}: image {info.get('id')} has no valid width and height ({w!r}, {h!r})")
    if w * h > MAX_IMAGE_PIXELS:
        raise AnnotationError(f"{where}: image {info.get('id')} is {w} x {h} pixels, more than the "
                              f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels an image may have")
    for a in anns:
        err = check_instance(a, w, h)
        if err is None and has_densepose(a):
            err = check_annotation(a, n_vertices=None, ref_models=(a.get("ref_model"),)).error
        if err:
            raise AnnotationError(f"{where}: annotation id {a.get('id')} (image {info.get('id')}): {err}")
    return w, h


@dataclass
class DrawnImage:
    """What :func:`draw_annotation_file` drew."""

    path: Path
    image_id: object
    instances: int
    points: int
    image_file: Path | None  # None: the image was not found and the labels were drawn on grey
    searched: list


def draw_annotation_file(annotations: str | os.PathLike, out_png: str | os.PathLike, *, image_id=None,
                         images_dir: str | os.PathLike | None = None) -> DrawnImage:
    """Draw the labels of one image of a COCO DensePose file (:func:`draw_annotations`) into a PNG.

    Parameters
    ----------
    annotations : path-like
    out_png : path-like
    image_id : optional
        Default: the first image that has annotations.
    images_dir : path-like, optional
        Folder of the image files (default: ``images/`` beside the file, then its own folder).
        Without the image file the labels are drawn on grey.

    Raises
    ------
    AnnotationError
        No annotated image, no image with ``image_id``, an image record without a valid
        size, or an annotation whose box, mask or points do not fit the image (checked
        before anything is allocated: a 1e12-pixel box is an error, not 7 TiB).
    InputError
        The image file is not an image, is corrupt, or has more pixels than allowed.
    """
    from .._images import read_image
    from ..viz import write_png

    data = read_coco(annotations)
    images = {im.get("id"): im for im in data.get("images", [])}
    if image_id is None:
        with_anns = [a.get("image_id") for a in data["annotations"] if a.get("image_id") in images]
        if not with_anns:
            raise AnnotationError(f"{annotations}: no annotation refers to an image")
        image_id = with_anns[0]
    if image_id not in images:
        some = sorted(k for k in images if isinstance(k, int))[:5]
        raise AnnotationError(f"{annotations}: no image with id {image_id} (ids start {some})")
    info = images[image_id]
    anns = [a for a in data["annotations"] if a.get("image_id") == image_id]
    w, h = _check_annotations(str(annotations), info, anns)
    base = Path(annotations).parent
    dirs = [Path(images_dir)] if images_dir else [base / "images", base]
    name = info.get("file_name")
    found = next((d / name for d in dirs if isinstance(name, str) and name and (d / name).is_file()), None)
    if found is not None:
        image = read_image(found)
        if image.shape[:2] != (h, w):
            raise AnnotationError(f"{annotations}: image {image_id} is {w} x {h} in the annotations but {found} is "
                                  f"{image.shape[1]} x {image.shape[0]}")
    else:
        image = np.full((h, w, 3), 128, np.uint8)
    scale = int(min(max(1, -(-MIN_PANEL // min(h, w))), 8))
    path = write_png(draw_annotations(image, anns, scale=scale), out_png)
    n = sum(len(a.get("dp_x", [])) for a in anns)
    return DrawnImage(path, image_id, len(anns), n, found, [str(d) for d in dirs])
