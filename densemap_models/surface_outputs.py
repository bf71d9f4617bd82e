"""Predictions as points on the reference mesh: what ``densemap predict --surface`` writes.

The model predicts, per foreground pixel of a detection, a chart ``I`` and chart
coordinates ``(U, V)`` of the embedded human's atlas (:func:`densemap.charts.reference_atlas`,
the charts every densemap model is trained on). :func:`detection_surface` turns the IUV
that ``densemap predict`` writes (``uv_data``, ``NAME_iuv.png``: U and V quantised to
1/255) into the mesh point each pixel shows, with :func:`densemap.charts.iuv_to_surface`.

One ``.npz`` per image (``NAME_surface.npz``) or clip (``CLIP_surface.npz``) holds, per
detection ``key`` (``d<k>`` for the k-th detection of an image, ``f<frame>_d<k>`` in a
clip), one row per foreground pixel of the detection's box:

==================  ===========  ===========================================================
array               dtype        content
==================  ===========  ===========================================================
``key.pixel``       (n, 2) int32  image x, y of the pixel
``key.iuv``         (n, 3) uint8  the predicted I, U x 255, V x 255 (as in ``uv_data``)
``key.vertex``      (n,) int32    the reference mesh's vertex nearest the point (-1: none)
``key.face``        (n,) int32    the face holding the point (-1: a chart the atlas lacks)
``key.bary``        (n, 3) f32    barycentric coordinates of the point in ``face``
``key.point``       (n, 3) f32    the point on the reference mesh (its rest pose, mesh units)
``key.distance``    (n,) f32      0 when (U, V) fell inside a triangle of chart I, else the
                                  (U, V) distance to the chart's nearest point, taken instead
==================  ===========  ===========================================================

and ``meta.json`` (the mesh, its hash, the atlas and these notes). Each detection's JSON
record names its arrays: ``"surface": {"file": ..., "key": ..., "points": n}``. A clip's
file is written to a temporary beside it as the frames finish and renamed before the clip
JSON, so a clip whose JSON exists has its surface file too.
"""

from __future__ import annotations

import json
import os
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from densemap._io import atomic_path, streamed_output

__all__ = ["SURFACE_MESH", "detection_surface", "SurfaceFile", "write_surface_file"]

SURFACE_MESH = "human"  # the embedded mesh whose charts the model predicts


@lru_cache(maxsize=None)
def _reference():
    from densemap.charts import reference_atlas
    from densemap.data import reference

    mesh = reference(SURFACE_MESH).mesh
    return mesh, reference_atlas(SURFACE_MESH).check_mesh(mesh)


def detection_surface(iuv: np.ndarray, box) -> dict[str, np.ndarray]:
    """The reference-mesh point of every foreground pixel of one detection.

    Parameters
    ----------
    iuv : (3, h, w) uint8
        The detection's box IUV (:func:`~densemap_models.postprocess.chart_result`'s ``iuv``:
        I, U x 255, V x 255; 0 = background).
    box : (4,) float
        x0, y0, x1, y1 in image pixels (the IUV's top-left pixel is ``int(x0), int(y0)``).

    Returns
    -------
    dict of str -> array
        ``pixel``, ``iuv``, ``vertex``, ``face``, ``bary``, ``point``, ``distance`` (see the
        module notes), one row per foreground pixel: :func:`densemap.charts.iuv_to_surface`
        of the IUV (U, V = stored value / 255).

    Examples
    --------
    >>> iuv = np.zeros((3, 2, 2), np.uint8)
    >>> iuv[:, 1, 0] = [2, 128, 64]  # one pixel of chart 2
    >>> s = detection_surface(iuv, [10.0, 20.0, 12.0, 22.0])
    >>> s["pixel"].tolist(), s["vertex"].shape
    ([[10, 21]], (1,))
    """
    from densemap.charts import iuv_to_surface

    mesh, atlas = _reference()
    iuv = np.asarray(iuv)
    if iuv.ndim != 3 or iuv.shape[0] != 3 or iuv.dtype != np.uint8:
        raise ValueError(f"iuv must be a (3, h, w) uint8 array, got {iuv.shape} {iuv.dtype}")
    rows, cols = np.nonzero(iuv[0] > 0)
    values = iuv[:, rows, cols].T.copy()
    sp = iuv_to_surface(values, atlas, vertices=mesh.vertices)
    x0, y0 = int(box[0]), int(box[1])
    return {"pixel": np.c_[x0 + cols, y0 + rows].astype(np.int32), "iuv": values,
            "vertex": sp.vertex.astype(np.int32), "face": sp.face.astype(np.int32),
            "bary": sp.bary.astype(np.float32), "point": sp.point.astype(np.float32),
            "distance": sp.distance.astype(np.float32)}


def _meta() -> dict:
    mesh, atlas = _reference()
    return {"format": "densemap.predict.surface", "format_version": 1, "mesh": mesh.name, "mesh_sha1": mesh.sha1,
            "n_vertices": mesh.n_vertices, "n_faces": mesh.n_faces, "atlas": atlas.name,
            "arrays": ["pixel", "iuv", "vertex", "face", "bary", "point", "distance"],
            "notes": "per detection key: one row per foreground pixel of its box; see densemap_models.surface_outputs"}


class SurfaceFile(streamed_output):
    """An ``.npz`` of detections' surface points, written as they come and renamed on :meth:`close`.

    Arrays go into a zip (deflated) in a temporary file beside ``path``, so a clip of many
    frames never holds them all in memory; :meth:`abort` (or leaving a ``with`` block by
    an exception) removes it. ``numpy.load`` reads the result.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._zip = zipfile.ZipFile(self._tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        self.keys: list[str] = []

    def _write(self, name: str, a) -> None:
        with self._zip.open(f"{name}.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array(fh, np.asarray(a), allow_pickle=False)

    def add(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Write one detection's arrays as ``key.<name>``."""
        for name, a in arrays.items():
            self._write(f"{key}.{name}", a)
        self.keys.append(key)

    def close(self) -> Path:
        """Write ``meta.json`` (with the keys), finish the zip and move it into place."""
        self._write("meta.json", np.array(json.dumps({**_meta(), "keys": self.keys})))
        self._zip.close()
        self._atomic.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        try:
            self._zip.close()
        except Exception:  # noqa: BLE001 - the file is removed anyway
            pass
        self._atomic.__exit__(RuntimeError, None, None)


def write_surface_file(path: str | os.PathLike, detections: dict[str, dict]) -> Path:
    """Write ``{key: detection_surface(...)}`` into ``path`` at once (atomically)."""
    with SurfaceFile(path) as f:
        for key, arrays in detections.items():
            f.add(key, arrays)
    return Path(path)
