"""The one factory of loaded backbones: :func:`backbone` (timm's ``create_model``, open_clip's ``create_model``).

>>> import pytest_i2i
>>> bb = pytest_i2i.backbone("inception-fid", weights="random")
>>> bb.calibrated
False

``weights`` is ``None`` (find the published file, see :mod:`pytest_i2i.backbones.weights`),
a path to a weights file, or ``"random"`` (seeded random init of the exact architecture, for
tests; every result computed with it is labelled uncalibrated).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_i2i.backbones.backbone import Backbone
from pytest_i2i.backbones.registry import get_spec
from pytest_i2i.backbones.spec import BackboneSpec
from pytest_i2i.backbones.weights import local_paths, resolve_weights

if TYPE_CHECKING:
    import torch
    from torch import nn

RANDOM = "random"

_LOADED: dict[tuple, Backbone] = {}
_LOCK = threading.Lock()


def backbone(
    name: str,
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    *,
    seed: int = 0,
    weights_dir: str | os.PathLike | None = None,
    allow_download: bool | None = None,
) -> Backbone:
    """Build (or reuse) the backbone ``name`` with its weights.

    Args:
        name: a name from :func:`~pytest_i2i.backbones.registry.list_backbones`, or of a family.
        weights: ``None`` (find the published file), a file path, or ``"random"``.
        device: torch device (default: CPU).
        seed: the seed of ``weights="random"``.
        weights_dir: searched first for the published file (default ``$I2I_WEIGHTS_DIR``).
        allow_download: allow downloading the published file (default ``$I2I_ALLOW_DOWNLOAD``).

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the known names).
        WeightsNotFound: the published file is nowhere (the message says what to put where).
        WeightsHashMismatch: a file with the published name has the wrong sha256.
        CheckpointError: the weights file cannot be read safely (truncated, corrupt, pickled code).
        I2IInputError: the weights file does not fit the architecture.

    Loaded backbones are cached per (name, weights file and hash, device), so metrics called
    one after another reuse one model.
    """
    import torch

    from pytest_i2i.checkpoint import load_state_dict_file

    spec = get_spec(name)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if isinstance(weights, str) and weights == RANDOM:
        key: tuple = (name, RANDOM, seed, str(dev))
        with _LOCK:
            if key not in _LOADED:
                def build_random() -> nn.Module:
                    model = spec.create()
                    spec.init_random(model, seed)
                    return model

                _LOADED[key] = _finish(spec, build_random, dev, f"random:seed={seed}", False, None, [])
            return _LOADED[key]

    resolved, parts, sha, calibrated, warnings = _resolve_all(name, spec, weights, weights_dir, allow_download)
    key = (name, str(resolved.path), sha, str(dev))
    with _LOCK:
        if key not in _LOADED:
            def build_pretrained() -> nn.Module:
                model = spec.create()
                if spec.load_weights is not None:
                    spec.load_weights(model, resolved.path, {c: p.path for c, p in parts.items()})
                    return model
                target = spec.weights_target(model) if spec.weights_target else model
                load_state_dict_file(target, resolved.path, what=f"backbone {name!r}",
                                     transform=spec.filter_state_dict)
                return model

            _LOADED[key] = _finish(spec, build_pretrained, dev, sha, calibrated, resolved.path, warnings)
        return _LOADED[key]


def _resolve_all(name: str, spec: BackboneSpec, weights, weights_dir, allow_download):
    """The backbone's file and its components' files, with the sha256 that identifies them all (the
    file's own sha256 when there are no components), their joint calibration and warnings."""
    _recall_weight_hashes(spec, weights, weights_dir)
    resolved = resolve_weights(name, spec.pretrained, weights, weights_dir=weights_dir, allow_download=allow_download)
    parts = {}
    for component in spec.components:
        cspec = get_spec(component)
        _recall_weight_hashes(cspec, None, weights_dir)
        parts[component] = resolve_weights(component, cspec.pretrained, None, weights_dir=weights_dir,
                                           allow_download=allow_download)
    if not parts:
        return resolved, parts, resolved.sha256, resolved.calibrated, list(resolved.warnings)
    import hashlib

    joined = "+".join([resolved.sha256] + [f"{c}:{p.sha256}" for c, p in parts.items()])
    sha = hashlib.sha256(joined.encode()).hexdigest()
    warnings = list(resolved.warnings) + [w for p in parts.values() for w in p.warnings]
    return resolved, parts, sha, resolved.calibrated and all(p.calibrated for p in parts.values()), warnings


def weights_unchanged(result: Any, weights: str | os.PathLike | None = None) -> bool:
    """Whether :func:`backbone` would now load the weights a result was computed with.

    ``result`` is anything with the :class:`~pytest_i2i.result.MetricResult` provenance fields
    (``backbone``, ``weights_sha256``, ``calibrated``); ``weights`` is the ``weights=`` argument
    the metric was called with. Weight-free results and seeded random weights are always
    unchanged. Nothing is built: the weights are resolved and hashed (through the on-disk cache's
    remembered hashes when one is active), so the plugin can pass this as ``still_valid`` to
    :func:`pytest_i2i.cache.results.cached_call` and recompute a result whose weights file was
    replaced. Any problem resolving the weights counts as changed (the metric then reports it).
    """
    if result.backbone is None or str(result.weights_sha256).startswith(f"{RANDOM}:"):
        return True
    try:
        spec = get_spec(result.backbone)
        _, _, sha, calibrated, _ = _resolve_all(result.backbone, spec, weights, None, None)
    except Exception:  # noqa: BLE001 - any problem: recompute, and let the metric report it
        return False
    return sha == result.weights_sha256 and calibrated == result.calibrated


def _finish(spec, build, dev, sha, calibrated, path, warnings) -> Backbone:
    """The :class:`Backbone` whose model ``build()`` constructs on first use (eval mode, on ``dev``)."""
    def build_on_device() -> nn.Module:
        import torch

        model = build()
        model.eval().requires_grad_(False).to(dev)
        if spec.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    from pytest_i2i.cache import get_cache

    if get_cache() is None:  # no on-disk cache: every feature needs the model, build it now
        return (spec.backbone_class or Backbone)(spec, build_on_device(), dev, sha, calibrated, path, warnings)
    bb = (spec.backbone_class or Backbone)(spec, None, dev, sha, calibrated, path, warnings)
    del bb.__dict__["model"]
    bb.__dict__["_build_model"] = build_on_device
    return bb


def _recall_weight_hashes(spec: BackboneSpec, weights: str | os.PathLike | None,
                          weights_dir: str | os.PathLike | None) -> None:
    """With an on-disk cache active, hash the weights file that will be used through it: its sha256
    is remembered across runs by (path, size, mtime, ctime, inode) and fed to the process-wide
    memo of :func:`pytest_i2i.files.sha256_file`, so a warm run re-reads no weights."""
    from pytest_i2i.cache import get_cache

    store = get_cache()
    if store is None:
        return
    if weights is not None:
        candidates = [Path(weights).expanduser()]
    else:
        candidates = local_paths(spec.pretrained, weights_dir)
    for path in candidates:  # in resolution order: only the file that will be used is hashed
        try:
            if not path.is_file():
                continue
            store.file_sha256(path)
        except OSError:
            pass
        return
