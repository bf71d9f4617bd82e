"""The fuzz suite of the torch commands: checkpoints that would run code or are corrupt, bad
``--set`` values, training data that is garbage, outputs over inputs.

The security case: a checkpoint whose pickle builds an object that runs a shell command is
refused by ``predict``, ``eval``, ``pseudo-label``, ``train --init`` and ``train --resume``,
with a non-zero exit, one line, and the command never run (its marker file never appears).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from badinput_kit import Case, check_refused, dataset, png, png_header_only  # noqa: E402

CKPT_COMMANDS = ("predict", "eval", "pseudo-label", "train-init", "train-resume")


class _Payload:
    """Unpickling this runs ``touch MARKER``: what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _ckpt_args(cmd: str, d: Path, ckpt: Path) -> list:
    """Arguments of ``cmd`` that load ``ckpt`` first (everything else valid)."""
    data = dataset(d / "data")
    if cmd == "predict":
        return ["predict", "--ckpt", ckpt, data / "images" / "a.png", "-o", d / "pred", "--device", "cpu"]
    if cmd == "eval":
        return ["eval", "--ckpt", ckpt, "--data", data, "-o", d / "ev", "--device", "cpu"]
    if cmd == "pseudo-label":
        return ["pseudo-label", "--ckpt", ckpt, "--images", data / "images", "-o", d / "p.json", "--strategy",
                "uniform", "--k", "2", "--device", "cpu"]
    if cmd == "train-init":
        return ["train", "--data", data, "--out", d / "run", "--init", ckpt, "--device", "cpu"]
    run = d / "run"
    run.mkdir(exist_ok=True)
    os.replace(ckpt, run / "last.pt")
    return ["train", "--data", data, "--out", run, "--resume", "--device", "cpu"]


def _file(d: Path, kind: str) -> Path:
    from densemap_models.checkpoints import save_model_file

    p = d / "ck.pt"
    if kind == "payload":
        torch.save({"config": {}, "model": {}, "x": _Payload(d / "ran")}, p)
    elif kind == "truncated":
        save_model_file(p, {"w": torch.arange(64, dtype=torch.float32)}, config={}, step=1)
        p.write_bytes(p.read_bytes()[:200])
    elif kind == "garbage":
        p.write_bytes(b"this is not a checkpoint\n" * 20)
    elif kind == "flipped":
        save_model_file(p, {"w": torch.arange(64, dtype=torch.float32)}, config={}, step=1)
        raw = bytearray(p.read_bytes())
        at = raw.find(torch.arange(64, dtype=torch.float32).numpy().tobytes()[40:44])
        raw[at:at + 64] = bytes(64)  # 64 bytes of the weights zeroed: the content hash differs
        p.write_bytes(bytes(raw))
    elif kind == "not-densemap":
        torch.save({"x": 1}, p)
    return p


EXPECT = {"payload": r"refused: the file holds more than tensors and plain values",
          "truncated": r"cannot read the checkpoint", "garbage": r"cannot read the checkpoint",
          "flipped": r"do not match the file's content hash", "not-densemap": r"not a densemap checkpoint"}


@pytest.mark.parametrize("cmd", CKPT_COMMANDS)
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, cmd):
    ckpt = _file(tmp_path, "payload")
    args = _ckpt_args(cmd, tmp_path, ckpt)
    allowed = ("run/last.pt",) if cmd == "train-resume" else ()
    check_refused(Case(args, EXPECT["payload"], allowed_new=allowed), tmp_path)
    assert not (tmp_path / "ran").exists(), "the pickled payload ran"




@pytest.mark.parametrize("kind", ["truncated", "garbage", "flipped", "not-densemap"])
@pytest.mark.parametrize("cmd", ["eval", "train-init", "train-resume"])
def test_corrupt_checkpoints_are_refused(tmp_path, cmd, kind):
    if kind == "flipped" and cmd == "train-resume":
        pytest.skip("last.pt holds no weights (its model file's hash is checked, see test_train)")
    args = _ckpt_args(cmd, tmp_path, _file(tmp_path, kind))
    allowed = ("run/last.pt",) if cmd == "train-resume" else ()
    check_refused(Case(args, EXPECT[kind], allowed_new=allowed), tmp_path)


def test_weights_that_do_not_fit_their_config_are_refused(tmp_path):
    from densemap_models.checkpoints import save_model_file
    from densemap_models.config import Config
    from test_models import SMALL

    p = save_model_file(tmp_path / "ck.pt", {"w": torch.zeros(3)}, config=Config(**SMALL).to_dict(), step=1)
    check_refused(Case(_ckpt_args("eval", tmp_path, p), r"ck\.pt: the weights do not fit the checkpoint's own config"),
                  tmp_path)


# ----------------------------------------------------------------------------- --set and arguments
@pytest.mark.parametrize("value, match", [
    ("lr_steps=[abc]", r"lr_steps must be a list of finite numbers, got \['abc'\]"),
    ("workers=-1", r"workers = -1 is out of range; expected a finite number in \[0, 256\]"),
    ("min_size=0", r"min_size = 0 is out of range"),
    ("lr=.nan", r"lr = nan is out of range"),
    ("lr=.inf", r"lr = inf is out of range"),
    ("max_iter=1" + "0" * 400, r"max_iter = 1000+\.\.\. \(401 digits\) is out of range"),
    ("seed=-1", r"seed = -1 is out of range"),
    ("batch_size=true", r"batch_size must be of type int"),
    ("lr_steps=[2]", r"lr_steps are fractions of max_iter in \(0, 1\)"),
    ("flip_prob=3", r"flip_prob = 3.0 is out of range"),
    ("nokey=1", r"unknown config key 'nokey'"),
    ("lr", r"override 'lr' must look like key=value"),
    ("lr=[", r"override 'lr=\[': cannot parse the value"),
    ("invalid_annotations=maybe", r"unknown invalid_annotations 'maybe'"),
])
def test_bad_set_values(tmp_path, value, match):
    data = dataset(tmp_path / "data")
    check_refused(Case(["train", "--data", data, "--out", tmp_path / "run", "--set", value, "--device", "cpu"], match),
                  tmp_path)


@pytest.mark.parametrize("content, match", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", r"cfg\.yaml: not UTF-8 text \(byte 0x89 at offset 0\); expected a YAML config"),
    (b"a: " + b"[" * 3000 + b"]" * 3000, r"cfg\.yaml: YAML nested too deeply to read"),
    (b"lr: [1, 2", r"cfg\.yaml: invalid YAML"),
    (b"- 1\n- 2\n", r"cfg\.yaml: a config must be a mapping of keys to values, got list"),
    (b"lr: .nan\n", r"lr = nan is out of range"),
])
def test_bad_config_files(tmp_path, content, match):
    data = dataset(tmp_path / "data")
    (tmp_path / "cfg.yaml").write_bytes(content)
    check_refused(Case(["train", "--data", data, "--out", tmp_path / "run", "--config", tmp_path / "cfg.yaml",
                        "--device", "cpu"], match), tmp_path)


def test_pseudo_label_negative_seed(tmp_path):
    data = dataset(tmp_path / "data")
    check_refused(Case(["pseudo-label", "--ckpt", data / "images" / "a.png", "--images", data / "images", "-o",
                        tmp_path / "p.json", "--strategy", "uniform", "--k", "1", "--seed", "-1"],
                       r"Invalid value for '--seed': -1 is not in the range x>=0", code=2), tmp_path)


# ----------------------------------------------------------------------------- outputs over inputs
def test_pseudo_label_output_over_an_input_image(tmp_path):
    data = dataset(tmp_path / "data")
    check_refused(Case(["pseudo-label", "--ckpt", _file(tmp_path, "garbage"), "--images", data / "images", "-o",
                        data / "images" / "a.png", "--strategy", "uniform", "--k", "1"],
                       r"-o .*a\.png is (the input|a file inside the input folder) --images"), tmp_path)


def test_train_out_is_a_file(tmp_path):
    data = dataset(tmp_path / "data")
    (tmp_path / "run").write_text("x")
    check_refused(Case(["train", "--data", data, "--out", tmp_path / "run"], r"is a file", code=2), tmp_path)


def test_eval_out_under_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    data = dataset(tmp_path / "data")
    ck = _file(tmp_path, "garbage")
    check_refused(Case(["eval", "--ckpt", ck, "--data", data, "-o", tmp_path / "f" / "ev"], r"/f is a file, not a folder"),
                  tmp_path)


# ----------------------------------------------------------------------------- training data that is garbage
TRAIN_DATA = {
    "nan_dp_U": (dict(dp_U=[float("nan")] * 5), r"annotation id 7 point 0: dp_U is not a number: nan"),
    "dp_I_99": (dict(dp_I=[99.0] * 5), r"annotation id 7 point 0: dp_I = 99 is not a chart id in 1\.\.24"),
    "dp_x_1e9": (dict(dp_x=[1e9] * 5), r"annotation id 7 point 0: dp_x = 1e\+09 outside \[0, 256\]"),
    "bbox_1e12": (dict(bbox=[0.0, 0.0, 1e12, 1e12]), r"annotation id 7: bbox \[0, 0, 1e\+12, 1e\+12\] lies outside"),
    "negative_bbox": (dict(bbox=[5.0, 5.0, -3.0, 4.0]), r"annotation id 7: bbox .* has a negative width"),
    "invalid_rle": (dict(segmentation={"size": [48, 64], "counts": ""}), r"annotation id 7: segmentation is not a valid "
                    r"RLE \(the runs add up to 0 pixels, not 48 x 64"),
    "huge_number": (dict(dp_V=[10**400] * 5), r"annotation id 7 point 0: dp_V is not a number: 1000+\.\.\. \(401 "
                    r"characters\)"),
    "ragged_points": (dict(dp_x=[1.0, 2.0]), r"annotation id 7: unequal list lengths: dp_x 2, dp_y 5"),
}


@pytest.mark.parametrize("name", sorted(TRAIN_DATA))
def test_training_refuses_garbage_annotations(tmp_path, name):
    fields, match = TRAIN_DATA[name]
    data = dataset(tmp_path / "data", **fields)
    check_refused(Case(["train", "--data", data, "--out", tmp_path / "run", "--device", "cpu"],
                       r"annotations\.json: image 1 \(a\.png\), " + match), tmp_path)


@pytest.mark.parametrize("name, make, match", [
    ("png_12000", lambda p: png_header_only(p, 12000, 12000), r"a\.png: 12000 x 12000 pixels \(144\.0 megapixels\)"),
    ("not_an_image", lambda p: p.write_text("text"), r"a\.png: not an image file"),
    ("wrong_size", lambda p: png(p, 30, 20), r"is 64 x 48 in the annotations but the file is 30 x 20"),
    ("truncated", lambda p: p.write_bytes(p.read_bytes()[:40]), r"a\.png: (cannot read the image|not an image)"),
])
def test_training_refuses_bad_images(tmp_path, name, make, match):
    data = dataset(tmp_path / "data")
    make(data / "images" / "a.png")
    check_refused(Case(["train", "--data", data, "--out", tmp_path / "run", "--device", "cpu"], match), tmp_path)


def test_pseudo_label_refuses_a_bomb_image_before_decoding(tmp_path):
    from densemap_models.pseudo_labels import iter_teacher_predictions
    from densemap.errors import InputError

    png_header_only(tmp_path / "a.png", 12000, 12000)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

    with pytest.raises(InputError, match="12000 x 12000 pixels"):
        next(iter_teacher_predictions(Model(), [tmp_path / "a.png"]))
