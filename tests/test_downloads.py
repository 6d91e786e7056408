"""Downloads of published weights, for real, against HTTP servers the tests start on 127.0.0.1.

Covered: success (and loading the downloaded file), 404, connection refused, a truncated body, a
wrong hash, a server that stalls (timeout), two processes downloading the same file at once,
mirrors (http:// and file://), the Hugging Face path (a local server speaking the hub's resolve
protocol, through ``huggingface_hub``), and the plugin's skip path without network. In every
failure nothing partial is left in the cache folder. The files are tiny synthetic state dicts.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pytest_i2i.backbones import download, factory, registry, weights
from pytest_i2i.backbones.factory import backbone
from pytest_i2i.backbones.registry import register_backbone
from pytest_i2i.backbones.spec import BackboneSpec
from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile, resolve_weights
from pytest_i2i.errors import WeightsHashMismatch, WeightsNotFound

TINY = "tiny-download-net"
FILENAME = "tiny-download-net.pth"
REPO = "some-org/tiny-download-net"
COMMIT = "c0ffee" + "0" * 34


def tiny_model():
    from torch import nn

    return nn.Linear(4, 2)


def tiny_bytes(seed: int) -> bytes:
    """A state dict of ``tiny_model`` with seeded weights, as ``torch.save`` writes it."""
    import io

    import torch

    torch.manual_seed(seed)
    buf = io.BytesIO()
    torch.save(tiny_model().state_dict(), buf)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Server:
    """A threaded HTTP server on 127.0.0.1 with per-path behaviours and a request log.

    ``routes[path] = (mode, body)``; modes: ``ok``, ``slow`` (body in 64 kB pieces, 30 ms apart),
    ``truncate`` (announces the full length, sends half, closes), ``stall`` (sends half, then
    nothing until the test ends), ``hf`` (HEAD answers like the Hugging Face hub's resolve
    endpoint: commit, ETag = ``etag`` or the body's sha256, size). Unknown paths get 404.
    """

    def __init__(self) -> None:
        self.routes: dict[str, tuple] = {}
        self.requests: list[tuple[str, str]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                server.requests.append(("HEAD", self.path))
                self._answer(head=True)

            def do_GET(self):
                server.requests.append(("GET", self.path))
                self._answer(head=False)

            def _answer(self, head: bool):
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                mode, body, *extra = route
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                if mode == "hf":
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("ETag", f'"{extra[0] if extra else sha(body)}"')
                self.end_headers()
                if head:
                    return
                if mode in ("ok", "hf"):
                    self.wfile.write(body)
                elif mode == "slow":
                    for i in range(0, len(body), 65536):
                        self.wfile.write(body[i:i + 65536])
                        self.wfile.flush()
                        time.sleep(0.03)
                elif mode == "truncate":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                elif mode == "stall":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    server.release.wait(30)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def gets(self, path: str) -> int:
        return sum(1 for m, p in self.requests if m == "GET" and p == path)

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def closed_port_url() -> str:
    """An http:// URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def online(tmp_path, monkeypatch):
    """Downloads on (conftest makes the suite offline), empty caches, fresh failure memory."""
    for var in ("I2I_OFFLINE", "HF_HUB_OFFLINE", "I2I_WEIGHTS_DIR", "I2I_WEIGHTS_MIRROR", "HF_HOME",
                "XDG_CACHE_HOME", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setenv("I2I_DOWNLOAD_TIMEOUT", "5")
    download.forget_download_failures()
    saved = weights._INTERFACE[0]
    weights.set_interface("python")
    yield
    weights._INTERFACE[0] = saved
    download.forget_download_failures()
    for key in [k for k in factory._LOADED if k[0] == TINY]:
        del factory._LOADED[key]
    registry._REGISTRY.pop(TINY, None)


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def files_in(folder: Path) -> list[str]:
    """What a cache folder holds, lock files aside (empty files that only serialise downloads)."""
    if not folder.exists():
        return []
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert all(p.stat().st_size == 0 for p in files if p.name.endswith(".lock"))
    return sorted(p.name for p in files if not p.name.endswith(".lock"))


def cfg(*files: WeightsFile) -> PretrainedCfg:
    return PretrainedCfg(files=files, source="tests")


def register_tiny(*files: WeightsFile) -> None:
    def init(model, seed):
        import torch

        with torch.no_grad():
            for p in model.parameters():
                p.fill_(seed)

    register_backbone(BackboneSpec(name=TINY, create=tiny_model, init_random=init, pretrained=cfg(*files),
                                   input_size=(1, 1), description="test-only linear layer"), overwrite=True)


# -- plain URLs ------------------------------------------------------------------------------------
def test_download_success_is_verified_loaded_and_found_next_time(server, cache_dir):
    import torch

    body = tiny_bytes(1)
    server.routes["/w/" + FILENAME] = ("ok", body)
    register_tiny(WeightsFile(FILENAME, sha256=sha(body), url=f"{server.url}/w/{FILENAME}", size=len(body)))
    bb = backbone(TINY)  # downloads by default
    assert bb.calibrated and bb.weights_sha256 == sha(body) and bb.weights_path == cache_dir / FILENAME
    expected = torch.load(cache_dir / FILENAME, weights_only=True)
    assert all(torch.equal(bb.model.state_dict()[k], v) for k, v in expected.items())
    assert files_in(cache_dir) == [FILENAME] and server.gets("/w/" + FILENAME) == 1
    res = resolve_weights(TINY, registry.get_spec(TINY).pretrained)
    assert res.location == "torch hub cache" and res.verified == "sha256" and server.gets("/w/" + FILENAME) == 1


def test_download_with_only_a_name_prefix_is_checked_against_it(server, cache_dir):
    body = tiny_bytes(2)
    good, bad = f"net-{sha(body)[:8]}.pth", "net-00000000.pth"
    server.routes["/" + good] = ("ok", body)
    server.routes["/" + bad] = ("ok", body)
    res = resolve_weights(TINY, cfg(WeightsFile(good, url=f"{server.url}/{good}")))
    assert res.calibrated and res.verified == "sha256 prefix" and res.location == "download"
    with pytest.raises(WeightsHashMismatch, match="prefix 00000000"):
        resolve_weights(TINY, cfg(WeightsFile(bad, url=f"{server.url}/{bad}")))
    assert files_in(cache_dir) == [good]


@pytest.mark.parametrize("case", ["404", "refused", "truncated", "wrong hash", "stall"])
def test_failed_download_leaves_nothing_in_the_cache(server, cache_dir, monkeypatch, case):
    body = tiny_bytes(3)
    url = f"{server.url}/w/{FILENAME}"
    published = sha(body)
    if case == "refused":
        url = f"{closed_port_url()}/w/{FILENAME}"
    elif case == "truncated":
        server.routes["/w/" + FILENAME] = ("truncate", body)
    elif case == "wrong hash":
        server.routes["/w/" + FILENAME] = ("ok", tiny_bytes(4))
    elif case == "stall":
        server.routes["/w/" + FILENAME] = ("stall", body)
        monkeypatch.setenv("I2I_DOWNLOAD_TIMEOUT", "0.5")
    start = time.perf_counter()
    error = WeightsHashMismatch if case == "wrong hash" else WeightsNotFound
    with pytest.raises(error) as e:
        resolve_weights(TINY, cfg(WeightsFile(FILENAME, sha256=published, url=url)))
    elapsed = time.perf_counter() - start
    msg = str(e.value)
    expected = {"404": "HTTP 404", "refused": "ConnectionRefusedError", "truncated": "truncated: the server sent",
                "wrong hash": "the download was discarded", "stall": "the server sent nothing for 0.5 s"}[case]
    assert expected in msg and url in msg and "downloading them failed" in msg
    assert "I2I_WEIGHTS_MIRROR" in msg and "I2I_OFFLINE" in msg  # how to get out of it
    assert files_in(cache_dir) == [] and files_in(Path(os.environ["HF_HUB_CACHE"])) == []
    assert elapsed < 5, f"{case} took {elapsed:.1f} s"
    # not retried in the same process
    before = len(server.requests)
    with pytest.raises(error, match="earlier in this process"):
        resolve_weights(TINY, cfg(WeightsFile(FILENAME, sha256=published, url=url)))
    assert len(server.requests) == before


def test_an_unreachable_host_is_tried_once(cache_dir):
    base = closed_port_url()
    files = (WeightsFile("a.pth", url=f"{base}/a.pth"), WeightsFile("b.pth", url=f"{base}/b.pth"))
    with pytest.raises(WeightsNotFound) as e:
        resolve_weights(TINY, cfg(*files))
    lines = str(e.value).splitlines()
    assert "ConnectionRefusedError" in lines[1] and "/a.pth" in lines[1]
    assert "/b.pth: not tried" in lines[2] and "could not be reached earlier" in lines[2]


def test_two_processes_downloading_the_same_file_at_once(server, cache_dir, tmp_path):
    body = tiny_bytes(5) + bytes(3_000_000)  # ~1.4 s at the slow server's pace
    server.routes["/" + FILENAME] = ("slow", body)
    script = textwrap.dedent(f"""
        import json, sys
        from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile, resolve_weights
        res = resolve_weights("tiny", PretrainedCfg(files=(WeightsFile({FILENAME!r}, sha256={sha(body)!r},
                              url={server.url + '/' + FILENAME!r}),)))
        print(json.dumps({{"path": str(res.path), "sha256": res.sha256, "calibrated": res.calibrated}}))
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, err in outs]
    assert all(p.returncode == 0 for p in procs), outs
    assert results[0] == results[1] == {"path": str(cache_dir / FILENAME), "sha256": sha(body), "calibrated": True}
    assert server.gets("/" + FILENAME) == 1  # the second process waited for the first one's file
    assert files_in(cache_dir) == [FILENAME] and (cache_dir / FILENAME).read_bytes() == body


# -- mirrors -----------------------------------------------------------------------------------------
def test_mirror_serves_every_file_by_name_hf_files_included(server, cache_dir, monkeypatch, tmp_path):
    body = tiny_bytes(6)
    local_name = "some-org--tiny-download-net.safetensors"
    server.routes["/mirror/" + local_name] = ("ok", body)
    monkeypatch.setenv("I2I_WEIGHTS_MIRROR", f"{server.url}/mirror/")
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())  # the hub is never asked
    wf = WeightsFile(local_name, sha256=sha(body), hf_hub_id=REPO, hf_filename="model.safetensors")
    res = resolve_weights(TINY, cfg(wf))
    assert res.calibrated and res.path == cache_dir / local_name
    assert server.requests == [("GET", "/mirror/" + local_name)]
    # a file:// mirror (a shared folder) works the same way
    (tmp_path / "share").mkdir()
    (tmp_path / "share" / "other.pth").write_bytes(body)
    monkeypatch.setenv("I2I_WEIGHTS_MIRROR", (tmp_path / "share").as_uri())
    res = resolve_weights(TINY, cfg(WeightsFile("other.pth", sha256=sha(body), url="https://example.invalid/x")))
    assert res.calibrated and res.path == cache_dir / "other.pth"
    # a mirror without the file: the message names it and the mirror option
    monkeypatch.setenv("I2I_WEIGHTS_MIRROR", f"{server.url}/mirror")
    with pytest.raises(WeightsNotFound) as e:
        resolve_weights(TINY, cfg(WeightsFile("absent.pth", url="https://example.invalid/absent.pth")))
    assert f"{server.url}/mirror/absent.pth: HTTP 404" in str(e.value)


# -- the Hugging Face hub -----------------------------------------------------------------------------
@pytest.fixture
def hub(server, monkeypatch):
    """``server`` as the Hugging Face endpoint, with huggingface_hub's import-time offline flag off."""
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    # huggingface_hub 2.x asks its import-time endpoint (huggingface.co) for an "agent registry" before
    # its first request in a process; give it an empty one so this test stays on 127.0.0.1
    try:
        import huggingface_hub.utils._detect_agent as agent
    except ImportError:  # older huggingface_hub: no such request
        agent = None
    if agent is not None and hasattr(agent, "_EMPTY_REGISTRY"):
        monkeypatch.setattr(agent, "_registry", agent._EMPTY_REGISTRY)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return server


def hf_wf(**kw) -> WeightsFile:
    return WeightsFile("some-org--tiny-download-net.safetensors", hf_hub_id=REPO, hf_filename="model.safetensors", **kw)


def test_hf_download_goes_through_huggingface_hub_and_its_cache(hub, tmp_path, monkeypatch):
    body = tiny_bytes(7)
    hub.routes[f"/{REPO}/resolve/main/model.safetensors"] = ("hf", body)
    res = resolve_weights(TINY, cfg(hf_wf()))  # no pinned sha256: verified against the hub's
    repo = tmp_path / "hf_cache" / "models--some-org--tiny-download-net"
    assert res.calibrated and res.verified == "hub sha256" and res.location == "download"
    assert res.path == repo / "snapshots" / COMMIT / "model.safetensors"
    assert res.path.resolve() == repo / "blobs" / sha(body)
    assert (repo / "refs" / "main").read_text() == COMMIT
    # next time: found in the HF cache, offline
    monkeypatch.setenv("I2I_OFFLINE", "1")
    again = resolve_weights(TINY, cfg(hf_wf()))
    assert again.location == "hf hub cache" and again.path == res.path and again.verified == "hub sha256"
    assert hub.gets(f"/{REPO}/resolve/main/model.safetensors") == 1


def test_hf_pinned_revision_and_sha256(hub, tmp_path):
    body = tiny_bytes(8)
    hub.routes[f"/{REPO}/resolve/{COMMIT}/model.safetensors"] = ("hf", body)
    res = resolve_weights(TINY, cfg(hf_wf(sha256=sha(body), hf_revision=COMMIT)))
    assert res.verified == "sha256" and res.path.parent.name == COMMIT
    # the hub serving other content than the pinned sha256: refused before downloading
    other = "other-org/net"
    hub.routes[f"/{other}/resolve/main/model.safetensors"] = ("hf", body)
    wf = WeightsFile("other.safetensors", sha256="ab" * 32, hf_hub_id=other, hf_filename="model.safetensors")
    with pytest.raises(WeightsHashMismatch, match="not downloaded"):
        resolve_weights(TINY, cfg(wf))
    assert hub.gets(f"/{other}/resolve/main/model.safetensors") == 0


def test_hf_download_whose_content_is_not_the_hubs_sha256_is_removed(hub, tmp_path):
    body = tiny_bytes(9)
    fake_etag = sha(tiny_bytes(10))  # the hub's sha256 says one thing, the bytes are another
    hub.routes[f"/{REPO}/resolve/main/model.safetensors"] = ("hf", body, fake_etag)
    with pytest.raises(WeightsHashMismatch, match="the download was discarded"):
        resolve_weights(TINY, cfg(hf_wf()))
    repo = tmp_path / "hf_cache" / "models--some-org--tiny-download-net"
    assert files_in(repo / "blobs") == [] and files_in(repo / "snapshots") == []


@pytest.mark.parametrize("case", ["404", "refused"])
def test_hf_failures_are_fast_and_clean(hub, tmp_path, monkeypatch, case):
    if case == "refused":
        monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    start = time.perf_counter()
    with pytest.raises(WeightsNotFound) as e:
        resolve_weights(TINY, cfg(hf_wf()))
    assert time.perf_counter() - start < 3  # huggingface_hub's own retries would take ~23 s
    assert "downloading them failed" in str(e.value) and REPO in str(e.value)
    assert files_in(tmp_path / "hf_cache") == []


def test_hf_hub_offline_is_respected(hub, monkeypatch):
    hub.routes[f"/{REPO}/resolve/main/model.safetensors"] = ("hf", tiny_bytes(11))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFound, match=r"downloads are off \(HF_HUB_OFFLINE=1\)"):
        resolve_weights(TINY, cfg(hf_wf()))
    assert hub.requests == []
    # an explicit allow_download=True still downloads
    assert resolve_weights(TINY, cfg(hf_wf()), allow_download=True).verified == "hub sha256"
    assert hub.gets(f"/{REPO}/resolve/main/model.safetensors") == 1


# -- the plugin without network -------------------------------------------------------------------------
def test_plugin_skips_quickly_with_a_clear_message_when_downloads_fail(pytester, monkeypatch):
    """The README's main job on a machine without network: downloads are attempted, fail at once,
    and the metrics that need the weights skip with the reason and the way out (no hang, no traceback)."""
    monkeypatch.setenv("I2I_WEIGHTS_MIRROR", closed_port_url())  # every download goes to a closed port
    pytester.makepyfile("""
        import torch

        def test_fid(fid):
            fid(torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32))

        def test_kid(kid):
            kid(torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32))
    """)
    start = time.perf_counter()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=2)
    text = result.stdout.str()
    assert "downloading them failed" in text and "ConnectionRefusedError" in text
    assert "--i2i-weights-mirror=URL" in text and "--i2i-offline" in text and "Traceback" not in text
    assert time.perf_counter() - start < 60


def test_plugin_options_offline_and_mirror(pytester, monkeypatch):
    """``--i2i-offline`` and ``i2i_weights_mirror`` (ini) reach the resolver, and messages speak pytest."""
    pytester.makeini("[pytest]\ni2i_weights_mirror = http://127.0.0.1:9/weights\n")
    pytester.makepyfile("""
        import os
        import pytest
        from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile, resolve_weights
        from pytest_i2i.errors import WeightsNotFound

        def test_show(i2i_options):
            print("OFFLINE", os.environ.get("I2I_OFFLINE"), i2i_options.offline, i2i_options.sources["offline"])
            print("MIRROR", os.environ.get("I2I_WEIGHTS_MIRROR"), i2i_options.sources["weights_mirror"])
            with pytest.raises(WeightsNotFound) as e:
                resolve_weights("x", PretrainedCfg(files=(WeightsFile("x.pth", url="https://example.invalid/x.pth"),)))
            print("MESSAGE", str(e.value).splitlines()[0], "|", str(e.value).splitlines()[-1])
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--i2i-offline")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*OFFLINE 1 True command line*",
        "*MIRROR http://127.0.0.1:9/weights ini i2i_weights_mirror*",
        "*MESSAGE weights for backbone 'x' (x.pth) not found, and downloads are off (--i2i-offline).*--i2i-weights-dir=FOLDER*"
        "run without --i2i-offline*",
    ])
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--i2i-weights-mirror=ftp://host/x")
    bad.stderr.fnmatch_lines(["*--i2i-weights-mirror*'ftp://host/x' is not an http(s):// or file:// URL*"])


def test_i2i_backbones_shows_installed_where_verified_and_size(server, cache_dir, tmp_path, monkeypatch, capsys):
    from pytest_i2i.cli import main

    body = tiny_bytes(12)
    server.routes["/" + FILENAME] = ("ok", body)
    register_tiny(WeightsFile(FILENAME, sha256=sha(body), url=f"{server.url}/{FILENAME}", size=len(body)))
    for var in ("I2I_WEIGHTS_DIR", "I2I_OFFLINE"):  # the CLI sets them; restored after the test
        monkeypatch.setenv(var, "")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["backbones", "--json", "--weights-dir", str(empty)]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["backbones"]}
    assert rows[TINY]["installed"] is False and rows[TINY]["download_bytes"] == len(body)
    inception = rows["inception-fid"]
    assert inception["download_bytes"] == 95_628_359 and "github.com" in inception["download_from"]
    assert server.requests == []  # listing never downloads
    assert main(["backbones", "--download", TINY]) == 0
    assert f"{TINY}: {cache_dir / FILENAME} (download, sha256)" in capsys.readouterr().out
    assert main(["backbones"]) == 0
    out_text = capsys.readouterr().out
    line = next(x for x in out_text.splitlines() if x.startswith(TINY + " "))
    size = weights.human_size(len(body)).split()
    # backbone, input, the file it needs (size), ready or not, where, verified against what
    assert line.split() == [TINY, "1x1", FILENAME, f"({size[0]}", f"{size[1]})", "ready", "torch", "hub", "cache",
                            "sha256"]
    assert f"  weights {cache_dir / FILENAME}" in out_text
    # a file with the published name but other content: shown as refused, with the reason
    wdir = tmp_path / "wdir"
    wdir.mkdir()
    (wdir / FILENAME).write_bytes(tiny_bytes(13))
    assert main(["backbones", "--weights-dir", str(wdir)]) == 0
    out_text = capsys.readouterr().out
    assert any(x.startswith(TINY + " ") and "REFUSED" in x and "wrong sha256" in x for x in out_text.splitlines())
    assert "is partial or not the published one" in out_text
