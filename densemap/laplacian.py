"""Discrete Laplace-Beltrami operators of a triangle mesh: one helper for every caller.

:func:`mesh_laplacian` returns the (V, V) positive semi-definite stiffness matrix ``L``
and the (V,) lumped mass of a mesh, for two kinds:

* ``"cotan"``: the cotangent Laplacian ``L[i, j] = -(cot a + cot b) / 2`` with barycentric
  lumped masses, from potpourri3d (geometry-central's implementation);
* ``"robust"``: Sharp & Crane's intrinsic-Delaunay "robust" Laplacian from
  ``robust_laplacian`` (Voronoi masses), which stays an M-matrix on poor triangulations.

The heat-method geodesics (:mod:`densemap.geodesics`) and the spectral bases of the
map refinement (:mod:`densemap.mapping.refine`) both build their operators here.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import scipy.sparse as sp

from ._validate import check_choice

__all__ = ["LaplacianKind", "mesh_laplacian", "cotan_laplacian"]

LaplacianKind = Literal["cotan", "robust"]


def cotan_laplacian(vertices, faces) -> tuple[sp.csr_matrix, np.ndarray]:
    """(V, V) PSD cotan Laplacian and (V,) barycentric mass (a third of each incident face's area).

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([[0., 0, 0], [1, 0, 0], [0, 1, 0]]); f = np.array([[0, 1, 2]])
    >>> L, m = cotan_laplacian(v, f)
    >>> bool(np.allclose(L @ np.ones(3), 0)), float(m.sum())
    (True, 0.5)
    """
    import potpourri3d as pp3d

    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    return sp.csr_matrix(pp3d.cotan_laplacian(v, f)), np.asarray(pp3d.vertex_areas(v, f), dtype=np.float64)


def mesh_laplacian(vertices, faces, kind: LaplacianKind = "cotan") -> tuple[sp.csr_matrix, np.ndarray]:
    """Stiffness matrix and lumped mass of a mesh.

    Parameters
    ----------
    vertices : (V, 3) float
    faces : (F, 3) int
    kind : {"cotan", "robust"}

    Returns
    -------
    L : (V, V) sparse float
        Symmetric positive semi-definite (rows sum to 0).
    mass : (V,) float
        Lumped vertex areas (0 for vertices used by no face).
    """
    check_choice("laplacian", kind, get_args(LaplacianKind))
    if kind == "cotan":
        return cotan_laplacian(vertices, faces)
    import robust_laplacian

    lap, m = robust_laplacian.mesh_laplacian(np.asarray(vertices, dtype=np.float64), np.asarray(faces))
    return sp.csr_matrix(lap), np.asarray(m.diagonal(), dtype=np.float64).ravel()
