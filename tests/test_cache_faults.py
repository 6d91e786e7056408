"""Issue 9's cache faults: damaged entries are dropped and recomputed with identical results, a
writer killed by SIGKILL mid-write leaves no partial entry, and four concurrent worker processes
sharing one cache folder get the results of one worker and leave a consistent index.

The backbone is a tiny synthetic net with seeded random weights (nothing calibrated)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch

from pytest_i2i import cache
from pytest_i2i.cache import CacheWarning
from pytest_i2i.cache.store import SUFFIX, TEST_SLEEP_ENV, TMP_PREFIX, Store

# Defines and registers the tiny backbone; also run as a worker script (argv: cache dir or "-", output file).
WORKER = r'''
import sys
import torch
from torch import nn
import pytest_i2i
from pytest_i2i import cache
from pytest_i2i.backbones.registry import register_backbone
from pytest_i2i.backbones.spec import BackboneSpec
from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile

CALLS = [0]

class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=3)

    def forward(self, x):
        CALLS[0] += 1  # forward passes (batches), padding included
        y = self.conv(x)
        return {"pool": y.mean(dim=(2, 3)), "map": y[:, :, :3, :3].flatten(1)}

def init(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))

register_backbone(BackboneSpec(name="fault-test-net", create=TinyNet, init_random=init,
                               pretrained=PretrainedCfg(files=(WeightsFile("fault.pth"),)), input_size=(12, 12),
                               outputs=("pool", "map")), overwrite=True)
IMAGES = torch.rand(24, 3, 20, 20, generator=torch.Generator().manual_seed(0))

def features(order):
    bb = pytest_i2i.backbone("fault-test-net", weights="random", seed=0)
    out = bb.features(pytest_i2i.load_images(IMAGES[order]), batch_size=4)
    back = torch.empty_like(torch.tensor(order))
    back[torch.tensor(order)] = torch.arange(len(order))
    return {k: v[back] for k, v in out.items()}

if __name__ == "__main__":
    if sys.argv[1] != "-":
        cache.configure(sys.argv[1])
    shift = int(sys.argv[3])  # each worker walks the images from another starting point
    order = [(i + shift) % len(IMAGES) for i in range(len(IMAGES))]
    torch.save(features(order), sys.argv[2])
'''


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    path = tmp_path_factory.mktemp("worker") / "cache_worker.py"
    path.write_text(WORKER)
    namespace: dict = {"__name__": "cache_worker"}
    exec(compile(WORKER, str(path), "exec"), namespace)  # the same definitions in this process
    yield path, namespace
    from pytest_i2i.backbones import factory, registry

    registry._REGISTRY.pop("fault-test-net", None)
    for key in [k for k in factory._LOADED if k[0] == "fault-test-net"]:
        del factory._LOADED[key]


def _fresh(namespace):
    from pytest_i2i.backbones import factory

    for key in [k for k in factory._LOADED if k[0] == "fault-test-net"]:
        del factory._LOADED[key]
    namespace["CALLS"][0] = 0
    return namespace["features"](list(range(24)))


def _damage(p, how: str) -> None:
    raw = bytearray(p.read_bytes())
    if how == "flip":
        raw[len(raw) // 2] ^= 0xFF
        raw[-1] ^= 0x01
    elif how == "truncate":
        raw = raw[: len(raw) // 2]
    elif how == "garbage":
        raw = bytearray(b"\x00garbage" * 10)
    elif how == "empty":
        raw = bytearray()
    p.write_bytes(bytes(raw))


@pytest.mark.parametrize("how", ["flip", "truncate", "garbage", "empty"])
def test_damaged_entry_is_dropped_and_recomputed(worker, tmp_path, how):
    _, ns = worker
    previous = cache.configure(tmp_path / "c")
    try:
        cold = _fresh(ns)
        assert ns["CALLS"][0] == 6  # 24 images, batches of 4
        store = cache.get_cache()
        entries = sorted((tmp_path / "c").rglob(f"*{SUFFIX}"))
        assert len(entries) == 24 and store.info()["entries"] == 24
        _damage(entries[5], how)
        with pytest.warns(CacheWarning, match="damaged"):
            again = _fresh(ns)
        assert ns["CALLS"][0] == 1  # one forward pass: only the damaged entry was recomputed
        assert all(torch.equal(again[k], cold[k]) for k in cold)
        with warnings.catch_warnings():
            warnings.simplefilter("error", CacheWarning)  # rewritten intact: no warning, no forward pass
            third = _fresh(ns)
        assert ns["CALLS"][0] == 0 and all(torch.equal(third[k], cold[k]) for k in cold)
        assert store.info()["entries"] == 24
    finally:
        cache.restore(previous)


WRITER = r'''
import os, sys
from pytest_i2i.cache.store import Store
Store(sys.argv[1], 10**9).put("outputs", "ab" * 32, b"N" * int(sys.argv[2]))
'''


def test_writer_killed_mid_write_leaves_no_partial_entry(tmp_path):
    root = tmp_path / "c"
    store = Store(root, 10**9)
    key = "ab" * 32
    store.put("outputs", key, b"old entry")
    size = 20_000_000
    env = {**os.environ, TEST_SLEEP_ENV: "60"}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(size)], env=env)
    folder = store.path("outputs", key).parent
    deadline = time.monotonic() + 60
    try:
        # wait until the temporary file is complete (the writer then sleeps before its rename)
        while time.monotonic() < deadline:
            tmps = list(folder.glob(f"{TMP_PREFIX}*"))
            if tmps and tmps[0].stat().st_size == size + 45:
                break
            assert proc.poll() is None, "the writer ended before it could be killed"
            time.sleep(0.02)
        else:
            pytest.fail("the writer never wrote its temporary file")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        reader = Store(root, 10**9)  # a fresh reader (another process's view)
        assert reader.get("outputs", key) == b"old entry"  # the previous complete entry, not a partial one
    assert reader.info()["entries"] == 1
    assert list(folder.glob(f"{TMP_PREFIX}*"))  # the orphan exists, is never read, and clear() removes it
    reader.clear()
    assert not root.joinpath("i2i-cache-v1").exists()


def test_four_concurrent_workers_match_one_worker(worker, tmp_path):
    script, ns = worker
    previous = cache.configure(None)  # one worker, no cache at all
    try:
        expected = _fresh(ns)
    finally:
        cache.restore(previous)
    root = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, str(script), str(root), str(tmp_path / f"w{k}.pt"), str(k * 5)])
             for k in range(4)]
    for p in procs:
        assert p.wait(timeout=180) == 0
    for k in range(4):
        got = torch.load(tmp_path / f"w{k}.pt")
        assert set(got) == set(expected) and all(torch.equal(got[n], expected[n]) for n in expected)
    # the index agrees with the entry files, and every entry is intact
    store = Store(root, 10**9)
    files = {p.stem for p in root.rglob(f"*{SUFFIX}")}
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        info = store.info()
        assert info["entries"] == len(files) == 24
        assert len(store.get_many("features", sorted(files))) == 24
    assert not list(root.rglob(f"{TMP_PREFIX}*"))
