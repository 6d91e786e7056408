"""`FeatureMemo`: the in-memory LRU of per-image features that metrics sharing a backbone share."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class FeatureMemo:
    """Bounded in-memory LRU of per-image features, keyed like the on-disk cache.

    Lives on one loaded :class:`~pytest_i2i.backbones.backbone.Backbone`; keys are
    :func:`pytest_i2i.cache.features.feature_key` (backbone, weights, preprocessing and the
    sha256 of the decoded image). ``max_bytes`` bounds the memory (default 32 MiB, about 2000
    images of Inception features, so FID, KID and IS on one CI-sized set share their forward
    passes while peak memory stays independent of N on large sets; the on-disk cache covers
    the rest); 0 disables it.
    """

    def __init__(self, max_bytes: int = 32 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> dict | None:
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item

    def put(self, key: str, features: dict) -> None:
        size = sum(v.numel() * v.element_size() for v in features.values())
        if size > self.max_bytes or key in self._items:
            return
        self._items[key] = features
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self._bytes -= sum(v.numel() * v.element_size() for v in old.values())

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0
