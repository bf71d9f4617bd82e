"""Scale of ``densemap align``: a ~214k-vertex human against the 7k-vertex chimp, beside the embedded pair.

The large mesh is the embedded human (13,380 vertices) midpoint-subdivided twice
(214,050 vertices, 428,096 faces, with trimesh; a midpoint between two parts takes the
lower-numbered one), written with its parts into a temporary folder. Both runs are the CLI with its
defaults (pictures included) and an empty eigenbasis cache, one after the other in
fresh processes; the table gives the wall time, the peak resident memory of the process
(``getrusage`` of the child) and the ratio of each to the embedded pair's run, and the
stage times from ``report.json``. What the defaults approximate at this size: the
descriptors use 16 sampled sources per part (exact heat-method distances from them), the
spectral refinement iterates on at most 4000 spread vertices per mesh, and only its last
step (capped nearest neighbours in the final embedding) runs on every vertex; the accuracy
that costs is measured on the 50k pair in docs/alignment.md.

    OMP_WAIT_POLICY=PASSIVE nice -n 19 python benchmarks/align_scale.py [--subdivisions 2]
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


def subdivided_human(levels: int):
    """The embedded human, midpoint-subdivided ``levels`` times (trimesh), and its parts."""
    from trimesh.remesh import subdivide

    from densemap.data import reference
    from densemap.mesh import Mesh
    from densemap.parts import PartLabels

    h = reference("human")
    v, f = h.mesh.vertices, h.mesh.faces
    labels = h.parts.labels
    for _ in range(levels):  # trimesh keeps the old vertices first and averages the attributes at the midpoints
        v, f, attrs = subdivide(v, f, vertex_attributes={"part": np.eye(h.parts.n_parts)[labels]})
        labels = np.argmax(attrs["part"], axis=1)  # between two parts: the lower-numbered (the first maximum)
    return Mesh(v, f, name=f"human_x{4 ** levels}"), PartLabels(labels, h.parts.names)


def run_align(args: list[str], cache: str, out: str) -> tuple[float, float, dict]:
    """(wall s, peak RSS GiB, report) of one ``densemap align`` in a fresh process."""
    env = {**os.environ, "DENSEMAP_CACHE": cache, "OMP_WAIT_POLICY": "PASSIVE"}
    exe = str(Path(sys.executable).with_name("densemap"))
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code, exe, "align", *args, "-o", out], check=True, env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak_gib = int(res.stdout.split()[-1]) / 2**20  # ru_maxrss is in KiB on Linux
    return wall, peak_gib, json.loads((Path(out) / "report.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subdivisions", type=int, default=2, help="midpoint subdivisions of the human (2: 214k vertices)")
    args = ap.parse_args()
    from densemap.data import reference
    from densemap.mesh import save_mesh
    from densemap.parts import save_parts

    with tempfile.TemporaryDirectory() as tmp:
        big, parts = subdivided_human(args.subdivisions)
        a, pa = save_mesh(big, Path(tmp) / f"{big.name}.obj"), save_parts(parts, Path(tmp) / f"{big.name}_parts.json")
        chimp = reference("chimp")
        b, pb = save_mesh(chimp.mesh, Path(tmp) / "chimp.obj"), save_parts(chimp.parts, Path(tmp) / "chimp_parts.json")
        rows = [("embedded pair", f"{reference('human').mesh.n_vertices} x {chimp.mesh.n_vertices}", []),
                (big.name, f"{big.n_vertices} x {chimp.mesh.n_vertices}",
                 [str(a), str(b), "--parts-a", str(pa), "--parts-b", str(pb)])]
        print("| pair | vertices | wall (s) | ratio | peak RSS (GiB) | stages (s) |")
        print("|---|---|---|---|---|---|")
        base = None
        for i, (name, size, cli) in enumerate(rows):
            wall, peak, report = run_align(cli, str(Path(tmp) / f"cache{i}"), str(Path(tmp) / f"out{i}"))
            base = base or wall
            stages = ", ".join(f"{k} {v:.1f}" for k, v in report.get("timings_s", {}).items())
            print(f"| {name} | {size} | {wall:.1f} | {wall / base:.1f}x | {peak:.2f} | {stages} |", flush=True)


if __name__ == "__main__":
    main()
