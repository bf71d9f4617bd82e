"""Reading and writing chart atlases (:class:`~densemap.charts.ChartAtlas`).

* :func:`atlas_from_uv` / :func:`load_obj_atlas`: per-corner texture coordinates (OBJ ``vt``)
  plus a chart label per face (given, or read from the OBJ's face groups);
* :func:`load_uv_processed`: DensePose's ``UV_Processed.mat`` for SMPL (24 charts);
* :func:`save_atlas` / :func:`load_atlas`: densemap's own compressed ``.npz``;
  :func:`load_atlas` also reads ``.mat`` and ``.obj`` by suffix.

All are re-exported by :mod:`densemap.charts`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .._io import atomic_path
from .._paths import check_input_file
from ..errors import AtlasError
from ..mesh import Mesh, read_obj
from .atlas import ChartAtlas

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "chart_id_of_group",
    "atlas_from_uv",
    "load_obj_atlas",
    "load_uv_processed",
    "save_atlas",
    "load_atlas",
]

FORMAT = "densemap.atlas"
FORMAT_VERSION = 1


# ----------------------------------------------------------------------------- texture coordinates
def atlas_from_uv(mesh: Mesh, face_charts, *, name: str | None = None) -> ChartAtlas:
    """Atlas from a mesh's per-corner texture coordinates and a chart id per face.

    Parameters
    ----------
    mesh : Mesh
        With ``uv`` (F, 3, 2) in [0, 1] (e.g. read from OBJ ``vt``).
    face_charts : (F,) int
        Chart id (1..C) of each face, 0 = none.
    """
    if mesh.uv is None:
        raise AtlasError(f"{mesh.name}: the mesh has no texture coordinates (OBJ 'vt')")
    fc = np.asarray(face_charts)
    if fc.shape != (mesh.n_faces,):
        raise AtlasError(f"{mesh.name}: face_charts must have one chart id per face ({mesh.n_faces}), got shape {fc.shape}")
    missing = (fc > 0) & ~np.isfinite(mesh.uv).all(axis=(1, 2))
    if missing.any():
        raise AtlasError(f"{mesh.name}: face {int(np.flatnonzero(missing)[0])} has a chart but no texture coordinates")
    return ChartAtlas(mesh.faces, fc, mesh.uv, mesh.n_vertices, name=name or f"uv atlas of {mesh.name}", mesh_sha1=mesh.sha1)


def chart_id_of_group(name: str, chart_names: tuple[str, ...] | None) -> int | None:
    m = re.search(r"(\d+)\s*$", name)
    if m:
        return int(m.group(1))
    if chart_names and name in chart_names:
        return chart_names.index(name) + 1
    return None


def load_obj_atlas(path: str | os.PathLike, *, face_charts=None) -> tuple[Mesh, ChartAtlas]:
    """Mesh and atlas from an OBJ file with ``vt`` coordinates.

    Chart ids come from ``face_charts`` (F,) or else from the face groups: a group name
    ending in an integer (``chart_7``, ``7``) or one of the 24 DensePose chart names
    (:func:`densemap.data.chart_names`) gives its chart; faces in no group get chart 0.
    """
    path = Path(path)
    d = read_obj(path)
    mesh = Mesh(d.vertices, d.faces, d.uv, name=str(path))
    if face_charts is None:
        if not d.group_names:
            raise AtlasError(f"{path}: no 'g'/'o' groups to take chart ids from; pass face_charts")
        try:
            from ..data import chart_names

            names = chart_names()
        except (OSError, FileNotFoundError):
            names = None
        ids = [chart_id_of_group(g, names) for g in d.group_names]
        if None in ids:
            raise AtlasError(f"{path}: cannot read a chart id from group {d.group_names[ids.index(None)]!r}; "
                             "expected a name ending in an integer or a DensePose chart name")
        face_charts = np.where(d.face_groups >= 0, np.asarray(ids, np.int64)[np.maximum(d.face_groups, 0)], 0)
    return mesh, atlas_from_uv(mesh, face_charts, name=f"uv atlas of {path.name}")


def _integers(a: np.ndarray, name: str, path: Path) -> np.ndarray:
    """int64 of an array that must hold finite integers (MATLAB stores them as doubles)."""
    if a.dtype.kind == "f" and a.size and (~np.isfinite(a) | (np.mod(a, 1) != 0) | (np.abs(a) > 2**53)).any():
        raise AtlasError(f"{path}: {name} must hold integers")
    if a.dtype.kind not in "iuf":
        raise AtlasError(f"{path}: {name} must be a numeric array, got {a.dtype}")
    return a.astype(np.int64)


def load_uv_processed(path: str | os.PathLike, mesh: Mesh | None = None) -> ChartAtlas:
    """DensePose's SMPL atlas from ``UV_Processed.mat``.

    Reads ``All_FaceIndices`` (chart of each face), ``All_Faces`` (1-based corners into the
    seam-duplicated "DensePose vertices"), ``All_U_norm``, ``All_V_norm`` (their (u, v))
    and ``All_vertices`` (1-based SMPL vertex of each DensePose vertex).

    Parameters
    ----------
    path : path-like
    mesh : Mesh, optional
        The SMPL mesh (6890 vertices) the atlas stands on; checked when given.

    Returns
    -------
    ChartAtlas
        On the SMPL vertices (its faces are DensePose's 13774, not SMPL's 13776).
    """
    import scipy.io

    path = check_input_file(path, what="MATLAB atlas file", error=AtlasError)
    try:
        m = scipy.io.loadmat(str(path))
    except (OSError, ValueError, TypeError, NotImplementedError, scipy.io.matlab.MatReadError) as exc:
        raise AtlasError(f"{path}: cannot read MATLAB file ({type(exc).__name__}: {str(exc)[:160]})") from None
    need = ("All_FaceIndices", "All_Faces", "All_U_norm", "All_V_norm", "All_vertices")
    missing = [k for k in need if k not in m]
    if missing:
        raise AtlasError(f"{path}: missing variables {missing}; expected {list(need)} (DensePose UV_Processed.mat)")
    try:
        fi = np.asarray(m["All_FaceIndices"]).ravel()
        fa = np.asarray(m["All_Faces"])
        un, vn = np.asarray(m["All_U_norm"], np.float64).ravel(), np.asarray(m["All_V_norm"], np.float64).ravel()
        av = _integers(np.asarray(m["All_vertices"]).ravel(), "All_vertices", path)
        fa = _integers(fa, "All_Faces", path).reshape(fa.shape)
    except (TypeError, ValueError) as exc:
        raise AtlasError(f"{path}: the variables are not numeric arrays ({exc})") from None
    if fa.ndim != 2 or fa.shape[1] != 3 or len(fi) != len(fa):
        raise AtlasError(f"{path}: All_Faces must be (F, 3) with one All_FaceIndices entry per face, got {fa.shape} and {fi.shape}")
    if not (len(un) == len(vn) == len(av)):
        raise AtlasError(f"{path}: All_U_norm, All_V_norm and All_vertices differ in length: {len(un)}, {len(vn)}, {len(av)}")
    if not len(av) or not fa.size:
        raise AtlasError(f"{path}: All_vertices or All_Faces is empty")
    if fa.min() < 1 or fa.max() > len(av):
        raise AtlasError(f"{path}: All_Faces must hold 1-based indices in 1..{len(av)}, got {fa.min()}..{fa.max()}")
    if av.min() < 1:
        raise AtlasError(f"{path}: All_vertices must be 1-based SMPL vertex ids, got {av.min()}")
    if mesh is not None and av.max() > mesh.n_vertices:
        raise AtlasError(f"{path}: All_vertices references vertex {int(av.max())} (1-based) but mesh {mesh.name} "
                         f"has {mesh.n_vertices} vertices")
    n_vertices = mesh.n_vertices if mesh is not None else int(av.max())
    faces = av[fa - 1] - 1
    uv = np.stack([un, vn], axis=1)[fa - 1]
    atlas = ChartAtlas(faces, fi, uv, n_vertices, name=f"DensePose atlas {path.name}",
                       mesh_sha1=None)
    if mesh is not None:
        atlas.check_mesh(mesh)
    return atlas


# ----------------------------------------------------------------------------- save / load
def save_atlas(atlas: ChartAtlas, path: str | os.PathLike, *, store_faces: bool = True) -> Path:
    """Write an atlas as a compressed ``.npz`` (atomically).

    (u, v) are stored as float32 through a table of unique values; ``store_faces=False``
    leaves the faces out (they are then the mesh's, given to :func:`load_atlas`).
    """
    import json

    path = Path(path)
    uv32 = np.ascontiguousarray(atlas.uv.astype(np.float32).reshape(-1, 2))
    table, idx = np.unique(uv32.view(np.uint64).ravel(), return_inverse=True)
    arrays = {
        "charts": atlas.charts.astype(np.uint8 if atlas.n_charts < 256 else np.int32),
        "uv_table": table.view(np.float32).reshape(-1, 2),
        "uv_index": idx.reshape(-1, 3).astype(np.uint16 if len(table) < 65536 else np.int32),
    }
    if store_faces:
        arrays["faces"] = atlas.faces.astype(np.int32)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": atlas.name, "n_vertices": atlas.n_vertices,
            "n_charts": atlas.n_charts, "mesh_sha1": atlas.mesh_sha1, "distortion": atlas.distortion}
    arrays["meta.json"] = np.array(json.dumps(meta))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return path


def load_atlas(path: str | os.PathLike, mesh: Mesh | None = None) -> ChartAtlas:
    """Read an atlas: ``.npz`` (:func:`save_atlas`), ``.mat`` (UV_Processed) or ``.obj`` (vt + groups).

    Parameters
    ----------
    path : path-like
    mesh : Mesh, optional
        Checked against the atlas (vertex count, sha1 when recorded); supplies the faces
        of an ``.npz`` written without them.
    """
    import json
    import zipfile

    path = Path(path)
    if not os.path.lexists(path):
        raise AtlasError(f"{path}: no such atlas file")
    check_input_file(path, what="atlas file", error=AtlasError)
    suffix = path.suffix.lower()
    if suffix == ".mat":
        return load_uv_processed(path, mesh)
    if suffix == ".obj":
        m, atlas = load_obj_atlas(path)
        if mesh is not None:
            atlas = ChartAtlas(atlas.faces, atlas.charts, atlas.uv, atlas.n_vertices, name=atlas.name).check_mesh(mesh)
        return atlas
    if suffix != ".npz":
        raise AtlasError(f"{path}: unsupported atlas format {suffix!r}; expected .npz, .mat or .obj")
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        meta = json.loads(str(d["meta.json"]))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError("not a densemap atlas")
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"format version {meta['format_version']} is newer than this densemap reads")
        table, index = d["uv_table"], d["uv_index"]
        if table.ndim != 2 or table.shape[1] != 2 or index.dtype.kind not in "iu" or index.ndim != 2:
            raise ValueError("uv_table must be (n, 2) and uv_index (F, 3) integers")
        if index.size and (index.min() < 0 or index.max() >= len(table)):
            raise ValueError(f"uv_index refers to entry {int(index.max())} of a {len(table)}-entry uv_table")
        uv = table.astype(np.float64)[index.astype(np.int64)]
        if not isinstance(meta.get("n_vertices"), int):
            raise ValueError("meta.json holds no integer n_vertices")
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, ValueError, TypeError, IndexError, RecursionError,
            json.JSONDecodeError) as exc:
        raise AtlasError(f"{path}: cannot read atlas ({type(exc).__name__}: {str(exc)[:160]})") from None
    faces = d.get("faces")
    if faces is None:
        if mesh is None:
            raise AtlasError(f"{path}: the atlas has no faces stored; pass its mesh")
        faces = mesh.faces
    try:
        atlas = ChartAtlas(faces, d["charts"], uv, meta["n_vertices"], n_charts=meta.get("n_charts"),
                           name=str(meta.get("name", path.name)), mesh_sha1=meta.get("mesh_sha1"),
                           distortion=meta.get("distortion"))
    except AtlasError as exc:
        raise AtlasError(f"{path}: {exc}") from None
    except (TypeError, ValueError, KeyError) as exc:
        raise AtlasError(f"{path}: cannot read atlas ({type(exc).__name__}: {str(exc)[:160]})") from None
    if mesh is not None:
        atlas.check_mesh(mesh)
    return atlas
