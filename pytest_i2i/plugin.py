"""The pytest plugin entry point (``pytest11``: ``i2i = pytest_i2i.plugin``).

Import-light by design: pytest imports this module in *every* run once pytest-i2i is
installed, so it imports only the standard library, pytest and the project's stdlib-only
modules. torch, timm and open_clip are imported by fixtures, only when a test uses them. With
no ``--i2i-*`` option and no i2i fixture used, the plugin changes nothing in a run.

Fixtures (session state computed once, shared by all tests): ``i2i_options``, ``i2i_dataset``,
``i2i_generator``, ``i2i_outputs``, ``i2i_baseline_generator``, ``i2i_baseline_outputs``,
``i2i_thresholds``, and one fixture per registered metric (:func:`pytest_i2i.list_metrics`: the
built-ins and any metric a ``conftest.py`` registers with :func:`pytest_i2i.register_metric`),
bound to the session's device, batch size and seed; call it with no arguments to score the
model's outputs on the dataset.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pytest_i2i.backbones import weights  # stdlib-only module
from pytest_i2i.config import add_options, check_arch_name, check_threshold_names, read_thresholds, resolve_options
from pytest_i2i.metrics.registry import list_metrics, on_register
from pytest_i2i.session import BoundMetric, I2ISession

SESSION_KEY = pytest.StashKey[I2ISession]()
PARTS_DIR_KEY = "i2i_parts_dir"
# node id -> entry ({"outcome", "reason"/"message"}) of every test whose teardown finished, and the
# phases (when, outcome, text) of the test in progress: the report's "tests" block
_TESTS_KEY = pytest.StashKey[dict[str, dict[str, Any]]]()
_PHASES_KEY = pytest.StashKey[dict[str, list[tuple[str, str, str]]]]()
_PACKAGE_DIR = Path(__file__).resolve().parent
_OWN_GROUP_KEY = pytest.StashKey[bool]()
_STOP_LISTENING_KEY = pytest.StashKey[Any]()
_STOP_RECORDING_KEY = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_i2i import hooks

    pluginmanager.add_hookspecs(hooks)
    pluginmanager.register(_HypothesisProfile(), "i2i-hypothesis-profile")


class _HypothesisProfile:
    """Registers the ``i2i-ci`` hypothesis profile (:mod:`pytest_i2i.strategies`) before hypothesis'
    own plugin loads ``--hypothesis-profile``; does nothing (imports nothing) without that option."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        import importlib.util

        if config.getoption("hypothesis_profile", None) is None or importlib.util.find_spec("hypothesis") is None:
            return
        from pytest_i2i.strategies import register_profile

        register_profile()


def pytest_configure(config: pytest.Config) -> None:
    try:
        options = resolve_options(config)
    except pytest.UsageError:
        if config.getoption("help", False) or config.getoption("version", False):
            return  # --help and --version always work, whatever the environment says (the run stops there)
        raise
    # The weights resolver reads the environment (also in xdist workers and subprocesses).
    if options.weights_dir is not None:
        os.environ[weights.ENV_WEIGHTS_DIR] = str(options.weights_dir)
    if options.offline:
        os.environ[weights.ENV_OFFLINE] = "1"
    if options.weights_mirror:
        os.environ[weights.ENV_MIRROR] = options.weights_mirror
    weights.set_interface("pytest")
    if options.progress:  # read by pytest_i2i.pipeline (also in xdist workers and subprocesses)
        os.environ["I2I_PROGRESS"] = "1"
    # Under torchrun every rank runs the suite and metrics shard their images. Only a run that asked
    # for pytest-i2i gets a process group from us (an unrelated torchrun test run keeps its own).
    uses_i2i = any(source != "default" for source in options.sources.values())
    if uses_i2i and _torchrun_rank() is not None:
        from pytest_i2i.distributed import world

        if world()[1] == 1:
            from pytest_i2i.distributed import init_from_env

            config.stash[_OWN_GROUP_KEY] = init_from_env(options.device)
    config.stash[SESSION_KEY] = I2ISession(options, read_thresholds(config))
    from pytest_i2i.gates import add_recorder, set_policy

    stop_recording = add_recorder(config.stash[SESSION_KEY].record_check)
    remove_policy = set_policy(allow_lost_samples=options.allow_lost_samples)
    config.stash[_STOP_RECORDING_KEY] = lambda: (stop_recording(), remove_policy())
    config.stash[SESSION_KEY].cache_setting = _cache_setting(config, options)
    config.stash[_TESTS_KEY] = {}
    config.stash[_PHASES_KEY] = {}
    _add_metric_fixtures(config)
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_XdistController(config), "i2i-xdist")


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash.get(SESSION_KEY, None)
    if state is None:
        return
    check_arch_name(state.options)
    if state.thresholds:
        check_threshold_names(state.thresholds)


def _torchrun_rank() -> int | None:
    """This process's rank when launched by ``torchrun`` with several processes, else ``None``."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "LOCAL_RANK" in os.environ:
        return int(os.environ.get("RANK", "0"))
    return None


def _cache_setting(config: pytest.Config, options: Any) -> tuple[Path | None, int | None]:
    """(folder, size limit) of the on-disk cache used by the i2i fixtures: ``--i2i-cache-dir``, else
    pytest's own cache folder ``.pytest_cache/d/i2i`` (none with ``-p no:cacheprovider``); a size
    limit of 0 turns it off. Nothing is created until a fixture uses it."""
    from pytest_i2i import cache

    folder = options.cache_dir
    if folder is None and getattr(config, "cache", None) is not None:
        folder = Path(getattr(config.cache, "_cachedir", Path(config.rootpath) / ".pytest_cache")) / "d" / "i2i"
    try:
        size = cache.parse_size(options.cache_max_size) if options.cache_max_size is not None else None
    except Exception as e:  # noqa: BLE001 - I2IInputError, kept out of this import-light module
        raise pytest.UsageError(f"--i2i-cache-max-size (from {options.sources.get('cache_max_size')}): {e}") from None
    return (folder if size != 0 else None), size


def pytest_unconfigure(config: pytest.Config) -> None:
    for key in (_STOP_LISTENING_KEY, _STOP_RECORDING_KEY):
        stop = config.stash.get(key, None)
        if stop is not None:
            stop()
    if config.stash.get(_OWN_GROUP_KEY, False):  # only the group this plugin created
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


class _XdistController:
    """Gives every xdist worker the folder where it writes its part of the report (created on the
    first worker, removed once the parts are merged, so unrelated runs leave nothing behind), and
    rewrites the merged report after each test while the workers run."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.parts_dir: Path | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.parts_dir is None:  # not distributing: the serial hooks below record the tests
            return
        if _note_phase(self.config, report):
            _write_progress(self.config, self.parts_dir)

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


_BUILTIN_FIXTURES = frozenset(list_metrics())
for _name in _BUILTIN_FIXTURES:
    globals()[f"_fixture_{_name}"] = _metric_fixture(_name)


def _add_metric_fixtures(config: pytest.Config) -> None:
    """A fixture for every metric registered outside this module: now (e.g. by a rootdir
    ``conftest.py``) and later in the run (conftests loaded during collection)."""
    import types

    added: set[str] = set(_BUILTIN_FIXTURES)

    def add(spec: Any) -> None:
        if spec.name in added:
            return
        added.add(spec.name)
        holder = types.ModuleType(f"pytest_i2i_metric_fixture_{spec.name}")
        setattr(holder, f"_fixture_{spec.name}", _metric_fixture(spec.name))
        config.pluginmanager.register(holder, f"i2i-metric-{spec.name}")

    for name in list_metrics():
        add(types.SimpleNamespace(name=name))
    config.stash[_STOP_LISTENING_KEY] = on_register(add)


# -- assertions, outcomes, reports ---------------------------------------------------------------
_MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: object, right: object) -> list[str] | None:
    from pytest_i2i.explain import explain_comparison
    from pytest_i2i.result import MetricResult

    state = config.stash.get(SESSION_KEY, None)
    if state is not None and op in _MIRRORED:  # a failed plain `assert result >= t`: into the report too
        import numbers

        if isinstance(left, MetricResult) and isinstance(right, numbers.Real):
            state.record_check(left, {"op": op, "threshold": float(right), "passed": False, "gate": "assert"})
        elif isinstance(right, MetricResult) and isinstance(left, numbers.Real):
            state.record_check(right, {"op": _MIRRORED[op], "threshold": float(left), "passed": False,
                                       "gate": "assert"})
    return explain_comparison(op, left, right)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    state = item.config.stash.get(SESSION_KEY, None)
    if state is not None:
        state.current_test = item.nodeid


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    state = item.config.stash.get(SESSION_KEY, None)
    if state is not None:
        state.current_test = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    session = item.config.stash.get(SESSION_KEY, None)
    if session is None:
        return report
    _skip_at_test(item, report)
    if item.nodeid in session.records:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            session.outcomes[item.nodeid] = report.outcome
    # after the teardown report is made and before it is logged (under xdist: before the worker sends
    # it to the controller, which then merges a part that already holds this test)
    if _note_phase(item.config, report):
        _write_progress(item.config)
    return report


def _skip_at_test(item: pytest.Item, report: pytest.TestReport) -> None:
    """A skip raised inside pytest-i2i (missing weights, no baseline, ...) is reported at the test's
    own location, as a skip marker is, not at the library line that raised it."""
    longrepr = report.longrepr
    if not (report.skipped and isinstance(longrepr, tuple) and len(longrepr) == 3):
        return
    try:
        inside = Path(longrepr[0]).resolve().is_relative_to(_PACKAGE_DIR)
    except (OSError, ValueError):
        return
    if inside:
        path, line = item.reportinfo()[:2]
        report.longrepr = (os.fspath(path), (line or 0) + 1, longrepr[2])


def _phase_text(report: pytest.TestReport) -> str:
    """The skip reason or failure message of one phase's report (also of reports sent by xdist workers)."""
    longrepr = report.longrepr
    if longrepr is None:
        return ""
    if report.skipped:
        if hasattr(report, "wasxfail"):
            return str(report.wasxfail)
        text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        return text.removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(longrepr)
    return text if len(text) <= 4000 else text[:4000] + " …"


def _note_phase(config: pytest.Config, report: pytest.TestReport) -> bool:
    """Record one phase's outcome; True when the test just finished (its teardown was reported)."""
    if _TESTS_KEY not in config.stash:
        return False
    outcome = report.outcome
    if hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "xpassed"
    phases = config.stash[_PHASES_KEY].setdefault(report.nodeid, [])
    phases.append((report.when, outcome, _phase_text(report) if outcome != "passed" else ""))
    if report.when != "teardown":
        return False
    from pytest_i2i.report import outcome_entry

    del config.stash[_PHASES_KEY][report.nodeid]
    config.stash[_TESTS_KEY][report.nodeid] = outcome_entry(phases)
    return True


def _write_progress(config: pytest.Config, parts_dir: Path | None = None) -> None:
    """Rewrite the report (status "incomplete") with what finished so far: a worker's part under
    xdist, the merged report on the controller (``parts_dir``), else the report itself. Only with
    ``--i2i-report`` and once the session used pytest-i2i."""
    state = config.stash.get(SESSION_KEY, None)
    if state is None or state.options.report is None:
        return
    from pytest_i2i.files import write_json_atomic
    from pytest_i2i.report import REPORT_NAME, merge_parts, read_parts

    workerinput = getattr(config, "workerinput", None)
    if parts_dir is not None:
        parts = read_parts(parts_dir)
        if parts:
            write_json_atomic(state.options.report / REPORT_NAME,
                              merge_parts(parts + [_part(config, state, "incomplete")], "incomplete"))
    elif state.records or "outputs" in state.__dict__:
        target = (Path(workerinput[PARTS_DIR_KEY]) / f"{workerinput['workerid']}.json" if workerinput is not None
                  else state.options.report / REPORT_NAME)
        write_json_atomic(target, _part(config, state, "incomplete"))


def _entries(session: I2ISession) -> list[dict[str, Any]]:
    from pytest_i2i.report import metric_entry

    return [metric_entry(test, k, r, session.outcomes.get(test, "passed"), session.checks.get((test, k), []))
            for test, results in session.records.items() for k, r in enumerate(results)]


def _tests_block(config: pytest.Config, session: I2ISession) -> dict[str, dict[str, Any]]:
    """The finished tests' entries, each with the metrics it used."""
    tests = {}
    for nodeid, entry in config.stash.get(_TESTS_KEY, {}).items():
        metrics = session.test_metrics.get(nodeid)
        tests[nodeid] = {**entry, "metrics": list(metrics)} if metrics else dict(entry)
    return tests


def _session_block(config: pytest.Config, session: I2ISession) -> dict[str, Any]:
    block: dict[str, Any] = {"options": {k: v for k, v in session.options.as_dict().items()
                                         if k not in ("report", "cache_dir", "cache_max_size")}}
    if "dataset" in session.__dict__:
        ds = session.dataset
        block["dataset"] = {"n": len(ds), "description": getattr(ds, "description", ""),
                            "source": str(getattr(ds, "source", ""))}
    for key, attr in (("model", "generator"), ("baseline", "baseline_generator")):
        info = session.generator_provenance(attr)  # also known when every output came from the cache
        if info is not None:
            block[key] = info
    config.hook.pytest_i2i_modify_session_info(config=config, info=block)
    return block


def _part(config: pytest.Config, state: I2ISession, status: str) -> dict[str, Any]:
    """This process's report (a worker's part under xdist), paths under the rootdir made relative."""
    from pytest_i2i.report import build_report, relativize

    part = build_report(_entries(state), _session_block(config, state), _generation_errors(state),
                        _tests_block(config, state), status, state.missing_weights)
    return relativize(part, config.rootpath)


def _final_status(session: pytest.Session, exitstatus: int) -> str:
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return "interrupted"
    if session.shouldfail or session.shouldstop:
        return "stopped"
    return "complete"


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
    baseline = session.__dict__.get("baseline_outputs")
    for i, uid in enumerate(ds.uids):
        export_images(report_dir / "images", uid, {
            "input": inputs[i], "output": session.outputs.outputs[i],
            "target": targets[i] if targets is not None else None,
            "baseline": baseline.outputs[i] if baseline is not None else None})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = config.stash.get(SESSION_KEY, None)
    if state is None or _torchrun_rank() not in (None, 0):  # under torchrun rank 0 writes the report
        return
    from pytest_i2i.files import write_json_atomic
    from pytest_i2i.report import merge_parts

    used = bool(state.records) or bool(state.test_metrics) or "outputs" in state.__dict__
    status = _final_status(session, exitstatus)
    part = _part(config, state, status)
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
    report = merge_parts(parts + [part], status) if parts else part
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
    if not report:
        return
    from pytest_i2i.report import terminal_lines

    lines = terminal_lines(report)
    errors = report.get("generation_errors") or {}
    if not lines and not errors:
        return
    terminalreporter.section("pytest-i2i metrics")
    for line in lines:
        terminalreporter.write_line(line)
    for uid, msg in errors.items():
        terminalreporter.write_line(f"generation error: {uid}: {msg}")
    state = config.stash[SESSION_KEY]
    if state.options.report is not None:
        terminalreporter.write_line(f"report: {state.options.report / 'index.html'}")
