"""``i2i validate``: correlate metrics with human judgments and write the validation report."""

from __future__ import annotations

import argparse
import shlex
import sys


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "validate", help="correlate metrics with human judgments (report folder: table, plots, JSON)",
        description="PATHs are judgment sets (a judgments.toml manifest, a .toml file, or a folder in a native "
                    "layout: ImagenHub, BAPPS, NIGHTS, TID2013, KADID-10k) and precomputed score files/folders "
                    "(<model>.json files {item: {metric: value}}, or a CSV/JSONL with item[, model] and metric "
                    "columns).")
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.add_argument("--out", required=True, metavar="DIR", help="report folder (created)")
    s.add_argument("--metrics", default="",
                   help="comma-separated project metrics computed on the sets' images, e.g. l1,psnr,ssim,"
                        "ms_ssim,ciede2000,dino_image,clip_image,vit_patch_distance,fid,kid,fd_vit,cmmd "
                        "(default: none: precomputed scores only)")
    s.add_argument("--weights", default=None,
                   help="backbone weights: a file, or 'random' (uncalibrated: labelled so in the report)")
    s.add_argument("--direction", action="append", default=[], metavar="METRIC=lower|higher",
                   help="which way a precomputed metric points (known names such as LPIPS need none)")
    s.add_argument("--resamples", type=int, default=1000, help="bootstrap draws (default %(default)s)")
    s.add_argument("--confidence", type=float, default=0.95)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default=None)
    s.add_argument("--allow-outside-root", action="store_true",
                   help="let paths in manifests leave their declared root")
    s.set_defaults(run=_validate)


def _validate(args: argparse.Namespace) -> int:
    from pytest_i2i.errors import I2IInputError
    from pytest_i2i.validation.validation_report import CSV_NAME, JSON_NAME, MD_NAME, validate

    directions = {}
    for spec in args.direction:
        name, sep, way = spec.partition("=")
        if not sep or way not in ("lower", "higher") or not name:
            raise I2IInputError(f"--direction {spec!r}: write METRIC=lower or METRIC=higher")
        directions[name] = way == "higher"
    if args.resamples < 100:
        raise I2IInputError(f"--resamples {args.resamples}: use at least 100 draws")
    if not 0 < args.confidence < 1:
        raise I2IInputError(f"--confidence {args.confidence}: must be in (0, 1)")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    report = validate(args.paths, args.out, metrics=metrics, weights=args.weights, directions=directions,
                      device=args.device, n_resamples=args.resamples, confidence=args.confidence, seed=args.seed,
                      allow_outside_root=args.allow_outside_root,
                      command="i2i validate " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if
                      len(sys.argv) > 2 else None)
    print(open(f"{args.out}/{MD_NAME}", encoding="utf-8").read())
    print(f"wrote {args.out}/{JSON_NAME}, {args.out}/{CSV_NAME}, {args.out}/{MD_NAME}, {len(report['plots'])} plot(s)")
    return 1 if report["problems"] else 0
