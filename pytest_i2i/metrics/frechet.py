"""The Fréchet distance between two image sets on any backbone's features: one front-end, named defaults.

:func:`frechet_distance` fits a Gaussian to each set's features (streaming, memory independent of
the number of images) and compares them (maths in
:func:`pytest_i2i.metrics.functional.frechet.frechet_distance`). :func:`pytest_i2i.fid` is it on the
FID Inception's pool3 features, :func:`pytest_i2i.fd_vit` on DINO CLS features. Either side may be
saved statistics (a ``.npz`` from :meth:`FeatureStats.save`, or pytorch-fid's ``mu``/``sigma``
files) or :class:`FeatureStats` objects.

A backbone's first output (``BackboneSpec.outputs[0]``) is its global feature, used when
``feature`` is not given: ``pool3`` for ``inception-fid``, ``cls`` for the ViTs, ``image_embeds``
for CLIP.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytest_i2i.backbones.backbone import Backbone
from pytest_i2i.distributed import map_shards
from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.imageset import load_images
from pytest_i2i.metrics.base import backbone_fields, frontend, resolve_backbone, resolve_resize, timed
from pytest_i2i.metrics.functional.frechet import FeatureStats, GaussianStats, frechet_distance_stats
from pytest_i2i.metrics.functional.frechet import load_stats
from pytest_i2i.metrics.registry import DEFAULT_BATCH_SIZE
from pytest_i2i.result import MetricResult

STATS_BACKBONE = "inception-fid"
STATS_META_KEYS = ("backbone", "weights_sha256", "resize", "feature")


def global_feature(bb: Backbone, feature: str | None) -> str:
    """``feature``, or the backbone's global feature (its first output) when ``None``."""
    if feature is None:
        return bb.spec.outputs[0]
    if feature not in bb.spec.outputs:
        raise I2IInputError(f"backbone {bb.name!r} has no output {feature!r}; it has {list(bb.spec.outputs)}")
    return feature


@frontend
def compute_stats(
    images: Any,
    *,
    backbone: str | Backbone | None = None,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str | None = None,
    feature: str | None = None,
    name: str = "images",
) -> FeatureStats:
    """Streaming feature statistics of ``images`` (memory independent of their number).

    Args:
        images: any image input (see :func:`pytest_i2i.load_images`).
        backbone: backbone name or loaded backbone (default ``"inception-fid"``: FID statistics).
        weights, device, batch_size, resize: as for :func:`frechet_distance`.
        feature: the backbone output (default: its global feature, e.g. ``pool3``).
        name: the set's name in messages.

    Returns:
        A :class:`FeatureStats` carrying its provenance in ``meta``; save it with ``.save("ref.npz")``
        and pass it (or the file) to :func:`fid` / :func:`frechet_distance` as a precomputed side.
    """
    bb = resolve_backbone(backbone, STATS_BACKBONE, weights, device)
    mode = resolve_resize(resize, bb)
    key = global_feature(bb, feature)
    imgs = load_images(images, name=name)

    def shard_stats(indices: range) -> FeatureStats:
        stats: FeatureStats | None = None
        for out in bb.iter_features(imgs.subset(indices), resize=mode, batch_size=batch_size):
            stats = stats or FeatureStats(dim=out[key].shape[1])
            stats.update(out[key])
        assert stats is not None  # a shard is never empty
        return stats

    stats = map_shards(len(imgs), batch_size, shard_stats)
    stats.meta = {"backbone": bb.name, "weights_sha256": bb.weights_sha256, "calibrated": bb.calibrated,
                  "resize": mode, "feature": key}
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


@frontend
def frechet_distance(
    real: Any,
    fake: Any,
    *,
    backbone: str | Backbone,
    weights: str | os.PathLike | None = None,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str | None = None,
    feature: str | None = None,
    name: str = "frechet_distance",
) -> MetricResult:
    """Fréchet distance between Gaussians fitted to two sets' backbone features (lower is better).

    FD = ‖μᵣ − μ_f‖² + tr Σᵣ + tr Σ_f − 2 tr (Σᵣ^½ Σ_f Σᵣ^½)^½ (see
    :func:`pytest_i2i.metrics.functional.frechet.frechet_distance`). :func:`pytest_i2i.fid` and
    :func:`pytest_i2i.fd_vit` are this function with their backbones.

    Args:
        real, fake: image inputs (folder, paths, arrays, tensors, ...), saved ``.npz``
            statistics, or :class:`FeatureStats`.
        backbone: backbone name or loaded :class:`Backbone` (required: the distance is only
            meaningful on one named feature space).
        weights: ``None`` (published file), a path, or ``"random"`` (uncalibrated smoke tests).
        device: torch device for the forward passes.
        batch_size: images per forward pass.
        resize: ``"clean"`` (default) or ``"legacy-pytorch"`` (reproduces pytorch-fid).
        feature: backbone output to use (default: its global feature).
        name: the result's name (``"fid"``, ``"fd_vit"``, ...).

    Returns:
        A :class:`MetricResult` (lower is better); ``extra`` holds ``n_real``, ``n_fake`` and
        ``feature``. A warning is recorded when a set has fewer samples than feature dimensions
        (rank-deficient covariance: the distance is then biased and unstable).

    Raises:
        I2IInputError: fewer than 2 samples on a side, incompatible saved statistics, bad images.
        WeightsNotFound: the backbone weights are not installed.

    Example:
        >>> r = pytest_i2i.frechet_distance("real/", "fake/", backbone="dinov2-vits14")   # doctest: +SKIP
    """
    if backbone is None:
        raise I2IInputError(f"{name}: pass backbone= (a name from list_backbones() or a loaded backbone)")
    with timed() as t:
        sides = {"real": real, "fake": fake}
        needs_backbone = not all(_is_stats(x) for x in sides.values())
        bb = resolve_backbone(backbone, STATS_BACKBONE, weights, device) if needs_backbone else None
        mode = resolve_resize(resize, bb)
        key = global_feature(bb, feature) if bb is not None else feature
        stats: dict[str, FeatureStats | GaussianStats] = {}
        for side, x in sides.items():
            if isinstance(x, (FeatureStats, GaussianStats)):
                stats[side] = x
            elif _is_stats(x):
                stats[side] = load_stats(x)
            else:
                stats[side] = compute_stats(x, backbone=bb, resize=mode, batch_size=batch_size,
                                            feature=key, name=side)
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
        value = frechet_distance_stats(s_real, s_fake)
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
        extra={"n_real": s_real.n, "n_fake": s_fake.n, "feature": reference.get("feature", key)}, **fields,
    )
