"""Feature backbones: one registry (:mod:`.registry`), one factory (:mod:`.factory`), the loaded
:class:`~.backbone.Backbone`, weights resolution (:mod:`.weights`) and the built-in networks.

Importing this package registers the built-in backbones (:mod:`.builtin` for the FID
Inception-v3, :mod:`.vit`, :mod:`.clip`, :mod:`.perceptual` for the LPIPS and DISTS trunks,
:mod:`.dreamsim` for DreamSim's encoders and DINO ViT-B/16, :mod:`.effnet`), which register themselves where they
are defined;
nothing here imports torch, timm or open_clip.
"""

from pytest_i2i.backbones import builtin as _builtin  # noqa: F401  (registers the FID Inception-v3)
from pytest_i2i.backbones import clip as _clip  # noqa: F401  (registers the CLIP backbones)
from pytest_i2i.backbones import dreamsim as _dreamsim  # noqa: F401  (registers DreamSim's encoders, dino-vitb16)
from pytest_i2i.backbones import perceptual as _perceptual  # noqa: F401  (registers the LPIPS and DISTS trunks)
from pytest_i2i.backbones import effnet as _effnet  # noqa: F401  (registers effnet-lite0)
from pytest_i2i.backbones import vit as _vit  # noqa: F401  (registers the ViT backbones)
