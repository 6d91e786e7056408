"""One judgment is one row of the project's tidy judgment table (``human_judgments/README.md``).

The rows are written so that today's :func:`pytest_i2i.load_judgments` reads them as they are:

- ``2afc``: ``item, reference, p0, p1, h`` with ``h`` = 1 when the rater chose ``p1``, 0 for ``p0``,
  0.5 for "can't tell" (BAPPS's ``h`` for one judge).
- ``pairwise``: ``item, a, b, reference`` and ``winner`` = ``a``, ``b`` or ``tie``; "both bad" is
  written as ``h = 0.5`` with no ``winner`` (the format has no both-bad outcome yet; both read as a
  tie, h = 0.5, and the two stay distinguishable in the file).
- ``rating``: ``item, model, rater, criterion, score, image, reference``.

The format has one record per item for choices and no ``rater`` column there, so a choice row's
``item`` is ``<task>@<rater>``; the second showing of a repeated task appends ``#2`` (ratings:
``<task>#2``, the rater in its column). :func:`parse_item` undoes it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_i2i.errors import DatasetError, I2IInputError
from pytest_i2i.judge.tasks import ANSWERS, ROLES, Slot, TaskSet

DATA_NAME = "judgments.jsonl"
#: the columns written, in order, by kind
COLUMNS = {"2afc": ("item", "reference", "p0", "p1", "h"),
           "pairwise": ("item", "a", "b", "reference", "winner", "h"),
           "rating": ("item", "model", "rater", "criterion", "score", "image", "reference")}
CHOICE_H = {"2afc": {"p0": 0.0, "p1": 1.0, "cant_tell": 0.5}, "pairwise": {"a": 0.0, "b": 1.0, "tie": 0.5, "both_bad": 0.5}}


@dataclass(frozen=True)
class Judgment:
    """One decoded row: who judged which task (1st or 2nd showing), and the answer.

    ``outcome`` is a role (``p0``/``p1``/``a``/``b``) or ``cant_tell``/``tie``/``both_bad`` for choices
    and ``None`` for ratings; ``value`` is ``h`` (the fraction preferring ``p1``/``b``) or the score.
    """

    task: str
    rater: str
    occurrence: int
    outcome: str | None
    value: float


def item_id(kind: str, task: str, rater: str, occurrence: int) -> str:
    base = f"{task}@{rater}" if kind in ROLES else task
    return base if occurrence == 1 else f"{base}#{occurrence}"


def parse_item(kind: str, item: str, rater: str | None = None) -> tuple[str, str, int]:
    """``(task, rater, occurrence)`` of a row's ``item`` (ratings take ``rater`` from their column)."""
    base, sep, occ = item.partition("#")
    try:
        occurrence = int(occ) if sep else 1
    except ValueError:
        raise I2IInputError(f"item {item!r}: '#' must be followed by the showing number") from None
    if kind in ROLES:
        task, sep, who = base.partition("@")
        if not sep or not task or not who:
            raise I2IInputError(f"item {item!r}: a choice record's item is <task>@<rater>")
        return task, who, occurrence
    if not rater:
        raise I2IInputError(f"item {item!r}: a rating record needs its rater")
    return base, rater, occurrence


def _num(v: float) -> str:
    return format(v, ".12g")


def judgment_row(tasks: TaskSet, slot: Slot, rater: str, answer: Any) -> tuple[dict[str, str], Judgment]:
    """The table row for ``rater``'s ``answer`` to ``slot`` and its decoded form.

    ``answer`` is one of :data:`~pytest_i2i.judge.tasks.ANSWERS` for choices (``left``/``right`` are
    sides on the screen) and a number on the scale for ratings.

    Raises:
        I2IInputError: an answer the kind does not allow, a score off the scale.
    """
    item = tasks.items[slot.task]
    iid = item_id(tasks.kind, slot.task, rater, slot.occurrence)
    if tasks.kind == "rating":
        assert tasks.scale is not None
        score = tasks.scale.check(answer)
        row = {"item": iid, "model": item.get("model", ""), "rater": rater, "criterion": tasks.scale.criterion,
               "score": _num(score), "image": item["image"], "reference": item.get("reference") or item.get("input")}
        return _clean(row), Judgment(slot.task, rater, slot.occurrence, None, score)
    if answer not in ANSWERS[tasks.kind]:
        raise I2IInputError(f"answer {answer!r} is not allowed for a {tasks.kind} task; allowed: "
                            + ", ".join(ANSWERS[tasks.kind]))
    outcome = {"left": slot.left, "right": slot.right}.get(answer, answer)
    h = CHOICE_H[tasks.kind][outcome]
    if tasks.kind == "2afc":
        row = {"item": iid, "reference": item["reference"], "p0": item["p0"], "p1": item["p1"], "h": _num(h)}
    else:
        row = {"item": iid, "a": item["a"], "b": item["b"], "reference": item.get("reference") or item.get("input")}
        if outcome == "both_bad":
            row["h"] = _num(h)
        else:
            row["winner"] = outcome
    return _clean(row), Judgment(slot.task, rater, slot.occurrence, outcome, h)


def _clean(row: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in row.items() if v is not None and v != ""}


def decode_row(tasks: TaskSet, row: dict[str, Any], where: str) -> Judgment:
    """A row of the table back into a :class:`Judgment`; raises DatasetError naming ``where``."""
    try:
        if tasks.kind == "rating":
            task, rater, occ = parse_item("rating", str(row["item"]), row.get("rater"))
            value = float(row["score"])
            outcome = None
        else:
            task, rater, occ = parse_item(tasks.kind, str(row["item"]))
            if "winner" in row:
                outcome = row["winner"]
            elif tasks.kind == "pairwise":
                outcome = "both_bad" if float(row.get("h", "nan")) == 0.5 else None
            else:
                outcome = {0.0: "p0", 1.0: "p1", 0.5: "cant_tell"}.get(float(row.get("h", "nan")))
            if outcome not in CHOICE_H[tasks.kind]:
                raise I2IInputError(f"answer {row.get('winner', row.get('h'))!r} is not one this tool writes")
            value = CHOICE_H[tasks.kind][outcome]
    except (KeyError, ValueError, I2IInputError) as e:
        raise DatasetError(f"{where}: not a judgment of this study ({e})") from None
    if task not in tasks.items:
        raise DatasetError(f"{where}: task {task!r} is not in {tasks.path}")
    if occ not in (1, 2) or (occ == 2 and task not in tasks.repeats):
        raise DatasetError(f"{where}: showing #{occ} of task {task!r} is not in the study's schedule")
    return Judgment(task, rater, occ, outcome, value)


def encode_line(row: dict[str, str]) -> bytes:
    return (json.dumps(row, ensure_ascii=False, separators=(", ", ": ")) + "\n").encode("utf-8")


def read_rows(path: str | os.PathLike) -> tuple[list[tuple[int, dict[str, str]]], bytes]:
    """The complete rows of a judgment data file and the bytes of an unfinished last line.

    A last line with no newline is a write that a crash interrupted: it was never acknowledged to the
    rater and is returned separately (``torn``), not parsed. Returns ``([(line, row), ...], torn)``.

    Raises:
        DatasetError: a complete line that is not a JSON object of strings (naming the line).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return [], b""
    except OSError as e:
        raise DatasetError(f"{p}: cannot read ({e.strerror or e})") from None
    cut = data.rfind(b"\n") + 1
    complete, torn = data[:cut], data[cut:]
    rows = []
    for n, raw in enumerate(complete.split(b"\n")[:-1], 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise DatasetError(f"{p}, line {n}: not a JSON record ({e})") from None
        if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in obj.items()):
            raise DatasetError(f"{p}, line {n}: a record is a JSON object of strings")
        rows.append((n, obj))
    return rows, torn
