"""Streaming Fréchet statistics and the Fréchet distance's routes (Cholesky, rank-reduced, eigh
fallback, features form), against scipy's sqrtm route and a 50-digit mpmath computation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import pytest_i2i.metrics.functional.frechet as fr
from pytest_i2i.errors import I2IInputError
from pytest_i2i.metrics.functional.frechet import (
    FeatureStats,
    GaussianStats,
    frechet_distance,
    frechet_distance_features,
    load_stats,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    with pytest.raises(I2IInputError, match="mu1 contains NaN"):
        frechet_distance(np.array([np.nan, 0]), np.eye(2), np.zeros(2), np.eye(2))
    with pytest.raises(I2IInputError, match="sigma2 contains NaN or Inf"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, np.inf]))
    with pytest.raises(I2IInputError, match="means"):
        frechet_distance(np.zeros((2, 2)), np.eye(2), np.zeros(2), np.eye(2))


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
    assert s.n == 3200 and s.outer.shape == (4, 4) and s.total.shape == (4,) and s.rows is None


def test_stats_keep_rows_while_no_more_than_dimensions(rng, tmp_path):
    x = rng.standard_normal((12, 10))
    s = FeatureStats(dim=10)
    s.update(x[:4]).update(x[4:10])
    np.testing.assert_array_equal(s.rows, x[:10])
    merged = FeatureStats.from_features(x[:3]) + FeatureStats.from_features(x[3:7])
    np.testing.assert_array_equal(merged.rows, x[:7])
    assert (merged + FeatureStats.from_features(x[7:12])).rows is None  # 12 > 10: sums only
    assert s.update(x[10:]).rows is None
    np.testing.assert_allclose(s.outer, x.T @ x, rtol=1e-13)
    partial = FeatureStats.from_features(x[:3])
    np.testing.assert_allclose(partial.outer, x[:3].T @ x[:3], rtol=1e-13)  # formed early: rows stay at hand
    partial.update(x[3:6])
    np.testing.assert_allclose(partial.outer, x[:6].T @ x[:6], rtol=1e-13)
    np.testing.assert_array_equal(partial.rows, x[:6])
    kept = x[6:8].copy()
    partial.update(kept)
    kept[:] = 0.0  # the caller's buffer is not held
    np.testing.assert_array_equal(partial.rows, x[:8])
    assert load_stats(FeatureStats.from_features(x[:5]).save(tmp_path / "s.npz")).rows is None  # sums only on disk


@pytest.mark.parametrize("n, m", [(5, 7), (2, 40)])
def test_frechet_distance_stats_takes_the_low_rank_form_when_both_sides_kept_rows(rng, monkeypatch, n, m):
    d = 48
    x, y = rng.standard_normal((n, d)) * 2.0 + 1.0, rng.standard_normal((m, d)) * 0.7
    seen = []
    original = fr.frechet_distance
    monkeypatch.setattr(fr, "frechet_distance", lambda *a: seen.append(1) or original(*a))
    a, b = FeatureStats.from_features(x), FeatureStats.from_features(y)
    low_rank = fr.frechet_distance_stats(a, b)
    assert seen == []
    via_covariances = fr.frechet_distance_stats(GaussianStats(a.mean, a.cov), b)
    assert seen == [1]
    assert low_rank == pytest.approx(_mp_frechet_from_samples(x, y), rel=1e-12)
    assert low_rank == pytest.approx(via_covariances, rel=1e-9)


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


# --- routes against an independent 50-digit computation ------------------------------------------
#
# The reference works in mpmath at 50 significant digits: covariances from the samples (or the
# given float64 matrices, which mpmath represents exactly), Σ₁^½ from a symmetric
# eigendecomposition, then Σ √μ over the eigenvalues of Σ₁^½ Σ₂ Σ₁^½. A covariance of n < d samples
# has exact rank n − 1 there (its zero eigenvalues are ~1e-50), so the reference needs no floor.

_EPS = np.finfo(np.float64).eps


def _mp_trace_sqrt(s1, s2):
    mp = pytest.importorskip("mpmath").mp
    with mp.workdps(50):
        e, q = mp.eigsy(s1)
        half = q * mp.diag([mp.sqrt(max(v, 0)) for v in e]) * q.T
        mu = mp.eigsy(half * s2 * half, eigvals_only=True)
        return sum(mp.sqrt(max(v, 0)) for v in mu)


def _mp_frechet_from_matrices(mu1, s1, mu2, s2):
    mp = pytest.importorskip("mpmath").mp
    with mp.workdps(50):
        a, b = mp.matrix(s1.tolist()), mp.matrix(s2.tolist())
        diff = sum((mp.mpf(u) - mp.mpf(v)) ** 2 for u, v in zip(mu1, mu2))
        tr = sum(a[i, i] + b[i, i] for i in range(a.rows))
        return float(diff + tr - 2 * _mp_trace_sqrt(a, b))


def _mp_frechet_from_samples(x, y):
    mp = pytest.importorskip("mpmath").mp

    def moments(z):
        m = mp.matrix(z.tolist())
        n, d = m.rows, m.cols
        mean = [sum(m[i, j] for i in range(n)) / n for j in range(d)]
        c = mp.matrix(d, d)
        for j in range(d):
            for k in range(j, d):
                c[j, k] = c[k, j] = sum((m[i, j] - mean[j]) * (m[i, k] - mean[k]) for i in range(n)) / (n - 1)
        return mean, c

    with mp.workdps(50):
        (m1, c1), (m2, c2) = moments(x), moments(y)
        diff = sum((u - v) ** 2 for u, v in zip(m1, m2))
        tr = sum(c1[i, i] + c2[i, i] for i in range(c1.rows))
        return float(diff + tr - 2 * _mp_trace_sqrt(c1, c2))


def _route_spy(monkeypatch):
    calls = []
    for name in ("_trace_sqrt_rank_reduced", "_trace_sqrt_eigh"):
        original = getattr(fr, name)

        def spy(*args, _original=original, _name=name):
            calls.append(_name)
            return _original(*args)

        monkeypatch.setattr(fr, name, spy)
    return calls


def _moments(x):
    return x.mean(0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("n1, n2", [(40, 40), (200, 207), (40, 5)])
def test_cholesky_route_equals_50_digit_reference(rng, monkeypatch, n1, n2):
    """Σ₁ well conditioned (n1 > d): the Cholesky route, also when Σ₂ is rank deficient (n2 < d)."""
    d = 12
    x = rng.standard_normal((n1, d)) * np.linspace(0.2, 2.0, d)
    y = rng.standard_normal((n2, d)) @ rng.standard_normal((d, d)) * 0.4 + 0.3
    calls = _route_spy(monkeypatch)
    got = frechet_distance(*_moments(x), *_moments(y))
    assert calls == []
    assert got == pytest.approx(_mp_frechet_from_samples(x, y), rel=1e-12)


@pytest.mark.parametrize("n1, n2", [(5, 9), (9, 5), (6, 6)])
def test_rank_deficient_route_equals_50_digit_reference(rng, monkeypatch, n1, n2):
    """Fewer samples than dimensions: Cholesky fails, the pivoted-Cholesky rank-reduced route is exact."""
    d = 12
    x = rng.standard_normal((n1, d)) * np.linspace(0.2, 2.0, d)
    y = rng.standard_normal((n2, d)) * 0.7 + 0.1
    calls = _route_spy(monkeypatch)
    got = frechet_distance(*_moments(x), *_moments(y))
    assert calls == ["_trace_sqrt_rank_reduced"]
    assert got == pytest.approx(_mp_frechet_from_samples(x, y), rel=1e-12)


@pytest.mark.parametrize("offset", [0.4, 2.0])
def test_rank_reduced_route_on_streamed_covariances_with_round_off_noise(rng, monkeypatch, offset):
    """FeatureStats covariances ((Σxxᵀ − n μμᵀ)/(n−1)) of 32 samples in d = 128 carry cancellation
    noise; with a feature mean of 2 some noise eigenvalues clear the floor and the pivoting runs past
    the rank. The route must still not need the full eigendecomposition, and agree with the exact
    small-space nuclear-norm value (singular values of the centred samples' cross product)."""
    d, n = 128, 32
    q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    scale = np.sqrt(0.5 / np.arange(1, d + 1))
    x = (rng.standard_normal((n, d)) * scale) @ q.T + offset
    y = 0.8 * (rng.standard_normal((n + 3, d)) * scale) @ q.T + offset
    sx, sy = FeatureStats.from_features(x), FeatureStats.from_features(y)
    xc, yc = (x - x.mean(0)) / np.sqrt(n - 1), (y - y.mean(0)) / np.sqrt(n + 2)
    exact = float(((x.mean(0) - y.mean(0)) ** 2).sum() + (xc ** 2).sum() + (yc ** 2).sum()
                  - 2 * np.linalg.svd(yc @ xc.T, compute_uv=False).sum())
    calls = _route_spy(monkeypatch)
    assert frechet_distance(sx.mean, sx.cov, sy.mean, sy.cov) == pytest.approx(exact, rel=1e-10)
    assert calls == ["_trace_sqrt_rank_reduced"]


def test_rank_reduced_route_falls_back_to_eigh_when_pivoting_leaves_out_too_much(monkeypatch):
    """Σ₁ = [1] ⊕ c·J₅ with c just under dpstrf's pivot tolerance: pivoting stops at rank 1, but
    c·J₅ has the eigenvalue 5c above the floor 6·eps, so its direction counts (k = 2): the route
    must notice and take the full eigendecomposition."""
    d = 6
    s1 = np.zeros((d, d))
    s1[0, 0] = 1.0
    s1[1:, 1:] = 0.9 * d * _EPS
    s2 = np.diag([2.0, 3.0, 1.0, 4.0, 2.0, 5.0])
    mu = np.zeros(d)
    exact = _mp_frechet_from_matrices(mu, s1, mu, s2)
    dropped = _mp_frechet_from_matrices(mu, np.diag([1.0, 0, 0, 0, 0, 0]), mu, s2)
    calls = _route_spy(monkeypatch)
    # the 5c eigenvalue carries a relative error ~eps/5c (4%) in any float64 eigensolver, so its
    # √-term (2.7e-7 here) is right to ~2%: the error must be far below that term
    assert abs(frechet_distance(mu, s1, mu, s2) - exact) < 0.05 * abs(exact - dropped)
    assert calls == ["_trace_sqrt_rank_reduced", "_trace_sqrt_eigh"]


def _near_parallel(delta):
    """[[1, 1−δ], [1−δ, 1]] ⊕ diag(0.5, 0.7): eigenvalues 2−δ, δ, 0.5, 0.7 (exact in float64 for δ = 4·eps)."""
    s = np.diag([1.0, 1.0, 0.5, 0.7])
    s[0, 1] = s[1, 0] = 1.0 - delta
    return s


@pytest.mark.parametrize("case", ["tiny-diagonal", "near-parallel"])
def test_eigenvalues_under_the_round_off_floor_count_as_zero(monkeypatch, case):
    """Positive definite Σ₁ with one eigenvalue under the floor 4·eps·λ_max. Cholesky succeeds, but
    the condition check sends Σ₁ to the rank-reduced route, which drops that eigenvalue as the module
    documents: in pivoting (tiny-diagonal: 1e-16 under dpstrf's tolerance) or at the floor on the
    eigenvalues of FᵀF (near-parallel: its pivot 8·eps passes dpstrf, its eigenvalue 4·eps does not).
    Keeping it would add ~2√(λ·vᵀΣ₂v) ≈ 1e-8 to the distance."""
    if case == "tiny-diagonal":
        s1, s1_floored = np.diag([1.0, 2.0, 0.5, 1e-16]), np.diag([1.0, 2.0, 0.5, 0.0])
        s2 = np.diag([3.0, 1.0, 1.0, 5.0])
    else:
        s1 = _near_parallel(4 * _EPS)
        s1_floored = _near_parallel(4 * _EPS)
        s1_floored[:2, :2] = 1.0 - 2 * _EPS  # (2−δ)·uuᵀ, u = (1, 1)/√2
        # Σ₂ large along v = (1, −1)/√2 and small elsewhere, so the δ-direction would clear the
        # second step's floor: only the floor on Σ₁'s own eigenvalues removes it
        s2 = np.diag([1.0, 1.0, 0.01, 0.01])
        s2[0, 1] = s2[1, 0] = -0.99
    mu = np.zeros(4)
    floored = _mp_frechet_from_matrices(mu, s1_floored, mu, s2)
    unfloored = _mp_frechet_from_matrices(mu, s1, mu, s2)
    assert abs(floored - unfloored) > 1e-8
    calls = _route_spy(monkeypatch)
    assert frechet_distance(mu, s1, mu, s2) == pytest.approx(floored, rel=1e-13, abs=1e-13)
    assert calls == ["_trace_sqrt_rank_reduced"]


@pytest.mark.parametrize("n1, n2", [(60, 50), (5, 60), (5, 6), (60, 5)])
def test_only_the_lower_triangles_are_read(rng, monkeypatch, n1, n2):
    """Every route (Cholesky, rank-reduced, and the products of both) reads one triangle only:
    junk in the upper triangles changes neither the value nor the route taken."""
    d = 10
    x, y = rng.standard_normal((n1, d)), rng.standard_normal((n2, d)) * 0.5 + 0.2
    (m1, s1), (m2, s2) = _moments(x), _moments(y)
    calls = _route_spy(monkeypatch)
    expected = frechet_distance(m1, s1, m2, s2)
    route, calls[:] = list(calls), []
    upper = np.triu_indices(d, 1)
    j1, j2 = s1.copy(), s2.copy()
    j1[upper] = rng.standard_normal(upper[0].size) * 50
    j2[upper] = rng.standard_normal(upper[0].size) * 50
    assert frechet_distance(m1, j1, m2, j2) == pytest.approx(expected, rel=1e-12)
    assert calls == route


def test_eigenvalue_count_from_inertia_matches_eigvalsh(rng):
    """The rank decision's counter (LDLᵀ inertia, with its 2 x 2 pivots) against numpy's eigenvalues."""
    for d in (1, 5, 40):
        b = rng.standard_normal((d, d))
        s = (b + b.T) / 2  # indefinite: Bunch–Kaufman takes 2 x 2 pivots
        w = np.linalg.eigvalsh(s)
        between = [float(u + v) / 2 for u, v in zip(w[:-1], w[1:])]  # away from every eigenvalue
        for tau in [-10.0, 10.0, *between]:
            assert fr._count_eigenvalues_above(s, tau) == int((w > tau).sum())


@pytest.mark.parametrize("d, n", [(128, 40), (128, 400)])
def test_value_within_1e6_of_the_sqrtm_route(rng, d, n):
    """The issue's criterion against scipy.linalg.sqrtm of Σ₁Σ₂ (pytorch-fid's route), in both routes."""
    x = rng.standard_normal((n, d)) * np.linspace(0.1, 1.0, d) + 0.2
    y = rng.standard_normal((n + 3, d)) * 0.8
    args = (*_moments(x), *_moments(y))
    assert frechet_distance(*args) == pytest.approx(_sqrtm_reference(*args), rel=1e-6)


# --- features form ------------------------------------------------------------------------------

@pytest.mark.parametrize("n, m, d", [(10, 13, 30), (4, 60, 8), (300, 280, 6)])
def test_features_form_equals_frechet_distance_on_full_covariances(rng, n, m, d):
    x = rng.standard_normal((n, d)) * np.linspace(0.5, 2.0, d)
    y = rng.standard_normal((m, d)) * 1.3 + 0.4
    full = frechet_distance(*_moments(x), *_moments(y))
    assert frechet_distance_features(x, y) == pytest.approx(full, rel=1e-9)
    assert frechet_distance_features(x, x) == pytest.approx(0.0, abs=1e-9)


def test_features_form_nuclear_and_covariance_branches_agree(rng, monkeypatch):
    """Few rows: the nuclear-norm form; many rows: the covariances go to frechet_distance."""
    x, y = rng.standard_normal((50, 8)), rng.standard_normal((70, 8)) * 0.5 + 1.0
    seen = []
    original = fr.frechet_distance
    monkeypatch.setattr(fr, "frechet_distance", lambda *a: seen.append(1) or original(*a))
    via_covariances = frechet_distance_features(x, y)
    assert seen == [1]
    small_x, small_y = x[:5], y[:6]
    via_nuclear = frechet_distance_features(small_x, small_y)
    assert seen == [1]
    assert via_covariances == pytest.approx(_mp_frechet_from_samples(x, y), rel=1e-12)
    assert via_nuclear == pytest.approx(_mp_frechet_from_samples(small_x, small_y), rel=1e-12)


def test_features_form_accepts_tensors_and_rejects_bad_input(rng):
    torch = pytest.importorskip("torch")
    x, y = rng.standard_normal((6, 5)), rng.standard_normal((7, 5))
    assert frechet_distance_features(torch.from_numpy(x).float(), y) == pytest.approx(
        frechet_distance_features(x.astype(np.float32), y), rel=1e-12)
    with pytest.raises(I2IInputError, match="x must be a 2-D array"):
        frechet_distance_features(np.zeros(5), y)
    with pytest.raises(I2IInputError, match="y needs at least 2 rows"):
        frechet_distance_features(x, y[:1])
    with pytest.raises(I2IInputError, match="dimension 5, y has dimension 4"):
        frechet_distance_features(x, y[:, :4])
    bad = x.copy()
    bad[2, 3] = np.nan
    with pytest.raises(I2IInputError, match="x contains NaN or Inf"):
        frechet_distance_features(bad, y)


def test_set_metrics_use_the_one_low_rank_function():
    from pytest_i2i.metrics.registry import metric_spec

    assert metric_spec("fid").resolve("statistic") is frechet_distance_features
    assert metric_spec("fd_vit").resolve("statistic") is frechet_distance_features
