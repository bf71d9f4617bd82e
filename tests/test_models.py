"""DensePose R-CNN: forward/backward on small images, heads, config, dataset and flips."""

import json

import numpy as np
import pytest
import torch

from densemap_models.config import Config, ConfigError, apply_overrides, load_config, save_config
from densemap_models.heads import DensePoseDeepLabHead
from densemap_models.rcnn import build_model

SMALL = dict(backbone="resnet18", box_head_dim=64, mask_head_convs=1, mask_head_channels=32, head_convs=2,
             head_channels=32, heatmap_size=56, min_size=96, max_size=128, rpn_batch_size_per_image=32,
             box_batch_size_per_image=32, dp_max_rois_per_image=8, uv_weight=0.01)


def _target(n, H, W):
    boxes = torch.tensor([[10.0, 12.0, 70.0, 90.0], [40.0, 5.0, 90.0, 60.0]])[:n]
    masks = torch.zeros(n, H, W, dtype=torch.uint8)
    for k, b in enumerate(boxes.long().tolist()):
        masks[k, b[1] : b[3], b[0] : b[2]] = 1
    bm = torch.zeros(n, 256, 256, dtype=torch.uint8)
    bm[:, 20:240, 30:220] = 1
    pts = torch.tensor([[0, 0.5, 0.5, 3, 0.2, 0.7], [0, 0.3, 0.6, 24, 0.9, 0.1], [1, 0.4, 0.2, 1, 0.5, 0.5]])
    pts = pts[pts[:, 0] < n]
    return {"boxes": boxes.reshape(-1, 4), "labels": torch.ones(n, dtype=torch.int64), "masks": masks,
            "dp_box_masks": bm, "dp_mask_valid": torch.ones(n, dtype=torch.bool), "dp_points": pts.reshape(-1, 6)}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(Config(**SMALL))


def test_forward_backward_non_empty_and_empty(model):
    torch.set_num_threads(1)
    model.train()
    imgs = [torch.rand(3, 96, 128, generator=torch.Generator().manual_seed(1)), torch.rand(3, 64, 96)]
    # a proposal-free guarantee for DensePose: feed the GT boxes as proposals-equivalent by high IoU
    model.roi_heads.dp_fg_iou = 0.0
    losses = model(imgs, [_target(2, 96, 128), _target(0, 64, 96)])
    expected = {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg",
                "loss_densepose_S", "loss_densepose_I", "loss_densepose_UV"}
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_densepose_I"].item() > 0 and losses["loss_densepose_S"].item() > 0
    model.zero_grad()
    sum(losses.values()).backward()
    g = model.roi_heads.densepose_predictor.deconv.weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0

    # all targets empty: DensePose and mask losses are exactly zero but still differentiable
    losses = model(imgs, [_target(0, 96, 128), _target(0, 64, 96)])
    for k in ("loss_densepose_S", "loss_densepose_I", "loss_densepose_UV", "loss_mask", "loss_box_reg"):
        assert losses[k].item() == 0.0 and losses[k].requires_grad, k
    model.zero_grad()
    sum(losses.values()).backward()
    g = model.roi_heads.densepose_predictor.deconv.weight.grad
    assert g is not None and torch.all(g == 0)
    model.roi_heads.dp_fg_iou = 0.7


def _check_detections(r, config, height, width):
    """Shapes and ranges of one eval-mode result with at least one detection."""
    n = len(r["boxes"])
    assert 0 < n <= config.box_detections_per_img
    assert r["boxes"].shape == (n, 4) and r["labels"].tolist() == [1] * n
    b = r["boxes"]
    assert (b[:, 0] >= 0).all() and (b[:, 2] <= width).all() and (b[:, 1] >= 0).all() and (b[:, 3] <= height).all()
    assert (b[:, 2] >= b[:, 0]).all() and (b[:, 3] >= b[:, 1]).all()
    s = r["scores"]
    assert ((s >= 0) & (s <= 1)).all() and torch.all(s[:-1] >= s[1:])  # by decreasing score
    assert r["masks"].shape == (n, 1, height, width)
    dp = r["densepose"]
    S = config.heatmap_size
    assert len(dp) == n
    for name, c in (("coarse_segm", 2), ("fine_segm", 25), ("u", 25), ("v", 25), ("sigma_u", 25), ("sigma_v", 25),
                    ("alpha", 1), ("alpha_coarse", 1)):
        t = getattr(dp, name)
        assert t.shape == (n, c, S, S) and torch.isfinite(t).all(), name
    assert dp.sigma_u.min() >= config.sigma_min - 1e-6 and dp.sigma_v.min() >= config.sigma_min - 1e-6
    assert dp.alpha.min() >= config.alpha_min - 1e-6 and dp.alpha_coarse.min() >= config.alpha_min - 1e-6
    p = dp.fine_probs()
    assert torch.allclose(p.sum(1), torch.ones_like(p[:, 0]), atol=1e-5)


def test_inference_outputs(model):
    model.eval()
    thresh = model.roi_heads.score_thresh
    model.roi_heads.score_thresh = 0.0  # an untrained model: keep every detection
    try:
        with torch.no_grad():
            out = model([torch.rand(3, 80, 100, generator=torch.Generator().manual_seed(2))])
    finally:
        model.roi_heads.score_thresh = thresh
    assert len(out) == 1 and {"boxes", "scores", "labels", "masks", "densepose"} <= set(out[0])
    _check_detections(out[0], model.config, 80, 100)


def test_config_thresholds_reach_the_detector():
    import inspect

    from torchvision.models.detection import MaskRCNN

    # the defaults are torchvision's MaskRCNN defaults
    tv = {k: v.default for k, v in inspect.signature(MaskRCNN.__init__).parameters.items()}
    c = Config()
    for name in ("rpn_fg_iou_thresh", "rpn_bg_iou_thresh", "rpn_batch_size_per_image", "rpn_positive_fraction",
                 "rpn_pre_nms_top_n_train", "rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_train",
                 "rpn_post_nms_top_n_test", "rpn_nms_thresh", "rpn_score_thresh", "box_fg_iou_thresh",
                 "box_bg_iou_thresh", "box_batch_size_per_image", "box_positive_fraction", "box_score_thresh",
                 "box_nms_thresh", "box_detections_per_img", "min_size", "max_size"):
        assert getattr(c, name) == tv[name], name
    assert tv["bbox_reg_weights"] is None and c.box_reg_weights == (10.0, 10.0, 5.0, 5.0)  # RoIHeads' default
    # and every one is used
    cfg = Config(**{**SMALL, "rpn_fg_iou_thresh": 0.65, "rpn_bg_iou_thresh": 0.25, "rpn_positive_fraction": 0.4,
                    "rpn_pre_nms_top_n_train": 300, "rpn_pre_nms_top_n_test": 200, "rpn_post_nms_top_n_train": 150,
                    "rpn_post_nms_top_n_test": 100, "rpn_nms_thresh": 0.6, "rpn_score_thresh": 0.01,
                    "box_fg_iou_thresh": 0.55, "box_bg_iou_thresh": 0.45, "box_positive_fraction": 0.3,
                    "box_reg_weights": [8, 8, 4, 4], "box_score_thresh": 0.1, "box_nms_thresh": 0.4,
                    "box_detections_per_img": 7})
    m = build_model(cfg)
    rpn, rh = m.rpn, m.roi_heads
    assert (rpn.proposal_matcher.high_threshold, rpn.proposal_matcher.low_threshold) == (0.65, 0.25)
    assert rpn.proposal_matcher.allow_low_quality_matches and not rh.proposal_matcher.allow_low_quality_matches
    assert (rpn.fg_bg_sampler.batch_size_per_image, rpn.fg_bg_sampler.positive_fraction) == (32, 0.4)
    assert rpn._pre_nms_top_n == {"training": 300, "testing": 200}
    assert rpn._post_nms_top_n == {"training": 150, "testing": 100}
    assert (rpn.nms_thresh, rpn.score_thresh) == (0.6, 0.01)
    assert (rh.proposal_matcher.high_threshold, rh.proposal_matcher.low_threshold) == (0.55, 0.45)
    assert (rh.fg_bg_sampler.batch_size_per_image, rh.fg_bg_sampler.positive_fraction) == (32, 0.3)
    assert rh.box_coder.weights == (8.0, 8.0, 4.0, 4.0)
    assert (rh.score_thresh, rh.nms_thresh, rh.detections_per_img) == (0.1, 0.4, 7)
    assert (m.transform.min_size, m.transform.max_size) == ((96,), 128)
    with pytest.raises(ConfigError, match="box_reg_weights must be 4 numbers"):
        Config(box_reg_weights=(1.0, 1.0))


def test_state_dict_keys_are_torchvision_mask_rcnn_names(model):
    from torchvision.models.detection import MaskRCNN

    rh = model.roi_heads
    tv = MaskRCNN(model.backbone, num_classes=None, rpn_anchor_generator=model.rpn.anchor_generator,
                  box_roi_pool=rh.box_roi_pool, box_head=rh.box_head, box_predictor=rh.box_predictor,
                  mask_roi_pool=rh.mask_roi_pool, mask_head=rh.mask_head, mask_predictor=rh.mask_predictor)
    ours = {k: v.shape for k, v in model.state_dict().items() if not k.startswith("roi_heads.densepose_")}
    assert ours == {k: v.shape for k, v in tv.state_dict().items()}
    assert any(k.startswith("roi_heads.densepose_predictor.") for k in model.state_dict())


def test_deeplab_head_shapes():
    head = DensePoseDeepLabHead(32, n_convs=2, channels=32)
    y = head(torch.randn(3, 32, 28, 28))
    assert y.shape == (3, 32, 28, 28)


@pytest.mark.slow
def test_deeplab_model_outputs():
    torch.manual_seed(0)
    cfg = Config(**{**SMALL, "head": "deeplab", "box_score_thresh": 0.0, "box_detections_per_img": 5})
    m = build_model(cfg)
    assert isinstance(m.roi_heads.densepose_head, DensePoseDeepLabHead)
    m.eval()
    with torch.no_grad():
        out = m([torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1)), torch.rand(3, 48, 80)])
    assert len(out) == 2
    _check_detections(out[0], cfg, 64, 64)
    _check_detections(out[1], cfg, 48, 80)
    assert len(out[0]["boxes"]) == 5  # score threshold 0: the cap is reached


@pytest.mark.slow
def test_mobilenet_backbone_builds():
    m = build_model(Config(**{**SMALL, "backbone": "mobilenet_v3"}))
    m.train()
    losses = m([torch.rand(3, 96, 96)], [_target(1, 96, 96)])
    assert all(torch.isfinite(v) for v in losses.values())


def test_backbone_weights_file(tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(3)
    sd = resnet18(weights=None).state_dict()
    path = tmp_path / "r18.pth"
    torch.save(sd, path)
    m = build_model(Config(**{**SMALL, "backbone_weights": str(path)}))
    assert torch.equal(m.backbone.body.conv1.weight, sd["conv1.weight"])
    assert m.config.resolved_norm == "frozen_bn"
    torch.save({"nothing": torch.zeros(1)}, path)
    from densemap.errors import DensemapError

    with pytest.raises(DensemapError, match="no parameter matches"):
        build_model(Config(**{**SMALL, "backbone_weights": str(path)}))


def test_config_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("backbone: resnet18\nlr: 1\nlr_steps: [0.5]\n")
    c = load_config(p, ["max_iter=7", "amp=false", "classes=[person, 5]"])
    assert c.backbone == "resnet18" and c.lr == 1.0 and isinstance(c.lr, float)
    assert c.max_iter == 7 and c.amp is False and c.classes == ("person", 5) and c.lr_steps == (0.5,)
    save_config(c, tmp_path / "out.yaml")
    assert load_config(tmp_path / "out.yaml") == c
    with pytest.raises(ConfigError, match="unknown config key 'lrr'"):
        apply_overrides(c, ["lrr=3"])
    with pytest.raises(ConfigError, match="must look like key=value"):
        apply_overrides(c, ["lr"])
    with pytest.raises(ConfigError, match="max_iter must be of type int"):
        apply_overrides(c, ["max_iter=abc"])
    with pytest.raises(ConfigError, match="unknown backbone 'vgg'"):
        apply_overrides(c, ["backbone=vgg"])
    with pytest.raises(ConfigError, match="sigma_min must be positive"):
        Config(sigma_min=0.0)
    with pytest.raises(AttributeError):
        c.lr = 3  # frozen


# ----------------------------------------------------------------------------- dataset and flips
def make_coco(tmp_path, n_images=2, size=96, seed=0, with_points=True):
    """Tiny COCO DensePose set: a bright rectangle per image, charts by position (learnable)."""
    from PIL import Image
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    (tmp_path / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n_images):
        img = np.full((size, size, 3), 30, np.uint8)
        x, y, w, h = 16 + 8 * i, 10, 40, 70
        img[y : y + h, x : x + w] = [200, 120, 60]
        img[y : y + h // 3, x : x + w] = [240, 200, 170]  # "head"
        Image.fromarray(img).save(tmp_path / "images" / f"{i:03d}.png")
        images.append({"id": i + 1, "file_name": f"{i:03d}.png", "width": size, "height": size})
        m = np.zeros((size, size), np.uint8)
        m[y : y + h, x : x + w] = 1
        seg = mask_utils.encode(np.asfortranarray(m))
        seg["counts"] = seg["counts"].decode("ascii")
        ann = {"id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "bbox": [x, y, w, h],
               "area": float(w * h), "segmentation": seg}
        if with_points:
            n = 60
            dx, dy = rng.random(n) * 256, rng.random(n) * 256
            I = np.where(dy < 256 / 3, 23, np.where(dx < 128, 2, 1))
            ann.update({"dp_x": dx.tolist(), "dp_y": dy.tolist(), "dp_I": I.astype(float).tolist(),
                        "dp_U": (dx / 256).tolist(), "dp_V": (dy / 256).tolist()})
        anns.append(ann)
    data = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    (tmp_path / "annotations.json").write_text(json.dumps(data))
    return tmp_path


def test_dataset_targets_and_flip(tmp_path):
    from densemap_models.datasets import DensePoseDataset, resolve_data
    from densemap_models.symmetry import POINT_FLIP

    js, root = resolve_data(make_coco(tmp_path))
    ds = DensePoseDataset(js, root, train=False)
    img, t = ds[0]
    assert img.shape == (3, 96, 96) and t["boxes"].tolist() == [[16.0, 10.0, 56.0, 80.0]]
    assert t["masks"].shape == (1, 96, 96) and t["dp_points"].shape == (60, 6)
    assert t["dp_box_masks"].float().mean() > 0.95  # the box grid of a box-filling mask
    raw = ds.load_image(0)
    fimg, ft = ds.flip(raw, t)
    np.testing.assert_array_equal(fimg, raw[:, ::-1])
    assert ft["boxes"].tolist() == [[40.0, 10.0, 80.0, 80.0]]
    np.testing.assert_allclose(ft["dp_points"][:, 1].numpy(), 1 - t["dp_points"][:, 1].numpy(), atol=1e-6)
    I0 = t["dp_points"][:, 3].long().numpy()
    I1 = ft["dp_points"][:, 3].long().numpy()
    assert (I1 == POINT_FLIP[I0]).mean() > 0.9  # the mesh mirror agrees with DensePose's table (seams aside)
    # flipping twice gives positions and charts back (U/V of these made-up points may lie off
    # their chart, where the mirror moves them to the chart first: see the next test for U/V)
    _, ft2 = ds.flip(fimg, ft)
    np.testing.assert_allclose(ft2["dp_points"][:, :3].numpy(), t["dp_points"][:, :3].numpy(), atol=1e-5)
    assert (ft2["dp_points"][:, 3] == t["dp_points"][:, 3]).float().mean() > 0.9


def test_dataset_classes_extra_files_and_errors(tmp_path):
    from densemap.errors import AnnotationError
    from densemap_models.datasets import DensePoseDataset, resolve_data

    root = make_coco(tmp_path, with_points=False)
    js, images = resolve_data(root)
    # extra annotations merged by file name; an unknown per-point field (dp_conf) is ignored
    extra = json.loads(js.read_text())
    for a in extra["annotations"]:
        a.update({"dp_x": [128.0], "dp_y": [128.0], "dp_I": [1.0], "dp_U": [0.5], "dp_V": [0.5], "dp_conf": [0.9]})
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    ds = DensePoseDataset([js, tmp_path / "extra.json"], images, train=False)
    assert len(ds.anns[1]) == 2 and ds[0][1]["dp_points"].shape == (1, 6)
    with pytest.raises(AnnotationError, match="none of the classes"):
        DensePoseDataset(js, images, classes=["zebra"])
    with pytest.raises(AnnotationError, match="no such dataset folder"):
        resolve_data(tmp_path / "missing")


def test_uv_symmetry_tables_match_the_exact_mirror(tmp_path, monkeypatch):
    from densemap_models.symmetry import UVSymmetry, default_uv_symmetry

    monkeypatch.setenv("DENSEMAP_CACHE", str(tmp_path))
    sym = default_uv_symmetry()
    rng = np.random.default_rng(0)
    faces = rng.integers(0, sym.atlas.n_faces, 50)
    bary = rng.dirichlet([1, 1, 1], 50)
    I, U, V = sym.atlas.chart_coords(faces, bary)  # points on their charts
    I2, U2, V2 = sym(I, U, V)
    I3, U3, V3 = sym(I2, U2, V2)
    np.testing.assert_array_equal(I3, I)
    np.testing.assert_allclose(U3, U, atol=1e-9)
    # a DensePose-style table (coarse here) read back through the table path
    Ut, Vt = sym.tables(resolution=16)
    tab = UVSymmetry(tables=(Ut, Vt))
    g = np.arange(16) / 15
    _, u_t, v_t = tab(np.full(4, 5), g[[0, 3, 7, 15]], g[[2, 2, 9, 15]])
    _, u_e, v_e = sym(np.full(4, 5), g[[0, 3, 7, 15]], g[[2, 2, 9, 15]])
    np.testing.assert_allclose(u_t, u_e, atol=1e-9)
    assert list(tmp_path.glob("uv_symmetry_*.npz"))


# ----------------------------------------------------------------------------- heads: zero RoIs, meta, attention
@pytest.mark.parametrize("kind", ["conv", "deeplab"])
@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_heads_and_predictor_shapes_with_zero_rois(kind, device):
    # every training batch without DensePose boxes and every image without a detection
    # sends zero RoIs through the head; the meta device checks shapes without any arithmetic
    from densemap_models.heads import DensePoseConvHead, DensePosePredictor

    torch.manual_seed(0)
    with torch.device(device):
        head = (DensePoseConvHead(32, n_convs=2, channels=24) if kind == "conv"
                else DensePoseDeepLabHead(32, n_convs=2, channels=24))
        pred = DensePosePredictor(24, roi_size=28, heatmap_size=56)
    for R in (0, 3):
        x = torch.randn(R, 32, 28, 28, device=device, requires_grad=device == "cpu")
        out = pred(head(x))
        assert len(out) == R
        for name, c in DensePosePredictor.LAYOUT:
            t = getattr(out, name)
            assert t.shape == (R, c, 56, 56) and t.device.type == device, name
        if device == "cpu":
            sum(getattr(out, n).sum() for n, _ in DensePosePredictor.LAYOUT).backward()
            assert x.grad.shape == x.shape and torch.isfinite(x.grad).all()


def test_predictor_biases_start_at_alpha_one_and_sigma_point_two():
    from densemap_models.heads import DensePosePredictor

    pred = DensePosePredictor(8, roi_size=4, heatmap_size=8, sigma_min=0.05, alpha_min=0.01)
    out = pred(torch.zeros(1, 8, 4, 4))  # zero features: the outputs are the biases
    assert torch.allclose(out.alpha, torch.ones(1, 1, 8, 8), atol=1e-6)
    assert torch.allclose(out.sigma_u, torch.full((1, 25, 8, 8), 0.25), atol=1e-6)


def test_nonlocal_block_is_scaled_float32_attention():
    import torch.nn.functional as F

    from densemap_models.heads import NonLocalBlock

    torch.manual_seed(0)
    block = NonLocalBlock(16)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(block(x), x)  # zero-initialised output norm: the identity at the start
    torch.nn.init.ones_(block.norm.weight)
    with torch.no_grad():
        b64 = NonLocalBlock(16).double()
        b64.load_state_dict(block.state_dict())
        x64 = x.double()
        q = b64.theta(x64).flatten(2).transpose(1, 2)
        k = F.max_pool2d(b64.phi(x64), 2).flatten(2)
        v = F.max_pool2d(b64.g(x64), 2).flatten(2).transpose(1, 2)
        def attend(scale):
            y = (torch.softmax(scale * q @ k, -1) @ v).transpose(1, 2).reshape(x.shape[0], 8, 8, 8)
            return x64 + b64.norm(b64.out(y))

        ref = attend(8**-0.5)  # C/2 = 8 inner channels
        np.testing.assert_allclose(b64(x64).numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)
        assert (attend(1.0) - ref).abs().max() > 1e-2  # the test tells scaled from unscaled apart
        # fp16 autocast with large features: unscaled fp16 logits reach ~1e5 > 65504 (inf, then a
        # nan softmax); the float32 logits stay finite and agree with the float32 block
        big = 100 * x
        with torch.autocast("cpu", dtype=torch.float16):
            half = block(big)
        assert torch.isfinite(half).all()
        full = block(big)
        assert (half.float() - full).abs().max() < 2e-2 * full.abs().max()


def test_deeplab_model_without_densepose_boxes_or_detections():
    torch.manual_seed(0)
    m = build_model(Config(**{**SMALL, "head": "deeplab", "head_channels": 16, "head_convs": 1}))
    m.train()
    imgs = [torch.rand(3, 64, 80, generator=torch.Generator().manual_seed(4))]
    losses = m(imgs, [_target(0, 64, 80)])  # a batch with no DensePose box: zero RoIs in the head
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_densepose_S"].item() == 0.0 and losses["loss_densepose_S"].requires_grad
    m.eval()
    m.roi_heads.score_thresh = 1.01  # no detection survives
    with torch.no_grad():
        out = m(imgs)
    assert len(out[0]["boxes"]) == 0 and len(out[0]["densepose"]) == 0
    assert out[0]["densepose"].fine_segm.shape == (0, 25, SMALL["heatmap_size"], SMALL["heatmap_size"])


def test_ignore_background_leaves_boxes_inside_an_ignore_region_out_of_the_sampling():
    from densemap_models.boxes import ignore_background

    boxes = torch.tensor([[10.0, 10, 20, 20],   # inside the ignore box: background -> not sampled
                          [25.0, 10, 35, 20],   # exactly half inside: -> not sampled
                          [27.0, 10, 37, 20],   # 30 % inside: stays background
                          [12.0, 12, 18, 18],   # foreground inside: never changed
                          [11.0, 11, 19, 19],   # already not sampled
                          [60.0, 60, 70, 70]])  # far away
    labels = torch.tensor([0.0, 0, 0, 1, -1, 0])
    ignore = torch.tensor([[0.0, 0, 30, 30]])
    assert ignore_background(labels, boxes, ignore).tolist() == [-1, -1, 0, 1, -1, 0]
    assert ignore_background(labels.long(), boxes, ignore).dtype == torch.int64
    assert ignore_background(labels, boxes, None) is labels
    assert ignore_background(labels, boxes, torch.zeros(0, 4)) is labels
    assert labels.tolist() == [0, 0, 0, 1, -1, 0]  # the input is not modified


def test_ignore_boxes_reach_the_rpn_and_box_sampler_scaled_with_the_image(model):
    def box_inside(b):  # inside the ignore region, after the transform's scaling
        return (b[:, 0] >= 48) & (b[:, 2] <= 96) & (b[:, 1] >= 0) & (b[:, 3] <= 96)

    torch.manual_seed(0)
    model.train()
    img = torch.rand(3, 64, 64)  # the transform scales it 1.5x (min_size 96)
    t = _target(1, 64, 64)
    t["boxes"] = torch.tensor([[4.0, 6.0, 30.0, 60.0]])
    t["masks"] = torch.zeros(1, 64, 64, dtype=torch.uint8)
    t["masks"][0, 6:60, 4:30] = 1
    t["ignore_boxes"] = torch.tensor([[32.0, 0.0, 64.0, 64.0]])  # the right half of the image
    images, targets = model.transform([img], [t])
    np.testing.assert_allclose(targets[0]["ignore_boxes"].numpy(), [[48.0, 0.0, 96.0, 96.0]])
    np.testing.assert_allclose(targets[0]["boxes"].numpy(), [[6.0, 9.0, 45.0, 90.0]], atol=1e-4)
    feats = model.backbone(images.tensors)
    anchors = model.rpn.anchor_generator(images, list(feats.values()))
    plain = [{k: v for k, v in targets[0].items() if k != "ignore_boxes"}]
    (lab,), _ = model.rpn.assign_targets_to_anchors(anchors, targets)
    (lab0,), _ = model.rpn.assign_targets_to_anchors(anchors, plain)
    a = anchors[0]
    inside = box_inside(a)
    assert (lab0[inside] == 0).any()  # without the region these anchors are background
    assert not (lab[inside] == 0).any()  # with it, none is
    assert torch.equal(lab[lab0 == 1], lab0[lab0 == 1])  # foreground unchanged
    props = [torch.cat([a[inside][:50], a[~inside][:50]])]
    (p,), _, (labels,), _ = model.roi_heads.select_training_samples(props, targets)
    (p0,), _, (labels0,), _ = model.roi_heads.select_training_samples(props, plain)
    model.roi_heads._samples = None
    assert box_inside(p0[labels0 == 0]).any()  # without the region the box head samples background there
    assert not box_inside(p[labels == 0]).any() and (labels == 0).any()  # with it, only elsewhere
    losses = model([img], [t])
    assert all(torch.isfinite(v) for v in losses.values())


def test_crowd_annotations_become_ignore_boxes_that_flip_with_the_image(tmp_path):
    from densemap.errors import AnnotationError
    from densemap_models.datasets import DensePoseDataset, resolve_data

    root = make_coco(tmp_path)
    data = json.loads((root / "annotations.json").read_text())
    data["annotations"].append({"id": 99, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [60, 5, 30, 20],
                                "area": 600.0})
    (root / "annotations.json").write_text(json.dumps(data))
    js, im_root = resolve_data(root)
    ds = DensePoseDataset(js, im_root, train=False)
    _, t = ds[0]
    assert t["boxes"].tolist() == [[16.0, 10.0, 56.0, 80.0]]  # the crowd is not an instance
    assert t["ignore_boxes"].tolist() == [[60.0, 5.0, 90.0, 25.0]]
    _, ft = ds.flip(ds.load_image(0), t)
    assert ft["ignore_boxes"].tolist() == [[6.0, 5.0, 36.0, 25.0]]
    assert ds[1][1]["ignore_boxes"].shape == (0, 4)
    # a crowd's box is checked like any other
    data["annotations"].append({"id": 100, "image_id": 2, "category_id": 1, "iscrowd": 1, "bbox": [1, 2, "x", 4]})
    (root / "annotations.json").write_text(json.dumps(data))
    with pytest.raises(AnnotationError, match=r"annotation id 100: bbox must be 4 finite numbers"):
        DensePoseDataset(js, im_root, train=False)
