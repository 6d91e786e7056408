"""ImagenHub editing ratings (Ku et al. 2024, "ImagenHub"), native layout.

Layout recognised: a folder with one tab-separated file per rater named ``<anything>_rater<N>.tsv``
(e.g. ``Text-Guided_IE_rater1.tsv``). Header ``uid`` then one column per model; each cell is
``[SC, PQ]`` (semantic consistency, perceptual quality), each in {0, 0.5, 1}, any spacing.
The overall score is ImagenHub's O = sqrt(SC · PQ), computed per rater (criterion ``overall``).

Optional images (ImagenHub's released results): ``<images_root>/input/<uid>`` (the edit's input) and
``<images_root>/<model>/<uid>`` (each model's output).

Every rater file must list the same uids and the same models: a mismatch is an error naming the
uids or columns (a misspelt uid would otherwise silently split an item).
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from pytest_i2i.errors import JudgmentError
from pytest_i2i.validation.judgments.format import RATING_COLUMNS, JudgmentSet, read_text, record_file

NAME = "imagenhub"
LAYOUT = "ImagenHub: <name>_rater<N>.tsv files (tab-separated; uid + one '[SC, PQ]' column per model)"
RATER_FILE = re.compile(r"^(?P<stem>.+)_rater(?P<n>\d+)\.tsv$", re.IGNORECASE)
VALUES = (0.0, 0.5, 1.0)
_CELL = re.compile(r"^\[\s*([^,\[\]\s]+)\s*,\s*([^,\[\]\s]+)\s*\]$")
CRITERIA = ["SC", "PQ", "overall"]


def rater_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and RATER_FILE.match(p.name)]
    return sorted(files, key=lambda p: int(RATER_FILE.match(p.name).group("n")))


def detect(folder: Path) -> bool:
    return folder.is_dir() and bool(rater_files(folder))


def parse_cell(text: str, where: str) -> tuple[float, float]:
    """``"[0.5, 1]"`` -> (0.5, 1.0); anything else raises JudgmentError naming ``where``."""
    m = _CELL.match(text.strip())
    if not m:
        raise JudgmentError(f"{where}: malformed cell {text!r}; expected '[SC, PQ]' with SC, PQ in 0, 0.5, 1")
    out = []
    for raw, label in zip(m.groups(), ("SC", "PQ")):
        try:
            v = float(raw)
        except ValueError:
            raise JudgmentError(f"{where}: {label} {raw!r} in cell {text!r} is not a number") from None
        if v not in VALUES:
            raise JudgmentError(f"{where}: {label} = {raw} in cell {text!r} is not one of 0, 0.5, 1")
        out.append(v)
    return out[0], out[1]


def read_rater_file(path: Path) -> tuple[list[str], dict[str, dict[str, tuple[float, float]]]]:
    """Returns (models, {uid: {model: (SC, PQ)}}) of one rater file."""
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", strict=True)
    header: list[str] | None = None
    ratings: dict[str, dict[str, tuple[float, float]]] = {}
    try:
        for record in reader:
            line = reader.line_num
            if not any(f.strip() for f in record):
                continue
            if header is None:
                header = [f.strip() for f in record]
                if not header or header[0] != "uid" or len(header) < 2:
                    raise JudgmentError(f"{path}, line {line}: header must be 'uid' then one column per model, "
                                        f"got {header[:4]}")
                if len(set(header)) != len(header) or any(not h for h in header):
                    raise JudgmentError(f"{path}, line {line}: duplicate or empty column names in the header")
                continue
            if len(record) != len(header):
                raise JudgmentError(f"{path}, line {line}: {len(record)} fields, the header has {len(header)}")
            uid = record[0].strip()
            if not uid:
                raise JudgmentError(f"{path}, line {line}: empty uid")
            if uid in ratings:
                raise JudgmentError(f"{path}, line {line}: uid {uid!r} appears twice")
            ratings[uid] = {m: parse_cell(c, f"{path}, line {line}, uid {uid!r}, model {m!r}")
                            for m, c in zip(header[1:], record[1:])}
    except csv.Error as e:
        raise JudgmentError(f"{path}, line {reader.line_num}: malformed TSV ({e})") from None
    if header is None or not ratings:
        raise JudgmentError(f"{path}: empty: no rated uid")
    return header[1:], ratings


def load(folder: Path, manifest: dict[str, Any] | None = None, *, images_root: Path | None = None,
         expected_sha256: dict[str, str] | None = None) -> JudgmentSet:
    """Read every ``*_rater<N>.tsv`` in ``folder`` into an ``edit-rating`` :class:`JudgmentSet`."""
    files = rater_files(folder)
    if not files:
        raise JudgmentError(f"{folder}: no ImagenHub rater files; expected {LAYOUT}")
    expected_sha256 = expected_sha256 or {}
    per_rater = []
    for path in files:
        models, ratings = read_rater_file(path)
        per_rater.append((path, models, ratings))
    first_path, first_models, first_ratings = per_rater[0]
    for path, models, ratings in per_rater[1:]:
        if models != first_models:
            raise JudgmentError(f"{path}: model columns {models} differ from {first_path.name}'s {first_models}")
        only_here = sorted(set(ratings) - set(first_ratings))
        only_there = sorted(set(first_ratings) - set(ratings))
        if only_here or only_there:
            raise JudgmentError(
                f"{path}: uid mismatch with {first_path.name}: {len(only_here)} uid(s) only in {path.name} "
                f"{only_here[:3]}, {len(only_there)} only in {first_path.name} {only_there[:3]}")
    records = []
    for path, _, ratings in per_rater:
        rater = f"rater{RATER_FILE.match(path.name).group('n')}"
        for uid, cells in ratings.items():
            for model, (sc, pq) in cells.items():
                image = f"{model}/{uid}" if images_root else None
                reference = f"input/{uid}" if images_root else None
                for criterion, score in (("SC", sc), ("PQ", pq), ("overall", math.sqrt(sc * pq))):
                    records.append((uid, model, rater, criterion, score, image, reference))
    m = dict(manifest or {})
    m.setdefault("name", folder.name)
    m.setdefault("kind", "edit-rating")
    m.setdefault("overall", "sqrt(SC*PQ) per rater (ImagenHub)")
    return JudgmentSet(
        name=m["name"], kind="edit-rating", table=pd.DataFrame.from_records(records, columns=RATING_COLUMNS),
        root=folder, images_root=images_root, higher_is_better=True, criteria=list(CRITERIA),
        synthetic=bool(m.get("synthetic", False)), manifest=m, layout=NAME,
        files=[record_file(p, expected_sha256.get(p.name)) for p, _, _ in per_rater],
    )
