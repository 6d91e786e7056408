"""Freed memory kept for reuse: glibc's malloc tuned so CPU forward passes stop faulting in fresh pages.

A CPU forward pass allocates its activations anew on every call. glibc's ``malloc`` serves blocks
above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and returns them to the system on
``free``, so each call touches fresh pages: the kernel faults in and zeroes them, once per 4 KiB
page. For the FID Inception at batch 16 (2 threads, 299 px) that is 85-175 thousand page faults per
forward pass, about a fifth of its time, and a varying share, because the number depends on what
else the process allocated in between.

:func:`keep_freed_memory` sets two of glibc's ``mallopt`` parameters once per process:
``M_MMAP_MAX = 0`` (large blocks come from the heap, not from their own mappings) and
``M_TRIM_THRESHOLD =`` :data:`TRIM_THRESHOLD` (free memory at the top of the heap is returned to
the system only beyond that). Freed blocks are then reused: after the first few passes (while the
heap grows until freed blocks fit the next requests) a pass faults in no fresh pages. It changes
no value, only where blocks live. The price: the memory of the largest pass stays mapped in the
process afterwards, as a caching allocator keeps it, and the heap holds some slack. Measured on
``fid()`` of 32 + 32 PNG files (``inception-fid``, 2 threads, this project's 2-core machine): a
pass took 1.95 s instead of 2.56 s at batch 16 (peak RSS 1273 MiB instead of 1260 MiB) and 2.03 s
instead of 2.85 s at batch 32 (1740 MiB instead of 1604 MiB); the resident size then stays at
its peak.

:mod:`pytest_i2i.backbones.backbone` calls it before its first CPU forward pass, unless
:func:`pytest_i2i.pipeline.configure_pipeline` (``reuse_memory=False``) or ``I2I_REUSE_MEMORY=0``
turns it off. Elsewhere than glibc (macOS, Windows, musl) it does nothing. Like the rest of this
layer it imports nothing from the project.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: free memory at the heap's top kept for reuse before glibc returns it to the system
TRIM_THRESHOLD = 1 << 30

_state: dict[str, bool] = {}


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - musl has no such symbol
        return libc
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Tune glibc's malloc once per process so freed blocks are reused (see the module docstring).

    Returns:
        Whether the tuning is in effect (``False`` where the C library is not glibc, or ``mallopt``
        refused a parameter).
    """
    if "active" not in _state:
        libc = _glibc()
        ok = libc is not None
        if ok:
            ok = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        _state["active"] = ok
    return _state["active"]


def freed_memory_kept() -> bool:
    """Whether :func:`keep_freed_memory` has tuned this process."""
    return _state.get("active", False)
