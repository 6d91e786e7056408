"""Shared fixtures. Random-weight backbones here are architecture-exact and seeded; every
number computed with them is uncalibrated and used only to compare implementations.

The suite runs offline: ``I2I_OFFLINE=1`` and ``HF_HUB_OFFLINE=1`` are set before anything imports
huggingface_hub (subprocesses inherit them; tests of the download path unset them and use servers
on 127.0.0.1), and an audit hook refuses every connection and name lookup that is not local; a
test that attempts one fails even when the code under test swallowed the error."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import sys
from pathlib import Path


def _share_the_cores_between_xdist_workers() -> None:
    """Under ``pytest -n N`` each worker gets cores // N math threads (torch, OpenMP, OpenBLAS),
    inherited by its subprocesses; set before numpy and torch are imported. Two workers of two
    threads each on 2 cores oversubscribe them, and OpenMP's spinning barriers then make small
    training and forward passes tens of times slower (measured: 80 pix2pix steps 352 s at 2 threads
    vs about 6 s at 1 thread under load). An explicit OMP_NUM_THREADS wins."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if os.environ.get("PYTEST_XDIST_WORKER") and workers > 0:
        share = str(max(1, (os.cpu_count() or 1) // workers))
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, share)


_share_the_cores_between_xdist_workers()

import numpy as np  # noqa: E402
import numpy.fft  # noqa: E402,F401
import pytest  # noqa: E402

# pytester's in-process runs drop the modules first imported inside them from sys.modules; numpy's
# C extensions refuse to load twice in one process, so they are imported before any such run.

os.environ["I2I_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

_NETWORK_ATTEMPTS: list[str] = []
_LOCAL_NAMES = {None, "", "localhost", b"localhost"}


def _is_local(host) -> bool:
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.decode() if isinstance(host, bytes) else str(host)).is_loopback
    except ValueError:
        return False


def _network_guard(event: str, args: tuple) -> None:
    if not event.startswith("socket."):
        return
    if event == "socket.connect" or event == "socket.sendto":
        address = args[1]
        if not isinstance(address, tuple) or _is_local(address[0]):  # AF_UNIX paths are local
            return
        target = address
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"):
        if _is_local(args[0]):
            return
        target = args[0]
    else:
        return
    _NETWORK_ATTEMPTS.append(f"{event} {target!r}")
    raise ConnectionRefusedError(f"tests must not reach the network ({event} {target!r})")


sys.addaudithook(_network_guard)


@pytest.fixture(autouse=True)
def _no_network_access():
    """Fails the test that tried to reach a non-local host (the hook above refused it)."""
    start = len(_NETWORK_ATTEMPTS)
    yield
    if len(_NETWORK_ATTEMPTS) > start:
        pytest.fail(f"the test tried to reach the network: {_NETWORK_ATTEMPTS[start:]}", pytrace=False)



@pytest.fixture(autouse=True, scope="session")
def _direct_gate_calls_stay_out_of_this_runs_summary():
    """Tests call the gates directly; those verdicts are what the tests check, not rows of the
    pytest-i2i summary of this test run. A recorder added here is the innermost one and takes
    them; pytester runs and tests that add their own recorder still receive theirs."""
    from pytest_i2i.gates import add_recorder

    stop = add_recorder(lambda result, check: None)
    yield
    stop()


@pytest.fixture(scope="session")
def inception_weights_file(tmp_path_factory):
    """A seeded random FID Inception state_dict saved in pytorch-fid's key layout."""
    import torch

    from pytest_i2i.backbones.inception import FIDInceptionV3, init_random

    model = FIDInceptionV3()
    init_random(model, seed=1)
    path = tmp_path_factory.mktemp("weights") / "random_fid_inception.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def photo_folders(tmp_path_factory):
    """Two folders of 8 bundled real photos (64x64 PNG): originals and a JPEG q=30 copy."""
    import io

    from PIL import Image

    from pytest_i2i.images.samples import write_sample_folder

    root = tmp_path_factory.mktemp("photos")
    paths = write_sample_folder(root / "real", size=64)
    (root / "fake").mkdir()
    for p in paths:
        buf = io.BytesIO()
        Image.open(p).save(buf, format="JPEG", quality=30)
        Image.open(buf).save(root / "fake" / p.name)
    return root / "real", root / "fake"


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module of small-tensor tests (restored after it): on a shared
    2-core CPU extra threads only add contention (measured 20x slower SSIM/CIEDE2000 at 32 px with
    2 threads under load). Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def chromium(tmp_path):
    """A headless Chromium driven by selenium (Debian's ``chromium`` and ``chromium-driver``, which
    ``.ci/run`` installs), window 1360x860, the page's console kept (``driver.get_log("browser")``).
    Skips, saying why, without them."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(f"Chromium or chromedriver not found ({CHROMIUM}, {CHROMEDRIVER}); .ci/run installs Debian's "
                    "chromium and chromium-driver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-extensions", "--window-size=1360,860", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    yield driver
    with contextlib.suppress(Exception):  # a test may have quit it already
        driver.quit()


@pytest.fixture
def save_screenshot(tmp_path):
    """``save_screenshot(driver, name)``: a PNG of the window in ``tmp_path/artifacts`` (and in
    ``$I2I_TEST_ARTIFACTS`` when set); returns its path."""

    def save(driver, name: str) -> Path:
        folder = tmp_path / "artifacts"
        folder.mkdir(exist_ok=True)
        path = folder / name
        assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"
        extra = os.environ.get("I2I_TEST_ARTIFACTS")
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(extra) / name)
        return path

    return save


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_fresh_machine_commands() -> list[list[str]]:
    """The ```bash blocks of the README's "On a fresh machine" section, then the inline command it
    quotes after "To score two folders", each as its commands (split at ``&&``) with the install
    steps (``python3 -m venv``, ``pip install``) left out and ``.venv/bin/`` pointed at the running
    interpreter's environment: what a user pastes after installing."""
    import re

    text = README.read_text(encoding="utf-8")
    section = text.split("\n## On a fresh machine\n", 1)[1].split("\n## ", 1)[0]
    blocks = [_commands(block) for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]
    score = re.search(r"To score two\s+folders[^`]*`([^`]+)`", section)
    return blocks + ([_commands(score.group(1))] if score else [])


def _commands(line: str) -> list[list[str]]:
    import shlex

    bindir = str(Path(sys.executable).parent) + "/"
    commands = []
    for command in line.replace("\\\n", " ").strip().split("&&"):
        argv = shlex.split(command)
        if argv[:3] == ["python3", "-m", "venv"] or "install" in argv[1:2]:
            continue
        commands.append([bindir + a.removeprefix(".venv/bin/") if a.startswith(".venv/bin/") else a for a in argv])
    return commands


@pytest.fixture(scope="session")
def readme_commands() -> list[list[list[str]]]:
    """:func:`readme_fresh_machine_commands` (tests run the README's commands from the README itself)."""
    return readme_fresh_machine_commands()
