"""Detection statistics against scipy and against independent brute-force formulas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pytest_i2i.errors import I2IInputError
from pytest_i2i.validation.functional.detection import auroc, detection_auroc, permutation_test


def _brute_auroc(x, y):
    """P(X > Y) + P(X = Y) / 2 over all pairs, written independently."""
    return sum((a > b) + 0.5 * (a == b) for a in x for b in y) / (len(x) * len(y))


@pytest.mark.parametrize("seed", range(5))
def test_auroc_is_mann_whitney_u_over_n1_n2_with_ties(seed):
    g = np.random.default_rng(seed)
    x = g.integers(0, 6, size=17).astype(float)  # many ties
    y = g.integers(0, 5, size=11).astype(float)
    u = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic").statistic
    assert abs(auroc(x, y) - u / (len(x) * len(y))) <= 1e-12
    assert abs(auroc(x, y) - _brute_auroc(x, y)) <= 1e-12


def test_auroc_extremes_and_infinities():
    assert auroc([2, 3], [0, 1]) == 1.0
    assert auroc([0, 1], [2, 3]) == 0.0
    assert auroc([1, 1], [1, 1]) == 0.5
    assert auroc([np.inf, 1.0], [0.5, np.inf]) == pytest.approx(_brute_auroc([np.inf, 1.0], [0.5, np.inf]))


def test_detection_auroc_is_sign_aware():
    edited, nuisance = [0.5, 0.6], [0.9, 0.95]  # a similarity: edits are less similar
    assert detection_auroc(edited, nuisance, higher_is_more_similar=True) == 1.0
    assert detection_auroc(edited, nuisance, higher_is_more_similar=False) == 0.0


def test_auroc_rejects_bad_input():
    with pytest.raises(I2IInputError, match="positives"):
        auroc([], [1.0])
    with pytest.raises(I2IInputError, match="negatives"):
        auroc([1.0], [np.nan])


def _mean_diff(a, b):
    return float(np.mean(a) - np.mean(b))


def test_exact_paired_permutation_matches_scipy():
    g = np.random.default_rng(1)
    x = g.normal(0.4, 1.0, size=9)
    y = g.normal(0.0, 1.0, size=9)
    ours = permutation_test(_mean_diff, x, y, paired=True, n_permutations=2**9)
    ref = stats.permutation_test((x, y), lambda a, b, axis: np.mean(a, axis=axis) - np.mean(b, axis=axis),
                                 permutation_type="samples", alternative="greater", n_resamples=2**9,
                                 vectorized=True)
    assert ours.exact and ours.n_permutations == 512
    assert ours.observed == pytest.approx(ref.statistic, abs=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, abs=1e-12)


def test_exact_independent_permutation_matches_scipy():
    g = np.random.default_rng(2)
    x, y = g.normal(0.5, 1.0, size=6), g.normal(0.0, 1.0, size=5)
    ours = permutation_test(_mean_diff, x, y, paired=False, n_permutations=1000)
    ref = stats.permutation_test((x, y), lambda a, b, axis: np.mean(a, axis=axis) - np.mean(b, axis=axis),
                                 permutation_type="independent", alternative="greater", n_resamples=1000,
                                 vectorized=True)
    assert ours.exact and ours.n_permutations == 462
    assert ours.p_value == pytest.approx(ref.pvalue, abs=1e-12)


def test_random_permutation_is_seeded_and_has_the_plus_one_rule():
    g = np.random.default_rng(3)
    x, y = g.normal(3.0, 1.0, size=(20, 4)), g.normal(0.0, 1.0, size=(20, 4))
    a = permutation_test(_mean_diff, x, y, n_permutations=199, seed=5)
    b = permutation_test(_mean_diff, x, y, n_permutations=199, seed=5)
    assert not a.exact and np.array_equal(a.null, b.null) and a.p_value == b.p_value
    assert a.p_value == pytest.approx(1 / 200)  # a 3-sigma shift of 20 rows: no swap reaches it
    same = permutation_test(_mean_diff, x, x.copy(), n_permutations=99, seed=0)
    assert same.p_value == 1.0  # identical sets: every relabelling ties the observed 0


def test_permutation_errors():
    with pytest.raises(I2IInputError, match="same shape"):
        permutation_test(_mean_diff, np.zeros(3), np.zeros(4))
    with pytest.raises(I2IInputError, match="n_permutations"):
        permutation_test(_mean_diff, np.zeros(3), np.zeros(3), n_permutations=0)
    with pytest.raises(I2IInputError, match="not finite"):
        permutation_test(lambda a, b: float("nan"), np.zeros(3), np.zeros(3))
