"""Tests of the backbone registry and the weights-loading path (pytest_i2i.backbones).

A tiny test-only backbone is registered so that real files can be saved, found, hashed and
loaded in milliseconds. Every test runs offline (``I2I_OFFLINE=1``, set by conftest) with its own
empty torch hub and HF hub caches, no ``$I2I_WEIGHTS_DIR``, messages in the library's own syntax,
and a ``socket.connect`` that fails the test if called. Downloads are tested for real against a
local server in ``test_downloads.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pytest_i2i.backbones import download, factory, registry, weights
from pytest_i2i.backbones.factory import backbone
from pytest_i2i.backbones.registry import list_backbones, register_backbone
from pytest_i2i.backbones.spec import BackboneSpec
from pytest_i2i.checkpoint import load_state_dict_file
from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile, resolve_weights
from pytest_i2i.errors import (
    I2IError,
    I2IInputError,
    UnknownNameError,
    WeightsError,
    WeightsHashMismatch,
    WeightsNotFound,
)

TINY = "tiny-test-net"
FILENAME = "tiny-net-v1.pth"
HF_ID = "some-org/tiny-net"
URL = "https://example.invalid/weights/tiny-net-v1.pth"


# --------------------------------------------------------------------------------------------
# the test-only backbone
# --------------------------------------------------------------------------------------------


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feat = F.adaptive_avg_pool2d(F.relu(self.bn(self.conv(x))), 1).flatten(1)
        return {"feat": feat, "logits": self.fc(feat)}


def tiny_init(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            else:
                t.copy_(torch.randn(t.shape, generator=g))


def tiny_state(seed: int) -> dict[str, torch.Tensor]:
    m = TinyNet()
    tiny_init(m, seed)
    return m.state_dict()


def save_state(path: Path, seed: int) -> str:
    """Save the tiny net's weights for ``seed`` at ``path``; returns the file's sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(tiny_state(seed), path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_state_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def states_differ(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture
def clear_loaded():
    """Empty the registry's cache of loaded backbones before and after the test."""
    factory._LOADED.clear()
    yield factory._LOADED
    factory._LOADED.clear()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, clear_loaded):
    """Empty caches, no weights dir, offline, python-style messages, and any connection fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setenv("I2I_OFFLINE", "1")
    for var in ("I2I_WEIGHTS_DIR", "I2I_WEIGHTS_MIRROR", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)

    def no_connect(self, address, *args, **kwargs):
        pytest.fail(f"a network connection was attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    with fresh_messages("python"):
        yield


class fresh_messages:
    """Messages in ``interface``'s syntax and an empty "already reported" memory (restored after)."""

    def __init__(self, interface: str):
        self.interface = interface

    def __enter__(self):
        self.saved = (weights._INTERFACE[0], dict(weights._MISSING), set(weights._REPORTED))
        weights.set_interface(self.interface)
        weights._MISSING.clear()
        weights._REPORTED.clear()
        download.forget_download_failures()

    def __exit__(self, *exc):
        weights._INTERFACE[0] = self.saved[0]
        weights._MISSING.clear()
        weights._MISSING.update(self.saved[1])
        weights._REPORTED.clear()
        weights._REPORTED.update(self.saved[2])
        download.forget_download_failures()


@pytest.fixture
def torch_hub_dir(tmp_path) -> Path:
    return tmp_path / "torch_home" / "hub" / "checkpoints"


@pytest.fixture
def register_tiny():
    """``register_tiny(*weights_files)`` registers the tiny backbone with those published files."""

    def register(*files: WeightsFile) -> BackboneSpec:
        return register_backbone(
            BackboneSpec(
                name=TINY,
                create=TinyNet,
                init_random=tiny_init,
                pretrained=PretrainedCfg(files=files, source="tests", license="none"),
                input_size=(8, 8),
                outputs=("feat", "logits"),
                description="test-only tiny conv net",
            ),
            overwrite=True,
        )

    yield register
    registry._REGISTRY.pop(TINY, None)


def hf_snapshot_file(hf_cache: Path, repo_id: str, revision: str, filename: str, seed: int) -> tuple[Path, str]:
    """Lay a file out as huggingface_hub does: blobs/<sha256> + snapshots/<rev>/<file> symlink."""
    repo = hf_cache / ("models--" + repo_id.replace("/", "--"))
    tmp = repo / "tmp.bin"
    sha = save_state(tmp, seed)
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    blob = repo / "blobs" / sha
    tmp.rename(blob)
    snap = repo / "snapshots" / revision
    snap.mkdir(parents=True)
    (snap / filename).symlink_to(os.path.relpath(blob, snap))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snap / filename, sha


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------


def test_list_backbones_and_unknown_name(register_tiny):
    register_tiny(WeightsFile(FILENAME))
    names = list_backbones()
    assert "inception-fid" in names and TINY in names
    assert names == sorted(names)
    assert list_backbones("incep*") == ["inception-fid"]
    assert list_backbones("tiny-*") == [TINY]

    with pytest.raises(UnknownNameError) as e:
        backbone("no-such-net", weights="random")
    msg = str(e.value)
    assert "no-such-net" in msg and "inception-fid" in msg and TINY in msg
    assert set(names) <= set(e.value.known)  # plus the name families, e.g. "timm:<model name>"
    assert isinstance(e.value, I2IError) and isinstance(e.value, KeyError)


def test_register_without_overwrite_refuses_duplicates(register_tiny):
    spec = register_tiny(WeightsFile(FILENAME))
    with pytest.raises(ValueError, match=TINY):
        register_backbone(spec)


# --------------------------------------------------------------------------------------------
# resolution order
# --------------------------------------------------------------------------------------------


def test_resolution_order(tmp_path, monkeypatch, register_tiny, torch_hub_dir, clear_loaded):
    register_tiny(WeightsFile(FILENAME, sha256=None, hf_hub_id=HF_ID))  # no published hash: any file is used
    explicit = tmp_path / "mine" / "explicit.pth"
    arg_dir, env_dir = tmp_path / "arg_dir", tmp_path / "env_dir"
    sha = {
        "explicit": save_state(explicit, 1),
        "arg": save_state(arg_dir / FILENAME, 2),
        "env": save_state(env_dir / FILENAME, 3),
        "torch": save_state(torch_hub_dir / FILENAME, 4),
    }
    hf_path, sha["hf"] = hf_snapshot_file(tmp_path / "hf_cache", HF_ID, "0123abcd" * 5, FILENAME, 5)
    assert len(set(sha.values())) == 5  # distinct files
    monkeypatch.setenv("I2I_WEIGHTS_DIR", str(env_dir))

    def check(expected_path: Path, key: str, seed: int, **kw) -> None:
        bb = backbone(TINY, **kw)
        assert bb.weights_path == expected_path
        assert bb.weights_sha256 == sha[key]
        assert_state_equal(bb.model.state_dict(), tiny_state(seed))  # the file was really loaded

    # 1. explicit path beats everything
    check(explicit, "explicit", 1, weights=explicit, weights_dir=arg_dir)
    assert backbone(TINY, weights=str(explicit)).calibrated is False  # not a published file
    # 2a. the weights_dir argument beats $I2I_WEIGHTS_DIR
    check(arg_dir / FILENAME, "arg", 2, weights_dir=arg_dir)
    # 2b. $I2I_WEIGHTS_DIR
    check(env_dir / FILENAME, "env", 3)
    # 3. torch hub cache
    monkeypatch.delenv("I2I_WEIGHTS_DIR")
    check(torch_hub_dir / FILENAME, "torch", 4)
    # a weights dir without the file falls through to the caches
    monkeypatch.setenv("I2I_WEIGHTS_DIR", str(tmp_path / "empty_dir"))
    check(torch_hub_dir / FILENAME, "torch", 4)
    # 4. HF hub cache (snapshot layout, symlink into blobs/)
    (torch_hub_dir / FILENAME).unlink()
    check(hf_path, "hf", 5)

    res = resolve_weights(TINY, registry.get_spec(TINY).pretrained)
    assert res.location == "hf hub cache" and res.calibrated and res.verified == "hub sha256"

    # HF_HOME/hub is used when HF_HUB_CACHE is unset
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    hf_home_path, sha["hf_home"] = hf_snapshot_file(tmp_path / "hf_home" / "hub", HF_ID, "feed" * 10, FILENAME, 6)
    check(hf_home_path, "hf_home", 6)

    # nothing left anywhere
    hf_home_path.unlink()
    with pytest.raises(WeightsNotFound):
        backbone(TINY)


def test_hf_cache_prefers_the_revision_refs_main_points_to(tmp_path, register_tiny):
    register_tiny(WeightsFile(FILENAME, sha256=None, hf_hub_id=HF_ID))
    hf_snapshot_file(tmp_path / "hf_cache", HF_ID, "aaaa" * 10, FILENAME, 7)
    newest, sha = hf_snapshot_file(tmp_path / "hf_cache", HF_ID, "bbbb" * 10, FILENAME, 8)  # refs/main -> bbbb
    bb = backbone(TINY)
    assert bb.weights_path == newest and bb.weights_sha256 == sha


def test_weights_dir_argument_replaces_env_dir(tmp_path, monkeypatch, register_tiny, torch_hub_dir):
    """Documented: the weights_dir argument, *else* $I2I_WEIGHTS_DIR (the env dir is then not searched)."""
    register_tiny(WeightsFile(FILENAME))
    env_dir = tmp_path / "env_dir"
    save_state(env_dir / FILENAME, 3)
    torch_sha = save_state(torch_hub_dir / FILENAME, 4)
    monkeypatch.setenv("I2I_WEIGHTS_DIR", str(env_dir))
    res = resolve_weights(TINY, registry.get_spec(TINY).pretrained, weights_dir=tmp_path / "empty")
    assert res.path == torch_hub_dir / FILENAME and res.sha256 == torch_sha
    assert res.location == "torch hub cache"


def test_second_published_file_is_accepted(tmp_path, register_tiny, torch_hub_dir):
    other = tmp_path / "x.pth"
    sha2 = save_state(other, 2)
    register_tiny(WeightsFile(FILENAME, sha256="0" * 64), WeightsFile("alt-name.pth", sha256=sha2))
    torch_hub_dir.mkdir(parents=True)
    shutil.copy(other, torch_hub_dir / "alt-name.pth")
    bb = backbone(TINY)
    assert bb.weights_path == torch_hub_dir / "alt-name.pth"
    assert bb.calibrated and bb.weights_sha256 == sha2


# --------------------------------------------------------------------------------------------
# hashes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["weights dir", "torch hub cache", "hf hub cache"])
def test_found_by_name_with_wrong_hash_is_refused(tmp_path, monkeypatch, register_tiny, torch_hub_dir, where,
                                                  clear_loaded):
    published_sha = save_state(tmp_path / "published" / FILENAME, 1)
    register_tiny(WeightsFile(FILENAME, sha256=published_sha, hf_hub_id=HF_ID))
    if where == "weights dir":
        bad = tmp_path / "wdir" / FILENAME
        bad_sha = save_state(bad, 2)
        monkeypatch.setenv("I2I_WEIGHTS_DIR", str(bad.parent))
    elif where == "torch hub cache":
        bad = torch_hub_dir / FILENAME
        bad_sha = save_state(bad, 2)
    else:
        bad, bad_sha = hf_snapshot_file(tmp_path / "hf_cache", HF_ID, "a" * 40, FILENAME, 2)

    with pytest.raises(WeightsHashMismatch) as e:
        backbone(TINY)
    msg = str(e.value)
    assert str(bad) in msg and bad_sha in msg and published_sha in msg and where in msg
    assert isinstance(e.value, WeightsError) and isinstance(e.value, I2IError)
    assert not clear_loaded  # nothing was loaded or cached


def test_right_hash_is_calibrated(tmp_path, register_tiny):
    wdir = tmp_path / "wdir"
    sha = save_state(wdir / FILENAME, 1)
    register_tiny(WeightsFile(FILENAME, sha256=sha))
    bb = backbone(TINY, weights_dir=wdir)
    assert bb.calibrated is True
    assert bb.weights_sha256 == sha and bb.weights_path == wdir / FILENAME
    assert bb.warnings == []
    assert_state_equal(bb.model.state_dict(), tiny_state(1))
    # an explicit path to the published file (any name) is calibrated too
    renamed = tmp_path / "renamed.pth"
    shutil.copy(wdir / FILENAME, renamed)
    bb2 = backbone(TINY, weights=renamed)
    assert bb2.calibrated is True and bb2.weights_path == renamed and bb2.warnings == []


def test_explicit_path_with_other_hash_is_loaded_uncalibrated(tmp_path, register_tiny):
    published_sha = save_state(tmp_path / "pub" / FILENAME, 1)
    register_tiny(WeightsFile(FILENAME, sha256=published_sha))
    mine = tmp_path / "finetuned" / FILENAME  # even under the published name
    my_sha = save_state(mine, 7)
    bb = backbone(TINY, weights=mine)
    assert bb.calibrated is False
    assert bb.weights_path == mine and bb.weights_sha256 == my_sha
    assert len(bb.warnings) == 1
    assert "uncalibrated" in bb.warnings[0] and my_sha in bb.warnings[0] and str(mine) in bb.warnings[0]
    assert_state_equal(bb.model.state_dict(), tiny_state(7))


def test_backbones_are_cached_per_weights(tmp_path, register_tiny, clear_loaded):
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    save_state(a, 1)
    save_state(b, 2)
    register_tiny(WeightsFile(FILENAME))
    bb_a = backbone(TINY, weights=a)
    assert backbone(TINY, weights=a) is bb_a
    bb_b = backbone(TINY, weights=b)
    assert bb_b is not bb_a and states_differ(bb_a.model.state_dict(), bb_b.model.state_dict())
    assert len(clear_loaded) == 2


# --------------------------------------------------------------------------------------------
# not found, offline, and the messages
# --------------------------------------------------------------------------------------------

PUBLISHED_SHA = "ab" * 32


def test_not_found_offline_names_file_hash_locations_and_switches(tmp_path, monkeypatch, register_tiny, torch_hub_dir):
    register_tiny(WeightsFile(FILENAME, sha256=PUBLISHED_SHA, url=URL, hf_hub_id=HF_ID, size=1234))
    for allow, why in ((None, "I2I_OFFLINE=1"), (False, "allow_download=False")):
        with pytest.raises(WeightsNotFound) as e:
            backbone(TINY, allow_download=allow)
        msg = str(e.value)
        assert f"downloads are off ({why})" in msg
        assert FILENAME in msg and PUBLISHED_SHA in msg and "1.2 kB" in msg and "I2I_WEIGHTS_DIR" in msg
        assert f"(Hugging Face hub {HF_ID}, file {FILENAME})" in msg and f"from {URL}" in msg
        # every location searched, the HF cache included
        hf_path = tmp_path / "hf_cache" / "models--some-org--tiny-net" / "snapshots" / "<main>" / FILENAME
        assert f"torch hub cache: {torch_hub_dir / FILENAME}" in msg and f"hf hub cache: {hf_path}" in msg
        assert "weights dir (weights_dir= / $I2I_WEIGHTS_DIR): not set" in msg
        assert e.value.filename == FILENAME and e.value.sha256 == PUBLISHED_SHA and e.value.backbone == TINY
        assert str(torch_hub_dir / FILENAME) in e.value.searched and str(hf_path) in e.value.searched
        assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, I2IError)
    # HF_HUB_OFFLINE is respected like I2I_OFFLINE
    monkeypatch.delenv("I2I_OFFLINE")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFound, match=r"downloads are off \(HF_HUB_OFFLINE=1\)"):
        backbone(TINY)
    # the current weights dir is searched and named
    monkeypatch.setenv("I2I_WEIGHTS_DIR", str(tmp_path / "my_weights"))
    with pytest.raises(WeightsNotFound) as e:
        backbone(TINY, allow_download=False)
    assert f"weights dir: {tmp_path / 'my_weights' / FILENAME}" in str(e.value)
    assert not torch_hub_dir.exists()


@pytest.mark.parametrize("interface, options", [
    ("python", ["weights_dir=FOLDER", "I2I_WEIGHTS_DIR", "unset I2I_OFFLINE"]),
    ("pytest", ["--i2i-weights-dir=FOLDER", "downloads are off (--i2i-offline)", "run without --i2i-offline"]),
    ("cli", ["--weights-dir FOLDER", "downloads are off (--offline)", "run without --offline"]),
])
def test_messages_use_the_syntax_of_the_tool_in_use(register_tiny, interface, options):
    register_tiny(WeightsFile(FILENAME, url=URL))
    with fresh_messages(interface), pytest.raises(WeightsNotFound) as e:
        backbone(TINY)
    for text in options:
        assert text in str(e.value)
    others = {"python": "weights_dir=", "pytest": "--i2i-", "cli": "--weights-dir "}
    assert not any(v in str(e.value) for k, v in others.items() if k != interface)


def test_each_backbone_is_reported_in_full_once_per_process(register_tiny):
    register_tiny(WeightsFile(FILENAME, url=URL))
    errors = []
    for _ in range(3):
        with pytest.raises(WeightsNotFound) as e:
            backbone(TINY)
        errors.append(e.value)
    with pytest.raises(WeightsNotFound) as e:
        backbone("inception-fid")
    texts = [weights.weights_message_once(err) for err in errors]
    assert texts[0] == str(errors[0]) and "Searched:" in texts[0]
    for short in texts[1:]:
        assert "\n" not in short and "reported in full once" in short and repr(TINY) in short
    assert weights.weights_message_once(e.value) == str(e.value)  # another backbone: in full
    summary = weights.missing_weights_summary()
    assert len(summary) == 2 and summary[0] == str(errors[0]) and "inception-fid" in summary[1]


def test_explicit_missing_path_is_not_found(tmp_path, register_tiny):
    register_tiny(WeightsFile(FILENAME))
    missing = tmp_path / "nowhere" / "w.pth"
    with pytest.raises(WeightsNotFound, match="nowhere/w.pth"):
        backbone(TINY, weights=missing)


def test_inception_fid_not_found_message():
    with pytest.raises(WeightsNotFound) as e:
        backbone("inception-fid")
    msg = str(e.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in msg and "I2I_WEIGHTS_DIR" in msg and "95.6 MB" in msg
    assert "weights-inception-2015-12-05-6726825d.pth" in msg
    assert "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2" in msg


# --------------------------------------------------------------------------------------------
# trust follows content
# --------------------------------------------------------------------------------------------


def test_random_weights_under_pytorch_fids_name_are_never_calibrated(tmp_path, inception_weights_file, clear_loaded):
    """The issue's case: a seeded random Inception saved as pt_inception-2015-12-05-6726825d.pth."""
    wdir = tmp_path / "wdir"
    wdir.mkdir()
    (wdir / "pt_inception-2015-12-05-6726825d.pth").symlink_to(inception_weights_file)
    with pytest.raises(WeightsHashMismatch) as e:
        backbone("inception-fid", weights_dir=wdir)
    assert "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2" in str(e.value)
    assert not clear_loaded
    status = weights.weights_status(registry.get_spec("inception-fid").pretrained, wdir)
    assert status.installed is None and "refused" in status.problem
    named = wdir / "pt_inception-2015-12-05-6726825d.pth"
    res = resolve_weights("inception-fid", registry.get_spec("inception-fid").pretrained, named)
    assert res.calibrated is False and res.verified == "" and "uncalibrated" in res.warnings[0]


def test_torch_hub_name_prefix_is_checked_when_no_full_sha256_is_known(tmp_path, register_tiny, clear_loaded):
    src = tmp_path / "src.pth"
    sha = save_state(src, 1)
    good_name, bad_name = f"tiny-net-{sha[:8]}.pth", f"tiny-net-{'0' * 8}.pth"
    wdir = tmp_path / "wdir"
    wdir.mkdir()
    shutil.copy(src, wdir / good_name)
    register_tiny(WeightsFile(good_name))
    bb = backbone(TINY, weights_dir=wdir)
    assert bb.calibrated and bb.weights_sha256 == sha and bb.warnings == []
    res = resolve_weights(TINY, registry.get_spec(TINY).pretrained, weights_dir=wdir)
    assert res.verified == "sha256 prefix"
    shutil.copy(src, wdir / bad_name)
    register_tiny(WeightsFile(bad_name))
    with pytest.raises(WeightsHashMismatch, match="prefix in its published name"):
        backbone(TINY, weights_dir=wdir)
    # by explicit path the same file is used, but not calibrated
    assert backbone(TINY, weights=wdir / bad_name).calibrated is False


def test_file_without_any_known_hash_is_used_uncalibrated(tmp_path, register_tiny):
    wdir = tmp_path / "wdir"
    sha = save_state(wdir / FILENAME, 1)
    register_tiny(WeightsFile(FILENAME, hf_hub_id=HF_ID))
    bb = backbone(TINY, weights_dir=wdir)
    assert bb.calibrated is False and bb.weights_sha256 == sha
    assert "no published sha256 is known" in bb.warnings[0] and "uncalibrated" in bb.warnings[0]
    assert_state_equal(bb.model.state_dict(), tiny_state(1))


def test_hf_cache_file_is_verified_against_the_hubs_sha256(tmp_path, register_tiny, clear_loaded):
    register_tiny(WeightsFile(FILENAME, hf_hub_id=HF_ID))
    path, sha = hf_snapshot_file(tmp_path / "hf_cache", HF_ID, "c0de" * 10, FILENAME, 3)
    res = resolve_weights(TINY, registry.get_spec(TINY).pretrained)
    assert res.calibrated and res.verified == "hub sha256" and res.path == path and res.sha256 == sha
    # an explicit path into the cache is recognised too
    assert resolve_weights(TINY, registry.get_spec(TINY).pretrained, path).verified == "hub sha256"
    # a blob whose content is not its name (partial or altered) is refused
    blob = path.resolve()
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes()[:100])
    with pytest.raises(WeightsHashMismatch, match="the Hugging Face hub published"):
        resolve_weights(TINY, registry.get_spec(TINY).pretrained)
    # a plain file in a snapshot (not laid out by huggingface_hub) is used, uncalibrated
    path.unlink()
    save_state(path, 4)
    res = resolve_weights(TINY, registry.get_spec(TINY).pretrained)
    assert res.path == path and not res.calibrated and res.verified == ""


# --------------------------------------------------------------------------------------------
# random weights
# --------------------------------------------------------------------------------------------


def test_random_weights_deterministic_per_seed(register_tiny, clear_loaded):
    register_tiny(WeightsFile(FILENAME, sha256=PUBLISHED_SHA, url=URL))  # never looked up
    a = backbone(TINY, weights="random", seed=3)
    assert backbone(TINY, weights="random", seed=3) is a  # cached
    clear_loaded.clear()
    b = backbone(TINY, weights="random", seed=3)
    assert b is not a
    assert_state_equal(a.model.state_dict(), b.model.state_dict())
    c = backbone(TINY, weights="random", seed=4)
    assert states_differ(a.model.state_dict(), c.model.state_dict())
    for bb, seed in ((a, 3), (c, 4)):
        assert bb.calibrated is False
        assert bb.weights_sha256 == f"random:seed={seed}"
        assert bb.weights_path is None
        assert not bb.model.training
        assert not any(p.requires_grad for p in bb.model.parameters())
    assert_state_equal(a.model.state_dict(), tiny_state(3))  # really init_random(seed)
    out = a(torch.rand(2, 3, 8, 8))
    assert set(out) == {"feat", "logits"} and out["logits"].shape == (2, 2)


# --------------------------------------------------------------------------------------------
# bad weights files
# --------------------------------------------------------------------------------------------


def test_truncated_weights_file(tmp_path, register_tiny, clear_loaded):
    full = tmp_path / "full.pth"
    save_state(full, 1)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    register_tiny(WeightsFile(FILENAME))
    with pytest.raises(I2IError) as e:
        backbone(TINY, weights=cut)
    assert isinstance(e.value, WeightsError)
    assert str(cut) in str(e.value)
    # also when found by name in the weights dir
    wdir = tmp_path / "wdir"
    wdir.mkdir()
    shutil.copy(cut, wdir / FILENAME)
    with pytest.raises(WeightsError, match=FILENAME):
        backbone(TINY, weights_dir=wdir)
    assert not clear_loaded


@pytest.mark.parametrize("kind", ["text", "empty", "list", "tensor", "int"])
def test_file_that_is_not_a_state_dict(tmp_path, register_tiny, kind):
    p = tmp_path / f"{kind}.pth"
    if kind == "text":
        p.write_text("these are not weights\n")
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "list":
        torch.save([torch.zeros(2), torch.ones(2)], p)
    elif kind == "tensor":
        torch.save(torch.zeros(3), p)
    else:
        torch.save(42, p)
    register_tiny(WeightsFile(FILENAME))
    with pytest.raises(I2IError) as e:
        backbone(TINY, weights=p)
    assert type(e.value).__module__ == "pytest_i2i.errors"
    assert str(p) in str(e.value)


def test_state_dict_with_wrong_keys(tmp_path, register_tiny):
    sd = dict(tiny_state(1))
    sd["head.weight"] = sd.pop("fc.weight")
    sd["extra.bias"] = torch.zeros(2)
    p = tmp_path / "wrong_keys.pth"
    torch.save(sd, p)
    register_tiny(WeightsFile(FILENAME))
    with pytest.raises(I2IInputError) as e:
        backbone(TINY, weights=p)
    msg = str(e.value)
    assert str(p) in msg
    assert "fc.weight" in msg and "missing" in msg
    assert "head.weight" in msg and "extra.bias" in msg and "unexpected" in msg
    assert "1 missing" in msg and "2 unexpected" in msg


def test_state_dict_with_wrong_shapes(tmp_path, register_tiny):
    sd = dict(tiny_state(1))
    sd["fc.weight"] = torch.zeros(3, 4)
    p = tmp_path / "wrong_shape.pth"
    torch.save(sd, p)
    register_tiny(WeightsFile(FILENAME))
    with pytest.raises(I2IInputError, match="fc.weight") as e:
        backbone(TINY, weights=p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_wrapped_state_dict_is_accepted(tmp_path, register_tiny, wrapper):
    p = tmp_path / "ckpt.pth"
    torch.save({wrapper: tiny_state(5), "epoch": 12}, p)
    register_tiny(WeightsFile(FILENAME))
    bb = backbone(TINY, weights=p)
    assert_state_equal(bb.model.state_dict(), tiny_state(5))


class _Exploit:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_code_executing_pickle_is_refused(tmp_path, register_tiny, clear_loaded):
    pwned = tmp_path / "pwned"
    p = tmp_path / "evil.pth"
    torch.save({"conv.weight": _Exploit(str(pwned))}, p)
    register_tiny(WeightsFile(FILENAME))
    with pytest.raises(WeightsError) as e:
        backbone(TINY, weights=p)
    assert str(p) in str(e.value)
    assert not pwned.exists()
    with pytest.raises(WeightsError):
        load_state_dict_file(TinyNet(), p, what="test")
    assert not pwned.exists()
    # also when found by name
    wdir = tmp_path / "wdir"
    wdir.mkdir()
    shutil.copy(p, wdir / FILENAME)
    with pytest.raises(WeightsError):
        backbone(TINY, weights_dir=wdir)
    assert not pwned.exists()
    assert not clear_loaded

    # control: the payload is live, so the test above can fail
    control = tmp_path / "control"
    torch.save({"x": _Exploit(str(control))}, tmp_path / "control.pth")
    torch.load(tmp_path / "control.pth", weights_only=False)
    assert control.exists()


# --------------------------------------------------------------------------------------------
# the real FID Inception
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_inception_fid_random_matches_pytorch_fid_layout(monkeypatch):
    import pytorch_fid.inception as pfi

    bb = backbone("inception-fid", weights="random", seed=0)
    assert bb.calibrated is False and bb.weights_sha256 == "random:seed=0"
    ours = {k: v.clone() for k, v in bb.model.state_dict().items()}

    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: ours)
    ref = pfi.fid_inception_v3()  # loads our state dict strictly: keys and shapes must fit
    ref_sd = ref.state_dict()
    assert set(ref_sd) == set(ours)
    for k, v in ref_sd.items():
        assert v.shape == ours[k].shape, k
        assert torch.equal(v, ours[k]), k
