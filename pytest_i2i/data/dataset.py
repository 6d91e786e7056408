"""Evaluation datasets: samples of (input image, optional target image, optional texts).

:func:`~pytest_i2i.data.load_dataset` (:mod:`pytest_i2i.data.loading`) accepts three forms.

``None``: the built-in sample set (:func:`~pytest_i2i.data.sample_dataset`), colorization of
the colour photos bundled with scikit-image, so the suite runs with no data given.

A folder::

    my_dataset/
      inputs/       required: the input images (not recursive; names starting with "." are ignored)
      targets/      optional: one target per input, matched by file stem (inputs/cat.png <-> targets/cat.jpg)
      texts.jsonl   optional (or texts.csv, not both): a row per uid with any of
                    instruction, source_caption, target_caption

The uid of a sample is its input's file stem. With ``targets/``, every input needs a target and
every target an input; two files with the same stem in one folder are an error.

A manifest, ``.csv`` (with a header row) or ``.jsonl`` (one JSON object per line)::

    uid,input,target,instruction,source_caption,target_caption
    cat,inputs/cat.png,targets/cat.png,make it a painting,a photo of a cat,a painting of a cat

``input`` is required, every other column optional; an empty cell, JSON ``null`` or a missing
key means "not given". ``uid`` defaults to the input's file stem. Any other column is an error
(a misspelt column would otherwise drop its data silently).

Rules for every form:

- Manifest paths are relative to the manifest's folder, the root. Absolute paths and paths
  leading outside the root (``..``, or a symlink pointing out) are refused unless
  ``allow_outside_root=True``; the same holds for the files of a folder. Symlink loops are refused.
- uids are unique, non-empty and safe as file names (no ``/``, ``\\``, control characters,
  surrounding whitespace, ``.`` or ``..``).
- Targets, and each text field, are all-or-none: given for every sample or for none.
- Samples are ordered by uid (Python string order) whatever the order of files or rows;
  ``max_samples=n`` keeps the first n in that order.
- Tables are UTF-8 (a byte-order mark is accepted); file names must be valid UTF-8.
- Every problem raises :class:`~pytest_i2i.errors.DatasetError` (an ``I2IInputError``) naming
  the file and, for tables, the line. Images are decoded on access; a corrupt one raises
  ``I2IInputError`` naming its file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Union

import numpy as np
import torch

from pytest_i2i.data.manifest import (
    MANIFEST_COLUMNS,
    TEXT_FIELDS,
    TEXTS_COLUMNS,
    check_uid,
    location,
    read_table,
    resolve_under_root,
    table_error,
)
from pytest_i2i.errors import DatasetError, I2IInputError
from pytest_i2i.images import IMAGE_EXTENSIONS, ImageSet, load_images

# An image file, or an in-memory image load_images accepts (HWC array, CHW tensor, PIL image).
ImageRef = Union[Path, np.ndarray, torch.Tensor, Any]

ACCEPTED_FORMS = (
    "None (the built-in sample set), a dataset folder containing inputs/, "
    "or a manifest file (.csv or .jsonl)"
)


@dataclass(frozen=True, eq=False)
class Sample:
    """One evaluation sample.

    ``input`` and ``target`` are image files (``str`` / ``PathLike`` are stored as ``Path``) or
    in-memory images. Equality is identity: in-memory images have no cheap equality.
    """

    uid: str
    input: ImageRef
    target: ImageRef | None = None
    instruction: str | None = None
    source_caption: str | None = None
    target_caption: str | None = None

    def __post_init__(self) -> None:
        for name in ("input", "target"):
            value = getattr(self, name)
            if isinstance(value, (str, os.PathLike)):
                object.__setattr__(self, name, Path(value))
        if self.input is None:
            raise I2IInputError(f"sample {self.uid!r}: input is required")
        for name in TEXT_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise I2IInputError(f"sample {self.uid!r}: {name} must be a string or None, got {type(value).__name__}")


class I2IDataset(Sequence[Sample]):
    """Validated samples, ordered by uid. Build one with :func:`load_dataset`.

    Validation (on construction): valid and unique uids, targets and each text field
    all-or-none. ``dataset[i]`` is a :class:`Sample`; a slice gives a list of samples.

    Attributes:
        source: what was loaded, for reports (a path and its form, or the built-in set's call).
        root: the folder manifest/folder paths are confined to (``None`` for in-memory data).
        synthetic: ``True`` when (part of) the data is generated rather than collected.
        description: one line for reports.
        n_total: the number of samples before :meth:`subset`.
    """

    def __init__(
        self,
        samples: Iterable[Sample],
        *,
        source: str,
        root: str | os.PathLike | None = None,
        synthetic: bool = False,
        description: str | None = None,
        origins: Sequence[str] | None = None,
    ) -> None:
        """``origins[i]`` says where ``samples[i]`` came from (e.g. ``"data.csv, line 3"``); errors show it."""
        items = list(samples)
        if not items:
            raise DatasetError(f"{source}: no samples")
        where = list(origins) if origins is not None else [f"{source}, sample {i}" for i in range(len(items))]
        if len(where) != len(items):
            raise I2IInputError(f"origins: {len(where)} entries for {len(items)} samples")
        for sample, w in zip(items, where):
            if not isinstance(sample, Sample):
                raise I2IInputError(f"{w}: expected a Sample, got {type(sample).__name__}")
            check_uid(sample.uid, w)
        check_unique([s.uid for s in items], where, "uids", source)
        for name in ("target", *TEXT_FIELDS):
            _check_all_or_none(items, where, name, source)
        order = sorted(range(len(items)), key=lambda i: items[i].uid)
        self._samples = [items[i] for i in order]
        self._origins = [where[i] for i in order]
        self.source = source
        self.root = Path(root) if root is not None else None
        self.synthetic = synthetic
        self.n_total = len(self._samples)
        self.description = description or self._describe()

    def __len__(self) -> int:
        return len(self._samples)

    def __getitem__(self, i):  # type: ignore[override]
        return self._samples[i]

    def __repr__(self) -> str:
        return f"I2IDataset({self.source!r}, n={len(self)})"

    @property
    def uids(self) -> list[str]:
        return [s.uid for s in self._samples]

    def origin(self, uid: str) -> str:
        """Where the sample ``uid`` came from (file, or manifest file and line)."""
        for sample, where in zip(self._samples, self._origins):
            if sample.uid == uid:
                return where
        raise I2IInputError(f"{self.source}: no sample with uid {uid!r}")

    def inputs(self) -> ImageSet:
        """The input images, named by uid."""
        return _image_set([s.input for s in self._samples], self.uids, "inputs")

    def targets(self) -> ImageSet | None:
        """The target images, named by uid; ``None`` when the dataset has no targets."""
        if self._samples[0].target is None:  # all-or-none, checked on construction
            return None
        return _image_set([s.target for s in self._samples], self.uids, "targets")

    def instructions(self) -> list[str] | None:
        return self.texts("instruction")

    def source_captions(self) -> list[str] | None:
        return self.texts("source_caption")

    def target_captions(self) -> list[str] | None:
        return self.texts("target_caption")

    def texts(self, name: str) -> list[str] | None:
        """The text column ``name`` (one of ``TEXT_FIELDS``), or ``None`` when the dataset has none.

        Raises:
            I2IInputError: ``name`` is not a text column.
        """
        if name not in TEXT_FIELDS:
            raise I2IInputError(f"{name!r} is not a text column; the text columns are {', '.join(TEXT_FIELDS)}")
        values = [getattr(s, name) for s in self._samples]
        return None if values[0] is None else values

    def subset(self, n: int) -> I2IDataset:
        """The first ``n`` samples in uid order (all of them when ``n >= len(self)``)."""
        n = positive_int(n, "n")
        if n >= len(self):
            return self
        sub = I2IDataset(
            self._samples[:n], source=self.source, root=self.root, synthetic=self.synthetic,
            description=self.description, origins=self._origins[:n],
        )
        sub.n_total = self.n_total
        return sub

    def _describe(self) -> str:
        texts = [name for name in TEXT_FIELDS if self.texts(name) is not None]
        has_targets = self._samples[0].target is not None
        return (
            f"{len(self)} samples from {self.source}; targets: {'yes' if has_targets else 'no'}; "
            f"texts: {', '.join(texts) or 'none'}"
        )


def _image_set(refs: list[ImageRef], uids: list[str], label: str) -> ImageSet:
    images = load_images(refs, name=label)  # decoding errors name the file (or label[i] in memory)
    return ImageSet(list(uids), [lambda i=i: images[i] for i in range(len(images))], label)


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int when it is one and >= 1; otherwise I2IInputError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise I2IInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _listing(items: list[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_unique(keys: list[str], origins: list[str], what: str, source: str) -> None:
    """Raise DatasetError naming every duplicated key (``what``, plural) with the places it occurs."""
    seen: dict[str, list[str]] = {}
    for key, where in zip(keys, origins):
        seen.setdefault(key, []).append(where)
    dupes = [f"{key!r} ({'; '.join(places)})" for key, places in seen.items() if len(places) > 1]
    if dupes:
        raise DatasetError(f"{source}: duplicate {what}: {_listing(dupes)}")


def _check_all_or_none(items: list[Sample], origins: list[str], name: str, source: str) -> None:
    missing = [f"{s.uid} ({w})" for s, w in zip(items, origins) if getattr(s, name) is None]
    if 0 < len(missing) < len(items):
        raise DatasetError(
            f"{source}: {len(items) - len(missing)} of {len(items)} samples have a {name} but {len(missing)} do not: "
            f"{_listing(missing)}; give every sample a {name} or none"
        )


def load_manifest(path: str | os.PathLike, *, allow_outside_root: bool = False) -> I2IDataset:
    """Load a ``.csv`` / ``.jsonl`` manifest; its paths are relative to (and confined to) its folder."""
    path = Path(path)
    root = path.parent.resolve()
    rows = read_table(path, columns=MANIFEST_COLUMNS, required=("input",))
    samples: list[Sample] = []
    origins: list[str] = []
    for row in rows:
        where = location(path, row.line)
        v = row.values
        image = resolve_under_root(v["input"], root, where=where, allow_outside_root=allow_outside_root)
        target = None
        if "target" in v:
            target = resolve_under_root(v["target"], root, where=where, allow_outside_root=allow_outside_root)
        uid = v.get("uid", PurePath(v["input"]).stem)
        samples.append(Sample(uid, image, target, **{k: v[k] for k in TEXT_FIELDS if k in v}))
        origins.append(where)
    return I2IDataset(samples, source=f"{path} (manifest)", root=root, origins=origins)


def load_folder(folder: str | os.PathLike, *, allow_outside_root: bool = False) -> I2IDataset:
    """Load a dataset folder: ``inputs/``, optional ``targets/`` matched by stem, optional texts file."""
    folder = Path(folder)
    root = folder.resolve()
    if not (root / "inputs").is_dir():
        raise DatasetError(
            f"{folder}: no inputs/ folder; a dataset folder holds inputs/ (required), targets/ and "
            "texts.jsonl or texts.csv (optional)"
        )
    inputs = _images_by_uid(folder, "inputs", allow_outside_root)
    targets = None
    if (root / "targets").exists():
        targets = _images_by_uid(folder, "targets", allow_outside_root)
        no_target = sorted(set(inputs) - set(targets))
        if no_target:
            raise DatasetError(
                f"{folder / 'targets'}: no target for the input uid(s) {_listing(no_target)}; every input "
                "needs a target with the same file stem"
            )
        no_input = sorted(set(targets) - set(inputs))
        if no_input:
            raise DatasetError(
                f"{folder / 'targets'}: target(s) without an input: {_listing(no_input)}; inputs and targets "
                "are matched by file stem"
            )
    texts = _read_texts(folder, set(inputs), allow_outside_root)
    samples = [
        Sample(uid, image, targets[uid] if targets else None, **texts.get(uid, {}))
        for uid, image in inputs.items()
    ]
    return I2IDataset(
        samples, source=f"{folder} (folder)", root=root, origins=[str(p) for p in inputs.values()]
    )


def _images_by_uid(folder: Path, sub: str, allow_outside_root: bool) -> dict[str, Path]:
    """The image files of ``folder/sub`` by file stem, each checked to stay inside ``folder``."""
    directory = folder / sub
    try:
        names = sorted(os.listdir(directory))
    except OSError as e:
        raise DatasetError(f"{directory}: cannot list ({e.strerror or e})") from None
    found: list[tuple[str, Path]] = []
    for name in names:
        if name.startswith(".") or PurePath(name).suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        path = directory / name
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise DatasetError(
                f"{directory}: file name {os.fsencode(name)!r} is not valid UTF-8; rename the file"
            ) from None
        resolve_under_root(f"{sub}/{name}", folder, where=str(path), allow_outside_root=allow_outside_root)
        found.append((PurePath(name).stem, path))
    if not found:
        raise DatasetError(f"{directory}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    check_unique(
        [uid for uid, _ in found], [str(p) for _, p in found], "file stems (a uid is the file stem)", str(directory)
    )
    return dict(found)


def _read_texts(folder: Path, uids: set[str], allow_outside_root: bool) -> dict[str, dict[str, str]]:
    present = [name for name in ("texts.jsonl", "texts.csv") if (folder / name).exists()]
    if not present:
        return {}
    if len(present) > 1:
        raise DatasetError(f"{folder}: both texts.jsonl and texts.csv exist; keep one")
    path = folder / present[0]
    resolve_under_root(present[0], folder, where=str(path), allow_outside_root=allow_outside_root)
    rows = read_table(path, columns=TEXTS_COLUMNS, required=("uid",))
    check_unique([r.values["uid"] for r in rows], [location(path, r.line) for r in rows], "uids", str(path))
    for row in rows:
        if row.values["uid"] not in uids:
            raise table_error(f"uid {row.values['uid']!r} has no image in inputs/", path, row.line)
    texts = {r.values["uid"]: {k: r.values[k] for k in TEXT_FIELDS if k in r.values} for r in rows}
    without = sorted(uids - set(texts))
    if without:
        raise DatasetError(f"{path}: no row for the uid(s) {_listing(without)}; give every input a row")
    return texts
