"""Bringing a decoded image to a network's input: centre crop, resize, normalise.

A :class:`Preprocess` says how (the backbone builds one from its pretrained config, see
:meth:`pytest_i2i.backbones.backbone.Backbone.preprocess`); :meth:`ImageSet.iter_prepared
<pytest_i2i.images.imageset.ImageSet.iter_prepared>` applies it to every image of a set, in
DataLoader workers or in the calling process with bit-identical results.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.resize import check_resize_mode, resize_batch


@dataclass(frozen=True)
class Preprocess:
    """How one decoded (3, H, W) image in [0, 1] becomes a network input (3, *size).

    Attributes:
        size: (H, W) of the input.
        resize: the resize mode (:data:`~pytest_i2i.images.resize.RESIZE_MODES`).
        center_crop: first crop the largest centred region with the aspect ratio of ``size``
            (CLIP / timm evaluation preprocessing); otherwise the whole image is resized.
        crop_pct: with ``center_crop``, the side of the crop as a fraction of that largest region
            (ImageNet evaluation's central crop: 0.875 = 224/256 crops what a resize of the short
            side to 256 and a 224 centre crop keep, as the TF EfficientNet and Inception evaluation
            code and timm's ``crop_pct`` do); 1 keeps the whole region.
        mean, std: per-channel normalisation ``(x - mean) / std`` after resizing (the network's
            pretrained config); ``None`` leaves the input in [0, 1].
        channels_last: lay the prepared (3, H, W) image out in memory as (H, W, 3) (same values),
            for networks that run channels-last: :func:`stack_prepared` then builds their batch
            without a separate layout conversion.

    Raises:
        I2IInputError: an unknown resize mode, a size that is not two positive integers,
            ``mean`` / ``std`` not three numbers (``std`` positive), or only one of them, or
            ``crop_pct`` outside (0, 1].
    """

    size: tuple[int, int]
    resize: str = "clean"
    center_crop: bool = False
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    crop_pct: float = 1.0
    channels_last: bool = False

    def __post_init__(self) -> None:
        check_resize_mode(self.resize)
        if not 0.0 < self.crop_pct <= 1.0:
            raise I2IInputError(f"preprocessing crop_pct must be in (0, 1], got {self.crop_pct!r}")
        if len(self.size) != 2 or not all(isinstance(v, int) and v > 0 for v in self.size):
            raise I2IInputError(f"preprocessing size must be two positive integers (H, W), got {self.size!r}")
        if (self.mean is None) != (self.std is None):
            raise I2IInputError("preprocessing needs both mean and std, or neither")
        if self.mean is not None and (len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0):
            raise I2IInputError(f"preprocessing mean/std must be 3 numbers each (std > 0), got {self.mean}, {self.std}")

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """``image`` (3, H, W) → (3, *size): :func:`prepare_image`, then :meth:`normalize`.

        All of it runs with one intra-op thread (see :func:`prepare_image`): an image is too small
        for a parallel region to pay off, and on a busy machine each one waits for a second core.
        """
        with one_thread():
            out = self.normalize(prepare_image(image, self.size, self.resize, self.center_crop, self.crop_pct))
            return out.permute(1, 2, 0).contiguous().permute(2, 0, 1) if self.channels_last else out

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` per channel of a (3, H, W) image or (N, 3, H, W) batch in float32
        (``x`` itself without ``mean``/``std``)."""
        if self.mean is None:
            return x
        mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=x.device).view(3, 1, 1)
        return (x - mean) / std


def stack_prepared(images: list[torch.Tensor]) -> torch.Tensor:
    """A batch (N, 3, H, W) of prepared images, channels-last in memory when the images are
    (see :attr:`Preprocess.channels_last`), else contiguous. Copies with one thread."""
    with one_thread():
        if all(_hwc(im) for im in images):
            return torch.stack([im.permute(1, 2, 0) for im in images]).permute(0, 3, 1, 2)
        return torch.stack(images)


def _hwc(image: torch.Tensor) -> bool:
    return image.dim() == 3 and not image.is_contiguous() and image.permute(1, 2, 0).is_contiguous()


def prepare_image(img: torch.Tensor, size: tuple[int, int], resize: str, center_crop: bool = False,
                  crop_pct: float = 1.0) -> torch.Tensor:
    """One decoded (3, H, W) image brought to ``size``: the centre crop (if asked, of side
    ``crop_pct`` of the largest one with the aspect ratio of ``size``), then ``resize``.

    Runs with one intra-op thread in every process (DataLoader workers have one): torch's
    bilinear resize rounds differently with more threads, and features must not depend on where
    or with how many workers an image was prepared. Every path that resizes network inputs
    goes through here.
    """
    with one_thread():
        if center_crop:
            img = center_crop_to_aspect(img, size, crop_pct)
        return resize_batch(img[None], size, resize)[0]


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one torch intra-op thread (the caller's count is restored after it)."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def center_crop_to_aspect(img: torch.Tensor, size: tuple[int, int], crop_pct: float = 1.0) -> torch.Tensor:
    """The largest centred crop of a (C, H, W) image with the aspect ratio of ``size`` = (h, w),
    its sides scaled by ``crop_pct`` (rounded down, as TF's ``tf.cast(..., tf.int32)``) when < 1.

    With ``crop_pct = 224/256`` a square image keeps its central 87.5 % per side: what resizing the
    short side to 256 and cropping 224 keeps, computed without the intermediate resize (the TF
    EfficientNet evaluation code crops first and resizes once, as here).
    """
    _, h, w = img.shape
    th, tw = size
    if h * tw > w * th:  # too tall
        crop_h, crop_w = max(1, round(w * th / tw)), w
    else:
        crop_h, crop_w = h, max(1, round(h * tw / th))
    if crop_pct < 1.0:
        crop_h, crop_w = max(1, int(crop_h * crop_pct)), max(1, int(crop_w * crop_pct))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    return img[:, top:top + crop_h, left:left + crop_w]
