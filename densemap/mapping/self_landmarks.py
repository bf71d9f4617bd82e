"""Landmarks the map finds for itself: a second refinement for coarse part labels.

With only a handful of parts (trunk with head and four limbs, as public segmentations
often are) the part descriptors have too few columns to place a point inside a big part,
and the refined map confuses regions of the trunk (mean error ~0.065 x sqrt(area) on the
embedded chimp and on the asymmetric pair with 5 parts, against ~0.015 with 32).

Even such a map is right in many places. This stage keeps those:

1. A vertex of A whose round trip A -> B -> A comes back within ``CYCLE_TOL`` x
   sqrt(area) (Euclidean) is taken as correctly mapped.
2. ``LANDMARK_COUNT`` of them are spread by geodesic farthest-point sampling, starting
   from the one farthest from A's centre. Each is paired with its image on B.
3. The landmark features of :func:`~densemap.mapping.landmarks.landmark_features`
   (nearness to each landmark, and on which side of the surface a pair of them is seen)
   replace the descriptors of a new consistent refinement. It starts from the first
   refined maps and keeps the same-part constraint.
4. The whole is repeated (``rounds``), each time with landmarks from the latest maps.

Measured with ``benchmarks/alignment_accuracy.py`` (5 coarse parts, 10 landmarks, 3 rounds;
mean error x sqrt(area), docs/alignment.md):
- embedded chimp: 0.0699 -> 0.0246;
- asym6k: 0.0629 -> 0.0312 (1 round: 0.088, 2: 0.050, 4: 0.031);
- fine50k: 0.0209 -> 0.0118.
With the 32 fine parts the stage made the chimp slightly worse (0.0150 -> 0.0158), so
``"auto"`` runs it only for labellings of at most ``COARSE_MAX_PARTS`` parts. More
landmarks were worse (16: 0.027, 32: 0.029, 64: 0.061 on the chimp): a few well-spread
points carry the information, and every extra point is one more chance of a wrong pair.
"""

from __future__ import annotations

import numpy as np

from ..mesh import Mesh

__all__ = ["LANDMARK_COUNT", "CYCLE_TOL", "LANDMARK_WEIGHT", "COARSE_MAX_PARTS", "AUTO_ROUNDS", "landmark_rounds",
           "map_landmarks"]

LANDMARK_COUNT = 10
CYCLE_TOL = 0.01  # x sqrt(area of A)
LANDMARK_WEIGHT = 1.0  # desc_weight of the landmark features in the refinement
COARSE_MAX_PARTS = 12
AUTO_ROUNDS = 3


def landmark_rounds(rounds: int | str, n_parts: int) -> int:
    """The number of rounds to run: ``"auto"`` is :data:`AUTO_ROUNDS` for at most
    :data:`COARSE_MAX_PARTS` parts, else 0."""
    if rounds == "auto":
        return AUTO_ROUNDS if n_parts <= COARSE_MAX_PARTS else 0
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 0:
        raise ValueError(f"landmark_rounds must be 'auto' or an integer >= 0, got {rounds!r}")
    return int(rounds)


def map_landmarks(mesh_a: Mesh, solver_a, a_to_b: np.ndarray, b_to_a: np.ndarray, *, n: int = LANDMARK_COUNT,
                  tol: float = CYCLE_TOL) -> tuple[np.ndarray, np.ndarray]:
    """``n`` spread vertices of A that the maps send back to themselves, and their images on B.

    Parameters
    ----------
    mesh_a : Mesh
    solver_a : GeodesicSolver
        Of ``mesh_a`` (one distance field per landmark, for the farthest-point spread).
    a_to_b, b_to_a : (V_a,), (V_b,) int
        The vertex maps.
    n : int
    tol : float
        Round-trip distance, as a fraction of ``sqrt(area)``, below which a vertex counts
        as mapped right (the ``n`` best vertices when fewer pass).

    Returns
    -------
    ref : (n,) int
        Vertices of A.
    new : (n,) int
        ``a_to_b[ref]``.
    """
    v = mesh_a.vertices
    back = np.linalg.norm(v - v[b_to_a[a_to_b]], axis=1) / np.sqrt(mesh_a.area)
    good = np.flatnonzero(back < tol)
    if len(good) < n:
        good = np.argsort(back, kind="stable")[:n]
    w = mesh_a.vertex_areas
    centre = (w[:, None] * v).sum(0) / w.sum()
    pick = [int(good[np.argmax(np.linalg.norm(v[good] - centre, axis=1))])]
    nearest = np.full(len(good), np.inf)
    for _ in range(n - 1):
        d = np.asarray(solver_a.distances([pick[-1]]), dtype=np.float64).reshape(-1)
        nearest = np.minimum(nearest, d[good])
        pick.append(int(good[np.argmax(nearest)]))
    ref = np.array(pick, dtype=np.int64)
    return ref, np.asarray(a_to_b, dtype=np.int64)[ref]
