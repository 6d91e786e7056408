"""The files of a sensitivity run: tables, scores, strict JSON, the statement and the figures."""

from __future__ import annotations

import math
import os
from pathlib import Path

from pytest_i2i.files import write_json_atomic
from pytest_i2i.validation.sensitivity.result import AUROC_TARGET, UNCALIBRATED, SensitivityResult


def write_outputs(result: SensitivityResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``sensitivity.csv`` (the table), ``scores.csv``, ``sensitivity.json`` (every number),
    ``statement.txt`` and the figures ``sensitivity_paired.png`` / ``sensitivity_set.png``.

    Uncalibrated runs carry the label in the CSV (``calibration`` column), the JSON
    (``calibrated: false``), the statement's first line, the figure titles and the file
    ``UNCALIBRATED.txt``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"table": out / "sensitivity.csv", "scores": out / "scores.csv", "json": out / "sensitivity.json",
             "statement": out / "statement.txt"}
    result.table.to_csv(paths["table"], index=False)
    result.scores.to_csv(paths["scores"], index=False)
    write_json_atomic(paths["json"], result.to_json())
    paths["statement"].write_text("\n".join(result.statement) + "\n")
    if not result.calibrated:
        (out / "UNCALIBRATED.txt").write_text(
            "Backbone metrics in this run used random weights (weights='random'): every backbone number is "
            "uncalibrated.\n")
    paths.update(plot(result, out))
    return paths


def plot(result: SensitivityResult, out_dir: Path) -> dict[str, Path]:
    """AUROC vs area (paired) and p-value vs area (set-level): one panel per op, one line per metric."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    paths: dict[str, Path] = {}
    ops = result.config["ops"]
    label = "" if result.calibrated else " - UNCALIBRATED (random backbone weights)"
    for kind, column, ylabel, fname in (("paired", "auroc", "detection AUROC", "sensitivity_paired.png"),
                                        ("set", "p_value", "permutation p-value", "sensitivity_set.png")):
        t = result.table[(result.table.kind == kind) & result.table.against.isin(["all", "originals"])]
        if t.empty:
            continue
        cols = min(4, len(ops))
        rows = math.ceil(len(ops) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False, sharey=True)
        for ax, op in zip(axes.flat, ops):
            for metric, g in t[t.op == op].groupby("metric", sort=False):
                g = g.sort_values("area_percent")
                uncal = result.calibration.get(metric) == UNCALIBRATED
                ax.plot(g.area_percent, g[column], marker="o", ms=3, linestyle="--" if uncal else "-",
                        label=metric + (" (uncal.)" if uncal else ""))
            ax.set_xscale("log")
            ax.set_title(op, fontsize=9)
            ax.set_xlabel("area (% of image)", fontsize=8)
            if kind == "paired":
                ax.axhline(AUROC_TARGET, color="grey", lw=0.8, ls=":")
                ax.set_ylim(0.0, 1.02)
            else:
                ax.set_yscale("log")
                ax.axhline(result.config["alpha"], color="grey", lw=0.8, ls=":")
        for ax in axes.flat[len(ops):]:
            ax.axis("off")
        for ax in axes[:, 0]:
            ax.set_ylabel(ylabel, fontsize=8)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=7)
        fig.suptitle(f"Sensitivity to local edits ({kind} metrics){label}", fontsize=10)
        fig.tight_layout(rect=(0, 0.07, 1, 0.96))
        path = out_dir / fname
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths[kind + "_plot"] = path
    return paths
