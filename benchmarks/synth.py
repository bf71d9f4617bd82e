#!/usr/bin/env python
"""Synthetic data speed: the torch rasteriser against VTK id rendering, and images per second.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/synth.py                 # both parts
    python benchmarks/synth.py --no-vtk --images 400 --workers 2        # pipeline only

1. **Rasteriser.** The reference human and chimp (posed at random), 320 x 320, one
   camera framing the body. Per frame: face id + barycentrics + depth.
   * torch: :func:`densemap.synth.raster.rasterize` (CPU, float64, one thread, back faces culled);
   * VTK: pyvista off-screen, face ids encoded as flat cell colours (no lighting, no
     anti-aliasing), read back from the frame buffer, then the same exact ray-triangle
     barycentrics for the hit pixels (numpy). The render window is reused and only the
     points are updated between frames (the fastest way to use VTK here).
   Exactness: fraction of pixels with the same face, and for the others whether VTK's face
   even contains the pixel centre and how much deeper it is than the nearest face.
2. **Pipeline.** ``synth_dataset`` at 320 x 320 with exactly 2 instances per image
   (pose, rasterise, shade, annotate, PNG), with N worker processes, timed end to end
   (start-up included) and from the first finished image on (steady state).

Prints a table; ``--json`` saves the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def scene_for(species: str, seed: int, size: int):
    from densemap.synth.scene import _camera, _place_instances, species_assets

    rng = np.random.default_rng(seed)
    verts, _ = _place_instances(species, rng, 1, 1.0)
    cam = _camera(rng, verts, size, size)
    return verts[0], species_assets(species)["faces"], cam


def ray_bary(V, F, cam, face):
    """Exact barycentrics and depth of the pixel-centre rays in the given faces (numpy)."""
    H, W = face.shape
    hit = np.flatnonzero(face.ravel() >= 0)
    f = face.ravel()[hit]
    col, row = hit % W + 0.5, hit // W + 0.5
    d = np.c_[col, row, np.ones_like(col)] @ np.linalg.inv(cam.K).T
    X = V @ cam.R.T + cam.t
    P0, P1, P2 = X[F[f, 0]], X[F[f, 1]], X[F[f, 2]]
    e1, e2 = P1 - P0, P2 - P0
    pv = np.cross(d, e2)
    det = (e1 * pv).sum(1)
    tv = -P0
    u = (tv * pv).sum(1) / det
    qv = np.cross(tv, e1)
    v = (d * qv).sum(1) / det
    t = (e2 * qv).sum(1) / det
    return hit, np.c_[1 - u - v, u, v], t


class VTKIds:
    """Face-id rendering with pyvista, reusing one off-screen window."""

    def __init__(self, F, size):
        from densemap.viz import check_offscreen_gl

        check_offscreen_gl()
        import pyvista as pv

        self.pv = pv
        self.F = F
        theme = pv.themes.Theme()
        theme.background = "black"
        theme.anti_aliasing = None
        theme.multi_samples = 0
        self.pl = pv.Plotter(off_screen=True, window_size=[size, size], theme=theme, lighting="none")
        self.pl.disable_anti_aliasing()
        self.pl.render_window.SetMultiSamples(0)
        self.poly = None
        self.size = size

    def render(self, V, cam):
        pv = self.pv
        if self.poly is None:
            cells = np.c_[np.full(len(self.F), 3), self.F].ravel()
            self.poly = pv.PolyData(V.copy(), cells)
            ids = np.arange(1, len(self.F) + 1)
            self.poly.cell_data["rgb"] = np.c_[(ids >> 16) & 255, (ids >> 8) & 255, ids & 255].astype(np.uint8)
            self.actor = self.pl.add_mesh(self.poly, scalars="rgb", rgb=True, preference="cell", lighting=False,
                             ambient=1.0, diffuse=0.0, specular=0.0, show_scalar_bar=False, culling="back")
        else:
            data = self.actor.mapper.dataset  # add_mesh may have copied the mesh
            data.points = V
            data.Modified()
        c = self.pl.camera
        c.position = tuple(cam.center)
        c.focal_point = tuple(cam.center + cam.R[2])
        c.up = tuple(-cam.R[1])
        c.view_angle = float(np.degrees(2 * np.arctan(cam.height / 2 / cam.K[1, 1])))
        self.pl.renderer.ResetCameraClippingRange()
        self.pl.render()
        img = self.pl.screenshot(return_img=True)
        rgb = img[..., :3].astype(np.int64)
        face = ((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]) - 1
        return face

    def close(self):
        self.pl.close()


def bench_raster(species_list, size, frames, vtk: bool):
    import torch

    from densemap.synth.raster import rasterize

    torch.set_num_threads(1)
    rows = []
    for species in species_list:
        scenes = [scene_for(species, s, size) for s in range(frames)]
        F = scenes[0][1]
        rasterize(scenes[0][0], F, scenes[0][2], cull_backfaces=True)  # warm-up
        t0 = time.perf_counter()
        ours = [rasterize(V, F, cam, cull_backfaces=True) for V, F, cam in scenes]
        t_ours = (time.perf_counter() - t0) / frames
        row = {"species": species, "faces": len(F), "size": size, "torch_ms": 1e3 * t_ours}
        if vtk:
            r = VTKIds(F, size)
            r.render(scenes[0][0], scenes[0][2])  # warm-up (window, shaders)
            t0 = time.perf_counter()
            ids = []
            for V, _, cam in scenes:
                face = r.render(V, cam)
                ray_bary(V, F, cam, face)
                ids.append(face)
            row["vtk_ms"] = 1e3 * (time.perf_counter() - t0) / frames
            t0 = time.perf_counter()
            for (V, _, cam) in scenes:
                r.render(V, cam)
            row["vtk_ids_only_ms"] = 1e3 * (time.perf_counter() - t0) / frames
            r.close()
            same = fg = diff_fg = 0
            outside = 0
            deeper = []
            for (V, _, cam), fr, face in zip(scenes, ours, ids):
                a, b = fr.face, face
                on = (a >= 0) | (b >= 0)
                fg += on.sum()
                same += ((a == b) & on).sum()
                diff_fg += ((a >= 0) != (b >= 0)).sum()
                both = (a >= 0) & (b >= 0) & (a != b)
                if both.any():
                    f2 = np.where(both, b, -1)
                    hit, bary, t = ray_bary(V, F, cam, f2)
                    inside = (bary >= -1e-9).all(1)
                    outside += (~inside).sum()
                    deeper += list(t[inside] - fr.depth.ravel()[hit][inside])
            row.update(pixels=int(fg), same_face=float(same / fg), mask_mismatch=int(diff_fg),
                       vtk_face_misses_centre=int(outside),
                       vtk_deeper_max_dm=float(max(deeper)) if deeper else 0.0,
                       vtk_deeper_median_dm=float(np.median(deeper)) if deeper else 0.0)
        rows.append(row)
    return rows


def bench_pipeline(species_list, n_images, workers, size):
    from densemap.synth import SceneOptions, synth_dataset

    out = []
    for species in species_list:
        with tempfile.TemporaryDirectory() as tmp:
            first = []

            def progress(done):
                if not first:
                    first.append((time.perf_counter(), done))
                last[:] = [(time.perf_counter(), done)]

            last = []
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            coco = synth_dataset(species, n_images, tmp, seed=0, workers=workers,
                                 options=SceneOptions(size=size, instances=(2, 2)), progress=progress)
            total = time.perf_counter() - t0
            (t1, d1), (t2, d2) = first[0], last[0]
            out.append({"species": species, "images": n_images, "workers": workers, "size": size,
                        "seconds": total, "images_per_s": n_images / total,
                        "steady_images_per_s": (d2 - d1) / max(t2 - t1, 1e-9),
                        "instances": len(coco["annotations"]),
                        "with_points": sum("dp_x" in a for a in coco["annotations"]),
                        "load_before": load0, "load_after": os.getloadavg()[0]})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--species", nargs="+", default=["human", "chimp"])
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--frames", type=int, default=20, help="rasteriser frames per species")
    ap.add_argument("--images", type=int, default=300, help="pipeline images per species")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-vtk", action="store_true")
    ap.add_argument("--no-pipeline", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    res = {"cpus": len(os.sched_getaffinity(0)), "load_start": os.getloadavg()}
    print(f"{res['cpus']} CPUs, load average {res['load_start'][0]:.2f} at start")
    res["raster"] = bench_raster(args.species, args.size, args.frames, not args.no_vtk)
    print(f"\nrasteriser, {args.size} x {args.size}, one posed body, ms per frame (face + barycentrics + depth)")
    print(f"{'species':8s} {'faces':>6s} {'torch':>8s} {'VTK':>8s} {'VTK ids':>8s} {'same face':>10s} "
          f"{'mask diff':>9s} {'VTK miss':>8s} {'VTK deeper (dm)':>16s}")
    for r in res["raster"]:
        if "vtk_ms" in r:
            print(f"{r['species']:8s} {r['faces']:6d} {r['torch_ms']:8.1f} {r['vtk_ms']:8.1f} "
                  f"{r['vtk_ids_only_ms']:8.1f} {100 * r['same_face']:9.2f}% {r['mask_mismatch']:9d} "
                  f"{r['vtk_face_misses_centre']:8d} {r['vtk_deeper_max_dm']:16.2e}")
        else:
            print(f"{r['species']:8s} {r['faces']:6d} {r['torch_ms']:8.1f}")
    if not args.no_pipeline:
        res["pipeline"] = bench_pipeline(args.species, args.images, args.workers, args.size)
        print(f"\nsynth_dataset, {args.size} x {args.size}, 2 instances per image, {args.workers} workers")
        print(f"{'species':8s} {'images':>6s} {'seconds':>8s} {'img/s':>7s} {'steady img/s':>12s} {'load':>11s}")
        for r in res["pipeline"]:
            print(f"{r['species']:8s} {r['images']:6d} {r['seconds']:8.1f} {r['images_per_s']:7.1f} "
                  f"{r['steady_images_per_s']:12.1f} {r['load_before']:5.2f}/{r['load_after']:5.2f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
