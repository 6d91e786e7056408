"""The session report: records of every metric computed in a pytest session, merged once.

Report JSON (``<report dir>/i2i-report.json``, schema ``pytest-i2i-report/1``)::

    {
      "schema": "pytest-i2i-report/1",
      "status": "complete" | "incomplete" | "interrupted" | "stopped",
      "session": {"options": {...}, "model": {...}, "dataset": {...}},
      "tests": {"<node id>": "passed" | "failed" | "skipped"},   # every test that finished
      "metrics": [                       # sorted by test id, then call order within the test
        {"test": "<node id>", "outcome": "passed" | "failed" | "skipped",
         "result": {MetricResult.to_dict() without wall_time_s},
         "checks": [{"op": ">=", "threshold": 0.2, "passed": true, ...}]}
      ],
      "generation_errors": {"<uid>": "<message>"}
    }

Samples asked for and used: every ``result`` has ``"n"`` (samples the value rests on),
``"n_requested"`` (samples asked for: the dataset's size for a metric of the model's outputs)
and ``"lost_samples"`` (names of those asked for and not used, e.g. samples without a valid
output; why: in the result's ``"warnings"`` and in ``"generation_errors"``). ``n < n_requested``
means the value rests on fewer samples than asked for: the plugin fails such a metric unless
``--i2i-allow-lost-samples``, and every gate fails on it unless allowed (a check then carries
``"n"``, ``"n_requested"`` and ``"lost_samples"`` too). The terminal table shows ``n`` as
``used/asked`` when they differ. Reports written before these fields existed read as
``n_requested = n`` and no lost samples.

``status``: ``"incomplete"`` while the run goes on (the file is rewritten after every test, so
a run killed half-way, even with SIGKILL, leaves a valid report of the tests that finished),
``"complete"`` when the session ended normally (whatever the test outcomes), ``"interrupted"``
after Ctrl-C (KeyboardInterrupt) and ``"stopped"`` when ``-x``/``--maxfail`` ended it early.

It holds no timestamps, timings (those go to ``timings.json``) or host-specific paths:
absolute paths under the pytest rootdir are written relative to it (:func:`relativize`), so
equal inputs, seed and options give a byte-identical file, with or without pytest-xdist.
Under xdist each worker rewrites its part ``<parts dir>/<worker>.json`` after each of its
tests; the controller rewrites the merged report after each test and merges the parts a last
time at the end, then renders the HTML page from the merged file. Every write is atomic
(temporary file in the same folder, fsync, rename): a reader never sees a half-written file.

Numbers in JSON (one convention for every JSON file pytest-i2i writes: this report, results,
``validation.json``, ``sensitivity.json``; implemented once in :mod:`pytest_i2i.jsonsafe`):

- strict JSON (``allow_nan=False``), so any JSON reader can load the file;
- a float that is not finite is the string ``"inf"``, ``"-inf"`` or ``"nan"`` (e.g. PSNR of
  identical images is ``"inf"``); :meth:`MetricResult.from_dict <pytest_i2i.result.MetricResult.from_dict>`
  turns them back into floats;
- ``null`` is no value: not computed, not applicable, or an undefined statistic; an undefined
  statistic (e.g. a correlation with a constant input) has its ``"reason"`` next to it.

Standard library only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pytest_i2i.jsonsafe import to_json_safe

SCHEMA = "pytest-i2i-report/1"
STATUSES = ("complete", "incomplete", "interrupted", "stopped")
REPORT_NAME = "i2i-report.json"
TIMINGS_NAME = "timings.json"


def metric_entry(test: str, order: int, result: Any, outcome: str, checks: list[dict[str, Any]]) -> dict[str, Any]:
    data = result.to_dict()
    data.pop("wall_time_s", None)
    return {"test": test, "order": order, "outcome": outcome, "result": data, "checks": to_json_safe(list(checks))}


def sort_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entries, key=lambda e: (e["test"], e["order"]))


def build_report(entries: list[dict[str, Any]], session: dict[str, Any],
                 generation_errors: dict[str, str], tests: dict[str, str] | None = None,
                 status: str = "complete") -> dict[str, Any]:
    if status not in STATUSES:
        raise ValueError(f"report status {status!r} is not one of {STATUSES}")
    return {"schema": SCHEMA, "status": status, "session": session, "tests": dict(sorted((tests or {}).items())),
            "metrics": sort_entries(entries), "generation_errors": dict(sorted(generation_errors.items()))}


def merge_parts(parts: list[dict[str, Any]], status: str = "complete") -> dict[str, Any]:
    """One report from the workers' parts (their session blocks are identical; tests and errors are
    unioned); ``status`` is the merged run's."""
    entries = [e for p in parts for e in p.get("metrics", [])]
    errors: dict[str, str] = {}
    tests: dict[str, str] = {}
    for p in parts:
        errors.update(p.get("generation_errors", {}))
        tests.update(p.get("tests", {}))
    session = next((p["session"] for p in parts if p.get("session")), {})
    return build_report(entries, session, errors, tests, status)


def relativize(data: Any, root: Path) -> Any:
    """``data`` with every occurrence of the absolute folder ``root`` + separator in its strings
    removed (dict keys included), so paths under ``root`` read relative to it."""
    prefix = str(root).rstrip(os.sep) + os.sep
    if prefix == os.sep:  # a rootdir of "/" would strip every path
        return data
    if isinstance(data, str):
        return data.replace(prefix, "")
    if isinstance(data, dict):
        return {relativize(k, root): relativize(v, root) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [relativize(v, root) for v in data]
    return data


def read_parts(parts_dir: Path) -> list[dict[str, Any]]:
    """The workers' parts (temporary files of writes in progress are skipped: names start with '.')."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(parts_dir.glob("[!.]*.json"))]


def terminal_lines(entries: list[dict[str, Any]]) -> list[str]:
    """The summary table: one row per metric computed in the session."""
    if not entries:
        return []
    rows = [("test", "metric", "value", "95% CI / std", "n", "threshold", "result", "weights")]
    for e in sort_entries(entries):
        r = e["result"]
        ci = r.get("ci")
        spread = (f"[{_num(ci[0])}, {_num(ci[1])}]" if ci else (f"± {_num(r['std'])}" if r.get("std") is not None
                                                               else ""))
        thresholds = ", ".join(f"{c['op']} {_num(c['threshold'])}" for c in e["checks"]) or "-"
        verdict = {"passed": "pass", "failed": "FAIL", "skipped": "skip"}.get(e["outcome"], e["outcome"])
        weights = "-" if not r.get("backbone") else ("calibrated" if r.get("calibrated") else "UNCALIBRATED")
        name = r["name"] + (" (baseline)" if (r.get("extra") or {}).get("evaluated") == "baseline" else "")
        rows.append((e["test"].split("::")[-1], name, _num(r["value"]), spread, samples_used(r), thresholds,
                     verdict, weights))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if any(not e["result"].get("calibrated", True) for e in entries):
        lines.append("WARNING: uncalibrated backbone weights were used: those numbers are for smoke tests only.")
    short = [e for e in entries if samples_used(e["result"]) != str(e["result"]["n"])]
    if short:
        lines.append(f"WARNING: {len(short)} result(s) rest on fewer samples than asked for (n shown as used/asked); "
                     "lost: " + ", ".join(sorted({s for e in short for s in e["result"].get("lost_samples") or []})))
    return lines


def samples_used(result: dict[str, Any]) -> str:
    """``"n"``, or ``"used/asked"`` when a result lost samples (``"3/5"``)."""
    n, asked = result["n"], result.get("n_requested")
    return f"{n}/{asked}" if isinstance(asked, int) and (asked > n or result.get("lost_samples")) else str(n)


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, (int, float)) else str(x)
