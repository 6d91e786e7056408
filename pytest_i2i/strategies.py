"""Hypothesis strategies for property tests of image metrics, and a CI profile.

Strategies (composable; pass one as the ``images=`` argument of another):

* :func:`images`: float32 ``(3, size, size)`` images in ``[0, 1]`` from the bundled photos
  (default), random crops of them, or a user's folder.
* :func:`regions`: :class:`~pytest_i2i.perturb.Region` masks of a given size.
* :func:`local_edits`: an image and a local edit of it (:class:`Edited`), by area, operation
  and magnitude.
* :func:`nuisances`: an image and a nuisance-transformed copy (:class:`Edited`).

Shrinking: areas and magnitudes are drawn as indices into grids sorted from smallest / weakest
to largest / strongest (:data:`AREA_GRID`, each operation's ``levels`` in
:data:`pytest_i2i.perturb.OPS`), seeds as integers from 0, images and operations by position.
Hypothesis shrinks integers toward their minimum, so a failing example shrinks toward the
smallest area and the weakest magnitude that still fails.

CI profile: importing this module registers the hypothesis profile ``"i2i-ci"``
(:data:`CI_PROFILE`: derandomized, at most 20 examples, no deadline, the ``too_slow`` and
``data_too_large`` health checks suppressed: backbones are slow on CPUs). Select it with
``pytest --hypothesis-profile=i2i-ci`` (the pytest-i2i plugin registers it before
hypothesis' plugin loads it), or in code with ``settings.load_profile("i2i-ci")``.

Example::

    from hypothesis import given
    from pytest_i2i import strategies as st_i2i
    import pytest_i2i

    @given(st_i2i.local_edits(area=(0.01, 0.1), ops=["colour_shift"], magnitude=(0.5, 1.0)))
    def test_ciede2000_sees_colour_edits(edit):
        assert float(pytest_i2i.ciede2000(edit.original[None], edit.image[None])) > 0

Only ``hypothesis`` is imported at module import; torch and the images load on first use.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from pytest_i2i.errors import I2IInputError

if TYPE_CHECKING:
    import torch

    from pytest_i2i.perturb import Perturbation

__all__ = [
    "AREA_GRID", "CI_PROFILE", "Edited", "images", "local_edits", "nuisances", "register_profile", "regions",
]

#: Area fractions the strategies draw from, smallest first (0.1 % to 50 % of the image).
AREA_GRID: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5)

CI_PROFILE = "i2i-ci"
CI_SETTINGS: dict[str, Any] = {
    "derandomize": True,
    "max_examples": 20,
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


def register_profile() -> None:
    """Register the ``"i2i-ci"`` hypothesis profile (idempotent); see the module docstring."""
    settings.register_profile(CI_PROFILE, **CI_SETTINGS)


register_profile()


class Edited(NamedTuple):
    """An original image and its perturbation (a local edit or a nuisance)."""

    original: torch.Tensor
    perturbation: Perturbation

    @property
    def image(self) -> torch.Tensor:
        """The perturbed image, float32 ``(3, H, W)``."""
        return self.perturbation.image

    @property
    def mask(self) -> torch.Tensor:
        return self.perturbation.mask

    @property
    def params(self) -> dict[str, Any]:
        return self.perturbation.params


# --------------------------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _bundled(size: int, names: tuple[str, ...]) -> tuple[torch.Tensor, ...]:
    from pytest_i2i.images import sample_images

    s = sample_images(size, names)
    return tuple(s[i] for i in range(len(s)))


@functools.lru_cache(maxsize=16)
def _folder(path: str, size: int | None) -> tuple[torch.Tensor, ...]:
    from pytest_i2i.images import load_images

    s = load_images(path, name=f"images({path})")
    out = [s[i] for i in range(len(s))]
    return tuple(out if size is None else [_square(x, size) for x in out])


def _square(img: torch.Tensor, size: int) -> torch.Tensor:
    from pytest_i2i.images.prepare import center_crop_to_aspect
    from pytest_i2i.images.resize import resize_batch

    return resize_batch(center_crop_to_aspect(img, (size, size))[None], (size, size), "clean")[0]


def _check_size(size: Any, name: str = "size") -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise I2IInputError(f"`{name}` must be an int >= 8; got {size!r}")
    return size


def images(
    source: str | os.PathLike | Sequence[Any] | None = None,
    *,
    size: int = 64,
    crops: bool = False,
    names: Sequence[str] | None = None,
) -> st.SearchStrategy[torch.Tensor]:
    """Images, float32 ``(3, size, size)`` in ``[0, 1]``.

    Args:
        source: ``None`` (scikit-image's bundled colour photos), a folder of images (each is
            centre-cropped to a square and resized to ``size``, clean bicubic), or a sequence
            of ``(3, H, W)`` tensors / an :class:`~pytest_i2i.images.ImageSet`.
        size: side of the returned images (>= 8).
        crops: draw random ``size x size`` crops instead: of the photos at twice ``size``, or
            of the folder's images at their native size (those smaller than ``size`` are
            resized up). Offsets shrink toward the top-left corner.
        names: which bundled photos (default all of
            :data:`pytest_i2i.images.COLOR_PHOTOS`); ignored for other sources.

    Raises:
        I2IInputError: a bad ``size`` or an empty / unreadable ``source`` (raised when the
            strategy is built, not during the test).
    """
    size = _check_size(size)
    if source is None:
        from pytest_i2i.images import COLOR_PHOTOS

        chosen = tuple(names) if names is not None else COLOR_PHOTOS
        pool = _bundled(2 * size if crops else size, chosen)
    elif isinstance(source, (str, os.PathLike)):
        if not Path(source).is_dir():
            raise I2IInputError(f"images(source=...): {source} is not a folder")
        pool = _folder(str(Path(source).resolve()), None if crops else size)
    else:
        from pytest_i2i.images import load_images

        s = load_images(source, name="images(source)")
        pool = tuple(s[i] if crops else _square(s[i], size) for i in range(len(s)))
    if not crops:
        return st.sampled_from(pool)

    @st.composite
    def crop(draw: st.DrawFn) -> torch.Tensor:
        img = draw(st.sampled_from(pool))
        if img.shape[1] < size or img.shape[2] < size:
            img = _square(img, size)
        top = draw(st.integers(0, img.shape[1] - size))
        left = draw(st.integers(0, img.shape[2] - size))
        return img[:, top:top + size, left:left + size].contiguous()

    return crop()


_images = images


# --------------------------------------------------------------------------------------------
# regions and edits
# --------------------------------------------------------------------------------------------


def _area_values(area: Any) -> tuple[float, ...]:
    """The sorted area grid a strategy draws from (see :func:`local_edits`)."""
    from pytest_i2i.perturb.base import check_area

    if area is None:
        return AREA_GRID
    if isinstance(area, (int, float)):
        return (check_area(area),)
    values = tuple(area)
    if len(values) == 2 and all(isinstance(v, (int, float)) for v in values) and values[0] <= values[1] \
            and not any(isinstance(v, bool) for v in values):
        low, high = check_area(values[0], "area[0]"), check_area(values[1], "area[1]")
        grid = tuple(a for a in AREA_GRID if low <= a <= high)
        if grid:
            return grid
        return (low,) if low == high else (low, high)
    return tuple(sorted(check_area(v, "area") for v in values))


def regions(
    size: tuple[int, int] | int = 64, *, area: Any = None, kinds: Sequence[str] = ("box", "ellipse", "blob")
) -> st.SearchStrategy[Any]:
    """Regions (:class:`~pytest_i2i.perturb.Region`) on an image of ``size`` (int or ``(H, W)``).

    ``area``: ``None`` (all of :data:`AREA_GRID`), a number, a ``(low, high)`` range (the grid
    values inside it, or both ends when none is) or a sequence of values. ``kinds`` are region
    kinds of :func:`pytest_i2i.perturb.make_region`. Shrinks toward the smallest area, the first
    kind and seed 0.
    """
    from pytest_i2i.perturb import REGION_KINDS, make_region

    hw = (size, size) if isinstance(size, int) else tuple(size)
    grid = _area_values(area)
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in REGION_KINDS]
    if not kinds or unknown:
        raise I2IInputError(f"`kinds` must be region kinds from {sorted(REGION_KINDS)}; got {list(kinds)}")

    @st.composite
    def region(draw: st.DrawFn) -> Any:
        a = grid[draw(st.integers(0, len(grid) - 1))]
        kind = draw(st.sampled_from(kinds))
        seed = draw(st.integers(0, 2**16 - 1))
        return make_region(kind, hw, a, seed=seed)

    return region()


def _magnitude_indices(levels: tuple[float, ...], magnitude: Any, op: str) -> tuple[int, int]:
    """Index range into ``levels`` for a ``magnitude`` spec (strength 0 = weakest, 1 = strongest)."""
    n = len(levels)
    if magnitude is None:
        return 0, n - 1
    if magnitude == "default":
        from pytest_i2i.perturb import OPS

        i = levels.index(OPS[op].default)
        return i, i

    def index(strength: Any, name: str) -> int:
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
            raise I2IInputError(f"`{name}` must be a strength in [0, 1] (0 weakest, 1 strongest level); "
                                f"got {strength!r}")
        return round(strength * (n - 1))

    if isinstance(magnitude, (int, float)):
        i = index(magnitude, "magnitude")
        return i, i
    low, high = magnitude
    i, j = index(low, "magnitude[0]"), index(high, "magnitude[1]")
    if i > j:
        raise I2IInputError(f"`magnitude` range must be (low, high) with low <= high; got {magnitude!r}")
    return i, j


def local_edits(
    images: st.SearchStrategy[Any] | None = None,
    *,
    area: Any = None,
    ops: str | Sequence[str] | None = None,
    magnitude: Any = None,
    region_kinds: Sequence[str] = ("ellipse", "box", "blob"),
) -> st.SearchStrategy[Edited]:
    """An image and a local edit of it (:class:`Edited`).

    Args:
        images: the image strategy (default :func:`images` with its defaults: 64 px photos).
        area: ``None`` (all of :data:`AREA_GRID`), one area fraction, a ``(low, high)`` range
            (the grid values inside it) or a sequence of area fractions; in [0.001, 0.5].
        ops: operation name(s) from :data:`pytest_i2i.perturb.OPS` (default all).
        magnitude: ``None`` (all levels of the operation), ``"default"`` (its clearly visible
            default), a strength in [0, 1] (0 = weakest level, 1 = strongest; the nearest level
            is used) or a ``(low, high)`` strength range.
        region_kinds: region kinds to draw from.

    Draw order (the order hypothesis shrinks in): image, operation, area index, magnitude
    index, region kind, seed.
    """
    from pytest_i2i.perturb import OPS, local_edit

    names = tuple(OPS) if ops is None else ((ops,) if isinstance(ops, str) else tuple(ops))
    unknown = [n for n in names if n not in OPS]
    if not names or unknown:
        raise I2IInputError(f"`ops` must be operation names from {sorted(OPS)}; got {list(names)}")
    grid = _area_values(area)
    ranges = {n: _magnitude_indices(tuple(OPS[n].levels), magnitude, n) for n in names}
    image_strategy = _images() if images is None else images
    kinds = tuple(region_kinds)

    @st.composite
    def edit(draw: st.DrawFn) -> Edited:
        img = draw(image_strategy)
        op = draw(st.sampled_from(names))
        a = grid[draw(st.integers(0, len(grid) - 1))]
        low, high = ranges[op]
        level = OPS[op].levels[draw(st.integers(low, high))]
        kind = draw(st.sampled_from(kinds))
        seed = draw(st.integers(0, 2**16 - 1))
        return Edited(img, local_edit(img, op, area=a, region=kind, magnitude=level, seed=seed))

    return edit()


def nuisances(
    images: st.SearchStrategy[Any] | None = None, *, names: str | Sequence[str] | None = None
) -> st.SearchStrategy[Edited]:
    """An image and a nuisance-transformed copy (:class:`Edited`, global mask).

    ``names`` from :data:`pytest_i2i.perturb.NUISANCES` (default all: 1-pixel shift, JPEG q95,
    resize round trip, small global brightness change). Draw order: image, nuisance, seed.
    """
    from pytest_i2i.perturb import NUISANCES, apply_nuisance

    chosen = tuple(NUISANCES) if names is None else ((names,) if isinstance(names, str) else tuple(names))
    unknown = [n for n in chosen if n not in NUISANCES]
    if not chosen or unknown:
        raise I2IInputError(f"`names` must be nuisances from {sorted(NUISANCES)}; got {list(chosen)}")
    image_strategy = _images() if images is None else images

    @st.composite
    def nuisance(draw: st.DrawFn) -> Edited:
        img = draw(image_strategy)
        name = draw(st.sampled_from(chosen))
        seed = draw(st.integers(0, 2**16 - 1))
        return Edited(img, apply_nuisance(img, name, seed=seed))

    return nuisance()
