"""COCO DensePose JSON: reading, writing and validating the DensePose fields of an instance.

The structure is the one ``pycocotools.coco.COCO`` loads (``images``, ``annotations``,
``categories``, ``info``, ``licenses``); only the DensePose fields of an annotation are
interpreted here (``dp_x``, ``dp_y``, ``dp_I``, ``dp_U``, ``dp_V``, ``dp_vertex``,
``ref_model``, ``dp_masks``), everything else passes through untouched.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from densemap._io import atomic_path
from densemap._paths import read_json
from densemap.errors import AnnotationError

from .validate import check_rle

__all__ = [
    "POINT_FIELDS",
    "DP_FIELDS",
    "N_CHARTS",
    "N_MASKS",
    "MASK_SIZE",
    "read_coco",
    "write_coco",
    "AnnotationCheck",
    "check_annotation",
    "has_densepose",
    "REFERENCE_NAMES",
    "COARSE_OF_CHART",
    "encode_rle",
    "encode_rles",
    "decode_rle",
    "rle_for_pycocotools",
    "dp_mask_labels",
]

POINT_FIELDS = ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V", "dp_vertex")
DP_FIELDS = POINT_FIELDS + ("ref_model", "dp_masks")
N_CHARTS = 24
N_MASKS = 14
MASK_SIZE = [256, 256]
XY_MAX = 256.0
# ref_model names of the embedded meshes
REFERENCE_NAMES = {"chimp": "densemap_chimp", "human": "densemap_human"}
# DensePose chart (1..24) -> coarse part (1..14) of dp_masks; index 0 = background
COARSE_OF_CHART = np.array([0, 1, 1, 2, 3, 4, 5, 6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11, 12, 13, 12, 13, 14, 14])


def read_coco(path: str | os.PathLike) -> dict:
    """Read a COCO JSON file and check its top-level structure.

    Raises
    ------
    AnnotationError
        Unreadable file (missing, a folder, a pipe, binary, nested too deeply), invalid
        JSON, or ``annotations`` / ``images`` not lists of objects.
    """
    data = read_json(path, what="COCO annotation file (JSON)", error=AnnotationError)
    check_structure(data, str(path))
    return data


def check_structure(data, where: str = "annotations") -> None:
    """Raise :class:`AnnotationError` unless ``data`` is a COCO dict with a list of annotation objects."""
    if not isinstance(data, dict):
        raise AnnotationError(f"{where}: expected a COCO JSON object, got {type(data).__name__}")
    if "annotations" not in data:
        raise AnnotationError(f"{where}: no 'annotations' field")
    for key in ("annotations", "images", "categories"):
        if key in data:
            items = data[key]
            if not isinstance(items, list):
                raise AnnotationError(f"{where}: '{key}' must be a list, got {type(items).__name__}")
            bad = [i for i, a in enumerate(items) if not isinstance(a, dict)]
            if bad:
                raise AnnotationError(f"{where}: {key}[{bad[0]}] must be an object, got {type(items[bad[0]]).__name__}")
    if "info" in data and not isinstance(data["info"], dict):
        raise AnnotationError(f"{where}: 'info' must be an object, got {type(data['info']).__name__}")


def write_coco(data: dict, path: str | os.PathLike) -> Path:
    """Write COCO JSON atomically (a temporary file renamed onto ``path``)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            json.dump(data, fh, separators=(",", ":"))
    return path


def has_densepose(ann: dict) -> bool:
    """Whether an annotation carries any DensePose field."""
    return any(k in ann for k in DP_FIELDS)


@dataclass
class AnnotationCheck:
    """What :func:`check_annotation` found for one annotation.

    Attributes
    ----------
    error : str or None
        Why the annotation is invalid as a whole (all its points are dropped).
    n_points : int
    kind : {"chart", "vertex", None}
        Which fields define the points: ``dp_I/U/V`` (preferred when both are present)
        or ``dp_vertex``.
    x, y : (n,) float
    i, u, v : (n,) float or None
    vertex : (n,) int or None
    reasons : list of (str or None)
        Why each point is dropped (None = valid).
    notes : list of str
        Remarks that do not drop anything.
    """

    error: str | None = None
    n_points: int = 0
    kind: str | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    i: np.ndarray | None = None
    u: np.ndarray | None = None
    v: np.ndarray | None = None
    vertex: np.ndarray | None = None
    reasons: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def _numbers(ann: dict, key: str) -> tuple[np.ndarray | None, str | None]:
    """A point list as float64 (non-numbers become NaN), or an error."""
    val = ann[key]
    if not isinstance(val, list):
        return None, f"{key} must be a list, got {type(val).__name__}"
    out = np.full(len(val), np.nan)
    for k, x in enumerate(val):
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            try:
                out[k] = float(x)
            except OverflowError:  # an integer beyond float64 (10**400): not a usable number
                out[k] = np.nan
    return out, None


def _shown(x) -> str:
    """A value for a message: its repr, a long one cut (a 400-digit integer is not quoted whole)."""
    r = repr(x)
    return r if len(r) <= 40 else f"{r[:20]}... ({len(r)} characters)"


def _check_masks(masks) -> str | None:
    if isinstance(masks, dict):  # a single foreground RLE (DensePose Chimps)
        return _check_rle(masks, "dp_masks")
    if not isinstance(masks, list):
        return f"dp_masks must be a list of {N_MASKS} RLE masks, got {type(masks).__name__}"
    if len(masks) != N_MASKS:
        return f"dp_masks must have {N_MASKS} entries, got {len(masks)}"
    for k, m in enumerate(masks):
        if not m:
            continue
        err = _check_rle(m, f"dp_masks[{k}]")
        if err:
            return err
    return None


# ----------------------------------------------------------------------------- RLE codec
# COCO JSON stores compressed RLE counts as an ASCII string; pycocotools encodes to and
# decodes from bytes. These four functions are the only places that convert between them.
def _rle_json(r: dict) -> dict:
    c = r["counts"]
    return {"size": [int(r["size"][0]), int(r["size"][1])], "counts": c.decode("ascii") if isinstance(c, bytes) else c}


def encode_rle(mask: np.ndarray) -> dict:
    """COCO JSON RLE ``{"size": [h, w], "counts": str}`` of an (h, w) binary mask.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((4, 5), np.uint8); m[1:3, 2:4] = 1
    >>> r = encode_rle(m)
    >>> r["size"], bool((decode_rle(r) == m).all())
    ([4, 5], True)
    """
    from pycocotools import mask as mask_utils

    return _rle_json(mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8))))


def encode_rles(stack: np.ndarray) -> list[dict]:
    """COCO JSON RLEs of the K masks of an (h, w, K) binary stack (one pycocotools call)."""
    from pycocotools import mask as mask_utils

    return [_rle_json(r) for r in mask_utils.encode(np.asfortranarray(np.asarray(stack, dtype=np.uint8)))]


def rle_for_pycocotools(m: dict) -> dict:
    """An RLE dict as pycocotools takes it (string counts as bytes; list counts compressed)."""
    from pycocotools import mask as mask_utils

    if isinstance(m.get("counts"), list):
        return mask_utils.frPyObjects(m, *m["size"])
    return dict(m, counts=m["counts"].encode("ascii") if isinstance(m["counts"], str) else m["counts"])


def decode_rle(m: dict) -> np.ndarray:
    """(h, w) uint8 mask of an RLE dict (string, bytes or uncompressed list counts)."""
    from pycocotools import mask as mask_utils

    return mask_utils.decode(rle_for_pycocotools(m))


def dp_mask_labels(ann: dict) -> np.ndarray | None:
    """(256, 256) int coarse-part map of ``dp_masks`` on the box grid, or None without masks.

    Entry ``k`` (0-based) of ``dp_masks`` paints label ``k + 1`` (later parts overwrite
    earlier ones); a single foreground RLE (DensePose-Chimps style) paints 1; 0 = background.

    Raises
    ------
    AnnotationError
        A mask that is not 256 x 256.
    """
    m = ann.get("dp_masks")
    if not m:
        return None
    if isinstance(m, dict):
        m = [m]
    lab = np.zeros(tuple(MASK_SIZE), np.int64)
    for k, r in enumerate(m, 1):
        if r:
            err = check_rle(r, tuple(MASK_SIZE), f"dp_masks[{k - 1}]")
            if err:
                raise AnnotationError(f"annotation {ann.get('id')}: {err}")
            d = decode_rle(r)
            if d.shape != tuple(MASK_SIZE):
                raise AnnotationError(f"annotation {ann.get('id')}: dp_masks[{k - 1}] is {d.shape[0]}x{d.shape[1]}; "
                                      f"expected {MASK_SIZE[0]}x{MASK_SIZE[1]}")
            lab[d > 0] = k
    return lab


def _check_rle(m, where: str) -> str | None:
    if not isinstance(m, dict) or "counts" not in m or "size" not in m:
        return f"{where} must be an RLE {{'counts', 'size'}} or empty, got {str(m)[:60]!r}"
    size = m["size"]
    if not isinstance(size, (list, tuple)) or list(size) != MASK_SIZE:
        return f"{where} has size {str(m['size'])[:40]}; expected {MASK_SIZE}"
    if not isinstance(m["counts"], (str, list)):
        return f"{where}.counts must be a string or a list, got {type(m['counts']).__name__}"
    return check_rle(m, tuple(MASK_SIZE), where)


def check_annotation(ann: dict, *, n_vertices: int | None, ref_models: tuple[str, ...] = ()) -> AnnotationCheck:
    """Validate the DensePose fields of one annotation.

    Parameters
    ----------
    ann : dict
        A COCO annotation with DensePose fields.
    n_vertices : int or None
        Vertices of the source mesh (``dp_vertex`` must be in ``0..n_vertices-1``).
    ref_models : tuple of str
        Names accepted in ``ref_model`` (the source mesh's); empty accepts none.

    Returns
    -------
    AnnotationCheck
        Whole-annotation errors: missing ``dp_x``/``dp_y``, point lists that are not lists
        or differ in length, chart fields incomplete, bad ``dp_masks``, unknown
        ``ref_model``. Per-point reasons: ``dp_I`` not an integer in 1..24, ``dp_U`` /
        ``dp_V`` outside [0, 1], ``dp_x`` / ``dp_y`` outside [0, 256], ``dp_vertex`` not a
        vertex of the source mesh, non-numbers.
    """
    chk = AnnotationCheck()
    present = [k for k in POINT_FIELDS if k in ann]
    if "dp_masks" in ann:
        err = _check_masks(ann["dp_masks"])
        if err:
            chk.error = err
    if not present:
        if chk.error is None and "ref_model" in ann and ann["ref_model"] not in ref_models:
            chk.error = f"unknown ref_model {ann['ref_model']!r}; expected one of {list(ref_models)}"
        return chk
    arrays = {}
    for k in present:
        a, err = _numbers(ann, k)
        if err and chk.error is None:
            chk.error = err
        arrays[k] = a
    lengths = {k: len(a) for k, a in arrays.items() if a is not None}
    chk.n_points = max(lengths.values()) if lengths else 0
    if chk.error is None and len(set(lengths.values())) > 1:
        chk.error = "unequal list lengths: " + ", ".join(f"{k} {n}" for k, n in lengths.items())
    if chk.error is None:
        missing = [k for k in ("dp_x", "dp_y") if k not in ann]
        chart = [k for k in ("dp_I", "dp_U", "dp_V") if k in ann]
        if missing:
            chk.error = f"missing {' and '.join(missing)}"
        elif chart and len(chart) < 3:
            chk.error = f"incomplete chart fields: has {chart} but not {[k for k in ('dp_I', 'dp_U', 'dp_V') if k not in ann]}"
        elif not chart and "dp_vertex" not in ann:
            chk.error = "no point labels: expected dp_I/dp_U/dp_V or dp_vertex"
    if chk.error is None and "ref_model" in ann and ann["ref_model"] not in ref_models:
        chk.error = f"unknown ref_model {ann['ref_model']!r}; expected one of {list(ref_models)}"
    if chk.error is not None:
        chk.reasons = [chk.error] * chk.n_points
        return chk
    n = chk.n_points
    reasons: list = [None] * n

    def flag(mask, why):
        for k in np.flatnonzero(mask):
            if reasons[k] is None:
                reasons[k] = why(k)

    chk.x, chk.y = arrays["dp_x"], arrays["dp_y"]
    for key, a in (("dp_x", chk.x), ("dp_y", chk.y)):
        flag(~np.isfinite(a), lambda k, key=key: f"{key} is not a number: {_shown(ann[key][k])}")
        flag(np.isfinite(a) & ((a < 0) | (a > XY_MAX)), lambda k, key=key, a=a: f"{key} = {a[k]:g} outside [0, 256]")
    if "dp_I" in ann:
        chk.kind = "chart"
        chk.i, chk.u, chk.v = arrays["dp_I"], arrays["dp_U"], arrays["dp_V"]
        i = chk.i
        flag(~np.isfinite(i), lambda k: f"dp_I is not a number: {_shown(ann['dp_I'][k])}")
        flag(np.isfinite(i) & ((i != np.round(i)) | (i < 1) | (i > N_CHARTS)),
             lambda k: f"dp_I = {i[k]:g} is not a chart id in 1..{N_CHARTS}")
        for key, a in (("dp_U", chk.u), ("dp_V", chk.v)):
            flag(~np.isfinite(a), lambda k, key=key: f"{key} is not a number: {_shown(ann[key][k])}")
            flag(np.isfinite(a) & ((a < 0) | (a > 1)), lambda k, key=key, a=a: f"{key} = {a[k]:g} outside [0, 1]")
        if "dp_vertex" in ann:
            chk.notes.append("has both dp_I/U/V and dp_vertex: converted from dp_I/U/V")
    else:
        chk.kind = "vertex"
    if "dp_vertex" in ann:
        vx = arrays["dp_vertex"]
        bad_int = ~np.isfinite(vx) | (vx != np.round(vx))
        what = "dp_vertex" if chk.kind == "vertex" else "dp_vertex (not used)"
        flag(bad_int, lambda k: f"{what} is not an integer: {_shown(ann['dp_vertex'][k])}")
        if n_vertices is not None:
            flag(~bad_int & ((vx < 0) | (vx >= n_vertices)),
                 lambda k: f"{what} = {int(vx[k])} is not a vertex of the source mesh (0..{n_vertices - 1})")
        chk.vertex = np.where(bad_int | (vx < 0) | (vx > 2**62), -1, vx).astype(np.int64)
    chk.reasons = reasons
    return chk
