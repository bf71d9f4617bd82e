"""Drawing COCO DensePose labels over an image, to check them by eye."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..annotation.coco import decode_rle, dp_mask_labels, read_coco
from ..errors import AnnotationError
from ..viz.palette import part_palette
from .dataset import MASK_GRID

__all__ = ["draw_annotations", "draw_annotation_file"]


def draw_annotations(image: np.ndarray, annotations: list[dict], *, point_radius: float | None = None) -> np.ndarray:
    """Four panels side by side: masks and boxes; coarse parts (``dp_masks``) and points by
    chart; points by U; points by V.

    Parameters
    ----------
    image : (H, W, 3) uint8
    annotations : list of dict
        COCO DensePose annotations of this image.

    Returns
    -------
    (H, 4 W, 3) uint8
    """
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    image = np.asarray(image, dtype=np.uint8)
    H, W = image.shape[:2]
    inst_col = (part_palette(max(len(annotations), 1)) * 255).astype(np.float64)
    coarse_col = part_palette(14) * 255
    chart_col = part_palette(24) * 255
    cmap = colormaps["viridis"]
    panels = [image.astype(np.float64).copy() for _ in range(4)]
    radius = point_radius or max(1.5, min(H, W) / 220)
    pts = []
    for j, a in enumerate(annotations):
        seg = a.get("segmentation")
        if isinstance(seg, dict):
            m = decode_rle(seg).astype(bool)
            panels[0][m] = 0.5 * panels[0][m] + 0.5 * inst_col[j]
        x, y, w, h = a["bbox"]
        lab = dp_mask_labels(a)
        if lab is not None and w >= 1 and h >= 1:
            xs = np.arange(int(np.floor(x)), int(np.ceil(x + w)))
            ys = np.arange(int(np.floor(y)), int(np.ceil(y + h)))
            xs, ys = xs[(xs >= 0) & (xs < W)], ys[(ys >= 0) & (ys < H)]
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
        x, y, w, h = a["bbox"]
        for d in draws:
            d.rectangle([x, y, x + w - 1, y + h - 1], outline=tuple(int(v) for v in inst_col[j]), width=2)
    for px, py, I, U, V in pts:
        for k in range(len(px)):
            box = [px[k] - radius, py[k] - radius, px[k] + radius, py[k] + radius]
            if I is not None:
                c = chart_col[int(I[k]) - 1] if 1 <= int(I[k]) <= 24 else np.array([128, 128, 128])
                draws[1].ellipse(box, fill=tuple(int(v) for v in c), outline=(0, 0, 0))
            for d, val in ((draws[2], U), (draws[3], V)):
                if val is not None:
                    c = np.asarray(cmap(float(val[k]))[:3]) * 255
                    d.ellipse(box, fill=tuple(int(v) for v in c), outline=(0, 0, 0))
    for d, title in zip(draws, ("masks + boxes", "dp_masks + points by chart (I)", "points by U", "points by V")):
        d.text((4, 3), title, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    return np.concatenate([np.asarray(im) for im in ims], axis=1)


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
        No annotated image, or no image with ``image_id``.
    """
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
    base = Path(annotations).parent
    dirs = [Path(images_dir)] if images_dir else [base / "images", base]
    name = info.get("file_name")
    found = next((d / name for d in dirs if name and (d / name).is_file()), None)
    if found is not None:
        from PIL import Image

        with Image.open(found) as im:
            image = np.asarray(im.convert("RGB"))
    else:
        image = np.full((int(info["height"]), int(info["width"]), 3), 128, np.uint8)
    path = write_png(draw_annotations(image, anns), out_png)
    n = sum(len(a.get("dp_x", [])) for a in anns)
    return DrawnImage(path, image_id, len(anns), n, found, [str(d) for d in dirs])
