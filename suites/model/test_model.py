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
    """The same inputs, seed and batch give the same outputs, bit for bit.

    The session's first model call is repeated with the same samples (kernels pick their algorithm
    by batch size, so outputs of the same sample in batches of 2 and 3 may differ in the last bits:
    that is not nondeterminism). When every output came from the cache, the first samples are
    generated twice in one batch and the two runs compared."""
    texts = i2i_dataset.texts(i2i_generator.text_field)
    inputs = i2i_dataset.inputs()

    def run(indices):
        return generate(i2i_generator, inputs.subset(indices), texts=None if texts is None else
                        [texts[i] for i in indices], batch_size=len(indices))

    if i2i_outputs.batches:
        batch = i2i_outputs.batches[0]
        first = [i2i_outputs.outputs[i] for i in batch]
    else:
        batch = [i for i in range(len(i2i_dataset)) if i2i_outputs.outputs[i] is not None][:2]
        if not batch:
            pytest.skip("no sample has an output")
        first = run(batch).outputs
    again = run(batch)
    assert again.batches == [list(range(len(batch)))], f"the batch {batch} was not regenerated in one call"
    for j, i in enumerate(batch):
        assert again.outputs[j] is not None, f"{i2i_dataset.uids[i]}: {again.errors.get(j)}"
        assert torch.equal(first[j], again.outputs[j]), (
            f"{i2i_dataset.uids[i]}: outputs differ between two runs with one seed and one batch "
            f"(max difference {float((first[j] - again.outputs[j]).abs().max()):.3g})")


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
