"""Laplace-Beltrami eigenbases for the spectral refinement, computed once per mesh.

:func:`laplacian_basis` returns the first ``k`` eigenpairs of a mesh scaled to unit area
(``Phi.T @ diag(mass) @ Phi = I``). Bases are kept in memory (the last few meshes) and on
disk (:mod:`densemap._cache`, sub-folder ``eigenbasis``), keyed by the mesh's sha1, the
Laplacian kind and a format version, so aligning many meshes to one template pays for the
template's basis once; a stored basis with at least ``k`` columns serves any smaller ``k``.

``mass_scale`` reweighs the lumped mass per vertex before the eigenproblem: a conformal
change of the metric (the cotangent stiffness is invariant under it, the mass scales with
area). :func:`part_area_scale` gives the factors that make one mesh's part areas those of
another, which the spectral refinement uses by default (docs/alignment.md, "Area-matched
bases").

Eigensolvers (``eigensolver=``), measured in ``benchmarks/align_speed.py``:

* ``"cholmod"`` (default above 1500 vertices): shift-invert Lanczos (ARPACK through
  scipy's ``eigsh``) whose inner solves use a sparse Cholesky factor of ``L + sigma M``
  from cholespy (CHOLMOD), factorised once;
* ``"superlu"``: the same Lanczos with scipy's own SuperLU factor (what ``eigsh(sigma=)``
  does by itself);
* ``"lobpcg"``: scipy's LOBPCG preconditioned with the same Cholesky factor;
* ``"dense"``: LAPACK on the dense matrix (small meshes; the default up to 1500 vertices);
* ``"reduced"`` (default from 100,000 vertices): Rayleigh-Ritz in a smooth coarse space —
  8000 spread vertices, each vertex interpolated from its nearest one and smoothed by
  three rounds of neighbour averaging (a partition of unity ``P``), then the small
  problem ``P^T L P psi = lambda P^T M P psi`` and ``phi = P psi``. An approximation
  (eigenvalues from above, eigenfunctions of the coarse space); its cost in map
  accuracy is measured on the 50k pair in docs/benchmarks.md.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal, get_args

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from .._cache import load_arrays, save_arrays
from .._validate import check_choice
from ..laplacian import LaplacianKind, mesh_laplacian
from ..mesh import Mesh

__all__ = ["laplacian_basis", "part_area_scale", "clear_basis_cache", "Eigensolver", "EIGEN_DENSE_MAX_VERTICES", "EIGEN_REDUCED_MIN_VERTICES"]

Eigensolver = Literal["auto", "cholmod", "superlu", "lobpcg", "dense", "reduced"]

# below this many vertices a dense generalized eigensolver is faster and more robust
EIGEN_DENSE_MAX_VERTICES = 1500
# from this many vertices "auto" uses the reduced (coarse-space) eigensolver
EIGEN_REDUCED_MIN_VERTICES = 100_000
REDUCED_SIZE = 8000  # coarse-space dimension of the reduced eigensolver
_SIGMA = -1e-2  # shift just below 0: L - sigma M is positive definite
_FORMAT = 1  # bump when the stored basis changes meaning
_CACHE_SIZE = 8
_BASIS_CACHE: OrderedDict = OrderedDict()


def clear_basis_cache(*, disk: bool = False) -> None:
    """Forget the eigenbases kept in memory (and, with ``disk=True``, those on disk)."""
    _BASIS_CACHE.clear()
    if disk:
        from .._cache import cache_dir

        for p in cache_dir("eigenbasis").glob("*.npz"):
            p.unlink(missing_ok=True)


def _cholesky_operator(a: sp.spmatrix) -> sla.LinearOperator:
    """``x = a^-1 b`` as a LinearOperator through one CHOLMOD factor (cholespy)."""
    import cholespy
    import torch

    a = sp.coo_matrix(a)
    n = a.shape[0]
    chol = cholespy.CholeskySolverD(n, torch.from_numpy(a.row.astype(np.int32)), torch.from_numpy(a.col.astype(np.int32)),
                                    torch.from_numpy(a.data.astype(np.float64)), cholespy.MatrixType.COO)

    def solve(b):
        b = np.asarray(b, dtype=np.float64)
        b2 = np.ascontiguousarray(b.reshape(n, -1))
        x = torch.empty(b2.shape, dtype=torch.float64)
        chol.solve(torch.from_numpy(b2), x)
        return x.numpy().reshape(b.shape)

    return sla.LinearOperator((n, n), matvec=solve, matmat=solve, dtype=np.float64)


def _coarse_space(mesh: Mesh, mass: np.ndarray, size: int, rounds: int = 3) -> sp.csr_matrix:
    """(V, S) partition of unity: nearest of ``size`` spread vertices, smoothed by neighbour averaging."""
    from scipy.spatial import cKDTree

    from .consistent import spread_samples

    samples, _ = spread_samples(mesh.vertices, mass, size)
    _, near = cKDTree(mesh.vertices[samples]).query(mesh.vertices, workers=-1)
    n = mesh.n_vertices
    p = sp.csr_matrix((np.ones(n), (np.arange(n), near)), shape=(n, len(samples)))
    a = (mesh.adjacency + sp.identity(n, format="csr")).tocsr()
    a = sp.diags(1.0 / np.asarray(a.sum(1)).ravel()) @ a  # rows sum to 1
    for _ in range(rounds):
        p = (a @ p).tocsr()
    return p


def _solve(lap: sp.spmatrix, mass: np.ndarray, k: int, eigensolver: str, mesh: Mesh | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    n = len(mass)
    if eigensolver == "reduced":
        p = _coarse_space(mesh, mass, min(REDUCED_SIZE, n))
        lc, mc = (p.T @ lap @ p).tocsc(), (p.T @ sp.diags(mass) @ p).tocsc()
        evals, psi = sla.eigsh(lc, k=k, M=mc, sigma=_SIGMA, which="LM",
                               v0=np.random.default_rng(0).standard_normal(lc.shape[0]))
        order = np.argsort(evals)
        return evals[order], p @ psi[:, order]
    if eigensolver == "dense":
        # M is diagonal: solve the standard problem for M^-1/2 L M^-1/2, then phi = M^-1/2 psi
        r = 1.0 / np.sqrt(mass)
        a = lap.toarray() * r[:, None] * r[None, :]
        evals, psi = scipy.linalg.eigh(0.5 * (a + a.T), subset_by_index=[0, k - 1])
        return evals, psi * r[:, None]
    M = sp.diags(mass).tocsc()
    v0 = np.random.default_rng(0).standard_normal(n)  # a fixed start: the same basis every run
    if eigensolver == "superlu":
        evals, evecs = sla.eigsh(lap.tocsc(), k=k, M=M, sigma=_SIGMA, which="LM", v0=v0)
    else:
        op = _cholesky_operator(lap - _SIGMA * M)
        if eigensolver == "cholmod":
            evals, evecs = sla.eigsh(lap.tocsc(), k=k, M=M, sigma=_SIGMA, which="LM", OPinv=op, v0=v0)
        else:  # lobpcg: a block of k + 8 vectors, preconditioned by the inverse of L - sigma M
            x = np.random.default_rng(0).standard_normal((n, k + 8))
            evals, evecs = sla.lobpcg(lap.tocsr(), x, B=M, M=op, largest=False, tol=1e-9, maxiter=400)
            evals, evecs = evals[:k], evecs[:, :k]
    order = np.argsort(evals)
    return evals[order], evecs[:, order]


def part_area_scale(mesh_a: Mesh, labels_a, mesh_b: Mesh, labels_b) -> np.ndarray:
    """(V_b,) factors for B's vertex areas that give each of B's parts A's share of the area.

    ``labels_a`` and ``labels_b`` number the same parts alike (-1: unlabelled). For part
    ``p`` the factor is ``(area_A(p) / area_A) / (area_B(p) / area_B)``; unlabelled
    vertices, and parts that one mesh lacks or that have no area, keep 1. The scaled
    areas are then renormalised by :func:`laplacian_basis`.

    The pairs densemap aligns are not isometric: a chimp's arms are longer and its legs
    shorter than a human's, so the same eigenfunction index means different things on the
    two meshes, and a functional map between them spreads over many frequencies. Giving B
    A's part areas (a conformal change of B's metric) brings the two spectra closer.

    Examples
    --------
    >>> import numpy as np
    >>> from densemap.data import reference
    >>> h = reference("human")
    >>> f = part_area_scale(h.mesh, h.parts.labels, h.mesh, h.parts.labels)
    >>> bool(np.allclose(f, 1.0))
    True
    """
    la, lb = np.asarray(labels_a), np.asarray(labels_b)
    if len(la) != mesh_a.n_vertices or len(lb) != mesh_b.n_vertices:
        raise ValueError(f"labels must have one entry per vertex: got {len(la)} for {mesh_a.n_vertices} and "
                         f"{len(lb)} for {mesh_b.n_vertices} vertices")
    n = int(max(la.max(initial=-1), lb.max(initial=-1))) + 1
    if n == 0:
        return np.ones(mesh_b.n_vertices)
    area_a, area_b = mesh_a.vertex_areas, mesh_b.vertex_areas
    fa = np.bincount(la[la >= 0], area_a[la >= 0], n) / area_a.sum()
    fb = np.bincount(lb[lb >= 0], area_b[lb >= 0], n) / area_b.sum()
    ratio = np.where((fa > 0) & (fb > 0), fa / np.where(fb > 0, fb, 1.0), 1.0)
    return np.where(lb >= 0, ratio[np.maximum(lb, 0)], 1.0)


def _scale_key(mass_scale) -> str | None:
    if mass_scale is None:
        return None
    import hashlib

    return hashlib.sha1(np.ascontiguousarray(mass_scale, dtype=np.float64).tobytes()).hexdigest()


def laplacian_basis(mesh: Mesh, k: int, *, laplacian: LaplacianKind = "cotan", eigensolver: Eigensolver = "auto",
                    cache: bool = True, mass_scale=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``k`` Laplace-Beltrami eigenpairs of a mesh scaled to unit area.

    Parameters
    ----------
    mesh : Mesh
    k : int
        Number of eigenpairs (at most ``V - 1``).
    laplacian : {"cotan", "robust"}
        Cotangent Laplacian with barycentric lumped mass, or ``robust_laplacian``'s
        intrinsic-Delaunay one (for poor triangulations); see :mod:`densemap.laplacian`.
    eigensolver : {"auto", "cholmod", "superlu", "lobpcg", "dense", "reduced"}
        See the module docstring; "auto" = "dense" up to 1500 vertices, "reduced" from
        100,000, else "cholmod". The caches keep exact and reduced bases apart.
    cache : bool
        Read and write the on-disk cache (the in-memory one is always used).
    mass_scale : (V,) float, optional
        Positive factors for the lumped vertex areas (e.g. :func:`part_area_scale`);
        the scaled mass is renormalised to sum 1. Bases are cached per factor set.

    Returns
    -------
    evals : (k,) float
        Ascending eigenvalues (of the unit-area mesh).
    evecs : (V, k) float
        Eigenfunctions, orthonormal for ``mass``.
    mass : (V,) float
        Lumped vertex areas of the unit-area mesh (they sum to 1), times ``mass_scale``
        and renormalised when it is given.

    Examples
    --------
    >>> from densemap.data import reference
    >>> evals, evecs, mass = laplacian_basis(reference("chimp").mesh, 5)
    >>> evecs.shape, round(float(mass.sum()), 6), bool(abs(evals[0]) < 1e-6)
    ((7049, 5), 1.0, True)
    """
    check_choice("laplacian", laplacian, get_args(LaplacianKind))
    check_choice("eigensolver", eigensolver, get_args(Eigensolver))
    n = mesh.n_vertices
    k = int(k)
    if not 1 <= k < n:
        raise ValueError(f"k must be in 1..{n - 1} for mesh {mesh.name!r} with {n} vertices, got {k}")
    if mass_scale is not None:
        mass_scale = np.asarray(mass_scale, dtype=np.float64)
        if mass_scale.shape != (n,):
            raise ValueError(f"mass_scale must be {n} positive finite factors for mesh {mesh.name!r}, "
                             f"got shape {mass_scale.shape}")
        bad = np.flatnonzero(~(np.isfinite(mass_scale) & (mass_scale > 0)))
        if len(bad):
            raise ValueError(f"mass_scale must be {n} positive finite factors for mesh {mesh.name!r}, "
                             f"got {mass_scale[bad[0]]} at vertex {bad[0]} ({len(bad)} such)")
    reduced = eigensolver == "reduced" or (eigensolver == "auto" and n >= EIGEN_REDUCED_MIN_VERTICES)
    scale_key = _scale_key(mass_scale)
    key = (mesh.sha1, laplacian, reduced, scale_key)
    hit = _BASIS_CACHE.get(key)
    if hit is None or hit[1].shape[1] < k:
        disk_key = {"what": "laplacian_basis", "format": _FORMAT, "mesh": mesh.sha1, "laplacian": laplacian,
                    "reduced": reduced}
        if scale_key is not None:  # unscaled bases keep their earlier keys
            disk_key["mass_scale"] = scale_key
        stored = load_arrays("eigenbasis", disk_key) if cache else None
        if stored is not None and stored["evecs"].shape[1] >= k and stored["evecs"].shape[0] == n:
            hit = (stored["evals"], stored["evecs"], stored["mass"])
        else:
            lap, mass = mesh_laplacian(mesh.vertices, mesh.faces, laplacian)
            mass = mass / mass.sum()
            if mass_scale is not None:
                mass = mass * mass_scale
                mass = mass / mass.sum()
            # stray vertices have no area: a tiny mass keeps M positive definite
            mass = np.maximum(mass, 1e-12 / n)
            solver = eigensolver
            if solver == "auto":
                solver = "dense" if n <= EIGEN_DENSE_MAX_VERTICES else "reduced" if n >= EIGEN_REDUCED_MIN_VERTICES else "cholmod"
            evals, evecs = _solve(lap, mass, k, solver, mesh)
            hit = (evals, np.ascontiguousarray(evecs), mass)
            if cache:
                save_arrays("eigenbasis", disk_key, {"evals": hit[0], "evecs": hit[1], "mass": hit[2]})
        for a in hit:
            a.setflags(write=False)
        _BASIS_CACHE[key] = hit
    _BASIS_CACHE.move_to_end(key)
    while len(_BASIS_CACHE) > _CACHE_SIZE:
        _BASIS_CACHE.popitem(last=False)
    return hit[0][:k], hit[1][:, :k], hit[2]
