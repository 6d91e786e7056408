"""Numbers in JSON: the one convention for every JSON file and dict pytest-i2i writes.

Documented with the report format in :mod:`pytest_i2i.report`:

* the JSON is strict (``allow_nan=False``): no bare ``NaN`` / ``Infinity``, which most JSON
  readers refuse;
* a float that is not finite is the string ``"inf"``, ``"-inf"`` or ``"nan"``
  (:func:`to_json_safe`), read back with :func:`from_json_safe` from the fields known to hold
  numbers (so a sample named ``"nan"`` stays a string);
* ``null`` means no value (not computed, not applicable, or an undefined statistic); an
  undefined statistic carries the reason next to it, in a ``"reason"`` field.

Standard library only.
"""

from __future__ import annotations

import math
from typing import Any

NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def to_json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``"inf"``, ``"-inf"`` or ``"nan"``, recursively
    through dicts (keys become strings), lists and tuples (which become lists); numpy and torch
    scalars become Python numbers first. Everything else is returned as is.

    Example:
        >>> to_json_safe({"psnr": float("inf"), "ci": (1.0, float("nan"))})
        {'psnr': 'inf', 'ci': [1.0, 'nan']}
    """
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 0) == 0:  # numpy / torch scalars
        return to_json_safe(obj.item())
    return obj


def from_json_safe(obj: Any) -> Any:
    """The inverse of :func:`to_json_safe` for a value known to be a number or a list of numbers:
    ``"inf"``, ``"-inf"`` and ``"nan"`` become floats again (recursively through lists).

    Example:
        >>> from_json_safe(["inf", 1.0])
        [inf, 1.0]
    """
    if isinstance(obj, str) and obj in NONFINITE:
        return NONFINITE[obj]
    if isinstance(obj, list):
        return [from_json_safe(v) for v in obj]
    return obj
