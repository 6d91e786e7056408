"""The public paired metrics: inputs, results, CIs and errors (the maths is checked in test_functional_paired)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import pytest_i2i
from pytest_i2i.errors import I2IInputError
from pytest_i2i.metrics.functional import paired as F


@pytest.mark.parametrize("name", ["l1", "psnr", "ssim", "ciede2000"])
def test_paired_metrics_on_photo_folders(photo_folders, name):
    real, fake = photo_folders
    r = getattr(pytest_i2i, name)(real, fake)
    assert r.name == name and r.n == 8 and len(r.per_sample) == 8
    assert r.sample_names == sorted(p.name for p in real.iterdir())
    assert r.ci[0] <= r.value <= r.ci[1]
    assert r.calibrated and r.backbone is None and r.resize == "clean"
    a = pytest_i2i.load_images(real)
    b = pytest_i2i.load_images(fake)
    per_sample = getattr(F, f"{name}_per_sample")(torch.stack(list(a)), torch.stack(list(b)))
    np.testing.assert_allclose(r.per_sample, per_sample.numpy(), rtol=1e-12)
    assert r.value == pytest.approx(float(per_sample.mean()), rel=1e-12)


def test_identity_and_direction():
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert float(pytest_i2i.l1(x, x)) == 0.0
    assert float(pytest_i2i.ssim(x, x)) == pytest.approx(1.0, abs=1e-9)
    assert float(pytest_i2i.ciede2000(x, x)) == 0.0
    p = pytest_i2i.psnr(x, x)
    assert p.value == math.inf and any("non-finite" in w for w in p.warnings)
    assert pytest_i2i.ssim(x, x).higher_is_better and not pytest_i2i.l1(x, x).higher_is_better


def test_ms_ssim_needs_large_images():
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(I2IInputError, match="ms_ssim.*176"):
        pytest_i2i.ms_ssim(x, x)
    big = torch.rand(1, 3, 176, 176, generator=torch.Generator().manual_seed(0))
    assert float(pytest_i2i.ms_ssim(big, big)) == pytest.approx(1.0, abs=1e-9)


def test_mismatched_counts_and_sizes():
    a = torch.rand(3, 3, 32, 32)
    with pytest.raises(I2IInputError, match="mismatched pair counts"):
        pytest_i2i.l1(a, a[:2])
    b = [torch.rand(3, 32, 32), torch.rand(3, 48, 40), torch.rand(3, 32, 32)]
    r = pytest_i2i.l1(a, b, resize="legacy-pytorch")
    assert r.n == 3 and len(r.warnings) == 1 and "pair 1" in r.warnings[0] and "legacy-pytorch" in r.warnings[0]


def test_value_range_declared_for_tanh_outputs():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with pytest.raises(I2IInputError, match="value_range"):
        pytest_i2i.l1(x, x)
    assert float(pytest_i2i.l1(x, x, value_range=(-1, 1))) == 0.0
