"""Accuracy of ``transfer_parts`` on the embedded pair (human -> chimp), against the naive bootstrap.

Landmarks come from the ground truth (:func:`densemap.data.chimp_to_human_ground_truth`):
farthest-point-spread chimp vertices paired with the corner of largest weight of their
true human point; noise moves each chimp click by 1, 2 or 4 cm (the meshes are in
decimetres) in a random tangent direction. For each setting the table gives the share of
the chimp's area whose transferred part is its true part: the naive bootstrap of the issue
(geodesic distances to the landmarks, column-normalised, nearest neighbour), densemap's
landmark bootstrap alone (``dense=False``), the default (bootstrap and dense stage) and,
with ``--iterations N``, the default followed by up to N descriptor iterations; then the
mean offset of the default's part boundaries in cm (symmetric: from each boundary edge to
the nearest true boundary edge between the same two parts) and the times. ``--draws D``
repeats every setting with D landmark sets (the first from the top of the head, the others
farthest-point spread from a random first vertex, with noise seeds ``n, n + 1000, ...``)
and gives the mean and the range.

    OMP_WAIT_POLICY=PASSIVE nice -n 19 python benchmarks/transfer_parts.py [--counts 5 10 20 40] [--noise 1 2 4] [--draws 1]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

CM = 0.1  # mesh units (decimetres) per centimetre


def boundary_edges(mesh, labels):
    """Midpoints (B, 3) and sorted label pairs (B, 2) of the edges between two parts."""
    e = mesh.edges
    a, b = labels[e[:, 0]], labels[e[:, 1]]
    cut = a != b
    mid = 0.5 * (mesh.vertices[e[cut, 0]] + mesh.vertices[e[cut, 1]])
    return mid, np.sort(np.c_[a[cut], b[cut]], axis=1)


def boundary_offset(mesh, labels, truth) -> float:
    """Mean distance (mesh units) between the two labellings' part boundaries, both ways."""
    from scipy.spatial import cKDTree

    pa, la = boundary_edges(mesh, labels)
    pb, lb = boundary_edges(mesh, truth)

    def one_way(p, lp, q, lq):
        out = np.empty(len(p))
        any_tree = cKDTree(q)
        keys = lq[:, 0] * 1000 + lq[:, 1]
        for key in np.unique(lp[:, 0] * 1000 + lp[:, 1]):
            sel = lp[:, 0] * 1000 + lp[:, 1] == key
            same = keys == key
            tree = cKDTree(q[same]) if same.any() else any_tree
            out[sel] = tree.query(p[sel])[0]
        return out

    return float(np.r_[one_way(pa, la, pb, lb), one_way(pb, lb, pa, la)].mean())


def naive(human, chimp, lm):
    """The issue's naive bootstrap: distances to the landmarks, column-normalised, nearest neighbour."""
    from scipy.spatial import cKDTree

    from densemap.geodesics import GeodesicSolver

    dh = GeodesicSolver(human.mesh).distances(lm.ref).T
    dc = GeodesicSolver(chimp.mesh).distances(lm.new).T
    dh, dc = dh / dh.mean(axis=0), dc / dc.mean(axis=0)
    return human.parts.labels[cKDTree(dh).query(dc)[1]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[5, 10, 20, 40])
    ap.add_argument("--noise", type=float, nargs="*", default=[1, 2, 4], help="cm, with 20 landmarks")
    ap.add_argument("--iterations", type=int, default=0, help="also the default plus up to N descriptor iterations")
    ap.add_argument("--draws", type=int, default=1, help="landmark draws per setting")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from densemap.data import chimp_to_human_ground_truth, reference
    from densemap.mapping.landmarks import landmarks_from_ground_truth
    from densemap.mapping.transfer_parts import transfer_parts

    human, chimp = reference("human"), reference("chimp")
    face, bary = chimp_to_human_ground_truth()
    area = chimp.mesh.vertex_areas / chimp.mesh.area
    truth = chimp.parts.labels

    def agree(lab):
        return float(area @ (lab == truth))

    settings = [(n, 0.0) for n in args.counts] + [(20, x) for x in args.noise]
    cols = ["naive", "bootstrap", "default"] + (["iterated"] if args.iterations else [])

    def cell(xs):
        return f"{np.mean(xs):.1%}" if len(xs) == 1 else f"{np.mean(xs):.1%} ({min(xs):.1%}-{max(xs):.1%})"

    print("| landmarks | noise (cm) | " + " | ".join(cols) + " | boundary offset (cm) | time bootstrap / default (s) |")
    print("|---|---|" + "---|" * len(cols) + "---|---|")
    for n, noise in settings:
        acc = {c: [] for c in cols}
        off, times = [], []
        for d in range(args.draws):
            first = None if d == 0 else int(np.random.default_rng(d).integers(chimp.mesh.n_vertices))
            lm = landmarks_from_ground_truth(chimp.mesh, human.mesh.faces, face, bary, n, noise=noise * CM,
                                             seed=n + 1000 * d, start=first)
            acc["naive"].append(agree(naive(human, chimp, lm)))
            t0 = time.perf_counter()
            boot = transfer_parts(human.mesh, human.parts, chimp.mesh, lm, dense=False)
            t1 = time.perf_counter()
            out = transfer_parts(human.mesh, human.parts, chimp.mesh, lm)
            t2 = time.perf_counter()
            acc["bootstrap"].append(agree(boot.parts.labels))
            acc["default"].append(agree(out.parts.labels))
            if args.iterations:
                it = transfer_parts(human.mesh, human.parts, chimp.mesh, lm, iterations=args.iterations)
                acc["iterated"].append(agree(it.parts.labels))
            off.append(boundary_offset(chimp.mesh, out.parts.labels, truth) / CM)
            times.append((t1 - t0, t2 - t1))
        tb, td = np.mean(times, axis=0)
        print(f"| {n} | {noise:g} | " + " | ".join(cell(acc[c]) for c in cols) +
              f" | {np.mean(off):.1f} | {tb:.0f} / {td:.0f} |", flush=True)

if __name__ == "__main__":
    main()
