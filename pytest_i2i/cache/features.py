"""Keys of backbone features and text embeddings in the on-disk cache (documented in :mod:`pytest_i2i.cache`).

The key parts are plain data built by the backbone
(:meth:`~pytest_i2i.backbones.backbone.Backbone.feature_key_parts`, ``text_key_parts``);
:meth:`~pytest_i2i.backbones.backbone.Backbone.iter_features` looks features up in its memo,
then in this cache, then runs the network. Values are stored bit-exactly (float32 as is).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_i2i.cache import make_key

FEATURES = "features"
TEXT = "text"


def feature_key(parts: Mapping[str, Any], image_sha256: str) -> str:
    """The cache key of one image's features: ``parts`` (backbone, weights sha256, resize mode,
    input size, centre crop, dtype, device type) and the sha256 of the decoded image."""
    return make_key(kind=FEATURES, image_sha256=image_sha256, **parts)


def text_key(parts: Mapping[str, Any], text: str) -> str:
    """The cache key of one text's embedding: ``parts`` (backbone, weights sha256, device type) and the text."""
    return make_key(kind=TEXT, text=text, **parts)
