"""Shared fixtures. Random-weight backbones here are architecture-exact and seeded; every
number computed with them is uncalibrated and used only to compare implementations.

The suite runs offline: ``I2I_OFFLINE=1`` and ``HF_HUB_OFFLINE=1`` are set before anything imports
huggingface_hub (subprocesses inherit them; tests of the download path unset them and use servers
on 127.0.0.1), and an audit hook refuses every connection and name lookup that is not local; a
test that attempts one fails even when the code under test swallowed the error."""

from __future__ import annotations

import ipaddress
import os
import sys


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
