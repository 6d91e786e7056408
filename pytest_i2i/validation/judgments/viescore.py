"""VIEScore (Ku et al., ACL 2024): MLLM-judge outputs and autometric scores on ImagenHub's tasks.

Native layouts (VIEScore repository, ``paper_implementation/_answers/``):

- a judge's task folder ``results_<judge>/ImagenHub_<task>/<model>/{SC,PQ}.json``: per uid
  ``{"score": [0-10 sub-scores] or a number, "reasoning": ..., "prompt_input": ..., ...}``;
- the autometrics task folder ``results_autometrics/ImagenHub_<task>/<model>.json``
  ``{uid: {metric: value}}`` (the generic score layout of :mod:`.scores`), with the keys
  ``LPIPS``, ``CLIP_Score``, ``CLIP_I``, ``DINO``;
- roots holding one such folder per task (``results_<judge>/``, ``results_autometrics/``,
  ``ImagenHub_human_eval_results/``), narrowed with a task name (:func:`task_folder`).

The judge reduction is VIEScore's (``analyze_json.ipynb``): a criterion's score is the minimum of
its sub-scores (each truncated with ``int()``, as VIEScore's code does; 2 of GPT-4o's 9602
sub-score lists hold an 8.5) divided by 10 and clipped to [0, 1]; a plain number is divided by 10
and clipped (no truncation). The overall score is O = sqrt(SC · PQ). Only uids with both an SC
and a PQ score are used (VIEScore's ``align_dicts``); uids with one of them, and models missing a
file, are listed in the scores' warnings, never dropped silently. The raw sub-scores are kept.

The bundled compact form (``human_judgments/viescore-imagenhub/``) holds the same sub-scores
without reasoning or prompts: one TSV per judge and task, header ``uid`` then ``<model>:SC`` and
``<model>:PQ`` columns, each cell the JSON of the native ``score`` (``[8,9]`` or ``7``) or empty
when the judge gave none. :func:`load_judge_table` reads it into exactly what :func:`load_judge`
reads from the native folder.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_i2i.errors import JudgmentError
from pytest_i2i.validation.judgments.format import read_json, read_text, record_file
from pytest_i2i.validation.judgments.scores import MetricScores

NAME = "viescore-judge"
LAYOUT = "VIEScore judge: <task>/<model>/{SC,PQ}.json, each {uid: {score: [0-10 sub-scores], reasoning, ...}}"
CRITERIA = ("SC", "PQ")
OVERALL = "overall"
#: directions of the autometric keys, as VIEScore documents them (its paper reports LPIPS "signs
#: inverted": a distance to the input). The other keys (CLIP_Score, CLIP_I, DINO) are registered
#: metric aliases and take their direction from the metric registry.
AUTOMETRIC_DIRECTIONS = {"LPIPS": False}
TASK_PREFIX = "ImagenHub_"


def judge_models(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and any((p / f"{c}.json").is_file() for c in CRITERIA))


def detect(folder: Path) -> bool:
    return folder.is_dir() and bool(judge_models(folder))


def judge_name(folder: Path) -> str:
    """``results_gpt4o_0shot/ImagenHub_X`` -> ``gpt4o_0shot``."""
    parent = folder.resolve().parent.name
    return parent[len("results_"):] if parent.startswith("results_") else parent


def reduce_score(raw: Any, where: str) -> float:
    """VIEScore's reduction of one native ``score`` to [0, 1] (see the module docstring)."""
    if isinstance(raw, list):
        if not raw:
            raise JudgmentError(f"{where}: empty score list")
        subs = []
        for s in raw:
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
                raise JudgmentError(f"{where}: sub-score {s!r} in {raw!r} is not a finite number")
            subs.append(int(s))
        value = min(subs) / 10.0
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw):
        value = raw / 10.0
    else:
        raise JudgmentError(f"{where}: score {raw!r} is neither a list of 0-10 sub-scores nor a number")
    return min(1.0, max(0.0, value))


def _assemble(name: str, per_model: dict[str, dict[str, dict[str, Any]]], missing: list[str], source: str,
              binding: str | None, files: dict[str, str], where_file) -> MetricScores:
    """MetricScores from ``{model: {criterion: {uid: raw score}}}``; ``missing`` lists absent files;
    ``where_file(model, criterion)`` names the file a score came from (for errors)."""
    by: dict[str, dict[tuple[str, str], float]] = {c: {} for c in (*CRITERIA, OVERALL)}
    raw: dict[str, dict[tuple[str, str], Any]] = {c: {} for c in CRITERIA}
    warnings = [f"{m}: no score file (not scored by this judge)" for m in missing]
    for model, crits in sorted(per_model.items()):
        sc, pq = crits.get("SC"), crits.get("PQ")
        if sc is None or pq is None:
            continue
        common = sorted(set(sc) & set(pq))
        for criterion, got in (("SC", sc), ("PQ", pq)):
            extra = sorted(set(got) - set(common))
            if extra:
                other = "PQ" if criterion == "SC" else "SC"
                warnings.append(f"{model}: {len(extra)} uid(s) have {criterion} but no {other} score and are left "
                                f"out (as VIEScore does), e.g. {extra[:3]}")
        for uid in common:
            s = reduce_score(sc[uid], f"{where_file(model, 'SC')}: uid {uid!r}, SC")
            p = reduce_score(pq[uid], f"{where_file(model, 'PQ')}: uid {uid!r}, PQ")
            unit = (uid, model)
            by["SC"][unit], by["PQ"][unit], by[OVERALL][unit] = s, p, math.sqrt(s * p)
            raw["SC"][unit], raw["PQ"][unit] = sc[uid], pq[uid]
    if not by["SC"]:
        raise JudgmentError(f"{source}: the judge {name!r} has no uid with both an SC and a PQ score")
    return MetricScores(name, {}, True, True, f"MLLM judge: {source}", warnings=warnings, by_criterion=by, raw=raw,
                        binding=binding, files=files, kind="judge")


def load_judge(folder: str | Path, *, name: str | None = None, binding: str | None = None) -> MetricScores:
    """A judge's native task folder ``<task>/<model>/{SC,PQ}.json`` as per-criterion scores.

    Raises:
        JudgmentError: no model folder, malformed or non-strict JSON (duplicate keys, NaN), an entry
            without ``score``, a score that is not a number or a list of numbers; each names the file
            and the uid.
    """
    root = Path(folder)
    models = judge_models(root) if root.is_dir() else []
    if not models:
        raise JudgmentError(f"{root}: no <model>/SC.json or <model>/PQ.json; expected {LAYOUT}")
    per_model: dict[str, dict[str, dict[str, Any]]] = {}
    missing, files = [], {}
    for mdir in models:
        per_model[mdir.name] = {}
        files[mdir.name] = str(mdir)
        for criterion in CRITERIA:
            path = mdir / f"{criterion}.json"
            if not path.is_file():
                missing.append(f"{mdir.name}/{criterion}.json")
                continue
            obj = read_json(path)
            if not isinstance(obj, dict) or not obj:
                raise JudgmentError(f"{path}: expected {{uid: {{score: ...}}}}, got {type(obj).__name__}")
            scores = {}
            for uid, entry in obj.items():
                if not isinstance(entry, dict) or "score" not in entry:
                    raise JudgmentError(f"{path}: uid {uid!r} has no 'score'")
                scores[uid] = entry["score"]
            per_model[mdir.name][criterion] = scores
    ms = _assemble(name or judge_name(root), per_model, missing, str(root), binding, files,
                   lambda model, criterion: root / model / f"{criterion}.json")
    ms.source += f" ({len(models)} model folders)"
    return ms


def _compact_rows(path: Path, reader: Any, n_fields: int) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, uid, cells)`` of a compact TSV's rows, each row checked for its field count and a uid
    seen only once."""
    seen: set[str] = set()
    for record in reader:
        line = reader.line_num
        if len(record) != n_fields:
            raise JudgmentError(f"{path}, line {line}: {len(record)} fields, the header has {n_fields}")
        uid = record[0]
        if uid in seen:
            raise JudgmentError(f"{path}, line {line}: uid {uid!r} appears twice")
        seen.add(uid)
        yield line, uid, record[1:]


def _table_header(path: Path, header: list[str]) -> list[tuple[str, str]]:
    if not header or header[0] != "uid":
        raise JudgmentError(f"{path}, line 1: header must be 'uid' then '<model>:<criterion>' columns")
    cols = []
    for h in header[1:]:
        model, sep, criterion = h.rpartition(":")
        if not sep or not model or criterion not in CRITERIA:
            raise JudgmentError(f"{path}, line 1: column {h!r} is not '<model>:SC' or '<model>:PQ'")
        cols.append((model, criterion))
    if len(set(cols)) != len(cols):
        raise JudgmentError(f"{path}, line 1: duplicate columns")
    return cols


def load_judge_table(path: str | Path, *, name: str, binding: str | None = None) -> MetricScores:
    """The bundled compact judge table (see the module docstring) as per-criterion scores."""
    p = Path(path)
    reader = csv.reader(io.StringIO(read_text(p), newline=""), delimiter="\t", strict=True)
    per_model: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        cols = _table_header(p, next(reader, []))
        for model, criterion in cols:
            per_model.setdefault(model, {})[criterion] = {}
        for line, uid, cells in _compact_rows(p, reader, len(cols) + 1):
            for (model, criterion), cell in zip(cols, cells):
                if cell:
                    per_model[model][criterion][uid] = read_json(p, text=cell, line=line)
    except csv.Error as e:
        raise JudgmentError(f"{p}, line {reader.line_num}: malformed TSV ({e})") from None
    missing = [f"{m}/{c}" for m, crits in per_model.items() for c in CRITERIA if c not in crits]
    return _assemble(name, per_model, missing, str(p), binding, {m: str(p) for m in per_model},
                     lambda model, criterion: f"{p}, column {model}:{criterion}")


def write_judge_table(folder: Path) -> bytes:
    """The compact TSV bytes of a native judge task folder (``uid`` rows sorted, models sorted)."""
    cols, cells = [], {}
    for mdir in judge_models(folder):
        for criterion in CRITERIA:
            f = mdir / f"{criterion}.json"
            if f.is_file():
                cols.append((mdir.name, criterion))
                cells[(mdir.name, criterion)] = {uid: e["score"] for uid, e in read_json(f).items()}
    uids = sorted({u for c in cells.values() for u in c}, key=_uid_key)
    out = io.StringIO(newline="")
    w = csv.writer(out, delimiter="\t", lineterminator="\n")
    w.writerow(["uid", *(f"{m}:{c}" for m, c in cols)])
    for uid in uids:
        w.writerow([uid, *(json.dumps(cells[col][uid], separators=(",", ":")) if uid in cells[col] else ""
                          for col in cols)])
    return out.getvalue().encode("utf-8")


def _uid_key(uid: str) -> tuple:
    """Natural order of ImagenHub uids (``sample_2.jpg`` before ``sample_10.jpg``)."""
    import re

    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", uid))


# -- roots with one folder per task ----------------------------------------------------------------
def task_folders(root: Path, is_task) -> dict[str, Path]:
    """``{task folder name: path}`` of the subfolders of ``root`` for which ``is_task(path)``."""
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and is_task(p)} if root.is_dir() else {}


def task_folder(root: Path, task: str, is_task) -> Path:
    """The folder of ``task`` under ``root`` (``Text-Guided_IE`` or ``ImagenHub_Text-Guided_IE``).

    Raises:
        JudgmentError: no such task (the message lists the tasks found under ``root``).
    """
    found = task_folders(root, is_task)
    for name in (task, TASK_PREFIX + task):
        if name in found:
            return found[name]
    raise JudgmentError(f"{root}: no task {task!r}; tasks here: "
                        + (", ".join(n[len(TASK_PREFIX):] if n.startswith(TASK_PREFIX) else n for n in found)
                           or "(none)"))


def task_name(folder: Path) -> str:
    """The task a task folder holds, without VIEScore's ``ImagenHub_`` prefix."""
    n = folder.name
    return n[len(TASK_PREFIX):] if n.startswith(TASK_PREFIX) else n


def hash_files(folder: Path) -> list[dict[str, Any]]:
    return [record_file(f) for f in sorted(folder.rglob("*.json"))]


# -- autometrics: the bundled compact table -------------------------------------------------------
def write_autometrics_table(folder: Path) -> bytes:
    """The compact TSV bytes of a native autometrics task folder (``<model>.json`` files):
    header ``uid`` then ``<model>:<metric>`` columns, cells the JSON numbers, empty when absent."""
    data = {f.stem: read_json(f) for f in sorted(folder.glob("*.json"))}
    cols = [(m, k) for m, d in data.items() for k in sorted({k for v in d.values() for k in v})]
    uids = sorted({u for d in data.values() for u in d}, key=_uid_key)
    out = io.StringIO(newline="")
    w = csv.writer(out, delimiter="\t", lineterminator="\n")
    w.writerow(["uid", *(f"{m}:{k}" for m, k in cols)])
    for uid in uids:
        w.writerow([uid, *(json.dumps(data[m][uid][k]) if k in data[m].get(uid, {}) else "" for m, k in cols)])
    return out.getvalue().encode("utf-8")


def load_autometrics_table(path: str | Path, *, binding: str | None = None) -> list[MetricScores]:
    """The bundled compact autometrics table as one :class:`MetricScores` per metric key (the same
    values and directions as the native ``<model>.json`` folder read by
    :func:`~pytest_i2i.validation.judgments.scores.load_scores`)."""
    from pytest_i2i.validation.judgments.scores import finite_score, resolve_directions

    p = Path(path)
    reader = csv.reader(io.StringIO(read_text(p), newline=""), delimiter="\t", strict=True)
    values: dict[str, dict[tuple[str, str], float]] = {}
    try:
        header = next(reader, [])
        if not header or header[0] != "uid":
            raise JudgmentError(f"{p}, line 1: header must be 'uid' then '<model>:<metric>' columns")
        cols = [h.partition(":")[::2] for h in header[1:]]
        if any(not m or not k for m, k in cols) or len(set(cols)) != len(cols):
            raise JudgmentError(f"{p}, line 1: columns must be distinct '<model>:<metric>'")
        for line, uid, cells in _compact_rows(p, reader, len(header)):
            for (model, metric), cell in zip(cols, cells):
                if cell:
                    values.setdefault(metric, {})[(uid, model)] = finite_score(
                        read_json(p, text=cell, line=line), f"{p}, line {line}, {model}:{metric}")
    except csv.Error as e:
        raise JudgmentError(f"{p}, line {reader.line_num}: malformed TSV ({e})") from None
    higher, registry = resolve_directions(values, where=str(p), format_directions=AUTOMETRIC_DIRECTIONS)
    return [MetricScores(k, v, higher[k], True, f"precomputed (VIEScore autometrics): {p}", binding=binding,
                         registry_name=registry.get(k), files={"": str(p)}) for k, v in values.items()]
