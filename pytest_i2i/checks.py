"""Checks of public arguments shared by every layer: one rule and one message per argument.

Every check raises :class:`~pytest_i2i.errors.I2IInputError` naming the argument (and, through
``where``, the function or option it was given to), never a bare ``TypeError`` or a silent
conversion. The metric front-ends apply them by name (:func:`pytest_i2i.metrics.base.frontend`),
the gates and the bootstrap apply them to their own arguments.

Standard library only (the gates and the plugin import this module).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from pytest_i2i.errors import I2IInputError

MAX_SEED = 2**63 - 1


def is_int(value: Any) -> bool:
    """An integer that is not a ``bool`` (``True`` is not a batch size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number that is not a ``bool`` (strings such as ``"0.95"`` are not numbers)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def check_int(name: str, value: Any, *, low: int, where: str = "", what: str = "") -> int:
    """``value`` as an int ``>= low``, or an error naming ``name``."""
    if not is_int(value) or value < low:
        hint = f" ({what})" if what else ""
        raise I2IInputError(f"{_prefix(where)}{name} must be an int >= {low}{hint}; got {value!r}")
    return int(value)


def check_confidence(value: Any, where: str = "", name: str = "confidence") -> float:
    """A confidence level: a finite number strictly between 0 and 1."""
    if not is_number(value) or not math.isfinite(float(value)) or not 0.0 < float(value) < 1.0:
        raise I2IInputError(f"{_prefix(where)}{name} must be a number in (0, 1), e.g. 0.95; got {value!r}")
    return float(value)


def check_seed(value: Any, where: str = "", name: str = "seed") -> int:
    """A seed: an int in [0, 2**63 - 1] (what numpy's and torch's generators accept)."""
    if not is_int(value) or not 0 <= value <= MAX_SEED:
        raise I2IInputError(f"{_prefix(where)}{name} must be an int in [0, 2**63 - 1]; got {value!r}")
    return int(value)


def check_finite(name: str, value: Any, where: str = "", *, low: float | None = None) -> float:
    """A finite real number (``>= low`` when given)."""
    if not is_number(value) or not math.isfinite(float(value)) or (low is not None and float(value) < low):
        bound = f" >= {low:g}" if low is not None else ""
        raise I2IInputError(f"{_prefix(where)}{name} must be a finite number{bound}; got {value!r}")
    return float(value)


def check_positive_seconds(name: str, value: Any, where: str = "") -> float | None:
    """A timeout in seconds: ``None`` (no limit) or a finite number > 0."""
    if value is None:
        return None
    if not is_number(value) or not math.isfinite(float(value)) or float(value) <= 0:
        raise I2IInputError(f"{_prefix(where)}{name} must be a number of seconds > 0 (or None); got {value!r}")
    return float(value)


def check_positive(name: str, value: Any, where: str = "") -> float:
    """A finite number > 0."""
    if not is_number(value) or not math.isfinite(float(value)) or float(value) <= 0:
        raise I2IInputError(f"{_prefix(where)}{name} must be a finite number > 0; got {value!r}")
    return float(value)


def check_value_range(value: Any, where: str = "", name: str = "value_range") -> tuple[float, float]:
    """A ``(low, high)`` pair of finite numbers with ``low < high``, e.g. ``(0, 1)`` or ``(-1, 1)``."""
    try:
        ok = not isinstance(value, (str, bytes)) and len(value) == 2 and all(is_number(v) for v in value)
    except TypeError:
        ok = False
    if not ok:
        raise I2IInputError(f"{_prefix(where)}{name} must be a (low, high) pair of numbers such as (0, 1) or "
                            f"(-1, 1); got {value!r}")
    low, high = float(value[0]), float(value[1])
    if not (math.isfinite(low) and math.isfinite(high)):
        raise I2IInputError(f"{_prefix(where)}{name} must be finite; got {value!r}")
    if low >= high:
        raise I2IInputError(f"{_prefix(where)}{name} {value!r} is empty (low must be < high)")
    return low, high


#: the rule of each public keyword argument that has one meaning wherever it appears; a metric
#: front-end (:func:`pytest_i2i.metrics.base.frontend`) checks every one of its parameters named
#: here before any work (``resize`` and ``device`` are checked by the metrics layer, which has torch)
CHECKS = {
    "batch_size": lambda v, where: check_int("batch_size", v, low=1, where=where),
    "n_resamples": lambda v, where: check_int("n_resamples", v, low=2, where=where, what="bootstrap resamples"),
    "confidence": lambda v, where: check_confidence(v, where),
    "seed": lambda v, where: check_seed(v, where),
    "subsets": lambda v, where: check_int("subsets", v, low=1, where=where),
    "subset_size": lambda v, where: check_int("subset_size", v, low=2, where=where),
    "splits": lambda v, where: check_int("splits", v, low=1, where=where),
    "value_range": lambda v, where: check_value_range(v, where),
    "data_range": lambda v, where: check_positive("data_range", v, where),
    "sigma": lambda v, where: check_positive("sigma", v, where),
    "k1": lambda v, where: check_positive("k1", v, where),
    "k2": lambda v, where: check_positive("k2", v, where),
    "scale": lambda v, where: check_positive("scale", v, where),
    "w": lambda v, where: check_positive("w", v, where),
    "temperature": lambda v, where: check_positive("temperature", v, where),
    "knn_k": lambda v, where: check_int("knn_k", v, low=1, where=where),
    "upsample": lambda v, where: check_int("upsample", v, low=1, where=where),
    "ndf": lambda v, where: check_int("ndf", v, low=1, where=where),
    "n_layers": lambda v, where: check_int("n_layers", v, low=1, where=where),
    "num_classes": lambda v, where: check_int("num_classes", v, low=1, where=where),
}


def check_argument(name: str, value: Any, where: str = "") -> None:
    """Apply the rule of :data:`CHECKS` for ``name`` (no-op for other names)."""
    rule = CHECKS.get(name)
    if rule is not None:
        rule(value, where)
