"""`Backbone`: a loaded feature network and the one path images take to its features.

Data flows down once per call (:meth:`Backbone.iter_features`): the image set decodes each
image, hashes it and prepares it (centre crop, resize, normalisation to the backbone's
pretrained config, see :meth:`Backbone.preprocess`), in DataLoader workers or in this process;
the backbone looks the image's features up in its memo and the on-disk cache and runs the
network only on the rest; the metric reduces the features.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_i2i.backbones.memo import FeatureMemo
from pytest_i2i.backbones.spec import BackboneSpec
from pytest_i2i.errors import I2IInputError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pytest_i2i.cache.store import Store
    from pytest_i2i.images import ImageSet, Preprocess

_BUILD_LOCK = threading.RLock()


@dataclass
class Backbone:
    """A loaded backbone: the model in eval mode plus where its weights came from.

    While an on-disk feature cache is active (:mod:`pytest_i2i.cache`), :func:`~pytest_i2i.backbone`
    builds the model lazily, on the first access of ``model`` (in practice the first feature that
    is neither memoised nor cached), so a fully cached run never constructs the network or reads
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
        # Only reached when ``model`` is not built yet (see pytest_i2i.backbones.factory).
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

    def preprocess(self, resize: str | None = None) -> Preprocess:
        """How images are brought to this backbone's input: centre crop (if the spec says so, of
        ``crop_pct``), ``resize`` (default: the spec's) to ``input_size``, and the pretrained normalisation.

        Raises:
            I2IInputError: an unknown resize mode.
        """
        from pytest_i2i.images.prepare import Preprocess

        return Preprocess(self.input_size, resize or self.spec.default_resize, self.spec.center_crop,
                          self.spec.mean, self.spec.std, self.spec.crop_pct,
                          channels_last=bool(self.spec.channels_last))

    def text_key_parts(self) -> dict[str, Any]:
        """What, besides the text, determines a text embedding (key parts for :mod:`pytest_i2i.cache`)."""
        return {"backbone": self.name, "weights_sha256": self.weights_sha256, "device_type": self.device.type}

    def feature_key_parts(self, resize: str) -> dict[str, Any]:
        """What, besides the decoded image, determines its features (key parts for :mod:`pytest_i2i.cache`)."""
        from pytest_i2i.pipeline import autocast_dtype

        cast = autocast_dtype(self.device)
        parts = {"backbone": self.name, "weights_sha256": self.weights_sha256, "resize": resize,
                 "input_size": list(self.input_size), "center_crop": bool(self.spec.center_crop),
                 "dtype": "float32" if cast is None else f"autocast-{cast}".replace("torch.", ""),
                 "device_type": self.device.type}
        if self.spec.center_crop and self.spec.crop_pct != 1.0:  # absent otherwise: existing keys stay valid
            parts["crop_pct"] = float(self.spec.crop_pct)
        return parts

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of a prepared batch (N, 3, H, W): images at ``input_size``, normalised as
        :meth:`preprocess` says (``bb.preprocess().normalize(x)`` for a batch in [0, 1]).

        Runs under ``torch.inference_mode``; on CUDA the batch is copied from pinned memory
        without blocking, and the forward pass runs under ``torch.autocast`` only when
        :func:`pytest_i2i.pipeline.configure_pipeline` asked for it (never on CPU). On CPU,
        unless the pipeline setting ``reuse_memory`` is off, malloc is tuned once and the pass
        runs inside :func:`pytest_i2i.allocator.forward_pass_memory`, so it reuses the memory of
        the pass before instead of faulting in fresh pages.
        """
        import contextlib

        import torch

        from pytest_i2i.allocator import forward_pass_memory, keep_freed_memory
        from pytest_i2i.images.prepare import one_thread
        from pytest_i2i.pipeline import autocast_dtype, reuse_memory

        cast = autocast_dtype(self.device)
        reuse = self.device.type == "cpu" and reuse_memory() and keep_freed_memory()
        with one_thread():  # copies (none for a batch from stack_prepared): a parallel region only waits
            batch = batch.to(torch.float32)
            if self.device.type == "cuda":
                batch = batch.pin_memory().to(self.device, non_blocking=True)
            else:
                batch = batch.to(self.device)
            if self.spec.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
        amp = torch.autocast("cuda", dtype=cast) if cast is not None else contextlib.nullcontext()
        with torch.inference_mode(), amp, forward_pass_memory() if reuse else contextlib.nullcontext():
            out = self.model(batch)
        return {k: v.float() for k, v in out.items()} if cast is not None else out

    def iter_features(
        self, images: ImageSet, *, resize: str | None = None, batch_size: int = 32
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Yield the features (on CPU) of ``images``, ``batch_size`` images at a time, in order.

        Each image is decoded once per call (:meth:`ImageSet.iter_prepared`), hashed when a memo
        or cache is in use, and prepared (:meth:`preprocess`) only when its features are found
        neither in the in-memory memo of this backbone (:class:`FeatureMemo`, so metrics sharing
        a backbone run one forward pass per image) nor in the on-disk cache when one is active
        (:mod:`pytest_i2i.cache`; key: :meth:`feature_key_parts` and the sha256 of the decoded
        image *before* cropping and resizing, so a warm run decodes and hashes but never resizes).
        The remaining images run through the network in batches padded to the size their batch
        has in a run without any cache (:meth:`_forward_rows`), so cached and computed values
        are bit-identical. An image is decoded a second time only when the entry found in the
        look-up is gone or damaged when read (or, with DataLoader workers, its memo entry was
        evicted meanwhile); it is then recomputed in a batch of its usual size.

        Raises:
            I2IInputError: ``batch_size`` < 1, an unknown resize mode, an undecodable image.
        """
        from pytest_i2i.cache import get_cache

        if batch_size < 1:
            raise I2IInputError(f"batch_size must be >= 1, got {batch_size}")
        prep = self.preprocess(resize)
        memo = self.memo if self.memo.max_bytes > 0 else None
        yield from _FeatureRun(self, images, prep, get_cache(), memo, batch_size)

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

    def load_cached_texts(self, texts: list[str], into: dict[str, Any]) -> list[str]:
        """Fill ``into[text] = (embedding, truncated)`` from the on-disk cache; returns the texts not found."""
        from pytest_i2i.cache import get_cache
        from pytest_i2i.cache.features import TEXT, text_key
        from pytest_i2i.cache.store import load_bundles

        store = get_cache()
        if store is None or not texts:
            return texts
        parts = self.text_key_parts()
        keys = {t: text_key(parts, t) for t in texts}
        stored = load_bundles(store, TEXT, keys.values())
        for t, k in keys.items():
            if k in stored:
                tensors, meta = stored[k]
                into[t] = (tensors["embedding"], bool(meta.get("truncated", False)))
        return [t for t in texts if t not in into]

    def save_cached_texts(self, texts: list[str], source: dict[str, Any]) -> None:
        """Store ``source[text] = (embedding, truncated)`` of ``texts`` in the on-disk cache (if active)."""
        from pytest_i2i.cache import get_cache
        from pytest_i2i.cache.features import TEXT, text_key
        from pytest_i2i.cache.store import save_bundles

        store = get_cache()
        if store is not None and texts:
            parts = self.text_key_parts()
            save_bundles(store, TEXT, {text_key(parts, t): ({"embedding": source[t][0]},
                                                            {"truncated": bool(source[t][1])}) for t in texts})


class _FeatureRun:
    """One :meth:`Backbone.iter_features` call: reads the prepared images once, in order, and
    yields the features of each chunk of ``batch_size`` images.

    Misses are grouped into forward batches as a run without any cache would size them: images
    before the last chunk in batches of ``batch_size``, the last chunk's in one batch of its
    size (padded with zero rows when some of them were hits). To fill a batch, the run reads
    ahead of the chunk it yields; it holds at most one batch of prepared images and the keys
    of the images read ahead.
    """

    def __init__(self, bb: Backbone, images: ImageSet, prep: Preprocess, store: Store | None,
                 memo: FeatureMemo | None, batch_size: int) -> None:
        from pytest_i2i.cache.features import FEATURES, feature_key

        self.bb, self.images, self.prep, self.store, self.memo = bb, images, prep, store, memo
        self.batch_size = batch_size
        self.n = len(images)
        self.last_start = (self.n - 1) // batch_size * batch_size  # images from here on form the last chunk
        parts = bb.feature_key_parts(prep.resize)
        self.keyed = store is not None or memo is not None
        self.key = lambda sha, i: feature_key(parts, sha, rows=self._rows(int(i >= self.last_start)))

        def needed(sha: str, i: int) -> bool:  # also runs in DataLoader workers, on their copy of the memo
            k = self.key(sha, i)
            return not ((memo is not None and k in memo) or (store is not None and store.has(FEATURES, k)))

        self.stream = images.iter_prepared(prep, digest=self.keyed, needed=needed if self.keyed else None,
                                           batch_size=batch_size)
        self.read = 0
        self.keys: dict[int, str | None] = {}     # images read and not yet yielded
        self.found: dict[int, dict] = {}          # their features, when known (memo hit or computed)
        self.on_disk: set[int] = set()            # those whose features are read from the store
        self.pending: tuple[list, list] = ([], [])  # misses waiting for their forward pass, per group

    def _rows(self, group: int) -> int:
        return self.batch_size if group == 0 else self.n - self.last_start

    def _read_one(self) -> None:
        item = next(self.stream)
        i = item.index
        k = self.key(item.sha256, i) if self.keyed else None
        self.keys[i] = k
        self.read += 1
        hit = self.memo.get(k) if self.memo is not None else None
        if hit is not None:
            self.found[i] = hit
        elif item.image is None:  # not prepared: found on disk (or in the memo when the workers started)
            self.on_disk.add(i)
        else:
            group = int(i >= self.last_start)
            self.pending[group].append((i, item.image))
            if len(self.pending[group]) == self._rows(group):
                self._forward(group)

    def _forward(self, group: int) -> None:
        from pytest_i2i.cache.features import FEATURES
        from pytest_i2i.cache.store import save_bundles
        from pytest_i2i.images.prepare import one_thread, stack_prepared

        todo, self.pending[group][:] = list(self.pending[group]), []
        out = self.bb._forward_rows(stack_prepared([img for _, img in todo]), self._rows(group))
        # One copy per output and batch, rows as views: memo entries then live in a few large
        # blocks instead of many small chunks that fragment the heap as N grows.
        with one_thread():
            computed = {name: v.detach().cpu().clone() for name, v in out.items()}
        fresh = {}
        for j, (i, _) in enumerate(todo):
            self.found[i] = {name: v[j] for name, v in computed.items()}
            self._remember(i, self.found[i])
            if self.store is not None:
                fresh[self.keys[i]] = (self.found[i], {})
        if fresh:
            save_bundles(self.store, FEATURES, fresh)

    def _remember(self, i: int, feats: dict) -> None:
        if self.memo is not None:
            self.memo.put(self.keys[i], feats)  # type: ignore[arg-type]

    def _recompute(self, i: int) -> dict:
        """Features of image ``i`` whose cache entry vanished or was damaged since the look-up
        (decoded a second time; run in a batch of its usual size)."""
        from pytest_i2i.cache.features import FEATURES
        from pytest_i2i.cache.store import save_bundles

        out = self.bb._forward_rows(self.prep(self.images[i])[None], self._rows(int(i >= self.last_start)))
        feats = {name: v[0].detach().cpu().clone() for name, v in out.items()}
        if self.store is not None:
            save_bundles(self.store, FEATURES, {self.keys[i]: (feats, {})})
        return feats

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        import torch

        from pytest_i2i.cache.features import FEATURES
        from pytest_i2i.cache.store import load_bundles

        try:
            for start in range(0, self.n, self.batch_size):
                chunk = range(start, min(start + self.batch_size, self.n))
                while self.read < chunk.stop:
                    self._read_one()
                for group in (0, 1):
                    while any(i < chunk.stop for i, _ in self.pending[group]):  # a miss of this chunk waits
                        if self.read < self.n:
                            self._read_one()  # read ahead: later misses fill its batch
                        else:
                            self._forward(group)
                disk = [i for i in chunk if i in self.on_disk]
                stored = (load_bundles(self.store, FEATURES, [self.keys[i] for i in disk])
                          if disk and self.store is not None else {})
                for i in disk:
                    self.on_disk.discard(i)
                    hit = stored.get(self.keys[i])  # type: ignore[arg-type]
                    self.found[i] = hit[0] if hit is not None else self._recompute(i)
                    self._remember(i, self.found[i])
                feats = [self.found.pop(i) for i in chunk]
                for i in chunk:
                    del self.keys[i]
                yield {name: torch.stack([f[name] for f in feats]) for name in feats[0]}
        finally:
            self.stream.close()  # stop DataLoader workers now, also when the caller stops early
