"""The property battery over every registered metric (``pytest_i2i.testing``): identity, symmetry,
batch-size independence, JSON round trip, bad input, provenance.

No metric is listed here: a metric is covered the moment it is registered. Backbone metrics run on
seeded random weights (SYNTHETIC, UNCALIBRATED): these tests check properties, not values."""

from __future__ import annotations

import pytest

from pytest_i2i.testing import cases, check_property

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("metric, prop", cases())
def test_metric_property(metric, prop):
    check_property(metric, prop)


def test_every_registered_metric_is_covered():
    from pytest_i2i import list_metrics

    covered = {m for m, _ in cases()}
    assert covered == set(list_metrics())
    assert {p for m, p in cases() if m == "ssim"} == {"identity", "symmetry", "batch_size", "json", "bad_input",
                                                       "provenance"}


def test_a_property_that_does_not_hold_fails():
    """The battery can fail: a registered metric that breaks its declared symmetry is caught."""
    import torch

    from pytest_i2i import register_metric
    from pytest_i2i.metrics.paired import paired_metric
    from pytest_i2i.metrics.registry import unregister_metric

    def lopsided(a, b, *, batch_size=16, seed=0):  # SYNTHETIC: mean of a minus half the mean of b
        return paired_metric("lopsided_test_metric", lambda x, y: x.mean((1, 2, 3)).double() - 0.5 * y.mean((1, 2, 3)),
                             False, a, b, batch_size=batch_size, seed=seed)

    register_metric(name="lopsided_test_metric", fn=lopsided, kind="paired", args=("targets", "outputs"),
                    higher_is_better=False, symmetric=True)
    try:
        with pytest.raises(AssertionError, match="lopsided_test_metric"):
            check_property("lopsided_test_metric", "symmetry")
        check_property("lopsided_test_metric", "json")
    finally:
        unregister_metric("lopsided_test_metric")
    assert torch.is_tensor(torch.zeros(1))
