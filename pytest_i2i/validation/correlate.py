"""The correlation engine: judgment sets + metric scores -> every number of the validation report.

For ``rating`` / ``edit-rating`` sets, per criterion and metric:

- item level: Spearman, Kendall τ-b and Pearson between the metric and the mean rating over
  raters, on the (item, model) units both have, oriented so that positive = agrees with people
  (a distance is negated), with bootstrap CIs;
- system level (sets with 3+ models): the same on per-model means;
- model level (within-generator): the correlation within each model's outputs, aggregated across
  models by both rules of :data:`~pytest_i2i.validation.functional.correlation.AGGREGATES`
  (``fisher_z``, the default; ``viescore``, VIEScore's published convention), with a cluster
  bootstrap over items shared by all metrics;
- the inter-rater ceiling: Krippendorff's α, leave-one-rater-out correlation (each rater vs the
  mean of the others) at item and system level and within models (VIEScore's "human raters" row);
- paired tests between metrics (bootstrap of the difference on the same draws), at item and model level.

For ``2afc`` / ``pairwise`` sets: the 2AFC score with its CI, the human ceiling, paired differences.
For ``preference`` sets (GenAI-Bench): each judge's accuracy with and without ties, per-image
metrics turned into votes, paired differences.

Bootstrap draws resample items (prompts); raters are resampled only with ``resample_raters=True``:
drawing 3 raters with replacement averages fewer distinct raters and lowers every correlation, so
the interval is no longer centred on the estimate (measured on ImagenHub: see the README).

Nothing here returns NaN: an undefined number is ``None`` with a ``reason``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from pytest_i2i.errors import I2IError, I2IInputError
from pytest_i2i.validation.functional import agreement as A
from pytest_i2i.validation.functional import correlation as C
from pytest_i2i.validation.judgments.format import JudgmentSet
from pytest_i2i.validation.judgments.scores import MetricScores, ScoreSet
from pytest_i2i.validation.names import CONVENTIONS, METHODS

MIN_SYSTEMS = 3
CONVENTION_NOTES = {
    "default": "within-model correlations are combined by the Fisher-z mean weighted by n − 3 (the fixed-effect "
               "meta-analytic mean), with a cluster-bootstrap interval over items",
    "viescore": "VIEScore's convention (analyze_json.ipynb): per-model Spearman against the raters' mean, then "
                "tanh(mean ρ) over models; human raters: per model, each rater against the mean of the others, "
                "tanh(mean) over raters, then over models",
}
DIFFERENCES = [
    "VIEScore's average_correlation back-transforms with tanh but its notebook passes it the correlations "
    "themselves, not atanh(ρ): its number is tanh(mean ρ), not a Fisher-z mean; tanh shrinks every mean towards 0 "
    "(a mean ρ of 0.45 becomes 0.42).",
    "VIEScore weights every model equally; the default weights by n − 3, the inverse variance of atanh(ρ), so a "
    "model with few rated items counts less (they are equal when every model has the same items).",
    "For the human row VIEScore applies the tanh twice (over raters, then over models) and, across tasks, a third "
    "time; the default takes one Fisher-z mean of all raters' correlations.",
    "A per-model correlation that is undefined (a constant column) is NaN in VIEScore's code and poisons the "
    "aggregate; here it is null with its reason.",
]


def from_score_set(scores: ScoreSet, *, binding: str | None = None) -> list[MetricScores]:
    return scores.metric_scores(binding=binding)


# -- rating sets ------------------------------------------------------------------------------------
def rating_cube(js: JudgmentSet, criterion: str) -> tuple[list[str], dict[tuple[str, str], np.ndarray]]:
    """``(raters, {(item, model): scores per rater (NaN = not rated)})`` for one criterion (memoised on
    the set: read-only arrays)."""
    memo = js.__dict__.setdefault("_cubes", {})
    if criterion not in memo:
        t = js.table[js.table["criterion"] == criterion]
        wide = t.pivot_table(index=["item", "model"], columns="rater", values="score", aggfunc="first",
                             dropna=False, sort=True)
        raters = sorted(str(r) for r in wide.columns)
        wide = wide.reindex(columns=raters)
        values = wide.to_numpy(dtype=np.float64)
        values.flags.writeable = False
        rated = np.isfinite(values).any(axis=1)  # dropna=False keeps every (item, model) combination
        memo[criterion] = (raters, {(str(i), str(m)): values[k] for k, (i, m) in enumerate(wide.index) if rated[k]})
    return memo[criterion]


def _join(js_units: Iterable[tuple[str, str]], metric: MetricScores, values: dict[tuple[str, str], float]
          ) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    judged = set(js_units)
    if metric.level == "system":
        scored_models = {m for _, m in values}
        units = sorted(u for u in judged if u[1] in scored_models)
        info = {"n_joined": len(units), "models_scored": sorted(scored_models),
                "models_unscored": sorted({m for _, m in judged} - scored_models)}
        return units, info
    scored = set(values)
    units = sorted(judged & scored)
    extra = sorted(scored - judged)
    info = {"n_joined": len(units), "n_judged_not_scored": len(judged - scored),
            "n_scored_not_judged": len(extra),
            "examples_judged_not_scored": [list(u) for u in sorted(judged - scored)[:3]],
            "examples_scored_not_judged": [list(u) for u in extra[:3]]}
    missing_models = sorted({m for _, m in judged} - {m for _, m in scored})
    if missing_models:
        info["models_unscored"] = missing_models
    if extra and metric.binding is not None:
        files = sorted({metric.files.get(m, metric.files.get("", metric.source)) for _, m in extra})
        info["problem"] = (f"{len(extra)} unit(s) scored by {metric.name} are not in the ratings (a different uid "
                           f"set): e.g. (uid, model) {[list(u) for u in extra[:3]]} in {', '.join(files[:3])}")
    return units, info


def _estimates(fn, *args, methods: Sequence[str], **kw) -> dict[str, Any]:
    """Every method of :data:`METHODS`: with a bootstrap interval for ``methods``, the point estimate
    alone for the others (their interval was not asked for: Kendall's bootstrap is the slow one)."""
    out = {}
    for m in METHODS:
        if m in methods:
            out[m] = fn(*args, method=m, **kw).to_dict()
        else:
            e = fn(*args, method=m, **{**kw, "n_resamples": 0})
            out[m] = {**e.to_dict(), "ci": None, "reason": e.reason or "point estimate only: no interval asked for "
                                                                      f"{m} (methods {', '.join(methods)})"}
    return out


def _raw(oriented: dict[str, Any], sign: int) -> dict[str, float | None]:
    return {m: (None if e["value"] is None else sign * e["value"]) for m, e in oriented.items()}


def _index(values: Iterable[str]) -> dict[str, int]:
    return {v: i for i, v in enumerate(sorted(set(values)))}


def rating_agreement(js: JudgmentSet, criterion: str, *, methods: Sequence[str] = METHODS,
                     models: Sequence[str] | None = None, n_resamples: int = 1000, confidence: float = 0.95,
                     seed: int = 0) -> dict[str, Any]:
    """Inter-rater ceiling for one criterion: Krippendorff's α, leave-one-rater-out at item and
    system level, and within models (``models``: the generators compared, default all)."""
    raters, cube = rating_cube(js, criterion)
    units = sorted(cube)
    out: dict[str, Any] = {"set": js.name, "criterion": criterion, "n_raters": len(raters), "n_units": len(units)}
    if len(raters) < 2:
        out["reason"] = "one rater (or pre-aggregated scores): no inter-rater agreement"
        return out
    mat = np.stack([cube[u] for u in units], axis=1)  # (raters, units)
    alpha: dict[str, Any] = {}
    for level in A.LEVELS:
        try:
            alpha[level] = A.krippendorff_alpha(mat, level)
        except I2IInputError as e:
            alpha[level] = None
            alpha[f"{level}_reason"] = str(e)
    out["krippendorff_alpha"] = alpha
    all_models = sorted({m for _, m in units})
    if len(all_models) > 1:  # ImagenHub reports alpha per model: agreement on one model's outputs
        per_model: dict[str, Any] = {}
        for model in all_models:
            cols = [k for k, u in enumerate(units) if u[1] == model]
            try:
                per_model[model] = A.krippendorff_alpha(mat[:, cols], "interval")
            except I2IInputError as e:
                per_model[model] = None
                per_model[f"{model}_reason"] = str(e)
        out["krippendorff_alpha_interval_per_model"] = per_model
    out["leave_one_rater_out"] = {"item": {m: A.leave_one_rater_out(mat, method=m) for m in methods}}
    if len(all_models) >= MIN_SYSTEMS and all_models != [""]:
        items = sorted({i for i, _ in units})
        sys_h = _system_cube(cube, items, all_models, len(raters))
        per_rater = np.stack([C.system_scores(np.zeros(len(all_models)), sys_h[[r]])[1] for r in range(len(raters))])
        out["leave_one_rater_out"]["system"] = {m: A.leave_one_rater_out(per_rater, method=m) for m in methods}
    chosen = [m for m in (models if models is not None else all_models) if m in all_models]
    if chosen and chosen != [""]:
        item_ix = _index(i for i, _ in units)
        per = {m: np.stack([cube[u] for u in units if u[1] == m], axis=1) for m in chosen}
        idx = {m: np.array([item_ix[u[0]] for u in units if u[1] == m]) for m in chosen}
        wm = A.within_model_leave_one_out(per, idx, n_items=len(item_ix), methods=METHODS,
                                          n_resamples=n_resamples, confidence=confidence, seed=seed)
        out["leave_one_rater_out"]["model"] = wm
    return out


def _system_cube(cube: dict[tuple[str, str], np.ndarray], items: list[str], models: list[str], n_raters: int
                 ) -> np.ndarray:
    h = np.full((n_raters, len(models), len(items)), np.nan)
    mi = {m: i for i, m in enumerate(models)}
    ii = {it: i for i, it in enumerate(items)}
    for (item, model), v in cube.items():
        if model in mi and item in ii:
            h[:, mi[model], ii[item]] = v
    return h


def _base(js: JudgmentSet, criterion: str, metric: MetricScores, sign: int, join: dict[str, Any]) -> dict[str, Any]:
    out = {"set": js.name, "criterion": criterion, "metric": metric.name, "sign": sign,
           "calibrated": metric.calibrated, "synthetic": js.synthetic, "join": join, "kind": metric.kind}
    if metric.registry_name:
        out["registry_name"] = metric.registry_name
    return out


def rating_correlations(js: JudgmentSet, criterion: str, metric: MetricScores, *, methods: Sequence[str] = METHODS,
                        confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0,
                        resample_raters: bool = False) -> list[dict[str, Any]]:
    """Item- and system-level rows for one (set, criterion, metric); the model level is computed for
    all metrics of a criterion at once (:func:`model_level`)."""
    raters, cube = rating_cube(js, criterion)
    values = metric.values_for(criterion)
    sign = C.orientation(metric.higher_is_better, js.higher_is_better)
    if values is None:
        reason = f"{metric.name} gives no {criterion} score (it rates {', '.join(metric.by_criterion or {})})"
        return [{**_base(js, criterion, metric, sign, {}), "level": lvl, "n": 0, "reason": reason}
                for lvl in ("item", "system")]
    units, join = _join(cube, metric, values)
    base = _base(js, criterion, metric, sign, join)
    rows = []
    kw = {"sign": sign, "confidence": confidence, "n_resamples": n_resamples, "seed": seed,
          "resample_raters": resample_raters}
    if not units:
        reason = (f"metric {metric.name!r} has no value for any judged (item, model) of {js.name!r} "
                  f"({criterion or 'score'})")
        return [{**base, "level": lvl, "n": 0, "reason": reason} for lvl in ("item", "system")]
    if metric.level == "item":
        x = np.array([values[u] for u in units])
        h = np.stack([cube[u] for u in units], axis=1)
        est = _estimates(C.bootstrap_correlation, x, h, methods=methods, **kw)
        rows.append({**base, "level": "item", "n": len(units), "correlations": est, "raw": _raw(est, sign),
                     "_points": {"metric": x.tolist(), "human": C.rater_mean(h).tolist()}})
    else:
        rows.append({**base, "level": "item", "n": 0,
                     "reason": f"{metric.name} is a set-level metric: system level only"})
    models = sorted({m for _, m in units})
    if len(models) < MIN_SYSTEMS or models == [""]:
        rows.append({**base, "level": "system", "n": len(models),
                     "reason": f"system level needs {MIN_SYSTEMS}+ models with scores, got {len(models)}"})
        return rows
    items = sorted({i for i, _ in units})
    h_sys = _system_cube({u: cube[u] for u in units}, items, models, len(raters))
    if metric.level == "item":
        x_sys = np.full((len(models), len(items)), np.nan)
        mi, ii = {m: i for i, m in enumerate(models)}, {it: i for i, it in enumerate(items)}
        for (item, model) in units:
            x_sys[mi[model], ii[item]] = values[(item, model)]
    else:
        x_sys = np.array([values[("", m)] for m in models])
    est = _estimates(C.bootstrap_system_correlation, x_sys, h_sys, methods=methods, **kw)
    m_sys, hum_sys = C.system_scores(x_sys, h_sys)
    rows.append({**base, "level": "system", "n": len(models), "correlations": est, "raw": _raw(est, sign),
                 "systems": {m: {"metric": float(a), "human": float(b)} for m, a, b in zip(models, m_sys, hum_sys)},
                 "_points": {"metric": m_sys.tolist(), "human": hum_sys.tolist(), "labels": models}})
    return rows


def model_level(js: JudgmentSet, criterion: str, metrics: Sequence[MetricScores], *, convention: str,
                methods: Sequence[str] = METHODS, confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0,
                resample_raters: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Within-generator correlations of every item-level metric of one criterion (shared draws).

    All of :data:`METHODS` are computed per model (VIEScore's tables have Pearson and Kendall too);
    intervals exist for Spearman and Pearson (``methods`` only selects the item / system levels).

    Returns ``(rows, comparisons, draws)``: one ``level="model"`` row per metric, the paired
    differences of their aggregates, and the per-model bootstrap draws (for cross-set aggregates).
    """
    raters, cube = rating_cube(js, criterion)
    headline = CONVENTIONS[convention]
    item_ix = _index(i for i, _ in cube)
    strata, signs, rows, ok_metrics = {}, {}, [], []
    for metric in metrics:
        if metric.level != "item" or metric.kind == "votes":
            continue
        values = metric.values_for(criterion)
        sign = C.orientation(metric.higher_is_better, js.higher_is_better)
        if values is None:
            continue  # the item/system rows already say why
        units, join = _join(cube, metric, values)
        models = sorted({m for _, m in units})
        base = {**_base(js, criterion, metric, sign, join), "level": "model", "convention": convention}
        if not units:
            rows.append({**base, "n": 0, "reason": f"metric {metric.name!r} has no value for any judged unit"})
            continue
        if models == [""]:
            rows.append({**base, "n": 0, "reason": "no generators in this set: the within-model level is the item "
                                                     "level"})
            continue
        strata[metric.name] = [C.Stratum(m, np.array([item_ix[i] for i, mm in units if mm == m]),
                                         np.array([values[u] for u in units if u[1] == m]),
                                         np.stack([cube[u] for u in units if u[1] == m], axis=1)) for m in models]
        signs[metric.name] = sign
        ok_metrics.append((metric, base, len(units), models))
    if not strata:
        return rows, [], {}
    res = C.within_model(strata, signs, n_items=len(item_ix), n_raters=len(raters), methods=METHODS,
                         confidence=confidence, n_resamples=n_resamples, seed=seed, resample_raters=resample_raters)
    for metric, base, n, models in ok_metrics:
        agg = res["aggregate"][metric.name]
        rows.append({**base, "n": n, "n_models": len(models), "models": models,
                     "per_model": res["per_model"][metric.name], "aggregates": agg,
                     "correlations": {m: agg[m][headline] for m in METHODS}})
    comparisons = []
    for (a, b), diff in res["differences"].items():
        for method in [m for m in methods if m in C.WEIGHTED_METHODS]:
            d = diff[method][headline]
            comparisons.append({"set": js.name, "criterion": criterion, "level": "model", "a": a, "b": b,
                                "method": method, "aggregate": headline, **d})
    return rows, comparisons, res["_draws"]


def _paired_rating_tests(js: JudgmentSet, criterion: str, metrics: list[MetricScores], *, confidence: float,
                         n_resamples: int, seed: int, resample_raters: bool) -> list[dict[str, Any]]:
    _, cube = rating_cube(js, criterion)
    out = []
    usable = [m for m in metrics if m.level == "item" and m.values_for(criterion) is not None and m.kind != "votes"]
    for a, b in itertools.combinations(usable, 2):
        va, vb = a.values_for(criterion), b.values_for(criterion)
        units = sorted(set(cube) & set(va) & set(vb))
        row = {"set": js.name, "criterion": criterion, "level": "item", "a": a.name, "b": b.name,
               "method": "spearman", "n": len(units)}
        if len(units) < C.MIN_PAIRS:
            out.append({**row, "value": None, "ci": None, "p_value": None,
                        "reason": f"{len(units)} common items (needs {C.MIN_PAIRS})"})
            continue
        res = C.paired_bootstrap_difference(
            [va[u] for u in units], [vb[u] for u in units], np.stack([cube[u] for u in units], axis=1),
            sign_a=C.orientation(a.higher_is_better, js.higher_is_better),
            sign_b=C.orientation(b.higher_is_better, js.higher_is_better),
            confidence=confidence, n_resamples=n_resamples, seed=seed, resample_raters=resample_raters)
        out.append({**row, **res})
    return out


# -- 2AFC / pairwise sets ---------------------------------------------------------------------------
def _choice_distances(js: JudgmentSet, metric: MetricScores) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Rows of the set both candidates of which are scored, and their values as distances."""
    keep, d0, d1 = [], [], []
    for i, item in enumerate(js.table["item"]):
        k0, k1 = (item, "p0"), (item, "p1")
        if k0 in metric.values and k1 in metric.values:
            keep.append(i)
            d0.append(metric.values[k0])
            d1.append(metric.values[k1])
    flip = -1.0 if metric.higher_is_better else 1.0  # a similarity / quality: higher = closer / better
    return keep, flip * np.array(d0), flip * np.array(d1)


def choice_scores(js: JudgmentSet, metric: MetricScores, *, confidence: float = 0.95, n_resamples: int = 1000,
                  seed: int = 0) -> dict[str, Any]:
    keep, d0, d1 = _choice_distances(js, metric)
    base = {"set": js.name, "criterion": "2afc", "metric": metric.name, "level": "2afc", "n": len(keep),
            "calibrated": metric.calibrated, "synthetic": js.synthetic,
            "join": {"n_joined": len(keep), "n_judged_not_scored": len(js.table) - len(keep)}}
    if not keep:
        return {**base, "reason": f"metric {metric.name!r} has no p0/p1 values for any triplet of {js.name!r}"}
    h = js.table["h"].to_numpy(dtype=np.float64)[keep]
    est = A.two_afc_score(d0, d1, h, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return {**base, "two_afc": est.to_dict(), "human_ceiling": A.two_afc_human_ceiling(h),
            "_points": {"metric": (d1 - d0).tolist(), "human": h.tolist()}}


def _paired_choice_tests(js: JudgmentSet, metrics: list[MetricScores], *, confidence: float, n_resamples: int,
                         seed: int) -> list[dict[str, Any]]:
    from pytest_i2i.metrics.functional.bootstrap import bootstrap_mean_ci

    h_all = js.table["h"].to_numpy(dtype=np.float64)
    out = []
    for a, b in itertools.combinations(metrics, 2):
        ka, a0, a1 = _choice_distances(js, a)
        kb, b0, b1 = _choice_distances(js, b)
        common = sorted(set(ka) & set(kb))
        row = {"set": js.name, "criterion": "2afc", "level": "2afc", "a": a.name, "b": b.name, "method": "2afc",
               "n": len(common)}
        if not common:
            out.append({**row, "value": None, "ci": None, "p_value": None, "reason": "no common triplets"})
            continue
        ia, ib = [ka.index(i) for i in common], [kb.index(i) for i in common]
        h = h_all[common]
        diff = A.two_afc_per_triplet(a0[ia], a1[ia], h) - A.two_afc_per_triplet(b0[ib], b1[ib], h)
        lo, hi = bootstrap_mean_ci(diff, confidence=confidence, n_resamples=n_resamples, seed=seed)
        out.append({**row, "value": float(diff.mean()), "ci": [lo, hi], "p_value": None,
                    "reason": None if diff.size > 1 else "one triplet"})
    return out


# -- preference sets (four outcomes) ----------------------------------------------------------------
def _preference_votes(js: JudgmentSet, metric: MetricScores, margin: float) -> tuple[list[str], list[str | None]]:
    """(items, votes) of a judge (its votes) or of a per-image metric scored on (item, "a"/"b")."""
    items = list(js.table["item"])
    if metric.votes is not None:
        return items, [metric.votes.get(i) for i in items]
    keep = [i for i in items if (i, "a") in metric.values and (i, "b") in metric.values]
    votes = A.metric_votes([metric.values[(i, "a")] for i in keep], [metric.values[(i, "b")] for i in keep],
                           higher_is_better=metric.higher_is_better, margin=margin) if keep else []
    return keep, votes


def preference_scores(js: JudgmentSet, metric: MetricScores, *, confidence: float = 0.95, n_resamples: int = 1000,
                      seed: int = 0, margin: float = 0.0) -> dict[str, Any]:
    human = dict(zip(js.table["item"], js.table["vote"]))
    items, votes = _preference_votes(js, metric, margin)
    base = {"set": js.name, "criterion": "preference", "metric": metric.name, "level": "preference",
            "n": len(items), "calibrated": metric.calibrated, "synthetic": js.synthetic, "kind": metric.kind,
            "join": {"n_joined": len(items), "n_judged_not_scored": len(human) - len(items)}}
    if metric.votes is not None:
        extra = sorted(set(metric.votes) - set(human))
        if extra:
            base["join"]["problem"] = (f"{len(extra)} pair(s) voted by {metric.name} are not in the human votes, "
                                       f"e.g. {extra[:3]}")
    else:
        base["vote_rule"] = (f"a per-image metric votes for the better-scored image when the scores differ by more "
                             f"than {margin:g}, else 'same' (right for a human tie or both-bad)")
    if not items:
        return {**base, "reason": f"{metric.name!r} has no vote / no (a, b) scores for any pair of {js.name!r}"}
    acc = A.preference_accuracy(votes, [human[i] for i in items], confidence=confidence, n_resamples=n_resamples,
                                seed=seed)
    confusion = acc.pop("confusion")
    return {**base, "accuracy": acc, "confusion": confusion,
            "correlations": {}, "_votes": {"items": items, "votes": votes}}


def _paired_preference_tests(js: JudgmentSet, rows: list[dict[str, Any]], *, confidence: float, n_resamples: int,
                             seed: int) -> list[dict[str, Any]]:
    from pytest_i2i.metrics.functional.bootstrap import bootstrap_mean_ci

    human = dict(zip(js.table["item"], js.table["vote"]))
    usable = [r for r in rows if "_votes" in r]
    out = []
    for a, b in itertools.combinations(usable, 2):
        va = dict(zip(a["_votes"]["items"], a["_votes"]["votes"]))
        vb = dict(zip(b["_votes"]["items"], b["_votes"]["votes"]))
        common = [i for i in human if i in va and i in vb]
        row = {"set": js.name, "criterion": "preference", "level": "preference", "a": a["metric"], "b": b["metric"],
               "method": "accuracy with ties", "n": len(common)}
        if len(common) < 2:
            out.append({**row, "value": None, "ci": None, "p_value": None, "reason": f"{len(common)} common pairs"})
            continue
        right = [(va[i] is not None and va[i] in A.RIGHT[human[i]], vb[i] is not None and vb[i] in A.RIGHT[human[i]])
                 for i in common]
        diff = np.array([float(x) - float(y) for x, y in right])
        lo, hi = bootstrap_mean_ci(diff, confidence=confidence, n_resamples=n_resamples, seed=seed)
        out.append({**row, "value": float(diff.mean()), "ci": [lo, hi], "p_value": None, "reason": None})
    return out


# -- everything -------------------------------------------------------------------------------------
INFORMATIONAL = ("set-level", "system level needs", "within-model level is the item level", "gives no")


def _problem(row: dict[str, Any]) -> dict[str, Any] | None:
    """Why a row has no number where one was expected (informational n/a rows are not problems)."""
    reason = None
    if row.get("n", 0) == 0 and row.get("reason"):
        if any(s in row["reason"] for s in INFORMATIONAL):
            return None
        reason = row["reason"]
    else:
        estimates = {**(row.get("correlations") or {}), **({"2afc": row["two_afc"]} if "two_afc" in row else {}),
                     **({f"accuracy {k}": v for k, v in row["accuracy"].items()} if "accuracy" in row else {})}
        undefined = [f"{m}: {e['reason']}" for m, e in estimates.items() if e.get("value") is None]
        if undefined:
            reason = "; ".join(undefined)
    join_problem = (row.get("join") or {}).get("problem")
    if join_problem:
        reason = join_problem if reason is None else f"{reason}; {join_problem}"
    if reason is None:
        return None
    return {"set": row["set"], "criterion": row["criterion"], "metric": row["metric"], "level": row["level"],
            "reason": reason}


def headline(row: dict[str, Any]) -> float | None:
    """The number a row is ranked by: oriented Spearman, the 2AFC score, or accuracy with ties."""
    if row["level"] == "2afc":
        return (row.get("two_afc") or {}).get("value")
    if row["level"] == "preference":
        return ((row.get("accuracy") or {}).get("with_ties") or {}).get("value")
    return ((row.get("correlations") or {}).get("spearman") or {}).get("value")


def _ranking(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[tuple[float, str]]] = {}
    for r in rows:
        key = (r["set"], r["criterion"], r["level"])
        v = headline(r)
        groups.setdefault(key, [])
        if v is not None:
            groups[key].append((v, r["metric"]))
    by = {"2afc": "2afc score", "preference": "accuracy with ties"}
    return [{"set": s, "criterion": c, "level": lvl, "by": by.get(lvl, "oriented spearman"),
             "order": [{"metric": name, "value": v} for v, name in sorted(items, key=lambda t: (-t[0], t[1]))]}
            for (s, c, lvl), items in groups.items()]


def metrics_for(js: JudgmentSet, metrics: Sequence[MetricScores]) -> list[MetricScores]:
    """The metrics that apply to ``js``: unbound ones, those bound to it, and its own scores."""
    out = [m for m in metrics if m.binding in (None, js.name)]
    out += [m for m in js.scores if all(m is not o for o in out)]
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise I2IInputError(f"correlate: duplicate metric names for {js.name}: "
                            f"{sorted({n for n in names if names.count(n) > 1})}")
    return out


def correlate(
    judgment_sets: Sequence[JudgmentSet],
    metrics: Sequence[MetricScores],
    *,
    methods: Sequence[str] = METHODS,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    convention: str = "default",
    resample_raters: bool = False,
    vote_margin: float = 0.0,
) -> dict[str, Any]:
    """Every number of the report, as a JSON-ready dict (no NaN: undefined numbers are ``None`` + reason).

    Args:
        metrics: scores; a metric with a ``binding`` only applies to the set of that name; a set's own
            scores (``JudgmentSet.scores``) always apply to it.
        convention: ``"default"`` (Fisher-z aggregate) or ``"viescore"`` (VIEScore's published
            aggregate) as the headline number of the model level; both are always computed.
        resample_raters: also resample raters in the bootstraps (see the module docstring).
        vote_margin: score difference below which a per-image metric votes ``same`` on preference sets.

    Keys: ``judgment_sets`` (summaries), ``metrics`` (provenance), ``results`` (one row per set,
    criterion, metric and level), ``agreement`` (inter-rater ceilings), ``comparisons`` (paired
    tests), ``ranking``, ``problems`` (metrics that could not be scored on a set, with reasons),
    ``settings``.
    """
    if convention not in CONVENTIONS:
        raise I2IInputError(f"unknown convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    if not judgment_sets:
        raise I2IInputError("correlate: no judgment set given")
    per_set = {js.name: metrics_for(js, metrics) for js in judgment_sets}
    if not any(per_set.values()):
        raise I2IInputError("correlate: no metric scores given (precomputed or computed)")
    results: list[dict[str, Any]] = []
    agreement: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    draws: dict[tuple[str, str, str], Any] = {}
    kw = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    for js in judgment_sets:
        ms = per_set[js.name]
        if js.kind in ("rating", "edit-rating"):
            scored_models = sorted({u[1] for m in ms if m.level == "item" for c in js.criteria
                                    for u in (m.values_for(c) or {})} & set(js.models))
            for criterion in js.criteria:
                agreement.append(rating_agreement(js, criterion, methods=methods, models=scored_models or None, **kw))
                for m in ms:
                    results += rating_correlations(js, criterion, m, methods=methods, resample_raters=resample_raters,
                                                   **kw)
                rows, comp, d = model_level(js, criterion, ms, convention=convention, methods=methods,
                                            resample_raters=resample_raters, **kw)
                results += rows
                for name, dd in d.items():
                    draws[(js.name, criterion, name)] = dd
                comparisons += _paired_rating_tests(js, criterion, list(ms), resample_raters=resample_raters, **kw)
                comparisons += comp
        elif js.kind == "preference":
            rows = [preference_scores(js, m, margin=vote_margin, **kw) for m in ms if m.level == "item"]
            results += rows
            comparisons += _paired_preference_tests(js, rows, **kw)
        else:
            item_metrics = [m for m in ms if m.level == "item"]
            for m in ms:
                if m.level != "item":
                    results.append({"set": js.name, "criterion": "2afc", "metric": m.name, "level": "2afc", "n": 0,
                                    "reason": f"{m.name} is a set-level metric; 2AFC needs one distance per image"})
                    continue
                results.append(choice_scores(js, m, **kw))
            comparisons += _paired_choice_tests(js, item_metrics, **kw)
    problems = [p for p in (_problem(r) for r in results) if p]
    info: dict[str, Any] = {}
    for js in judgment_sets:
        for m in per_set[js.name]:
            info.setdefault(m.name, m.info())
    return {
        "judgment_sets": [js.summary() for js in judgment_sets],
        "metrics": info,
        "results": results,
        "agreement": agreement,
        "comparisons": comparisons,
        "ranking": _ranking([r for r in results if r.get("n", 0) > 0]),
        "problems": problems,
        "_draws": draws,
        "settings": {"methods": list(methods), "confidence": confidence, "n_resamples": n_resamples, "seed": seed,
                     "convention": convention, "convention_note": CONVENTION_NOTES[convention],
                     "aggregates": C.AGGREGATES, "conventions_differ": DIFFERENCES,
                     "resample_raters": resample_raters,
                     "bootstrap": "percentile; items resampled with replacement" + (
                         ", and raters" if resample_raters else " (raters not resampled: see the module docstring "
                         "of pytest_i2i.validation.correlate)") + "; the model level resamples items (prompts) "
                         "once for every model (a cluster bootstrap)",
                     "orientation": "correlations are multiplied by -1 for metrics where lower is better, so "
                                    "positive always means agreement with people; 'raw' holds the unsigned values"},
    }


# -- metrics computed on the set's images ---------------------------------------------------------
def computable_metrics() -> list[str]:
    """Registered metrics that can be computed on a set's (reference, image) pairs: ``paired`` ones
    (item level) and ``set`` ones (per model, system level) whose data are (reference, outputs)."""
    from pytest_i2i.metrics.registry import list_metrics, metric_spec

    out = []
    for name in list_metrics(kind="paired") + list_metrics(kind="set"):
        args = metric_spec(name).args
        if len(args) == 2 and args[1] == "outputs" and args[0] in ("targets", "inputs"):
            out.append(name)
    return sorted(out)


def compute_metric_scores(
    js: JudgmentSet, names: Sequence[str], *, weights: str | None = None, device: Any = None, batch_size: int = 16,
) -> tuple[list[MetricScores], list[dict[str, str]]]:
    """Compute the project's metrics on the set's images.

    Rating sets: metric(reference, image) per row (item level; set-level metrics per model between the
    model's references and images). 2AFC / pairwise: metric(reference, p0) and metric(reference, p1).
    Each metric is called through the registry (``metric_spec(name).function``) with the data in its
    ``args`` order and the common keywords it accepts.

    Returns:
        ``(scores, skipped)``: one :class:`MetricScores` per computed metric, and ``{"metric", "reason"}``
        for metrics that could not be computed (no images, missing weights, no reference column).
    """
    from pytest_i2i.metrics.registry import metric_spec

    computable = computable_metrics()
    unknown = [n for n in names if n not in computable]
    if unknown:
        raise I2IInputError(f"metrics {unknown} cannot be computed here; computable: {', '.join(computable)}")
    if js.images_root is None:
        return [], [{"metric": n, "set": js.name, "reason": f"{js.name} has no images (no images_root)"}
                    for n in names]
    pairs = _image_pairs(js)
    out: list[MetricScores] = []
    skipped: list[dict[str, str]] = []
    for name in names:
        if not pairs:
            skipped.append({"metric": name, "set": js.name, "reason": "no (reference, image) pair in the set"})
            continue
        spec = metric_spec(name)
        common = {"batch_size": batch_size, "weights": weights, "device": device}
        kwargs = {k: v for k, v in common.items() if k in spec.accepts and v is not None}
        try:
            if spec.kind == "set":
                by_model: dict[str, list[tuple[str, str]]] = {}
                for (item, model), (ref, img) in pairs.items():
                    by_model.setdefault(model, []).append((ref, img))
                values, calibrated, notes = {}, True, []
                for model, ps in sorted(by_model.items()):
                    r = spec.function([str(js.images_root / a) for a, _ in ps],
                                      [str(js.images_root / b) for _, b in ps], **kwargs)
                    values[("", model)] = float(r.value)
                    calibrated &= r.calibrated
                    notes += r.warnings
                out.append(MetricScores(name, values, spec.higher_is_better, calibrated, "computed", "system",
                                        sorted(set(notes)), binding=js.name, registry_name=name))
            else:
                keys = sorted(pairs)
                r = spec.function([str(js.images_root / pairs[k][0]) for k in keys],
                                  [str(js.images_root / pairs[k][1]) for k in keys], **kwargs)
                values = {k: float(v) for k, v in zip(keys, r.per_sample)}
                bad = sorted(k for k, v in values.items() if not np.isfinite(v))
                notes = list(r.warnings)
                if bad:  # e.g. PSNR of identical images: left out of the join, said so
                    notes.append(f"{len(bad)} unit(s) with a non-finite {name} left out, e.g. {bad[:3]}")
                    values = {k: v for k, v in values.items() if np.isfinite(v)}
                out.append(MetricScores(name, values, r.higher_is_better, r.calibrated, "computed", "item", notes,
                                        binding=js.name, registry_name=name))
        except I2IError as e:
            skipped.append({"metric": name, "set": js.name, "reason": str(e)})
    return out, skipped


def _image_pairs(js: JudgmentSet) -> dict[tuple[str, str], tuple[str, str]]:
    t = js.table
    pairs: dict[tuple[str, str], tuple[str, str]] = {}
    if js.kind in ("rating", "edit-rating"):
        for item, model, img, ref in zip(t["item"], t["model"], t["image"], t["reference"]):
            if isinstance(img, str) and isinstance(ref, str):
                pairs[(item, model)] = (ref, img)
    elif js.kind in ("2afc", "pairwise"):
        for item, ref, p0, p1 in zip(t["item"], t["reference"], t["p0"], t["p1"]):
            if isinstance(ref, str):
                pairs[(item, "p0")] = (ref, p0)
                pairs[(item, "p1")] = (ref, p1)
    return pairs
