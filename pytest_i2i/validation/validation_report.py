"""The validation report folder: which metric agrees with people?

:func:`validate` is the one front-end behind ``i2i validate`` and ``pytest suites/validation``:
it sorts the given paths into judgment sets and precomputed score files, computes the requested
metrics on the sets' images, runs :func:`pytest_i2i.validation.correlate.correlate` and writes:

- ``validation.json``: every number (strict JSON, numbers as :mod:`pytest_i2i.report` says: an undefined
  statistic is ``null`` with a ``reason`` next to it, a non-finite float the string ``"inf"``/``"-inf"``/``"nan"``);
- ``table.csv`` and ``report.md``: the metric × judgment-set table with CIs, the inter-rater ceiling,
  the ranking of metrics, paired tests, problems; uncalibrated metrics and synthetic sets are labelled;
- ``plots/*.png``: scatter plots (metric vs mean human score; per-model points at system level).
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_i2i.errors import I2IInputError, JudgmentError
from pytest_i2i.jsonsafe import to_json_safe
from pytest_i2i.result import UNCALIBRATED_WARNING

JSON_NAME = "validation.json"
CSV_NAME = "table.csv"
MD_NAME = "report.md"


def classify_paths(paths: Sequence[str | os.PathLike]) -> tuple[list[Path], list[Path]]:
    """Split paths into judgment sets and precomputed score files/folders (by layout)."""
    from pytest_i2i.validation.judgments import LAYOUTS, is_judgment_path
    from pytest_i2i.validation.judgments import scores as S

    judgments, score_paths = [], []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise JudgmentError(f"{p}: does not exist")
        if is_judgment_path(p):
            judgments.append(p)
        elif S.detect(p):
            score_paths.append(p)
        else:
            raise JudgmentError(f"{p}: neither a judgment set nor precomputed scores. Recognised judgment layouts: "
                                + "; ".join(LAYOUTS) + f". Recognised score layouts: {S.LAYOUT}")
    if not judgments:
        raise JudgmentError("no judgment set among the paths given: " + ", ".join(str(p) for p in paths))
    return judgments, score_paths


def validate(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    metrics: Sequence[str] = (),
    weights: str | None = None,
    directions: dict[str, bool] | None = None,
    device: Any = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    allow_outside_root: bool = False,
    command: str | None = None,
) -> dict[str, Any]:
    """Load, score, correlate and write the report folder ``out``; returns the report dict.

    Args:
        paths: judgment sets (manifests or native folders) and precomputed score files/folders.
        metrics: project metrics to compute on the sets' images (see ``correlate.COMPUTABLE``).
        weights: backbone weights for backbone metrics (``"random"``: uncalibrated, labelled so).
        directions: ``{metric: higher_is_better}`` for precomputed metrics of unknown direction.

    Raises:
        JudgmentError / I2IInputError: unusable inputs (naming the file), no metric at all.
    """
    from pytest_i2i.validation.correlate import compute_metric_scores, correlate, from_score_set
    from pytest_i2i.validation.judgments import load_judgments, load_scores

    judgment_paths, score_paths = classify_paths(paths)
    sets = [load_judgments(p, allow_outside_root=allow_outside_root) for p in judgment_paths]
    names = [js.name for js in sets]
    if len(set(names)) != len(names):
        raise JudgmentError(f"two judgment sets share a name: {names}")
    metric_scores = []
    for p in score_paths:
        metric_scores += from_score_set(load_scores(p, directions=directions))
    skipped: list[dict[str, str]] = []
    computed: dict[str, Any] = {}
    for js in sets:
        got, miss = compute_metric_scores(js, list(metrics), weights=weights, device=device)
        skipped += miss
        for m in got:  # one MetricScores per metric name: merge the sets' values
            if m.name in computed:
                computed[m.name].values.update(m.values)
                computed[m.name].calibrated &= m.calibrated
            else:
                computed[m.name] = m
    clash = sorted(set(computed) & {m.name for m in metric_scores})
    if clash:
        raise I2IInputError(f"metric(s) {clash} are both precomputed and requested: rename the column or drop it "
                            "from --metrics")
    metric_scores += list(computed.values())
    if not metric_scores:
        raise I2IInputError("no metric to correlate: give precomputed scores or --metrics computable on the "
                            "sets' images" + ("; skipped: " + "; ".join(f"{s['metric']}: {s['reason']}"
                                                                         for s in skipped) if skipped else ""))
    report = correlate(sets, metric_scores, n_resamples=n_resamples, confidence=confidence, seed=seed)
    report["skipped"] = skipped
    report["problems"] += [{"set": s["set"], "criterion": None, "metric": s["metric"], "level": None,
                            "reason": s["reason"]} for s in skipped]
    report["provenance"] = {"command": command, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                            "inputs": [str(p) for p in paths]}
    write_report(report, out)
    return report


# -- writing ----------------------------------------------------------------------------------------
def _strip_points(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_points(v) for k, v in obj.items() if k != "_points"}
    if isinstance(obj, list):
        return [_strip_points(v) for v in obj]
    return obj


def _fmt(e: dict[str, Any] | None) -> str:
    if not e or e.get("value") is None:
        return "n/a" + (f" ({e['reason']})" if e and e.get("reason") else "")
    ci = e.get("ci")
    return f"{e['value'] + 0.0:.3f} [{ci[0] + 0.0:.3f}, {ci[1] + 0.0:.3f}]" if ci else f"{e['value'] + 0.0:.3f}"


def _label(row: dict[str, Any]) -> str:
    tags = [] if row.get("calibrated", True) else ["UNCALIBRATED"]
    if row.get("synthetic"):
        tags.append("SYNTHETIC SET")
    return row["metric"] + (f" ({', '.join(tags)})" if tags else "")


def table_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    methods = report["settings"]["methods"]
    for r in report["results"]:
        row = {"set": r["set"], "criterion": r["criterion"], "metric": r["metric"], "level": r["level"], "n": r["n"],
               "calibrated": r.get("calibrated", True), "synthetic": r.get("synthetic", False)}
        estimates = r.get("correlations") or ({"2afc": r["two_afc"]} if "two_afc" in r else {})
        for m in [*methods, "2afc"]:
            e = estimates.get(m) or {}
            row[m] = e.get("value")
            row[f"{m}_ci_low"] = (e.get("ci") or [None, None])[0]
            row[f"{m}_ci_high"] = (e.get("ci") or [None, None])[1]
        row["reason"] = r.get("reason") or "; ".join(
            f"{m}: {e['reason']}" for m, e in estimates.items() if e.get("reason"))
        rows.append(row)
    return rows


def _markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    pct = int(round(s["confidence"] * 100))
    lines = ["# Metric validation against human judgments", ""]
    prov = report.get("provenance") or {}
    if prov.get("command"):
        lines += [f"Command: `{prov['command']}`", ""]
    lines += [f"Correlations are oriented: positive = the metric agrees with people (distances are negated; "
              f"`raw` values in {JSON_NAME}). {pct}% percentile bootstrap intervals, {s['n_resamples']} draws "
              "resampling items (and raters where several exist).", ""]
    for js in report["judgment_sets"]:
        tag = " — SYNTHETIC (made-up test data, not human judgments)" if js["synthetic"] else ""
        lines.append(f"- set **{js['name']}** ({js['kind']}, layout {js['layout']}, {js['n_items']} items){tag}")
        for w in js["warnings"]:
            lines.append(f"  - note: {w}")
    if any(not m["calibrated"] for m in report["metrics"].values()):
        lines += ["", f"**WARNING** {UNCALIBRATED_WARNING}"]
    for name, info in report["metrics"].items():
        for w in info["warnings"]:
            if w != UNCALIBRATED_WARNING:
                lines.append(f"- metric {name}: {w}")
    lines += ["", "## Metric × judgment set", ""]
    head = ["set", "criterion", "level", "metric", "n", "Spearman", "Kendall τ-b", "Pearson", "2AFC"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["results"]:
        c = r.get("correlations") or {}
        if r.get("n", 0) == 0 and r.get("reason"):
            cells = [f"n/a ({r['reason']})", "", "", ""]
        else:
            cells = [_fmt(c.get("spearman")), _fmt(c.get("kendall")), _fmt(c.get("pearson")), _fmt(r.get("two_afc"))]
        lines.append("| " + " | ".join([r["set"], r["criterion"] or "-", r["level"], _label(r), str(r["n"]), *cells])
                     + " |")
    joins = {}
    for r in report["results"]:
        j = r.get("join") or {}
        if j.get("n_judged_not_scored") or j.get("n_scored_not_judged"):
            joins[(r["set"], r["metric"])] = j
    if joins:
        lines += ["", "Joins on (item, model) with units left out:", ""]
        for (set_name, metric), j in joins.items():
            lines.append(f"- {set_name} × {metric}: {j['n_joined']} joined; {j.get('n_judged_not_scored', 0)} judged "
                         f"but not scored (e.g. {j.get('examples_judged_not_scored', [])[:2]}); "
                         f"{j.get('n_scored_not_judged', 0)} scored but not judged")
    lines += ["", "## Inter-rater ceiling", ""]
    for a in report["agreement"]:
        if "krippendorff_alpha" not in a:
            lines.append(f"- {a['set']} / {a['criterion'] or 'score'}: {a.get('reason')}")
            continue
        al = a["krippendorff_alpha"]
        alpha = ", ".join(f"{k} {al[k]:.3f}" if al[k] is not None else f"{k} n/a" for k in
                          ("nominal", "ordinal", "interval", "ratio"))
        loro = a["leave_one_rater_out"]
        text = "; ".join(f"{lvl} Spearman {v['spearman']['mean']:.3f}" for lvl, v in loro.items()
                         if v["spearman"]["mean"] is not None)
        lines.append(f"- {a['set']} / {a['criterion']}: {a['n_raters']} raters, {a['n_units']} units; "
                     f"Krippendorff α {alpha}; leave-one-rater-out (rater vs mean of the others): {text}")
        per_model = a.get("krippendorff_alpha_interval_per_model") or {}
        shown = [f"{m} {v:.2f}" for m, v in per_model.items() if not m.endswith("_reason") and v is not None]
        undefined = [m for m, v in per_model.items() if not m.endswith("_reason") and v is None]
        if per_model:
            lines.append("  - interval α per model: " + ", ".join(shown)
                         + (f"; undefined for {', '.join(undefined)} (reasons in {JSON_NAME})" if undefined else ""))
    for r in report["results"]:
        if r.get("human_ceiling") is not None:
            lines.append(f"- {r['set']}: human 2AFC ceiling mean(h² + (1−h)²) = {r['human_ceiling']:.3f}")
            break
    lines += ["", "## Ranking", ""]
    for g in report["ranking"]:
        order = " > ".join(f"{o['metric']} ({o['value']:.3f})" for o in g["order"])
        lines.append(f"- {g['set']} / {g['criterion']} / {g['level']} (by {g['by']}): {order}")
    if report["comparisons"]:
        lines += ["", "## Paired tests (metric A − metric B on the same draws)", ""]
        for c in report["comparisons"]:
            p = f", p = {c['p_value']:.3f}" if c.get("p_value") is not None else ""
            body = (f"Δ = {c['value']:.3f} [{c['ci'][0]:.3f}, {c['ci'][1]:.3f}]{p}" if c.get("ci")
                    else f"n/a ({c.get('reason')})")
            lines.append(f"- {c['set']} / {c['criterion']}: {c['a']} − {c['b']} ({c['method']}): {body}")
    if report["problems"]:
        lines += ["", "## Problems", ""]
        lines += [f"- {p['set']} / {p['metric']}: {p['reason']}" for p in report["problems"]]
    return "\n".join(lines) + "\n"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _plots(report: dict[str, Any], folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    folder.mkdir(parents=True, exist_ok=True)
    for r in report["results"]:
        pts = r.get("_points")
        if not pts:
            continue
        fig, ax = plt.subplots(figsize=(4.5, 3.6))
        ax.scatter(pts["metric"], pts["human"], s=10 if r["level"] == "item" else 30, alpha=0.5)
        for x, y, label in zip(pts["metric"], pts["human"], pts.get("labels", [])):
            ax.annotate(label, (x, y), fontsize=6)
        rho = ((r.get("correlations") or {}).get("spearman") or {}).get("value")
        title = f"{r['set']} / {r['criterion']} / {r['level']}"
        if rho is not None:
            title += f"\noriented Spearman {rho:.3f} (n={r['n']})"
        if r["level"] == "2afc":
            title += f"\n2AFC {r['two_afc']['value']:.3f}"
        ax.set_title(title, fontsize=8)
        ax.set_xlabel(_label(r) + (" (d1 − d0 as distance)" if r["level"] == "2afc" else ""), fontsize=8)
        ax.set_ylabel("fraction preferring p1" if r["level"] == "2afc" else "mean human score", fontsize=8)
        fig.tight_layout()
        name = f"{_slug(r['set'])}__{_slug(r['criterion'] or 'score')}__{_slug(r['metric'])}__{r['level']}.png"
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)
        written.append(f"plots/{name}")
    return written


def write_report(report: dict[str, Any], out: str | os.PathLike) -> dict[str, Path]:
    """Write ``validation.json``, ``table.csv``, ``report.md`` and ``plots/`` into ``out``."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise I2IInputError(f"--out {folder}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    report["plots"] = _plots(report, folder / "plots")
    clean = to_json_safe(_strip_points(report))
    (folder / JSON_NAME).write_text(json.dumps(clean, indent=2, allow_nan=False), encoding="utf-8")
    rows = table_rows(report)
    with open(folder / CSV_NAME, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["set"])
        w.writeheader()
        w.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    (folder / MD_NAME).write_text(_markdown(report), encoding="utf-8")
    return {"json": folder / JSON_NAME, "csv": folder / CSV_NAME, "markdown": folder / MD_NAME}
