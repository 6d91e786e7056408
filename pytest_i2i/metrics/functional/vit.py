"""ViT feature maths: patch-token cosine distance maps and their pooling.

Cosines come from :func:`pytest_i2i.metrics.functional.similarity.cosine_similarity`; patch
tokens use ``eps=MAP_EPS``, so a zero vector gives 0, never NaN.

* DINO-I (Ruiz et al. 2023, ImagenHub): cos of the CLS features of a pair (higher is more similar).
* Patch distance: d_ij = 1 − cos(t^a_ij, t^b_ij) between the patch tokens at grid cell (i, j)
  of two aligned images, a map in [0, 2] per pair; pooled per pair to its mean, its max and the
  mean of its top-k % cells.

All functions compute in float64 (on the CPU for devices without float64) and return float64
tensors; they track no gradients. The Fréchet distance on CLS features (FD-DINOv2) is
:func:`pytest_i2i.metrics.functional.frechet.frechet_distance`.
"""

from __future__ import annotations

import math

import torch  # noqa: F401  (the docstring examples use it)
from torch import Tensor

from pytest_i2i.errors import I2IInputError
from pytest_i2i.metrics.functional._tensors import as_float64
from pytest_i2i.metrics.functional.similarity import MAP_EPS, cosine_similarity

__all__ = ["patch_distance_map", "pool_distance_map"]


def _check_same(x: Tensor, y: Tensor, names: tuple[str, str], ndim: int, layout: str) -> None:
    if x.ndim != ndim:
        raise I2IInputError(f"`{names[0]}` must have shape {layout}; got {tuple(x.shape)}")
    if x.shape != y.shape:
        raise I2IInputError(f"`{names[0]}` and `{names[1]}` must have the same shape; "
                            f"got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[-1] == 0:
        raise I2IInputError(f"`{names[0]}` has feature dimension 0")


def patch_distance_map(tokens_a: Tensor, tokens_b: Tensor) -> Tensor:
    """Per-patch cosine distance d_ij = 1 − cos(aᵢⱼ, bᵢⱼ) between the patch tokens of aligned images.

    Args:
        tokens_a, tokens_b: (N, h, w, D) patch tokens of N image pairs on the same grid.

    Returns:
        (N, h, w) float64 distances, clamped to [0, 2] (round-off can put 1 − cos just outside).

    Raises:
        I2IInputError: not tensors, shapes differ or are not (N, h, w, D), or values are not finite.

    Example:
        >>> import torch
        >>> a = torch.ones(1, 2, 2, 3)
        >>> patch_distance_map(a, a).tolist()
        [[[0.0, 0.0], [0.0, 0.0]]]
    """
    a, b = as_float64(tokens_a, "tokens_a", finite=True), as_float64(tokens_b, "tokens_b", finite=True)
    _check_same(a, b, ("tokens_a", "tokens_b"), 4, "(N, h, w, D)")
    return (1.0 - cosine_similarity(a, b, eps=MAP_EPS)).clamp(0.0, 2.0)


def pool_distance_map(dist_map: Tensor, top_k_percent: float = 10.0) -> dict[str, Tensor]:
    """Pool each (h, w) distance map to its mean, its max and the mean of its top-k % cells.

    k = max(1, ⌈top_k_percent / 100 · h · w⌉) cells (e.g. 20 of a 14 x 14 map at 10 %).

    Args:
        dist_map: (N, h, w) maps, e.g. from :func:`patch_distance_map`.
        top_k_percent: share of the cells averaged for ``"top_k_mean"``, in (0, 100].

    Returns:
        ``{"mean": (N,), "max": (N,), "top_k_mean": (N,)}`` float64 tensors.

    Raises:
        I2IInputError: the map is not (N, h, w) with h, w ≥ 1, holds non-finite values, or
            ``top_k_percent`` is outside (0, 100].

    Example:
        >>> import torch
        >>> m = torch.tensor([[[0.0, 0.0], [0.0, 1.0]]])
        >>> {k: v.tolist() for k, v in pool_distance_map(m, top_k_percent=50).items()}
        {'mean': [0.25], 'max': [1.0], 'top_k_mean': [0.5]}
    """
    m = as_float64(dist_map, "dist_map", finite=True)
    if m.ndim != 3 or m.shape[1] == 0 or m.shape[2] == 0:
        raise I2IInputError(f"`dist_map` must have shape (N, h, w) with h, w >= 1; got {tuple(m.shape)}")
    if not 0.0 < float(top_k_percent) <= 100.0:
        raise I2IInputError(f"`top_k_percent` must be in (0, 100]; got {top_k_percent}")
    flat = m.flatten(1)
    k = max(1, math.ceil(float(top_k_percent) / 100.0 * flat.shape[1]))
    return {
        "mean": flat.mean(1),
        "max": flat.amax(1),
        "top_k_mean": flat.topk(min(k, flat.shape[1]), dim=1).values.mean(1),
    }
