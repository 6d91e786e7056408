"""TID2013 (Ponomarenko et al. 2015), native layout.

Layout recognised: a folder with ``mos_with_names.txt`` (lines ``<MOS> <distorted file name>``,
e.g. ``5.51429 i01_01_1.bmp``), and optionally ``distorted_images/`` and ``reference_images/``
(reference of ``iXX_YY_Z.bmp`` is ``IXX.BMP``, matched case-insensitively). MOS: higher is better.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from pytest_i2i.errors import JudgmentError
from pytest_i2i.validation.judgments.format import RATING_COLUMNS, JudgmentSet, parse_float, read_text, record_file

NAME = "tid2013"
LAYOUT = "TID2013: mos_with_names.txt ('<MOS> <name>' per line), distorted_images/, reference_images/"
_NAME = re.compile(r"^[iI](\d+)_\d+_\d+\.\w+$")


def detect(folder: Path) -> bool:
    return (folder / "mos_with_names.txt").is_file()


def _reference_for(name: str, refs: dict[str, str], where: str) -> str | None:
    m = _NAME.match(name)
    if not m:
        raise JudgmentError(f"{where}: image name {name!r} is not TID2013's iXX_YY_Z.ext")
    return refs.get(f"i{m.group(1)}")


def load(folder: Path, manifest: dict[str, Any] | None = None, *, expected_sha256: dict[str, str] | None = None,
         **_: Any) -> JudgmentSet:
    path = folder / "mos_with_names.txt"
    text = read_text(path)
    has_images = (folder / "distorted_images").is_dir() and (folder / "reference_images").is_dir()
    refs = {}
    if has_images:
        refs = {p.stem.lower(): f"reference_images/{p.name}" for p in (folder / "reference_images").iterdir()}
    records = []
    for line, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        where = f"{path}, line {line}"
        parts = raw.split()
        if len(parts) != 2:
            raise JudgmentError(f"{where}: expected '<MOS> <image name>', got {raw.strip()!r}")
        mos = parse_float(parts[0], where, "MOS")
        name = parts[1]
        ref = _reference_for(name, refs, where)
        if has_images and ref is None:
            raise JudgmentError(f"{where}: no reference image for {name!r} in {folder / 'reference_images'}")
        records.append((name, "", "", "", mos, f"distorted_images/{name}" if has_images else None, ref))
    m = dict(manifest or {})
    m.setdefault("name", folder.name)
    return JudgmentSet(name=m["name"], kind="rating", table=pd.DataFrame.from_records(records, columns=RATING_COLUMNS),
                       root=folder, images_root=folder if has_images else None, higher_is_better=True,
                       criteria=[""], synthetic=bool(m.get("synthetic", False)), manifest=m, layout=NAME,
                       files=[record_file(path, (expected_sha256 or {}).get(path.name))])
