"""What every metric front-end shares: argument checks, backbone resolution, timing, building the result.

Every public front-end is decorated with :func:`frontend`, which checks the common keyword
arguments (:data:`pytest_i2i.metrics.registry.COMMON_KWARGS`) by name before any work, so each
metric refuses a bad ``batch_size``, ``confidence``, ``n_resamples``, ``seed``, ``resize`` or
``device`` with the same :class:`~pytest_i2i.errors.I2IInputError` naming the argument.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import torch

from pytest_i2i.backbones.backbone import Backbone
from pytest_i2i.backbones.factory import backbone as build_backbone
from pytest_i2i.checks import CHECKS, check_argument
from pytest_i2i.distributed import map_shards
from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.imageset import ImageSet, as_pairs
from pytest_i2i.images.resize import check_resize_mode
from pytest_i2i.metrics.functional.bootstrap import bootstrap_mean_ci
from pytest_i2i.result import MetricResult

F = TypeVar("F", bound=Callable[..., Any])


def check_option(name: str, value: Any, metric: str = "") -> None:
    """Refuse a bad value of a public keyword argument, naming it (``metric`` prefixes the message):
    the rules of :data:`pytest_i2i.checks.CHECKS`, plus ``resize`` and ``device``."""
    if name in CHECKS:
        check_argument(name, value, metric)
    elif name == "resize" and value is not None:
        check_resize_mode(value)
    elif name == "device" and value is not None:
        check_device(value, metric)


def check_device(device: Any, metric: str = "") -> torch.device:
    """A usable torch device from a string or ``torch.device``, or an :class:`I2IInputError` naming it."""
    where = f"{metric}: " if metric else ""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise I2IInputError(f"{where}device {device!r} is not a torch device (cpu, cuda, cuda:N, mps): {e}") from None
    if dev.type == "meta":
        raise I2IInputError(f"{where}device 'meta' holds no data; metrics need a real device (cpu, cuda, mps)")
    if dev.type == "cuda" and (not torch.cuda.is_available()
                               or (dev.index is not None and dev.index >= torch.cuda.device_count())):
        raise I2IInputError(f"{where}device {device!r} is not available on this machine "
                            f"({torch.cuda.device_count()} CUDA device(s))")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise I2IInputError(f"{where}device 'mps' is not available on this machine")
    if dev.type not in ("cpu", "cuda", "mps", "xpu"):
        raise I2IInputError(f"{where}device {device!r} is not supported (cpu, cuda, cuda:N, mps)")
    return dev


def frontend(fn: F) -> F:
    """Decorate a metric front-end: its keyword arguments with a rule (:data:`pytest_i2i.checks.CHECKS`,
    ``resize``, ``device``) are checked by name before it runs."""
    signature = inspect.signature(fn)
    checked = [name for name in signature.parameters if name in CHECKS or name in ("resize", "device")]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise I2IInputError(f"{fn.__name__}: {e}") from None
        bound.apply_defaults()
        for name in checked:
            check_option(name, bound.arguments[name], fn.__name__)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def resolve_backbone(
    backbone: str | Backbone | None, default: str, weights: str | os.PathLike | None, device: Any
) -> Backbone:
    """A loaded :class:`Backbone` from a name (``None`` → ``default``) or an already loaded one."""
    if isinstance(backbone, Backbone):
        if weights is not None:
            raise I2IInputError("pass either a loaded backbone or weights=, not both")
        return backbone
    return build_backbone(backbone or default, weights=weights, device=device)


def resolve_resize(resize: str | None, bb: Backbone | None) -> str:
    if resize is None:
        return bb.spec.default_resize if bb is not None else "clean"
    return check_resize_mode(resize)


class Timer:
    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timer]:
    t = Timer()
    start = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - start


def backbone_fields(bb: Backbone) -> dict[str, Any]:
    """The provenance fields of a result computed with ``bb`` (and a warning when autocast was on)."""
    from pytest_i2i.pipeline import autocast_note

    note = autocast_note() if bb.device.type == "cuda" else None
    return {"backbone": bb.name, "weights_sha256": bb.weights_sha256, "calibrated": bb.calibrated,
            "warnings": list(bb.warnings) + ([note] if note else [])}


def per_sample_result(
    name: str, values: Any, sample_names: Sequence[str], *, higher_is_better: bool, confidence: float,
    n_resamples: int, seed: int, **fields: Any,
) -> MetricResult:
    """The result of a per-sample metric: the mean, its percentile-bootstrap CI, the values and names.

    ``fields`` are the remaining :class:`MetricResult` fields (backbone provenance, resize, wall
    time, warnings, extra). Every per-sample metric builds its result here.
    """
    v = torch.as_tensor(values, dtype=torch.float64).numpy()
    ci = bootstrap_mean_ci(v, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return MetricResult(name=name, value=float(v.mean()), higher_is_better=higher_is_better, n=len(v), ci=ci,
                        confidence=confidence, per_sample=v.tolist(), sample_names=list(sample_names), **fields)


def iter_pair_features(
    sa: ImageSet, sb: ImageSet, bb: Backbone, resize: str, batch_size: int, *, start: int = 0
) -> Iterator[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]]:
    """Yield ``(features_a, features_b, notes)`` for chunks of ``batch_size`` pairs.

    ``start`` is the position of the first pair in the whole set (for shards, see
    :mod:`pytest_i2i.distributed`); notes count from it.

    Each image is decoded once, a chunk at a time by the prep threads (:meth:`ImageSet.decoded`):
    its size is compared with its partner's (a note names pairs of different sizes, both are
    resized to the backbone input size) and the decoded image goes to :meth:`Backbone.features`.
    Non-finite features raise, naming the image.
    """
    if batch_size < 1:
        raise I2IInputError(f"batch_size must be >= 1, got {batch_size}")
    h, w = bb.input_size
    for start in range(0, len(sa), batch_size):
        idx = list(range(start, min(start + batch_size, len(sa))))
        da, db = sa.decoded(idx), sb.decoded(idx)  # in prep threads: the backbone hashes and prepares them
        xa, xb = list(da), list(db)
        crop = "centre-cropped to the input aspect ratio and " if bb.spec.center_crop else ""
        notes = [
            f"pair {start + i} ({sa.names[i]}, {sb.names[i]}): sizes differ ({x.shape[1]}x{x.shape[2]} vs {y.shape[1]}x{y.shape[2]}); "
            f"each image was {crop}resized to the backbone input {h}x{w} with resize={resize!r}"
            for i, x, y in zip(idx, xa, xb) if x.shape != y.shape
        ]
        feats = []
        for s, decoded in ((sa, da), (sb, db)):
            f = bb.features(decoded, resize=resize, batch_size=batch_size)
            for key, v in f.items():
                bad = ~torch.isfinite(v.flatten(1)).all(1)
                if bad.any():
                    raise I2IInputError(f"{s.label}: backbone {bb.name!r} gave non-finite {key!r} features for "
                                        f"{', '.join(s.names[idx[j]] for j in bad.nonzero().flatten()[:3].tolist())}")
            feats.append(f)
        yield feats[0], feats[1], notes


def paired_feature_metric(
    name: str,
    higher_is_better: bool,
    kernel: Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor]], dict[str, torch.Tensor]],
    a: Any,
    b: Any,
    *,
    default_backbone: str,
    backbone: str | Backbone | None,
    weights: str | os.PathLike | None,
    device: Any,
    batch_size: int,
    resize: str | None,
    confidence: float,
    n_resamples: int,
    seed: int,
    extra: dict[str, Any],
    names: tuple[str, str] = ("a", "b"),
) -> MetricResult:
    """A per-pair metric on backbone features: the one implementation behind CLIP-I, DINO-I and the
    patch distance (and any registered metric with a feature ``kernel``).

    ``kernel(features_a, features_b)`` returns ``{"value": (n,), other: (n, ...)}`` for a chunk of
    pairs; ``value`` is the per-sample metric, the others go into ``extra`` as per-pair lists.
    """
    with timed() as t:
        bb = resolve_backbone(backbone, default_backbone, weights, device)
        mode = resolve_resize(resize, bb)
        sa, sb = as_pairs(a, b, names=names)

        def shard(indices: range) -> tuple[dict[str, torch.Tensor], list[str]]:
            parts: dict[str, list[torch.Tensor]] = {}
            notes: list[str] = []
            for fa, fb, chunk_notes in iter_pair_features(sa.subset(indices), sb.subset(indices), bb, mode,
                                                          batch_size, start=indices.start):
                for key, v in kernel(fa, fb).items():
                    parts.setdefault(key, []).append(v)
                notes += chunk_notes
            return {k: torch.cat(v) for k, v in parts.items()}, notes

        out, notes = map_shards(len(sa), batch_size, shard)
        values = out.pop("value")
    fields = backbone_fields(bb)
    fields["warnings"] += notes
    return per_sample_result(
        name, values, sa.names, higher_is_better=higher_is_better, confidence=confidence, n_resamples=n_resamples,
        seed=seed, resize=mode, wall_time_s=t.seconds, extra={**extra, **{k: v.tolist() for k, v in out.items()}},
        **fields,
    )
