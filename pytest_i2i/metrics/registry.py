"""One registry for every metric: name → :class:`MetricSpec` (timm-style, import-light).

>>> import pytest_i2i
>>> pytest_i2i.list_metrics(kind="set")                 # doctest: +SKIP
['cmmd', 'fd_vit', 'fid', 'kid']
>>> pytest_i2i.metric_spec("ssim").higher_is_better     # doctest: +SKIP
True

Everything that needs a list of metrics derives it from here: the plugin's fixtures and
``[tool.i2i.thresholds]`` directions, the report, ``i2i score --metrics``, ``i2i validate``, the
sensitivity engine, the directions of precomputed judgment scores and ``pytest_i2i.__all__``.
A metric registered with :func:`register_metric` (the built-ins in
:mod:`pytest_i2i.metrics.builtin`, a user's own in a ``conftest.py``) gets all of them.

This module imports only the standard library and never imports the modules it registers:
``MetricSpec.fn`` is a ``"module:function"`` reference resolved on first use.

The calling convention every front-end follows (one rule, documented here):

* positional arguments are the data, in the order of ``MetricSpec.args``:
  symmetric paired metrics ``(a, b)``; asymmetric paired metrics ``(preds, target)``, the image
  judged first (e.g. ``patchgan_realism(outputs, inputs)``); set metrics ``(real, fake)``
  (pytorch-fid / clean-fid order); ``(images, texts)`` for text-image metrics;
  ``(inputs, outputs, source_texts, target_texts)`` for the edit direction (InstructPix2Pix's order);
* everything else is keyword-only, with the same names wherever it applies (:data:`COMMON_KWARGS`)
  and the same defaults (:data:`DEFAULT_BATCH_SIZE`, :data:`DEFAULT_SEED`, ...);
* the feature extractor is ``backbone=`` (a name or a loaded backbone); a network that is not a
  feature extractor is named after what it is (``discriminator=`` for a PatchGAN critic,
  ``segmenter=`` for FCN-score's segmentation network), because it is used differently.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_i2i.errors import I2IInputError, UnknownNameError

#: the computation a metric performs (``MetricSpec.kind``)
KINDS: dict[str, str] = {
    "paired": "one value per pair of images (per-sample values with a bootstrap CI)",
    "set": "one value comparing two image sets, e.g. outputs and targets (FID, KID, CMMD)",
    "single-set": "one value for one image set (Inception Score)",
    "text-image": "one value per image and its text (CLIPScore)",
    "edit-direction": "one value per edit from its input, output, source and target captions "
                      "(CLIP directional similarity)",
    "label-map": "one value per output image against its input label map (FCN-score, layout contrast)",
}

#: what a metric compares by default (``MetricSpec.args``): the session's data a fixture passes
ROLES: dict[str, str] = {
    "outputs": "the model's outputs on the dataset",
    "targets": "the dataset's target images",
    "inputs": "the dataset's input images",
    "instructions": "the dataset's edit instructions",
    "source_captions": "the dataset's captions of the inputs",
    "target_captions": "the dataset's captions of the wanted outputs",
}

#: the keyword arguments every front-end takes where they apply, with one meaning each
COMMON_KWARGS = ("backbone", "weights", "device", "batch_size", "resize", "confidence", "n_resamples", "seed")
DEFAULT_BATCH_SIZE = 16
DEFAULT_SEED = 0
DEFAULT_CONFIDENCE = 0.95
DEFAULT_N_RESAMPLES = 2000


@dataclass(frozen=True)
class MetricSpec:
    """How one metric is called and read.

    Attributes:
        name: registry name, also its fixture's and its ``[tool.i2i.thresholds]`` key.
        fn: ``"package.module:function"`` (imported on first use) or the function itself. It
            returns a :class:`~pytest_i2i.result.MetricResult`.
        kind: one of :data:`KINDS`.
        args: the roles (:data:`ROLES`) of its positional arguments: what a fixture called without
            arguments compares. Empty: the metric needs data the session cannot supply (call its
            fixture with arguments).
        higher_is_better: its direction (also the default gate direction).
        backbone: default backbone name; ``None`` for weight-free metrics.
        needs_weights: it needs a weights file (missing weights skip its tests, or fail them under
            ``--i2i-require-weights``).
        per_sample: the result has per-sample values and a bootstrap CI.
        symmetric: ``fn(a, b) == fn(b, a)``.
        best: its value on identical inputs (the identity property), ``None`` where it has none.
        batch_independent: the value does not depend on ``batch_size`` (to 1e-6).
        reference: the reference implementation its numerics are checked against.
        description: one line for ``i2i metrics`` and the docs.
        aliases: other names of this metric in precomputed score files (case-insensitive),
            e.g. ``("CLIP_I",)``.
        kernel: for the engines (sensitivity): ``"module:function"`` computing the per-pair values
            on tensors: on image batches ``(a, b) -> (N,)`` for weight-free metrics, on backbone
            feature dicts ``(fa, fb) -> {"value": (N,), <pool>: (N,)}`` otherwise.
        pooled: other per-pair poolings the kernel returns (and the result keeps in ``extra``),
            measured by the sensitivity engine as ``<name>_<pool>``.
        statistic: for set metrics, ``"module:function"`` ``(x, y) -> float`` on feature rows.
        feature: the backbone output ``kernel`` / ``statistic`` read.
        min_size: the smallest image side the metric accepts.
        required: keyword arguments without a default that every call must pass (a network that
            is not a feature extractor: ``discriminator=``, ``segmenter=``).
        test_kwargs: ``"module:function"`` returning the keyword arguments the test battery calls
            it with (e.g. random weights, a small backbone); ``None``: ``{"weights": "random"}`` for
            metrics with a backbone, ``{}`` otherwise.
    """

    name: str
    fn: str | Callable[..., Any]
    kind: str
    args: tuple[str, ...]
    higher_is_better: bool
    backbone: str | None = None
    needs_weights: bool = False
    per_sample: bool = True
    symmetric: bool = False
    best: float | None = None
    batch_independent: bool = True
    reference: str = ""
    description: str = ""
    aliases: tuple[str, ...] = ()
    kernel: str | Callable[..., Any] | None = None
    pooled: tuple[str, ...] = ()
    statistic: str | Callable[..., Any] | None = None
    feature: str | None = None
    min_size: int = 0
    required: tuple[str, ...] = ()
    test_kwargs: str | Callable[[], dict[str, Any]] | None = None
    _resolved: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise I2IInputError(f"metric name {self.name!r} must be a Python identifier (it names a fixture)")
        if self.kind not in KINDS:
            raise UnknownNameError("metric kind", self.kind, list(KINDS))
        for role in self.args:
            if role not in ROLES:
                raise UnknownNameError(f"argument role of metric {self.name!r}", role, list(ROLES))

    @property
    def function(self) -> Callable[..., Any]:
        """The metric function (imported on first use)."""
        return self._resolve("fn")

    def resolve(self, attr: str) -> Callable[..., Any] | None:
        """``kernel``, ``statistic`` or ``test_kwargs`` as a callable (imported on first use), or ``None``."""
        return None if getattr(self, attr) is None else self._resolve(attr)

    def _resolve(self, attr: str) -> Callable[..., Any]:
        ref = getattr(self, attr)
        if callable(ref):
            return ref
        if attr not in self._resolved:
            module, _, name = ref.partition(":")
            self._resolved[attr] = getattr(importlib.import_module(module), name)
        return self._resolved[attr]

    @property
    def accepts(self) -> frozenset[str]:
        """The :data:`COMMON_KWARGS` the function takes (all of them when it takes ``**kwargs``)."""
        if "accepts" not in self._resolved:
            params = inspect.signature(self.function).parameters
            if any(p.kind is p.VAR_KEYWORD for p in params.values()):
                self._resolved["accepts"] = frozenset(COMMON_KWARGS)
            else:
                self._resolved["accepts"] = frozenset(k for k in COMMON_KWARGS if k in params)
        return self._resolved["accepts"]

    def matches(self, name: str) -> bool:
        """Whether ``name`` is this metric's name or one of its aliases (case-insensitive)."""
        low = name.lower()
        return low == self.name.lower() or low in (a.lower() for a in self.aliases)


_REGISTRY: dict[str, MetricSpec] = {}
_LISTENERS: list[Callable[[MetricSpec], None]] = []
_LOCK = threading.RLock()


def register_metric(spec: MetricSpec | None = None, /, *, overwrite: bool = False, **fields: Any) -> MetricSpec:
    """Add a metric to the registry: ``register_metric(MetricSpec(...))`` or ``register_metric(name=..., ...)``.

    A registered metric gets a pytest fixture, a ``[tool.i2i.thresholds]`` gate, a report row, a
    place in ``i2i score``, ``i2i validate`` and ``i2i sensitivity`` (as its kind allows).

    Raises:
        I2IInputError: the name is taken (unless ``overwrite``), or the spec is invalid.

    Example:
        >>> from pytest_i2i import register_metric
        >>> register_metric(name="mean_brightness_gap", fn="mypkg.metrics:brightness_gap",  # doctest: +SKIP
        ...                 kind="paired", args=("targets", "outputs"), higher_is_better=False)
    """
    if spec is None:
        spec = MetricSpec(**fields)
    elif fields:
        raise I2IInputError("pass a MetricSpec or its fields, not both")
    with _LOCK:
        if spec.name in _REGISTRY and not overwrite:
            raise I2IInputError(f"metric {spec.name!r} is already registered (pass overwrite=True to replace it)")
        _REGISTRY[spec.name] = spec
        listeners = list(_LISTENERS)
    for listener in listeners:
        listener(spec)
    return spec


def unregister_metric(name: str) -> None:
    """Remove a metric (for tests and plugins that register temporarily)."""
    with _LOCK:
        _REGISTRY.pop(name, None)


def on_register(listener: Callable[[MetricSpec], None]) -> Callable[[], None]:
    """Call ``listener(spec)`` for every metric registered from now on; returns a function that stops it."""
    with _LOCK:
        _LISTENERS.append(listener)

    def stop() -> None:
        with _LOCK:
            if listener in _LISTENERS:
                _LISTENERS.remove(listener)

    return stop


def _ensure_builtins() -> None:
    # The package's __init__ registers the built-ins; importing it here covers a direct import of
    # this module (the registry itself imports none of the metric modules).
    importlib.import_module("pytest_i2i.metrics.builtin")


def list_metrics(pattern: str | None = None, kind: str | None = None, *,
                 needs_weights: bool | None = None) -> list[str]:
    """Sorted names of registered metrics, filtered by a shell-style ``pattern``, a ``kind``
    (:data:`KINDS`) and whether they need weights."""
    _ensure_builtins()
    if kind is not None and kind not in KINDS:
        raise UnknownNameError("metric kind", kind, list(KINDS))
    with _LOCK:
        specs = list(_REGISTRY.values())
    return sorted(s.name for s in specs
                  if (pattern is None or fnmatch.fnmatch(s.name, pattern))
                  and (kind is None or s.kind == kind)
                  and (needs_weights is None or s.needs_weights == needs_weights))


def metric_specs() -> list[MetricSpec]:
    """Every registered spec, sorted by name."""
    _ensure_builtins()
    with _LOCK:
        return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def metric_spec(name: str) -> MetricSpec:
    """The spec of a registered metric.

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the known names).
    """
    _ensure_builtins()
    with _LOCK:
        spec = _REGISTRY.get(name)
        known = sorted(_REGISTRY)
    if spec is None:
        raise UnknownNameError("metric", name, known)
    return spec


def find_metric(name: str) -> MetricSpec | None:
    """The spec whose name or alias is ``name`` (case-insensitive), or ``None`` (e.g. a column of a
    score file that is not a registered metric)."""
    for spec in metric_specs():
        if spec.matches(name):
            return spec
    return None


def get_metric(name: str) -> Callable[..., Any]:
    """The function of a registered metric (the factory's counterpart of ``backbone(name)``)."""
    return metric_spec(name).function
