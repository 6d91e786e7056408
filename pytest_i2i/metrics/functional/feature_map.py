"""Local feature distances: the one implementation behind ``feature_map_distance`` and ``vit_patch_distance``.

The unweighted "deep features" distance of Zhang et al. 2018 (LPIPS, eq. 1 with w_l = 1), kept
as a map. For each tapped layer l with (h_l, w_l, C_l) features of two aligned images:

    x̂ = x / (‖x‖₂ + ε) over the C_l channels at each position (ε = 1e-10, as LPIPS),
    d_l(i, j) = Σ_c (x̂ᵃ_ijc − x̂ᵇ_ijc)²     (= 2 − 2 cos(xᵃ_ij, xᵇ_ij) for non-zero vectors; in [0, 4]),

then each map is resampled to a common grid (the finest tapped grid; bilinear,
``align_corners=False``, as LPIPS's ``spatial=True`` upsampling) and the maps are averaged over
the layers: D = (1/L) Σ_l up(d_l). A map is pooled per pair to its mean, its max and the mean of
its top-k % cells (:func:`pool_distance_map`).

For grids that are integer multiples of each other (EfficientNet's 56/28/14/7, a ViT's single
grid) the bilinear upsampling preserves each map's mean exactly, so ``mean(D)`` equals the LPIPS
unweighted baseline (``lpips.LPIPS(lpips=False)``, which sums the layers) divided by L.

Channel sums, not channel means: a per-layer mean over channels would divide each layer by its
own C_l (24 to 320 channels here), i.e. weight layers by 1/C_l; LPIPS's unweighted baseline
(``diffs.sum(dim=1)`` in its code) weighs them equally. On one layer of ViT patch tokens D is
2 (1 − cos), twice the 1 − cos of the earlier ``vit_patch_distance``.

All functions compute in float64 (on the CPU for devices without float64) and track no gradients.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as TF
from torch import Tensor

from pytest_i2i.errors import I2IInputError
from pytest_i2i.metrics.functional._tensors import as_float64
from pytest_i2i.metrics.functional.perceptual import local_distance_map

__all__ = ["feature_map_distance_map", "layer_distance_map", "pool_distance_map"]

def _check_pair(a: Tensor, b: Tensor, names: tuple[str, str]) -> tuple[Tensor, Tensor]:
    x, y = as_float64(a, names[0], finite=True), as_float64(b, names[1], finite=True)
    if x.ndim != 4:
        raise I2IInputError(f"`{names[0]}` must have shape (N, h, w, C); got {tuple(x.shape)}")
    if x.shape != y.shape:
        raise I2IInputError(f"`{names[0]}` and `{names[1]}` must have the same shape; "
                            f"got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[1:]) == 0:
        raise I2IInputError(f"`{names[0]}` has an empty grid or no channels: {tuple(x.shape)}")
    return x, y.to(x.device)


def layer_distance_map(features_a: Tensor, features_b: Tensor) -> Tensor:
    """One layer's distance map d(i, j) = Σ_c (x̂ᵃ_ijc − x̂ᵇ_ijc)² of unit-normalised channel vectors
    (:func:`pytest_i2i.metrics.functional.perceptual.local_distance_map` without weights, on
    channels-last maps).

    Args:
        features_a, features_b: (N, h, w, C) feature maps (channels last) of N aligned image pairs.

    Returns:
        (N, h, w) float64 distances in [0, 4] (2 − 2 cos for non-zero vectors; 1 between a zero
        vector and a non-zero one, 0 between two zero vectors).

    Raises:
        I2IInputError: not tensors, shapes differ or are not (N, h, w, C), or values are not finite.

    Example:
        >>> a = torch.tensor([[[[1.0, 0.0]]]])
        >>> layer_distance_map(a, torch.tensor([[[[0.0, 2.0]]]])).round(decimals=6).tolist()
        [[[2.0]]]
    """
    x, y = _check_pair(features_a, features_b, ("features_a", "features_b"))
    return local_distance_map(x.permute(0, 3, 1, 2), y.permute(0, 3, 1, 2))


def feature_map_distance_map(
    layers_a: Sequence[Tensor], layers_b: Sequence[Tensor], grid: tuple[int, int] | None = None
) -> Tensor:
    """The distance map of N pairs over L tapped layers: D = (1/L) Σ_l up(d_l).

    Args:
        layers_a, layers_b: L tensors each, (N, h_l, w_l, C_l) feature maps of the same images,
            layer by layer (each layer may have its own grid and channel count).
        grid: the common (H, W) grid; default the finest tapped grid (largest h_l · w_l, the
            first such layer on ties).

    Returns:
        (N, H, W) float64 distances in [0, 4] (see :func:`layer_distance_map`).

    Raises:
        I2IInputError: no layers, different numbers of layers, a layer whose shapes differ or
            whose batch size differs from the others, or non-finite values.

    Example:
        >>> fine, coarse = torch.ones(1, 2, 2, 3), torch.ones(1, 1, 1, 5)
        >>> feature_map_distance_map([fine, coarse], [fine, -coarse]).round(decimals=6).tolist()
        [[[2.0, 2.0], [2.0, 2.0]]]
    """
    if len(layers_a) == 0:
        raise I2IInputError("feature_map_distance_map needs at least one layer")
    if len(layers_a) != len(layers_b):
        raise I2IInputError(f"{len(layers_a)} layers for a but {len(layers_b)} for b")
    maps = [layer_distance_map(a, b) for a, b in zip(layers_a, layers_b)]
    if len({m.shape[0] for m in maps}) != 1:
        raise I2IInputError(f"layers hold different numbers of images: {[m.shape[0] for m in maps]}")
    if grid is None:
        sizes = [m.shape[1] * m.shape[2] for m in maps]
        grid = tuple(maps[sizes.index(max(sizes))].shape[1:])
    total = torch.zeros((maps[0].shape[0], *grid), dtype=torch.float64, device=maps[0].device)
    for m in maps:
        if tuple(m.shape[1:]) != tuple(grid):
            m = TF.interpolate(m[:, None], size=grid, mode="bilinear", align_corners=False)[:, 0]
        total += m
    return total / len(maps)


def pool_distance_map(dist_map: Tensor, top_k_percent: float = 10.0) -> dict[str, Tensor]:
    """Pool each (h, w) distance map to its mean, its max and the mean of its top-k % cells.

    k = max(1, ⌈top_k_percent / 100 · h · w⌉) cells (e.g. 20 of a 14 x 14 map at 10 %).

    Args:
        dist_map: (N, h, w) maps, e.g. from :func:`feature_map_distance_map`.
        top_k_percent: share of the cells averaged for ``"top_k_mean"``, in (0, 100].

    Returns:
        ``{"mean": (N,), "max": (N,), "top_k_mean": (N,)}`` float64 tensors.

    Raises:
        I2IInputError: the map is not (N, h, w) with h, w ≥ 1, holds non-finite values, or
            ``top_k_percent`` is outside (0, 100].

    Example:
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
