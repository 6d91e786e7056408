"""One pytest session's evaluation state: dataset, generators, outputs (computed once), metric records.

The plugin creates an :class:`I2ISession` at configure time; fixtures read from it lazily, so
nothing heavy is loaded unless a test asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import pytest

from pytest_i2i.config import I2IOptions
from pytest_i2i.errors import I2IInputError
from pytest_i2i.metrics.registry import metric_spec
from pytest_i2i.result import MetricResult


class I2ISession:
    def __init__(self, options: I2IOptions, thresholds: dict[str, dict[str, Any]]):
        self.options = options
        self.thresholds = thresholds
        self.records: dict[str, list[MetricResult]] = {}
        #: gate verdicts per (test, position of the result in ``records[test]``), for the reports
        self.checks: dict[tuple[str, int], list[dict[str, Any]]] = {}
        #: the node id of the test running now (set by the plugin around each test)
        self.current_test: str | None = None
        self.outcomes: dict[str, str] = {}
        #: the metrics each test asked for (its metric fixtures), so a test skipped before computing
        #: anything is still listed under its metric
        self.test_metrics: dict[str, list[str]] = {}
        #: backbone -> {"file", "message", "tests"}: weights that were missing or refused, reported once
        self.missing_weights: dict[str, dict[str, Any]] = {}
        self._provenance: dict[str, dict[str, str] | None] = {}
        self._aligned: dict[int, tuple[Any, dict[str, Any]]] = {}
        #: (folder, size limit) of the on-disk cache the fixtures use (set by the plugin); None: no cache
        self.cache_setting: tuple[Any, Any] = (None, None)

    @contextmanager
    def cache_scope(self) -> Iterator[None]:
        """Within the block, the library uses this session's on-disk cache (and only there, so
        plain library calls in other tests of the same process are unaffected)."""
        from pytest_i2i import cache

        previous = cache.configure(*self.cache_setting)
        try:
            yield
        finally:
            cache.restore(previous)

    # -- data and generators -------------------------------------------------------------------
    @cached_property
    def dataset(self) -> Any:
        from pytest_i2i.data import load_dataset

        return load_dataset(self.options.data, max_samples=self.options.max_samples)

    def _load_generator(self, spec: str) -> Any:
        from pytest_i2i.generators import load_generator

        opts = self.options
        return load_generator(spec, arch=opts.arch, trust=opts.trust_checkpoint, device=opts.device, seed=opts.seed,
                              arch_kwargs=opts.arch_option, generator_options=opts.generator_option,
                              mode=opts.generator_mode)

    @cached_property
    def generator(self) -> Any:
        if not self.options.model:
            pytest.skip("no generator given: pass --i2i-model=CHECKPOINT")
        return self._load_generator(self.options.model)

    @cached_property
    def baseline_generator(self) -> Any:
        if not self.options.baseline:
            pytest.skip("no baseline given: pass --i2i-baseline=CHECKPOINT")
        return self._load_generator(self.options.baseline)

    def _generate(self, spec: str | None, attr: str) -> Any:
        """Outputs of the generator ``attr`` on the dataset; with the on-disk cache active (see
        :mod:`pytest_i2i.cache`), the generator is loaded only when some output is not cached."""
        from pytest_i2i.cache import get_cache
        from pytest_i2i.generators import generator_key, prompt_field
        from pytest_i2i.generators.caching import cached_generate

        if not spec:
            return getattr(self, attr)  # skips the test: no checkpoint given
        opts = self.options
        ds = self.dataset
        texts = ds.texts(prompt_field(spec, opts.generator_option))
        with self.cache_scope():
            store = get_cache()
            key = None if store is None else generator_key(
                spec, arch=opts.arch, arch_options=opts.arch_option, generator_options=opts.generator_option,
                mode=opts.generator_mode, seed=opts.seed, device=opts.device, trust=opts.trust_checkpoint,
                hasher=store.file_sha256)
            result, provenance = cached_generate(ds.inputs(), texts, load=lambda: getattr(self, attr),
                                                 options=key, store=store, batch_size=opts.batch_size,
                                                 timeout_s=opts.generation_timeout)
        self._provenance[attr] = provenance
        return result

    @cached_property
    def outputs(self) -> Any:
        return self._generate(self.options.model, "generator")

    @cached_property
    def baseline_outputs(self) -> Any:
        return self._generate(self.options.baseline, "baseline_generator")

    def generator_provenance(self, attr: str = "generator") -> dict[str, str] | None:
        """``source``, ``sha256``, ``arch``, ``kind`` of the model under test (``attr="baseline_generator"``:
        of the baseline): from the loaded generator, else from the cache when its outputs were all
        cached; ``None`` if unused."""
        if attr in self.__dict__:
            gen = self.__dict__[attr]
            return {k: str(getattr(gen, k)) for k in ("source", "sha256", "arch", "kind") if hasattr(gen, k)}
        return self._provenance.get(attr)

    # -- aligned views for metrics ---------------------------------------------------------------
    def aligned(self, outputs: Any) -> dict[str, Any]:
        """Inputs, targets, texts and outputs restricted to the samples that generated cleanly.

        Built once per outputs object, so every metric sees the same image sets (the result cache
        fingerprints each set once, see :mod:`pytest_i2i.cache.results`)."""
        done = self._aligned.get(id(outputs))
        if done is not None and done[0] is outputs:
            return done[1]
        views = self._aligned_views(outputs)
        self._aligned[id(outputs)] = (outputs, views)
        return views

    def _aligned_views(self, outputs: Any) -> dict[str, Any]:
        ds = self.dataset
        ok = outputs.ok_indices
        if not ok:
            pytest.fail("the generator produced no valid output for any sample: " + "; ".join(
                f"{ds.uids[i]}: {msg}" for i, msg in sorted(outputs.errors.items())[:5]))
        targets = ds.targets()  # the dataset names its images by uid, and so do the outputs
        views: dict[str, Any] = {
            "inputs": ds.inputs().subset(ok),
            "outputs": outputs.output_images("outputs"),
            "targets": None if targets is None else targets.subset(ok),
        }
        for key, getter in (("instructions", ds.instructions), ("source_captions", ds.source_captions),
                            ("target_captions", ds.target_captions)):
            texts = getter()
            views[key] = None if texts is None else [texts[i] for i in ok]
        return views

    def lost_samples(self, *, baseline: bool = False) -> tuple[int, dict[str, str]]:
        """``(samples asked for, {uid: why it has no output})`` of the model's (or the baseline's) outputs."""
        outputs = self.baseline_outputs if baseline else self.outputs
        uids = self.dataset.uids
        return len(uids), {uids[i]: msg for i, msg in sorted(outputs.errors.items())}

    def default_args(self, metric: str, *, baseline: bool = False) -> tuple[Any, ...]:
        """What a metric fixture called without arguments evaluates: the model's (or the baseline's)
        outputs on the dataset and whatever else the metric compares (its ``MetricSpec.args``:
        targets, inputs, captions, ...), restricted to the samples that generated cleanly."""
        spec = metric_spec(metric)
        if not spec.args:
            raise I2IInputError(f"{metric} compares data the evaluation dataset does not hold; "
                                f"call the fixture with arguments, e.g. {metric}(outputs, ...)")
        v = self.aligned(self.baseline_outputs if baseline else self.outputs)
        missing = [role for role in spec.args if v[role] is None]
        if missing:
            pytest.skip(f"{metric}: the dataset has no {' and no '.join(m.replace('_', ' ') for m in missing)}")
        return tuple(v[role] for role in spec.args)

    # -- records ---------------------------------------------------------------------------------
    def record(self, nodeid: str, result: MetricResult) -> None:
        self.records.setdefault(nodeid, []).append(result)

    def note_metric(self, nodeid: str, name: str) -> None:
        """``nodeid`` uses metric ``name`` (listed in the reports even when it computes nothing)."""
        names = self.test_metrics.setdefault(nodeid, [])
        if name not in names:
            names.append(name)

    def note_missing_weights(self, nodeid: str, error: Any) -> None:
        """Weights of ``error.backbone`` are missing (or refused): remembered once per backbone, with the
        tests that needed them, for the session summary."""
        backbone = getattr(error, "backbone", None) or "?"
        if backbone not in self.missing_weights:
            self.missing_weights[backbone] = {**_download_info(backbone), "message": str(error), "tests": []}
        entry = self.missing_weights[backbone]
        if nodeid not in entry["tests"]:
            entry["tests"].append(nodeid)

    def record_check(self, result: MetricResult, check: dict[str, Any]) -> None:
        """A gate's verdict on ``result``: attached to the record of that result (a result computed
        outside the metric fixtures is recorded for the current test first)."""
        for test, results in self.records.items():
            for k, r in enumerate(results):
                if r is result:
                    self.checks.setdefault((test, k), []).append(check)
                    return
        if self.current_test is not None:
            self.record(self.current_test, result)
            self.checks.setdefault((self.current_test, len(self.records[self.current_test]) - 1), []).append(check)


def _download_info(backbone: str) -> dict[str, Any]:
    """The file that would install ``backbone``'s weights: ``file``, ``size`` (bytes), ``sha256``, ``source``."""
    from pytest_i2i.backbones.registry import get_spec
    from pytest_i2i.backbones.weights import weights_status

    try:
        status = weights_status(get_spec(backbone).pretrained)
    except Exception:  # noqa: BLE001 - an unregistered or unusual backbone: the message still says it all
        return {"file": None, "size": None, "sha256": None, "source": None}
    wf = status.download
    return {"file": wf.filename, "size": wf.size, "sha256": wf.sha256, "source": status.source}


class BoundMetric:
    """A registered metric bound to the session's device, batch size, seed and weights policy.

    ``metric()`` evaluates the model's outputs on the session dataset; ``metric(a, b, ...)``
    evaluates the given inputs. Missing backbone weights skip the test with the exact file to
    install, or fail it under ``--i2i-require-weights``. Every result is recorded for the
    reports and attached to JUnit XML with ``record_property``.
    """

    def __init__(self, session: I2ISession, name: str, nodeid: str,
                 record_property: Callable[[str, object], None]):
        self.session = session
        self.name = name
        self.nodeid = nodeid
        self.record_property = record_property
        self.spec = metric_spec(name)
        session.note_metric(nodeid, name)
        opts = session.options
        self.defaults = {k: v for k, v in (("device", opts.device), ("batch_size", opts.batch_size),
                                           ("seed", opts.seed)) if k in self.spec.accepts}

    def on_baseline(self, **kwargs: Any) -> MetricResult:
        """The metric on the baseline's outputs (``--i2i-baseline``), the counterpart of ``metric()``."""
        __tracebackhide__ = True  # pytest shows the test's line and the message, not this method
        return self._evaluate(self.session.default_args(self.name, baseline=True), kwargs, baseline=True)

    def __call__(self, *args: Any, **kwargs: Any) -> MetricResult:
        __tracebackhide__ = True
        if not args:
            return self._evaluate(self.session.default_args(self.name), kwargs, baseline=False)
        return self._evaluate(args, kwargs, baseline=None)

    def _evaluate(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, baseline: bool | None) -> MetricResult:
        """The metric on ``args``; ``baseline`` says whose session outputs they are (``None``: the
        caller's own data). On session outputs the result counts the samples asked for and names
        those without an output; unless ``--i2i-allow-lost-samples``, a result that lost samples
        fails the test here, so no verdict (a gate or a plain ``assert``) rests on fewer samples
        than it claims."""
        __tracebackhide__ = True
        from pytest_i2i.errors import WeightsError

        missing = [k for k in self.spec.required if k not in kwargs]
        if missing:
            raise I2IInputError(f"{self.name} needs {', '.join(f'{k}=' for k in missing)} (e.g. "
                                f"{self.name}({', '.join(f'{k}=...' for k in missing)}))")
        call_kwargs = {**self.defaults, **kwargs}
        chosen = self._chosen_weights(call_kwargs)
        if chosen is not None:
            call_kwargs["weights"] = chosen
        try:
            with self.session.cache_scope():
                from pytest_i2i.backbones.factory import weights_unchanged
                from pytest_i2i.cache.results import cached_call

                result = cached_call(self.name, self.spec.function, args, call_kwargs,
                                     still_valid=lambda r: weights_unchanged(r, call_kwargs.get("weights")))
        except WeightsError as e:
            from pytest_i2i.backbones.weights import weights_message_once

            self.session.note_missing_weights(self.nodeid, e)
            if self.session.options.require_weights:
                pytest.fail(f"{self.name}: --i2i-require-weights is set and {weights_message_once(e)}", pytrace=False)
            # one line per test; the full message (files, places searched, how to install) is in the
            # session summary, once per backbone
            pytest.skip(f"{self.name}: {str(e).splitlines()[0]} (how to install: the pytest-i2i summary)")
        if baseline is not None:
            result.n_requested, lost = self.session.lost_samples(baseline=baseline)
            result.lost_samples = list(lost)
            if lost:
                result.warnings.append(lost_samples_warning(result.n, result.n_requested, lost,
                                                            "baseline" if baseline else "model"))
            if baseline:
                result.extra["evaluated"] = "baseline"
        self.session.record(self.nodeid, result)
        suffix = ".baseline" if baseline else ""
        self.record_property(f"i2i.{self.name}{suffix}", result.value)
        self.record_property(f"i2i.{self.name}{suffix}.n", result.n)
        self.record_property(f"i2i.{self.name}{suffix}.n_requested", result.n_requested)
        if not result.complete:
            self.record_property(f"i2i.{self.name}{suffix}.lost_samples", ", ".join(result.lost_samples))
            if not self.session.options.allow_lost_samples:
                pytest.fail(f"{self.name}: {result.lost_description()}; they have no valid output "
                            f"({'; '.join(result.warnings[-1:])}). A value on the other {result.n} would claim "
                            "more than the data shows: fix the generator or the data, or pass "
                            "--i2i-allow-lost-samples to evaluate the samples that generated", pytrace=False)
        return result

    def _chosen_weights(self, call_kwargs: dict[str, Any]) -> str | None:
        """``--i2i-weights BACKBONE=FILE|random`` for the backbone this call uses (unless the call names weights)."""
        if "weights" in call_kwargs or "weights" not in self.spec.accepts:
            return None
        used = call_kwargs.get("backbone") or self.spec.backbone
        return self.session.options.weights.get(used) if isinstance(used, str) else None

    def __repr__(self) -> str:
        return f"<i2i metric fixture {self.name}>"


def lost_samples_warning(n: int, n_requested: int, lost: dict[str, str], whose: str = "model", k: int = 10) -> str:
    """The warning a result computed on fewer samples than asked for carries: counts and, for the
    first ``k`` lost samples, why (the generator's error)."""
    items = list(lost.items())
    why = "; ".join(f"{uid}: {msg}" for uid, msg in items[:k]) + ("; ..." if len(items) > k else "")
    return (f"computed on {n} of {n_requested} samples: the {whose} produced no valid output for "
            f"{len(items)} ({why})")
