"""The correlation engine: judgment sets + metric scores -> every number of the validation report.

For ``rating`` / ``edit-rating`` sets, per criterion and metric:

- item level: Spearman, Kendall τ-b and Pearson between the metric and the mean rating over
  raters, on the (item, model) units both have, oriented so that positive = agrees with people
  (a distance is negated), with bootstrap CIs over items and raters;
- system level (sets with 3+ models): the same on per-model means (bootstrap over items and raters);
- the inter-rater ceiling: Krippendorff's α (nominal/ordinal/interval/ratio) and leave-one-rater-out
  correlation (each rater vs the mean of the others), at item and system level;
- paired tests between metrics (bootstrap of the difference of oriented Spearman ρ on the same draws).

For ``2afc`` / ``pairwise`` sets: the 2AFC score with its CI, the human ceiling, paired differences.

Nothing here returns NaN: an undefined number is ``None`` with a ``reason``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_i2i.errors import I2IError, I2IInputError
from pytest_i2i.validation.functional import agreement as A
from pytest_i2i.validation.functional import correlation as C
from pytest_i2i.validation.judgments.format import JudgmentSet
from pytest_i2i.validation.judgments.scores import ScoreSet

METHODS = ("spearman", "kendall", "pearson")
MIN_SYSTEMS = 3


@dataclass
class MetricScores:
    """One metric's values: ``values[(item, model)]`` (item level) or ``values[("", model)]`` with
    ``level="system"`` (set-level metrics such as FID, one value per model)."""

    name: str
    values: dict[tuple[str, str], float]
    higher_is_better: bool
    calibrated: bool = True
    source: str = "computed"
    level: str = "item"
    warnings: list[str] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        return {"higher_is_better": self.higher_is_better, "calibrated": self.calibrated, "source": self.source,
                "level": self.level, "n_values": len(self.values), "warnings": self.warnings}


def from_score_set(scores: ScoreSet) -> list[MetricScores]:
    return [MetricScores(m, v, scores.higher_is_better[m], scores.calibrated, f"precomputed: {scores.root}")
            for m, v in scores.values.items()]


# -- rating sets ------------------------------------------------------------------------------------
def rating_cube(js: JudgmentSet, criterion: str) -> tuple[list[str], dict[tuple[str, str], np.ndarray]]:
    """``(raters, {(item, model): scores per rater (NaN = not rated)})`` for one criterion."""
    t = js.table[js.table["criterion"] == criterion]
    raters = sorted(set(t["rater"]))
    index = {r: i for i, r in enumerate(raters)}
    cube: dict[tuple[str, str], np.ndarray] = {}
    for item, model, rater, score in zip(t["item"], t["model"], t["rater"], t["score"]):
        v = cube.setdefault((item, model), np.full(len(raters), np.nan))
        v[index[rater]] = score
    return raters, cube


def _join(js_units: Iterable[tuple[str, str]], metric: MetricScores) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    judged = set(js_units)
    if metric.level == "system":
        scored_models = {m for _, m in metric.values}
        units = sorted(u for u in judged if u[1] in scored_models)
        info = {"n_joined": len(units), "models_scored": sorted(scored_models),
                "models_unscored": sorted({m for _, m in judged} - scored_models)}
        return units, info
    scored = set(metric.values)
    units = sorted(judged & scored)
    info = {"n_joined": len(units), "n_judged_not_scored": len(judged - scored),
            "n_scored_not_judged": len(scored - judged),
            "examples_judged_not_scored": [list(u) for u in sorted(judged - scored)[:3]],
            "examples_scored_not_judged": [list(u) for u in sorted(scored - judged)[:3]]}
    return units, info


def _estimates(fn, *args, methods: Sequence[str], **kw) -> dict[str, Any]:
    return {m: fn(*args, method=m, **kw).to_dict() for m in methods}


def _raw(oriented: dict[str, Any], sign: int) -> dict[str, float | None]:
    return {m: (None if e["value"] is None else sign * e["value"]) for m, e in oriented.items()}


def rating_agreement(js: JudgmentSet, criterion: str, *, methods: Sequence[str] = METHODS) -> dict[str, Any]:
    """Inter-rater ceiling for one criterion: Krippendorff's α and leave-one-rater-out, item and system."""
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
    models = sorted({m for _, m in units})
    if len(models) > 1:  # ImagenHub reports alpha per model: agreement on one model's outputs
        per_model: dict[str, Any] = {}
        for model in models:
            cols = [k for k, u in enumerate(units) if u[1] == model]
            try:
                per_model[model] = A.krippendorff_alpha(mat[:, cols], "interval")
            except I2IInputError as e:
                per_model[model] = None
                per_model[f"{model}_reason"] = str(e)
        out["krippendorff_alpha_interval_per_model"] = per_model
    out["leave_one_rater_out"] = {"item": {m: A.leave_one_rater_out(mat, method=m) for m in methods}}
    if len(models) >= MIN_SYSTEMS and models != [""]:
        items = sorted({i for i, _ in units})
        sys_h = _system_cube(cube, items, models, len(raters))
        per_rater = np.stack([C.system_scores(np.zeros(len(models)), sys_h[[r]])[1] for r in range(len(raters))])
        out["leave_one_rater_out"]["system"] = {m: A.leave_one_rater_out(per_rater, method=m) for m in methods}
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


def rating_correlations(js: JudgmentSet, criterion: str, metric: MetricScores, *, methods: Sequence[str] = METHODS,
                        confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Item- and system-level rows for one (set, criterion, metric)."""
    raters, cube = rating_cube(js, criterion)
    units, join = _join(cube, metric)
    sign = C.orientation(metric.higher_is_better, js.higher_is_better)
    base = {"set": js.name, "criterion": criterion, "metric": metric.name, "sign": sign,
            "calibrated": metric.calibrated, "synthetic": js.synthetic, "join": join}
    rows = []
    kw = {"sign": sign, "confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    if not units:
        reason = (f"metric {metric.name!r} has no value for any judged (item, model) of {js.name!r} "
                  f"({criterion or 'score'})")
        return [{**base, "level": lvl, "n": 0, "reason": reason} for lvl in ("item", "system")]
    if metric.level == "item":
        x = np.array([metric.values[u] for u in units])
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
            x_sys[mi[model], ii[item]] = metric.values[(item, model)]
    else:
        x_sys = np.array([metric.values[("", m)] for m in models])
    est = _estimates(C.bootstrap_system_correlation, x_sys, h_sys, methods=methods, **kw)
    m_sys, hum_sys = C.system_scores(x_sys, h_sys)
    rows.append({**base, "level": "system", "n": len(models), "correlations": est, "raw": _raw(est, sign),
                 "systems": {m: {"metric": float(a), "human": float(b)} for m, a, b in zip(models, m_sys, hum_sys)},
                 "_points": {"metric": m_sys.tolist(), "human": hum_sys.tolist(), "labels": models}})
    return rows


def _paired_rating_tests(js: JudgmentSet, criterion: str, metrics: list[MetricScores], *, confidence: float,
                         n_resamples: int, seed: int) -> list[dict[str, Any]]:
    _, cube = rating_cube(js, criterion)
    out = []
    for a, b in itertools.combinations([m for m in metrics if m.level == "item"], 2):
        units = sorted(set(cube) & set(a.values) & set(b.values))
        row = {"set": js.name, "criterion": criterion, "level": "item", "a": a.name, "b": b.name,
               "method": "spearman", "n": len(units)}
        if len(units) < C.MIN_PAIRS:
            out.append({**row, "value": None, "ci": None, "p_value": None,
                        "reason": f"{len(units)} common items (needs {C.MIN_PAIRS})"})
            continue
        res = C.paired_bootstrap_difference(
            [a.values[u] for u in units], [b.values[u] for u in units], np.stack([cube[u] for u in units], axis=1),
            sign_a=C.orientation(a.higher_is_better, js.higher_is_better),
            sign_b=C.orientation(b.higher_is_better, js.higher_is_better),
            confidence=confidence, n_resamples=n_resamples, seed=seed)
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


# -- everything -------------------------------------------------------------------------------------
def _problem(row: dict[str, Any]) -> dict[str, Any] | None:
    """Why a row has no number where one was expected (informational n/a rows are not problems)."""
    reason = None
    if row.get("n", 0) == 0 and row.get("reason"):
        if "set-level" in row["reason"] or "system level needs" in row["reason"]:
            return None
        reason = row["reason"]
    else:
        estimates = {**(row.get("correlations") or {}), **({"2afc": row["two_afc"]} if "two_afc" in row else {})}
        undefined = [f"{m}: {e['reason']}" for m, e in estimates.items() if e.get("value") is None]
        if undefined:
            reason = "; ".join(undefined)
    if reason is None:
        return None
    return {"set": row["set"], "criterion": row["criterion"], "metric": row["metric"], "level": row["level"],
            "reason": reason}


def _ranking(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[tuple[float, str]]] = {}
    for r in rows:
        key = (r["set"], r["criterion"], r["level"])
        if r["level"] == "2afc":
            v = (r.get("two_afc") or {}).get("value")
        else:
            v = ((r.get("correlations") or {}).get("spearman") or {}).get("value")
        groups.setdefault(key, [])
        if v is not None:
            groups[key].append((v, r["metric"]))
    return [{"set": s, "criterion": c, "level": lvl, "by": "2afc score" if lvl == "2afc" else "oriented spearman",
             "order": [{"metric": name, "value": v} for v, name in sorted(items, key=lambda t: (-t[0], t[1]))]}
            for (s, c, lvl), items in groups.items()]


def correlate(
    judgment_sets: Sequence[JudgmentSet],
    metrics: Sequence[MetricScores],
    *,
    methods: Sequence[str] = METHODS,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every number of the report, as a JSON-ready dict (no NaN: undefined numbers are ``None`` + reason).

    Keys: ``judgment_sets`` (summaries), ``metrics`` (provenance), ``results`` (one row per set,
    criterion, metric and level), ``agreement`` (inter-rater ceilings), ``comparisons`` (paired
    tests), ``ranking``, ``problems`` (metrics that could not be scored on a set, with reasons),
    ``settings``.
    """
    if not judgment_sets:
        raise I2IInputError("correlate: no judgment set given")
    if not metrics:
        raise I2IInputError("correlate: no metric scores given (precomputed or computed)")
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise I2IInputError(f"correlate: duplicate metric names {sorted({n for n in names if names.count(n) > 1})}")
    results: list[dict[str, Any]] = []
    agreement: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    kw = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    for js in judgment_sets:
        if js.kind in ("rating", "edit-rating"):
            for criterion in js.criteria:
                agreement.append(rating_agreement(js, criterion, methods=methods))
                for m in metrics:
                    results += rating_correlations(js, criterion, m, methods=methods, **kw)
                comparisons += _paired_rating_tests(js, criterion, list(metrics), **kw)
        else:
            item_metrics = [m for m in metrics if m.level == "item"]
            for m in metrics:
                if m.level != "item":
                    results.append({"set": js.name, "criterion": "2afc", "metric": m.name, "level": "2afc", "n": 0,
                                    "reason": f"{m.name} is a set-level metric; 2AFC needs one distance per image"})
                    continue
                results.append(choice_scores(js, m, **kw))
            comparisons += _paired_choice_tests(js, item_metrics, **kw)
    problems = [_problem(r) for r in results if _problem(r)]
    return {
        "judgment_sets": [js.summary() for js in judgment_sets],
        "metrics": {m.name: m.info() for m in metrics},
        "results": results,
        "agreement": agreement,
        "comparisons": comparisons,
        "ranking": _ranking([r for r in results if r.get("n", 0) > 0]),
        "problems": problems,
        "settings": {"methods": list(methods), "confidence": confidence, "n_resamples": n_resamples, "seed": seed,
                     "bootstrap": "percentile; items resampled with replacement, and raters where several exist",
                     "orientation": "correlations are multiplied by -1 for metrics where lower is better, so "
                                    "positive always means agreement with people; 'raw' holds the unsigned values"},
    }


# -- metrics computed on the set's images ---------------------------------------------------------
PAIRED = ("l1", "psnr", "ssim", "ms_ssim", "ciede2000")
BACKBONE_PAIRED = ("dino_image", "clip_image", "vit_patch_distance")
SET_LEVEL = ("fid", "kid", "fd_vit", "cmmd")
COMPUTABLE = PAIRED + BACKBONE_PAIRED + SET_LEVEL


def compute_metric_scores(
    js: JudgmentSet, names: Sequence[str], *, weights: str | None = None, device: Any = None, batch_size: int = 16,
) -> tuple[list[MetricScores], list[dict[str, str]]]:
    """Compute the project's metrics on the set's images.

    Rating sets: metric(reference, image) per row (item level; set-level metrics per model between the
    model's references and images). 2AFC / pairwise: metric(reference, p0) and metric(reference, p1).

    Returns:
        ``(scores, skipped)``: one :class:`MetricScores` per computed metric, and ``{"metric", "reason"}``
        for metrics that could not be computed (no images, missing weights, no reference column).
    """
    import pytest_i2i

    unknown = [n for n in names if n not in COMPUTABLE]
    if unknown:
        raise I2IInputError(f"metrics {unknown} cannot be computed here; computable: {', '.join(COMPUTABLE)}")
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
        fn = getattr(pytest_i2i, name)
        kwargs: dict[str, Any] = {"batch_size": batch_size}
        if name not in PAIRED:
            kwargs.update(weights=weights, device=device)
        try:
            if name in SET_LEVEL:
                by_model: dict[str, list[tuple[str, str]]] = {}
                for (item, model), (ref, img) in pairs.items():
                    by_model.setdefault(model, []).append((ref, img))
                values, calibrated, notes = {}, True, []
                for model, ps in sorted(by_model.items()):
                    r = fn([str(js.images_root / a) for a, _ in ps], [str(js.images_root / b) for _, b in ps],
                           **kwargs)
                    values[("", model)] = float(r.value)
                    calibrated &= r.calibrated
                    notes += r.warnings
                out.append(MetricScores(name, values, _direction(name), calibrated, "computed", "system",
                                        sorted(set(notes))))
            else:
                keys = sorted(pairs)
                r = fn([str(js.images_root / pairs[k][0]) for k in keys],
                       [str(js.images_root / pairs[k][1]) for k in keys], **kwargs)
                values = {k: float(v) for k, v in zip(keys, r.per_sample)}
                bad = sorted(k for k, v in values.items() if not np.isfinite(v))
                notes = list(r.warnings)
                if bad:  # e.g. PSNR of identical images: left out of the join, said so
                    notes.append(f"{len(bad)} unit(s) with a non-finite {name} left out, e.g. {bad[:3]}")
                    values = {k: v for k, v in values.items() if np.isfinite(v)}
                out.append(MetricScores(name, values, r.higher_is_better, r.calibrated, "computed", "item", notes))
        except I2IError as e:
            skipped.append({"metric": name, "set": js.name, "reason": str(e)})
    return out, skipped


def _direction(name: str) -> bool:
    from pytest_i2i.validation.judgments.scores import KNOWN_DIRECTIONS

    return KNOWN_DIRECTIONS[name]


def _image_pairs(js: JudgmentSet) -> dict[tuple[str, str], tuple[str, str]]:
    t = js.table
    pairs: dict[tuple[str, str], tuple[str, str]] = {}
    if js.kind in ("rating", "edit-rating"):
        for item, model, img, ref in zip(t["item"], t["model"], t["image"], t["reference"]):
            if isinstance(img, str) and isinstance(ref, str):
                pairs[(item, model)] = (ref, img)
    else:
        for item, ref, p0, p1 in zip(t["item"], t["reference"], t["p0"], t["p1"]):
            if isinstance(ref, str):
                pairs[(item, "p0")] = (ref, p0)
                pairs[(item, "p1")] = (ref, p1)
    return pairs
