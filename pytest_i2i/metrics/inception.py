"""FID, KID and Inception Score on the FID Inception-v3 (or any backbone with the same outputs).

All three take any accepted image input (see :func:`pytest_i2i.load_images`); FID also takes
saved statistics (a ``.npz`` from :meth:`FeatureStats.save` or pytorch-fid's ``mu``/``sigma``
files) or :class:`FeatureStats` objects on either side.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pytest_i2i.backbones.backbone import Backbone
from pytest_i2i.distributed import map_shards
from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.imageset import load_images
from pytest_i2i.metrics.base import backbone_fields, resolve_backbone, resolve_resize, timed
from pytest_i2i.metrics.functional.frechet import FeatureStats, GaussianStats, frechet_distance, load_stats
from pytest_i2i.metrics.functional.inception_score import inception_score_from_logits
from pytest_i2i.metrics.functional.kernel import kernel_inception_distance
from pytest_i2i.result import MetricResult

DEFAULT_BACKBONE = "inception-fid"
STATS_META_KEYS = ("backbone", "weights_sha256", "resize", "feature")


def compute_stats(
    images: Any,
    *,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    resize: str | None = None,
    batch_size: int = 32,
    feature: str = "pool3",
    name: str = "images",
) -> FeatureStats:
    """Streaming feature statistics of ``images`` (memory independent of their number).

    The returned :class:`FeatureStats` carries its provenance in ``meta`` and can be saved
    (``.save("ref.npz")``) and passed to :func:`fid` as a precomputed reference.
    """
    bb = resolve_backbone(backbone, DEFAULT_BACKBONE, weights, device)
    mode = resolve_resize(resize, bb)
    imgs = load_images(images, name=name)

    def shard_stats(indices: range) -> FeatureStats:
        stats: FeatureStats | None = None
        for out in bb.iter_features(imgs.subset(indices), resize=mode, batch_size=batch_size):
            if feature not in out:
                raise I2IInputError(f"backbone {bb.name!r} has no output {feature!r}; it has {sorted(out)}")
            stats = stats or FeatureStats(dim=out[feature].shape[1])
            stats.update(out[feature])
        assert stats is not None  # a shard is never empty
        return stats

    stats = map_shards(len(imgs), batch_size, shard_stats)
    stats.meta = {"backbone": bb.name, "weights_sha256": bb.weights_sha256, "calibrated": bb.calibrated,
                  "resize": mode, "feature": feature}
    return stats


def _is_stats(x: Any) -> bool:
    return isinstance(x, (FeatureStats, GaussianStats)) or (
        isinstance(x, (str, os.PathLike)) and Path(x).suffix == ".npz")


def _check_compatible(side: FeatureStats | GaussianStats, current: dict[str, Any], name: str) -> list[str]:
    if not side.meta:
        return [f"{name}: statistics carry no provenance (e.g. a pytorch-fid file); "
                "make sure they were computed with the same network, weights and resizing"]
    diffs = [f"{k}: {side.meta.get(k)!r} vs {current.get(k)!r}" for k in STATS_META_KEYS
             if k in current and side.meta.get(k) != current.get(k)]
    if diffs:
        raise I2IInputError(f"{name}: saved statistics were computed differently from the other side ({'; '.join(diffs)})")
    return []


def fid(
    real: Any,
    fake: Any,
    *,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    resize: str | None = None,
    batch_size: int = 32,
    feature: str = "pool3",
) -> MetricResult:
    """Fréchet Inception Distance (Heusel et al. 2017) between two image sets.

    FID = ‖μᵣ − μ_f‖² + tr Σᵣ + tr Σ_f − 2 tr (Σᵣ^½ Σ_f Σᵣ^½)^½ on pool3 features
    (see :func:`pytest_i2i.metrics.functional.frechet.frechet_distance`).

    Args:
        real, fake: image inputs (folder, paths, arrays, tensors, ...), saved ``.npz``
            statistics, or :class:`FeatureStats`.
        backbone: backbone name or loaded :class:`Backbone` (default ``"inception-fid"``).
        weights: ``None`` (published file), a path, or ``"random"`` (uncalibrated smoke tests).
        device: torch device for the forward passes.
        resize: ``"clean"`` (default) or ``"legacy-pytorch"`` (reproduces pytorch-fid).
        batch_size: images per forward pass.
        feature: backbone output to use (default ``"pool3"``).

    Returns:
        A :class:`MetricResult` (lower is better). ``extra`` holds ``n_real`` and ``n_fake``.
        A warning is recorded when a set has fewer samples than feature dimensions
        (rank-deficient covariance: FID is then biased and unstable).

    Raises:
        I2IInputError: fewer than 2 samples on a side, incompatible saved statistics, bad images.
        WeightsNotFound: the backbone weights are not installed.

    Example:
        >>> import pytest_i2i
        >>> r = pytest_i2i.fid("real/", "fake/")      # doctest: +SKIP
        >>> float(r) < 50                              # doctest: +SKIP
    """
    return frechet_metric("fid", real, fake, backbone=backbone, default_backbone=DEFAULT_BACKBONE, weights=weights,
                          device=device, resize=resize, batch_size=batch_size, feature=feature)


def frechet_metric(
    name: str,
    real: Any,
    fake: Any,
    *,
    backbone: str | Backbone | None,
    default_backbone: str,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    resize: str | None = None,
    batch_size: int = 32,
    feature: str = "pool3",
) -> MetricResult:
    """Fréchet distance on backbone features, as the result named ``name``: the one implementation
    behind :func:`fid` and :func:`pytest_i2i.metrics.vit.fd_vit`.

    ``backbone=None`` means ``default_backbone``; the other arguments and the result are as
    for :func:`fid`.
    """
    with timed() as t:
        sides = {"real": real, "fake": fake}
        needs_backbone = not all(_is_stats(x) for x in sides.values())
        bb = resolve_backbone(backbone, default_backbone, weights, device) if needs_backbone else None
        mode = resolve_resize(resize, bb)
        stats: dict[str, FeatureStats | GaussianStats] = {}
        for side, x in sides.items():
            if isinstance(x, (FeatureStats, GaussianStats)):
                stats[side] = x
            elif _is_stats(x):
                stats[side] = load_stats(x)
            else:
                stats[side] = compute_stats(x, backbone=bb, resize=mode, batch_size=batch_size,
                                            feature=feature, name=side)
        # Precomputed statistics must agree with how the other side was (or will be) computed.
        computed = [stats[k] for k, x in sides.items() if not _is_stats(x)]
        reference = computed[0].meta if computed else next((s.meta for s in stats.values() if s.meta), {})
        warnings: list[str] = []
        for side, x in sides.items():
            if _is_stats(x):
                warnings += _check_compatible(stats[side], reference, side)
        s_real, s_fake = stats["real"], stats["fake"]
        if s_real.dim != s_fake.dim:
            raise I2IInputError(f"real and fake features differ in dimension ({s_real.dim} vs {s_fake.dim})")
        for side, st in stats.items():
            if st.n is not None and st.n < 2:
                raise I2IInputError(f"{name} needs at least 2 images per set; {side} has {st.n}")
            if st.n is not None and st.n < st.dim:
                warnings.append(
                    f"{side} has {st.n} samples for {st.dim}-dimensional features: the covariance is rank-deficient "
                    f"and {name} is biased upwards and unstable; use more images (>= 10k for published comparisons)"
                )
        value = frechet_distance(s_real.mean, s_real.cov, s_fake.mean, s_fake.cov)
    if bb is not None:
        fields = backbone_fields(bb)
    else:
        fields = {"backbone": reference.get("backbone"), "weights_sha256": reference.get("weights_sha256"),
                  "calibrated": bool(reference.get("calibrated", True)), "warnings": []}
    fields["warnings"] += warnings
    ns = [st.n for st in stats.values() if st.n is not None]
    return MetricResult(
        name=name, value=value, higher_is_better=False, n=min(ns) if ns else 0,
        resize=reference.get("resize", mode), wall_time_s=t.seconds,
        extra={"n_real": s_real.n, "n_fake": s_fake.n, "feature": feature}, **fields,
    )


def _features(images: Any, bb: Backbone, mode: str, batch_size: int, key: str, name: str) -> np.ndarray:
    imgs = load_images(images, name=name)

    def shard_features(indices: range) -> torch.Tensor:
        out = bb.features(imgs.subset(indices), resize=mode, batch_size=batch_size)
        if key not in out:
            raise I2IInputError(f"backbone {bb.name!r} has no output {key!r}; it has {sorted(out)}")
        return out[key]

    return map_shards(len(imgs), batch_size, shard_features).double().numpy()


def kid(
    real: Any,
    fake: Any,
    *,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    resize: str | None = None,
    batch_size: int = 32,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 2020,
    feature: str = "pool3",
) -> MetricResult:
    """Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with the kernel (xᵀy/d + 1)³.

    Mean and std over ``subsets`` random subsets of ``min(subset_size, n_real, n_fake)`` samples
    (see :mod:`pytest_i2i.metrics.functional.kernel`); with the same features and seed the value
    equals torch-fidelity's.

    Args:
        real, fake: image inputs.
        backbone, weights, device, resize, batch_size, feature: as for :func:`fid`.
        subsets: number of subsets (default 100).
        subset_size: subset size cap (default 1000).
        seed: seed of the subset draws (default 2020, torch-fidelity's).

    Returns:
        A :class:`MetricResult` (lower is better) with ``std`` over subsets and the per-subset
        values in ``extra["subset_values"]``.

    Raises:
        I2IInputError: fewer than 2 images in a set, or bad images.
    """
    with timed() as t:
        bb = resolve_backbone(backbone, DEFAULT_BACKBONE, weights, device)
        mode = resolve_resize(resize, bb)
        fr = _features(real, bb, mode, batch_size, feature, "real")
        ff = _features(fake, bb, mode, batch_size, feature, "fake")
        mean, std, values = kernel_inception_distance(fr, ff, subsets=subsets, subset_size=subset_size, seed=seed)
    fields = backbone_fields(bb)
    m = min(subset_size, len(fr), len(ff))
    if m < subset_size:
        fields["warnings"].append(f"subset size reduced from {subset_size} to {m} (the smaller set's size)")
    return MetricResult(
        name="kid", value=mean, std=std, higher_is_better=False, n=min(len(fr), len(ff)), resize=mode,
        wall_time_s=t.seconds,
        extra={"n_real": len(fr), "n_fake": len(ff), "subsets": subsets, "subset_size": m, "seed": seed,
               "subset_values": values.tolist(), "feature": feature},
        **fields,
    )


def inception_score(
    images: Any,
    *,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    resize: str | None = None,
    batch_size: int = 32,
    splits: int = 10,
    shuffle: bool = True,
    seed: int = 2020,
    logits: str = "logits_unbiased",
) -> MetricResult:
    """Inception Score (Salimans et al. 2016): exp E KL(p(y|x) ‖ p(y)), mean and std over ``splits``.

    Args:
        images: image input.
        backbone, weights, device, resize, batch_size: as for :func:`fid`.
        splits: number of splits (default 10).
        shuffle: permute the samples before splitting (default ``True``, as torch-fidelity).
        seed: permutation seed (default 2020, torch-fidelity's).
        logits: backbone output used as logits (default ``"logits_unbiased"``, the original code's).

    Returns:
        A :class:`MetricResult` (higher is better) with ``std`` over splits and per-split scores
        in ``extra["split_values"]``.

    Raises:
        I2IInputError: fewer images than splits, or bad images.
    """
    with timed() as t:
        bb = resolve_backbone(backbone, DEFAULT_BACKBONE, weights, device)
        mode = resolve_resize(resize, bb)
        lg = _features(images, bb, mode, batch_size, logits, "images")
        mean, std, scores = inception_score_from_logits(lg, splits=splits, shuffle=shuffle, seed=seed)
    return MetricResult(
        name="inception_score", value=mean, std=std, higher_is_better=True, n=len(lg), resize=mode,
        wall_time_s=t.seconds,
        extra={"splits": splits, "shuffle": shuffle, "seed": seed, "split_values": scores.tolist(), "logits": logits},
        **backbone_fields(bb),
    )
