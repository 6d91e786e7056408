"""Rank and linear correlation with bootstrap confidence intervals (pure numpy, no I/O).

Pearson r, Spearman ρ (Pearson r of average ranks) and Kendall τ-b, each equal to
``scipy.stats.pearsonr`` / ``spearmanr`` / ``kendalltau(variant="b")`` to 1e-9 on the same vectors.
A statistic that is not defined (fewer than 3 pairs, a constant vector) raises
:class:`UndefinedStatistic` with the reason, never returns NaN; callers record ``None`` and the reason.

Sign handling: a metric is *oriented* to agree with people when its correlation with a human score
(higher = better) is positive: ``oriented = raw`` for a similarity (higher is better) and
``oriented = -raw`` for a distance (lower is better); :func:`orientation` gives the factor.

The bootstraps resample items and, where a score comes from several raters, raters (two-level: a
draw picks R raters with replacement and n items with replacement; the human score of an item is
the mean of the drawn raters' scores). Intervals are percentile intervals. Pearson and Spearman are
computed for all draws at once (:func:`pearson_rows`, :func:`spearman_rows`, which take per-item
count weights: a weight k is the same as k copies of the item); Kendall τ-b draw by draw.

Aggregating correlations over strata (e.g. one correlation per generator, :func:`within_model`):

- :func:`fisher_z_mean`: tanh of the (n − 3)-weighted mean of atanh(r), the fixed-effect Fisher-z
  mean (the project's default);
- :func:`tanh_mean`: tanh of the plain mean of the correlations themselves: what VIEScore's
  ``average_correlation`` computes, because its notebook passes correlations (not z-values) to a
  function that only back-transforms (the ``viescore`` convention).

Example:
    >>> round(spearman([1, 2, 3, 4], [1, 3, 2, 4]), 6)
    0.8
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_i2i.errors import I2IInputError

MIN_PAIRS = 3
#: largest |r| used in atanh (a correlation of exactly ±1 has an infinite z)
R_MAX = 1.0 - 1e-12
#: in a bootstrap draw, |r| at least this is degenerate for the Fisher-z mean (a stratum reduced to a
#: few distinct values, e.g. a rater who scored almost every item 0): left out of that draw like an
#: undefined r, instead of entering with atanh(r) ≈ 14
DEGENERATE = 1.0 - 1e-9


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


# -- many correlations at once (rows), with count weights -----------------------------------------
def _rows(x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return a[None, :] if a.ndim == 1 else a


def _weights(w: Any, shape: tuple[int, ...]) -> np.ndarray:
    return np.ones(shape) if w is None else np.broadcast_to(np.asarray(w, dtype=np.float64), shape)


def rank_rows(x: Any, weights: Any = None) -> np.ndarray:
    """Average ranks along the last axis of (B, n) values; ``weights`` (B, n) are item counts.

    A weight k ranks like k copies of the value (a group of tied values with total weight W that
    follows weight C gets rank C + (W + 1) / 2), so unit weights give ``scipy.stats.rankdata``'s
    average ranks. Entries of weight 0 do not count (their rank is meaningless).
    """
    if np.ndim(x) == 1 and weights is not None and np.ndim(weights) == 2:
        return _rank_fixed(np.asarray(x, dtype=np.float64), np.asarray(weights, dtype=np.float64))[0]
    X = _rows(x)
    b, n = X.shape
    W = _weights(weights, X.shape)
    order = np.argsort(X, axis=1)  # any order of tied values gives the same ranks
    S = np.take_along_axis(X, order, axis=1)
    SW = np.take_along_axis(W, order, axis=1)
    new = np.ones((b, n), dtype=bool)
    new[:, 1:] = S[:, 1:] != S[:, :-1]
    flat_new = new.ravel()
    gid = np.cumsum(flat_new) - 1  # tie groups, numbered across all rows (a row always starts one)
    gw = np.bincount(gid, weights=SW.ravel())
    cum = np.cumsum(gw)
    row_of_group = np.flatnonzero(flat_new) // n
    first = gid.reshape(b, n)[:, 0]
    before = cum - gw - (cum[first] - gw[first])[row_of_group]
    ranks = np.empty_like(X)
    np.put_along_axis(ranks, order, (before + (gw + 1.0) / 2.0)[gid].reshape(b, n), axis=1)
    return ranks


def _groups(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, first index of each tie group in sorted order, group of each sorted position) of a vector."""
    order = np.argsort(x)
    srt = x[order]
    new = np.r_[True, srt[1:] != srt[:-1]]
    return order, np.flatnonzero(new), np.cumsum(new) - 1


def _rank_fixed(x: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of one vector under B weightings (B, n), and which rows are constant (one weighted value):
    sorted once, the groups' weights summed per row."""
    order, starts, gid = _groups(x)
    gw = np.add.reduceat(W[:, order], starts, axis=1)  # (B, groups)
    rank_g = np.cumsum(gw, axis=1) - gw + (gw + 1.0) / 2.0
    ranks = np.empty(W.shape)
    ranks[:, order] = rank_g[:, gid]
    return ranks, (gw > 0).sum(axis=1) <= 1


def _r_from_sums(X: np.ndarray, Y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Weighted Pearson r per row from the weighted sums (X, Y well scaled: centred, unit spread)."""
    sw = W.sum(axis=1)
    wx = W * X
    sx, sy = wx.sum(axis=1), (W * Y).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = (wx * Y).sum(axis=1) - sx * sy / sw
        vx = (wx * X).sum(axis=1) - sx * sx / sw
        vy = (W * Y * Y).sum(axis=1) - sy * sy / sw
        return np.clip(cov / np.sqrt(vx * vy), -1.0, 1.0)


def _fixed_pair(x: Any, y: Any, W: np.ndarray, ranks: bool) -> np.ndarray:
    """Pearson (or Spearman) r of one pair of vectors under B weightings; NaN where undefined."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    on = W > 0
    a = np.where(on.any(axis=0), a, 0.0)  # values nobody weighs (may be NaN) do not count
    b = np.where(on.any(axis=0), b, 0.0)
    ra, ca = _rank_fixed(a, W)
    rb, cb = _rank_fixed(b, W)
    if ranks:
        n = a.size
        X, Y = (ra - (n + 1) / 2.0) / n, (rb - (n + 1) / 2.0) / n
    else:
        sa, sb = a.std() or 1.0, b.std() or 1.0
        X, Y = (a - a.mean()) / sa, (b - b.mean()) / sb
        X, Y = np.broadcast_to(X, W.shape), np.broadcast_to(Y, W.shape)
    r = _r_from_sums(X, Y, W)
    return np.where(ca | cb | (W.sum(axis=1) < MIN_PAIRS), np.nan, r)


def _constant_rows(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    on = W > 0
    return np.where(on, X, np.inf).min(axis=1) == np.where(on, X, -np.inf).max(axis=1)


def pearson_rows(x: Any, y: Any, weights: Any = None) -> np.ndarray:
    """Pearson r of each row pair of (B, n) arrays with count weights; NaN where undefined
    (a row constant over its weighted items, or total weight below 3). Values of weight 0 are
    ignored (they may be NaN)."""
    if np.ndim(x) == 1 and np.ndim(y) == 1 and weights is not None and np.ndim(weights) == 2:
        return _fixed_pair(x, y, np.asarray(weights, dtype=np.float64), ranks=False)  # bootstrap counts
    X, Y = _rows(x), _rows(y)
    shape = np.broadcast_shapes(X.shape, Y.shape, np.shape(weights) if weights is not None else X.shape)
    X, Y = np.broadcast_to(X, shape), np.broadcast_to(Y, shape)
    W = _weights(weights, shape)
    on = W > 0
    X, Y = np.where(on, X, 0.0), np.where(on, Y, 0.0)
    sw = W.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = X - ((W * X).sum(axis=1) / sw)[:, None]
        dy = Y - ((W * Y).sum(axis=1) / sw)[:, None]
        # scale first: no overflow / underflow of the sums for extreme values
        dx /= np.where(on, np.abs(dx), 0.0).max(axis=1, keepdims=True)
        dy /= np.where(on, np.abs(dy), 0.0).max(axis=1, keepdims=True)
        r = (W * dx * dy).sum(axis=1) / np.sqrt((W * dx * dx).sum(axis=1) * (W * dy * dy).sum(axis=1))
    bad = _constant_rows(X, W) | _constant_rows(Y, W) | (sw < MIN_PAIRS)
    return np.where(bad, np.nan, np.clip(r, -1.0, 1.0))


def spearman_rows(x: Any, y: Any, weights: Any = None) -> np.ndarray:
    """Spearman ρ of each row pair (Pearson r of the weighted average ranks); NaN where undefined."""
    if np.ndim(x) == 1 and np.ndim(y) == 1 and weights is not None and np.ndim(weights) == 2:
        return _fixed_pair(x, y, np.asarray(weights, dtype=np.float64), ranks=True)  # bootstrap counts
    X, Y = _rows(x), _rows(y)
    shape = np.broadcast_shapes(X.shape, Y.shape, np.shape(weights) if weights is not None else X.shape)
    W = _weights(weights, shape)
    on = W > 0
    X, Y = np.where(on, X, 0.0), np.where(on, Y, 0.0)
    r = pearson_rows(rank_rows(X, W), rank_rows(Y, W), W)
    return np.where(_constant_rows(X, W) | _constant_rows(Y, W), np.nan, r)


def kendall_rows(x: Any, y: Any, weights: Any = None) -> np.ndarray:
    """Kendall τ-b of each row pair, row by row; ``weights`` must be 0/1 (a mask) here."""
    X, Y = _rows(x), _rows(y)
    W = _weights(weights, X.shape)
    if not np.isin(W, (0.0, 1.0)).all():
        raise I2IInputError("kendall_rows takes a 0/1 mask, not count weights")
    out = np.full(X.shape[0], np.nan)
    for i in range(X.shape[0]):
        keep = W[i] > 0
        try:
            out[i] = kendall_tau_b(X[i, keep], Y[i, keep])
        except UndefinedStatistic:
            pass
    return out


ROW_CORRELATIONS: dict[str, Callable[..., np.ndarray]] = {
    "spearman": spearman_rows, "kendall": kendall_rows, "pearson": pearson_rows,
}
#: the methods whose rows take count weights (the within-model cluster bootstrap needs them)
WEIGHTED_METHODS = ("spearman", "pearson")


# -- one correlation -------------------------------------------------------------------------------
def rankdata(x: Any) -> np.ndarray:
    """Average ranks (1-based; ties get the mean of their ranks), as ``scipy.stats.rankdata``."""
    return rank_rows(np.asarray(x, dtype=np.float64).ravel())[0]


def pearson(x: Any, y: Any) -> float:
    """Pearson r = Σ(x−x̄)(y−ȳ) / sqrt(Σ(x−x̄)² Σ(y−ȳ)²). Raises UndefinedStatistic (n<3, constant)."""
    a, b = _pair(x, y)
    _check_not_constant(a, b)
    da, db = a - a.mean(), b - b.mean()
    # normalise first (as pearson_rows scales): no overflow / underflow of the sums for extreme scales
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
    """Mean over raters (axis −2), ignoring missing (NaN) scores; NaN where no rater scored."""
    ok = np.isfinite(h)
    counts = ok.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.where(ok, h, 0.0).sum(axis=-2) / counts, np.nan)


@functools.lru_cache(maxsize=32)
def _draws(n: int, n_raters: int, n_resamples: int, seed: int, resample_raters: bool
           ) -> tuple[np.ndarray, np.ndarray | None]:
    """(items (B, n), raters (B, R) or None): the draws, in the order the generator makes them.

    Memoised (read-only arrays): every statistic on the same n items uses the same draws, so paired
    comparisons and the single intervals agree."""
    rng = np.random.default_rng(seed)
    with_raters = resample_raters and n_raters > 1
    if not with_raters:
        items, raters = rng.integers(0, n, size=(n_resamples, n)), None
    else:
        items = np.empty((n_resamples, n), dtype=np.int64)
        raters = np.empty((n_resamples, n_raters), dtype=np.int64)
        for b in range(n_resamples):
            items[b] = rng.integers(0, n, size=n)
            raters[b] = rng.integers(0, n_raters, size=n_raters)
        raters.flags.writeable = False
    items.flags.writeable = False
    return items, raters


def _drawn_human(h: np.ndarray, items: np.ndarray, raters: np.ndarray | None) -> np.ndarray:
    """(B, n) human scores of each draw: the mean of the drawn raters on the drawn items (NaN: none)."""
    if raters is None:
        return rater_mean(h)[items]
    if np.isfinite(h).all():
        total = np.zeros(items.shape)
        for r in range(raters.shape[1]):
            total += h[raters[:, r][:, None], items]
        return total / raters.shape[1]
    return rater_mean(h[raters[:, :, None], items[:, None, :]])


def _draw_stats(method: str, x: np.ndarray, h: np.ndarray, items: np.ndarray, raters: np.ndarray | None,
                sign: int = 1) -> np.ndarray:
    """``sign`` × correlation of every draw's (metric, human mean); items nobody drawn scored are left out.

    Without rater draws the human mean per item is fixed, so a draw is the same two vectors under
    count weights (the number of times each item was drawn): one sort serves every draw."""
    if raters is None and method in WEIGHTED_METHODS:
        hm = rater_mean(h)
        b, n = items.shape
        counts = np.bincount((np.arange(b)[:, None] * n + items).ravel(), minlength=b * n).reshape(b, n)
        return sign * ROW_CORRELATIONS[method](x, hm, counts)
    hm = _drawn_human(h, items, raters)
    return sign * ROW_CORRELATIONS[method](x[items], hm, np.isfinite(hm).astype(np.float64))


def _bootstrap_estimate(value: float, stats: np.ndarray, n: int, n_resamples: int, confidence: float) -> Estimate:
    """The estimate with its percentile interval, or no interval when fewer than half the draws were usable
    (``n_resamples == 0``: the point estimate alone)."""
    if n_resamples == 0:
        return Estimate(value, None, n, 0)
    ok = stats[np.isfinite(stats)]
    if ok.size < n_resamples / 2:
        return Estimate(value, None, n, int(ok.size),
                        f"the statistic was undefined in {n_resamples - ok.size} of {n_resamples} bootstrap draws")
    return Estimate(value, percentile_interval(ok, confidence), n, int(ok.size))


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
    m = np.asarray(metric, dtype=np.float64).ravel()
    h = _as_rater_matrix(human, m.size)
    try:
        value = sign * CORRELATIONS[method](m, rater_mean(h))
    except UndefinedStatistic as e:
        return Estimate(None, n=m.size, reason=str(e))
    if n_resamples == 0:
        return Estimate(value, None, m.size, 0)
    items, raters = _draws(m.size, h.shape[0], n_resamples, seed, resample_raters)
    stats = _draw_stats(method, m, h, items, raters, sign)
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
    items, raters = _draws(a.size, h.shape[0], n_resamples, seed, resample_raters)
    return _difference(float(delta), _draw_stats(method, a, h, items, raters, sign_a)
                       - _draw_stats(method, b, h, items, raters, sign_b), a.size, n_resamples, confidence)


def _difference(delta: float, diffs: np.ndarray, n: int, n_resamples: int, confidence: float) -> dict[str, Any]:
    d = diffs[np.isfinite(diffs)]
    if d.size < n_resamples / 2:
        return {"value": delta, "ci": None, "p_value": None, "n": n,
                "reason": f"undefined in {n_resamples - d.size} of {n_resamples} bootstrap draws"}
    p = min(1.0, 2.0 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
    return {"value": delta, "ci": list(percentile_interval(d, confidence)), "p_value": p, "n": n, "reason": None}


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
    if n_resamples == 0:
        return Estimate(value, None, x.shape[0], 0)
    n_units, n_raters = h.shape[2], h.shape[0]
    items, raters = _draws(n_units, n_raters, n_resamples, seed, resample_raters)
    # every draw's per-system means at once: (B, M)
    ms = np.broadcast_to(x, (n_resamples, x.shape[0])) if x.ndim == 1 else _nanmean(x[:, items], axis=2).T
    if raters is None:
        hs = _nanmean(_nanmean(h, axis=0)[:, items], axis=2).T
    else:
        models = np.arange(h.shape[1])
        hh = h[raters[:, :, None, None], models[None, None, :, None], items[:, None, None, :]]  # (B, R, M, U)
        hs = _nanmean(_nanmean(hh, axis=1), axis=2)
    ok = np.isfinite(ms).all(axis=1) & np.isfinite(hs).all(axis=1)
    stats = np.where(ok, sign * ROW_CORRELATIONS[method](np.where(np.isfinite(ms), ms, 0.0),
                                                         np.where(np.isfinite(hs), hs, 0.0)), np.nan)
    return _bootstrap_estimate(value, stats, x.shape[0], n_resamples, confidence)


# -- aggregating correlations over strata (per-model correlations) --------------------------------
def fisher_z_mean(values: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """tanh(Σ wᵢ·atanh(rᵢ) / Σ wᵢ): the Fisher-z mean of correlations (|r| capped at :data:`R_MAX`).

    With ``weights`` nᵢ − 3 (the inverse variance of atanh(r) for n pairs) this is the fixed-effect
    meta-analytic mean. Raises I2IInputError on an empty list or non-positive weights.
    """
    r = np.asarray(values, dtype=np.float64)
    w = np.ones_like(r) if weights is None else np.asarray(weights, dtype=np.float64)
    if r.size == 0 or w.shape != r.shape or not np.isfinite(r).all() or (w <= 0).any():
        raise I2IInputError(f"fisher_z_mean needs finite correlations and positive weights, got {r}, {w}")
    return float(np.tanh(np.sum(w * np.arctanh(np.clip(r, -R_MAX, R_MAX))) / np.sum(w)))


def tanh_mean(values: Sequence[float]) -> float:
    """tanh of the plain mean of the correlations: VIEScore's ``average_correlation`` as its notebook
    calls it (on correlations, not on z-values). Not a Fisher-z mean: it shrinks the mean towards 0."""
    r = np.asarray(values, dtype=np.float64)
    if r.size == 0 or not np.isfinite(r).all():
        raise I2IInputError(f"tanh_mean needs finite correlations, got {r}")
    return float(np.tanh(r.mean()))


AGGREGATES: dict[str, str] = {
    "fisher_z": "tanh of the (n − 3)-weighted mean of atanh(r) over models (fixed-effect Fisher-z mean)",
    "viescore": "tanh of the plain mean of the per-model correlations (VIEScore's average_correlation)",
}


@dataclass
class Stratum:
    """One generator's units for one metric: ``items`` index the task's item universe, ``x`` the
    metric values and ``human`` the (R, n) ratings (NaN = not rated)."""

    model: str
    items: np.ndarray
    x: np.ndarray
    human: np.ndarray


def _aggregate_rows(rhos: np.ndarray, ns: np.ndarray, how: str) -> np.ndarray:
    """Per draw (rows): the aggregate of M per-model correlations (B, M) with sizes ns (B, M).

    A model whose correlation is undefined in a draw (NaN: constant on the drawn items) is left out
    of that draw's aggregate; a draw with no defined model is NaN."""
    ok = np.isfinite(rhos)
    with np.errstate(invalid="ignore", divide="ignore"):
        if how == "viescore":
            n = ok.sum(axis=1)
            return np.where(n > 0, np.tanh(np.where(ok, rhos, 0.0).sum(axis=1) / n), np.nan)
        ok &= np.abs(np.where(ok, rhos, 0.0)) < DEGENERATE
        w = np.where(ok, ns - 3.0, 0.0)
        z = np.where(ok, np.arctanh(np.clip(rhos, -R_MAX, R_MAX)), 0.0)
        out = np.tanh((w * z).sum(axis=1) / w.sum(axis=1))
    return np.where((w >= 0).all(axis=1) & (w.sum(axis=1) > 0), out, np.nan)


def within_model(
    strata: Mapping[str, Sequence[Stratum]],
    signs: Mapping[str, int],
    *,
    n_items: int,
    n_raters: int,
    methods: Sequence[str] = ("spearman", "pearson"),
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    resample_raters: bool = False,
) -> dict[str, Any]:
    """Per-model (within-generator) correlations of several metrics, aggregated across models.

    For each metric and model: corr(metric, mean over raters) on that model's items (times the
    metric's sign); then the aggregates of :data:`AGGREGATES` across models. Intervals come from
    one cluster bootstrap shared by every metric: a draw resamples the task's items (prompts, the
    same for every model, with replacement, as count weights) and the raters, so paired
    differences between metrics use the same draws.

    Args:
        strata: ``{metric: [Stratum per model]}``; items index ``range(n_items)``.
        signs: ``{metric: ±1}`` (see :func:`orientation`).

    Returns:
        ``{"per_model": {metric: {model: {"n", method: value | None, "reason"}}},
        "aggregate": {metric: {method: {aggregate: Estimate dict}}},
        "differences": {(a, b): {method: {aggregate: difference dict}}}}``; an aggregate is ``None``
        with a reason when a model's correlation is undefined (it would be NaN in VIEScore's code).
    """
    unknown = [m for m in methods if m not in CORRELATIONS]
    if unknown:
        raise I2IInputError(f"unknown correlation(s) {unknown}; known: {', '.join(CORRELATIONS)}")
    rng = np.random.default_rng(seed)
    counts = np.empty((n_resamples, n_items))
    raters = np.empty((n_resamples, n_raters), dtype=np.int64) if resample_raters and n_raters > 1 else None
    for b in range(n_resamples):
        counts[b] = np.bincount(rng.integers(0, n_items, size=n_items), minlength=n_items)
        if raters is not None:
            raters[b] = rng.integers(0, n_raters, size=n_raters)
    per_model: dict[str, dict[str, Any]] = {}
    aggregate: dict[str, dict[str, Any]] = {}
    kept: dict[str, dict[str, Any]] = {}
    draws: dict[tuple[str, str, str], np.ndarray] = {}
    notes: dict[tuple[str, str, str], str] = {}
    points: dict[tuple[str, str, str], float | None] = {}
    for name, models in strata.items():
        sign = signs[name]
        per_model[name] = {}
        point_rhos: dict[str, list[float | None]] = {m: [] for m in methods}
        boot_rhos: dict[str, list[np.ndarray]] = {m: [] for m in methods if m in WEIGHTED_METHODS}
        boot_ns = []
        for s in models:
            hm = rater_mean(s.human)
            entry: dict[str, Any] = {"n": int(s.items.size)}
            reasons = []
            for method in methods:
                try:
                    entry[method] = sign * CORRELATIONS[method](s.x, hm)
                except UndefinedStatistic as e:
                    entry[method] = None
                    reasons.append(f"{method}: {e}")
                point_rhos[method].append(entry[method])
            entry["reason"] = "; ".join(reasons) or None
            per_model[name][s.model] = entry
            w = counts[:, s.items]
            hh = (_drawn_human(s.human, np.broadcast_to(np.arange(s.items.size), w.shape), raters)
                  if raters is not None else hm)  # (B, n), or the fixed (n,) mean: one sort for every draw
            w = np.where(np.isfinite(hh), w, 0.0)
            boot_ns.append(w.sum(axis=1))
            for method in boot_rhos:
                boot_rhos[method].append(sign * ROW_CORRELATIONS[method](s.x, hh, w))
        kept[name] = {"n": boot_ns, "rho": boot_rhos}
        aggregate[name] = {}
        ns_point = np.array([s.items.size for s in models], dtype=np.float64)
        for method in methods:
            aggregate[name][method] = {}
            for how in AGGREGATES:
                rhos = point_rhos[method]
                undefined = [s.model for s, r in zip(models, rhos) if r is None]
                if not models:
                    est = Estimate(None, reason="no model with scored, rated items")
                elif undefined:
                    est = Estimate(None, n=len(models), reason=f"the {method} correlation is undefined for "
                                   f"{', '.join(undefined)} (see per_model)")
                elif how == "fisher_z" and (ns_point <= 3).any():
                    est = Estimate(None, n=len(models), reason="a model has 3 or fewer items (weight n - 3 <= 0)")
                elif how == "fisher_z" and any(abs(r) >= DEGENERATE for r in rhos):
                    est = Estimate(None, n=len(models), reason="a model's correlation is ±1: its Fisher z is infinite")
                else:
                    value = float(_aggregate_rows(np.array([rhos]), ns_point[None, :], how)[0])
                    if method in boot_rhos:
                        per = np.stack(boot_rhos[method], axis=1)
                        stats = _aggregate_rows(per, np.stack(boot_ns, axis=1), how)
                        draws[(name, method, how)] = stats
                        est = _bootstrap_estimate(value, stats, len(models), n_resamples, confidence)
                        bad = ~np.isfinite(per)
                        if how == "fisher_z":
                            bad |= np.abs(np.where(bad, 0.0, per)) >= DEGENERATE
                        partial = int(bad.any(axis=1).sum())
                        if partial:
                            notes[(name, method, how)] = (
                                f"in {partial} of {n_resamples} draws a model's correlation was undefined (constant "
                                "on the drawn items)" + (" or ±1" if how == "fisher_z" else "") +
                                " and was left out of that draw")
                    else:
                        est = Estimate(value, None, len(models), 0, f"no bootstrap interval for {method} at the "
                                       f"within-model level (only {', '.join(WEIGHTED_METHODS)} take count weights)")
                points[(name, method, how)] = est.value
                aggregate[name][method][how] = est.to_dict()
                if (name, method, how) in notes:
                    aggregate[name][method][how]["bootstrap_note"] = notes[(name, method, how)]
    names = list(strata)
    differences: dict[tuple[str, str], dict[str, Any]] = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            diff: dict[str, Any] = {}
            for method in methods:
                diff[method] = {}
                for how in AGGREGATES:
                    va, vb = points.get((a, method, how)), points.get((b, method, how))
                    if va is None or vb is None:
                        diff[method][how] = {"value": None, "ci": None, "p_value": None, "n": len(strata[a]),
                                             "reason": "an aggregate is undefined"}
                    elif (a, method, how) not in draws or (b, method, how) not in draws:
                        diff[method][how] = {"value": va - vb, "ci": None, "p_value": None, "n": len(strata[a]),
                                             "reason": f"no bootstrap for {method} at the within-model level"}
                    else:
                        diff[method][how] = _difference(va - vb, draws[(a, method, how)] - draws[(b, method, how)],
                                                        len(strata[a]), n_resamples, confidence)
            differences[(a, b)] = diff
    return {"per_model": per_model, "aggregate": aggregate, "differences": differences,
            "_draws": {name: {"n": np.stack(d["n"], axis=1) if d["n"] else np.zeros((n_resamples, 0)),
                              **{m: np.stack(v, axis=1) for m, v in d["rho"].items() if v}}
                       for name, d in kept.items()}}
