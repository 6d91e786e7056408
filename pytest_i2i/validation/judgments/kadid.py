"""KADID-10k (Lin et al. 2019), native layout.

Layout recognised: a folder with ``dmos.csv`` (header ``dist_img, ref_img, dmos, var``) and
optionally ``images/`` holding both the distorted and the reference images. ``dmos`` is the mean
of the 1-5 ratings of the distorted image against its reference: higher is better.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from pytest_i2i.data.manifest import read_table
from pytest_i2i.validation.judgments.format import RATING_COLUMNS, JudgmentSet, parse_float, record_file

NAME = "kadid10k"
LAYOUT = "KADID-10k: dmos.csv (dist_img, ref_img, dmos, var) and images/"
COLUMNS = ("dist_img", "ref_img", "dmos", "var")


def detect(folder: Path) -> bool:
    p = folder / "dmos.csv"
    if not p.is_file():
        return False
    try:
        with open(p, encoding="utf-8-sig") as f:
            header = [h.strip() for h in f.readline().split(",")]
    except (OSError, UnicodeDecodeError):
        return False
    return all(c in header for c in COLUMNS[:3])


def load(folder: Path, manifest: dict[str, Any] | None = None, *, expected_sha256: dict[str, str] | None = None,
         **_: Any) -> JudgmentSet:
    path = folder / "dmos.csv"
    rows = read_table(path, columns=COLUMNS, required=COLUMNS[:3])
    has_images = (folder / "images").is_dir()
    records = []
    for row in rows:
        where = f"{path}, line {row.line}"
        v = row.values
        records.append((v["dist_img"].strip(), "", "", "", parse_float(v["dmos"], where, "dmos"),
                        f"images/{v['dist_img'].strip()}" if has_images else None,
                        f"images/{v['ref_img'].strip()}" if has_images else None))
    m = dict(manifest or {})
    m.setdefault("name", folder.name)
    return JudgmentSet(name=m["name"], kind="rating", table=pd.DataFrame.from_records(records, columns=RATING_COLUMNS),
                       root=folder, images_root=folder if has_images else None, criteria=[""],
                       synthetic=bool(m.get("synthetic", False)), manifest=m, layout=NAME,
                       files=[record_file(path, (expected_sha256 or {}).get(path.name))])
