"""Percentile bootstrap confidence interval of a mean."""

from __future__ import annotations

from typing import Any

import numpy as np


def bootstrap_mean_ci(
    values: Any, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (1-D).

    Resamples the values with replacement ``n_resamples`` times (``numpy.random.default_rng(seed)``)
    and returns the (α/2, 1 − α/2) percentiles of the resampled means, α = 1 − confidence.
    One value gives the degenerate interval (v, v). Infinite values are kept: the interval then
    reaches ±inf (never NaN).

    Raises:
        ValueError: empty input, NaN values, or ``confidence`` outside (0, 1).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("bootstrap of an empty sample")
    if np.isnan(v).any():
        raise ValueError("bootstrap of a sample containing NaN")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if v.size == 1:
        return float(v[0]), float(v[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(n_resamples, v.size))
    with np.errstate(invalid="ignore"):
        means = v[idx].mean(axis=1)
    means = np.sort(means)
    alpha = 1.0 - confidence
    lo = means[int(np.floor(alpha / 2 * (n_resamples - 1)))]
    hi = means[int(np.ceil((1 - alpha / 2) * (n_resamples - 1)))]
    return float(lo), float(hi)
