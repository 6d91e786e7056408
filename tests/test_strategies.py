"""The public hypothesis strategies: valid draws, composition, shrinking, and the CI profile."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, find, given, settings

from pytest_i2i import strategies as st_i2i
from pytest_i2i.errors import I2IInputError
from pytest_i2i.perturb import NUISANCES

FAST = settings(max_examples=8, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
FIND = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@FAST
@given(st_i2i.images(size=32))
def test_images_are_house_format(img):
    assert img.dtype == torch.float32 and tuple(img.shape) == (3, 32, 32)
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0


@FAST
@given(st_i2i.images(size=24, crops=True))
def test_random_crops_have_the_requested_size(img):
    assert tuple(img.shape) == (3, 24, 24)


def test_images_from_a_user_folder(tmp_path):
    from pytest_i2i.images import write_sample_folder

    write_sample_folder(tmp_path, size=40, names=("astronaut", "coffee"))
    seen = []

    @FAST
    @given(st_i2i.images(tmp_path, size=16))
    def check(img):
        assert tuple(img.shape) == (3, 16, 16)
        seen.append(img)

    check()
    assert seen
    with pytest.raises(I2IInputError, match="not a folder"):
        st_i2i.images(tmp_path / "missing")


@FAST
@given(st_i2i.regions(48, area=(0.01, 0.1)))
def test_regions_draw_grid_areas_exactly(region):
    assert region.params["area"] in (0.01, 0.02, 0.05, 0.1)
    assert int(region.mask.sum()) == max(1, round(region.params["area"] * 48 * 48))


@FAST
@given(st_i2i.local_edits(st_i2i.images(size=32), area=(0.01, 0.25), ops=["gaussian_noise", "copy_move"]))
def test_local_edits_compose_and_stay_inside_their_mask(edit):
    assert edit.params["op"] in ("gaussian_noise", "copy_move")
    assert torch.equal(edit.image[:, ~edit.mask], edit.original[:, ~edit.mask])
    assert 0.01 <= edit.params["region"]["area"] <= 0.25


@FAST
@given(st_i2i.nuisances(st_i2i.images(size=32)))
def test_nuisances_are_global(edit):
    assert bool(edit.mask.all()) and edit.params["op"] in NUISANCES


def test_shrinking_goes_to_the_smallest_failing_area_and_magnitude():
    """The minimal example of "area >= 5 % and sigma >= 2 px" is exactly (5 %, 2 px)."""
    strategy = st_i2i.local_edits(st_i2i.images(size=32), ops=["gaussian_blur"])
    minimal = find(strategy, lambda e: e.params["region"]["area"] >= 0.05 and e.params["sigma"] >= 2.0,
                   settings=FIND)
    assert minimal.params["region"]["area"] == 0.05
    assert minimal.params["sigma"] == 2.0
    assert minimal.params["seed"] == 0


@FAST
@given(st_i2i.local_edits(st_i2i.images(size=32), ops="jpeg", magnitude=1.0, area=0.1),
       st_i2i.local_edits(st_i2i.images(size=32), ops="colour_shift", magnitude="default", area=0.01))
def test_magnitude_strength_and_default(strongest, default):
    assert strongest.params["quality"] == 5
    assert default.params["delta_e"] == 10.0


def test_magnitude_specs():
    from hypothesis import strategies as st

    assert isinstance(st_i2i.local_edits(area=[0.5, 0.01]), st.SearchStrategy)
    for bad, name in (({"magnitude": 2.0}, "magnitude"), ({"magnitude": (1.0, 0.0)}, "magnitude"),
                      ({"area": 0.9}, "area"), ({"ops": ["blur"]}, "ops")):
        with pytest.raises(I2IInputError, match=name):
            st_i2i.local_edits(**bad)
    with pytest.raises(I2IInputError, match="names"):
        st_i2i.nuisances(names="rotate")


def test_ci_profile_is_registered():
    profile = settings.get_profile("i2i-ci")
    assert profile.derandomize and profile.deadline is None and profile.max_examples == 20
    assert HealthCheck.too_slow in profile.suppress_health_check


def test_ci_profile_loads_from_the_command_line(pytester):
    """In a fresh process nothing imported pytest_i2i.strategies: the plugin must register the
    profile before hypothesis' plugin loads it."""
    pytester.makepyfile("""
        import sys
        from hypothesis import given, settings, strategies as st

        def test_profile_active():
            assert settings.get_current_profile_name() == "i2i-ci"
            assert settings().derandomize and settings().max_examples == 20

        @given(st.integers())
        def test_runs(x):
            pass
    """)
    result = pytester.runpytest_subprocess("--hypothesis-profile=i2i-ci", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    bad = pytester.runpytest_subprocess("--hypothesis-profile=no-such-profile", "-p", "no:cacheprovider")
    assert bad.ret != 0
