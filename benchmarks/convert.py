#!/usr/bin/env python
"""Annotation conversion: throughput and accuracy against the embedded pair's ground truth.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/convert.py                 # both parts
    OMP_WAIT_POLICY=PASSIVE python benchmarks/convert.py --speed-only --points 1000000
    OMP_WAIT_POLICY=PASSIVE python benchmarks/convert.py --accuracy-only --gt-points 2000 --sources 16

Speed: converts ``--points`` random chimp chart points (area-uniform surface points, as
(I, U, V) on the chimp atlas) to the human with :meth:`AnnotationConverter.convert_charts`
(locate on the chimp atlas -> map -> human chart coordinates and nearest vertex) and
reports points per second. The map (``align``) and atlases are built before timing.

Accuracy: converts ``--gt-points`` random chimp chart points and compares the human
surface points with the construction's ground truth (each chimp vertex's true human
point, interpolated over the chimp face and re-projected onto the human). Reports the
geodesic error on the human divided by ``sqrt(human area)`` (mean, median, p90; heat
method, measured from the ground-truth point's nearest vertex), the fraction of points
whose converted chart equals the ground truth's, and the same for the identity
(human -> human) conversion.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def chimp_points(atlas, mesh, n, seed):
    rng = np.random.default_rng(seed)
    face = rng.choice(atlas.n_faces, size=n, p=mesh.face_areas / mesh.area)
    bary = rng.dirichlet([1.0, 1.0, 1.0], size=n)
    return face, bary


def speed(conv, n, seed, repeats):
    face, bary = chimp_points(conv.source_atlas, conv.source, n, seed)
    c, u, v = conv.source_atlas.chart_coords(face, bary)
    conv.convert_charts(c[:1000], u[:1000], v[:1000])  # warm caches (grids)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        res = conv.convert_charts(c, u, v)
        best = min(best, time.perf_counter() - t)
    st = np.bincount(res.status, minlength=3)
    print(f"speed: {n} points in {best:.2f} s = {n / best:,.0f} points/s "
          f"(best of {repeats}; kept {st[0]}, moved {st[1]}, dropped {st[2]})")
    return n / best


def accuracy(conv, n, seed):
    from densemap.data import chimp_to_human_ground_truth, reference_human
    from densemap.geodesics import GeodesicSolver
    from densemap.surface import SurfaceMap

    human = reference_human().mesh
    h_atlas = conv.target_atlas
    face, bary = chimp_points(conv.source_atlas, conv.source, n, seed)
    c, u, v = conv.source_atlas.chart_coords(face, bary)
    res = conv.convert_charts(c, u, v)
    ok = res.status < 2
    # ground truth: interpolate the true human points of the chimp face's corners, re-project
    gf, gb = chimp_to_human_ground_truth()
    gpos = np.einsum("vk,vkd->vd", gb, human.vertices[human.faces[gf]])
    gvert = human.faces[gf, np.argmax(gb, axis=1)]
    gmap = SurfaceMap(gvert, gpos, conv.source_atlas.faces, human.vertices, h_atlas.faces)
    tf, tb, _ = gmap.map(face, bary)
    gc, _, _ = h_atlas.chart_coords(tf, tb)
    src = h_atlas.faces[tf, np.argmax(tb, axis=1)]  # ground truth's nearest corner: field source
    solver = GeodesicSolver(human)
    err = np.full(n, np.nan)
    uniq, inv = np.unique(src, return_inverse=True)
    corners = h_atlas.faces[np.maximum(res.face, 0)]
    for s in range(0, len(uniq), 256):
        rows = np.asarray(solver.distances(uniq[s : s + 256]))
        sel = np.flatnonzero((inv >= s) & (inv < s + 256) & ok)
        vals = rows[inv[sel] - s][np.arange(len(sel))[:, None], corners[sel]]
        err[sel] = (vals * res.bary[sel]).sum(1)
    err /= np.sqrt(human.area)
    e = err[ok]
    print(f"accuracy ({n} chimp points -> human, map: {conv.map_info}):")
    print(f"  geodesic error / sqrt(area): mean {e.mean():.4f}, median {np.median(e):.4f}, "
          f"p90 {np.percentile(e, 90):.4f}; converted {ok.mean():.3%}")
    print(f"  chart agreement with ground truth: {(res.i[ok] == gc[ok]).mean():.3%}")
    return e.mean()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--gt-points", type=int, default=2000)
    ap.add_argument("--sources", default="16", help="align(): sampled geodesic sources per part, or 'all'")
    ap.add_argument("--map", help="alignment .npz to use instead of computing one")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--accuracy-only", action="store_true")
    args = ap.parse_args(argv)
    from densemap.annotation import reference_converter

    sources = args.sources if args.sources == "all" else int(args.sources)
    t = time.perf_counter()
    conv = reference_converter("chimp", "human", map_path=args.map, sources=sources)
    print(f"setup (atlases + map): {time.perf_counter() - t:.1f} s; map: {conv.map_info}")
    if not args.accuracy_only:
        speed(conv, args.points, args.seed, args.repeats)
    if not args.speed_only:
        accuracy(conv, args.gt_points, args.seed + 1)
        ident = reference_converter("human", "human")
        face, bary = chimp_points(ident.source_atlas, ident.source, 20000, args.seed + 2)
        c, u, v = ident.source_atlas.chart_coords(face, bary)
        r = ident.convert_charts(c, u, v)
        print(f"identity human -> human: charts equal {np.mean(r.i == c):.3%}, "
              f"max |dU|, |dV| = {max(np.abs(r.u - u).max(), np.abs(r.v - v).max()):.2e}")


if __name__ == "__main__":
    main()
