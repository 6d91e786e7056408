"""Precomputed metric scores: per-item metric values computed elsewhere, joined on (item, model).

Layouts recognised:

- a folder of JSON files, one per model, ``{item: {metric: value, ...}, ...}`` (the model is the
  file stem; VIEScore's ``results_autometrics/<task>/<Model>.json``);
- one JSON file ``{item: {metric: value}}`` (no model);
- a CSV / JSONL table with an ``item`` column, an optional ``model`` column and one numeric column
  per metric (for 2AFC sets, ``model`` is ``p0`` or ``p1``: the distance of that candidate to the
  reference; for preference sets ``a`` or ``b``).

Every JSON is read strictly (:func:`~pytest_i2i.validation.judgments.format.read_json`): a duplicate
key, ``NaN`` or ``Infinity`` is an error naming the file and the key.

Directions: a metric is a distance (lower is better) or a similarity. In this order: the
``directions`` given (``i2i validate --direction NAME=lower|higher``), the metric registry
(:func:`pytest_i2i.metrics.registry.find_metric`: name or alias, case-insensitive, e.g. ``CLIP_I`` is
``clip_image``), then what the file format documents about its own keys (``format_directions``,
e.g. VIEScore's autometrics: LPIPS is a distance). Anything else is an error: a wrong sign would
flip every correlation.

:class:`MetricScores` is the one container the correlation engine reads, whether the values were
precomputed, computed on a set's images, or are an MLLM judge's per-criterion scores or votes.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_i2i.errors import JudgmentError
from pytest_i2i.validation.judgments.format import read_json, read_text, record_file

NAME = "scores"
LAYOUT = ("precomputed scores: a folder of <model>.json files {item: {metric: value}}, one such JSON file, "
          "or a CSV/JSONL table with item[, model] and one column per metric")
Unit = tuple[str, str]  # (item, model)


@dataclass
class MetricScores:
    """One metric's (or judge's) values on judged units.

    Attributes:
        name: the name in reports (the file's key, e.g. ``CLIP_I``, or the judge, e.g. ``gpt4o_0shot``).
        values: ``{(item, model): value}``; set-level metrics (``level="system"``) use ``("", model)``.
        higher_is_better: direction of the values.
        by_criterion: per-criterion values where the scorer rates each criterion (an MLLM judge's
            ``SC``, ``PQ``, ``overall``); ``values`` is then unused.
        raw: the scorer's raw outputs per criterion and unit (e.g. a judge's 0-10 sub-scores).
        votes: for preference sets, a judge's vote per item (``a``, ``b``, ``tie``, ``both_bad``,
            ``same`` or ``None`` when it gave none).
        binding: the judgment set these scores belong to (e.g. one ImagenHub task): units scored
            but not judged are then problems, not just notes.
        registry_name: the registered metric this is (``clip_image`` for ``CLIP_I``), if any.
        files: the files the values came from, ``{model or "": path}``.
        warnings: documented, non-fatal problems (partial coverage, dropped units with reasons).
    """

    name: str
    values: dict[Unit, float]
    higher_is_better: bool
    calibrated: bool = True
    source: str = "computed"
    level: str = "item"
    warnings: list[str] = field(default_factory=list)
    by_criterion: dict[str, dict[Unit, float]] | None = None
    raw: dict[str, dict[Unit, Any]] | None = None
    votes: dict[str, str | None] | None = None
    binding: str | None = None
    registry_name: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    kind: str = "metric"

    def values_for(self, criterion: str) -> dict[Unit, float] | None:
        """The values to correlate with human ``criterion``; ``None`` when a judge did not rate it."""
        if self.by_criterion is None:
            return self.values
        return self.by_criterion.get(criterion)

    def info(self) -> dict[str, Any]:
        n = len(self.values) if self.by_criterion is None else {c: len(v) for c, v in self.by_criterion.items()}
        out = {"higher_is_better": self.higher_is_better, "calibrated": self.calibrated, "source": self.source,
               "level": self.level, "n_values": n, "warnings": self.warnings, "kind": self.kind}
        if self.registry_name:
            out["registry_name"] = self.registry_name
        if self.votes is not None:
            out["n_votes"] = len(self.votes)
        return out


@dataclass
class ScoreSet:
    """Metric values per (item, model): ``values[metric][(item, model)] = float``."""

    name: str
    root: Path
    values: dict[str, dict[Unit, float]]
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    calibrated: bool = True
    layout: str = NAME
    registry_names: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "root": str(self.root), "layout": self.layout,
                "metrics": {m: {"n": len(v), "higher_is_better": self.higher_is_better.get(m)}
                            for m, v in self.values.items()}, "files": self.files}

    def metric_scores(self, *, binding: str | None = None) -> list[MetricScores]:
        """One :class:`MetricScores` per metric of the set."""
        return [MetricScores(m, v, self.higher_is_better[m], self.calibrated, f"precomputed: {self.root}",
                             binding=binding, registry_name=self.registry_names.get(m),
                             files={f["path"]: f["path"] for f in self.files})
                for m, v in self.values.items()]


def direction(metric: str, *, given: Mapping[str, bool] | None = None,
              format_directions: Mapping[str, bool] | None = None, where: str = "") -> tuple[bool, str | None]:
    """``(higher_is_better, registry name or None)`` of a score column (see the module docstring).

    Raises:
        JudgmentError: the direction is known from none of the three sources.
    """
    from pytest_i2i.metrics.registry import find_metric

    low = metric.lower()
    spec = find_metric(metric)
    for k, v in (given or {}).items():
        if k.lower() == low:
            return bool(v), spec.name if spec else None
    if spec is not None:
        return spec.higher_is_better, spec.name
    for k, v in (format_directions or {}).items():
        if k.lower() == low:
            return bool(v), None
    raise JudgmentError(f"{where}: direction of metric {metric!r} unknown (not a registered metric name or "
                        f"alias, not documented by the file format); say whether higher is better "
                        f"(i2i validate --direction {metric}=lower|higher)")


def finite_score(value: Any, where: str) -> float:
    """A JSON / CSV score as a float; anything but a finite number raises JudgmentError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise JudgmentError(f"{where}: {value!r} is not a finite number")
    return float(value)


def _is_score_mapping(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, dict) for v in obj.values())


def _json_scores(path: Path, model: str, into: dict[str, dict[Unit, float]]) -> None:
    obj = read_json(path)
    if not _is_score_mapping(obj):
        raise JudgmentError(f"{path}: expected {{item: {{metric: value}}}}, got {type(obj).__name__}")
    for item, metrics in obj.items():
        if not metrics:
            raise JudgmentError(f"{path}: item {item!r} has no metric value")
        for metric, value in metrics.items():
            into.setdefault(metric, {})[(item, model)] = finite_score(value, f"{path}: item {item!r}, metric {metric!r}")


def json_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".json")


def detect(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in (".json", ".csv", ".jsonl")
    if not path.is_dir():
        return False
    files = json_files(path)
    if not files:
        return False
    try:
        return _is_score_mapping(json.loads(files[0].read_text(encoding="utf-8-sig")))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False


def _table_scores(path: Path, into: dict[str, dict[Unit, float]]) -> None:
    text = read_text(path)
    rows: list[tuple[int, dict[str, Any]]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            header = next(reader, None)
            if header is not None and len(set(header)) != len(header):
                dup = sorted({h for h in header if header.count(h) > 1})
                raise JudgmentError(f"{path}, line 1: duplicate column(s) {dup}")
            for record in reader:
                if not any(f.strip() for f in record):
                    continue
                if header is None or len(record) != len(header):
                    raise JudgmentError(f"{path}, line {reader.line_num}: wrong number of fields")
                rows.append((reader.line_num, dict(zip(header, record))))
        except csv.Error as e:
            raise JudgmentError(f"{path}, line {reader.line_num}: malformed CSV ({e})") from None
    else:
        for line, raw in enumerate(text.split("\n"), 1):
            if not raw.strip():
                continue
            obj = read_json(path, text=raw, line=line)
            if not isinstance(obj, dict):
                raise JudgmentError(f"{path}, line {line}: expected a JSON object")
            rows.append((line, obj))
    if not rows:
        raise JudgmentError(f"{path}: empty: no scores")
    for line, row in rows:
        if not isinstance(row.get("item"), (str, int)) or isinstance(row.get("item"), bool) or not str(row["item"]).strip():
            raise JudgmentError(f"{path}, line {line}: no 'item' value")
        item, model = str(row["item"]).strip(), str(row.get("model") or "").strip()
        metrics = {k: v for k, v in row.items() if k not in ("item", "model")}
        if not metrics:
            raise JudgmentError(f"{path}, line {line}: no metric column besides item/model")
        for metric, raw in metrics.items():
            try:
                value = float(raw) if not isinstance(raw, bool) else math.nan
            except (TypeError, ValueError):
                value = math.nan
            if not math.isfinite(value):
                raise JudgmentError(f"{path}, line {line}, item {item!r}, column {metric!r}: {raw!r} is not a "
                                    "finite number")
            key = (item, model)
            if key in into.get(metric, {}):
                raise JudgmentError(f"{path}, line {line}: duplicate score for item {item!r} model {model!r} "
                                    f"(metric {metric!r})")
            into.setdefault(metric, {})[key] = value


def resolve_directions(values: Mapping[str, Any], *, where: str, directions: Mapping[str, bool] | None = None,
                       format_directions: Mapping[str, bool] | None = None
                       ) -> tuple[dict[str, bool], dict[str, str]]:
    """Directions and registry names of every metric in ``values`` (see :func:`direction`)."""
    higher, registry = {}, {}
    for metric in values:
        higher[metric], reg = direction(metric, given=directions, format_directions=format_directions, where=where)
        if reg:
            registry[metric] = reg
    return higher, registry


def load_scores(path: str | Path, *, directions: Mapping[str, bool] | None = None, name: str | None = None,
                format_directions: Mapping[str, bool] | None = None) -> ScoreSet:
    """Read precomputed scores (see the module docstring for the layouts).

    Args:
        directions: ``{metric: higher_is_better}`` given by the user (override everything else).
        format_directions: what the file format documents about its keys (used after the registry).
            A folder of ``<model>.json`` files is VIEScore's autometrics layout, whose documented keys
            (:data:`pytest_i2i.validation.judgments.viescore.AUTOMETRIC_DIRECTIONS`) apply by default.

    Raises:
        JudgmentError: unreadable / malformed files (naming the file, line, item, metric), duplicate
            keys, a metric whose direction is unknown.
    """
    p = Path(path)
    values: dict[str, dict[Unit, float]] = {}
    if p.is_dir():
        files = json_files(p)
        if not files:
            raise JudgmentError(f"{p}: no .json score files; expected {LAYOUT}")
        for f in files:
            _json_scores(f, f.stem, values)
        if format_directions is None:
            from pytest_i2i.validation.judgments.viescore import AUTOMETRIC_DIRECTIONS

            format_directions = AUTOMETRIC_DIRECTIONS
    elif p.is_file() and p.suffix.lower() == ".json":
        files = [p]
        _json_scores(p, "", values)
    elif p.is_file() and p.suffix.lower() in (".csv", ".jsonl"):
        files = [p]
        _table_scores(p, values)
    else:
        raise JudgmentError(f"{p}: not a score file or folder; expected {LAYOUT}")
    higher, registry = resolve_directions(values, where=str(p), directions=directions,
                                          format_directions=format_directions)
    return ScoreSet(name=name or p.stem if p.is_file() else name or p.name, root=p, values=values,
                    higher_is_better=higher, files=[record_file(f) for f in files], registry_names=registry)
