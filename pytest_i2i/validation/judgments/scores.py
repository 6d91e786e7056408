"""Precomputed metric scores: per-item metric values computed elsewhere, joined on (item, model).

Layouts recognised:

- a folder of JSON files, one per model, ``{item: {metric: value, ...}, ...}`` (the model is the
  file stem; e.g. VIEScore's ``results_autometrics/<task>/<Model>.json``);
- one JSON file ``{item: {metric: value}}`` (no model);
- a CSV / JSONL table with an ``item`` column, an optional ``model`` column and one numeric column
  per metric (for 2AFC sets, ``model`` is ``p0`` or ``p1``: the distance of that candidate to the reference).

Directions: a metric is a distance (lower is better) or a similarity; known names are looked up in
:data:`KNOWN_DIRECTIONS` (case-insensitive), others must be given (``directions={"name": "lower"}``,
``i2i validate --direction name=lower``): a wrong sign would flip every correlation.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_i2i.errors import JudgmentError
from pytest_i2i.validation.judgments.format import read_text, record_file

NAME = "scores"
LAYOUT = ("precomputed scores: a folder of <model>.json files {item: {metric: value}}, one such JSON file, "
          "or a CSV/JSONL table with item[, model] and one column per metric")
KNOWN_DIRECTIONS = {
    "lpips": False, "dists": False, "dreamsim": False, "l1": False, "l2": False, "mse": False,
    "ciede2000": False, "fid": False, "kid": False, "fd_vit": False, "cmmd": False,
    "vit_patch_distance": False, "psnr": True, "ssim": True, "ms_ssim": True, "clip_image": True,
    "clip_text": True, "clip_direction": True, "dino_image": True, "clipscore": True, "clip-i": True,
    "clip-t": True, "dino": True,
}


@dataclass
class ScoreSet:
    """Metric values per (item, model): ``values[metric][(item, model)] = float``."""

    name: str
    root: Path
    values: dict[str, dict[tuple[str, str], float]]
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    calibrated: bool = True
    layout: str = NAME

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "root": str(self.root), "layout": self.layout,
                "metrics": {m: {"n": len(v), "higher_is_better": self.higher_is_better.get(m)}
                            for m, v in self.values.items()}, "files": self.files}


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"), parse_constant=_reject_constant(path))
    except OSError as e:
        raise JudgmentError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise JudgmentError(f"{path}: not valid UTF-8 at byte offset {e.start}") from None
    except json.JSONDecodeError as e:
        raise JudgmentError(f"{path}: malformed JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise JudgmentError(f"{path}: JSON nested too deeply") from None


def _reject_constant(path: Path):
    def f(name: str) -> Any:
        raise JudgmentError(f"{path}: {name} is not a valid score (NaN/Infinity)")
    return f


def _is_score_mapping(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, dict) for v in obj.values())


def _json_scores(path: Path, model: str, into: dict[str, dict[tuple[str, str], float]]) -> None:
    obj = _load_json(path)
    if not _is_score_mapping(obj):
        raise JudgmentError(f"{path}: expected {{item: {{metric: value}}}}, got {type(obj).__name__}")
    for item, metrics in obj.items():
        if not metrics:
            raise JudgmentError(f"{path}: item {item!r} has no metric value")
        for metric, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise JudgmentError(f"{path}: item {item!r}, metric {metric!r}: {value!r} is not a finite number")
            into.setdefault(metric, {})[(item, model)] = float(value)


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


def _table_scores(path: Path, into: dict[str, dict[tuple[str, str], float]]) -> None:
    text = read_text(path)
    rows: list[tuple[int, dict[str, Any]]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        try:
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    raise JudgmentError(f"{path}, line {reader.line_num}: wrong number of fields")
                rows.append((reader.line_num, row))
        except csv.Error as e:
            raise JudgmentError(f"{path}, line {reader.line_num}: malformed CSV ({e})") from None
    else:
        for line, raw in enumerate(text.split("\n"), 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw, parse_constant=_reject_constant(path))
            except json.JSONDecodeError as e:
                raise JudgmentError(f"{path}, line {line}: malformed JSON ({e.msg})") from None
            except RecursionError:
                raise JudgmentError(f"{path}, line {line}: JSON nested too deeply") from None
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
                raise JudgmentError(f"{path}, line {line}: duplicate score for item {item!r} model {model!r}")
            into.setdefault(metric, {})[key] = value


def load_scores(path: str | Path, *, directions: dict[str, bool] | None = None, name: str | None = None) -> ScoreSet:
    """Read precomputed scores (see the module docstring for the layouts).

    Args:
        directions: ``{metric: higher_is_better}`` for names not in :data:`KNOWN_DIRECTIONS`
            (or to override them).

    Raises:
        JudgmentError: unreadable / malformed files (naming the file, line, item, metric), a metric
            whose direction is unknown.
    """
    p = Path(path)
    values: dict[str, dict[tuple[str, str], float]] = {}
    if p.is_dir():
        files = json_files(p)
        if not files:
            raise JudgmentError(f"{p}: no .json score files; expected {LAYOUT}")
        for f in files:
            _json_scores(f, f.stem, values)
    elif p.is_file() and p.suffix.lower() == ".json":
        files = [p]
        _json_scores(p, "", values)
    elif p.is_file() and p.suffix.lower() in (".csv", ".jsonl"):
        files = [p]
        _table_scores(p, values)
    else:
        raise JudgmentError(f"{p}: not a score file or folder; expected {LAYOUT}")
    given = {k.lower(): v for k, v in (directions or {}).items()}
    higher: dict[str, bool] = {}
    for metric in values:
        key = metric.lower()
        if key in given:
            higher[metric] = given[key]
        elif key in KNOWN_DIRECTIONS:
            higher[metric] = KNOWN_DIRECTIONS[key]
        else:
            raise JudgmentError(f"{p}: direction of metric {metric!r} unknown; say whether higher is better "
                                f"(i2i validate --direction {metric}=lower|higher)")
    return ScoreSet(name=name or p.stem if p.is_file() else name or p.name, root=p, values=values,
                    higher_is_better=higher, files=[record_file(f) for f in files])
