"""A verdict never rests on fewer samples than it says (issue 19): lost samples fail gates (naming
them) unless allowed, duplicate sample names never collapse in a no-regression pairing, one bad
sample or a hung generator fails those samples, not the session. All values are synthetic."""

from __future__ import annotations

import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pytest_i2i.errors import I2IInputError
from pytest_i2i.gates import MetricGateError, assert_metric, check_metric, check_no_regression, paired_values
from pytest_i2i.generators.runner import Generator, generate
from pytest_i2i.result import MetricResult


def result(values, names=None, lost=(), name="ssim"):
    return MetricResult(name=name, value=sum(values) / len(values), higher_is_better=True, n=len(values),
                        per_sample=list(values), sample_names=names, lost_samples=list(lost))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 12), lost=st.lists(st.text("abcdef", min_size=1, max_size=4), max_size=4, unique=True),
       threshold=st.floats(-1, 0.5))
def test_a_result_that_lost_samples_fails_every_gate_unless_allowed(n, lost, threshold):
    r = result([0.9] * n, lost=lost)
    assert r.n_requested == n + len(lost) and r.complete == (not lost)
    verdict = check_metric(r, ">=", threshold, n_resamples=200)
    if lost:
        assert not verdict.passed and all(name in verdict.description for name in lost)
        assert f"{len(lost)} of {n + len(lost)} samples asked for were not used" in r.lost_description()
        assert f"n={n} of {n + len(lost)}" in str(r)
        assert check_metric(r, ">=", threshold, n_resamples=200, allow_lost_samples=True).passed
        with pytest.raises(MetricGateError, match=lost[0]):
            assert_metric(r, ">=", threshold, n_resamples=200)
    else:
        assert verdict.passed
    back = MetricResult.from_dict(r.to_dict())
    assert (back.n, back.n_requested, back.lost_samples) == (r.n, r.n_requested, r.lost_samples)


def test_allow_lost_samples_must_be_a_bool():
    with pytest.raises(I2IInputError, match="allow_lost_samples"):
        check_metric(result([0.5, 0.6]), ">=", 0.1, allow_lost_samples="yes")


def test_repeated_sample_names_never_collapse_in_no_regression():
    """The review's probe: four pairs with repeated names compared one pair and passed a clearly
    worse candidate. Same names in the same order pair position by position (all four)."""
    names = ["s", "s", "t", "t"]
    base = result([0.9, 0.91, 0.92, 0.93], names)
    cand = result([0.5, 0.51, 0.52, 0.53], names)
    verdict = check_no_regression(cand, base, n_resamples=500)
    assert not verdict.passed and verdict.n == 4
    with pytest.raises(I2IInputError, match="more than once"):
        check_no_regression(cand, result([0.9, 0.91, 0.92, 0.93], ["t", "t", "s", "s"]), n_resamples=500)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.sampled_from("abcd"), min_size=1, max_size=8), data=st.data())
def test_pairing_uses_every_sample_or_refuses(names, data):
    other = data.draw(st.permutations(names))
    cv = [float(i) for i in range(len(names))]
    bv = [float(10 + i) for i in range(len(names))]
    cand, base = result(cv, list(names)), result(bv, list(other))
    try:
        c, b, dropped = paired_values(cand, base)
    except I2IInputError as e:
        assert len(set(names)) < len(names) and "more than once" in str(e)
        return
    assert dropped == 0 and len(c) == len(b) == len(names)  # never fewer pairs than samples
    pairs = {(other[j], 10 + j) for j in range(len(names))}
    assert {(names[k], 10 + int(b[k]) - 10) for k in range(len(names))} <= {(n, v) for n, v in pairs}


class RefusesOddSizes(nn.Module):
    def forward(self, x):
        if x.shape[-1] % 2:
            raise RuntimeError("input width must be even")
        return x.clamp(-1, 1)


def test_one_sample_the_generator_cannot_process_fails_that_sample_only():
    images = [torch.rand(3, 8, 8), torch.rand(3, 8, 9), torch.rand(3, 8, 8)]
    out = generate(Generator(RefusesOddSizes()), images, batch_size=4)
    assert out.ok_indices == [0, 2]
    assert list(out.errors) == [1] and "inputs[1]" in out.errors[1] and "even" in out.errors[1]


class Hangs(nn.Module):
    def forward(self, x):
        if x.shape[0] > 1:
            time.sleep(5)
        return x


def test_a_generator_that_does_not_return_times_out_naming_the_samples():
    images = torch.rand(3, 3, 8, 8)
    start = time.perf_counter()
    out = generate(Generator(Hangs()), images, batch_size=2, timeout_s=0.5)
    assert time.perf_counter() - start < 4
    assert out.ok_indices == [] and sorted(out.errors) == [0, 1, 2]
    assert "inputs[0]" in out.errors[0] and "timed out" in out.errors[0] + out.errors[2]
    with pytest.raises(I2IInputError, match="timeout_s"):
        generate(Generator(Hangs()), images, timeout_s=0)
