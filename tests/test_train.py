"""Trainer: a 2-image overfit run, checkpoints, logs and exact resume; the CLI commands."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_models import SMALL, make_coco  # noqa: E402

from densemap_models.config import Config  # noqa: E402
from densemap_models.train import StreamSampler, load_checkpoint, train  # noqa: E402

FAST = {**SMALL, "workers": 0, "optimizer": "adamw", "lr": 2e-3, "warmup_iters": 2, "lr_steps": (), "log_every": 5,
        "checkpoint_every": 1000, "batch_size": 2, "flip_prob": 0.0, "dp_fg_iou": 0.5, "uv_weight": 0.01}


def test_stream_sampler_positions_and_ranks():
    a = list(StreamSampler(5, seed=1, batch_size=2, n_batches=6))
    assert sorted(i % 5 for i in a[:5]) == [0, 1, 2, 3, 4]  # epoch 0 is a permutation
    assert all(i // 5 == 1 for i in a[5:10])  # epoch index carried in the sample id
    assert list(StreamSampler(5, seed=1, batch_size=2, start_batch=2, n_batches=4)) == a[4:]
    r0 = list(StreamSampler(5, seed=1, batch_size=1, n_batches=3, rank=0, world=2))
    r1 = list(StreamSampler(5, seed=1, batch_size=1, n_batches=3, rank=1, world=2))
    assert [x for pair in zip(r0, r1) for x in pair] == a[:6]


@pytest.mark.slow  # ~40 s on an idle 2-core machine, 100 s on a loaded one
def test_overfit_two_images_drives_densepose_losses_down(tmp_path):
    torch.set_num_threads(2)
    data = make_coco(tmp_path / "data", n_images=2)
    cfg = Config(**{**FAST, "max_iter": 40})
    res = train(cfg, data=data, out=tmp_path / "run", progress=False)
    assert res.finished and res.step == 40
    rows = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    first, last = rows[0], rows[-1]
    for k in ("loss_densepose_I", "loss_densepose_S", "loss_densepose_UV", "loss"):
        assert last[k] < first[k], (k, first[k], last[k])
    assert last["loss_densepose_I"] < 0.7 * first["loss_densepose_I"]
    for name in ("config.yaml", "last.pt", "model_final.pt", "log.csv"):
        assert (tmp_path / "run" / name).is_file()
    model, config, ck = load_checkpoint(tmp_path / "run")
    assert config.max_iter == 40 and ck["step"] == 40 and not model.training


@pytest.mark.slow
def test_resume_is_exact(tmp_path):
    torch.set_num_threads(2)
    data = make_coco(tmp_path / "data", n_images=3)
    cfg = Config(**{**FAST, "max_iter": 6, "flip_prob": 0.5, "batch_size": 1, "accumulate": 2})
    full = train(cfg, data=data, out=tmp_path / "full", progress=False)
    part = train(cfg, data=data, out=tmp_path / "part", progress=False, max_minutes=0.0)  # stops after 1 step
    assert part.step == 1 and not part.finished
    done = train(cfg, data=data, out=tmp_path / "part", progress=False, resume=True)
    assert done.step == 6 and done.finished
    a = torch.load(full.checkpoint, weights_only=False)["model"]
    b = torch.load(done.checkpoint, weights_only=False)["model"]
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k


def test_cli_train_eval_predict_errors(tmp_path):
    from click.testing import CliRunner

    from densemap.cli.main import main

    r = CliRunner().invoke(main, ["train", "--out", str(tmp_path / "r"), "--set", "nope=1", "--data", str(tmp_path)])
    assert r.exit_code != 0 and "unknown config key 'nope'" in r.output
    r = CliRunner().invoke(main, ["train", "--out", str(tmp_path / "r"), "--resume", "--data", str(tmp_path)])
    assert r.exit_code != 0 and "nothing to resume" in r.output
    bad = tmp_path / "bad.pt"
    torch.save({"x": 1}, bad)
    r = CliRunner().invoke(main, ["eval", "--ckpt", str(bad), "--data", str(tmp_path)])
    assert r.exit_code != 0 and "not a densemap checkpoint" in r.output


@pytest.mark.slow
def test_cli_end_to_end_tiny(tmp_path):
    from click.testing import CliRunner

    from densemap.cli.main import main

    data = make_coco(tmp_path / "data", n_images=2)
    run = tmp_path / "run"
    sets = [x for k, v in FAST.items() if k not in ("lr_steps",) for x in ("--set", f"{k}={list(v) if isinstance(v, tuple) else v}")]
    r = CliRunner().invoke(main, ["-q", "train", "--data", str(data), "--out", str(run), "--device", "cpu",
                                  "--set", "max_iter=3", *sets])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["eval", "--ckpt", str(run / "model_final.pt"), "--data", str(data), "--device", "cpu",
                                  "-o", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert {"bbox", "segm", "densepose", "calibration"} <= set(m) and (tmp_path / "ev" / "reliability.png").is_file()
    r = CliRunner().invoke(main, ["predict", "--ckpt", str(run), str(data / "images" / "000.png"), "-o",
                                  str(tmp_path / "pred"), "--score-thresh", "0", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "pred" / "000_iuv.png").is_file() and (tmp_path / "pred" / "results.json").is_file()
