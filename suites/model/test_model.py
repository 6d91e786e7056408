"""The ready-made model suite: ``pytest suites/model --i2i-model=ckpt.pt [--i2i-data=...] [--i2i-baseline=...]``.

Thresholds come from ``[tool.i2i.thresholds]`` in pyproject.toml (``metric = value`` or
``metric = {value = ..., confidence = 0.95, margin = 0.0}``), never from this file. A metric
without a threshold is still computed and reported; its test is skipped with the value shown.
Per-sample metrics are gated with a one-sided bootstrap bound (``assert_metric``), set metrics
(FID, FD-ViT) by value; metrics whose backbone weights are missing are skipped with the file to
install (or fail under ``--i2i-require-weights``).
"""

from __future__ import annotations

import pytest
import torch

from pytest_i2i.gates import assert_metric, assert_no_regression
from pytest_i2i.generators import generate


def _gate(request, i2i_thresholds, name):
    metric = request.getfixturevalue(name)
    result = metric()
    spec = i2i_thresholds.get(name)
    if spec is None:
        pytest.skip(f"{name} = {result.value:.4g}: no threshold for {name} in [tool.i2i.thresholds]")
    op = ">=" if result.higher_is_better else "<="
    assert_metric(result, op, spec["value"], confidence=spec.get("confidence", 0.95),
                  seed=request.getfixturevalue("i2i_options").seed)


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


@pytest.mark.parametrize("name", ["ssim", "psnr", "l1", "ciede2000"])
def test_fidelity_to_target(request, i2i_thresholds, name):
    _gate(request, i2i_thresholds, name)


@pytest.mark.parametrize("name", ["dino_image", "clip_image"])
def test_fidelity_to_input(request, i2i_thresholds, name):
    _gate(request, i2i_thresholds, name)


def test_instruction_following(request, i2i_thresholds):
    _gate(request, i2i_thresholds, "clip_direction")


@pytest.mark.parametrize("name", ["fid", "fd_vit"])
def test_realism_against_targets(request, i2i_thresholds, name):
    _gate(request, i2i_thresholds, name)


@pytest.mark.parametrize("name", ["ssim", "ciede2000", "dino_image", "clip_direction"])
def test_no_regression_against_baseline(request, i2i_thresholds, i2i_options, name):
    if not i2i_options.baseline:
        pytest.skip("no --i2i-baseline given")
    metric = request.getfixturevalue(name)
    candidate, baseline = metric(), metric.on_baseline()
    margin = i2i_thresholds.get(name, {}).get("margin", 0.0)
    assert_no_regression(candidate, baseline, margin=margin, seed=i2i_options.seed)
