"""NIGHTS 2AFC (Fu et al. 2023, "DreamSim"), native layout.

Layout recognised: a folder with ``data.csv`` whose header has ``id, votes, left_vote, right_vote,
ref_path, left_path, right_path`` (also ``prompt, split, is_imagenet`` and an unnamed index column,
ignored). Paths are relative to the folder. ``h`` (fraction preferring the second candidate) is
``right_vote / (left_vote + right_vote)``; like DreamSim's loader, triplets with fewer than
``min_votes`` = 6 unanimous votes are dropped (the count is recorded in the set's warnings).
An optional ``split`` (``train``/``val``/``test``) keeps one split.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd

from pytest_i2i.errors import JudgmentError
from pytest_i2i.validation.judgments.format import CHOICE_COLUMNS, JudgmentSet, parse_float, read_text, record_file

NAME = "nights"
LAYOUT = "NIGHTS (DreamSim): data.csv with id, votes, left_vote, right_vote, ref_path, left_path, right_path"
REQUIRED = ("id", "votes", "left_vote", "right_vote", "ref_path", "left_path", "right_path")


def _header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return [h.strip() for h in next(csv.reader(f), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def detect(folder: Path) -> bool:
    p = folder / "data.csv"
    return p.is_file() and all(c in _header(p) for c in REQUIRED)


def load(folder: Path, manifest: dict[str, Any] | None = None, *, min_votes: int = 6,
         split: str | None = None, expected_sha256: dict[str, str] | None = None, **_: Any) -> JudgmentSet:
    path = folder / "data.csv"
    text = read_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    records, dropped = [], 0
    try:
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise JudgmentError(f"{path}: header has no {', '.join(missing)}; expected {LAYOUT}")
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            if None in row or any(v is None for v in row.values()):
                raise JudgmentError(f"{where}: wrong number of fields")
            if split is not None and row.get("split", "").strip() != split:
                continue
            votes = parse_float(row["votes"], where, "votes")
            left, right = parse_float(row["left_vote"], where, "left_vote"), parse_float(row["right_vote"], where,
                                                                                         "right_vote")
            if left < 0 or right < 0 or left + right <= 0:
                raise JudgmentError(f"{where}: left_vote and right_vote must be non-negative, not both zero")
            if votes < min_votes:
                dropped += 1
                continue
            records.append((row["id"].strip(), row["ref_path"].strip(), row["left_path"].strip(),
                            row["right_path"].strip(), right / (left + right), votes))
    except csv.Error as e:
        raise JudgmentError(f"{path}, line {reader.line_num}: malformed CSV ({e})") from None
    m = dict(manifest or {})
    m.setdefault("name", folder.name)
    js = JudgmentSet(name=m["name"], kind="2afc", table=pd.DataFrame.from_records(records, columns=CHOICE_COLUMNS),
                     root=folder, images_root=folder, synthetic=bool(m.get("synthetic", False)), manifest=m,
                     layout=NAME, files=[record_file(path, (expected_sha256 or {}).get(path.name))])
    if dropped:
        js.warnings.append(f"{dropped} triplet(s) with fewer than {min_votes} votes dropped (as DreamSim does)")
    return js
