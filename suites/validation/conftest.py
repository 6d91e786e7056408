"""Fixtures of the judgment-validation suite (``test_judgments.py``); names start with ``validation_``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# weight-free metrics computed on a set's images when it has them (precomputed scores need none)
SUITE_METRICS = ("l1", "psnr", "ssim", "ciede2000")


@pytest.fixture(scope="session")
def validation_paths(i2i_options) -> list[str]:
    """The ``--i2i-judgments`` paths (judgment sets and precomputed score files); skips when none."""
    raw = i2i_options.judgments
    if not raw:
        pytest.skip("no --i2i-judgments given: pass judgment sets (and precomputed score folders), "
                    "e.g. --i2i-judgments=path/to/imagenhub,path/to/scores")
    return [p.strip() for p in raw.split(",") if p.strip()]


@pytest.fixture(scope="session")
def validation_outcome(validation_paths, i2i_options, tmp_path_factory) -> dict[str, Any]:
    """Runs the validation once: ``{"report": dict | None, "error": str | None, "out": Path}``.

    The report folder is ``<--i2i-report>/validation`` (or a temporary folder without ``--i2i-report``).
    """
    from pytest_i2i.errors import I2IError
    from pytest_i2i.validation.judgments import is_judgment_path, load_judgments
    from pytest_i2i.validation.validation_report import validate

    out = (i2i_options.report / "validation") if i2i_options.report else tmp_path_factory.mktemp("validation")
    metrics: list[str] = []
    try:
        for p in validation_paths:
            if is_judgment_path(p) and load_judgments(p).images_root is not None:
                metrics = list(SUITE_METRICS)
        report = validate(validation_paths, out, metrics=metrics, seed=i2i_options.seed,
                          command="pytest suites/validation --i2i-judgments=" + ",".join(validation_paths))
        return {"report": report, "error": None, "out": Path(out)}
    except I2IError as e:
        return {"report": None, "error": f"{type(e).__name__}: {e}", "out": Path(out)}
