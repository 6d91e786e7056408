"""The built-in sample dataset: colorization of the colour photos bundled with scikit-image.

Real photographs (``skimage.data``, shipped in the scikit-image wheel, no download); the
input of each sample is a synthetic grayscale version of its photo. The suite runs on it when
no dataset is given.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from pytest_i2i.data.dataset import I2IDataset, Sample, positive_int
from pytest_i2i.images.samples import COLOR_PHOTOS, center_square, sample_photo

COLORIZATION_TEXTS = {
    "instruction": "colorize this photo",
    "source_caption": "a black and white photo",
    "target_caption": "a color photo",
}


@lru_cache(maxsize=4)
def _colorization_pairs(size: int) -> tuple[tuple[str, np.ndarray, np.ndarray], ...]:
    """``(name, gray input, colour target)`` per photo, HWC uint8, read-only (they are cached)."""
    from PIL import Image

    pairs = []
    for name in COLOR_PHOTOS:
        color = center_square(sample_photo(name), size).copy()
        luma = np.asarray(Image.fromarray(color).convert("L"))  # ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B
        gray = np.repeat(luma[:, :, None], 3, axis=2)
        color.setflags(write=False)
        gray.setflags(write=False)
        pairs.append((name, gray, color))
    return tuple(pairs)


def sample_dataset(size: int = 128) -> I2IDataset:
    """The colorization sample set: one sample per photo in :data:`~pytest_i2i.images.COLOR_PHOTOS`.

    Each photo is centre-cropped to a square and resized to ``size`` x ``size`` (Pillow bicubic).
    Input: the photo in grayscale (ITU-R BT.601 luma, Pillow ``convert("L")``) replicated to 3
    channels; target: the colour photo; uid: the photo's name; texts: :data:`COLORIZATION_TEXTS`.
    Images are in memory (HWC ``uint8`` arrays); nothing is written to disk.

    Raises:
        I2IInputError: ``size`` is not a positive integer.
    """
    size = positive_int(size, "size")
    samples = [Sample(name, gray, color, **COLORIZATION_TEXTS) for name, gray, color in _colorization_pairs(size)]
    return I2IDataset(
        samples,
        source=f"sample_dataset(size={size})",
        synthetic=True,
        description=(
            f"colorization of {len(samples)} real photos bundled with scikit-image, {size}x{size}: inputs are a "
            "synthetic grayscale conversion (ITU-R BT.601 luma), targets the original colour photos"
        ),
        origins=[f"sample_dataset: {name}" for name, _, _ in _colorization_pairs(size)],
    )
