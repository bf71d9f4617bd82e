"""The pictures drawn with matplotlib when VTK has no off-screen OpenGL backend.

The same panels as the VTK renderer (meshes, colours, views, titles, legend), drawn as
flat-shaded 2D polygons: each panel projects its mesh orthographically along the view
direction, drops the faces turned away from the camera and paints the rest back to
front (the painter's algorithm). matplotlib's own 3D axes would do the same with a
perspective we cannot aim like VTK's camera, so the projection is written here (a few
lines of numpy). Intersecting or interlocking surfaces can be drawn in the wrong order;
the VTK pictures have a depth buffer and do not.
"""

from __future__ import annotations

import numpy as np

__all__ = ["render_panels"]

_AMBIENT, _DIFFUSE = 0.35, 0.65


def _project(vertices: np.ndarray, direction: np.ndarray, view_up: np.ndarray) -> np.ndarray:
    """(V, 3): screen x, screen y and depth (larger is nearer the camera) of each vertex."""
    z = direction / np.linalg.norm(direction)
    y = view_up - (view_up @ z) * z
    y = y / np.linalg.norm(y)
    x = np.cross(y, z)
    centred = vertices - 0.5 * (vertices.min(0) + vertices.max(0))
    return centred @ np.stack([x, y, z], axis=1)


def _panel_polygons(mesh, spec, direction, view_up):
    """Screen triangles (F', 3, 2) back to front and their shaded RGB colours (F', 3)."""
    kind, rgb, _ = spec
    p = _project(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(direction, float), np.asarray(view_up, float))
    tri = p[mesh.faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normal, axis=1)
    facing = normal[:, 2] / np.maximum(length, 1e-300)
    colors = rgb.astype(np.float64) / 255.0
    if kind == "point":
        colors = colors[mesh.faces].mean(axis=1)
    keep = (facing > 0) & (length > 0)
    order = np.flatnonzero(keep)[np.argsort(tri[keep, :, 2].mean(axis=1), kind="stable")]
    shade = _AMBIENT + _DIFFUSE * facing[order, None]
    return tri[order, :, :2], np.clip(colors[order] * shade, 0, 1)


def render_panels(panels: list[dict], shape: tuple[int, int], *, size: tuple[int, int],
                  entries: dict, background) -> np.ndarray:
    """Draw ``panels`` (dicts: row, col, mesh, spec, direction, view_up, title) in a grid.

    Returns
    -------
    (H, W, 3) uint8
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    width, height = size
    rows, cols = shape
    fig = Figure(figsize=(width / 100, height / 100), dpi=100, facecolor=background)
    FigureCanvasAgg(fig)
    legend_cols = 1 if entries else 0
    grid = fig.add_gridspec(rows, cols + legend_cols, width_ratios=[3] * cols + [1] * legend_cols,
                            left=0.01, right=0.99, top=0.94, bottom=0.01, wspace=0.02, hspace=0.08)
    for p in panels:
        ax = fig.add_subplot(grid[p["row"], p["col"]])
        polys, colors = _panel_polygons(p["mesh"], p["spec"], p["direction"], p["view_up"])
        ax.add_collection(PolyCollection(polys, facecolors=colors, edgecolors=colors, linewidths=0.3,
                                         antialiased=True))
        pts = polys.reshape(-1, 2) if len(polys) else np.zeros((1, 2))
        ax.set_xlim(pts[:, 0].min(), pts[:, 0].max())
        ax.set_ylim(pts[:, 1].min(), pts[:, 1].max())
        ax.set_aspect("equal", adjustable="box")
        ax.set_facecolor(background)
        ax.axis("off")
        if p.get("title"):
            ax.set_title(p["title"], fontsize=10)
    if entries:
        ax = fig.add_subplot(grid[:, cols])
        ax.axis("off")
        handles = [Patch(facecolor=np.asarray(c, float).reshape(-1)[:3], label=n) for n, c in entries.items()]
        ax.legend(handles=handles, loc="upper left", fontsize=7, frameon=False, ncol=1 + len(handles) // 40)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
