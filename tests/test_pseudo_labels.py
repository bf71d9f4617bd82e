"""Pseudo-labels: point selection per strategy on hand-built predictions, the COCO writer
(pycocotools round trip, densemap validation, training loader), the teacher loop and the CLI."""

import json

import numpy as np
import pytest
import torch

from densemap.annotation.coco import check_annotation, read_coco
from densemap.errors import AnnotationError
from densemap_models.heads import DensePoseOutput
from densemap_models.pseudo_labels import (
    RANKING,
    STRATEGIES,
    BoxPrediction,
    Detection,
    ImagePredictions,
    box_prediction,
    coarse_box_masks,
    iter_teacher_predictions,
    pseudo_annotations,
    pseudo_coco,
    choose_points,
    write_pseudo_coco,
)


# ----------------------------------------------------------------------------- hand-built predictions
def hand_pred():
    """5 x 6 box; foreground = columns 1..4 of rows 0..3 (16 pixels); background has the *best*
    confidences everywhere so that any leak into it shows."""
    h, w = 5, 6
    labels = np.zeros((h, w), np.int64)
    labels[0:4, 1:5] = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [23, 24, 14, 15]])
    fg = labels > 0
    idx = np.arange(h * w, dtype=np.float64).reshape(h, w)
    # distinct values with different orders per channel
    mask_prob = np.where(fg, 0.5 + 0.01 * idx, 1.0)  # largest at the last fg pixel in row-major order
    chart_conf = np.where(fg, 0.9 - 0.02 * idx, 1.0)  # largest at the first fg pixel
    sigma = np.where(fg, 0.05 + ((idx * 7) % 16) / 100.0, 0.001)  # scrambled order
    u = np.where(fg, idx / (h * w), 0.0)
    v = np.where(fg, 1.0 - idx / (h * w), 0.0)
    u[0, 1], v[0, 2] = -0.2, 1.3  # out of range: clamped when written
    return BoxPrediction(labels=labels, u=u, v=v, mask_prob=mask_prob, chart_conf=chart_conf, sigma=sigma)


def _pix(rows, cols):
    return list(zip(rows.tolist(), cols.tolist()))


def _expected_topk(pred, name, larger, k):
    fg = [(r, c) for r in range(pred.shape[0]) for c in range(pred.shape[1]) if pred.labels[r, c] > 0]
    vals = getattr(pred, name)
    return sorted(fg, key=lambda rc: -vals[rc] if larger else vals[rc])[:k]


@pytest.mark.parametrize("strategy,name,larger", [("mask", "mask_prob", True), ("I", "chart_conf", True),
                                                  ("uv", "sigma", False)])
def test_topk_strategies_pick_the_most_confident_foreground_pixels(strategy, name, larger):
    pred = hand_pred()
    assert RANKING[strategy] == (name, larger)
    for k in (1, 3, 7):
        rows, cols = choose_points(pred, strategy=strategy, k=k)
        assert _pix(rows, cols) == _expected_topk(pred, name, larger, k)  # in rank order
        assert (pred.labels[rows, cols] > 0).all()  # background (with better values) never chosen


def test_uv_takes_the_k_smallest_sigma_and_I_the_k_largest_posterior():
    pred = hand_pred()
    rows, cols = choose_points(pred, strategy="uv", k=4)
    fg_sigma = np.sort(pred.sigma[pred.foreground])
    np.testing.assert_array_equal(np.sort(pred.sigma[rows, cols]), fg_sigma[:4])
    rows, cols = choose_points(pred, strategy="I", k=4)
    fg_conf = np.sort(pred.chart_conf[pred.foreground])[::-1]
    np.testing.assert_array_equal(pred.chart_conf[rows, cols], fg_conf[:4])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_k_at_least_the_foreground_takes_all_of_it_and_k0_takes_none(strategy):
    pred = hand_pred()
    n_fg = int(pred.foreground.sum())
    for k in (n_fg, n_fg + 1, 1000):
        rows, cols = choose_points(pred, strategy=strategy, k=k, rng=np.random.default_rng(0))
        assert len(rows) == n_fg
        assert set(_pix(rows, cols)) == set(zip(*np.nonzero(pred.foreground)))
    rows, cols = choose_points(pred, strategy=strategy, k=0, rng=np.random.default_rng(0))
    assert len(rows) == len(cols) == 0 and rows.dtype == np.int64


def test_ties_are_broken_by_row_major_order():
    lab = np.ones((3, 4), np.int64)
    lab[1, 1] = 0
    one = np.full((3, 4), 0.7)
    pred = BoxPrediction(labels=lab, u=one * 0.5, v=one * 0.5, mask_prob=one, chart_conf=one, sigma=one * 0.1)
    expected = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 2)]
    for s in ("mask", "I", "uv"):
        rows, cols = choose_points(pred, strategy=s, k=6)
        assert _pix(rows, cols) == expected, s


def test_uniform_is_reproducible_distinct_foreground_and_unbiased():
    pred = hand_pred()
    a = choose_points(pred, strategy="uniform", k=5, rng=np.random.default_rng(3))
    b = choose_points(pred, strategy="uniform", k=5, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert len(set(_pix(*a))) == 5 and (pred.labels[a] > 0).all()
    # each of the 16 foreground pixels is chosen with probability 5/16
    counts = np.zeros(pred.shape)
    rng = np.random.default_rng(0)
    n = 3000
    for _ in range(n):
        r, c = choose_points(pred, strategy="uniform", k=5, rng=rng)
        counts[r, c] += 1
    p = 5 / 16
    freq = counts[pred.foreground] / n
    assert np.all(np.abs(freq - p) < 4.5 * np.sqrt(p * (1 - p) / n))  # ~4.5 sigma per pixel
    assert counts[~pred.foreground].sum() == 0


def test_choose_points_argument_errors():
    pred = hand_pred()
    with pytest.raises(ValueError, match=r"unknown strategy 'sigma'; expected one of \['uniform', 'mask', 'I', 'uv'\]"):
        choose_points(pred, strategy="sigma", k=1)
    with pytest.raises(ValueError, match="k must be an integer >= 0"):
        choose_points(pred, strategy="I", k=-1)
    with pytest.raises(ValueError, match="k must be an integer >= 0"):
        choose_points(pred, strategy="I", k=2.5)
    with pytest.raises(ValueError, match="needs rng"):
        choose_points(pred, strategy="uniform", k=1)


def test_box_prediction_validation():
    ok = hand_pred()
    kw = {f: getattr(ok, f) for f in ("labels", "u", "v", "mask_prob", "chart_conf", "sigma")}
    with pytest.raises(ValueError, match=r"sigma has shape \(5, 5\); expected the labels' shape \(5, 6\)"):
        BoxPrediction(**{**kw, "sigma": kw["sigma"][:, :5]})
    bad = kw["labels"].copy()
    bad[2, 3] = 25
    with pytest.raises(ValueError, match=r"labels\[2, 3\] = 25 is not a chart 0..24"):
        BoxPrediction(**{**kw, "labels": bad})
    s = kw["sigma"].copy()
    s[1, 2] = 0.0
    with pytest.raises(ValueError, match=r"sigma\[1, 2\] = 0 is not > 0"):
        BoxPrediction(**{**kw, "sigma": s})
    m = kw["mask_prob"].copy()
    m[0, 0] = 1.5
    with pytest.raises(ValueError, match=r"mask_prob\[0, 0\] = 1.5 is outside \[0, 1\]"):
        BoxPrediction(**{**kw, "mask_prob": m})
    u = kw["u"].copy()
    u[4, 5] = np.nan
    with pytest.raises(ValueError, match=r"u\[4, 5\] = nan is not finite"):
        BoxPrediction(**{**kw, "u": u})
    with pytest.raises(ValueError, match="non-empty"):
        BoxPrediction(**{k: v[:0] for k, v in kw.items()})
    assert not ok.sigma.flags.writeable and not ok.labels.flags.writeable


# ----------------------------------------------------------------------------- from the model's output
def _random_output(S=14, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(c, scale=1.0):
        return torch.randn(1, c, S, S, generator=g) * scale

    return DensePoseOutput(coarse_segm=r(2, 3.0), fine_segm=r(25, 3.0), u=0.5 + r(25, 0.4), v=0.5 + r(25, 0.4),
                           sigma_u=0.05 + r(25).abs(), sigma_v=0.05 + r(25).abs(), alpha=0.5 + r(1).abs(),
                           alpha_coarse=0.5 + r(1).abs())


def test_box_prediction_matches_the_evaluators_chart_result():
    from densemap_models.evaluate import chart_result

    out = _random_output()
    box = [3.2, 7.9, 40.0, 31.5]  # int size 36 x 23
    pred = box_prediction(out, box)
    ref = chart_result(out, box)
    assert pred.shape == (23, 36) == ref["iuv"].shape[1:]
    np.testing.assert_array_equal(pred.labels, ref["iuv"][0])
    fg = pred.foreground
    assert 0 < fg.sum() < fg.size
    # chart_result quantises U, V to uint8 (truncation): within one step
    for c, a in ((1, pred.u), (2, pred.v)):
        d = np.clip(a[fg], 0, 1) * 255 - ref["iuv"][c][fg]
        assert d.min() >= -1e-3 and d.max() < 1 + 1e-3
    np.testing.assert_allclose(pred.chart_conf[fg], ref["conf"][fg], atol=1e-6)
    np.testing.assert_allclose(pred.mask_prob, ref["fg_conf"], atol=1e-6)
    np.testing.assert_allclose(pred.sigma, np.sqrt((ref["sigma"] ** 2).mean(0)), rtol=1e-5)
    assert np.all(pred.mask_prob[fg] >= 0.5)  # foreground = coarse argmax > 0


# ----------------------------------------------------------------------------- annotations and files
H, W = 40, 50


def _detections():
    pred = hand_pred()  # 5 x 6 box
    empty = BoxPrediction(labels=np.zeros((4, 4), np.int64), u=np.zeros((4, 4)), v=np.zeros((4, 4)),
                          mask_prob=np.full((4, 4), 0.2), chart_conf=np.full((4, 4), 0.3), sigma=np.full((4, 4), 0.1))
    return [
        Detection(box=np.array([10.0, 20.0, 16.7, 25.4]), score=0.95, pred=pred),  # int box 6 x 5 at (10, 20)
        Detection(box=np.array([30.0, 5.0, 36.0, 10.0]), score=0.5, pred=pred),  # below the score
        Detection(box=np.array([1.0, 1.0, 5.0, 5.0]), score=0.99, pred=empty),  # no foreground: dropped
    ]


def test_pseudo_annotations_fields_points_and_filters():
    anns = pseudo_annotations(_detections(), 7, height=H, width=W, strategy="uv", k=4, score_min=0.8, first_id=11)
    assert len(anns) == 1
    a = anns[0]
    pred = hand_pred()
    assert a["id"] == 11 and a["image_id"] == 7 and a["iscrowd"] == 0 and a["pseudo"] is True
    assert a["bbox"] == [10.0, 20.0, 6.0, 5.0] and a["score"] == 0.95
    assert isinstance(a["segmentation"]["counts"], str) and a["area"] == pred.foreground.sum()
    # points: the 4 smallest sigmas, at pixel centres, with the predicted chart
    exp = _expected_topk(pred, "sigma", False, 4)
    cols = np.floor(np.asarray(a["dp_x"]) * 6 / 256).astype(int)
    rows = np.floor(np.asarray(a["dp_y"]) * 5 / 256).astype(int)
    assert list(zip(rows.tolist(), cols.tolist())) == exp
    np.testing.assert_allclose(a["dp_x"], (cols + 0.5) / 6 * 256, atol=1e-6)
    np.testing.assert_allclose(a["dp_y"], (rows + 0.5) / 5 * 256, atol=1e-6)
    assert a["dp_I"] == [float(pred.labels[r, c]) for r, c in exp]
    np.testing.assert_allclose(a["dp_confidence"], [pred.sigma[r, c] for r, c in exp], atol=1e-6)
    assert len(a["dp_masks"]) == 14


def test_dp_points_land_in_the_foreground_with_the_predicted_label_and_clamped_uv():
    pred = hand_pred()
    for strategy in STRATEGIES:
        (a,) = pseudo_annotations(_detections()[:1], 1, height=H, width=W, strategy=strategy, k=1000, seed=5)
        assert len(a["dp_x"]) == pred.foreground.sum()
        cols = np.floor(np.asarray(a["dp_x"]) * 6 / 256).astype(int)
        rows = np.floor(np.asarray(a["dp_y"]) * 5 / 256).astype(int)
        assert pred.foreground[rows, cols].all()
        np.testing.assert_array_equal(a["dp_I"], pred.labels[rows, cols])
        assert min(a["dp_U"] + a["dp_V"]) >= 0 and max(a["dp_U"] + a["dp_V"]) <= 1
        np.testing.assert_allclose(a["dp_U"], np.clip(pred.u[rows, cols], 0, 1), atol=1e-6)
        assert 0.0 in a["dp_U"] and 1.0 in a["dp_V"]  # the clamped pixels
        chk = check_annotation(a, n_vertices=None)
        assert chk.error is None and not any(chk.reasons)


def test_k0_keeps_boxes_and_masks_without_points():
    (a,) = pseudo_annotations(_detections(), 1, height=H, width=W, strategy="I", k=0)
    assert "dp_x" not in a and "dp_I" not in a and a["dp_masks"] and a["segmentation"]


def test_dp_masks_are_the_coarse_parts_of_the_labels_on_the_box_grid():
    from densemap.annotation.coco import COARSE_OF_CHART
    from pycocotools import mask as mask_utils

    lab = hand_pred().labels
    masks = coarse_box_masks(lab)
    grid = np.zeros((256, 256), np.int64)
    for k, m in enumerate(masks, 1):
        if m:
            grid[mask_utils.decode(dict(m, counts=m["counts"].encode())).astype(bool)] = k
    # cell (i, j) shows the box pixel under its centre
    i, j = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    ref = COARSE_OF_CHART[lab[(2 * i + 1) * 5 // 512, (2 * j + 1) * 6 // 512]]
    np.testing.assert_array_equal(grid, ref)
    present = set(np.unique(ref)) - {0}
    assert [bool(m) for m in masks] == [k in present for k in range(1, 15)]


def _write_images(folder, n, size=(H, W)):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((*size, 3), 60 + 40 * i, np.uint8)).save(folder / f"im{i}.png")


def test_written_file_round_trips_through_pycocotools_and_the_validator(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools import mask as mask_utils

    full = np.zeros((H, W), np.uint8)
    full[18:27, 8:18] = 1  # a Mask R-CNN mask that differs from the DensePose foreground
    rle = mask_utils.encode(np.asfortranarray(full))
    dets = _detections()
    dets[0].mask = {"size": rle["size"], "counts": rle["counts"].decode()}
    preds = [ImagePredictions("im0.png", W, H, dets), ImagePredictions("im1.png", W, H, [_detections()[0]])]
    data = pseudo_coco(preds, strategy="mask", k=3, score_min=0.8, seed=1)
    assert data["info"]["counts"] == {"images": 2, "detections": 4, "kept": 2, "ignored": 0, "points": 6,
                                      "dropped": {"score < 0.8": 1, "no foreground predicted": 1}}
    assert data["info"]["dp_confidence"] == {"channel": "mask_prob", "higher_is_more_confident": True}
    path = write_pseudo_coco(data["images"], data["annotations"], tmp_path / "sub" / "pseudo.json", info=data["info"])
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    back = read_coco(path)
    assert back["annotations"] == json.loads(json.dumps(data["annotations"]))
    coco = COCO(str(path))
    a0, a1 = coco.loadAnns(coco.getAnnIds(imgIds=[1]))[0], coco.loadAnns(coco.getAnnIds(imgIds=[2]))[0]
    np.testing.assert_array_equal(coco.annToMask(a0), full)  # the given instance mask
    # no instance mask: the DensePose foreground pasted at the box (integer corner -> exact)
    exp = np.zeros((H, W), np.uint8)
    exp[20:25, 10:16] = hand_pred().foreground
    np.testing.assert_array_equal(coco.annToMask(a1), exp)
    assert a1["area"] == exp.sum()
    for a in back["annotations"]:
        chk = check_annotation(a, n_vertices=None)
        assert chk.error is None and not any(chk.reasons)


def test_no_detection_above_the_score_gives_an_empty_valid_file(tmp_path):
    from pycocotools.coco import COCO

    preds = [ImagePredictions("im0.png", W, H, _detections()[1:2])]
    data = pseudo_coco(preds, strategy="I", k=5, score_min=0.8)
    assert data["annotations"] == [] and len(data["images"]) == 1
    path = write_pseudo_coco(data["images"], data["annotations"], tmp_path / "p.json", info=data["info"])
    coco = COCO(str(path))
    assert coco.getAnnIds() == [] and coco.getImgIds() == [1]
    assert read_coco(path)["info"]["counts"]["kept"] == 0


def test_writer_refuses_invalid_annotations(tmp_path):
    (a,) = pseudo_annotations(_detections(), 1, height=H, width=W, strategy="I", k=2)
    images = [{"id": 1, "file_name": "im0.png", "width": W, "height": H}]
    bad = dict(a, dp_I=[0.0, 3.0])
    with pytest.raises(AnnotationError, match=r"annotations\[0\] \(id 1\): dp_I = 0 is not a chart id in 1..24"):
        write_pseudo_coco(images, [bad], tmp_path / "p.json")
    with pytest.raises(AnnotationError, match="refers to image 2, not in 'images'"):
        write_pseudo_coco(images, [dict(a, image_id=2)], tmp_path / "p.json")
    with pytest.raises(AnnotationError, match=r"annotations\[1\] repeats id 1"):
        write_pseudo_coco(images, [a, a], tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()


def test_the_training_loader_reads_the_points_on_the_sampled_pixels(tmp_path):
    from densemap_models.datasets import DensePoseDataset

    _write_images(tmp_path / "images", 1)
    data = pseudo_coco([ImagePredictions("im0.png", W, H, _detections())], strategy="uv", k=5)
    path = write_pseudo_coco(data["images"], data["annotations"], tmp_path / "p.json", info=data["info"])
    ds = DensePoseDataset(path, tmp_path / "images", train=False)
    t = ds.target(0, H, W)
    assert t["boxes"].tolist() == [[10.0, 20.0, 16.0, 25.0]]
    p = t["dp_points"].numpy()
    assert len(p) == 5
    x = 10.0 + p[:, 1] * 6  # image coordinates of the points (training convention /256)
    y = 20.0 + p[:, 2] * 5
    np.testing.assert_allclose(x % 1, 0.5, atol=1e-4)  # pixel centres
    pred = hand_pred()
    np.testing.assert_array_equal(p[:, 3], pred.labels[(y - 20).astype(int), (x - 10).astype(int)])
    assert t["dp_mask_valid"].all() and t["dp_box_masks"].sum() > 0


# ----------------------------------------------------------------------------- the teacher loop
class FakeTeacher(torch.nn.Module):
    """Returns fixed detections: scores 0.9, 0.3, 0.85 (out of order)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def forward(self, images):
        (x,) = images
        self.seen.append(tuple(x.shape))
        _, h, w = x.shape
        boxes = torch.tensor([[2.0, 3.0, 20.0, 30.0], [0.0, 0.0, 10.0, 10.0], [25.0, 5.0, 45.0, 35.0]])
        masks = torch.zeros(3, 1, h, w)
        masks[:, :, 5:25, 5:15] = 0.8
        outs = [_random_output(seed=s) for s in range(3)]
        return [{"boxes": boxes, "scores": torch.tensor([0.9, 0.3, 0.85]), "labels": torch.ones(3, dtype=torch.int64),
                 "masks": masks, "densepose": DensePoseOutput.cat(outs)}]


def test_teacher_loop_filters_orders_and_names(tmp_path):
    _write_images(tmp_path / "imgs", 2)
    paths = sorted((tmp_path / "imgs").glob("*.png"))
    model = FakeTeacher()
    preds = list(iter_teacher_predictions(model, paths, root=tmp_path, score_min=0.8))
    assert model.seen == [(3, H, W)] * 2 and not model.training
    assert [p.file_name for p in preds] == ["imgs/im0.png", "imgs/im1.png"]
    d = preds[0].detections
    assert [x.score for x in d] == pytest.approx([0.9, 0.85])  # low score dropped, best first
    assert d[0].pred.shape == (27, 18) and d[1].pred.shape == (30, 20)
    ref = box_prediction(_random_output(seed=2), [25.0, 5.0, 45.0, 35.0])
    np.testing.assert_array_equal(d[1].pred.labels, ref.labels)
    assert isinstance(d[0].mask["counts"], str)


def test_pseudo_label_end_to_end_with_a_fake_teacher(tmp_path):
    from densemap_models.pseudo_labels import pseudo_label

    _write_images(tmp_path / "imgs", 2)
    paths = sorted((tmp_path / "imgs").glob("*.png"))
    out = tmp_path / "pseudo.json"
    data = pseudo_label(FakeTeacher(), paths, strategy="I", k=3, score_min=0.8, seed=0, out=out)
    back = read_coco(out)
    assert back["info"]["counts"]["kept"] == 4 and len(back["annotations"]) == 4
    assert all(len(a["dp_x"]) == 3 for a in back["annotations"])
    assert [im["file_name"] for im in back["images"]] == ["im0.png", "im1.png"]
    assert data["annotations"] == back["annotations"]
    from densemap_models.pseudo_labels import PseudoLabelError

    with pytest.raises(PseudoLabelError, match=r"from 2 images and 6 detections \(6 score < 0.95\)"):
        pseudo_label(FakeTeacher(), paths, strategy="I", k=3, score_min=0.95)
    data2 = pseudo_label(FakeTeacher(), paths, strategy="I", k=3, score_min=0.95, allow_empty=True)
    # detections are counted before the score filter, and why each was dropped
    assert data2["annotations"] == [] and data2["info"]["counts"]["detections"] == 6
    assert data2["info"]["counts"]["dropped"] == {"score < 0.95": 6}


# ----------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from test_models import SMALL

    from densemap_models.config import Config
    from densemap_models.rcnn import build_model

    torch.manual_seed(0)
    cfg = Config(**{**SMALL, "box_detections_per_img": 3, "box_score_thresh": 0.0})
    path = tmp_path_factory.mktemp("ckpt") / "teacher.pt"
    torch.save({"model": build_model(cfg).state_dict(), "config": cfg.to_dict()}, path)
    return path


def test_cli_pseudo_label_on_a_random_checkpoint(tmp_path, tiny_checkpoint):
    from click.testing import CliRunner

    from densemap.cli.main import main

    torch.set_num_threads(2)
    _write_images(tmp_path / "imgs", 2, size=(64, 80))
    out = tmp_path / "p.json"
    r = CliRunner().invoke(main, ["pseudo-label", "--ckpt", str(tiny_checkpoint), "--images", str(tmp_path / "imgs"),
                                  "-o", str(out), "--strategy", "uv", "--k", "4", "--score-min", "0", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    data = read_coco(out)
    assert data["info"]["strategy"] == "uv" and data["info"]["teacher"] == str(tiny_checkpoint)
    assert len(data["images"]) == 2 and data["info"]["counts"]["detections"] == 6
    for a in data["annotations"]:
        assert 1 <= len(a["dp_x"]) <= 4 and a["pseudo"]
        assert check_annotation(a, n_vertices=None).error is None
    assert "detections kept" in r.output
    # a random teacher scores ~0.5: nothing passes the default 0.8 -> an error that says why...
    args = ["pseudo-label", "--ckpt", str(tiny_checkpoint), "--images", str(tmp_path / "imgs"), "-o",
            str(tmp_path / "empty.json"), "--strategy", "I", "--k", "5", "--device", "cpu"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1 and "no pseudo-label kept from 2 images and 6 detections (6 score < 0.8)" in r.output
    assert not (tmp_path / "empty.json").exists()
    # ... or, asked for, an empty valid file
    r = CliRunner().invoke(main, args + ["--allow-empty"])
    assert r.exit_code == 0, r.output
    data = read_coco(tmp_path / "empty.json")
    assert data["annotations"] == [] and len(data["images"]) == 2 and "dropped: 6 score < 0.8" in r.output


def test_cli_pseudo_label_errors(tmp_path, tiny_checkpoint):
    from click.testing import CliRunner

    from densemap.cli.main import main

    (tmp_path / "empty").mkdir()
    base = ["pseudo-label", "--ckpt", str(tiny_checkpoint), "-o", str(tmp_path / "p.json"), "--device", "cpu"]
    r = CliRunner().invoke(main, base + ["--images", str(tmp_path / "empty"), "--strategy", "I", "--k", "1"])
    assert r.exit_code != 0 and "no images" in r.output
    r = CliRunner().invoke(main, base + ["--images", str(tmp_path / "empty"), "--strategy", "sigma", "--k", "1"])
    assert r.exit_code != 0 and "'sigma' is not one of" in r.output
    r = CliRunner().invoke(main, base + ["--images", str(tmp_path / "empty"), "--strategy", "I", "--k", "-1"])
    assert r.exit_code != 0 and "--k" in r.output
    r = CliRunner().invoke(main, base + ["--images", str(tmp_path / "empty"), "--strategy", "I", "--k", "1",
                                         "--ignore-min", "0.9"])
    assert r.exit_code != 0 and "--ignore-min" in r.output and "0.9 is above --score-min 0.8" in r.output
    (tmp_path / "junk.pt").write_text("nope")
    _write_images(tmp_path / "imgs", 1)
    r = CliRunner().invoke(main, ["pseudo-label", "--ckpt", str(tmp_path / "junk.pt"), "--images", str(tmp_path / "imgs"),
                                  "-o", str(tmp_path / "p.json"), "--strategy", "I", "--k", "1", "--device", "cpu"])
    assert r.exit_code != 0 and "cannot read the checkpoint" in r.output


def test_pseudo_images_join_the_training_set_from_their_own_folder(tmp_path):
    """`densemap train --pseudo`: the teacher's images are added, read from the folder the file records."""
    from densemap_models.datasets import DensePoseDataset

    _write_images(tmp_path / "human", 1)
    _write_images(tmp_path / "chimp", 2)
    gt = pseudo_coco([ImagePredictions("im0.png", W, H, _detections())], strategy="uniform", k=3, seed=0)
    gt_path = write_pseudo_coco(gt["images"], gt["annotations"], tmp_path / "gt.json", info=gt["info"])
    ps = pseudo_coco([ImagePredictions(f"im{i}.png", W, H, _detections()) for i in range(2)], strategy="uv", k=4,
                     info={"image_root": str(tmp_path / "chimp")})
    ps_path = write_pseudo_coco(ps["images"], ps["annotations"], tmp_path / "sub" / "pseudo.json", info=ps["info"])
    ds = DensePoseDataset(gt_path, tmp_path / "human", train=False, pseudo=[(ps_path, None)])
    assert len(ds) == 3
    assert ds.load_image(1).shape == (H, W, 3)  # found under chimp/, not human/
    t = ds.target(2, H, W)
    assert len(t["dp_points"]) == 4 * len(ps["annotations"]) // 2
    # an explicit folder overrides the recorded one
    (tmp_path / "chimp").rename(tmp_path / "moved")
    ds = DensePoseDataset(gt_path, tmp_path / "human", train=False, pseudo=[(ps_path, tmp_path / "moved")])
    assert ds.load_image(2).shape == (H, W, 3)


def test_every_drop_is_counted_and_an_empty_result_is_an_error(tmp_path):
    from collections import Counter

    from densemap_models.pseudo_coco import Detection, pseudo_annotations
    from densemap_models.pseudo_labels import PseudoLabelError, pseudo_label

    dets = _detections()
    low = Detection(box=dets[0].box, score=0.3, pred=dets[0].pred, mask=dets[0].mask)
    labels = np.zeros_like(dets[0].pred.labels)
    empty_pred = BoxPrediction(labels=labels, u=dets[0].pred.u, v=dets[0].pred.v, mask_prob=dets[0].pred.mask_prob,
                               chart_conf=dets[0].pred.chart_conf, sigma=dets[0].pred.sigma)
    empty = Detection(box=dets[0].box, score=0.99, pred=empty_pred, mask=None)
    drops = Counter()
    fg = int(dets[0].pred.foreground.sum())
    anns = pseudo_annotations([low, empty, dets[0]], 1, height=H, width=W, strategy="I", k=fg + 7, score_min=0.5,
                              drops=drops)
    assert len(anns) == 1 and len(anns[0]["dp_x"]) == fg
    assert drops == {"score < 0.5": 1, "no foreground predicted": 1, "points short: foreground under k pixels": 7}

    class NoDetections(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, images):
            return [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "masks": torch.zeros(0, 1, H, W),
                     "densepose": None} for _ in images]

    _write_images(tmp_path / "imgs", 2)
    paths = sorted((tmp_path / "imgs").glob("*.png"))
    with pytest.raises(PseudoLabelError, match=r"no pseudo-label kept from 2 images and 0 detections"):
        pseudo_label(NoDetections(), paths, strategy="uv", k=3, out=tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()
    data = pseudo_label(NoDetections(), paths, strategy="uv", k=3, out=tmp_path / "p.json", allow_empty=True)
    assert data["info"]["counts"]["detections"] == 0 and (tmp_path / "p.json").is_file()
    # a student refuses a pseudo-label file without points
    from densemap_models.datasets import DensePoseDataset

    gt = pseudo_coco([ImagePredictions("im0.png", W, H, _detections())], strategy="uniform", k=3, seed=0)
    gt_path = write_pseudo_coco(gt["images"], gt["annotations"], tmp_path / "gt.json", info=gt["info"])
    with pytest.raises(AnnotationError, match="holds no pseudo-labelled detection"):
        DensePoseDataset(gt_path, tmp_path / "imgs", pseudo=[(tmp_path / "p.json", tmp_path / "imgs")])


def test_uncertain_detections_become_ignore_regions_that_a_student_does_not_train_as_background(tmp_path):
    from densemap_models.datasets import DensePoseDataset

    dets = _detections() + [Detection(box=np.array([2.0, 30.0, 9.0, 38.0]), score=0.2, pred=hand_pred())]
    # 0.95 kept; 0.5 in [0.3, 0.8): an ignore region; 0.2 dropped; no foreground: dropped
    data = pseudo_coco([ImagePredictions("im0.png", W, H, dets)], strategy="I", k=2, score_min=0.8, ignore_min=0.3,
                       info={"image_root": str(tmp_path / "chimp")})
    c = data["info"]["counts"]
    assert (c["detections"], c["kept"], c["ignored"], c["points"]) == (4, 1, 1, 2)
    assert c["dropped"] == {"score in [0.3, 0.8): kept as an ignore region": 1, "score < 0.3": 1,
                            "no foreground predicted": 1}
    assert data["info"]["ignore_min"] == 0.3
    kept, region = data["annotations"]
    assert kept["iscrowd"] == 0 and len(kept["dp_x"]) == 2
    assert region == {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [30.0, 5.0, 6.0, 5.0],
                      "area": 30.0, "score": 0.5, "pseudo": True}
    _write_images(tmp_path / "chimp", 1)
    path = write_pseudo_coco(data["images"], data["annotations"], tmp_path / "p.json", info=data["info"])
    ds = DensePoseDataset(path, tmp_path / "chimp", train=False)
    t = ds.target(0, H, W)
    assert t["boxes"].tolist() == [[10.0, 20.0, 16.0, 25.0]] and t["ignore_boxes"].tolist() == [[30.0, 5.0, 36.0, 10.0]]
    # without ignore_min the same detection is simply dropped, as before
    plain = pseudo_coco([ImagePredictions("im0.png", W, H, dets)], strategy="I", k=2, score_min=0.8)
    assert [a["iscrowd"] for a in plain["annotations"]] == [0]
    assert plain["info"]["counts"]["dropped"]["score < 0.8"] == 2
    with pytest.raises(ValueError, match="ignore_min must lie in"):
        pseudo_coco([ImagePredictions("im0.png", W, H, dets)], strategy="I", k=2, score_min=0.5, ignore_min=0.6)
    # a file of ignore regions only has nothing to train on
    only = pseudo_coco([ImagePredictions("im0.png", W, H, dets[1:2])], strategy="I", k=2, ignore_min=0.3)
    p2 = write_pseudo_coco(only["images"], only["annotations"], tmp_path / "p2.json", info=only["info"])
    with pytest.raises(AnnotationError, match="no pseudo-labelled detection"):
        DensePoseDataset(path, tmp_path / "chimp", train=False, pseudo=[(p2, None)])
