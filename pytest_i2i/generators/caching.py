"""Generator outputs through the on-disk cache: a second run on the same checkpoint generates nothing.

Key of one output (built by :mod:`pytest_i2i.cache.outputs` from the data given here): the
checkpoint's sha256, the generator options as declared by the user (architecture name, input
and output range, architecture kwargs), the seed, the device type, the sha256 of the decoded
input image and its instruction text. When every sample's output is cached, the generator is
not even loaded (:func:`cached_generate`). Only checkpoint *files* are cached: a
``package.module:factory`` spec has no content hash. Samples that failed are never cached, so
their errors are reproduced by running the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_i2i.cache.outputs import GENERATORS, OUTPUTS, generator_key, output_key
from pytest_i2i.cache.store import Store, load_bundles, save_bundles
from pytest_i2i.images.digest import tensor_sha256

if TYPE_CHECKING:
    from pytest_i2i.generators.runner import GenerationResult, Generator

PROVENANCE = ("source", "sha256", "arch", "kind")


def cached_generate(
    images: Any, texts: Sequence[str] | None, *, load: Callable[[], Generator], options: dict[str, Any] | None,
    store: Store | None, batch_size: int = 8, timeout_s: float | None = None,
) -> tuple[GenerationResult, dict[str, str] | None]:
    """:func:`~pytest_i2i.generators.generate` with per-sample outputs read from / written to ``store``.

    Args:
        images: the inputs (anything :func:`~pytest_i2i.load_images` accepts).
        texts: one instruction per image, or ``None``.
        load: returns the generator; called only when some sample is not cached.
        options: the key parts of this generator run (:func:`pytest_i2i.generators.generator_key`, a JSON-able
            dict), or ``None`` to bypass the cache.
        store: the cache (``None``: no cache).
        batch_size: images per generator call.
        timeout_s: seconds one generator call may take (see :func:`~pytest_i2i.generators.generate`).

    Returns:
        The result and the generator's provenance (``source``, ``sha256``, ``arch``, ``kind``;
        recorded by the run that loaded it), or ``None`` for that when unknown.
    """
    from pytest_i2i.generators.runner import GenerationResult, generate
    from pytest_i2i.images import load_images
    from pytest_i2i.texts import check_texts

    start = time.perf_counter()
    images = load_images(images, name="inputs")
    if store is None or options is None:
        gen = load()
        return generate(gen, images, texts=texts, batch_size=batch_size, timeout_s=timeout_s), _provenance(gen)
    texts = None if texts is None else check_texts(texts, n=len(images), blank=True)
    keys: list[str | None] = []
    for i in range(len(images)):
        try:
            image_sha = tensor_sha256(images[i])
        except Exception:  # noqa: BLE001 - an undecodable input becomes that sample's error in generate()
            keys.append(None)
            continue
        keys.append(output_key(options, image_sha, None if texts is None else texts[i]))
    gen_key = generator_key(options)
    stored = load_bundles(store, OUTPUTS, [k for k in keys if k is not None])
    info_entry = load_bundles(store, GENERATORS, [gen_key]).get(gen_key)
    info = info_entry[1] if info_entry is not None else None
    result = GenerationResult(list(images.names), [None] * len(images))
    todo = []
    for i, k in enumerate(keys):
        if k is not None and k in stored:
            result.outputs[i] = stored[k][0]["output"]
        else:
            todo.append(i)
    if todo:
        gen = load()
        if gen.output_range is None and info and info.get("output_range"):
            # the range detected on the run that filled the cache, so partial reruns map outputs alike
            gen.output_range, gen.output_range_detected = tuple(info["output_range"]), True
        part = generate(gen, images.subset(todo), texts=None if texts is None else [texts[i] for i in todo],
                        batch_size=batch_size, timeout_s=timeout_s)
        result.batches = [[todo[j] for j in batch] for batch in part.batches]
        fresh = {}
        for j, i in enumerate(todo):
            if j in part.errors:
                result.errors[i] = part.errors[j]
            elif part.outputs[j] is not None:
                result.outputs[i] = part.outputs[j]
                if keys[i] is not None:
                    fresh[keys[i]] = ({"output": part.outputs[j]}, {})
        info = {**_provenance(gen), "output_range": list(gen.output_range) if gen.output_range else None}
        save_bundles(store, GENERATORS, {gen_key: ({}, info)})
        save_bundles(store, OUTPUTS, fresh)
    result.wall_time_s = time.perf_counter() - start
    return result, None if info is None else {k: info[k] for k in PROVENANCE if k in info}


def _provenance(gen: Generator) -> dict[str, str]:
    return {k: str(getattr(gen, k)) for k in PROVENANCE}
