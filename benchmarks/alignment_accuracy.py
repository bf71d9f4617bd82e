"""Ground-truth accuracy of densemap's maps on every evaluation pair, label set and configuration.

Pairs (mesh A is always the embedded human with its 32 parts): ``chimp`` (the embedded
chimp), ``asym6k`` and ``fine50k`` (``scripts/make_eval_pairs.py``: built on first use and
cached). Label sets of B: ``clean``, ``noisy`` (boundaries moved, islands), ``noisy-s1``,
``noisy-s2``, ... (further draws of the same noise, ``make_eval_pairs.noisy_draw``) and
``coarse`` (the 32 parts merged into 5 on both meshes). For each row this prints, for the B -> A
map (the direction with ground truth) as vertex map and as surface-point map:

* the geodesic error on the human between the mapped point and the true point, over
  sqrt(human area): mean and 90th percentile. Two points whose faces share a vertex are
  their straight-line distance apart (the surface is flat at that scale); farther pairs
  mix their corners' heat-method distances barycentrically (robust Laplacian, t = h^2,
  from every human vertex, cached on disk). Mixing alone would score the true point
  against itself at 0.0069 on the chimp (it averages the corners' distances to each
  other), which made surface points look worse than vertices; the rounded truth scores
  0.0056 either way, and is printed first for each pair as the floor;
* part agreement with B's *clean* labels (a surface point's part is its dominant corner's);
* edge collapse: the fraction of B's edges whose two ends map to one human vertex, and its
  ratio to the same fraction for the ground truth rounded to vertices (dominant corner);
* coverage: the fraction of human vertices hit (the rounded ground truth's in brackets);
* for the A -> B map, its edge collapse over the rounded ground truth's (the true point
  on B of each human vertex: the nearest B vertex laid on the human).

    OMP_WAIT_POLICY=PASSIVE nice -n 19 python benchmarks/alignment_accuracy.py \\
        [--pairs chimp,asym6k,fine50k] [--labels clean,noisy,noisy-s1,coarse] [--configs default,paper] [--json out.json]

Configurations are named in ``CONFIGS`` (``default`` = ``densemap align``'s defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from densemap._cache import load_arrays, save_arrays  # noqa: E402
from densemap.data import chimp_to_human_ground_truth, reference  # noqa: E402
from densemap.mapping import Aligner  # noqa: E402

# name -> (Aligner.align keyword options); "default" is align()'s defaults
CONFIGS: dict[str, dict] = {
    "default": {},
    "paper": {"sources": 64, "refine": "zoomout"},  # the previous defaults: ZoomOut, 64 sources
    "consistent-w0": {"refine_options": {"bijective_weight": 0.0}},
    "consistent-w0.5": {"refine_options": {"bijective_weight": 0.5}},
    "consistent-w2": {"refine_options": {"bijective_weight": 2.0}},
    "k200": {"refine_options": {"k_final": 200}},
    "m64": {"sources": 64},
    "desc0.3": {"refine_options": {"desc_weight": 0.3}},
    # soft part boundaries in the final step (for noisy labels) and one-to-one final assignments
    "pen0.05": {"refine_options": {"label_penalty": 0.05}},
    "pen0.15": {"refine_options": {"label_penalty": 0.15}},
    "pen0.5": {"refine_options": {"label_penalty": 0.5}},
    "assign": {"refine_options": {"assign": True}},
    # capped final matches: no vertex takes more than this many times its area's share
    "no-balance": {"refine_options": {"balance": 0.0}},  # plain nearest neighbours in the final step
    "balance0.5": {"refine_options": {"balance": 0.5}},
    "balance0.75": {"refine_options": {"balance": 0.75}},
    "balance1": {"refine_options": {"balance": 1.0}},
    "balance1.5": {"refine_options": {"balance": 1.5}},
    "balance2": {"refine_options": {"balance": 2.0}},
    # the polish step (a last full-resolution step in a larger basis): off, or other sizes
    "no-polish": {"refine_options": {"polish": None}},
    "polish160": {"refine_options": {"polish": 160}},
    "polish250": {"refine_options": {"polish": 250}},
    "rough": {"rough_labels": True},  # --rough-labels: the polish step across parts, the plain basis
    "keep-islands": {"merge_islands": False},  # stray label islands left as they are (the default merges them)
    # the default treats labels with stray islands as rough (polish across parts); careful: never
    "careful": {"rough_labels": False},
    "keep-islands-careful": {"merge_islands": False, "rough_labels": False},
    # B's eigenbasis without its part areas matched to A's (the default before 2026-12-03, evening)
    "plain-basis": {"refine_options": {"area_match": False}},
    "plain-basis-careful": {"rough_labels": False, "refine_options": {"area_match": False}},
    "area-matched-rough": {"rough_labels": True, "refine_options": {"area_match": True}},
    "no-landmarks": {"landmark_rounds": 0},  # the default without the self-landmark stage (coarse labels)
    "landmarks3": {"landmark_rounds": 3},  # the stage forced on (fine labels)
    "landmarks3-pen0.15": {"landmark_rounds": 3, "refine_options": {"label_penalty": 0.15}},
    # the first match on the descriptors as they are, not standardised per part (the default before 2026-12-04)
    "plain-match": {"standardize_parts": False},
    "plain-match-careful": {"standardize_parts": False, "rough_labels": False},
    "plain-match-area-matched-rough": {"standardize_parts": False, "rough_labels": True,
                                       "refine_options": {"area_match": True}},
}


def human_distances() -> np.ndarray:
    """(V_h, V_h) float16 heat-method distances on the human (cached on disk)."""
    human = reference("human").mesh
    key = {"what": "human all-pairs heat distances", "mesh": human.sha1, "v": 1}
    hit = load_arrays("benchmarks", key)
    if hit is not None:
        return hit["d"]
    from densemap.geodesics import GeodesicSolver

    t0 = time.perf_counter()
    d = GeodesicSolver(human).distances(np.arange(human.n_vertices), progress=True).astype(np.float16)
    print(f"human all-pairs distances: {time.perf_counter() - t0:.0f} s (cached for next time)", flush=True)
    save_arrays("benchmarks", key, {"d": d})
    return d


def load_eval_pair(name: str):
    """(mesh_b, {"clean", "noisy"}: PartLabels, (gt_face, gt_bary)) of a pair."""
    if name == "chimp":
        c = reference("chimp")
        return c.mesh, {"clean": c.parts}, chimp_to_human_ground_truth()
    from make_eval_pairs import load_pair

    return load_pair(name)


def coarse(parts):
    from make_eval_pairs import coarse_labels

    return coarse_labels(parts)


def point_error(mesh, dist, c1, w1, c2, w2) -> np.ndarray:
    """Distance on ``mesh`` between surface points (corners (n, 3), barycentrics (n, 3)):
    straight-line where the two faces share a vertex, else the corners' distances ``dist``
    mixed barycentrically (see the module docstring)."""
    w2 = np.broadcast_to(w2, c2.shape)
    dd = dist[c1[:, :, None], c2[:, None, :]].astype(np.float64)
    far = np.einsum("vi,vij,vj->v", w1, dd, w2)
    x = mesh.vertices
    p1, p2 = (w1[:, :, None] * x[c1]).sum(1), (w2[:, :, None] * x[c2]).sum(1)
    near = (c1[:, :, None] == c2[:, None, :]).any((1, 2))
    return np.where(near, np.linalg.norm(p1 - p2, axis=1), far)


def truth_vertex_maps(gf, gb):
    """The ground truth as vertex maps: (B -> A, each true point rounded to its dominant
    corner; A -> B, the nearest B vertex laid on the human to each human vertex)."""
    human = reference("human").mesh
    b_to_a = human.faces[gf, np.argmax(gb, 1)]
    laid = (gb[:, :, None] * human.vertices[human.faces[gf]]).sum(1)
    return b_to_a, cKDTree(laid).query(human.vertices)[1]


def vertex_map_error(dist, gf, gb, b_to_a) -> np.ndarray:
    """Per B vertex, the error of a B -> A vertex map over sqrt(human area)."""
    human = reference("human").mesh
    one = np.array([1.0, 0, 0])
    return point_error(human, dist, human.faces[gf], gb, b_to_a[:, None].repeat(3, 1), one) / np.sqrt(human.area)


def floor_row(name, cache, dist) -> str:
    """The ground truth rounded to its dominant vertex, scored like a map."""
    mesh_b, labels, (gf, gb) = cache.setdefault(("pair", name), load_eval_pair(name))
    e = vertex_map_error(dist, gf, gb, truth_vertex_maps(gf, gb)[0])
    return f"{name:8s} (the truth rounded to vertices: mean {e.mean():.4f}, p90 {np.percentile(e, 90):.4f})"


def _rows_stats(err):
    return float(err.mean()), float(np.percentile(err, 90))


def evaluate(name, variant, config, *, dist, cache):
    human = reference("human")
    mesh_b, labels, (gf, gb) = cache.setdefault(("pair", name), load_eval_pair(name))
    if variant == "coarse":
        pa, pb = coarse(human.parts), coarse(labels["clean"])
    else:
        if variant.startswith("noisy-s") and variant not in labels:  # a further draw, made once per pair
            from make_eval_pairs import noisy_draw

            labels[variant] = noisy_draw(mesh_b, labels["clean"], int(variant[len("noisy-s"):]))
        pa, pb = human.parts, labels[variant]
    truth_b = labels["clean"] if variant != "coarse" else pb
    opts = dict(CONFIGS[config])
    t0 = time.perf_counter()
    aligner = Aligner(human.mesh, pa, mesh_b, pb, merge_islands=opts.pop("merge_islands", True),
                      rough_labels=opts.pop("rough_labels", None))
    al = aligner.align(**opts)
    seconds = time.perf_counter() - t0
    hf = human.mesh.faces
    scale = np.sqrt(human.mesh.area)
    corners = hf[gf]  # (Vb, 3) true point's corners
    b2a = al.b_to_a
    one = np.array([1.0, 0, 0])
    err_v = vertex_map_error(dist, gf, gb, b2a.indices)
    if b2a.has_surface:
        ok = b2a.faces >= 0
        sc = np.where(ok[:, None], b2a.corners, b2a.indices[:, None])
        sw = np.where(ok[:, None], b2a.bary, one)
        err_s = point_error(human.mesh, dist, corners, gb, sc, sw) / scale
        dom = sc[np.arange(len(sc)), np.argmax(sw, 1)]
    else:
        err_s, dom = err_v, b2a.indices
    lab_a = pa.labels
    # part agreement against B's true (clean) labels, renumbered to A's part order
    from densemap.parts import match_parts

    tb = match_parts(pa, truth_b).labels
    eb = mesh_b.edges
    if ("truth", name) not in cache:
        cache["truth", name] = truth_vertex_maps(gf, gb)
    g_round, inv_gt = cache["truth", name]
    col = float((b2a.indices[eb[:, 0]] == b2a.indices[eb[:, 1]]).mean())
    col_gt = float((g_round[eb[:, 0]] == g_round[eb[:, 1]]).mean())
    # A -> B collapse against the truth's (inv_gt: the nearest B vertex laid on each human vertex)
    ea = human.mesh.edges
    a2b = al.a_to_b.indices
    col_ab = float((a2b[ea[:, 0]] == a2b[ea[:, 1]]).mean())
    col_ab_gt = float((inv_gt[ea[:, 0]] == inv_gt[ea[:, 1]]).mean())
    mv, pv = _rows_stats(err_v)
    ms, ps = _rows_stats(err_s)
    row = dict(pair=name, labels=variant, config=config, vertices_b=mesh_b.n_vertices, mean=mv, p90=pv,
               surface_mean=ms, surface_p90=ps, part_agreement=float((lab_a[b2a.indices] == tb).mean()),
               surface_part_agreement=float((lab_a[dom] == tb).mean()), collapse=col, collapse_gt=col_gt,
               collapse_ratio=col / max(col_gt, 1e-12), coverage=float(len(np.unique(b2a.indices)) / human.mesh.n_vertices),
               coverage_gt=float(len(np.unique(g_round)) / human.mesh.n_vertices), collapse_ab=col_ab,
               collapse_ab_gt=col_ab_gt, collapse_ab_ratio=col_ab / max(col_ab_gt, 1e-12),
               seconds=seconds, timings=al.timings)
    return row


HEADER = (f"{'pair':8s} {'labels':8s} {'config':16s} | {'mean':>6s} {'p90':>6s} {'parts':>6s} | {'s.mean':>6s} "
          f"{'s.p90':>6s} {'s.part':>6s} | {'collapse (x gt)':>16s} {'cover (gt)':>12s} | {'A->B coll.':>11s} | {'time':>6s}")


def fmt(r):
    return (f"{r['pair']:8s} {r['labels']:8s} {r['config']:16s} | {r['mean']:6.4f} {r['p90']:6.4f} "
            f"{r['part_agreement']:6.3f} | {r['surface_mean']:6.4f} {r['surface_p90']:6.4f} "
            f"{r['surface_part_agreement']:6.3f} | {r['collapse']:6.3f} ({r['collapse_ratio']:4.2f}x) "
            f"{r['coverage']:5.3f} ({r['coverage_gt']:4.2f}) | {r['collapse_ab_ratio']:5.2f}x | {r['seconds']:6.1f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", default="chimp,asym6k,fine50k")
    ap.add_argument("--labels", default="clean,noisy,coarse")
    ap.add_argument("--configs", default="default,paper")
    ap.add_argument("--json", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    dist = human_distances()
    cache: dict = {}
    rows = []
    print(HEADER)
    print("-" * len(HEADER))
    for name in args.pairs.split(","):
        print(floor_row(name, cache, dist), flush=True)
        for variant in args.labels.split(","):
            if variant.startswith("noisy") and name == "chimp":
                continue  # the embedded chimp has no noisy labelling
            for config in args.configs.split(","):
                row = evaluate(name, variant, config, dist=dist, cache=cache)
                rows.append(row)
                print(fmt(row), flush=True)
                if args.json:
                    with open(args.json, "w") as fh:
                        json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
