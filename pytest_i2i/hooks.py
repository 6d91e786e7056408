"""pytest-i2i's own hook specifications: implement them in a conftest.py to reshape reports."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_i2i_modify_session_info(config: pytest.Config, info: dict[str, Any]) -> None:
    """Edit, in place, the ``session`` block of the report (options, model, dataset) before it is written."""


def pytest_i2i_modify_report(config: pytest.Config, report: dict[str, Any]) -> None:
    """Edit, in place, the merged report (``schema``, ``session``, ``metrics``, ``generation_errors``)
    before the JSON file, the HTML page and the terminal table are produced. Called once, on the
    controller under pytest-xdist."""
