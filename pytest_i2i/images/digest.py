"""Content hashes of decoded images: what the caches key images by, never their file names."""

from __future__ import annotations

import hashlib

import torch


def tensor_sha256(t: torch.Tensor) -> str:
    """Hex sha256 of a tensor's shape, dtype and bytes (contiguous, on CPU).

    For a decoded image (float32 (3, H, W) in [0, 1]) it identifies the pixels exactly: two
    files with the same pixels hash alike, one changed pixel changes the hash.
    """
    data = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{tuple(data.shape)}|{data.dtype}|".encode())
    h.update(memoryview(data.numpy()).cast("B"))  # the buffer itself: no per-image copy
    return h.hexdigest()
