"""Tensor checks shared by the functional metrics."""

from __future__ import annotations

import torch
from torch import Tensor

from pytest_i2i.errors import I2IInputError


def as_float64(x: Tensor, name: str, *, finite: bool = False) -> Tensor:
    """``x`` detached in float64 (moved off MPS, which has no float64); NaN/Inf refused when ``finite``."""
    if not isinstance(x, Tensor):
        raise I2IInputError(f"`{name}` must be a torch.Tensor; got {type(x).__name__}")
    x = x.detach()
    if x.device.type == "mps":
        x = x.cpu()
    x = x.to(torch.float64)
    if finite and not torch.isfinite(x).all():
        raise I2IInputError(f"`{name}` contains NaN or Inf")
    return x
