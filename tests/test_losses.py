"""Losses of the auto-calibrated DensePose head: analytic values and gradients."""

import math

import numpy as np
import pytest
import torch

from densemap_models.heads import DensePoseOutput, DensePosePredictor
from densemap_models.losses import (RoITargets, densepose_losses, gaussian_nll, roi_targets, sample_maps,
                                    scaled_cross_entropy)


def test_scaled_cross_entropy_matches_hand_value():
    z = torch.tensor([[1.0, 2.0, 0.5]])
    alpha = torch.tensor([2.0])
    # -log softmax(2 z)_y for y = 0: 2z = (2, 4, 1)
    expected = -(2.0 - math.log(math.exp(2) + math.exp(4) + math.exp(1)))
    got = scaled_cross_entropy(z, alpha, torch.tensor([0]))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_scaled_cross_entropy_alpha_one_is_plain_cross_entropy():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(7, 25, generator=g)
    y = torch.randint(0, 25, (7,), generator=g)
    a = torch.ones(7, 1)
    assert scaled_cross_entropy(z, a, y).item() == pytest.approx(torch.nn.functional.cross_entropy(z, y).item(), rel=1e-6)


def test_scaled_cross_entropy_learns_alpha_direction():
    # a correct, confident logit: the loss falls as alpha grows (high alpha = confident)
    z = torch.tensor([[3.0, 0.0]])
    a = torch.tensor([1.0], requires_grad=True)
    scaled_cross_entropy(z, a, torch.tensor([0])).backward()
    assert a.grad.item() < 0
    # a wrong prediction: the loss falls as alpha shrinks
    a = torch.tensor([1.0], requires_grad=True)
    scaled_cross_entropy(z, a, torch.tensor([1])).backward()
    assert a.grad.item() > 0


def test_gaussian_nll_matches_eq3():
    pred = torch.tensor([[0.3, 0.6]])
    tgt = torch.tensor([[0.5, 0.5]])
    sig = torch.tensor([[0.1, 0.2]])
    expected = math.log(2 * math.pi) + 0.5 * (math.log(0.01) + 0.04 / 0.01 + math.log(0.04) + 0.01 / 0.04)
    assert gaussian_nll(pred, tgt, sig).item() == pytest.approx(expected, rel=1e-4)
    # D = 1 form and the reductions
    assert gaussian_nll(pred[:, 0], tgt[:, 0], sig[:, 0]).item() == pytest.approx(
        0.5 * math.log(2 * math.pi) + 0.5 * (math.log(0.01) + 4.0), rel=1e-6)
    two = gaussian_nll(torch.cat([pred, pred]), torch.cat([tgt, tgt]), torch.cat([sig, sig]), reduction="mean")
    assert two.item() == pytest.approx(expected, rel=1e-4)


def test_gaussian_nll_optimal_sigma_is_the_error():
    # for a fixed error e, d/dsigma NLL = 1/sigma - e^2/sigma^3 = 0 at sigma = e
    e = 0.07
    s = torch.tensor([e], requires_grad=True)
    gaussian_nll(torch.tensor([0.5 + e]), torch.tensor([0.5]), s).backward()
    assert abs(s.grad.item()) < 1e-5


def test_gaussian_nll_small_sigma_is_not_clamped():
    # torch's gaussian_nll_loss clamps the variance at eps (1e-6 by default): not here
    for dtype in (torch.float32, torch.float64):
        sig = torch.tensor([1e-4, 1e-6], dtype=dtype)
        err = torch.tensor([2e-4, 3e-6], dtype=dtype)
        got = gaussian_nll(0.5 + err, torch.full((2,), 0.5, dtype=dtype), sig, reduction="none")
        expected = [0.5 * math.log(2 * math.pi) + math.log(s) + 0.5 * (e / s) ** 2 for s, e in
                    zip(sig.tolist(), (0.5 + err - 0.5).tolist())]
        assert got.tolist() == pytest.approx(expected, rel=1e-5)


def test_gaussian_nll_rejects_bad_reduction():
    with pytest.raises(ValueError, match="unknown reduction 'max'"):
        gaussian_nll(torch.zeros(2), torch.zeros(2), torch.ones(2), reduction="max")


def test_sample_maps_bilinear():
    maps = torch.arange(16.0).reshape(1, 1, 4, 4)  # value = 4 * row + col
    xy = torch.tensor([[0.125, 0.125], [0.25, 0.375], [0.5, 0.5], [0.999, 0.999]])
    got = sample_maps(maps, torch.zeros(4, dtype=torch.long), xy)[:, 0]
    # pixel centres at (i + 0.5) / 4: (0.125, 0.125) -> pixel (0, 0); x = 0.5 -> col 1.5
    assert got.tolist() == pytest.approx([0.0, 4 * 1.0 + 0.5, 4 * 1.5 + 1.5, 15.0], abs=1e-5)
    ch = sample_maps(torch.cat([maps, 2 * maps], 1), torch.zeros(1, dtype=torch.long), xy[2:3], torch.tensor([1]))
    assert ch.item() == pytest.approx(2 * 7.5)


def _output(R=2, S=8, requires_grad=True):
    pred = DensePosePredictor(16, roi_size=4, heatmap_size=S)
    x = torch.randn(R, 16, 4, 4, generator=torch.Generator().manual_seed(0))
    out = pred(x)
    return pred, out


def test_densepose_losses_empty_targets_are_zero_with_gradient():
    pred, out = _output(R=0)
    S = out.fine_segm.shape[-1]
    empty = RoITargets(torch.zeros(0, S, S), torch.zeros(0, dtype=torch.bool), torch.zeros(0, dtype=torch.long),
                       torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), torch.zeros(0, 2))
    losses = densepose_losses(out, empty)
    total = sum(losses.values())
    assert total.item() == 0.0 and total.requires_grad
    total.backward()
    assert pred.deconv.weight.grad is not None
    assert torch.all(pred.deconv.weight.grad == 0)


def test_densepose_losses_non_empty_and_uv_uses_gt_chart():
    pred, out = _output(R=2)
    S = out.fine_segm.shape[-1]
    t = RoITargets(mask=torch.ones(2, S, S), mask_valid=torch.tensor([True, False]),
                   point_roi=torch.tensor([0, 1]), point_xy=torch.tensor([[0.5, 0.5], [0.2, 0.7]]),
                   point_i=torch.tensor([3, 24]), point_uv=torch.tensor([[0.1, 0.9], [0.5, 0.5]]))
    losses = densepose_losses(out, t, mask_weight=1.0, part_weight=1.0, uv_weight=1.0)
    assert all(torch.isfinite(v) for v in losses.values())
    # hand recomputation of the UV term from the sampled channels
    u = sample_maps(out.u, t.point_roi, t.point_xy, t.point_i)
    v = sample_maps(out.v, t.point_roi, t.point_xy, t.point_i)
    su = sample_maps(out.sigma_u, t.point_roi, t.point_xy, t.point_i)
    sv = sample_maps(out.sigma_v, t.point_roi, t.point_xy, t.point_i)
    ref = sum(math.log(2 * math.pi) + math.log(a) + math.log(b) + 0.5 * ((x - p) / a) ** 2 + 0.5 * ((y - q) / b) ** 2
              for a, b, x, y, (p, q) in zip(su.tolist(), sv.tolist(), u.tolist(), v.tolist(), t.point_uv.tolist()))
    assert losses["loss_densepose_UV"].item() == pytest.approx(ref, rel=1e-5)
    sum(losses.values()).backward()
    assert torch.isfinite(pred.deconv.weight.grad).all()


def test_predictor_clamps_sigma_and_alpha():
    pred = DensePosePredictor(8, roi_size=4, heatmap_size=16, sigma_min=0.05, alpha_min=0.01)
    with torch.no_grad():
        pred.deconv.bias.fill_(-100.0)
    out = pred(torch.zeros(1, 8, 4, 4))
    assert out.sigma_u.min().item() >= 0.05 - 1e-7 and out.sigma_v.min().item() >= 0.05 - 1e-7
    assert out.alpha.min().item() >= 0.01 - 1e-7
    assert out.fine_segm.shape == (1, 25, 16, 16) and out.coarse_segm.shape == (1, 2, 16, 16)
    with pytest.raises(ValueError, match="heatmap_size must be 2x or 4x"):
        DensePosePredictor(8, roi_size=4, heatmap_size=20)


def test_output_container_to_and_slicing():
    _, out = _output(R=3)
    assert len(out) == 3 and len(out[1:]) == 2 and len(out[0]) == 1
    moved = out.to("cpu")
    assert isinstance(moved, DensePoseOutput) and moved.u.device.type == "cpu"
    p = out.fine_probs()
    assert torch.allclose(p.sum(1), torch.ones_like(p[:, 0]), atol=1e-5)


def test_roi_targets_points_and_masks():
    gt_boxes = torch.tensor([[10.0, 20.0, 50.0, 100.0]])
    bm = torch.zeros(1, 256, 256, dtype=torch.uint8)
    bm[:, :, :128] = 1  # left half of the box is foreground
    pts = torch.tensor([[0, 0.5, 0.5, 1, 0.2, 0.3], [0, 0.05, 0.05, 2, 0.4, 0.5]])
    t = {"boxes": gt_boxes, "dp_box_masks": bm, "dp_mask_valid": torch.tensor([True]), "dp_points": pts}
    rois = [torch.tensor([[10.0, 20.0, 50.0, 100.0], [30.0, 60.0, 50.0, 100.0]])]
    tg = roi_targets(rois, [torch.tensor([0, 0])], [t], heatmap_size=8)
    # roi 0 = the box: both points; roi 1 = the lower-right quarter: the centre point at its corner only
    assert tg.point_roi.tolist() == [0, 0, 1]
    np.testing.assert_allclose(tg.point_xy[:2].numpy(), [[0.5, 0.5], [0.05, 0.05]], atol=1e-6)
    np.testing.assert_allclose(tg.point_xy[2].numpy(), [0.0, 0.0], atol=1e-6)
    assert tg.mask[0, :, :4].eq(1).all() and tg.mask[0, :, 4:].eq(0).all()
    assert tg.mask[1].eq(0).all()  # right half of the box is background


@pytest.mark.parametrize("precision", ["half", "autocast"])
def test_densepose_losses_in_float16(precision):
    # 112 x 112 maps: the u map alone sums to ~0.5 * 25 * 112**2 = 157k, past float16's 65504,
    # so a float16 zero-loss sum is inf and inf * 0 = nan in every term (the bug this guards)
    torch.manual_seed(0)
    pred = DensePosePredictor(16, roi_size=28, heatmap_size=112)
    x = torch.randn(2, 16, 28, 28)
    S = 112
    t = RoITargets(mask=torch.ones(2, S, S), mask_valid=torch.tensor([True, False]),
                   point_roi=torch.tensor([0, 1]), point_xy=torch.tensor([[0.5, 0.5], [0.2, 0.7]]),
                   point_i=torch.tensor([3, 24]), point_uv=torch.tensor([[0.1, 0.9], [0.5, 0.5]]))
    empty = RoITargets(torch.zeros(0, S, S), torch.zeros(0, dtype=torch.bool), torch.zeros(0, dtype=torch.long),
                       torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), torch.zeros(0, 2))
    ref = densepose_losses(pred(x), t)
    if precision == "half":
        pred = pred.half()
        out = pred(x.half())
        t = RoITargets(t.mask.half(), t.mask_valid, t.point_roi, t.point_xy.half(), t.point_i, t.point_uv.half())
    else:
        with torch.autocast("cpu", dtype=torch.float16):
            out = pred(x)
    assert out.u.dtype == torch.float16
    losses = densepose_losses(out, t)
    for k, v in losses.items():
        assert v.dtype == torch.float32 and torch.isfinite(v), k
        assert v.item() == pytest.approx(ref[k].item(), rel=2e-2), k
    zero = densepose_losses(out, empty)
    assert all(v.item() == 0.0 for v in zero.values())
    pred.zero_grad()
    sum(zero.values()).backward()
    g = pred.deconv.weight.grad
    assert g is not None and torch.all(g == 0)


def test_coarse_part_loss_is_the_log_of_the_parts_summed_posterior():
    import numpy as np

    from densemap.annotation.coco import COARSE_OF_CHART
    from densemap_models.heads import DensePoseOutput
    from densemap_models.losses import RoITargets, coarse_part_loss

    R, S = 2, 4

    def output(z):
        ones = torch.ones(R, 25, S, S)
        return DensePoseOutput(coarse_segm=torch.zeros(R, 2, S, S), fine_segm=z, u=0 * ones, v=0 * ones,
                               sigma_u=ones, sigma_v=ones, alpha=torch.ones(R, 1, S, S),
                               alpha_coarse=torch.ones(R, 1, S, S))

    def targets(label, valid=(True, True)):
        return RoITargets(mask=torch.ones(R, S, S), mask_valid=torch.tensor([True, True]),
                          point_roi=torch.zeros(0, dtype=torch.long), point_xy=torch.zeros(0, 2),
                          point_i=torch.zeros(0, dtype=torch.long), point_uv=torch.zeros(0, 2),
                          parts=torch.full((R, S, S), label, dtype=torch.long), parts_valid=torch.tensor(valid))

    uniform = output(torch.zeros(R, 25, S, S))
    for k in (1, 2, 14):  # a uniform posterior gives each coarse part the share of its charts
        n = int((COARSE_OF_CHART == k).sum())
        assert coarse_part_loss(uniform, targets(k)).item() == pytest.approx(-np.log(n / 25), rel=1e-6)
    z = torch.full((R, 25, S, S), -30.0)
    z[:, 2] = 30.0  # all mass on chart 2, which is in coarse part 1
    assert coarse_part_loss(output(z), targets(1)).item() == pytest.approx(0.0, abs=1e-6)
    assert coarse_part_loss(output(z), targets(2)).item() == pytest.approx(60.0, rel=1e-4)
    assert coarse_part_loss(uniform, targets(3, valid=(False, False))) is None  # no per-part masks
    assert coarse_part_loss(uniform, targets(0)) is None  # background only
