"""Loading and running users' image-to-image generators.

:func:`load_generator` loads a TorchScript file, a state_dict with a registered (or detected)
architecture, a ``package.module:factory`` spec, a Hugging Face diffusers pipeline
(``"diffusers:PATH_OR_HUB_ID"``), or, only with ``trust=True``, a fully pickled model;
:class:`Generator` runs it with one calling convention and validates its outputs;
:func:`generate` runs it over an image set, turning per-sample failures into per-sample errors;
:func:`generator_key` gives the on-disk cache key parts of a generator run without loading it.

Imported lazily (PEP 562): this package, its registry and its built-in table import no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from pytest_i2i.generators import builtin as _builtin  # noqa: F401  (registers the built-in architectures)

_LAZY = {
    "load_generator": "pytest_i2i.generators.loading",
    "STATE_DICT_KEYS": "pytest_i2i.generators.loading",
    "Generator": "pytest_i2i.generators.runner",
    "GenerationResult": "pytest_i2i.generators.runner",
    "generate": "pytest_i2i.generators.runner",
    "sample_seed": "pytest_i2i.generators.runner",
    "MODES": "pytest_i2i.generators.options",
    "GeneratorArch": "pytest_i2i.generators.registry",
    "LazyCall": "pytest_i2i.generators.registry",
    "register_generator_arch": "pytest_i2i.generators.registry",
    "unregister_generator_arch": "pytest_i2i.generators.registry",
    "list_generator_archs": "pytest_i2i.generators.registry",
    "get_generator_arch": "pytest_i2i.generators.registry",
    "detect_arch": "pytest_i2i.generators.registry",
    "match_arch": "pytest_i2i.generators.registry",
    "parse_pairs": "pytest_i2i.generators.options",
    "generator_key": "pytest_i2i.generators.source",
    "prompt_field": "pytest_i2i.generators.source",
    "DIFFUSERS_PREFIX": "pytest_i2i.generators.source",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_i2i.generators' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
