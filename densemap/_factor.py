"""Factorise a symmetric positive definite matrix once, solve many right-hand sides: CPU and CUDA.

Private helper of :mod:`densemap.geodesics`. :func:`factor` returns ``solve(b, x)``
(``x = A^-1 b`` for (V, c) torch tensors) from, in order of preference: dense Cholesky in
torch (``dense=True``: fastest on a GPU for meshes up to ~20k vertices), cholespy's sparse
Cholesky (CHOLMOD on the CPU, its own triangular-solve kernels on CUDA), or scipy's SuperLU
(CPU; CUDA data makes a round trip).

Precision: a float32 solve whose triangular solves run in float32 (dense Cholesky, cholespy
on CUDA) loses ``cond(A) * eps`` of accuracy, ~3e-4 of the distances on the body meshes. Such
solves get one step of iterative refinement with the residual in float64 (:class:`_Refined`),
which brings them to the float64 solve of the same float32 right-hand side (what cholespy's
CPU solve, float64 inside, computes). The factor itself is always computed in float64.

cholespy on CUDA works in the context of CUDA device 0 only and loads the driver as
``libcuda.so`` (no ``.1``): :func:`cholespy_cuda_refusal` says when it must not be used.
"""

from __future__ import annotations

import ctypes
import warnings
from contextlib import contextmanager
from functools import lru_cache
from typing import Callable, Literal

import numpy as np
import scipy.sparse as sp
import torch

from .errors import DensemapError

__all__ = ["FactorBackend", "factor", "torch_threads", "cholespy_cuda_refusal"]

FactorBackend = Literal["auto", "cholespy", "scipy"]
_CUDA_RHS = 128  # cholespy's CUDA solve takes at most 128 right-hand sides; we always pass 128


def cholespy_cuda_refusal(index: int | None, current: int, libcuda: bool) -> str | None:
    """Why cholespy must not solve on a CUDA device (None when it may).

    cholespy (2.x) retains the primary context of CUDA device 0 and runs every CUDA solve
    in it, whatever device the tensors are on: tensors on another GPU are then read and
    written from device 0's context, unsynchronised with torch's streams there (a crash or
    silently wrong values). It also ``dlopen``s ``libcuda.so``, which many driver installs
    lack (they ship ``libcuda.so.1``); cholespy then calls null function pointers.

    Parameters
    ----------
    index : int or None
        The device index of the tensors (``torch.device("cuda").index`` is None: the
        current device).
    current : int
        ``torch.cuda.current_device()``; only used when ``index`` is None.
    libcuda : bool
        Whether ``libcuda.so`` can be loaded.

    Returns
    -------
    str or None
        A one-line reason, with the fix, or None.
    """
    effective = current if index is None else int(index)
    if effective != 0:
        which = f"cuda:{effective}" if index is not None else f"device='cuda' (the current device is cuda:{effective})"
        return (f"cholespy solves on CUDA device 0 only, not on {which}: make that GPU device 0 with "
                f"CUDA_VISIBLE_DEVICES={effective} and use device='cuda:0', or pass dense=True or solver='scipy'")
    if not libcuda:
        return ("cholespy loads the CUDA driver as 'libcuda.so', which the dynamic loader cannot find (many "
                "driver installs ship only libcuda.so.1): put a link libcuda.so -> libcuda.so.1 in a directory "
                "on LD_LIBRARY_PATH, or pass dense=True or solver='scipy'")
    return None


@lru_cache(maxsize=None)
def _libcuda_loadable() -> bool:
    """Whether ``dlopen("libcuda.so")`` (cholespy's call) succeeds in this process."""
    try:
        ctypes.CDLL("libcuda.so")
    except OSError:
        return False
    return True


def _cholespy_refusal(device: torch.device) -> str | None:
    if device.type != "cuda":
        return None
    current = torch.cuda.current_device() if device.index is None else 0
    return cholespy_cuda_refusal(device.index, current, _libcuda_loadable())


class _Cholespy:
    """Sparse Cholesky through cholespy (CHOLMOD on CPU, cholespy's kernels on CUDA).

    cholespy's CPU solve holds the GIL (its binding does not release it), so CPU worker
    threads of the heat method overlap their torch kernels, not their solves.
    """

    def __init__(self, a: sp.coo_matrix, device: torch.device, dtype: torch.dtype):
        import cholespy

        cls = cholespy.CholeskySolverD if dtype == torch.float64 else cholespy.CholeskySolverF
        # cholespy takes float64 matrix values for both classes and factorises in float64
        ii, jj, x = a.row.astype(np.int32), a.col.astype(np.int32), a.data.astype(np.float64)
        self.cuda = device.type == "cuda"
        self.device, self.dtype = device, dtype
        self._pad: tuple[torch.Tensor, torch.Tensor] | None = None
        if self.cuda:
            ii, jj, x = (torch.from_numpy(z).to(device) for z in (ii, jj, x))
        self.solver = cls(a.shape[0], ii, jj, x, cholespy.MatrixType.COO)

    def solve(self, b: torch.Tensor, x: torch.Tensor) -> None:
        if not self.cuda:
            self.solver.solve(b, x)
            return
        # cholespy frees and reallocates its (V, n_rhs) scratch buffer on the GPU whenever
        # the number of right-hand sides changes (cuMemFree synchronises the device). Its
        # kernels run one thread per right-hand side in blocks of 128, so a narrower solve
        # costs as much as a full one: always pass exactly 128 columns, zero-padded.
        if self._pad is None:
            self._pad = tuple(torch.zeros((b.shape[0], _CUDA_RHS), dtype=b.dtype, device=b.device) for _ in "bx")
        bp, xp = self._pad
        stream = torch.cuda.current_stream(b.device) if b.is_cuda else None
        foreign = stream is not None and stream != torch.cuda.default_stream(b.device)
        for j in range(0, b.shape[1], _CUDA_RHS):
            w = min(_CUDA_RHS, b.shape[1] - j)
            bp[:, :w] = b[:, j : j + w]
            if w < _CUDA_RHS:
                bp[:, w:] = 0.0
            if foreign:  # cholespy launches on the default stream: order it after torch's work
                stream.synchronize()
            self.solver.solve(bp, xp)
            if foreign:
                torch.cuda.synchronize(b.device)
            x[:, j : j + w] = xp[:, :w]


class _Refined:
    """One step of iterative refinement around a working-precision solve.

    ``x0 = solve(b)``, ``r = b - A x0`` in float64, ``x = x0 + solve(r)``: the error of a
    float32 triangular solve (``cond(A) * eps32``) drops to its square, below float32's
    rounding of the result on the body meshes.
    """

    def __init__(self, solve: Callable, a: sp.coo_matrix, device: torch.device, dtype: torch.dtype):
        self._solve, self.dtype = solve, dtype
        ij = torch.from_numpy(np.vstack([a.row, a.col]).astype(np.int64))
        self._a = torch.sparse_coo_tensor(ij, torch.from_numpy(a.data.astype(np.float64)), a.shape,
                                          check_invariants=True).coalesce().to(device)  # fmt: skip
        # peak temporaries per right-hand side: three float64 columns (x, A x, b - A x), two casts
        self.bytes_per_rhs = a.shape[0] * (3 * 8 + 2 * (torch.finfo(dtype).bits // 8))

    def __call__(self, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self._solve(b, x)
        r = self._a @ x.double()
        r = torch.sub(b.double(), r, out=r).to(self.dtype)
        self._solve(r.clone(), r)
        return x.add_(r)


def factor(a: sp.spmatrix, backend: str, dense: bool, device, dtype) -> Callable:
    """Factorise the SPD matrix ``a`` once; returns ``solve(b, x)``: x = a^-1 b for (V, c) tensors.

    The returned callable may carry ``bytes_per_rhs``: working bytes per right-hand side on
    top of ``b`` and ``x`` (refinement's residual).
    """
    a = sp.coo_matrix(a)
    device = torch.device(device)
    if dense:  # dense Cholesky: fastest on a GPU for meshes of up to ~20k vertices
        chol = torch.linalg.cholesky(torch.as_tensor(a.toarray(), dtype=torch.float64, device=device))
        if dtype == torch.float64:
            return lambda b, x: torch.cholesky_solve(b, chol, out=x)
        chol = chol.to(dtype)
        return _Refined(lambda b, x: torch.cholesky_solve(b, chol, out=x), a, device, dtype)
    if backend != "scipy":
        why = _cholespy_refusal(device)
        if why is not None and backend == "cholespy":
            raise DensemapError(why)
        if why is not None:
            warnings.warn(f"{why}. Using scipy's SuperLU on the CPU instead (slower).", stacklevel=3)
        else:
            try:
                chol = _Cholespy(a, device, dtype)
            except ImportError:  # cholespy is a dependency, but keep working without it
                if backend == "cholespy":
                    raise ImportError("solver='cholespy' needs the cholespy package: pip install cholespy") from None
            else:
                # on CUDA its triangular solves run in float32 for CholeskySolverF (on the CPU
                # CHOLMOD solves in float64 whatever the class)
                return _Refined(chol.solve, a, device, dtype) if chol.cuda and dtype != torch.float64 else chol.solve
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
