"""``i2i samples``: write the bundled photos and a degraded copy (the demo folders)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("samples", help="write the bundled sample photos and a degraded copy")
    m.add_argument("out", help="output folder; gets photos/ and degraded/")
    m.add_argument("--size", type=int, default=256, metavar="PX", help="side of the square photos in pixels (default 256)")
    m.add_argument("--jpeg-quality", type=int, default=20, help="quality of the degraded copy (default 20)")
    m.set_defaults(run=_samples)


def _samples(args: argparse.Namespace) -> int:
    import io

    from PIL import Image

    from pytest_i2i.images.samples import write_sample_folder

    out = Path(args.out)
    photos = write_sample_folder(out / "photos", size=args.size)
    (out / "degraded").mkdir(parents=True, exist_ok=True)
    for p in photos:
        buf = io.BytesIO()
        Image.open(p).save(buf, format="JPEG", quality=args.jpeg_quality)
        Image.open(buf).save(out / "degraded" / p.name)
    print(f"wrote {len(photos)} bundled photos to {out / 'photos'} and JPEG q={args.jpeg_quality} copies "
          f"(a synthetic degradation) to {out / 'degraded'}")
    return 0
