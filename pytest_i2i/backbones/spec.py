"""`BackboneSpec`: how to build one backbone and bring images to its input (data only, import-light)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_i2i.backbones.weights import PretrainedCfg

if TYPE_CHECKING:
    from torch import nn

    from pytest_i2i.backbones.backbone import Backbone


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone.

    Attributes:
        name: registry name, e.g. ``"inception-fid"``.
        create: returns the exact architecture with untouched parameters (no weights loaded).
            Its ``forward`` takes the prepared input (see ``mean``/``std``) and returns a dict
            of feature tensors.
        init_random: ``(model, seed)`` sets every parameter and buffer from the seed.
        pretrained: the published weights files.
        input_size: (H, W) the images are resized to before the forward pass.
        default_resize: the resize mode used when a metric is not told one.
        outputs: names of the feature tensors ``forward`` returns; the first is the global
            feature (used by the Fréchet distance by default). Outputs of shape (N, h, w, C),
            channels last, are spatial feature maps (what ``feature_map_distance`` compares).
        description: one line for ``i2i backbones``.
        channels_last: run convolutions in channels-last memory format (faster for CNNs on CPU
            with oneDNN; results differ from contiguous layout only by float round-off, ~1e-6).
        weights_target: the submodule a weights file is loaded into (default: the whole model),
            for models wrapped in an adapter that selects outputs.
        filter_state_dict: ``(state_dict, target_module) -> state_dict`` applied before loading
            (e.g. timm's ``checkpoint_filter_fn`` that resamples position embeddings).
        backbone_class: the :class:`~pytest_i2i.backbones.backbone.Backbone` subclass to build
            (e.g. one that also encodes text).
        center_crop: crop the centre to the input aspect ratio before resizing (CLIP / timm
            evaluation preprocessing); otherwise the whole image is resized.
        crop_pct: with ``center_crop``, the crop's side as a fraction of the largest centred
            region (the ImageNet evaluation crop, e.g. 0.875 = 224/256); 1 keeps it whole.
        mean, std: the pretrained config's per-channel normalisation, applied by the image
            pipeline after resizing (``(x - mean) / std``); ``None``: the network takes [0, 1].
        components: names of other registered backbones whose published weights this one is
            built on, resolved by their own rules next to this one's file (e.g. DreamSim's DINO
            base); the loaded backbone's ``weights_sha256`` then covers every file.
        load_weights: ``(model, path, {component: path}) -> None`` loads the files into the model
            (for published files that are not one state_dict, e.g. DreamSim's zip of base weights
            and LoRA adapters); default: the file's state_dict, strictly, into ``weights_target``.
    """

    name: str
    create: Callable[[], nn.Module]
    init_random: Callable[[nn.Module, int], None]
    pretrained: PretrainedCfg
    input_size: tuple[int, int]
    default_resize: str = "clean"
    outputs: tuple[str, ...] = ()
    description: str = ""
    channels_last: bool = False
    weights_target: Callable[[nn.Module], nn.Module] | None = None
    filter_state_dict: Callable[[dict, nn.Module], dict] | None = None
    backbone_class: type[Backbone] | None = None
    center_crop: bool = False
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    components: tuple[str, ...] = ()
    load_weights: Callable[[nn.Module, Path, dict[str, Path]], None] | None = None
    crop_pct: float = 1.0
