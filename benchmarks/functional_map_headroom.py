"""How much of the default map's error is in its functional map: one matching step from the true one.

For each evaluation pair and label set (as in ``benchmarks/alignment_accuracy.py``: mesh A
the embedded human, B the chimp or a remeshed, posed human), this prints the B -> A
vertex map's ground-truth error (mean, over sqrt(human area)) of

* ``default``: ``densemap align``'s map;
* ``true C, within parts`` / ``true C, across parts``: one full-resolution matching step
  (the polish step's: the bijective spectral embedding in 200 eigenfunctions, capped
  nearest neighbours) from the functional maps of the *true* maps (the ground truth
  rounded to vertices, and for A -> B the nearest B vertex to each human vertex), within
  B's given part labels or with no labels;
* ``true C[:k], across parts``: the same from the default map's functional maps with
  their first k x k block replaced by the true one's;

and the default functional map's relative error (Frobenius, against the true one's, B -> A
block) in bands of eigenfunctions. The first rows say how far the matching step can go
when the functional map is right; the hybrids and the bands say which frequencies hold
the default map's error (docs/alignment.md, "Where the error is").

    OMP_WAIT_POLICY=PASSIVE nice -n 19 python benchmarks/functional_map_headroom.py [--pairs chimp,asym6k,fine50k] \\
        [--labels clean,noisy]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from alignment_accuracy import human_distances, load_eval_pair, truth_vertex_maps, vertex_map_error  # noqa: E402

from densemap.data import reference  # noqa: E402
from densemap.mapping import Aligner  # noqa: E402
from densemap.mapping.basis import laplacian_basis  # noqa: E402
from densemap.mapping.consistent import _fmap, _agreed_fmaps, spectral_embeddings  # noqa: E402
from densemap.mapping.pipeline import POLISH_FACTOR  # noqa: E402
from densemap.mapping.refine import K_FINAL  # noqa: E402
from densemap.mapping.within_parts import _balanced  # noqa: E402
from densemap.parts import match_parts  # noqa: E402

BANDS = ((0, 20), (20, 60), (60, 120), (120, 200))
HYBRID = (60, 120)


def fmaps(phi_a, mass_a, phi_b, mass_b, a_to_b, b_to_a):
    """(C_ab, C_ba) of two vertex maps, averaged over the directions as the refinement does."""
    return _agreed_fmaps(_fmap(phi_a, mass_a, phi_b, a_to_b), _fmap(phi_b, mass_b, phi_a, b_to_a))


def one_step(phi_a, mass_a, phi_b, mass_b, c_ab, c_ba, labels_a=None, labels_b=None) -> np.ndarray:
    """The B -> A map of one capped full-resolution matching step (the polish step's)."""
    q, t = spectral_embeddings(phi_b, phi_a, c_ba, c_ab, 1.0, dtype=np.float32)
    return _balanced(q, t, labels_b, labels_a, mass_b, mass_a, 1.0)


def run(name: str, variant: str, k: int, dist) -> list[str]:
    human = reference("human")
    mesh_b, labels, (gf, gb) = load_eval_pair(name)

    def err(b_to_a):
        return float(vertex_map_error(dist, gf, gb, b_to_a).mean())

    true_ba, true_ab = truth_vertex_maps(gf, gb)
    aligner = Aligner(human.mesh, human.parts, mesh_b, labels[variant])
    al = aligner.align()
    _, pa, ma = laplacian_basis(human.mesh, k)
    _, pb, mb = laplacian_basis(mesh_b, k)
    la, lb = human.parts.labels, match_parts(human.parts, aligner.parts_b).labels
    c_true = fmaps(pa, ma, pb, mb, true_ab, true_ba)
    c_def = fmaps(pa, ma, pb, mb, al.a_to_b.indices, al.b_to_a.indices)
    rows = [("default", err(al.b_to_a.indices)),
            ("true C, within parts", err(one_step(pa, ma, pb, mb, *c_true, la, lb))),
            ("true C, across parts", err(one_step(pa, ma, pb, mb, *c_true)))]
    for cut in HYBRID:
        c_ab, c_ba = c_def[0].copy(), c_def[1].copy()
        c_ab[:cut, :cut], c_ba[:cut, :cut] = c_true[0][:cut, :cut], c_true[1][:cut, :cut]
        rows.append((f"true C[:{cut}], across parts", err(one_step(pa, ma, pb, mb, c_ab, c_ba))))
    g, d = c_true[1], c_def[1]
    bands = "  ".join(f"[{a}:{b}] {np.linalg.norm((d - g)[a:b, a:b]) / np.linalg.norm(g[a:b, a:b]):.2f}"
                      for a, b in BANDS if b <= k)
    out = [f"{name:8s} {variant:6s} {r:28s} {e:.4f}" for r, e in rows]
    out.append(f"{name:8s} {variant:6s} default C's relative error by band: {bands}")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", default="chimp,asym6k,fine50k")
    ap.add_argument("--labels", default="clean,noisy")
    ap.add_argument("--k", type=int, default=round(POLISH_FACTOR * K_FINAL), help="eigenfunctions (the polish step's 200)")
    args = ap.parse_args(argv)
    dist = human_distances()
    print(f"{'pair':8s} {'labels':6s} {'B -> A map':28s} {'mean':>6s}")
    for name in args.pairs.split(","):
        for variant in args.labels.split(","):
            if variant == "noisy" and name == "chimp":
                continue  # the embedded chimp has no noisy labelling
            for line in run(name, variant, args.k, dist):
                print(line, flush=True)


if __name__ == "__main__":
    main()
