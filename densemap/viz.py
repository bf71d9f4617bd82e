"""Off-screen pictures of meshes, part labels and colour transfers, written as PNG.

Rendering goes through pyvista/VTK without a display. VTK *crashes* (segfaults)
instead of raising when no OpenGL backend can be created, so
:func:`check_offscreen_gl` (:mod:`densemap.gl`, re-exported here) first probes the
backends in a child process, picks one that works (EGL, then OSMesa) by setting
``VTK_DEFAULT_OPENGL_WINDOW`` for this process, and raises
:class:`~densemap.errors.GLBackendError` naming the system packages to install when
none does. pyvista is imported only after that
check, inside the rendering functions, so ``import densemap.viz`` stays cheap.

Colours
-------
Parts get flat per-face colours from a fixed qualitative palette
(:func:`part_palette`, :func:`part_colors`; a left/right pair shares a hue, dark
and light), unlabelled vertices are grey. With ``ids_as_colors=True`` the meshes
are drawn unlit, without anti-aliasing, titles or legend, so every pixel is
exactly a palette colour, :data:`UNLABELLED_COLOR` or the background, and
:func:`ids_from_pixels` reads the label ids back.

Maps
----
A map says its direction in its name: ``b_to_a[i]`` is the A vertex for B
vertex ``i``, so a field on A is carried to B by ``field_b = field_a[b_to_a]``.
"""

from __future__ import annotations

import colorsys
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np

from .gl import check_offscreen_gl
from .mesh import Mesh, atomic_path
from .parts import PartLabels

if TYPE_CHECKING:  # pragma: no cover
    import pyvista

__all__ = [
    "check_offscreen_gl",
    "render_parts",
    "render_meshes",
    "render_transfer",
    "color_field",
    "part_palette",
    "part_colors",
    "ids_from_pixels",
    "write_png",
    "UNLABELLED_COLOR",
    "BACKGROUND_COLOR",
    "PLAIN_COLOR",
]

View = Literal["front", "back", "left", "right", "top", "bottom"]
VIEWS = ("front", "back", "left", "right", "top", "bottom")

# ----------------------------------------------------------------------------- colours
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


def _to_u8(colors) -> np.ndarray:
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
    out = [tuple(c) for c in _to_u8(base[: min(n, len(base))])]
    seen = set(out) | {tuple(_to_u8(UNLABELLED_COLOR)), tuple(_to_u8(BACKGROUND_COLOR))}
    k = 0
    while len(out) < n:
        h = (k * 0.618033988749895) % 1.0
        s, v = (0.65, 0.85) if (k // 7) % 2 == 0 else (0.45, 0.65)
        c = tuple(_to_u8(colorsys.hsv_to_rgb(h, s, v)))
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
    table = _to_u8(np.vstack([np.asarray(colors, dtype=np.float64).reshape(-1, 3), [UNLABELLED_COLOR]]))
    tkey = (table[:, 0].astype(np.int64) << 16) | (table[:, 1].astype(np.int64) << 8) | table[:, 2]
    ids = np.r_[np.arange(len(table) - 1), -1]
    out = np.full(key.shape, -2, dtype=np.int64)
    for k, t in zip(ids, tkey):
        out[key == t] = k
    return out


def _pyvista():
    check_offscreen_gl()
    import pyvista

    return pyvista


# ----------------------------------------------------------------------------- PNG
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
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
        raise ValueError(f"image must be an (H, W, 3|4) uint8 array, got shape {img.shape} dtype {img.dtype}")
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(img)).save(tmp, format="PNG")
    return path


def _png_path(path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: pictures are written as PNG; expected a path ending in '.png'")
    return path


# ----------------------------------------------------------------------------- geometry
_AXES = {
    "x": (1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1),
    "-x": (-1, 0, 0), "-y": (0, -1, 0), "-z": (0, 0, -1),
    "+x": (1, 0, 0), "+y": (0, 1, 0), "+z": (0, 0, 1),
}  # fmt: skip

Axis = Literal["x", "y", "z", "-x", "-y", "-z", "+x", "+y", "+z"] | Sequence[float]


def _axis(value, what: str) -> np.ndarray:
    if isinstance(value, str):
        if value not in _AXES:
            raise ValueError(f"unknown {what} axis {value!r}; expected one of {list(_AXES)} or a 3-vector")
        return np.asarray(_AXES[value], dtype=np.float64)
    v = np.asarray(value, dtype=np.float64)
    if v.shape != (3,) or not np.isfinite(v).all() or np.linalg.norm(v) == 0:
        raise ValueError(f"{what} must be an axis name or a non-zero 3-vector, got {value!r}")
    return v / np.linalg.norm(v)


def _frame(up, front) -> tuple[np.ndarray, np.ndarray]:
    u, f = _axis(up, "up"), _axis(front, "front")
    if abs(float(u @ f)) > 0.99:
        raise ValueError(f"up {up!r} and front {front!r} must not be parallel")
    f = f - (f @ u) * u  # make front orthogonal to up
    return u, f / np.linalg.norm(f)


def _camera(view: str, up: np.ndarray, front: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(direction from the object to the camera, camera view-up) for a named view."""
    left = np.cross(up, front)  # the subject's left, for a subject facing `front` with head `up`
    table = {
        "front": (front, up),
        "back": (-front, up),
        "left": (left, up),
        "right": (-left, up),
        "top": (up, -front),
        "bottom": (-up, front),
    }
    return table[view]


def _check_views(views) -> tuple[str, ...]:
    views = (views,) if isinstance(views, str) else tuple(views)
    if not views:
        raise ValueError("views must name at least one view")
    for v in views:
        if v not in VIEWS:
            raise ValueError(f"unknown view {v!r}; expected one of {list(VIEWS)}")
    return views


def _face_labels(faces: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(F,) int: the majority label of each face's corners (corner 0's when all differ)."""
    lab = labels[faces]
    return np.where(lab[:, 1] == lab[:, 2], lab[:, 1], lab[:, 0])


def _label_colors(mesh: Mesh, labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(F, 3) uint8 flat face colours for per-vertex labels (-1 grey)."""
    table = _to_u8(np.vstack([palette, [UNLABELLED_COLOR]]))  # index -1 -> last row
    return table[_face_labels(mesh.faces, labels)]


def _colour_spec(mesh: Mesh, values, colors=None) -> tuple[str, np.ndarray, list[tuple[str, np.ndarray]]]:
    """Turn what the caller gave for one mesh into ("cell"|"point", uint8 colours, legend entries)."""
    where = mesh.name
    if values is None:
        return "cell", np.tile(_to_u8(PLAIN_COLOR), (mesh.n_faces, 1)), []
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
            return "point", _to_u8(arr), []
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


# ----------------------------------------------------------------------------- rendering
_FILL = 0.9  # fraction of a panel the mesh spans along its tighter direction


def _polydata(pv, mesh: Mesh) -> "pyvista.PolyData":
    faces = np.hstack([np.full((mesh.n_faces, 1), 3, np.int64), mesh.faces]).ravel()
    return pv.PolyData(np.asarray(mesh.vertices, dtype=np.float64), faces)


def _render(
    panels: list[dict],
    shape: tuple[int, int],
    path,
    *,
    size,
    up,
    front,
    ids_as_colors: bool,
    legend: bool,
) -> Path:
    """Draw ``panels`` (dicts: row, col, mesh, spec, view, title) in a grid and write the PNG."""
    path = _png_path(path)
    width, height = (int(s) for s in size)
    if width < 1 or height < 1:
        raise ValueError(f"size must be two positive ints (width, height), got {size!r}")
    u, f = _frame(up, front)
    rows, cols = shape
    # one legend column on the right naming every part shown (first colour given for a name wins)
    entries: dict[str, np.ndarray] = {}
    if legend and not ids_as_colors:
        for p in panels:
            for name, c in p["spec"][2]:
                entries.setdefault(name, c)
    legend_px = min(40 + 9 * max(map(len, entries)), width // 3) if entries else 0
    col_weights = [max(width - legend_px, cols)] * cols + ([legend_px * cols] if legend_px else [])
    pv = _pyvista()

    theme = pv.themes.Theme()
    theme.background = BACKGROUND_COLOR
    theme.anti_aliasing = None if ids_as_colors else "msaa"
    theme.multi_samples = 0 if ids_as_colors else 8
    theme.show_scalar_bar = False
    pl = pv.Plotter(
        off_screen=True,
        shape=(rows, cols + (1 if legend_px else 0)),
        col_weights=col_weights,
        groups=[(slice(None), cols)] if legend_px and rows > 1 else None,
        window_size=[width, height],
        border=False,
        theme=theme,
        lighting="none" if ids_as_colors else "light kit",
    )
    try:
        if ids_as_colors:
            pl.disable_anti_aliasing(all_renderers=True)
            pl.render_window.SetMultiSamples(0)
        for p in panels:
            pl.subplot(p["row"], p["col"])
            poly = _polydata(pv, p["mesh"])
            kind, rgb, _ = p["spec"]
            if kind == "cell":
                poly.cell_data["rgb"] = rgb
            else:
                poly.point_data["rgb"] = rgb
            pl.add_mesh(
                poly,
                scalars="rgb",
                rgb=True,
                preference=kind,
                lighting=not ids_as_colors,
                smooth_shading=kind == "point" and not ids_as_colors,
                ambient=0.0 if ids_as_colors else 0.35,
                diffuse=1.0 if ids_as_colors else 0.65,
                specular=0.0,
                show_scalar_bar=False,
            )
            direction, view_up = _camera(p["view"], u, f)
            centre = 0.5 * (p["mesh"].vertices.min(0) + p["mesh"].vertices.max(0))
            dist = max(p["mesh"].bounding_box_diagonal, 1e-9) * 3.0
            pl.camera_position = [tuple(centre + dist * direction), tuple(centre), tuple(view_up)]
            pl.reset_camera()
            pl.renderer.ResetCameraScreenSpace(_FILL)  # fit the projected mesh, not its bounding sphere
            if p.get("title") and not ids_as_colors:
                pl.add_text(p["title"], position="upper_edge", font_size=12, color="black")
        if legend_px:
            pl.subplot(0, cols)
            _add_legend(pv, pl.renderer, entries)
        image = pl.screenshot(return_img=True)
    finally:
        pl.close()
    return write_png(np.asarray(image, dtype=np.uint8), path)


def _add_legend(pv, renderer, entries: dict[str, np.ndarray]) -> None:
    """Part names in black beside colour swatches, top-aligned in ``renderer``'s viewport."""
    from vtkmodules.vtkRenderingAnnotation import vtkLegendBoxActor

    leg = vtkLegendBoxActor()
    leg.SetNumberOfEntries(len(entries))
    for i, (name, color) in enumerate(entries.items()):
        swatch = pv.ImageData(dimensions=(4, 4, 1))
        swatch.point_data["rgb"] = np.tile(_to_u8(color), (16, 1))
        leg.SetEntry(i, swatch, name, (0.0, 0.0, 0.0))  # an image symbol keeps its colours; text is black
    h = min(0.045 * len(entries), 0.96)
    leg.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
    leg.GetPositionCoordinate().SetValue(0.02, 0.98 - h)
    leg.GetPosition2Coordinate().SetCoordinateSystemToNormalizedViewport()
    leg.GetPosition2Coordinate().SetValue(0.96, h)
    leg.SetBorder(False)
    renderer.AddActor(leg)


def render_parts(
    mesh: Mesh,
    parts: PartLabels | np.ndarray,
    path: str | os.PathLike,
    *,
    views: Sequence[View] = ("front", "back"),
    size: tuple[int, int] = (800, 800),
    colors: np.ndarray | None = None,
    ids_as_colors: bool = False,
    legend: bool = True,
    up: Axis = "y",
    front: Axis = "z",
) -> Path:
    """Picture of part labels on a mesh: flat per-face colours, the views side by side.

    Parameters
    ----------
    mesh : Mesh
    parts : PartLabels or (V,) int
        Per-vertex labels; ``-1`` (unlabelled) is drawn grey. A face takes the
        majority label of its corners (corner 0's when all three differ).
    path : path-like
        Output ``.png``, written atomically.
    views : sequence of {"front", "back", "left", "right", "top", "bottom"}
        One panel per view, left to right; "left" looks at the subject's left side.
    size : (width, height) int
        Size of the whole picture in pixels.
    colors : (L, 3) float, optional
        Colour of each part in ``[0, 1]``; default :func:`part_colors` of the names.
    ids_as_colors : bool
        Draw unlit, without anti-aliasing, title or legend, so that each pixel is
        exactly a part colour, :data:`UNLABELLED_COLOR` or :data:`BACKGROUND_COLOR`
        (read back with :func:`ids_from_pixels`).
    legend : bool
        Name the parts in a column on the right (not with ``ids_as_colors``).
    up, front : axis name or 3-vector
        The mesh's up direction and the direction it faces; the reference meshes
        are y-up facing +z.

    Returns
    -------
    Path

    Raises
    ------
    GLBackendError
        No off-screen OpenGL backend (see :func:`check_offscreen_gl`).
    """
    views = _check_views(views)
    spec = _colour_spec(mesh, parts, colors)
    panels = [
        dict(row=0, col=j, mesh=mesh, spec=spec, view=v, title=v)
        for j, v in enumerate(views)
    ]
    return _render(
        panels, (1, len(views)), path, size=size, up=up, front=front, ids_as_colors=ids_as_colors, legend=legend
    )


def render_meshes(
    meshes_and_values: Sequence[tuple[Mesh, PartLabels | np.ndarray | None]],
    path: str | os.PathLike,
    *,
    titles: Sequence[str] | None = None,
    views: Sequence[View] = ("front",),
    size: tuple[int, int] | None = None,
    ids_as_colors: bool = False,
    legend: bool = False,
    up: Axis = "y",
    front: Axis = "z",
) -> Path:
    """Several meshes side by side (one column each, one row per view), with titles.

    Parameters
    ----------
    meshes_and_values : sequence of (Mesh, values)
        ``values`` per mesh: ``None`` (plain grey), ``(V, 3)`` float colours in
        ``[0, 1]`` (interpolated across faces), or ``PartLabels`` / ``(V,)`` int
        labels (flat per-face palette colours; equal names give equal colours).
    path : path-like
        Output ``.png``, written atomically.
    titles : sequence of str, optional
        One per mesh, above its column (default: the mesh names).
    views : sequence of {"front", "back", "left", "right", "top", "bottom"}
        One row per view.
    size : (width, height) int, optional
        Whole picture; default 500 x 500 pixels per panel.
    ids_as_colors : bool
        Unlit, no anti-aliasing, no titles or legend (see :func:`render_parts`).
    legend : bool
        Name the parts of labelled meshes in a column on the right.
    up, front : axis name or 3-vector
        Up direction and facing direction, shared by all meshes (default y-up, +z).

    Returns
    -------
    Path
    """
    items = list(meshes_and_values)
    if not items:
        raise ValueError("render_meshes needs at least one (mesh, values) pair")
    views = _check_views(views)
    if titles is None:
        titles = [m.name for m, _ in items]
    titles = list(titles)
    if len(titles) != len(items):
        raise ValueError(f"got {len(titles)} titles for {len(items)} meshes")
    if size is None:
        size = (500 * len(items), 500 * len(views))
    panels = []
    for j, (mesh, values) in enumerate(items):
        if not isinstance(mesh, Mesh):
            raise TypeError(f"meshes_and_values[{j}][0] must be a Mesh, got {type(mesh).__name__}")
        spec = _colour_spec(mesh, values)
        for i, v in enumerate(views):
            if len(views) == 1:
                title = titles[j]
            else:
                title = f"{titles[j]} ({v})" if i == 0 else v
            panels.append(dict(row=i, col=j, mesh=mesh, spec=spec, view=v, title=title))
    return _render(
        panels, (len(views), len(items)), path, size=size, up=up, front=front, ids_as_colors=ids_as_colors,
        legend=legend,
    )


def render_transfer(
    mesh_a: Mesh,
    mesh_b: Mesh,
    b_to_a,
    path: str | os.PathLike,
    *,
    field: np.ndarray | Literal["position"] | None = None,
    titles: Sequence[str] = ("A", "B"),
    views: Sequence[View] = ("front", "back"),
    size: tuple[int, int] | None = None,
    up: Axis = "y",
    front: Axis = "z",
) -> Path:
    """The colour-transfer picture: a smooth colour field on A carried to B through a map.

    ``b_to_a[i]`` is the A vertex for B vertex ``i`` (pull-back), so
    ``colors_b = colors_a[b_to_a]``. A is drawn in the left column, B in the
    right, one row per view. A good map shows B coloured like A, part for part.

    Parameters
    ----------
    mesh_a, mesh_b : Mesh
    b_to_a : (V_b,) int, or an object with such ``.indices``
        For each B vertex, its A vertex (e.g. ``chimp_to_human.indices`` with A the
        human and B the chimp).
    path : path-like
        Output ``.png``, written atomically.
    field : (V_a, 3) float, (V_a,) float, "position" or None
        Colours on A: RGB in ``[0, 1]``; a scalar field (shown through viridis,
        normalised to its range); or a :func:`color_field` kind (default
        ``"position"``: normalised xyz as RGB).
    titles : (str, str)
        Column titles for A and B.
    views : sequence of {"front", "back", "left", "right", "top", "bottom"}
        One row per view.
    size : (width, height) int, optional
        Whole picture; default 500 x 500 pixels per panel.
    up, front : axis name or 3-vector
        Up direction and facing direction of both meshes (default y-up, +z).

    Returns
    -------
    Path
    """
    idx = np.asarray(getattr(b_to_a, "indices", b_to_a))
    if idx.ndim != 1 or len(idx) != mesh_b.n_vertices:
        raise ValueError(
            f"b_to_a must have one A vertex per B vertex: shape ({mesh_b.n_vertices},), got {idx.shape}"
        )
    if idx.size and idx.dtype.kind not in "iu":
        raise ValueError(f"b_to_a must hold integer vertex ids, got dtype {idx.dtype}")
    bad = (idx < 0) | (idx >= mesh_a.n_vertices)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"b_to_a[{i}] = {idx[i]} but {mesh_a.name} has {mesh_a.n_vertices} vertices")
    if field is None or isinstance(field, str):
        colors_a = color_field(mesh_a, field or "position")
    else:
        fa = np.asarray(field, dtype=np.float64)
        if fa.shape == (mesh_a.n_vertices,):
            if not np.isfinite(fa).all():
                raise ValueError(f"field[{int(np.flatnonzero(~np.isfinite(fa))[0])}] is not finite")
            import matplotlib

            span = np.ptp(fa) if fa.size else 0.0
            colors_a = matplotlib.colormaps["viridis"]((fa - fa.min()) / span if span > 0 else np.full_like(fa, 0.5))
            colors_a = colors_a[:, :3]
        elif fa.shape == (mesh_a.n_vertices, 3):
            colors_a = fa
        else:
            raise ValueError(
                f"field must have shape (V_a,) or (V_a, 3) = ({mesh_a.n_vertices}, 3), got {fa.shape}"
            )
    colors_a = np.asarray(colors_a, dtype=np.float64)
    colors_b = colors_a[idx]
    return render_meshes(
        [(mesh_a, colors_a), (mesh_b, colors_b)], path, titles=titles, views=views, size=size, up=up, front=front
    )
