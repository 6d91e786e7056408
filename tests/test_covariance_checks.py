"""A covariance that is not positive semi-definite is refused on every Fréchet route (issue 19:
``sigma = -I`` gave FID 0.0). Matrices are generated; nothing is calibrated."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_i2i.errors import I2IInputError
from pytest_i2i.metrics.functional.frechet import check_gaussian, frechet_distance


def spectrum_matrix(eigenvalues, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigenvalues),) * 2))
    m = (q * np.asarray(eigenvalues, dtype=np.float64)) @ q.T
    return (m + m.T) / 2


POSITIVE = st.floats(0.01, 10)


@settings(max_examples=60, deadline=None)
@given(good=st.lists(POSITIVE, min_size=1, max_size=6), zeros=st.integers(0, 3),
       negative=st.floats(0.01, 5), seed=st.integers(0, 2**31), side=st.sampled_from([1, 2]))
def test_a_negative_eigenvalue_is_refused_and_psd_is_accepted(good, zeros, negative, seed, side):
    psd = spectrum_matrix(good + [0.0] * zeros, seed)
    other = spectrum_matrix([1.0] * len(psd), seed + 1)
    mu = np.zeros(len(psd))
    value = frechet_distance(mu, psd, mu, other)
    assert np.isfinite(value) and value >= -1e-9
    bad = spectrum_matrix(good + [0.0] * zeros + [-negative], seed)
    full = spectrum_matrix([1.0] * len(bad), seed + 1)
    mu = np.zeros(len(bad))
    args = (mu, bad, mu, full) if side == 1 else (mu, full, mu, bad)
    with pytest.raises(I2IInputError, match=f"sigma{side}"):
        frechet_distance(*args)
    with pytest.raises(I2IInputError, match="not positive semi-definite|negative variance"):
        check_gaussian(mu, bad, "stats.npz")


def test_minus_identity_no_longer_gives_zero():
    with pytest.raises(I2IInputError, match="sigma1.*negative variance"):
        frechet_distance(np.zeros(3), -np.eye(3), np.zeros(3), np.eye(3))
    with pytest.raises(I2IInputError, match="sigma2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), -np.eye(3))
    with pytest.raises(I2IInputError, match="sigma1 is not positive semi-definite"):
        frechet_distance(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]), np.zeros(2), np.eye(2))
    zero = np.zeros((2, 2))
    assert frechet_distance(np.zeros(2), zero, np.zeros(2), zero) == 0.0
