"""Percentile bootstrap confidence interval of a mean."""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_i2i.checks import check_confidence, check_int, check_seed
from pytest_i2i.errors import I2IInputError


def bootstrap_mean_ci(
    values: Any, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (1-D).

    Resamples the values with replacement ``n_resamples`` times (``numpy.random.default_rng(seed)``)
    and returns the (α/2, 1 − α/2) percentiles of the resampled means, α = 1 − confidence.
    One value gives the degenerate interval (v, v). Infinite values are kept: the interval then
    reaches ±inf (never NaN).

    Raises:
        I2IInputError (a ``ValueError``): empty input, NaN values, ``confidence`` outside (0, 1),
            ``n_resamples`` < 2 or a ``seed`` outside [0, 2**63 - 1] (each named).
    """
    confidence = check_confidence(confidence, "bootstrap")
    check_int("n_resamples", n_resamples, low=2, where="bootstrap", what="bootstrap resamples")
    check_seed(seed, "bootstrap")
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise I2IInputError("bootstrap of an empty sample")
    if np.isnan(v).any():
        raise I2IInputError(f"bootstrap of a sample containing NaN (at positions "
                            f"{np.flatnonzero(np.isnan(v))[:5].tolist()})")
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
