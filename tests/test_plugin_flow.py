"""The plugin end to end, with pytester: options, assertions, skips, reports, xdist.

A tiny TorchScript "generator" (a fixed brightness map, written by the tests) runs on the
built-in sample set; nothing is downloaded, and metrics needing backbone weights are skipped.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

OPTION_NAMES = ["model", "arch", "arch-option", "generator-option", "generator-mode", "data", "baseline", "device",
                "batch-size", "weights-dir", "require-weights", "seed", "max-samples", "cache-dir", "report",
                "trust-checkpoint"]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """Two TorchScript generators: a mild and a stronger brightness change (synthetic models)."""

    class Brighten(torch.nn.Module):
        def __init__(self, gain: float):
            super().__init__()
            self.gain = gain

        def forward(self, x):
            return (x * self.gain + (1 - self.gain) / 2).clamp(0, 1)

    root = tmp_path_factory.mktemp("models")
    paths = {}
    for name, gain in (("good", 0.95), ("worse", 0.6)):
        paths[name] = root / f"{name}.pt"
        torch.jit.script(Brighten(gain)).save(str(paths[name]))
    return paths


def _run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--i2i-max-samples=3", *args)


def test_help_lists_every_option(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*image-to-image model evaluation (pytest-i2i)*"])
    for name in OPTION_NAMES:
        result.stdout.fnmatch_lines([f"*--i2i-{name}*"])


def test_precedence_command_line_env_ini(pytester, monkeypatch):
    pytester.makeini("[pytest]\ni2i_batch_size = 3\ni2i_seed = 5\n")
    pytester.makepyfile("""
        def test_show(i2i_options):
            print(f"BATCH={i2i_options.batch_size} SEED={i2i_options.seed} FROM={i2i_options.sources['batch_size']}")
    """)
    _run(pytester, "-s").stdout.fnmatch_lines(["*BATCH=3 SEED=5 FROM=ini i2i_batch_size*"])
    monkeypatch.setenv("I2I_BATCH_SIZE", "4")
    _run(pytester, "-s").stdout.fnmatch_lines(["*BATCH=4 SEED=5 FROM=env I2I_BATCH_SIZE*"])
    _run(pytester, "-s", "--i2i-batch-size=6").stdout.fnmatch_lines(["*BATCH=6 SEED=5 FROM=command line*"])


@pytest.mark.parametrize("args,message", [
    (["--i2i-batch-size=0"], "*--i2i-batch-size (from command line): must be >= 1*"),
    (["--i2i-seed=abc"], "*--i2i-seed*is not an integer*"),
    (["--i2i-device=gpu"], "*--i2i-device*not a torch device*"),
    (["--i2i-baseline=x.pt"], "*--i2i-baseline needs --i2i-model*"),
    (["--i2i-model=missing.pt"], "*--i2i-model: missing.pt does not exist*"),
])
def test_invalid_values_are_usage_errors(pytester, args, message):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_failing_metric_assert_explains_itself(pytester, model_files):
    pytester.makepyfile("""
        def test_ssim_high(ssim):
            assert ssim() >= 0.999
    """)
    result = _run(pytester, f"--i2i-model={model_files['worse']}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*ssim * >= 0.999 failed*", "*95% CI of the mean*", "*n = 3*", "*worst 3 samples:*", "*astronaut*",
    ])


def test_missing_weights_skip_or_error(pytester, model_files, tmp_path, monkeypatch):
    pytester.makepyfile("""
        def test_fid(fid):
            assert fid() <= 100
    """)
    env_args = [f"--i2i-model={model_files['good']}"]
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    result = _run(pytester, "-rs", *env_args)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*fid: weights for backbone 'inception-fid' (pt_inception-2015-12-05-6726825d.pth) "
                                 "not found*"])
    result = _run(pytester, *env_args, "--i2i-require-weights")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*--i2i-require-weights is set*"])


SUITE = """
    import pytest
    from pytest_i2i.gates import assert_metric

    def test_ssim(ssim):
        assert_metric(ssim(), ">=", 0.01)

    def test_l1(l1):
        assert l1() <= 0.9

    def test_psnr_strict(psnr):
        assert psnr() >= 60
"""


def test_report_files_terminal_table_and_junit(pytester, model_files, tmp_path):
    pytester.makepyfile(SUITE)
    report = tmp_path / "report"
    junit = tmp_path / "junit.xml"
    result = _run(pytester, f"--i2i-model={model_files['good']}", f"--i2i-report={report}", f"--junitxml={junit}")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*pytest-i2i metrics*", "*test_psnr_strict*psnr*>= 60*FAIL*", "*test_ssim*ssim*pass*"])
    result.stdout.no_fnmatch_line("*record_property is incompatible*")
    data = json.loads((report / "i2i-report.json").read_text())
    assert data["schema"] == "pytest-i2i-report/1"
    assert [(m["test"].split("::")[-1], m["result"]["name"], m["outcome"]) for m in data["metrics"]] == [
        ("test_l1", "l1", "passed"), ("test_psnr_strict", "psnr", "failed"), ("test_ssim", "ssim", "passed")]
    # gates and failing plain asserts are recorded; a passing plain comparison leaves the result alone
    assert data["metrics"][0]["checks"] == []
    assert data["metrics"][1]["checks"] == [{"op": ">=", "threshold": 60.0, "passed": False, "gate": "assert"}]
    assert [c["gate"] for c in data["metrics"][2]["checks"]] == ["bootstrap bound"]
    assert data["session"]["dataset"]["n"] == 3 and data["session"]["model"]["kind"]
    html = (report / "index.html").read_text()
    assert "psnr" in html and "images/astronaut__output.png" in html
    assert (report / "images" / "astronaut__output.png").is_file()
    assert '::test_ssim::i2i.ssim" value="' in junit.read_text()  # a suite property under xunit2


def test_xdist_gives_the_same_json(pytester, model_files, tmp_path):
    pytest.importorskip("xdist")
    pytester.makepyfile(SUITE)
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    _run(pytester, f"--i2i-model={model_files['good']}", f"--i2i-report={serial}")
    result = _run(pytester, "-n", "2", f"--i2i-model={model_files['good']}", f"--i2i-report={parallel}")
    result.assert_outcomes(passed=2, failed=1)
    assert (parallel / "i2i-report.json").read_text() == (serial / "i2i-report.json").read_text()
    result.stdout.fnmatch_lines(["*pytest-i2i metrics*"])


def test_model_suite_with_thresholds_and_baseline(pytester, model_files):
    import shutil
    from pathlib import Path

    suite = Path(__file__).resolve().parents[1] / "suites" / "model" / "test_model.py"
    shutil.copy(suite, pytester.path / "test_model.py")
    pytester.makepyprojecttoml("""
        [tool.i2i.thresholds]
        ssim = 0.2
        l1 = {value = 0.5, confidence = 0.9}
        ciede2000 = {value = 40.0, margin = 0.5}
    """)
    # the gain-0.6 model scores better against the colour targets than the gain-0.95 one (measured),
    # so running the latter as candidate against the former as baseline is a regression
    result = _run(pytester, "-rs", f"--i2i-model={model_files['good']}", f"--i2i-baseline={model_files['worse']}")
    assert result.parseoutcomes().get("failed", 0) >= 1
    result.stdout.fnmatch_lines(["*test_no_regression_against_baseline?ssim?*ssim *FAIL*",
                                 "*test_no_regression_against_baseline?ssim?*ssim (baseline)*"])
    result.stdout.fnmatch_lines(["*psnr = *: no threshold for psnr in [[]tool.i2i.thresholds[]]*"])
    result.stdout.fnmatch_lines(["*test_fidelity_to_target*ssim*>= 0.2*pass*"])
