"""The perturbation library: exact areas, untouched outsides, stated colour differences, determinism."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from pytest_i2i.errors import I2IInputError, UnknownNameError
from pytest_i2i.metrics.functional.paired import ciede2000_map, lab_to_rgb, rgb_to_lab
from pytest_i2i.perturb import (
    NUISANCES, OPS, REGION_KINDS, apply_nuisance, colour_shift, copy_move, ellipse, erase_fill, given,
    insert_object, local_edit, make_region,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def photos():
    from pytest_i2i.images import sample_images

    s = sample_images(64)
    return [s[i] for i in range(len(s))]


# -- lab_to_rgb ---------------------------------------------------------------------------------


def test_lab_to_rgb_matches_skimage_lab2rgb_and_round_trips():
    from skimage.color import lab2rgb

    g = np.random.default_rng(0)
    lab = np.stack([g.uniform(0, 100, (40, 40)), g.uniform(-110, 110, (40, 40)), g.uniform(-110, 110, (40, 40))], -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about clipped negative Z values
        ref = lab2rgb(lab)
    got = lab_to_rgb(torch.from_numpy(lab).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-12)
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(x)), x, atol=1e-12, rtol=0)


def test_lab_to_rgb_rejects_bad_input():
    with pytest.raises(I2IInputError, match="lab"):
        lab_to_rgb(torch.zeros(1, 2, 4, 4))


# -- regions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(REGION_KINDS))
@pytest.mark.parametrize("size", [(64, 64), (37, 91)])
@pytest.mark.parametrize("area", [0.001, 0.0025, 0.01, 0.05, 0.25, 0.5])
def test_region_area_is_exact(kind, size, area):
    """|mask| = max(1, round(area H W)): within half a pixel, so within 1 % or 1 pixel."""
    region = make_region(kind, size, area, seed=3)
    k = int(region.mask.sum())
    assert k == max(1, round(area * size[0] * size[1]))
    assert abs(k - area * size[0] * size[1]) <= max(0.01 * area * size[0] * size[1], 1.0)
    assert region.mask.dtype == torch.bool and tuple(region.mask.shape) == size
    json.dumps(region.params)


@pytest.mark.parametrize("kind", sorted(REGION_KINDS))
def test_regions_are_deterministic_and_placed_by_seed(kind):
    a, b, c = (make_region(kind, (64, 64), 0.05, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.mask, b.mask) and a.params == b.params
    assert not torch.equal(a.mask, c.mask)


def test_box_is_a_rectangle_plus_a_partial_column():
    r = make_region("box", (50, 50), 0.05, seed=0)
    p = r.params
    ys, xs = torch.nonzero(r.mask, as_tuple=True)
    assert int(ys.min()) == p["top"] and int(xs.min()) == p["left"]
    full = r.mask[p["top"]:p["top"] + p["height"], p["left"]:p["left"] + p["width"]]
    assert bool(full.all()) and p["height"] * p["width"] + p["extra_column"] == 125


def test_region_errors_name_the_argument():
    with pytest.raises(I2IInputError, match="area"):
        ellipse((64, 64), 0.9)
    with pytest.raises(I2IInputError, match="area"):
        ellipse((64, 64), 0.0001)
    with pytest.raises(I2IInputError, match="seed"):
        ellipse((64, 64), 0.1, seed=-1)
    with pytest.raises(I2IInputError, match="size"):
        ellipse((1, 64), 0.1)
    with pytest.raises(UnknownNameError, match="region kind"):
        make_region("star", (64, 64), 0.1)
    with pytest.raises(I2IInputError, match="mask"):
        given(torch.zeros(8, 8, dtype=torch.bool))
    with pytest.raises(I2IInputError, match="mask"):
        given(np.ones((8, 8), dtype=np.float32))


# -- local operations ----------------------------------------------------------------------------


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_op_changes_only_the_mask_and_is_deterministic(op, photos):
    img = photos[1]
    region = make_region("blob", (64, 64), 0.1, seed=5)
    p = local_edit(img, op, mask=region, seed=7)
    q = local_edit(img, op, mask=region, seed=7)
    outside = ~p.mask
    assert torch.equal(p.mask, region.mask)
    assert torch.equal(p.image[:, outside], img[:, outside]), "pixels outside the mask changed"
    assert not torch.equal(p.image[:, p.mask], img[:, p.mask]), "the default magnitude changed nothing"
    assert torch.equal(p.image, q.image) and p.params == q.params
    assert p.image.dtype == torch.float32 and p.image.min() >= 0 and p.image.max() <= 1
    assert p.params["op"] in (op, "brightness_contrast") and json.loads(json.dumps(p.params)) == p.params
    assert p.params["region"]["kind"] == "blob"


@pytest.mark.parametrize("op", ["colour_shift", "gaussian_noise", "local_warp", "copy_move", "patch_shuffle",
                                "insert_object"])
def test_seeded_ops_differ_between_seeds(op, photos):
    region = make_region("ellipse", (64, 64), 0.1, seed=1)
    a = local_edit(photos[0], op, mask=region, seed=1)
    b = local_edit(photos[0], op, mask=region, seed=2)
    assert not torch.equal(a.image, b.image)


@pytest.mark.parametrize("area", [0.001, 0.01, 0.25, 0.5])
def test_local_edit_area_matches_the_request(area, photos):
    p = local_edit(photos[2], "gaussian_noise", area=area, region="ellipse", seed=2)
    assert int(p.mask.sum()) == max(1, round(area * 64 * 64))
    assert torch.equal(p.image[:, ~p.mask], photos[2][:, ~p.mask])


@pytest.mark.parametrize("delta_e", [1.0, 2.3, 5.0, 10.0])
def test_colour_shift_reaches_the_requested_delta_e(delta_e, photos):
    """Tolerance: per pixel within 0.01 ΔE00 for >= 95 % of mask pixels on the bundled photos,
    measured both with ciede2000_map and with skimage.color.deltaE_ciede2000."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    for i, img in enumerate(photos[:4]):
        p = colour_shift(img, ellipse((64, 64), 0.1, seed=i), delta_e=delta_e, seed=i)
        m = p.mask
        ours = ciede2000_map(img[None], p.image[None])[0][m]
        a = rgb2lab(img.permute(1, 2, 0).double().numpy())
        b = rgb2lab(p.image.permute(1, 2, 0).double().numpy())
        ref = torch.from_numpy(deltaE_ciede2000(a, b, channel_axis=-1))[m]
        for measured in (ours, ref):
            within = ((measured - delta_e).abs() <= 0.01).double().mean()
            assert within >= 0.95, f"{i}: only {float(within):.3f} of the pixels within 0.01 of {delta_e}"
            assert abs(float(measured.median()) - delta_e) <= 0.01
        assert p.params["reached_fraction"] == pytest.approx(float(((ours - delta_e).abs() <= 0.01).double().mean()))


def test_copy_move_pastes_the_rolled_image(photos):
    img = photos[3]
    p = copy_move(img, ellipse((64, 64), 0.05, seed=0), seed=4)
    dy, dx = p.params["offset"]
    src = torch.roll(img, shifts=(-dy, -dx), dims=(1, 2))
    assert torch.equal(p.image[:, p.mask], src[:, p.mask])


def test_insert_object_from_another_image(photos):
    img, other = photos[0], photos[5]
    p = insert_object(img, make_region("box", (64, 64), 0.05, seed=1), source=other, seed=2)
    sy, sx = p.params["source_offset"]
    ys, xs = torch.nonzero(p.mask, as_tuple=True)
    top, left = int(ys.min()), int(xs.min())
    for y, x in zip(ys.tolist(), xs.tolist()):
        assert torch.equal(p.image[:, y, x], other[:, sy + y - top, sx + x - left])
    flat = insert_object(img, p.mask, seed=2)
    assert flat.params["kind"] == "shape" and flat.image[:, flat.mask].std(dim=1).max() < 1e-6


def test_erase_fill_is_smooth_and_recovers_a_harmonic_image():
    """A linear ramp is harmonic, so smooth inpainting from the border reproduces it (to 0.01)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    img = torch.stack([0.3 * y + 0.5 * x, 0.8 * y, 0.2 + 0.6 * x]).float()
    p = erase_fill(img, ellipse((64, 64), 0.2, seed=0))
    assert float((p.image - img).abs().max()) < 0.01
    checker = ((torch.arange(64)[:, None] // 4 + torch.arange(64)[None] // 4) % 2).float().expand(3, 64, 64)
    q = erase_fill(checker.contiguous(), ellipse((64, 64), 0.1, seed=0))
    assert float(q.image[:, q.mask].std()) < 0.5 * float(checker[:, q.mask].std()), "the fill keeps the texture"


def test_op_errors_name_the_argument(photos):
    img = photos[0]
    m = ellipse((64, 64), 0.1).mask
    cases = [
        (lambda: colour_shift(img, m, delta_e=0.0), "delta_e"),
        (lambda: colour_shift(img, m, delta_e=float("nan")), "delta_e"),
        (lambda: local_edit(img, "jpeg", mask=m, magnitude=0), "quality"),
        (lambda: local_edit(img, "gaussian_blur", mask=m, magnitude=-1.0), "sigma"),
        (lambda: local_edit(img, "patch_shuffle", mask=m, magnitude=2.5), "tile"),
        (lambda: colour_shift(img, m[:10], delta_e=1.0), "mask"),
        (lambda: colour_shift(img * 2, m), "image"),
        (lambda: colour_shift(img[None], m), "image"),
        (lambda: colour_shift(img, m, seed=1.5), "seed"),
        (lambda: local_edit(img, "blur", area=0.1), "operation"),
        (lambda: local_edit(img, "jpeg"), "area"),
    ]
    for call, name in cases:
        with pytest.raises((I2IInputError, UnknownNameError), match=name):
            call()


# -- nuisances -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(NUISANCES))
def test_nuisances_are_global_deterministic_and_small(name, photos):
    img = photos[4]
    a, b = apply_nuisance(img, name, seed=3), apply_nuisance(img, name, seed=3)
    assert torch.equal(a.image, b.image) and a.params == b.params and bool(a.mask.all())
    assert not torch.equal(a.image, img)
    json.dumps(a.params)


def test_shift_moves_by_one_pixel(photos):
    img = photos[0]
    for seed in range(8):
        p = apply_nuisance(img, "shift", seed=seed)
        dy, dx = p.params["direction"]
        h, w = img.shape[1:]
        src = img[:, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
        dst = p.image[:, max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)]
        assert torch.equal(src, dst)
