"""The i2i command line, run in-process on the bundled photos."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_i2i.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["samples", str(out), "--size", "64"]) == 0
    return out


def test_samples_writes_photos_and_degraded_copies(demo):
    photos = sorted(p.name for p in (demo / "photos").iterdir())
    assert len(photos) == 8 and photos == sorted(p.name for p in (demo / "degraded").iterdir())


def test_score_skips_inception_metrics_with_the_reason_when_weights_are_missing(demo, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("I2I_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("I2I_ALLOW_DOWNLOAD", raising=False)
    out_json = tmp_path / "r.json"
    rc = main(["score", str(demo / "photos"), str(demo / "degraded"), "--json", str(out_json)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "ssim" in text and "skipped fid, inception_score, kid" in text
    assert "pt_inception-2015-12-05-6726825d.pth" in text
    data = json.loads(out_json.read_text())
    assert {r["name"] for r in data["results"]} == {"l1", "psnr", "ssim", "ciede2000"}
    assert {s["metric"] for s in data["skipped"]} == {"fid", "kid", "inception_score"}
    rc = main(["score", str(demo / "photos"), str(demo / "degraded"), "--require-weights", "--metrics", "fid"])
    assert rc == 2 and "not found" in capsys.readouterr().err


def test_score_with_weights_file_labels_uncalibrated(demo, inception_weights_file, tmp_path, capsys):
    rc = main(["score", str(demo / "photos"), str(demo / "degraded"), "--metrics", "fid,l1",
               "--weights", str(inception_weights_file), "--json", str(tmp_path / "r.json")])
    text = capsys.readouterr().out
    assert rc == 0 and "WARNING: some results use uncalibrated weights" in text
    fid = next(r for r in json.loads((tmp_path / "r.json").read_text())["results"] if r["name"] == "fid")
    assert fid["calibrated"] is False and fid["value"] >= 0


def test_bad_input_exits_2_with_message(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["score", str(tmp_path / "empty"), str(tmp_path / "empty"), "--metrics", "l1"]) == 2
    assert "contains no image files" in capsys.readouterr().err
    assert main(["score", str(tmp_path), str(tmp_path), "--metrics", "nope"]) == 2


def test_console_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "pytest_i2i.cli", "backbones"], capture_output=True, text=True)
    assert out.returncode == 0 and "inception-fid" in out.stdout


def test_generate_writes_outputs_with_the_shared_loader(tmp_path, capsys):
    import torch

    from pytest_i2i.generators import GeneratorArch, register_generator_arch, unregister_generator_arch

    register_generator_arch(GeneratorArch("cli-test-identity", build=lambda: torch.nn.Conv2d(3, 3, 1),
                                          input_range=(0.0, 1.0), output_range=(0.0, 1.0)))
    try:
        conv = torch.nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            conv.bias.zero_()
        torch.save(conv.state_dict(), tmp_path / "identity.pth")
        rc = main(["generate", str(tmp_path / "identity.pth"), str(tmp_path / "out"), "--arch", "cli-test-identity"])
    finally:
        unregister_generator_arch("cli-test-identity")
    assert rc == 0 and "wrote 8 of 8 outputs" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir())[0] == "astronaut.png"
