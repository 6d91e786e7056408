"""pytest-i2i: a pytest plugin and metric-validation harness for image-to-image models.

The public API is imported lazily (PEP 562), so ``import pytest_i2i`` (which pytest does for
every run once the plugin is installed) imports neither torch, timm nor open_clip.

Metrics: every registered metric is a top-level name (``pytest_i2i.ssim``, ``pytest_i2i.fid``, ...;
:func:`list_metrics` lists them, :func:`register_metric` adds one). Gates: :func:`assert_metric`,
:func:`assert_no_regression`. Backbones: :func:`backbone`, :func:`list_backbones`. Images:
:func:`load_images`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # metric helpers (the metrics themselves come from the registry, see __getattr__)
    "frechet_distance": "pytest_i2i.metrics.frechet",
    "layout_contrast": "pytest_i2i.metrics.layout",
    "fcn_score": "pytest_i2i.metrics.layout",
    "patchgan_realism": "pytest_i2i.metrics.patchgan",
    "FeatureStats": "pytest_i2i.metrics.functional.frechet",
    "compute_stats": "pytest_i2i.metrics.frechet",
    # the metric registry
    "MetricSpec": "pytest_i2i.metrics.registry",
    "register_metric": "pytest_i2i.metrics.registry",
    "list_metrics": "pytest_i2i.metrics.registry",
    "get_metric": "pytest_i2i.metrics.registry",
    # gates
    "assert_metric": "pytest_i2i.gates",
    "assert_no_regression": "pytest_i2i.gates",
    "check_metric": "pytest_i2i.gates",
    "check_no_regression": "pytest_i2i.gates",
    "metric_spec": "pytest_i2i.metrics.registry",
    # backbones
    "backbone": "pytest_i2i.backbones.factory",
    "list_backbones": "pytest_i2i.backbones.registry",
    "register_backbone": "pytest_i2i.backbones.registry",
    "Backbone": "pytest_i2i.backbones.backbone",
    "BackboneSpec": "pytest_i2i.backbones.spec",
    "PretrainedCfg": "pytest_i2i.backbones.weights",
    "WeightsFile": "pytest_i2i.backbones.weights",
    # generators
    "load_generator": "pytest_i2i.generators",
    # images
    "load_images": "pytest_i2i.images",
    "ImageSet": "pytest_i2i.images",
    "sample_images": "pytest_i2i.images",
    # pipeline and scale-out
    "configure_pipeline": "pytest_i2i.pipeline",
    "map_shards": "pytest_i2i.distributed",
    # datasets
    "load_dataset": "pytest_i2i.data",
    "sample_dataset": "pytest_i2i.data",
    # metric validation against human judgments
    "load_judgments": "pytest_i2i.validation.judgments",
    "load_scores": "pytest_i2i.validation.judgments",
    "JudgmentSet": "pytest_i2i.validation.judgments",
    "correlate": "pytest_i2i.validation.correlate",
    "validate": "pytest_i2i.validation.validation_report",
    # perturbations and metric sensitivity
    "Perturbation": "pytest_i2i.perturb",
    "local_edit": "pytest_i2i.perturb",
    "run_sensitivity": "pytest_i2i.validation.sensitivity",
    # results and errors
    "MetricResult": "pytest_i2i.result",
    "I2IError": "pytest_i2i.errors",
    "I2IInputError": "pytest_i2i.errors",
    "UnknownNameError": "pytest_i2i.errors",
    "JudgmentError": "pytest_i2i.errors",
    "WeightsNotFound": "pytest_i2i.errors",
    "WeightsHashMismatch": "pytest_i2i.errors",
}

def _metric_names() -> list[str]:
    from pytest_i2i.metrics.registry import list_metrics  # standard library only: no torch

    return list_metrics()


__all__ = sorted(set(_LAZY) | set(_metric_names()))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif name in _metric_names():
        from pytest_i2i.metrics.registry import get_metric

        value = get_metric(name)
    else:
        raise AttributeError(f"module 'pytest_i2i' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_metric_names()))
