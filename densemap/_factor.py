"""Factorise a symmetric positive definite matrix once, solve many right-hand sides: CPU and CUDA.

Private helper of :mod:`densemap.geodesics`. :func:`factor` returns ``solve(b, x)``
(``x = A^-1 b`` for (V, c) torch tensors) from, in order of preference: dense Cholesky in
torch (``dense=True``: fastest on a GPU for meshes up to ~20k vertices), cholespy's sparse
Cholesky (CHOLMOD on the CPU, cuSPARSE on CUDA), or scipy's SuperLU (CPU; CUDA data makes
a round trip).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Literal

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["FactorBackend", "factor", "torch_threads"]

FactorBackend = Literal["auto", "cholespy", "scipy"]
_CUDA_MAX_RHS = 128  # cholespy's CUDA solve takes at most 128 right-hand sides


class _Cholespy:
    """Sparse Cholesky through cholespy (CHOLMOD on CPU, cuSPARSE on CUDA)."""

    def __init__(self, a: sp.coo_matrix, device: torch.device, dtype: torch.dtype):
        import cholespy

        cls = cholespy.CholeskySolverD if dtype == torch.float64 else cholespy.CholeskySolverF
        ii, jj = a.row.astype(np.int32), a.col.astype(np.int32)
        x = a.data.astype(np.float64 if dtype == torch.float64 else np.float32)
        self.cuda = device.type == "cuda"
        if self.cuda:
            ii, jj, x = (torch.from_numpy(z).to(device) for z in (ii, jj, x))
        self.solver = cls(a.shape[0], ii, jj, x, cholespy.MatrixType.COO)

    def solve(self, b: torch.Tensor, x: torch.Tensor) -> None:
        if not self.cuda:
            self.solver.solve(b, x)  # releases the GIL: worker threads solve concurrently
            return
        for j in range(0, b.shape[1], _CUDA_MAX_RHS):
            xj = torch.empty_like(b[:, j : j + _CUDA_MAX_RHS])
            self.solver.solve(b[:, j : j + _CUDA_MAX_RHS].contiguous(), xj)
            x[:, j : j + _CUDA_MAX_RHS] = xj


def factor(a: sp.spmatrix, backend: str, dense: bool, device, dtype) -> Callable:
    """Factorise the SPD matrix ``a`` once; returns ``solve(b, x)``: x = a^-1 b for (V, c) tensors."""
    a = sp.coo_matrix(a)
    if dense:  # dense Cholesky: fastest on a GPU for meshes of up to ~20k vertices
        chol = torch.linalg.cholesky(torch.as_tensor(a.toarray(), dtype=dtype, device=device))
        return lambda b, x: torch.cholesky_solve(b, chol, out=x)
    if backend != "scipy":
        try:
            return _Cholespy(a, device, dtype).solve
        except ImportError:  # cholespy is a dependency, but keep working without it
            if backend == "cholespy":
                raise ImportError("solver='cholespy' needs the cholespy package: pip install cholespy") from None
    from scipy.sparse.linalg import splu  # SuperLU on the CPU (CUDA data makes a round trip)

    lu = splu(a.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options=dict(SymmetricMode=True))
    return lambda b, x: x.copy_(torch.from_numpy(lu.solve(b.detach().cpu().double().numpy())))


@contextmanager
def torch_threads(n: int | None):
    """Set torch's intra-op threads (process-wide, like threadpoolctl) for a while.

    The CPU heat method runs one pipeline per core in Python threads; the torch
    kernels inside them must not each start an OpenMP team on top."""
    prev = torch.get_num_threads()
    torch.set_num_threads(n or prev)
    try:
        yield
    finally:
        torch.set_num_threads(prev)
