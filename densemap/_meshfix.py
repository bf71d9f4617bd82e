"""Array-level mesh health and repair: face shape quality, duplicate faces, welding, cleaning.

Used by :mod:`densemap.mesh` (``check_mesh``, ``repair_mesh``, the STL reader). Works on
plain arrays so that ``mesh`` can import it without a cycle. Coordinates are scaled by the
bounding-box diagonal first, so a mesh in micrometres and one in kilometres (or at 1e150)
give the same answers without overflow.
"""

from __future__ import annotations

import numpy as np

__all__ = ["normalised", "face_shape", "duplicate_faces", "weld", "clean_faces"]


def normalised(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """``(vertices - min) / diagonal`` and the diagonal (1.0 for an empty or single-point mesh).

    The diagonal is taken on coordinates pre-scaled by their largest magnitude, so it does
    not overflow for coordinates near the float64 limit.
    """
    v = np.asarray(vertices, dtype=np.float64)
    if not len(v):
        return v.copy(), 1.0
    lo = v.min(axis=0)
    span = v.max(axis=0) - lo
    big = float(np.max(np.abs(span)))
    if not np.isfinite(big) or big == 0.0:
        return v - lo, 1.0
    diag = big * float(np.linalg.norm(span / big))
    return (v - lo) / diag, diag


def face_shape(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F,) area (on coordinates scaled to a unit bounding-box diagonal) and (F,) shape quality.

    The quality ``4 sqrt(3) area / (l1^2 + l2^2 + l3^2)`` is 1 for an equilateral triangle and
    0 for a degenerate one (a needle or a cap); it does not depend on the mesh's scale.
    """
    v, _ = normalised(vertices)
    f = np.asarray(faces, dtype=np.int64)
    if not len(f):
        return np.zeros(0), np.zeros(0)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    l2 = ((b - a) ** 2).sum(1) + ((c - b) ** 2).sum(1) + ((a - c) ** 2).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(l2 > 0, 4.0 * np.sqrt(3.0) * area / np.where(l2 > 0, l2, 1.0), 0.0)
    return area, q


def duplicate_faces(faces: np.ndarray) -> np.ndarray:
    """(F,) bool: faces whose vertex set repeats an earlier face's (any order or orientation)."""
    f = np.sort(np.asarray(faces, dtype=np.int64), axis=1)
    if not len(f):
        return np.zeros(0, bool)
    _, first = np.unique(f, axis=0, return_index=True)
    dup = np.ones(len(f), bool)
    dup[first] = False
    return dup


def weld(vertices: np.ndarray, faces: np.ndarray, *, tol: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge vertices at the same position (within ``tol`` of the bounding-box diagonal).

    Returns
    -------
    vertices : (V', 3) float
        The first vertex of each group, in the order of first appearance.
    faces : (F, 3) int
        On the welded vertices.
    old_to_new : (V,) int
        Welded index of each input vertex (the map back is ``vertices[old_to_new]``).

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    >>> w, f, back = weld(v, np.array([[0, 1, 2], [3, 4, 5]]))
    >>> len(w), f.tolist(), back.tolist()
    (4, [[0, 1, 2], [1, 3, 2]], [0, 1, 2, 1, 3, 2])
    """
    v = np.asarray(vertices, dtype=np.float64)
    if not len(v):
        return v.copy(), np.asarray(faces, np.int64).reshape(-1, 3), np.zeros(0, np.int64)
    key = v if tol <= 0 else np.round(normalised(v)[0] / tol)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first)  # groups in the order of their first vertex
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    old_to_new = rank[inverse]
    return v[first[order]], old_to_new[np.asarray(faces, dtype=np.int64)], old_to_new


def clean_faces(vertices: np.ndarray, faces: np.ndarray, *, area_tol: float, sliver_tol: float) -> np.ndarray:
    """(F,) bool: the faces to keep -- no repeated corner, not a duplicate, area and shape above the tolerances."""
    f = np.asarray(faces, dtype=np.int64)
    repeated = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 2] == f[:, 0])
    area, q = face_shape(vertices, f)
    return ~repeated & ~duplicate_faces(f) & (area > area_tol) & (q >= sliver_tol)
