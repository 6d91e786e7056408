"""`MetricResult`: the one value type every metric returns.

A result behaves like a number (``float(r)``, ``r >= 0.2``) and carries everything needed to
judge it: uncertainty, sample count, the backbone and the exact weights it came from, whether
those weights are the published ones (``calibrated``), the resize convention and wall time.
"""

from __future__ import annotations

import json
import numbers
import operator
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pytest_i2i.jsonsafe import from_json_safe, to_json_safe

UNCALIBRATED_WARNING = (
    "uncalibrated: computed with weights that are not the published ones (e.g. weights='random'); "
    "use these numbers for smoke tests only, never for model decisions"
)


@dataclass(eq=False)
class MetricResult:
    """The value of one metric on one input set, with its provenance.

    Attributes:
        name: metric name, e.g. ``"fid"``.
        value: the metric value (a mean over samples for paired metrics).
        higher_is_better: direction of the metric (``False`` for distances such as FID).
        n: number of samples (pairs for paired metrics; for two-set metrics the smaller set).
        std: standard deviation where the metric defines one (KID and IS over subsets/splits).
        ci: ``(low, high)`` bootstrap confidence interval of the mean, for per-sample metrics.
        confidence: the level of ``ci`` (e.g. 0.95).
        per_sample: per-sample values, aligned with ``sample_names``.
        sample_names: file names (or ``"<arg>[i]"`` for in-memory inputs) of the samples.
        backbone: backbone name, ``None`` for weight-free metrics.
        weights_sha256: sha256 of the backbone weights (``"random:seed=<s>"`` for random weights).
        calibrated: ``True`` when the weights are the published ones (or no weights are involved).
        resize: the resize convention used (``"clean"``, ``"legacy-pytorch"`` or ``None``).
        wall_time_s: seconds spent computing the result.
        warnings: human-readable warnings recorded while computing (e.g. rank-deficient covariance).
        extra: metric-specific data that is serialisable to JSON.
        n_requested: number of samples asked for (default ``n``). It exceeds ``n`` when some were
            lost before the metric saw them, e.g. samples the generator produced no valid output
            for: the value then rests on ``n`` of ``n_requested`` samples, and gates fail unless
            told to accept it (``allow_lost_samples``, ``--i2i-allow-lost-samples``).
        lost_samples: names of the samples asked for and not used (why: in ``warnings``).

    ``float(result)`` gives ``value``; ``<, <=, >, >=, ==`` compare ``value`` with numbers and
    never change the result. Gates (:func:`pytest_i2i.assert_metric`) record their verdicts for
    the reports; under pytest a failing plain ``assert result >= t`` is explained and recorded too.
    """

    name: str
    value: float
    higher_is_better: bool
    n: int
    std: float | None = None
    ci: tuple[float, float] | None = None
    confidence: float | None = None
    per_sample: list[float] | None = None
    sample_names: list[str] | None = None
    backbone: str | None = None
    weights_sha256: str | None = None
    calibrated: bool = True
    resize: str | None = None
    wall_time_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    n_requested: int | None = None
    lost_samples: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.value = float(self.value)
        self.lost_samples = [str(s) for s in self.lost_samples]
        if self.n_requested is None:
            self.n_requested = self.n + len(self.lost_samples)
        if self.n_requested < self.n:
            from pytest_i2i.errors import I2IInputError

            raise I2IInputError(f"{self.name}: n_requested={self.n_requested} is smaller than n={self.n}")
        if self.ci is not None:
            self.ci = (float(self.ci[0]), float(self.ci[1]))
        if not self.calibrated and UNCALIBRATED_WARNING not in self.warnings:
            self.warnings.insert(0, UNCALIBRATED_WARNING)

    def __float__(self) -> float:
        return self.value

    @property
    def complete(self) -> bool:
        """Whether the value rests on every sample asked for (``n == n_requested``, none lost)."""
        return self.n >= (self.n_requested or 0) and not self.lost_samples

    def lost_description(self, k: int = 10) -> str:
        """``"2 of 5 samples asked for were not used: a, b"`` (the first ``k`` names), ``""`` if none was lost."""
        if self.complete:
            return ""
        missing = (self.n_requested or 0) - self.n
        names = ", ".join(self.lost_samples[:k]) + (", ..." if len(self.lost_samples) > k else "")
        return (f"{missing} of {self.n_requested} samples asked for were not used"
                + (f": {names}" if names else ""))

    def _other(self, other: object) -> float | None:
        if isinstance(other, MetricResult):
            return other.value
        if isinstance(other, numbers.Real):
            return float(other)
        return None

    def _compare(self, op: str, other: object) -> bool:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return _COMPARE[op](self.value, o)

    def __lt__(self, other: object) -> bool:
        return self._compare("<", other)

    def __le__(self, other: object) -> bool:
        return self._compare("<=", other)

    def __gt__(self, other: object) -> bool:
        return self._compare(">", other)

    def __ge__(self, other: object) -> bool:
        return self._compare(">=", other)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MetricResult):
            return self.to_dict() == other.to_dict()
        o = self._other(other)
        return NotImplemented if o is None else self.value == o

    __hash__ = None  # mutable and compared by value

    def __repr__(self) -> str:
        parts = [f"{self.name}={_fmt(self.value)}"]
        if self.ci is not None:
            parts.append(f"{int(round((self.confidence or 0) * 100))}% CI [{_fmt(self.ci[0])}, {_fmt(self.ci[1])}]")
        if self.std is not None:
            parts.append(f"std={_fmt(self.std)}")
        parts.append(f"n={self.n}" if self.complete else f"n={self.n} of {self.n_requested}")
        if self.backbone:
            parts.append(f"backbone={self.backbone}")
        if not self.calibrated:
            parts.append("UNCALIBRATED")
        return f"MetricResult({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; non-finite floats become the strings ``"inf"``, ``"-inf"``, ``"nan"``
        (the convention of :mod:`pytest_i2i.jsonsafe`)."""
        return to_json_safe(asdict(self))

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricResult:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in _NUMERIC_FIELDS & kwargs.keys():
            kwargs[key] = from_json_safe(kwargs[key])
        if kwargs.get("ci") is not None:
            kwargs["ci"] = tuple(kwargs["ci"])
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> MetricResult:
        return cls.from_dict(json.loads(text))


def _fmt(x: float) -> str:
    return f"{x:.6g}"


_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_NUMERIC_FIELDS = {"value", "std", "ci", "per_sample", "wall_time_s"}
