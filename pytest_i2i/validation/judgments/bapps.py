"""BAPPS 2AFC (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric", the LPIPS paper), native layout.

Layout recognised: one or more folders (the root itself or below it, up to 3 levels, e.g.
``2afc/val/traditional``) each holding ``ref/``, ``p0/``, ``p1/`` (PNG) and ``judge/`` (``.npy``)
with one file per triplet sharing a stem (``000000.png`` / ``000000.npy``). ``judge`` holds the
fraction of people who judged ``p1`` closer to ``ref`` (LPIPS: ``(d1<d0)*judge + (d0<d1)*(1-judge)``).
Items are named ``<subset>/<stem>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pytest_i2i.errors import JudgmentError
from pytest_i2i.validation.judgments.format import CHOICE_COLUMNS, JudgmentSet

NAME = "bapps"
LAYOUT = "BAPPS 2AFC: folder(s) with ref/, p0/, p1/ (images) and judge/ (.npy, one per triplet)"
PARTS = ("ref", "p0", "p1", "judge")
MAX_DEPTH = 3


def subsets(root: Path) -> list[Path]:
    found = []
    frontier = [root]
    for _ in range(MAX_DEPTH + 1):
        nxt = []
        for d in frontier:
            if all((d / p).is_dir() for p in PARTS):
                found.append(d)
            else:
                nxt += sorted(c for c in d.iterdir() if c.is_dir() and not c.is_symlink())
        frontier = nxt
    return sorted(found)


def detect(folder: Path) -> bool:
    return folder.is_dir() and bool(subsets(folder))


def read_judge(path: Path) -> float:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises ValueError / OSError / EOFError / UnpicklingError on bad files
        raise JudgmentError(f"{path}: not a readable .npy judge file ({type(e).__name__}: {e})") from None
    if not isinstance(arr, np.ndarray) or arr.size != 1 or arr.dtype.kind not in "fiu":
        raise JudgmentError(f"{path}: a judge file must hold one number, got shape "
                            f"{getattr(arr, 'shape', None)} dtype {getattr(arr, 'dtype', None)}")
    h = float(arr.ravel()[0])
    if not 0.0 <= h <= 1.0:
        raise JudgmentError(f"{path}: judge = {h} must be a fraction in [0, 1]")
    return h


def load(folder: Path, manifest: dict[str, Any] | None = None, **_: Any) -> JudgmentSet:
    subs = subsets(folder)
    if not subs:
        raise JudgmentError(f"{folder}: no BAPPS subset; expected {LAYOUT}")
    records = []
    for sub in subs:
        rel = sub.relative_to(folder).as_posix()
        judges = sorted((sub / "judge").glob("*.npy"))
        if not judges:
            raise JudgmentError(f"{sub / 'judge'}: no .npy judge files")
        for j in judges:
            paths = {}
            for part in ("ref", "p0", "p1"):
                hits = sorted((sub / part).glob(j.stem + ".*"))
                if not hits:
                    raise JudgmentError(f"{sub / part}: missing image {j.stem}.* for judge file {j}")
                paths[part] = hits[0].relative_to(folder).as_posix()
            item = f"{rel}/{j.stem}" if rel != "." else j.stem
            records.append((item, paths["ref"], paths["p0"], paths["p1"], read_judge(j), None))
    m = dict(manifest or {})
    m.setdefault("name", folder.name)
    return JudgmentSet(name=m["name"], kind="2afc", table=pd.DataFrame.from_records(records, columns=CHOICE_COLUMNS),
                       root=folder, images_root=folder, synthetic=bool(m.get("synthetic", False)), manifest=m,
                       layout=NAME)
