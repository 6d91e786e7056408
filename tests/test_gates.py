"""Statistical gates and the explanations a failing assert prints."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_i2i.errors import I2IInputError
from pytest_i2i.explain import explain_comparison, worst_samples
from pytest_i2i.gates import MetricGateError, assert_metric, assert_no_regression, check_metric, check_no_regression
from pytest_i2i.result import MetricResult


def per_sample_result(values, name="ssim", higher=True, names=None):
    values = [float(v) for v in values]
    return MetricResult(name=name, value=float(np.mean(values)), higher_is_better=higher, n=len(values),
                        per_sample=values, sample_names=names or [f"img{i}.png" for i in range(len(values))],
                        ci=(min(values), max(values)), confidence=0.95)


def test_gate_passes_only_when_the_bound_clears_the_threshold():
    rng = np.random.default_rng(0)
    noisy = per_sample_result(0.25 + rng.normal(0, 0.2, 12))  # mean ~0.25, wide spread
    assert noisy.value > 0.2
    with pytest.raises(MetricGateError, match="lower bound"):
        assert_metric(noisy, ">=", 0.2)  # the mean clears it, the evidence does not
    tight = per_sample_result(0.25 + rng.normal(0, 0.005, 50))
    verdict = assert_metric(tight, ">=", 0.2)
    assert verdict.passed and verdict.bound > 0.2


def test_gate_direction_and_bound_side():
    r = per_sample_result([10.0, 11.0, 12.0, 10.5], name="fid_like", higher=False)
    v = check_metric(r, "<=", 20.0)
    assert v.passed and v.bound >= r.value  # upper bound for <=
    assert not check_metric(r, "<=", 10.0).passed


def test_same_seed_same_verdict_and_bound():
    r = per_sample_result(np.random.default_rng(3).normal(0.5, 0.3, 20))
    a = check_metric(r, ">=", 0.4, seed=7)
    b = check_metric(r, ">=", 0.4, seed=7)
    assert a == b


def test_set_metric_is_gated_by_value_and_says_so():
    fid = MetricResult(name="fid", value=12.0, higher_is_better=False, n=50)
    v = assert_metric(fid, "<=", 15.0)
    assert v.bound is None and "compared by value" in v.description
    with pytest.raises(MetricGateError, match="compared by value"):
        assert_metric(fid, "<=", 10.0)


def test_no_regression_paired_bootstrap():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.5, 0.9, 30)
    names = [f"s{i}" for i in range(30)]
    baseline = per_sample_result(base, names=names)
    same = per_sample_result(base + rng.normal(0, 0.001, 30), names=names)
    assert_no_regression(same, baseline, margin=0.01)
    worse = per_sample_result(base - 0.05 + rng.normal(0, 0.001, 30), names=names)
    with pytest.raises(MetricGateError, match="paired bootstrap"):
        assert_no_regression(worse, baseline, margin=0.01)
    # pairing matters: a constant per-sample shift is detected even when samples vary a lot
    assert check_no_regression(worse, baseline).bound < -0.04
    # order of samples does not matter (matched by name)
    shuffled = per_sample_result(list(reversed(list(base))), names=list(reversed(names)))
    assert check_no_regression(shuffled, baseline).bound == pytest.approx(0.0, abs=1e-12)


def test_no_regression_rejects_mismatched_results():
    a = per_sample_result([0.1, 0.2], names=["a", "b"])
    with pytest.raises(I2IInputError, match="different samples"):
        check_no_regression(a, per_sample_result([0.1, 0.2], names=["a", "c"]))
    with pytest.raises(I2IInputError, match="cannot compare"):
        check_no_regression(a, per_sample_result([0.1, 0.2], name="psnr", names=["a", "b"]))


def test_explanations_name_worst_samples_and_calibration():
    r = per_sample_result([0.9, 0.1, 0.5], names=["good.png", "bad.png", "mid.png"])
    assert [n for n, _ in worst_samples(r, 2)] == ["bad.png", "mid.png"]
    lines = explain_comparison(">=", r, 0.8)
    text = "\n".join(lines)
    assert "ssim 0.5 >= 0.8 failed" in text and "bad.png: 0.1" in text and "95% CI" in text
    unc = MetricResult(name="fid", value=3.0, higher_is_better=False, n=4, backbone="inception-fid",
                       weights_sha256="random:seed=0", calibrated=False)
    text = "\n".join(explain_comparison("<=", unc, 1.0))
    assert "UNCALIBRATED" in text and "inception-fid" in text
    assert "fid 3 >= 5 failed" in "\n".join(explain_comparison("<=", 5.0, unc))  # mirrored operands
    assert explain_comparison("==", 1, 2) is None


def test_comparisons_are_pure_and_gates_report_to_recorders():
    from pytest_i2i.gates import add_recorder, assert_metric

    r = per_sample_result([0.3, 0.4])
    before = r.to_dict()
    assert r >= 0.2
    assert not (r >= 0.5)
    assert r.to_dict() == before and not hasattr(r, "checks")  # comparing never changes the result
    seen = []
    stop = add_recorder(lambda result, check: seen.append((result, check)))
    try:
        assert_metric(r, ">=", 0.2)
    finally:
        stop()
    assert r.to_dict() == before
    assert len(seen) == 1 and seen[0][0] is r
    assert {k: seen[0][1][k] for k in ("op", "threshold", "passed")} == {"op": ">=", "threshold": 0.2, "passed": True}
    assert_metric(r, ">=", 0.2)  # stopped: no recorder is called any more
    assert len(seen) == 1
