"""Shared fixtures. Random-weight backbones here are architecture-exact and seeded; every
number computed with them is uncalibrated and used only to compare implementations."""

from __future__ import annotations

import numpy as np
import numpy.fft  # noqa: F401
import pytest

# pytester's in-process runs drop the modules first imported inside them from sys.modules; numpy's
# C extensions refuse to load twice in one process, so they are imported before any such run.


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
