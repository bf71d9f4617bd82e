"""``densemap predict`` end to end with a random-weights model: images, clips, folders, resuming after an
interrupt, corrupt clips, the CLI, and torchrun sharding (gloo, 2 CPU processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from test_video import REAL, write_clip  # noqa: E402

from densemap_models import clip_predict  # noqa: E402
from densemap_models.clip_outputs import decode_iuv, read_summary  # noqa: E402
from densemap_models.predict import ClipSettings, Sampling, predict_media  # noqa: E402
from densemap_models.video import iter_frames  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# low thresholds: a random model's detections still exercise tracking, smoothing and the writers
LOW = ClipSettings(score_thresh=0.0, birth_score=0.0, max_dets=2, smooth_radius=1, overlay=True)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A random-weights checkpoint of configs/synth_cpu.yaml at a small input size (fast on a CPU)."""
    from densemap_models.config import apply_overrides, load_config
    from densemap_models.rcnn import build_model

    torch.manual_seed(0)
    cfg = apply_overrides(load_config(ROOT / "configs" / "synth_cpu.yaml"), ["min_size=64", "max_size=96"])
    path = tmp_path_factory.mktemp("ckpt") / "random.pt"
    torch.save({"model": build_model(cfg).state_dict(), "config": cfg.to_dict()}, path)
    return path


@pytest.fixture(scope="module")
def model(ckpt):
    from densemap_models.train import load_checkpoint

    torch.set_num_threads(1)
    return load_checkpoint(ckpt)[0]


def _folder(root: Path) -> Path:
    """Two same-named images in different folders, two tiny camera-trap clips, a corrupt one."""
    for site in ("site1", "site2"):
        (root / site).mkdir(parents=True)
        Image.fromarray(np.random.default_rng(len(site)).integers(0, 255, (60, 106, 3), dtype=np.uint8)).save(
            root / site / "000002.png")
    write_clip(root / "site1" / "trap.avi", codec="mpeg4", frames=4, fps=1)
    write_clip(root / "site2" / "trap.asf", codec="msmpeg4v2", frames=3, fps=1, fmt="asf")
    (root / "site2" / "broken.mp4").write_bytes(b"not a video" * 100)
    return root


def _no_temporaries(out: Path):
    assert not [p for p in out.rglob(".*") if p.is_file()], "temporary files left behind"


@pytest.mark.slow  # ~15 s on an idle 2-core machine (9 frames, 2 images, overlay videos)
def test_folder_of_images_and_clips(tmp_path, model):
    data = _folder(tmp_path / "data")
    out = tmp_path / "out"
    s = predict_media(model, [data], out, sampling=Sampling(fps=1.0), settings=LOW)
    assert s.images == 2 and s.clips == 2 + 1 and s.clips_skipped == 0
    assert s.errors and s.errors[0][0] == "site2/broken.mp4" and "cannot open the video" in s.errors[0][1]
    for site in ("site1", "site2"):  # same names, different folders: both kept
        assert (out / site / "000002_iuv.png").is_file() and (out / site / "000002_overlay.png").is_file()
    res = json.loads((out / "results.json").read_text())
    assert {r["file_name"] for r in res} == {"site1/000002.png", "site2/000002.png"}
    assert all(decode_iuv(r["uv_data"]).shape == tuple(r["uv_shape"]) for r in res)
    for rel, n in (("site1/trap", 4), ("site2/trap", 3)):
        doc = json.loads((out / f"{rel}.json").read_text())
        assert doc["n_frames"] == len(doc["frames"]) == n == doc["summary"]["frames_sampled"]
        assert [f["timestamp"] for f in doc["frames"]] == [float(k) for k in range(n)]
        dets = [d for f in doc["frames"] for d in f["detections"]]
        assert dets and all(d["track_id"] >= 1 for d in dets)  # birth_score 0: every detection is tracked
        assert any(d["smoothed"] for d in dets)
        d = dets[0]
        assert decode_iuv(d["uv_data"]).shape == tuple(d["uv_shape"]) and d["segmentation"]["size"] == [60, 106]
        assert {t["track_id"] for t in doc["tracks"]} == {d["track_id"] for d in dets}
        assert len(list(iter_frames(out / f"{rel}_overlay.mp4"))) == n
    rows = {r["clip"]: r for r in read_summary(out / "summary.csv")}
    assert set(rows) == {"site1/trap.avi", "site2/trap.asf", "site2/broken.mp4"}
    assert rows["site2/broken.mp4"]["status"] == "error" and "Invalid data" in rows["site2/broken.mp4"]["error"]
    assert rows["site1/trap.avi"]["frames_read"] == "4" and rows["site1/trap.avi"]["frames_sampled"] == "4"
    _no_temporaries(out)


def test_empty_clip_is_a_valid_result_and_says_so(tmp_path, model):
    clip = write_clip(tmp_path / "empty.avi", frames=3, fps=1)
    s = predict_media(model, [clip], tmp_path / "out", settings=ClipSettings(score_thresh=1.0, overlay=True))
    assert s.clips == 1 and s.clips_without_detection == 1 and not s.errors
    doc = json.loads((tmp_path / "out" / "empty.json").read_text())
    assert doc["n_frames"] == 3 and all(f["detections"] == [] for f in doc["frames"]) and doc["tracks"] == []
    row = read_summary(tmp_path / "out" / "summary.csv")[0]
    assert (row["status"], row["frames_with_detection"], row["tracks"]) == ("ok", "0", "0")


@pytest.mark.slow  # ~10 s on an idle 2-core machine
def test_interrupted_run_resumes_and_leaves_nothing_half_written(tmp_path, model, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    for k in range(3):
        write_clip(data / f"c{k}.avi", frames=2, fps=1)
    out = tmp_path / "out"
    calls = {"n": 0}
    real = clip_predict.detect

    def flaky(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 4:  # the second frame of the second clip
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(clip_predict, "detect", flaky)
    with pytest.raises(KeyboardInterrupt):
        predict_media(model, [data], out, settings=LOW)
    assert (out / "c0.json").is_file() and (out / "c0_overlay.mp4").is_file()
    assert not (out / "c1.json").exists() and not (out / "c1_overlay.mp4").exists()
    _no_temporaries(out)
    monkeypatch.setattr(clip_predict, "detect", real)
    before = (out / "c0.json").stat().st_mtime_ns
    s = predict_media(model, [data], out, settings=LOW)
    assert (s.clips_skipped, s.clips) == (1, 2)
    assert (out / "c0.json").stat().st_mtime_ns == before
    assert [r["clip"] for r in read_summary(out / "summary.csv")] == ["c0.avi", "c1.avi", "c2.avi"]
    s = predict_media(model, [data], out, settings=LOW)
    assert (s.clips_skipped, s.clips) == (3, 0)


def test_cli_predict(tmp_path, ckpt):
    from click.testing import CliRunner

    from densemap.cli.main import main

    clip = write_clip(tmp_path / "in" / "a.avi", frames=3, fps=1)
    r = CliRunner().invoke(main, ["predict", "--ckpt", str(ckpt), str(clip), "-o", str(tmp_path / "out"), "--fps", "1",
                                  "--score-thresh", "1", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "1 clips predicted" in r.output and "1 without a detection" in r.output
    assert json.loads((tmp_path / "out" / "a.json").read_text())["n_frames"] == 3
    r = CliRunner().invoke(main, ["predict", "--ckpt", str(ckpt), str(clip), "-o", str(tmp_path / "out")])
    assert r.exit_code == 0 and "0 clips predicted" in r.output and "1 already complete" in r.output
    write_clip(tmp_path / "in" / "a.mp4", codec="libx264", frames=2)
    r = CliRunner().invoke(main, ["predict", "--ckpt", str(ckpt), str(tmp_path / "in"), "-o", str(tmp_path / "o2")])
    assert r.exit_code == 1 and "outputs collide" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "o2").exists()
    r = CliRunner().invoke(main, ["predict", "--ckpt", str(ckpt), str(clip), "-o", str(tmp_path / "o3"), "--fps", "1",
                                  "--every", "2"])
    assert r.exit_code != 0 and "at most one of --fps and --every" in r.output


@pytest.mark.slow  # ~15 s: the real photo and the 15 s clip at 1 fps
def test_real_media(tmp_path, model):
    out = tmp_path / "out"
    s = predict_media(model, [REAL / "chimp.jpg", REAL / "chimp.mp4"], out, sampling=Sampling(fps=1.0),
                      settings=ClipSettings(score_thresh=0.5, overlay=True))
    assert s.images == 1 and s.clips == 1 and not s.errors
    doc = json.loads((out / "chimp.json").read_text())
    assert doc["n_frames"] == len(doc["frames"]) == 15 and doc["frames_read"] == 450
    assert (out / "chimp_iuv.png").is_file() and len(list(iter_frames(out / "chimp_overlay.mp4"))) == 15


@pytest.mark.slow  # ~30 s: two processes, each loading torch
def test_torchrun_sharding_on_gloo(tmp_path, ckpt):
    data = _folder(tmp_path / "data")
    write_clip(data / "site1" / "more.avi", frames=2, fps=1)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517", "-m",
           "densemap.cli.main", "-q", "predict", "--ckpt", str(ckpt), str(data), "-o", str(out), "--device", "cpu",
           "--score-thresh", "0", "--max-frames", "2"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = read_summary(out / "summary.csv")
    assert [x["clip"] for x in rows] == ["site1/more.avi", "site1/trap.avi", "site2/broken.mp4", "site2/trap.asf"]
    assert {x["status"] for x in rows} == {"ok", "error"}
    res = json.loads((out / "results.json").read_text())
    assert {x["file_name"] for x in res} == {"site1/000002.png", "site2/000002.png"}  # one per rank, merged
    for rel in ("site1/more", "site1/trap", "site2/trap"):
        assert json.loads((out / f"{rel}.json").read_text())["n_frames"] == 2
