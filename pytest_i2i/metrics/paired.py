"""Weight-free paired metrics: L1, PSNR, SSIM, MS-SSIM and mean CIEDE2000 colour difference.

Each takes two image inputs paired by position, ``(a, b, *, ...)`` (all five are symmetric), computes
one value per pair (maths in :mod:`pytest_i2i.metrics.functional.paired`, computed on ``device``) and
returns a :class:`MetricResult` whose value is the mean over pairs with a percentile-bootstrap
confidence interval. Keyword arguments shared by every paired metric:

* ``device``: where the per-pair maths runs (default CPU);
* ``batch_size``: pairs per chunk (the values do not depend on it);
* ``resize``: the resize mode for pairs of different size (the second image of a pair is resized
  to the first's size, and a warning names the pair);
* ``value_range``: the declared range of float inputs (``(-1, 1)`` maps tanh outputs);
* ``confidence``, ``n_resamples``, ``seed``: the percentile-bootstrap CI of the mean.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch

from pytest_i2i.distributed import map_shards
from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.imageset import as_pairs, iter_pair_batches
from pytest_i2i.images.resize import check_resize_mode
from pytest_i2i.metrics.base import check_device, frontend, per_sample_result, timed
from pytest_i2i.metrics.functional import paired as F
from pytest_i2i.metrics.registry import DEFAULT_BATCH_SIZE, DEFAULT_CONFIDENCE, DEFAULT_N_RESAMPLES, DEFAULT_SEED
from pytest_i2i.result import MetricResult


def paired_metric(
    name: str,
    per_sample: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    higher_is_better: bool,
    a: Any,
    b: Any,
    *,
    device: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str = "clean",
    value_range: tuple[float, float] = (0.0, 1.0),
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> MetricResult:
    """Evaluate ``per_sample(A, B) -> (N,)`` over all pairs and wrap it in a :class:`MetricResult`.

    This is the one implementation behind every weight-free paired metric; a user's own paired
    metric can be built on it (register it with :func:`pytest_i2i.register_metric`).
    """
    check_resize_mode(resize)
    dev = check_device(device if device is not None else "cpu", name)
    with timed() as t:
        sa, sb = as_pairs(a, b, names=("a", "b"), value_range=value_range)

        def shard(indices: range) -> tuple[torch.Tensor, list[str]]:
            sub_a, sub_b = sa.subset(indices), sb.subset(indices)
            values = torch.empty(len(indices), dtype=torch.float64)
            notes: list[str] = []
            for idx, xa, xb, batch_notes in iter_pair_batches(sub_a, sub_b, batch_size, resize=resize,
                                                              start=indices.start):
                try:
                    values[idx] = per_sample(xa.to(dev), xb.to(dev)).to("cpu", torch.float64)
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


@frontend
def l1(
    a: Any, b: Any, *, device: Any = None, batch_size: int = DEFAULT_BATCH_SIZE, resize: str = "clean",
    value_range: tuple[float, float] = (0.0, 1.0), confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES, seed: int = DEFAULT_SEED,
) -> MetricResult:
    """Mean absolute error per pair, ``mean |a − b|`` over channels and pixels (lower is better).

    Args:
        a, b: image inputs paired by position (see :func:`pytest_i2i.load_images`).
        device, batch_size, resize, value_range, confidence, n_resamples, seed: see the module docstring.

    Returns:
        A :class:`MetricResult`: the mean over pairs, its bootstrap CI, the per-pair values and names.

    Raises:
        I2IInputError: bad images, pair counts that differ, or a bad argument (named).

    Example:
        >>> import torch, pytest_i2i
        >>> float(pytest_i2i.l1(torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)))
        1.0
    """
    return paired_metric("l1", F.l1_per_sample, False, a, b, device=device, batch_size=batch_size, resize=resize,
                         value_range=value_range, confidence=confidence, n_resamples=n_resamples, seed=seed)


@frontend
def psnr(
    a: Any, b: Any, *, data_range: float = 1.0, device: Any = None, batch_size: int = DEFAULT_BATCH_SIZE,
    resize: str = "clean", value_range: tuple[float, float] = (0.0, 1.0), confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES, seed: int = DEFAULT_SEED,
) -> MetricResult:
    """Peak signal-to-noise ratio per pair, ``10 log10(R² / MSE)`` in dB, R = ``data_range`` (higher is better).

    Images are compared on [0, 1] (``data_range=1.0``). Identical pairs give +inf (and so does the
    mean); a warning is recorded.

    Args:
        a, b: image inputs paired by position.
        data_range: the peak value R (1.0 for the canonical [0, 1] images).
        device, batch_size, resize, value_range, confidence, n_resamples, seed: see the module docstring.

    Example:
        >>> import torch, pytest_i2i
        >>> round(float(pytest_i2i.psnr(torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.1))), 6)
        20.0
    """
    return paired_metric("psnr", functools.partial(F.psnr_per_sample, data_range=data_range), True, a, b,
                         device=device, batch_size=batch_size, resize=resize, value_range=value_range,
                         confidence=confidence, n_resamples=n_resamples, seed=seed)


@frontend
def ssim(
    a: Any, b: Any, *, kernel_size: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
    device: Any = None, batch_size: int = DEFAULT_BATCH_SIZE, resize: str = "clean",
    value_range: tuple[float, float] = (0.0, 1.0), confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES, seed: int = DEFAULT_SEED,
) -> MetricResult:
    """Structural similarity (Wang et al. 2004) per pair, Gaussian window (higher is better).

    With the defaults (window 11, σ = 1.5) it matches
    ``torchmetrics.functional.structural_similarity_index_measure(data_range=1.0)``; see
    :func:`pytest_i2i.metrics.functional.paired.ssim_per_sample` for the formula and border rule.

    Args:
        a, b: image inputs paired by position (at least ``kernel_size`` pixels on each side).
        kernel_size, sigma: the Gaussian window's side (odd) and standard deviation.
        k1, k2: the stabiliser constants.
        device, batch_size, resize, value_range, confidence, n_resamples, seed: see the module docstring.
    """
    per_sample = functools.partial(F.ssim_per_sample, kernel_size=kernel_size, sigma=sigma, k1=k1, k2=k2)
    return paired_metric("ssim", per_sample, True, a, b, device=device, batch_size=batch_size, resize=resize,
                         value_range=value_range, confidence=confidence, n_resamples=n_resamples, seed=seed)


@frontend
def ms_ssim(
    a: Any, b: Any, *, kernel_size: int = 11, sigma: float = 1.5, betas: Sequence[float] | None = None,
    device: Any = None, batch_size: int = DEFAULT_BATCH_SIZE, resize: str = "clean",
    value_range: tuple[float, float] = (0.0, 1.0), confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES, seed: int = DEFAULT_SEED,
) -> MetricResult:
    """Multi-scale SSIM (Wang et al. 2003), 5 scales by default, per pair (higher is better).

    Needs images larger than 160 px on each side with the default window. Matches torchmetrics'
    ``multiscale_structural_similarity_index_measure(data_range=1.0)``.

    Args:
        a, b: image inputs paired by position.
        kernel_size, sigma: the Gaussian window (see :func:`ssim`).
        betas: the scale weights (default: the paper's five).
        device, batch_size, resize, value_range, confidence, n_resamples, seed: see the module docstring.
    """
    extra = {} if betas is None else {"betas": tuple(betas)}
    per_sample = functools.partial(F.ms_ssim_per_sample, kernel_size=kernel_size, sigma=sigma, **extra)
    return paired_metric("ms_ssim", per_sample, True, a, b, device=device, batch_size=batch_size, resize=resize,
                         value_range=value_range, confidence=confidence, n_resamples=n_resamples, seed=seed)


@frontend
def ciede2000(
    a: Any, b: Any, *, device: Any = None, batch_size: int = DEFAULT_BATCH_SIZE, resize: str = "clean",
    value_range: tuple[float, float] = (0.0, 1.0), confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_N_RESAMPLES, seed: int = DEFAULT_SEED,
) -> MetricResult:
    """Mean CIEDE2000 colour difference ΔE00 (Sharma et al. 2005) over pixels, per pair (lower is better).

    sRGB (D65) to CIELAB as ``skimage.color.rgb2lab``; a ΔE00 of about 1 to 2.3 is the
    just-noticeable difference.

    Args:
        a, b: image inputs paired by position.
        device, batch_size, resize, value_range, confidence, n_resamples, seed: see the module docstring.
    """
    return paired_metric("ciede2000", F.ciede2000_per_sample, False, a, b, device=device, batch_size=batch_size,
                         resize=resize, value_range=value_range, confidence=confidence, n_resamples=n_resamples,
                         seed=seed)
