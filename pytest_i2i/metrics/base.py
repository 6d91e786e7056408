"""What every metric front-end shares: backbone resolution, timing, and building the result."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from pytest_i2i.backbones.backbone import Backbone
from pytest_i2i.backbones.factory import backbone as build_backbone
from pytest_i2i.errors import I2IInputError
from pytest_i2i.images.imageset import ImageSet
from pytest_i2i.images.resize import check_resize_mode
from pytest_i2i.metrics.functional.bootstrap import bootstrap_mean_ci
from pytest_i2i.result import MetricResult

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

    Each image is decoded once: its size is compared with its partner's (a note names pairs of
    different sizes, both are resized to the backbone input size) and the decoded image goes to
    :meth:`Backbone.features`. Non-finite features raise, naming the image.
    """
    if batch_size < 1:
        raise I2IInputError(f"batch_size must be >= 1, got {batch_size}")
    h, w = bb.input_size
    for start in range(0, len(sa), batch_size):
        idx = list(range(start, min(start + batch_size, len(sa))))
        xa, xb = [sa[i] for i in idx], [sb[i] for i in idx]
        crop = "centre-cropped to the input aspect ratio and " if bb.spec.center_crop else ""
        notes = [
            f"pair {start + i} ({sa.names[i]}, {sb.names[i]}): sizes differ ({x.shape[1]}x{x.shape[2]} vs {y.shape[1]}x{y.shape[2]}); "
            f"each image was {crop}resized to the backbone input {h}x{w} with resize={resize!r}"
            for i, x, y in zip(idx, xa, xb) if x.shape != y.shape
        ]
        feats = []
        for s, imgs in ((sa, xa), (sb, xb)):
            decoded = ImageSet([s.names[i] for i in idx], [lambda im=im: im for im in imgs], s.label)
            f = bb.features(decoded, resize=resize, batch_size=batch_size)
            for key, v in f.items():
                bad = ~torch.isfinite(v.flatten(1)).all(1)
                if bad.any():
                    raise I2IInputError(f"{s.label}: backbone {bb.name!r} gave non-finite {key!r} features for "
                                        f"{', '.join(s.names[idx[j]] for j in bad.nonzero().flatten()[:3].tolist())}")
            feats.append(f)
        yield feats[0], feats[1], notes
