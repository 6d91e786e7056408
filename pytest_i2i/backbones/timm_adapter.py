"""timm models as feature backbones: an adapter module, seeded random init and checkpoint filtering.

:class:`TimmFeatures` wraps a timm model (``weights_target`` is the inner model, so a published
timm ``state_dict`` loads into it unchanged). Its ``forward`` takes (N, 3, H, W) images at the backbone's
input size, already normalised with the timm pretrained cfg's mean/std by the image pipeline
(the spec's ``mean``/``std``), runs ``forward_features`` and returns
``{"cls": (N, D), "patch_tokens": (N, h, w, D)}``.

This module imports torch and timm; :mod:`pytest_i2i.backbones.vit` registers the backbones
without importing either.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

from pytest_i2i.errors import I2IInputError


class TimmFeatures(nn.Module):
    """A timm model returning the pooled (CLS) feature and the patch-token grid.

    Outputs:
        cls: (N, D) ``model.forward_head(features, pre_logits=True)``. For ViTs pooled with the
            class token (DINO, DINOv2 and most timm ViTs) this is the final-norm CLS token; for
            models without one it is the model's own pooled pre-logits feature.
        patch_tokens: (N, h, w, D) the final-norm tokens of the image patches, prefix tokens
            (class and register tokens, ``model.num_prefix_tokens``) dropped; for convolutional
            models the last feature map, channels last.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.model.forward_features(x)
        return {"cls": self.model.forward_head(feats, pre_logits=True), "patch_tokens": self._grid(feats)}

    def _grid(self, feats: torch.Tensor) -> torch.Tensor:
        name = type(self.model).__name__
        if feats.ndim == 4:
            fmt = getattr(self.model, "output_fmt", "NCHW")
            return feats if getattr(fmt, "value", fmt) == "NHWC" else feats.permute(0, 2, 3, 1)
        if feats.ndim != 3:
            raise I2IInputError(f"timm model {name} gives features of shape {tuple(feats.shape)}; "
                                "expected tokens (N, L, D) or a feature map (N, C, H, W)")
        tokens = feats[:, getattr(self.model, "num_prefix_tokens", 0):]
        grid = getattr(getattr(self.model, "patch_embed", None), "grid_size", None)
        if grid is None or grid[0] * grid[1] != tokens.shape[1]:
            raise I2IInputError(f"timm model {name}: its {tokens.shape[1]} patch tokens do not form the "
                                f"patch grid {grid}; it cannot serve as a patch-token backbone")
        return tokens.reshape(tokens.shape[0], grid[0], grid[1], tokens.shape[2])


def create(model_name: str, **model_kwargs: Any) -> TimmFeatures:
    """The timm architecture ``model_name`` (``arch.tag``) in the adapter, parameters untouched.

    The classifier head is kept as the pretrained cfg defines it, so the published file loads
    strictly; the cfg's mean/std are applied by the image pipeline (the spec's ``mean``/``std``).
    """
    import timm

    return TimmFeatures(timm.create_model(model_name, pretrained=False, **model_kwargs))


def init_random(model: nn.Module, seed: int) -> None:
    """Seeded random init with well-scaled activations (for tests only; results are uncalibrated).

    Every parameter is drawn from ``torch.Generator().manual_seed(seed)``: matrices and kernels
    normal with std 1/√fan_in, biases N(0, 0.02²), other tensors (class/register tokens,
    position embeddings) N(0, 0.02²), vectors (norm gains, layer scales) 1 + N(0, 0.1²); batch
    norm running statistics are drawn too. timm's own init is not used: it sets layer scales to
    1e-5 and norm gains to 1, which makes the CLS feature almost the same for every image.
    Other buffers are constants of the architecture (e.g. index tables) and are left as built.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "bias":
                value = 0.02 * torch.randn(p.shape, generator=g)
            elif p.ndim >= 2 and leaf == "weight":
                value = torch.randn(p.shape, generator=g) * (p[0].numel() ** -0.5)
            elif p.ndim >= 2:
                value = 0.02 * torch.randn(p.shape, generator=g)
            else:
                value = 1 + 0.1 * torch.randn(p.shape, generator=g)
            p.copy_(value)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(1 + 0.1 * torch.rand(b.shape, generator=g))


def filter_state_dict(model_name: str, state_dict: dict, model: nn.Module) -> dict:
    """Apply the ``checkpoint_filter_fn`` of the timm module defining ``model_name``, if it has one.

    For ViTs it resamples a position embedding made for another image size (e.g. DINOv2's 518 px
    checkpoint into a 224 px model) and converts original DINOv2 / OpenCLIP key layouts, as timm
    does when it loads pretrained weights.
    """
    from timm.models import model_entrypoint

    module = sys.modules[model_entrypoint(model_name.partition(".")[0]).__module__]
    fn = getattr(module, "checkpoint_filter_fn", None)
    return fn(state_dict, model) if fn is not None else state_dict
