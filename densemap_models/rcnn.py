"""Class-agnostic Mask R-CNN (torchvision) with an auto-calibrated DensePose branch.

:func:`build_model` makes a :class:`DensePoseRCNN` from a :class:`~densemap_models.config.Config`:
an FPN backbone (resnet18/34/50 or mobilenet_v3, ``weights=None`` unless a local file is given),
torchvision's RPN, box and mask heads with one foreground class, and a DensePose branch on
28 x 28 (or 14 x 14) RoIAlign features (:mod:`densemap_models.heads`).

Training targets (per image dict) are torchvision's ``boxes`` (N, 4) xyxy, ``labels`` (N,)
ones and ``masks`` (N, H, W) uint8, plus the DensePose fields made by
:mod:`densemap_models.datasets`: ``dp_box_masks`` (N, 256, 256), ``dp_mask_valid`` (N,) and
``dp_points`` (Q, 6), and optionally ``ignore_boxes`` (K, 4): regions (crowds, a
teacher's uncertain detections) where anchors and proposals are not trained as background
(:func:`~densemap_models.boxes.ignore_background`). In eval mode each result dict gains ``densepose``, a
:class:`~densemap_models.heads.DensePoseOutput` of its boxes (box-relative maps, so they stay
valid after torchvision rescales the boxes to the original image).
"""

from __future__ import annotations

import logging
import os
from functools import partial

import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models import resnet
from torchvision.models.detection.backbone_utils import BackboneWithFPN, mobilenet_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes
from torchvision.ops import MultiScaleRoIAlign, misc as misc_ops

from densemap.errors import DensemapError

from .config import Config
from .heads import DensePoseConvHead, DensePoseDeepLabHead, DensePoseOutput, DensePosePredictor
from .boxes import box_iou_pairs, ignore_background
from .losses import densepose_losses, roi_targets

__all__ = ["DensePoseRCNN", "DensePoseRoIHeads", "build_model", "build_backbone", "load_backbone_weights"]

log = logging.getLogger(__name__)

N_CLASSES = 2  # background + one merged foreground class
ANCHOR_SIZES = (32, 64, 128, 256, 512)
ASPECT_RATIOS = (0.5, 1.0, 2.0)
IMAGE_MEAN = [0.485, 0.456, 0.406]  # ImageNet normalisation (torchvision's detection default)
IMAGE_STD = [0.229, 0.224, 0.225]


def _norm_layer(kind: str):
    if kind == "frozen_bn":
        return misc_ops.FrozenBatchNorm2d
    if kind == "bn":
        return nn.BatchNorm2d
    return lambda c: nn.GroupNorm(32 if c % 32 == 0 else 8, c)


def _resnet_fpn(config: Config, norm) -> BackboneWithFPN:
    """ResNet body + FPN on the stages ``config.fpn_levels`` with ``config.fpn_channels`` channels.

    torchvision's ``resnet_fpn_backbone`` with the FPN width and levels as options (it fixes
    256 channels); the same modules in the same order, so the default settings build the same
    seeded weights and state-dict keys.
    """
    body = resnet.__dict__[config.backbone](weights=None, norm_layer=norm)
    trainable = min(config.trainable_layers, 5)
    layers_to_train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable] + (["bn1"] if trainable == 5 else [])
    for name, parameter in body.named_parameters():
        if not any(name.startswith(layer) for layer in layers_to_train):
            parameter.requires_grad_(False)
    levels = list(config.fpn_levels)
    stage2 = body.inplanes // 8
    bb = BackboneWithFPN(body, {f"layer{k}": str(v) for v, k in enumerate(levels)},
                         [stage2 * 2 ** (k - 1) for k in levels], config.fpn_channels)
    bb.featmap_names = [str(v) for v in range(len(levels))]
    bb.strides = [2 ** (k + 1) for k in levels] + [2 ** (levels[-1] + 2)]  # + the max-pooled "pool" level
    return bb


def build_backbone(config: Config) -> nn.Module:
    """FPN backbone with ``weights=None`` (a local file is loaded by :func:`load_backbone_weights`)."""
    norm = _norm_layer(config.resolved_norm)
    if config.backbone.startswith("resnet"):
        bb = _resnet_fpn(config, norm)
    else:
        # GroupNorm does not fit mobilenet's narrow layers: BatchNorm from scratch, frozen BN with weights
        norm = misc_ops.FrozenBatchNorm2d if config.resolved_norm == "frozen_bn" else partial(nn.BatchNorm2d, eps=0.001)
        bb = mobilenet_backbone(backbone_name="mobilenet_v3_large", weights=None, fpn=True, norm_layer=norm,
                                trainable_layers=min(config.trainable_layers + 1, 6))
        bb.featmap_names = ["0", "1"]
    return bb


def load_backbone_weights(backbone: nn.Module, path: str | os.PathLike) -> tuple[int, int]:
    """Load a local state dict (e.g. torchvision's ImageNet ResNet) into ``backbone.body``.

    Returns (loaded, total) parameter counts. Raises DensemapError when no key matches.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    body = backbone.body
    own = body.state_dict()
    matched = {}
    for k, v in state.items():
        for cand in (k, k.removeprefix("backbone.body."), k.removeprefix("features.")):
            if cand in own and own[cand].shape == v.shape:
                matched[cand] = v
                break
    if not matched:
        raise DensemapError(f"{path}: no parameter matches the {type(body).__name__} backbone body "
                            f"(first keys: {list(state)[:3]}, expected e.g. {list(own)[:3]})")
    body.load_state_dict(matched, strict=False)
    log.info("loaded %d of %d backbone tensors from %s", len(matched), len(own), path)
    return len(matched), len(own)


class DensePoseRoIHeads(RoIHeads):
    """torchvision's RoIHeads (box and mask branches) plus a DensePose branch.

    In training the branch uses the box sampler's positive proposals whose IoU with their
    ground truth exceeds ``dp_fg_iou`` (at most ``dp_max_rois`` per image); in inference the
    final detections. Every constructor argument is keyword-only.

    Parameters
    ----------
    box_roi_pool, box_head, box_predictor : nn.Module
        Box branch: RoIAlign (7 x 7), two-layer MLP, class + box-delta predictor.
    fg_iou_thresh, bg_iou_thresh : float
        Proposals with IoU >= fg are positives, < bg negatives (box sampler).
    batch_size_per_image : int
    positive_fraction : float
        Proposals sampled per image for the box losses, and the positive share of them.
    bbox_reg_weights : (4,) float or None
        Box-coder weights (None: torchvision's (10, 10, 5, 5)).
    score_thresh, nms_thresh : float
    detections_per_img : int
        Inference: class-score threshold, per-class NMS IoU and detections kept per image.
    mask_roi_pool, mask_head, mask_predictor : nn.Module
        Mask branch (RoIAlign 14 x 14).
    densepose_roi_pool, densepose_head, densepose_predictor : nn.Module
        DensePose branch (RoIAlign ``config.dp_roi_size``, head, :class:`~densemap_models.heads.DensePosePredictor`).
    dp_fg_iou : float
        Training: proposals whose IoU with their ground truth exceeds this train the DensePose branch.
    dp_max_rois : int
        Training: at most this many of them per image (a random subset).
    loss_weights : dict, optional
        ``mask_weight``, ``part_weight``, ``uv_weight`` of :func:`~densemap_models.losses.densepose_losses`.
    """

    def __init__(self, *, box_roi_pool, box_head, box_predictor, fg_iou_thresh: float, bg_iou_thresh: float,
                 batch_size_per_image: int, positive_fraction: float, bbox_reg_weights, score_thresh: float,
                 nms_thresh: float, detections_per_img: int, mask_roi_pool, mask_head, mask_predictor,
                 densepose_roi_pool, densepose_head, densepose_predictor, dp_fg_iou: float = 0.7,
                 dp_max_rois: int = 64, loss_weights: dict | None = None):
        super().__init__(
            box_roi_pool=box_roi_pool, box_head=box_head, box_predictor=box_predictor,
            fg_iou_thresh=fg_iou_thresh, bg_iou_thresh=bg_iou_thresh, batch_size_per_image=batch_size_per_image,
            positive_fraction=positive_fraction, bbox_reg_weights=bbox_reg_weights,
            score_thresh=score_thresh, nms_thresh=nms_thresh, detections_per_img=detections_per_img,
            mask_roi_pool=mask_roi_pool, mask_head=mask_head, mask_predictor=mask_predictor,
        )
        self.densepose_roi_pool = densepose_roi_pool
        self.densepose_head = densepose_head
        self.densepose_predictor = densepose_predictor
        self.dp_fg_iou = dp_fg_iou
        self.dp_max_rois = dp_max_rois
        self.loss_weights = dict(loss_weights or {})
        self._samples = None
        self._ignore = None  # per image, the ignore_boxes of the targets being matched

    def select_training_samples(self, proposals, targets):
        self._ignore = [t.get("ignore_boxes") for t in targets]
        try:
            out = super().select_training_samples(proposals, targets)
        finally:
            self._ignore = None
        self._samples = out  # (proposals, matched_idxs, labels, regression_targets), read by forward
        return out

    def assign_targets_to_proposals(self, proposals, gt_boxes, gt_labels):
        matched, labels = super().assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        ignore = self._ignore or [None] * len(labels)
        return matched, [ignore_background(lab, p, ig) for lab, p, ig in zip(labels, proposals, ignore)]

    def densepose_forward(self, features, boxes: list[torch.Tensor], image_shapes) -> DensePoseOutput:
        x = self.densepose_roi_pool(features, boxes, image_shapes)
        return self.densepose_predictor(self.densepose_head(x))

    def densepose_rois(self, targets) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per image, the DensePose training RoIs (R_i, 4) and the index (R_i,) of their ground truth."""
        props, matched, labels, _ = self._samples
        self._samples = None
        rois, rmatched = [], []
        for p, m, lab, t in zip(props, matched, labels, targets):
            pos = torch.where(lab > 0)[0]
            if len(pos) and len(t["boxes"]):
                iou = box_iou_pairs(p[pos], t["boxes"][m[pos]])
                pos = pos[iou > self.dp_fg_iou]
            if len(pos) > self.dp_max_rois:
                pos = pos[torch.randperm(len(pos), device=pos.device)[: self.dp_max_rois]]
            rois.append(p[pos])
            rmatched.append(m[pos])
        return rois, rmatched

    def forward(self, features, proposals, image_shapes, targets=None):
        self._samples = None
        result, losses = super().forward(features, proposals, image_shapes, targets)
        if self.training:
            rois, rmatched = self.densepose_rois(targets)
            out = self.densepose_forward(features, rois, image_shapes)
            tg = roi_targets(rois, rmatched, targets, heatmap_size=self.densepose_predictor.heatmap_size)
            losses.update(densepose_losses(out, tg, **self.loss_weights))
        else:
            boxes = [r["boxes"] for r in result]
            out = self.densepose_forward(features, boxes, image_shapes)
            start = 0
            for r in result:
                n = len(r["boxes"])
                r["densepose"] = out[start : start + n]
                start += n
        return result, losses


def _anchor_generator(n_levels: int, strides=None) -> AnchorGenerator:
    """Anchor sizes per FPN level.

    The standard five levels (strides 4..64) get one size each, 32..512 (torchvision's). Other
    ResNet level sets get two sizes per level, 4x and 8x its stride (stride 8: 32 and 64 px), so
    that dropping the stride-4 level keeps 32-px anchors; other backbones (mobilenet) get all
    five sizes on every level.
    """
    if n_levels == 5 and (strides is None or list(strides) == [4, 8, 16, 32, 64]):
        sizes = tuple((s,) for s in ANCHOR_SIZES)
    elif strides is not None:
        sizes = tuple((4 * s, 8 * s) for s in strides)
    else:
        sizes = (ANCHOR_SIZES,) * n_levels
    return AnchorGenerator(sizes=sizes, aspect_ratios=(ASPECT_RATIOS,) * n_levels)


class _RPN(RegionProposalNetwork):
    """torchvision's RPN whose anchors inside a target's ``ignore_boxes`` are not trained as background."""

    def assign_targets_to_anchors(self, anchors, targets):
        labels, matched = super().assign_targets_to_anchors(anchors, targets)
        labels = [ignore_background(lab, a, t.get("ignore_boxes")) for lab, a, t in zip(labels, anchors, targets)]
        return labels, matched


class _Transform(GeneralizedRCNNTransform):
    """torchvision's transform that also rescales a target's ``ignore_boxes`` with the image."""

    def resize(self, image, target=None):
        size = image.shape[-2:]
        image, target = super().resize(image, target)
        if target is not None and "ignore_boxes" in target:
            target["ignore_boxes"] = resize_boxes(target["ignore_boxes"], size, image.shape[-2:])
        return image, target


def _rpn(config: Config, in_channels: int, n_levels: int, strides=None) -> RegionProposalNetwork:
    anchor = _anchor_generator(n_levels, strides)
    return _RPN(
        anchor_generator=anchor,
        head=RPNHead(in_channels, anchor.num_anchors_per_location()[0]),
        fg_iou_thresh=config.rpn_fg_iou_thresh,
        bg_iou_thresh=config.rpn_bg_iou_thresh,
        batch_size_per_image=config.rpn_batch_size_per_image,
        positive_fraction=config.rpn_positive_fraction,
        pre_nms_top_n={"training": config.rpn_pre_nms_top_n_train, "testing": config.rpn_pre_nms_top_n_test},
        post_nms_top_n={"training": config.rpn_post_nms_top_n_train, "testing": config.rpn_post_nms_top_n_test},
        nms_thresh=config.rpn_nms_thresh,
        score_thresh=config.rpn_score_thresh,
    )


def _densepose_branch(config: Config, in_channels: int) -> tuple[nn.Module, DensePosePredictor]:
    if config.head == "conv":
        head = DensePoseConvHead(in_channels, n_convs=config.head_convs, channels=config.head_channels)
    else:
        head = DensePoseDeepLabHead(in_channels, n_convs=config.head_convs, channels=config.head_channels)
    predictor = DensePosePredictor(head.out_channels, roi_size=config.dp_roi_size, heatmap_size=config.heatmap_size,
                                   sigma_min=config.sigma_min, alpha_min=config.alpha_min)
    return head, predictor


class DensePoseRCNN(GeneralizedRCNN):
    """Mask R-CNN (one foreground class) whose RoI heads also predict calibrated DensePose charts.

    Use :func:`build_model`; ``model(images, targets)`` returns the loss dict in training
    (``loss_classifier, loss_box_reg, loss_mask, loss_objectness, loss_rpn_box_reg,
    loss_densepose_S, loss_densepose_I, loss_densepose_UV``) and detections with
    ``boxes, labels, scores, masks, densepose`` in eval mode.

    The parts are torchvision's Mask R-CNN parts (transform, RPN, box and mask heads) built
    here directly, with every threshold from ``config``; the submodule names (and so the
    state-dict keys) are those of torchvision's ``MaskRCNN``.
    """

    def __init__(self, backbone: nn.Module, *, config: Config):
        names = backbone.featmap_names
        c = backbone.out_channels
        # Creation order = torchvision MaskRCNN's (box head, box predictor, mask head, mask
        # predictor, RPN head), so that a seeded build draws the same initial weights.
        box_head = TwoMLPHead(c * 49, config.box_head_dim)
        box_predictor = FastRCNNPredictor(config.box_head_dim, N_CLASSES)
        mask_head = MaskRCNNHeads(c, (config.mask_head_channels,) * config.mask_head_convs, 1)
        mask_predictor = MaskRCNNPredictor(config.mask_head_channels, config.mask_head_channels, N_CLASSES)
        rpn = _rpn(config, c, len(names) + 1, getattr(backbone, "strides", None))  # + the RPN's "pool" level
        nn.init.normal_(mask_predictor.mask_fcn_logits.weight, std=0.001)  # small logits at the start
        dp_head, dp_predictor = _densepose_branch(config, c)
        roi_heads = DensePoseRoIHeads(
            box_roi_pool=MultiScaleRoIAlign(featmap_names=names, output_size=7, sampling_ratio=2),
            box_head=box_head,
            box_predictor=box_predictor,
            fg_iou_thresh=config.box_fg_iou_thresh,
            bg_iou_thresh=config.box_bg_iou_thresh,
            batch_size_per_image=config.box_batch_size_per_image,
            positive_fraction=config.box_positive_fraction,
            bbox_reg_weights=config.box_reg_weights,
            score_thresh=config.box_score_thresh,
            nms_thresh=config.box_nms_thresh,
            detections_per_img=config.box_detections_per_img,
            mask_roi_pool=MultiScaleRoIAlign(featmap_names=names, output_size=14, sampling_ratio=2),
            mask_head=mask_head,
            mask_predictor=mask_predictor,
            densepose_roi_pool=MultiScaleRoIAlign(featmap_names=names, output_size=config.dp_roi_size,
                                                  sampling_ratio=2),
            densepose_head=dp_head,
            densepose_predictor=dp_predictor,
            dp_fg_iou=config.dp_fg_iou,
            dp_max_rois=config.dp_max_rois_per_image,
            loss_weights={"mask_weight": config.mask_weight, "part_weight": config.part_weight,
                          "uv_weight": config.uv_weight, "coarse_part_weight": config.coarse_part_weight},
        )
        transform = _Transform(min_size=config.min_size, max_size=config.max_size,
                                             image_mean=IMAGE_MEAN, image_std=IMAGE_STD)
        super().__init__(backbone=backbone, rpn=rpn, roi_heads=roi_heads, transform=transform)
        self.config = config


def build_model(config: Config | None = None, *, weights: str | os.PathLike | None = None) -> DensePoseRCNN:
    """A :class:`DensePoseRCNN` for ``config`` (defaults: resnet50-FPN, 8 x 512 conv head, 112 heatmap).

    Parameters
    ----------
    config : Config, optional
        Model and detector settings; ``config.backbone_weights`` (a local file) is loaded into
        the backbone.
    weights : path, optional
        A densemap checkpoint or state dict, loaded into the whole model (strictly).

    Returns
    -------
    DensePoseRCNN
        In training mode, weights drawn from torch's global RNG (seed it for a reproducible build).

    Examples
    --------
    >>> import torch
    >>> from densemap_models.config import Config
    >>> model = build_model(Config(backbone="resnet18", head_convs=2, head_channels=32, heatmap_size=56))
    >>> sum(p.numel() for p in model.parameters())
    31055900
    >>> with torch.no_grad():
    ...     result = model.eval()([torch.rand(3, 64, 64)])[0]
    >>> result["densepose"].fine_segm.shape[1:]  # (detections, 25 charts, 56, 56)
    torch.Size([25, 56, 56])
    """
    config = config or Config()
    backbone = build_backbone(config)
    if config.backbone_weights:
        load_backbone_weights(backbone, config.backbone_weights)
    model = DensePoseRCNN(backbone, config=config)
    if weights is not None:
        state = torch.load(weights, map_location="cpu", weights_only=False)
        model.load_state_dict(state.get("model", state))
    return model
