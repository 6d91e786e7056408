"""Which tool is talking to the user, so that messages spell options its way.

The Python API (``"python"``, the default), the pytest plugin (``"pytest"``: ``--i2i-arch=NAME``)
or the ``i2i`` command line (``"cli"``: ``--arch NAME``). The plugin and the command line set it
at start-up (:func:`pytest_i2i.backbones.weights.set_interface`, which also spells the weights
settings); messages call :func:`spell`. Standard library only.
"""

from __future__ import annotations

NAMES = ("python", "pytest", "cli")
#: the interface in use (a one-item list, shared by reference with :mod:`pytest_i2i.backbones.weights`)
CURRENT = ["python"]

#: key -> interface -> template; ``{v}`` is the value (``spell(key)`` without one drops it)
SPELLINGS: dict[str, dict[str, str]] = {
    "arch": {"python": "arch='{v}'", "pytest": "--i2i-arch={v}", "cli": "--arch {v}"},
    "arch_option": {"python": "arch_kwargs {{{v}}}", "pytest": "--i2i-arch-option {v}", "cli": "--arch-option {v}"},
}


def set_interface(name: str) -> None:
    if name not in NAMES:
        raise ValueError(f"unknown interface {name!r}; known: {', '.join(NAMES)}")
    CURRENT[0] = name


def spell(key: str, value: str | None = None) -> str:
    """Option ``key`` (with ``value``) as the interface in use writes it: ``spell("arch", "x")`` is
    ``--i2i-arch=x`` under pytest, ``--arch x`` in the CLI, ``arch='x'`` in Python; ``spell("arch")``
    is the bare option (``--i2i-arch``, ``--arch``, ``arch=``)."""
    template = SPELLINGS[key][CURRENT[0]]
    if value is None:
        return template.split("{", 1)[0].rstrip("'= ") + ("=" if CURRENT[0] == "python" else "")
    return template.format(v=value)
