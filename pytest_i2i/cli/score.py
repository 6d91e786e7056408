"""``i2i score``: score a folder of outputs against a folder of references."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

PAIRED_METRICS = ("l1", "psnr", "ssim", "ms_ssim", "ciede2000")
SET_METRICS = ("fid", "kid", "inception_score")
DEFAULT_METRICS = ("l1", "psnr", "ssim", "ciede2000", "fid", "kid", "inception_score")


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("score", help="score a folder of outputs against a folder of references")
    s.add_argument("real", help="reference images: folder, image file or statistics .npz (FID only)")
    s.add_argument("fake", help="generated images: folder or image file")
    s.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                   help=f"comma-separated, from {', '.join(PAIRED_METRICS + SET_METRICS)} (default: %(default)s)")
    s.add_argument("--weights", default=None,
                   help="backbone weights: a file path, or 'random' for an uncalibrated smoke test "
                        "(default: the published file, searched as documented)")
    from pytest_i2i.cli.backbones import add_weights_options

    add_weights_options(s)
    s.add_argument("--require-weights", action="store_true",
                   help="fail (exit 2) instead of skipping metrics whose backbone weights are missing")
    s.add_argument("--resize", choices=("clean", "legacy-pytorch"), default="clean")
    s.add_argument("--device", default=None)
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--num-workers", type=int, default=None, metavar="N",
                   help="DataLoader worker processes that decode and resize image files "
                        "(default: $I2I_NUM_WORKERS, else 0 on <= 2 CPUs, else min(4, CPUs - 1))")
    s.add_argument("--json", dest="json_out", default=None, metavar="FILE", help="also write the results as JSON")
    from pytest_i2i.cli.cache import add_cache_dir_option

    add_cache_dir_option(s)
    s.set_defaults(run=_score)


def _score(args: argparse.Namespace) -> int:
    from pytest_i2i import distributed
    from pytest_i2i.errors import I2IInputError

    from pytest_i2i.cli.cache import apply_cache_dir

    apply_cache_dir(args)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in PAIRED_METRICS + SET_METRICS]
    if unknown:
        raise I2IInputError(f"--metrics: unknown {', '.join(unknown)}; known: {', '.join(PAIRED_METRICS + SET_METRICS)}")
    if args.num_workers is not None:
        from pytest_i2i.pipeline import configure_pipeline

        configure_pipeline(num_workers=args.num_workers)
    # Under torchrun every rank scores its shard of the images; rank 0 prints and writes.
    with distributed.torchrun_group(args.device):
        return _score_metrics(args, metrics)


def _score_metrics(args: argparse.Namespace, metrics: list[str]) -> int:
    import pytest_i2i
    from pytest_i2i import distributed
    from pytest_i2i.cli.backbones import apply_weights_options
    from pytest_i2i.errors import WeightsError

    apply_weights_options(args)

    results: list[Any] = []
    skipped: list[dict[str, str]] = []
    bb = None
    real_is_stats = Path(args.real).suffix == ".npz"
    for name in metrics:
        fn = getattr(pytest_i2i, name)
        if name in PAIRED_METRICS:
            if real_is_stats:
                skipped.append({"metric": name, "reason": "REAL is a statistics file; paired metrics need images"})
                continue
            results.append(fn(args.real, args.fake, resize=args.resize, batch_size=args.batch_size))
            continue
        if bb is None:
            try:
                bb = pytest_i2i.backbone("inception-fid", weights=args.weights,
                                         device=distributed.rank_device(args.device))
            except WeightsError as e:
                if args.require_weights:
                    raise
                reason = str(e)
                skipped += [{"metric": m, "reason": reason} for m in metrics if m in SET_METRICS]
                bb = False
        if bb is False:
            continue
        common = {"backbone": bb, "resize": args.resize, "batch_size": args.batch_size}
        if name == "inception_score":
            n = len(pytest_i2i.load_images(args.fake, name="fake"))
            results.append(fn(args.fake, splits=min(10, n), **common))
        elif name == "fid" or not real_is_stats:
            results.append(fn(args.real, args.fake, **common))
        else:
            skipped.append({"metric": name, "reason": "KID needs images on both sides, not statistics"})

    if not distributed.is_main():
        return 0
    _print_table(results, skipped)
    if args.json_out:
        payload = {"real": args.real, "fake": args.fake, "results": [r.to_dict() for r in results],
                   "skipped": skipped}
        Path(args.json_out).write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False))
        print(f"wrote {args.json_out}")
    return 0


def _print_table(results: list[Any], skipped: list[dict[str, str]]) -> None:
    rows = [("metric", "value", "95% CI / std", "n", "backbone", "calibrated")]
    for r in results:
        spread = (f"[{r.ci[0]:.4g}, {r.ci[1]:.4g}]" if r.ci is not None
                  else (f"± {r.std:.4g}" if r.std is not None else ""))
        arrow = "↑" if r.higher_is_better else "↓"
        rows.append((f"{r.name} {arrow}", f"{r.value:.6g}", spread, str(r.n), r.backbone or "-",
                     "yes" if r.calibrated else "NO"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    if any(not r.calibrated for r in results):
        print("\nWARNING: some results use uncalibrated weights (e.g. --weights random): "
              "smoke-test numbers only, never use them for model decisions.")
    reasons: dict[str, list[str]] = {}
    for s in skipped:
        reasons.setdefault(s["reason"], []).append(s["metric"])
    for reason, names in reasons.items():
        print(f"\nskipped {', '.join(names)}: {reason}")
    notes = sorted({w for r in results for w in r.warnings if not w.startswith("uncalibrated")})
    for w in notes:
        print(f"note: {w}")
