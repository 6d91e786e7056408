"""pytest_i2i.allocator: glibc's malloc tuned so freed blocks are reused instead of faulted in afresh.

Each case runs in a fresh interpreter: the tuning is process-wide and one-way.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_i2i import allocator

pytestmark = pytest.mark.skipif(allocator._glibc() is None, reason="the tuning is for glibc's malloc only")

_FAULTS = """
import resource, sys
import torch
from pytest_i2i import allocator
if sys.argv[1] == "keep":
    assert allocator.keep_freed_memory() and allocator.keep_freed_memory() and allocator.freed_memory_kept()
else:
    assert not allocator.freed_memory_kept()
for _ in range(8):  # 64 MiB blocks: the heap grows until freed blocks fit the next (aligned) request
    torch.ones(16 << 20).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):  # what a forward pass does with its activations: allocate, write, free
    torch.ones(16 << 20).sum()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip().splitlines()[-1])


def test_repeated_large_allocations_stop_faulting_in_fresh_pages():
    default, kept = _page_faults("default"), _page_faults("keep")
    # glibc's default: every 64 MiB block is a fresh mapping, 16384 pages of 4 KiB each time
    # (fewer, larger faults where transparent huge pages are always on)
    assert default >= 100
    assert kept <= max(50, default // 20), (default, kept)


def test_the_tuning_is_a_no_op_off_glibc(monkeypatch):
    monkeypatch.setattr(allocator, "_state", {})
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    assert allocator.keep_freed_memory() is False and allocator.freed_memory_kept() is False
