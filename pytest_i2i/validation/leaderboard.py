"""The cross-set leaderboard (metric × set, within-generator correlation with CIs and the human
ceiling), its plot, and the check of a report against published numbers.

:func:`leaderboard` reads the model-level rows and ceilings of a report made by
:func:`pytest_i2i.validation.correlate.correlate`: one row per metric (and one for a single human
rater against the others), one cell per (set, criterion) with both aggregates, and an ``all`` cell:

- ``viescore``: tanh of the mean of the set cells (VIEScore's Table 1 "Across All 7 Tasks");
- ``fisher_z``: one (n − 3)-weighted Fisher-z mean over every (set, model) stratum, with an interval
  from the sets' bootstrap draws combined draw by draw (the sets' items are independent).

:func:`reproduce` compares a report with a ``published.toml`` (rows of published cells with their
source) and says, per cell, the published and reproduced values and their difference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pytest_i2i.validation.functional import correlation as C
from pytest_i2i.validation.judgments.format import read_toml
from pytest_i2i.validation.names import CONVENTIONS

HUMAN = "human"
METHOD = "spearman"
TOLERANCE = 5e-4


def _sets_with_model_level(report: dict[str, Any]) -> list[str]:
    return [js["name"] for js in report["judgment_sets"]
            if any(r["set"] == js["name"] and r["level"] == "model" and r.get("n_models") for r in report["results"])]


def _cell(agg: dict[str, Any], convention: str, n_models: int | None) -> dict[str, Any]:
    how = CONVENTIONS[convention]
    e = agg.get(how) or {}
    return {"value": e.get("value"), "ci": e.get("ci"), "reason": e.get("reason"), "n_models": n_models,
            "fisher_z": (agg.get("fisher_z") or {}).get("value"), "viescore": (agg.get("viescore") or {}).get("value")}


def leaderboards(report: dict[str, Any], *, method: str = METHOD) -> list[dict[str, Any]]:
    """One :func:`leaderboard` per group of sets rated on the same criteria (e.g. ImagenHub's 7 tasks
    with SC / PQ / overall, TIFA with faithfulness), largest group first."""
    groups: dict[tuple[str, ...], list[str]] = {}
    sets = _sets_with_model_level(report)
    for js in report["judgment_sets"]:
        if js["name"] in sets:
            groups.setdefault(tuple(js.get("criteria", [])), []).append(js["name"])
    return [leaderboard(report, method=method, sets=g) for g in sorted(groups.values(), key=len, reverse=True)]


def leaderboard(report: dict[str, Any], *, method: str = METHOD, sets: list[str] | None = None) -> dict[str, Any]:
    """The metric × (set, criterion) table of within-generator correlations (see the module docstring)
    over ``sets`` (default: every set with a within-generator level); metrics without a cell are left out."""
    convention = report["settings"]["convention"]
    sets = [s for s in _sets_with_model_level(report) if sets is None or s in sets]
    criteria: list[str] = []
    for js in report["judgment_sets"]:
        if js["name"] in sets:
            criteria += [c for c in js.get("criteria", []) if c not in criteria]
    rows: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for a in report["agreement"]:
        wm = (a.get("leave_one_rater_out") or {}).get("model")
        if a["set"] not in sets or not wm:
            continue
        row = rows.setdefault(HUMAN, {"metric": HUMAN, "kind": "human", "label": "one human rater vs the others",
                                      "cells": {}})
        row["cells"].setdefault(a["set"], {})[a["criterion"]] = _cell(wm["aggregate"][method], convention,
                                                                      len(wm["models"]))
    for r in report["results"]:
        if r["level"] != "model" or r["set"] not in sets:
            continue
        if r["metric"] not in rows:
            order.append(r["metric"])
        row = rows.setdefault(r["metric"], {"metric": r["metric"], "kind": r.get("kind", "metric"),
                                            "registry_name": r.get("registry_name"), "cells": {}})
        if r.get("aggregates"):
            row["cells"].setdefault(r["set"], {})[r["criterion"]] = _cell(r["aggregates"][method], convention,
                                                                          r.get("n_models"))
        else:
            row["cells"].setdefault(r["set"], {})[r["criterion"]] = {"value": None, "ci": None,
                                                                     "reason": r.get("reason"), "n_models": 0}
    draws = report.get("_draws") or {}
    for row in rows.values():
        row["all"] = {}
        for crit in criteria:
            cells = [row["cells"][s][crit] for s in sets if crit in row["cells"].get(s, {})]
            vs = [c["viescore"] for c in cells]
            out: dict[str, Any] = {"n_sets": len(cells)}
            out["viescore"] = C.tanh_mean(vs) if vs and all(v is not None for v in vs) else None
            out.update(_pooled(report, row["metric"], crit, sets, draws, method))
            how = CONVENTIONS[convention]
            out["value"] = out[how]
            out["ci"] = out.get("fisher_z_ci") if how == "fisher_z" else None
            row["all"][crit] = out
    ordered = ([rows[HUMAN]] if HUMAN in rows else []) + [rows[m] for m in order]
    for row in ordered:
        for a in row["all"].values():
            a.pop("_stats", None)
    board = {"convention": convention, "method": method, "sets": sets, "criteria": criteria, "rows": ordered}
    board["differences"] = _differences(report, board, draws, method)
    return board


def _pooled(report: dict[str, Any], metric: str, crit: str, sets: list[str], draws: dict, method: str
            ) -> dict[str, Any]:
    """The Fisher-z mean over every (set, model) stratum of ``metric`` and its combined-draws interval."""
    rs, ns, boot_r, boot_n = [], [], [], []
    contributing = 0
    for s in sets:
        if metric == HUMAN:
            a = next((a for a in report["agreement"] if a["set"] == s and a["criterion"] == crit), None)
            wm = ((a or {}).get("leave_one_rater_out") or {}).get("model")
            if not wm:
                continue
            for m in wm["models"]:
                pm = wm["per_model"][m]
                rs.append(pm[method]["fisher_z"])
                ns.append(pm["n"])
            d = wm.get("_draws", {}).get(method)
        else:
            r = next((r for r in report["results"] if r["set"] == s and r["criterion"] == crit
                      and r["level"] == "model" and r["metric"] == metric), None)
            if not r or not r.get("per_model"):
                continue
            for m in r["models"]:
                rs.append(r["per_model"][m][method])
                ns.append(r["per_model"][m]["n"])
            dd = draws.get((s, crit, metric))
            d = {"r": dd[method], "n": dd["n"]} if dd is not None and method in dd else None
        contributing += 1
        if d is not None:
            boot_r.append(d["r"])
            boot_n.append(d["n"])
    if not rs:
        return {"fisher_z": None, "fisher_z_ci": None, "n_models": 0}
    if any(r is None for r in rs) or min(ns) <= 3:
        return {"fisher_z": None, "fisher_z_ci": None, "n_models": len(rs),
                "reason": "a model's correlation is undefined or it has 3 or fewer items"}
    value = C.fisher_z_mean(rs, np.asarray(ns, dtype=np.float64) - 3.0)
    ci, stats = None, None
    if boot_r and len(boot_r) == contributing:
        stats = C._aggregate_rows(np.concatenate(boot_r, axis=1), np.concatenate(boot_n, axis=1), "fisher_z")
        est = C._bootstrap_estimate(value, stats, len(rs), stats.size, report["settings"]["confidence"])
        ci = list(est.ci) if est.ci else None
    return {"fisher_z": value, "fisher_z_ci": ci, "n_models": len(rs), "_stats": stats}


def _differences(report: dict[str, Any], board: dict[str, Any], draws: dict, method: str) -> list[dict[str, Any]]:
    """Paired differences of the pooled Fisher-z means of every two rows on the sets both cover (the
    sets' draws are shared by every metric of a set, so the difference is paired draw by draw)."""
    out = []
    rows = board["rows"]
    for crit in board["criteria"]:
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                common = [s for s in board["sets"] if (a["cells"].get(s, {}).get(crit) or {}).get("value") is not None
                          and (b["cells"].get(s, {}).get(crit) or {}).get("value") is not None]
                if not common:
                    continue
                pa = _pooled(report, a["metric"], crit, common, draws, method)
                pb = _pooled(report, b["metric"], crit, common, draws, method)
                row = {"criterion": crit, "a": a["metric"], "b": b["metric"], "sets": common, "aggregate": "fisher_z"}
                if pa["fisher_z"] is None or pb["fisher_z"] is None:
                    out.append({**row, "value": None, "ci": None, "p_value": None, "reason": "an aggregate is undefined"})
                    continue
                delta = pa["fisher_z"] - pb["fisher_z"]
                if pa["_stats"] is None or pb["_stats"] is None:
                    out.append({**row, "value": delta, "ci": None, "p_value": None, "reason": "no bootstrap draws"})
                    continue
                d = C._difference(delta, pa["_stats"] - pb["_stats"], len(common), pa["_stats"].size,
                                  report["settings"]["confidence"])
                out.append({**row, **d})
    return out


# -- the plot ---------------------------------------------------------------------------------------
def plot(board: dict[str, Any], path: Path, *, title: str = "") -> Path:
    """One panel per criterion: every metric's within-generator correlation per set with its CI bar,
    the human ceiling (one rater vs the others) as a grey band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets, crits = board["sets"], board["criteria"]
    metrics = [r for r in board["rows"] if r["metric"] != HUMAN]
    human = next((r for r in board["rows"] if r["metric"] == HUMAN), None)
    fig, axes = plt.subplots(len(crits), 1, figsize=(max(7.0, 1.3 * len(sets) + 3), 2.8 * len(crits)), squeeze=False)
    colours = plt.get_cmap("tab10")
    width = 0.8 / max(1, len(metrics))
    for ax, crit in zip(axes[:, 0], crits):
        for i, s in enumerate(sets):
            hc = (human or {}).get("cells", {}).get(s, {}).get(crit)
            if hc and hc["value"] is not None:
                lo, hi = hc["ci"] or (hc["value"], hc["value"])
                ax.add_patch(plt.Rectangle((i - 0.45, lo), 0.9, hi - lo, color="0.85", zorder=0))
                ax.plot([i - 0.45, i + 0.45], [hc["value"]] * 2, color="0.4", lw=1.5, zorder=1,
                        label="one human rater (ceiling)" if i == 0 else None)
        for k, row in enumerate(metrics):
            xs, ys, lo, hi = [], [], [], []
            for i, s in enumerate(sets):
                c = row["cells"].get(s, {}).get(crit)
                if c and c["value"] is not None:
                    xs.append(i - 0.4 + width * (k + 0.5))
                    ys.append(c["value"])
                    ci = c["ci"] or (c["value"], c["value"])
                    lo.append(c["value"] - ci[0])
                    hi.append(ci[1] - c["value"])
            if xs:
                label = row["metric"] + (f" ({row['registry_name']})" if row.get("registry_name") else "")
                ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", ms=4, capsize=2, color=colours(k % 10), label=label)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(range(len(sets)))
        ax.set_xticklabels([s.replace("ImagenHub_", "") for s in sets], fontsize=7)
        ax.set_ylabel(f"{crit}: within-model\n{board['method']}", fontsize=8)
        ax.set_xlim(-0.5, len(sets) - 0.5)
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(fontsize=6, ncol=4, loc="lower left", bbox_to_anchor=(0, 1.02))
    agg = "Fisher-z mean" if board["convention"] == "default" else "VIEScore tanh-mean"
    fig.suptitle(title or f"Agreement with people per task ({agg} over generators, 95% bootstrap CI)", fontsize=9,
                 y=0.995)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- published numbers ------------------------------------------------------------------------------
def read_published(path: Path) -> dict[str, Any]:
    return read_toml(path)


def _viescore_value(report: dict[str, Any], board: dict[str, Any], task: str, row: str, model: str, method: str,
                    criterion: str, tasks: set[str]) -> float | None:
    set_name = f"ImagenHub_{task}"
    if task == "all":  # published over the tasks of the other rows: only comparable when all of them ran
        if not tasks <= set(board["sets"]):
            return None
        r = next((r for r in board["rows"] if r["metric"] == row), None)
        return None if r is None or method != board["method"] else (r["all"].get(criterion) or {}).get("viescore")
    if row == HUMAN:
        a = next((a for a in report["agreement"] if a["set"] == set_name and a["criterion"] == criterion), None)
        wm = ((a or {}).get("leave_one_rater_out") or {}).get("model")
        if not wm:
            return None
        if model:
            return ((wm["per_model"].get(model) or {}).get(method) or {}).get("viescore")
        return (wm["aggregate"].get(method) or {}).get("viescore", {}).get("value")
    r = next((r for r in report["results"] if r["set"] == set_name and r["criterion"] == criterion
              and r["level"] == "model" and r["metric"] == row), None)
    if not r or not r.get("per_model"):
        return None
    if model:
        return (r["per_model"].get(model) or {}).get(method)
    return ((r["aggregates"].get(method) or {}).get("viescore") or {}).get("value")


def reproduce(report: dict[str, Any], published: dict[str, Any], *, tolerance: float = TOLERANCE
              ) -> list[dict[str, Any]]:
    """Each published VIEScore cell next to the report's ``viescore`` aggregate of the same cell.

    Returns one row per (published row, criterion): ``published``, ``reproduced`` (``None`` when the
    report has no such cell, e.g. a task not run), ``difference``, ``within`` (|difference| ≤
    ``tolerance``), and the row's ``deviation`` note where the bundle documents one.
    """
    tasks = {f"ImagenHub_{p['task']}" for p in published.get("row", []) if p["task"] != "all"}
    board = leaderboard(report, method=METHOD, sets=sorted(tasks))
    out = []
    for p in published.get("row", []):
        for crit in ("SC", "PQ", "overall"):
            if crit not in p:
                continue
            got = _viescore_value(report, board, p["task"], p["row"], p.get("model", ""), p.get("method", METHOD),
                                  crit, tasks)
            diff = None if got is None else got - p[crit]
            out.append({"source": p["source"], "task": p["task"], "row": p["row"], "model": p.get("model", ""),
                        "method": p.get("method", METHOD), "criterion": crit, "published": p[crit],
                        "reproduced": got, "difference": diff,
                        "within": diff is not None and abs(diff) <= tolerance,
                        "deviation": (p.get("deviation") or {}).get(crit) if isinstance(p.get("deviation"), dict)
                        else p.get("deviation")})
    return out
