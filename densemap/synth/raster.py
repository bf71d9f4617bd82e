"""An exact triangle rasteriser: per pixel, the visible face, its barycentric coordinates and depth.

Vectorised torch, the same code on CPU and CUDA. Pinhole camera in the OpenCV convention
(camera x right, y down, z forward; pixel ``(col, row)`` has its centre at
``(col + 0.5, row + 0.5)``), so ``K @ (R @ x + t)`` gives ``(u * z, v * z, z)``.

How it works
------------
1. Project the vertices; drop faces with a corner at depth ``<= near`` (no clipping) and
   faces of zero screen area (and, with ``cull_backfaces``, faces turned away).
2. Enumerate, for every face, the pixel centres of its screen bounding box (most faces
   of the reference meshes cover a few pixels), in chunks of at most ``chunk`` pairs.
3. Evaluate the three edge functions of each (pixel, face) pair; a centre on an edge is
   inside (a closed test, so meshes are watertight) and the depth is interpolated in
   ``1/z`` (perspective-correct).
4. z-buffer: ``scatter_reduce(amin)`` of the depth per pixel, then of the face id over
   the pairs that reach that depth, so ties go to the lowest face id, whatever the
   order of evaluation (deterministic on every device).
5. For the winning faces only, the barycentric coordinates and depth are recomputed by
   intersecting the ray through the pixel centre with the triangle in 3-D
   (Möller-Trumbore, in the working dtype: float64 for numpy input), so
   ``bary @ corners`` is the ray hit to rounding error.

:func:`look_at` builds cameras; :func:`project` maps points to pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["Camera", "Fragments", "look_at", "project", "rasterize", "default_chunk"]

_CPU_CHUNK = 1 << 21  # (pixel, face) pairs per block on the CPU (~0.5 GB of temporaries in float64)
_PAIR_BYTES = 256  # working bytes per pair in float64: index rows, edge functions, depths, masks


@dataclass(frozen=True)
class Camera:
    """A pinhole camera.

    Parameters
    ----------
    K : (3, 3) float
        Intrinsics ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels.
    R : (3, 3) float
        World-to-camera rotation.
    t : (3,) float
        World-to-camera translation: ``x_cam = R @ x + t``.
    width, height : int
        Image size in pixels.
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int

    def __post_init__(self):
        K = np.array(self.K, dtype=np.float64)
        R = np.array(self.R, dtype=np.float64)
        t = np.array(self.t, dtype=np.float64).reshape(-1)
        if K.shape != (3, 3) or R.shape != (3, 3) or t.shape != (3,):
            raise ValueError(f"camera: K, R, t must have shapes (3, 3), (3, 3), (3,); "
                             f"got {K.shape}, {R.shape}, {t.shape}")
        if not (np.isfinite(K).all() and np.isfinite(R).all() and np.isfinite(t).all()):
            raise ValueError("camera: K, R and t must be finite")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ValueError(f"camera: focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
        if np.abs(R @ R.T - np.eye(3)).max() > 1e-6:
            raise ValueError("camera: R must be a rotation matrix (R @ R.T = I)")
        if int(self.width) < 1 or int(self.height) < 1:
            raise ValueError(f"camera: image size must be positive, got {self.width} x {self.height}")
        for k, a in (("K", K), ("R", R), ("t", t)):
            a.setflags(write=False)
            object.__setattr__(self, k, a)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def center(self) -> np.ndarray:
        """(3,) float: the camera centre in world coordinates."""
        return -self.R.T @ self.t

    def ray(self, col, row) -> np.ndarray:
        """(P, 3) float: unit world directions of the rays through image points ``(col, row)``."""
        uv1 = np.c_[np.asarray(col, np.float64).ravel(), np.asarray(row, np.float64).ravel(), np.ones(np.size(col))]
        d = np.linalg.solve(self.K, uv1.T).T @ self.R
        return d / np.linalg.norm(d, axis=1, keepdims=True)


class Fragments(NamedTuple):
    """What :func:`rasterize` returns (arrays of the input's kind: numpy or torch).

    face : (H, W) int64
        Visible face per pixel, ``-1`` for background.
    bary : (H, W, 3) float
        Barycentric coordinates of the pixel centre's ray hit in ``face`` (0 on background).
    depth : (H, W) float
        Camera-space depth ``z`` of the hit (``inf`` on background).
    """

    face: object
    bary: object
    depth: object


def look_at(eye, target, *, up=(0.0, 1.0, 0.0), focal: float, width: int, height: int,
            principal=None) -> Camera:
    """A camera at ``eye`` looking at ``target`` with world ``up`` pointing up in the image.

    Parameters
    ----------
    eye, target : (3,) float
    up : (3,) float
        Must not be parallel to ``target - eye``.
    focal : float
        Focal length in pixels (``fx = fy``).
    width, height : int
    principal : (2,) float, optional
        Principal point; default the image centre ``(width / 2, height / 2)``.
    """
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    z = target - eye
    if np.linalg.norm(z) == 0:
        raise ValueError("look_at: eye and target coincide")
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)  # camera x (right) = forward x up for a y-down image
    if np.linalg.norm(x) < 1e-9:
        raise ValueError(f"look_at: up {up.tolist()} is parallel to the viewing direction")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    cx, cy = (width / 2.0, height / 2.0) if principal is None else principal
    K = np.array([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])
    return Camera(K, R, -R @ eye, width, height)


def project(points, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates and depth of world points.

    Parameters
    ----------
    points : (P, 3) float

    Returns
    -------
    uv : (P, 2) float
        ``(col, row)`` in pixel units (a pixel's centre is at ``index + 0.5``).
    depth : (P,) float
        Camera-space ``z`` (positive in front of the camera).
    """
    X = np.asarray(points, dtype=np.float64) @ camera.R.T + camera.t
    h = X @ camera.K.T
    with np.errstate(divide="ignore", invalid="ignore"):
        return h[:, :2] / h[:, 2:3], X[:, 2]


def default_chunk(device_type: str, free_bytes: int | None = None) -> int:
    """(pixel, face) pairs per block of :func:`rasterize` on a device.

    The CPU keeps 2**21 (caches). On CUDA every block also pays a few full-image passes (its
    z-buffer and the merge) and a host sync, so blocks take a quarter of the free memory
    (2**18 to 2**26 pairs): a 4096 x 4096 frame of a body (~5e7 pairs) is one or a few blocks.

    Parameters
    ----------
    device_type : str
        ``"cpu"``, ``"cuda"``, ...
    free_bytes : int, optional
        Free device memory (``torch.cuda.mem_get_info()[0]``); needed for CUDA.

    Examples
    --------
    >>> default_chunk("cpu") == 2**21, default_chunk("cuda", 16 * 2**30) == 2**24
    (True, True)
    """
    if device_type != "cuda":
        return _CPU_CHUNK
    return int(min(1 << 26, max(1 << 18, int(free_bytes) // (4 * _PAIR_BYTES))))


def rasterize(vertices, faces, camera: Camera, *, cull_backfaces: bool = False, near: float = 1e-6,
              chunk: int | None = None, device=None) -> Fragments:
    """Visible face, barycentric coordinates and depth at every pixel centre.

    Parameters
    ----------
    vertices : (V, 3) float
        World positions (numpy or torch).
    faces : (F, 3) int
    camera : Camera
    cull_backfaces : bool
        Skip faces whose front (counter-clockwise corners, right-hand normal) is turned
        away from the camera. Safe for closed, outward-oriented meshes; about halves the work.
    near : float
        Faces with a corner at camera depth ``<= near`` are dropped (not clipped).
    chunk : int, optional
        Most (pixel, face) pairs evaluated at once (bounds memory); default
        :func:`default_chunk` of the compute device (2**21 on the CPU, up to 2**26 on CUDA).
    device : str or torch.device, optional
        Where to compute. None follows ``vertices`` (a tensor's device; CPU for numpy).

    Returns
    -------
    Fragments
        ``face (H, W)``, ``bary (H, W, 3)``, ``depth (H, W)``: torch tensors on the
        compute device when ``vertices`` is a tensor, else numpy arrays.

    Raises
    ------
    ValueError
        Wrong shapes, face indices out of range, non-finite vertices, ``chunk < 1``.
    """
    import torch

    as_numpy = not isinstance(vertices, torch.Tensor)
    V, Fi, device = _as_tensors(vertices, faces, device)
    if chunk is None:
        device = torch.device(device)
        chunk = default_chunk(device.type, torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None)
    if chunk < 1:
        raise ValueError(f"rasterize: chunk must be >= 1, got {chunk}")
    dt = V.dtype
    R, t, K = (torch.tensor(np.array(a), dtype=dt, device=device) for a in (camera.R, camera.t, camera.K))
    Xc = V @ R.T + t  # camera coordinates
    table, itable, count = _face_setup(Xc, K, Fi, camera.width, camera.height, cull_backfaces, near)
    fbuf = _zbuffer(table, itable, count, camera.width, camera.height, chunk)
    bary, depth = _exact_hits(Xc, Fi, K, fbuf, camera.width)
    H, W = camera.height, camera.width
    out = Fragments(fbuf.reshape(H, W), bary.reshape(H, W, 3), depth.reshape(H, W))
    if as_numpy:
        return Fragments(*(a.cpu().numpy() for a in out))
    return out


def _as_tensors(vertices, faces, device):
    """Validated (V, 3) float and (F, 3) long tensors on the compute device."""
    import torch

    as_numpy = not isinstance(vertices, torch.Tensor)
    if device is None:
        device = torch.device("cpu") if as_numpy else vertices.device
    if as_numpy:
        V = torch.tensor(np.ascontiguousarray(vertices, dtype=np.float64), device=device)
    else:
        V = vertices.to(device)
    if not V.is_floating_point():
        V = V.double()
    Fi = faces.to(device) if isinstance(faces, torch.Tensor) else torch.tensor(np.ascontiguousarray(faces), device=device)
    if V.ndim != 2 or V.shape[1] != 3:
        raise ValueError(f"rasterize: vertices must have shape (V, 3), got {tuple(V.shape)}")
    if Fi.numel() == 0:
        Fi = Fi.reshape(0, 3)
    if Fi.ndim != 2 or Fi.shape[1] != 3 or Fi.is_floating_point():
        raise ValueError(f"rasterize: faces must be an (F, 3) integer array, "
                         f"got shape {tuple(Fi.shape)} dtype {Fi.dtype}")
    Fi = Fi.long()
    if Fi.numel() and (int(Fi.min()) < 0 or int(Fi.max()) >= len(V)):
        i = int(torch.nonzero(((Fi < 0) | (Fi >= len(V))).any(1))[0])
        raise ValueError(f"rasterize: faces[{i}] = {Fi[i].tolist()} references a vertex outside 0..{len(V) - 1}")
    if not bool(torch.isfinite(V).all()):
        raise ValueError("rasterize: vertices must be finite")
    return V, Fi, device


def _face_setup(Xc, K, Fi, W: int, H: int, cull_backfaces: bool, near: float):
    """Steps 1-2: per kept face its edge functions and 1/z (``table`` (Fk, 12)), its pixel box
    (``itable`` (Fk, 5): x0, y0, box width, first pair, face id) and pair ``count`` (Fk,)."""
    import torch

    z = Xc[:, 2]
    hom = Xc @ K.T
    uv = hom[:, :2] / hom[:, 2:3]
    # corner-wise 1-D gathers: much faster than fancy indexing on CPU
    i0, i1, i2 = Fi[:, 0].contiguous(), Fi[:, 1].contiguous(), Fi[:, 2].contiguous()
    u, v = uv[:, 0].contiguous(), uv[:, 1].contiguous()
    x0, x1, x2 = u.index_select(0, i0), u.index_select(0, i1), u.index_select(0, i2)
    y0, y1, y2 = v.index_select(0, i0), v.index_select(0, i1), v.index_select(0, i2)
    area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)  # < 0: the front faces the camera
    keep = (area < 0) if cull_backfaces else (area != 0)
    keep &= torch.isfinite(area)
    front = z > near
    if not bool(front.all()):
        keep &= front.index_select(0, i0) & front.index_select(0, i1) & front.index_select(0, i2)
    fid = torch.nonzero(keep).squeeze(1)
    x0, x1, x2, y0, y1, y2, area = (c.index_select(0, fid) for c in (x0, x1, x2, y0, y1, y2, area))
    # pixels whose centre lies in the face's box: ceil(min - 0.5) .. floor(max - 0.5)
    lox = torch.ceil(torch.minimum(torch.minimum(x0, x1), x2) - 0.5).clamp_(min=0).long()
    loy = torch.ceil(torch.minimum(torch.minimum(y0, y1), y2) - 0.5).clamp_(min=0).long()
    hix = torch.floor(torch.maximum(torch.maximum(x0, x1), x2) - 0.5).clamp_(max=W - 1).long()
    hiy = torch.floor(torch.maximum(torch.maximum(y0, y1), y2) - 0.5).clamp_(max=H - 1).long()
    bw = hix - lox + 1
    bh = hiy - loy + 1
    some = (bw > 0) & (bh > 0)
    if not bool(some.all()):
        sel = torch.nonzero(some).squeeze(1)
        fid, x0, x1, x2, y0, y1, y2, area, lox, loy, bw, bh = (
            c.index_select(0, sel) for c in (fid, x0, x1, x2, y0, y1, y2, area, lox, loy, bw, bh))
    count = bw * bh
    # edge functions b_i(x, y) = cx_i * x + cy_i * y + c0_i (edge opposite corner i, divided by the area)
    cols = []
    for (xa, ya), (xb, yb) in (((x1, y1), (x2, y2)), ((x2, y2), (x0, y0)), ((x0, y0), (x1, y1))):
        dx, dy = xb - xa, yb - ya
        cols += [-dy / area, dx / area, (dy * xa - dx * ya) / area]
    iz = 1.0 / z
    cols += [iz.index_select(0, Fi[:, k].index_select(0, fid)) for k in range(3)]
    ends = torch.cumsum(count, 0)
    return torch.stack(cols, 1), torch.stack([lox, loy, bw, ends - count, fid], 1), count


def _zbuffer(table, itable, count, W: int, H: int, chunk: int):
    """Steps 3-4: (H * W,) long visible face per pixel (-1: background), ties to the lowest id."""
    import torch

    device, dt = table.device, table.dtype
    eps = 1e-9 if dt == torch.float64 else 1e-6
    zbuf = torch.full((H * W,), float("inf"), dtype=dt, device=device)
    fbuf = torch.full((H * W,), -1, dtype=torch.long, device=device)
    big = torch.iinfo(torch.long).max
    ends = torch.cumsum(count, 0)
    total = int(ends[-1]) if len(ends) else 0
    starts = ends - count
    for base in range(0, total, chunk):
        stop = min(base + chunk, total)
        n = stop - base
        # faces fa..fb cover the pairs base..stop-1 (the first and last possibly in part)
        fa = int(torch.searchsorted(ends, torch.tensor(base, device=device), right=True))
        fb = int(torch.searchsorted(ends, torch.tensor(stop - 1, device=device), right=True))
        cnt = count[fa : fb + 1].clone()
        cnt[0] = min(int(ends[fa]), stop) - base
        if fb > fa:
            cnt[-1] = stop - int(starts[fb])
        kk = torch.repeat_interleave(torch.arange(fa, fb + 1, device=device), cnt, output_size=n)
        it = itable.index_select(0, kk)
        off = torch.arange(base, stop, device=device) - it[:, 3]
        px = it[:, 0] + off % it[:, 2]
        py = it[:, 1] + torch.div(off, it[:, 2], rounding_mode="floor")
        tb = table.index_select(0, kk)
        x = px.to(dt) + 0.5
        y = py.to(dt) + 0.5
        b0 = tb[:, 0] * x + tb[:, 1] * y + tb[:, 2]
        b1 = tb[:, 3] * x + tb[:, 4] * y + tb[:, 5]
        b2 = tb[:, 6] * x + tb[:, 7] * y + tb[:, 8]
        inside = torch.nonzero((b0 >= -eps) & (b1 >= -eps) & (b2 >= -eps)).squeeze(1)
        pix = (py * W + px).index_select(0, inside)
        depth = 1.0 / (b0 * tb[:, 9] + b1 * tb[:, 10] + b2 * tb[:, 11]).index_select(0, inside)
        face = it[:, 4].index_select(0, inside)
        # chunk-local z-buffer with lowest-face-id ties, then merge with the global one
        zc = torch.full((H * W,), float("inf"), dtype=dt, device=device).scatter_reduce_(0, pix, depth, "amin")
        best = depth == zc.index_select(0, pix)
        fc = torch.full((H * W,), big, dtype=torch.long, device=device)
        fc.scatter_reduce_(0, pix[best], face[best], "amin")
        if base == 0:
            zbuf, fbuf = zc, torch.where(fc == big, -1, fc)
        else:
            take = (zc < zbuf) | ((zc == zbuf) & (fc < fbuf) & (fc != big))
            zbuf = torch.where(take, zc, zbuf)
            fbuf = torch.where(take, fc, fbuf)
    return fbuf


def _exact_hits(Xc, Fi, K, fbuf, W: int):
    """Step 5: barycentrics (H * W, 3) and depth (H * W,) of the winners by ray-triangle
    intersection (Moller-Trumbore) through each pixel centre."""
    import torch

    device, dt = Xc.device, Xc.dtype
    n = len(fbuf)
    hit = torch.nonzero(fbuf >= 0).squeeze(1)
    bary = torch.zeros((n, 3), dtype=dt, device=device)
    depth = torch.full((n,), float("inf"), dtype=dt, device=device)
    if len(hit):
        f = fbuf.index_select(0, hit)
        col = (hit % W).to(dt) + 0.5
        row = torch.div(hit, W, rounding_mode="floor").to(dt) + 0.5
        ray = torch.stack([col, row, torch.ones_like(col)], 1) @ torch.linalg.inv(K).T  # camera coords, z = 1
        P0, P1, P2 = (Xc.index_select(0, Fi[:, c].index_select(0, f)) for c in range(3))
        E1, E2 = P1 - P0, P2 - P0
        pv = torch.cross(ray, E2, dim=1)
        det = (E1 * pv).sum(1)
        tv = -P0  # ray origin is the camera centre (0, 0, 0)
        u = (tv * pv).sum(1) / det
        qv = torch.cross(tv, E1, dim=1)
        v = (ray * qv).sum(1) / det
        dist = (E2 * qv).sum(1) / det  # ray parameter; ray has z = 1, so this is the depth
        b = torch.stack([1.0 - u - v, u, v], 1).clamp_(min=0.0)
        bary.index_copy_(0, hit, b / b.sum(1, keepdim=True))
        depth.index_copy_(0, hit, dist)
    return bary, depth
