"""The ready-made model suite: ``pytest suites/model --i2i-model=ckpt.pt [--i2i-data=...] [--i2i-baseline=...]``.

Thresholds come from ``[tool.i2i.thresholds]`` in pyproject.toml (``metric = value`` or
``metric = {value = ..., confidence = 0.95, margin = 0.0}``), never from this file. Every registered
metric the session can compute has a test (see :mod:`pytest_i2i.suite`): a metric without a
threshold is still computed and reported, and its test is skipped with the value shown. Per-sample
metrics are gated with a one-sided bootstrap bound (``assert_metric``), set metrics (FID, FD-ViT)
by value; metrics whose backbone weights are missing are skipped with the file to install (or
fail under ``--i2i-require-weights``). With ``--i2i-baseline``, every metric with a threshold is
also tested for no regression (paired bootstrap, ``margin`` from its entry).
"""

from __future__ import annotations

import pytest
import torch

from pytest_i2i.generators import generate
from pytest_i2i.suite import gate, gated_names, no_regression, suite_metrics


def pytest_generate_tests(metafunc):
    if "regression_metric" in metafunc.fixturenames:
        metafunc.parametrize("regression_metric", gated_names(metafunc.config))


def test_every_sample_generates_a_valid_image(i2i_outputs, i2i_dataset):
    """Output sanity: no exception, no NaN/Inf, right shape and range, for every sample."""
    failed = {i2i_dataset.uids[i]: msg for i, msg in i2i_outputs.errors.items()}
    assert not failed, f"{len(failed)} of {len(i2i_dataset)} samples failed: " + "; ".join(
        f"{uid}: {msg}" for uid, msg in sorted(failed.items()))


def test_deterministic_under_fixed_seed(i2i_generator, i2i_dataset, i2i_outputs, i2i_options):
    """The same inputs and seed give the same outputs (first two samples regenerated)."""
    k = min(2, len(i2i_dataset))
    texts = i2i_dataset.texts(i2i_generator.text_field)
    again = generate(i2i_generator, i2i_dataset.inputs().subset(range(k)),
                     texts=None if texts is None else texts[:k], batch_size=i2i_options.batch_size)
    for i in range(k):
        first, second = i2i_outputs.outputs[i], again.outputs[i]
        if first is None or second is None:
            continue
        assert torch.equal(first, second), f"{i2i_dataset.uids[i]}: outputs differ between two runs with one seed"


@pytest.mark.parametrize("name", suite_metrics("fidelity_to_target"))
def test_fidelity_to_target(request, name):
    gate(request, name)


@pytest.mark.parametrize("name", suite_metrics("fidelity_to_input"))
def test_fidelity_to_input(request, name):
    gate(request, name)


@pytest.mark.parametrize("name", suite_metrics("instruction_following"))
def test_instruction_following(request, name):
    gate(request, name)


@pytest.mark.parametrize("name", suite_metrics("realism"))
def test_realism_against_targets(request, name):
    gate(request, name)


def test_no_regression_against_baseline(request, regression_metric):
    no_regression(request, regression_metric)
