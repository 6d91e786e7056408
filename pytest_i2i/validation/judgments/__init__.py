"""Human-judgment sets: the tidy format + TOML manifest, native-layout adapters, precomputed scores.

:func:`load_judgments` reads a manifest (``judgments.toml`` or any ``.toml``) or a folder in a
recognised native layout (:data:`LAYOUTS`); :func:`load_scores` reads precomputed metric scores.
The format is documented in ``human_judgments/README.md``.

Example:
    >>> js = load_judgments("Text-Guided_IE/")  # a folder holding the ImagenHub rater TSVs  # doctest: +SKIP
    >>> js.kind, js.criteria  # doctest: +SKIP
    ('edit-rating', ['SC', 'PQ', 'overall'])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from pytest_i2i.data.manifest import resolve_under_root
from pytest_i2i.errors import JudgmentError
from pytest_i2i.validation.judgments import bapps, genaibench, imagenhub, kadid, nights, tid2013, tifa, viescore
from pytest_i2i.validation.judgments.format import (
    KINDS,
    MANIFEST_NAME,
    JudgmentSet,
    check_images,
    check_table,
    read_manifest,
    read_tidy,
    record_file,
    write_manifest,
)
from pytest_i2i.validation.judgments.scores import MetricScores, ScoreSet, load_scores

ADAPTERS = {m.NAME: m for m in (imagenhub, bapps, nights, tid2013, kadid, genaibench, tifa)}
LAYOUTS = [f"a manifest ({MANIFEST_NAME} in the folder, or a .toml file; see human_judgments/README.md)",
           *(m.LAYOUT for m in ADAPTERS.values())]

__all__ = ["ADAPTERS", "KINDS", "LAYOUTS", "JudgmentSet", "MetricScores", "ScoreSet", "detect_layout",
           "is_judgment_path", "load_judgments", "load_scores", "read_manifest", "write_manifest"]


def detect_layout(folder: Path) -> str | None:
    """The adapter name whose native layout ``folder`` has, or ``None``."""
    for name, module in ADAPTERS.items():
        if module.detect(folder):
            return name
    return None


def is_judgment_path(path: str | os.PathLike) -> bool:
    p = Path(path)
    if p.is_file():
        return p.suffix.lower() == ".toml"
    return p.is_dir() and ((p / MANIFEST_NAME).is_file() or detect_layout(p) is not None)


def load_judgments(path: str | os.PathLike, *, allow_outside_root: bool = False) -> JudgmentSet:
    """Load one judgment set.

    Args:
        path: a ``.toml`` manifest, a folder holding ``judgments.toml``, or a folder in a native
            layout (auto-detected; see :data:`LAYOUTS`).
        allow_outside_root: let file / image paths in the manifest leave the declared root.

    Raises:
        JudgmentError: unrecognised layout (the message lists the recognised ones), malformed files,
            hash mismatches, empty sets, duplicate records, missing images.
        UnsafePathError: a path in a manifest or table escapes its root.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise JudgmentError(f"{p}: does not exist")
    manifest_path = p if p.is_file() else p / MANIFEST_NAME
    if p.is_file() and p.suffix.lower() != ".toml":
        raise JudgmentError(f"{p}: a judgment set is a .toml manifest or a folder; recognised layouts: "
                            + "; ".join(LAYOUTS))
    if manifest_path.is_file():
        js = _from_manifest(manifest_path, allow_outside_root)
    else:
        layout = detect_layout(p)
        if layout is None:
            raise JudgmentError(f"{p}: no manifest and no recognised layout. Recognised: " + "; ".join(LAYOUTS))
        js = ADAPTERS[layout].load(p)
        js.warnings.append(f"no manifest: layout auto-detected as {layout}; source, licence and file hashes "
                           "unverified (hashes recorded)")
    where = str(manifest_path if manifest_path.is_file() else p)
    check_table(js, where)
    check_images(js, where)
    return js


def _from_manifest(path: Path, allow_outside_root: bool) -> JudgmentSet:
    m = read_manifest(path)
    base = path.parent.resolve()
    root = (base / m.get("root", ".")).resolve()
    if not root.is_dir():
        raise JudgmentError(f"{path}: root {m.get('root', '.')!r} is not a folder ({root})")
    images_root = None
    if "images_root" in m:
        images_root = (root / m["images_root"]).resolve()
        if not allow_outside_root and not images_root.is_relative_to(root):
            from pytest_i2i.errors import UnsafePathError

            raise UnsafePathError(f"{path}: images_root {m['images_root']!r} leads outside the root {root}")
        if not images_root.is_dir():
            raise JudgmentError(f"{path}: images_root {m['images_root']!r} is not a folder ({images_root})")
    fmt = m.get("format", "tidy")
    entries = m.get("files", [])
    resolved = [(resolve_under_root(e["path"], root, where=f"{path}, files", allow_outside_root=allow_outside_root),
                 e.get("sha256")) for e in entries]
    direction = m.get("score_direction", "higher_is_better") == "higher_is_better"
    if fmt == "tidy":
        if not resolved:
            raise JudgmentError(f"{path}: a tidy set lists its tables under [[files]]")
        tables, files = [], []
        for f, sha in resolved:
            files.append(record_file(f, sha, where=str(path)))
            tables.append(read_tidy(f, m["kind"], m.get("columns")))
        table = pd.concat(tables, ignore_index=True)
        criteria = sorted(set(table["criterion"])) if "criterion" in table else []
        js = JudgmentSet(name=m["name"], kind=m["kind"], table=table, root=root, images_root=images_root,
                         higher_is_better=direction, criteria=m.get("criteria", criteria),
                         synthetic=bool(m.get("synthetic", False)), files=files, manifest=m, layout="tidy")
        if m["kind"] == "edit-rating" and (table["model"] == "").any():
            raise JudgmentError(f"{path}: an edit-rating table needs a model for every row")
    elif fmt in ADAPTERS:
        expected = {f.name: sha for f, sha in resolved if sha}
        for f, sha in resolved:
            record_file(f, sha, where=str(path))
        kwargs: dict[str, Any] = {"expected_sha256": expected}
        if fmt == "imagenhub":
            kwargs["images_root"] = images_root
        js = ADAPTERS[fmt].load(root, m, **kwargs)
        if js.kind != m["kind"]:
            raise JudgmentError(f"{path}: kind {m['kind']!r} but the {fmt} layout holds {js.kind!r} judgments")
        js.higher_is_better = direction
    else:
        raise JudgmentError(f"{path}: format {fmt!r} unknown; formats: tidy, {', '.join(ADAPTERS)}")
    if m.get("criteria") and js.kind in ("rating", "edit-rating"):
        unknown = sorted(set(js.table["criterion"]) - set(m["criteria"]))
        if unknown:
            raise JudgmentError(f"{path}: criteria {unknown} in the data are not declared in 'criteria'")
    return js
