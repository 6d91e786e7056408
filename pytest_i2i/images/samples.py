"""Real photos bundled with scikit-image, the project's default sample images.

These are real photographs shipped inside the scikit-image wheel (no download): see
``skimage.data``. They are the default inputs of the CLI, the test suites and the demos.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from pytest_i2i.errors import UnknownNameError


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        if name == "motorcycle":
            return skimage.data.stereo_motorcycle()[0]
        return getattr(skimage.data, name)()

    return load


COLOR_PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry",
                "motorcycle", "retina", "rocket")
GRAY_PHOTOS = ("brick", "camera", "cell", "coins", "grass", "gravel", "moon", "page", "text")


def sample_photo(name: str) -> np.ndarray:
    """One bundled photo as an HWC (colour) or HW (grayscale) uint8 array."""
    if name not in COLOR_PHOTOS + GRAY_PHOTOS:
        raise UnknownNameError("sample photo", name, COLOR_PHOTOS + GRAY_PHOTOS)
    return _skimage(name)()


def center_square(arr: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to ``size`` x ``size`` (Pillow bicubic, antialiased), uint8."""
    from PIL import Image

    h, w = arr.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = np.ascontiguousarray(arr[top:top + s, left:left + s])
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.BICUBIC))


@lru_cache(maxsize=4)
def colorization_pairs(size: int) -> tuple[tuple[str, np.ndarray, np.ndarray], ...]:
    """``(name, gray input, colour target)`` per colour photo, HWC uint8 ``size`` x ``size``, read-only
    (they are cached): the pairs of :func:`pytest_i2i.data.sample_dataset` and of the pix2pix demo's
    evaluation. The input is the photo's ITU-R BT.601 luma (Pillow ``convert("L")``: 0.299 R +
    0.587 G + 0.114 B) replicated to 3 channels, a synthetic grayscale version of it.
    """
    from PIL import Image

    pairs = []
    for name in COLOR_PHOTOS:
        color = center_square(sample_photo(name), size).copy()
        luma = np.asarray(Image.fromarray(color).convert("L"))
        gray = np.repeat(luma[:, :, None], 3, axis=2)
        color.setflags(write=False)
        gray.setflags(write=False)
        pairs.append((name, gray, color))
    return tuple(pairs)


def sample_images(size: int = 256, names: tuple[str, ...] = COLOR_PHOTOS):
    """The bundled colour photos, centre-cropped to ``size`` x ``size``, as an ``ImageSet`` named by photo."""
    from pytest_i2i.images.convert import array_to_tensor
    from pytest_i2i.images.imageset import ImageSet

    arrays = {n: center_square(sample_photo(n), size) for n in names}
    loaders = [lambda a=a, n=n: array_to_tensor(a, f"samples: {n}") for n, a in arrays.items()]
    return ImageSet([f"{n}.png" for n in names], loaders, "samples")


def write_sample_folder(folder: str | Path, size: int = 256, names: tuple[str, ...] = COLOR_PHOTOS) -> list[Path]:
    """Write the bundled photos as PNG files into ``folder``; returns the paths."""
    from PIL import Image

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in names:
        p = out / f"{n}.png"
        Image.fromarray(center_square(sample_photo(n), size)).save(p)
        paths.append(p)
    return paths
