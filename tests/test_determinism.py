"""Determinism: equal inputs, seed and options give a byte-identical JSON report, and every metric's
value does not depend on the batch size (within 1e-6).

Backbone metrics use seeded random weights (architecture-exact, uncalibrated): the property
under test is the arithmetic, not the calibration. Each backbone's in-memory feature memo is
cleared before each batch size, so every batch size really runs its own forward passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import pytest_i2i  # noqa: E402
from pytest_i2i.images import sample_images  # noqa: E402

TOLERANCE = 1e-6

SUITE = """
def test_fidelity(l1, ssim, psnr, ciede2000):
    assert l1() <= 0.5
    assert ssim() >= 0.1
    assert psnr() >= 5
    assert ciede2000() <= 60


def test_failing(psnr):
    assert psnr() >= 60
"""


class Brighten(torch.nn.Module):
    """Synthetic generator: a fixed brightness/contrast change."""

    def forward(self, x):
        return (x * 0.9 + 0.05).clamp(0, 1)


def _run_suite(folder: Path) -> bytes:
    folder.mkdir()
    (folder / "test_suite.py").write_text(SUITE)
    torch.jit.script(Brighten()).save(str(folder / "model.pt"))
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
           f"--i2i-model={folder / 'model.pt'}", "--i2i-max-samples=3", "--i2i-batch-size=2",
           f"--i2i-report={folder / 'report'}", "test_suite.py"]
    out = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr  # test_failing fails on purpose
    return (folder / "report" / "i2i-report.json").read_bytes()


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_two_runs_give_a_byte_identical_report(tmp_path):
    """Two runs in two different folders: the report holds no timing and no host path, so the
    bytes are equal."""
    import json

    first = _run_suite(tmp_path / "run1")
    second = _run_suite(tmp_path / "run2")
    assert first == second
    data = json.loads(first)
    assert data["status"] == "complete"
    assert data["session"]["options"]["model"] == "model.pt"  # made relative to the rootdir
    assert str(tmp_path) not in first.decode()
    assert [m["result"]["name"] for m in data["metrics"]] == ["psnr", "l1", "ssim", "psnr", "ciede2000"]
    assert all("wall_time_s" not in m["result"] for m in data["metrics"])


def _max_difference(results: list) -> float:
    """Largest |difference| between the results' values and per-sample values (and CI bounds)."""
    ref = results[0]
    worst = 0.0
    for r in results[1:]:
        assert r.n == ref.n and r.sample_names == ref.sample_names
        pairs = [(r.value, ref.value)]
        pairs += list(zip(r.per_sample or [], ref.per_sample or []))
        pairs += list(zip(r.ci or (), ref.ci or ()))
        for a, b in pairs:
            worst = max(worst, abs(float(a) - float(b)))
    return worst


@pytest.fixture(scope="module")
def images():
    real = torch.stack(list(sample_images(size=48)))
    fake = torch.stack([(t * 0.8 + 0.1) for t in real])
    fake[:, 0] = fake[:, 0].roll(3, dims=-1)  # a colour shift, so no metric sits at its ideal value
    return real, fake


@pytest.mark.parametrize("name", ["l1", "psnr", "ssim", "ciede2000", "ms_ssim"])
def test_paired_metrics_do_not_depend_on_batch_size(images, name):
    real, fake = images
    if name == "ms_ssim":  # five scales need at least 161 px
        real = torch.stack(list(sample_images(size=176, names=("astronaut", "coffee"))))
        fake = (real * 0.8 + 0.1).clamp(0, 1)
    fn = getattr(pytest_i2i, name)
    results = [fn(real, fake, batch_size=bs) for bs in sorted({len(real), 3, 1}, reverse=True)]
    assert _max_difference(results) <= TOLERANCE


BACKBONE_METRICS = {
    "inception-fid": {
        "kid": lambda bb, r, f, bs: pytest_i2i.kid(r, f, backbone=bb, batch_size=bs, subsets=10, subset_size=2),
        "inception_score": lambda bb, r, f, bs: pytest_i2i.inception_score(f, backbone=bb, batch_size=bs, splits=2),
    },
    # the ViT metrics' arithmetic on a tiny timm ViT (DINO / DINOv2 are the same code on bigger ViTs)
    "timm:vit_tiny_patch16_224": {
        "dino_image": lambda bb, r, f, bs: pytest_i2i.dino_image(r, f, backbone=bb, batch_size=bs),
        "fd_vit": lambda bb, r, f, bs: pytest_i2i.fd_vit(r, f, backbone=bb, batch_size=bs),
        "vit_patch_distance": lambda bb, r, f, bs: pytest_i2i.vit_patch_distance(r, f, backbone=bb, batch_size=bs),
    },
}
# Opt-in (I2I_TEST_SLOW=1): FID's 2048-d matrix square root and building a random CLIP ViT-B/32 take
# 30+ s each on a small CPU; KID above runs on the same pool3 features as FID.
SLOW_BACKBONE_METRICS = {
    "inception-fid": {
        "fid": lambda bb, r, f, bs: pytest_i2i.fid(r, f, backbone=bb, batch_size=bs),
    },
    "clip-vit-b-32": {
        "clip_text": lambda bb, r, f, bs: pytest_i2i.clip_text(f, ["a photo", "a cat"],
                                                              backbone=bb, batch_size=bs),
        "clip_image": lambda bb, r, f, bs: pytest_i2i.clip_image(r, f, backbone=bb, batch_size=bs),
        "clip_direction": lambda bb, r, f, bs: pytest_i2i.clip_direction(r, f, "a photo", "a painting",
                                                                        backbone=bb, batch_size=bs),
        "cmmd": lambda bb, r, f, bs: pytest_i2i.cmmd(r, f, backbone=bb, batch_size=bs),
    },
}
SLOW = pytest.mark.skipif(os.environ.get("I2I_TEST_SLOW") != "1", reason="slow: set I2I_TEST_SLOW=1")


def batch_size_differences(images, backbone_name: str, metrics: dict) -> dict[str, float]:
    """2 images (real and fake): one batch of 2 against two of 1; random weights, memo cleared
    before each batch size."""
    real = images[0][:2]
    fake = (real.flip(-1) * 0.7 + 0.2).clamp(0, 1)  # clearly different images: well-conditioned directions
    bb = pytest_i2i.backbone(backbone_name, weights="random")
    results: dict[str, list] = {name: [] for name in metrics}
    for bs in (2, 1):
        bb.memo.clear()  # metrics of one batch size share its forward passes, never another size's
        for name, fn in metrics.items():
            results[name].append(fn(bb, real, fake, bs))
    return {name: _max_difference(rs) for name, rs in results.items()}


@pytest.mark.parametrize("backbone_name", list(BACKBONE_METRICS))
def test_backbone_metrics_do_not_depend_on_batch_size(images, backbone_name):
    pytest.importorskip("timm")
    differences = batch_size_differences(images, backbone_name, BACKBONE_METRICS[backbone_name])
    assert all(d <= TOLERANCE for d in differences.values()), differences


@pytest.mark.slow
@SLOW
@pytest.mark.parametrize("backbone_name", list(SLOW_BACKBONE_METRICS))
def test_slow_backbone_metrics_do_not_depend_on_batch_size(images, backbone_name):
    pytest.importorskip("open_clip")
    differences = batch_size_differences(images, backbone_name, SLOW_BACKBONE_METRICS[backbone_name])
    assert all(d <= TOLERANCE for d in differences.values()), differences
