"""Checks of a COCO instance against its image: box, RLE and polygon masks, DensePose points.

pycocotools decodes whatever it is given: an RLE whose runs do not add up to ``h * w``
decodes to uninitialised memory, a box of 1e12 pixels is a box. These checks run before
anything is drawn, allocated or trained on, and each returns the first problem as a phrase
(``None`` when valid) for the caller to prefix with the file and the annotation:

* :func:`rle_counts` decodes the run lengths of an RLE (COCO's compressed string or a
  list) and checks they are non-negative and cover the mask exactly;
* :func:`check_rle` checks an RLE dict against the size it must have;
* :func:`check_instance` checks ``bbox``, ``segmentation`` and the DensePose point fields
  of one annotation against its image's width and height.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["rle_counts", "check_rle", "check_bbox", "check_instance", "BOX_SLACK"]

# a box may reach this far outside its image (fractions of the image size; annotators' and
# detectors' boxes often overhang a little)
BOX_SLACK = 0.5


def _string_counts(s: str) -> np.ndarray:
    """Run lengths of COCO's compressed RLE string (the LEB128-like code of pycocotools'
    ``rleFrString``), vectorised; ``ValueError`` on a character outside the code."""
    c = np.frombuffer(s.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, np.int64)
    if c.min() < 0 or c.max() > 63:
        k = int(np.flatnonzero((c < 0) | (c > 63))[0])
        raise ValueError(f"character {s[k]!r} at {k} is not in the RLE code")
    more = (c & 0x20) != 0
    if more[-1]:
        raise ValueError("the last run length is cut off")
    ends = np.flatnonzero(~more)
    starts = np.r_[0, ends[:-1] + 1]
    k = np.arange(len(c)) - np.repeat(starts, ends - starts + 1)
    if k.max() > 11:
        raise ValueError("a run length is too long")
    x = np.add.reduceat((c & 0x1F) << (5 * k), starts)
    neg = (c[ends] & 0x10) != 0
    x = np.where(neg, x - (np.int64(1) << (5 * (ends - starts + 1))), x)
    cnts = x.copy()
    if len(x) > 3:  # runs from the fourth on are stored as differences to the run two before
        cnts[1::2] = np.cumsum(x[1::2])
        cnts[2::2] = np.cumsum(x[2::2])
    return cnts


def rle_counts(m: dict) -> np.ndarray:
    """(n,) int64 run lengths of an RLE dict, checked to cover ``size`` exactly.

    Raises
    ------
    ValueError
        Not an RLE, counts that are not the COCO code or non-negative integers, or runs
        that do not add up to ``h * w`` (pycocotools would read past them).

    Examples
    --------
    >>> import numpy as np
    >>> from densemap.annotation.coco import encode_rle
    >>> m = np.zeros((4, 5), np.uint8); m[1:3, 2:4] = 1
    >>> rle_counts(encode_rle(m)).tolist()
    [9, 2, 2, 2, 5]
    >>> rle_counts({"size": [4, 5], "counts": "3"})
    Traceback (most recent call last):
    ...
    ValueError: the runs add up to 3 pixels, not 4 x 5 = 20
    """
    if not isinstance(m, dict) or "counts" not in m or "size" not in m:
        raise ValueError("not an RLE {'counts', 'size'}")
    size = m["size"]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1 << 20 for v in size)):
        raise ValueError(f"size must be [height, width], got {str(size)[:40]}")
    counts = m["counts"]
    if isinstance(counts, (bytes, str)):
        try:
            text = counts.decode("ascii") if isinstance(counts, bytes) else counts
            cnts = _string_counts(text)
        except UnicodeError:
            raise ValueError("counts are not ASCII") from None
    elif isinstance(counts, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
            raise ValueError("counts must be integers")
        if any(v < 0 or v > 1 << 40 for v in counts):
            raise ValueError("counts must be non-negative run lengths")
        cnts = np.asarray(counts, dtype=np.int64)
    else:
        raise ValueError(f"counts must be a string or a list, got {type(counts).__name__}")
    if cnts.size and cnts.min() < 0:
        raise ValueError(f"run {int(np.argmin(cnts))} has a negative length")
    h, w = size
    total = int(cnts.sum()) if cnts.size else 0
    if total != h * w:
        raise ValueError(f"the runs add up to {total} pixels, not {h} x {w} = {h * w}")
    return cnts


def check_rle(m, shape: tuple[int, int], what: str) -> str | None:
    """The first problem of an RLE that must be ``shape = (h, w)``, or None."""
    try:
        rle_counts(m)
    except ValueError as exc:
        return f"{what} is not a valid RLE ({exc})"
    if list(m["size"]) != list(shape):
        return f"{what} is {m['size'][1]} x {m['size'][0]} but must be {shape[1]} x {shape[0]} (width x height)"
    return None


def _finite_numbers(v, n: int | None = None) -> bool:
    if not isinstance(v, (list, tuple)) or (n is not None and len(v) != n):
        return False
    try:
        return all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
    except OverflowError:
        return False


def check_bbox(bbox, width: int, height: int) -> str | None:
    """The first problem of ``[x, y, w, h]`` in a ``width`` x ``height`` image, or None.

    The box must be 4 finite numbers, of non-negative size, and lie within the image up to
    :data:`BOX_SLACK` of its size on each side.
    """
    if not _finite_numbers(bbox, 4):
        return f"bbox must be 4 finite numbers [x, y, w, h], got {str(bbox)[:60]}"
    x, y, w, h = (float(t) for t in bbox)
    if w < 0 or h < 0:
        return f"bbox {[x, y, w, h]} has a negative width or height"
    sx, sy = BOX_SLACK * width, BOX_SLACK * height
    if x < -sx or y < -sy or x + w > width + sx or y + h > height + sy:
        return f"bbox [{x:g}, {y:g}, {w:g}, {h:g}] lies outside the {width} x {height} image"
    return None


def _check_segmentation(seg, width: int, height: int) -> str | None:
    if seg is None or seg == [] or seg == {}:
        return None
    if isinstance(seg, dict):
        try:
            rle_counts(seg)
        except ValueError as exc:
            return f"segmentation is not a valid RLE ({exc})"
        if list(seg["size"]) != [height, width]:
            return (f"segmentation is {seg['size'][1]} x {seg['size'][0]} but the image is {width} x {height} "
                    "(width x height)")
        return None
    if isinstance(seg, list):
        for k, poly in enumerate(seg):
            if not _finite_numbers(poly) or len(poly) % 2:
                return f"segmentation[{k}] must be a polygon: an even number of finite coordinates"
        return None
    return f"segmentation must be an RLE or a list of polygons, got {type(seg).__name__}"


def check_instance(ann: dict, width: int, height: int, *, points: bool = True) -> str | None:
    """The first problem of one annotation in its ``width`` x ``height`` image, or None.

    Checks ``bbox`` (:func:`check_bbox`), ``segmentation`` (RLE of the image's size, or
    polygons of finite numbers) and, with ``points``, that the DensePose point fields are
    lists of finite numbers of one length (their ranges are :func:`check_annotation`'s).
    """
    err = check_bbox(ann.get("bbox"), width, height)
    if err:
        return err
    err = _check_segmentation(ann.get("segmentation"), width, height)
    if err or not points:
        return err
    n = None
    for key in ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V"):
        if key not in ann:
            continue
        v = ann[key]
        if not isinstance(v, list):
            return f"{key} must be a list, got {type(v).__name__}"
        if not _finite_numbers(v):
            k = next(i for i, x in enumerate(v) if not _finite_numbers([x]))
            return f"{key} is not a number at point {k}: {str(v[k])[:30]}"
        if n is not None and len(v) != n:
            return f"the point lists differ in length ({key} has {len(v)}, expected {n})"
        n = len(v)
    return None
