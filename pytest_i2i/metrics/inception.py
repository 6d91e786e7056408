"""FID, KID and Inception Score on the FID Inception-v3 (or any backbone with the same outputs).

All three take any accepted image input (see :func:`pytest_i2i.load_images`); FID also takes
saved statistics (a ``.npz`` from :meth:`FeatureStats.save` or pytorch-fid's ``mu``/``sigma``
files) or :class:`FeatureStats` objects on either side (see :mod:`pytest_i2i.metrics.frechet`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from pytest_i2i.backbones.backbone import Backbone
from pytest_i2i.distributed import map_shards
from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.imageset import load_images
from pytest_i2i.metrics.base import backbone_fields, frontend, resolve_backbone, resolve_resize, timed
from pytest_i2i.metrics.frechet import frechet_distance
from pytest_i2i.metrics.functional.inception_score import inception_score_from_logits
from pytest_i2i.metrics.functional.kernel import kernel_inception_distance
from pytest_i2i.metrics.registry import DEFAULT_BATCH_SIZE, DEFAULT_SEED
from pytest_i2i.result import MetricResult

DEFAULT_BACKBONE = "inception-fid"


@frontend
def fid(
    real: Any,
    fake: Any,
    *,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str | None = None,
    feature: str = "pool3",
) -> MetricResult:
    """Fréchet Inception Distance (Heusel et al. 2017) between two image sets.

    FID = ‖μᵣ − μ_f‖² + tr Σᵣ + tr Σ_f − 2 tr (Σᵣ^½ Σ_f Σᵣ^½)^½ on pool3 features:
    :func:`pytest_i2i.frechet_distance` with ``backbone="inception-fid"``.

    Args:
        real, fake: image inputs (folder, paths, arrays, tensors, ...), saved ``.npz``
            statistics, or :class:`FeatureStats`.
        backbone: backbone name or loaded :class:`Backbone` (default ``"inception-fid"``).
        weights: ``None`` (published file), a path, or ``"random"`` (uncalibrated smoke tests).
        device: torch device for the forward passes.
        batch_size: images per forward pass.
        resize: ``"clean"`` (default) or ``"legacy-pytorch"`` (reproduces pytorch-fid).
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
    return frechet_distance(real, fake, backbone=backbone or DEFAULT_BACKBONE, weights=weights, device=device,
                            batch_size=batch_size, resize=resize, feature=feature, name="fid")


def features_array(images: Any, bb: Backbone, mode: str, batch_size: int, key: str, name: str) -> np.ndarray:
    """``(N, D)`` float64 array of one backbone output for an image input (sharded under torch.distributed)."""
    imgs = load_images(images, name=name)
    if key not in bb.spec.outputs:
        raise I2IInputError(f"backbone {bb.name!r} has no output {key!r}; it has {list(bb.spec.outputs)}")
    return map_shards(len(imgs), batch_size,
                      lambda indices: bb.features(imgs.subset(indices), resize=mode, batch_size=batch_size)[key]
                      ).double().numpy()


@frontend
def kid(
    real: Any,
    fake: Any,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    feature: str = "pool3",
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str | None = None,
    seed: int = DEFAULT_SEED,
) -> MetricResult:
    """Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with the kernel (xᵀy/d + 1)³.

    Mean and std over ``subsets`` random subsets of ``min(subset_size, n_real, n_fake)`` samples
    (see :mod:`pytest_i2i.metrics.functional.kernel`); with the same features and seed the value
    equals torch-fidelity's (whose default seed is 2020: pass ``seed=2020`` to reproduce its numbers).

    Args:
        real, fake: image inputs.
        subsets: number of subsets (default 100), >= 1.
        subset_size: subset size cap (default 1000), >= 2.
        feature: backbone output (default ``"pool3"``).
        backbone, weights, device, batch_size, resize: as for :func:`fid`.
        seed: seed of the subset draws.

    Returns:
        A :class:`MetricResult` (lower is better) with ``std`` over subsets and the per-subset
        values in ``extra["subset_values"]``.

    Raises:
        I2IInputError: fewer than 2 images in a set, bad images or a bad argument (named).
    """
    with timed() as t:
        bb = resolve_backbone(backbone, DEFAULT_BACKBONE, weights, device)
        mode = resolve_resize(resize, bb)
        fr = features_array(real, bb, mode, batch_size, feature, "real")
        ff = features_array(fake, bb, mode, batch_size, feature, "fake")
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


@frontend
def inception_score(
    images: Any,
    *,
    splits: int = 10,
    shuffle: bool = True,
    logits: str = "logits_unbiased",
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str | None = None,
    seed: int = DEFAULT_SEED,
) -> MetricResult:
    """Inception Score (Salimans et al. 2016): exp E KL(p(y|x) ‖ p(y)), mean and std over ``splits``.

    Args:
        images: image input.
        splits: number of splits (default 10), >= 1.
        shuffle: permute the samples before splitting (default ``True``, as torch-fidelity).
        logits: backbone output used as logits (default ``"logits_unbiased"``, the original code's).
        backbone, weights, device, batch_size, resize: as for :func:`fid`.
        seed: permutation seed (torch-fidelity's default is 2020: pass it to reproduce its numbers).

    Returns:
        A :class:`MetricResult` (higher is better) with ``std`` over splits and per-split scores
        in ``extra["split_values"]``.

    Raises:
        I2IInputError: fewer images than splits, bad images or a bad argument (named).
    """
    with timed() as t:
        bb = resolve_backbone(backbone, DEFAULT_BACKBONE, weights, device)
        mode = resolve_resize(resize, bb)
        lg = features_array(images, bb, mode, batch_size, logits, "images")
        mean, std, scores = inception_score_from_logits(lg, splits=splits, shuffle=shuffle, seed=seed)
    return MetricResult(
        name="inception_score", value=mean, std=std, higher_is_better=True, n=len(lg), resize=mode,
        wall_time_s=t.seconds,
        extra={"splits": splits, "shuffle": shuffle, "seed": seed, "split_values": scores.tolist(), "logits": logits},
        **backbone_fields(bb),
    )
