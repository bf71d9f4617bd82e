"""Colours for pictures of part labels and colour transfers.

Parts get colours from a fixed qualitative palette (:func:`part_palette`,
:func:`part_colors`; a left/right pair shares a hue, dark and light); unlabelled
vertices are :data:`UNLABELLED_COLOR` grey and meshes without a colour field
:data:`PLAIN_COLOR`. Every colour is exact in 8 bits and none is grey or white, so a
picture drawn with ``ids_as_colors=True`` (:mod:`densemap.viz`) can be read back with
:func:`ids_from_pixels`. :func:`color_field` gives a smooth field to follow through a map.

Numpy only: importing this module does not import pyvista or VTK.
"""

from __future__ import annotations

import colorsys
import re
from typing import Literal, Sequence

import numpy as np

from ..mesh import Mesh
from ..parts import PartLabels, face_labels

__all__ = [
    "part_palette",
    "colour_spec",
    "to_u8",
    "part_colors",
    "color_field",
    "ids_from_pixels",
    "UNLABELLED_COLOR",
    "BACKGROUND_COLOR",
    "PLAIN_COLOR",
]

# tab20 / tab20b dark-light pairs (the greys are left out: grey means "unlabelled")
_PAIRS = np.array(
    [
        [(0x1F, 0x77, 0xB4), (0xAE, 0xC7, 0xE8)],  # blue
        [(0xFF, 0x7F, 0x0E), (0xFF, 0xBB, 0x78)],  # orange
        [(0x2C, 0xA0, 0x2C), (0x98, 0xDF, 0x8A)],  # green
        [(0xD6, 0x27, 0x28), (0xFF, 0x98, 0x96)],  # red
        [(0x94, 0x67, 0xBD), (0xC5, 0xB0, 0xD5)],  # purple
        [(0x8C, 0x56, 0x4B), (0xC4, 0x9C, 0x94)],  # brown
        [(0xE3, 0x77, 0xC2), (0xF7, 0xB6, 0xD2)],  # pink
        [(0xBC, 0xBD, 0x22), (0xDB, 0xDB, 0x8D)],  # olive
        [(0x17, 0xBE, 0xCF), (0x9E, 0xDA, 0xE5)],  # cyan
        [(0x39, 0x3B, 0x79), (0x9C, 0x9E, 0xDE)],  # indigo
        [(0x63, 0x79, 0x39), (0xB5, 0xCF, 0x6B)],  # moss
        [(0x8C, 0x6D, 0x31), (0xE7, 0xBA, 0x52)],  # ochre
        [(0x84, 0x3C, 0x39), (0xE7, 0x96, 0x9C)],  # maroon
        [(0x7B, 0x41, 0x73), (0xDE, 0x9E, 0xD6)],  # plum
    ],
    dtype=np.float64,
) / 255.0

#: Colour of unlabelled vertices (RGB in [0, 1], exact in 8 bits).
UNLABELLED_COLOR = (153 / 255, 153 / 255, 153 / 255)
#: Colour of meshes drawn without any colour field.
PLAIN_COLOR = (217 / 255, 217 / 255, 217 / 255)
#: Light background of all pictures.
BACKGROUND_COLOR = (1.0, 1.0, 1.0)

_SIDE = re.compile(r"(?i)left|right|(?<![a-z])[lr](?![a-z])")


def to_u8(colors) -> np.ndarray:
    """RGB in [0, 1] -> uint8 (rounded, clipped)."""
    return np.rint(np.clip(np.asarray(colors, dtype=np.float64), 0.0, 1.0) * 255).astype(np.uint8)


def part_palette(n: int) -> np.ndarray:
    """A fixed qualitative palette of ``n`` distinct colours.

    The first 14 are the dark tab20/tab20b hues, the next 14 their light
    variants; beyond 28, colours step around the hue circle by the golden angle.
    No colour is grey or white, so none collides with :data:`UNLABELLED_COLOR` or
    :data:`BACKGROUND_COLOR`, and all are distinct in 8 bits.

    Parameters
    ----------
    n : int
        Number of colours.

    Returns
    -------
    (n, 3) float
        RGB in ``[0, 1]``, each exactly representable in 8 bits.
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"part_palette: n must be >= 0, got {n}")
    base = np.concatenate([_PAIRS[:, 0], _PAIRS[:, 1]])
    out = [tuple(c) for c in to_u8(base[: min(n, len(base))])]
    seen = set(out) | {tuple(to_u8(UNLABELLED_COLOR)), tuple(to_u8(BACKGROUND_COLOR))}
    k = 0
    while len(out) < n:
        h = (k * 0.618033988749895) % 1.0
        s, v = (0.65, 0.85) if (k // 7) % 2 == 0 else (0.45, 0.65)
        c = tuple(to_u8(colorsys.hsv_to_rgb(h, s, v)))
        k += 1
        if c not in seen:
            seen.add(c)
            out.append(c)
    return np.asarray(out, dtype=np.float64).reshape(n, 3) / 255.0


def part_colors(names: Sequence[str]) -> np.ndarray:
    """Colours for named parts: a left/right pair shares a hue (dark and light).

    Parts whose names differ only by ``left``/``right`` (or ``l``/``r`` tokens such
    as ``arm_l``) form a pair: the first named gets the dark shade, the other the
    light one. When the parts do not fit 14 such hue groups, this falls back to
    :func:`part_palette`. All colours are distinct.

    Parameters
    ----------
    names : sequence of str
        ``L`` part names.

    Returns
    -------
    (L, 3) float
        RGB in ``[0, 1]``.
    """
    names = list(names)
    groups: dict[str, list[int]] = {}
    for k, name in enumerate(names):
        key = re.sub(r"[\s_.\-]+", " ", _SIDE.sub("", name)).strip().lower()
        groups.setdefault(key, []).append(k)
    if len(groups) > len(_PAIRS) or any(len(g) > 2 for g in groups.values()):
        return part_palette(len(names))
    out = np.zeros((len(names), 3))
    for hue, members in enumerate(groups.values()):
        for shade, k in enumerate(members):
            out[k] = _PAIRS[hue, shade]
    return out


def color_field(mesh: Mesh, kind: Literal["position"] = "position") -> np.ndarray:
    """A smooth colour field on a mesh, to follow through a map.

    Parameters
    ----------
    mesh : Mesh
    kind : {"position"}
        ``"position"``: each coordinate normalised to ``[0, 1]`` over the mesh's
        bounding box becomes a channel (x -> red, y -> green, z -> blue); a flat
        axis gives 0.5.

    Returns
    -------
    (V, 3) float
        RGB in ``[0, 1]``.
    """
    if kind != "position":
        raise ValueError(f"unknown color field kind {kind!r}; expected one of ['position']")
    v = mesh.vertices
    if not len(v):
        return np.zeros((0, 3))
    lo, hi = v.min(0), v.max(0)
    span = hi - lo
    return np.where(span > 0, (v - lo) / np.where(span > 0, span, 1.0), 0.5)


def ids_from_pixels(image: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Read part ids back from a picture drawn with ``ids_as_colors=True``.

    Parameters
    ----------
    image : (H, W, 3) or (H, W, 4) uint8
        The picture (alpha ignored).
    colors : (L, 3) float
        The part colours it was drawn with (e.g. ``part_colors(parts.names)``).

    Returns
    -------
    (H, W) int
        Part id, ``-1`` for :data:`UNLABELLED_COLOR`, ``-2`` for anything else
        (background).
    """
    img = np.asarray(image)[..., :3].astype(np.int64)
    key = (img[..., 0] << 16) | (img[..., 1] << 8) | img[..., 2]
    table = to_u8(np.vstack([np.asarray(colors, dtype=np.float64).reshape(-1, 3), [UNLABELLED_COLOR]]))
    tkey = (table[:, 0].astype(np.int64) << 16) | (table[:, 1].astype(np.int64) << 8) | table[:, 2]
    ids = np.r_[np.arange(len(table) - 1), -1]
    out = np.full(key.shape, -2, dtype=np.int64)
    for k, t in zip(ids, tkey):
        out[key == t] = k
    return out


# ----------------------------------------------------------------------------- colours of one mesh
def _label_colors(mesh: Mesh, labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(F, 3) uint8 flat face colours for per-vertex labels (-1 grey)."""
    table = to_u8(np.vstack([palette, [UNLABELLED_COLOR]]))  # index -1 -> last row
    return table[face_labels(mesh.faces, labels)]


def colour_spec(mesh: Mesh, values, colors=None) -> tuple[str, np.ndarray, list[tuple[str, np.ndarray]]]:
    """Turn what the caller gave for one mesh into ("cell"|"point", uint8 colours, legend entries)."""
    where = mesh.name
    if values is None:
        return "cell", np.tile(to_u8(PLAIN_COLOR), (mesh.n_faces, 1)), []
    if isinstance(values, PartLabels):
        values.check_mesh(mesh)
        names, labels = list(values.names), values.labels
    else:
        arr = np.asarray(values)
        if arr.ndim == 2:
            if arr.shape != (mesh.n_vertices, 3):
                raise ValueError(f"{where}: colours must have shape (V, 3) = ({mesh.n_vertices}, 3), got {arr.shape}")
            arr = arr.astype(np.float64)
            if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
                raise ValueError(f"{where}: colours must be finite RGB values in [0, 1]")
            return "point", to_u8(arr), []
        if arr.ndim != 1 or len(arr) != mesh.n_vertices:
            raise ValueError(
                f"{where}: expected (V,) labels, (V, 3) colours or PartLabels for {mesh.n_vertices} vertices, "
                f"got shape {arr.shape}"
            )
        if arr.size and arr.dtype.kind not in "iu":
            raise ValueError(f"{where}: labels must be integers, got dtype {arr.dtype}")
        labels = arr.astype(np.int64)
        if labels.size and labels.min() < -1:
            raise ValueError(f"{where}: labels[{int(np.argmin(labels))}] = {labels.min()}; expected -1 or >= 0")
        n = int(labels.max()) + 1 if labels.size else 0
        names = [f"part_{k}" for k in range(n)]
    if colors is None:
        palette = part_colors(names)
    else:
        palette = np.asarray(colors, dtype=np.float64)
        if palette.ndim != 2 or palette.shape[1] != 3 or len(palette) < len(names):
            raise ValueError(f"{where}: colors must have shape (L, 3) with L >= {len(names)}, got {palette.shape}")
    legend = [(name, palette[k]) for k, name in enumerate(names) if (labels == k).any()]
    if (labels < 0).any():
        legend.append(("(unlabelled)", np.asarray(UNLABELLED_COLOR)))
    return "cell", _label_colors(mesh, labels, palette), legend
