"""Security: hostile checkpoints are never unpickled, and nothing opens a network connection.

Complements tests/test_generators.py (``test_malicious_pickle_is_never_unpickled``: the library
``load_generator``), tests/test_weights.py (``test_code_executing_pickle_is_refused``: backbone
weights; wrong-hash, truncated and failed-download files) and tests/test_dataset.py (manifest
paths escaping their root, symlink loops). Here: every ``torch.load`` in the package, and the two
other entry points, ``i2i generate`` and the pytest plugin (``--i2i-model`` / ``--i2i-baseline``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_i2i"


class _Payload:
    """Unpickling this creates ``marker`` (a harmless stand-in for ``os.system``)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def evil_checkpoint(tmp_path) -> tuple[Path, Path]:
    """(a checkpoint whose unpickling runs code, the marker file that code would create)."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"conv.weight": torch.zeros(1)}, "hook": _Payload(marker)}, path)
    return path, marker


def test_the_payload_is_live(evil_checkpoint):
    """Control: unsafe unpickling really creates the marker, so 'no marker' below means 'refused'."""
    path, marker = evil_checkpoint
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_every_torch_load_is_weights_only():
    """Static check of the package: each ``torch.load`` passes ``weights_only=True``, except the one
    trusted branch of the generator loader; no ``pickle.load(s)`` of data, no ``numpy.load(allow_pickle=True)``."""
    unsafe: list[str] = []
    calls = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
            kw = {k.arg: k.value for k in node.keywords}
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            if (owner, node.func.attr) == ("torch", "load"):
                calls += 1
                flag = kw.get("weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    unsafe.append(where)
            elif (owner, node.func.attr) in (("pickle", "load"), ("pickle", "loads")):
                arg = node.args[0] if node.args else None
                round_trip = (isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute)
                              and arg.func.attr == "dumps")  # pickle.loads(pickle.dumps(obj)): no file
                if not round_trip:
                    unsafe.append(where)
            elif (owner, node.func.attr) == ("np", "load"):
                flag = kw.get("allow_pickle")
                if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                    unsafe.append(where)
    assert calls >= 2  # the scan sees the loaders (generator checkpoints, backbone weights)
    assert [u.split(":")[0] for u in unsafe] == ["pytest_i2i/generators/loading.py"], unsafe
    trusted = (PACKAGE / "generators" / "loading.py").read_text().splitlines()[int(unsafe[0].split(":")[1]) - 1]
    assert "weights_only=False" in trusted


def test_cli_generate_refuses_the_checkpoint(evil_checkpoint, tmp_path, capsys):
    from pytest_i2i.cli import main

    path, marker = evil_checkpoint
    assert main(["generate", str(path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "--trust-checkpoint" in err and "not loaded" in err
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.parametrize("option", ["--i2i-model", "--i2i-baseline"])
def test_plugin_refuses_the_checkpoint(pytester, evil_checkpoint, option):
    path, marker = evil_checkpoint
    good = pytester.path / "identity.pt"
    torch.jit.script(torch.nn.Identity()).save(str(good))
    pytester.makepyfile("""
        def test_outputs(i2i_outputs, i2i_baseline_outputs):
            pass

        def test_unrelated():
            pass
    """)
    models = [f"--i2i-model={path}", f"--i2i-baseline={good}"] if option == "--i2i-model" else \
        [f"--i2i-model={good}", f"--i2i-baseline={path}"]
    result = pytester.runpytest("-p", "no:cacheprovider", "--i2i-max-samples=1", *models)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*UntrustedCheckpointError: generator file {path}*--i2i-trust-checkpoint*"])
    assert not marker.exists()


NETWORK_PROBE = r"""
import json, os, socket, sys

events = []

def hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto",
                 "urllib.Request", "http.client.connect"):
        events.append(f"{event} {args!r}"[:200])
        raise ConnectionRefusedError(f"network blocked by the test: {event}")

sys.addaudithook(hook)

import torch
from pytest_i2i import backbone, fid, l1, load_dataset, load_images, ssim
from pytest_i2i.cli import main
from pytest_i2i.errors import WeightsNotFound

folder = sys.argv[1]
imgs = load_images(folder)
assert len(imgs) == 8 and imgs[0].shape[0] == 3
ds = load_dataset(None, max_samples=3)
print("l1", l1(ds.targets(), ds.inputs()).value, "ssim", ssim(imgs, imgs).value)
for name in ("inception-fid", "clip-vit-b-32", "dinov2-vits14"):
    try:
        backbone(name)
    except WeightsNotFound as e:
        print(name, "missing:", str(e).splitlines()[0][:80])
    except Exception as e:
        print(name, "other error:", type(e).__name__, e)
        raise
try:
    fid(imgs, imgs)
except WeightsNotFound:
    print("fid: weights missing")
print("cli", main(["score", folder, folder, "--metrics", "l1,psnr,fid"]))
print("cli", main(["generate", "torch.nn:Identity", os.path.join(folder, "..", "gen")]))
library_events = list(events)
try:  # control: the hook really sees a lookup
    socket.getaddrinfo("localhost", 80)
except ConnectionRefusedError:
    pass
print("EVENTS=" + json.dumps({"library": library_events, "control": events[len(library_events):]}))
"""


def test_nothing_opens_a_network_connection(tmp_path, photo_folders):
    """Library paths, missing backbone weights and the CLI, in a fresh interpreter whose audit hook
    records and blocks every socket connection and DNS lookup. The offline switch is on
    (``I2I_OFFLINE=1``; downloads are otherwise the default, see test_downloads.py), so none may happen."""
    import os

    from pytest_i2i.backbones.registry import list_backbones

    folder = photo_folders[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("I2I_",))}
    env.update(I2I_OFFLINE="1", TORCH_HOME=str(tmp_path / "torch"), HF_HOME=str(tmp_path / "hf"), XDG_CACHE_HOME=str(tmp_path / "xdg"),
               HF_HUB_CACHE=str(tmp_path / "hf" / "hub"))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(NETWORK_PROBE), str(folder)], env=env,
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    events = json.loads(out.stdout.split("EVENTS=")[1])
    assert events["library"] == []
    assert events["control"], "the audit hook did not see the control lookup"
    assert "inception-fid missing" in out.stdout and "fid: weights missing" in out.stdout
    assert "inception-fid" in list_backbones()
