"""Statistical gates that do not flake: pass only when the evidence clears the threshold.

``assert_metric(result, ">=", 0.2, confidence=0.95)`` passes only when the one-sided
percentile-bootstrap confidence bound of the mean clears the threshold (the lower bound for
``>=``/``>``, the upper bound for ``<=``/``<``). ``assert_no_regression(candidate, baseline)``
resamples the *paired* per-sample differences. The bootstrap is seeded, so the same results and
seed always give the same verdict. Results without per-sample values (FID, KID, IS) are gated on
their value alone, and the message says so.

Only the standard library and numpy are imported (numpy lazily), so this module is cheap.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_i2i.errors import I2IInputError
from pytest_i2i.result import MetricResult

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
}


class MetricGateError(AssertionError):
    """A statistical gate failed; ``verdict`` holds the numbers."""

    def __init__(self, message: str, verdict: GateVerdict):
        super().__init__(message)
        self.verdict = verdict


@dataclass(frozen=True)
class GateVerdict:
    """What a gate decided and why."""

    passed: bool
    op: str
    threshold: float
    value: float
    bound: float | None  # the confidence bound that was compared (None: value compared)
    confidence: float | None
    n: int
    description: str


def one_sided_bound(values, *, lower: bool, confidence: float, n_resamples: int, seed: int) -> float:
    """One-sided percentile-bootstrap bound of the mean of ``values``."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or np.isnan(v).any():
        raise I2IInputError("a gate needs at least one per-sample value and no NaN")
    if v.size == 1:
        return float(v[0])
    rng = np.random.default_rng(seed)
    means = np.sort(v[rng.integers(0, v.size, size=(n_resamples, v.size))].mean(axis=1))
    q = (1.0 - confidence) if lower else confidence
    return float(means[int(np.clip(round(q * (n_resamples - 1)), 0, n_resamples - 1))])


def check_metric(
    result: MetricResult, op: str, threshold: float, *, confidence: float = 0.95,
    n_resamples: int = 2000, seed: int = 0,
) -> GateVerdict:
    """The verdict of :func:`assert_metric` without raising."""
    if op not in _OPS:
        raise I2IInputError(f"gate operator {op!r} is not one of {', '.join(_OPS)}")
    if not 0.0 < confidence < 1.0:
        raise I2IInputError(f"confidence must be in (0, 1), got {confidence}")
    if result.per_sample and result.ci is not None:  # the value is the mean of the per-sample values
        lower = op in (">=", ">")
        bound = one_sided_bound(result.per_sample, lower=lower, confidence=confidence,
                                n_resamples=n_resamples, seed=seed)
        side = "lower" if lower else "upper"
        desc = (f"{result.name}: one-sided {confidence:.0%} {side} bound of the mean = {bound:.6g} "
                f"(mean {result.value:.6g}, n={result.n}) must be {op} {threshold:g}")
        return GateVerdict(_OPS[op](bound, threshold), op, threshold, result.value, bound, confidence, result.n, desc)
    desc = (f"{result.name} = {result.value:.6g} must be {op} {threshold:g} "
            f"(no per-sample mean to bootstrap: compared by value, n={result.n})")
    return GateVerdict(_OPS[op](result.value, threshold), op, threshold, result.value, None, None, result.n, desc)


def assert_metric(
    result: MetricResult, op: str, threshold: float, *, confidence: float = 0.95,
    n_resamples: int = 2000, seed: int = 0,
) -> GateVerdict:
    """Assert that ``result`` clears ``threshold`` with the given confidence.

    Args:
        result: a per-sample metric result (or a set metric, gated on its value).
        op: one of ``">="``, ``">"``, ``"<="``, ``"<"``.
        threshold: the bound to clear.
        confidence: one-sided confidence of the bootstrap bound (default 0.95).
        n_resamples, seed: bootstrap resamples and seed (same seed, same verdict).

    Returns:
        The :class:`GateVerdict` when the gate passes.

    Raises:
        MetricGateError: the bound does not clear the threshold (message has the numbers).

    Example:
        >>> assert_metric(pytest_i2i.ssim(targets, outputs), ">=", 0.8)   # doctest: +SKIP
    """
    __tracebackhide__ = True  # pytest shows the caller's line and this message, not this function
    verdict = check_metric(result, op, threshold, confidence=confidence, n_resamples=n_resamples, seed=seed)
    _record(result, verdict, "bootstrap bound" if verdict.bound is not None else "value")
    if not verdict.passed:
        raise MetricGateError(_failure_message(result, verdict), verdict)
    return verdict


def check_no_regression(
    candidate: MetricResult, baseline: MetricResult, *, margin: float = 0.0, confidence: float = 0.95,
    n_resamples: int = 2000, seed: int = 0,
) -> GateVerdict:
    """The verdict of :func:`assert_no_regression` without raising."""
    import numpy as np

    if candidate.name != baseline.name:
        raise I2IInputError(f"cannot compare {candidate.name} with {baseline.name}")
    better = 1.0 if candidate.higher_is_better else -1.0
    if candidate.per_sample and baseline.per_sample:
        cand = dict(zip(candidate.sample_names or range(len(candidate.per_sample)), candidate.per_sample))
        base = dict(zip(baseline.sample_names or range(len(baseline.per_sample)), baseline.per_sample))
        if cand.keys() != base.keys():
            missing = sorted(map(str, set(cand) ^ set(base)))[:5]
            raise I2IInputError(f"candidate and baseline {candidate.name} cover different samples (e.g. {missing})")
        keys = list(cand)
        diff = better * (np.array([cand[k] for k in keys]) - np.array([base[k] for k in keys]))
        if not np.isfinite(diff).all():
            raise I2IInputError(f"{candidate.name}: non-finite per-sample values cannot be compared")
        bound = one_sided_bound(diff, lower=True, confidence=confidence, n_resamples=n_resamples, seed=seed)
        desc = (f"{candidate.name}: paired bootstrap, one-sided {confidence:.0%} lower bound of the improvement "
                f"(candidate − baseline, {'higher' if better > 0 else 'lower'} is better) = {bound:.6g} over "
                f"n={len(keys)} samples must be >= −{margin:g} (candidate {candidate.value:.6g}, "
                f"baseline {baseline.value:.6g})")
        return GateVerdict(bound >= -margin, ">=", -margin, candidate.value, bound, confidence, len(keys), desc)
    improvement = better * (candidate.value - baseline.value)
    desc = (f"{candidate.name}: candidate {candidate.value:.6g} vs baseline {baseline.value:.6g}: improvement "
            f"{improvement:.6g} must be >= −{margin:g} (no per-sample values: compared by value)")
    return GateVerdict(improvement >= -margin, ">=", -margin, candidate.value, None, None, candidate.n, desc)


def assert_no_regression(
    candidate: MetricResult, baseline: MetricResult, *, margin: float = 0.0, confidence: float = 0.95,
    n_resamples: int = 2000, seed: int = 0,
) -> GateVerdict:
    """Assert the candidate is not worse than the baseline by more than ``margin``.

    A paired bootstrap over samples (matched by ``sample_names``): the one-sided lower confidence
    bound of the mean improvement must be ≥ −margin. Direction follows ``higher_is_better``.

    Raises:
        MetricGateError: a regression beyond ``margin`` is supported by the data.
        I2IInputError: the results are of different metrics or samples.
    """
    __tracebackhide__ = True  # pytest shows the caller's line and this message, not this function
    verdict = check_no_regression(candidate, baseline, margin=margin, confidence=confidence,
                                  n_resamples=n_resamples, seed=seed)
    _record(candidate, verdict, "no regression (paired bootstrap)" if verdict.bound is not None
            else "no regression (value)")
    if not verdict.passed:
        raise MetricGateError(_failure_message(candidate, verdict), verdict)
    return verdict


#: where verdicts go (the pytest plugin installs one per session: they become the report's "checks");
#: the result itself is never changed
_RECORDERS: list[Callable[[MetricResult, dict[str, Any]], None]] = []


def add_recorder(recorder: Callable[[MetricResult, dict[str, Any]], None]) -> Callable[[], None]:
    """Call ``recorder(result, check)`` for every gate verdict from now on (the latest recorder added
    receives them until it is stopped); returns a function that stops it.

    ``check`` is ``{"op", "threshold", "passed", "gate", "bound", "confidence"}``.
    """
    _RECORDERS.append(recorder)

    def stop() -> None:
        if recorder in _RECORDERS:
            _RECORDERS.remove(recorder)

    return stop


def record_check(result: MetricResult, check: dict[str, Any]) -> None:
    """Hand one verdict on ``result`` to the innermost recorder (a pytest run started inside another,
    as pytester does, records its own verdicts, not its parent's)."""
    if _RECORDERS:
        _RECORDERS[-1](result, check)


def _record(result: MetricResult, verdict: GateVerdict, gate: str) -> None:
    record_check(result, {"op": verdict.op, "threshold": verdict.threshold, "passed": verdict.passed, "gate": gate,
                          "bound": verdict.bound, "confidence": verdict.confidence})


def _failure_message(result: MetricResult, verdict: GateVerdict) -> str:
    from pytest_i2i.explain import explain_result

    return "\n".join([f"gate failed: {verdict.description}", *explain_result(result)])
