"""What every perturbation shares: the result type and the argument checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from pytest_i2i.errors import I2IInputError

MIN_AREA = 0.001
MAX_AREA = 0.5


@dataclass(frozen=True, eq=False)
class Perturbation:
    """One perturbed image, the exact region it may differ in, and how it was made.

    Attributes:
        image: the new image, float32 ``(3, H, W)`` in ``[0, 1]`` (the house format).
        mask: bool ``(H, W)``: ``True`` where the perturbation was applied. Local operations
            leave every pixel outside it bit-identical; nuisances are global (all ``True``).
        params: JSON-able description: operation, magnitude, region, seed and what was measured
            while applying it (e.g. the achieved colour difference).
    """

    image: torch.Tensor
    mask: torch.Tensor
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def area(self) -> float:
        """Fraction of the image's pixels inside the mask."""
        return float(self.mask.float().mean())


@dataclass(frozen=True, eq=False)
class Region:
    """A boolean ``(H, W)`` mask and the parameters that made it (kind, requested area, seed, ...)."""

    mask: torch.Tensor
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def area(self) -> float:
        return float(self.mask.float().mean())


def check_image(image: Any, name: str = "image") -> torch.Tensor:
    """The image as float32 ``(3, H, W)`` in ``[0, 1]``; raises :class:`I2IInputError` naming ``name``."""
    if not isinstance(image, torch.Tensor):
        raise I2IInputError(f"`{name}` must be a (3, H, W) float tensor in [0, 1]; got {type(image).__name__}")
    if image.ndim != 3 or image.shape[0] != 3:
        raise I2IInputError(f"`{name}` must have shape (3, H, W); got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise I2IInputError(f"`{name}` must be a float tensor with values in [0, 1]; got dtype {image.dtype}")
    if image.shape[1] < 2 or image.shape[2] < 2:
        raise I2IInputError(f"`{name}` must be at least 2x2 pixels; got {tuple(image.shape[1:])}")
    if not torch.isfinite(image).all() or image.min() < 0 or image.max() > 1:
        raise I2IInputError(f"`{name}` must hold finite values in [0, 1]")
    return image.detach().to("cpu", torch.float32)


def check_mask(mask: Any, size: tuple[int, int], name: str = "mask") -> torch.Tensor:
    """A non-empty bool ``(H, W)`` mask matching ``size``; raises :class:`I2IInputError` naming ``name``."""
    if isinstance(mask, Region):
        mask = mask.mask
    if not isinstance(mask, torch.Tensor):
        try:
            mask = torch.as_tensor(mask)
        except (TypeError, ValueError, RuntimeError):
            raise I2IInputError(f"`{name}` must be a boolean (H, W) array; got {type(mask).__name__}") from None
    if mask.dtype != torch.bool:
        raise I2IInputError(f"`{name}` must be boolean; got dtype {mask.dtype}")
    if tuple(mask.shape) != tuple(size):
        raise I2IInputError(f"`{name}` must have shape {tuple(size)} (the image's H, W); got {tuple(mask.shape)}")
    if not mask.any():
        raise I2IInputError(f"`{name}` is empty: a local edit needs at least one pixel")
    return mask.to("cpu")


def check_area(area: Any, name: str = "area") -> float:
    """An area fraction in ``[MIN_AREA, MAX_AREA]`` = [0.001, 0.5]."""
    try:
        value = float(area)
    except (TypeError, ValueError):
        raise I2IInputError(f"`{name}` must be a number; got {area!r}") from None
    if not MIN_AREA <= value <= MAX_AREA or math.isnan(value):
        raise I2IInputError(f"`{name}` must be an area fraction in [{MIN_AREA}, {MAX_AREA}]; got {area!r}")
    return value


def check_number(value: Any, name: str, low: float, high: float, *, low_open: bool = False) -> float:
    """A finite float in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise I2IInputError(f"`{name}` must be a number; got {value!r}") from None
    bad = math.isnan(v) or v > high or (v <= low if low_open else v < low)
    if bad:
        bracket = "(" if low_open else "["
        raise I2IInputError(f"`{name}` must be in {bracket}{low}, {high}]; got {value!r}")
    return v


def check_seed(seed: Any, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise I2IInputError(f"`{name}` must be a non-negative int; got {seed!r}")
    return seed


def target_pixels(area: float, size: tuple[int, int]) -> int:
    """The pixel count of a region of ``area``: ``max(1, round(area * H * W))`` (round half to even)."""
    return max(1, round(area * size[0] * size[1]))


def composite(original: torch.Tensor, edited: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``edited`` inside ``mask``, ``original`` (bit-identical) outside; clipped to [0, 1], float32."""
    edited = edited.to(torch.float32).clamp(0.0, 1.0)
    return torch.where(mask[None], edited, original)
