"""Statistical gates that do not flake: pass only when the evidence clears the threshold.

``assert_metric(result, ">=", 0.2, confidence=0.95)`` passes only when the one-sided
percentile-bootstrap confidence bound of the mean clears the threshold (the lower bound for
``>=``/``>``, the upper bound for ``<=``/``<``). ``assert_no_regression(candidate, baseline)``
resamples the *paired* per-sample differences. The bootstrap is seeded, so the same results and
seed always give the same verdict. Results without per-sample values (FID, KID, IS) are gated on
their value alone, and the message says so.

A verdict never rests on fewer samples than it says: a result that lost samples (``n`` below
``n_requested``, e.g. samples the generator gave no valid output for) fails every gate, naming
the lost samples, unless the caller accepts it with ``allow_lost_samples=True`` (under pytest:
``--i2i-allow-lost-samples``, installed as the session's default with :func:`set_policy`).
Per-sample values are paired by sample name; a name that occurs twice is never collapsed: two
results with the same names in the same order are paired position by position, otherwise
duplicate names are refused with an error naming them.

Only the standard library and numpy are imported (numpy lazily), so this module is cheap.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_i2i.checks import check_confidence, check_finite, check_int, check_seed
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
    n_requested: int | None = None
    lost_samples: tuple[str, ...] = ()


def one_sided_bound(values, *, lower: bool, confidence: float, n_resamples: int, seed: int) -> float:
    """One-sided percentile-bootstrap bound of the mean of ``values``."""
    import numpy as np

    _check_bootstrap(confidence, n_resamples, seed)
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or np.isnan(v).any():
        raise I2IInputError("a gate needs at least one per-sample value and no NaN")
    if v.size == 1:
        return float(v[0])
    rng = np.random.default_rng(seed)
    means = np.sort(v[rng.integers(0, v.size, size=(n_resamples, v.size))].mean(axis=1))
    q = (1.0 - confidence) if lower else confidence
    return float(means[int(np.clip(round(q * (n_resamples - 1)), 0, n_resamples - 1))])


def _check_bootstrap(confidence: Any, n_resamples: Any, seed: Any, where: str = "gate") -> float:
    check_int("n_resamples", n_resamples, low=2, where=where, what="bootstrap resamples")
    check_seed(seed, where)
    return check_confidence(confidence, where)


def _check_gate(result: Any, op: Any, threshold: Any, confidence: Any, n_resamples: Any, seed: Any,
                what: str = "result") -> float:
    if not isinstance(result, MetricResult):
        raise I2IInputError(f"gate: {what} must be a MetricResult, got {type(result).__name__}")
    if op not in _OPS:
        raise I2IInputError(f"gate operator {op!r} is not one of {', '.join(_OPS)}")
    check_finite("threshold", threshold, "gate")
    return _check_bootstrap(confidence, n_resamples, seed)


#: session-wide gate defaults (the pytest plugin installs one per session, see :func:`set_policy`)
_POLICIES: list[dict[str, Any]] = []


def set_policy(*, allow_lost_samples: bool) -> Callable[[], None]:
    """Make ``allow_lost_samples`` the default of every gate from now on (the latest policy set wins
    until it is removed); returns a function that removes it. The pytest plugin sets it from
    ``--i2i-allow-lost-samples``."""
    policy = {"allow_lost_samples": bool(allow_lost_samples)}
    _POLICIES.append(policy)

    def remove() -> None:
        if policy in _POLICIES:
            _POLICIES.remove(policy)

    return remove


def _allow_lost(allow_lost_samples: bool | None) -> bool:
    if allow_lost_samples is None:
        return bool(_POLICIES[-1]["allow_lost_samples"]) if _POLICIES else False
    if not isinstance(allow_lost_samples, bool):
        raise I2IInputError(f"gate: allow_lost_samples must be True, False or None; got {allow_lost_samples!r}")
    return allow_lost_samples


def _lost_verdict(results: list[MetricResult], op: str, threshold: float, value: float) -> GateVerdict | None:
    """The failing verdict of results that lost samples (``None`` when none did)."""
    short = [r for r in results if not r.complete]
    if not short:
        return None
    r = short[0]
    lost = tuple(name for s in short for name in s.lost_samples)
    desc = (f"{r.name}: {r.lost_description()}; a verdict on the other {r.n} would rest on fewer samples than "
            "asked for. Fix the lost samples, or accept them explicitly with allow_lost_samples=True "
            "(pytest: --i2i-allow-lost-samples)")
    return GateVerdict(False, op, threshold, value, None, None, r.n, desc, r.n_requested, lost)


def check_metric(
    result: MetricResult, op: str, threshold: float, *, confidence: float = 0.95,
    n_resamples: int = 2000, seed: int = 0, allow_lost_samples: bool | None = None,
) -> GateVerdict:
    """The verdict of :func:`assert_metric` without raising."""
    confidence = _check_gate(result, op, threshold, confidence, n_resamples, seed)
    threshold = float(threshold)
    if not _allow_lost(allow_lost_samples):
        lost = _lost_verdict([result], op, threshold, result.value)
        if lost is not None:
            return lost
    _check_per_sample(result)
    counted = result.n if result.complete else f"{result.n} of {result.n_requested} asked for"
    common = (result.n_requested, tuple(result.lost_samples))
    if result.per_sample and result.ci is not None:  # the value is the mean of the per-sample values
        lower = op in (">=", ">")
        bound = one_sided_bound(result.per_sample, lower=lower, confidence=confidence,
                                n_resamples=n_resamples, seed=seed)
        side = "lower" if lower else "upper"
        desc = (f"{result.name}: one-sided {confidence:.0%} {side} bound of the mean = {bound:.6g} "
                f"(mean {result.value:.6g}, n={counted}) must be {op} {threshold:g}")
        return GateVerdict(_OPS[op](bound, threshold), op, threshold, result.value, bound, confidence, result.n, desc,
                           *common)
    desc = (f"{result.name} = {result.value:.6g} must be {op} {threshold:g} "
            f"(no per-sample mean to bootstrap: compared by value, n={counted})")
    return GateVerdict(_OPS[op](result.value, threshold), op, threshold, result.value, None, None, result.n, desc,
                       *common)


def _check_per_sample(result: MetricResult) -> None:
    if result.per_sample and result.sample_names is not None and len(result.sample_names) != len(result.per_sample):
        raise I2IInputError(f"{result.name}: {len(result.per_sample)} per-sample values but "
                            f"{len(result.sample_names)} sample names")


def assert_metric(
    result: MetricResult, op: str, threshold: float, *, confidence: float = 0.95,
    n_resamples: int = 2000, seed: int = 0, allow_lost_samples: bool | None = None,
) -> GateVerdict:
    """Assert that ``result`` clears ``threshold`` with the given confidence.

    Args:
        result: a per-sample metric result (or a set metric, gated on its value).
        op: one of ``">="``, ``">"``, ``"<="``, ``"<"``.
        threshold: the bound to clear.
        confidence: one-sided confidence of the bootstrap bound (default 0.95).
        n_resamples, seed: bootstrap resamples and seed (same seed, same verdict).
        allow_lost_samples: gate a result that lost samples (``n < n_requested``) on the samples it
            has; ``None`` (default): the session's policy (:func:`set_policy`), else ``False``.

    Returns:
        The :class:`GateVerdict` when the gate passes.

    Raises:
        MetricGateError: the bound does not clear the threshold, or the result lost samples and
            that was not allowed (the message has the numbers, or names the lost samples).
        I2IInputError: a bad argument (named): unknown operator, non-finite threshold,
            ``confidence`` outside (0, 1), ``n_resamples`` < 2, a bad seed.

    Example:
        >>> assert_metric(pytest_i2i.ssim(targets, outputs), ">=", 0.8)   # doctest: +SKIP
    """
    __tracebackhide__ = True  # pytest shows the caller's line and this message, not this function
    verdict = check_metric(result, op, threshold, confidence=confidence, n_resamples=n_resamples, seed=seed,
                           allow_lost_samples=allow_lost_samples)
    _record(result, verdict, "bootstrap bound" if verdict.bound is not None else "value")
    if not verdict.passed:
        raise MetricGateError(_failure_message(result, verdict), verdict)
    return verdict


def check_no_regression(
    candidate: MetricResult, baseline: MetricResult, *, margin: float = 0.0, confidence: float = 0.95,
    n_resamples: int = 2000, seed: int = 0, allow_lost_samples: bool | None = None,
) -> GateVerdict:
    """The verdict of :func:`assert_no_regression` without raising."""
    import numpy as np

    confidence = _check_gate(candidate, ">=", 0.0, confidence, n_resamples, seed, "candidate")
    if not isinstance(baseline, MetricResult):
        raise I2IInputError(f"gate: baseline must be a MetricResult, got {type(baseline).__name__}")
    margin = check_finite("margin", margin, "gate", low=0.0)
    if candidate.name != baseline.name:
        raise I2IInputError(f"cannot compare {candidate.name} with {baseline.name}")
    allowed = _allow_lost(allow_lost_samples)
    if not allowed:
        lost = _lost_verdict([candidate, baseline], ">=", -margin, candidate.value)
        if lost is not None:
            return lost
    better = 1.0 if candidate.higher_is_better else -1.0
    if candidate.per_sample and baseline.per_sample:
        for r in (candidate, baseline):
            _check_per_sample(r)
        cand, base, dropped = paired_values(candidate, baseline, allow_missing=allowed)
        diff = better * (cand - base)
        if not np.isfinite(diff).all():
            raise I2IInputError(f"{candidate.name}: non-finite per-sample values cannot be compared")
        bound = one_sided_bound(diff, lower=True, confidence=confidence, n_resamples=n_resamples, seed=seed)
        note = f"; {dropped} samples without a partner left out" if dropped else ""
        desc = (f"{candidate.name}: paired bootstrap, one-sided {confidence:.0%} lower bound of the improvement "
                f"(candidate − baseline, {'higher' if better > 0 else 'lower'} is better) = {bound:.6g} over "
                f"n={diff.size} pairs must be >= −{margin:g} (candidate {candidate.value:.6g}, "
                f"baseline {baseline.value:.6g}{note})")
        return GateVerdict(bound >= -margin, ">=", -margin, candidate.value, bound, confidence, int(diff.size), desc,
                           candidate.n_requested, tuple(candidate.lost_samples + baseline.lost_samples))
    improvement = better * (candidate.value - baseline.value)
    desc = (f"{candidate.name}: candidate {candidate.value:.6g} vs baseline {baseline.value:.6g}: improvement "
            f"{improvement:.6g} must be >= −{margin:g} (no per-sample values: compared by value)")
    return GateVerdict(improvement >= -margin, ">=", -margin, candidate.value, None, None, candidate.n, desc,
                       candidate.n_requested, tuple(candidate.lost_samples + baseline.lost_samples))


def paired_values(candidate: MetricResult, baseline: MetricResult, *, allow_missing: bool = False):
    """``(candidate values, baseline values, number left out)``: the per-sample values of two results
    paired sample by sample, as float64 arrays.

    Results with the same sample names in the same order (or no names and equal lengths) pair
    position by position, duplicates included. Otherwise samples pair by name: a name that occurs
    more than once on either side is refused (which of its values pairs with which is unknown),
    and so are names found on one side only, unless ``allow_missing`` (then they are left out).

    Raises:
        I2IInputError: duplicate names, or samples on one side only; the message names them.
    """
    import numpy as np

    cv, bv = list(candidate.per_sample or []), list(baseline.per_sample or [])
    cn, bn = candidate.sample_names, baseline.sample_names
    if (cn is None and bn is None and len(cv) == len(bv)) or (cn is not None and cn == bn):
        return np.asarray(cv, dtype=np.float64), np.asarray(bv, dtype=np.float64), 0
    if cn is None or bn is None:
        raise I2IInputError(f"{candidate.name}: the {'candidate' if cn is None else 'baseline'} has no sample "
                            "names and the two results differ in length or names: their samples cannot be paired")
    for side, names in (("candidate", cn), ("baseline", bn)):
        seen: dict[str, int] = {}
        for name in names:
            seen[name] = seen.get(name, 0) + 1
        dup = [f"{k!r} ({v}x)" for k, v in seen.items() if v > 1]
        if dup:
            raise I2IInputError(f"{candidate.name}: the {side} names {len(dup)} samples more than once "
                                f"({', '.join(dup[:5])}{', ...' if len(dup) > 5 else ''}) and the two results do "
                                "not list their samples in the same order: which values pair is unknown")
    index_b = {name: k for k, name in enumerate(bn)}
    only = sorted(set(cn) ^ set(bn))
    if only and not allow_missing:
        raise I2IInputError(f"candidate and baseline {candidate.name} cover different samples "
                            f"({len(only)} on one side only, e.g. {only[:5]})")
    common = [(k, index_b[name]) for k, name in enumerate(cn) if name in index_b]
    if not common:
        raise I2IInputError(f"candidate and baseline {candidate.name} have no sample in common")
    return (np.asarray([cv[k] for k, _ in common], dtype=np.float64),
            np.asarray([bv[j] for _, j in common], dtype=np.float64), len(cn) + len(bn) - 2 * len(common))


def assert_no_regression(
    candidate: MetricResult, baseline: MetricResult, *, margin: float = 0.0, confidence: float = 0.95,
    n_resamples: int = 2000, seed: int = 0, allow_lost_samples: bool | None = None,
) -> GateVerdict:
    """Assert the candidate is not worse than the baseline by more than ``margin``.

    A paired bootstrap over samples (matched by ``sample_names``, see :func:`paired_values`): the
    one-sided lower confidence bound of the mean improvement must be ≥ −margin. Direction follows
    ``higher_is_better``. A side that lost samples fails the gate unless ``allow_lost_samples``
    (then only the samples both sides have are paired).

    Raises:
        MetricGateError: a regression beyond ``margin`` is supported by the data, or samples
            were lost and that was not allowed.
        I2IInputError: the results are of different metrics or samples, a sample name occurs
            twice, or a bad argument (named).
    """
    __tracebackhide__ = True  # pytest shows the caller's line and this message, not this function
    verdict = check_no_regression(candidate, baseline, margin=margin, confidence=confidence,
                                  n_resamples=n_resamples, seed=seed, allow_lost_samples=allow_lost_samples)
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

    ``check`` is ``{"op", "threshold", "passed", "gate", "bound", "confidence", "n"}``, plus
    ``"n_requested"`` and ``"lost_samples"`` when the result lost samples.
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
    check = {"op": verdict.op, "threshold": verdict.threshold, "passed": verdict.passed, "gate": gate,
             "bound": verdict.bound, "confidence": verdict.confidence, "n": verdict.n}
    if verdict.lost_samples or (verdict.n_requested or 0) > verdict.n:
        check.update(n_requested=verdict.n_requested, lost_samples=list(verdict.lost_samples))
    record_check(result, check)


def _failure_message(result: MetricResult, verdict: GateVerdict) -> str:
    from pytest_i2i.explain import explain_result

    return "\n".join([f"gate failed: {verdict.description}", *explain_result(result)])
