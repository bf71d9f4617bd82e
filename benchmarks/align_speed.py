"""Speed of ``densemap align`` on the embedded pair against a reference workload in the same run.

Reference: 500 single-source potpourri3d heat solves on the embedded human
(``MeshHeatMethodDistanceSolver``, robust Laplacian, built once, then 500
``compute_distance`` calls). Then ``densemap align`` (the CLI, pictures included) three
times: with an empty eigenbasis cache (cold: both Laplacian bases computed and written),
again with it filled (warm: what every later alignment of the same pair pays), and with
only the human's basis cached (new animal: what aligning another animal to a cached
template pays). The ratio of each to the reference is the figure of merit (the issue's target:
<= 5x). The reference is timed before and after each ``align`` run and the ratio uses the mean
of the two, so a machine that slows down or speeds up during the run moves both sides; with
``--repeat N`` the three runs are done N times and a last table gives the median and the range
of each ratio. Also prints the stage timings from ``report.json`` and the ground-truth error,
and, with ``--eigensolvers``, the time of each eigensolver on the human (k = 120) and
whether the refined map is the same as with the default one.

    OMP_WAIT_POLICY=PASSIVE nice -n 19 python benchmarks/align_speed.py [--repeat N] [--eigensolvers] [--pp3d-sources 500]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def pp3d_reference(n: int) -> float:
    import potpourri3d as pp3d

    from densemap.data import reference

    m = reference("human").mesh
    t0 = time.perf_counter()
    solver = pp3d.MeshHeatMethodDistanceSolver(m.vertices, m.faces, use_robust=True)
    for s in np.linspace(0, m.n_vertices - 1, n).astype(int):
        solver.compute_distance(int(s))
    return time.perf_counter() - t0


def run_cli(cache: str, out: str) -> tuple[float, dict]:
    env = {**os.environ, "DENSEMAP_CACHE": cache, "OMP_WAIT_POLICY": "PASSIVE"}
    exe = str(Path(sys.executable).with_name("densemap"))
    t0 = time.perf_counter()
    done = subprocess.run([exe, "align", "-o", out], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        sys.exit(f"densemap align failed (exit status {done.returncode}):\n{done.stderr[-3000:]}")
    return wall, json.loads((Path(out) / "report.json").read_text())


def eigensolvers() -> None:
    from densemap.data import chimp_to_human_ground_truth, reference
    from densemap.mapping import Aligner
    from densemap.mapping.basis import clear_basis_cache, laplacian_basis

    h, c = reference("human"), reference("chimp")
    gt = chimp_to_human_ground_truth()
    aligner = Aligner(h.mesh, h.parts, c.mesh, c.parts)
    desc = aligner.descriptors()
    ref = None
    print(f"\n{'eigensolver':12s} {'human k=120 (s)':>16s} {'max |eval diff|':>16s} {'same map':>9s} {'gt error':>9s}")
    for solver in ("cholmod", "superlu", "lobpcg"):
        clear_basis_cache()
        t0 = time.perf_counter()
        evals, _, _ = laplacian_basis(h.mesh, 120, eigensolver=solver, cache=False)
        dt = time.perf_counter() - t0
        laplacian_basis(c.mesh, 120, eigensolver=solver, cache=False)
        al = aligner.align(descriptors=desc, refine_options={"eigensolver": solver})
        q = aligner.quality(al, ground_truth_b_to_a=gt, geodesic=False)["b_to_a"]
        if ref is None:
            ref = (evals, al.b_to_a.indices)
        same = float((al.b_to_a.indices == ref[1]).mean())
        print(f"{solver:12s} {dt:16.2f} {np.abs(evals - ref[0]).max():16.2e} {same:9.3f} {q['gt_error_mean']:9.4f}",
              flush=True)
    clear_basis_cache()


def forget_basis(cache: str, n_vertices: int) -> None:
    """Remove the cached eigenbases of the mesh with ``n_vertices`` vertices."""
    folder = Path(cache) / "eigenbasis"
    for f in folder.glob("*.npz"):
        with np.load(f) as z:
            mine = z["mass"].shape == (n_vertices,)
        if mine:
            f.unlink()


CASES = ("cold cache", "warm cache", "new animal")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pp3d-sources", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=1, help="do the three runs this many times (default 1)")
    ap.add_argument("--eigensolvers", action="store_true", help="also compare the eigensolvers")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, got {args.repeat}")
    from densemap.data import reference

    ratios = {case: [] for case in CASES}
    ref = pp3d_reference(args.pp3d_sources)
    print(f"reference: {args.pp3d_sources} potpourri3d heat solves on the human: {ref:.2f} s", flush=True)
    for r in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cache = os.path.join(tmp, "cache")
            for case in CASES:
                if case == "new animal":  # the template's basis cached, the animal's not (aligning many to one)
                    forget_basis(cache, reference("chimp").mesh.n_vertices)
                wall, rep = run_cli(cache, os.path.join(tmp, case.replace(" ", "_")))
                after = pp3d_reference(args.pp3d_sources)
                bracket = 0.5 * (ref + after)
                ratios[case].append(wall / bracket)
                q = rep["quality"]["b_to_a"]
                stages = ", ".join(f"{k} {v:.1f}" for k, v in rep["timings_s"].items())
                print(f"run {r + 1}, densemap align ({case}): {wall:.1f} s = {wall / bracket:.1f}x the reference "
                      f"({ref:.2f} s before, {after:.2f} s after)  [{stages}]  "
                      f"gt error mean {q['gt_error_mean']:.4f} p90 {q['gt_error_p90']:.4f}", flush=True)
                ref = after
    if args.repeat > 1:
        print(f"\n{'case':12s} {'median ratio':>13s} {'min':>6s} {'max':>6s}   (of {args.repeat} runs; target <= 5x)")
        for case, x in ratios.items():
            print(f"{case:12s} {np.median(x):13.1f} {min(x):6.1f} {max(x):6.1f}")
    if args.eigensolvers:
        eigensolvers()


if __name__ == "__main__":
    main()
