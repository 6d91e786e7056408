"""Metrics on ViT features (default backbone ``dino-vits16``): FD on CLS features, DINO-I and patch distance.

* :func:`fd_vit`: Fréchet distance between Gaussians fitted to the CLS features of two sets
  (FD-DINOv2 of Stein et al. 2023 with ``backbone="dinov2-vits14"``), lower is better.
* :func:`dino_image`: per pair cosine similarity of CLS features (DINO-I, as in ImagenHub),
  higher is better.
* :func:`vit_patch_distance`: per pair map of patch-token distances 2 − 2 cos (unit-normalised
  tokens, squared difference summed over channels), pooled to mean, max and top-k % mean; lower
  is better. It is :func:`pytest_i2i.feature_map_distance` on the one layer ``patch_tokens``
  (maths in :mod:`pytest_i2i.metrics.functional.feature_map`). The maps go into ``extra`` for heat maps.

Features come from
:meth:`Backbone.iter_features`, which memoises them per image: the three metrics on the same
images with the same loaded backbone run one forward pass per image. The per-pair kernels
(:func:`dino_image_kernel`, :func:`patch_distance_kernel`) are what the metrics and the
sensitivity engine both compute.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from pytest_i2i.backbones.backbone import Backbone
from pytest_i2i.metrics.base import frontend, paired_feature_metric
from pytest_i2i.metrics.feature import feature_map_distance_kernel, map_distance_metric
from pytest_i2i.metrics.frechet import frechet_distance
from pytest_i2i.metrics.functional.similarity import MAP_EPS, cosine_similarity
from pytest_i2i.metrics.registry import DEFAULT_BATCH_SIZE, DEFAULT_CONFIDENCE, DEFAULT_N_RESAMPLES, DEFAULT_SEED
from pytest_i2i.result import MetricResult

DEFAULT_BACKBONE = "dino-vits16"
DEFAULT_TOP_K_PERCENT = 10.0


def dino_image_kernel(fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """DINO-I of a chunk of pairs from their features: ``{"value": cos(cls_a, cls_b)}``."""
    return {"value": cosine_similarity(fa["cls"], fb["cls"], eps=MAP_EPS, names=("cls features a", "cls features b"))}


def patch_distance_kernel(fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor],
                          top_k_percent: float = DEFAULT_TOP_K_PERCENT) -> dict[str, torch.Tensor]:
    """Patch distance of a chunk of pairs: :func:`feature_map_distance_kernel` on ``patch_tokens``."""
    return feature_map_distance_kernel(fa, fb, top_k_percent, ("patch_tokens",))


@frontend
def fd_vit(
    real: Any,
    fake: Any,
    *,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str | None = None,
) -> MetricResult:
    """Fréchet distance on ViT CLS features (FD-DINOv2, Stein et al. 2023) between two image sets.

    FD = ‖μᵣ − μ_f‖² + tr Σᵣ + tr Σ_f − 2 tr (Σᵣ^½ Σ_f Σᵣ^½)^½ on the ``cls`` features:
    :func:`pytest_i2i.frechet_distance` with ``backbone="dino-vits16"``.

    Args:
        real, fake: image inputs, saved ``.npz`` statistics (from
            ``compute_stats(..., backbone=..., feature="cls")``) or :class:`FeatureStats`.
        backbone: backbone name or loaded :class:`Backbone` (default ``"dino-vits16"``; Stein
            et al. use DINOv2, ``"dinov2-vits14"`` here is its ViT-S/14 at 224 px).
        weights: ``None`` (published file), a path, or ``"random"`` (uncalibrated smoke tests).
        device: torch device for the forward passes.
        batch_size: images per forward pass.
        resize: ``"clean"`` (default) or ``"legacy-pytorch"``.

    Returns:
        A :class:`MetricResult` named ``"fd_vit"`` (lower is better); ``extra`` holds ``n_real``,
        ``n_fake`` and ``feature``. A warning is recorded when a set has fewer samples than
        feature dimensions.

    Raises:
        I2IInputError: fewer than 2 samples on a side, incompatible saved statistics, bad images.
        WeightsNotFound: the backbone weights are not installed.

    Example:
        >>> import pytest_i2i
        >>> r = pytest_i2i.fd_vit("real/", "fake/", backbone="dinov2-vits14")   # doctest: +SKIP
    """
    return frechet_distance(real, fake, backbone=backbone or DEFAULT_BACKBONE, weights=weights, device=device,
                            batch_size=batch_size, resize=resize, feature="cls", name="fd_vit")


@frontend
def dino_image(
    a: Any,
    b: Any,
    *,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> MetricResult:
    """DINO-I: cosine similarity of the CLS features of each pair, cos(cₐ, c_b) (higher is better).

    Args:
        a, b: image inputs paired by position (see :func:`pytest_i2i.load_images`).
        backbone, weights, device, batch_size, resize: as for :func:`fd_vit`.
        confidence, n_resamples, seed: of the percentile-bootstrap CI of the mean.

    Returns:
        A :class:`MetricResult` named ``"dino_image"``: mean over pairs, bootstrap ``ci``,
        ``per_sample`` similarities and ``sample_names`` (of ``a``).

    Raises:
        I2IInputError: the pair counts differ, bad images, or non-finite features.

    Example:
        >>> import pytest_i2i
        >>> float(pytest_i2i.dino_image("ref/", "ref/"))     # doctest: +SKIP
        1.0
    """
    return paired_feature_metric(
        "dino_image", True, dino_image_kernel, a, b, default_backbone=DEFAULT_BACKBONE, backbone=backbone,
        weights=weights, device=device, batch_size=batch_size, resize=resize, confidence=confidence,
        n_resamples=n_resamples, seed=seed, extra={"feature": "cls"},
    )


@frontend
def vit_patch_distance(
    a: Any,
    b: Any,
    *,
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
    """Patch-token distance 2 − 2 cos between two aligned images, per patch (lower is better).

    :func:`pytest_i2i.feature_map_distance` on the ViT's one grid of patch tokens: each token is
    unit-normalised and d_ij = Σ_c (t̂ᵃ_ijc − t̂ᵇ_ijc)² = 2 (1 − cos), in [0, 4] (LPIPS's
    unweighted feature distance on one layer; twice the 1 − cos this metric reported before it
    became ``feature_map_distance`` on patch tokens). Each pair gives an (h, w) map (h = H/p, w = W/p for a ViT with patch
    size p) pooled to its mean, max and top-k % mean. Both images of a pair are centre-cropped
    and resized to the backbone input size, so pairs of different sizes are compared on the same
    grid; such pairs are named in ``warnings``.

    Args:
        a, b: image inputs paired by position.
        top_k_percent: share of the patches averaged for the top-k % mean, in (0, 100].
        backbone, weights, device, batch_size, resize: as for :func:`fd_vit`.
        confidence, n_resamples, seed: of the percentile-bootstrap CI of the mean.

    Returns:
        A :class:`MetricResult` named ``"vit_patch_distance"``: the mean over pairs of each pair's
        mean distance, with bootstrap ``ci`` and ``per_sample`` means. ``extra`` holds ``max`` and
        ``top_k_mean`` (per pair), ``maps`` (per pair, nested lists h x w), ``grid`` ([h, w]),
        ``layers`` (``["patch_tokens"]``) and ``top_k_percent``.

    Raises:
        I2IInputError: the pair counts differ, bad images, ``top_k_percent`` outside (0, 100],
            a backbone without ``patch_tokens``, or non-finite features.
    """
    return map_distance_metric(
        "vit_patch_distance", DEFAULT_BACKBONE, a, b, layers=("patch_tokens",), top_k_percent=top_k_percent,
        backbone=backbone, weights=weights, device=device, batch_size=batch_size, resize=resize,
        confidence=confidence, n_resamples=n_resamples, seed=seed,
    )
