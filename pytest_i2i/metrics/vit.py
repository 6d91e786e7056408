"""Metrics on ViT features (default backbone ``dino-vits16``): FD on CLS features, DINO-I and patch distance.

* :func:`fd_vit`: Fréchet distance between Gaussians fitted to the CLS features of two sets
  (FD-DINOv2 of Stein et al. 2023 with ``backbone="dinov2-vits14"``), lower is better.
* :func:`dino_image`: per pair cosine similarity of CLS features (DINO-I, as in ImagenHub),
  higher is better.
* :func:`vit_patch_distance`: per pair map of patch-token cosine distances, pooled to mean, max
  and top-k % mean; lower is better. The maps go into ``extra`` for heat maps.

Maths in :mod:`pytest_i2i.metrics.functional.vit`. Features come from
:meth:`Backbone.iter_features`, which memoises them per image: the three metrics on the same
images with the same loaded backbone run one forward pass per image.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

from pytest_i2i.backbones.backbone import Backbone
from pytest_i2i.distributed import map_shards
from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.imageset import as_pairs
from pytest_i2i.metrics.base import (
    backbone_fields, iter_pair_features, per_sample_result, resolve_backbone, resolve_resize, timed,
)
from pytest_i2i.metrics.functional import vit as F
from pytest_i2i.metrics.inception import frechet_metric
from pytest_i2i.result import MetricResult

DEFAULT_BACKBONE = "dino-vits16"


def fd_vit(
    real: Any,
    fake: Any,
    *,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    resize: str | None = None,
    batch_size: int = 32,
) -> MetricResult:
    """Fréchet distance on ViT CLS features (FD-DINOv2, Stein et al. 2023) between two image sets.

    FD = ‖μᵣ − μ_f‖² + tr Σᵣ + tr Σ_f − 2 tr (Σᵣ^½ Σ_f Σᵣ^½)^½ on the ``cls`` features; the same
    computation as :func:`pytest_i2i.fid` (see :func:`pytest_i2i.metrics.inception.frechet_metric`).

    Args:
        real, fake: image inputs, saved ``.npz`` statistics (from
            ``compute_stats(..., backbone=..., feature="cls")``) or :class:`FeatureStats`.
        backbone: backbone name or loaded :class:`Backbone` (default ``"dino-vits16"``; Stein
            et al. use DINOv2, ``"dinov2-vits14"`` here is its ViT-S/14 at 224 px).
        weights: ``None`` (published file), a path, or ``"random"`` (uncalibrated smoke tests).
        device: torch device for the forward passes.
        resize: ``"clean"`` (default) or ``"legacy-pytorch"``.
        batch_size: images per forward pass.

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
    return frechet_metric("fd_vit", real, fake, backbone=backbone, default_backbone=DEFAULT_BACKBONE,
                          weights=weights, device=device, resize=resize, batch_size=batch_size, feature="cls")


def dino_image(
    a: Any,
    b: Any,
    *,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    resize: str | None = None,
    batch_size: int = 32,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> MetricResult:
    """DINO-I: cosine similarity of the CLS features of each pair, cos(cₐ, c_b) (higher is better).

    Args:
        a, b: image inputs paired by position (see :func:`pytest_i2i.load_images`).
        backbone, weights, device, resize, batch_size: as for :func:`fd_vit`.
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
    def per_pair(fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"value": F.cosine_similarity(fa["cls"], fb["cls"])}

    return _paired_feature_metric(
        "dino_image", True, per_pair, a, b, backbone=backbone, weights=weights, device=device, resize=resize,
        batch_size=batch_size, confidence=confidence, n_resamples=n_resamples, seed=seed, extra={"feature": "cls"},
    )


def vit_patch_distance(
    a: Any,
    b: Any,
    *,
    backbone: str | Backbone | None = None,
    top_k_percent: float = 10.0,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    resize: str | None = None,
    batch_size: int = 32,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> MetricResult:
    """Patch-token cosine distance 1 − cos between two aligned images, per patch (lower is better).

    Each pair gives an (h, w) map (h = H/p, w = W/p for a ViT with patch size p) pooled to its
    mean, max and top-k % mean (see :mod:`pytest_i2i.metrics.functional.vit`). Both images of a
    pair are centre-cropped and resized to the backbone input size, so pairs of different sizes
    are compared on the same grid; such pairs are named in ``warnings``.

    Args:
        a, b: image inputs paired by position.
        backbone, weights, device, resize, batch_size: as for :func:`fd_vit`.
        top_k_percent: share of the patches averaged for the top-k % mean, in (0, 100].
        confidence, n_resamples, seed: of the percentile-bootstrap CI of the mean.

    Returns:
        A :class:`MetricResult` named ``"vit_patch_distance"``: the mean over pairs of each pair's
        mean distance, with bootstrap ``ci`` and ``per_sample`` means. ``extra`` holds ``max`` and
        ``top_k_mean`` (per pair), ``maps`` (per pair, nested lists h x w), ``grid`` ([h, w]) and
        ``top_k_percent``.

    Raises:
        I2IInputError: the pair counts differ, bad images, ``top_k_percent`` outside (0, 100],
            or non-finite features.
    """
    if not 0.0 < float(top_k_percent) <= 100.0:
        raise I2IInputError(f"top_k_percent must be in (0, 100]; got {top_k_percent}")

    def per_pair(fa: dict[str, torch.Tensor], fb: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        maps = F.patch_distance_map(fa["patch_tokens"], fb["patch_tokens"])
        pooled = F.pool_distance_map(maps, top_k_percent)
        return {"value": pooled["mean"], "max": pooled["max"], "top_k_mean": pooled["top_k_mean"], "maps": maps}

    result = _paired_feature_metric(
        "vit_patch_distance", False, per_pair, a, b, backbone=backbone, weights=weights, device=device,
        resize=resize, batch_size=batch_size, confidence=confidence, n_resamples=n_resamples, seed=seed,
        extra={"top_k_percent": float(top_k_percent)},
    )
    first_map = result.extra["maps"][0]
    result.extra["grid"] = [len(first_map), len(first_map[0])]
    return result


def _paired_feature_metric(
    name: str,
    higher_is_better: bool,
    per_pair: Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor]], dict[str, torch.Tensor]],
    a: Any,
    b: Any,
    *,
    backbone: str | Backbone | None,
    weights: str | os.PathLike | None,
    device: Any,
    resize: str | None,
    batch_size: int,
    confidence: float,
    n_resamples: int,
    seed: int,
    extra: dict[str, Any],
) -> MetricResult:
    """Evaluate ``per_pair(features_a, features_b)`` chunk by chunk and build the result.

    ``per_pair`` returns ``{"value": (n,), other: (n, ...)}``; ``value`` is the per-sample metric,
    the others go into ``extra`` as per-pair lists (named ``other``).
    """
    with timed() as t:
        bb = resolve_backbone(backbone, DEFAULT_BACKBONE, weights, device)
        mode = resolve_resize(resize, bb)
        sa, sb = as_pairs(a, b, names=("a", "b"))

        def shard(indices: range) -> tuple[dict[str, torch.Tensor], list[str]]:
            parts: dict[str, list[torch.Tensor]] = {}
            notes: list[str] = []
            for fa, fb, chunk_notes in iter_pair_features(sa.subset(indices), sb.subset(indices), bb, mode,
                                                          batch_size, start=indices.start):
                for key, v in per_pair(fa, fb).items():
                    parts.setdefault(key, []).append(v)
                notes += chunk_notes
            return {k: torch.cat(v) for k, v in parts.items()}, notes

        out, notes = map_shards(len(sa), batch_size, shard)
        values = out.pop("value")
    fields = backbone_fields(bb)
    fields["warnings"] += notes
    return per_sample_result(
        name, values, sa.names, higher_is_better=higher_is_better, confidence=confidence, n_resamples=n_resamples,
        seed=seed, resize=mode, wall_time_s=t.seconds, extra={**extra, **{k: v.tolist() for k, v in out.items()}},
        **fields,
    )
