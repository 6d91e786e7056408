"""The pytest plugin entry point (``pytest11``: ``i2i = pytest_i2i.plugin``).

Import-light by design: pytest imports this module in *every* run once pytest-i2i is
installed, so it imports only the standard library, pytest and the project's stdlib-only
modules. torch, timm and open_clip are imported by fixtures, only when a test uses them. With
no ``--i2i-*`` option and no i2i fixture used, the plugin changes nothing in a run.

Fixtures (session state computed once, shared by all tests): ``i2i_options``, ``i2i_dataset``,
``i2i_generator``, ``i2i_outputs``, ``i2i_baseline_generator``, ``i2i_baseline_outputs``,
``i2i_thresholds``, and one fixture per metric (``fid``, ``kid``, ``inception_score``, ``l1``,
``psnr``, ``ssim``, ``ms_ssim``, ``ciede2000``, ``clip_text``, ``clip_image``, ``clip_direction``,
``cmmd``, ``fd_vit``, ``dino_image``, ``vit_patch_distance``) bound to the session's device,
batch size and seed; call it with no arguments to score the model's outputs on the dataset.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pytest_i2i.backbones.weights import ENV_WEIGHTS_DIR  # stdlib-only module
from pytest_i2i.config import add_options, read_thresholds, resolve_options
from pytest_i2i.session import METRIC_NAMES, BoundMetric, I2ISession

SESSION_KEY = pytest.StashKey[I2ISession]()
PARTS_DIR_KEY = "i2i_parts_dir"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_i2i import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_configure(config: pytest.Config) -> None:
    options = resolve_options(config)
    if options.weights_dir is not None:
        os.environ[ENV_WEIGHTS_DIR] = str(options.weights_dir)
    config.stash[SESSION_KEY] = I2ISession(options, read_thresholds(config))
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistController(), "i2i-xdist")


class _XdistController:
    """Gives every xdist worker the folder where it writes its part of the report (created on the
    first worker, removed once the parts are merged, so unrelated runs leave nothing behind)."""

    def __init__(self) -> None:
        self.parts_dir: Path | None = None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.parts_dir is None:
            self.parts_dir = Path(tempfile.mkdtemp(prefix="i2i-parts-"))
        node.workerinput[PARTS_DIR_KEY] = str(self.parts_dir)

    def take_parts(self) -> list[dict[str, Any]]:
        import shutil

        from pytest_i2i.report import read_parts

        if self.parts_dir is None:
            return []
        parts = read_parts(self.parts_dir)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        self.parts_dir = None
        return parts


def _session(request: pytest.FixtureRequest) -> I2ISession:
    return request.config.stash[SESSION_KEY]


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def i2i_options(request: pytest.FixtureRequest):
    """The resolved ``--i2i-*`` options (:class:`pytest_i2i.config.I2IOptions`)."""
    return _session(request).options


@pytest.fixture(scope="session")
def i2i_thresholds(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    """``[tool.i2i.thresholds]`` from pyproject.toml: ``{metric: {"value": ..., ...}}``."""
    return _session(request).thresholds


@pytest.fixture(scope="session")
def i2i_dataset(request: pytest.FixtureRequest):
    """The evaluation dataset (``--i2i-data``, default: the built-in sample set)."""
    return _session(request).dataset


@pytest.fixture(scope="session")
def i2i_generator(request: pytest.FixtureRequest):
    """The generator under test (``--i2i-model``); skips the test when none was given."""
    return _session(request).generator


@pytest.fixture(scope="session")
def i2i_baseline_generator(request: pytest.FixtureRequest):
    """The baseline generator (``--i2i-baseline``); skips the test when none was given."""
    return _session(request).baseline_generator


@pytest.fixture(scope="session")
def i2i_outputs(request: pytest.FixtureRequest):
    """The model's outputs on the dataset, generated once per session (``GenerationResult``)."""
    return _session(request).outputs


@pytest.fixture(scope="session")
def i2i_baseline_outputs(request: pytest.FixtureRequest):
    """The baseline's outputs on the dataset, generated once per session."""
    return _session(request).baseline_outputs


def _junit_recorder(request: pytest.FixtureRequest):
    """``record_property`` where the JUnit family allows per-test properties (xunit1/legacy), else a
    test-suite property named after the test (pytest's default xunit2 forbids per-test ones)."""
    if request.config.getini("junit_family") in ("legacy", "xunit1"):
        return request.getfixturevalue("record_property")
    suite_property = request.getfixturevalue("record_testsuite_property")
    return lambda name, value: suite_property(f"{request.node.nodeid}::{name}", value)


def _metric_fixture(name: str):
    def fixture(request: pytest.FixtureRequest) -> BoundMetric:
        return BoundMetric(_session(request), name, request.node.nodeid, _junit_recorder(request))

    fixture.__name__ = name
    fixture.__doc__ = f"``pytest_i2i.{name}`` bound to the session (device, batch size, seed, weights policy)."
    return pytest.fixture(name=name)(fixture)


for _name in METRIC_NAMES:
    globals()[f"_fixture_{_name}"] = _metric_fixture(_name)


# -- assertions, outcomes, reports ---------------------------------------------------------------
def pytest_assertrepr_compare(config: pytest.Config, op: str, left: object, right: object) -> list[str] | None:
    from pytest_i2i.explain import explain_comparison

    return explain_comparison(op, left, right)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    session = item.config.stash.get(SESSION_KEY, None)
    if session is not None and item.nodeid in session.records:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            session.outcomes[item.nodeid] = report.outcome
    return report


def _entries(session: I2ISession) -> list[dict[str, Any]]:
    from pytest_i2i.report import metric_entry

    return [metric_entry(test, k, r, session.outcomes.get(test, "passed"))
            for test, results in session.records.items() for k, r in enumerate(results)]


def _session_block(config: pytest.Config, session: I2ISession) -> dict[str, Any]:
    block: dict[str, Any] = {"options": {k: v for k, v in session.options.as_dict().items()
                                         if k not in ("report", "cache_dir")}}
    if "dataset" in session.__dict__:
        ds = session.dataset
        block["dataset"] = {"n": len(ds), "description": getattr(ds, "description", ""),
                            "source": str(getattr(ds, "source", ""))}
    if "generator" in session.__dict__:
        block["model"] = {k: str(getattr(session.generator, k)) for k in ("source", "sha256", "arch", "kind")
                          if hasattr(session.generator, k)}
    config.hook.pytest_i2i_modify_session_info(config=config, info=block)
    return block


def _generation_errors(session: I2ISession) -> dict[str, str]:
    if "outputs" not in session.__dict__:
        return {}
    uids = session.dataset.uids
    return {uids[i]: msg for i, msg in session.outputs.errors.items()}


def _export_images(session: I2ISession, report_dir: Path) -> None:
    if "outputs" not in session.__dict__:
        return
    from pytest_i2i.html_report import export_images

    ds = session.dataset
    inputs, targets = ds.inputs(), ds.targets()
    for i, uid in enumerate(ds.uids):
        export_images(report_dir / "images", uid, {
            "input": inputs[i], "output": session.outputs.outputs[i],
            "target": targets[i] if targets is not None else None})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash.get(SESSION_KEY, None)
    if state is None:
        return
    from pytest_i2i.report import build_report, merge_parts, write_json_atomic

    used = bool(state.records) or "outputs" in state.__dict__
    part = build_report(_entries(state), _session_block(config, state), _generation_errors(state))
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: hand the part to the controller
        if used:
            if state.options.report is not None:
                _export_images(state, state.options.report)
            write_json_atomic(Path(workerinput[PARTS_DIR_KEY]) / f"{workerinput['workerid']}.json", part)
        return
    controller = config.pluginmanager.get_plugin("i2i-xdist")
    parts = controller.take_parts() if controller is not None else []
    if not used and not parts:
        return
    report = merge_parts(parts + [part]) if parts else part
    config.hook.pytest_i2i_modify_report(config=config, report=report)
    config.stash[_REPORT_KEY] = report
    if state.options.report is not None:
        from pytest_i2i.html_report import render_html
        from pytest_i2i.report import REPORT_NAME

        _export_images(state, state.options.report)
        write_json_atomic(state.options.report / REPORT_NAME, report)
        render_html(report, state.options.report)


_REPORT_KEY = pytest.StashKey[dict]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT_KEY, None)
    if not report or not report["metrics"]:
        return
    from pytest_i2i.report import terminal_lines

    terminalreporter.section("pytest-i2i metrics")
    for line in terminal_lines(report["metrics"]):
        terminalreporter.write_line(line)
    errors = report.get("generation_errors") or {}
    for uid, msg in errors.items():
        terminalreporter.write_line(f"generation error: {uid}: {msg}")
    state = config.stash[SESSION_KEY]
    if state.options.report is not None:
        terminalreporter.write_line(f"report: {state.options.report / 'index.html'}")
