"""Training refuses garbage: every image and annotation of a dataset checked when it is built.

A NaN ``dp_U`` makes every step's loss NaN, a 1e12-pixel box a loss of 1e8, a ``dp_I`` of 99
or a ``dp_x`` of 1e9 a target that is not one, and a 100-byte PNG may declare 12000 x 12000
pixels. :func:`check_dataset` finds all of them before the first step:

* each image record: an id, a file name, a positive integer width and height; the file's
  header (read, not decoded) must be an image of that size under
  :data:`densemap._images.MAX_IMAGE_PIXELS`;
* each annotation: ``bbox``, ``segmentation`` and the point lists against the image
  (:func:`densemap.annotation.validate.check_instance`), then the DensePose fields
  (:func:`densemap.annotation.coco.check_annotation`: chart ids in 1..24, U and V in
  [0, 1], ``dp_x``/``dp_y`` in [0, 256], ``dp_masks`` valid RLEs); a crowd annotation
  (``iscrowd``, an ignore region in training) only its ``bbox``.

With ``invalid="error"`` (the default) the first problem is a
:class:`~densemap.errors.AnnotationError` naming the file, the image and the annotation; with
``invalid="drop"`` invalid points and annotations are dropped and counted.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from densemap._images import MAX_IMAGE_PIXELS, image_size
from densemap._validate import check_choice
from densemap.annotation.coco import POINT_FIELDS, check_annotation, has_densepose
from densemap.annotation.validate import check_bbox, check_instance
from densemap.errors import AnnotationError, DensemapError

__all__ = ["check_dataset", "INVALID"]

log = logging.getLogger(__name__)

INVALID = ("error", "drop")


def _image_record(im: dict, where: str) -> tuple[int, int]:
    w, h = im.get("width"), im.get("height")
    name = im.get("file_name")
    if not isinstance(name, str) or not name:
        raise AnnotationError(f"{where}: image {im.get('id')!r} has no file_name")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
        raise AnnotationError(f"{where}: image {im.get('id')!r} ({name}) has no valid width and height "
                              f"({str(w)[:20]}, {str(h)[:20]})")
    if w * h > MAX_IMAGE_PIXELS:
        raise AnnotationError(f"{where}: image {im.get('id')!r} ({name}) is {w} x {h} pixels, more than the "
                              f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels an image may have")
    return w, h


def _check_files(images: list[dict], root: Path, where: str) -> None:
    """Every image file's header: an image, of the size its record says (threads: it is I/O)."""
    def one(im):
        path = Path(im.get("_root", root)) / im["file_name"]
        try:
            size = image_size(path)
        except DensemapError as exc:
            return f"{where}: image {im.get('id')!r}: {exc}"
        if size != (im["width"], im["height"]):
            return (f"{where}: image {im.get('id')!r} ({im['file_name']}) is {im['width']} x {im['height']} in the "
                    f"annotations but the file is {size[0]} x {size[1]}")
        return None

    with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 2) * 2)) as pool:
        for err in pool.map(one, images):
            if err:
                raise AnnotationError(err)


def _point_problem(ann: dict) -> tuple[str | None, list]:
    """(whole-annotation error, per-point reasons) of the DensePose fields."""
    if not has_densepose(ann):
        return None, []
    chk = check_annotation(ann, n_vertices=None, ref_models=(ann.get("ref_model"),))
    return chk.error, chk.reasons


def _kind(reason: str) -> str:
    """A reason without its values, to count alike ones together."""
    return re.sub(r"\[[^\]]*\]|-?\d[\d.e+-]*|'[^']*'|: .*$", "#", reason).replace("# #", "#")[:80]


def check_dataset(images: list[dict], anns: dict, root: str | os.PathLike, *, where: str,
                  invalid: Literal["error", "drop"] = "error") -> Counter:
    """Check (and with ``invalid="drop"`` clean, in place) the images and annotations of a dataset.

    Parameters
    ----------
    images : list of dict
        COCO image records (a ``_root`` key overrides ``root`` for that image).
    anns : dict
        Image id -> list of its annotations; invalid ones are removed with ``"drop"``.
    root : path-like
        Folder of the image files.
    where : str
        The annotation file, for messages.
    invalid : {"error", "drop"}

    Returns
    -------
    Counter
        Dropped annotations and points per reason (empty with ``"error"``).

    Raises
    ------
    AnnotationError
        The first bad image or (with ``"error"``) annotation: file, image id and file name,
        annotation id, the field and the offending value.
    """
    check_choice("invalid", invalid, INVALID)
    dropped: Counter = Counter()
    sizes = {}
    for im in images:
        sizes[im.get("id")] = _image_record(im, where)
    _check_files(images, Path(root), where)
    for im in images:
        w, h = sizes[im.get("id")]
        keep = []
        for a in anns.get(im.get("id"), []):
            crowd = bool(a.get("iscrowd", 0))  # an ignore region: only its box is read
            err = check_bbox(a.get("bbox"), w, h) if crowd else check_instance(a, w, h, points=False)
            reasons = []
            if err is None and not crowd:  # points: per point
                err, reasons = _point_problem(a)
            bad_points = [k for k, r in enumerate(reasons) if r]
            if err is None and not bad_points:
                keep.append(a)
                continue
            what = err or reasons[bad_points[0]]
            if invalid == "error":
                at = "" if err else f" point {bad_points[0]}"
                raise AnnotationError(f"{where}: image {im.get('id')!r} ({im['file_name']}), annotation id "
                                      f"{a.get('id')!r}{at}: {what} (--set invalid_annotations=drop drops such "
                                      "annotations and points, counted)")
            if err:
                dropped[f"annotation: {_kind(err)}"] += 1
                continue
            ok = [k for k, r in enumerate(reasons) if not r]
            dropped.update(f"point: {_kind(reasons[k])}" for k in bad_points)
            keep.append({**a, **{f: [a[f][k] for k in ok] for f in POINT_FIELDS if f in a}})
        if im.get("id") in anns:
            anns[im.get("id")] = keep
    if dropped:
        log.warning("%s: dropped %s", where, ", ".join(f"{n} ({r})" for r, n in dropped.most_common()))
    return dropped
