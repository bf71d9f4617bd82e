"""Left-right symmetry of DensePose labels, for horizontal-flip augmentation.

* :data:`POINT_FLIP` -- chart I (0..24) -> its mirror chart (DensePose's point-label table);
* :data:`MASK_FLIP` -- coarse part (0..14) -> its mirror part (the ``dp_masks`` table);
* :class:`UVSymmetry` -- (I, U, V) -> mirrored (I', U', V'). Two sources:

  - :meth:`UVSymmetry.from_mat`: DensePose's ``UV_symmetry_transforms.mat`` (``U_transforms``,
    ``V_transforms``: 24 tables of 256 x 256 indexed ``[int(V * 255), int(U * 255)]``);
  - :meth:`UVSymmetry.from_mesh`: derived from a mirror-symmetric mesh and its atlas (the
    embedded human is exactly symmetric across x = 0): locate (I, U, V) on the surface, map the
    face to its mirror face (vertex x -> -x), carry the barycentric coordinates, read the chart
    coordinates there. Exact, ~70 us per point. :meth:`UVSymmetry.tables` turns it into
    DensePose-style tables (cached under ``~/.cache/densemap``).
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from densemap.errors import DensemapError
from densemap._io import atomic_path

__all__ = ["POINT_FLIP", "MASK_FLIP", "UVSymmetry", "default_uv_symmetry", "cache_dir"]

POINT_FLIP = np.array([0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22, 21, 24, 23])
MASK_FLIP = np.array([0, 1, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 14])


def cache_dir() -> Path:
    """``$DENSEMAP_CACHE`` or ``~/.cache/densemap``."""
    return Path(os.environ.get("DENSEMAP_CACHE", Path.home() / ".cache" / "densemap"))


class UVSymmetry:
    """Mirror of chart coordinates under a horizontal flip. Call with arrays ``(I, U, V)``."""

    def __init__(self, *, tables: tuple[np.ndarray, np.ndarray] | None = None, mesh=None, atlas=None, name: str = ""):
        self.name = name
        self._tables = tables
        self.mesh, self.atlas = mesh, atlas
        if tables is None:
            if mesh is None or atlas is None:
                raise ValueError("UVSymmetry needs tables or a mesh and its atlas")
            self._face_mirror, self._corner_perm = _mirror_faces(mesh.vertices, atlas.faces, name)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_mat(cls, path: str | os.PathLike) -> "UVSymmetry":
        """Read DensePose's ``UV_symmetry_transforms.mat``."""
        from scipy.io import loadmat

        try:
            d = loadmat(str(path))
        except (OSError, ValueError) as exc:
            raise DensemapError(f"{path}: cannot read UV symmetry transforms ({exc})") from None
        if "U_transforms" not in d or "V_transforms" not in d:
            raise DensemapError(f"{path}: expected variables U_transforms and V_transforms, got {sorted(k for k in d if not k.startswith('__'))}")
        U = np.stack([np.asarray(d["U_transforms"][0, i], dtype=np.float64) for i in range(24)])
        V = np.stack([np.asarray(d["V_transforms"][0, i], dtype=np.float64) for i in range(24)])
        return cls(tables=(U, V), name=str(path))

    @classmethod
    def from_mesh(cls, mesh, atlas) -> "UVSymmetry":
        """Exact mirror through a mesh that is symmetric across x = 0 (see the module doc)."""
        return cls(mesh=mesh, atlas=atlas, name=getattr(atlas, "name", "atlas"))

    # ------------------------------------------------------------------ use
    def __call__(self, I, U, V) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mirrored chart coordinates.

        Parameters
        ----------
        I : (P,) int, charts 1..24
        U, V : (P,) float in [0, 1]

        Returns
        -------
        I', U', V' : the same shapes
        """
        I = np.asarray(I).astype(np.int64)
        U = np.asarray(U, dtype=np.float64)
        V = np.asarray(V, dtype=np.float64)
        if I.size and (I.min() < 1 or I.max() > 24):
            raise DensemapError(f"chart ids must be in 1..24, got {int(I.min())}..{int(I.max())}")
        if self._tables is not None:
            Ut, Vt = self._tables
            R = Ut.shape[-1]  # 256 in DensePose: index int(U * 255)
            iu = np.clip((U * (R - 1)).astype(np.int64), 0, R - 1)
            iv = np.clip((V * (R - 1)).astype(np.int64), 0, R - 1)
            return POINT_FLIP[I], Ut[I - 1, iv, iu], Vt[I - 1, iv, iu]
        loc = self.atlas.locate(I, U, V)
        ok = loc.face >= 0
        I2, U2, V2 = POINT_FLIP[I].copy(), U.copy(), V.copy()
        if ok.any():
            f2 = self._face_mirror[loc.face[ok]]
            perm = self._corner_perm[loc.face[ok]]
            b2 = np.take_along_axis(loc.bary[ok], perm, axis=1)
            c, u, v = self.atlas.chart_coords(f2, b2)
            I2[ok], U2[ok], V2[ok] = np.where(c > 0, c, I2[ok]), u, v
        return I2, np.clip(U2, 0, 1), np.clip(V2, 0, 1)

    def tables(self, resolution: int = 256, *, cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """DensePose-style tables ``(U_t, V_t)``, each (24, R, R), indexed ``[I - 1, iv, iu]``
        with ``u = iu / (R - 1)``: the mirrored U (V) of the point ``(I, u, v)``; cached on disk."""
        if self._tables is not None and self._tables[0].shape[-1] == resolution:
            return self._tables
        key = hashlib.sha1(f"{self.name}|{self.atlas.n_faces}|{np.asarray(self.atlas.uv).tobytes()[:4096]!r}|{resolution}".encode()).hexdigest()[:16]
        path = cache_dir() / f"uv_symmetry_{key}.npz"
        if cache and path.is_file():
            d = np.load(path)
            return d["U"], d["V"]
        g = np.arange(resolution) / (resolution - 1)
        uu, vv = np.meshgrid(g, g)  # [iv, iu]
        U = np.empty((24, resolution, resolution))
        V = np.empty_like(U)
        for c in range(1, 25):
            _, u2, v2 = self(np.full(uu.size, c), uu.ravel(), vv.ravel())
            U[c - 1], V[c - 1] = u2.reshape(uu.shape), v2.reshape(uu.shape)
        if cache:
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.savez_compressed(fh, U=U, V=V)
        return U, V


def _mirror_faces(vertices: np.ndarray, faces: np.ndarray, name: str, tol: float = 1e-6):
    """For each face its mirror face (vertices x -> -x) and the corner permutation
    ``perm`` with ``bary_mirror = bary[perm]``."""
    from scipy.spatial import cKDTree

    v = np.asarray(vertices, dtype=np.float64)
    d, mv = cKDTree(v).query(v * np.array([-1.0, 1.0, 1.0]))
    scale = float(np.ptp(v, axis=0).max())
    if d.max() > tol * scale:
        raise DensemapError(f"{name}: the mesh is not mirror-symmetric across x = 0 (a vertex is {d.max():.3g} from "
                            "its mirror image); pass UV_symmetry_transforms.mat instead")
    f = np.asarray(faces, dtype=np.int64)
    index = {tuple(sorted(t)): k for k, t in enumerate(f.tolist())}
    mf = mv[f]  # (F, 3) mirrored corners, in f's corner order
    face_mirror = np.empty(len(f), np.int64)
    perm = np.empty((len(f), 3), np.int64)
    for k, t in enumerate(mf.tolist()):
        j = index.get(tuple(sorted(t)))
        if j is None:
            raise DensemapError(f"{name}: face {k} has no mirror face")
        face_mirror[k] = j
        # corner q of face j holds vertex f[j, q] = mirror of f[k, p]: bary'[q] = bary[p]
        pos = {vert: p for p, vert in enumerate(t)}
        perm[k] = [pos[vert] for vert in f[j]]
    return face_mirror, perm


@lru_cache(maxsize=4)
def default_uv_symmetry(path: str | None = None) -> UVSymmetry:
    """``UV_symmetry_transforms.mat`` at ``path``, or the embedded human's exact mirror."""
    if path:
        return UVSymmetry.from_mat(path)
    from densemap.charts import reference_atlas
    from densemap.data import reference_human

    return UVSymmetry.from_mesh(reference_human().mesh, reference_atlas("human"))
