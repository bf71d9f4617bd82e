#!/usr/bin/env python
"""Temporal smoothing measured: per-frame DensePose AP and flicker, with and without smoothing.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/video.py --ckpt RUN/model_final.pt
    OMP_WAIT_POLICY=PASSIVE python benchmarks/video.py --ckpt CKPT --data DIR --radius 0 1 2 3 --device cuda

Protocol:

1. Data: ``densemap synth --video`` clips (``--data``, rendered into ``--work`` when not
   given: ``--clips`` clips of ``--frames`` frames, one human each, seed 0): exact per-frame
   COCO DensePose ground truth and a set of surface points followed through every clip.
2. Each clip is decoded from its mp4 (:func:`densemap_models.video.iter_frames`) and the
   model runs once per frame (:func:`densemap_models.clip_predict.detect`, detections at
   score >= ``--score-thresh``); the same detections then go through the tracker and the
   smoother of ``densemap predict`` (``Tracker``, ``WindowSmoother``) for every radius
   (0 = no smoothing), so the rows differ by smoothing alone.
3. Per-frame GPS / GPSm AP: :func:`densemap_models.densepose_ap.densepose_ap` on every frame
   against its ground truth (the embedded human as the geodesic target).
4. Flicker, on the surface points visible in two consecutive frames, read from the
   image IUV of the detections at score >= 0.5 (what ``densemap predict`` pastes):
   ``UV flicker`` = mean |(U, V)_t+1 - (U, V)_t| where both frames predict the same chart;
   ``chart switches`` = share of pairs whose predicted chart changes;
   ``surface flicker`` = mean geodesic distance (cm) between the surface points predicted
   at t and t+1 (all pairs with a foreground prediction in both). The ground truth has no
   flicker: it is the same surface point. ``error`` = mean geodesic distance (cm) of the
   prediction to the true point, over the same pairs.

Prints one table (and the throughput of decoding, inference and smoothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch


def render(work: Path, clips: int, frames: int, size: int) -> Path:
    from densemap.synth.video import VideoOptions, synth_video_dataset

    data = work / f"synth_video_{clips}x{frames}_{size}"
    if not (data / "annotations.json").is_file():
        print(f"rendering {clips} clips into {data}", file=sys.stderr)
        synth_video_dataset("human", clips, data, seed=0,
                            options=VideoOptions(frames=frames, size=size, instances=(1, 1)))
    return data


def infer(model, data: Path, *, device: str, score_thresh: float):
    """Per clip: the decoded frames' detections, and the decode / inference seconds."""
    from tqdm import tqdm

    from densemap_models.clip_predict import detect
    from densemap_models.video import Sampling, iter_frames

    out, t_dec, t_inf, n = {}, 0.0, 0.0, 0
    for mp4 in tqdm(sorted((data / "clips").glob("*.mp4")), desc="inference", unit="clip"):
        dets = []
        it = iter_frames(mp4, Sampling())
        while True:
            t0 = time.perf_counter()
            fr = next(it, None)
            t1 = time.perf_counter()
            t_dec += t1 - t0
            if fr is None:
                break
            dets.append((fr.image.shape[:2], detect(model, fr.image, device=device, score_thresh=score_thresh)))
            t_inf += time.perf_counter() - t1
            n += 1
        out[mp4.stem] = dets
    return out, {"frames": n, "decode_s": t_dec, "inference_s": t_inf}


def smooth(clip_dets, radius: int, *, birth: float, align: str = "box", foreground: str = "current"
           ) -> tuple[dict, float]:
    """Per clip, per frame: (boxes, scores, chart results) after tracking and smoothing with ``radius``."""
    import copy

    from densemap_models.smoothing import WindowSmoother
    from densemap_models.tracking import Tracker

    res, t = {}, 0.0
    for name, frames in clip_dets.items():
        t0 = time.perf_counter()
        tracker, sm = Tracker(birth_score=birth), WindowSmoother(radius, align=align, foreground=foreground)
        done = []
        for _shape, dets in frames:
            dets = [copy.copy(d) for d in dets]  # fresh track ids / fused outputs per run
            for d in dets:
                d.fused, d._maps = None, None
            ids = tracker.update(np.array([d.box for d in dets]).reshape(-1, 4), [d.score for d in dets])
            for d, i in zip(dets, ids):
                d.track_id = int(i)
            done += sm.push(dets)
        done += sm.flush()
        res[name] = [(np.array([d.box for d in f]).reshape(-1, 4), np.array([d.score for d in f]), [d.maps for d in f])
                     for f in done]
        t += time.perf_counter() - t0
    return res, t


def score(data: Path, coco: dict, res: dict, target, *, paste_thresh: float = 0.5) -> dict:
    from densemap_models.densepose_ap import densepose_ap
    from densemap_models.drawing import paste_iuv

    by_key = {(im["video"][:-4], im["frame_index"]): im for im in coco["images"]}
    gt_by_image: dict = {}
    for a in coco["annotations"]:
        gt_by_image.setdefault(a["image_id"], []).append(dict(a, category_id=1))
    preds = []
    pairs = {"uv": [], "switch": [], "va": [], "vb": [], "vg": []}
    for name, frames in res.items():
        z = np.load(data / "clips" / f"{name}.npz")
        xy, vis, piuv = z["point_xy"], z["point_visible"], z["point_iuv"]
        gt_v = target.vertices(piuv[:, 0].astype(np.int64), piuv[:, 1], piuv[:, 2])
        images = []
        for t, (boxes, scores, maps) in enumerate(frames):
            im = by_key[(name, t)]
            preds.append({"image_id": im["id"], "height": im["height"], "width": im["width"], "boxes": boxes,
                          "scores": scores, "dp": maps})
            keep = scores >= paste_thresh
            images.append(paste_iuv((im["height"], im["width"]), boxes[keep], [m for m, k in zip(maps, keep) if k]))
        for t in range(len(images) - 1):
            both = vis[t] & vis[t + 1]
            c0, r0 = np.floor(xy[t, both]).astype(int).T
            c1, r1 = np.floor(xy[t + 1, both]).astype(int).T
            a, b = images[t][r0, c0].astype(np.int64), images[t + 1][r1, c1].astype(np.int64)
            fg = (a[:, 0] > 0) & (b[:, 0] > 0)
            a, b = a[fg], b[fg]
            same = a[:, 0] == b[:, 0]
            pairs["uv"].append(np.linalg.norm((a[same, 1:] - b[same, 1:]) / 255.0, axis=1))
            pairs["switch"].append(~same)
            pairs["va"].append(target.vertices(a[:, 0], a[:, 1] / 255.0, a[:, 2] / 255.0))
            pairs["vb"].append(target.vertices(b[:, 0], b[:, 1] / 255.0, b[:, 2] / 255.0))
            pairs["vg"].append(gt_v[np.flatnonzero(both)[fg]])
    ap = densepose_ap(gt_by_image, preds, target)
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in pairs.items()}
    ok = (cat["va"] >= 0) & (cat["vb"] >= 0) & (cat["vg"] >= 0)
    surf = target.pair_distances(cat["va"][ok], cat["vb"][ok])
    err = target.pair_distances(cat["vg"][ok], cat["vb"][ok])
    return {"GPS AP": ap["GPS"]["AP"], "GPSm AP": ap["GPSm"]["AP"], "UV flicker": float(cat["uv"].mean()),
            "chart switches %": 100 * float(cat["switch"].mean()), "surface flicker cm": 100 * float(surf.mean()),
            "error cm": 100 * float(err.mean()), "pairs": int(len(cat["switch"]))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True, help="checkpoint or run folder")
    ap.add_argument("--data", default=None, help="a `densemap synth --video` folder (default: rendered into --work)")
    ap.add_argument("--work", default="/tmp/densemap_bench_video")
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--radius", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--align", default="image", choices=["image", "box"], help="alignment of the --radius rows")
    ap.add_argument("--other-align", type=int, nargs="*", default=[2],
                    help="radii also run with the other alignment")
    ap.add_argument("--other-foreground", type=int, nargs="*", default=[2],
                    help="radii also run with the neighbours' foreground averaged (the first design)")
    ap.add_argument("--score-thresh", type=float, default=0.05, help="detections kept for AP")
    ap.add_argument("--birth-score", type=float, default=0.5, help="least score that starts a track (is smoothed)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the table here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from densemap.annotation.coco import read_coco
    from densemap_models.gps import default_target
    from densemap_models.train import load_checkpoint

    data = Path(args.data) if args.data else render(Path(args.work), args.clips, args.frames, args.size)
    coco = read_coco(data / "annotations.json")
    model, _, _ = load_checkpoint(args.ckpt, device=args.device)
    with torch.no_grad():
        dets, speed = infer(model, data, device=args.device, score_thresh=args.score_thresh)
    target = default_target("densemap_human")
    rows = {}
    other = "box" if args.align == "image" else "image"
    runs = ([(r, args.align, "current") for r in args.radius] + [(r, other, "current") for r in args.other_align if r > 0]
            + [(r, args.align, "fused") for r in args.other_foreground if r > 0])
    for r, align, fg in runs:
        res, t_s = smooth(dets, r, birth=args.birth_score, align=align, foreground=fg)
        key = "off" if r == 0 else f"radius {r}, {align}-aligned" + (", fused foreground" if fg == "fused" else "")
        rows[key] = {**score(data, coco, res, target), "smoothing ms/frame": 1000 * t_s / max(speed["frames"], 1)}
        print(f"{key}: {rows[key]}", file=sys.stderr)
    cols = ["GPS AP", "GPSm AP", "UV flicker", "chart switches %", "surface flicker cm", "error cm",
            "smoothing ms/frame"]
    print(f"\n{len(dets)} clips, {speed['frames']} frames, {next(iter(rows.values()))['pairs']} point pairs; "
          f"checkpoint {args.ckpt}\n")
    print("| smoothing | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    base = rows.get("off")
    for name, row in rows.items():
        cells = []
        for c in cols:
            v = f"{row[c]:.3f}" if c == "UV flicker" else f"{row[c]:.2f}"
            if base is not None and name != "off" and c in ("UV flicker", "surface flicker cm", "chart switches %") and base[c]:
                v += f" ({100 * (row[c] / base[c] - 1):+.0f} %)"
            cells.append(v)
        print(f"| {name} | " + " | ".join(cells) + " |")
    n = speed["frames"]
    print(f"\nthroughput ({args.device}, {args.threads} thread(s)): decode {n / speed['decode_s']:.0f} frames/s, "
          f"inference {n / speed['inference_s']:.2f} frames/s, decode + inference "
          f"{n / (speed['decode_s'] + speed['inference_s']):.2f} frames/s")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "speed": speed, "ckpt": str(args.ckpt)}, indent=2))


if __name__ == "__main__":
    main()
