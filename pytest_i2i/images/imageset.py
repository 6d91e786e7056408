"""`ImageSet`: a lazily decoded, named sequence of canonical images, built from any accepted input."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.convert import array_to_tensor, load_image_file, pil_to_tensor, tensor_to_tensor
from pytest_i2i.images.resize import check_resize_mode, resize_batch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")

ImagesLike = Union["ImageSet", str, os.PathLike, Sequence[Any], np.ndarray, torch.Tensor, Any]


class ImageSet(Sequence[torch.Tensor]):
    """Named images, decoded on access to (3, H, W) float32 RGB in [0, 1].

    Build one with :func:`load_images`. ``names[i]`` is the file name (relative to the folder)
    or ``"<label>[i]"`` for in-memory images, and is what reports and errors show.
    """

    def __init__(self, names: list[str], loaders: list[Callable[[], torch.Tensor]], label: str):
        if not names:
            raise I2IInputError(f"{label}: no images")
        self.names = names
        self._loaders = loaders
        self.label = label

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            idx = range(len(self))[i]
            return ImageSet([self.names[j] for j in idx], [self._loaders[j] for j in idx], self.label)
        return self._loaders[i]()

    def __repr__(self) -> str:
        return f"ImageSet({self.label!r}, n={len(self)})"

    def subset(self, indices: Sequence[int]) -> ImageSet:
        return ImageSet([self.names[j] for j in indices], [self._loaders[j] for j in indices], self.label)

    def iter_batches(
        self, batch_size: int, *, size: tuple[int, int] | None = None, resize: str = "clean",
        center_crop: bool = False,
    ) -> Iterator[tuple[list[int], torch.Tensor]]:
        """Yield ``(indices, batch)`` with batch (B, 3, H, W).

        With ``size`` every image is resized to it by ``resize`` (after cropping the centre to
        the target aspect ratio when ``center_crop``, as CLIP and timm preprocessing do);
        without, consecutive images of equal size are batched together (a size change starts a
        new batch).
        """
        check_resize_mode(resize)
        if batch_size < 1:
            raise I2IInputError(f"batch_size must be >= 1, got {batch_size}")
        idx: list[int] = []
        imgs: list[torch.Tensor] = []
        for i in range(len(self)):
            img = self[i]
            if size is not None:
                if center_crop:
                    img = center_crop_to_aspect(img, size)
                img = resize_batch(img[None], size, resize)[0]
            if imgs and (img.shape != imgs[0].shape or len(imgs) == batch_size):
                yield idx, torch.stack(imgs)
                idx, imgs = [], []
            idx.append(i)
            imgs.append(img)
        if imgs:
            yield idx, torch.stack(imgs)


def center_crop_to_aspect(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The largest centred crop of a (C, H, W) image with the aspect ratio of ``size`` = (h, w)."""
    _, h, w = img.shape
    th, tw = size
    if h * tw > w * th:  # too tall
        new_h = max(1, round(w * th / tw))
        top = (h - new_h) // 2
        return img[:, top:top + new_h, :]
    new_w = max(1, round(h * tw / th))
    left = (w - new_w) // 2
    return img[:, :, left:left + new_w]


def _list_folder(folder: Path, label: str) -> list[Path]:
    files = sorted(
        p for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and not p.is_dir()
    )
    if not files:
        raise I2IInputError(f"{label}: folder {folder} contains no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def _file_loader(path: Path, name: str) -> Callable[[], torch.Tensor]:
    return lambda: load_image_file(path, name)


def load_images(
    source: ImagesLike, *, name: str = "images", value_range: tuple[float, float] = (0.0, 1.0)
) -> ImageSet:
    """Turn any accepted image input into an :class:`ImageSet`.

    Args:
        source: a folder (its image files, sorted by name, not recursive), one image file, a list
            of paths / PIL images / HWC arrays / CHW tensors, an NHWC numpy array, an NCHW tensor,
            a single PIL image, HWC array or CHW tensor, or an existing ``ImageSet`` (returned as is).
        name: the argument's name, used in error messages and in-memory sample names.
        value_range: the range of float inputs: (0, 1) (default) or e.g. (-1, 1).

    Returns:
        An ``ImageSet``; images are decoded and validated when accessed.

    Raises:
        I2IInputError: empty input, missing path, unsupported type or shape. Decoding errors
            (corrupt file, NaN, out-of-range floats) are raised on access, naming the image.
    """
    if isinstance(source, ImageSet):
        return source
    vr = (float(value_range[0]), float(value_range[1]))
    if vr[0] >= vr[1]:
        raise I2IInputError(f"{name}: value_range {value_range} is empty")
    if isinstance(source, (str, os.PathLike)):
        p = Path(source).expanduser()
        if p.is_dir():
            files = _list_folder(p, name)
            return ImageSet([f.name for f in files], [_file_loader(f, f"{name}: {f}") for f in files], name)
        if p.is_file():
            return ImageSet([p.name], [_file_loader(p, f"{name}: {p}")], name)
        raise I2IInputError(f"{name}: path {p} does not exist")
    if isinstance(source, torch.Tensor):
        if source.ndim == 4:
            return _batch(list(source.unbind(0)), name, vr)
        return _batch([source], name, vr)
    if isinstance(source, np.ndarray):
        if source.ndim == 4:
            return _batch(list(source), name, vr)
        return _batch([source], name, vr)
    if _is_pil(source):
        return _batch([source], name, vr)
    if isinstance(source, Sequence) and not isinstance(source, (bytes, bytearray)):
        return _batch(list(source), name, vr)
    raise I2IInputError(
        f"{name}: unsupported image input of type {type(source).__name__}; pass a folder, paths, PIL images, "
        "numpy arrays (HWC) or torch tensors (CHW / NCHW)"
    )


def _is_pil(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "mode") and hasattr(obj, "size")


def _batch(items: list[Any], label: str, vr: tuple[float, float]) -> ImageSet:
    if not items:
        raise I2IInputError(f"{label}: no images")
    names: list[str] = []
    loaders: list[Callable[[], torch.Tensor]] = []
    for i, item in enumerate(items):
        item_name = f"{label}[{i}]"
        if isinstance(item, (str, os.PathLike)):
            p = Path(item).expanduser()
            names.append(str(item))
            loaders.append(_file_loader(p, f"{label}: {p}"))
            continue
        names.append(item_name)
        if isinstance(item, torch.Tensor):
            if item.ndim == 4:
                raise I2IInputError(f"{item_name}: a 4-D tensor inside a list; pass the NCHW batch itself")
            loaders.append(lambda t=item, n=item_name: tensor_to_tensor(t, n, vr))
        elif isinstance(item, np.ndarray):
            loaders.append(lambda a=item, n=item_name: array_to_tensor(a, n, vr))
        elif _is_pil(item):
            loaders.append(lambda im=item, n=item_name: pil_to_tensor(im, n))
        else:
            raise I2IInputError(f"{item_name}: unsupported image of type {type(item).__name__}")
    return ImageSet(names, loaders, label)


def as_pairs(
    a: ImagesLike, b: ImagesLike, *, names: tuple[str, str] = ("a", "b"),
    value_range: tuple[float, float] = (0.0, 1.0),
) -> tuple[ImageSet, ImageSet]:
    """Two image inputs that are paired by position; raises when their counts differ."""
    sa = load_images(a, name=names[0], value_range=value_range)
    sb = load_images(b, name=names[1], value_range=value_range)
    if len(sa) != len(sb):
        raise I2IInputError(
            f"mismatched pair counts: {names[0]} has {len(sa)} images, {names[1]} has {len(sb)}; "
            "paired metrics compare images position by position"
        )
    return sa, sb


def iter_pair_batches(
    a: ImageSet, b: ImageSet, batch_size: int, *, resize: str = "clean"
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor, list[str]]]:
    """Yield ``(indices, A, B, notes)`` for position-paired sets of equal length.

    When the two images of a pair differ in size, ``b``'s image is resized to ``a``'s with
    ``resize`` and a note naming the pair is returned (callers record it in the result).
    Consecutive pairs of equal size are batched together.
    """
    check_resize_mode(resize)
    if batch_size < 1:
        raise I2IInputError(f"batch_size must be >= 1, got {batch_size}")
    if len(a) != len(b):
        raise I2IInputError(f"mismatched pair counts: {a.label} has {len(a)} images, {b.label} has {len(b)}")
    idx: list[int] = []
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    notes: list[str] = []
    for i in range(len(a)):
        x, y = a[i], b[i]
        note = None
        if x.shape != y.shape:
            note = (
                f"pair {i} ({a.names[i]}, {b.names[i]}): {b.label} image {tuple(y.shape[1:])} resized to "
                f"{tuple(x.shape[1:])} with resize={resize!r}"
            )
            y = resize_batch(y[None], tuple(x.shape[1:]), resize)[0]
        if xs and (x.shape != xs[0].shape or len(xs) == batch_size):
            yield idx, torch.stack(xs), torch.stack(ys), notes
            idx, xs, ys, notes = [], [], [], []
        if note is not None:  # after the flush above, so the note travels with its own pair's batch
            notes.append(note)
        idx.append(i)
        xs.append(x)
        ys.append(y)
    if xs:
        yield idx, torch.stack(xs), torch.stack(ys), notes
