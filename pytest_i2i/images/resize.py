"""The two resize conventions. Every result records which one it used.

- ``clean``: Pillow bicubic with antialiasing, applied per channel to float32 data, then
  clipped to [0, 1] (the clean-fid convention, Parmar et al. 2022). Correct for downsampling.
- ``legacy-pytorch``: ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``
  without antialiasing (pytorch-fid's convention). Aliases when downsampling; use it to
  reproduce published pytorch-fid numbers.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pytest_i2i.errors import I2IInputError

RESIZE_MODES = ("clean", "legacy-pytorch")


def check_resize_mode(mode: str) -> str:
    if mode not in RESIZE_MODES:
        raise I2IInputError(f"resize={mode!r} is not a resize mode; choose one of {', '.join(RESIZE_MODES)}")
    return mode


def resize_batch(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize a canonical batch (N, 3, H, W) in [0, 1] to ``size`` = (H', W') with ``mode``.

    Returns the input unchanged when it already has that size.
    """
    check_resize_mode(mode)
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "legacy-pytorch":
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    from PIL import Image

    h, w = size
    arr = x.detach().cpu().numpy().astype(np.float32)
    out = np.empty((arr.shape[0], arr.shape[1], h, w), dtype=np.float32)
    for i in range(arr.shape[0]):
        for c in range(arr.shape[1]):
            ch = Image.fromarray(arr[i, c])  # mode "F"
            out[i, c] = np.asarray(ch.resize((w, h), resample=Image.Resampling.BICUBIC))
    return torch.from_numpy(np.clip(out, 0.0, 1.0)).to(x.device)
