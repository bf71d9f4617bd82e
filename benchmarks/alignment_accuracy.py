"""Ground-truth accuracy of the chimp -> human map on the embedded pair, over densemap's options.

The chimp was built from the human, so every chimp vertex has a known human surface
point. For each setting this prints the geodesic error on the human between the mapped
vertex and that point, divided by sqrt(human area) (mean, median, 90th percentile), and
the part agreement. Descriptors are computed once per (weighting, time step, sources)
and normalised every way; matching and refinement run per row.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/alignment_accuracy.py [--quick] [--json out.json]

Distances for the error come from the heat method (robust Laplacian, t = h^2) on the
human, from every human vertex that is a corner of a ground-truth face; the error of a
match is the barycentric mix of the three corners' distances.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

from densemap.data import chimp_to_human_ground_truth, reference_chimp, reference_human
from densemap.descriptors import normalize_descriptors, part_descriptors
from densemap.geodesics import GeodesicSolver
from densemap.mapping import match_descriptors, refine_maps, shared_time_step


def gt_distance_table(human, face, bary):
    corners = human.faces[face]  # (Vc, 3)
    uniq, inv = np.unique(corners, return_inverse=True)
    solver = GeodesicSolver(human)
    d = solver.distances(uniq).astype(np.float32)  # (U, V_h)
    return d, inv.reshape(corners.shape)


def gt_error(idx, dtab, corner_rows, bary, scale):
    """(Vc,) error of chimp vertex i mapped to human vertex idx[i]."""
    rows = np.arange(len(idx))
    e = sum(bary[:, k] * dtab[corner_rows[:, k], idx] for k in range(3))
    return e / scale


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="only the area weighting and the main normalisations")
    ap.add_argument("--json", help="also write the rows as JSON")
    ap.add_argument("--exact-m", type=int, default=0, help="also exact (MMP) sampled descriptors with m sources per part")
    args = ap.parse_args(argv)

    human, hparts, _ = reference_human()
    chimp, cparts, _ = reference_chimp()
    face, bary = chimp_to_human_ground_truth()
    scale = np.sqrt(human.area)
    t0 = time.perf_counter()
    dtab, corner_rows = gt_distance_table(human, face, bary)
    print(f"ground-truth distance table: {dtab.shape} in {time.perf_counter() - t0:.1f} s", flush=True)
    gt_vertex = human.faces[face, np.argmax(bary, 1)]

    t_common = shared_time_step(human, chimp)
    desc_configs = [("area", "common", "all", "heat"), ("vertex", "common", "all", "heat"), ("area", "own", "all", "heat")]
    if not args.quick:
        desc_configs += [("area", "common x2", "all", "heat"), ("area", "common", 64, "heat"), ("area", "common", 16, "heat")]
    if args.exact_m:
        desc_configs.append(("area", "n/a", args.exact_m, "exact"))
    norms = ["part", "part-sqrt", "std", "log"] if args.quick else ["part", "part-sqrt", "std", "log", "global"]
    rows = []
    header = f"{'weighting':8s} {'t':9s} {'sources':7s} {'method':6s} {'normalize':9s} {'same':4s} {'refine':6s} | {'mean':>6s} {'median':>6s} {'p90':>6s} {'parts':>6s} {'time':>6s}"
    print(header)
    print("-" * len(header))
    for weighting, tmode, sources, method in desc_configs:
        t = {"common": t_common, "common x2": 2 * t_common, "own": None, "n/a": None}[tmode]
        t0 = time.perf_counter()
        kw = dict(weighting=weighting, sources=sources, normalize="none", method=method, t=t)
        if method == "exact":
            kw.pop("t")
        raw_h = part_descriptors(human, hparts, **kw)
        raw_c = part_descriptors(chimp, cparts, **kw)
        t_desc = time.perf_counter() - t0
        for norm in norms:
            dh = normalize_descriptors(raw_h, human, hparts, normalize=norm, weighting=weighting)
            dc = normalize_descriptors(raw_c, chimp, cparts, normalize=norm, weighting=weighting)
            for same in (False, True):
                for refine in (False, True):
                    if refine and not same:
                        continue  # unrestricted ZoomOut takes minutes here; see docs/alignment.md
                    t1 = time.perf_counter()
                    c2h = match_descriptors(dc, dh, parts_src=cparts, parts_tgt=hparts, same_part=same)
                    if refine:
                        h2c = match_descriptors(dh, dc, parts_src=hparts, parts_tgt=cparts, same_part=same)
                        h2c, c2h = refine_maps(human, chimp, h2c, c2h, same_part=same, parts_a=hparts, parts_b=cparts,
                                               desc_a=dh, desc_b=dc)
                    dt = time.perf_counter() - t1 + t_desc
                    err = gt_error(c2h.indices, dtab, corner_rows, bary, scale)
                    agree = float(np.mean(hparts.labels[c2h.indices] == cparts.labels))
                    row = dict(weighting=weighting, t=tmode, sources=sources, method=method, normalize=norm,
                               same_part=same, refine=refine, mean=float(err.mean()), median=float(np.median(err)),
                               p90=float(np.percentile(err, 90)), part_agreement=agree,
                               exact_vertex=float(np.mean(c2h.indices == gt_vertex)), seconds=dt)
                    rows.append(row)
                    print(f"{weighting:8s} {tmode:9s} {str(sources):7s} {method:6s} {norm:9s} {str(same)[0]:4s} "
                          f"{'zoom' if refine else '-':6s} | {row['mean']:6.4f} {row['median']:6.4f} {row['p90']:6.4f} "
                          f"{agree:6.3f} {dt:6.1f}", flush=True)
    best = min(rows, key=lambda r: r["mean"])
    print("\nbest:", json.dumps(best))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
