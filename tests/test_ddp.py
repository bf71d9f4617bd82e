"""Multi-process training under torchrun (gloo on CPU): ranks agree, and agree with one process.

Two identical images (no flips) make a per-rank batch of one image on each of two ranks
equivalent to one process with the global batch of two: every loss of an image is the same on
both ranks, so DDP's gradient average equals the one process's gradient (the U/V term, a sum
over the process's points, with half the weight in the one process). The samplers draw
every anchor and proposal (their limits exceed the counts), so no random subset differs
between the runs. Batches without DensePose points (``with_points=False``) run too.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_models import SMALL, make_coco  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import json, os, sys, torch
torch.set_num_threads(1)
from densemap_models.config import Config
from densemap_models.rcnn import build_model
from densemap_models.train import train
cfg = Config(**json.loads(sys.argv[1]))
torch.manual_seed(cfg.seed)  # the weights train() starts from (it seeds the same way)
torch.save(build_model(cfg).state_dict(), os.path.join(os.path.dirname(sys.argv[3]), "init.pt"))
res = train(cfg, data=sys.argv[2], out=sys.argv[3], progress=False)
torch.save(res.model.state_dict(), os.path.join(sys.argv[3], f"rank{os.environ.get('RANK', '0')}.pt"))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _same_images(root: Path, *, with_points: bool) -> Path:
    """A COCO set of two copies of one image (same annotations)."""
    data = make_coco(root, n_images=1, with_points=with_points)
    coco = json.loads((data / "annotations.json").read_text())
    shutil.copy(data / "images" / coco["images"][0]["file_name"], data / "images" / "copy.png")
    coco["images"].append({**coco["images"][0], "id": 2, "file_name": "copy.png"})
    coco["annotations"] += [{**a, "id": a["id"] + 1000, "image_id": 2} for a in coco["annotations"]]
    (data / "annotations.json").write_text(json.dumps(coco))
    return data


def _config(**kw) -> dict:
    # every anchor / proposal / DensePose RoI taken: nothing random differs between the runs
    return {**SMALL, "workers": 0, "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "warmup_iters": 0, "lr_steps": [],
            "log_every": 1, "checkpoint_every": 1000, "flip_prob": 0.0, "dp_fg_iou": 0.5, "max_iter": 2,
            "rpn_batch_size_per_image": 100000, "rpn_positive_fraction": 1.0, "box_batch_size_per_image": 100000,
            "box_positive_fraction": 1.0, "dp_max_rois_per_image": 100000, "rpn_pre_nms_top_n_train": 100000,
            "rpn_post_nms_top_n_train": 100000, "norm": "gn", **kw}


@pytest.mark.slow
@pytest.mark.parametrize("with_points", [True, False])
def test_two_gloo_ranks_agree_with_one_process(tmp_path, with_points):
    data = _same_images(tmp_path / "data", with_points=with_points)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "CUDA_VISIBLE_DEVICES": ""}
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    ddp_cfg = json.dumps(_config(batch_size=1))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           str(script), ddp_cfg, str(data), str(tmp_path / "ddp")]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    # the U/V term is summed over a process's points (as detectron2 does): two ranks' sums are
    # averaged, one process sums both images, so the one process needs half the weight
    single_cfg = _config(batch_size=2, uv_weight=SMALL["uv_weight"] / 2)
    single = subprocess.run([sys.executable, str(script), json.dumps(single_cfg), str(data),
                             str(tmp_path / "one")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    from densemap_models.checkpoints import load_model_state, read_checkpoint

    a, _ = load_model_state(tmp_path / "ddp" / "model_final.pt")
    b, _ = load_model_state(tmp_path / "one" / "model_final.pt")
    r0 = torch.load(tmp_path / "ddp" / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "ddp" / "rank1.pt", weights_only=True)
    assert all(torch.equal(r0[k], r1[k]) for k in r0)  # DDP keeps the ranks bit-identical
    assert all(torch.equal(r0[k], a[k]) for k in r0)
    init = torch.load(tmp_path / "init.pt", weights_only=True)
    # the two runs' weight updates agree to float rounding (summation order differs: batched
    # kernels vs two processes and an all-reduce; the point losses' gradients cancel a lot, so
    # their rounding shows at ~1e-3 relative)
    rel, num, den = {}, 0.0, 0.0
    for k in a:
        if not a[k].is_floating_point():
            continue
        da, db = (a[k] - init[k]).double(), (b[k] - init[k]).double()
        num, den = num + float((da - db).norm() ** 2), den + float(db.norm() ** 2)
        if db.norm() > 1e-8:
            rel[k] = float((da - db).norm() / db.norm())
    assert len(rel) > 100  # the runs did train
    assert (num / den) ** 0.5 < 2e-3, (num / den) ** 0.5  # the whole update
    assert max(rel.values()) < 5e-2, sorted(rel.items(), key=lambda kv: -kv[1])[:3]  # every tensor's
    # both ranks' RNG streams are in the training state, distinct, for an exact resume
    state = read_checkpoint(tmp_path / "ddp" / "last.pt")
    assert len(state["rng_ranks"]) == 2 and not torch.equal(state["rng_ranks"][0]["torch"], state["rng_ranks"][1]["torch"])
    rows = [json.loads(x) for x in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]


@pytest.mark.slow
def test_a_batch_of_two_copies_trains_like_one_image_in_float64(tmp_path):
    """What DDP's gradient average relies on: per image, every loss is a mean, but the U/V term
    sums over points. In float64 the gradients agree to rounding (float32 shows ~1e-3 where the
    point losses' gradients cancel)."""
    from densemap_models.config import Config
    from densemap_models.datasets import DensePoseDataset, collate
    from densemap_models.rcnn import build_model

    data = _same_images(tmp_path / "data", with_points=True)
    cfg = Config(**_config(batch_size=1, head_convs=1, head_channels=16))
    ds = DensePoseDataset(data / "annotations.json", data / "images", train=True, flip_prob=0)

    def f64(batch):
        ims, ts = batch
        return [i.double() for i in ims], [{k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v
                                            for k, v in t.items()} for t in ts]

    one, two = f64(collate([ds[0]])), f64(collate([ds[0], ds[1]]))
    grads = []
    for batch, uv in ((one, cfg.uv_weight), (two, cfg.uv_weight / 2)):
        torch.manual_seed(0)
        model = build_model(cfg.replace(uv_weight=uv)).double().train()
        sum(model(*batch).values()).backward()
        grads.append([p.grad for p in model.parameters() if p.grad is not None])
    worst = max(float((g1 - g2).abs().max() / (g1.abs().max() + 1e-300)) for g1, g2 in zip(*grads))
    assert worst < 1e-9
