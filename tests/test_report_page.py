"""The report's summaries without a browser: what the JSON's ``tests`` block records, the summary that
the terminal table and the HTML page share, the page's sections and files.

The reports here are synthetic (hand-made per-sample values, no model): they test the rendering, not
any metric.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from pytest_i2i.html_report import render_html, export_images, image_path
from pytest_i2i.report import (
    build_report,
    merge_parts,
    metric_entry,
    outcome_entry,
    summarize,
    terminal_lines,
)
from pytest_i2i.result import MetricResult

UIDS = ["a", "b", "c", "d", "e", "f", "g", "h"]
MISSING = {"inception-fid": {"file": "pt_inception-2015-12-05-6726825d.pth", "size": 95628359, "sha256": None,
                             "source": "https://example.invalid/pt_inception.pth",
                             "message": "weights for backbone 'inception-fid' (pt_inception-2015-12-05-6726825d.pth) "
                                        "not found, and downloads are off (--i2i-offline).\nSearched:\n  here\n"
                                        "To install: put the file in --i2i-weights-dir=FOLDER",
                             "tests": ["t.py::test_fid", "t.py::test_kid"]}}


def _ssim(values, name="ssim", higher=True, evaluated=None):
    r = MetricResult(name=name, value=sum(values) / len(values), higher_is_better=higher, n=len(values),
                     ci=(min(values), max(values)), confidence=0.95, per_sample=list(values),
                     sample_names=UIDS[: len(values)], resize="clean")
    if evaluated:
        r.extra["evaluated"] = evaluated
    return r


def synthetic_report(baseline: bool = False) -> dict:
    """A session where ssim passed its gate, l1 failed it, psnr had no threshold, FID and KID had no
    weights and the no-regression test had no baseline (or, with ``baseline``, regressed)."""
    ssim = _ssim([0.9, 0.8, 0.85, 0.7, 0.95, 0.88, 0.6, 0.91])
    l1 = _ssim([0.1, 0.3, 0.05, 0.2, 0.12, 0.4, 0.07, 0.09], name="l1", higher=False)
    psnr = _ssim([20.0, 25.0, float("inf"), 22.0, 24.0, 21.0, 23.0, 26.0], name="psnr")
    gate_ok = {"op": ">=", "threshold": 0.6, "passed": True, "gate": "bootstrap bound", "bound": 0.78,
               "confidence": 0.95}
    gate_bad = {"op": "<=", "threshold": 0.1, "passed": False, "gate": "bootstrap bound", "bound": 0.24,
                "confidence": 0.95}
    entries = [metric_entry("t.py::test_ssim", 0, ssim, "passed", [gate_ok]),
               metric_entry("t.py::test_l1", 0, l1, "failed", [gate_bad]),
               metric_entry("t.py::test_psnr", 0, psnr, "skipped", [])]
    tests = {
        "t.py::test_ssim": {"outcome": "passed", "metrics": ["ssim"]},
        "t.py::test_l1": {"outcome": "failed", "metrics": ["l1"],
                          "message": "pytest_i2i.gates.MetricGateError: gate failed: l1: one-sided 95% upper bound "
                                     "of the mean = 0.24 must be <= 0.1"},
        "t.py::test_psnr": {"outcome": "skipped", "metrics": ["psnr"],
                            "reason": "psnr = 23: no threshold for psnr in [tool.i2i.thresholds]"},
        "t.py::test_fid": {"outcome": "skipped", "metrics": ["fid"],
                           "reason": "fid: weights for backbone 'inception-fid' (pt_inception...) not found"},
        "t.py::test_kid": {"outcome": "skipped", "metrics": ["kid"],
                           "reason": "kid: weights for backbone 'inception-fid' (pt_inception...) not found"},
        "t.py::test_sanity": {"outcome": "error", "message": "fixture 'boom' raised"},
    }
    options = {"model": "m.pt", "device": "cpu", "batch_size": 8, "seed": 0, "baseline": None}
    if baseline:
        options["baseline"] = "old.pt"
        old = _ssim([0.95, 0.85, 0.9, 0.9, 0.96, 0.9, 0.8, 0.93], evaluated="baseline")
        reg = {"op": ">=", "threshold": -0.0, "passed": False, "gate": "no regression (paired bootstrap)",
               "bound": -0.12, "confidence": 0.95}
        entries += [metric_entry("t.py::test_noreg", 0, _ssim(ssim.per_sample), "failed", [reg]),
                    metric_entry("t.py::test_noreg", 1, old, "failed", [])]
        tests["t.py::test_noreg"] = {"outcome": "failed", "metrics": ["ssim"], "message": "gate failed: ssim: paired"}
    else:
        tests["t.py::test_noreg"] = {"outcome": "skipped", "metrics": ["ssim"], "reason": "no --i2i-baseline given"}
    session = {"options": options, "model": {"source": "m.pt", "sha256": "ab" * 32, "kind": "torchscript"},
               "dataset": {"n": 8, "description": "synthetic set", "source": "synthetic"}}
    return build_report(entries, session, {}, tests, "complete", MISSING)


def test_outcome_entries_from_phases():
    assert outcome_entry([("setup", "passed", ""), ("call", "passed", ""), ("teardown", "passed", "")]) == {
        "outcome": "passed"}
    assert outcome_entry([("setup", "skipped", "no weights"), ("teardown", "passed", "")]) == {
        "outcome": "skipped", "reason": "no weights"}
    assert outcome_entry([("setup", "passed", ""), ("call", "failed", "boom"), ("teardown", "passed", "")]) == {
        "outcome": "failed", "message": "boom"}
    assert outcome_entry([("setup", "failed", "fixture"), ("teardown", "passed", "")])["outcome"] == "error"
    assert outcome_entry([("setup", "passed", ""), ("call", "passed", ""), ("teardown", "failed", "x")])[
        "outcome"] == "error"
    assert outcome_entry([("setup", "passed", ""), ("call", "xfailed", "known")])["outcome"] == "xfailed"


def test_parts_merge_test_entries_key_by_key_and_missing_weights_by_backbone():
    worker = build_report([], {}, {}, {"t::a": {"outcome": "skipped", "reason": "r", "metrics": ["fid"]}},
                          missing_weights={"inception-fid": {**MISSING["inception-fid"], "tests": ["t::a"]}})
    controller = build_report([], {}, {}, {"t::a": {"outcome": "skipped", "reason": "r"}, "t::b": {"outcome": "passed"}},
                              missing_weights={"inception-fid": {**MISSING["inception-fid"], "tests": ["t::c"]}})
    merged = merge_parts([worker, controller])
    assert merged["tests"] == {"t::a": {"outcome": "skipped", "reason": "r", "metrics": ["fid"]},
                               "t::b": {"outcome": "passed"}}
    assert merged["missing_weights"]["inception-fid"]["tests"] == ["t::a", "t::c"]


def test_summary_counts_rows_and_what_did_not_run():
    s = summarize(synthetic_report())
    assert s["verdict"] == "failed"
    assert {k: v for k, v in s["counts"].items() if v} == {"passed": 1, "failed": 1, "error": 1, "skipped": 4}
    rows = {(r["test"].split("::")[1], r["metric"]): r for r in s["rows"]}
    # every metric test is a row: computed ones and the ones skipped before computing anything
    assert set(rows) == {("test_ssim", "ssim"), ("test_l1", "l1"), ("test_psnr", "psnr"), ("test_fid", "fid"),
                         ("test_kid", "kid"), ("test_noreg", "ssim")}
    assert rows[("test_fid", "fid")]["entry"] is None and rows[("test_fid", "fid")]["reason"] == \
        "no weights for inception-fid"
    assert rows[("test_psnr", "psnr")]["reason"] == "no threshold for psnr in [tool.i2i.thresholds]"
    assert rows[("test_l1", "l1")]["reason"] == ""  # the failed gate says it in the gate column
    kinds = {t["test"].split("::")[1]: (t["kind"], t["backbone"]) for t in s["not_run"]}
    assert kinds == {"test_fid": ("weights", "inception-fid"), "test_kid": ("weights", "inception-fid"),
                     "test_noreg": ("baseline", None)}


def test_terminal_table_lists_skipped_metrics_and_missing_weights_once():
    lines = terminal_lines(synthetic_report())
    text = "\n".join(lines)
    fid = next(line for line in lines if line.startswith("test_fid"))
    assert "skip" in fid and "no weights for inception-fid" in fid
    assert re.search(r"test_ssim\s+ssim\s+0\.8237.*lower bound 0\.78 >= 0\.6\s+pass", text)
    assert re.search(r"test_l1\s+l1.*upper bound 0\.24 <= 0\.1 \(not met\)\s+FAIL", text)
    assert "1 passed  1 failed  1 error  4 skipped  ->  FAILED" in text
    # the backbone is named once, with its metrics, the file and one install line
    assert text.count("pt_inception-2015-12-05-6726825d.pth (95.6 MB)") == 1
    assert re.search(r"inception-fid\s+fid, kid\s+pt_inception", text)
    assert text.count("To install:") == 1


def _page(tmp_path: Path, report: dict) -> str:
    import torch

    images = tmp_path / "images"
    for i, uid in enumerate(UIDS):  # synthetic thumbnails
        img = torch.full((3, 16, 16), i / 8)
        export_images(images, uid, {"input": img, "output": img, "target": img, "baseline": img})
    (tmp_path / "i2i-report.json").write_text(json.dumps(report))
    return render_html(report, tmp_path).read_text(encoding="utf-8")


def test_page_sections_order_and_referenced_files(tmp_path):
    page = _page(tmp_path, synthetic_report())
    # summary first, failures before the metric sections, failed metrics before passed ones
    order = [page.index(marker) for marker in ("id='summary'", "id='not-run'", "id='failures'", "id='metrics'",
                                               "id='per-metric'", "id='samples'")]
    assert order == sorted(order)
    assert page.index("gate failed: l1") < page.index("id='metrics'")
    assert "MetricGateError" not in page  # the message without the exception's type
    assert page.index("id='m0-l1'") < page.index("id='m1-ssim'")
    not_run = page[page.index("id='not-run'"):page.index("id='failures'")]
    assert "fid, kid" in not_run and "pt_inception-2015-12-05-6726825d.pth" in not_run and "95.6 MB" in not_run
    assert "no --i2i-baseline given" in not_run and "psnr = inf" in not_run  # computed, not gated
    # what each gate compared, n used of asked
    assert "one-sided 95% lower bound of the mean 0.78 &gt;= 0.6" in page
    # every referenced file exists in the folder
    refs = set(re.findall(r"(?:src|href)='([^'#][^']*)'", page))
    assert refs and all((tmp_path / ref).is_file() for ref in refs), [r for r in refs if not (tmp_path / r).is_file()]
    assert {"plots/m0-l1.png", "images/a__output.png"} <= refs
    # the per-sample table: every sample, a column per per-sample metric, sortable values
    table = page[page.index("id='sample-table'"):]
    assert table.count("<tr data-worst=") == 8 and "ssim ↑" in table and "l1 ↓" in table
    assert "data-v='1e308'" in table  # psnr's inf sorts as the largest value
    # one file mode for both files (the page is written like the JSON)
    assert (tmp_path / "index.html").stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_page_compares_with_the_baseline(tmp_path):
    page = _page(tmp_path, synthetic_report(baseline=True))
    section = page[page.index("id='baseline'"):]
    # paired differences of ssim (candidate − baseline, per sample) with a bootstrap CI, and a verdict
    diffs = [c - b for c, b in zip([0.9, 0.8, 0.85, 0.7, 0.95, 0.88, 0.6, 0.91],
                                   [0.95, 0.85, 0.9, 0.9, 0.96, 0.9, 0.8, 0.93])]
    assert f"{sum(diffs) / 8:.4g} [" in section and "REGRESSION" in section
    # the samples that regressed most, side by side: g (−0.2), d (−0.2), then a/b/c (−0.05)
    cards = re.findall(r"<div class='card worst'><div class='cap'><b>(\w)</b>", section)
    assert cards[:2] == ["d", "g"] or cards[:2] == ["g", "d"]
    assert "images/g__baseline.png" in section and "images/g__output.png" in section
    assert ">candidate<" in section


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@pytest.mark.parametrize("status", ["incomplete", "interrupted", "stopped"])
def test_partial_runs_say_so(tmp_path, status):
    report = synthetic_report()
    report["status"] = status
    report["tests"] = {k: v for k, v in report["tests"].items() if v["outcome"] != "failed" and v["outcome"] != "error"}
    page = _page(tmp_path, report)
    assert f"run {status}" in page and summarize(report)["verdict"] == status
    assert image_path(tmp_path / "images", "a", "output").is_file()


def test_lost_samples_show_as_used_of_asked_with_why(tmp_path):
    """A result that lost samples (issue 19's ``n_requested`` / ``lost_samples``) reads n as used/asked
    in the terminal table and in the page's table, and its section names each lost sample with the
    generator's error."""
    report = synthetic_report()
    entry = next(e for e in report["metrics"] if e["result"]["name"] == "l1")
    lost = _ssim([0.1, 0.3, 0.05, 0.2, 0.12, 0.4], name="l1", higher=False)
    lost.lost_samples = ["g", "h"]
    lost.n_requested = 8
    entry["result"] = metric_entry("t.py::test_l1", 0, lost, "failed", [])["result"]
    report["generation_errors"] = {"g": "RuntimeError: synthetic failure", "h": "output is NaN"}
    row = next(line for line in terminal_lines(report) if line.startswith("test_l1"))
    assert " 6/8 " in row
    page = _page(tmp_path, report)
    overview = page[page.index("id='metrics'"):page.index("id='per-metric'")]
    assert "<td class='num'>6/8</td>" in overview
    section = page[page.index("id='m0-l1'"):page.index("id='m1-ssim'")]
    assert "n = 6 of 8 asked for: 2 samples lost" in section
    assert "<b>g</b>: RuntimeError: synthetic failure" in section and "<b>h</b>: output is NaN" in section
    # the complete results read n alone
    assert "<td class='num'>8</td>" in overview and "lost" not in page[page.index("id='m1-ssim'"):
                                                                        page.index("id='samples'")]


def test_metric_with_maps_shows_heat_maps_on_one_scale(tmp_path):
    report = synthetic_report()
    entry = next(e for e in report["metrics"] if e["result"]["name"] == "l1")
    # synthetic 2x2 distance maps: sample k's map is k/8 everywhere, but f has one bright patch
    maps = [[[k / 8, k / 8], [k / 8, k / 8]] for k in range(8)]
    maps[5][0][1] = 2.0
    entry["result"]["extra"] = {"maps": maps}
    page = _page(tmp_path, report)
    section = page[page.index("id='m0-l1'"):page.index("id='m1-ssim'")]
    heat = re.findall(r"src='(plots/m0-l1-[^']*heat[^']*)'", section)
    assert len(heat) == 5 and all((tmp_path / h).is_file() for h in heat)  # 3 worst + 2 best, each with its map
    assert "dark 0 to bright 2" in section  # one colour scale: the largest value over all maps
