"""Weight-free paired metrics: L1, PSNR, SSIM, MS-SSIM and mean CIEDE2000 colour difference.

Each takes two image inputs paired by position, ``(a, b, *, ...)``, computes one value per pair
(maths in :mod:`pytest_i2i.metrics.functional.paired`) and returns a :class:`MetricResult`
whose value is the mean over pairs with a percentile-bootstrap confidence interval.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from pytest_i2i.distributed import map_shards
from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.imageset import as_pairs, iter_pair_batches
from pytest_i2i.images.resize import check_resize_mode
from pytest_i2i.metrics.base import per_sample_result, timed
from pytest_i2i.metrics.functional import paired as F
from pytest_i2i.result import MetricResult


def paired_metric(
    name: str,
    per_sample: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    higher_is_better: bool,
    a: Any,
    b: Any,
    *,
    resize: str = "clean",
    value_range: tuple[float, float] = (0.0, 1.0),
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    batch_size: int = 16,
) -> MetricResult:
    """Evaluate ``per_sample(A, B) -> (N,)`` over all pairs and wrap it in a :class:`MetricResult`.

    This is the one implementation behind every paired metric (also usable for users' own).
    """
    check_resize_mode(resize)
    with timed() as t:
        sa, sb = as_pairs(a, b, names=("a", "b"), value_range=value_range)

        def shard(indices: range) -> tuple[torch.Tensor, list[str]]:
            sub_a, sub_b = sa.subset(indices), sb.subset(indices)
            values = torch.empty(len(indices), dtype=torch.float64)
            notes: list[str] = []
            for idx, xa, xb, batch_notes in iter_pair_batches(sub_a, sub_b, batch_size, resize=resize,
                                                              start=indices.start):
                try:
                    values[idx] = per_sample(xa, xb).to(torch.float64)
                except ValueError as e:  # e.g. images too small for the SSIM window
                    names = ", ".join(sub_a.names[i] for i in idx[:3])
                    raise I2IInputError(f"{name} cannot be computed for pairs {names}: {e}") from None
                notes += batch_notes
            return values, notes

        values, notes = map_shards(len(sa), batch_size, shard)
    if not torch.isfinite(values).all():
        notes.append(f"{int((~torch.isfinite(values)).sum())} pair(s) gave a non-finite {name} (identical images for PSNR)")
    return per_sample_result(
        name, values, sa.names, higher_is_better=higher_is_better, confidence=confidence, n_resamples=n_resamples,
        seed=seed, resize=resize, wall_time_s=t.seconds, warnings=notes,
    )


def l1(a: Any, b: Any, **kwargs: Any) -> MetricResult:
    """Mean absolute error per pair, ``mean |a − b|`` over channels and pixels (lower is better).

    Args:
        a, b: image inputs paired by position (see :func:`pytest_i2i.load_images`).
        **kwargs: ``resize`` (for pairs of different size), ``value_range``, ``confidence``,
            ``n_resamples``, ``seed``, ``batch_size`` (see :func:`paired_metric`).

    Example:
        >>> import torch, pytest_i2i
        >>> float(pytest_i2i.l1(torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)))
        1.0
    """
    return paired_metric("l1", F.l1_per_sample, False, a, b, **kwargs)


def psnr(a: Any, b: Any, **kwargs: Any) -> MetricResult:
    """Peak signal-to-noise ratio per pair, ``10 log10(1 / MSE)`` in dB on [0, 1] data (higher is better).

    Identical pairs give +inf (and so does the mean); a warning is recorded.
    """
    return paired_metric("psnr", F.psnr_per_sample, True, a, b, **kwargs)


def ssim(a: Any, b: Any, **kwargs: Any) -> MetricResult:
    """Structural similarity (Wang et al. 2004), Gaussian window 11, σ = 1.5, per pair (higher is better).

    Matches ``torchmetrics.functional.structural_similarity_index_measure(data_range=1.0)``.
    """
    return paired_metric("ssim", F.ssim_per_sample, True, a, b, **kwargs)


def ms_ssim(a: Any, b: Any, **kwargs: Any) -> MetricResult:
    """Multi-scale SSIM (Wang et al. 2003), 5 scales, per pair (higher is better).

    Needs images larger than 160 px on each side. Matches torchmetrics'
    ``multiscale_structural_similarity_index_measure(data_range=1.0)``.
    """
    return paired_metric("ms_ssim", F.ms_ssim_per_sample, True, a, b, **kwargs)


def ciede2000(a: Any, b: Any, **kwargs: Any) -> MetricResult:
    """Mean CIEDE2000 colour difference ΔE00 (Sharma et al. 2005) over pixels, per pair (lower is better).

    sRGB (D65) to CIELAB as ``skimage.color.rgb2lab``; a ΔE00 of about 1 to 2.3 is the
    just-noticeable difference.
    """
    return paired_metric("ciede2000", F.ciede2000_per_sample, False, a, b, **kwargs)
