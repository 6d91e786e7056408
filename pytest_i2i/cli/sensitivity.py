"""``i2i sensitivity``: which metrics detect small local edits, against nuisances (table, plots, JSON)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "sensitivity", help="measure each metric's detection AUROC of local edits against nuisances",
        description="Apply controlled local edits (pytest_i2i.perturb.OPS at their default magnitudes) of known "
                    "area and nuisance transforms to images, and measure per metric, operation and area the "
                    "detection AUROC (paired metrics) or the permutation-test p-value (set metrics).")
    s.add_argument("--images", default=None, metavar="DIR",
                   help="image folder (default: scikit-image's bundled colour photos)")
    s.add_argument("--metrics", default=None,
                   help="comma-separated metric names (default: all; see pytest_i2i.validation.sensitivity)")
    s.add_argument("--ops", default=None, help="comma-separated operations (default: all of pytest_i2i.perturb.OPS)")
    s.add_argument("--areas", default=None,
                   help="comma-separated area percentages (default: 0.25,0.5,1,2,5,10,25)")
    s.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    s.add_argument("--n-images", type=int, default=8, help="number of images (default 8)")
    s.add_argument("--repeats", type=int, default=2, help="edited copies per image, op and area (default 2)")
    s.add_argument("--region", default="ellipse", choices=("ellipse", "box", "blob"),
                   help="shape of the edited regions (default ellipse)")
    s.add_argument("--permutations", type=int, default=999, help="set-level permutations (default 999)")
    s.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    from pytest_i2i.cli.options import WEIGHTS_OPTIONS, add_options

    add_options(s, "weights", *WEIGHTS_OPTIONS, "require_weights", "device", "batch_size", "seed",
                seed={"help": "draws the images' edits, regions and permutations (default 0)"})
    s.set_defaults(run=_sensitivity)


def _sensitivity(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pytest_i2i.cli.options import apply_weights_options
    from pytest_i2i.errors import I2IInputError
    from pytest_i2i.validation.sensitivity import AREAS_PERCENT, run_sensitivity, write_outputs

    apply_weights_options(args)
    areas = AREAS_PERCENT
    if args.areas:
        try:
            areas = tuple(float(a) for a in args.areas.split(",") if a.strip())
        except ValueError:
            raise I2IInputError(f"--areas: {args.areas!r} is not a comma-separated list of numbers") from None
    if args.images is not None and not Path(args.images).is_dir():
        raise I2IInputError(f"--images: {args.images} is not a folder")
    result = run_sensitivity(
        args.images, metrics=args.metrics, ops=args.ops, areas_percent=areas, weights=args.weights,
        require_weights=args.require_weights, size=args.size, n_images=args.n_images, repeats=args.repeats,
        region=args.region, seed=args.seed, n_permutations=args.permutations, device=args.device,
        batch_size=args.batch_size, progress=print,
    )
    paths = write_outputs(result, args.out)
    print("\n".join(result.statement))
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")
    return 0
