"""Human-readable explanations of a :class:`MetricResult`, used by failing asserts and gates.

Standard library only: the pytest plugin calls this from ``pytest_assertrepr_compare``.
"""

from __future__ import annotations

import math

from pytest_i2i.result import UNCALIBRATED_WARNING, MetricResult

WORST_K = 5


def worst_samples(result: MetricResult, k: int = WORST_K) -> list[tuple[str, float]]:
    """The ``k`` samples that pull the metric the wrong way (lowest when higher is better)."""
    if not result.per_sample:
        return []
    names = result.sample_names or [f"sample[{i}]" for i in range(len(result.per_sample))]
    pairs = [(n, v) for n, v in zip(names, result.per_sample) if not math.isnan(v)]
    pairs.sort(key=lambda p: p[1], reverse=not result.higher_is_better)
    return pairs[:k]


def explain_result(result: MetricResult, k: int = WORST_K) -> list[str]:
    """Lines describing ``result``, most important first and few of them (pytest shows the first 8
    lines of an assertion explanation unless ``-vv``): value, direction, uncertainty and n on one
    line, then the samples lost (if any) and the worst samples, a line each, then backbone and
    calibration, resize and warnings."""
    head = f"{result.name} = {result.value:.6g} ({'higher' if result.higher_is_better else 'lower'} is better)"
    if result.ci is not None:
        head += f", {result.confidence:.0%} CI of the mean: [{result.ci[0]:.6g}, {result.ci[1]:.6g}]"
    if result.std is not None:
        head += f", std {result.std:.6g}"
    lines = [head + f", n = {result.n}"]
    if not result.complete:
        lines.append(f"  LOST SAMPLES: {result.lost_description()}")
    worst = worst_samples(result, k)
    if worst:
        lines.append(f"  worst {len(worst)} samples: " + ", ".join(f"{name}: {value:.6g}" for name, value in worst))
    if result.backbone:
        calib = "calibrated (published weights)" if result.calibrated else "UNCALIBRATED weights: smoke-test only"
        lines.append(f"  backbone: {result.backbone}, {calib}, weights sha256 {str(result.weights_sha256)[:16]}")
    if result.resize:
        lines.append(f"  resize: {result.resize}")
    lines += [f"  warning: {w}" for w in result.warnings if w != UNCALIBRATED_WARNING]
    return lines


def explain_comparison(op: str, left: object, right: object) -> list[str] | None:
    """The ``pytest_assertrepr_compare`` body: a rich diff when a side is a :class:`MetricResult`."""
    if isinstance(left, MetricResult):
        result, other, shown_op = left, right, op
    elif isinstance(right, MetricResult):
        result, other, shown_op = right, left, _mirror(op)
    else:
        return None
    if not isinstance(other, (int, float, MetricResult)):
        return None
    threshold = other.value if isinstance(other, MetricResult) else float(other)
    head = f"{result.name} {result.value:.6g} {shown_op} {threshold:g} failed"
    if result.ci is not None:
        low, high = result.ci
        head += " (compared: the mean"
        if low <= threshold <= high:
            head += f"; the threshold lies inside its {result.confidence:.0%} CI: more samples may settle it"
        head += ")"
    return [head, *explain_result(result)]


def _mirror(op: str) -> str:
    return {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}.get(op, op)
