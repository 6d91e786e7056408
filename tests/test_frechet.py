"""Streaming Fréchet statistics and the symmetric eigh route, against numpy/scipy references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from pytest_i2i.errors import I2IInputError
from pytest_i2i.metrics.functional.frechet import FeatureStats, GaussianStats, frechet_distance, load_stats


def _sqrtm_reference(mu1, s1, mu2, s2):
    """The pytorch-fid / clean-fid route: scipy.linalg.sqrtm of the product."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


@pytest.mark.parametrize("d", [3, 16, 64])
def test_frechet_distance_matches_sqrtm_route_full_rank(rng, d):
    a = rng.standard_normal((4 * d + 10, d))
    b = rng.standard_normal((4 * d + 10, d)) @ rng.standard_normal((d, d)) * 0.3 + 0.5
    args = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert frechet_distance(*args) == pytest.approx(_sqrtm_reference(*args), rel=1e-9)


def test_frechet_distance_closed_forms():
    assert frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2)) == pytest.approx(0, abs=1e-12)
    # 1-D: (m1-m2)^2 + (s1 - s2)^2 for standard deviations s1, s2
    assert frechet_distance([1.0], [[4.0]], [-1.0], [[9.0]]) == pytest.approx(4 + 1, rel=1e-12)
    # diagonal covariances: sum of per-dimension 1-D distances
    got = frechet_distance([0, 0], np.diag([1.0, 4.0]), [1, 1], np.diag([4.0, 16.0]))
    assert got == pytest.approx(2 + (1 - 2) ** 2 + (2 - 4) ** 2, rel=1e-12)


def test_frechet_distance_rank_deficient_is_finite_and_nonnegative(rng):
    a, b = rng.standard_normal((5, 32)), rng.standard_normal((5, 32)) + 0.1
    value = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert np.isfinite(value) and value > 0


def test_frechet_distance_rejects_bad_shapes_and_nan():
    with pytest.raises(I2IInputError, match="covariances"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(I2IInputError, match="NaN"):
        frechet_distance(np.array([np.nan, 0]), np.eye(2), np.zeros(2), np.eye(2))


def test_streaming_stats_equal_numpy_and_merge_exactly(rng):
    x = rng.standard_normal((100, 8)) * 3 + 2
    whole = FeatureStats.from_features(x)
    np.testing.assert_allclose(whole.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(whole.cov, np.cov(x, rowvar=False), rtol=1e-10)
    parts = [FeatureStats.from_features(x[i:i + 7]) for i in range(0, 100, 7)]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged + p
    assert merged.n == 100
    np.testing.assert_allclose(merged.outer, whole.outer, rtol=1e-13)
    np.testing.assert_allclose(merged.cov, whole.cov, rtol=1e-12)
    streamed = FeatureStats(dim=8)
    for i in range(0, 100, 13):
        streamed.update(x[i:i + 13])
    np.testing.assert_allclose(streamed.cov, whole.cov, rtol=1e-12)


def test_stats_memory_is_independent_of_n(rng):
    s = FeatureStats(dim=4)
    for _ in range(50):
        s.update(rng.standard_normal((64, 4)))
    assert s.n == 3200 and s.outer.shape == (4, 4) and s.total.shape == (4,)


def test_stats_errors():
    s = FeatureStats(dim=3)
    with pytest.raises(I2IInputError, match="dimension"):
        s.update(np.zeros((2, 4)))
    with pytest.raises(I2IInputError, match="NaN or Inf"):
        s.update(np.array([[np.inf, 0, 0]]))
    s.update(np.zeros((1, 3)))
    with pytest.raises(I2IInputError, match="at least 2"):
        _ = s.cov


def test_save_load_roundtrip_and_pytorch_fid_layout(tmp_path, rng):
    x = rng.standard_normal((20, 5))
    s = FeatureStats.from_features(x, meta={"backbone": "inception-fid", "resize": "clean"})
    path = s.save(tmp_path / "ref.npz")
    back = load_stats(path)
    assert isinstance(back, FeatureStats) and back.n == 20 and back.meta == s.meta
    np.testing.assert_array_equal(back.outer, s.outer)
    with np.load(path) as f:  # pytorch-fid reads mu / sigma from our files too
        np.testing.assert_allclose(f["mu"], x.mean(0))
        np.testing.assert_allclose(f["sigma"], np.cov(x, rowvar=False))
    np.savez(tmp_path / "pfid.npz", mu=x.mean(0), sigma=np.cov(x, rowvar=False))
    g = load_stats(tmp_path / "pfid.npz")
    assert isinstance(g, GaussianStats) and g.n is None


def test_load_stats_errors(tmp_path):
    with pytest.raises(I2IInputError, match="does not exist"):
        load_stats(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(I2IInputError, match="junk.npz"):
        load_stats(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", foo=np.zeros(3))
    with pytest.raises(I2IInputError, match="neither"):
        load_stats(tmp_path / "other.npz")


@pytest.mark.parametrize("d,n", [(256, 20), (512, 64)])
def test_rank_deficient_matches_exact_small_space_formula(rng, d, n):
    """With n < d samples, tr √(Σ₁Σ₂) = Σ singular values of X₁X₂ᵀ / √((n₁−1)(n₂−1)) for centred X:
    an exact reference computed in the n-dimensional sample space."""
    x1 = rng.standard_normal((n, d)) @ np.diag(np.linspace(0.1, 2, d))
    x2 = rng.standard_normal((n + 3, d)) + 0.2
    c1, c2 = x1 - x1.mean(0), x2 - x2.mean(0)
    tr_sqrt = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / np.sqrt((n - 1) * (n + 2))
    s1, s2 = np.cov(x1, rowvar=False), np.cov(x2, rowvar=False)
    mu1, mu2 = x1.mean(0), x2.mean(0)
    exact = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(exact, rel=1e-9)
