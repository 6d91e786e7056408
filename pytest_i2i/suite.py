"""The ready-made model suite's metric groups and gates, derived from the metric registry.

``suites/model`` has one test per (group, metric) for every registered metric whose data the
session can supply (``MetricSpec.args``) and that needs no extra network (``MetricSpec.required``),
so a metric registered with :func:`pytest_i2i.register_metric` is gated there with no other
change. Groups follow from what a metric compares:

* ``fidelity_to_target``: paired metrics against the targets (SSIM, L1, ...);
* ``fidelity_to_input``: paired metrics against the inputs (CLIP-I, DINO-I, ...);
* ``instruction_following``: metrics of the outputs against texts (CLIP direction, CLIPScore);
* ``realism``: set metrics (FID, KID, IS, ...).

Standard library and pytest only at import (the registry is stdlib-only).
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_i2i.metrics.registry import MetricSpec, metric_spec, metric_specs

GROUPS = ("fidelity_to_target", "fidelity_to_input", "instruction_following", "realism")


def group_of(spec: MetricSpec) -> str | None:
    """The suite group of a metric, or ``None`` when the session cannot call it without arguments."""
    if not spec.args or spec.required or "outputs" not in spec.args:
        return None
    if spec.kind in ("set", "single-set"):
        return "realism"
    if spec.kind in ("text-image", "edit-direction"):
        return "instruction_following"
    if spec.kind == "paired":
        return "fidelity_to_target" if "targets" in spec.args else "fidelity_to_input"
    return None


def suite_metrics(group: str) -> list[str]:
    """Names of the registered metrics of a suite group (at collection time, after conftests load)."""
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; known: {', '.join(GROUPS)}")
    return [s.name for s in metric_specs() if group_of(s) == group]


def gate(request: pytest.FixtureRequest, name: str) -> Any:
    """Compute metric ``name`` on the model's outputs and gate it with its ``[tool.i2i.thresholds]``
    entry: by the metric's direction, with a one-sided bootstrap bound of the mean for per-sample
    metrics. Without an entry the value is computed and reported and the test is skipped."""
    __tracebackhide__ = True  # a failing gate shows the test and the explanation, not this helper
    from pytest_i2i.gates import assert_metric

    spec = metric_spec(name)
    metric = request.getfixturevalue(name)  # first: the reports then list the test under its metric
    thresholds = request.getfixturevalue("i2i_thresholds")
    _skip_if_too_small(request, spec)
    result = metric()
    entry = thresholds.get(name)
    if entry is None:
        pytest.skip(f"{name} = {result.value:.4g}: no threshold for {name} in [tool.i2i.thresholds]")
    op = ">=" if result.higher_is_better else "<="
    return assert_metric(result, op, entry["value"], confidence=entry.get("confidence", 0.95),
                         seed=request.getfixturevalue("i2i_options").seed)


def no_regression(request: pytest.FixtureRequest, name: str) -> Any:
    """The candidate's ``name`` is not worse than the baseline's beyond its ``margin``
    (paired bootstrap); skipped without ``--i2i-baseline``."""
    __tracebackhide__ = True
    from pytest_i2i.gates import assert_no_regression

    metric = request.getfixturevalue(name)  # first: the reports then list the test under its metric
    options = request.getfixturevalue("i2i_options")
    if not options.baseline:
        pytest.skip("no --i2i-baseline given")
    _skip_if_too_small(request, metric_spec(name))
    candidate, baseline = metric(), metric.on_baseline()
    margin = request.getfixturevalue("i2i_thresholds").get(name, {}).get("margin", 0.0)
    return assert_no_regression(candidate, baseline, margin=margin, seed=options.seed)


def gated_names(config: pytest.Config) -> list[str]:
    """The metrics with a ``[tool.i2i.thresholds]`` entry that the suite can compute: the
    no-regression tests run for exactly these."""
    from pytest_i2i.plugin import SESSION_KEY

    state = config.stash.get(SESSION_KEY, None)
    thresholds = state.thresholds if state is not None else {}
    return [name for name in sorted(thresholds) if group_of(metric_spec(name)) is not None]


def _skip_if_too_small(request: pytest.FixtureRequest, spec: MetricSpec) -> None:
    if not spec.min_size:
        return
    outputs = request.getfixturevalue("i2i_outputs")
    sides = [min(o.shape[-2:]) for o in outputs.outputs if o is not None]
    if sides and min(sides) < spec.min_size:
        pytest.skip(f"{spec.name} needs images of at least {spec.min_size} px on each side; "
                    f"the smallest output is {min(sides)} px")
