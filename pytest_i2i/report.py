"""The session report: records of every metric computed in a pytest session, merged once.

Report JSON (``<report dir>/i2i-report.json``, schema ``pytest-i2i-report/2``)::

    {
      "schema": "pytest-i2i-report/2",
      "status": "complete" | "incomplete" | "interrupted" | "stopped",
      "session": {"options": {...}, "model": {...}, "baseline": {...}, "dataset": {...}},
      "tests": {                         # every test that finished
        "<node id>": {"outcome": "passed" | "failed" | "error" | "skipped" | "xfailed" | "xpassed",
                      "reason": "...",     # skipped / xfailed: why (one line)
                      "message": "...",    # failed / error: the failure message (gate explanation)
                      "metrics": ["ssim"]} # the metric fixtures the test used (absent: none)
      },
      "metrics": [                       # sorted by test id, then call order within the test
        {"test": "<node id>", "outcome": "passed" | "failed" | "skipped",
         "result": {MetricResult.to_dict() without wall_time_s},
         "checks": [{"op": ">=", "threshold": 0.2, "passed": true, "gate": "bootstrap bound",
                     "bound": 0.21, "confidence": 0.95}]}
      ],
      "missing_weights": {"<backbone>": {"file": "<file to install>", "message": "<how to install>",
                                          "tests": ["<node id>", ...]}},
      "generation_errors": {"<uid>": "<message>"}
    }

``outcome`` ``"error"`` is pytest's: the test's setup or teardown failed. Schema 1 had the outcome
string alone as the value of ``tests`` and no ``missing_weights``.

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

from pytest_i2i.backbones.weights import human_size
from pytest_i2i.jsonsafe import to_json_safe

SCHEMA = "pytest-i2i-report/2"
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
                 generation_errors: dict[str, str], tests: dict[str, dict[str, Any]] | None = None,
                 status: str = "complete", missing_weights: dict[str, dict[str, Any]] | None = None,
                 ) -> dict[str, Any]:
    if status not in STATUSES:
        raise ValueError(f"report status {status!r} is not one of {STATUSES}")
    missing = {b: {**m, "tests": sorted(m["tests"])} for b, m in sorted((missing_weights or {}).items())}
    return {"schema": SCHEMA, "status": status, "session": session, "tests": dict(sorted((tests or {}).items())),
            "metrics": sort_entries(entries), "missing_weights": missing,
            "generation_errors": dict(sorted(generation_errors.items()))}


def merge_parts(parts: list[dict[str, Any]], status: str = "complete") -> dict[str, Any]:
    """One report from the workers' parts (their session blocks are identical; tests, missing weights
    and errors are unioned, a test's entries key by key); ``status`` is the merged run's."""
    entries = [e for p in parts for e in p.get("metrics", [])]
    errors: dict[str, str] = {}
    tests: dict[str, dict[str, Any]] = {}
    missing: dict[str, dict[str, Any]] = {}
    for p in parts:
        errors.update(p.get("generation_errors", {}))
        for nodeid, entry in p.get("tests", {}).items():
            tests.setdefault(nodeid, {}).update(entry)
        for backbone, m in p.get("missing_weights", {}).items():
            known = missing.setdefault(backbone, {**m, "tests": []})
            known["tests"] = sorted(set(known["tests"]) | set(m["tests"]))
    session = next((p["session"] for p in parts if p.get("session")), {})
    return build_report(entries, session, errors, tests, status, missing)


def outcome_entry(phases: list[tuple[str, str, str]]) -> dict[str, Any]:
    """A test's ``tests`` entry from its phases ``(when, outcome, text)``, in order. ``outcome`` is
    pytest's (``passed``/``failed``/``skipped``) or ``xfailed``/``xpassed``; ``text`` is the skip
    reason or the failure message. A failed setup or teardown is an ``error``."""
    for when, outcome, text in phases:
        if outcome == "failed":
            return {"outcome": "failed" if when == "call" else "error", "message": text}
    for _, outcome, text in phases:
        if outcome in ("skipped", "xfailed"):
            return {"outcome": outcome, "reason": text}
    return {"outcome": "xpassed" if any(o == "xpassed" for _, o, _ in phases) else "passed"}


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


#: outcomes in the order the summaries count them
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


def skip_kind(reason: str) -> str:
    """What kind of thing a skip reason says is missing (the plugin's and the model suite's own
    messages): ``weights``, ``baseline``, ``model``, ``threshold``, ``size``, ``data`` or ``other``."""
    for kind, needle in (("weights", "weights for backbone"), ("baseline", "--i2i-baseline"),
                         ("model", "--i2i-model"), ("threshold", "[tool.i2i.thresholds]"),
                         ("size", "needs images of at least"), ("data", "the dataset has no")):
        if needle in reason:
            return kind
    return "other"


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """What the top of every summary shows, from a report: ``verdict`` (``passed``, ``failed``,
    ``no tests``, or the run's status when it did not complete), ``counts`` per outcome, ``rows`` (one
    per metric computed, plus one per metric a test asked for and never computed; ``reason`` cut short
    for a terminal, ``detail`` whole) and ``not_run``
    (every test skipped before computing anything: test, metrics, reason, kind, backbone)."""
    tests = report.get("tests") or {}
    counts = dict.fromkeys(OUTCOMES, 0)
    for t in tests.values():
        counts[t.get("outcome", "passed")] = counts.get(t.get("outcome", "passed"), 0) + 1
    status = report.get("status", "complete")
    if counts["failed"] or counts["error"]:
        verdict = "failed"
    elif status != "complete":
        verdict = status
    else:
        verdict = "passed" if tests else "no tests"
    by_backbone = {t: b for b, m in (report.get("missing_weights") or {}).items() for t in m["tests"]}
    computed: dict[str, list[dict[str, Any]]] = {}
    for e in sort_entries(report.get("metrics") or []):
        computed.setdefault(e["test"], []).append(e)
    rows: list[dict[str, Any]] = []
    not_run: list[dict[str, Any]] = []
    for nodeid in sorted(set(tests) | set(computed)):
        t = tests.get(nodeid, {})
        entries = computed.get(nodeid, [])
        reason = (f"no weights for {by_backbone[nodeid]}" if nodeid in by_backbone
                  else _short_reason(t))
        detail = reason if nodeid in by_backbone else _short_reason(t, width=None)
        for e in entries:
            # a passed test, a failed gate (its gate column says it) and a baseline result need no note
            quiet = (e["outcome"] == "passed" or any(not c["passed"] for c in e["checks"])
                     or (e["result"].get("extra") or {}).get("evaluated") == "baseline")
            rows.append({"test": nodeid, "metric": e["result"]["name"], "entry": e, "outcome": e["outcome"],
                         "reason": "" if quiet else reason, "detail": "" if quiet else detail})
        done = {e["result"]["name"] for e in entries}
        rows += [{"test": nodeid, "metric": m, "entry": None, "outcome": t.get("outcome", "?"),
                  "reason": reason, "detail": detail} for m in t.get("metrics", []) if m not in done]
        if not entries and t.get("outcome") in ("skipped", "xfailed"):
            reason = t.get("reason", "")
            not_run.append({"test": nodeid, "metrics": list(t.get("metrics", [])), "reason": reason,
                            "kind": "weights" if nodeid in by_backbone else skip_kind(reason),
                            "backbone": by_backbone.get(nodeid)})
    return {"verdict": verdict, "status": status, "counts": counts, "rows": rows, "not_run": not_run}


def _short_reason(test: dict[str, Any], width: int | None = 56) -> str:
    """One line for a table: why a test was skipped or failed (empty when it passed), cut to ``width``."""
    text = test.get("reason") or test.get("message") or ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    for prefix in ("pytest_i2i.gates.MetricGateError: ", "AssertionError: ", "Failed: ", "gate failed: "):
        line = line.removeprefix(prefix)
    for metric in test.get("metrics", []):
        line = line.removeprefix(f"{metric}: ")
        if line.startswith(f"{metric} = ") and ": " in line:  # "psnr = 23.6: no threshold for psnr ..."
            line = line.split(": ", 1)[1]
    line = line.split(" (how to install:")[0]
    return line if width is None or len(line) <= width else line[: width - 1].rstrip() + "…"


def gate_text(check: dict[str, Any], result: dict[str, Any], *, long: bool = False) -> str:
    """What a gate compared, in words: ``lower bound 0.6548 >= 0.6``, ``mean 0.68 >= 0.95``,
    ``value 12.3 <= 20`` (``long``: with the confidence level and the kind of gate)."""
    op, thr, gate = check["op"], _num(check["threshold"]), check.get("gate", "")
    bound, conf = check.get("bound"), check.get("confidence")
    level = f"{conf:.0%} " if long and isinstance(conf, (int, float)) else ""
    if gate.startswith("no regression"):
        if bound is not None:
            what = f"paired {level}lower bound of the improvement over the baseline {_num(bound)}"
            return (what if long else f"Δ bound {_num(bound)}") + f" {op} {thr}"
        return ("improvement over the baseline (by value)" if long else "Δ") + f" {op} {thr}"
    if bound is not None:
        side = "lower" if op in (">=", ">") else "upper"
        what = f"one-sided {level}{side} bound of the mean {_num(bound)}" if long else f"{side} bound {_num(bound)}"
        return f"{what} {op} {thr}"
    kind = "mean" if result.get("per_sample") else "value"
    if long and gate == "assert":
        kind = f"{kind} (plain assert)"
    return f"{kind} {_num(result['value'])} {op} {thr}"


def terminal_lines(report: dict[str, Any]) -> list[str]:
    """The end-of-session summary: one row per metric test (skipped ones included, with a short
    reason), then what did not run, missing weights once per backbone with how to install them."""
    summary = summarize(report)
    if not summary["rows"]:
        return []
    table = [("test", "metric", "value", "95% CI / std", "n", "gate", "result", "weights", "reason")]
    for row in summary["rows"]:
        e = row["entry"]
        verdict = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}.get(row["outcome"],
                                                                                          row["outcome"])
        test = row["test"].split("::")[-1]
        if e is None:
            table.append((test, row["metric"], "-", "", "", "", verdict, "", row["reason"]))
            continue
        r = e["result"]
        ci = r.get("ci")
        spread = (f"[{_num(ci[0])}, {_num(ci[1])}]" if ci else (f"± {_num(r['std'])}" if r.get("std") is not None
                                                               else ""))
        # a gate's verdict can differ from the test's (a test that expects a gate to fail passes)
        gates = "; ".join(gate_text(c, r) + ("" if c.get("passed", True) else " (not met)")
                          for c in e["checks"]) or "-"
        weights = "-" if not r.get("backbone") else ("calibrated" if r.get("calibrated") else "UNCALIBRATED")
        name = r["name"] + (" (baseline)" if (r.get("extra") or {}).get("evaluated") == "baseline" else "")
        table.append((test, name, _num(r["value"]), spread, samples_used(r), gates, verdict, weights, row["reason"]))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    c = summary["counts"]
    lines.append("  ".join(f"{c[k]} {k}" for k in OUTCOMES if c[k] or k in ("passed", "failed", "skipped"))
                 + f"  ->  {summary['verdict'].upper()}")
    if any(not e["result"].get("calibrated", True) for e in report.get("metrics") or []):
        lines.append("WARNING: uncalibrated backbone weights were used: those numbers are for smoke tests only.")
    short = [e for e in report.get("metrics") or [] if samples_used(e["result"]) != str(e["result"]["n"])]
    if short:
        lines.append(f"WARNING: {len(short)} result(s) rest on fewer samples than asked for (n shown as used/asked); "
                     "lost: " + ", ".join(sorted({s for e in short for s in e["result"].get("lost_samples") or []})))
    return lines + missing_weights_lines(report, summary)


def missing_weights_lines(report: dict[str, Any], summary: dict[str, Any] | None = None) -> list[str]:
    """Missing weights, one line per backbone (its metrics, the file to install, its size and source),
    then the reason and the ways to install them, each said once."""
    missing = report.get("missing_weights") or {}
    if not missing:
        return []
    summary = summary or summarize(report)
    n_tests = len({t for m in missing.values() for t in m["tests"]})
    table = []
    for backbone, m in missing.items():
        names = sorted({row["metric"] for row in summary["rows"] if row["test"] in m["tests"]})
        file = m.get("file") or "?"
        size = f" ({human_size(m['size'])})" if m.get("size") else ""
        table.append((backbone, ", ".join(names) or "-", f"{file}{size}", m.get("source") or ""))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = ["", f"missing weights: {n_tests} test{'s' if n_tests != 1 else ''} skipped (with --i2i-require-weights "
                 "they fail); backbone, its metrics, the file to install and where it is published:"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    notes: list[str] = []
    for m in missing.values():
        message = m["message"].splitlines() or [""]
        first = message[0]
        why = f"Not found, {first.split('not found, ', 1)[1]}" if "not found, " in first else first
        # the download attempts (what failed, and why) come before the list of files
        cut = next((k for k, line in enumerate(message) if line.startswith(("Any one of", "Searched:", "To install:"))),
                   len(message))
        attempts = [line.strip() for line in message[1:cut] if line.strip()]
        how = [line.strip() for line in message if line.strip().startswith("To install:")]
        for note in [why, *(f"  {a}" for a in attempts), *how]:
            if note and note not in notes:
                notes.append(note)
    return lines + [f"  {note}" for note in notes]


def samples_used(result: dict[str, Any]) -> str:
    """``"n"``, or ``"used/asked"`` when a result lost samples (``"3/5"``)."""
    n, asked = result["n"], result.get("n_requested")
    return f"{n}/{asked}" if isinstance(asked, int) and (asked > n or result.get("lost_samples")) else str(n)


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, (int, float)) else str(x)
