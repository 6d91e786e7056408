"""Example property suite for image metrics, built on ``pytest_i2i.strategies``.

    pytest suites/properties --hypothesis-profile=i2i-ci [-k ssim]

Copy this file and put your own metric into ``METRICS``: a function ``(a, b) -> (N,)`` on image
batches ``(N, 3, H, W)`` in [0, 1] and whether larger means more similar. Each property is a
hypothesis test; a failure shows the smallest failing example hypothesis found (smallest area,
weakest magnitude). The nuisance-vs-edit tests for the 1-pixel shift and the resize round trip
are expected to fail for pixel metrics on textured photos (measured; see README.md here): they
are marked ``xfail`` so that the suite documents the finding instead of hiding it.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pytest_i2i import strategies as st_i2i
from pytest_i2i.metrics.functional import paired as F
from pytest_i2i.perturb import local_edit

# name -> (per-sample function, higher_is_more_similar)
METRICS = {
    "l1": (F.l1_per_sample, False),
    "psnr": (F.psnr_per_sample, True),
    "ssim": (F.ssim_per_sample, True),
    "ciede2000": (F.ciede2000_per_sample, False),
}
IMAGES = st_i2i.images(size=64)


def distance(name: str, a: torch.Tensor, b: torch.Tensor) -> float:
    """The metric as a distance: its value, or minus its value for similarities."""
    fn, similar = METRICS[name]
    value = float(fn(a[None], b[None])[0])
    return -value if similar else value


@pytest.mark.parametrize("name", METRICS)
@given(img=IMAGES)
def test_identity(name, img):
    """Identical images are at distance 0 (similarity 1; PSNR +inf)."""
    fn, similar = METRICS[name]
    value = float(fn(img[None], img[None])[0])
    if name == "psnr":
        assert math.isinf(value)
    else:
        assert value == pytest.approx(1.0 if similar else 0.0, abs=1e-9)


@pytest.mark.parametrize("name", METRICS)
@given(a=IMAGES, b=st_i2i.images(size=64, crops=True))
def test_symmetry(name, a, b):
    assert distance(name, a, b) == pytest.approx(distance(name, b, a), abs=1e-9)


@pytest.mark.parametrize("name", METRICS)
@given(edit=st_i2i.local_edits(IMAGES, ops=["colour_shift", "gaussian_noise"], area=(0.005, 0.1)),
       grow=st.integers(1, 4))
def test_larger_edits_move_the_metric_more(name, edit, grow):
    """Growing the edited region (the mask dilated by ``grow`` pixels; same op, magnitude and
    seed, so the old pixels change identically) does not bring the images closer."""
    from scipy.ndimage import binary_dilation

    from pytest_i2i.perturb import OPS

    op = edit.params["op"]
    larger = torch.from_numpy(binary_dilation(edit.mask.numpy(), iterations=grow))
    bigger = local_edit(edit.original, op, mask=larger, magnitude=edit.params[OPS[op].magnitude],
                        seed=edit.params["seed"])
    assert distance(name, edit.original, bigger.image) >= distance(name, edit.original, edit.image) - 1e-9


@pytest.mark.parametrize("nuisance", [
    "jpeg_q95", "global_brightness",
    pytest.param("shift", marks=pytest.mark.xfail(reason="measured: a 1-px shift moves pixel metrics more than "
                                                  "a 10 % object on textured photos", strict=False)),
    pytest.param("resize_round_trip", marks=pytest.mark.xfail(reason="measured: a resize round trip blurs "
                                                              "textures more than a 10 % object moves pixels",
                                                              strict=False)),
])
@pytest.mark.parametrize("name", METRICS)
@given(edit=st_i2i.local_edits(IMAGES, ops="insert_object", area=0.1, magnitude=1.0))
def test_nuisances_move_the_metric_less_than_a_visible_edit(name, nuisance, edit):
    from pytest_i2i.perturb import apply_nuisance

    moved = apply_nuisance(edit.original, nuisance, seed=edit.params["seed"])
    assert distance(name, edit.original, edit.image) > distance(name, edit.original, moved.image)
