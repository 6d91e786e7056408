"""Which metric agrees with people? ``pytest suites/validation [--i2i-judgments=SET[,SCORES...]]``.

Without ``--i2i-judgments`` the bundled real sets run offline (``human_judgments/``): ImagenHub's
raters on 7 tasks with VIEScore's automatic metrics (LPIPS, CLIPScore, CLIP-I, DINO) and MLLM judges
(GPT-4o, LLaVA), GenAI-Bench's pairwise votes with three judges, TIFA's ratings with CLIPScore and
TIFA. Otherwise each path is a judgment set (a ``judgments.toml`` manifest, a ``.toml`` file, or a
folder in a native layout) or scores (per-model JSON files, a CSV/JSONL, VIEScore judge folders);
``builtin`` / ``builtin:NAME`` entries add bundled sets. Weight-free metrics (l1, psnr, ssim,
ciede2000) are computed on the sets' images when a set has them. The report folder (tables,
leaderboard plot, ``validation.json``) is written into ``<--i2i-report>/validation/`` (a temporary
folder without ``--i2i-report``).

The tests fail for real reasons: a set that does not load or validate, a metric that could not be
scored on a set, an undefined number (constant column, too few items), a non-strict JSON report, a
published number of a bundled set that is no longer reproduced (beyond its documented deviation).
"""

from __future__ import annotations

import json
import math


def _report(outcome):
    assert outcome["error"] is None, f"the judgment sets could not be validated: {outcome['error']}"
    return outcome["report"]


def test_judgment_sets_load_and_validate(validation_outcome):
    report = _report(validation_outcome)
    assert report["judgment_sets"], "no judgment set was loaded"
    for js in report["judgment_sets"]:
        assert js["n_records"] > 0, f"{js['name']}: empty"


def test_every_metric_is_scored_on_every_set(validation_outcome):
    report = _report(validation_outcome)
    problems = report["problems"]
    assert not problems, f"{len(problems)} metric/set combination(s) without a number: " + "; ".join(
        f"{p['set']} / {p['criterion']} / {p['metric']}: {p['reason']}" for p in problems)


def test_report_is_strict_json_and_every_gap_has_a_reason(validation_outcome):
    _report(validation_outcome)
    path = validation_outcome["out"] / "validation.json"
    data = json.loads(path.read_text(), parse_constant=lambda c: (_ for _ in ()).throw(AssertionError(
        f"{path}: non-finite constant {c}")))
    for row in data["results"]:
        for method, e in (row.get("correlations") or {}).items():
            assert e["value"] is None or math.isfinite(e["value"])
            if e["value"] is None:
                assert e["reason"], f"{row['set']} / {row['metric']} / {method}: null without a reason"


def test_published_numbers_are_reproduced(validation_outcome):
    """Every published cell of a bundled set is reproduced, or deviates by what its note documents."""
    report = _report(validation_outcome)
    bad = []
    for name, data in (report.get("reproduction") or {}).items():
        for c in data["cells"]:
            if c["reproduced"] is None and name == "viescore-imagenhub" and report["provenance"]["tasks"]:
                continue  # a task not run
            if not c["within"] and not c.get("deviation"):
                bad.append(f"{name}: {c.get('task', '')} {c['row']} {c.get('model', '')} {c['criterion']}: published "
                           f"{c['published']}, reproduced {c['reproduced']}")
    assert not bad, f"{len(bad)} published number(s) not reproduced: " + "; ".join(bad)


def test_report_folder_is_complete(validation_outcome):
    _report(validation_outcome)
    out = validation_outcome["out"]
    for name in ("validation.json", "table.csv", "report.md"):
        assert (out / name).is_file(), f"{out / name} was not written"
    print(f"validation report: {out}")
    print((out / "report.md").read_text())
