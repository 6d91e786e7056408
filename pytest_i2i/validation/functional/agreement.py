"""Agreement with people and between people (pure numpy, no I/O).

- :func:`two_afc_score`: the 2AFC agreement of a distance with human choices, as in LPIPS
  (Zhang et al. 2018) and DreamSim (Fu et al. 2023): the mean over triplets of
  ``[d0 < d1]·(1 − h) + [d1 < d0]·h + ½·[d0 = d1]``, where ``h`` is the fraction of people who
  judged ``p1`` closer to the reference. Human-vs-human agreement of the same kind,
  ``h² + (1 − h)²`` per triplet, is the ceiling (:func:`two_afc_human_ceiling`).
- :func:`krippendorff_alpha`: inter-rater reliability α = 1 − D_o / D_e for nominal, ordinal,
  interval and ratio data with missing values (Krippendorff 2011, "Computing Krippendorff's
  Alpha-Reliability"), computed from the coincidence matrix.
- :func:`leave_one_rater_out`: each rater's correlation with the mean of the other raters: how well
  one person predicts the panel, the ceiling an automatic metric can be compared with.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_i2i.errors import I2IInputError
from pytest_i2i.metrics.functional.bootstrap import bootstrap_mean_ci
from pytest_i2i.validation.functional.correlation import (
    CORRELATIONS,
    Estimate,
    UndefinedStatistic,
    rater_mean,
)

LEVELS = ("nominal", "ordinal", "interval", "ratio")


def two_afc_per_triplet(d0: Any, d1: Any, h: Any) -> np.ndarray:
    """Per-triplet 2AFC credit ``[d0<d1](1−h) + [d1<d0]h + ½[d0=d1]`` (distances: lower = closer).

    For a similarity pass ``-s``. ``h`` in [0, 1] is the fraction preferring ``p1``.
    """
    a = np.asarray(d0, dtype=np.float64).ravel()
    b = np.asarray(d1, dtype=np.float64).ravel()
    p = np.asarray(h, dtype=np.float64).ravel()
    if not a.size == b.size == p.size:
        raise I2IInputError(f"2AFC: d0, d1 and h must have one value per triplet ({a.size}, {b.size}, {p.size})")
    if a.size == 0:
        raise I2IInputError("2AFC: no triplets")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise I2IInputError("2AFC: distances contain NaN or infinite values")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise I2IInputError("2AFC: human fractions h must be in [0, 1]")
    return (a < b) * (1 - p) + (b < a) * p + 0.5 * (a == b)


def two_afc_score(
    d0: Any, d1: Any, h: Any, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Estimate:
    """Mean 2AFC credit over triplets with a percentile-bootstrap CI over triplets.

    Example:
        >>> two_afc_score([0.1, 0.5], [0.2, 0.3], [0.0, 1.0]).value
        1.0
    """
    s = two_afc_per_triplet(d0, d1, h)
    ci = bootstrap_mean_ci(s, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return Estimate(float(s.mean()), ci, s.size, n_resamples)


def two_afc_human_ceiling(h: Any) -> float:
    """Expected agreement of one random person with another: mean of h² + (1 − h)² (LPIPS §4)."""
    p = np.asarray(h, dtype=np.float64).ravel()
    return float(np.mean(p**2 + (1 - p) ** 2))


def _delta2(values: np.ndarray, marginals: np.ndarray, level: str) -> np.ndarray:
    c = values[:, None]
    k = values[None, :]
    if level == "nominal":
        return (c != k).astype(np.float64)
    if level == "interval":
        return (c - k) ** 2
    if level == "ratio":
        s = c + k
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where(s == 0, 0.0, ((c - k) / np.where(s == 0, 1.0, s)) ** 2)
        return d
    # ordinal: (Σ_{g=c..k} n_g − (n_c + n_k)/2)², values sorted ascending
    cum = np.cumsum(marginals)
    i = np.arange(values.size)
    lo, hi = np.minimum(i[:, None], i[None, :]), np.maximum(i[:, None], i[None, :])
    between = cum[hi] - np.where(lo > 0, cum[lo - 1], 0.0)
    return (between - (marginals[:, None] + marginals[None, :]) / 2) ** 2


def krippendorff_alpha(data: Any, level: str = "interval") -> float:
    """Krippendorff's α for a (coders, units) matrix with NaN for missing values.

    α = 1 − (n − 1) · Σ_ck o_ck δ²_ck / Σ_ck n_c n_k δ²_ck, with the coincidence matrix
    o_ck = Σ_u (number of c–k pairs of values in unit u) / (m_u − 1) over units with m_u ≥ 2 values,
    n_c = Σ_k o_ck and n = Σ_c n_c (the pairable values). δ² is the level's difference function:
    nominal [c≠k]; ordinal (Σ_{g=c}^{k} n_g − (n_c + n_k)/2)²; interval (c − k)²; ratio ((c−k)/(c+k))².

    Raises:
        UndefinedStatistic: fewer than 2 pairable values, or one value only (no expected disagreement).
        I2IInputError: unknown level, negative values for ``ratio``.

    Example (Krippendorff 2011, nominal, 2 coders): see tests/test_correlation.py.
    """
    if level not in LEVELS:
        raise I2IInputError(f"unknown level {level!r}; known: {', '.join(LEVELS)}")
    d = np.asarray(data, dtype=np.float64)
    if d.ndim != 2:
        raise I2IInputError(f"reliability data must be (coders, units), got shape {d.shape}")
    if np.isinf(d).any():
        raise I2IInputError("reliability data contain infinite values")
    if level == "ratio" and (d[np.isfinite(d)] < 0).any():
        raise I2IInputError("ratio-level alpha needs non-negative values")
    values = np.unique(d[np.isfinite(d)])
    index = {v: i for i, v in enumerate(values)}
    o = np.zeros((values.size, values.size))
    for unit in d.T:
        present = unit[np.isfinite(unit)]
        m = present.size
        if m < 2:
            continue
        counts = np.zeros(values.size)
        for v in present:
            counts[index[v]] += 1
        o += (np.outer(counts, counts) - np.diag(counts)) / (m - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n < 2:
        raise UndefinedStatistic("fewer than 2 pairable values (every unit needs 2 or more coders' values)")
    delta = _delta2(values, n_c, level)
    expected = float(n_c @ delta @ n_c)
    if expected == 0:
        raise UndefinedStatistic("all pairable values are equal: no expected disagreement, alpha is undefined")
    return float(1.0 - (n - 1) * float((o * delta).sum()) / expected)


def leave_one_rater_out(ratings: Any, *, method: str = "spearman") -> dict[str, Any]:
    """Correlation of each rater with the mean of the other raters on the items both cover.

    Args:
        ratings: (raters, items) with NaN where a rater did not score an item; at least 2 raters.

    Returns:
        ``{"per_rater": [value or None, ...], "reasons": [...], "mean": mean of defined values or None}``.
    """
    r = np.asarray(ratings, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 2:
        raise I2IInputError(f"leave-one-rater-out needs (raters >= 2, items) ratings, got shape {r.shape}")
    fn = CORRELATIONS[method]
    values: list[float | None] = []
    reasons: list[str | None] = []
    for i in range(r.shape[0]):
        others = np.delete(r, i, axis=0)
        keep = np.isfinite(r[i]) & np.isfinite(others).any(axis=0)
        try:
            values.append(fn(r[i, keep], rater_mean(others[:, keep])))
            reasons.append(None)
        except UndefinedStatistic as e:
            values.append(None)
            reasons.append(str(e))
    defined = [v for v in values if v is not None]
    return {"per_rater": values, "reasons": reasons, "mean": float(np.mean(defined)) if defined else None}
