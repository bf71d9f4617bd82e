"""Off-screen pictures of meshes, part labels and colour transfers, returned as :class:`Picture`.

Rendering goes through pyvista/VTK without a display; :func:`~densemap.viz.gl.check_offscreen_gl`
runs first (VTK segfaults rather than raising without a backend), and pyvista is imported
only after it, inside the rendering functions, so ``import densemap.viz`` stays cheap.

Parts get flat per-face colours (a face takes the majority label of its corners,
:func:`densemap.parts.face_labels`) from :mod:`densemap.viz.palette`; with
``ids_as_colors=True`` the meshes are drawn unlit, without anti-aliasing, titles or
legend, so :func:`~densemap.viz.palette.ids_from_pixels` reads the label ids back.

Each function returns a :class:`~densemap.viz.picture.Picture` (shown inline in a notebook),
writes it to ``path`` when one is given and displays it with ``show=True``. Without an
off-screen OpenGL backend the picture is drawn with matplotlib instead
(:mod:`densemap.viz.fallback`), and the Picture's ``note`` says so; ``fallback=False``
raises :class:`~densemap.errors.GLBackendError` instead.

A map says its direction in its name: ``b_to_a[i]`` is the A vertex for B vertex ``i``,
so a field on A is carried to B by ``field_b = field_a[b_to_a]``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np

from ..errors import GLBackendError
from ..mesh import Mesh
from ..parts import PartLabels
from .gl import check_offscreen_gl, load_triton_first
from .palette import BACKGROUND_COLOR, colour_spec, color_field, to_u8
from .picture import Picture, _png_path, write_png

if TYPE_CHECKING:  # pragma: no cover
    import pyvista

__all__ = ["render_parts", "render_meshes", "render_transfer", "write_png", "Picture", "VIEWS"]

View = Literal["front", "back", "left", "right", "top", "bottom"]
VIEWS = ("front", "back", "left", "right", "top", "bottom")


def _pyvista():
    check_offscreen_gl()
    load_triton_first()  # before VTK loads Mesa's LLVM: see its docstring
    import pyvista

    return pyvista


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


# ----------------------------------------------------------------------------- rendering
_FILL = 0.9  # fraction of a panel the mesh spans along its tighter direction


def _polydata(pv, mesh: Mesh) -> "pyvista.PolyData":
    faces = np.hstack([np.full((mesh.n_faces, 1), 3, np.int64), mesh.faces]).ravel()
    return pv.PolyData(np.asarray(mesh.vertices, dtype=np.float64), faces)


def _render(panels: list[dict], shape: tuple[int, int], path, *, size, up, front, ids_as_colors: bool, legend: bool,
            show: bool = False, fallback: bool = True) -> Picture:
    """Draw ``panels`` (dicts: row, col, mesh, spec, view, title) in a grid; save and show as asked."""
    path = None if path is None else _png_path(path)
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
    for p in panels:
        p["direction"], p["view_up"] = _camera(p["view"], u, f)
    try:
        pv = _pyvista()
    except GLBackendError as exc:
        if not fallback or ids_as_colors:  # exact id colours need VTK's unlit, aliasing-free render
            raise
        from .fallback import render_panels

        image = render_panels(panels, shape, size=(width, height), entries=entries, background=BACKGROUND_COLOR)
        pic = Picture(image, renderer="matplotlib", note=f"drawn with matplotlib, flat-shaded without a depth "
                      f"buffer, because VTK could not render off-screen: {exc}")
    else:
        pic = Picture(_render_vtk(pv, panels, shape, (width, height), col_weights, legend_px, entries, ids_as_colors))
    if path is not None:
        pic.save(path)
    if show:
        pic.show()
    return pic


TITLE_SIZE = 12  # pyvista font size of a panel's title, when it fits
_TITLE_PX_PER_CHAR = 1.3  # measured: a character of the titles' font is about 1.3 px wide per font size unit


def _title_size(title: str, panel_px: float) -> int:
    """The title's font size: ``TITLE_SIZE``, smaller when the title would not fit in 90 %
    of its panel's width (side-by-side titles of narrow panels would run into each other)."""
    fit = int(0.9 * panel_px / (_TITLE_PX_PER_CHAR * max(len(title), 1)))
    return max(6, min(TITLE_SIZE, fit))


def _render_vtk(pv, panels, shape, size, col_weights, legend_px, entries, ids_as_colors) -> np.ndarray:
    rows, cols = shape
    width, height = size

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
    panel_px = (width - legend_px) / cols  # a mesh panel's width (the legend column takes legend_px)
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
            direction, view_up = p["direction"], p["view_up"]
            centre = 0.5 * (p["mesh"].vertices.min(0) + p["mesh"].vertices.max(0))
            dist = max(p["mesh"].bounding_box_diagonal, 1e-9) * 3.0
            pl.camera_position = [tuple(centre + dist * direction), tuple(centre), tuple(view_up)]
            pl.reset_camera()
            pl.renderer.ResetCameraScreenSpace(_FILL)  # fit the projected mesh, not its bounding sphere
            if p.get("title") and not ids_as_colors:
                pl.add_text(p["title"], position="upper_edge", font_size=_title_size(p["title"], panel_px),
                            color="black")
        if legend_px:
            pl.subplot(0, cols)
            _add_legend(pv, pl.renderer, entries)
        image = pl.screenshot(return_img=True)
    finally:
        pl.close()
    return np.asarray(image, dtype=np.uint8)


def _add_legend(pv, renderer, entries: dict[str, np.ndarray]) -> None:
    """Part names in black beside colour swatches, top-aligned in ``renderer``'s viewport."""
    from vtkmodules.vtkRenderingAnnotation import vtkLegendBoxActor

    leg = vtkLegendBoxActor()
    leg.SetNumberOfEntries(len(entries))
    for i, (name, color) in enumerate(entries.items()):
        swatch = pv.ImageData(dimensions=(4, 4, 1))
        swatch.point_data["rgb"] = np.tile(to_u8(color), (16, 1))
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
    path: str | os.PathLike | None = None,
    *,
    views: Sequence[View] = ("front", "back"),
    size: tuple[int, int] = (800, 800),
    colors: np.ndarray | None = None,
    ids_as_colors: bool = False,
    legend: bool = True,
    up: Axis = "y",
    front: Axis = "z",
    show: bool = False,
    fallback: bool = True,
) -> Picture:
    """Picture of part labels on a mesh: flat per-face colours, the views side by side.

    Parameters
    ----------
    mesh : Mesh
    parts : PartLabels or (V,) int
        Per-vertex labels; ``-1`` (unlabelled) is drawn grey. A face takes the
        majority label of its corners (the lowest when all three differ).
    path : path-like, optional
        Save the picture to this ``.png`` (atomically); None: not saved.
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
    show : bool
        Display the picture now (inline in a notebook, see :meth:`Picture.show`).
    fallback : bool
        Without an off-screen OpenGL backend, draw with matplotlib (the Picture's ``note``
        says so); False raises :class:`~densemap.errors.GLBackendError` instead.

    Returns
    -------
    Picture
        Shown inline by a notebook; ``numpy.asarray(picture)`` is the ``(H, W, 3)`` uint8 image.

    Raises
    ------
    GLBackendError
        No off-screen OpenGL backend (see :func:`check_offscreen_gl`).
    """
    views = _check_views(views)
    spec = colour_spec(mesh, parts, colors)
    panels = [
        dict(row=0, col=j, mesh=mesh, spec=spec, view=v, title=v)
        for j, v in enumerate(views)
    ]
    return _render(panels, (1, len(views)), path, size=size, up=up, front=front, ids_as_colors=ids_as_colors,
                   legend=legend, show=show, fallback=fallback)


def render_meshes(
    meshes_and_values: Sequence[tuple[Mesh, PartLabels | np.ndarray | None]],
    path: str | os.PathLike | None = None,
    *,
    titles: Sequence[str] | None = None,
    views: Sequence[View] = ("front",),
    size: tuple[int, int] | None = None,
    ids_as_colors: bool = False,
    legend: bool = False,
    up: Axis = "y",
    front: Axis = "z",
    show: bool = False,
    fallback: bool = True,
) -> Picture:
    """Several meshes side by side (one column each, one row per view), with titles.

    Parameters
    ----------
    meshes_and_values : sequence of (Mesh, values)
        ``values`` per mesh: ``None`` (plain grey), ``(V, 3)`` float colours in
        ``[0, 1]`` (interpolated across faces), or ``PartLabels`` / ``(V,)`` int
        labels (flat per-face palette colours; equal names give equal colours).
    path : path-like, optional
        Save the picture to this ``.png`` (atomically); None: not saved.
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
    show : bool
        Display the picture now (inline in a notebook, see :meth:`Picture.show`).
    fallback : bool
        Without an off-screen OpenGL backend, draw with matplotlib (the Picture's ``note``
        says so); False raises :class:`~densemap.errors.GLBackendError` instead.

    Returns
    -------
    Picture
        Shown inline by a notebook; ``numpy.asarray(picture)`` is the ``(H, W, 3)`` uint8 image.
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
        spec = colour_spec(mesh, values)
        for i, v in enumerate(views):
            if len(views) == 1:
                title = titles[j]
            else:
                title = f"{titles[j]} ({v})" if i == 0 else v
            panels.append(dict(row=i, col=j, mesh=mesh, spec=spec, view=v, title=title))
    return _render(panels, (len(views), len(items)), path, size=size, up=up, front=front,
                   ids_as_colors=ids_as_colors, legend=legend, show=show, fallback=fallback)


def render_transfer(
    mesh_a: Mesh,
    mesh_b: Mesh,
    b_to_a,
    path: str | os.PathLike | None = None,
    *,
    field: np.ndarray | Literal["position"] | None = None,
    titles: Sequence[str] = ("A", "B"),
    views: Sequence[View] = ("front", "back"),
    size: tuple[int, int] | None = None,
    up: Axis = "y",
    front: Axis = "z",
    show: bool = False,
    fallback: bool = True,
) -> Picture:
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
    path : path-like, optional
        Save the picture to this ``.png`` (atomically); None: not saved.
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
    show : bool
        Display the picture now (inline in a notebook, see :meth:`Picture.show`).
    fallback : bool
        Without an off-screen OpenGL backend, draw with matplotlib (the Picture's ``note``
        says so); False raises :class:`~densemap.errors.GLBackendError` instead.

    Returns
    -------
    Picture
        Shown inline by a notebook; ``numpy.asarray(picture)`` is the ``(H, W, 3)`` uint8 image.
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
    return render_meshes([(mesh_a, colors_a), (mesh_b, colors_b)], path, titles=titles, views=views, size=size, up=up,
                         front=front, show=show, fallback=fallback)
