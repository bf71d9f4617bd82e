"""Writing chart atlases in the formats other tools read.

=====================  =====================================================================
function               file
=====================  =====================================================================
:func:`save_uv_processed`  DensePose's ``UV_Processed.mat`` (the variables, names, shapes and
                           dtypes of the file DensePose ships for SMPL)
:func:`save_texture_atlas` DensePose's texture-atlas picture: a 4 x 6 grid of square tiles, one
                           per chart, for texture transfer
:func:`save_obj_atlas`     OBJ with ``vt`` texture coordinates and a ``g chart_<id>`` group
                           statement wherever the chart changes (face order kept)
:func:`save_ply_atlas`     binary PLY with per-vertex ``part``, ``chart``, ``u``, ``v``
:func:`export_atlas`       any of these or densemap's ``.npz``, by the file's suffix
=====================  =====================================================================

Each writer goes through :func:`densemap._io.atomic_path`; :mod:`densemap.charts.io`
reads ``.mat``, ``.obj`` and ``.npz`` back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ..errors import AtlasError
from ..mesh import Mesh
from ..parts import PartLabels
from .atlas import ChartAtlas
from .iuv import vertex_to_iuv

__all__ = [
    "ATLAS_SUFFIXES",
    "TEXTURE_GRID",
    "uv_processed_arrays",
    "save_uv_processed",
    "texture_atlas_coords",
    "render_texture_atlas",
    "save_texture_atlas",
    "sample_texture_atlas",
    "save_obj_atlas",
    "save_ply_atlas",
    "export_atlas",
]

ATLAS_SUFFIXES = (".npz", ".mat", ".obj", ".ply", ".png")
#: DensePose's texture atlas: 4 columns x 6 rows of tiles; chart p (1-based) is in
#: column (p - 1) // 6, row (p - 1) % 6.
TEXTURE_GRID = (6, 4)
# The IUV images DensePose writes store U and V times 255; All_U / All_V use that scale.
_UV_PIXELS = 255.0


# ----------------------------------------------------------------------------- UV_Processed.mat
def uv_processed_arrays(atlas: ChartAtlas) -> dict[str, np.ndarray]:
    """The variables of DensePose's ``UV_Processed.mat`` for an atlas.

    Every distinct ``(vertex, chart, u, v)`` of a charted face corner becomes one
    "DensePose vertex" (a mesh vertex on a chart seam is duplicated, once per chart
    copy), numbered in order of first use by the faces. Faces in no chart (chart 0)
    are left out, as DensePose's SMPL file leaves out two of SMPL's faces.

    Returns
    -------
    dict
        ``All_FaceIndices`` (F, 1) uint8, chart 1..24 of each face;
        ``All_Faces`` (F, 3) uint32, 1-based corners into the DensePose vertices;
        ``All_U``, ``All_V`` (N, 1) float64, the coordinates in 8-bit texture pixels
        (times 255); ``All_U_norm``, ``All_V_norm`` (N, 1) float64 in [0, 1];
        ``All_vertices`` (1, N) uint32, the 1-based mesh vertex of each DensePose vertex.
    """
    if atlas.n_charts > 255:
        raise AtlasError(f"{atlas.name}: UV_Processed.mat stores chart ids as uint8; the atlas has {atlas.n_charts} charts")
    on = np.flatnonzero(atlas.charts > 0)
    if not len(on):
        raise AtlasError(f"{atlas.name}: no face is in a chart; nothing to write")
    key = np.c_[atlas.faces[on].reshape(-1), np.repeat(atlas.charts[on], 3), atlas.uv[on].reshape(-1, 2)]
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))  # number by first use
    corner = rank[inverse.ravel()].reshape(-1, 3)
    rows = key[np.sort(first)]
    return {
        "All_FaceIndices": atlas.charts[on].astype(np.uint8)[:, None],
        "All_Faces": (corner + 1).astype(np.uint32),
        "All_U": (rows[:, 2] * _UV_PIXELS)[:, None].astype(np.float64),
        "All_V": (rows[:, 3] * _UV_PIXELS)[:, None].astype(np.float64),
        "All_U_norm": rows[:, 2][:, None].astype(np.float64),
        "All_V_norm": rows[:, 3][:, None].astype(np.float64),
        "All_vertices": (rows[:, 0].astype(np.int64) + 1).astype(np.uint32)[None, :],
    }


def save_uv_processed(atlas: ChartAtlas, path: str | os.PathLike) -> Path:
    """Write an atlas as DensePose's ``UV_Processed.mat`` (MATLAB 5 format, atomically).

    See :func:`uv_processed_arrays` for the variables; :func:`densemap.charts.load_uv_processed`
    (or DensePose's own ``scipy.io.loadmat`` readers) reads it back.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from densemap.charts import reference_atlas, load_uv_processed
    >>> from densemap.data import reference
    >>> atlas = reference_atlas("chimp")
    >>> p = save_uv_processed(atlas, pathlib.Path(tempfile.mkdtemp()) / "UV_Processed.mat")
    >>> back = load_uv_processed(p, reference("chimp").mesh)
    >>> bool(np.array_equal(back.uv, atlas.uv)), bool(np.array_equal(back.charts, atlas.charts))
    (True, True)
    """
    import scipy.io

    arrays = uv_processed_arrays(atlas)
    path = Path(path)
    with atomic_path(path) as tmp:
        scipy.io.savemat(str(tmp), arrays, format="5", do_compression=True, oned_as="column")
    return path


# ----------------------------------------------------------------------------- texture atlas
def texture_atlas_coords(i, u, v, *, tile: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (x, y) of chart coordinates in DensePose's texture atlas (4 x 6 tiles of ``tile`` px).

    Inside a tile ``x = U (tile - 1)`` and ``y = (1 - V) (tile - 1)``; chart ``p`` sits in
    column ``(p - 1) // 6`` and row ``(p - 1) % 6``.
    """
    i = np.asarray(i, dtype=np.int64)
    col, row = (i - 1) // TEXTURE_GRID[0], (i - 1) % TEXTURE_GRID[0]
    return col * tile + np.asarray(u) * (tile - 1), row * tile + (1.0 - np.asarray(v)) * (tile - 1)


def _raster(tri: np.ndarray, tile: int):
    """Pixels of a tile covered by 2-D triangles (m, 3, 2) in pixel units (x right, y down).

    Returns (pixel rows, pixel columns, triangle index, barycentric (P, 3)) of every
    pixel centre inside a triangle (closed: edges count), one triangle per pixel.
    """
    lo = np.clip(np.ceil(tri.min(axis=1) - 1e-9).astype(np.int64), 0, tile - 1)
    hi = np.clip(np.floor(tri.max(axis=1) + 1e-9).astype(np.int64), 0, tile - 1)
    nx, ny = np.maximum(hi[:, 0] - lo[:, 0] + 1, 0), np.maximum(hi[:, 1] - lo[:, 1] + 1, 0)
    cnt = nx * ny
    t = np.repeat(np.arange(len(tri)), cnt)
    k = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    px, py = lo[t, 0] + k % nx[t], lo[t, 1] + k // nx[t]
    a, b, c = tri[t, 0], tri[t, 1], tri[t, 2]
    e1, e2 = b - a, c - a
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    dx, dy = px - a[:, 0], py - a[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        l1 = (dx * e2[:, 1] - dy * e2[:, 0]) / det
        l2 = (e1[:, 0] * dy - e1[:, 1] * dx) / det
    w = np.c_[1.0 - l1 - l2, l1, l2]
    inside = (det != 0) & (w >= -1e-9).all(axis=1)
    return py[inside], px[inside], t[inside], np.clip(w[inside], 0.0, 1.0)


def render_texture_atlas(atlas: ChartAtlas, colors, *, tile: int = 200, background=(255, 255, 255),
                         bleed: int = 2) -> np.ndarray:
    """(6 tile, 4 tile, 3) uint8: per-vertex colours painted into DensePose's texture atlas.

    Each chart's triangles are drawn into its tile at ``x = U (tile - 1)``,
    ``y = (1 - V) (tile - 1)`` (:func:`texture_atlas_coords`), colours interpolated
    barycentrically at the pixel centres; pixels in no triangle within ``bleed`` pixels
    of a drawn one take its colour (so that lookups on a chart's border do not fall
    off it), the others get ``background``.

    Parameters
    ----------
    atlas : ChartAtlas
        At most 24 charts (the grid's size).
    colors : (V, 3) float in [0, 1] or uint8
    tile, bleed : int
    """
    from scipy.ndimage import distance_transform_edt

    if atlas.n_charts > TEXTURE_GRID[0] * TEXTURE_GRID[1]:
        raise AtlasError(f"{atlas.name}: the texture atlas has room for 24 charts, the atlas has {atlas.n_charts}")
    col = np.asarray(colors)
    if col.shape != (atlas.n_vertices, 3):
        raise AtlasError(f"colors must have shape ({atlas.n_vertices}, 3), got {col.shape}")
    col = col.astype(np.float64) / 255.0 if col.dtype.kind in "iu" else np.clip(col.astype(np.float64), 0, 1)
    rows, cols = TEXTURE_GRID
    img = np.empty((rows * tile, cols * tile, 3), np.uint8)
    img[:] = np.asarray(background, np.uint8)
    for p in range(1, atlas.n_charts + 1):
        fid = np.flatnonzero(atlas.charts == p)
        if not len(fid):
            continue
        uv = atlas.uv[fid]
        tri = np.stack([uv[..., 0] * (tile - 1), (1.0 - uv[..., 1]) * (tile - 1)], axis=-1)
        r, c, t, w = _raster(tri, tile)
        rgb = np.einsum("pk,pkc->pc", w, col[atlas.faces[fid[t]]])
        block = np.zeros((tile, tile, 3), np.uint8)
        block[r, c] = np.rint(rgb * 255).astype(np.uint8)
        drawn = np.zeros((tile, tile), bool)
        drawn[r, c] = True
        dist, (ir, ic) = distance_transform_edt(~drawn, return_indices=True)
        near = dist <= bleed
        r0, c0 = (p - 1) % rows * tile, (p - 1) // rows * tile
        img[r0 : r0 + tile, c0 : c0 + tile][near] = block[ir[near], ic[near]]
    return img


def save_texture_atlas(atlas: ChartAtlas, path: str | os.PathLike, *, mesh: Mesh | None = None, colors=None,
                       tile: int = 200) -> Path:
    """Write DensePose's texture-atlas picture (PNG) of an atlas.

    ``colors`` (V, 3) default to the mesh's position colours
    (:func:`densemap.viz.palette.color_field` convention: x, y, z over the bounding box
    as red, green, blue), so each tile shows which part of the body it covers.
    Painting over the picture and reading it back with :func:`sample_texture_atlas` is
    DensePose's texture transfer.
    """
    from PIL import Image

    if colors is None:
        if mesh is None:
            raise AtlasError("save_texture_atlas needs the mesh (for its position colours) or colors")
        lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
        colors = np.where(hi > lo, (mesh.vertices - lo) / np.where(hi > lo, hi - lo, 1.0), 0.5)
    img = render_texture_atlas(atlas, colors, tile=tile)
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format="PNG")
    return path


def sample_texture_atlas(image, i, u, v) -> np.ndarray:
    """(..., C) colours of a texture-atlas picture (6 tile, 4 tile, C) at chart coordinates.

    Nearest pixel; ``I = 0`` and non-finite coordinates give zeros.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[0] * TEXTURE_GRID[1] != img.shape[1] * TEXTURE_GRID[0]:
        raise AtlasError(f"a texture atlas has shape (6 N, 4 N, C), got {img.shape}")
    tile = img.shape[0] // TEXTURE_GRID[0]
    i = np.asarray(i, dtype=np.float64)
    ok = np.isfinite(i) & (i >= 1) & (i <= 24) & np.isfinite(u) & np.isfinite(v)
    x, y = texture_atlas_coords(np.where(ok, i, 1), np.where(ok, u, 0), np.where(ok, v, 0), tile=tile)
    xi = np.clip(np.rint(x).astype(np.int64), 0, img.shape[1] - 1)
    yi = np.clip(np.rint(y).astype(np.int64), 0, img.shape[0] - 1)
    out = img[yi, xi]
    out[~ok] = 0
    return out


# ----------------------------------------------------------------------------- OBJ / PLY
def _check_pair(mesh: Mesh, atlas: ChartAtlas) -> None:
    if mesh.n_vertices != atlas.n_vertices or mesh.n_faces != atlas.n_faces or not np.array_equal(mesh.faces, atlas.faces):
        raise AtlasError(f"{atlas.name}: the atlas does not stand on the faces of {mesh.name} "
                         f"({atlas.n_faces} vs {mesh.n_faces} faces)")


def save_obj_atlas(mesh: Mesh, atlas: ChartAtlas, path: str | os.PathLike, *, precision: int = 17) -> Path:
    """OBJ with the mesh's vertices in order, one ``vt`` per distinct chart corner and chart groups.

    Faces keep their order; a ``g chart_<id>`` line starts each run of faces of one chart
    (a chart may open several runs), so :func:`densemap.charts.load_obj_atlas` and
    :func:`densemap.load_parts` read the charts back. Faces in no chart are in
    ``g chart_0`` without texture coordinates.
    """
    _check_pair(mesh, atlas)
    fmt = f"{{:.{precision}g}}"
    on = atlas.charts > 0
    key = atlas.uv[on].reshape(-1, 2)
    table, inv = np.unique(key, axis=0, return_inverse=True)
    vt = -np.ones((atlas.n_faces, 3), np.int64)
    vt[on] = inv.reshape(-1, 3) + 1
    f1 = mesh.faces + 1
    lines = [f"# written by densemap: {mesh.n_vertices} vertices, {mesh.n_faces} faces, {atlas.n_charts} charts\n"]
    lines += [f"v {fmt.format(x)} {fmt.format(y)} {fmt.format(z)}\n" for x, y, z in mesh.vertices]
    lines += [f"vt {fmt.format(a)} {fmt.format(b)}\n" for a, b in table]
    last = None
    for k in range(mesh.n_faces):
        c = int(atlas.charts[k])
        if c != last:
            lines.append(f"g chart_{c}\n")
            last = c
        a, b, cc = f1[k]
        if c > 0:
            ta, tb, tc = vt[k]
            lines.append(f"f {a}/{ta} {b}/{tb} {cc}/{tc}\n")
        else:
            lines.append(f"f {a} {b} {cc}\n")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(lines))
    return path


def save_ply_atlas(mesh: Mesh, atlas: ChartAtlas, path: str | os.PathLike, *, parts: PartLabels | None = None) -> Path:
    """Binary PLY: vertices (x, y, z double), per-vertex ``part``, ``chart``, ``u``, ``v``, and faces.

    A seam vertex takes the (chart, u, v) of its lowest chart (:func:`vertex_to_iuv`);
    ``part`` is ``parts``' label (``-1`` without parts) and a sidecar
    ``<name>.names.json`` lists the part names, so ``densemap.load_parts(path, field="part")``
    reads them back.
    """
    _check_pair(mesh, atlas)
    iuv = vertex_to_iuv(np.arange(mesh.n_vertices), atlas)
    lab = -np.ones(mesh.n_vertices, np.int32) if parts is None else parts.check_mesh(mesh).labels.astype(np.int32)
    vdt = np.dtype([("x", "<f8"), ("y", "<f8"), ("z", "<f8"), ("part", "<i4"), ("chart", "<i4"), ("u", "<f8"), ("v", "<f8")])
    vert = np.empty(mesh.n_vertices, vdt)
    vert["x"], vert["y"], vert["z"] = mesh.vertices.T
    vert["part"], vert["chart"] = lab, iuv[:, 0].astype(np.int32)
    vert["u"], vert["v"] = np.nan_to_num(iuv[:, 1], nan=-1.0), np.nan_to_num(iuv[:, 2], nan=-1.0)
    fdt = np.dtype([("n", "u1"), ("i", "<i4", (3,))])
    face = np.empty(mesh.n_faces, fdt)
    face["n"], face["i"] = 3, mesh.faces
    header = ("ply\nformat binary_little_endian 1.0\ncomment written by densemap (chart 0: no chart, u = v = -1)\n"
              f"element vertex {mesh.n_vertices}\nproperty double x\nproperty double y\nproperty double z\n"
              "property int part\nproperty int chart\nproperty double u\nproperty double v\n"
              f"element face {mesh.n_faces}\nproperty list uchar int vertex_indices\nend_header\n")
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(header.encode("ascii"))
            fh.write(vert.tobytes())
            fh.write(face.tobytes())
    if parts is not None:
        with atomic_path(path.with_suffix(".names.json")) as tmp:
            tmp.write_text(json.dumps(list(parts.names)))
    return path


def export_atlas(mesh: Mesh, atlas: ChartAtlas, path: str | os.PathLike, *, parts: PartLabels | None = None,
                 tile: int = 200) -> Path:
    """Write an atlas in the format of ``path``'s suffix (see :data:`ATLAS_SUFFIXES`).

    ``.npz`` densemap atlas, ``.mat`` DensePose's UV_Processed, ``.obj`` with ``vt`` and
    chart groups, ``.ply`` with per-vertex part/chart/u/v, ``.png`` the texture atlas.
    """
    from .io import save_atlas

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return save_atlas(atlas, path)
    if suffix == ".mat":
        return save_uv_processed(atlas, path)
    if suffix == ".obj":
        return save_obj_atlas(mesh, atlas, path)
    if suffix == ".ply":
        return save_ply_atlas(mesh, atlas, path, parts=parts)
    if suffix == ".png":
        return save_texture_atlas(atlas, path, mesh=mesh, tile=tile)
    raise AtlasError(f"{path}: unsupported atlas format {suffix!r}; expected one of {list(ATLAS_SUFFIXES)}")
