"""Plugin options are usage errors at start-up, before any generation, in one line (issue 19); an
environment that names a missing weights folder breaks neither ``--help`` nor an unrelated run."""

from __future__ import annotations

import pytest

from pytest_i2i.plugin import weights


def usage_error(result, *fragments):
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    err = result.stderr.str()
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in err + result.stdout.str()
    return err


def test_a_mistyped_arch_is_one_line_listing_the_valid_names(pytester, tmp_path):
    model = tmp_path / "g.pth"
    model.write_bytes(b"x")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--i2i-model={model}",
                                           "--i2i-arch=pix2pix-unet25")
    err = usage_error(result, "--i2i-arch", "'pix2pix-unet25'", "pix2pix-unet256")
    assert len([line for line in err.splitlines() if "pix2pix-unet25" in line]) == 1
    result.stdout.no_fnmatch_line("*passed*")


@pytest.mark.parametrize("device, fragment", [("tpu", "is not a torch device"),
                                              ("cuda:97", "is not available on this machine")])
def test_a_device_that_does_not_exist_is_a_usage_error(pytester, device, fragment):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--i2i-device={device}")
    usage_error(result, "--i2i-device", repr(device), fragment)


def test_a_report_folder_that_cannot_be_written_is_a_usage_error(pytester, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--i2i-report={blocker / 'report'}")
    usage_error(result, "--i2i-report", "is not a directory")


def test_a_missing_weights_dir_from_the_environment_breaks_nothing(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv(weights.ENV_WEIGHTS_DIR, str(tmp_path / "missing"))
    result = pytester.runpytest_subprocess("--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*--i2i-weights-dir*"])
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("entry, fragment", [("{value = inf}", "finite numeric value"),
                                             ("{value = 0.5, margin = inf}", "margin must be a finite number"),
                                             ("{value = -inf}", "finite numeric value"),
                                             ("{value = nan}", "finite numeric value")])
def test_infinite_thresholds_are_usage_errors(pytester, entry, fragment):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    pytester.makepyprojecttoml(f"[tool.i2i.thresholds]\nssim = {entry}\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    usage_error(result, "ssim", fragment)
