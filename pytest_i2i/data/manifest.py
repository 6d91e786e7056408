"""Reading CSV / JSONL tables (manifests, texts files) and keeping the paths they name inside a root.

The formats are documented in :mod:`pytest_i2i.data.dataset`. Every problem raises
:class:`~pytest_i2i.errors.DatasetError` naming the file and the 1-based line; a path that
escapes its root (or loops) raises :class:`~pytest_i2i.errors.UnsafePathError`.
:func:`resolve_under_root` is also meant for other files that name paths (e.g. judgment files).
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_i2i.errors import DatasetError, UnsafePathError

TEXT_FIELDS = ("instruction", "source_caption", "target_caption")
MANIFEST_COLUMNS = ("uid", "input", "target", *TEXT_FIELDS)
TEXTS_COLUMNS = ("uid", *TEXT_FIELDS)
TABLE_SUFFIXES = (".csv", ".jsonl")


@dataclass(frozen=True)
class Row:
    """One record of a table: its 1-based line number and its non-blank values by column."""

    line: int
    values: dict[str, str]


def location(path: str | os.PathLike, line: int | None = None) -> str:
    """``"<path>, line <n>"`` (or just the path): how errors name a place in a file."""
    return f"{path}, line {line}" if line else str(path)


def table_error(message: str, path: str | os.PathLike, line: int | None = None) -> DatasetError:
    return DatasetError(f"{location(path, line)}: {message}")


def read_table(path: str | os.PathLike, *, columns: Sequence[str], required: Sequence[str] = ()) -> list[Row]:
    """Read a ``.csv`` (with a header row) or ``.jsonl`` (one JSON object per line) table.

    Blank lines are skipped; blank or whitespace-only values (and JSON ``null``) count as absent.

    Args:
        path: the table file; its suffix (case-insensitive) picks the format.
        columns: every accepted column; any other column is an error (a misspelt column
            would otherwise drop its data silently).
        required: columns every record must have a value for.

    Returns:
        The records in file order.

    Raises:
        DatasetError: unreadable file, bytes that are not UTF-8, malformed CSV or JSON, wrong
            field count, unknown / duplicate / missing columns, no records. The message names
            the file and the line.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise table_error(f"unsupported table format {p.suffix!r}; use {' or '.join(TABLE_SUFFIXES)}", p)
    text = _read_utf8(p)
    rows = _parse_csv(p, text, columns, required) if suffix == ".csv" else _parse_jsonl(p, text, columns)
    if not rows:
        raise table_error("empty: no records", p)
    for row in rows:
        missing = [c for c in required if c not in row.values]
        if missing:
            raise table_error(f"no value for the required column(s) {', '.join(missing)}", p, row.line)
    return rows


def _read_utf8(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise table_error(f"cannot read ({e.strerror or e})", path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise table_error(
            f"not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); save the file as UTF-8", path, line
        ) from None
    return text.removeprefix("\ufeff")  # a byte-order mark, as spreadsheet programs write


def _check_columns(path: Path, line: int, names: Sequence[str], columns: Sequence[str]) -> None:
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise table_error(
            f"unknown column(s) {', '.join(repr(n) for n in unknown)}; accepted: {', '.join(columns)}", path, line
        )
    dupes = sorted({n for n in names if list(names).count(n) > 1})
    if dupes:
        raise table_error(f"duplicate column(s) {', '.join(dupes)}", path, line)


def _parse_csv(path: Path, text: str, columns: Sequence[str], required: Sequence[str]) -> list[Row]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    header_line = 0
    rows: list[Row] = []
    start = 1  # first line of the record being read (quoted fields may span lines)
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not any(field.strip() for field in record):
                continue
            if header is None:
                header, header_line = [field.strip() for field in record], line
                _check_columns(path, line, header, columns)
                missing = [c for c in required if c not in header]
                if missing:
                    raise table_error(
                        f"header has no {', '.join(repr(c) for c in missing)} column (header: {', '.join(header)})",
                        path, line,
                    )
                continue
            if len(record) != len(header):
                raise table_error(
                    f"{len(record)} fields, but the header (line {header_line}) has {len(header)}", path, line
                )
            rows.append(Row(line, {k: v for k, v in zip(header, record) if v.strip()}))
    except csv.Error as e:
        raise table_error(f"malformed CSV ({e})", path, reader.line_num or start) from None
    return rows


def _parse_jsonl(path: Path, text: str, columns: Sequence[str]) -> list[Row]:
    rows: list[Row] = []
    # split on "\n" only: str.splitlines would also split on U+2028 etc., which JSON strings may contain
    for line, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw, object_pairs_hook=lambda pairs, n=line: _unique_keys(path, n, pairs))
        except json.JSONDecodeError as e:
            raise table_error(f"malformed JSON ({e.msg} at column {e.colno})", path, line) from None
        if not isinstance(obj, dict):
            raise table_error(f"expected a JSON object, got {type(obj).__name__}", path, line)
        _check_columns(path, line, list(obj), columns)
        values: dict[str, str] = {}
        for key, value in obj.items():
            if value is None:
                continue
            if key == "uid" and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                raise table_error(f"{key!r} must be a string, got {type(value).__name__}", path, line)
            if value.strip():
                values[key] = value
        rows.append(Row(line, values))
    return rows


def _unique_keys(path: Path, line: int, pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise table_error(f"duplicate key(s) {', '.join(dupes)} in the JSON object", path, line)
    return dict(pairs)


def resolve_under_root(
    ref: str, root: str | os.PathLike, *, where: str, allow_outside_root: bool = False
) -> Path:
    """Resolve ``ref`` (relative to ``root``) to an existing regular file inside ``root``.

    Refused unless ``allow_outside_root``: absolute paths, and paths that lead outside ``root``
    either by name (``..``) or once symlinks are followed. Symlink loops are always refused.

    Args:
        ref: the path as written in the file.
        root: the declared root (resolved here).
        where: the place ``ref`` came from (e.g. ``"data.csv, line 3"``), for error messages.
        allow_outside_root: accept absolute paths and paths outside ``root``.

    Returns:
        The resolved (absolute, symlink-free) path.

    Raises:
        UnsafePathError: absolute path, escape from ``root``, symlink loop.
        DatasetError: the file does not exist or is not a regular file.
    """
    root = Path(root).resolve()
    p = Path(ref)
    if p.is_absolute() and not allow_outside_root:
        raise UnsafePathError(
            f"{where}: absolute path {ref!r} refused; write paths relative to {root} "
            "(or pass allow_outside_root=True)"
        )
    candidate = root / p
    if not allow_outside_root and not Path(os.path.normpath(candidate)).is_relative_to(root):
        raise UnsafePathError(
            f"{where}: path {ref!r} leads outside the root {root}; '..' may not leave it "
            "(or pass allow_outside_root=True)"
        )
    try:
        resolved = candidate.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a symlink loop this way
        raise UnsafePathError(f"{where}: path {ref!r} is a symlink loop") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafePathError(f"{where}: path {ref!r} is a symlink loop") from None
        if isinstance(e, FileNotFoundError):
            raise DatasetError(f"{where}: file {ref!r} does not exist (looked for {candidate})") from None
        raise DatasetError(f"{where}: cannot access {ref!r} ({e.strerror or e})") from None
    except ValueError as e:  # e.g. an embedded NUL character
        raise DatasetError(f"{where}: invalid path {ref!r} ({e})") from None
    if not allow_outside_root and not resolved.is_relative_to(root):
        raise UnsafePathError(
            f"{where}: path {ref!r} resolves to {resolved}, outside the root {root} (a symlink pointing out); "
            "pass allow_outside_root=True to allow it"
        )
    if not resolved.is_file():
        raise DatasetError(f"{where}: {ref!r} is not a regular file")
    return resolved


def check_uid(uid: str, where: str) -> str:
    """A uid is a non-empty name safe to use as a file name: no path separator, no control
    character, no surrounding whitespace, not ``.`` or ``..``. Returns it; raises DatasetError."""
    problem = None
    if not isinstance(uid, str) or not uid:
        problem = "is empty" if uid == "" else f"must be a string, got {type(uid).__name__}"
    elif uid in (".", ".."):
        problem = "may not be '.' or '..'"
    elif "/" in uid or "\\" in uid:
        problem = "may not contain '/' or '\\' (it names output files)"
    elif any(ord(c) < 32 or ord(c) == 127 for c in uid):
        problem = "contains a control character"
    elif uid != uid.strip():
        problem = "has leading or trailing whitespace"
    if problem:
        raise DatasetError(f"{where}: uid {uid!r} {problem}")
    return uid
