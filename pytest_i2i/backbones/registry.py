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
        weights_target: the submodule a weights file is loaded into (default: the whole model),
            for models wrapped in an adapter that adds preprocessing or output selection.
        filter_state_dict: ``(state_dict, target_module) -> state_dict`` applied before loading
            (e.g. timm's ``checkpoint_filter_fn`` that resamples position embeddings).
        backbone_class: the :class:`Backbone` subclass to build (e.g. one that also encodes text).
        center_crop: crop the centre to the input aspect ratio before resizing (CLIP / timm
            evaluation preprocessing); otherwise the whole image is resized.
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
    weights_target: Callable[[nn.Module], nn.Module] | None = None
    filter_state_dict: Callable[[dict, nn.Module], dict] | None = None
    backbone_class: type[Backbone] | None = None
    center_crop: bool = False


class FeatureMemo:
    """Bounded in-memory LRU of per-image features, keyed by the sha256 of the resized pixels.

    Lives on one loaded :class:`Backbone` (so weights and device are fixed); the resize mode is
    part of the pixels. ``max_bytes`` bounds the memory (default 256 MiB); 0 disables it.
    """

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        from collections import OrderedDict

        self.max_bytes = max_bytes
        self._items: OrderedDict[str, dict] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(image: torch.Tensor) -> str:
        import hashlib

        data = image.detach().cpu().contiguous().float()
        return hashlib.sha256(str(tuple(data.shape)).encode() + data.numpy().tobytes()).hexdigest()

    def get(self, key: str) -> dict | None:
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item

    def put(self, key: str, features: dict) -> None:
        size = sum(v.numel() * v.element_size() for v in features.values())
        if size > self.max_bytes or key in self._items:
            return
        self._items[key] = features
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self._bytes -= sum(v.numel() * v.element_size() for v in old.values())

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0


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
    memo: FeatureMemo = field(default_factory=lambda: FeatureMemo())

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
        """Yield the features (on CPU) of ``images`` batch by batch, resized with ``resize``.

        Features are memoised per image content (sha256 of the resized pixels), so metrics that
        share this backbone run one forward pass per image (see :class:`FeatureMemo`).
        """
        import torch

        mode = resize or self.spec.default_resize
        for _, batch in images.iter_batches(batch_size, size=self.input_size, resize=mode,
                                            center_crop=self.spec.center_crop):
            use_memo = self.memo.max_bytes > 0
            keys = [self.memo.key(img) if use_memo else "" for img in batch]
            found = [self.memo.get(k) if use_memo else None for k in keys]
            missing = [i for i, f in enumerate(found) if f is None]
            if missing:
                computed = self(batch[missing])
                for j, i in enumerate(missing):
                    found[i] = {name: v[j].detach().cpu().clone() for name, v in computed.items()}
                    if use_memo:
                        self.memo.put(keys[i], found[i])
            yield {name: torch.stack([f[name] for f in found]) for name in found[0]}

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
_FAMILIES: dict[str, tuple[Callable[[str], BackboneSpec], str]] = {}
_LOADED: dict[tuple, Backbone] = {}
_LOCK = threading.Lock()


def register_backbone(spec: BackboneSpec, *, overwrite: bool = False) -> BackboneSpec:
    """Add a backbone to the registry (used by the built-ins and by users' own backbones)."""
    if spec.name in _REGISTRY and not overwrite:
        raise ValueError(f"backbone {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def register_backbone_family(prefix: str, resolver: Callable[[str], BackboneSpec], help: str) -> None:
    """Names ``"<prefix>:<rest>"`` are built on demand by ``resolver(rest)`` (e.g. ``"timm:<model>"``).

    ``resolver`` raises :class:`UnknownNameError` for a ``rest`` it does not know.
    """
    _FAMILIES[prefix] = (resolver, help)


def _ensure_builtins() -> None:
    import pytest_i2i.backbones.builtin  # noqa: F401  (registers on import)


def list_backbones(pattern: str | None = None) -> list[str]:
    """Sorted names of registered backbones, optionally filtered by a shell-style ``pattern``."""
    _ensure_builtins()
    names = sorted(_REGISTRY)
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def list_backbone_families() -> dict[str, str]:
    """``{prefix: usage}`` of the name families built on demand, e.g. ``{"timm": "timm:<model name>"}``."""
    _ensure_builtins()
    return {prefix: help for prefix, (_, help) in sorted(_FAMILIES.items())}


def get_spec(name: str) -> BackboneSpec:
    """The spec of a registered name, or of a family name such as ``"timm:<model>"``."""
    _ensure_builtins()
    if name in _REGISTRY:
        return _REGISTRY[name]
    prefix, sep, rest = name.partition(":")
    if sep and prefix in _FAMILIES:
        return _FAMILIES[prefix][0](rest)
    known = list(_REGISTRY) + [help for _, help in _FAMILIES.values()]
    raise UnknownNameError("backbone", name, known)


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
            target = spec.weights_target(model) if spec.weights_target else model
            load_state_dict_file(target, resolved.path, what=f"backbone {name!r}", transform=spec.filter_state_dict)
            _LOADED[key] = _finish(spec, model, dev, resolved.sha256, resolved.calibrated, resolved.path,
                                   list(resolved.warnings))
        return _LOADED[key]


def _finish(spec, model, dev, sha, calibrated, path, warnings) -> Backbone:
    import torch

    model.eval().requires_grad_(False).to(dev)
    if spec.channels_last:
        model.to(memory_format=torch.channels_last)
    return (spec.backbone_class or Backbone)(spec, model, dev, sha, calibrated, path, warnings)


def load_state_dict_file(
    model: nn.Module, path: str | os.PathLike, *, what: str,
    transform: Callable[[dict, nn.Module], dict] | None = None,
) -> None:
    """Load a weights file into ``model`` safely and strictly.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(weights_only=True)``, which never runs code. Accepts a plain state_dict or a
    dict holding one under ``"state_dict"`` / ``"model"``. ``transform`` adapts the keys or
    tensors first (e.g. timm's checkpoint filters).
    """
    import torch

    try:
        if Path(path).suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path), device="cpu")
        else:
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
    if transform is not None:
        obj = transform(obj, model)
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
