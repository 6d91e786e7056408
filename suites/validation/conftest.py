"""Fixtures of the judgment-validation suite (``test_judgments.py``); names start with ``validation_``.

Without ``--i2i-judgments`` the suite runs the bundled real sets (``human_judgments/``: ImagenHub +
VIEScore, GenAI-Bench, TIFA), offline. ``--i2i-judgments`` takes paths (judgment sets, scores, VIEScore
judge folders) and ``builtin`` / ``builtin:NAME`` entries, comma-separated.

Environment (no plugin option exists for these): ``I2I_VALIDATION_CONVENTION`` (``default`` or
``viescore``), ``I2I_VALIDATION_TASKS`` (comma-separated tasks of viescore-imagenhub or of root
folders), ``I2I_VALIDATION_RESAMPLES`` (bootstrap draws, default 1000).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

# weight-free metrics computed on a set's images when it has them (precomputed scores need none)
SUITE_METRICS = ("l1", "psnr", "ssim", "ciede2000")


@pytest.fixture(scope="session")
def validation_paths(i2i_options) -> dict[str, list[str]]:
    """``{"paths": [...], "builtin": [...]}`` from ``--i2i-judgments`` (the built-in sets without it)."""
    raw = i2i_options.judgments
    if not raw:
        return {"paths": [], "builtin": ["all"]}
    out: dict[str, list[str]] = {"paths": [], "builtin": []}
    for entry in (p.strip() for p in raw.split(",") if p.strip()):
        if entry == "builtin" or entry.startswith("builtin:"):
            out["builtin"].append(entry.partition(":")[2] or "all")
        else:
            out["paths"].append(entry)
    return out


@pytest.fixture(scope="session")
def validation_outcome(validation_paths, i2i_options, tmp_path_factory) -> dict[str, Any]:
    """Runs the validation once: ``{"report": dict | None, "error": str | None, "out": Path}``.

    The report folder is ``<--i2i-report>/validation`` (or a temporary folder without ``--i2i-report``).
    """
    from pytest_i2i.errors import I2IError
    from pytest_i2i.validation.judgments import is_judgment_path, load_judgments
    from pytest_i2i.validation.validation_report import validate

    out = (i2i_options.report / "validation") if i2i_options.report else tmp_path_factory.mktemp("validation")
    paths, builtin = validation_paths["paths"], validation_paths["builtin"]
    metrics: list[str] = []
    tasks = [t.strip() for t in os.environ.get("I2I_VALIDATION_TASKS", "").split(",") if t.strip()]
    try:
        for p in paths:
            if is_judgment_path(p) and load_judgments(p).images_root is not None:
                metrics = list(SUITE_METRICS)
        report = validate(paths, out, builtin=builtin, tasks=tasks, metrics=metrics, seed=i2i_options.seed,
                          convention=os.environ.get("I2I_VALIDATION_CONVENTION", "default"),
                          n_resamples=int(os.environ.get("I2I_VALIDATION_RESAMPLES", "1000")),
                          plots="summary" if builtin else "all",
                          command="pytest suites/validation" + (f" --i2i-judgments={i2i_options.judgments}"
                                                                 if i2i_options.judgments else ""))
        return {"report": report, "error": None, "out": Path(out)}
    except I2IError as e:
        return {"report": None, "error": f"{type(e).__name__}: {e}", "out": Path(out)}
