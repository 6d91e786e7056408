"""Faults during a run: the JSON report survives a kill, an interrupt, an early stop and a generator
that fails on some samples (pytest_i2i.plugin / pytest_i2i.report).

The runs are real pytest processes (pytester or subprocess) on test files written here; the
metric is ``l1`` on small synthetic tensors, so nothing needs model weights.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

REPORT = "i2i-report.json"

# test_a and test_b record a metric, test_c hangs (or is interrupted) after dropping a marker
SUITE = """
import os
import time
from pathlib import Path

import pytest
import torch


def test_a_metric(l1):
    x = torch.zeros(2, 3, 8, 8)
    assert l1(x, x + 0.25).value == pytest.approx(0.25)


def test_b_metric(l1):
    x = torch.zeros(2, 3, 8, 8)
    assert l1(x, x + 0.5).value == pytest.approx(0.5)


def test_c_hangs():
    Path(os.environ["I2I_TEST_MARKER"]).touch()
    if os.environ.get("I2I_TEST_INTERRUPT"):
        raise KeyboardInterrupt
    time.sleep(120)


def test_d_never_runs():
    pass
"""


def _read_report(path: Path) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))  # a valid JSON document, never half a file
    assert data["schema"] == "pytest-i2i-report/2"
    return data


def _short(tests: dict[str, dict]) -> dict[str, str]:
    return {k.split("::")[-1]: v["outcome"] for k, v in tests.items()}


def _kill_when_ready(cmd: list[str], cwd: Path, env: dict[str, str], marker: Path, report: Path,
                     need: set[str]) -> str:
    """Start ``cmd`` in its own process group, wait until ``marker`` exists and the report lists the
    tests in ``need``, then SIGKILL the whole group (what a CI runner's hard timeout does)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"the run ended before it was killed:\n{proc.stdout.read().decode()}")
            if marker.exists() and report.exists() and need <= set(_short(_read_report(report)["tests"])):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the run never reached the hanging test with {need} reported")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        out = proc.communicate()[0].decode()
    assert proc.returncode == -signal.SIGKILL
    return out


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("I2I_", "PYTEST_"))}
    env.update(I2I_TEST_MARKER=str(tmp_path / "started_c"), TMPDIR=str(tmp_path / "tmp"), **extra)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return env


def test_sigkilled_run_leaves_a_valid_incomplete_report(tmp_path):
    (tmp_path / "test_suite.py").write_text(SUITE)
    report_dir = tmp_path / "report"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
           f"--i2i-report={report_dir}", "test_suite.py"]
    _kill_when_ready(cmd, tmp_path, _env(tmp_path), tmp_path / "started_c", report_dir / REPORT,
                     {"test_a_metric", "test_b_metric"})
    data = _read_report(report_dir / REPORT)
    assert data["status"] == "incomplete"
    assert _short(data["tests"]) == {"test_a_metric": "passed", "test_b_metric": "passed"}
    assert [(m["test"].split("::")[-1], m["result"]["name"], m["result"]["value"]) for m in data["metrics"]] == [
        ("test_a_metric", "l1", pytest.approx(0.25)), ("test_b_metric", "l1", pytest.approx(0.5))]
    assert not (report_dir / "index.html").exists()  # the page is rendered only at the end
    assert not [p for p in report_dir.iterdir() if p.name.endswith(".tmp")]  # no leftover temporary file


def test_sigkilled_xdist_run_leaves_a_valid_incomplete_report(tmp_path):
    pytest.importorskip("xdist")
    (tmp_path / "test_suite.py").write_text(SUITE)
    report_dir = tmp_path / "report"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2",
           f"--i2i-report={report_dir}", "test_suite.py"]
    _kill_when_ready(cmd, tmp_path, _env(tmp_path), tmp_path / "started_c", report_dir / REPORT,
                     {"test_a_metric", "test_b_metric"})
    data = _read_report(report_dir / REPORT)
    assert data["status"] == "incomplete"
    assert _short(data["tests"]) == {"test_a_metric": "passed", "test_b_metric": "passed"}
    assert sorted(m["test"].split("::")[-1] for m in data["metrics"]) == ["test_a_metric", "test_b_metric"]
    # what else a killed xdist run leaves: the parts of the workers that used pytest-i2i, each a
    # valid report of that worker's tests ("complete" once the worker finished its share)
    (parts_dir,) = (tmp_path / "tmp").glob("i2i-parts-*")
    parts = [_read_report(p) for p in sorted(parts_dir.glob("*.json"))]
    assert parts and all(p["status"] in ("incomplete", "complete") for p in parts)
    assert sorted(m["test"].split("::")[-1] for p in parts for m in p["metrics"]) == ["test_a_metric",
                                                                                    "test_b_metric"]


def test_keyboard_interrupt_leaves_an_interrupted_report(pytester, tmp_path, monkeypatch):
    pytester.makepyfile(test_suite=SUITE)
    monkeypatch.setenv("I2I_TEST_MARKER", str(tmp_path / "started_c"))
    monkeypatch.setenv("I2I_TEST_INTERRUPT", "1")
    report_dir = tmp_path / "report"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--i2i-report={report_dir}", no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    data = _read_report(report_dir / REPORT)
    assert data["status"] == "interrupted"
    assert _short(data["tests"]) == {"test_a_metric": "passed", "test_b_metric": "passed"}
    assert len(data["metrics"]) == 2
    assert "run interrupted" in (report_dir / "index.html").read_text()


def test_maxfail_stop_and_normal_end(pytester, tmp_path):
    pytester.makepyfile(test_suite="""
        import torch

        def test_a(l1):
            x = torch.zeros(1, 3, 4, 4)
            assert l1(x, x).value == 0

        def test_b_fails():
            assert False

        def test_c():
            pass
    """)
    stopped, complete = tmp_path / "stopped", tmp_path / "complete"
    pytester.runpytest("-p", "no:cacheprovider", "-x", f"--i2i-report={stopped}").assert_outcomes(passed=1, failed=1)
    data = _read_report(stopped / REPORT)
    assert data["status"] == "stopped"
    assert _short(data["tests"]) == {"test_a": "passed", "test_b_fails": "failed"}
    result = pytester.runpytest("-p", "no:cacheprovider", f"--i2i-report={complete}")
    result.assert_outcomes(passed=2, failed=1)
    data = _read_report(complete / REPORT)
    assert data["status"] == "complete"
    assert _short(data["tests"]) == {"test_a": "passed", "test_b_fails": "failed", "test_c": "passed"}
    assert "run " not in (complete / "index.html").read_text().split("<h1>pytest-i2i report</h1>")[1][:40]


FAULTY_GENERATOR = """
import torch


class Faulty(torch.nn.Module):
    \"\"\"Synthetic generator: identity, except that its 2nd call raises and its 3rd returns NaN.\"\"\"

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("synthetic failure")
        if self.calls == 3:
            return x * float("nan")
        return x


def make():
    return Faulty()
"""


def test_generator_failing_on_some_batches(pytester, tmp_path):
    """With batch size 1 the 2nd sample's batch raises and the 3rd's is NaN: the sanity test fails
    naming both samples, and so does the metric test (a value on 2 of 4 samples would claim more
    than the data shows), unless --i2i-allow-lost-samples; the report completes and says n = 2 of 4."""
    import shutil

    pytester.makepyfile(faultygen=FAULTY_GENERATOR)
    suite = Path(__file__).resolve().parents[1] / "suites" / "model" / "test_model.py"
    shutil.copy(suite, pytester.path / "test_model.py")
    pytester.makepyprojecttoml("[tool.i2i.thresholds]\nl1 = 0.5\n")
    from pytest_i2i.data import load_dataset

    uids = load_dataset(None, max_samples=4).uids
    for allow in (False, True):
        report_dir = tmp_path / f"report-{allow}"
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--i2i-model=faultygen:make", "--i2i-max-samples=4", "--i2i-batch-size=1",
            f"--i2i-report={report_dir}", "-k", "valid_image or (fidelity_to_target and l1)",
            *(["--i2i-allow-lost-samples"] if allow else []), "-rA")
        result.assert_outcomes(passed=int(allow), failed=2 - int(allow))
        result.stdout.fnmatch_lines([f"*2 of 4 samples failed: {uids[1]}: *raised RuntimeError*synthetic failure*"])
        result.stdout.fnmatch_lines([f"*{uids[2]}: *NaN*"])
        if not allow:
            result.stdout.fnmatch_lines([f"*l1: 2 of 4 samples asked for were not used: {uids[1]}, {uids[2]}*"
                                         "--i2i-allow-lost-samples*"])
        result.stdout.fnmatch_lines(["*test_fidelity_to_target*l1*2/4*"])  # the terminal table: used/asked
        data = _read_report(report_dir / REPORT)
        assert data["status"] == "complete"
        assert sorted(data["generation_errors"]) == sorted([uids[1], uids[2]])
        (l1,) = data["metrics"]
        assert l1["outcome"] == ("passed" if allow else "failed")
        assert l1["result"]["n"] == 2 and l1["result"]["n_requested"] == 4
        assert l1["result"]["lost_samples"] == [uids[1], uids[2]]
        assert l1["result"]["sample_names"] == [uids[0], uids[3]]
        assert any("computed on 2 of 4 samples" in w for w in l1["result"]["warnings"])
        if allow:  # the gate ran, allowed by the option, and its check says what it rested on
            (check,) = l1["checks"]
            assert check["passed"] and check["n"] == 2 and check["n_requested"] == 4
        assert _short(data["tests"])["test_every_sample_generates_a_valid_image"] == "failed"
        assert "2/4" in (report_dir / "index.html").read_text()
