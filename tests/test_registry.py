"""The metric registry: lookups, errors, and a user's own metric getting every place a built-in has.

The toy metric here (absolute difference of mean brightness) is SYNTHETIC: it exists to prove the
wiring, not to measure anything."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

import pytest_i2i
from pytest_i2i.errors import I2IInputError, UnknownNameError
from pytest_i2i.metrics.registry import KINDS, MetricSpec, find_metric, list_metrics, metric_spec, register_metric

torch = pytest.importorskip("torch")

TOY = '''
from pytest_i2i import register_metric
from pytest_i2i.metrics.paired import paired_metric


def mean_gap(a, b, *, device=None, batch_size=16, confidence=0.95, n_resamples=2000, seed=0):
    """SYNTHETIC toy metric: |mean(a) - mean(b)| per pair."""
    return paired_metric("mean_gap", lambda x, y: (x.mean((1, 2, 3)) - y.mean((1, 2, 3))).abs().double(), False,
                         a, b, device=device, batch_size=batch_size, confidence=confidence, n_resamples=n_resamples,
                         seed=seed)


register_metric(name="mean_gap", fn=mean_gap, kind="paired", args=("targets", "outputs"), higher_is_better=False,
                symmetric=True, best=0.0, overwrite=True)
'''


def test_lookups_and_errors():
    assert "ssim" in list_metrics() and list_metrics(kind="set") == sorted(list_metrics(kind="set"))
    assert set(list_metrics(kind="set")) >= {"fid", "kid", "fd_vit", "cmmd"}
    assert metric_spec("ssim").higher_is_better and not metric_spec("fid").higher_is_better
    assert find_metric("CLIP_I").name == "clip_image" and find_metric("LPIPS_unknown") is None
    with pytest.raises(UnknownNameError, match="known metrics: .*ssim"):
        metric_spec("ssmi")
    with pytest.raises(UnknownNameError, match="metric kind"):
        list_metrics(kind="nope")
    with pytest.raises(I2IInputError, match="already registered"):
        register_metric(metric_spec("ssim"))
    with pytest.raises(UnknownNameError, match="argument role"):
        MetricSpec("x", "a:b", "paired", ("targets", "pixels"), True)
    with pytest.raises(I2IInputError, match="identifier"):
        MetricSpec("not-a-name", "a:b", "paired", ("targets", "outputs"), True)
    assert set(KINDS) >= {spec.kind for spec in (metric_spec(n) for n in list_metrics())}


def test_registry_imports_nothing_heavy_and_metrics_are_top_level_names():
    import subprocess

    code = ("import sys, pytest_i2i; from pytest_i2i.metrics.registry import list_metrics; list_metrics(); "
            "pytest_i2i.__all__; print(','.join(m for m in ('torch', 'numpy', 'pytest_i2i.metrics.paired') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
    assert set(list_metrics()) <= set(pytest_i2i.__all__)
    assert {"assert_metric", "assert_no_regression", "register_metric", "list_metrics"} <= set(pytest_i2i.__all__)
    assert pytest_i2i.ssim is metric_spec("ssim").function


def test_common_keyword_arguments_are_checked_by_name():
    x = torch.rand(2, 3, 16, 16)
    for kwargs, match in (({"batch_size": 1.5}, "batch_size"), ({"confidence": "0.95"}, "confidence"),
                          ({"n_resamples": 1}, "n_resamples"), ({"seed": -1}, "seed"), ({"device": "meta"}, "meta"),
                          ({"resize": "nearest"}, "resize"), ({"kernal_size": 3}, "kernal_size")):
        with pytest.raises(I2IInputError, match=match):
            pytest_i2i.ssim(x, x, **kwargs)


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    class Darken(torch.nn.Module):  # SYNTHETIC generator
        def forward(self, x):
            return x * 0.9

    path = tmp_path_factory.mktemp("toy") / "darken.pt"
    torch.jit.script(Darken()).save(str(path))
    return path


def test_a_user_metric_registered_in_a_conftest_gets_every_place(pytester, toy_model, tmp_path):
    suite = Path(__file__).resolve().parents[1] / "suites" / "model" / "test_model.py"
    shutil.copy(suite, pytester.path / "test_model.py")
    pytester.makeconftest(TOY)
    pytester.makepyfile(test_own="""
        def test_fixture_of_the_toy_metric(mean_gap):
            r = mean_gap()
            assert r.name == "mean_gap" and r.n == 3 and 0 < r.value < 0.2
    """)
    pytester.makepyprojecttoml("""
        [tool.i2i.thresholds]
        mean_gap = {value = 0.2, margin = 0.0}
    """)
    report = tmp_path / "report"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--i2i-max-samples=3", "-rs",
                                           f"--i2i-model={toy_model}", f"--i2i-report={report}",
                                           "-k", "mean_gap or fixture_of_the_toy")
    result.assert_outcomes(passed=2, skipped=1)  # gate, fixture; no-regression skipped (no baseline)
    result.stdout.fnmatch_lines(["*test_fidelity_to_target?mean_gap?*mean_gap*<= 0.2*pass*"])
    data = json.loads((report / "i2i-report.json").read_text())
    rows = {(m["test"].split("::")[-1], m["result"]["name"]) for m in data["metrics"]}
    assert ("test_fidelity_to_target[mean_gap]", "mean_gap") in rows
    assert ("test_fixture_of_the_toy_metric", "mean_gap") in rows


def test_a_typo_in_the_thresholds_is_a_usage_error(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    pytester.makepyprojecttoml("""
        [tool.i2i.thresholds]
        ssmi = 0.5
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown metric 'ssmi'*known metrics:*ssim*"])
    pytester.makepyprojecttoml("""
        [tool.i2i.thresholds]
        ssim = {value = 0.5, confidence = "0.95"}
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*confidence must be a number in (0, 1)*"])


def test_a_user_metric_joins_score_sensitivity_and_validate(tmp_path, capsys):
    from pytest_i2i.cli import main
    from pytest_i2i.images import write_sample_folder
    from pytest_i2i.metrics.registry import unregister_metric
    from pytest_i2i.validation.correlate import computable_metrics
    from pytest_i2i.validation.sensitivity import available_metrics, run_sensitivity

    namespace: dict = {}
    exec(compile(TOY, "toy_conftest.py", "exec"), namespace)
    try:
        assert "mean_gap" in available_metrics() and "mean_gap" in computable_metrics()  # sensitivity, validate
        result = run_sensitivity(metrics=["mean_gap", "l1"], ops=["insert_object"], areas_percent=[25.0], size=32,
                                 n_images=3, repeats=1, n_permutations=9)
        auroc = result.table[(result.table.metric == "mean_gap") & (result.table.against == "all")].auroc
        assert len(auroc) == 1 and 0.0 <= float(auroc.iloc[0]) <= 1.0
        write_sample_folder(tmp_path / "a", size=32)
        assert main(["score", str(tmp_path / "a"), str(tmp_path / "a"), "--metrics", "mean_gap",
                     "--json", str(tmp_path / "r.json")]) == 0
        assert json.loads((tmp_path / "r.json").read_text())["results"][0]["value"] == 0.0
    finally:
        unregister_metric("mean_gap")
