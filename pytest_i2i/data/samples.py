"""The built-in sample dataset: colorization of the colour photos bundled with scikit-image.

Real photographs (``skimage.data``, shipped in the scikit-image wheel, no download); the
input of each sample is a synthetic grayscale version of its photo. The suite runs on it when
no dataset is given.
"""

from __future__ import annotations

from pytest_i2i.data.dataset import I2IDataset, Sample, positive_int
from pytest_i2i.images.samples import colorization_pairs

COLORIZATION_TEXTS = {
    "instruction": "colorize this photo",
    "source_caption": "a black and white photo",
    "target_caption": "a color photo",
}


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
    samples = [Sample(name, gray, color, **COLORIZATION_TEXTS) for name, gray, color in colorization_pairs(size)]
    return I2IDataset(
        samples,
        source=f"sample_dataset(size={size})",
        synthetic=True,
        description=(
            f"colorization of {len(samples)} real photos bundled with scikit-image, {size}x{size}: inputs are a "
            "synthetic grayscale conversion (ITU-R BT.601 luma), targets the original colour photos"
        ),
        origins=[f"sample_dataset: {name}" for name, _, _ in colorization_pairs(size)],
    )
