"""Part descriptors on the embedded human at ~3k, ~13k and ~50k vertices: densemap vs potpourri3d.

For each resolution it prints, in one table:

* time of the all-sources descriptor (V x L) with densemap's batched heat method on the
  CPU (and CUDA when torch sees a GPU) against a potpourri3d per-source loop with the
  same reduction (the loop is timed on a subset of sources and extrapolated: marked *);
* the error of each against exact (MMP, pygeodesic) geodesics, as the relative Frobenius
  error of the distance rows from a subset of sources (2 per part, the same for all);
* peak memory of the densemap run (max RSS of a fresh worker process, above its baseline);
* the sampled-source mode (m sources per part, farthest-point + Lloyd, cell-area
  weights): time and relative Frobenius error against the all-sources descriptor.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/descriptors.py [--sizes 3k,13k,50k] [--m 16,64,256]

Needs the ``bench`` extra (pygeodesic). The 50k mesh is the 13k one subdivided 1-to-4;
the 3k mesh is a quadric decimation (pyvista). Parts follow the nearest original vertex.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np


def build(size: str):
    """(vertices, faces, labels) of the embedded human at a resolution."""
    from scipy.spatial import cKDTree

    from densemap.data import reference_human

    mesh, parts, _ = reference_human()
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    if size == "13k":
        return v, f, parts.labels.copy()
    if size == "50k":
        import trimesh

        v2, f2 = trimesh.remesh.subdivide(v, f)
    elif size == "3k":
        import pyvista as pv

        poly = pv.PolyData(v, np.c_[np.full(len(f), 3), f].ravel())
        dec = poly.decimate(1 - 3200 / len(v), volume_preservation=True).clean()
        v2 = np.asarray(dec.points, dtype=np.float64)
        f2 = np.asarray(dec.faces).reshape(-1, 4)[:, 1:]
        # keep the largest component only (decimation can pinch off slivers)
        from densemap.mesh import Mesh

        m2 = Mesh(v2, f2)
        keep = m2.components == np.bincount(m2.components).argmax()
        new = -np.ones(len(v2), np.int64)
        new[keep] = np.arange(keep.sum())
        f2 = new[f2[keep[f2].all(1)]]
        v2 = v2[keep]
    else:
        raise ValueError(size)
    _, nn = cKDTree(v).query(v2)
    return v2, f2, parts.labels[nn]


def _mesh(v, f, lab):
    from densemap.data import part_names
    from densemap.mesh import Mesh
    from densemap.parts import PartLabels

    return Mesh(v, f), PartLabels(lab, part_names())


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def job_densemap(v, f, lab, device, sources, n_check):
    """Runs in a fresh process: time + peak memory of one descriptor computation."""
    import torch

    from densemap.descriptors import part_descriptors
    from densemap.geodesics import GeodesicSolver

    mesh, parts = _mesh(v, f, lab)
    base = _rss_mb()
    t0 = time.perf_counter()
    solver = GeodesicSolver(mesh, device=device)
    d = part_descriptors(mesh, parts, sources=sources, normalize="none", solver=solver)
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    rows = solver.distances(n_check) if n_check is not None else None
    return dt, _rss_mb() - base, d, rows


def job_potpourri(v, f, lab, n_time, n_check, seed=0):
    """potpourri3d's heat solver, one source at a time, with the same part-mean reduction."""
    import potpourri3d as pp3d

    from densemap.descriptors import part_source_weights

    mesh, parts = _mesh(v, f, lab)
    src, W = part_source_weights(mesh, parts)
    rng = np.random.default_rng(seed)
    sub = rng.choice(len(src), size=min(n_time, len(src)), replace=False)
    t0 = time.perf_counter()
    solver = pp3d.MeshHeatMethodDistanceSolver(v, f)
    t_setup = time.perf_counter() - t0
    acc = np.zeros((len(v), parts.n_parts))
    Wd = W.tocsr()
    t0 = time.perf_counter()
    for i in sub:
        d = solver.compute_distance(int(src[i]))
        row = Wd.getrow(i)
        acc[:, row.indices] += d[:, None] * row.data[None]
    t_loop = time.perf_counter() - t0
    total = t_setup + t_loop * len(src) / len(sub)
    rows = np.stack([solver.compute_distance(int(s)) for s in n_check])
    return total, rows


def job_exact(v, f, check):
    from densemap.geodesics import GeodesicSolver
    from densemap.mesh import Mesh

    t0 = time.perf_counter()
    rows = GeodesicSolver(Mesh(v, f), method="exact", n_jobs=1).distances(check)
    return rows, time.perf_counter() - t0


def in_process(fn, *args):
    with ProcessPoolExecutor(1) as ex:
        return ex.submit(fn, *args).result()


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="3k,13k,50k")
    ap.add_argument("--m", default="16,64,256")
    ap.add_argument("--pp-sources", type=int, default=400, help="potpourri3d sources actually timed")
    ap.add_argument("--exact-per-part", type=int, default=2, help="sources per part for the exact check")
    args = ap.parse_args(argv)
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    ms = [int(x) for x in args.m.split(",") if x]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cores {os.cpu_count()}, devices {devices}")
    table = []
    for size in args.sizes.split(","):
        v, f, lab = build(size)
        rng = np.random.default_rng(1)
        check = np.concatenate([rng.choice(np.flatnonzero(lab == k), args.exact_per_part, replace=False)
                                for k in np.unique(lab)])
        exact, t_exact = in_process(job_exact, v, f, check)
        print(f"\n{size}: {len(v)} vertices, {len(f)} faces; exact reference from {len(check)} sources in {t_exact:.0f} s",
              flush=True)
        results = {}
        for dev in devices:
            dt, mem, full, rows = in_process(job_densemap, v, f, lab, dev, "all", check)
            results[dev] = full
            table.append((size, len(v), f"densemap heat ({dev})", "all", dt, rel(rows, exact), mem, None))
            print(f"  densemap {dev}: {dt:.2f} s, {mem:.0f} MB, error vs exact {rel(rows, exact):.4f}", flush=True)
        t_pp, rows_pp = in_process(job_potpourri, v, f, lab, args.pp_sources, check)
        table.append((size, len(v), "potpourri3d loop*", "all", t_pp, rel(rows_pp, exact), None, None))
        print(f"  potpourri3d loop: {t_pp:.2f} s (extrapolated), error vs exact {rel(rows_pp, exact):.4f}", flush=True)
        for m in ms:
            dt, mem, approx, _ = in_process(job_densemap, v, f, lab, "cpu", m, None)
            table.append((size, len(v), "densemap heat (cpu)", f"m={m}", dt, None, mem, rel(approx, results["cpu"])))
            print(f"  sampled m={m}: {dt:.2f} s, error vs all-sources {rel(approx, results['cpu']):.4f}", flush=True)

    print("\n| mesh | V | method | sources | time (s) | speed-up vs potpourri3d | distance error vs exact | peak memory (MB) | descriptor error vs all sources |")
    print("|---|---|---|---|---|---|---|---|---|")
    pp = {r[0]: r[4] for r in table if r[2].startswith("potpourri3d")}
    for size, nv, meth, src, dt, err, mem, derr in table:
        fmt = lambda x, p: "" if x is None else f"{x:.{p}f}"  # noqa: E731
        print(f"| {size} | {nv} | {meth} | {src} | {dt:.2f} | {pp[size] / dt:.1f}x | {fmt(err, 4)} | {fmt(mem, 0)} | {fmt(derr, 4)} |")


if __name__ == "__main__":
    main()
