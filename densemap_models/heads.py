"""DensePose head and auto-calibrated chart predictor on 28 x 28 RoI features.

The head turns pooled RoI features (R, C, 28, 28) into per-RoI maps of side 56 or 112:
``coarse_segm`` (foreground), ``fine_segm`` (25 chart logits, 0 = background), ``u``/``v``
per chart, and the calibration outputs of the auto-calibrated R-CNN (Sanakoyeu et al. 2020,
§3.3):

* ``sigma_u``, ``sigma_v`` (per chart): standard deviations of the Gaussian u/v model,
  ``sigma = softplus(raw) + sigma_min`` (Eq. 3 diverges at sigma = 0, hence the clamp).
  **Low sigma = confident.**
* ``alpha`` (fine, 1 channel) and ``alpha_coarse`` (1 channel): inverse temperatures of the
  scaled softmax ``softmax(alpha * z)`` (Eq. 2), ``alpha = softplus(raw) + alpha_min``.
  **High alpha = confident** (a sharper softmax). The paper's sentence after Eq. 2 states the
  opposite, but with ``alpha = 1/T`` a large alpha is a low temperature, i.e. a peaked posterior.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DensePoseOutput", "DensePoseConvHead", "DensePoseDeepLabHead", "DensePosePredictor", "N_CHART_CHANNELS"]

N_CHART_CHANNELS = 25  # background + 24 charts


@dataclass
class DensePoseOutput:
    """Per-RoI DensePose maps (R RoIs, S = heatmap side).

    coarse_segm : (R, 2, S, S) raw foreground logits
    fine_segm : (R, 25, S, S) raw chart logits z (scale by ``alpha`` for probabilities)
    u, v : (R, 25, S, S) chart coordinates per chart (raw regression, ~[0, 1])
    sigma_u, sigma_v : (R, 25, S, S) u/v standard deviations (> sigma_min; low = confident)
    alpha : (R, 1, S, S) inverse temperature of the chart classifier (high = confident)
    alpha_coarse : (R, 1, S, S) inverse temperature of the foreground classifier
    """

    coarse_segm: torch.Tensor
    fine_segm: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    sigma_u: torch.Tensor
    sigma_v: torch.Tensor
    alpha: torch.Tensor
    alpha_coarse: torch.Tensor

    def __len__(self) -> int:
        return self.fine_segm.shape[0]

    def __getitem__(self, item) -> "DensePoseOutput":
        if isinstance(item, int):
            item = slice(item, item + 1)
        return DensePoseOutput(**{f.name: getattr(self, f.name)[item] for f in fields(self)})

    def to(self, device) -> "DensePoseOutput":
        return DensePoseOutput(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def fine_probs(self) -> torch.Tensor:
        """(R, 25, S, S) calibrated chart posteriors ``softmax(alpha * z)``."""
        return torch.softmax(self.alpha * self.fine_segm, dim=1)

    def coarse_probs(self) -> torch.Tensor:
        """(R, 2, S, S) calibrated foreground posteriors ``softmax(alpha_coarse * z)``."""
        return torch.softmax(self.alpha_coarse * self.coarse_segm, dim=1)

    @staticmethod
    def cat(outputs: list["DensePoseOutput"]) -> "DensePoseOutput":
        return DensePoseOutput(**{f.name: torch.cat([getattr(o, f.name) for o in outputs]) for f in fields(DensePoseOutput)})


def _init_conv(m: nn.Module) -> None:
    for mod in m.modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)


class DensePoseConvHead(nn.Module):
    """``n_convs`` x [conv3x3, ReLU] at the RoI resolution (detectron2's DensePoseV1ConvXHead)."""

    def __init__(self, in_channels: int, *, n_convs: int = 8, channels: int = 512, kernel: int = 3):
        super().__init__()
        layers = []
        c = in_channels
        for _ in range(n_convs):
            layers += [nn.Conv2d(c, channels, kernel, padding=kernel // 2), nn.ReLU(inplace=True)]
            c = channels
        self.body = nn.Sequential(*layers)
        self.out_channels = channels
        _init_conv(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _gn(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, c), c)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, three dilated 3x3 and a global-pool branch (GN + ReLU)."""

    def __init__(self, in_channels: int, out_channels: int, rates=(6, 12, 56)):
        super().__init__()
        branches = [nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), _gn(out_channels), nn.ReLU())]
        for r in rates:
            branches.append(nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=r, dilation=r, bias=False),
                                          _gn(out_channels), nn.ReLU()))
        self.branches = nn.ModuleList(branches)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.ReLU())
        self.project = nn.Sequential(nn.Conv2d(out_channels * (len(rates) + 2), out_channels, 1, bias=False),
                                     _gn(out_channels), nn.ReLU())

    def forward(self, x):
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, x.shape[2], x.shape[3]))
        return self.project(torch.cat(outs, dim=1))


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block (Wang et al. 2018): C/2 inner channels, 2x2 max-pooled
    keys/values, zero-initialised GN output so the block starts as the identity.

    The attention logits are scaled by ``1/sqrt(C/2)`` (scaled dot-product attention) and they
    and their softmax are computed in float32 even under autocast: over 256 inner channels a
    float16 dot product passes float16's 65504 once the features reach ~16 (256 x 16**2).
    """

    def __init__(self, channels: int):
        super().__init__()
        inner = max(channels // 2, 1)
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.out = nn.Conv2d(inner, channels, 1)
        self.norm = _gn(channels)
        nn.init.zeros_(self.norm.weight)

    def forward(self, x):
        n, _, h, w = x.shape
        q = self.theta(x).flatten(2).transpose(1, 2)  # (n, hw, c')
        k = F.max_pool2d(self.phi(x), 2).flatten(2)  # (n, c', hw/4)
        v = F.max_pool2d(self.g(x), 2).flatten(2).transpose(1, 2)  # (n, hw/4, c')
        inner = q.shape[-1]
        dt = torch.promote_types(q.dtype, torch.float32)  # float16/bfloat16 -> float32, float64 stays
        with _float32_region(x.device.type):
            logits = (q.to(dt) * inner**-0.5) @ k.to(dt)
            att = torch.softmax(logits, dim=-1).to(v.dtype)
        # explicit channel count: reshape(n, -1, ...) is ambiguous for n = 0 RoIs
        y = (att @ v).transpose(1, 2).reshape(n, inner, h, w)
        return x + self.norm(self.out(y))


def _float32_region(device_type: str):
    """Autocast off (so that float32 stays float32) where autocast is on; a no-op elsewhere."""
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return nullcontext()


class DensePoseDeepLabHead(nn.Module):
    """ASPP (+ optional non-local block) then ``n_convs`` x [conv3x3, GN, ReLU] (DensePoseDeepLabHead)."""

    def __init__(self, in_channels: int, *, n_convs: int = 8, channels: int = 512, nonlocal_block: bool = True):
        super().__init__()
        self.aspp = ASPP(in_channels, in_channels)
        self.nonlocal_block = NonLocalBlock(in_channels) if nonlocal_block else nn.Identity()
        layers = []
        c = in_channels
        for _ in range(n_convs):
            layers += [nn.Conv2d(c, channels, 3, padding=1, bias=False), _gn(channels), nn.ReLU(inplace=True)]
            c = channels
        self.body = nn.Sequential(*layers)
        self.out_channels = channels
        _init_conv(self)
        if nonlocal_block:
            nn.init.zeros_(self.nonlocal_block.norm.weight)

    def forward(self, x):
        return self.body(self.nonlocal_block(self.aspp(x)))


def _inverse_softplus(y: float) -> float:
    """``x`` with ``softplus(x) = y``, in plain Python (no tensor: works on ``meta``, never syncs)."""
    return math.log(math.expm1(y))


class DensePosePredictor(nn.Module):
    """One deconvolution (k=4, s=2) to 2x the RoI side, then bilinear x2 when ``heatmap_size`` is
    4x the RoI side; splits the channels into a :class:`DensePoseOutput`.

    ``sigma_min`` and ``alpha_min`` are the lower clamps of sigma and alpha (see the module doc).
    """

    # name -> channels, in output order
    LAYOUT = (("coarse_segm", 2), ("fine_segm", N_CHART_CHANNELS), ("u", N_CHART_CHANNELS), ("v", N_CHART_CHANNELS),
              ("sigma_u", N_CHART_CHANNELS), ("sigma_v", N_CHART_CHANNELS), ("alpha", 1), ("alpha_coarse", 1))

    def __init__(self, in_channels: int, *, roi_size: int = 28, heatmap_size: int = 112,
                 sigma_min: float = 0.05, alpha_min: float = 0.01):
        super().__init__()
        if heatmap_size not in (2 * roi_size, 4 * roi_size):
            raise ValueError(f"heatmap_size must be 2x or 4x the RoI side {roi_size}, got {heatmap_size}")
        self.heatmap_size = heatmap_size
        self.sigma_min, self.alpha_min = float(sigma_min), float(alpha_min)
        total = sum(c for _, c in self.LAYOUT)
        self.deconv = nn.ConvTranspose2d(in_channels, total, kernel_size=4, stride=2, padding=1)
        # small outputs at the start (plain Kaiming gives logits of tens on features trained from scratch)
        nn.init.normal_(self.deconv.weight, std=0.001)
        nn.init.zeros_(self.deconv.bias)
        # start at alpha ~ 1 (plain softmax) and sigma ~ 0.2 + sigma_min
        with torch.no_grad():
            start = 0
            for name, c in self.LAYOUT:
                if name.startswith("alpha"):
                    self.deconv.bias[start : start + c] = _inverse_softplus(1.0 - self.alpha_min)
                elif name.startswith("sigma"):
                    self.deconv.bias[start : start + c] = _inverse_softplus(0.2)
                elif name in ("u", "v"):
                    self.deconv.bias[start : start + c] = 0.5
                start += c

    def forward(self, x: torch.Tensor) -> DensePoseOutput:
        y = self.deconv(x)
        if y.shape[-1] != self.heatmap_size:
            y = F.interpolate(y, size=(self.heatmap_size, self.heatmap_size), mode="bilinear", align_corners=False)
        parts = dict(zip([n for n, _ in self.LAYOUT], torch.split(y, [c for _, c in self.LAYOUT], dim=1)))
        for name in ("sigma_u", "sigma_v"):
            parts[name] = F.softplus(parts[name]) + self.sigma_min
        for name in ("alpha", "alpha_coarse"):
            parts[name] = F.softplus(parts[name]) + self.alpha_min
        return DensePoseOutput(**parts)
