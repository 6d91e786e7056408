"""``KEY=VALUE`` options of generators: parsing and typing (standard library only).

Two option sets reach a generator from the command line, ini files and the environment:

- architecture options (``--i2i-arch-option``, ``i2i generate --arch-option``, ``arch_kwargs=``):
  keyword arguments of a registered architecture's ``build`` (e.g. ``norm=batch``, ``ngf=32``);
- generation options (``--i2i-generator-option``, ``i2i generate --generator-option``,
  ``generator_options=``): how a pipeline generates (e.g. ``num_inference_steps=20``).

On the command line each is a string ``KEY=VALUE``; :func:`parse_pairs` turns a list of them into a
dict of strings. :func:`coerce_options` types the values against a schema: a Python type (``int``,
``float``, ``bool``, ``str``) or a tuple of allowed strings. Values given from Python already typed
(``arch_kwargs={"ngf": 8}``) pass through unchanged when they have the schema's type.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Union

from pytest_i2i.errors import I2IInputError, UnknownNameError

#: a schema entry: a type to convert to, or the tuple of allowed string values
OptionType = Union[type, tuple[str, ...]]

#: How an ``nn.Module`` generator runs (``mode=`` / ``--i2i-generator-mode``):
MODES = {
    "eval": "eval mode: dropout off, batch norm with its running statistics (the usual inference setting)",
    "train": "train mode, as pix2pix's test.py runs without --eval (and as the pix2pix paper prescribes): "
             "dropout on and batch norm with the statistics of the image itself; each sample runs alone "
             "(a batch of one, as test.py does), seeded by sample_seed(seed, name), and the model's "
             "running statistics are left unchanged",
}

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:/-]*$")  # identifiers, and backbone names (timm:vit_tiny...)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_pairs(items: Iterable[str], what: str) -> dict[str, str]:
    """``["a=1", "b=x y"]`` -> ``{"a": "1", "b": "x y"}``; a later key replaces an earlier one.

    The value is everything after the first ``=`` (it may contain ``=`` and spaces); surrounding
    whitespace of key and value is dropped.

    Raises:
        I2IInputError: an item without ``=`` or with a key that is not an identifier, naming ``what``.
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise I2IInputError(f"{what}: {item!r} is not KEY=VALUE (KEY a name such as num_inference_steps or clip-vit-b-32)")
        out[key] = value.strip()
    return out


def coerce_value(value: Any, kind: OptionType, what: str) -> Any:
    """``value`` converted to ``kind`` (see the module docstring).

    Raises:
        I2IInputError: the value does not convert, naming ``what``.
    """
    if isinstance(kind, tuple):
        text = str(value).strip()
        if text not in kind:
            raise I2IInputError(f"{what}: {value!r} is not one of {', '.join(kind)}")
        return text
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise I2IInputError(f"{what}: {value!r} is not a boolean (true/false, 1/0, yes/no)")
    if kind is int:
        if isinstance(value, bool):
            raise I2IInputError(f"{what}: {value!r} is not an integer")
        try:
            return int(str(value).strip())
        except ValueError:
            raise I2IInputError(f"{what}: {value!r} is not an integer") from None
    if kind is float:
        try:
            number = float(str(value).strip())
        except ValueError:
            raise I2IInputError(f"{what}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise I2IInputError(f"{what}: {value!r} is not a finite number")
        return number
    if kind is str:
        return str(value)
    raise TypeError(f"unsupported option type {kind!r}")


def coerce_options(options: Mapping[str, Any], schema: Mapping[str, OptionType], what: str) -> dict[str, Any]:
    """``options`` with every value typed by ``schema``.

    Raises:
        UnknownNameError: a key is not in ``schema`` (the message lists the valid keys).
        I2IInputError: a value does not convert (the message names ``what`` and the key).
    """
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key not in schema:
            raise UnknownNameError(f"{what} option", key, schema)
        out[key] = coerce_value(value, schema[key], f"{what} option {key}")
    return out


def guess_value(value: Any) -> Any:
    """A string from the command line as the literal it spells (int, float, true/false, none), else itself.

    Used for architectures and factories that declare no option schema; typed values pass through.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return value
