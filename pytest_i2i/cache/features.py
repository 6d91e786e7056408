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


def feature_key(parts: Mapping[str, Any], image_sha256: str, rows: int | None = None) -> str:
    """The cache key of one image's features: ``parts`` (backbone, weights sha256, resize mode,
    input size, centre crop, dtype, device type), the sha256 of the decoded image and ``rows``,
    the number of images in the forward pass that computes it.

    CPU (and GPU) kernels pick their algorithm by batch size, so an image's features differ in
    the last bits between a forward pass of 3 and one of 8 images (measured: up to 7e-7 on the
    FID Inception), while at a given batch size they do not depend on the other images or on
    the image's position. Keying on ``rows`` makes a memo or cache hit bit-identical to what the
    call would compute itself, whichever call (FID at batch size 3, IS at 16) filled it.
    """
    if rows is None:
        return make_key(kind=FEATURES, image_sha256=image_sha256, **parts)
    return make_key(kind=FEATURES, image_sha256=image_sha256, batch_rows=int(rows), **parts)


def text_key(parts: Mapping[str, Any], text: str) -> str:
    """The cache key of one text's embedding: ``parts`` (backbone, weights sha256, device type) and the text."""
    return make_key(kind=TEXT, text=text, **parts)
