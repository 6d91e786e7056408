"""The validation report folder: which metric agrees with people?

:func:`validate` is the one front-end behind ``i2i validate`` and ``pytest suites/validation``: it
resolves paths (:mod:`pytest_i2i.validation.sources`) and built-in sets
(:mod:`pytest_i2i.validation.judgments.bundle`) into judgment sets and scores, computes the requested
metrics on the sets' images, runs :func:`pytest_i2i.validation.correlate.correlate`, adds the
leaderboards and the reproduction of published numbers (:mod:`pytest_i2i.validation.leaderboard`)
and writes:

- ``validation.json``: every number (strict JSON, numbers as :mod:`pytest_i2i.report` says: an undefined
  statistic is ``null`` with a ``reason`` next to it, a non-finite float the string ``"inf"``/``"-inf"``/``"nan"``);
- ``table.csv`` and ``report.md``: published numbers reproduced or not (and why), the leaderboard
  (metric × set, within-generator, with CIs, the human ceiling and paired differences), preference
  accuracies, where the two conventions differ, the metric × judgment-set table at every level, the
  inter-rater ceiling, the ranking, paired tests, problems; uncalibrated metrics and synthetic sets are
  labelled;
- ``leaderboard.png`` (one per group of sets sharing criteria) and, with ``plots="all"``, ``plots/*.png``
  scatter plots (metric vs mean human score; per-model points at system level).
"""

from __future__ import annotations

import csv
import io
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


def validate(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    builtin: Sequence[str] = (),
    tasks: Sequence[str] = (),
    metrics: Sequence[str] = (),
    weights: str | None = None,
    directions: dict[str, bool] | None = None,
    device: Any = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    allow_outside_root: bool = False,
    command: str | None = None,
    convention: str = "default",
    methods: Sequence[str] | None = None,
    resample_raters: bool = False,
    plots: str = "all",
    vote_margin: float = 0.0,
) -> dict[str, Any]:
    """Load, score, correlate and write the report folder ``out``; returns the report dict.

    Args:
        paths: judgment sets (manifests or native folders), precomputed score files/folders, VIEScore
            judge folders, or roots with one folder per task (see :mod:`pytest_i2i.validation.sources`).
        builtin: names of bundled sets (:data:`pytest_i2i.validation.judgments.bundle.BUILTIN`), or
            ``"all"``; they run offline from ``human_judgments/``.
        tasks: task names under root folders (and within ``viescore-imagenhub``).
        metrics: project metrics to compute on the sets' images (see ``correlate.computable_metrics``).
        weights: backbone weights for backbone metrics (``"random"``: uncalibrated, labelled so).
        directions: ``{metric: higher_is_better}`` for precomputed metrics of unknown direction.
        convention: ``"default"`` or ``"viescore"``: the headline aggregate of within-model correlations.
        methods: correlations at item / system level (default all three, Spearman and Pearson for built-in
            sets alone: Kendall's bootstrap is the slow one); the model level computes all three.
        plots: ``"all"`` (scatter plots per row and the leaderboard), ``"summary"`` (the leaderboard only)
            or ``"none"``.

    Raises:
        JudgmentError / I2IInputError: unusable inputs (naming the file), no metric at all.
    """
    from pytest_i2i.validation.correlate import METHODS, compute_metric_scores, correlate
    from pytest_i2i.validation.judgments import bundle
    from pytest_i2i.validation.sources import resolve_inputs

    if plots not in PLOTS:
        raise I2IInputError(f"plots={plots!r}; choose one of {', '.join(PLOTS)}")
    names = list(bundle.BUILTIN) if "all" in builtin else list(builtin)
    if not paths and not names:
        raise JudgmentError("nothing to validate: give judgment sets (paths) or built-in set names")
    sets, metric_scores = [], []
    if paths:
        sets, metric_scores = resolve_inputs(paths, tasks=tasks, directions=directions,
                                             allow_outside_root=allow_outside_root, tasks_elsewhere=bool(names))
    for name in names:
        s, m = bundle.load_builtin(name, tasks=tasks if name == "viescore-imagenhub" else None)
        sets += s
        metric_scores += m
    set_names = [js.name for js in sets]
    if len(set(set_names)) != len(set_names):
        raise JudgmentError(f"two judgment sets share a name: {set_names}")
    skipped: list[dict[str, str]] = []
    for js in sets:
        got, miss = compute_metric_scores(js, list(metrics), weights=weights, device=device)
        skipped += miss
        clash = sorted({m.name for m in got} & {m.name for m in metric_scores if m.binding in (None, js.name)}
                       | {m.name for m in got} & {m.name for m in js.scores})
        if clash:
            raise I2IInputError(f"metric(s) {clash} are both precomputed and requested for {js.name}: rename the "
                                "column or drop it from --metrics")
        metric_scores += got
    if not metric_scores and not any(js.scores for js in sets):
        raise I2IInputError("no metric to correlate: give precomputed scores or --metrics computable on the "
                            "sets' images" + ("; skipped: " + "; ".join(f"{s['metric']}: {s['reason']}"
                                                                         for s in skipped) if skipped else ""))
    if not methods:
        methods = ("spearman", "pearson") if names and not paths else METHODS
    report = correlate(sets, metric_scores, methods=tuple(methods), n_resamples=n_resamples,
                       confidence=confidence, seed=seed, convention=convention, resample_raters=resample_raters,
                       vote_margin=vote_margin)
    report["skipped"] = skipped
    report["problems"] += [{"set": s["set"], "criterion": None, "metric": s["metric"], "level": None,
                            "reason": s["reason"]} for s in skipped]
    report["provenance"] = {"command": command, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                            "inputs": [str(p) for p in paths], "builtin": names, "tasks": list(tasks)}
    add_published(report, names)
    write_report(report, out, plots=plots)
    return report


PLOTS = ("all", "summary", "none")


def add_published(report: dict[str, Any], builtin: Sequence[str]) -> None:
    """Attach the leaderboard and, for built-in sets with a ``published.toml``, the reproduction of the
    published numbers (``report["reproduction"]``)."""
    from pytest_i2i.validation import leaderboard as L
    from pytest_i2i.validation.judgments import bundle

    report["leaderboards"] = L.leaderboards(report)
    reproduction = {}
    for name in builtin:
        path = bundle.bundle_dir() / name / "published.toml"
        if not path.is_file():
            continue
        published = L.read_published(path)
        if name == "viescore-imagenhub":
            reproduction[name] = {"sources": published.get("sources", {}), "cells": L.reproduce(report, published)}
        elif name == "genai-bench-image-edition":
            reproduction[name] = {"sources": published.get("sources", {}), "cells": _genai_cells(report, published)}
        elif name == "tifa-human":
            reproduction[name] = {"sources": published.get("sources", {}), "cells": _tifa_cells(report, published)}
    report["reproduction"] = reproduction


def _genai_cells(report: dict[str, Any], published: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in published.get("row", []):
        r = next((r for r in report["results"] if r["set"] == "genai-bench-image-edition"
                  and r["metric"] == p["judge"] and r["level"] == "preference"), None)
        got = None if r is None else r["accuracy"]["with_ties"]["value"]
        got_pct = None if got is None else got * 100
        diff = None if got_pct is None else got_pct - p["accuracy_percent"]
        out.append({"source": p["source"], "row": p["judge"], "criterion": "accuracy with ties (%)",
                    "published": p["accuracy_percent"], "reproduced": got_pct, "difference": diff,
                    "within": diff is not None and abs(diff) <= 0.005})
    return out


def _tifa_cells(report: dict[str, Any], published: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in published.get("row", []):
        r = next((r for r in report["results"] if r["set"] == "tifa-human" and r["metric"] == p["metric"]
                  and r["level"] == "item"), None)
        for method in ("pearson", "kendall"):
            got = None if r is None else (r.get("raw") or {}).get(method)
            diff = None if got is None else got - p[method]
            out.append({"source": p["source"], "row": p["metric"], "criterion": method, "published": p[method],
                        "reproduced": got, "difference": diff, "within": diff is not None and abs(diff) <= 1e-9})
    return out


# -- writing ----------------------------------------------------------------------------------------
def _strip_points(obj: Any) -> Any:
    """The report without its private parts (keys starting with ``_``: plot points, bootstrap draws)."""
    if isinstance(obj, dict):
        return {k: _strip_points(v) for k, v in obj.items() if not (isinstance(k, str) and k.startswith("_"))}
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
    methods = list(dict.fromkeys([*report["settings"]["methods"], "spearman", "kendall", "pearson"]))
    for r in report["results"]:
        row = {"set": r["set"], "criterion": r["criterion"], "metric": r["metric"], "level": r["level"], "n": r["n"],
               "calibrated": r.get("calibrated", True), "synthetic": r.get("synthetic", False)}
        estimates = {**(r.get("correlations") or {}), **({"2afc": r["two_afc"]} if "two_afc" in r else {}),
                     **({"accuracy": r["accuracy"]["with_ties"],
                         "accuracy_without_ties": r["accuracy"]["without_ties"]} if "accuracy" in r else {})}
        for m in [*methods, "2afc", "accuracy", "accuracy_without_ties"]:
            e = estimates.get(m) or {}
            row[m] = e.get("value")
            row[f"{m}_ci_low"] = (e.get("ci") or [None, None])[0]
            row[f"{m}_ci_high"] = (e.get("ci") or [None, None])[1]
        for how in ("fisher_z", "viescore"):  # the model level's two aggregates
            row[f"spearman_{how}"] = (r["aggregates"]["spearman"][how]["value"]
                                      if r["level"] == "model" and r.get("aggregates") else None)
        row["reason"] = r.get("reason") or "; ".join(
            f"{m}: {e['reason']}" for m, e in estimates.items() if e.get("reason"))
        rows.append(row)
    return rows


def _num(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v + 0.0:.{digits}f}"


def _leaderboard_md(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for board in report.get("leaderboards") or []:
        lines += _one_leaderboard_md(report, board)
    return lines


def _one_leaderboard_md(report: dict[str, Any], board: dict[str, Any]) -> list[str]:
    conv = board["convention"]
    pct = int(round(report["settings"]["confidence"] * 100))
    agg = ("Fisher-z mean over generators (weights n − 3)" if conv == "default"
           else "VIEScore's tanh(mean ρ) over generators")
    lines = ["", "## Leaderboard: within-generator agreement with people"
             + (f" ({', '.join(board['sets'])})" if len(board["sets"]) < 3 else ""), "",
             f"{board['method'].capitalize()} correlation of each metric with the mean of the raters inside each "
             f"generator's outputs, {agg}, {pct}% cluster-bootstrap interval over items. `human` = one rater "
             "against the mean of the other raters (the ceiling). `all` = "
             + ("one Fisher-z mean over every (set, generator)." if conv == "default"
                else "tanh of the mean of the set cells (VIEScore's Table 1).")]
    for crit in board["criteria"]:
        head = ["metric", *[s.replace("ImagenHub_", "") for s in board["sets"]], "all"]
        lines += ["", f"**{crit}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in board["rows"]:
            cells = []
            for s in board["sets"]:
                c = row["cells"].get(s, {}).get(crit)
                cells.append("" if c is None else _fmt(c))
            a = row["all"].get(crit) or {}
            cells.append(_fmt(a) + (f" ({a['n_sets']} sets)" if a.get("n_sets", 0) < len(board["sets"])
                                    and a.get("value") is not None else ""))
            label = row["metric"] + (f" ({row['registry_name']})" if row.get("registry_name") else "")
            lines.append("| " + " | ".join([label, *cells]) + " |")
    diffs = [d for d in board.get("differences", []) if d.get("ci")]
    if diffs:
        lines += ["", "Paired differences of the pooled Fisher-z means on the sets both rows cover (same bootstrap "
                  "draws; Δ = a − b):", "", "| criterion | a | b | sets | Δ | p |", "|---|---|---|---|---|---|"]
        for d in diffs:
            lines.append(f"| {d['criterion']} | {d['a']} | {d['b']} | {len(d['sets'])} | {_fmt(d)} | "
                         f"{d['p_value']:.3f} |")
    return lines


def _conventions_md(report: dict[str, Any]) -> list[str]:
    rows = [r for r in report["results"] if r["level"] == "model" and r.get("aggregates")]
    if not rows:
        return []
    s = report["settings"]
    lines = ["", "## Conventions: where the default and VIEScore's aggregate differ", "",
             f"Headline convention: **{s['convention']}** ({s['convention_note']}). Both are computed for every "
             "within-generator row (Spearman):", ""]
    lines += [f"- {d}" for d in s["conventions_differ"]]
    lines += ["", "| set | criterion | metric | default (Fisher-z) | viescore (tanh-mean) | difference |",
              "|---|---|---|---|---|---|"]
    for a in report["agreement"]:
        wm = (a.get("leave_one_rater_out") or {}).get("model")
        if wm:
            f, v = (wm["aggregate"]["spearman"]["fisher_z"]["value"], wm["aggregate"]["spearman"]["viescore"]["value"])
            lines.append(f"| {a['set']} | {a['criterion']} | human (one rater vs the others) | {_num(f)} | {_num(v)} | "
                         f"{_num(None if f is None or v is None else f - v)} |")
    for r in rows:
        f, v = r["aggregates"]["spearman"]["fisher_z"]["value"], r["aggregates"]["spearman"]["viescore"]["value"]
        lines.append(f"| {r['set']} | {r['criterion']} | {r['metric']} | {_num(f)} | {_num(v)} | "
                     f"{_num(None if f is None or v is None else f - v)} |")
    return lines


def _reproduction_md(report: dict[str, Any]) -> list[str]:
    rep = report.get("reproduction") or {}
    lines = []
    for name, data in rep.items():
        cells = data["cells"]
        ok = sum(c["within"] for c in cells)
        missing = sum(c["reproduced"] is None for c in cells)
        lines += ["", f"## Reproduction of published numbers: {name}", "",
                  f"{ok} of {len(cells)} published cells reproduced (|difference| ≤ 5e-4 for correlations, 0.005 "
                  f"percentage points for accuracies, 1e-9 for TIFA's full-precision outputs)"
                  + (f"; {missing} not computed in this run" if missing else "") + ". Sources:", ""]
        lines += [f"- {k}: {v}" for k, v in data["sources"].items()]
        off = [c for c in cells if not c["within"] and c["reproduced"] is not None]
        if off:
            lines += ["", "Cells not reproduced:", "", "| source | task | row | model | criterion | published | "
                      "reproduced | difference | why |", "|---|---|---|---|---|---|---|---|---|"]
            for c in off:
                lines.append(f"| {c['source']} | {c.get('task', '')} | {c['row']} | {c.get('model', '') or '-'} | "
                             f"{c['criterion']} | {c['published']} | {_num(c['reproduced'], 4)} | "
                             f"{c['difference']:+.4f} | {c.get('deviation') or 'not explained'} |")
    return lines


def _preference_md(report: dict[str, Any]) -> list[str]:
    rows = [r for r in report["results"] if r["level"] == "preference"]
    if not rows:
        return []
    lines = ["", "## Pairwise preferences (four outcomes)", "",
             "Accuracy as GenAI-Bench computes it: a vote is right when it matches the human vote (a judge's "
             "[[A=B]] counts for a tie and for both-bad); *without ties*: on the pairs where the human preferred one "
             "image; *decisive*: where both the human and the judge did.", "",
             "| set | judge / metric | n | accuracy with ties | without ties | decisive |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "accuracy" not in r:
            lines.append(f"| {r['set']} | {r['metric']} | 0 | n/a ({r.get('reason')}) | | |")
            continue
        a = r["accuracy"]
        lines.append(f"| {r['set']} | {_label(r)} | {r['n']} | {_fmt(a['with_ties'])} | {_fmt(a['without_ties'])} | "
                     f"{_fmt(a['decisive'])} |")
    return lines


def _markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    pct = int(round(s["confidence"] * 100))
    lines = ["# Metric validation against human judgments", ""]
    prov = report.get("provenance") or {}
    if prov.get("command"):
        lines += [f"Command: `{prov['command']}`", ""]
    lines += [f"Correlations are oriented: positive = the metric agrees with people (distances are negated; "
              f"`raw` values in {JSON_NAME}). {pct}% percentile bootstrap intervals, {s['n_resamples']} draws: "
              f"{s['bootstrap']}. Convention: {s['convention']}.", ""]
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
    lines += _reproduction_md(report)
    lines += _leaderboard_md(report)
    lines += _preference_md(report)
    lines += _conventions_md(report)
    lines += ["", "## Metric × judgment set", ""]
    head = ["set", "criterion", "level", "metric", "n", "Spearman", "Kendall τ-b", "Pearson", "2AFC"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["results"]:
        if r["level"] == "preference":
            continue
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
                         if lvl != "model" and v.get("spearman", {}).get("mean") is not None)
        wm = loro.get("model")
        if wm:
            agg = wm["aggregate"]["spearman"]
            text += (f"; within generators ({len(wm['models'])}) Fisher-z {_fmt(agg['fisher_z'])}, "
                     f"VIEScore {_fmt(agg['viescore'])}")
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
            how = f", {c['level']} level" + (f", {c['aggregate']}" if c.get("aggregate") else "")
            lines.append(f"- {c['set']} / {c['criterion']}: {c['a']} − {c['b']} ({c['method']}{how}): {body}")
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


LEADERBOARD_PLOT = "leaderboard.png"


def write_report(report: dict[str, Any], out: str | os.PathLike, *, plots: str = "all") -> dict[str, Path]:
    """Write ``validation.json``, ``table.csv``, ``report.md``, ``leaderboard.png`` (when there is a
    within-generator level) and ``plots/`` (with ``plots="all"``) into ``out``."""
    from pytest_i2i.files import write_text_atomic

    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise I2IInputError(f"--out {folder}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    report["plots"] = _plots(report, folder / "plots") if plots == "all" else []
    if plots != "none":
        from pytest_i2i.validation.leaderboard import plot

        for k, board in enumerate(report.get("leaderboards") or []):
            name = LEADERBOARD_PLOT if k == 0 else f"leaderboard_{_slug(board['sets'][0])}.png"
            plot(board, folder / name)
            report["plots"].append(name)
    clean = to_json_safe(_strip_points(report))
    write_text_atomic(folder / JSON_NAME, json.dumps(clean, indent=2, allow_nan=False))
    rows = table_rows(report)
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["set"], lineterminator="\n")
    w.writeheader()
    w.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    write_text_atomic(folder / CSV_NAME, buf.getvalue())
    write_text_atomic(folder / MD_NAME, _markdown(report))
    return {"json": folder / JSON_NAME, "csv": folder / CSV_NAME, "markdown": folder / MD_NAME}
