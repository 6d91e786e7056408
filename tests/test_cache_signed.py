"""Authenticated cache entries (``I2I_CACHE_KEY``): a shared cache whose folder an attacker can
write must not feed a forged value to a gate. Every payload here is synthetic."""

from __future__ import annotations

import hashlib
import struct
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pytest_i2i
from pytest_i2i import cache
from pytest_i2i.cache import CacheWarning
from pytest_i2i.cache.store import _HEADER, FORMAT_VERSION, MAGIC, Store

KEY = "ab" * 32


def forge(store: Store, ns: str, key: str, payload: bytes) -> None:
    """What an attacker with write access does: a well-formed unsigned entry with a correct checksum."""
    p = store.path(ns, key)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(_HEADER.pack(MAGIC, FORMAT_VERSION, hashlib.sha256(payload).digest(), len(payload)) + payload)


@settings(max_examples=25, deadline=None)
@given(payload=st.binary(max_size=256), secret=st.binary(min_size=1, max_size=40),
       other=st.binary(min_size=1, max_size=40))
def test_only_entries_signed_with_the_key_are_read(tmp_path_factory, payload, secret, other):
    root = tmp_path_factory.mktemp("signed")
    signed = Store(root, max_size=10**9, secret=secret)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)
        signed.put("features", KEY, payload)
        assert signed.get("features", KEY) == payload
        assert Store(root, max_size=10**9).get("features", KEY) is None  # no key: cannot verify
        if other != secret:
            assert Store(root, max_size=10**9, secret=other).get("features", KEY) is None
        forge(signed, "features", KEY, payload + b"x")
        assert signed.get("features", KEY) is None  # unsigned: ignored
        assert Store(root, max_size=10**9).get("features", KEY) == payload + b"x"  # checksummed only


def test_a_signed_entry_copied_under_another_key_does_not_verify(tmp_path):
    s = Store(tmp_path, max_size=10**9, secret=b"k")
    s.put("results", KEY, b"honest")
    other = "cd" * 32
    other_path = s.path("results", other)
    other_path.parent.mkdir(parents=True, exist_ok=True)
    other_path.write_bytes(s.path("results", KEY).read_bytes())
    with pytest.warns(CacheWarning, match="not signed with this I2I_CACHE_KEY"):
        assert s.get("results", other) is None
    assert s.get("results", KEY) == b"honest"
    tampered = bytearray(s.path("results", KEY).read_bytes())
    tampered[-1] ^= 1
    s.path("results", KEY).write_bytes(bytes(tampered))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning per kind of problem: this one was said above
        assert s.get("results", KEY) is None
    assert s.info()["signed"] and s.info()["this_process"]["untrusted"] == 2


def test_forged_results_entry_does_not_reach_the_gate(tmp_path, monkeypatch):
    """The review's probe: a results entry rewritten with a recomputed checksum (SSIM 0.999 for a
    true value) was accepted. With I2I_CACHE_KEY set it is ignored and the metric recomputed."""
    from pytest_i2i.cache.results import RESULTS, cached_call
    from pytest_i2i.cache.store import load_bundles, pack_tensors

    monkeypatch.setenv(cache.ENV_CACHE_KEY, "ci-secret")
    previous = cache.configure(tmp_path / "cache")
    try:
        folder = tmp_path / "imgs"
        folder.mkdir()
        from PIL import Image

        Image.new("RGB", (8, 8), (10, 20, 30)).save(folder / "a.png")
        calls = []

        def metric(images, *, seed=0):
            calls.append(1)
            return pytest_i2i.MetricResult(name="ssim", value=0.678, higher_is_better=True, n=1)

        assert cached_call("ssim", metric, [str(folder)], {"seed": 0}).value == 0.678
        store = cache.get_cache()
        assert store is not None and store.secret == b"ci-secret"
        [path] = list((store.dir / "objects" / RESULTS).rglob("*.i2i"))
        key = path.stem
        _, meta = load_bundles(store, RESULTS, [key])[key]
        meta["result"]["value"] = 0.999
        forge(store, RESULTS, key, pack_tensors({}, meta))
        with pytest.warns(CacheWarning, match="unsigned while I2I_CACHE_KEY is set"):
            assert cached_call("ssim", metric, [str(folder)], {"seed": 0}).value == 0.678
        assert len(calls) == 2
        assert cached_call("ssim", metric, [str(folder)], {"seed": 0}).value == 0.678  # re-signed: a hit
        assert len(calls) == 2
    finally:
        cache.restore(previous)


def test_remembered_file_hashes_are_signed(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"w" * 100)
    s = Store(tmp_path / "c", max_size=10**9, secret=b"k")
    true = s.file_sha256(f)
    s._execute("UPDATE file_hashes SET sha256 = ?", ("0" * 64,))  # forged row, no HMAC
    assert s.file_sha256(f) == true
    row = s._execute("SELECT sha256 FROM file_hashes")[0][0]
    assert row.startswith(true + ":")
    assert Store(tmp_path / "c2", max_size=10**9).file_sha256(f) == true


def test_cache_secret_from_the_environment(monkeypatch):
    monkeypatch.delenv(cache.ENV_CACHE_KEY, raising=False)
    assert cache.cache_secret() is None
    monkeypatch.setenv(cache.ENV_CACHE_KEY, "  ")
    assert cache.cache_secret() is None
    monkeypatch.setenv(cache.ENV_CACHE_KEY, " s3cret ")
    assert cache.cache_secret() == b"s3cret"
    assert struct.calcsize("<4sB32sQ") == _HEADER.size
