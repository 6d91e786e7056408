"""torchvision feature stacks tapped after given layers: the trunks of LPIPS and DISTS.

:class:`TappedFeatures` holds a torchvision ``.features`` stack as its attribute ``features``
(same indices), so a published torchvision ``state_dict`` loads into it once the classifier keys
are dropped (:func:`features_only`). It runs the stack layer by layer on a batch in [0, 1] and
returns the outputs after the tapped indices, after bringing the batch to the network's input
convention inside the module (as one multiply-add, see :class:`TappedFeatures`):

* ``"lpips"``: ``x ↦ 2x − 1`` to [-1, 1], then ``(x − shift) / scale`` with LPIPS' constants
  (shift = (−0.030, −0.088, −0.188), scale = (0.458, 0.448, 0.450); the same as ImageNet's mean
  and std on [0, 1] up to float round-off);
* ``"imagenet"``: ``(x − mean) / std`` with ImageNet's mean and std (DISTS), the raw input being
  returned as the first tap (DISTS compares the images themselves too).

DISTS replaces VGG16's max-pooling layers by :class:`L2Pooling` (a 3x3 Hann window, stride 2,
``sqrt(conv(x²) + 1e-12)``), whose filter is a non-persistent buffer (not in the weights file).

This module imports torch and torchvision; :mod:`pytest_i2i.backbones.perceptual` registers the
backbones without importing either.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class L2Pooling(nn.Module):
    """DISTS' L2 pooling: ``sqrt(depthwise_conv(x², hann) + 1e-12)``, stride 2, padding 1.

    The filter is the outer product of ``np.hanning(5)[1:-1]`` = (0.5, 1, 0.5) with itself,
    normalised to sum 1, built with the reference's operations.
    """

    def __init__(self, channels: int, filter_size: int = 5, stride: int = 2) -> None:
        super().__init__()
        self.padding = (filter_size - 2) // 2
        self.stride = stride
        a = np.hanning(filter_size)[1:-1]
        g = torch.Tensor(a[:, None] * a[None, :])
        g = g / torch.sum(g)
        self.register_buffer("filter", g[None, None, :, :].repeat((channels, 1, 1, 1)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = nn.functional.conv2d(x ** 2, self.filter, stride=self.stride, padding=self.padding, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class TappedFeatures(nn.Module):
    """A torchvision feature stack returning ``{name: output after layer index}`` for its taps.

    Args:
        features: the ``.features`` stack (its layers up to the last tap are kept).
        taps: ``{output name: layer index}``, in forward order.
        scaling: ``"lpips"`` or ``"imagenet"`` (see the module docstring).
        input_tap: the name under which the raw [0, 1] input is returned first (DISTS), or ``None``.
    """

    def __init__(self, features: nn.Sequential, taps: dict[str, int], scaling: str,
                 input_tap: str | None = None) -> None:
        super().__init__()
        last = max(taps.values())
        self.features = nn.Sequential(*[features[i] for i in range(last + 1)])
        self.taps = dict(taps)
        self.input_tap = input_tap
        self.scaling = scaling
        if scaling == "lpips":
            shift, scale = LPIPS_SHIFT, LPIPS_SCALE
        elif scaling == "imagenet":
            shift, scale = IMAGENET_MEAN, IMAGENET_STD
        else:
            raise ValueError(f"unknown scaling {scaling!r}")
        # The scaling as one multiply-add on the [0, 1] input, x · gain + offset (computed in float64):
        # LPIPS' (2x − 1 − shift) / scale, ImageNet's (x − mean) / std. One pass over the batch
        # instead of three (6x faster on 32 images of 256 px); equal to the references' order of
        # operations up to float round-off (5e-7 on the scaled input).
        s64, sc64 = torch.tensor(shift, dtype=torch.float64), torch.tensor(scale, dtype=torch.float64)
        gain, offset = (2 / sc64, -(1 + s64) / sc64) if scaling == "lpips" else (1 / sc64, -s64 / sc64)
        self.register_buffer("gain", gain.float().view(1, -1, 1, 1), persistent=False)
        self.register_buffer("offset", offset.float().view(1, -1, 1, 1), persistent=False)
        self._at = {i: name for name, i in taps.items()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        if self.input_tap is not None:
            out[self.input_tap] = x
        h = torch.addcmul(self.offset, x, self.gain)
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self._at:
                out[self._at[i]] = h
        return out


ALEX_TAPS = {"relu1": 1, "relu2": 4, "relu3": 7, "relu4": 9, "relu5": 11}
VGG_TAPS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}
SQUEEZE_TAPS = {"relu1": 1, "relu2": 4, "relu3": 7, "relu4": 9, "relu5": 10, "relu6": 11, "relu7": 12}
DISTS_POOLS = {4: 64, 9: 128, 16: 256, 23: 512}  # VGG16 max-pool index -> channels of its input


def lpips_trunk(net: str) -> TappedFeatures:
    """The LPIPS trunk ``net`` (``"alex"``, ``"vgg"``, ``"squeeze"``) with untouched parameters."""
    import torchvision

    if net == "alex":
        return TappedFeatures(torchvision.models.alexnet(weights=None).features, ALEX_TAPS, "lpips")
    if net == "vgg":
        return TappedFeatures(_vgg16_features(), VGG_TAPS, "lpips")
    if net == "squeeze":
        return TappedFeatures(torchvision.models.squeezenet1_1(weights=None).features, SQUEEZE_TAPS, "lpips")
    raise ValueError(f"unknown LPIPS net {net!r}")


def _vgg16_features() -> nn.Sequential:
    """``torchvision.models.vgg16().features`` without building (and initialising) the 123M-parameter
    classifier that is never used: torchvision's own ``make_layers`` with VGG16's configuration."""
    import torchvision

    try:
        from torchvision.models.vgg import cfgs, make_layers

        return make_layers(cfgs["D"], batch_norm=False)
    except (ImportError, KeyError):  # pragma: no cover - torchvision without these module-level names
        return torchvision.models.vgg16(weights=None).features


def dists_trunk() -> TappedFeatures:
    """VGG16's stack up to relu5_3 with L2 pooling in place of max pooling, untouched parameters."""
    features = _vgg16_features()
    for index, channels in DISTS_POOLS.items():
        features[index] = L2Pooling(channels)
    return TappedFeatures(features, VGG_TAPS, "imagenet", input_tap="input")


def features_only(state_dict: dict, model: nn.Module) -> dict:
    """The ``features.*`` entries of a torchvision classifier's ``state_dict`` (the classifier is not used)."""
    return {k: v for k, v in state_dict.items() if k.startswith("features.")}
