"""The task manifest of a judging study (``tasks.json``): what raters see, with which answers, in which order.

A task manifest is strict JSON written by ``i2i judge make`` (or by hand)::

    {
      "format": "i2i-judge-tasks", "version": 1,
      "name": "blur-study", "kind": "2afc",            # 2afc | pairwise | rating
      "question": "Which image is closer to the reference?",
      "images_root": "images",                         # relative to the manifest's folder
      "seed": 0,                                       # per-rater presentation order
      "repeats": ["t0003"],                            # shown twice to every rater (sides swapped the 2nd time)
      "images": {"ref/astronaut.png": "<sha256>", ...},  # every image the items name, with its hash
      "items": [
        {"id": "t0001", "reference": "ref/astronaut.png", "p0": "p0/astronaut.png", "p1": "p1/astronaut.png",
         "left": "p1", "gold": "p0", "note": {...}}
      ]
    }

Item fields by kind (paths are relative to ``images_root``; ``note`` is free JSON, never shown):

- ``2afc``: ``reference``, ``p0``, ``p1``, ``left`` (``p0``/``p1``: the one shown on the left), optional
  ``gold`` (the known answer: ``p0``/``p1``).
- ``pairwise``: ``a``, ``b``, ``left`` (``a``/``b``), at least one of ``input`` (the edit's input) and
  ``reference`` (a target), optional ``instruction``, ``gold`` (``a``/``b``); the manifest's ``models``
  names what ``a`` and ``b`` are (``{"a": "ckpt-10k", "b": "ckpt-20k"}``).
- ``rating``: ``image``, optional ``model``, ``reference``, ``input``, ``instruction``; the manifest's
  ``scale`` declares the answers: ``{"criterion": "quality", "min": 1, "max": 5, "step": 1,
  "labels": {"1": "bad", "5": "excellent"}, "higher_is_better": true}``.

Every problem raises :class:`~pytest_i2i.errors.DatasetError` naming the manifest and the item;
missing images and hash mismatches are listed by file.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_i2i.errors import DatasetError, I2IInputError

TASKS_NAME = "tasks.json"
FORMAT = "i2i-judge-tasks"
VERSION = 1
KINDS = ("2afc", "pairwise", "rating")
#: the two candidates of a choice, in the judgment format's order (p1 / b is what ``h`` measures)
ROLES = {"2afc": ("p0", "p1"), "pairwise": ("a", "b")}
#: what a rater may answer, by kind ("left"/"right" are sides on the screen, mapped to roles per slot)
ANSWERS = {"2afc": ("left", "right", "cant_tell"), "pairwise": ("left", "right", "tie", "both_bad")}
#: the answers after mapping sides to roles
OUTCOMES = {"2afc": ("p0", "p1", "cant_tell"), "pairwise": ("a", "b", "tie", "both_bad")}
DEFAULT_QUESTIONS = {
    "2afc": "Which image is closer to the reference in the middle?",
    "pairwise": "Which result is better?",
    "rating": "How good is this image?",
}
#: image formats every browser shows; other files are converted to PNG by ``i2i judge make``
WEB_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")
IMAGE_FIELDS = ("reference", "input", "p0", "p1", "a", "b", "image")
ITEM_KEYS = {"id", "reference", "input", "instruction", "p0", "p1", "a", "b", "image", "model", "left", "gold", "note"}
MANIFEST_KEYS = {"format", "version", "name", "kind", "question", "images_root", "seed", "repeats", "images", "items",
                 "scale", "models", "description", "created_by"}
#: task ids and rater names: safe in file names, URLs and the judgment file's item ids ('@' and '#' are separators)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_ITEMS = 100_000
MAX_SCALE_VALUES = 101


def check_name(value: Any, what: str) -> str:
    """A task id or rater name: 1-64 characters of ``A-Z a-z 0-9 _ . -``, starting with a letter or digit."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise I2IInputError(f"{what} {value!r} is not valid: use 1-64 letters, digits, '_', '.' or '-', "
                            "starting with a letter or digit")
    return value


@dataclass(frozen=True)
class Scale:
    """The answers of a rating study: ``min, min + step, ..., max`` (at most 101 values)."""

    criterion: str = "quality"
    min: float = 1.0
    max: float = 5.0
    step: float = 1.0
    labels: dict[str, str] = field(default_factory=dict)
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        for name in ("min", "max", "step"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise I2IInputError(f"scale {name} must be a finite number, got {v!r}")
        if self.step <= 0 or self.max <= self.min:
            raise I2IInputError(f"scale {self.min}..{self.max} step {self.step}: needs min < max and step > 0")
        n = (self.max - self.min) / self.step
        if abs(n - round(n)) > 1e-9 or round(n) + 1 > MAX_SCALE_VALUES:
            raise I2IInputError(f"scale {self.min}..{self.max} step {self.step}: (max - min) must be a whole number "
                                f"of steps, at most {MAX_SCALE_VALUES} values")
        if not isinstance(self.criterion, str) or not NAME_PATTERN.fullmatch(self.criterion):
            raise I2IInputError(f"scale criterion {self.criterion!r}: use letters, digits, '_', '.' or '-'")
        if not isinstance(self.labels, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                        for k, v in self.labels.items()):
            raise I2IInputError("scale labels map a value (as text) to a label")

    def values(self) -> list[float]:
        n = int(round((self.max - self.min) / self.step))
        return [self.min + i * self.step for i in range(n + 1)]

    def check(self, value: Any) -> float:
        """``value`` if it is one of :meth:`values` (within 1e-9), else :class:`I2IInputError`."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise I2IInputError(f"score {value!r} is not a finite number")
        for v in self.values():
            if abs(v - value) <= 1e-9 * max(1.0, abs(v)):
                return v
        raise I2IInputError(f"score {value!r} is not on the scale {self.min}..{self.max} step {self.step}")

    def to_json(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "min": self.min, "max": self.max, "step": self.step,
                "labels": dict(self.labels), "higher_is_better": self.higher_is_better}

    @classmethod
    def parse(cls, text: str, *, criterion: str = "quality", labels: str = "", higher_is_better: bool = True) -> Scale:
        """``"1:5"`` or ``"0:10:0.5"`` (min:max[:step]); labels ``"1=bad,5=excellent"``."""
        parts = text.split(":")
        try:
            nums = [float(p) for p in parts]
        except ValueError:
            raise I2IInputError(f"--scale {text!r}: write MIN:MAX or MIN:MAX:STEP, e.g. 1:5") from None
        if len(nums) not in (2, 3):
            raise I2IInputError(f"--scale {text!r}: write MIN:MAX or MIN:MAX:STEP, e.g. 1:5")
        lab: dict[str, str] = {}
        for spec in (s for s in labels.split(",") if s.strip()):
            key, sep, value = spec.partition("=")
            if not sep:
                raise I2IInputError(f"--labels {spec!r}: write VALUE=LABEL, e.g. 1=bad")
            lab[key.strip()] = value.strip()
        scale = cls(criterion, nums[0], nums[1], nums[2] if len(nums) == 3 else 1.0, lab, higher_is_better)
        for key in lab:
            try:
                scale.check(float(key))
            except (I2IInputError, ValueError):
                raise I2IInputError(f"--labels: {key!r} is not a value of the scale {text}") from None
        return scale

    @classmethod
    def from_json(cls, data: Any, where: str) -> Scale:
        if not isinstance(data, dict):
            raise DatasetError(f"{where}: 'scale' must be an object")
        unknown = set(data) - {"criterion", "min", "max", "step", "labels", "higher_is_better"}
        if unknown:
            raise DatasetError(f"{where}: scale has unknown key(s) {', '.join(sorted(unknown))}")
        try:
            return cls(data.get("criterion", "quality"), data.get("min"), data.get("max"), data.get("step", 1.0),
                       data.get("labels", {}), bool(data.get("higher_is_better", True)))
        except I2IInputError as e:
            raise DatasetError(f"{where}: {e}") from None


@dataclass(frozen=True)
class Slot:
    """One presentation to one rater: the task, which time it is shown (1, or 2 for a repeat), and the
    role shown on the left (``None`` for ratings)."""

    task: str
    occurrence: int
    left: str | None

    @property
    def right(self) -> str | None:
        return None if self.left is None else next(r for r in _roles_of(self.left) if r != self.left)


def _roles_of(role: str) -> tuple[str, str]:
    return ROLES["2afc"] if role in ROLES["2afc"] else ROLES["pairwise"]


@dataclass
class TaskSet:
    """A loaded, checked task manifest (build one with :func:`load_tasks`)."""

    name: str
    kind: str
    question: str
    items: dict[str, dict[str, Any]]
    repeats: tuple[str, ...]
    seed: int
    images: dict[str, str]
    root: Path
    path: Path
    scale: Scale | None = None
    models: dict[str, str] = field(default_factory=dict)
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def answers(self) -> tuple[str, ...]:
        return ANSWERS.get(self.kind, ())

    def n_slots(self) -> int:
        return len(self.items) + len(self.repeats)

    def schedule(self, rater: str) -> list[Slot]:
        """The rater's presentation order: every item once in an order drawn from ``(seed, rater)``,
        and each repeated item a second time (other side on the left) at least 3 slots after its first
        showing. Deterministic: a rater who comes back gets the same order."""
        rng = random.Random(f"{self.seed}:{rater}")
        ids = list(self.items)
        rng.shuffle(ids)
        slots = [Slot(i, 1, self.items[i].get("left")) for i in ids]
        repeats = list(self.repeats)
        rng.shuffle(repeats)
        for rid in repeats:
            first = next(k for k, s in enumerate(slots) if s.task == rid and s.occurrence == 1)
            lo = min(first + 4, len(slots))
            pos = rng.randint(lo, len(slots))
            left = slots[first].left
            slots.insert(pos, Slot(rid, 2, None if left is None else Slot(rid, 1, left).right))
        return slots


def load_tasks(path: str | os.PathLike, *, check_files: bool = True) -> TaskSet:
    """Read and check a task manifest (a ``tasks.json`` file or the folder holding it).

    Args:
        path: the manifest or its folder.
        check_files: check that every image exists inside ``images_root`` and matches its sha256.

    Raises:
        DatasetError: malformed manifest (naming the key or item), missing images or hash mismatches
            (naming every file, up to 20), paths leaving the images root (``UnsafePathError``).
    """
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / TASKS_NAME
    try:
        data = json.loads(p.read_bytes().decode("utf-8"), parse_constant=_no_constant)
    except OSError as e:
        raise DatasetError(f"{p}: cannot read the task manifest ({e.strerror or e})") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise DatasetError(f"{p}: not a valid JSON task manifest ({e})") from None
    where = str(p)
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: a task manifest is a JSON object")
    unknown = set(data) - MANIFEST_KEYS
    if unknown:
        raise DatasetError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; accepted: "
                           + ", ".join(sorted(MANIFEST_KEYS)))
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise DatasetError(f"{where}: not an {FORMAT} manifest of version {VERSION} "
                           f"(format {data.get('format')!r}, version {data.get('version')!r})")
    kind = data.get("kind")
    if kind not in KINDS:
        raise DatasetError(f"{where}: kind {kind!r} unknown; kinds: {', '.join(KINDS)}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DatasetError(f"{where}: 'name' must be a non-empty string")
    for key in ("question", "description", "images_root", "created_by"):
        if key in data and not isinstance(data[key], str):
            raise DatasetError(f"{where}: {key!r} must be a string")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DatasetError(f"{where}: 'seed' must be an integer")
    scale = Scale.from_json(data["scale"], where) if "scale" in data else None
    if (kind == "rating") != (scale is not None):
        raise DatasetError(f"{where}: a rating study declares its 'scale'; other kinds have none")
    models = data.get("models", {})
    if not isinstance(models, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in models.items()):
        raise DatasetError(f"{where}: 'models' maps a role (a, b) to a model name")
    raw_items = data.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise DatasetError(f"{where}: 'items' must be a non-empty list")
    if len(raw_items) > MAX_ITEMS:
        raise DatasetError(f"{where}: {len(raw_items)} items; at most {MAX_ITEMS}")
    items: dict[str, dict[str, Any]] = {}
    for k, item in enumerate(raw_items):
        it = _check_item(item, kind, f"{where}, items[{k}]")
        if it["id"] in items:
            raise DatasetError(f"{where}, items[{k}]: duplicate id {it['id']!r}")
        items[it["id"]] = it
    repeats = data.get("repeats", [])
    if not isinstance(repeats, list) or any(r not in items for r in repeats) or len(set(repeats)) != len(repeats):
        raise DatasetError(f"{where}: 'repeats' must list distinct item ids of this manifest")
    images = data.get("images")
    if images is not None and (not isinstance(images, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) for k, v in images.items())):
        raise DatasetError(f"{where}: 'images' maps each image path to its sha256 (64 lowercase hex digits)")
    used = sorted({it[f] for it in items.values() for f in IMAGE_FIELDS if f in it})
    if images is not None:
        unlisted = [u for u in used if u not in images]
        if unlisted:
            raise DatasetError(f"{where}: {len(unlisted)} image(s) named by items are not listed under 'images', "
                               "e.g. " + ", ".join(repr(u) for u in unlisted[:5]))
    root = (p.parent / data.get("images_root", "images")).resolve()
    ts = TaskSet(name=name, kind=kind, question=data.get("question") or DEFAULT_QUESTIONS[kind], items=items,
                 repeats=tuple(repeats), seed=seed, images={u: (images or {}).get(u, "") for u in used}, root=root,
                 path=p.resolve(), scale=scale, models=models, description=data.get("description", ""), raw=data)
    if check_files:
        check_images(ts)
    return ts


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _check_item(item: Any, kind: str, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise DatasetError(f"{where}: an item is a JSON object")
    unknown = set(item) - ITEM_KEYS
    if unknown:
        raise DatasetError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    try:
        check_name(item.get("id"), "item id")
    except I2IInputError as e:
        raise DatasetError(f"{where}: {e}") from None
    where = f"{where} (id {item['id']!r})"
    required = {"2afc": ("reference", "p0", "p1", "left"), "pairwise": ("a", "b", "left"),
                "rating": ("image",)}[kind]
    allowed = {"2afc": {"reference", "p0", "p1"}, "pairwise": {"a", "b", "input", "reference"},
               "rating": {"image", "input", "reference"}}[kind]
    missing = [k for k in required if k not in item]
    if missing:
        raise DatasetError(f"{where}: a {kind} item needs {', '.join(missing)}")
    if kind == "pairwise" and "input" not in item and "reference" not in item:
        raise DatasetError(f"{where}: a pairwise item shows an 'input' or a 'reference' (or both)")
    for f in IMAGE_FIELDS:
        if f not in item:
            continue
        if f not in allowed:
            raise DatasetError(f"{where}: a {kind} item has no {f!r} image")
        v = item[f]
        if (not isinstance(v, str) or not v or "\\" in v or "\x00" in v or v.startswith("/")
                or posixpath.normpath(v) != v or v.split("/")[0] == ".."):
            raise DatasetError(f"{where}: {f} must be a normalised relative path inside images_root ('a/b.png'), "
                               f"got {v!r}")
        if Path(v).suffix.lower() not in WEB_IMAGE_SUFFIXES:
            raise DatasetError(f"{where}: {f} {v!r} is not a format browsers show ({', '.join(WEB_IMAGE_SUFFIXES)})")
    for f in ("instruction", "model"):
        if f in item and not isinstance(item[f], str):
            raise DatasetError(f"{where}: {f} must be a string")
    if "model" in item and kind != "rating":
        raise DatasetError(f"{where}: 'model' is for rating items (pairwise studies name models under 'models')")
    if kind in ROLES:
        if item["left"] not in ROLES[kind]:
            raise DatasetError(f"{where}: left must be one of {', '.join(ROLES[kind])}, got {item['left']!r}")
        if item.get("gold") is not None and item["gold"] not in ROLES[kind]:
            raise DatasetError(f"{where}: gold must be one of {', '.join(ROLES[kind])} or null, got {item['gold']!r}")
    elif "left" in item or item.get("gold") is not None:
        raise DatasetError(f"{where}: rating items have no 'left' or 'gold'")
    return dict(item)


def check_images(tasks: TaskSet) -> None:
    """Every image inside the images root, present, and matching its recorded sha256; fills in missing hashes.

    Raises:
        DatasetError: listing every missing or changed file (up to 20 of each); UnsafePathError for a path
            leaving the root.
    """
    from pytest_i2i.data.manifest import resolve_under_root
    from pytest_i2i.errors import UnsafePathError
    from pytest_i2i.files import sha256_file

    if not tasks.root.is_dir():
        raise DatasetError(f"{tasks.path}: images_root {tasks.root} is not a folder")
    missing, changed = [], []
    for rel, expected in sorted(tasks.images.items()):
        try:
            full = resolve_under_root(rel, tasks.root, where=f"{tasks.path}, image {rel!r}")
        except UnsafePathError:
            raise
        except DatasetError:
            missing.append(rel)
            continue
        digest = sha256_file(full)
        if expected and digest != expected:
            changed.append(rel)
        tasks.images[rel] = digest
    problems = []
    if missing:
        problems.append(f"{len(missing)} image(s) missing under {tasks.root}: " + ", ".join(missing[:20])
                        + (" ..." if len(missing) > 20 else ""))
    if changed:
        problems.append(f"{len(changed)} image(s) differ from their recorded sha256 (modified since the tasks were "
                        "made): " + ", ".join(changed[:20]) + (" ..." if len(changed) > 20 else ""))
    if problems:
        raise DatasetError(f"{tasks.path}: " + "; ".join(problems))
