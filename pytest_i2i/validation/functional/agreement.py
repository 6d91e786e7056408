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
  one person predicts the panel, the ceiling an automatic metric can be compared with;
  :func:`within_model_leave_one_out` does it per generator and aggregates across generators (the
  "human raters" row of VIEScore's table).
- :func:`preference_accuracy`: agreement of a judge's votes with human four-outcome preference votes
  (GenAI-Bench: a, b, tie, both bad), with and without ties; :func:`metric_votes` turns two
  per-image scores into such a vote.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_i2i.errors import I2IInputError
from pytest_i2i.metrics.functional.bootstrap import bootstrap_mean_ci
from pytest_i2i.validation.functional.correlation import (
    AGGREGATES,
    CORRELATIONS,
    DEGENERATE,
    R_MAX,
    ROW_CORRELATIONS,
    WEIGHTED_METHODS,
    Estimate,
    UndefinedStatistic,
    _bootstrap_estimate,
    fisher_z_mean,
    rater_mean,
    tanh_mean,
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


def within_model_leave_one_out(
    per_model: dict[str, np.ndarray],
    items: dict[str, np.ndarray],
    *,
    n_items: int,
    methods: tuple[str, ...] | list[str] = ("spearman", "pearson"),
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Leave-one-rater-out correlation per generator, aggregated across generators.

    For each model m and rater r: corr(rater r, mean of the other raters) on the model's items both
    cover. Per model, the raters' values are combined and then the models' values, by each rule of
    :data:`~pytest_i2i.validation.functional.correlation.AGGREGATES`:

    - ``viescore``: tanh of the mean over raters, then tanh of the mean over models (VIEScore's
      ``iterate_all_results_human2human`` and table rows);
    - ``fisher_z``: the mean of atanh over raters, then the (n − 3)-weighted mean over models.

    Intervals: the cluster bootstrap of :func:`~.correlation.within_model` (items resampled with
    replacement as count weights, the same draws for every model; raters are what is compared, so
    they are not resampled).

    Args:
        per_model: ``{model: (raters, n_m) ratings}`` (NaN where a rater did not rate).
        items: ``{model: (n_m,) indices into range(n_items)}``.
    """
    rng = np.random.default_rng(seed)
    counts = np.empty((n_resamples, n_items))
    for b in range(n_resamples):
        counts[b] = np.bincount(rng.integers(0, n_items, size=n_items), minlength=n_items)
    models = sorted(per_model)
    out_models: dict[str, Any] = {}
    aggregates: dict[str, Any] = {}
    point: dict[str, dict[str, list[float | None]]] = {m: {} for m in methods}
    boot: dict[str, list[dict[str, np.ndarray]]] = {m: [] for m in methods if m in WEIGHTED_METHODS}
    ns, boot_ns = [], []
    for model in models:
        h = np.asarray(per_model[model], dtype=np.float64)
        w = counts[:, items[model]]
        entry: dict[str, Any] = {"n": int(h.shape[1]), "n_raters": int(h.shape[0])}
        per_rater_boot: dict[str, list[np.ndarray]] = {m: [] for m in boot}
        for method in methods:
            loo = leave_one_rater_out(h, method=method)
            entry[method] = {"per_rater": loo["per_rater"], "reasons": loo["reasons"]}
            defined = [v for v in loo["per_rater"] if v is not None]
            ok = len(defined) == len(loo["per_rater"]) and defined
            entry[method]["viescore"] = tanh_mean(defined) if ok else None
            entry[method]["fisher_z"] = (fisher_z_mean(defined) if ok and max(abs(v) for v in defined) < DEGENERATE
                                         else None)
            point[method][model] = entry[method]
            if method in per_rater_boot:
                for i in range(h.shape[0]):
                    others = rater_mean(np.delete(h, i, axis=0))
                    keep = np.isfinite(h[i]) & np.isfinite(others)
                    ww = np.where(keep, w, 0.0)
                    per_rater_boot[method].append(ROW_CORRELATIONS[method](
                        np.where(keep, h[i], 0.0), np.where(keep, others, 0.0), ww))
        out_models[model] = entry
        ns.append(h.shape[1])
        boot_ns.append(w.sum(axis=1))
        for method in boot:
            r = np.stack(per_rater_boot[method], axis=1)  # (B, raters)
            rz = np.where(np.abs(np.where(np.isfinite(r), r, 0.0)) >= DEGENERATE, np.nan, r)
            boot[method].append({"viescore": np.tanh(_nanmean_rows(r)),
                                 "fisher_z": np.tanh(_nanmean_rows(np.arctanh(np.clip(rz, -R_MAX, R_MAX)))),
                                 "partial": ~np.isfinite(rz).all(axis=1)})
    nsa = np.array(ns, dtype=np.float64)
    for method in methods:
        aggregates[method] = {}
        for how in AGGREGATES:
            values = [point[method][m][how] for m in models]
            if not models or any(v is None for v in values):
                bad = [m for m, v in zip(models, values) if v is None]
                aggregates[method][how] = Estimate(None, n=len(models), reason=f"undefined for {', '.join(bad)} "
                                                   "(a constant rater; see per_model)").to_dict()
                continue
            if how == "viescore":
                value = tanh_mean(values)
            elif (nsa <= 3).any():
                aggregates[method][how] = Estimate(None, n=len(models), reason="a model has 3 or fewer items").to_dict()
                continue
            else:
                value = fisher_z_mean(values, nsa - 3.0)
            if method not in boot:
                aggregates[method][how] = Estimate(value, None, len(models), 0, f"no bootstrap interval for "
                                                   f"{method} at the within-model level").to_dict()
                continue
            per = np.stack([b[how] for b in boot[method]], axis=1)  # (B, M)
            if how == "viescore":
                stats = np.tanh(_nanmean_rows(per))
            else:
                wts = np.where(np.isfinite(per), np.stack(boot_ns, axis=1) - 3.0, 0.0)
                z = np.where(np.isfinite(per), np.arctanh(np.clip(per, -R_MAX, R_MAX)), 0.0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    stats = np.where((wts >= 0).all(axis=1) & (wts.sum(axis=1) > 0),
                                     np.tanh((wts * z).sum(axis=1) / wts.sum(axis=1)), np.nan)
            est = _bootstrap_estimate(value, stats, len(models), n_resamples, confidence).to_dict()
            partial = int((np.stack([b["partial"] for b in boot[method]], axis=1).any(axis=1)
                           | ~np.isfinite(per).all(axis=1)).sum())
            if partial:
                est["bootstrap_note"] = (f"in {partial} of {n_resamples} draws a rater's correlation was undefined "
                                         "(a rater constant on the drawn items)" + (" or ±1" if how == "fisher_z"
                                                                                      else "")
                                         + " and was left out of that draw")
            aggregates[method][how] = est
    return {"models": models, "per_model": out_models, "aggregate": aggregates,
            "_draws": {m: {"r": np.stack([b["fisher_z"] for b in boot[m]], axis=1), "n": np.stack(boot_ns, axis=1)}
                       for m in boot if boot[m]}}


def _nanmean_rows(a: np.ndarray) -> np.ndarray:
    ok = np.isfinite(a)
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, a, 0.0).sum(axis=1) / n, np.nan)


# -- preference votes (GenAI-Bench) ---------------------------------------------------------------
PREFERENCE = ("a", "b", "tie", "both_bad")
#: judge votes GenAI-Bench counts as right for each human vote ("same" = its "[[A=B]]")
RIGHT = {"a": {"a"}, "b": {"b"}, "tie": {"tie", "same"}, "both_bad": {"both_bad", "same"}}


def metric_votes(score_a: Any, score_b: Any, *, higher_is_better: bool = True, margin: float = 0.0) -> list[str]:
    """A per-image metric as a pairwise vote: ``a`` when a's score is better by more than
    ``margin``, ``b`` when b's is, ``same`` otherwise (GenAI-Bench's ``[[A=B]]``, right for a human tie
    and for both-bad; a metric cannot tell those two apart without an absolute threshold)."""
    a = np.asarray(score_a, dtype=np.float64).ravel()
    b = np.asarray(score_b, dtype=np.float64).ravel()
    if a.shape != b.shape or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise I2IInputError("metric_votes: score_a and score_b must be finite and of the same length")
    d = (a - b) if higher_is_better else (b - a)
    return ["a" if x > margin else "b" if x < -margin else "same" for x in d]


def preference_accuracy(judge: list[str | None], human: list[str], *, confidence: float = 0.95,
                        n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Agreement of judge votes with human four-outcome votes, as GenAI-Bench reports it.

    - ``with_ties``: the fraction of all pairs where the judge is right by GenAI-Bench's rule
      (:data:`RIGHT`; no vote or an unknown label is wrong): its published accuracy;
    - ``without_ties``: the same on the pairs where the human preferred one image (``a`` / ``b``);
    - ``decisive``: on the pairs where both the human and the judge preferred one image.

    Each with a percentile-bootstrap CI over pairs; ``confusion[human][judge]`` counts the votes.
    """
    if len(judge) != len(human) or not human:
        raise I2IInputError(f"preference_accuracy: {len(judge)} judge votes for {len(human)} human votes")
    bad = sorted({h for h in human if h not in RIGHT})
    if bad:
        raise I2IInputError(f"preference_accuracy: human votes {bad} are not one of {', '.join(PREFERENCE)}")
    right = np.array([j is not None and j in RIGHT[h] for j, h in zip(judge, human)], dtype=np.float64)
    pref = np.array([h in ("a", "b") for h in human])
    decisive = pref & np.array([j in ("a", "b") for j in judge])
    out: dict[str, Any] = {}
    for name, mask in (("with_ties", np.ones_like(pref)), ("without_ties", pref), ("decisive", decisive)):
        v = right[mask]
        if v.size == 0:
            out[name] = Estimate(None, n=0, reason="no pair in this subset").to_dict()
            continue
        ci = bootstrap_mean_ci(v, confidence=confidence, n_resamples=n_resamples, seed=seed)
        out[name] = Estimate(float(v.mean()), ci, int(v.size), n_resamples).to_dict()
    labels = ["a", "b", "tie", "both_bad", "same", "other", None]
    out["confusion"] = {h: {str(j): int(sum(1 for jj, hh in zip(judge, human) if hh == h and jj == j))
                            for j in labels} for h in PREFERENCE}
    return out
