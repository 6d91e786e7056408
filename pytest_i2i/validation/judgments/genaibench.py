"""GenAI-Bench (Jiang et al. 2024, "GenAI Arena"): pairwise human votes with MLLM-judge votes.

Native layout (TIGER-AI-Lab/GenAI-Bench, ``results/<task>/<judge>/pairwise.jsonl``): a folder
holding ``<judge>/pairwise.jsonl`` files (e.g. ``results/image_edition/``), one line per compared
pair: ``idx``, the prompts, the judge's ``response``, its parsed ``model_vote``, the
``human_vote`` (``leftvote``, ``rightvote``, ``tievote``, ``bothbad_vote``) and ``correct``.

The human votes become a ``preference`` judgment set (votes ``a``, ``b``, ``tie``, ``both_bad``);
each judge's votes a :class:`~pytest_i2i.validation.judgments.scores.MetricScores` of kind
``votes``. Votes are read with GenAI-Bench's own rule (``inference.py`` ``parse_response``):
``[[A>B]]``/``[[A>>B]]`` → a, ``[[B>A]]``/``[[B>>A]]`` → b, ``[[A=B=Good]]`` → tie,
``[[A=B=Bad]]`` → both_bad, ``[[A=B]]`` → ``same`` (right for a human tie and for both-bad),
no vote → ``None`` (always wrong), any other bracketed text → ``other`` (always wrong). The
``correct`` flag of every line is recomputed with that rule; a line that disagrees is an error.

Every judge's file must hold the same ``idx`` values with the same human votes (the human votes
are one set); a difference is an error naming the file and the idx.

The bundled compact form (``human_judgments/genai-bench-image-edition/votes.tsv``) keeps ``idx``,
the human vote and, per judge, ``model_vote`` and ``correct``: no prompts, responses or reasoning.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd

from pytest_i2i.errors import JudgmentError
from pytest_i2i.validation.judgments.format import PREFERENCE_COLUMNS, JudgmentSet, read_json, read_text, record_file
from pytest_i2i.validation.judgments.scores import MetricScores

NAME = "genai-bench"
LAYOUT = "GenAI-Bench: <judge>/pairwise.jsonl files (idx, human_vote, model_vote, correct per line)"
FILE = "pairwise.jsonl"
HUMAN_VOTES = {"leftvote": "a", "rightvote": "b", "tievote": "tie", "bothbad_vote": "both_bad"}
NATIVE_HUMAN_VOTES = {v: k for k, v in HUMAN_VOTES.items()}
JUDGE_VOTES = {"[[A>B]]": "a", "[[A>>B]]": "a", "[[B>A]]": "b", "[[B>>A]]": "b", "[[A=B=Good]]": "tie",
               "[[A=B=Bad]]": "both_bad", "[[A=B]]": "same"}
#: which judge votes GenAI-Bench counts as right for each human vote
RIGHT = {"a": {"a"}, "b": {"b"}, "tie": {"tie", "same"}, "both_bad": {"both_bad", "same"}}


def judge_files(folder: Path) -> list[Path]:
    return sorted(p / FILE for p in folder.iterdir() if p.is_dir() and (p / FILE).is_file())


def detect(folder: Path) -> bool:
    return folder.is_dir() and bool(judge_files(folder))


def judge_vote(model_vote: Any, where: str) -> str | None:
    """GenAI-Bench's reading of a ``model_vote`` (see the module docstring)."""
    if model_vote is None:
        return None
    if not isinstance(model_vote, str):
        raise JudgmentError(f"{where}: model_vote {model_vote!r} is not a string or null")
    return JUDGE_VOTES.get(model_vote, "other")


def is_right(judge: str | None, human: str) -> bool:
    return judge is not None and judge in RIGHT[human]


def _check_line(obj: Any, where: str) -> tuple[str, str, Any, bool]:
    if not isinstance(obj, dict):
        raise JudgmentError(f"{where}: expected a JSON object")
    for key in ("idx", "human_vote", "model_vote", "correct"):
        if key not in obj:
            raise JudgmentError(f"{where}: no {key!r}")
    idx = obj["idx"]
    if isinstance(idx, bool) or not isinstance(idx, (int, str)) or not str(idx).strip():
        raise JudgmentError(f"{where}: idx {idx!r} is not an integer or a name")
    if obj["human_vote"] not in HUMAN_VOTES:
        raise JudgmentError(f"{where}: human_vote {obj['human_vote']!r} is not one of {', '.join(HUMAN_VOTES)}")
    if not isinstance(obj["correct"], bool):
        raise JudgmentError(f"{where}: correct {obj['correct']!r} is not true/false")
    return str(idx), HUMAN_VOTES[obj["human_vote"]], obj["model_vote"], obj["correct"]


def _combine(records: dict[str, list[tuple[str, str, Any, bool, str]]], source: Path, name: str,
             files: list[dict[str, Any]], manifest: dict[str, Any] | None) -> JudgmentSet:
    """``records[judge] = [(idx, human, model_vote, correct, where)]`` -> the set, the judges' votes in
    its ``scores``."""
    human: dict[str, str] = {}
    first: dict[str, str] = {}
    judges = []
    for judge, rows in records.items():
        votes: dict[str, str | None] = {}
        counts = {"other": 0}
        for idx, h, mv, correct, where in rows:
            if idx in votes:
                raise JudgmentError(f"{where}: idx {idx!r} appears twice")
            if idx in human and human[idx] != h:
                raise JudgmentError(f"{where}: idx {idx!r} has human vote {h!r}; {first[idx]} says {human[idx]!r}")
            human.setdefault(idx, h)
            first.setdefault(idx, where)
            v = judge_vote(mv, where)
            if is_right(v, h) != correct:
                raise JudgmentError(f"{where}: idx {idx!r}: correct = {correct} but model_vote {mv!r} against the "
                                    f"human vote {h!r} is {'right' if not correct else 'wrong'} by GenAI-Bench's rule")
            counts["other"] += v == "other"
            votes[idx] = v
        judges.append((judge, votes, counts))
    for judge, votes, _ in judges:
        if set(votes) != set(human):
            gone = sorted(set(human) - set(votes), key=_idx_key)
            raise JudgmentError(f"{source}: judge {judge!r} has {len(votes)} pairs, the set has {len(human)}; "
                                f"missing idx {gone[:5]}: every judge must vote on the same pairs")
    items = sorted(human, key=_idx_key)
    table = pd.DataFrame.from_records([(i, human[i], None, None) for i in items], columns=PREFERENCE_COLUMNS)
    m = dict(manifest or {})
    m.setdefault("name", name)
    m.setdefault("kind", "preference")
    js = JudgmentSet(name=m["name"], kind="preference", table=table, root=source, criteria=["preference"],
                     synthetic=bool(m.get("synthetic", False)), files=files, manifest=m, layout=NAME)
    scores = []
    for judge, votes, counts in judges:
        warnings = [f"{sum(v is None for v in votes.values())} pair(s) without a parsed vote (counted wrong)"] \
            if any(v is None for v in votes.values()) else []
        if counts["other"]:
            warnings.append(f"{counts['other']} vote(s) outside GenAI-Bench's four labels (counted wrong)")
        scores.append(MetricScores(judge, {}, True, True, f"MLLM judge votes: {source}", warnings=warnings,
                                   votes={i: votes[i] for i in items}, binding=js.name, kind="votes"))
    js.scores = scores
    return js


def _idx_key(idx: str) -> tuple[int, Any]:
    return (0, int(idx)) if idx.lstrip("-").isdigit() else (1, idx)


def load(folder: str | Path, manifest: dict[str, Any] | None = None, *, name: str | None = None,
         **_: Any) -> JudgmentSet:
    """Read every ``<judge>/pairwise.jsonl`` under ``folder``: the human set, each judge's votes in
    its ``scores``."""
    root = Path(folder)
    paths = judge_files(root) if root.is_dir() else []
    if not paths:
        raise JudgmentError(f"{root}: no <judge>/{FILE}; expected {LAYOUT}")
    records: dict[str, list[tuple[str, str, Any, bool, str]]] = {}
    for path in paths:
        rows = []
        for line, raw in enumerate(read_text(path).split("\n"), 1):
            if raw.strip():
                where = f"{path}, line {line}"
                rows.append((*_check_line(read_json(path, text=raw, line=line), where), where))
        if not rows:
            raise JudgmentError(f"{path}: empty: no pair")
        records[path.parent.name] = rows
    return _combine(records, root, name or root.name, [record_file(p) for p in paths], manifest)


def write_votes_table(folder: Path) -> bytes:
    """The compact TSV bytes of a native folder: ``idx``, ``human_vote``, per judge ``model_vote`` and
    ``correct`` (the file's own strings; an empty cell for a null vote)."""
    paths = judge_files(folder)
    per_judge = {}
    for path in paths:
        rows = {}
        for line, raw in enumerate(read_text(path).split("\n"), 1):
            if raw.strip():
                idx, human, mv, correct = _check_line(read_json(path, text=raw, line=line), f"{path}, line {line}")
                rows[idx] = (NATIVE_HUMAN_VOTES[human], mv, correct)
        per_judge[path.parent.name] = rows
    judges = sorted(per_judge)
    items = sorted(per_judge[judges[0]], key=_idx_key)
    out = io.StringIO(newline="")
    w = csv.writer(out, delimiter="\t", lineterminator="\n")
    w.writerow(["idx", "human_vote", *(c for j in judges for c in (f"{j}:model_vote", f"{j}:correct"))])
    for idx in items:
        cells = [idx, per_judge[judges[0]][idx][0]]
        for j in judges:
            _, mv, correct = per_judge[j][idx]
            cells += ["" if mv is None else mv, "true" if correct else "false"]
        w.writerow(cells)
    return out.getvalue().encode("utf-8")


def load_votes_table(path: str | Path, *, name: str, manifest: dict[str, Any] | None = None) -> JudgmentSet:
    """The bundled compact votes table as the set and the judges' votes (same as :func:`load`)."""
    p = Path(path)
    reader = csv.reader(io.StringIO(read_text(p), newline=""), delimiter="\t", strict=True)
    records: dict[str, list[tuple[str, str, Any, bool, str]]] = {}
    try:
        header = next(reader, [])
        if header[:2] != ["idx", "human_vote"] or len(header) < 4 or len(header) % 2:
            raise JudgmentError(f"{p}, line 1: header must be idx, human_vote, then <judge>:model_vote, "
                                "<judge>:correct pairs")
        judges = []
        for a, b in zip(header[2::2], header[3::2]):
            judge = a.rpartition(":")[0]
            if a != f"{judge}:model_vote" or b != f"{judge}:correct" or not judge:
                raise JudgmentError(f"{p}, line 1: columns {a!r}, {b!r} are not <judge>:model_vote, <judge>:correct")
            judges.append(judge)
            records[judge] = []
        for record in reader:
            where = f"{p}, line {reader.line_num}"
            if len(record) != len(header):
                raise JudgmentError(f"{where}: {len(record)} fields, the header has {len(header)}")
            for k, judge in enumerate(judges):
                mv, correct = record[2 + 2 * k], record[3 + 2 * k]
                if correct not in ("true", "false"):
                    raise JudgmentError(f"{where}: {judge}:correct {correct!r} is not true/false")
                obj = {"idx": record[0], "human_vote": record[1], "model_vote": mv or None,
                       "correct": correct == "true"}
                records[judge].append((*_check_line(obj, where), where))
    except csv.Error as e:
        raise JudgmentError(f"{p}, line {reader.line_num}: malformed TSV ({e})") from None
    if not records or not next(iter(records.values())):
        raise JudgmentError(f"{p}: empty: no pair")
    return _combine(records, p, name, [record_file(p)], manifest)
