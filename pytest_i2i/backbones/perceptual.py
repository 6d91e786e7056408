"""The trunks of the learned perceptual metrics, registered on import: ``lpips-alex``, ``lpips-vgg``,
``lpips-squeeze`` (LPIPS, Zhang et al. 2018) and ``dists-vgg16`` (DISTS, Ding et al. 2020).

Each is a torchvision feature stack (:mod:`pytest_i2i.backbones.torchvision_stacks`) tapped after
the layers the metric reads, with the metric's own input scaling inside the module; the batch it
takes is in [0, 1] at the images' own size (LPIPS and DISTS compare images at full resolution, so
their front-ends call the backbone on the pairs directly; ``input_size`` only serves
:meth:`~pytest_i2i.backbones.backbone.Backbone.features` on image sets).

Published weights: torchvision's ImageNet classifiers, found by the usual resolution order
(:mod:`pytest_i2i.backbones.weights`) under their torch-hub names and verified against the sha256
prefix those names carry; only the ``features.*`` entries are loaded. The learned heads (LPIPS'
linear layers, DISTS' α/β) are separate small files, see :mod:`pytest_i2i.metrics.perceptual`.

Imports neither torch nor torchvision.
"""

from __future__ import annotations

from functools import partial

from pytest_i2i.backbones.registry import register_backbone
from pytest_i2i.backbones.spec import BackboneSpec
from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile

_TV_URL = "https://download.pytorch.org/models/"
_TV_LICENSE = "BSD-3-Clause (torchvision)"

ALEXNET_FILE = WeightsFile(filename="alexnet-owt-7be5be79.pth", url=_TV_URL + "alexnet-owt-7be5be79.pth")
VGG16_FILE = WeightsFile(filename="vgg16-397923af.pth", url=_TV_URL + "vgg16-397923af.pth")
SQUEEZENET1_1_FILE = WeightsFile(filename="squeezenet1_1-b8a52dc0.pth", url=_TV_URL + "squeezenet1_1-b8a52dc0.pth")

#: LPIPS net name -> its trunk's backbone name
LPIPS_BACKBONES = {"alex": "lpips-alex", "vgg": "lpips-vgg", "squeeze": "lpips-squeeze"}
DISTS_BACKBONE = "dists-vgg16"


def _lpips(net: str):
    from pytest_i2i.backbones.torchvision_stacks import lpips_trunk

    return lpips_trunk(net)


def _dists():
    from pytest_i2i.backbones.torchvision_stacks import dists_trunk

    return dists_trunk()


def _init_random(model, seed: int) -> None:
    from pytest_i2i.backbones.timm_adapter import init_random

    init_random(model, seed)


def _features_only(state_dict: dict, model) -> dict:
    from pytest_i2i.backbones.torchvision_stacks import features_only

    return features_only(state_dict, model)


def _trunk_spec(name: str, create, wf: WeightsFile, source: str, outputs: tuple[str, ...],
                description: str) -> BackboneSpec:
    return BackboneSpec(
        name=name,
        create=create,
        init_random=_init_random,
        pretrained=PretrainedCfg(files=(wf,), source=source, license=_TV_LICENSE),
        input_size=(256, 256),
        default_resize="clean",
        outputs=outputs,
        description=description,
        filter_state_dict=_features_only,
        # oneDNN's channels-last convolutions are faster on CPU, and the heads' reductions over
        # channels read contiguous memory (measured: trunk 1.5x, LPIPS head 6x on AlexNet, 256 px)
        channels_last=True,
    )


LPIPS_ALEX = register_backbone(_trunk_spec(
    "lpips-alex", partial(_lpips, "alex"), ALEXNET_FILE, "torchvision AlexNet (IMAGENET1K_V1)",
    ("relu1", "relu2", "relu3", "relu4", "relu5"),
    "LPIPS trunk: torchvision AlexNet features, 5 ReLU taps, LPIPS input scaling, images at their own size",
))
LPIPS_VGG = register_backbone(_trunk_spec(
    "lpips-vgg", partial(_lpips, "vgg"), VGG16_FILE, "torchvision VGG16 (IMAGENET1K_V1)",
    ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"),
    "LPIPS trunk: torchvision VGG16 features, 5 ReLU taps, LPIPS input scaling, images at their own size",
))
LPIPS_SQUEEZE = register_backbone(_trunk_spec(
    "lpips-squeeze", partial(_lpips, "squeeze"), SQUEEZENET1_1_FILE, "torchvision SqueezeNet 1.1 (IMAGENET1K_V1)",
    ("relu1", "relu2", "relu3", "relu4", "relu5", "relu6", "relu7"),
    "LPIPS trunk: torchvision SqueezeNet 1.1 features, 7 taps, LPIPS input scaling, images at their own size",
))
DISTS_VGG16 = register_backbone(_trunk_spec(
    DISTS_BACKBONE, _dists, VGG16_FILE, "torchvision VGG16 (IMAGENET1K_V1), max pooling replaced by L2 pooling",
    ("input", "relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"),
    "DISTS trunk: torchvision VGG16 with L2 pooling, the input and 5 ReLU taps, images at their own size",
))
