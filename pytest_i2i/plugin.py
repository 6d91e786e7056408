"""The pytest plugin entry point (``pytest11``: ``i2i = pytest_i2i.plugin``).

Import-light by design: pytest imports this module in *every* run once pytest-i2i is
installed, so it imports only the standard library and pytest. torch, timm and open_clip are
imported by the metrics, only when a test uses them. With no ``--i2i-*`` option given the
plugin changes nothing in a run.
"""

from __future__ import annotations

import os

import pytest

from pytest_i2i.backbones.weights import ENV_WEIGHTS_DIR  # stdlib-only module


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("i2i", "image-to-image model evaluation (pytest-i2i)")
    group.addoption(
        "--i2i-weights-dir", action="store", default=None, metavar="DIR",
        help="folder searched first for backbone weights files (also ini i2i_weights_dir, env I2I_WEIGHTS_DIR)",
    )
    parser.addini("i2i_weights_dir", "folder searched first for backbone weights files", default=None)


def get_cli_or_ini(config: pytest.Config, name: str) -> str | None:
    """The command-line value of ``--i2i-<name>`` if given, else the ini value ``i2i_<name>``."""
    value = config.getoption(f"i2i_{name}")
    if value is None:
        value = config.getini(f"i2i_{name}") or None
    return value


def pytest_configure(config: pytest.Config) -> None:
    weights_dir = get_cli_or_ini(config, "weights_dir")
    if weights_dir:
        path = os.path.abspath(os.path.expanduser(weights_dir))
        if not os.path.isdir(path):
            raise pytest.UsageError(f"--i2i-weights-dir: {weights_dir} is not a directory")
        os.environ[ENV_WEIGHTS_DIR] = path
