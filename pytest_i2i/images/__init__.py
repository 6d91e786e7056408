"""Images: one canonical format (float32 RGB, NCHW, [0, 1]) from any accepted input.

See :mod:`pytest_i2i.images.convert` for the conversion rules,
:mod:`pytest_i2i.images.resize` for the two resize conventions and
:mod:`pytest_i2i.images.prepare` for bringing images to a network's input (crop, resize, normalise).
"""

from pytest_i2i.images.convert import load_image_file
from pytest_i2i.images.imageset import IMAGE_EXTENSIONS, ImageSet, as_pairs, load_images
from pytest_i2i.images.prepare import Preprocess
from pytest_i2i.images.resize import RESIZE_MODES, resize_batch
from pytest_i2i.images.samples import COLOR_PHOTOS, GRAY_PHOTOS, sample_images, sample_photo, write_sample_folder

__all__ = [
    "COLOR_PHOTOS", "GRAY_PHOTOS", "IMAGE_EXTENSIONS", "RESIZE_MODES", "ImageSet", "Preprocess", "as_pairs",
    "load_image_file", "load_images", "resize_batch", "sample_images", "sample_photo", "write_sample_folder",
]
