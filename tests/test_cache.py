"""The on-disk cache (pytest_i2i.cache): store, feature keys, warm runs without forward passes or
model builds, eviction, the CLI, and the plugin wiring (a second run loads no generator).

Backbones here are tiny synthetic nets with seeded random weights; nothing is calibrated."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import pytest_i2i
from pytest_i2i import cache
from pytest_i2i.backbones import factory, registry
from pytest_i2i.backbones.registry import register_backbone
from pytest_i2i.backbones.spec import BackboneSpec
from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile
from pytest_i2i.cache.features import feature_key
from pytest_i2i.cache.store import Store, pack_tensors, unpack_tensors
from pytest_i2i.images.digest import tensor_sha256

NAME = "cache-test-net"
COUNTS = {"create": 0, "forward": 0}


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        COUNTS["create"] += 1
        self.conv = nn.Conv2d(3, 4, kernel_size=3)

    def forward(self, x):
        COUNTS["forward"] += 1  # forward passes (batches)
        y = self.conv(x)
        return {"pool": y.mean(dim=(2, 3)), "map": y[:, :, :2, :2].flatten(1)}


def _init(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))


def _spec(**kw):
    return BackboneSpec(name=NAME, create=TinyNet, init_random=_init,
                        pretrained=PretrainedCfg(files=(WeightsFile("tiny.pth"),)), input_size=(12, 12),
                        outputs=("pool", "map"), **kw)


@pytest.fixture
def tiny():
    register_backbone(_spec(), overwrite=True)
    COUNTS.update(create=0, forward=0)
    yield
    registry._REGISTRY.pop(NAME, None)
    for key in [k for k in factory._LOADED if k[0] == NAME]:
        del factory._LOADED[key]


@pytest.fixture
def cache_dir(tmp_path):
    previous = cache.configure(tmp_path / "cache")
    yield tmp_path / "cache"
    cache.restore(previous)


def _fresh_backbone(**kw):
    for key in [k for k in factory._LOADED if k[0] == NAME]:
        del factory._LOADED[key]
    return pytest_i2i.backbone(NAME, **kw)


def _images(n=6, seed=0, size=20):
    return pytest_i2i.load_images(torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)))


# -- store -----------------------------------------------------------------------------------------
def test_parse_size():
    assert cache.parse_size("2GB") == 2 * 10**9
    assert cache.parse_size("1.5 MiB") == int(1.5 * 2**20)
    assert cache.parse_size("123") == 123 and cache.parse_size(0) == 0
    with pytest.raises(pytest_i2i.I2IInputError, match="not a size"):
        cache.parse_size("lots")


def test_store_round_trip_info_and_clear(tmp_path):
    store = Store(tmp_path / "c", max_size=10**6)
    key = "ab" * 32
    assert store.get("features", key) is None
    store.put("features", key, b"payload")
    assert store.get("features", key) == b"payload"
    p = store.path("features", key)
    assert p.parent.parent.parent.parent.name == "i2i-cache-v1" and (tmp_path / "c" / "CACHEDIR.TAG").is_file()
    info = store.info()
    assert info["entries"] == 1 and info["namespaces"]["features"]["entries"] == 1
    assert info["bytes"] == p.stat().st_size
    assert store.clear() == 1 and not p.exists() and store.info()["entries"] == 0


def test_entries_are_written_atomically_without_fsync(tmp_path, monkeypatch):
    """Two fsync calls per entry cost ~10 ms (a third of a ViT-B/32 forward pass per image): entries
    are renamed into place unsynced; a power-loss victim fails its checksum and is recomputed."""
    import os

    store = Store(tmp_path / "c", max_size=10**6)
    store.put("features", "cd" * 32, b"first")  # opens the index and writes CACHEDIR.TAG (synced once)
    calls = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd))
    items = {f"{i:02x}" * 32: f"payload {i}".encode() for i in range(5)}
    store.put_many("features", items)
    assert calls == []
    assert all(store.get("features", k) == v for k, v in items.items())
    assert not list(store.dir.rglob(".tmp-*"))


def test_tensor_bundles_are_bit_exact():
    t = {"a": torch.randn(3, 5), "b": torch.arange(4, dtype=torch.int64), "c": torch.randn(2, dtype=torch.float64)}
    back, meta = unpack_tensors(pack_tensors(t, {"x": 1}))
    assert meta == {"x": 1}
    for k in t:
        assert back[k].dtype == t[k].dtype and torch.equal(back[k], t[k])


def test_lru_eviction_under_the_size_limit(tmp_path):
    payload = b"x" * 1000
    entry = len(payload) + 45  # header: magic, version, sha256, length
    store = Store(tmp_path / "c", max_size=3 * entry)
    keys = [f"{i:02d}" * 32 for i in range(4)]
    for k in keys[:3]:
        store.put("outputs", k, payload)
        time.sleep(0.01)
    store.get("outputs", keys[0])  # keys[0] is now the most recently used
    time.sleep(0.01)
    store.put("outputs", keys[3], payload)  # over the limit: the least recently used (keys[1]) goes
    assert store.get("outputs", keys[1]) is None
    assert all(store.get("outputs", k) == payload for k in (keys[0], keys[2], keys[3]))
    assert store.info()["bytes"] <= 3 * entry


def test_remembered_file_hash_survives_processes_but_not_rewrites(tmp_path, monkeypatch):
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 100)
    calls = []
    import pytest_i2i.cache.store as store_module
    import pytest_i2i.files as files

    real = files.sha256_file
    monkeypatch.setattr(store_module, "sha256_file", lambda p: calls.append(p) or real(p))
    first = Store(tmp_path / "c", 10**6).file_sha256(f)
    files._HASHES.clear()
    assert Store(tmp_path / "c", 10**6).file_sha256(f) == first and len(calls) == 1  # new "process": no re-read
    f.write_bytes(b"b" * 100)  # same size, new content
    assert Store(tmp_path / "c", 10**6).file_sha256(f) != first and len(calls) == 2


# -- feature cache -----------------------------------------------------------------------------------
def test_warm_run_builds_no_model_and_runs_no_forward_pass(tiny, cache_dir):
    imgs = _images()
    bb = _fresh_backbone(weights="random", seed=3)
    assert not bb.model_built  # lazy while a cache is active
    cold = bb.features(imgs, batch_size=4)
    assert COUNTS == {"create": 1, "forward": 2} and bb.model_built
    warm_bb = _fresh_backbone(weights="random", seed=3)
    warm = warm_bb.features(imgs, batch_size=4)
    assert COUNTS == {"create": 1, "forward": 2} and not warm_bb.model_built
    for k in cold:
        assert torch.equal(cold[k], warm[k])
    # partially warm: only the images not computed in a forward pass of the same size run
    # (imgs[5] was computed in the cold run's last pass of 2 rows; here its pass has 4)
    more = pytest_i2i.load_images([imgs[0], *_images(2, seed=9), imgs[5]])
    mixed = _fresh_backbone(weights="random", seed=3).features(more, batch_size=4)
    assert COUNTS["forward"] == 3 and torch.equal(mixed["pool"][0], cold["pool"][0])
    # another batch size is another forward-pass size: computed, not read (its last bits may differ)
    other = _fresh_backbone(weights="random", seed=3).features(imgs, batch_size=5)
    assert COUNTS["forward"] == 5
    # identical to runs without any cache (bit-exact), at each batch size
    cache.configure(None)
    plain = _fresh_backbone(weights="random", seed=3).features(imgs, batch_size=4)
    assert all(torch.equal(plain[k], cold[k]) for k in cold)
    plain5 = _fresh_backbone(weights="random", seed=3).features(imgs, batch_size=5)
    assert all(torch.equal(plain5[k], other[k]) for k in other)


def test_feature_key_changes_with_every_part(tiny, cache_dir):
    bb = _fresh_backbone(weights="random", seed=0)
    img = _images(1)[0]
    base = bb.feature_key_parts("clean")
    variants = [
        feature_key(base, tensor_sha256(img)),
        feature_key(base, tensor_sha256(img.flip(-1))),                                   # image
        feature_key({**base, "weights_sha256": "random:seed=1"}, tensor_sha256(img)),    # weights
        feature_key(bb.feature_key_parts("legacy-pytorch"), tensor_sha256(img)),          # resize mode
        feature_key({**base, "input_size": [16, 16]}, tensor_sha256(img)),               # input size
        feature_key({**base, "center_crop": True}, tensor_sha256(img)),                  # centre crop
        feature_key({**base, "dtype": "autocast-float16"}, tensor_sha256(img)),          # dtype
        feature_key({**base, "backbone": "other"}, tensor_sha256(img)),                  # backbone
    ]
    assert len(set(variants)) == len(variants)
    # and end to end: another resize mode or weights is a miss, the same call a hit
    imgs = _images(3)
    bb.features(imgs)
    _fresh_backbone(weights="random", seed=0).features(imgs)
    assert COUNTS["forward"] == 1
    _fresh_backbone(weights="random", seed=0).features(imgs, resize="legacy-pytorch")
    _fresh_backbone(weights="random", seed=1).features(imgs)
    assert COUNTS["forward"] == 3


def test_a_changed_weights_file_is_a_miss(tiny, cache_dir, tmp_path):
    w = tmp_path / "tiny.pth"
    model = TinyNet()
    _init(model, 1)
    torch.save(model.state_dict(), w)
    imgs = _images(2)
    first = _fresh_backbone(weights=w).features(imgs)["pool"]
    _fresh_backbone(weights=w).features(imgs)
    assert COUNTS["forward"] == 1
    _init(model, 2)
    torch.save(model.state_dict(), w)
    second = _fresh_backbone(weights=w).features(imgs)["pool"]
    assert COUNTS["forward"] == 2 and not torch.equal(first, second)


def test_a_bad_weights_file_still_raises_without_a_cache(tiny, tmp_path):
    w = tmp_path / "tiny.pth"
    w.write_bytes(b"not a checkpoint")
    with pytest.raises(pytest_i2i.I2IError):
        _fresh_backbone(weights=w)


def test_result_cache_keys_folders_by_content(tmp_path, cache_dir):
    from PIL import Image

    from pytest_i2i.cache.results import cached_call

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(folder / "a.png")
    calls = []

    def metric(images, *, seed=0):
        calls.append(1)
        return pytest_i2i.MetricResult(name="toy", value=float(len(calls)), higher_is_better=True, n=1)

    assert cached_call("toy", metric, [str(folder)], {"seed": 0}).value == 1.0
    assert cached_call("toy", metric, [str(folder)], {"seed": 0}).value == 1.0  # hit
    assert cached_call("toy", metric, [str(folder)], {"seed": 1}).value == 2.0  # another argument
    Image.new("RGB", (8, 8), (10, 20, 31)).save(folder / "a.png")  # same name, new pixels
    assert cached_call("toy", metric, [str(folder)], {"seed": 0}).value == 3.0
    assert cached_call("toy", metric, [torch.zeros(3, 4, 4)], {}).value == 4.0  # a tensor: never cached
    assert cached_call("toy", metric, [torch.zeros(3, 4, 4)], {}).value == 5.0


# -- CLI -------------------------------------------------------------------------------------------
def test_cli_cache_info_and_clear(tmp_path, capsys, monkeypatch):
    from pytest_i2i.cli import build_parser, main

    monkeypatch.delenv("I2I_CACHE_DIR", raising=False)
    store = cache.get_cache(tmp_path / "c")
    store.put("features", "cd" * 32, b"12345")
    assert main(["cache", "info", "--cache-dir", str(tmp_path / "c"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["entries"] == 1 and info["namespaces"] == {"features": {"entries": 1, "bytes": info["bytes"]}}
    assert main(["cache", "info", "--cache-dir", str(tmp_path / "c")]) == 0
    assert "1 entries" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache-dir", str(tmp_path / "c")]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert store.get("features", "cd" * 32) is None
    assert main(["cache", "info"]) == 2 and "I2I_CACHE_DIR" in capsys.readouterr().err
    for cmd in (["score", "a", "b"], ["stats", "a", "out.npz"]):
        assert build_parser().parse_args([*cmd, "--cache-dir", "x"]).cache_dir == "x"


# -- plugin ----------------------------------------------------------------------------------------
SUITE = """
import json, pathlib

def test_l1(l1, i2i_outputs):
    r = l1()
    pathlib.Path("values.jsonl").open("a").write(json.dumps(r.per_sample) + "\\n")
"""
# counts generator loads (one line per load) in the pytest subprocess
CONFTEST = """
import pathlib
import pytest_i2i.generators as gens

_real = gens.load_generator

def _counting(*args, **kwargs):
    with pathlib.Path("loads.txt").open("a") as f:
        f.write("load\\n")
    return _real(*args, **kwargs)

gens.load_generator = _counting
"""
CKPT = Path(__file__).resolve().parent.parent / "demo" / "colorize_unet128.pth"
MODEL_ARGS = [f"--i2i-model={CKPT}", "--i2i-arch=pix2pix-unet128-ngf8"]


def _loads(pytester) -> int:
    f = pytester.path / "loads.txt"
    return len(f.read_text().splitlines()) if f.exists() else 0


def test_plugin_second_run_generates_nothing(pytester, tmp_path):
    pytester.makepyfile(test_suite=SUITE)
    pytester.makeconftest(CONFTEST)
    args = [*MODEL_ARGS, "--i2i-max-samples=3", f"--i2i-cache-dir={tmp_path / 'c'}", "-p", "no:cacheprovider",
            f"--i2i-report={tmp_path / 'r1'}"]
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    assert _loads(pytester) == 1
    args[-1] = f"--i2i-report={tmp_path / 'r2'}"
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    assert _loads(pytester) == 1  # every output came from the cache: the generator was not loaded
    first, second = (pytester.path / "values.jsonl").read_text().splitlines()
    assert first == second
    reports = [(tmp_path / r / "i2i-report.json").read_bytes() for r in ("r1", "r2")]
    assert reports[0] == reports[1] and b"colorize_unet128.pth" in reports[1]  # model block from the cache
    info = cache.get_cache(tmp_path / "c").info()["namespaces"]
    assert info["outputs"]["entries"] == 3 and info["results"]["entries"] == 1


def test_plugin_default_cache_folder_is_pytests(pytester, monkeypatch):
    monkeypatch.delenv("I2I_CACHE_DIR", raising=False)
    pytester.makepyfile(test_suite=SUITE)
    pytester.runpytest_subprocess(*MODEL_ARGS, "--i2i-max-samples=2").assert_outcomes(passed=1)
    assert (pytester.path / ".pytest_cache" / "d" / "i2i" / "i2i-cache-v1" / "index.sqlite3").is_file()
    result = pytester.runpytest_subprocess(*MODEL_ARGS, "--i2i-cache-max-size=lots")
    assert result.ret != 0 and "--i2i-cache-max-size" in "\n".join(result.errlines)


def test_plugin_cache_setting(tmp_path):
    from types import SimpleNamespace

    from pytest_i2i.config import I2IOptions
    from pytest_i2i.plugin import _cache_setting

    with_provider = SimpleNamespace(cache=SimpleNamespace(_cachedir=tmp_path / ".pytest_cache"), rootpath=tmp_path)
    assert _cache_setting(with_provider, I2IOptions()) == (tmp_path / ".pytest_cache" / "d" / "i2i", None)
    without = SimpleNamespace(cache=None, rootpath=tmp_path)
    assert _cache_setting(without, I2IOptions()) == (None, None)  # -p no:cacheprovider: off
    assert _cache_setting(without, I2IOptions(cache_dir=tmp_path / "c", cache_max_size="1MB")) == (
        tmp_path / "c", 10**6)
    assert _cache_setting(with_provider, I2IOptions(cache_max_size="0")) == (None, 0)  # size 0: off
