"""Appearance of the synthetic images: backgrounds, sensor grain and shaded, textured bodies.

Used by :mod:`densemap.synth`. Every random choice comes from the caller's
``numpy.random.Generator`` (in a fixed order), so an image is reproducible from its seed;
the noise lattices are fixed tables, the same in every process.

* :func:`background`: a gradient with blotchy noise and clutter shapes;
* :func:`grain`: sensor noise;
* :func:`shade`: Lambert + rim shading of each instance with value-noise fur/cloth
  texture, composited over a background;
* :func:`value_noise`: smooth 3-D value noise.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["background", "grain", "shade", "value_noise"]


@lru_cache(maxsize=4)
def _noise_grid(n: int = 32) -> np.ndarray:
    """A fixed periodic lattice of random values (value noise), the same in every process."""
    return np.random.default_rng(12345).random((n, n, n))


def value_noise(p: np.ndarray) -> np.ndarray:
    """(P,) smooth noise in [0, 1] at (P, 3) lattice coordinates (trilinear, smoothstep)."""
    g = _noise_grid()
    n = g.shape[0]
    g = g.ravel()
    i = np.floor(p).astype(np.int64)
    f = p - i
    f = f * f * (3.0 - 2.0 * f)
    i0 = i % n
    i1 = (i0 + 1) % n
    out = 0.0
    for dx in (0, 1):
        wx = f[:, 0] if dx else 1.0 - f[:, 0]
        ix = i1[:, 0] if dx else i0[:, 0]
        for dy in (0, 1):
            wy = f[:, 1] if dy else 1.0 - f[:, 1]
            iy = i1[:, 1] if dy else i0[:, 1]
            for dz in (0, 1):
                wz = f[:, 2] if dz else 1.0 - f[:, 2]
                iz = i1[:, 2] if dz else i0[:, 2]
                out = out + wx * wy * wz * g[(ix * n + iy) * n + iz]
    return out


def background(rng: np.random.Generator, H: int, W: int) -> np.ndarray:
    """(H, W, 3) float32: a gradient with blotchy noise, then clutter shapes, mixed at random."""
    from PIL import Image, ImageDraw, ImageFilter

    # gradient + low-frequency noise on a small grid, upsampled bilinearly (a linear
    # gradient stays exactly linear)
    k = int(rng.integers(3, 12))
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    a = rng.uniform(0, 2 * np.pi)
    g = (np.arange(k) + 0.5) / k
    s = np.cos(a) * g[None, :] + np.sin(a) * g[:, None]
    s = (s - s.min()) / max(float(np.ptp(s)), 1e-6)
    small = c0 + s[..., None] * (c1 - c0)
    if rng.random() < 0.8:
        noise = rng.uniform(-128, 128, (k, k, 3))
        noise = noise.mean(2, keepdims=True) + rng.uniform(0.2, 1.0) * (noise - noise.mean(2, keepdims=True))
        small = small + rng.uniform(0.2, 0.6) * noise
    im = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).resize((W, H), Image.BILINEAR)
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(0, 14))):
        col = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, y0 = rng.uniform(-0.2, 1.0) * W, rng.uniform(-0.2, 1.0) * H
        w, h = rng.uniform(0.03, 0.4) * W, rng.uniform(0.03, 0.4) * H
        kind = rng.integers(0, 4)
        if kind == 0:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=col)
        elif kind == 1:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=col)
        elif kind == 2:
            pts = [(x0 + rng.uniform(0, w), y0 + rng.uniform(0, h)) for _ in range(int(rng.integers(3, 7)))]
            draw.polygon(pts, fill=col)
        else:
            draw.line([x0, y0, x0 + w, y0 + h], fill=col, width=int(rng.integers(1, 8)))
    if rng.random() < 0.25:
        im = im.filter(ImageFilter.BoxBlur(float(rng.uniform(0.5, 2.0))))
    return np.asarray(im, dtype=np.float32)


@lru_cache(maxsize=2)
def _grain_tile(n: int = 1024) -> np.ndarray:
    """A fixed tile of standard normal noise (the same in every process), cut at random offsets."""
    return np.random.default_rng(54321).standard_normal((n, n, 1), dtype=np.float32)


def grain(rng: np.random.Generator, H: int, W: int) -> np.ndarray:
    """(H, W, 1) float32 sensor noise, amplitude 0..8 grey levels."""
    tile = _grain_tile(max(1024, H, W))
    oy, ox = rng.integers(0, tile.shape[0] - H + 1), rng.integers(0, tile.shape[1] - W + 1)
    return np.float32(rng.uniform(0, 8)) * tile[oy : oy + H, ox : ox + W]


def shade(assets: dict, species: str, rng: np.random.Generator, normals: list, cam, face: np.ndarray,
          bary: np.ndarray) -> np.ndarray:
    """Composite shaded, fur-textured bodies over a random background: (H, W, 3) uint8.

    Parameters
    ----------
    assets : dict
        The species' constants from ``densemap.synth.scene.species_assets`` (mesh, faces, region).
    species : {"human", "chimp"}
        Chimps get fur colours; humans skin plus random clothes.
    rng : numpy.random.Generator
    normals : list of (V, 3) float
        World-frame vertex normals of each posed instance.
    cam : densemap.render.Camera
    face, bary : (H, W) int, (H, W, 3) float
        The rasteriser's face per pixel (``instance * F + face``, -1 = background) and
        barycentric coordinates.
    """
    A = assets
    F = A["faces"]
    nf, nv = len(F), len(A["mesh"].vertices)
    H, W = face.shape
    img = background(rng, H, W)
    fg = np.flatnonzero(face.ravel() >= 0)
    if len(fg) == 0:
        return np.clip(img + grain(rng, H, W), 0, 255).astype(np.uint8)
    fglob = face.ravel()[fg]
    inst = fglob // nf
    fl = fglob - inst * nf
    b = bary.reshape(-1, 3)[fg]
    corners = F[fl]  # (P, 3) local vertex ids
    rest = A["mesh"].vertices
    # per-instance appearance
    n = len(normals)
    light = rng.normal(0, 1, (n, 3))
    light[:, 2] = -np.abs(light[:, 2]) - 0.5  # towards the camera (camera looks along +z)
    light /= np.linalg.norm(light, axis=1, keepdims=True)
    ambient = rng.uniform(0.3, 0.55, n)
    if species == "chimp":
        fur = rng.uniform([40, 30, 20], [170, 130, 100], (n, 3))
        skin = fur + rng.uniform([30, 20, 10], [110, 80, 60], (n, 3))
        palette = np.stack([skin, fur, fur], 1)
    else:
        skin = np.array([[224, 172, 140]]) * rng.uniform(0.35, 1.1, (n, 1))
        upper = rng.uniform(20, 235, (n, 3))
        lower = rng.uniform(20, 235, (n, 3))
        bare = rng.random(n) < 0.25
        upper[bare], lower[bare] = skin[bare], skin[bare]
        palette = np.stack([skin, upper, lower], 1)  # (n, 3 regions, 3)
    offset = rng.uniform(0, 32, (n, 3))
    freq = rng.uniform(4.0, 9.0, n)  # streaks per dm across, stretched 5x along y
    # normals of the posed meshes (camera frame), interpolated
    out = np.empty((len(fg), 3))
    for i in range(n):
        sel = np.flatnonzero(inst == i)
        if len(sel) == 0:
            continue
        vn = np.einsum("ij,vj->vi", cam.R, normals[i])  # camera frame
        c = corners[sel]
        bs = b[sel]
        nrm = np.einsum("pk,pkd->pd", bs, vn[c])
        nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
        diffuse = np.clip(-np.einsum("pj,j->p", nrm, light[i]), 0, None)
        rim = np.clip(1.0 + nrm[:, 2], 0, 1) ** 3  # grazing light on the silhouette
        shade = ambient[i] + (1 - ambient[i]) * diffuse + 0.15 * rim
        p = np.einsum("pk,pkd->pd", bs, rest[c]) * freq[i] * np.array([1.0, 0.2, 1.0]) + offset[i]
        tex = 0.65 * value_noise(p) + 0.35 * value_noise(p * 3.1 + 7.0)
        base = palette[i][A["region"][fl[sel]]]
        out[sel] = base * (0.55 + 0.7 * tex)[:, None] * shade[:, None]
    img = img.copy()
    img.reshape(-1, 3)[fg] = out
    img += grain(rng, H, W)
    return np.clip(img, 0, 255).astype(np.uint8)
