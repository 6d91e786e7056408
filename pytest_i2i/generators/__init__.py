"""Loading and running users' image-to-image generators.

:func:`load_generator` loads a TorchScript file, a state_dict with a registered (or detected)
architecture, a ``package.module:factory`` spec, or, only with ``trust=True``, a fully pickled
model; :class:`Generator` runs it with one calling convention and validates its outputs;
:func:`generate` runs it over an image set, turning per-sample failures into per-sample errors.

Imported lazily (PEP 562): ``pytest_i2i.generators.registry`` can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "load_generator": "pytest_i2i.generators.loading",
    "STATE_DICT_KEYS": "pytest_i2i.generators.loading",
    "Generator": "pytest_i2i.generators.runner",
    "GenerationResult": "pytest_i2i.generators.runner",
    "generate": "pytest_i2i.generators.runner",
    "GeneratorArch": "pytest_i2i.generators.registry",
    "register_generator_arch": "pytest_i2i.generators.registry",
    "unregister_generator_arch": "pytest_i2i.generators.registry",
    "list_generator_archs": "pytest_i2i.generators.registry",
    "get_generator_arch": "pytest_i2i.generators.registry",
    "detect_arch": "pytest_i2i.generators.registry",
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
