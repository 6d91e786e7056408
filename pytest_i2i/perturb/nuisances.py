"""Nuisance transforms: global changes that are not edits, which a good metric should mostly ignore.

Each returns a :class:`~pytest_i2i.perturb.base.Perturbation` with an all-``True`` mask (the
change is global) and is deterministic for a seed:

* :func:`shift`: translate by ``pixels`` (default 1) along a seeded direction, borders replicated.
* :func:`jpeg_q95`: JPEG at quality 95 (:func:`~pytest_i2i.perturb.ops.jpeg_round_trip`).
* :func:`resize_round_trip`: down-scale by ``factor`` and back (clean bicubic, antialiased).
* :func:`global_brightness`: add ``delta`` (default 0.02) to every pixel, sign seeded, clipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from pytest_i2i.errors import I2IInputError, UnknownNameError
from pytest_i2i.perturb.base import Perturbation, check_image, check_number, check_seed

__all__ = ["NUISANCES", "apply_nuisance", "global_brightness", "jpeg_q95", "resize_round_trip", "shift"]

_DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))


def _global(img: torch.Tensor, out: torch.Tensor, params: dict[str, Any]) -> Perturbation:
    mask = torch.ones(img.shape[1:], dtype=torch.bool)
    return Perturbation(out.to(torch.float32).clamp(0.0, 1.0), mask, params)


def shift(image: Any, *, pixels: int = 1, seed: int = 0) -> Perturbation:
    """Translate the image by ``pixels`` right, left, down or up (chosen by ``seed``); the vacated border repeats the edge.

    Raises:
        I2IInputError: ``pixels`` not an int in [1, 8], bad image/seed.
    """
    img = check_image(image)
    seed = check_seed(seed)
    if isinstance(pixels, bool) or not isinstance(pixels, int) or not 1 <= pixels <= 8:
        raise I2IInputError(f"`pixels` must be an int in [1, 8]; got {pixels!r}")
    dy, dx = _DIRECTIONS[int(np.random.default_rng(seed).integers(0, 4))]
    h, w = img.shape[1:]
    ys = (torch.arange(h) - dy * pixels).clamp(0, h - 1)
    xs = (torch.arange(w) - dx * pixels).clamp(0, w - 1)
    return _global(img, img[:, ys][:, :, xs], {"op": "shift", "pixels": pixels, "direction": [dy, dx], "seed": seed})


def jpeg_q95(image: Any, *, quality: int = 95, seed: int = 0) -> Perturbation:
    """JPEG compression at ``quality`` (default 95) of the whole image. ``seed`` is unused."""
    from pytest_i2i.perturb.ops import _check_quality, jpeg_round_trip

    img = check_image(image)
    check_seed(seed)
    q = _check_quality(quality)
    return _global(img, jpeg_round_trip(img, q), {"op": "jpeg_q95", "quality": q, "seed": seed})


def resize_round_trip(image: Any, *, factor: float = 0.5, seed: int = 0) -> Perturbation:
    """Down-scale by ``factor`` (in [0.25, 1)) and back to the original size, both with clean bicubic resizing.

    Raises:
        I2IInputError: ``factor`` out of range, bad image. ``seed`` is unused.
    """
    from pytest_i2i.images.resize import resize_batch

    img = check_image(image)
    check_seed(seed)
    f = check_number(factor, "factor", 0.25, 1.0)
    if f == 1.0:
        raise I2IInputError("`factor` must be below 1 (1 is the identity)")
    h, w = img.shape[1:]
    small = resize_batch(img[None], (max(1, round(h * f)), max(1, round(w * f))), "clean")
    return _global(img, resize_batch(small, (h, w), "clean")[0],
                   {"op": "resize_round_trip", "factor": f, "seed": seed})


def global_brightness(image: Any, *, delta: float = 0.02, seed: int = 0) -> Perturbation:
    """Add ``delta`` (in (0, 0.1]) to every pixel, with a seeded sign, then clip to [0, 1]."""
    img = check_image(image)
    seed = check_seed(seed)
    d = check_number(delta, "delta", 0.0, 0.1, low_open=True)
    sign = 1.0 if np.random.default_rng(seed).integers(0, 2) else -1.0
    return _global(img, img + sign * d, {"op": "global_brightness", "delta": sign * d, "seed": seed})


NUISANCES: dict[str, Callable[..., Perturbation]] = {
    "shift": shift, "jpeg_q95": jpeg_q95, "resize_round_trip": resize_round_trip,
    "global_brightness": global_brightness,
}


def apply_nuisance(image: Any, name: str, *, seed: int = 0) -> Perturbation:
    """Apply the nuisance ``name`` (a key of :data:`NUISANCES`) with its default strength."""
    if name not in NUISANCES:
        raise UnknownNameError("nuisance", str(name), NUISANCES)
    return NUISANCES[name](image, seed=seed)
