"""MetricResult: number behaviour, provenance and JSON round trip; bootstrap CI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pytest_i2i.metrics.functional.bootstrap import bootstrap_mean_ci
from pytest_i2i.result import UNCALIBRATED_WARNING, MetricResult


def _result(**kw):
    base = dict(name="clip_direction", value=0.25, higher_is_better=True, n=4, ci=(0.2, 0.3), confidence=0.95,
                per_sample=[0.1, 0.2, 0.3, 0.4], sample_names=["a.png", "b.png", "c.png", "d.png"],
                backbone="clip-vit-b-32", weights_sha256="ab" * 32)
    base.update(kw)
    return MetricResult(**base)


def test_behaves_like_a_number():
    r = _result()
    assert float(r) == 0.25
    assert r >= 0.2 and r > 0.2 and r <= 0.25 and r < 0.3 and r == 0.25
    assert not (r >= 0.3)
    assert 0.2 <= r  # reflected comparison
    assert r > _result(value=0.1)


def test_uncalibrated_results_say_so():
    r = _result(calibrated=False)
    assert r.warnings[0] == UNCALIBRATED_WARNING
    assert "UNCALIBRATED" in repr(r)
    assert "UNCALIBRATED" not in repr(_result())


def test_json_roundtrip_with_non_finite_values():
    r = _result(value=math.inf, per_sample=[math.inf, 1.0], sample_names=["inf", "nan"], extra={"k": [1, 2]})
    text = r.to_json()
    json.loads(text)  # strict JSON: no bare Infinity / NaN
    back = MetricResult.from_json(text)
    assert back.value == math.inf and back.per_sample == [math.inf, 1.0]
    assert back.sample_names == ["inf", "nan"]  # names are never converted to numbers
    assert back == r


def test_bootstrap_ci_covers_mean_and_narrows_with_n():
    rng = np.random.default_rng(1)
    small = rng.normal(0, 1, 20)
    big = rng.normal(0, 1, 2000)
    lo_s, hi_s = bootstrap_mean_ci(small)
    lo_b, hi_b = bootstrap_mean_ci(big)
    assert lo_s <= small.mean() <= hi_s and lo_b <= big.mean() <= hi_b
    assert (hi_b - lo_b) < (hi_s - lo_s) / 4
    # the standard error rule of thumb: half-width ~ 1.96 * sd / sqrt(n)
    assert (hi_b - lo_b) / 2 == pytest.approx(1.96 * big.std() / np.sqrt(big.size), rel=0.15)
    assert bootstrap_mean_ci(small, seed=3) == bootstrap_mean_ci(small, seed=3)


def test_bootstrap_edge_cases():
    assert bootstrap_mean_ci([2.0]) == (2.0, 2.0)
    assert bootstrap_mean_ci([1.0, math.inf])[1] == math.inf
    with pytest.raises(ValueError):
        bootstrap_mean_ci([])
    with pytest.raises(ValueError):
        bootstrap_mean_ci([1.0, math.nan])
