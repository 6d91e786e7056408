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
import contextlib, resource, sys
import torch
from pytest_i2i import allocator
mode = sys.argv[1]
if mode == "default":
    assert not allocator.freed_memory_kept()
else:
    assert allocator.keep_freed_memory() and allocator.keep_freed_memory() and allocator.freed_memory_kept()
scope = allocator.forward_pass_memory if mode == "in-pass" else contextlib.nullcontext

def passes(k):  # what a forward pass does with its activations: allocate, write, free
    for _ in range(k):
        with scope():
            torch.ones(16 << 20).sum()  # 64 MiB

passes(8)  # the heap grows until freed blocks fit the next (aligned) request
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
passes(5)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip().splitlines()[-1])


def test_blocks_of_a_forward_pass_are_reused_and_others_are_returned():
    default, in_pass, between = _page_faults("default"), _page_faults("in-pass"), _page_faults("between-passes")
    # glibc's default: every 64 MiB block is a fresh mapping, 16384 pages of 4 KiB each time
    # (fewer, larger faults where transparent huge pages are always on)
    assert default >= 100
    assert in_pass <= max(50, default // 20), (default, in_pass)
    # outside a pass a large block still gets its own mapping (and goes back to the system when freed)
    assert between >= default // 2, (default, between)


def test_the_tuning_is_a_no_op_off_glibc(monkeypatch):
    monkeypatch.setattr(allocator, "_state", {})
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    assert allocator.keep_freed_memory() is False and allocator.freed_memory_kept() is False
