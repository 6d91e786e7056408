"""Whole metric results in the on-disk cache, for the pytest plugin's metric fixtures.

The feature cache makes a warm run skip forward passes, but weight-free metrics (SSIM,
CIEDE2000, ...) and set-level maths (FID's 2048-d eigendecompositions, KID's kernels) would still
be recomputed every run. A metric fixture call (:class:`pytest_i2i.session.BoundMetric`) is
therefore cached as a whole: key = metric name, every argument (image sets by the sha256 of each
decoded image and their names, texts verbatim, numbers and strings as given), plus
:data:`~pytest_i2i.cache.KEY_SCHEMA` and the package version. A call with an argument that cannot
be fingerprinted (a loaded backbone object, a custom callable) is not cached.

A cached result names the backbone and weights it was computed with. The weights a call would
use *now* are not part of the key (resolving them is the backbone layer's job): the caller
passes ``still_valid``, a check run on a cached result before it is reused; the plugin passes
:func:`pytest_i2i.backbones.factory.weights_unchanged`, so replacing a weights file (or
``--i2i-weights-dir``) recomputes the result. Metric values are stored as JSON
(:meth:`~pytest_i2i.result.MetricResult.to_dict`), which round-trips floats exactly.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_i2i.cache import get_cache, make_key
from pytest_i2i.cache.store import load_bundles, save_bundles

RESULTS = "results"
_IMAGE_SET_HASHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _Unkeyable(Exception):
    pass


def fingerprint(value: Any, *, path_like: bool = False) -> Any:
    """A JSON-able description of ``value`` that changes whenever its content does.

    With ``path_like`` (positional metric arguments), a string naming an existing folder or file
    is described by its content (each image's sha256, or the file's sha256), never by its name.

    Raises:
        _Unkeyable: no safe description (the call is then not cached).
    """
    from pytest_i2i.images.digest import tensor_sha256
    from pytest_i2i.images.imageset import ImageSet, load_images

    if path_like and isinstance(value, (str, os.PathLike)) and os.path.exists(value):
        if os.path.isdir(value):
            return fingerprint(load_images(value))
        value = Path(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, ImageSet):
        if value not in _IMAGE_SET_HASHES:  # an ImageSet's loaders are fixed: hash each set object once
            _IMAGE_SET_HASHES[value] = [tensor_sha256(value[i]) for i in range(len(value))]
        return {"images": _IMAGE_SET_HASHES[value], "names": list(value.names), "label": value.label}
    if isinstance(value, os.PathLike):
        p = Path(value)
        if p.is_file():
            store = get_cache()
            return {"file": str(p), "sha256": store.file_sha256(p) if store else None}
        raise _Unkeyable
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) or v is None for v in value):
        return list(value)
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: fingerprint(v) for k, v in value.items()}
    raise _Unkeyable


def cached_call(
    name: str, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any], *,
    still_valid: Callable[[Any], bool] | None = None,
) -> Any:
    """``fn(*args, **kwargs)`` (a metric returning a MetricResult), served from the cache when possible.

    Args:
        name: the metric's name (part of the key).
        fn: the metric.
        args, kwargs: its arguments; a call with an argument that cannot be fingerprinted runs
            uncached.
        still_valid: ``still_valid(result) -> bool`` is asked before a cached result is reused
            (e.g. whether the weights it was computed with are still those the call would load);
            ``False`` recomputes it. Default: a cached result is always valid.
    """
    from pytest_i2i.result import MetricResult

    store = get_cache()
    if store is None:
        return fn(*args, **kwargs)
    try:
        if isinstance(kwargs.get("weights"), str) and kwargs["weights"] != "random":
            kwargs = {**kwargs, "weights": Path(kwargs["weights"])}
        key = make_key(kind=RESULTS, metric=name, args=[fingerprint(a, path_like=True) for a in args],
                       kwargs={k: fingerprint(v) for k, v in sorted(kwargs.items())})
    except Exception:  # noqa: BLE001 - not fingerprintable (or unreadable): the metric runs and reports it
        return fn(*args, **kwargs)
    hit = load_bundles(store, RESULTS, [key]).get(key)
    if hit is not None:
        result = MetricResult.from_dict(hit[1]["result"])
        if still_valid is None or still_valid(result):
            return result
    result = fn(*args, **kwargs)
    if isinstance(result, MetricResult):
        save_bundles(store, RESULTS, {key: ({}, {"result": result.to_dict()})})
    return result
