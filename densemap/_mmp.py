"""Exact polyhedral (MMP) geodesics through pygeodesic or gdist, one source at a time.

Private helper of :mod:`densemap.geodesics` (``method="exact"``). The state lives in a
per-process table so that worker processes of a pool can each hold their mesh once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["exact_init", "exact_one"]

_EXACT: dict = {}  # per process: mesh arrays, components, one algorithm per component


def exact_init(v: np.ndarray, f: np.ndarray, comp: np.ndarray) -> None:
    kind = None
    for kind in ("pygeodesic", "gdist"):
        try:
            __import__(kind)
            break
        except Exception:  # gdist can also fail with a binary-incompatibility ValueError
            kind = None
    if kind is None:
        raise ImportError("method='exact' needs pygeodesic (or gdist): pip install densemap[exact]")
    _EXACT.clear()
    _EXACT.update(kind=kind, v=v, f=f, comp=comp, algos={})


def exact_one(s: int) -> np.ndarray:
    """Exact distances from vertex s, computed on its component alone (pygeodesic
    returns garbage, sometimes an OverflowError, for unreachable vertices)."""
    v, f, comp, algos = _EXACT["v"], _EXACT["f"], _EXACT["comp"], _EXACT["algos"]
    c = comp[s]
    if c not in algos:
        verts = np.flatnonzero(comp == c)
        local = np.full(len(v), -1)
        local[verts] = np.arange(len(verts))
        faces = local[f[comp[f[:, 0]] == c]]
        algo = (v[verts], faces.astype(np.int32))
        if _EXACT["kind"] == "pygeodesic" and len(faces):
            from pygeodesic.geodesic import PyGeodesicAlgorithmExact

            algo = PyGeodesicAlgorithmExact(v[verts], faces)
        algos[c] = (verts, local, algo)
    verts, local, algo = algos[c]
    out = np.full(len(v), np.inf)
    if len(verts) == 1:  # a vertex used by no face
        out[s] = 0.0
    elif _EXACT["kind"] == "pygeodesic":
        out[verts] = algo.geodesicDistances(np.array([local[s]], dtype=np.int64))[0]
    else:
        import gdist

        out[verts] = gdist.compute_gdist(*algo, source_indices=np.array([local[s]], dtype=np.int32))
    return out
