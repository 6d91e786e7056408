"""TIFA (Hu et al., ICCV 2023): text-to-image faithfulness ratings with precomputed scores.

Native layout (Yushi-Hu/tifa, ``human_annotations/``): ``human_annotations_with_scores.json``,
``{key: {"text_id", "image_path", "text", "human_scores": [2 Likert scores 1-5], "human_avg",
<metric>: value, ...}}`` for 800 images of 160 prompts by 5 generators; the key is
``<text_id>_<generator>``. The two human scores are positional (``rater1``, ``rater2``: TIFA does
not say which person gave which score), criterion ``faithfulness``.

The other numeric keys are automatic scores (caption metrics ``meteor``, ``bleu``, ``rouge``,
``spice``, ``clipscore_vitb32`` and TIFA with five VQA models ``tifa_<vqa>``): higher means more
faithful for all of them (TIFA's README: "the scores given by caption-based metrics, clipscore,
and tifa scores"); ``clipscore_vitb32`` is also an alias of the registered ``clip_text``.

TIFA's notebook (``compute_correlation.ipynb``) prints "Spearman's Correlation" computed with
``np.corrcoef`` (a Pearson r) and Kendall's τ-b from ``scipy.stats.kendalltau``, pooled over the
800 images against ``human_avg``: the item-level Pearson and Kendall rows of this project's report.

The bundled compact form (``human_judgments/tifa-human/scores.tsv``) keeps the key, text_id,
generator, the two human scores and every metric value (no prompt text, no image path).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from pytest_i2i.errors import JudgmentError
from pytest_i2i.validation.judgments.format import RATING_COLUMNS, JudgmentSet, read_json, read_text, record_file
from pytest_i2i.validation.judgments.scores import MetricScores, finite_score, resolve_directions

NAME = "tifa"
LAYOUT = "TIFA: human_annotations_with_scores.json ({key: {text_id, human_scores, human_avg, <metric>: value}})"
FILE = "human_annotations_with_scores.json"
CRITERION = "faithfulness"
INFO_KEYS = ("text_id", "image_path", "text", "human_scores", "human_avg")
LIKERT = (1, 2, 3, 4, 5)


def tifa_file(path: Path) -> Path | None:
    if path.is_file() and path.name == FILE:
        return path
    for cand in (path / FILE, path / "human_annotations" / FILE):
        if cand.is_file():
            return cand
    return None


def detect(folder: Path) -> bool:
    return folder.is_dir() and tifa_file(folder) is not None


def format_directions(metrics: list[str]) -> dict[str, bool]:
    """TIFA documents every score key of its file as 'higher = more faithful'."""
    return {m: True for m in metrics}


def _records(rows: list[tuple[str, dict[str, Any], str]]) -> tuple[list[tuple], dict[str, dict], list[str]]:
    """From ``[(key, entry, where)]``: rating records, ``{metric: {(text_id, model): value}}``, metrics."""
    records, values, metrics = [], {}, None
    for key, e, where in rows:
        text_id = e.get("text_id")
        if not isinstance(text_id, str) or not key.startswith(text_id + "_") or key == text_id + "_":
            raise JudgmentError(f"{where}: key {key!r} is not '<text_id>_<generator>' (text_id {text_id!r})")
        model = key[len(text_id) + 1:]
        scores = e.get("human_scores")
        if not isinstance(scores, list) or not scores:
            raise JudgmentError(f"{where}: human_scores {scores!r} is not a list of scores")
        for i, s in enumerate(scores):
            if s not in LIKERT or isinstance(s, bool):
                raise JudgmentError(f"{where}: human_scores[{i}] = {s!r} is not a 1-5 Likert score")
            records.append((text_id, model, f"rater{i + 1}", CRITERION, float(s), None, None))
        avg = e.get("human_avg")
        if avg is not None and abs(finite_score(avg, f"{where}, human_avg") - sum(scores) / len(scores)) > 1e-9:
            raise JudgmentError(f"{where}: human_avg {avg} is not the mean of human_scores {scores}")
        here = sorted(k for k in e if k not in INFO_KEYS)
        if metrics is None:
            metrics = here
        elif here != metrics:
            raise JudgmentError(f"{where}: metric keys {here} differ from the first entry's {metrics}")
        for m in here:
            values.setdefault(m, {})[(text_id, model)] = finite_score(e[m], f"{where}, metric {m!r}")
    if not records:
        raise JudgmentError("TIFA: no annotated image")
    return records, values, metrics or []


def _build(rows, source: Path, name: str, files, manifest) -> JudgmentSet:
    records, values, metrics = _records(rows)
    table = pd.DataFrame.from_records(records, columns=RATING_COLUMNS)
    m = dict(manifest or {})
    m.setdefault("name", name)
    m.setdefault("kind", "rating")
    js = JudgmentSet(name=m["name"], kind="rating", table=table, root=source, criteria=[CRITERION],
                     synthetic=bool(m.get("synthetic", False)), files=files, manifest=m, layout=NAME)
    higher, registry = resolve_directions(values, where=str(source), format_directions=format_directions(metrics))
    scores = [MetricScores(k, v, higher[k], True, f"precomputed (TIFA): {source}", binding=js.name,
                           registry_name=registry.get(k), files={"": str(source)}) for k, v in values.items()]
    js.scores = scores
    return js


def load(folder: str | Path, manifest: dict[str, Any] | None = None, *, name: str | None = None,
         **_: Any) -> JudgmentSet:
    """The ratings of TIFA's ``human_annotations_with_scores.json``, its scores in ``scores``."""
    path = tifa_file(Path(folder))
    if path is None:
        raise JudgmentError(f"{folder}: no {FILE}; expected {LAYOUT}")
    data = read_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise JudgmentError(f"{path}: expected {{key: {{text_id, human_scores, ...}}}}")
    rows = [(k, v, f"{path}: key {k!r}") for k, v in data.items()]
    return _build(rows, path, name or "tifa-human", [record_file(path)], manifest)


def write_table(path: Path) -> bytes:
    """The compact TSV bytes of the native JSON (see the module docstring)."""
    data = read_json(path)
    rows = [(k, v, f"{path}: key {k!r}") for k, v in data.items()]
    _, _, metrics = _records(rows)
    n = max(len(v["human_scores"]) for v in data.values())
    out = io.StringIO(newline="")
    w = csv.writer(out, delimiter="\t", lineterminator="\n")
    w.writerow(["key", "text_id", *(f"human{i + 1}" for i in range(n)), *metrics])
    for key, e in data.items():
        hs = e["human_scores"]
        w.writerow([key, e["text_id"], *(hs[i] if i < len(hs) else "" for i in range(n)),
                    *(json.dumps(e[m]) for m in metrics)])
    return out.getvalue().encode("utf-8")


def load_table(path: str | Path, *, name: str, manifest: dict[str, Any] | None = None) -> JudgmentSet:
    """The bundled compact TSV as the ratings and the scores (the same as :func:`load`)."""
    p = Path(path)
    reader = csv.reader(io.StringIO(read_text(p), newline=""), delimiter="\t", strict=True)
    rows = []
    try:
        header = next(reader, [])
        humans = [h for h in header if h.startswith("human")]
        if header[:2] != ["key", "text_id"] or not humans:
            raise JudgmentError(f"{p}, line 1: header must be key, text_id, human1.., then metric columns")
        metrics = header[2 + len(humans):]
        for record in reader:
            where = f"{p}, line {reader.line_num}"
            if len(record) != len(header):
                raise JudgmentError(f"{where}: {len(record)} fields, the header has {len(header)}")
            entry: dict[str, Any] = {"text_id": record[1]}
            entry["human_scores"] = [read_json(p, text=c, line=reader.line_num) for c in record[2:2 + len(humans)] if c]
            for m, c in zip(metrics, record[2 + len(humans):]):
                entry[m] = read_json(p, text=c, line=reader.line_num)
            rows.append((record[0], entry, where))
    except csv.Error as e:
        raise JudgmentError(f"{p}, line {reader.line_num}: malformed TSV ({e})") from None
    keys = [r[0] for r in rows]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise JudgmentError(f"{p}: key(s) {dup[:3]} appear twice")
    return _build(rows, p, name, [record_file(p)], manifest)
