"""The tidy judgment format, the TOML manifest, and the :class:`JudgmentSet` every adapter returns.

The format is documented for users in ``human_judgments/README.md``; in short:

- ``rating`` / ``edit-rating`` tables: one row per (item, model, rater, criterion) score.
  Columns ``item, score`` (required), ``model, rater, criterion, image, reference`` (optional;
  ``edit-rating`` requires ``model``). ``image`` is the rated image, ``reference`` what it is
  compared with (the edit's input, the pristine image), both relative to the images root.
- ``2afc`` tables: ``item, reference, p0, p1, h`` with ``h`` in [0, 1] the fraction of people who
  judged ``p1`` closer to ``reference``; optional ``n_judges``.
- ``pairwise`` tables: ``item, a, b`` and either ``h`` (fraction preferring ``b``) or ``winner``
  (``a``, ``b`` or ``tie``); optional ``reference``, ``n_judges``.
- ``preference`` tables: ``item, vote`` with ``vote`` one of four outcomes, ``a``, ``b``, ``tie``
  (both good) or ``both_bad`` (GenAI-Bench's left / right / tie / both-bad); optional ``a``, ``b``
  (what was compared, e.g. image paths or model names).

Every problem raises :class:`~pytest_i2i.errors.JudgmentError` naming the file (and line / uid).
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pytest_i2i.data.manifest import read_table, resolve_under_root
from pytest_i2i.errors import DatasetError, I2IInputError, JudgmentError, UnsafePathError
from pytest_i2i.files import sha256_file

KINDS = ("rating", "2afc", "pairwise", "edit-rating", "preference")
#: the four outcomes of a ``preference`` judgment
VOTES = ("a", "b", "tie", "both_bad")
MANIFEST_NAME = "judgments.toml"
DIRECTIONS = ("higher_is_better", "lower_is_better")
MANIFEST_KEYS = {
    "name": str, "kind": str, "description": str, "source": str, "licence": str, "synthetic": bool,
    "format": str, "root": str, "images_root": str, "criteria": list, "score_direction": str,
    "files": list, "columns": dict, "download": dict, "citation": str, "overall": str,
}
TIDY_COLUMNS = {
    "rating": ("item", "score", "model", "rater", "criterion", "image", "reference"),
    "edit-rating": ("item", "score", "model", "rater", "criterion", "image", "reference"),
    "2afc": ("item", "reference", "p0", "p1", "h", "n_judges"),
    "pairwise": ("item", "a", "b", "h", "winner", "reference", "n_judges"),
    "preference": ("item", "vote", "a", "b"),
}
TIDY_REQUIRED = {
    "rating": ("item", "score"), "edit-rating": ("item", "model", "score"),
    "2afc": ("item", "reference", "p0", "p1", "h"), "pairwise": ("item", "a", "b"),
    "preference": ("item", "vote"),
}
RATING_COLUMNS = ["item", "model", "rater", "criterion", "score", "image", "reference"]
CHOICE_COLUMNS = ["item", "reference", "p0", "p1", "h", "n_judges"]
PREFERENCE_COLUMNS = ["item", "vote", "a", "b"]


@dataclass
class JudgmentSet:
    """Human judgments of one set, in one tidy table.

    Attributes:
        name: the set's name (manifest ``name`` or the folder name).
        kind: ``rating``, ``2afc``, ``pairwise``, ``edit-rating`` or ``preference``.
        table: for ratings, columns ``item, model, rater, criterion, score, image, reference``
            (``model``/``rater``/``criterion`` are ``""`` when absent; ``image``/``reference`` ``None``);
            for ``2afc``/``pairwise``, ``item, reference, p0, p1, h, n_judges`` (pairwise ``a``/``b``
            become ``p0``/``p1``; ``h`` is the fraction preferring ``p1``); for ``preference``,
            ``item, vote, a, b`` (``vote`` in :data:`VOTES`).
        root: the folder the judgment files live in.
        images_root: the folder image paths are relative to (``None``: no images, precomputed scores only).
        higher_is_better: direction of the human score (``True`` for MOS / ratings).
        criteria: the criteria rated, e.g. ``["SC", "PQ"]``; ``derived`` criteria (``overall``) included.
        synthetic: ``True`` for made-up test fixtures; reports say so.
        files: ``{"path", "sha256", "expected_sha256", "verified"}`` per judgment file read.
        manifest: the manifest as read (or as the adapter describes the native layout).
        warnings: documented, non-fatal problems (e.g. items one rater skipped).
        scores: scores that come in the set's own files (:class:`~.scores.MetricScores`: TIFA's
            metric columns, GenAI-Bench's judge votes), bound to this set.
    """

    name: str
    kind: str
    table: pd.DataFrame
    root: Path
    images_root: Path | None = None
    higher_is_better: bool = True
    criteria: list[str] = field(default_factory=list)
    synthetic: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    layout: str = "tidy"
    scores: list[Any] = field(default_factory=list)

    @property
    def raters(self) -> list[str]:
        return sorted(set(self.table["rater"])) if "rater" in self.table else []

    @property
    def models(self) -> list[str]:
        return sorted(set(self.table["model"])) if "model" in self.table else []

    def summary(self) -> dict[str, Any]:
        out = {"name": self.name, "kind": self.kind, "layout": self.layout, "synthetic": self.synthetic,
               "root": str(self.root), "images_root": str(self.images_root) if self.images_root else None,
               "higher_is_better": self.higher_is_better, "n_records": int(len(self.table)),
               "n_items": int(self.table["item"].nunique()), "files": self.files, "warnings": self.warnings}
        if self.kind in ("rating", "edit-rating"):
            out.update(criteria=self.criteria, models=self.models, raters=self.raters)
        if self.kind == "preference":
            out["votes"] = {v: int((self.table["vote"] == v).sum()) for v in VOTES}
        if self.scores:
            out["scores_in_set"] = [m.name for m in self.scores]
        for key in ("source", "licence", "description"):
            if key in self.manifest:
                out[key] = self.manifest[key]
        return out


def record_file(path: Path, expected: str | None = None, *, where: str | None = None) -> dict[str, Any]:
    """Hash ``path``; a given ``expected`` sha256 that differs raises JudgmentError."""
    try:
        digest = sha256_file(path)
    except OSError as e:
        raise JudgmentError(f"{where or path}: cannot read {path} ({e.strerror or e})") from None
    if expected is not None and digest != expected.lower():
        raise JudgmentError(f"{where or path}: sha256 of {path} is {digest}, the manifest says {expected}; "
                            "the file is partial, modified or a different version")
    return {"path": str(path), "sha256": digest, "expected_sha256": expected, "verified": expected is not None}


# -- manifest ---------------------------------------------------------------------------------------
def read_text(path: Path) -> str:
    """The UTF-8 text of a judgment file (a BOM is dropped); unreadable or non-UTF-8 files raise
    :class:`JudgmentError` naming the file."""
    from pytest_i2i.files import regular_file

    try:
        regular_file(path, "judgment file")
    except I2IInputError as e:
        raise JudgmentError(str(e)) from None
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise JudgmentError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise JudgmentError(f"{path}: not valid UTF-8 at byte offset {e.start}") from None


def read_json(path: Path, *, text: str | None = None, line: int | None = None) -> Any:
    """Strict JSON of a judgment or score file: a duplicate key in an object, ``NaN`` / ``Infinity``,
    malformed JSON or non-UTF-8 bytes raise :class:`JudgmentError` naming the file (and the key)
    instead of silently keeping the last value (``json.loads``' default) or a NaN."""
    where = f"{path}, line {line}" if line is not None else str(path)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise JudgmentError(f"{where}: duplicate key {key!r} in a JSON object (the file holds two values "
                                    "for it; which one is meant is unknown)")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise JudgmentError(f"{where}: {name} is not a valid score (NaN/Infinity)")

    try:
        return json.loads(read_text(path) if text is None else text, object_pairs_hook=pairs,
                          parse_constant=constant)
    except json.JSONDecodeError as e:
        raise JudgmentError(f"{where}: malformed JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise JudgmentError(f"{where}: JSON nested too deeply") from None


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    """A TOML file as a dict; raises JudgmentError naming the file when it cannot be read or parsed."""
    p = Path(path)
    text = read_text(p)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise JudgmentError(f"{p}: malformed TOML ({e})") from None


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a TOML manifest; raises JudgmentError naming the file and the key."""
    p = Path(path)
    data = read_toml(p)
    for key, value in data.items():
        if key not in MANIFEST_KEYS:
            raise JudgmentError(f"{p}: unknown manifest key {key!r}; accepted: {', '.join(MANIFEST_KEYS)}")
        expected = MANIFEST_KEYS[key]
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise JudgmentError(f"{p}: manifest key {key!r} must be a {expected.__name__}, got {type(value).__name__}")
    for key in ("name", "kind"):
        if key not in data:
            raise JudgmentError(f"{p}: manifest has no {key!r}")
    if data["kind"] not in KINDS:
        raise JudgmentError(f"{p}: kind {data['kind']!r} unknown; kinds: {', '.join(KINDS)}")
    if data.get("score_direction", "higher_is_better") not in DIRECTIONS:
        raise JudgmentError(f"{p}: score_direction must be one of {', '.join(DIRECTIONS)}")
    for i, entry in enumerate(data.get("files", [])):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise JudgmentError(f"{p}: files[{i}] needs a 'path' string")
        unknown = set(entry) - {"path", "sha256", "url"}
        if unknown:
            raise JudgmentError(f"{p}: files[{i}] has unknown key(s) {', '.join(sorted(unknown))}")
        sha = entry.get("sha256")
        if sha is not None and (not isinstance(sha, str) or len(sha) != 64
                                or any(c not in "0123456789abcdefABCDEF" for c in sha)):
            raise JudgmentError(f"{p}: files[{i}] sha256 must be 64 hex digits")
    for key in ("criteria",):
        if key in data and not all(isinstance(c, str) and c for c in data[key]):
            raise JudgmentError(f"{p}: {key} must be a list of non-empty strings")
    if "columns" in data and not all(isinstance(k, str) and isinstance(v, str) for k, v in data["columns"].items()):
        raise JudgmentError(f"{p}: [columns] maps our column names to the file's column names (strings)")
    return data


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, list) and all(not isinstance(x, dict) for x in v):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as a TOML value")


def write_manifest(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a manifest (the keys of :data:`MANIFEST_KEYS`) as TOML; ``read_manifest`` reads it back."""
    lines: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        if key not in MANIFEST_KEYS:
            raise JudgmentError(f"{path}: unknown manifest key {key!r}")
        if isinstance(value, dict):
            tables.append(f"\n[{key}]")
            tables += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            for entry in value:
                tables.append(f"\n[[{key}]]")
                tables += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    p = Path(path)
    p.write_text("\n".join(lines + tables) + "\n", encoding="utf-8")
    return p


# -- tidy tables ------------------------------------------------------------------------------------
def parse_float(text: str, where: str, column: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise JudgmentError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(v):
        raise JudgmentError(f"{where}: {column} {text!r} is not a finite number")
    return v


def read_tidy(path: Path, kind: str, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Read one tidy CSV/JSONL judgment table of ``kind``; ``columns`` maps our names to the file's."""
    mapping = dict(columns or {})
    back = {v: k for k, v in mapping.items()}
    accepted = [mapping.get(c, c) for c in TIDY_COLUMNS[kind]]
    required = [mapping.get(c, c) for c in TIDY_REQUIRED[kind]]
    rows = read_table(path, columns=accepted, required=required)
    records = []
    for row in rows:
        where = f"{path}, line {row.line}"
        v = {back.get(k, k): s.strip() for k, s in row.values.items()}
        if kind in ("rating", "edit-rating"):
            records.append({"item": v["item"], "model": v.get("model", ""), "rater": v.get("rater", ""),
                            "criterion": v.get("criterion", ""), "score": parse_float(v["score"], where, "score"),
                            "image": v.get("image"), "reference": v.get("reference")})
            continue
        if kind == "preference":
            vote = v["vote"].lower()
            if vote not in VOTES:
                raise JudgmentError(f"{where}: vote {v['vote']!r} must be one of {', '.join(VOTES)}")
            records.append({"item": v["item"], "vote": vote, "a": v.get("a"), "b": v.get("b")})
            continue
        if kind == "2afc":
            h = parse_float(v["h"], where, "h")
            p0, p1 = v["p0"], v["p1"]
        else:
            p0, p1 = v["a"], v["b"]
            if ("h" in v) == ("winner" in v):
                raise JudgmentError(f"{where}: a pairwise row needs exactly one of 'h' or 'winner'")
            if "h" in v:
                h = parse_float(v["h"], where, "h")
            else:
                winner = v["winner"].lower()
                if winner not in ("a", "b", "tie"):
                    raise JudgmentError(f"{where}: winner {v['winner']!r} must be a, b or tie")
                h = {"a": 0.0, "b": 1.0, "tie": 0.5}[winner]
        if not 0.0 <= h <= 1.0:
            raise JudgmentError(f"{where}: h = {h} must be a fraction in [0, 1]")
        n = parse_float(v["n_judges"], where, "n_judges") if "n_judges" in v else None
        records.append({"item": v["item"], "reference": v.get("reference"), "p0": p0, "p1": p1, "h": h,
                        "n_judges": n})
    return pd.DataFrame.from_records(records, columns=table_columns(kind))


def table_columns(kind: str) -> list[str]:
    """The columns of a :class:`JudgmentSet` table of ``kind``."""
    if kind in ("rating", "edit-rating"):
        return list(RATING_COLUMNS)
    return list(PREFERENCE_COLUMNS if kind == "preference" else CHOICE_COLUMNS)


def check_table(js: JudgmentSet, where: str) -> None:
    """Checks every adapter's output passes: non-empty, no duplicate records, no NaN."""
    t = js.table
    if t.empty:
        raise JudgmentError(f"{where}: the judgment set {js.name!r} is empty (no records)")
    if js.kind in ("rating", "edit-rating"):
        key = ["item", "model", "rater", "criterion"]
        if not np.isfinite(t["score"].to_numpy(dtype=np.float64)).all():
            raise JudgmentError(f"{where}: a score is not a finite number")
    else:
        key = ["item"]
    dup = t.duplicated(subset=key, keep=False)
    if dup.any():
        first = t[dup].iloc[0]
        raise JudgmentError(f"{where}: duplicate records for " + ", ".join(f"{k}={first[k]!r}" for k in key if first[k]))


def check_images(js: JudgmentSet, where: str) -> None:
    """With an images root, every image path named by the table must exist inside it."""
    if js.images_root is None:
        return
    if js.kind == "preference":
        return
    cols = ["image", "reference"] if js.kind in ("rating", "edit-rating") else ["reference", "p0", "p1"]
    missing = []
    for col in cols:
        for i, ref in enumerate(js.table[col]):
            if ref is None or (isinstance(ref, float) and math.isnan(ref)):
                continue
            try:
                resolve_under_root(str(ref), js.images_root, where=f"{where}, item {js.table['item'].iloc[i]!r}")
            except UnsafePathError:
                raise
            except DatasetError:
                missing.append(str(ref))
    if missing:
        raise JudgmentError(f"{where}: {len(missing)} image(s) missing under {js.images_root}, e.g. "
                            + ", ".join(repr(m) for m in missing[:3]))
