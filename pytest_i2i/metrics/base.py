"""What every metric front-end shares: backbone resolution, timing, and building the result."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pytest_i2i.backbones.registry import Backbone, backbone as build_backbone
from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.resize import check_resize_mode

def resolve_backbone(
    backbone: str | Backbone | None, default: str, weights: str | os.PathLike | None, device: Any
) -> Backbone:
    """A loaded :class:`Backbone` from a name (``None`` → ``default``) or an already loaded one."""
    if isinstance(backbone, Backbone):
        if weights is not None:
            raise I2IInputError("pass either a loaded backbone or weights=, not both")
        return backbone
    return build_backbone(backbone or default, weights=weights, device=device)


def resolve_resize(resize: str | None, bb: Backbone | None) -> str:
    if resize is None:
        return bb.spec.default_resize if bb is not None else "clean"
    return check_resize_mode(resize)


class Timer:
    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timer]:
    t = Timer()
    start = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - start


def backbone_fields(bb: Backbone) -> dict[str, Any]:
    """The provenance fields of a result computed with ``bb``."""
    return {"backbone": bb.name, "weights_sha256": bb.weights_sha256, "calibrated": bb.calibrated,
            "warnings": list(bb.warnings)}
