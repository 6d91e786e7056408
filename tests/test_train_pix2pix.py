"""The pix2pix colorization training script and the committed demo checkpoint it produced."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import pytest_i2i
from pytest_i2i.data import sample_dataset
from pytest_i2i.errors import I2IInputError
from pytest_i2i.files import sha256_file
from pytest_i2i.generators.train_pix2pix import TrainConfig, TrainResult, chroma, evaluate, main, train

DEMO = Path(__file__).resolve().parents[1] / "demo"
CHECKPOINT = DEMO / "colorize_unet128.pth"
LOG = DEMO / "TRAINING_LOG.txt"
ARCH = "pix2pix-unet128-ngf8"

# a few steps of a very narrow model: enough to see determinism and a falling L1 in seconds
TINY = TrainConfig(steps=80, steps_per_epoch=20, batch_size=2, ngf=4, ndf=4, seed=3, threads=1)


def _state(result: TrainResult) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in result.generator.state_dict().items()}


def test_training_is_deterministic_and_lowers_l1() -> None:
    first, second = train(TINY), train(TINY)
    a, b = _state(first), _state(second)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert first.epochs[-1]["G_L1"] == second.epochs[-1]["G_L1"]

    assert [e["step"] for e in first.epochs] == [20, 40, 60, 80]
    assert first.epochs[-1]["G_L1"] < first.epochs[0]["G_L1"]
    initial = train(replace(TINY, steps=0)).generator  # the same seeded initial weights, untrained
    assert evaluate(first.generator)["l1"] < 0.9 * evaluate(initial)["l1"]


def test_cli_writes_checkpoint_and_log(tmp_path: Path) -> None:
    out = tmp_path / "g.pth"
    argv = ["--out", str(out), "--steps", "2", "--steps-per-epoch", "1", "--batch-size", "1", "--ngf", "4",
            "--ndf", "4", "--threads", "1"]
    assert main(argv) == 0
    log = (tmp_path / "TRAINING_LOG.txt").read_text()
    assert "command: python -m pytest_i2i.generators.train_pix2pix " + " ".join(argv) in log
    assert f"checkpoint sha256: {sha256_file(out)}" in log
    assert len(re.findall(r"^epoch +\d+ ", log, flags=re.M)) == 2
    gen = pytest_i2i.load_generator(out, arch="pix2pix-unet128", arch_kwargs={"ngf": 4})
    assert gen(torch.rand(1, 3, 128, 128)).shape == (1, 3, 128, 128)


@pytest.mark.parametrize("bad", [{"crop": 96}, {"steps": -1}, {"batch_size": 0}, {"shorter_side": 64}])
def test_bad_config_is_an_input_error(bad: dict) -> None:
    with pytest.raises(I2IInputError, match=next(iter(bad))):
        TrainConfig(**bad)


def test_chroma_is_zero_for_gray_and_positive_for_colour() -> None:
    gray = torch.rand(2, 1, 8, 8).expand(2, 3, 8, 8)
    assert chroma(gray) == pytest.approx(0.0, abs=1e-7)
    assert chroma(torch.rand(2, 3, 8, 8)) > 0.1
    with pytest.raises(I2IInputError, match="RGB"):
        chroma(torch.rand(2, 1, 8, 8))


def test_demo_checkpoint_matches_its_log() -> None:
    logged = re.search(r"^checkpoint sha256: ([0-9a-f]{64})$", LOG.read_text(), flags=re.M)
    assert logged is not None
    assert sha256_file(CHECKPOINT) == logged.group(1)
    assert CHECKPOINT.stat().st_size < 4_000_000


def test_demo_checkpoint_colorizes_the_sample_set() -> None:
    named = pytest_i2i.load_generator(CHECKPOINT, arch=ARCH)
    detected = pytest_i2i.load_generator(CHECKPOINT)
    assert named.arch == detected.arch == ARCH
    data = sample_dataset(128)
    gray = torch.stack([data.inputs()[i] for i in range(len(data))])
    out = named(gray)
    assert out.shape == gray.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert chroma(gray) < 1e-6
    assert chroma(out) > 0.02  # visibly coloured: several times the round-off of a gray image
    assert torch.equal(out, detected(gray))
