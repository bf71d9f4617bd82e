"""Geodesic distances on triangle meshes, batched over many sources.

Methods of :class:`GeodesicSolver`: ``"heat"``, the heat method (Crane, Weischedel &
Wardetzky 2013) in torch with one code path for CPU and CUDA (two factorisations, then
many sources per multi-right-hand-side solve); ``"potpourri3d"``, geometry-central's
heat method one source at a time (the reference); ``"exact"``, polyhedral geodesics
(MMP) via pygeodesic or gdist (``pip install densemap[exact]``). Distances between
different connected components are ``inf``.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Callable, Literal, get_args

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

from ._factor import FactorBackend, factor, torch_threads
from ._mmp import exact_init, exact_one
from ._validate import check_choice
from .errors import MeshError
from .laplacian import LaplacianKind, cotan_laplacian, mesh_laplacian

__all__ = ["GeodesicSolver", "geodesic_distances", "length_scale", "default_time_step", "cotan_laplacian"]

Method = Literal["heat", "potpourri3d", "exact"]

# Default Laplacian, chosen by relative Frobenius error against exact (MMP) geodesics,
# t = h^2, 16 random sources (benchmarks/geodesics.py):
#   mesh                                  cotan     robust    potpourri3d cotan / robust
#   grid 41x41 (tests)                    1.47 %    1.47 %    1.47 % / 1.47 %
#   icosphere(4), 2562 v (tests)          0.79 %    0.79 %    0.79 % / 0.79 %
#   MakeHuman body, 13380 v (quads split) 23.4 %    4.06 %    23.6 % / 3.04 %
# The test meshes are Delaunay already (same L). On the body 17 % of the cotan weights
# are negative (obtuse triangles): M + tL is no M-matrix, u goes negative in places and
# its gradient points anywhere; the intrinsic-Delaunay L keeps u positive. Our gradient
# and divergence stay extrinsic (geometry-central's robust mode has intrinsic ones: 3.0 %
# vs our 4.1 %); the cotan L in the Poisson step instead changed nothing (3.77 vs 3.71 %).
DEFAULT_LAPLACIAN: LaplacianKind = "robust"

DENSE_FACTOR_MAX_VERTICES = 20000  # dense="auto" uses dense Cholesky factors on CUDA up to this size
_CPU_FACE_BLOCK = 512  # faces per block of the CPU divergence (temporaries ~1 MB)


def _arrays(mesh) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 and (F, 3) int64 arrays of any object with ``.vertices``/``.faces``."""
    v = np.asarray(mesh.vertices, dtype=np.float64)
    f = np.asarray(mesh.faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise MeshError(f"vertices must have shape (V, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or f.dtype.kind not in "iu" or len(f) == 0:
        raise MeshError(f"faces must be a non-empty (F, 3) integer array, got {f.shape} {f.dtype}")
    if f.min() < 0 or f.max() >= len(v):
        raise MeshError(f"faces reference vertex {int(f.max())} but the mesh has {len(v)} vertices")
    return v, f.astype(np.int64, copy=False)


def length_scale(mesh) -> float:
    """Mean length of the mesh's unique edges (geometry-central's ``meanEdgeLength``)."""
    v, f = _arrays(mesh)
    e = getattr(mesh, "edges", None)
    e = np.unique(np.sort(f[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1), axis=0) if e is None else np.asarray(e)
    return float(np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1).mean())


def default_time_step(h: float, *, t_scale: float = 1.0) -> float:
    """Heat-method time step ``t = t_scale * h**2`` for a length scale ``h``.

    To share one time step between two meshes, compute ``h`` from both (e.g. from
    their :func:`length_scale`) and pass ``t=default_time_step(h)`` to both solvers.
    """
    return float(t_scale) * float(h) ** 2


def _components(v: np.ndarray, f: np.ndarray, mesh) -> np.ndarray:
    comp = getattr(mesh, "components", None)
    if comp is not None:
        return np.array(comp, dtype=np.int64)
    e = f[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    adj = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(len(v), len(v)))
    return connected_components(adj, directed=False)[1].astype(np.int64)


def _check_sources(sources, n: int) -> np.ndarray:
    """Validate vertex indices, naming the first offender; returns (S,) int64."""
    if isinstance(sources, torch.Tensor):
        sources = sources.detach().cpu().numpy()
    s = np.asarray(sources)
    s = s.reshape(1) if s.ndim == 0 else s
    if s.ndim != 1:
        raise MeshError(f"sources must be a 1-D array of vertex indices, got shape {s.shape}")
    if s.size == 0:
        raise MeshError("sources is empty; pass at least one vertex index")
    if s.dtype.kind not in "iuf":
        raise MeshError(f"sources must be integer vertex indices, got dtype {s.dtype}")
    if s.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(s) | (np.mod(s, 1) != 0))
        if len(bad):
            raise MeshError(f"sources[{bad[0]}] = {s[bad[0]].item()!r} is not an integer vertex index")
        raise MeshError(f"sources must have an integer dtype, got {s.dtype}")
    bad = np.flatnonzero((s < 0) | (s >= n))
    if len(bad):
        raise MeshError(f"sources[{bad[0]}] = {int(s[bad[0]])} but the mesh has {n} vertices")
    return s.astype(np.int64)


# ----------------------------------------------------------------------------- solver
class GeodesicSolver:
    """Geodesic distances from many source vertices, with prefactorised operators.

    Parameters
    ----------
    mesh : Mesh or any object with ``.vertices`` (V, 3) and ``.faces`` (F, 3)
    method : {"heat", "potpourri3d", "exact"}
    device : str or torch.device, optional
        Where the heat method runs; ``None`` means CPU (CUDA is never picked silently).
    t : float, optional
        Absolute heat time step; default ``default_time_step(length_scale(mesh), t_scale=t_scale)``.
    t_scale : float
        Multiplier of ``h**2`` when ``t`` is not given.
    laplacian : {"robust", "cotan"}
        Laplacian of the heat and Poisson steps: robust_laplacian's intrinsic
        Delaunay one, or the cotangent Laplacian (see DEFAULT_LAPLACIAN for numbers).
    dtype : torch.float64 or torch.float32
        Precision of the Poisson step and of the output. The heat step and the
        divergence always run in float64: ``u`` decays like ``exp(-d / sqrt(t))``
        (~1e-80 across a body at ``t = h**2``), which float32 flushes to zero. Only
        the (scale-free) divergence of the unit field is cast. Every factor is
        computed in float64; float32 triangular solves (dense, and cholespy on CUDA)
        get one refinement step with a float64 residual, so all paths agree with
        float64 to ~1e-5 of the largest distance on the body meshes.
    memory_budget : float
        Bytes of working memory of one chunk of sources, which sizes the chunks
        (factorisations and the result of :meth:`distances` come on top).
    dense : {"auto", True, False}
        Dense Cholesky factors (``2 V**2`` values) instead of sparse ones. "auto"
        uses them on CUDA for ``V <= 20000`` when they fit in half the free memory.
    solver : {"auto", "cholespy", "scipy"}
        Sparse factorisation: cholespy (CPU and CUDA), or scipy's SuperLU (CPU).
        cholespy runs on CUDA device 0 only and needs ``libcuda.so`` on the loader's
        path: elsewhere "cholespy" raises a :class:`~densemap.errors.DensemapError`
        and "auto" warns and uses SuperLU (pick the GPU with ``CUDA_VISIBLE_DEVICES``).
    n_jobs : int
        Worker processes for ``method="exact"``.
    n_threads : int, optional
        CPU heat method: a chunk's sources are split over this many threads, each
        running the whole pipeline (default ``torch.get_num_threads()``); torch's
        own intra-op threads are set to 1 meanwhile and restored after each call.
    max_chunk : int, optional
        Upper bound on sources per chunk (default 256 on CPU, 4096 on CUDA).

    Notes
    -----
    Disconnected meshes: the heat step never crosses components, the Poisson matrix
    is pinned at one vertex per component, and distances across components are ``inf``.
    """

    def __init__(self, mesh, *, method: Method = "heat", device=None, t: float | None = None,
                 t_scale: float = 1.0, laplacian: LaplacianKind = DEFAULT_LAPLACIAN,
                 dtype: torch.dtype = torch.float64, memory_budget: float = 2e9,
                 dense: Literal["auto"] | bool = "auto", solver: FactorBackend = "auto", n_jobs: int = 1,
                 n_threads: int | None = None, max_chunk: int | None = None):  # fmt: skip
        check_choice("method", method, get_args(Method))
        check_choice("laplacian", laplacian, get_args(LaplacianKind))
        check_choice("solver", solver, get_args(FactorBackend))
        check_choice("dense", dense, ["auto", True, False])
        if dtype not in (torch.float64, torch.float32):
            raise ValueError(f"unknown dtype {dtype}; expected one of [torch.float64, torch.float32]")
        if not memory_budget > 0 or int(n_jobs) < 1:
            raise ValueError(f"memory_budget and n_jobs must be positive, got {memory_budget}, {n_jobs}")
        self.vertices, self.faces = _arrays(mesh)
        self.n_vertices = V = len(self.vertices)
        self.method, self.laplacian, self.dtype = method, laplacian, dtype
        self.device = torch.device("cpu" if device is None else device)
        self.memory_budget, self.n_jobs = float(memory_budget), int(n_jobs)
        self.n_threads = int(n_threads or torch.get_num_threads())
        self.h = length_scale(mesh)
        self.t = float(t) if t is not None else default_time_step(self.h, t_scale=t_scale)
        if not self.t > 0:
            raise ValueError(f"the time step t must be positive, got {self.t}")
        self._comp_np = comp = _components(self.vertices, self.faces, mesh)
        self.n_components = int(comp.max()) + 1
        self._comp = torch.tensor(comp, device=self.device) if self.n_components > 1 else None
        cuda = self.device.type == "cuda"
        self.max_chunk = int(max_chunk or (4096 if cuda else 256))
        self._pool = self._threads = None
        self._ws: dict = {}
        self._face_block = len(self.faces) if cuda else _CPU_FACE_BLOCK
        self.dense = False
        if method == "heat":
            if dense == "auto":
                dense = cuda and V <= DENSE_FACTOR_MAX_VERTICES and 24 * V * V < torch.cuda.mem_get_info(self.device)[0] / 2
            self.dense = bool(dense)
            self._setup_heat(comp, solver)
        elif method == "potpourri3d":
            import potpourri3d as pp3d

            self._pp = pp3d.MeshHeatMethodDistanceSolver(
                self.vertices, self.faces, t_coef=self.t / self.h**2, use_robust=laplacian == "robust"
            )

    # ------------------------------------------------------------------ heat method
    def _setup_heat(self, comp: np.ndarray, solver: str) -> None:
        v, f, dev = self.vertices, self.faces, self.device
        lap, mass = mesh_laplacian(v, f, self.laplacian)
        # vertices used by no face have no mass: give them some so that both
        # matrices stay positive definite (they are components of their own anyway)
        mass = np.where(mass > 0, mass, mass[mass > 0].mean())
        # L is singular (constants per component): pin one vertex per component by
        # adding its mass on the diagonal. div X sums to zero on every component, so
        # this equals fixing phi = 0 there; phi is then shifted to phi(source) = 0.
        pins = np.unique(comp, return_index=True)[1]
        pin = np.zeros(len(v))
        pin[pins] = mass[pins]
        self._heat_solve = factor(sp.diags(mass) + self.t * lap, solver, self.dense, dev, torch.float64)
        self._poisson_solve = factor(lap + sp.diags(pin), solver, self.dense, dev, self.dtype)

        # Gradient and divergence, hand-written per face (extrinsic, as in Crane et al.):
        # grad phi_i = n x e_i / (2 A) for the edge e_i opposite corner i. With the
        # local stiffness K_f[i, j] = A_f grad phi_i . grad phi_j (what the cotan L
        # assembles) and u_f the heat values at the corners of face f,
        #   A_f |grad u|^2 = u_f . K_f u_f   and   A_f grad phi_i . grad u = (K_f u_f)_i,
        # so the integrated divergence of X = -grad u / |grad u| at corner i is
        #   -(K_f u_f)_i / |grad u| = -(K_f u_f)_i * sqrt(A_f) / sqrt(u_f . K_f u_f):
        # one batched 3x3 product per face and no xyz vectors at all.
        p = v[f]
        n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        dbl = np.linalg.norm(n, axis=1)  # twice the area
        g = np.stack([np.cross(n, p[:, (i + 2) % 3] - p[:, (i + 1) % 3]) for i in range(3)], axis=1)
        g /= np.where(dbl > 0, dbl**2, np.inf)[:, None, None]  # degenerate faces: no gradient
        k = 0.5 * dbl[:, None, None] * np.einsum("fid,fjd->fij", g, g)
        self._stiff = torch.tensor(k, dtype=torch.float64, device=dev)  # (F, 3, 3)
        self._neg_sqrt_area = -torch.tensor(np.sqrt(0.5 * dbl), dtype=torch.float64, device=dev)[:, None]
        self._corners = torch.tensor(f.ravel(), device=dev)  # (3F,) face-major corners

    def _workspace(self, k, cb: int) -> dict:
        """Buffers of worker k for cb sources, kept between chunks: on the CPU a fresh
        multi-megabyte array costs a page fault per 4 kB, more than the arithmetic."""
        if (k, cb) not in self._ws:
            self._ws = {key: w for key, w in self._ws.items() if key[1] == cb}
            V, fb, dev, f64, dt = self.n_vertices, self._face_block, self.device, torch.float64, self.dtype
            e = lambda *shape, dtype=f64: torch.empty(shape, dtype=dtype, device=dev)  # noqa: E731
            self._ws[k, cb] = dict(b=e(V, cb), u=e(V, cb), rhs=e(V, cb, dtype=dt), phi=e(V, cb, dtype=dt),
                                   u3=e(fb, 3, cb), y=e(fb, 3, cb), q=e(fb, cb),
                                   y32=e(fb, 3, cb, dtype=dt) if dt != f64 else None)  # fmt: skip
        return self._ws[k, cb]

    def _divergence(self, ws: dict) -> torch.Tensor:
        """Integrated divergence of X = -grad u / |grad u| (see _setup_heat) into ws["rhs"]."""
        u, rhs, F, fb = ws["u"], ws["rhs"].zero_(), len(self.faces), self._face_block
        cb = u.shape[1]
        for f0 in range(0, F, fb):
            n = min(fb, F - f0)
            corners = self._corners[3 * f0 : 3 * (f0 + n)]
            u3, y, q = ws["u3"][:n], ws["y"][:n], ws["q"][:n]
            torch.index_select(u, 0, corners, out=u3.view(3 * n, cb))
            for attempt in range(2):
                torch.bmm(self._stiff[f0 : f0 + n], u3, out=y)
                torch.mul(u3[:, 0], y[:, 0], out=q).addcmul_(u3[:, 1], y[:, 1]).addcmul_(u3[:, 2], y[:, 2])
                # q ~ u^2 can underflow far from the source on fine meshes; the result
                # is scale-free per face, so rescale u by its face maximum and redo
                if attempt or not bool(q.amin() < 1e-280):
                    break
                u3.div_(u3.abs().amax(dim=1, keepdim=True).clamp_min_(1e-300))
            # flat u (e.g. another component) has K u = 0: clamping q makes X = 0 there
            q.clamp_min_(1e-300).rsqrt_().mul_(self._neg_sqrt_area[f0 : f0 + n])
            y.mul_(q[:, None])
            if ws["y32"] is not None:
                y = ws["y32"][:n].copy_(y)
            rhs.index_add_(0, corners, y.view(3 * n, cb))
        return rhs

    def _heat_cols(self, src: torch.Tensor, k: int) -> torch.Tensor:
        """(V, c) distances from the sources ``src`` with worker k's buffers."""
        ws = self._workspace(k, len(src))
        cols = torch.arange(len(src), device=self.device)
        b, phi = ws["b"].zero_(), ws["phi"]
        b[src, cols] = 1.0
        self._heat_solve(b, ws["u"])  # (M + t L) u = delta_s
        self._poisson_solve(self._divergence(ws), phi)  # L phi = div X
        phi -= phi[src, cols]
        phi.clamp_(min=0)
        if self._comp is not None:
            phi.masked_fill_(self._comp[:, None] != self._comp[src][None, :], math.inf)
        return phi

    def _heat_block(self, src: torch.Tensor) -> torch.Tensor:
        """(V, c) distances from the c sources ``src``; on the CPU the sources are
        split over n_threads Python threads (the solves and kernels release the GIL)."""
        nt = min(self.n_threads, len(src)) if self.device.type == "cpu" else 1
        if nt == 1:
            return self._heat_cols(src, 0)
        parts = torch.tensor_split(src, nt)
        starts = np.cumsum([0] + [len(p) for p in parts])
        if ("out", len(src)) not in self._ws:
            self._ws["out", len(src)] = torch.empty((self.n_vertices, len(src)), dtype=self.dtype)
        out = self._ws["out", len(src)]

        def work(k):
            out[:, starts[k] : starts[k + 1]] = self._heat_cols(parts[k], k)

        self._threads = self._threads or ThreadPoolExecutor(self.n_threads)
        list(self._threads.map(work, range(nt)))
        return out

    def _bytes_per_source(self) -> int:
        """Peak working bytes per source of a chunk (conservative)."""
        V, isz = self.n_vertices, torch.finfo(self.dtype).bits // 8
        if self.method != "heat":
            return 3 * 8 * V + 3 * isz * V
        # b, u (float64); rhs, phi, the joined block, a transform's output (dtype);
        # face-block temporaries; inf mask, and reduce's masks across components
        infs = 4 * isz * V if self.n_components > 1 else 0
        refine = sum(getattr(s, "bytes_per_rhs", 0) for s in (self._heat_solve, self._poisson_solve))
        return 16 * V + 4 * isz * V + self._face_block * (7 * 8 + 3 * isz) + V + infs + refine

    def chunk_size(self) -> int:
        """Sources per chunk allowed by ``memory_budget`` (at most ``max_chunk``)."""
        per = self._bytes_per_source()
        if self.memory_budget < per:
            raise ValueError(f"memory_budget={self.memory_budget:.3g} bytes cannot hold one source "
                             f"({per} bytes for a mesh of {self.n_vertices} vertices)")  # fmt: skip
        return min(int(self.memory_budget // per), self.max_chunk)

    # ------------------------------------------------------------------ chunks
    def _rows_block(self, src: np.ndarray) -> torch.Tensor:
        """(V, c) distances for the methods computed one source at a time."""
        if self.method == "potpourri3d":
            rows = [self._pp.compute_distance(int(s)) for s in src]
        elif self._pool is not None:
            rows = list(self._pool.map(exact_one, src.tolist(), chunksize=max(1, len(src) // (4 * self.n_jobs))))
        else:
            rows = [exact_one(int(s)) for s in src]
        d = torch.as_tensor(np.stack(rows, axis=1), dtype=self.dtype, device=self.device)
        if self._comp is not None:
            s = torch.as_tensor(src, device=self.device)
            d.masked_fill_(self._comp[:, None] != self._comp[s][None, :], math.inf)
        return d

    def _chunks(self, src: np.ndarray, progress: bool, desc: str):
        """Yield (start, stop, (V, c) distance block) over chunks of the sources."""
        from tqdm.auto import tqdm

        step = self.chunk_size()
        bar = tqdm(total=len(src), desc=desc, unit="src", disable=not progress)
        if self.method == "exact":
            args = (self.vertices, self.faces, self._comp_np)
            exact_init(*args)  # here too: fails early when no backend is installed
            if self.n_jobs > 1:
                import multiprocessing as mp

                # spawn, not fork: forking a process that runs OpenMP threads can hang
                self._pool = ProcessPoolExecutor(self.n_jobs, mp.get_context("spawn"), exact_init, args)
        split = self.method == "heat" and self.device.type == "cpu" and self.n_threads > 1
        try:
            with torch_threads(1 if split else None):
                for i0 in range(0, len(src), step):
                    i1 = min(i0 + step, len(src))
                    if self.method == "heat":
                        yield i0, i1, self._heat_block(torch.as_tensor(src[i0:i1], device=self.device))
                    else:
                        yield i0, i1, self._rows_block(src[i0:i1])
                    bar.update(i1 - i0)
        finally:
            bar.close()
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None

    # ------------------------------------------------------------------ public API
    def distances(self, sources, *, return_tensor: bool = False, progress: bool = False):
        """Geodesic distances from each source to every vertex.

        Parameters
        ----------
        sources : (S,) int
        return_tensor : bool
            Return a torch tensor on the solver's device instead of numpy.
        progress : bool
            Show a tqdm progress bar over the sources.

        Returns
        -------
        (S, V) float64 (float32 with ``dtype=torch.float32``)
            ``out[i, p]``: distance from ``sources[i]`` to vertex ``p`` (``inf`` across components).
        """
        src = _check_sources(sources, self.n_vertices)
        shape = (len(src), self.n_vertices)
        if return_tensor:
            out = torch.empty(shape, dtype=self.dtype, device=self.device)
        else:
            out = np.empty(shape, dtype=np.float64 if self.dtype == torch.float64 else np.float32)
        for i0, i1, block in self._chunks(src, progress, "geodesics"):
            out[i0:i1] = block.T if return_tensor else block.T.cpu().numpy()
        return out

    def reduce(self, sources, weights, *, transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
               return_tensor: bool = False, progress: bool = False):  # fmt: skip
        """Weighted sums of distances without holding them all: ``D.T @ W``.

        Parameters
        ----------
        sources : (S,) int
        weights : (S, L) or (S,) float
            ``W``; a 1-D array gives a 1-D result.
        transform : callable, optional
            Elementwise function of each (V, c) torch block of distances, applied
            before weighting (e.g. ``lambda d: d**2``).
        return_tensor, progress : bool
            As in :meth:`distances`.

        Returns
        -------
        (V, L) or (V,) float
            ``out[p, l] = sum_s W[s, l] * transform(D[s, p])``. Infinite distances
            (other components) give ``+-inf`` only where their weight is non-zero.
        """
        src = _check_sources(sources, self.n_vertices)
        w = weights if isinstance(weights, torch.Tensor) else torch.tensor(np.asarray(weights, dtype=np.float64))
        w = w.to(device=self.device, dtype=self.dtype)
        one_d = w.ndim == 1
        w = w[:, None] if one_d else w
        if w.ndim != 2 or w.shape[0] != len(src):
            raise ValueError(f"weights must have shape (S,) or (S, L) with S = {len(src)} sources, got {tuple(w.shape)}")
        out = torch.zeros((self.n_vertices, w.shape[1]), dtype=self.dtype, device=self.device)
        for i0, i1, d in self._chunks(src, progress, "geodesic reduce"):
            d, wc = (transform(d) if transform is not None else d), w[i0:i1]
            # isfinite().all() first: 5x faster than isinf() on the CPU, and almost always true
            if bool(torch.isfinite(d).all()) or not bool((inf := torch.isinf(d)).any()):
                out.addmm_(d, wc)
                continue
            # 0 * inf would be nan: add the finite part, then +-inf where a non-zero
            # weight meets an infinite value (both signs: nan, as arithmetic says)
            out.addmm_(d.masked_fill(inf, 0.0), wc)
            s, sw = torch.sign(d) * inf, torch.sign(wc)
            sp_, sn, wp, wn = s.clamp(min=0), (-s).clamp(min=0), sw.clamp(min=0), (-sw).clamp(min=0)
            out += torch.where(sp_ @ wp + sn @ wn > 0, math.inf, 0.0)
            out -= torch.where(sp_ @ wn + sn @ wp > 0, math.inf, 0.0)
        out = out[:, 0] if one_d else out
        return out if return_tensor else out.cpu().numpy()


def geodesic_distances(mesh, sources, *, return_tensor: bool = False, progress: bool = False, **kw):
    """(S, V) distances, one-off: ``GeodesicSolver(mesh, **kw).distances(sources)``.

    Examples
    --------
    Distances on a unit sphere approach the arc length (pi between antipodes):

    >>> import numpy as np, trimesh
    >>> s = trimesh.creation.icosphere(subdivisions=4)
    >>> d = geodesic_distances(s, [0])
    >>> antipode = int(np.argmin(s.vertices @ s.vertices[0]))
    >>> d.shape, bool(abs(d[0, antipode] - np.pi) < 0.05)
    ((1, 2562), True)
    """
    return GeodesicSolver(mesh, **kw).distances(sources, return_tensor=return_tensor, progress=progress)
