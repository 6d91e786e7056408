"""The FID Inception-v3 backbone, registered on import (by ``pytest_i2i.backbones``, with the ViT
and CLIP backbones of :mod:`.vit` and :mod:`.clip`). Imports no torch."""

from __future__ import annotations

from pytest_i2i.backbones.registry import register_backbone
from pytest_i2i.backbones.spec import BackboneSpec
from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile


def _inception():
    from pytest_i2i.backbones.inception import FIDInceptionV3

    return FIDInceptionV3()


def _inception_init(model, seed: int) -> None:
    from pytest_i2i.backbones.inception import init_random

    init_random(model, seed)


INCEPTION_FID = register_backbone(
    BackboneSpec(
        name="inception-fid",
        create=_inception,
        init_random=_inception_init,
        pretrained=PretrainedCfg(
            files=(
                # The two files are the same bytes: public code pins pytorch-fid's URL and torch-fidelity's
                # URL to this sha256 and size (independently), and both names carry its torch-hub prefix.
                WeightsFile(
                    filename="pt_inception-2015-12-05-6726825d.pth",
                    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
                    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                    "pt_inception-2015-12-05-6726825d.pth",
                    size=95_628_359,
                ),
                WeightsFile(
                    filename="weights-inception-2015-12-05-6726825d.pth",
                    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
                    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                    "weights-inception-2015-12-05-6726825d.pth",
                    size=95_628_359,
                ),
            ),
            source="TensorFlow FID Inception (2015-12-05) ported by pytorch-fid / torch-fidelity",
            license="Apache-2.0",
        ),
        input_size=(299, 299),
        default_resize="clean",
        outputs=("pool3", "logits", "logits_unbiased"),
        description="FID Inception-v3 (pytorch-fid layout): pool3 2048-d features and 1008-way logits",
        channels_last=True,
        # the TensorFlow graph's 2x - 1: (x - 0.5) / 0.5 is the same float32 number for x in [0, 1]
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
    )
)
