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


# ----------------------------------------------------------------------------- recipes, init, resume
def test_configs_load_by_name_from_the_installed_package():
    from importlib import resources

    from densemap_models.config import config_names, default_config_name, load_config

    assert {"synth_cpu", "densepose_coco_r50"} <= set(config_names())
    where = Path(str(resources.files("densemap_models.configs").joinpath("synth_cpu.yaml")))
    assert where.is_file() and load_config("synth_cpu") == load_config(where)
    assert load_config("synth_cpu.yaml") == load_config("synth_cpu")
    assert default_config_name("cpu") == "synth_cpu" and default_config_name("cuda:1") == "densepose_coco_r50"
    with pytest.raises(ValueError, match="no such config file, and no packaged config of that name"):
        load_config("synth_gpu_xl")


def test_run_config_notes_every_choice(tmp_path):
    from densemap_models.checkpoints import save_model_file
    from densemap_models.config import ConfigError, load_config
    from densemap_models.rcnn import build_model
    from densemap_models.recipe import run_config

    cfg, notes = run_config(device="cpu")
    assert cfg == load_config("synth_cpu") and "packaged 'synth_cpu' recipe for cpu" in notes[0]
    teacher = Config(**{**FAST, "head_channels": 24})
    save_model_file(tmp_path / "t.pt", build_model(teacher).state_dict(), config=teacher.to_dict(), step=3)
    cfg, notes = run_config(init=tmp_path / "t.pt", overrides=["max_iter=7"])
    assert cfg.head_channels == 24 and cfg.max_iter == 7 and "from" in notes[0]
    stored = {"config": Config(**{**FAST, "max_iter": 100, "lr_steps": (0.5,)}).to_dict()}
    cfg, notes = run_config(overrides=["max_iter=400"], resume_state=stored)
    assert cfg.max_iter == 400 and cfg.lr_steps == (0.125,)  # the drop stays at step 50
    assert "the LR drops stay at steps [50]" in notes[0]
    with pytest.raises(ConfigError, match="cannot change lr on --resume"):
        run_config(overrides=["lr=0.1"], resume_state=stored)
    with pytest.raises(ConfigError, match="--config cannot be given with --resume"):
        run_config("synth_cpu", resume_state=stored)


def test_init_from_another_architecture_is_refused_with_the_tensor_names(tmp_path):
    from densemap_models.checkpoints import CheckpointError, match_init_weights
    from densemap_models.rcnn import build_model

    student = build_model(Config(**FAST))
    other = build_model(Config(**{**FAST, "backbone": "resnet50", "head_channels": 24}))
    with pytest.raises(CheckpointError, match=r"only \d+ of the model's \d+ tensors fit .*of other shape, e\.g\. "
                                              r"\['backbone\.body\.layer"):
        match_init_weights(student, other.state_dict(), where="teacher.pt")
    loaded, total = match_init_weights(student, other.state_dict(), where="teacher.pt", partial=True)
    assert 0 < loaded < 0.95 * total
    assert match_init_weights(student, student.state_dict(), where="self") == (total, total)


def test_checkpoints_are_safe_and_checked(tmp_path):
    import os

    from densemap_models.checkpoints import CheckpointError, load_model_state, read_checkpoint, save_model_file

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    torch.save({"config": {}, "model": {}, "x": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused: the file holds more than tensors"):
        read_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "ran").exists()  # the payload never ran
    state = {"w": torch.arange(64, dtype=torch.float32)}
    path = save_model_file(tmp_path / "m.pt", state, config={}, step=1)
    assert torch.equal(load_model_state(path)[0]["w"], state["w"])
    raw = bytearray(path.read_bytes())
    at = raw.find(torch.arange(64, dtype=torch.float32).numpy().tobytes()[4 * 10 : 4 * 11])
    raw[at : at + 4] = b"\x00\x00\xc8\x42"  # 10.0 -> 100.0 inside the tensor data
    (tmp_path / "flipped.pt").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="do not match the file's content hash"):
        load_model_state(tmp_path / "flipped.pt")
    (tmp_path / "short.pt").write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cannot read the checkpoint"):
        read_checkpoint(tmp_path / "short.pt")


def test_grad_scaler_state_of_a_cpu_run_resumes_with_amp_on():
    from densemap_models.distributed import Dist
    from densemap_models.rcnn import build_model
    from densemap_models.train import _restore, _Run, _lr_lambda, _optimizer

    cfg = Config(**FAST)
    model = build_model(cfg)
    opt = _optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    with pytest.raises(RuntimeError):  # what a plain load_state_dict did with the state of a run without AMP
        torch.amp.GradScaler("cpu", enabled=True).load_state_dict({})
    run = _Run(model, model, opt, sched, scaler, True)
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "scaler": {}, "step": 5,
             "rng": {"torch": torch.get_rng_state(), "python": __import__("random").getstate()}}
    _restore(run, state, model.state_dict(), Dist(0, 0, 1, torch.device("cpu")))
    assert run.step == 5 and run.scaler.is_enabled()


def test_resume_extends_a_finished_run_keeps_snapshots_and_cuts_the_logs(tmp_path):
    from densemap_models.checkpoints import read_checkpoint
    from densemap_models.train import run_training

    torch.set_num_threads(2)
    data = make_coco(tmp_path / "data", n_images=2, size=64)
    cfg = Config(**{**FAST, "max_iter": 4, "checkpoint_every": 1, "keep_snapshots": 2, "log_every": 1,
                    "lr_steps": (0.5,), "min_size": 64, "max_size": 64})
    out = tmp_path / "run"
    first = run_training(out, data=data, config=cfg, progress=False)
    assert first.finished and first.step == 4
    names = sorted(p.name for p in out.glob("*.pt"))
    # the last two snapshots, no snapshot duplicating model_final.pt, last.pt without weights
    assert names == ["last.pt", "model_0000002.pt", "model_0000003.pt", "model_final.pt"]
    last = read_checkpoint(out / "last.pt")
    assert "model" not in last and last["model_file"] == "model_final.pt"
    (out / ".model_0000009.pt.tmp123.pt").write_bytes(b"half")  # what kill -9 during a write leaves
    more = run_training(out, data=data, resume=True, overrides=["max_iter=6"], progress=False)
    assert more.finished and more.step == 6 and "max_iter 4 -> 6" in more.notes[0]
    assert not (out / ".model_0000009.pt.tmp123.pt").exists()
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[-1]["lr"] == pytest.approx(rows[3]["lr"])  # the extension continues after the drop at step 2
    # a resumed run that replays steps: the log is cut back to the checkpoint's step first
    stopped = run_training(tmp_path / "r2", data=data, config=cfg.replace(max_iter=3), progress=False)
    assert stopped.step == 3
    with open(tmp_path / "r2" / "log.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 9, "loss": 1.0}) + "\n")  # a row written after the checkpoint
    run_training(tmp_path / "r2", data=data, resume=True, overrides=["max_iter=4"], progress=False)
    steps = [json.loads(x)["step"] for x in (tmp_path / "r2" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_lr_by_time_drops_at_fractions_of_the_minutes_and_resumes_them(tmp_path, monkeypatch):
    import densemap_models.train as T
    from densemap_models.checkpoints import read_checkpoint

    torch.set_num_threads(2)
    ticks = iter(range(0, 10**6, 6))  # a clock that moves 6 s per reading: one reading per step
    monkeypatch.setattr(T, "_clock", lambda: float(next(ticks)))
    data = make_coco(tmp_path / "data", n_images=2, size=64)
    cfg = Config(**{**FAST, "max_iter": 40, "lr_steps": (0.3, 0.9), "lr_by_time": True, "log_every": 1,
                    "min_size": 64, "max_size": 64})
    out = tmp_path / "run"
    # 60 s: 30 % of them after step 3, 90 % after step 9, long before the steps' own drops (12, 36)
    res = T.run_training(out, data=data, config=cfg, max_minutes=1.0, progress=False)
    assert res.step == 10 and not res.finished
    lrs = {json.loads(x)["step"]: json.loads(x)["lr"] for x in (out / "log.jsonl").read_text().splitlines()}
    base = cfg.lr
    assert lrs[3] == pytest.approx(base) and lrs[4] == pytest.approx(0.1 * base)
    assert lrs[9] == pytest.approx(0.1 * base) and lrs[10] == pytest.approx(0.01 * base)
    assert read_checkpoint(out / "last.pt")["lr_taken"] == [3, 9]
    # resumed without a time limit, the drops already taken stay (by steps alone, 11-14 would be at 0.1)
    more = T.run_training(out, data=data, resume=True, overrides=["max_iter=14"], progress=False)
    assert more.finished and more.step == 14
    lrs = {json.loads(x)["step"]: json.loads(x)["lr"] for x in (out / "log.jsonl").read_text().splitlines()}
    assert [lrs[k] for k in (11, 12, 14)] == pytest.approx([0.01 * base] * 3)
    # without lr_by_time the same clock only stops the run
    ticks = iter(range(0, 10**6, 6))
    T.run_training(tmp_path / "plain", data=data, config=cfg.replace(lr_by_time=False), max_minutes=1.0,
                   progress=False)
    lrs = [json.loads(x)["lr"] for x in (tmp_path / "plain" / "log.jsonl").read_text().splitlines()]
    assert len(lrs) == 10 and lrs[-1] == pytest.approx(base)


def test_cosine_by_time_anneals_over_the_minutes_and_never_rises_on_resume(tmp_path, monkeypatch):
    import math

    import densemap_models.train as T
    from densemap_models.checkpoints import read_checkpoint

    torch.set_num_threads(2)
    ticks = iter(range(0, 10**6, 6))  # 6 s per step: after step k, k / 10 of a minute has passed
    monkeypatch.setattr(T, "_clock", lambda: float(next(ticks)))
    data = make_coco(tmp_path / "data", n_images=2, size=64)
    cfg = Config(**{**FAST, "max_iter": 40, "lr_schedule": "cosine", "lr_by_time": True, "log_every": 1,
                    "warmup_iters": 0, "min_size": 64, "max_size": 64})
    cos = lambda p: cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(p, 1.0))))  # noqa: E731
    out = tmp_path / "run"
    res = T.run_training(out, data=data, config=cfg, max_minutes=1.0, progress=False)
    assert res.step == 10 and not res.finished

    def logged(run):
        return {json.loads(x)["step"]: json.loads(x)["lr"] for x in (run / "log.jsonl").read_text().splitlines()}

    # the rate set at the end of step k follows the clock's share after step k - 1 (by steps
    # alone, 40 steps, step 9 would still be at 97 % of the rate)
    lrs = logged(out)
    assert [lrs[k] for k in range(2, 11)] == pytest.approx([cos((k - 1) / 10) for k in range(2, 11)])
    assert read_checkpoint(out / "last.pt")["lr_progress"] == pytest.approx(1.0)
    # a resume past the end stays at the final rate instead of climbing back
    more = T.run_training(out, data=data, resume=True, overrides=["max_iter=14"], progress=False)
    assert more.finished and more.step == 14
    assert [logged(out)[k] for k in (11, 12, 14)] == pytest.approx([0.01 * cfg.lr] * 3)
    # without lr_by_time the cosine runs over the steps
    plain = tmp_path / "plain"
    T.run_training(plain, data=data, config=cfg.replace(lr_by_time=False), max_minutes=1.0, progress=False)
    lrs = logged(plain)
    assert [lrs[k] for k in range(1, 11)] == pytest.approx([cos(k / 40) for k in range(1, 11)])


def test_a_loss_that_stays_non_finite_stops_the_run(tmp_path):
    from densemap_models.train import TrainingError

    torch.set_num_threads(2)
    data = make_coco(tmp_path / "data", n_images=2, size=64)
    cfg = Config(**{**FAST, "max_iter": 50, "lr": 1e30, "clip_grad_norm": 1e38, "max_nonfinite_steps": 2,
                    "min_size": 64, "max_size": 64})
    with pytest.raises(TrainingError, match="the loss was not finite for 2 steps in a row"):
        train(cfg, data=data, out=tmp_path / "run", progress=False)


def test_dataset_coarse_parts_flip_to_the_mirror_part(tmp_path):
    import numpy as np

    from densemap.annotation.coco import encode_rle, write_coco
    from densemap_models.datasets import DensePoseDataset
    from PIL import Image

    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    masks = [[] for _ in range(14)]
    left = np.zeros((256, 256), np.uint8)
    left[:, :64] = 1  # coarse part 4 ("right hand" in DensePose's table) in the box's left quarter
    masks[3] = encode_rle(left)
    ann = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [8, 8, 40, 40], "iscrowd": 0, "area": 1600.0,
           "dp_masks": masks}
    write_coco({"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 64}], "annotations": [ann],
                "categories": [{"id": 1, "name": "person"}]}, tmp_path / "a.json")
    ds = DensePoseDataset(tmp_path / "a.json", tmp_path / "images", train=True, flip_prob=0.0)
    t = ds.target(0, 64, 64)
    assert t["dp_parts_valid"].tolist() == [True]
    assert set(np.unique(t["dp_box_parts"][0].numpy())) == {0, 4} and t["dp_box_parts"][0, :, :64].eq(4).all()
    _, f = ds.flip(np.zeros((64, 64, 3), np.uint8), t)
    # mirrored: the right quarter, and part 4 becomes its mirror part 5 (DensePose's MASK_FLIP)
    assert f["dp_box_parts"][0, :, -64:].eq(5).all() and f["dp_box_parts"][0, :, :-64].eq(0).all()
