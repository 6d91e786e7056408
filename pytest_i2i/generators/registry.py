"""Registry of generator architectures that a bare state_dict checkpoint can be loaded into.

A state_dict holds weights but no code, so :func:`pytest_i2i.load_generator` needs the
architecture: the user names it (``arch="..."`` / ``--i2i-arch``) or it is detected from the
checkpoint's keys by each registered architecture's ``detect`` function.

>>> from pytest_i2i.generators import GeneratorArch, register_generator_arch
>>> register_generator_arch(GeneratorArch("my-unet", build=MyUNet, output_range=(-1.0, 1.0),
...                                       detect=lambda sd: "down1.conv.weight" in sd))  # doctest: +SKIP

The built-in architectures (pix2pix / CycleGAN) are entries of :mod:`pytest_i2i.generators.builtin`,
registered when the package :mod:`pytest_i2i.generators` is imported (which any import of this
module does first), with lazy ``"module:function"`` references (:class:`LazyCall`): this module
imports none of its registrants, and no torch (the plugin imports it in every run).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_i2i.errors import I2IInputError, UnknownNameError
from pytest_i2i.generators.options import OptionType, coerce_options, guess_value

if TYPE_CHECKING:
    from torch import nn

Range = tuple[float, float]


def check_range(value: object, what: str) -> Range:
    """``value`` as a ``(low, high)`` pair of finite floats with ``low < high``.

    Raises:
        I2IInputError: naming ``what`` when ``value`` is not such a pair.
    """
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise I2IInputError(f"{what} must be a (low, high) pair such as (-1, 1) or (0, 1), got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise I2IInputError(f"{what} must be finite with low < high, got {value!r}")
    return (low, high)


@dataclass(frozen=True)
class LazyCall:
    """``"package.module:function"`` plus leading arguments, imported on the first call.

    ``LazyCall("pkg.mod:build", "a")(x=1)`` imports ``pkg.mod`` then calls ``build("a", x=1)``.
    """

    ref: str
    args: tuple[Any, ...] = ()
    _fn: list = field(default_factory=list, init=False, repr=False, compare=False)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self._fn:
            module, _, name = self.ref.partition(":")
            self._fn.append(getattr(importlib.import_module(module), name))
        return self._fn[0](*self.args, *args, **kwargs)


@dataclass(frozen=True)
class GeneratorArch:
    """How to build one generator architecture for a state_dict checkpoint.

    Attributes:
        name: registry name, e.g. ``"pix2pix-unet256"``; what ``arch=`` / ``--i2i-arch`` take.
        build: returns the architecture with untouched parameters; called with the architecture
            options (``arch_kwargs`` / ``--i2i-arch-option``).
        input_range: the value range the model expects its input images in.
        output_range: the value range of the model's output images (tanh heads: ``(-1, 1)``).
        detect: ``state_dict -> bool | Mapping``: truthy when a checkpoint's keys (and shapes) are
            this architecture's. A mapping return is the architecture options read from the
            checkpoint (e.g. ``{"ngf": 32, "use_dropout": False}``); options the user gives override
            them. ``None`` if it cannot be told from the keys.
        description: one line for listings.
        options: the architecture options ``build`` takes, name -> type (``int``, ``float``,
            ``bool``, ``str``) or tuple of allowed strings. Options given as strings (command line,
            ini) are converted by it, and unknown names are refused with the list of valid ones.
            Empty: the options are passed as given, strings read as the literal they spell.
        adapt_state_dict: ``(model, state_dict) -> (state_dict, notes)`` applied before the strict
            load (e.g. dropping buffers that older versions of the training code wrote).
    """

    name: str
    build: Callable[..., nn.Module]
    input_range: Range = (-1.0, 1.0)
    output_range: Range = (-1.0, 1.0)
    detect: Callable[[Mapping], bool | Mapping[str, Any]] | None = None
    description: str = ""
    options: Mapping[str, OptionType] = field(default_factory=dict)
    adapt_state_dict: Callable[[Any, dict], tuple[dict, list[str]]] | None = None

    def __post_init__(self) -> None:
        # frozen: normalise through object.__setattr__ so (0, 1) and (0.0, 1.0) compare equal
        object.__setattr__(self, "input_range", check_range(self.input_range, f"{self.name}: input_range"))
        object.__setattr__(self, "output_range", check_range(self.output_range, f"{self.name}: output_range"))

    def typed_options(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """``options`` typed by :attr:`options` (see there).

        Raises:
            UnknownNameError: an option this architecture does not take.
            I2IInputError: a value of the wrong type.
        """
        given = dict(options or {})
        if not self.options:
            return {k: guess_value(v) for k, v in given.items()}
        return coerce_options(given, self.options, f"architecture {self.name!r}")


_ARCHS: dict[str, GeneratorArch] = {}


def register_generator_arch(arch: GeneratorArch, *, overwrite: bool = False) -> GeneratorArch:
    """Add ``arch`` to the registry; raises ``ValueError`` if the name is taken and not ``overwrite``."""
    if arch.name in _ARCHS and not overwrite:
        raise ValueError(f"generator architecture {arch.name!r} is already registered")
    _ARCHS[arch.name] = arch
    return arch


def unregister_generator_arch(name: str) -> None:
    """Remove ``name`` from the registry (no error if it is not registered)."""
    _ARCHS.pop(name, None)


def list_generator_archs() -> list[str]:
    """Sorted names of the registered generator architectures."""
    return sorted(_ARCHS)


def get_generator_arch(name: str) -> GeneratorArch:
    """The registered architecture ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the registered names).
    """
    try:
        return _ARCHS[name]
    except KeyError:
        raise UnknownNameError("generator architecture", name, _ARCHS) from None


def match_arch(state_dict: Mapping, *, source: str = "the checkpoint") -> tuple[str, dict[str, Any]]:
    """``(name, options read from the keys)`` of the one registered architecture whose ``detect``
    accepts ``state_dict``.

    A ``detect`` function that raises counts as "no match" (it met keys it did not expect).

    Raises:
        I2IInputError: no architecture or several match; the message names ``source`` and lists
            the candidates to pass as ``arch=`` / ``--i2i-arch``.
    """
    matches: dict[str, dict[str, Any]] = {}
    for name in sorted(_ARCHS):
        detect = _ARCHS[name].detect
        if detect is None:
            continue
        try:
            found = detect(state_dict)
        except Exception:  # noqa: BLE001, S112 - a detector choking on foreign keys means "not mine"
            continue
        if found:
            matches[name] = dict(found) if isinstance(found, Mapping) else {}
    if len(matches) == 1:
        return next(iter(matches.items()))
    choices = ", ".join(matches or list_generator_archs()) or "(none registered)"
    if matches:
        why = f"it matches several architectures ({', '.join(matches)})"
    else:
        why = "no registered architecture matches"
    raise I2IInputError(
        f"cannot detect the architecture of {source} from its keys: {why}; "
        f"pass --i2i-arch / arch= one of: {choices}"
    )


def detect_arch(state_dict: Mapping, *, source: str = "the checkpoint") -> str:
    """The name of the one registered architecture whose ``detect`` accepts ``state_dict``
    (:func:`match_arch` without the options)."""
    return match_arch(state_dict, source=source)[0]
