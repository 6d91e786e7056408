"""Property tests of the paired metrics with the perturbation library and the hypothesis strategies.

Only properties that hold by construction, or that were measured to hold with a margin on the
bundled photos, are asserted here. Measured failures (a 1-pixel shift or a resize round trip
moves L1 / SSIM / CIEDE2000 more than a clearly visible local edit on textured photos) are
findings reported by ``i2i sensitivity`` (AUROC against each nuisance), not hidden here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.ndimage import binary_dilation
from scipy.stats import kendalltau

from pytest_i2i import strategies as st_i2i
from pytest_i2i.metrics.functional import paired as F
from pytest_i2i.perturb import OPS, apply_nuisance, local_edit

BOUNDED = settings(max_examples=8, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
IMAGES = st_i2i.images(size=48)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# distance form of each metric: 0 for identical images, larger = more different
DISTANCES = {
    "l1": F.l1_per_sample,
    "ciede2000": F.ciede2000_per_sample,
    "1-ssim": lambda a, b: 1.0 - F.ssim_per_sample(a, b),
    "-psnr": lambda a, b: -F.psnr_per_sample(a, b),
}


def _d(name, a, b) -> float:
    return float(DISTANCES[name](a[None], b[None])[0])


@BOUNDED
@given(IMAGES)
def test_identity_gives_distance_zero_and_similarity_one(img):
    x = img[None]
    assert float(F.l1_per_sample(x, x)) == 0.0
    assert float(F.ciede2000_per_sample(x, x)) == 0.0
    assert float(F.ssim_per_sample(x, x)) == pytest.approx(1.0, abs=1e-12)
    assert math.isinf(float(F.psnr_per_sample(x, x)))


@settings(BOUNDED, max_examples=2)
@given(st_i2i.images(size=176))
def test_identity_ms_ssim(img):
    assert float(F.ms_ssim_per_sample(img[None], img[None])) == pytest.approx(1.0, abs=1e-12)


@settings(BOUNDED, max_examples=1)
@given(st_i2i.images(size=32), st_i2i.images(size=32, crops=True))
def test_identity_and_symmetry_of_vit_metrics(a, b):
    """Cosine similarity and patch distance are symmetric by construction and exact on identical
    inputs (random weights: only the formula is tested, not the calibration)."""
    import pytest_i2i

    bb = pytest_i2i.backbone("dino-vits16", weights="random")
    same = pytest_i2i.dino_image(a[None], a[None], backbone=bb, n_resamples=10)
    assert same.value == pytest.approx(1.0, abs=1e-6)
    assert pytest_i2i.vit_patch_distance(a[None], a[None], backbone=bb, n_resamples=10).value == \
        pytest.approx(0.0, abs=1e-6)
    ab = pytest_i2i.dino_image(a[None], b[None], backbone=bb, n_resamples=10).value
    ba = pytest_i2i.dino_image(b[None], a[None], backbone=bb, n_resamples=10).value
    assert ab == pytest.approx(ba, abs=1e-12)


@BOUNDED
@given(IMAGES, st_i2i.images(size=48, crops=True))
def test_symmetric_metrics_are_symmetric(a, b):
    for name in DISTANCES:
        assert _d(name, a, b) == pytest.approx(_d(name, b, a), abs=1e-12), name


@settings(BOUNDED, max_examples=5)
@given(st_i2i.local_edits(IMAGES, ops=["colour_shift", "gaussian_noise"], area=(0.005, 0.1)),
       st.integers(1, 3))
def test_distance_does_not_decrease_when_the_region_grows(edit, grow):
    """By construction: both operations change each pixel independently of the mask (same seed),
    so on a superset mask every per-pixel term is the same or added, and L1 / mean ΔE00 grow."""
    op = edit.params["op"]
    magnitude = edit.params[OPS[op].magnitude]
    larger = torch.from_numpy(binary_dilation(edit.mask.numpy(), iterations=grow))
    bigger = local_edit(edit.original, op, mask=larger, magnitude=magnitude, seed=edit.params["seed"])
    for name in ("l1", "ciede2000"):
        assert _d(name, edit.original, bigger.image) >= _d(name, edit.original, edit.image) - 1e-12, name


@BOUNDED
@given(st_i2i.local_edits(IMAGES, ops=["gaussian_noise"], area=(0.01, 0.5)), st.data())
def test_noise_distance_does_not_decrease_with_magnitude(edit, data):
    """By construction: the same noise field, scaled up, moves each clipped pixel at least as far."""
    levels = OPS["gaussian_noise"].levels
    std = edit.params["std"]
    stronger = data.draw(st.sampled_from([s for s in levels if s >= std]))
    p = local_edit(edit.original, "gaussian_noise", mask=edit.mask, magnitude=stronger, seed=edit.params["seed"])
    assert _d("l1", edit.original, p.image) >= _d("l1", edit.original, edit.image) - 1e-12


@settings(BOUNDED, max_examples=4)
@given(st_i2i.local_edits(IMAGES, ops=["colour_shift"], area=(0.01, 0.1)), st.data())
def test_colour_difference_does_not_decrease_with_delta_e(edit, data):
    """Per pixel ΔE00 equals the request (within 0.01) or the largest reachable value, so the mean grows."""
    levels = OPS["colour_shift"].levels
    stronger = data.draw(st.sampled_from([v for v in levels if v >= edit.params["delta_e"]]))
    p = local_edit(edit.original, "colour_shift", mask=edit.mask, magnitude=stronger, seed=edit.params["seed"])
    assert _d("ciede2000", edit.original, p.image) >= _d("ciede2000", edit.original, edit.image) - 0.01


@pytest.fixture(scope="module")
def photos():
    from pytest_i2i.images import sample_images

    s = sample_images(48)
    return [s[i] for i in range(len(s))]


AREAS = [0.01, 0.02, 0.05, 0.1, 0.25]
STAT_METRICS = ("l1", "ciede2000", "1-ssim")


@pytest.fixture(scope="module")
def area_and_magnitude_distances():
    """Distances of 3 photos to their edits: per op over AREAS (default magnitude) and over the
    op's magnitude levels (10 % area). Computed once for every metric."""
    from pytest_i2i.images import sample_images

    small = sample_images(32)
    by_area, by_level = {}, {}
    for op, spec in OPS.items():
        for i in range(3):
            img = small[i]
            edits = torch.stack([local_edit(img, op, area=a, seed=i).image for a in AREAS])
            by_area[op, i] = _batch_distances(img, edits)
            if op != "patch_shuffle":  # its tile size is not a strength
                edits = torch.stack([local_edit(img, op, area=0.1, magnitude=v, seed=i).image for v in spec.levels])
                by_level[op, i] = _batch_distances(img, edits)
    return by_area, by_level


def _batch_distances(img, edits):
    originals = img[None].expand_as(edits)
    return {m: DISTANCES[m](originals, edits).tolist() for m in STAT_METRICS}


def _taus(table, op, metric):
    taus = [kendalltau(range(len(v[metric])), v[metric]).statistic for (o, _), v in table.items() if o == op]
    return np.nan_to_num(np.array(taus), nan=0.0)


@pytest.mark.parametrize("metric", STAT_METRICS)
def test_distances_grow_with_area_and_magnitude_statistically(metric, area_and_magnitude_distances):
    """Statistic: Kendall's tau between the area (1, 2, 5, 10, 25 %; default magnitude) - or the
    magnitude level, weakest to strongest (10 % area) - and the distance, one tau per (photo, op)
    over 3 photos at 32 px. For every op: median tau >= 0.6 and all 3 taus positive.
    (Measured at 32-64 px: median 1.0 for every op and metric.)"""
    by_area, by_level = area_and_magnitude_distances
    for what, table in (("area", by_area), ("magnitude", by_level)):
        for op in {o for o, _ in table}:
            taus = _taus(table, op, metric)
            assert np.median(taus) >= 0.6 and (taus > 0).all(), f"{metric} vs {what} for {op}: taus {taus}"


@pytest.mark.parametrize("nuisance", ["jpeg_q95", "global_brightness"])
@pytest.mark.parametrize("metric", list(DISTANCES))
def test_mild_nuisances_move_metrics_less_than_a_visible_object(metric, nuisance, photos):
    """Measured with margin on all 8 bundled photos at 48-128 px: an opaque object over 10 % of the
    image moves L1, PSNR, SSIM and CIEDE2000 more than JPEG q95 or a 0.02 brightness change (the
    smallest ratio was 1.46, CIEDE2000 vs JPEG q95 at 64 px). The 1-pixel shift and the resize
    round trip do NOT satisfy this on textured photos; see ``i2i sensitivity``."""
    for i, img in enumerate(photos):
        edited = local_edit(img, "insert_object", area=0.1, seed=i).image
        moved = apply_nuisance(img, nuisance, seed=i).image
        assert _d(metric, img, edited) > _d(metric, img, moved), f"photo {i}"
