"""What a sensitivity run measured: :class:`SensitivityResult` and its strict-JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_i2i.jsonsafe import to_json_safe

AUROC_TARGET = 0.9
WEIGHT_FREE = "weight-free"
UNCALIBRATED = "uncalibrated"
CALIBRATED = "calibrated"


@dataclass
class SensitivityResult:
    """Everything a sensitivity run measured.

    Attributes:
        table: tidy :class:`pandas.DataFrame`, one row per (metric, op, area): ``metric``,
            ``kind``, ``op``, ``area_percent``, ``against`` (paired: ``all`` nuisances pooled or one
            nuisance's name; set-level: ``originals``), ``auroc`` (paired), ``n_edit``, ``n_nuisance``,
            ``statistic``, ``p_value``, ``nuisance_max_statistic``, ``exceeds_nuisances`` (set-level),
            ``detected`` (AUROC >= 0.9, or p < alpha), ``calibration``
            (``weight-free`` / ``calibrated`` / ``uncalibrated``), ``backbone``.
        scores: tidy per-copy paired scores: ``metric``, ``image``, ``kind`` (edit / nuisance),
            ``op``, ``area_percent``, ``repeat``, ``nuisance``, ``value``.
        nuisance_sets: set-level statistics and p-values of each nuisance set.
        config: the run's parameters; ``skipped``: metric -> reason; ``statement``: the lines of
        the computed statement; ``calibrated``: False when any backbone had random weights.
    """

    table: Any
    scores: Any
    nuisance_sets: list[dict[str, Any]]
    config: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)
    calibration: dict[str, str] = field(default_factory=dict)
    statement: list[str] = field(default_factory=list)

    @property
    def calibrated(self) -> bool:
        return UNCALIBRATED not in self.calibration.values()

    def smallest_detected_area(self, metric: str, op: str, against: str = "all",
                               column: str = "detected") -> float | None:
        """Smallest area (percent) at which ``metric`` detects ``op``.

        Paired metrics: the smallest tested area with AUROC >= 0.9 (``against``: ``"all"``
        nuisance copies pooled, the default, or one nuisance's name). Set metrics: the smallest
        area from which ``column`` holds at every larger tested area too (``"detected"``:
        permutation p < alpha; ``"exceeds_nuisances"``: the statistic exceeds every nuisance
        set's), so one chance rejection among the many cells is not read as a detection.
        """
        t = self.table
        rows = t[(t.metric == metric) & (t.op == op) & t.against.isin([against, "originals"])]
        rows = rows.sort_values("area_percent")
        if rows.empty:
            return None
        flags = rows[column].astype(bool).to_numpy()
        areas = rows.area_percent.to_numpy()
        if rows.kind.iloc[0] == "paired":
            return float(areas[flags][0]) if flags.any() else None
        sustained = None
        for area, flag in zip(areas[::-1], flags[::-1]):
            if not flag:
                break
            sustained = float(area)
        return sustained

    def to_json(self) -> dict[str, Any]:
        """Every number of the run as strict-JSON-ready data (:mod:`pytest_i2i.jsonsafe`'s convention)."""
        return to_json_safe({
            "format": "pytest-i2i-sensitivity/1",
            "calibrated": self.calibrated,
            "label": "" if self.calibrated else UNCALIBRATED,
            "config": self.config,
            "calibration": self.calibration,
            "skipped": self.skipped,
            "statement": self.statement,
            "table": _records(self.table),
            "nuisance_sets": self.nuisance_sets,
            "scores": _records(self.scores),
        })


def _records(df: Any) -> list[dict[str, Any]]:
    return [to_json_safe(rec) for rec in df.to_dict(orient="records")]
