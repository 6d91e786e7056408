"""One registry and one factory for every feature backbone (timm / open_clip style).

>>> import pytest_i2i
>>> pytest_i2i.list_backbones()            # doctest: +SKIP
['inception-fid']
>>> bb = pytest_i2i.backbone("inception-fid", weights="random")   # doctest: +SKIP
>>> bb.calibrated
False

``weights`` is ``None`` (find the published file, see :mod:`pytest_i2i.backbones.weights`),
a path to a weights file, or ``"random"`` (seeded random init of the exact architecture, for
tests; every result computed with it is labelled uncalibrated).
"""

from __future__ import annotations

import fnmatch
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_i2i.backbones.weights import PretrainedCfg, resolve_weights
from pytest_i2i.errors import I2IInputError, UnknownNameError, WeightsError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_i2i.images import ImageSet

RANDOM = "random"


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone.

    Attributes:
        name: registry name, e.g. ``"inception-fid"``.
        create: returns the exact architecture with untouched parameters (no weights loaded).
        init_random: ``(model, seed)`` sets every parameter and buffer from the seed.
        pretrained: the published weights files.
        input_size: (H, W) the images are resized to before the forward pass.
        default_resize: the resize mode used when a metric is not told one.
        outputs: names of the feature tensors ``forward`` returns.
        description: one line for ``i2i backbones``.
        channels_last: run convolutions in channels-last memory format (faster for CNNs on CPU
            with oneDNN; results differ from contiguous layout only by float round-off, ~1e-6).
    """

    name: str
    create: Callable[[], nn.Module]
    init_random: Callable[[nn.Module, int], None]
    pretrained: PretrainedCfg
    input_size: tuple[int, int]
    default_resize: str = "clean"
    outputs: tuple[str, ...] = ()
    description: str = ""
    channels_last: bool = False


@dataclass
class Backbone:
    """A loaded backbone: the model in eval mode plus where its weights came from."""

    spec: BackboneSpec
    model: nn.Module
    device: torch.device
    weights_sha256: str
    calibrated: bool
    weights_path: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_size(self) -> tuple[int, int]:
        return self.spec.input_size

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of a canonical batch already at ``input_size``: (N, 3, H, W) in [0, 1]."""
        import torch

        batch = batch.to(self.device, torch.float32)
        if self.spec.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return self.model(batch)

    def iter_features(
        self, images: ImageSet, *, resize: str | None = None, batch_size: int = 32
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Yield the features (on CPU) of ``images`` batch by batch, resized with ``resize``."""
        mode = resize or self.spec.default_resize
        for _, batch in images.iter_batches(batch_size, size=self.input_size, resize=mode):
            yield {k: v.detach().cpu() for k, v in self(batch).items()}

    def features(
        self, images: ImageSet, *, resize: str | None = None, batch_size: int = 32
    ) -> dict[str, torch.Tensor]:
        """All features of ``images`` concatenated: {output name: (N, D)}."""
        import torch

        parts: dict[str, list[torch.Tensor]] = {}
        for out in self.iter_features(images, resize=resize, batch_size=batch_size):
            for k, v in out.items():
                parts.setdefault(k, []).append(v)
        return {k: torch.cat(v) for k, v in parts.items()}


_REGISTRY: dict[str, BackboneSpec] = {}
_LOADED: dict[tuple, Backbone] = {}
_LOCK = threading.Lock()


def register_backbone(spec: BackboneSpec, *, overwrite: bool = False) -> BackboneSpec:
    """Add a backbone to the registry (used by the built-ins and by users' own backbones)."""
    if spec.name in _REGISTRY and not overwrite:
        raise ValueError(f"backbone {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def _ensure_builtins() -> None:
    import pytest_i2i.backbones.builtin  # noqa: F401  (registers on import)


def list_backbones(pattern: str | None = None) -> list[str]:
    """Sorted names of registered backbones, optionally filtered by a shell-style ``pattern``."""
    _ensure_builtins()
    names = sorted(_REGISTRY)
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def get_spec(name: str) -> BackboneSpec:
    _ensure_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("backbone", name, _REGISTRY) from None


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
        name: a name from :func:`list_backbones`.
        weights: ``None`` (find the published file), a file path, or ``"random"``.
        device: torch device (default: CPU).
        seed: the seed of ``weights="random"``.
        weights_dir: searched first for the published file (default ``$I2I_WEIGHTS_DIR``).
        allow_download: allow downloading the published file (default ``$I2I_ALLOW_DOWNLOAD``).

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the known names).
        WeightsNotFound: the published file is nowhere (the message says what to put where).
        WeightsHashMismatch: a file with the published name has the wrong sha256.
        I2IInputError: the weights file does not fit the architecture.

    Loaded backbones are cached per (name, weights file and hash, device), so metrics called
    one after another reuse one model.
    """
    import torch

    spec = get_spec(name)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if isinstance(weights, str) and weights == RANDOM:
        key: tuple = (name, RANDOM, seed, str(dev))
        with _LOCK:
            if key not in _LOADED:
                model = spec.create()
                spec.init_random(model, seed)
                _LOADED[key] = _finish(spec, model, dev, f"random:seed={seed}", False, None, [])
            return _LOADED[key]

    resolved = resolve_weights(name, spec.pretrained, weights, weights_dir=weights_dir, allow_download=allow_download)
    key = (name, str(resolved.path), resolved.sha256, str(dev))
    with _LOCK:
        if key not in _LOADED:
            model = spec.create()
            load_state_dict_file(model, resolved.path, what=f"backbone {name!r}")
            _LOADED[key] = _finish(spec, model, dev, resolved.sha256, resolved.calibrated, resolved.path,
                                   list(resolved.warnings))
        return _LOADED[key]


def _finish(spec, model, dev, sha, calibrated, path, warnings) -> Backbone:
    import torch

    model.eval().requires_grad_(False).to(dev)
    if spec.channels_last:
        model.to(memory_format=torch.channels_last)
    return Backbone(spec, model, dev, sha, calibrated, path, warnings)


def load_state_dict_file(model: nn.Module, path: str | os.PathLike, *, what: str) -> None:
    """Load a weights file into ``model`` safely (``weights_only=True``) and strictly.

    Accepts a plain state_dict or a dict holding one under ``"state_dict"`` / ``"model"``.
    """
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        first_line = (str(e).splitlines() or ["(no message)"])[0][:300]
        raise WeightsError(
            f"cannot load weights file {path} for {what}: {type(e).__name__}: {first_line}. "
            "It is not a readable state_dict (truncated, corrupt, or it needs code execution to unpickle, "
            "which is never done for backbone weights)."
        ) from None
    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for k in ("state_dict", "model"):
            if isinstance(obj.get(k), dict):
                obj = obj[k]
                break
    if not isinstance(obj, dict):
        raise I2IInputError(f"weights file {path} for {what} holds a {type(obj).__name__}, not a state_dict")
    missing, unexpected = _key_diff(model.state_dict(), obj)
    if missing or unexpected:
        raise I2IInputError(
            f"weights file {path} does not fit {what}: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"
        )
    try:
        model.load_state_dict(obj, strict=True)
    except RuntimeError as e:
        raise I2IInputError(f"weights file {path} does not fit {what}: {str(e)[:500]}") from None


def _key_diff(expected: dict, got: dict) -> tuple[list[str], list[str]]:
    return sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
