"""Freed memory kept for reuse: glibc's malloc tuned so CPU forward passes stop faulting in fresh pages.

A CPU forward pass allocates its activations anew on every call. glibc's ``malloc`` serves blocks
above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and returns them to the system on
``free``, so each call touches fresh pages: the kernel faults in and zeroes them, once per 4 KiB
page. For the FID Inception at batch 16 (2 threads, 299 px) that is about 106 thousand page faults
per forward pass and a fifth of its time (``benchmarks/bench_pipeline_overhead.py``: 423,287 faults
per bare pass of 4 batches and 28.8 img/s without this module, 0 faults and 37.2 img/s with it;
``benchmarks/results/history/pipeline_overhead_{before_stop25,stop25_host}.json``).

:func:`keep_freed_memory` sets glibc's ``mallopt`` parameters once per process:
``M_TRIM_THRESHOLD =`` :data:`TRIM_THRESHOLD` (free memory at the top of the heap is returned to
the system only beyond that) and ``M_MMAP_THRESHOLD =`` :data:`MMAP_THRESHOLD`, fixed. Around each
forward pass :func:`forward_pass_memory` sets ``M_MMAP_MAX = 0``: the activations come from the
heap, whatever their size, and the next pass reuses them (after the first few passes, while the
heap grows until freed blocks fit the next requests, a pass faults in no fresh pages). Between
passes, blocks of 128 KiB or more (a batch, the kept features, the statistics' rows) get their own
mappings, as glibc gives them at first, so long-lived data never lands in the activations' space
and splits it: with mappings switched off all the time, the heap kept growing by fragments
(``benchmarks/bench_scale.py --parts memory``: peak RSS 1498 MiB at N = 256 and 1805 MiB at
N = 4096). It changes no value, only where blocks live. The memory of the largest pass stays with
the process afterwards, as a caching allocator keeps it, and peak memory varies more from run to
run: FID statistics of N = 256 / 4096 images peaked at 1286-1639 / 1462-1737 MiB in two runs
with it, 1368-1419 / 1491-1546 MiB without (``benchmarks/README.md``, stop 25).

:mod:`pytest_i2i.backbones.backbone` calls it before its first CPU forward pass, unless
:func:`pytest_i2i.pipeline.configure_pipeline` (``reuse_memory=False``) or ``I2I_REUSE_MEMORY=0``
turns it off. Elsewhere than glibc (macOS, Windows, musl) it does nothing. Like the rest of this
layer it imports nothing from the project.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
#: outside forward passes, blocks of this size or more get their own mapping (glibc's starting
#: value, kept fixed: glibc would otherwise raise it as large blocks are freed)
MMAP_THRESHOLD = 128 << 10
#: glibc's default limit on the number of such mappings
MMAP_MAX_DEFAULT = 65536
#: free memory at the heap's top kept for reuse before glibc returns it to the system
TRIM_THRESHOLD = 1 << 30

_state: dict[str, Any] = {}  # "active": bool, "libc": the C library (or None)


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
            ok = (bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
                  and bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)))
        _state["active"] = ok
        _state["libc"] = libc
    return _state["active"]


@contextmanager
def forward_pass_memory() -> Iterator[None]:
    """Around a forward pass (after :func:`keep_freed_memory`; a no-op before it or off glibc): every
    block comes from the heap (``M_MMAP_MAX = 0``), so the pass reuses the blocks of the one before.

    Call it from the thread that runs the pass, with no other thread allocating large blocks meanwhile
    (the pipeline prepares images before or after passes, never during them)."""
    libc = _state.get("libc") if _state.get("active") else None
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_MAX, 0)
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_MAX, MMAP_MAX_DEFAULT)


def freed_memory_kept() -> bool:
    """Whether :func:`keep_freed_memory` has tuned this process."""
    return _state.get("active", False)
