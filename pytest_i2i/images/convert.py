"""Conversion of one image (file, PIL image, numpy array, torch tensor) to the canonical format.

Canonical format: ``torch.float32`` tensor of shape (3, H, W), RGB, values in [0, 1].

Rules (documented in the README, section "Images"):

- Files are decoded with Pillow; the EXIF orientation tag is applied (the image is shown upright).
- 8-bit data is divided by 255, 16-bit data (16-bit PNG/TIFF, ``uint16`` arrays) by 65535.
  Pillow reduces 16-bit *RGB* PNGs to 8 bits per channel when decoding; 16-bit grayscale keeps 16 bits.
- Grayscale (1 channel, modes ``1``/``L``/``I;16``/``I``/``F``) is replicated to 3 channels.
- Alpha (RGBA, LA, palette with transparency, 4-channel arrays) is composited on white:
  ``rgb * alpha + 1 * (1 - alpha)``. Alpha is never silently dropped.
- CMYK, YCbCr, LAB and HSV images are converted to RGB by Pillow; ``La`` (gray with premultiplied
  alpha) to ``LA`` by Pillow, then composited as above.
- Sparse tensors are made dense and quantized tensors dequantized (their real values), then
  read as any tensor; meta tensors (no data) and nested tensors are refused.
- Float inputs must lie in the declared ``value_range`` (default (0, 1); (-1, 1) is mapped by
  ``(x + 1) / 2``). Values outside it by more than 1e-6, NaN or Inf raise :class:`I2IInputError`.
- numpy arrays are HWC (or HW); torch tensors are CHW (or HW). Batches: NHWC arrays, NCHW tensors.
- Images over ``MAX_PIXELS`` pixels (default 89,478,485, Pillow's own warning limit) are refused
  before decoding (decompression-bomb guard).
- File names that are not valid UTF-8 (POSIX bytes names) are shown with ``\\xNN`` escapes in
  sample names and messages (:func:`printable`), so a message can always be printed.
"""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pytest_i2i.errors import I2IInputError

MAX_PIXELS = 89_478_485
RANGE_TOLERANCE = 1e-6


def printable(name: str) -> str:
    """``name`` with undecodable bytes of a file name (``os.fsdecode``'s lone surrogates) as ``\\xNN``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _check_range(arr: np.ndarray, name: str, value_range: tuple[float, float]) -> np.ndarray:
    if not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "Inf"
        raise I2IInputError(f"{name}: contains {bad} values")
    lo, hi = value_range
    amin, amax = float(arr.min(initial=lo)), float(arr.max(initial=hi))
    if amin < lo - RANGE_TOLERANCE or amax > hi + RANGE_TOLERANCE:
        hint = ""
        if value_range == (0.0, 1.0) and amin < 0:
            hint = " (declare value_range=(-1, 1) for tanh outputs)"
        elif value_range == (0.0, 1.0) and 1.5 < amax <= 255:
            hint = " (0-255 data? pass uint8 or divide by 255)"
        raise I2IInputError(
            f"{name}: float values span [{amin:.6g}, {amax:.6g}], outside the declared range [{lo:g}, {hi:g}]{hint}"
        )
    if (lo, hi) != (0.0, 1.0):
        arr = (arr - lo) / (hi - lo)
    return np.clip(arr, 0.0, 1.0)


def _to_unit_float(arr: np.ndarray, name: str, value_range: tuple[float, float]) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        return _check_range(arr.astype(np.float64), name, value_range).astype(np.float32)
    raise I2IInputError(
        f"{name}: unsupported dtype {arr.dtype}; use uint8 (0-255), uint16 (0-65535) or float in {value_range}"
    )


def _channels_to_rgb(hwc: np.ndarray, name: str) -> np.ndarray:
    """(H, W, C) float in [0, 1] with C in {1, 2, 3, 4} to (H, W, 3); alpha composited on white."""
    c = hwc.shape[2]
    if c == 1:
        return np.repeat(hwc, 3, axis=2)
    if c == 2:  # gray + alpha
        gray, alpha = hwc[..., :1], hwc[..., 1:]
        return np.repeat(gray * alpha + (1.0 - alpha), 3, axis=2)
    if c == 3:
        return hwc
    if c == 4:
        rgb, alpha = hwc[..., :3], hwc[..., 3:]
        return rgb * alpha + (1.0 - alpha)
    raise I2IInputError(f"{name}: {c} channels; expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)")


def array_to_tensor(arr: np.ndarray, name: str, value_range: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """One HWC / HW numpy image to the canonical (3, H, W) float32 tensor."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise I2IInputError(f"{name}: numpy image must be HW or HWC, got shape {tuple(arr.shape)}")
    if arr.shape[2] not in (1, 2, 3, 4):
        raise I2IInputError(
            f"{name}: numpy images are HWC; last axis has {arr.shape[2]} channels (shape {tuple(arr.shape)}). "
            "Pass torch tensors for CHW data."
        )
    _check_size(arr.shape[0], arr.shape[1], name)
    unit = _to_unit_float(arr, name, value_range)
    rgb = _channels_to_rgb(unit, name)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32))


def plain_tensor(t: torch.Tensor, name: str) -> torch.Tensor:
    """``t`` as an ordinary dense CPU tensor: sparse tensors are made dense (``to_dense``), quantized ones
    are dequantized (``dequantize``: their real values); meta and nested tensors are refused."""
    if t.is_meta:
        raise I2IInputError(f"{name}: a meta tensor holds no data (shape {tuple(t.shape)}); pass a tensor on a real "
                            "device (cpu, cuda, mps)")
    if t.is_nested:
        raise I2IInputError(f"{name}: a nested tensor; pass a list of (C, H, W) tensors instead")
    try:
        if t.layout != torch.strided:
            t = t.to_dense()
        if t.is_quantized:
            t = t.dequantize()
        return t.detach().cpu()
    except (RuntimeError, TypeError, NotImplementedError) as e:
        raise I2IInputError(f"{name}: cannot read a {t.layout} {t.dtype} tensor ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None


def tensor_to_tensor(t: torch.Tensor, name: str, value_range: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """One CHW / HW torch image to the canonical (3, H, W) float32 tensor."""
    t = plain_tensor(t, name)
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise I2IInputError(f"{name}: torch image must be CHW or HW, got shape {tuple(t.shape)}")
    if t.shape[0] not in (1, 2, 3, 4):
        raise I2IInputError(
            f"{name}: torch images are CHW; first axis has {t.shape[0]} channels (shape {tuple(t.shape)})"
        )
    if t.dtype == torch.bfloat16 or t.dtype == torch.float16:
        t = t.float()
    if t.shape[0] == 3 and t.dtype in (torch.float32, torch.float64) and tuple(value_range) == (0.0, 1.0):
        _check_size(t.shape[1], t.shape[2], name)
        lo, hi = torch.aminmax(t)
        if lo >= 0 and hi <= 1:  # False for NaN: the general path below names the problem
            # already canonical up to dtype and layout: one copy (the general path makes three)
            return t.to(torch.float32, memory_format=torch.contiguous_format, copy=True)
    return array_to_tensor(t.permute(1, 2, 0).numpy(), name, value_range)


def _check_size(h: int, w: int, name: str) -> None:
    if h < 1 or w < 1:
        raise I2IInputError(f"{name}: empty image ({h}x{w})")
    if h * w > MAX_PIXELS:
        raise I2IInputError(
            f"{name}: {w}x{h} = {w * h} pixels exceeds the limit of {MAX_PIXELS} "
            "(decompression-bomb guard; raise pytest_i2i.images.convert.MAX_PIXELS to allow it)"
        )


def pil_to_tensor(img: Any, name: str) -> torch.Tensor:
    """One PIL image to the canonical tensor, applying the documented mode rules."""
    from PIL import ImageOps

    _check_size(img.height, img.width, name)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not make the pixels unusable
        pass
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode == "La":  # gray with premultiplied alpha: Pillow converts it to LA only
        img = img.convert("LA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
        img = img.convert("RGBA" if mode == "RGBa" else "RGB")
    elif mode == "1":
        img = img.convert("L")
    try:
        arr = np.asarray(img)
    except (TypeError, ValueError, OSError) as e:
        raise I2IInputError(f"{name}: PIL image mode {img.mode!r} cannot be read ({e})") from None
    if img.mode.startswith("I;16") or img.mode == "I":
        arr = arr.astype(np.int64)
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
            raise I2IInputError(f"{name}: integer image with values outside 0..65535 (mode {img.mode})")
        arr = arr.astype(np.uint16)
    elif img.mode == "F":
        arr = arr.astype(np.float32)
    return array_to_tensor(arr, name)


def _bad_link(p: Path) -> str:
    try:
        p.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop this way
        return "symlink loop"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symlink loop"
    return "dangling symbolic link (its target does not exist)"


def load_image_file(path: str | os.PathLike, name: str | None = None) -> torch.Tensor:
    """Decode one image file to the canonical tensor; every failure is an :class:`I2IInputError` naming it."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    label = printable(name or str(p))
    if not p.exists():
        if p.is_symlink():
            raise I2IInputError(f"{label}: {_bad_link(p)}")
        raise I2IInputError(f"{label}: file does not exist")
    if not p.is_file():
        raise I2IInputError(f"{label}: not a regular file")
    if p.stat().st_size == 0:
        raise I2IInputError(f"{label}: empty (zero-byte) file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. "Corrupt EXIF data": the pixels still decode
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                _check_size(img.height, img.width, label)
                img.load()
                return pil_to_tensor(img, label)
    except I2IInputError:
        raise
    except UnidentifiedImageError:
        raise I2IInputError(f"{label}: not an image file Pillow can decode") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise I2IInputError(f"{label}: refused by the decompression-bomb guard ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise I2IInputError(f"{label}: truncated or corrupt image ({type(e).__name__}: {e})") from None
