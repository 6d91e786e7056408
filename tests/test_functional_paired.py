"""Tests of the weight-free paired metrics against their reference implementations.

References: torchmetrics (SSIM, MS-SSIM, PSNR), skimage (CIELAB, CIEDE2000), numpy (L1, PSNR).
Every comparison states its tolerance; the comments give the differences measured when the
tests were written (torch 2.x CPU, torchmetrics 1.9, skimage 0.26).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.transform import resize
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure as tm_ms_ssim,
)
from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

from pytest_i2i.images.colour import ciede2000_lab
from pytest_i2i.metrics.functional.paired import (
    ciede2000_map,
    ciede2000_per_sample,
    l1_per_sample,
    ms_ssim_per_sample,
    psnr_per_sample,
    rgb_to_lab,
    ssim_per_sample,
)

F64 = torch.float64


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


def _astronaut(size: int) -> torch.Tensor:
    """The skimage astronaut photo, area-resized to ``size x size``, as a (1, 3, H, W) float64 tensor."""
    image = resize(skdata.astronaut(), (size, size), anti_aliasing=True)  # float64 in [0, 1]
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0)


def _distort(x: torch.Tensor, seed: int) -> torch.Tensor:
    """A plausible model output: blurred, colour-shifted and noisy, clamped to [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    shift = torch.tensor([0.03, -0.02, 0.05], dtype=x.dtype).view(1, 3, 1, 1)
    noise = 0.05 * torch.randn(x.shape, generator=g, dtype=x.dtype)
    return (0.9 * blurred + shift + noise).clamp(0.0, 1.0)


def _random_pair(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g, dtype=F64)
    b = (a + 0.2 * torch.randn(shape, generator=g, dtype=F64)).clamp(0.0, 1.0)
    return a, b


def _special_colours() -> torch.Tensor:
    """Black, white, greys, primaries, secondaries and values on both sides of the sRGB knee."""
    knee = 0.04045
    rgb = [
        (0, 0, 0), (1, 1, 1), (0.5, 0.5, 0.5), (knee, knee, knee), (knee + 1e-9, knee, knee - 1e-9),
        (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1), (1, 0, 1),
        (0.2, 0.02, 0.3), (0.01, 0.005, 0.002), (0.9, 0.1, 0.95), (0.3, 0.3, 0.31), (0.001, 0.0, 0.0),
    ]  # fmt: skip
    return torch.tensor(rgb, dtype=F64).T.reshape(1, 3, 4, 4)


@pytest.fixture(scope="module")
def small_pairs() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Random non-square batch, the astronaut at 64 px with a distortion, and special colours."""
    photo = _astronaut(64)
    colours = _special_colours()
    return [
        _random_pair((3, 3, 24, 29), seed=0),
        (photo, _distort(photo, seed=1)),
        (colours, colours.roll(shifts=1, dims=-1)),
    ]


@pytest.fixture(scope="module")
def ms_ssim_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 176 x 176 pairs (the smallest size MS-SSIM accepts): the astronaut and random noise."""
    photo = _astronaut(176)
    rand_a, rand_b = _random_pair((1, 3, 176, 176), seed=2)
    return torch.cat([photo, rand_a]), torch.cat([_distort(photo, seed=3), rand_b])


def _nhwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).numpy()


def _assert_per_sample(values: torch.Tensor, n: int) -> None:
    assert values.shape == (n,)
    assert values.dtype == F64
    assert values.device.type == "cpu"


# --------------------------------------------------------------------------------------------
# L1 and PSNR
# --------------------------------------------------------------------------------------------


def test_l1_matches_numpy(small_pairs):
    # tolerance 1e-12 abs; measured ~3e-17.
    for a, b in small_pairs:
        got = l1_per_sample(a, b)
        _assert_per_sample(got, a.shape[0])
        expected = np.abs(a.numpy() - b.numpy()).mean(axis=(1, 2, 3))
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)


def test_psnr_matches_numpy_and_torchmetrics(small_pairs):
    for a, b in small_pairs:
        got = psnr_per_sample(a, b)
        _assert_per_sample(got, a.shape[0])
        mse = ((a.numpy() - b.numpy()) ** 2).mean(axis=(1, 2, 3))
        # tolerance 1e-10 abs vs the float64 numpy formula; measured 0.
        np.testing.assert_allclose(got.numpy(), 10 * np.log10(1.0 / mse), rtol=0, atol=1e-10)
        # torchmetrics turns 10 / ln(10) into a float32 constant even for float64 inputs, so it is
        # only float32-accurate: tolerance 1e-6 relative; measured ~5e-8 relative (~9e-7 dB).
        reference = tm_psnr(a, b, data_range=1.0, reduction="none", dim=(1, 2, 3))
        np.testing.assert_allclose(got.numpy(), reference.numpy(), rtol=1e-6, atol=0)


def test_psnr_data_range_scales_as_formula(small_pairs):
    a, b = small_pairs[0]
    # 10 log10(R^2 / MSE) = PSNR(R=1) + 20 log10(R); tolerance 1e-10 abs.
    shift = 20 * np.log10(255.0)
    np.testing.assert_allclose(
        psnr_per_sample(a, b, data_range=255.0).numpy(), psnr_per_sample(a, b).numpy() + shift, rtol=0, atol=1e-10
    )


# --------------------------------------------------------------------------------------------
# SSIM and MS-SSIM
# --------------------------------------------------------------------------------------------


def test_ssim_matches_torchmetrics_float64(small_pairs):
    # torchmetrics computes in the input dtype, so float64 inputs give an exact reference.
    # tolerance 1e-10 abs; measured ~3e-16.
    for a, b in small_pairs[:2]:
        got = ssim_per_sample(a, b)
        _assert_per_sample(got, a.shape[0])
        reference = tm_ssim(a, b, data_range=1.0, reduction="none")
        np.testing.assert_allclose(got.numpy(), reference.numpy(), rtol=0, atol=1e-10)


def test_ssim_matches_torchmetrics_float32(small_pairs):
    # float32 inputs: ours still computes in float64, torchmetrics in float32.
    # tolerance 1e-5 abs; measured ~2e-6 (torchmetrics' float32 rounding).
    for a, b in small_pairs[:2]:
        a32, b32 = a.float(), b.float()
        reference = tm_ssim(a32, b32, data_range=1.0, reduction="none").double()
        np.testing.assert_allclose(ssim_per_sample(a32, b32).numpy(), reference.numpy(), rtol=0, atol=1e-5)


def test_ssim_matches_torchmetrics_other_window(small_pairs):
    # torchmetrics sizes its Gaussian window from sigma: 2 * int(3.5 * 0.8 + 0.5) + 1 = 7.
    # tolerance 1e-10 abs; measured ~2e-16.
    a, b = small_pairs[0]
    got = ssim_per_sample(a, b, kernel_size=7, sigma=0.8, k1=0.02, k2=0.05)
    reference = tm_ssim(a, b, sigma=0.8, kernel_size=7, k1=0.02, k2=0.05, data_range=1.0, reduction="none")
    np.testing.assert_allclose(got.numpy(), reference.numpy(), rtol=0, atol=1e-10)


def test_ms_ssim_matches_torchmetrics(ms_ssim_pair):
    a, b = ms_ssim_pair
    got = ms_ssim_per_sample(a, b)
    _assert_per_sample(got, 2)
    # torchmetrics keeps the betas as float32 (0.0448 -> 0.04479999840...), hence ~1e-10 and
    # not 1e-16: tolerance 1e-8 abs; measured ~2e-9.
    reference = tm_ms_ssim(a, b, data_range=1.0, reduction="none")
    np.testing.assert_allclose(got.numpy(), reference.numpy(), rtol=0, atol=1e-8)
    # float32 inputs (torchmetrics then computes in float32): tolerance 1e-5 abs; measured ~9e-7.
    reference32 = tm_ms_ssim(a.float(), b.float(), data_range=1.0, reduction="none").double()
    np.testing.assert_allclose(ms_ssim_per_sample(a.float(), b.float()).numpy(), reference32.numpy(), atol=1e-5)


def test_ms_ssim_matches_torchmetrics_odd_sizes():
    # Odd sides: the 2x2 pooling must drop the last row/column (floor), as torchmetrics does.
    # tolerance 1e-8 abs, as above.
    a, b = _random_pair((1, 3, 177, 183), seed=5)
    reference = tm_ms_ssim(a, b, data_range=1.0, reduction="none")
    np.testing.assert_allclose(ms_ssim_per_sample(a, b).numpy(), reference.numpy(), rtol=0, atol=1e-8)


def test_ms_ssim_differs_from_single_scale(ms_ssim_pair):
    # Guards against the multi-scale loop silently collapsing to one scale.
    a, b = ms_ssim_pair
    assert (ms_ssim_per_sample(a, b) - ssim_per_sample(a, b)).abs().min() > 1e-3


# --------------------------------------------------------------------------------------------
# CIELAB and CIEDE2000
# --------------------------------------------------------------------------------------------


def test_rgb_to_lab_matches_skimage(small_pairs):
    # tolerance 1e-9 abs (Lab units); measured ~1e-13.
    for a, b in small_pairs:
        for x in (a, b):
            got = rgb_to_lab(x)
            assert got.shape == x.shape and got.dtype == F64
            np.testing.assert_allclose(_nhwc(got), rgb2lab(_nhwc(x)), rtol=0, atol=1e-9)


def test_ciede2000_matches_skimage(small_pairs):
    for a, b in small_pairs:
        reference_map = deltaE_ciede2000(rgb2lab(_nhwc(a)), rgb2lab(_nhwc(b)))
        got_map = ciede2000_map(a, b)
        assert got_map.shape == (a.shape[0], a.shape[2], a.shape[3]) and got_map.dtype == F64
        # tolerance 1e-9 abs per pixel (Delta E units); measured ~2e-13.
        np.testing.assert_allclose(got_map.numpy(), reference_map, rtol=0, atol=1e-9)
        got = ciede2000_per_sample(a, b)
        _assert_per_sample(got, a.shape[0])
        # tolerance 1e-9 abs on the per-image mean; measured ~7e-15.
        np.testing.assert_allclose(got.numpy(), reference_map.mean(axis=(1, 2)), rtol=0, atol=1e-9)


# Lab pairs from Sharma, Wu & Dalal (2005), Table 1 (pairs 1, 7, 9-16, 17, 25): near-opposite hues
# that exercise the hue-wrap branches, a neutral colour (zero chroma) and a large difference.
_SHARMA_LAB_PAIRS = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0009), 7.1792),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.001), 7.1792),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0011), 7.2195),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0012), 7.2195),
    ((50.0, -0.001, 2.49), (50.0, 0.0009, -2.49), 4.8045),
    ((50.0, -0.001, 2.49), (50.0, 0.001, -2.49), 4.8045),
    ((50.0, -0.001, 2.49), (50.0, 0.0011, -2.49), 4.7461),
    ((50.0, 2.5, 0.0), (50.0, 0.0, -2.5), 4.3065),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
]


def test_ciede2000_sharma_pairs():
    lab1 = torch.tensor([p for p, _, _ in _SHARMA_LAB_PAIRS], dtype=F64).T.reshape(1, 3, 1, -1)
    lab2 = torch.tensor([q for _, q, _ in _SHARMA_LAB_PAIRS], dtype=F64).T.reshape(1, 3, 1, -1)
    got = ciede2000_lab(lab1, lab2).flatten().numpy()
    # Published to 4 decimals: tolerance 5e-5 abs (half the last digit); measured 4.1e-5 (pair 7,
    # 2.36686 -> 2.3669), i.e. all round to the published digits.
    np.testing.assert_allclose(got, [e for _, _, e in _SHARMA_LAB_PAIRS], rtol=0, atol=5e-5)
    # skimage on the same Lab values: tolerance 1e-9 abs; measured 0.
    reference = deltaE_ciede2000(_nhwc(lab1), _nhwc(lab2)).flatten()
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-9)


def test_ciede2000_is_symmetric(small_pairs):
    # Every step of the formula treats the two colours alike (sums, products, |differences|),
    # so swapping them should change nothing beyond rounding. tolerance 1e-12 abs; measured
    # exactly 0 (the operations are commutative in IEEE arithmetic as well).
    for a, b in small_pairs:
        np.testing.assert_allclose(
            ciede2000_per_sample(a, b).numpy(), ciede2000_per_sample(b, a).numpy(), rtol=0, atol=1e-12
        )
        np.testing.assert_allclose(ciede2000_map(a, b).numpy(), ciede2000_map(b, a).numpy(), rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# identity, input handling and errors
# --------------------------------------------------------------------------------------------


def test_identity(small_pairs, ms_ssim_pair):
    for a, _ in [*small_pairs, ms_ssim_pair]:
        n = a.shape[0]
        assert torch.equal(l1_per_sample(a, a), torch.zeros(n, dtype=F64))
        assert torch.equal(ciede2000_per_sample(a, a), torch.zeros(n, dtype=F64))
        assert torch.isposinf(psnr_per_sample(a, a)).all()
        if min(a.shape[-2:]) >= 11:
            # The clamp of negative variances can leave cs a rounding error below 1.
            np.testing.assert_allclose(ssim_per_sample(a, a).numpy(), np.ones(n), rtol=0, atol=1e-12)
    a, _ = ms_ssim_pair
    np.testing.assert_allclose(ms_ssim_per_sample(a, a).numpy(), np.ones(a.shape[0]), rtol=0, atol=1e-12)


def test_float32_and_grad_inputs_give_float64_cpu_results(small_pairs):
    a, b = small_pairs[1]
    a32 = a.float().requires_grad_(True)
    for fn in (l1_per_sample, psnr_per_sample, ssim_per_sample, ciede2000_per_sample):
        got = fn(a32, b.float())
        _assert_per_sample(got, 1)
        assert not got.requires_grad
        # float32 rounding of the inputs only: tolerance 1e-4 relative.
        np.testing.assert_allclose(got.numpy(), fn(a, b).numpy(), rtol=1e-4)


@pytest.mark.parametrize("h, w", [(10, 10), (11, 10), (5, 40)])
def test_ssim_rejects_images_smaller_than_window(h, w):
    a = torch.rand(1, 3, h, w)
    with pytest.raises(ValueError, match=f"{h}x{w}"):
        ssim_per_sample(a, a)


def test_ssim_accepts_window_sized_images():
    a, b = _random_pair((2, 3, 11, 11), seed=4)
    # tolerance 1e-10 abs, as above.
    reference = tm_ssim(a, b, data_range=1.0, reduction="none")
    np.testing.assert_allclose(ssim_per_sample(a, b).numpy(), reference.numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("h, w", [(175, 176), (176, 175), (161, 161), (64, 64)])
def test_ms_ssim_rejects_small_images(h, w):
    a = torch.rand(1, 3, h, w)
    with pytest.raises(ValueError, match=r"at least 176x176 pixels; got " + f"{h}x{w}"):
        ms_ssim_per_sample(a, a)
    # torchmetrics rejects the same sizes (its message says "larger than 160", but its check is
    # size // 16 > 10, i.e. size >= 176).
    with pytest.raises(ValueError):
        tm_ms_ssim(a, a, data_range=1.0)


def test_ms_ssim_min_size_follows_betas_and_window():
    a = torch.rand(1, 3, 44, 44)
    assert ms_ssim_per_sample(a, a, betas=(0.5, 0.5, 0.5), kernel_size=11).shape == (1,)
    with pytest.raises(ValueError, match="at least 88x88"):
        ms_ssim_per_sample(a, a, betas=(0.25,) * 4, kernel_size=11)


@pytest.mark.parametrize(
    "fn", [l1_per_sample, psnr_per_sample, ssim_per_sample, ms_ssim_per_sample, ciede2000_per_sample, ciede2000_map]
)
def test_bad_inputs_raise_value_error(fn):
    a = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        fn(a, torch.rand(1, 3, 16, 17))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        fn(a[0], a[0])
    with pytest.raises(ValueError, match="float"):
        fn((a * 255).to(torch.uint8), (a * 255).to(torch.uint8))


def test_bad_arguments_raise_value_error():
    a = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="odd"):
        ssim_per_sample(a, a, kernel_size=10)
    with pytest.raises(ValueError, match="sigma"):
        ssim_per_sample(a, a, sigma=0.0)
    with pytest.raises(ValueError, match="data_range"):
        psnr_per_sample(a, a, data_range=0.0)
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
        rgb_to_lab(torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
        ciede2000_map(torch.rand(1, 4, 4, 4), torch.rand(1, 4, 4, 4))
