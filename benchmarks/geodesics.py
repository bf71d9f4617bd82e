"""Benchmark: all-sources geodesic reduction, densemap heat (batched) vs potpourri3d loop.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/geodesics.py                 # icosphere(5)
    OMP_WAIT_POLICY=PASSIVE python benchmarks/geodesics.py human              # the embedded human
    OMP_WAIT_POLICY=PASSIVE python benchmarks/geodesics.py body.obj --group body

Prints one table: time to reduce the distances from every vertex (``W.T @ D`` with
``L`` columns, as the descriptors need) with densemap's batched heat method on the
CPU (and CUDA when available) and with a per-source potpourri3d loop (a subset of
sources timed and extrapolated, marked ``*``), then each method's relative Frobenius
error against exact MMP geodesics (pygeodesic) on a subset of sources.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from densemap.geodesics import GeodesicSolver, length_scale  # noqa: E402
from densemap.mesh import Mesh, load_mesh, read_obj  # noqa: E402


def load(path: str | None, group: str | None, subdivisions: int) -> Mesh:
    if path is None:
        import trimesh

        s = trimesh.creation.icosphere(subdivisions=subdivisions)
        return Mesh(s.vertices, s.faces, name=f"icosphere({subdivisions})")
    if path in ("human", "chimp"):
        from densemap.data import reference_chimp, reference_human

        return (reference_human if path == "human" else reference_chimp)().mesh
    if group is None:
        return load_mesh(path)
    d = read_obj(path)  # keeps the file's vertex order; quads fan-triangulated
    if group not in d.group_names:
        sys.exit(f"{path}: no group {group!r}; groups: {d.group_names}")
    f = d.faces[d.face_groups == d.group_names.index(group)]
    used = np.unique(f)
    remap = np.full(len(d.vertices), -1)
    remap[used] = np.arange(len(used))  # identity when the group uses vertices 0..n-1
    return Mesh(d.vertices[used], remap[f], name=f"{os.path.basename(path)}:{group}")


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def pp_reduce(solver: GeodesicSolver, src: np.ndarray, w: np.ndarray) -> np.ndarray:
    """What a per-source loop does: one distance field at a time, accumulated."""
    out = np.zeros((solver.n_vertices, w.shape[1]))
    for s, ws in zip(src, w):
        out += np.outer(solver._pp.compute_distance(int(s)), ws)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mesh", nargs="?", help="mesh file, or 'human' / 'chimp' for an embedded mesh (default: an icosphere)")
    ap.add_argument("--group", help="OBJ face group to keep (e.g. 'body')")
    ap.add_argument("--subdivisions", type=int, default=5, help="icosphere subdivisions (default 5: 10242 v)")
    ap.add_argument("--sources", type=int, default=0, help="heat sources to time (default 0: all vertices)")
    ap.add_argument("--pp-sources", type=int, default=300, help="potpourri3d sources timed, then extrapolated")
    ap.add_argument("--exact-sources", type=int, default=16, help="sources compared against exact geodesics")
    ap.add_argument("--columns", type=int, default=16, help="columns L of the weight matrix")
    ap.add_argument("--threads", type=int, default=None, help="torch threads and concurrent solves")
    ap.add_argument("--chunk", type=int, default=None, help="max sources per chunk")
    ap.add_argument("--t-scale", type=float, default=1.0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    mesh = load(args.mesh, args.group, args.subdivisions)
    V = len(mesh.vertices)
    rng = np.random.default_rng(0)
    n_src = V if args.sources <= 0 else min(args.sources, V)
    src = np.sort(rng.choice(V, n_src, replace=False)) if n_src < V else np.arange(V)
    w = rng.random((n_src, args.columns))
    print(f"mesh {mesh.name}: {V} vertices, {len(mesh.faces)} faces, h = {length_scale(mesh):.4g}, "
          f"torch threads {torch.get_num_threads()}, {os.cpu_count()} cpus")
    kw = dict(t_scale=args.t_scale, n_threads=args.threads, max_chunk=args.chunk)

    rows = []  # (name, sources timed, seconds, seconds for all n_src, note)
    setup, heat = timed(lambda: GeodesicSolver(mesh, **kw))
    cpu0 = time.process_time()
    t_heat, ref = timed(lambda: heat.reduce(src, w))
    cpu = time.process_time() - cpu0
    rows.append((f"densemap heat ({heat.laplacian}), CPU", n_src, t_heat, t_heat, f"setup {setup:.2f} s, CPU time {cpu:.1f} s"))
    if torch.cuda.is_available():
        for dense in (True, False):
            g = GeodesicSolver(mesh, device="cuda", dense=dense, t_scale=args.t_scale)
            g.reduce(src[:64], w[:64])  # warm-up
            torch.cuda.synchronize()
            t, out = timed(lambda: g.reduce(src, w))
            err = np.abs(out - ref).max() / np.abs(ref).max()
            rows.append((f"densemap heat, CUDA {'dense' if dense else 'sparse'}", n_src, t, t, f"max rel diff to CPU {err:.1e}"))
    pp = GeodesicSolver(mesh, method="potpourri3d", laplacian="cotan", t_scale=args.t_scale)
    pp_rob = GeodesicSolver(mesh, method="potpourri3d", laplacian="robust", t_scale=args.t_scale)
    k = min(args.pp_sources, n_src)
    for name, p in [("potpourri3d loop (robust)", pp_rob), ("potpourri3d loop (cotan)", pp)]:
        t_pp, _ = timed(lambda: pp_reduce(p, src[:k], w[:k]))
        rows.append((name, k, t_pp, t_pp * n_src / k, "*extrapolated" if k < n_src else ""))

    print(f"\nall-sources reduction: {n_src} sources, W ({n_src}, {args.columns})")
    print(f"{'method':32s} {'timed':>7s} {'time [s]':>9s} {'all [s]':>9s} {'speedup':>8s}  note")
    base = rows[-1][3]  # speedup relative to the faster potpourri3d loop
    for name, n, t, t_all, note in rows:
        print(f"{name:32s} {n:7d} {t:9.2f} {t_all:9.2f} {base / t_all:7.1f}x  {note}")

    # agreement of the two heat implementations (same t)
    probe = src[:: max(1, n_src // 64)][:64]
    heat_cot = GeodesicSolver(mesh, laplacian="cotan", **kw)
    print(f"\nheat vs potpourri3d, same t, {len(probe)} sources:")
    for name, a, b in [("cotan (same operators)", heat_cot, pp), ("robust (pp: intrinsic grad/div)", heat, pp_rob)]:
        da, db = a.distances(probe), b.distances(probe)
        diff = np.abs(da - db).max()
        print(f"  {name:32s} max |diff| {diff:.2e} ({diff / db.max():.1e} of the max distance), "
              f"rel Frobenius {np.linalg.norm(da - db) / np.linalg.norm(db):.1e}")

    try:
        import pygeodesic  # noqa: F401
    except ImportError:
        print("\n(pygeodesic missing: pip install densemap[exact] for the error vs exact)")
        return
    k = min(args.exact_sources, V)
    sub = np.sort(rng.choice(V, k, replace=False))
    ex = GeodesicSolver(mesh, method="exact", n_jobs=1)
    t_ex, exact = timed(lambda: ex.distances(sub))
    print(f"\nerror vs exact MMP geodesics (pygeodesic, {k} sources, {t_ex:.1f} s): relative Frobenius")
    for name, s in [
        ("densemap heat, cotan", heat_cot),
        ("densemap heat, robust (default)", heat),
        ("densemap heat, robust, float32", GeodesicSolver(mesh, dtype=torch.float32, **kw)),
        ("potpourri3d, cotan", pp),
        ("potpourri3d, robust", pp_rob),
    ]:
        d = s.distances(sub)
        print(f"  {name:32s} {np.linalg.norm(d - exact) / np.linalg.norm(exact) * 100:6.2f} %")


if __name__ == "__main__":
    main()
