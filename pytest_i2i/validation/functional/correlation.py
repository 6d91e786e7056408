"""Rank and linear correlation with bootstrap confidence intervals (pure numpy, no I/O).

Pearson r, Spearman ρ (Pearson r of average ranks) and Kendall τ-b, each equal to
``scipy.stats.pearsonr`` / ``spearmanr`` / ``kendalltau(variant="b")`` to 1e-9 on the same vectors.
A statistic that is not defined (fewer than 3 pairs, a constant vector) raises
:class:`UndefinedStatistic` with the reason, never returns NaN; callers record ``None`` and the reason.

Sign handling: a metric is *oriented* to agree with people when its correlation with a human score
(higher = better) is positive: ``oriented = raw`` for a similarity (higher is better) and
``oriented = -raw`` for a distance (lower is better); :func:`orientation` gives the factor.

The bootstrap (:func:`bootstrap_correlation`) resamples items and, where a score comes from several
raters, raters (two-level: a draw picks R raters with replacement and n items with replacement; the
human score of an item is the mean of the drawn raters' scores). Intervals are percentile intervals.

Example:
    >>> round(spearman([1, 2, 3, 4], [1, 3, 2, 4]), 6)
    0.8
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_i2i.errors import I2IInputError

MIN_PAIRS = 3


class UndefinedStatistic(I2IInputError):
    """A statistic cannot be computed (too few pairs, a constant vector); the message says why."""


def _pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise I2IInputError(f"correlation of vectors of different lengths ({a.size} and {b.size})")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise I2IInputError("correlation of vectors containing NaN or infinite values")
    if a.size < MIN_PAIRS:
        raise UndefinedStatistic(f"needs at least {MIN_PAIRS} pairs, got {a.size}")
    return a, b


def _check_not_constant(a: np.ndarray, b: np.ndarray) -> None:
    for v, label in ((a, "first"), (b, "second")):
        if np.all(v == v[0]):
            raise UndefinedStatistic(f"the {label} vector is constant ({v[0]:g} for all {v.size} items)")


def rankdata(x: Any) -> np.ndarray:
    """Average ranks (1-based; ties get the mean of their ranks), as ``scipy.stats.rankdata``."""
    v = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(v, kind="mergesort")
    sorted_v = v[order]
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    ends = np.r_[starts[1:], v.size]
    avg = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(v.size)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def pearson(x: Any, y: Any) -> float:
    """Pearson r = Σ(x−x̄)(y−ȳ) / sqrt(Σ(x−x̄)² Σ(y−ȳ)²). Raises UndefinedStatistic (n<3, constant)."""
    a, b = _pair(x, y)
    _check_not_constant(a, b)
    da, db = a - a.mean(), b - b.mean()
    # normalise first: avoids overflow / underflow of the sums for extreme scales
    da /= np.linalg.norm(da)
    db /= np.linalg.norm(db)
    return float(np.clip(np.dot(da, db), -1.0, 1.0))


def spearman(x: Any, y: Any) -> float:
    """Spearman ρ: Pearson r of the average ranks. Raises UndefinedStatistic (n<3, constant)."""
    a, b = _pair(x, y)
    _check_not_constant(a, b)
    return pearson(rankdata(a), rankdata(b))


def _dense_ranks(v: np.ndarray) -> np.ndarray:
    return np.unique(v, return_inverse=True)[1]


def _tied_pairs(dense: np.ndarray) -> int:
    counts = np.bincount(dense)
    return int((counts * (counts - 1) // 2).sum())


def _count_inversions(a: np.ndarray) -> int:
    """Pairs i < j with a[i] > a[j] (``a``: non-negative integers), by a vectorised bottom-up merge sort."""
    a = a.astype(np.int64).copy()
    n = a.size
    m = int(a.max()) + 1 if n else 1
    idx = np.arange(n)
    inversions = 0
    width = 1
    while width < n:
        block = idx // (2 * width)
        right = (idx % (2 * width)) >= width
        keys = block * m + a  # each block's values offset into its own range: one global order
        left_keys = keys[~right]  # sorted (each left block is sorted from the previous level)
        rk = keys[right]
        left_end = np.searchsorted(left_keys, (block[right] + 1) * m, side="left")
        inversions += int((left_end - np.searchsorted(left_keys, rk, side="right")).sum())
        a = np.sort(keys) - block * m  # merge: sort within blocks (block ids are non-decreasing)
        width *= 2
    return inversions


def kendall_tau_b(x: Any, y: Any) -> float:
    """Kendall τ-b = (n_c − n_d) / sqrt((n₀ − n₁)(n₀ − n₂)).

    n₀ = n(n−1)/2 pairs, n₁ / n₂ pairs tied in x / in y, n_c / n_d concordant / discordant pairs
    (O(n log² n): discordant pairs are the inversions of y once sorted by (x, y)).
    Raises UndefinedStatistic (n<3, constant).
    """
    a, b = _pair(x, y)
    _check_not_constant(a, b)
    n = a.size
    ra, rb = _dense_ranks(a), _dense_ranks(b)
    order = np.lexsort((rb, ra))
    n0 = n * (n - 1) // 2
    n1, n2, n3 = _tied_pairs(ra), _tied_pairs(rb), _tied_pairs(ra * (int(rb.max()) + 1) + rb)
    nd = _count_inversions(rb[order])
    nc = n0 - n1 - n2 + n3 - nd
    return float(np.clip((nc - nd) / np.sqrt(float(n0 - n1) * float(n0 - n2)), -1.0, 1.0))


CORRELATIONS: dict[str, Callable[[Any, Any], float]] = {
    "spearman": spearman, "kendall": kendall_tau_b, "pearson": pearson,
}


def orientation(metric_higher_is_better: bool, human_higher_is_better: bool = True) -> int:
    """+1 when metric and human scores point the same way, −1 otherwise (a distance vs a rating)."""
    return 1 if metric_higher_is_better == human_higher_is_better else -1


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    v = np.sort(np.asarray(values, dtype=np.float64))
    alpha = 1.0 - confidence
    lo = v[int(np.floor(alpha / 2 * (v.size - 1)))]
    hi = v[int(np.ceil((1 - alpha / 2) * (v.size - 1)))]
    return float(lo), float(hi)


@dataclass
class Estimate:
    """A statistic with its bootstrap interval; ``value is None`` when undefined (``reason`` says why).

    ``n_valid`` counts the bootstrap draws where the statistic was defined (a draw can be constant).
    """

    value: float | None
    ci: tuple[float, float] | None = None
    n: int = 0
    n_valid: int = 0
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "ci": list(self.ci) if self.ci else None, "n": self.n,
                "bootstrap_valid": self.n_valid, "reason": self.reason}


def _as_rater_matrix(human: Any, n: int) -> np.ndarray:
    h = np.asarray(human, dtype=np.float64)
    if h.ndim == 1:
        h = h[None, :]
    if h.ndim != 2 or h.shape[1] != n:
        raise I2IInputError(f"human scores must be (n,) or (raters, n) with n={n}, got shape {h.shape}")
    if not np.isfinite(h).any(axis=0).all():
        raise I2IInputError("every item needs at least one rater's score (a column is all missing)")
    return h


def rater_mean(h: np.ndarray) -> np.ndarray:
    """Mean over raters (rows), ignoring missing (NaN) scores; every column must have one score."""
    counts = np.isfinite(h).sum(axis=0)
    return np.where(np.isfinite(h), h, 0.0).sum(axis=0) / counts


def _draws(n: int, n_raters: int, n_resamples: int, seed: int, resample_raters: bool):
    rng = np.random.default_rng(seed)
    for _ in range(n_resamples):
        items = rng.integers(0, n, size=n)
        raters = rng.integers(0, n_raters, size=n_raters) if resample_raters and n_raters > 1 else None
        yield items, raters


def _bootstrap_estimate(value: float, stats: list[float], n: int, n_resamples: int, confidence: float) -> Estimate:
    """The estimate with its percentile interval, or no interval when fewer than half the draws were usable."""
    if len(stats) < n_resamples / 2:
        return Estimate(value, None, n, len(stats),
                        f"the statistic was undefined in {n_resamples - len(stats)} of {n_resamples} bootstrap draws")
    return Estimate(value, percentile_interval(np.array(stats), confidence), n, len(stats))


def bootstrap_correlation(
    metric: Any,
    human: Any,
    *,
    method: str = "spearman",
    sign: int = 1,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    resample_raters: bool = True,
) -> Estimate:
    """Correlation of ``metric`` (n,) with human scores, times ``sign``, with a bootstrap CI.

    Args:
        metric: one metric value per item.
        human: (n,) scores, or (raters, n) with NaN where a rater did not score an item; the
            point estimate uses the mean over raters.
        method: ``"spearman"``, ``"kendall"`` (τ-b) or ``"pearson"``.
        sign: +1 or −1 (see :func:`orientation`); applied to the value and the interval.
        resample_raters: with several raters, also resample raters in each draw.

    Returns:
        An :class:`Estimate`; undefined statistics give ``value=None`` and the reason. A draw where
        the statistic is undefined is skipped; when fewer than half of the draws are usable the
        interval is ``None`` with the reason.
    """
    if method not in CORRELATIONS:
        raise I2IInputError(f"unknown correlation {method!r}; known: {', '.join(CORRELATIONS)}")
    if sign not in (1, -1):
        raise I2IInputError(f"sign must be +1 or -1, got {sign}")
    fn = CORRELATIONS[method]
    m = np.asarray(metric, dtype=np.float64).ravel()
    h = _as_rater_matrix(human, m.size)
    try:
        value = sign * fn(m, rater_mean(h))
    except UndefinedStatistic as e:
        return Estimate(None, n=m.size, reason=str(e))
    stats = []
    for items, raters in _draws(m.size, h.shape[0], n_resamples, seed, resample_raters):
        hh = h[:, items] if raters is None else h[np.ix_(raters, items)]
        keep = np.isfinite(hh).any(axis=0)
        try:
            stats.append(sign * fn(m[items][keep], rater_mean(hh[:, keep])))
        except UndefinedStatistic:
            continue
    return _bootstrap_estimate(value, stats, m.size, n_resamples, confidence)


def paired_bootstrap_difference(
    metric_a: Any,
    metric_b: Any,
    human: Any,
    *,
    method: str = "spearman",
    sign_a: int = 1,
    sign_b: int = 1,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    resample_raters: bool = True,
) -> dict[str, Any]:
    """Does metric A agree with people better than metric B on the same items?

    Each draw resamples items (and raters) once and computes
    Δ = sign_a·corr(A, h) − sign_b·corr(B, h) on that same draw. Returns the observed Δ, its
    percentile CI, and the two-sided bootstrap p-value 2·min(P(Δ* ≤ 0), P(Δ* ≥ 0)) (capped at 1).
    Undefined correlations give ``{"value": None, "reason": ...}``.
    """
    fn = CORRELATIONS[method]
    a = np.asarray(metric_a, dtype=np.float64).ravel()
    b = np.asarray(metric_b, dtype=np.float64).ravel()
    h = _as_rater_matrix(human, a.size)
    if b.size != a.size:
        raise I2IInputError(f"metric A has {a.size} items, metric B {b.size}: a paired test needs the same items")
    try:
        delta = sign_a * fn(a, rater_mean(h)) - sign_b * fn(b, rater_mean(h))
    except UndefinedStatistic as e:
        return {"value": None, "ci": None, "p_value": None, "n": a.size, "reason": str(e)}
    diffs = []
    for items, raters in _draws(a.size, h.shape[0], n_resamples, seed, resample_raters):
        hh = h[:, items] if raters is None else h[np.ix_(raters, items)]
        keep = np.isfinite(hh).any(axis=0)
        hm = rater_mean(hh[:, keep])
        try:
            diffs.append(sign_a * fn(a[items][keep], hm) - sign_b * fn(b[items][keep], hm))
        except UndefinedStatistic:
            continue
    if len(diffs) < n_resamples / 2:
        return {"value": delta, "ci": None, "p_value": None, "n": a.size,
                "reason": f"undefined in {n_resamples - len(diffs)} of {n_resamples} bootstrap draws"}
    d = np.array(diffs)
    p = min(1.0, 2.0 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
    return {"value": float(delta), "ci": list(percentile_interval(d, confidence)), "p_value": p, "n": a.size,
            "reason": None}


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    ok = np.isfinite(a)
    counts = ok.sum(axis=axis)
    sums = np.where(ok, a, 0.0).sum(axis=axis)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def system_scores(metric: np.ndarray, human: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-system means: ``metric`` (M, U) or (M,) and ``human`` (R, M, U), NaN = missing.

    A system's human score is the mean over its items of the mean over raters; its metric score is
    the mean of its per-item values (or the given per-system value for set-level metrics such as FID).
    """
    h_sys = _nanmean(_nanmean(human, axis=0), axis=1)
    m_sys = metric if metric.ndim == 1 else _nanmean(metric, axis=1)
    return m_sys, h_sys


def bootstrap_system_correlation(
    metric: Any,
    human: Any,
    *,
    method: str = "spearman",
    sign: int = 1,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    resample_raters: bool = True,
) -> Estimate:
    """System-level (per model) correlation with a bootstrap over items (and raters).

    Args:
        metric: (M, U) per-item metric values of M systems on U items (NaN where missing), or (M,)
            one value per system (set-level metrics; then only the human side is resampled).
        human: (R, M, U) ratings, NaN where missing.

    Each draw resamples the U items (the same items for every system) and the R raters, recomputes
    every system's means (:func:`system_scores`) and correlates the M pairs. ``n`` is M.
    """
    fn = CORRELATIONS[method]
    x = np.asarray(metric, dtype=np.float64)
    h = np.asarray(human, dtype=np.float64)
    if h.ndim != 3 or x.shape[0] != h.shape[1] or (x.ndim == 2 and x.shape[1] != h.shape[2]):
        raise I2IInputError(f"system-level: metric {x.shape} and human {h.shape} shapes do not match")
    m_sys, h_sys = system_scores(x, h)
    bad = ~(np.isfinite(m_sys) & np.isfinite(h_sys))
    if bad.any():
        return Estimate(None, n=x.shape[0], reason=f"{int(bad.sum())} system(s) have no scored, rated item")
    try:
        value = sign * fn(m_sys, h_sys)
    except UndefinedStatistic as e:
        return Estimate(None, n=x.shape[0], reason=str(e))
    stats = []
    n_units, n_raters = h.shape[2], h.shape[0]
    for items, raters in _draws(n_units, n_raters, n_resamples, seed, resample_raters):
        hh = h[:, :, items] if raters is None else h[raters][:, :, items]
        xx = x if x.ndim == 1 else x[:, items]
        ms, hs = system_scores(xx, hh)
        if not (np.isfinite(ms).all() and np.isfinite(hs).all()):
            continue
        try:
            stats.append(sign * fn(ms, hs))
        except UndefinedStatistic:
            continue
    return _bootstrap_estimate(value, stats, x.shape[0], n_resamples, confidence)
