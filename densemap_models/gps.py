"""Geodesic point similarity (GPS) of DensePose predictions, with densemap's own geodesics.

DensePose's protocol (``../shared/densepose-formats.md`` §3.2-3.3) maps ground-truth and
predicted (I, U, V) to vertices of the target mesh and scores each annotated point by
``exp(-d^2 / (2 kappa^2))``, ``d`` the geodesic distance in metres and ``kappa`` the per-part
normaliser of the point's ground-truth chart; GPS is the mean over a ground truth's points,
points outside the detection or predicted as background scoring 0.

Here the target mesh is a :class:`~densemap.mesh.Mesh` with a :class:`~densemap.charts.ChartAtlas`
(default: the embedded human, ``"densemap_human"``): (I, U, V) -> surface point with
``atlas.locate`` -> nearest vertex; distances come from
:class:`densemap.geodesics.GeodesicSolver` (heat method) for the needed sources only -- no
N x N file. Distances are converted to metres with ``units_to_metres`` (the embedded meshes are
in **decimetres**: 0.1), so DensePose's kappa values (metres, measured on SMPL) apply. For real
SMPL evaluation build the target from the SMPL mesh and DensePose's ``UV_Processed.mat``
(:func:`densemap.charts.load_uv_processed`) with ``units_to_metres=1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["KAPPA_GROUP", "MEAN_DISTANCES", "part_kappa", "GeodesicTarget", "default_target", "gps_from_vertices",
           "gps_pair"]

# chart I (0..24) -> coarse kappa group; group -> mean geodesic distance (metres, SMPL)
KAPPA_GROUP = np.array([0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 8, 8])
MEAN_DISTANCES = np.array([0, 0.351, 0.107, 0.126, 0.237, 0.173, 0.142, 0.128, 0.150])
GLOBAL_KAPPA = 0.255


def part_kappa(I) -> np.ndarray:
    """(P,) per-point kappa (metres) of DensePose charts I (1..24)."""
    return MEAN_DISTANCES[KAPPA_GROUP[np.asarray(I, dtype=np.int64)]]


@dataclass
class GeodesicTarget:
    """A target mesh for GPS: chart -> vertex lookup and geodesic distances in metres.

    Parameters
    ----------
    mesh : densemap Mesh
    atlas : densemap ChartAtlas on ``mesh``
    units_to_metres : float
        Factor from mesh units to metres (0.1 for the embedded decimetre meshes).
    name : str
    chunk : int
        Geodesic sources per solver call.
    """

    mesh: object
    atlas: object
    units_to_metres: float = 0.1
    name: str = "mesh"
    chunk: int = 256
    _solver: object = field(default=None, repr=False)

    def vertices(self, I, U, V) -> np.ndarray:
        """(P,) vertex of each (I, U, V); -1 where I is 0 (background) or unknown."""
        I = np.asarray(I, dtype=np.int64)
        out = -np.ones(len(I), np.int64)
        ok = I > 0
        if ok.any():
            loc = self.atlas.locate(I[ok], np.asarray(U, dtype=np.float64)[ok], np.asarray(V, dtype=np.float64)[ok])
            good = loc.face >= 0
            vtx = -np.ones(int(ok.sum()), np.int64)
            if good.any():
                vtx[good] = self.atlas.nearest_vertex(loc.face[good], loc.bary[good])
            out[ok] = vtx
        return out

    @property
    def solver(self):
        if self._solver is None:
            from densemap.geodesics import GeodesicSolver

            self._solver = GeodesicSolver(self.mesh)
        return self._solver

    def pair_distances(self, a, b, *, progress: bool = False) -> np.ndarray:
        """(P,) geodesic distance in metres between vertices ``a[p]`` and ``b[p]`` (both >= 0).

        Rows are computed for the unique ``a`` in chunks and dropped after use, so memory stays
        at ``chunk x V`` whatever the number of pairs.
        """
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        out = np.zeros(len(a))
        diff = a != b
        if not diff.any():
            return out
        src, inv = np.unique(a[diff], return_inverse=True)
        idx = np.flatnonzero(diff)
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(0, len(src) + self.chunk, self.chunk))
        it = range(0, len(src), self.chunk)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc="geodesics", unit="chunk", leave=False)
        for c0 in it:
            rows = self.solver.distances(src[c0 : c0 + self.chunk])
            k = c0 // self.chunk
            sel = order[bounds[k] : bounds[k + 1]]
            out[idx[sel]] = rows[inv[sel] - c0, b[idx[sel]]]
        return out * self.units_to_metres


_TARGETS: dict[str, GeodesicTarget] = {}


def default_target(name: str = "densemap_human") -> GeodesicTarget:
    """The embedded human (or chimp) as a GPS target, cached per process."""
    if name not in _TARGETS:
        from densemap.charts import reference_atlas
        from densemap.data import reference

        species = {"densemap_human": "human", "densemap_chimp": "chimp"}.get(name)
        if species is None:
            raise ValueError(f"unknown target mesh {name!r}; expected one of ['densemap_human', 'densemap_chimp'] "
                             "or a GeodesicTarget built from a mesh and atlas")
        _TARGETS[name] = GeodesicTarget(reference(species).mesh, reference_atlas(species), units_to_metres=0.1,
                                        name=name)
    return _TARGETS[name]


def gps_from_vertices(gt_vertex, pred_vertex, gt_I, distances, *, kappa: str | float = "per_part") -> float:
    """GPS of one (detection, ground truth) pair from vertices.

    Parameters
    ----------
    gt_vertex : (P,) int -- -1 where the ground-truth point has no vertex (excluded)
    pred_vertex : (P,) int -- -1 where the prediction is background or outside the box (scores 0)
    gt_I : (P,) int -- ground-truth charts, for the per-part kappa
    distances : (P,) float -- geodesic distance in metres where both vertices exist (else ignored)
    kappa : "per_part" or a number (e.g. 0.255, the CVPR'18 constant)
    """
    gt_vertex = np.asarray(gt_vertex)
    valid = gt_vertex >= 0
    if not valid.any():
        return 0.0
    pred_vertex = np.asarray(pred_vertex)
    d = np.where(pred_vertex >= 0, np.asarray(distances, dtype=np.float64), np.inf)
    d = np.where(pred_vertex == gt_vertex, 0.0, d)[valid]
    k = part_kappa(np.asarray(gt_I)[valid]) if kappa == "per_part" else np.full(int(valid.sum()), float(kappa))
    return float(np.mean(np.exp(-(d**2) / (2 * k**2))))


def gps_pair(target: GeodesicTarget, gt_I, gt_U, gt_V, pred_I, pred_U, pred_V, *, kappa="per_part") -> float:
    """GPS of ground-truth points against predictions at the same points (I = 0: background)."""
    gv = target.vertices(gt_I, gt_U, gt_V)
    pv = target.vertices(pred_I, pred_U, pred_V)
    both = (gv >= 0) & (pv >= 0)
    d = np.zeros(len(gv))
    d[both] = target.pair_distances(gv[both], pv[both])
    return gps_from_vertices(gv, pv, gt_I, d, kappa=kappa)
