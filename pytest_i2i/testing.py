"""The property battery every registered metric passes, and the small seeded backbones it runs on.

In the spirit of torchmetrics' ``MetricTester``: one battery, parametrised over
:func:`pytest_i2i.list_metrics`, so a metric is covered the moment it is registered (the project's
``tests/test_metric_battery.py`` runs it; a user can run it over their own metrics)::

    import pytest
    from pytest_i2i.testing import PROPERTIES, check_property, cases

    @pytest.mark.parametrize("metric, prop", cases())
    def test_metric_property(metric, prop):
        check_property(metric, prop)

Each metric declares which properties apply to it in its :class:`~pytest_i2i.MetricSpec`:

* ``identity``: identical inputs give ``MetricSpec.best`` (when declared);
* ``symmetry``: ``metric(a, b) == metric(b, a)`` (when ``symmetric``);
* ``batch_size``: the same values for every ``batch_size`` (when ``batch_independent``);
* ``json``: the result survives ``to_json`` / ``from_json`` unchanged;
* ``bad_input``: an image with a NaN gives an :class:`~pytest_i2i.I2IError` naming the sample;
* ``provenance``: name, direction, n, per-sample values and CI, backbone, weights hash and
  calibration are filled in as the spec says.

Inputs are made from the kind of the metric (two image sets for paired and set metrics, images and
texts for text metrics, images and label maps for label-map metrics) using the bundled photos.
Metrics with a backbone run on seeded random weights (``MetricSpec.test_kwargs`` may pick a
small backbone of the same family: :data:`TINY_CLIP`, :data:`TINY_VIT`): every number here is
SYNTHETIC and UNCALIBRATED, good for properties only.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from typing import Any

from pytest_i2i.metrics.registry import MetricSpec, list_metrics, metric_spec

PROPERTIES = ("identity", "symmetry", "batch_size", "json", "bad_input", "provenance")

#: a 1.8M-parameter CLIP of open_clip's architecture (2 layers, width 64, 64 px), random weights only
TINY_CLIP = "test-tiny-clip"
#: timm's smallest ViT (5.7M parameters), random weights only
TINY_VIT = "timm:vit_tiny_patch16_224"

_TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
_REGISTER_LOCK = threading.Lock()
_TOL = 1e-6


def register_test_backbones() -> None:
    """Register :data:`TINY_CLIP` (idempotent). Its weights are always ``"random"``."""
    from pytest_i2i.backbones.registry import list_backbones, register_backbone

    with _REGISTER_LOCK:
        if TINY_CLIP in list_backbones():
            return
        import open_clip

        from pytest_i2i.backbones.clip import clip_spec

        model_name = "i2i-test-tiny-clip"
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, f"{model_name}.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(_TINY_CLIP_CONFIG, f)
            open_clip.add_model_config(path)
        register_backbone(clip_spec(TINY_CLIP, model_name, "random", hf_hub="pytest-i2i/test-tiny-clip/",
                                    input_size=(64, 64)), overwrite=True)


# -- test keyword arguments of the built-in metrics (referenced by their MetricSpec.test_kwargs) ------
def inception_kwargs() -> dict[str, Any]:
    return {"weights": "random"}


def kid_kwargs() -> dict[str, Any]:
    return {"weights": "random", "subsets": 10, "subset_size": 2}


def inception_score_kwargs() -> dict[str, Any]:
    return {"weights": "random", "splits": 1}


def vit_kwargs() -> dict[str, Any]:
    return {"backbone": TINY_VIT, "weights": "random"}


def clip_kwargs() -> dict[str, Any]:
    register_test_backbones()
    return {"backbone": TINY_CLIP, "weights": "random"}


def patchgan_kwargs() -> dict[str, Any]:
    import torch

    from pytest_i2i.generators.pix2pix import NLayerDiscriminator

    torch.manual_seed(0)
    return {"discriminator": NLayerDiscriminator(n_layers=1, ndf=8)}


def fcn_score_kwargs() -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    return {"segmenter": torch.nn.Conv2d(3, 3, 3, padding=1), "num_classes": 3}


def layout_kwargs() -> dict[str, Any]:
    return {"backbone": TINY_VIT, "weights": "random", "variant": "within"}


#: a DreamSim encoder of two tiny branches (timm's ViT-Ti/16 and :data:`TINY_CLIP`'s vision tower)
#: at 64 px, random weights only
TINY_DREAMSIM = "test-tiny-dreamsim"


def register_tiny_dreamsim() -> None:
    """Register :data:`TINY_DREAMSIM` (idempotent). Its weights are always ``"random"``."""
    from pytest_i2i.backbones.registry import list_backbones, register_backbone

    register_test_backbones()
    with _REGISTER_LOCK:
        if TINY_DREAMSIM in list_backbones():
            return
        from pytest_i2i.backbones.dreamsim import dreamsim_spec
        from pytest_i2i.backbones.dreamsim_model import Branch
        from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile

        branches = (Branch("dino", "vit_tiny_patch16_224", model_kwargs=(("img_size", 64),)),
                    Branch("clip", "i2i-test-tiny-clip", member="tiny_clip.pth.tar"))
        register_backbone(dreamsim_spec(
            TINY_DREAMSIM, branches, pretrained=PretrainedCfg((WeightsFile("test-tiny-dreamsim.zip"),)),
            lora_dir="tiny_lora", has_dino=False, description="a tiny DreamSim encoder for tests (random weights)",
            input_size=(64, 64)), overwrite=True)


def dreamsim_kwargs() -> dict[str, Any]:
    register_tiny_dreamsim()
    return {"backbone": TINY_DREAMSIM, "weights": "random"}


# -- the battery -------------------------------------------------------------------------------------
def applies(spec: MetricSpec, prop: str) -> bool:
    """Whether ``prop`` (one of :data:`PROPERTIES`) applies to the metric."""
    if prop == "identity":
        return spec.best is not None and spec.kind in ("paired", "set")
    if prop == "symmetry":
        return spec.symmetric
    if prop == "batch_size":
        return spec.batch_independent and "batch_size" in spec.accepts
    return prop in PROPERTIES


def cases(metrics: list[str] | None = None) -> list[tuple[str, str]]:
    """``(metric, property)`` pairs to test: every registered metric (or ``metrics``) with every
    property that applies to it."""
    names = list_metrics() if metrics is None else metrics
    return [(m, p) for m in names for p in PROPERTIES if applies(metric_spec(m), p)]


def test_kwargs(spec: MetricSpec) -> dict[str, Any]:
    """The keyword arguments the battery calls ``spec``'s metric with."""
    fn = spec.resolve("test_kwargs")
    if fn is not None:
        return dict(fn())
    return {"weights": "random"} if spec.backbone is not None else {}


def example_inputs(spec: MetricSpec, n: int = 3) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Two argument tuples ``(first, second)`` for ``spec``'s kind: equal roles hold different data
    in the two tuples (a photo and a brightened copy), so identity is ``fn(*first with a copy of
    itself)`` and symmetry swaps the image arguments. Images are bundled photos (real), texts and
    label maps are synthetic."""
    import torch

    from pytest_i2i.images.samples import sample_images

    size = max(64, spec.min_size)
    photos = torch.stack(list(sample_images(size=size)))[:n]
    other = (photos * 0.8 + 0.15).clamp(0, 1)
    texts_a = [f"a photo number {i}" for i in range(n)]
    texts_b = [f"a painting number {i}" for i in range(n)]
    if spec.kind in ("paired", "set"):
        return (photos, other), (other, photos)
    if spec.kind == "single-set":
        return (photos,), (other,)
    if spec.kind == "text-image":
        return (photos, texts_a), (other, texts_b)
    if spec.kind == "edit-direction":
        return (photos, other, texts_a, texts_b), (other, photos, texts_a, texts_b)
    if spec.kind == "label-map":
        labels = torch.zeros(n, size, size, dtype=torch.int64)
        labels[:, size // 2:, :] = 1
        labels[:, :, size // 2:] += 1
        return (photos, labels), (other, labels)
    raise ValueError(f"no example inputs for kind {spec.kind!r}")


def _run(spec: MetricSpec, args: tuple[Any, ...], **extra: Any) -> Any:
    return spec.function(*args, **{**test_kwargs(spec), **extra})


def _values(result: Any) -> list[float]:
    return [result.value] + list(result.per_sample or []) + list(result.ci or []) + (
        [result.std] if result.std is not None else [])


def _close(a: list[float], b: list[float], what: str) -> None:
    assert len(a) == len(b), f"{what}: {len(a)} values vs {len(b)}"
    for x, y in zip(a, b):
        same = (math.isinf(x) and x == y) or abs(x - y) <= _TOL * max(1.0, abs(x), abs(y))
        assert same, f"{what}: {a} vs {b}"


def check_property(metric: str, prop: str, n: int = 3) -> None:
    """Assert property ``prop`` of the registered ``metric`` (raises ``AssertionError`` naming it)."""
    from pytest_i2i.errors import I2IError
    from pytest_i2i.result import UNCALIBRATED_WARNING, MetricResult

    spec = metric_spec(metric)
    first, second = example_inputs(spec, n)
    if prop == "identity":
        same = (first[0], first[0].clone()) + first[2:]
        r = _run(spec, same)
        assert r.value == spec.best or abs(r.value - spec.best) <= 1e-5 * max(1.0, abs(spec.best)), (
            f"{metric} of identical inputs is {r.value}, its declared best value is {spec.best}")
    elif prop == "symmetry":
        swapped = (first[1], first[0]) + first[2:]
        _close(_values(_run(spec, first)), _values(_run(spec, swapped)), f"{metric}(a, b) vs {metric}(b, a)")
    elif prop == "batch_size":
        _close(_values(_run(spec, first, batch_size=n)), _values(_run(spec, first, batch_size=1)),
               f"{metric} with batch_size={n} vs 1")
    elif prop == "json":
        r = _run(spec, first)
        assert MetricResult.from_json(r.to_json()) == r, f"{metric}: the result changes through JSON"
    elif prop == "bad_input":
        bad = first[0].clone()
        bad[1, 0, 0, 0] = float("nan")
        try:
            _run(spec, (bad,) + first[1:])
        except I2IError as e:
            assert "[1]" in str(e), f"{metric}: the error does not name the bad sample: {e}"
        else:
            raise AssertionError(f"{metric} accepted an image with a NaN")
    elif prop == "provenance":
        r = _run(spec, first)
        assert r.name == spec.name and r.higher_is_better == spec.higher_is_better, (r.name, r.higher_is_better)
        assert r.n == n, f"{metric}: n = {r.n} for {n} samples"
        if spec.per_sample:
            assert r.per_sample is not None and len(r.per_sample) == n and r.ci is not None, (
                f"{metric}: per-sample values and a CI expected")
            assert r.sample_names is not None and len(r.sample_names) == n
        if spec.backbone is not None:
            assert r.backbone and r.weights_sha256, f"{metric}: backbone provenance missing"
            assert r.calibrated is False and UNCALIBRATED_WARNING in r.warnings, (
                f"{metric}: random weights must be labelled uncalibrated")
        assert r.wall_time_s >= 0
    else:
        raise ValueError(f"unknown property {prop!r}; known: {', '.join(PROPERTIES)}")
