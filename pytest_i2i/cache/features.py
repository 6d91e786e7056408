"""Backbone features and text embeddings in the on-disk cache (keys documented in :mod:`pytest_i2i.cache`).

Used by :meth:`pytest_i2i.backbones.registry.Backbone.iter_features` (RAM memo → this cache →
forward pass) and by CLIP's ``encode_text``. Values are stored bit-exactly (float32 as is).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pytest_i2i.cache import make_key
from pytest_i2i.cache.store import Store, pack_tensors, unpack_tensors

if TYPE_CHECKING:
    import torch

FEATURES = "features"
TEXT = "text"


def tensor_sha256(t: torch.Tensor) -> str:
    """sha256 of a tensor's shape, dtype and bytes (contiguous, on CPU)."""
    data = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{tuple(data.shape)}|{data.dtype}|".encode())
    h.update(memoryview(data.numpy()).cast("B"))  # the buffer itself: no per-image copy
    return h.hexdigest()


def preprocessing(backbone: Any, resize: str) -> dict[str, Any]:
    """Everything that, besides the image, determines a backbone's features."""
    from pytest_i2i.pipeline import autocast_dtype

    cast = autocast_dtype(backbone.device)
    return {"backbone": backbone.name, "weights_sha256": backbone.weights_sha256, "resize": resize,
            "input_size": list(backbone.input_size), "center_crop": bool(backbone.spec.center_crop),
            "dtype": "float32" if cast is None else f"autocast-{cast}".replace("torch.", ""),
            "device_type": backbone.device.type}


def feature_key(prep: Mapping[str, Any], image_sha256: str) -> str:
    """The cache key of one image's features under ``prep`` (from :func:`preprocessing`)."""
    return make_key(kind=FEATURES, image_sha256=image_sha256, **prep)


def text_key(backbone: Any, text: str) -> str:
    return make_key(kind=TEXT, backbone=backbone.name, weights_sha256=backbone.weights_sha256,
                    device_type=backbone.device.type, text=text)


def load_bundles(store: Store, ns: str, keys: Iterable[str]) -> dict[str, tuple[dict[str, torch.Tensor], dict]]:
    """``{key: (tensors, meta)}`` for the keys found intact (a malformed bundle is dropped as damaged)."""
    out = {}
    for key, payload in store.get_many(ns, keys).items():
        try:
            out[key] = unpack_tensors(payload)
        except ValueError as e:
            store.discard(ns, key, str(e))
    return out


def save_bundles(store: Store, ns: str, items: Mapping[str, tuple[Mapping[str, torch.Tensor], Mapping]]) -> None:
    """Store ``{key: (tensors, meta)}``."""
    store.put_many(ns, {key: pack_tensors(t, meta) for key, (t, meta) in items.items()})
