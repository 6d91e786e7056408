"""KID and IS maths against torch-fidelity's functions on the same feature arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pytest_i2i.errors import I2IInputError
from pytest_i2i.metrics.functional.inception_score import inception_score_from_logits
from pytest_i2i.metrics.functional.kernel import kernel_inception_distance, mmd2_unbiased

torch_fidelity = pytest.importorskip("torch_fidelity")


def test_mmd2_unbiased_matches_direct_double_loop(rng):
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 4)) + 0.5
    k = lambda a, b: (a @ b / 4 + 1) ** 3  # noqa: E731
    m = 6
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


@pytest.mark.parametrize("n1,n2,size", [(40, 40, 20), (50, 30, 30)])
def test_kid_matches_torch_fidelity(rng, n1, n2, size):
    from torch_fidelity.metric_kid import kid_features_to_metric

    a = torch.from_numpy(rng.standard_normal((n1, 16)))
    b = torch.from_numpy(rng.standard_normal((n2, 16)) * 1.2 + 0.1)
    ref = kid_features_to_metric(a, b, kid_subsets=25, kid_subset_size=size, kid_degree=3, kid_gamma=None,
                                 kid_coef0=1, rng_seed=2020, verbose=False)
    mean, std, values = kernel_inception_distance(a, b, subsets=25, subset_size=size, seed=2020)
    assert mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-9)
    assert std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-9)
    assert values.shape == (25,)


def test_kid_caps_subset_size_and_rejects_tiny_sets(rng):
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((7, 3))
    mean, _, _ = kernel_inception_distance(a, b, subsets=3, subset_size=1000)
    assert np.isfinite(mean)
    with pytest.raises(I2IInputError, match="at least 2"):
        kernel_inception_distance(a[:1], b)


@pytest.mark.parametrize("shuffle", [False, True])
def test_inception_score_matches_torch_fidelity(rng, shuffle):
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = torch.from_numpy(rng.standard_normal((53, 12)) * 3)
    ref = isc_features_to_metric(logits, splits=5, shuffle=shuffle, rng_seed=7)
    mean, std, scores = inception_score_from_logits(logits, splits=5, shuffle=shuffle, seed=7)
    assert mean == pytest.approx(ref["inception_score_mean"], rel=1e-12)
    assert std == pytest.approx(ref["inception_score_std"], rel=1e-9)
    assert len(scores) == 5


def test_inception_score_limits():
    # identical confident predictions: p(y|x) = p(y) -> IS = 1; uniform confident over C classes -> IS = C
    one_class = torch.zeros(20, 4)
    one_class[:, 0] = 50
    assert inception_score_from_logits(one_class, splits=2, shuffle=False)[0] == pytest.approx(1.0, abs=1e-9)
    spread = torch.full((40, 4), -50.0)  # each split of 20 holds every class 5 times
    spread[torch.arange(40), torch.arange(40) % 4] = 50
    assert inception_score_from_logits(spread, splits=2, shuffle=False)[0] == pytest.approx(4.0, rel=1e-9)
    with pytest.raises(I2IInputError, match="at least 10"):
        inception_score_from_logits(torch.zeros(5, 3), splits=10)
