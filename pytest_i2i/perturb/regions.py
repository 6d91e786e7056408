"""Regions for local edits: box, ellipse, random smooth blob, or a given mask.

Area rule (every generated region): a region of area fraction ``area`` on an ``H x W`` image has
exactly ``k = max(1, round(area * H * W))`` pixels, so the achieved fraction ``k / (H W)`` is
within half a pixel of the request (relative error at most ``0.5 / (area H W)``, i.e. within 1 %
whenever the region has at least 50 pixels, and never off by more than one pixel). Shapes are
discretised by ranking pixels and keeping the ``k`` best:

* :func:`box`: an ``h x w`` rectangle with ``h w <= k`` plus a partial extra column of the
  remaining ``k - h w < h`` pixels on its right (so the count is exact); aspect ``h / w``
  log-uniform in [1/2, 2].
* :func:`ellipse`: the ``k`` pixels of smallest normalised elliptic radius around a centre;
  aspect log-uniform in [1/2, 2], rotation uniform.
* :func:`blob`: the ``k`` pixels of largest value of a Gaussian envelope modulated by smoothed
  white noise (a random, smooth, mostly connected shape).

Placement, aspect and rotation are drawn from ``numpy.random.default_rng(seed)``; the same seed
gives the same region. Areas must lie in [0.001, 0.5]. Ties in the ranking are broken by pixel
index (row-major), so results are deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from pytest_i2i.errors import I2IInputError
from pytest_i2i.perturb.base import Region, check_area, check_mask, check_seed, target_pixels

__all__ = ["REGION_KINDS", "blob", "box", "ellipse", "given", "make_region"]


def _check_size(size: Any) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise I2IInputError(f"`size` must be (H, W); got {size!r}") from None
    if h < 2 or w < 2:
        raise I2IInputError(f"`size` must be at least (2, 2); got {size!r}")
    return h, w


def _common(size: Any, area: Any, seed: Any) -> tuple[tuple[int, int], float, int, int, np.random.Generator]:
    hw = _check_size(size)
    a = check_area(area)
    s = check_seed(seed)
    return hw, a, s, target_pixels(a, hw), np.random.default_rng(s)


def _top_k(score: np.ndarray, k: int) -> torch.Tensor:
    """Bool mask of the ``k`` largest scores; ties broken by row-major index (stable sort)."""
    order = np.argsort(-score.ravel(), kind="stable")[:k]
    flat = np.zeros(score.size, dtype=bool)
    flat[order] = True
    return torch.from_numpy(flat.reshape(score.shape))


def _aspect(rng: np.random.Generator) -> float:
    return float(math.exp(rng.uniform(math.log(0.5), math.log(2.0))))


def _centre(rng: np.random.Generator, extent: float, length: int) -> float:
    """A centre coordinate that keeps ``extent`` pixels on each side inside ``length`` when possible."""
    low, high = extent - 0.5, length - 0.5 - extent
    return float(rng.uniform(low, high)) if high > low else (length - 1) / 2.0


def box(size: tuple[int, int], area: float, *, seed: int = 0) -> Region:
    """A box of exactly ``max(1, round(area H W))`` pixels (see the module docstring).

    Args:
        size: ``(H, W)`` of the image.
        area: fraction of the image's pixels, in [0.001, 0.5].
        seed: the seed of the aspect ratio and the position.

    Returns:
        A :class:`Region`; ``params`` holds ``kind``, ``area`` (requested), ``pixels``, ``seed``,
        ``top``, ``left``, ``height``, ``width`` and ``extra_column`` (pixels in the partial column).

    Raises:
        I2IInputError: a bad ``size``, ``area`` or ``seed``.

    Example:
        >>> box((100, 100), 0.05, seed=1).mask.sum().item()
        500
    """
    (hh, ww), a, s, k, rng = _common(size, area, seed)
    rho = _aspect(rng)
    h = int(min(hh, max(1, round(math.sqrt(k * rho)))))
    h = min(h, k)
    while k // h + (1 if k % h else 0) > ww:
        h += 1
    w, extra = divmod(k, h)
    cols = w + (1 if extra else 0)
    top = int(rng.integers(0, hh - h + 1))
    left = int(rng.integers(0, ww - cols + 1))
    mask = torch.zeros(hh, ww, dtype=torch.bool)
    mask[top:top + h, left:left + w] = True
    if extra:
        mask[top:top + extra, left + w] = True
    return Region(mask, {"kind": "box", "area": a, "pixels": k, "seed": s, "top": top, "left": left,
                         "height": h, "width": w, "extra_column": extra})


def ellipse(size: tuple[int, int], area: float, *, seed: int = 0) -> Region:
    """A (rotated) ellipse of exactly ``max(1, round(area H W))`` pixels (see the module docstring).

    Args:
        size: ``(H, W)`` of the image.
        area: fraction of the image's pixels, in [0.001, 0.5].
        seed: the seed of the aspect ratio, rotation and position.

    Returns:
        A :class:`Region`; ``params`` holds ``kind``, ``area``, ``pixels``, ``seed``, ``center``
        ([y, x]), ``radii`` ([ry, rx] of the continuous ellipse) and ``angle_deg``.

    Raises:
        I2IInputError: a bad ``size``, ``area`` or ``seed``.
    """
    (hh, ww), a, s, k, rng = _common(size, area, seed)
    rho = _aspect(rng)
    ry, rx = math.sqrt(k * rho / math.pi), math.sqrt(k / (rho * math.pi))
    angle = float(rng.uniform(0.0, math.pi))
    reach = max(ry, rx)
    cy, cx = _centre(rng, reach, hh), _centre(rng, reach, ww)
    y, x = np.mgrid[0:hh, 0:ww].astype(np.float64)
    dy, dx = y - cy, x - cx
    u = dy * math.cos(angle) - dx * math.sin(angle)
    v = dy * math.sin(angle) + dx * math.cos(angle)
    radius2 = (u / ry) ** 2 + (v / rx) ** 2
    return Region(_top_k(-radius2, k), {"kind": "ellipse", "area": a, "pixels": k, "seed": s,
                                        "center": [cy, cx], "radii": [ry, rx], "angle_deg": math.degrees(angle)})


def blob(size: tuple[int, int], area: float, *, seed: int = 0, roughness: float = 0.6) -> Region:
    """A random smooth blob of exactly ``max(1, round(area H W))`` pixels (see the module docstring).

    The ranking field is ``exp(-d² / (2 r²)) * (1 + roughness * n)`` with ``d`` the distance to
    a seeded centre, ``r = sqrt(k / π)`` and ``n`` white noise smoothed by a Gaussian of
    ``max(1, r / 2)`` pixels and scaled to unit standard deviation.

    Args:
        size: ``(H, W)`` of the image.
        area: fraction of the image's pixels, in [0.001, 0.5].
        seed: the seed of the centre and the noise.
        roughness: how far the outline departs from a disc, in [0, 1].

    Returns:
        A :class:`Region`; ``params`` holds ``kind``, ``area``, ``pixels``, ``seed``, ``center``,
        ``radius`` and ``roughness``.

    Raises:
        I2IInputError: a bad ``size``, ``area``, ``seed`` or ``roughness``.
    """
    from scipy.ndimage import gaussian_filter

    from pytest_i2i.perturb.base import check_number

    (hh, ww), a, s, k, rng = _common(size, area, seed)
    roughness = check_number(roughness, "roughness", 0.0, 1.0)
    r = math.sqrt(k / math.pi)
    cy, cx = _centre(rng, r, hh), _centre(rng, r, ww)
    noise = gaussian_filter(rng.standard_normal((hh, ww)), sigma=max(1.0, r / 2.0), mode="reflect")
    noise = noise / (noise.std() + 1e-12)
    y, x = np.mgrid[0:hh, 0:ww].astype(np.float64)
    envelope = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2.0 * r * r))
    field = envelope * (1.0 + roughness * noise)
    return Region(_top_k(field, k), {"kind": "blob", "area": a, "pixels": k, "seed": s, "center": [cy, cx],
                                     "radius": r, "roughness": roughness})


def given(mask: Any, size: tuple[int, int] | None = None) -> Region:
    """A region from a user's boolean ``(H, W)`` mask (checked against ``size`` when given).

    Raises:
        I2IInputError: the mask is not boolean, empty, or of the wrong shape.
    """
    m = torch.as_tensor(mask) if not isinstance(mask, torch.Tensor) else mask
    shape = tuple(m.shape) if size is None else _check_size(size)
    if m.ndim != 2:
        raise I2IInputError(f"`mask` must be a 2-D (H, W) boolean array; got shape {tuple(m.shape)}")
    m = check_mask(m, shape)
    pixels = int(m.sum())
    return Region(m.clone(), {"kind": "given", "area": pixels / m.numel(), "pixels": pixels})


REGION_KINDS: dict[str, Callable[..., Region]] = {"box": box, "ellipse": ellipse, "blob": blob}


def make_region(kind: str, size: tuple[int, int], area: float, *, seed: int = 0) -> Region:
    """A region by name: ``"box"``, ``"ellipse"`` or ``"blob"``.

    Raises:
        UnknownNameError: ``kind`` is not one of them.
    """
    from pytest_i2i.errors import UnknownNameError

    if kind not in REGION_KINDS:
        raise UnknownNameError("region kind", str(kind), REGION_KINDS)
    return REGION_KINDS[kind](size, area, seed=seed)
