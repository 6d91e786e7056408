"""The output folder of a study: a judgment set in the project's format, appended to as raters answer.

::

    DIR/
      judgments.toml   the manifest (kind, images_root = "images", [[files]] judgments.jsonl)
      judgments.jsonl  the tidy table, one row per judgment (see pytest_i2i.judge.records)
      images/          the images the raters saw (hard links to the task folder's files, or copies)
      tasks.json       the task manifest served (images_root = "images"), for status and provenance

``i2i validate DIR``, ``pytest suites/validation --i2i-judgments=DIR`` and
:func:`pytest_i2i.load_judgments` read the folder as it is, also while collection goes on.

Durability: every judgment is one ``write`` of one line to a file opened with ``O_APPEND``, followed
by ``fsync``, before the rater's page hears "saved". A crash (even SIGKILL or power loss) loses at
most the judgment being written; an unfinished last line is cut off when the folder is opened again.
The file is locked (``flock``) while a server holds it, so two servers cannot interleave rows.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Any

from pytest_i2i.errors import DatasetError, I2IInputError
from pytest_i2i.files import TMP_PREFIX, fsync_dir, sha256_file, write_bytes_atomic, write_json_atomic
from pytest_i2i.judge.records import DATA_NAME, Judgment, decode_row, encode_line, judgment_row, read_rows
from pytest_i2i.judge.tasks import ROLES, TASKS_NAME, Slot, TaskSet

MANIFEST_NAME = "judgments.toml"
IMAGES_DIR = "images"

try:  # POSIX advisory locks; elsewhere two servers on one folder are not prevented
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class AlreadyJudged(I2IInputError):
    """The rater already answered this showing of this task, differently (answers are final)."""


def served_manifest(tasks: TaskSet) -> dict[str, Any]:
    """The task manifest as copied into the output folder: images under ``images/``, hashes filled in."""
    data = dict(tasks.raw)
    data["images_root"] = IMAGES_DIR
    data["images"] = dict(sorted(tasks.images.items()))
    return data


def judgment_manifest(tasks: TaskSet, *, synthetic: bool = False) -> dict[str, Any]:
    """The ``judgments.toml`` of a study's output folder (keys of the project's judgment manifest)."""
    how = {
        "2afc": "h = 1 when the rater chose p1 as closer to the reference, 0 for p0, 0.5 for 'can't tell'.",
        "pairwise": "winner = a, b or tie ('about the same'); 'both bad' is written as h = 0.5 with no winner.",
        "rating": "",
    }[tasks.kind]
    who = ("One record per judgment: item = '<task>@<rater>', '#2' appended for the second showing of a "
           "repeated task (sides swapped)." if tasks.kind in ROLES else
           "One record per judgment; item = task id, '#2' appended for the second showing of a repeated task.")
    m: dict[str, Any] = {
        "name": tasks.name,
        "kind": tasks.kind,
        "description": " ".join(s for s in (tasks.description, f"Question: {tasks.question}", who, how,
                                            "Task design (sides, gold answers, repeats) in tasks.json.") if s),
        "source": "collected locally with i2i judge serve (pytest-i2i)",
        "synthetic": bool(synthetic),
        "root": ".",
        "images_root": IMAGES_DIR,
    }
    if tasks.scale is not None:
        m["criteria"] = [tasks.scale.criterion]
        m["score_direction"] = "higher_is_better" if tasks.scale.higher_is_better else "lower_is_better"
    m["files"] = [{"path": DATA_NAME}]
    return m


class JudgmentStore:
    """A study's output folder, opened for appending (one per folder at a time).

    Example:
        >>> store = JudgmentStore("out/", load_tasks("tasks/")).open()   # doctest: +SKIP
        >>> store.add("ann", store.schedule("ann")[0], "left")           # doctest: +SKIP
    """

    def __init__(self, out: str | os.PathLike, tasks: TaskSet, *, synthetic: bool = False):
        self.out = Path(out).expanduser()
        self.tasks = tasks
        self.synthetic = synthetic
        self.data_path = self.out / DATA_NAME
        self.warnings: list[str] = []
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0
        self._judgments: dict[tuple[str, str, int], Judgment] = {}
        self._rows: dict[tuple[str, str, int], dict[str, str]] = {}
        self._schedules: dict[str, list[Slot]] = {}

    # -- opening --------------------------------------------------------------------------------
    def open(self) -> JudgmentStore:
        """Create or check the folder, link the images, lock and read the data file (cutting a torn tail).

        Raises:
            DatasetError: the folder holds another study, an image there was modified, the data file has a
                row this study did not write, or another server holds the folder.
        """
        if self.out.exists() and not self.out.is_dir():
            raise DatasetError(f"--out {self.out}: exists and is not a folder")
        self.out.mkdir(parents=True, exist_ok=True)
        self._write_tasks_copy()
        self._link_images()
        self._write_manifest()
        created = not self.data_path.exists()
        fd = os.open(self.data_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise DatasetError(f"{self.data_path}: in use by another i2i judge serve; stop it first") from None
            if created:
                fsync_dir(self.out)
            self._load(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def _write_tasks_copy(self) -> None:
        path = self.out / TASKS_NAME
        data = served_manifest(self.tasks)
        if path.exists():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise DatasetError(f"{path}: unreadable ({e}); the folder is not an i2i judge output") from None
            if old != data:
                raise DatasetError(f"{self.out}: holds judgments of another task set ({path} differs from "
                                   f"{self.tasks.path}); use a new --out folder")
            return
        write_json_atomic(path, data)

    def _link_images(self) -> None:
        changed = []
        for rel, digest in sorted(self.tasks.images.items()):
            dst = self.out / IMAGES_DIR / rel
            if dst.exists():
                if sha256_file(dst) != digest:
                    changed.append(rel)
                continue
            src = (self.tasks.root / rel).resolve()  # checked to stay inside the root; link the file, not a link
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.parent / f"{TMP_PREFIX}link-{secrets.token_hex(8)}"
            try:
                os.link(src, tmp)
                os.replace(tmp, dst)
            except OSError:  # another file system, or links not allowed: copy
                try:
                    tmp.unlink()
                except OSError:
                    pass
                write_bytes_atomic(dst, src.read_bytes())
        if changed:
            raise DatasetError(f"{self.out / IMAGES_DIR}: {len(changed)} image(s) differ from the study's recorded "
                               "sha256 (modified after judging began): " + ", ".join(changed[:20]))
        fsync_dir(self.out)

    def _write_manifest(self) -> None:
        from pytest_i2i.validation.judgments.format import read_manifest, write_manifest

        path = self.out / MANIFEST_NAME
        if path.exists():
            m = read_manifest(path)
            if m.get("kind") != self.tasks.kind or [f.get("path") for f in m.get("files", [])] != [DATA_NAME]:
                raise DatasetError(f"{path}: not the manifest of this study (kind {m.get('kind')!r}, files "
                                   f"{[f.get('path') for f in m.get('files', [])]}); use a new --out folder")
            if bool(m.get("synthetic", False)) != self.synthetic:
                raise DatasetError(f"{path}: synthetic = {bool(m.get('synthetic', False))}, but this server was "
                                   f"started with synthetic = {self.synthetic}; a study is one or the other")
            return
        fd, tmp = tempfile.mkstemp(dir=self.out, prefix=f"{TMP_PREFIX}manifest-")
        os.close(fd)
        try:
            write_manifest(judgment_manifest(self.tasks, synthetic=self.synthetic), tmp)
            write_bytes_atomic(path, Path(tmp).read_bytes())
        finally:
            os.unlink(tmp)

    def _load(self, fd: int) -> None:
        rows, torn = read_rows(self.data_path)
        if torn:
            size = os.fstat(fd).st_size
            os.ftruncate(fd, size - len(torn))
            os.fsync(fd)
            self.warnings.append(f"{self.data_path}: cut an unfinished last line ({len(torn)} bytes, a write "
                                 f"interrupted by a crash, never acknowledged): {torn[:120]!r}")
        for line, row in rows:
            where = f"{self.data_path}, line {line}"
            j = decode_row(self.tasks, row, where)
            key = (j.rater, j.task, j.occurrence)
            if key in self._judgments:
                raise DatasetError(f"{where}: a second record of rater {j.rater!r}, task {j.task!r}, showing "
                                   f"{j.occurrence}")
            self._judgments[key] = j
            self._rows[key] = row
        self._size = os.fstat(fd).st_size

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)  # releases the flock
                self._fd = None

    def __enter__(self) -> JudgmentStore:
        return self.open() if self._fd is None else self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- state ------------------------------------------------------------------------------------
    def schedule(self, rater: str) -> list[Slot]:
        with self._lock:
            if rater not in self._schedules:
                self._schedules[rater] = self.tasks.schedule(rater)
            return self._schedules[rater]

    def judgments(self) -> list[Judgment]:
        """Every judgment recorded so far, in file order."""
        with self._lock:
            return list(self._judgments.values())

    def progress(self, rater: str) -> tuple[int, int, Slot | None, int]:
        """``(done, total, next slot or None, its index)`` for ``rater``: the first unanswered slot of the schedule."""
        slots = self.schedule(rater)
        with self._lock:
            done = sum(1 for s in slots if (rater, s.task, s.occurrence) in self._judgments)
            for k, s in enumerate(slots):
                if (rater, s.task, s.occurrence) not in self._judgments:
                    return done, len(slots), s, k
        return done, len(slots), None, len(slots)

    def find_slot(self, rater: str, task: str, occurrence: int) -> Slot | None:
        for s in self.schedule(rater):
            if s.task == task and s.occurrence == occurrence:
                return s
        return None

    # -- writing ----------------------------------------------------------------------------------
    def add(self, rater: str, slot: Slot, answer: Any) -> tuple[Judgment, bool]:
        """Record ``rater``'s ``answer`` to ``slot`` durably; returns ``(judgment, written)``.

        Sending the same answer twice (a retry) writes nothing and returns ``written = False``.

        Raises:
            I2IInputError: an answer the study does not allow (nothing written).
            AlreadyJudged: a different answer to a showing already answered (nothing written).
            OSError: the write or fsync failed (the file is cut back: nothing written).
        """
        row, judgment = judgment_row(self.tasks, slot, rater, answer)
        key = (rater, slot.task, slot.occurrence)
        line = encode_line(row)
        with self._lock:
            if self._fd is None:
                raise I2IInputError(f"{self.out}: the store is closed")
            if key in self._judgments:
                if self._rows[key] == row:
                    return self._judgments[key], False
                raise AlreadyJudged(f"rater {rater!r} already answered task {slot.task!r} (showing {slot.occurrence}); "
                                    "answers are final")
            try:
                view = memoryview(line)
                while view:
                    n = os.write(self._fd, view)
                    view = view[n:]
                os.fsync(self._fd)
            except OSError:
                os.ftruncate(self._fd, self._size)
                raise
            self._size += len(line)
            self._judgments[key] = judgment
            self._rows[key] = row
        return judgment, True

    def read_locked(self, fn: Any) -> Any:
        """Call ``fn()`` while no judgment is being written (so a reader of the file sees whole lines)."""
        with self._lock:
            return fn()
