#!/usr/bin/env python
"""Write the embedded chart atlases and the example chimpanzee annotation file.

Run from the repository root (after ``scripts/make_reference_meshes.py``)::

    python scripts/make_example_annotations.py

Writes into ``densemap/data/``:

* ``human_atlas.npz``, ``chimp_atlas.npz``: :func:`densemap.charts.build_atlas` of each
  reference mesh's 24 charts (faces left out: they are the mesh's);
* ``example_chimp_annotations.json``: a small COCO DensePose file on the embedded chimp:
  2 images, 4 chart-based instances (``dp_I/U/V`` on the chimp's own charts) and 1
  vertex-based one (``dp_vertex`` + ``ref_model``), 80 points each, plus one instance
  without DensePose fields. Points are random surface points (seeded, area-uniform);
  ``dp_x``/``dp_y`` are random positions in the 256 x 256 box; ``dp_masks`` are 14 RLE
  masks made with pycocotools from discs around each point, by coarse part.
  Deterministic: the same files come out every run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from densemap.charts import build_atlas, save_atlas  # noqa: E402
from densemap.data import data_path, reference_chimp, reference_human  # noqa: E402
from densemap.synth import COARSE_OF_CHART  # noqa: E402  (DensePose's fine -> coarse table)

SEED = 2024
POINTS = 80


def surface_samples(mesh, rng, n):
    p = mesh.face_areas / mesh.area
    face = rng.choice(mesh.n_faces, size=n, p=p)
    bary = rng.dirichlet([1.0, 1.0, 1.0], size=n)
    return face, bary


def masks(xs, ys, charts, radius=14):
    from pycocotools import mask as mask_utils

    yy, xx = np.mgrid[0:256, 0:256]
    label = np.zeros((256, 256), np.uint8)
    for x, y, c in zip(xs, ys, charts):
        label[(xx - x) ** 2 + (yy - y) ** 2 <= radius**2] = COARSE_OF_CHART[int(c)]
    out = []
    for k in range(1, 15):
        m = label == k
        if not m.any():
            out.append([])
            continue
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        out.append({"counts": rle["counts"].decode("ascii"), "size": [int(s) for s in rle["size"]]})
    return out


def main():
    atlases = {}
    for species, ref in (("human", reference_human()), ("chimp", reference_chimp())):
        atlas = build_atlas(ref.mesh, ref.charts, name=f"reference {species} atlas")
        save_atlas(atlas, data_path(f"{species}_atlas.npz"), store_faces=False)
        data_path(f"{species}_atlas.npz").chmod(0o644)
        atlases[species] = atlas
        d = atlas.distortion
        print(f"{species}: {atlas.n_faces} faces, {d['pieces']} pieces, area distortion {d['area']:.3f}, "
              f"angle distortion {d['angle']:.3f}, flipped {d['flipped']}, harmonic fallbacks {d['harmonic_fallbacks']}")

    from densemap.annotation.convert import REFERENCE_NAMES

    chimp = reference_chimp()
    atlas = atlases["chimp"]
    rng = np.random.default_rng(SEED)
    images = [
        {"id": 1, "width": 640, "height": 480, "file_name": "chimp_0001.jpg", "license": 1,
         "image_url": "https://example.invalid/chimp_0001.jpg"},
        {"id": 2, "width": 800, "height": 600, "file_name": "chimp_0002.jpg", "license": 1,
         "image_url": "https://example.invalid/chimp_0002.jpg"},
    ]
    anns = []
    boxes = [(1, [40.0, 60.0, 200.0, 260.0]), (1, [300.0, 80.0, 180.0, 240.0]), (2, [100.0, 50.0, 260.0, 400.0]),
             (2, [420.0, 120.0, 200.0, 300.0]), (2, [600.0, 200.0, 150.0, 220.0])]
    for k, (image_id, bbox) in enumerate(boxes):
        face, bary = surface_samples(chimp.mesh, rng, POINTS)
        c, u, v = atlas.chart_coords(face, bary)
        xs = np.round(rng.uniform(0, 256, POINTS), 2)
        ys = np.round(rng.uniform(0, 256, POINTS), 2)
        ann = {"id": 101 + k, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": bbox,
               "area": round(bbox[2] * bbox[3] * 0.6, 1),
               "dp_x": xs.tolist(), "dp_y": ys.tolist(), "dp_masks": masks(xs, ys, c)}
        if k < 4:  # chart-based, on the chimp's own charts
            ann.update(dp_I=[float(x) for x in c], dp_U=np.round(u, 6).tolist(), dp_V=np.round(v, 6).tolist())
        else:  # vertex-based
            vert = atlas.nearest_vertex(face, bary)
            ann.update(dp_vertex=[int(x) for x in vert], ref_model=REFERENCE_NAMES["chimp"])
        anns.append(ann)
    anns.append({"id": 199, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [10.0, 10.0, 30.0, 40.0],
                 "area": 900.0})
    data = {
        "info": {"description": "densemap example: DensePose labels on the embedded chimpanzee's own charts",
                 "version": "1.0", "contributor": "scripts/make_example_annotations.py", "seed": SEED},
        "licenses": [{"id": 1, "name": "CC0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}],
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "supercategory": "person"}],
    }
    out = data_path("example_chimp_annotations.json")
    out.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n")
    n = sum(len(a.get("dp_x", [])) for a in anns)
    print(f"wrote {out} ({len(anns)} annotations, {n} points)")


if __name__ == "__main__":
    main()
