"""`ImageSet`: a lazily decoded, named sequence of canonical images, built from any accepted input."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Union

import numpy as np
import torch

from pytest_i2i.checks import check_value_range
from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.convert import (
    array_to_tensor,
    load_image_file,
    pil_to_tensor,
    plain_tensor,
    printable,
    tensor_to_tensor,
)
from pytest_i2i.images.digest import tensor_sha256
from pytest_i2i.images.prepare import Preprocess, prepare_image
from pytest_i2i.images.resize import check_resize_mode

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

    def decoded(self, indices: Sequence[int]) -> ImageSet:
        """The images at ``indices`` decoded now, as an in-memory set with the same names and label.

        Files are decoded by :func:`pytest_i2i.pipeline.prep_threads` threads (as
        :meth:`iter_prepared` does, never in DataLoader workers: a chunk is too small to pay for
        their start-up). For metrics that look at the decoded images (their sizes) before handing
        them to a backbone, which then hashes and prepares them without decoding again.

        Raises:
            I2IInputError: an image cannot be decoded (the message names it).
        """
        part = self.subset(indices)
        images = [item.image for item in part.iter_prepared(num_workers=0, batch_size=len(part))]
        return ImageSet(part.names, [_Decoded(im) for im in images], self.label)

    def iter_prepared(
        self, prep: Preprocess | None = None, *, digest: bool = False,
        needed: Callable[[str, int], bool] | None = None,
        num_workers: int | None = None, batch_size: int = 1,
    ) -> Iterator[PreparedImage]:
        """Decode every image once, in order, and bring it to a network's input with ``prep``.

        Yields one :class:`PreparedImage` ``(index, sha256, image)`` per image:

        * ``sha256``: with ``digest``, the :func:`~pytest_i2i.images.digest.tensor_sha256` of the
          decoded image (before cropping and resizing), else ``None``;
        * ``image``: ``prep(decoded)`` (the decoded image itself when ``prep`` is ``None``), or
          ``None`` when ``needed(sha256, index)`` says it is not needed (e.g. its features are cached),
          so a warm cache decodes and hashes but never resizes.

        Decoding, hashing and preparing run in ``num_workers`` DataLoader worker processes
        (default: :func:`pytest_i2i.pipeline.num_workers` for image files when there is more
        than one batch of ``batch_size``, else 0; 0 under pytest); the images are bit-identical
        whatever the number (see :func:`~pytest_i2i.images.prepare.prepare_image`). ``needed``
        then runs in the workers too, on their copy of the caller's state as it was when the
        iteration started. Without workers, files (or any images to prepare) are handled a batch
        at a time by :func:`pytest_i2i.pipeline.prep_threads` threads, the caller waiting for the
        batch (see :func:`_prepared_items`). A progress bar is shown for long work when
        :func:`pytest_i2i.pipeline.progress_enabled`.

        Raises:
            I2IInputError: an image cannot be decoded (the message names it), or ``needed``
                without ``digest``.
        """
        from pytest_i2i import pipeline

        if needed is not None and not digest:
            raise I2IInputError("iter_prepared: needed= decides by the image's sha256, so it needs digest=True")
        files = any(isinstance(load, _FileLoader) for load in self._loaders)
        if num_workers is None:  # in-memory images decode in microseconds: workers would only add start-up time
            num_workers = pipeline.num_workers() if files and len(self) > batch_size else 0
        prepare = _Prepare(self, prep, digest, needed)
        items = _prepared_items(prepare, num_workers, batch_size, files or prep is not None)
        bar = pipeline.progress_bar(len(self), self.label)
        try:
            for i, item in enumerate(items):
                if isinstance(item, BaseException):  # raised in a worker: re-raise it here, message intact
                    raise item
                yield PreparedImage(i, *item)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
            close = getattr(items, "close", None)
            if close is not None:  # stop DataLoader workers now, not when a traceback is freed
                close()

    def iter_batches(
        self, batch_size: int, prep: Preprocess | None = None, *, num_workers: int | None = None,
    ) -> Iterator[tuple[list[int], torch.Tensor]]:
        """Yield ``(indices, batch)`` with batch (B, 3, H, W): the images of :meth:`iter_prepared`
        stacked, up to ``batch_size`` at a time. Without ``prep`` the images keep their own size
        and consecutive images of equal size are batched together (a size change starts a new batch).
        """
        if batch_size < 1:
            raise I2IInputError(f"batch_size must be >= 1, got {batch_size}")
        idx: list[int] = []
        imgs: list[torch.Tensor] = []
        for item in self.iter_prepared(prep, num_workers=num_workers, batch_size=batch_size):
            img = item.image
            if imgs and (img.shape != imgs[0].shape or len(imgs) == batch_size):
                yield idx, torch.stack(imgs)
                idx, imgs = [], []
            idx.append(item.index)
            imgs.append(img)
        if imgs:
            yield idx, torch.stack(imgs)


class PreparedImage(NamedTuple):
    """One image of :meth:`ImageSet.iter_prepared`: its position, the sha256 of the decoded
    image (``None`` unless asked) and the prepared tensor (``None`` when not needed)."""

    index: int
    sha256: str | None
    image: torch.Tensor | None


class _Prepare:
    """Decode image ``i`` of a set, hash it and bring it to the network input (runs in DataLoader workers)."""

    def __init__(self, images: ImageSet, prep: Preprocess | None, digest: bool,
                 needed: Callable[[str, int], bool] | None):
        self.images, self.prep, self.digest, self.needed = images, prep, digest, needed

    def __len__(self) -> int:
        return len(self.images)

    def __call__(self, i: int) -> tuple[str | None, torch.Tensor | None]:
        img = self.images[i]
        sha = tensor_sha256(img) if self.digest else None
        if self.needed is not None and not self.needed(sha, i):  # type: ignore[arg-type]
            return sha, None
        return sha, img if self.prep is None else self.prep(img)

    def __getitem__(self, i: int) -> tuple[str | None, np.ndarray | None] | Exception:
        """The worker side: numpy arrays, which travel by value through the pipe (a tensor would be
        shared by file descriptor, and workers cannot exit while unread ones are outstanding)."""
        try:
            sha, img = self(i)
            return sha, None if img is None else img.numpy()
        except Exception as e:  # noqa: BLE001 - handed to the parent, which re-raises it unchanged
            return e


def _prepared_items(prepare: _Prepare | _PreparePair, workers: int, batch_size: int, threaded: bool) -> Iterator[Any]:
    """``prepare(0), prepare(1), ...`` in order: in ``workers`` DataLoader processes, else (when
    ``threaded`` and :func:`pytest_i2i.pipeline.prep_threads` > 1) in threads a batch at a time,
    else in the calling thread."""
    from pytest_i2i import pipeline

    n = len(prepare)
    if workers > 0 and n > 1:
        return _prefetched(prepare, n, workers)
    threads = pipeline.prep_threads() if threaded and n > 1 else 1
    if threads > 1:
        return _in_threads(prepare, n, max(batch_size, threads), threads)
    return map(prepare, range(n))


def _in_threads(prepare: _Prepare | _PreparePair, n: int, chunk: int, threads: int) -> Iterator[Any]:
    """``prepare(0), prepare(1), ...`` in order, ``chunk`` items at a time by ``threads`` threads (an
    exception raised for an item is returned in its place).

    The caller waits until the whole chunk is ready, so its own work on them (a forward pass on
    all cores) never competes with the threads. Decoding, hashing and resizing release the GIL;
    each thread prepares with one torch thread (:func:`~pytest_i2i.images.prepare.one_thread` is
    per thread), so items are bit-identical to ``map(prepare, range(n))``.
    """
    from concurrent.futures import ThreadPoolExecutor

    def run(i: int) -> Any:
        try:
            return prepare(i)
        except Exception as e:  # noqa: BLE001 - handed to the caller, which re-raises it unchanged
            return e

    with ThreadPoolExecutor(threads, thread_name_prefix="i2i-prep") as pool:
        for start in range(0, n, chunk):
            yield from list(pool.map(run, range(start, min(n, start + chunk))))


def _prefetched(prepare: _Prepare | _PreparePair, n: int, workers: int) -> Iterator[Any]:
    """``prepare(0), prepare(1), ...`` computed ahead in forked DataLoader workers, in order
    (an exception raised for an item is returned in its place).

    Workers are forked (the image loaders are closures, which other start methods cannot
    pickle); where ``fork`` is unavailable the images are prepared in this process.
    """
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        yield from map(prepare, range(n))
        return
    from torch.utils.data import DataLoader

    loader = DataLoader(prepare, batch_size=None, shuffle=False, num_workers=min(workers, n),
                        multiprocessing_context="fork", prefetch_factor=4, collate_fn=_as_is)
    for item in loader:
        if isinstance(item, tuple):
            yield tuple(torch.from_numpy(v) if isinstance(v, np.ndarray) else v for v in item)
        else:
            yield torch.from_numpy(item) if isinstance(item, np.ndarray) else item


def _as_is(item: Any) -> Any:
    return item


def list_image_files(folder: Path, label: str) -> list[Path]:
    """The image files of ``folder`` (not recursive, hidden files skipped), sorted by name; none is an error."""
    files = sorted(
        p for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and not p.is_dir()
    )
    if not files:
        raise I2IInputError(f"{label}: folder {printable(str(folder))} contains no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return files


class _Decoded:
    """The loader of an image decoded already (:meth:`ImageSet.decoded`)."""

    def __init__(self, image: torch.Tensor):
        self.image = image

    def __call__(self) -> torch.Tensor:
        return self.image


class _FileLoader:
    """Decodes one image file on call (a class, so :meth:`ImageSet.iter_prepared` can tell file-backed sets)."""

    def __init__(self, path: Path, name: str):
        self.path, self.name = path, name

    def __call__(self) -> torch.Tensor:
        return load_image_file(self.path, self.name)


def _file_loader(path: Path, name: str) -> Callable[[], torch.Tensor]:
    return _FileLoader(path, name)


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
    vr = check_value_range(value_range, name)
    if isinstance(source, (str, os.PathLike)):
        p = Path(source).expanduser()
        if p.is_dir():
            files = list_image_files(p, name)
            return ImageSet([printable(f.name) for f in files],
                            [_file_loader(f, f"{name}: {printable(str(f))}") for f in files], name)
        if p.is_file():
            return ImageSet([printable(p.name)], [_file_loader(p, f"{name}: {printable(str(p))}")], name)
        if os.path.lexists(p):  # a FIFO, a device, a socket, a dangling link: never opened (it could block)
            from pytest_i2i.files import regular_file

            regular_file(p, f"{name}: path")
        raise I2IInputError(f"{name}: path {printable(str(p))} does not exist")
    if isinstance(source, torch.Tensor):
        source = plain_tensor(source, name)
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
    a: ImageSet, b: ImageSet, batch_size: int, *, resize: str = "clean", start: int = 0,
    num_workers: int | None = None,
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor, list[str]]]:
    """Yield ``(indices, A, B, notes)`` for position-paired sets of equal length.

    When the two images of a pair differ in size, ``b``'s image is resized to ``a``'s with
    ``resize`` and a note naming the pair is returned (callers record it in the result).
    Consecutive pairs of equal size are batched together. ``start`` is the position of the
    first pair in the whole set (for shards, see :mod:`pytest_i2i.distributed`); notes count from it.
    Pairs are decoded in DataLoader workers as in :meth:`ImageSet.iter_prepared`.
    """
    from pytest_i2i import pipeline

    check_resize_mode(resize)
    if batch_size < 1:
        raise I2IInputError(f"batch_size must be >= 1, got {batch_size}")
    if len(a) != len(b):
        raise I2IInputError(f"mismatched pair counts: {a.label} has {len(a)} images, {b.label} has {len(b)}")
    files = any(isinstance(load, _FileLoader) for s in (a, b) for load in s._loaders)
    if num_workers is None:
        num_workers = pipeline.num_workers() if files and len(a) > batch_size else 0
    prepare = _PreparePair(a, b, resize, start)
    items = _prepared_items(prepare, num_workers, batch_size, files)
    idx: list[int] = []
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    notes: list[str] = []
    try:
        for i, item in enumerate(items):
            if isinstance(item, BaseException):  # raised in a worker: re-raise it here, message intact
                raise item
            x, y, note = item
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
    finally:
        close = getattr(items, "close", None)
        if close is not None:  # stop DataLoader workers now, not when a traceback is freed
            close()


class _PreparePair:
    """Decode pair ``i``; ``b``'s image is resized to ``a``'s size when they differ (with a note)."""

    def __init__(self, a: ImageSet, b: ImageSet, resize: str, start: int):
        self.a, self.b, self.resize, self.start = a, b, resize, start

    def __len__(self) -> int:
        return len(self.a)

    def __call__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, str | None]:
        x, y = self.a[i], self.b[i]
        note = None
        if x.shape != y.shape:
            note = (
                f"pair {self.start + i} ({self.a.names[i]}, {self.b.names[i]}): {self.b.label} image "
                f"{tuple(y.shape[1:])} resized to {tuple(x.shape[1:])} with resize={self.resize!r}"
            )
            y = prepare_image(y, tuple(x.shape[1:]), self.resize)
        return x, y, note

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, str | None] | Exception:
        try:
            x, y, note = self(i)
            return x.numpy(), y.numpy(), note
        except Exception as e:  # noqa: BLE001 - handed to the parent, which re-raises it unchanged
            return e
