"""The maths of metric validation against references: scipy.stats (1e-9), formulas written here
independently, and Krippendorff's published worked example."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats as ss

from pytest_i2i.errors import I2IInputError
from pytest_i2i.validation.functional import agreement as A
from pytest_i2i.validation.functional import correlation as C


def _vectors(rng, n, ties):
    x = rng.integers(0, 4, n).astype(float) if ties else rng.normal(size=n)
    y = rng.integers(0, 3, n) * 0.5 + (0 if ties else x)
    return x, y


@pytest.mark.parametrize("n", [3, 4, 7, 30, 500])
@pytest.mark.parametrize("ties", [False, True])
def test_correlations_equal_scipy(rng, n, ties):
    for _ in range(10):
        x, y = _vectors(rng, n, ties)
        if np.all(x == x[0]) or np.all(y == y[0]):
            continue
        assert C.pearson(x, y) == pytest.approx(ss.pearsonr(x, y).statistic, abs=1e-9)
        assert C.spearman(x, y) == pytest.approx(ss.spearmanr(x, y).statistic, abs=1e-9)
        assert C.kendall_tau_b(x, y) == pytest.approx(ss.kendalltau(x, y, variant="b").statistic, abs=1e-9)


def test_rankdata_and_inversions_against_brute_force(rng):
    v = rng.integers(0, 5, 40).astype(float)
    np.testing.assert_allclose(C.rankdata(v), ss.rankdata(v), atol=0)
    a = rng.integers(0, 6, 37)
    brute = sum(1 for i, j in itertools.combinations(range(a.size), 2) if a[i] > a[j])
    assert C._count_inversions(a) == brute


def test_kendall_tau_b_brute_force_formula(rng):
    x, y = _vectors(rng, 25, True)
    nc = nd = tx = ty = 0
    for i, j in itertools.combinations(range(25), 2):
        sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        nc += sx * sy > 0
        nd += sx * sy < 0
        tx += sx == 0 and sy != 0
        ty += sy == 0 and sx != 0
    expected = (nc - nd) / math.sqrt((nc + nd + tx) * (nc + nd + ty))
    assert C.kendall_tau_b(x, y) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("fn", [C.pearson, C.spearman, C.kendall_tau_b])
def test_undefined_statistics_raise_with_a_reason(fn):
    with pytest.raises(C.UndefinedStatistic, match="constant"):
        fn([1, 1, 1, 1], [1, 2, 3, 4])
    with pytest.raises(C.UndefinedStatistic, match="at least 3"):
        fn([1, 2], [2, 1])
    with pytest.raises(I2IInputError, match="NaN"):
        fn([1, 2, np.nan], [1, 2, 3])
    with pytest.raises(I2IInputError, match="different lengths"):
        fn([1, 2, 3], [1, 2, 3, 4])


def test_bootstrap_is_sign_aware_reproducible_and_covers_the_value(rng):
    human = rng.normal(size=80)
    distance = -human + rng.normal(scale=0.8, size=80)  # a distance: lower = better
    e = C.bootstrap_correlation(distance, human, sign=C.orientation(False), n_resamples=300, seed=1)
    assert e.value == pytest.approx(-ss.spearmanr(distance, human).statistic, abs=1e-12)
    assert e.value > 0 and e.ci[0] <= e.value <= e.ci[1]
    again = C.bootstrap_correlation(distance, human, sign=-1, n_resamples=300, seed=1)
    assert again.ci == e.ci
    assert C.orientation(True) == 1 and C.orientation(False) == -1 and C.orientation(False, False) == 1


def test_rater_resampling_widens_the_interval(rng):
    truth = rng.normal(size=60)
    raters = truth + rng.normal(scale=1.5, size=(3, 60))  # noisy raters
    metric = truth + rng.normal(scale=0.3, size=60)
    items_only = C.bootstrap_correlation(metric, raters, n_resamples=400, resample_raters=False)
    both = C.bootstrap_correlation(metric, raters, n_resamples=400, resample_raters=True)
    assert items_only.value == both.value == pytest.approx(ss.spearmanr(metric, raters.mean(0)).statistic)
    assert (both.ci[1] - both.ci[0]) > (items_only.ci[1] - items_only.ci[0])


def test_bootstrap_of_a_constant_metric_is_none_with_reason():
    e = C.bootstrap_correlation([0.3] * 10, np.arange(10.0), n_resamples=100)
    assert e.value is None and "constant" in e.reason and e.ci is None


def test_paired_bootstrap_difference(rng):
    human = rng.normal(size=120)
    good = human + rng.normal(scale=0.3, size=120)
    bad = rng.normal(size=120)
    res = C.paired_bootstrap_difference(good, bad, human, n_resamples=300)
    expected = ss.spearmanr(good, human).statistic - ss.spearmanr(bad, human).statistic
    assert res["value"] == pytest.approx(expected, abs=1e-12)
    assert res["ci"][0] > 0 and res["p_value"] < 0.05
    same = C.paired_bootstrap_difference(good, good, human, n_resamples=100)
    assert same["value"] == 0 and same["p_value"] == 1.0


def test_system_level_matches_means_then_scipy(rng):
    human = rng.integers(0, 3, size=(3, 5, 20)) * 0.5  # raters x models x items
    metric = rng.normal(size=(5, 20)) + human.mean(0)
    e = C.bootstrap_system_correlation(metric, human, n_resamples=200)
    expected = ss.spearmanr(metric.mean(1), human.mean(0).mean(1)).statistic
    assert e.value == pytest.approx(expected, abs=1e-12) and e.n == 5
    set_level = C.bootstrap_system_correlation(metric.mean(1), human, method="pearson", n_resamples=200)
    assert set_level.value == pytest.approx(ss.pearsonr(metric.mean(1), human.mean(0).mean(1)).statistic, abs=1e-12)


# -- 2AFC -----------------------------------------------------------------------------------------
def test_two_afc_score_equals_the_lpips_formula(rng):
    d0, d1 = rng.random(200), rng.random(200)
    d1[:20] = d0[:20]  # ties get half credit
    h = rng.random(200)
    per = [(a < b) * (1 - p) + (b < a) * p + 0.5 * (a == b) for a, b, p in zip(d0, d1, h)]
    e = A.two_afc_score(d0, d1, h, n_resamples=300)
    assert e.value == pytest.approx(float(np.mean(per)), abs=1e-12)
    assert e.ci[0] <= e.value <= e.ci[1]
    assert A.two_afc_score([0.1, 0.5], [0.2, 0.3], [0.0, 1.0]).value == 1.0
    assert A.two_afc_human_ceiling([0.0, 0.5, 1.0]) == pytest.approx((1 + 0.5 + 1) / 3)
    with pytest.raises(I2IInputError, match=r"\[0, 1\]"):
        A.two_afc_score([0.1], [0.2], [1.5])


# -- Krippendorff's alpha -------------------------------------------------------------------------
# Krippendorff, K. (2011). "Computing Krippendorff's Alpha-Reliability", Annenberg School for
# Communication, University of Pennsylvania, section C (4 observers, 12 units, values 1-5, missing
# data). Published results: nominal α = 0.743, ordinal 0.815, interval 0.849, ratio 0.797.
_ = np.nan
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],  # observer A
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],  # observer B
    [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],  # observer C
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],  # observer D
]


@pytest.mark.parametrize("level,published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849),
                                             ("ratio", 0.797)])
def test_krippendorff_published_example(level, published):
    assert A.krippendorff_alpha(KRIPPENDORFF_2011, level) == pytest.approx(published, abs=5e-4)


def _alpha_brute_force(data, level):
    """α = 1 − D_o/D_e from all pairable value pairs (no coincidence matrix)."""
    data = np.asarray(data, float)
    units = [u[np.isfinite(u)] for u in data.T]
    units = [u for u in units if u.size >= 2]
    pooled = np.concatenate(units)
    n = pooled.size
    values = sorted(set(pooled))
    count = {v: float((pooled == v).sum()) for v in values}

    def delta(c, k):
        if level == "nominal":
            return float(c != k)
        if level == "interval":
            return (c - k) ** 2
        if level == "ratio":
            return 0.0 if c + k == 0 else ((c - k) / (c + k)) ** 2
        lo, hi = min(c, k), max(c, k)
        return (sum(count[g] for g in values if lo <= g <= hi) - (count[c] + count[k]) / 2) ** 2

    d_o = sum(sum(delta(u[i], u[j]) for i in range(u.size) for j in range(u.size) if i != j) / (u.size - 1)
              for u in units) / n
    d_e = sum(delta(pooled[i], pooled[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    return 1 - d_o / d_e


@pytest.mark.parametrize("level", A.LEVELS)
def test_krippendorff_against_brute_force(rng, level):
    data = rng.integers(0, 3, size=(3, 15)) * 0.5
    data = np.where(rng.random((3, 15)) < 0.15, np.nan, data)
    assert A.krippendorff_alpha(data, level) == pytest.approx(_alpha_brute_force(data, level), abs=1e-12)


def test_krippendorff_edge_cases():
    assert A.krippendorff_alpha([[1, 2, 3], [1, 2, 3]], "interval") == 1.0
    with pytest.raises(C.UndefinedStatistic, match="no expected disagreement"):
        A.krippendorff_alpha([[1, 1, 1], [1, 1, 1]], "nominal")
    with pytest.raises(C.UndefinedStatistic, match="pairable"):
        A.krippendorff_alpha([[1, np.nan], [np.nan, 2]], "nominal")
    with pytest.raises(I2IInputError, match="unknown level"):
        A.krippendorff_alpha([[1, 2]], "cardinal")


def test_leave_one_rater_out(rng):
    r = rng.integers(0, 3, size=(3, 30)) * 0.5
    out = A.leave_one_rater_out(r)
    for i in range(3):
        others = np.delete(r, i, axis=0).mean(0)
        assert out["per_rater"][i] == pytest.approx(ss.spearmanr(r[i], others).statistic, abs=1e-12)
    assert out["mean"] == pytest.approx(np.mean(out["per_rater"]))
    const = A.leave_one_rater_out(np.vstack([np.ones(30), r[1:]]))
    assert const["per_rater"][0] is None and "constant" in const["reasons"][0]


# -- weighted (bootstrap-count) correlations, within-generator aggregates ---------------------------
@pytest.mark.parametrize("ties", [False, True])
def test_count_weighted_rows_equal_scipy_on_the_expanded_data(rng, ties):
    """A count weight k is k copies of the item: ranks, Spearman and Pearson equal scipy on the copies."""
    x, y = _vectors(rng, 40, ties)
    W = rng.integers(0, 4, size=(6, 40)).astype(float)
    for fixed in (True, False):  # one vector under many weightings (the fast path) and per-row values
        X = x if fixed else np.broadcast_to(x, W.shape).copy()
        Y = y if fixed else np.broadcast_to(y, W.shape).copy()
        sp, pe = C.spearman_rows(X, Y, W), C.pearson_rows(X, Y, W)
        for b, w in enumerate(W):
            idx = np.repeat(np.arange(40), w.astype(int))
            assert sp[b] == pytest.approx(ss.spearmanr(x[idx], y[idx]).statistic, abs=1e-12)
            assert pe[b] == pytest.approx(ss.pearsonr(x[idx], y[idx]).statistic, abs=1e-12)
            last = np.cumsum(w).astype(int)[w > 0] - 1  # each item's last copy in the expanded data
            np.testing.assert_allclose(C.rank_rows(X, W)[b][w > 0], ss.rankdata(x[idx])[last], atol=1e-12)
    const = np.zeros((1, 40))
    const[0, :3] = 1  # three items, all with the same x: undefined
    same = np.where(np.arange(40) < 3, 5.0, x)
    assert np.isnan(C.spearman_rows(same, y, const)[0]) and np.isnan(C.pearson_rows(same, y, const)[0])


def test_fisher_z_and_viescore_means():
    r, n = [0.2, 0.5, 0.7], [10, 40, 100]
    assert C.fisher_z_mean(r, np.array(n) - 3) == pytest.approx(
        math.tanh(sum((k - 3) * math.atanh(v) for v, k in zip(r, n)) / sum(k - 3 for k in n)), abs=1e-15)
    assert C.tanh_mean(r) == pytest.approx(math.tanh(np.mean(r)), abs=1e-15) and C.tanh_mean(r) < np.mean(r)
    with pytest.raises(I2IInputError):
        C.fisher_z_mean([0.1, np.nan])


def _strata(rng, models=("A", "B", "C"), n_items=30):
    truth = rng.normal(size=(len(models), n_items))
    h = np.round(truth + rng.normal(scale=0.7, size=(3, *truth.shape)))  # 3 raters, integer scores: ties
    out = {"good": [], "bad": []}
    for k, m in enumerate(models):
        items = np.arange(n_items) if k else np.arange(n_items - 5)  # model A misses 5 items
        out["good"].append(C.Stratum(m, items, truth[k, items] + rng.normal(scale=0.3, size=items.size), h[:, k, items]))
        out["bad"].append(C.Stratum(m, items, rng.normal(size=items.size), h[:, k, items]))
    return out


def test_within_model_points_and_aggregates_against_direct_formulas(rng):
    strata = _strata(rng)
    res = C.within_model(strata, {"good": 1, "bad": -1}, n_items=30, n_raters=3, n_resamples=200,
                         methods=("spearman", "kendall", "pearson"))
    for name, sign in (("good", 1), ("bad", -1)):
        rhos, ns = [], []
        for s in strata[name]:
            rho = sign * ss.spearmanr(s.x, s.human.mean(0)).statistic
            assert res["per_model"][name][s.model]["spearman"] == pytest.approx(rho, abs=1e-12)
            assert res["per_model"][name][s.model]["kendall"] == pytest.approx(
                sign * ss.kendalltau(s.x, s.human.mean(0)).statistic, abs=1e-12)
            rhos.append(rho)
            ns.append(s.items.size)
        agg = res["aggregate"][name]["spearman"]
        assert agg["viescore"]["value"] == pytest.approx(math.tanh(np.mean(rhos)), abs=1e-12)
        assert agg["fisher_z"]["value"] == pytest.approx(C.fisher_z_mean(rhos, np.array(ns) - 3.0), abs=1e-12)
        assert agg["fisher_z"]["ci"][0] <= agg["fisher_z"]["value"] <= agg["fisher_z"]["ci"][1]
        assert res["aggregate"][name]["kendall"]["fisher_z"]["ci"] is None  # no count-weighted Kendall
    d = res["differences"][("good", "bad")]["spearman"]["fisher_z"]
    assert d["value"] == pytest.approx(res["aggregate"]["good"]["spearman"]["fisher_z"]["value"]
                                       - res["aggregate"]["bad"]["spearman"]["fisher_z"]["value"], abs=1e-12)
    assert d["ci"][0] > 0 and d["p_value"] < 0.05


def test_within_model_cluster_bootstrap_resamples_items_shared_by_models(rng):
    """One draw = one multiset of items for every model: a draw recomputed by hand matches."""
    strata = _strata(rng, n_items=12)
    res = C.within_model(strata, {"good": 1, "bad": 1}, n_items=12, n_raters=3, n_resamples=5, seed=7)
    gen = np.random.default_rng(7)
    counts = np.bincount(gen.integers(0, 12, size=12), minlength=12)  # the first draw
    rhos = []
    for s in strata["good"]:
        idx = np.repeat(np.arange(s.items.size), counts[s.items])
        rhos.append(ss.spearmanr(s.x[idx], s.human.mean(0)[idx]).statistic)
    assert res["_draws"]["good"]["spearman"][0] == pytest.approx(rhos, abs=1e-12)


def test_within_model_leave_one_out_per_model(rng):
    h = rng.integers(0, 3, size=(3, 25)).astype(float) * 0.5
    out = A.within_model_leave_one_out({"A": h, "B": h[::-1]}, {"A": np.arange(25), "B": np.arange(25)}, n_items=25,
                                       n_resamples=100)
    loo = [ss.spearmanr(h[i], np.delete(h, i, 0).mean(0)).statistic for i in range(3)]
    assert out["per_model"]["A"]["spearman"]["viescore"] == pytest.approx(math.tanh(np.mean(loo)), abs=1e-12)
    assert out["per_model"]["A"]["spearman"]["fisher_z"] == pytest.approx(C.fisher_z_mean(loo), abs=1e-12)
    v = math.tanh(np.mean(loo))
    assert out["aggregate"]["spearman"]["viescore"]["value"] == pytest.approx(math.tanh(v), abs=1e-12)


def test_preference_accuracy_and_metric_votes():
    human = ["a", "b", "tie", "both_bad", "a", "b"]
    judge = ["a", "a", "same", "tie", None, "b"]
    out = A.preference_accuracy(judge, human, n_resamples=200)
    assert out["with_ties"]["value"] == 3 / 6 and out["without_ties"]["value"] == 2 / 4
    assert out["decisive"]["value"] == 2 / 3 and out["decisive"]["n"] == 3
    assert out["confusion"]["both_bad"]["tie"] == 1 and out["confusion"]["a"]["None"] == 1
    assert A.metric_votes([0.9, 0.1, 0.5], [0.1, 0.9, 0.5]) == ["a", "b", "same"]
    assert A.metric_votes([0.9, 0.1], [0.1, 0.9], higher_is_better=False) == ["b", "a"]
    assert A.metric_votes([0.50, 0.1], [0.52, 0.9], margin=0.05) == ["same", "b"]
    with pytest.raises(I2IInputError, match="human votes"):
        A.preference_accuracy(["a"], ["left"])
