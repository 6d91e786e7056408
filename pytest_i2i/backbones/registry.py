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
from typing import TYPE_CHECKING, Any

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
    """Bounded in-memory LRU of per-image features, keyed like the on-disk cache.

    Lives on one loaded :class:`Backbone`; keys are :func:`pytest_i2i.cache.features.feature_key`
    (backbone, weights, preprocessing and the sha256 of the image before resizing).
    ``max_bytes`` bounds the memory (default 32 MiB, about 2000 images of Inception features, so
    FID, KID and IS on one CI-sized set share their forward passes while peak memory stays
    independent of N on large sets; the on-disk cache covers the rest); 0 disables it.
    """

    def __init__(self, max_bytes: int = 32 * 2**20) -> None:
        from collections import OrderedDict

        self.max_bytes = max_bytes
        self._items: OrderedDict[str, dict] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __contains__(self, key: str) -> bool:
        return key in self._items

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
    """A loaded backbone: the model in eval mode plus where its weights came from.

    While an on-disk feature cache is active (:mod:`pytest_i2i.cache`), :func:`backbone` builds
    the model lazily, on the first access of ``model`` (in practice the first feature that is
    neither memoised nor cached), so a fully cached run never constructs the network or reads
    its weights file; a weights file that does not load then raises at that first use.
    """

    spec: BackboneSpec
    model: nn.Module
    device: torch.device
    weights_sha256: str
    calibrated: bool
    weights_path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    memo: FeatureMemo = field(default_factory=lambda: FeatureMemo())

    def __getattr__(self, name: str):
        # Only reached when ``model`` is not built yet (see :func:`_finish`).
        build = self.__dict__.get("_build_model")
        if name != "model" or build is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        with _BUILD_LOCK:
            if "model" not in self.__dict__:
                self.__dict__["model"] = build()
        return self.__dict__["model"]

    @property
    def model_built(self) -> bool:
        """Whether the network has been constructed (it is built on the first cache miss)."""
        return "model" in self.__dict__

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_size(self) -> tuple[int, int]:
        return self.spec.input_size

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of a canonical batch already at ``input_size``: (N, 3, H, W) in [0, 1].

        Runs under ``torch.inference_mode``; on CUDA the batch is copied from pinned memory
        without blocking, and the forward pass runs under ``torch.autocast`` only when
        :func:`pytest_i2i.pipeline.configure_pipeline` asked for it (never on CPU).
        """
        import contextlib

        import torch

        from pytest_i2i.pipeline import autocast_dtype

        cast = autocast_dtype(self.device)
        batch = batch.to(torch.float32)
        if self.device.type == "cuda":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        else:
            batch = batch.to(self.device)
        if self.spec.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        amp = torch.autocast("cuda", dtype=cast) if cast is not None else contextlib.nullcontext()
        with torch.inference_mode(), amp:
            out = self.model(batch)
        return {k: v.float() for k, v in out.items()} if cast is not None else out

    def iter_features(
        self, images: ImageSet, *, resize: str | None = None, batch_size: int = 32
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Yield the features (on CPU) of ``images`` batch by batch, resized with ``resize``.

        Each image's features come from the first of: the in-memory memo of this backbone
        (:class:`FeatureMemo`, so metrics sharing a backbone run one forward pass per image),
        the on-disk cache when one is active (:mod:`pytest_i2i.cache`; key: backbone, weights
        sha256, resize mode, input size, centre crop, dtype, device type and the sha256 of the
        decoded image *before* cropping and resizing, so a warm run decodes and hashes but never
        resizes), and batched forward passes over the remaining images, which are decoded and
        resized by :meth:`ImageSet.iter_batches` (DataLoader workers). Cached values are
        bit-identical to computed ones.
        """
        from pytest_i2i.cache import get_cache
        from pytest_i2i.cache.features import preprocessing
        from pytest_i2i.images.resize import check_resize_mode

        mode = check_resize_mode(resize or self.spec.default_resize)
        if batch_size < 1:
            raise I2IInputError(f"batch_size must be >= 1, got {batch_size}")
        store = get_cache()
        prep = preprocessing(self, mode)
        if store is None:
            yield from self._iter_features_memo(images, prep, mode, batch_size)
        else:
            yield from self._iter_features_cached(images, prep, mode, batch_size, store)

    def _iter_features_memo(self, images: ImageSet, prep: dict, mode: str,
                            batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        """Without a disk cache: one pass; the memo is keyed by the resized pixels."""
        import torch

        from pytest_i2i.cache.features import feature_key, tensor_sha256

        use_memo = self.memo.max_bytes > 0
        for _, batch in images.iter_batches(batch_size, size=self.input_size, resize=mode,
                                            center_crop=self.spec.center_crop):
            keys = [feature_key({**prep, "resized": True}, tensor_sha256(img)) if use_memo else "" for img in batch]
            found = [self.memo.get(k) if use_memo else None for k in keys]
            missing = [i for i, f in enumerate(found) if f is None]
            if missing:
                # One copy per output and batch, rows as views: memo entries then live in a few
                # large blocks instead of many small chunks that fragment the heap as N grows.
                computed = {name: v.detach().cpu().clone()
                            for name, v in self._forward_rows(batch[missing], len(batch)).items()}
                for j, i in enumerate(missing):
                    found[i] = {name: v[j] for name, v in computed.items()}
                    if use_memo:
                        self.memo.put(keys[i], found[i])
            yield {name: torch.stack([f[name] for f in found]) for name in found[0]}  # type: ignore[index]

    def _iter_features_cached(self, images: ImageSet, prep: dict, mode: str, batch_size: int,
                              store: Any) -> Iterator[dict[str, torch.Tensor]]:
        """With a disk cache: hash every decoded image, then forward only the images found neither
        in the memo nor on disk (decoded again and resized in :meth:`ImageSet.iter_batches`)."""
        import torch

        from pytest_i2i.cache.features import FEATURES, feature_key, load_bundles, save_bundles, tensor_sha256

        use_memo = self.memo.max_bytes > 0
        n = len(images)
        last_start = (n - 1) // batch_size * batch_size  # images from here on form the last (short) batch

        def rows(i: int) -> int:  # the size of image i's batch in a run without any cache
            return batch_size if i < last_start else n - last_start

        keys = [feature_key(prep, tensor_sha256(images[i])) for i in range(n)]
        on_disk = {k for k in keys if store.path(FEATURES, k).is_file()}
        to_compute = [i for i, k in enumerate(keys) if k not in on_disk and not (use_memo and k in self.memo)]
        groups = [[i for i in to_compute if i < last_start], [i for i in to_compute if i >= last_start]]
        batches = [images.subset(g).iter_batches(batch_size, size=self.input_size, resize=mode,
                                                 center_crop=self.spec.center_crop) if g else iter(())
                   for g in groups]
        computed: dict[int, dict[str, torch.Tensor]] = {}

        def compute_until(i: int) -> None:
            g = int(i >= last_start)
            while i not in computed:
                idx, batch = next(batches[g])  # idx: positions in ``groups[g]``
                out = self._forward_rows(batch, rows(i))
                fresh = {}
                for j, pos in enumerate(idx):
                    feats = {name: v[j].detach().cpu().clone() for name, v in out.items()}
                    computed[groups[g][pos]] = feats
                    fresh[keys[groups[g][pos]]] = (feats, {})
                save_bundles(store, FEATURES, fresh)

        for start in range(0, len(images), batch_size):
            chunk = range(start, min(start + batch_size, len(images)))
            found: dict[int, dict] = {}
            for i in chunk:
                hit = self.memo.get(keys[i]) if use_memo else None
                if hit is not None:
                    found[i] = hit
            stored = load_bundles(store, FEATURES, [keys[i] for i in chunk if i not in found and keys[i] in on_disk])
            for i in chunk:
                if i in found:
                    continue
                if keys[i] in stored:
                    found[i] = stored[keys[i]][0]
                elif keys[i] in on_disk and i not in computed:  # vanished or damaged since the scan
                    out = self._forward_rows(self._preprocess(images[i], mode)[None], rows(i))
                    found[i] = {name: v[0].detach().cpu().clone() for name, v in out.items()}
                    save_bundles(store, FEATURES, {keys[i]: (found[i], {})})
                else:
                    compute_until(i)
                    found[i] = computed.pop(i)
                if use_memo:
                    self.memo.put(keys[i], found[i])
            yield {name: torch.stack([found[i][name] for i in chunk]) for name in found[chunk[0]]}

    def _forward_rows(self, batch: torch.Tensor, rows: int) -> dict[str, torch.Tensor]:
        """``self(batch)`` with the batch zero-padded to ``rows`` images (outputs sliced back).

        CPU kernels pick their algorithm by batch size, so an image's features can differ in the
        last bits between a batch of 1 and a batch of 8. Images left to compute after memo and
        cache hits are run in batches padded to the size their batch has in a run without any
        cache (``batch_size``, or the remainder for the last batch), so results are bit-identical
        with a cold, warm or partly damaged cache, and without one.
        """
        import torch

        n = batch.shape[0]
        if n < rows:
            batch = torch.cat([batch, batch.new_zeros((rows - n, *batch.shape[1:]))])
        out = self(batch)
        return {name: v[:n] for name, v in out.items()} if n < rows else out

    def _preprocess(self, image: torch.Tensor, mode: str) -> torch.Tensor:
        """One decoded (3, H, W) image → (3, *input_size): centre crop (if the spec says so), resize."""
        from pytest_i2i.images.imageset import prepare_image

        return prepare_image(image, self.input_size, mode, self.spec.center_crop)

    def load_cached_texts(self, texts: list[str], into: dict[str, Any]) -> list[str]:
        """Fill ``into[text] = (embedding, truncated)`` from the on-disk cache; returns the texts not found."""
        from pytest_i2i.cache import get_cache
        from pytest_i2i.cache.features import TEXT, load_bundles, text_key

        store = get_cache()
        if store is None or not texts:
            return texts
        keys = {t: text_key(self, t) for t in texts}
        stored = load_bundles(store, TEXT, keys.values())
        for t, k in keys.items():
            if k in stored:
                tensors, meta = stored[k]
                into[t] = (tensors["embedding"], bool(meta.get("truncated", False)))
        return [t for t in texts if t not in into]

    def save_cached_texts(self, texts: list[str], source: dict[str, Any]) -> None:
        """Store ``source[text] = (embedding, truncated)`` of ``texts`` in the on-disk cache (if active)."""
        from pytest_i2i.cache import get_cache
        from pytest_i2i.cache.features import TEXT, save_bundles, text_key

        store = get_cache()
        if store is not None and texts:
            save_bundles(store, TEXT, {text_key(self, t): ({"embedding": source[t][0]},
                                                           {"truncated": bool(source[t][1])}) for t in texts})

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
_BUILD_LOCK = threading.RLock()


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
                def build_random() -> nn.Module:
                    model = spec.create()
                    spec.init_random(model, seed)
                    return model

                _LOADED[key] = _finish(spec, build_random, dev, f"random:seed={seed}", False, None, [])
            return _LOADED[key]

    _recall_weight_hashes(spec, weights, weights_dir)
    resolved = resolve_weights(name, spec.pretrained, weights, weights_dir=weights_dir, allow_download=allow_download)
    key = (name, str(resolved.path), resolved.sha256, str(dev))
    with _LOCK:
        if key not in _LOADED:
            def build_pretrained() -> nn.Module:
                model = spec.create()
                target = spec.weights_target(model) if spec.weights_target else model
                load_state_dict_file(target, resolved.path, what=f"backbone {name!r}",
                                     transform=spec.filter_state_dict)
                return model

            _LOADED[key] = _finish(spec, build_pretrained, dev, resolved.sha256, resolved.calibrated, resolved.path,
                                   list(resolved.warnings))
        return _LOADED[key]


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
    """With an on-disk cache active, hash the candidate weights files through it: their sha256 is
    remembered across runs by (path, size, mtime, ctime, inode), so a warm run re-reads no weights."""
    from pytest_i2i.cache import get_cache

    store = get_cache()
    if store is None:
        return
    from pytest_i2i.backbones import weights as wmod
    from pytest_i2i.files import remember_sha256

    if weights is not None:
        candidates = [Path(weights).expanduser()]
    else:
        wdir = weights_dir if weights_dir is not None else os.environ.get(wmod.ENV_WEIGHTS_DIR)
        candidates = []
        for wf in spec.pretrained.files:
            if wdir:
                candidates.append(Path(wdir).expanduser() / wf.filename)
            candidates.append(wmod.torch_hub_checkpoints_dir() / wf.filename)
            candidates.extend(wmod._hf_candidates(wf))
    for path in candidates:  # in resolution order: only the file that will be used is hashed
        try:
            if not path.is_file():
                continue
            remember_sha256(path, store.file_sha256(path))
        except OSError:
            pass
        return


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
