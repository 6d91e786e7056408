"""The ``i2i`` command line.

    i2i samples OUT              write the bundled photos and a degraded copy (the demo folders)
    i2i score REAL FAKE          score two folders: paired metrics and FID/KID/IS
    i2i stats IMAGES OUT.npz     save reference feature statistics for FID
    i2i generate MODEL OUT       run a generator on a dataset and write its outputs as PNG
    i2i backbones                list the registered backbones

Exit status: 0 success, 1 a metric failed, 2 bad input or usage (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PAIRED_METRICS = ("l1", "psnr", "ssim", "ms_ssim", "ciede2000")
SET_METRICS = ("fid", "kid", "inception_score")
DEFAULT_METRICS = ("l1", "psnr", "ssim", "ciede2000", "fid", "kid", "inception_score")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2i", description="pytest-i2i: evaluate image-to-image results.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("score", help="score a folder of outputs against a folder of references")
    s.add_argument("real", help="reference images: folder, image file or statistics .npz (FID only)")
    s.add_argument("fake", help="generated images: folder or image file")
    s.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                   help=f"comma-separated, from {', '.join(PAIRED_METRICS + SET_METRICS)} (default: %(default)s)")
    s.add_argument("--weights", default=None,
                   help="backbone weights: a file path, or 'random' for an uncalibrated smoke test "
                        "(default: the published file, searched as documented)")
    s.add_argument("--weights-dir", default=None, help="folder searched first for weights files")
    s.add_argument("--require-weights", action="store_true",
                   help="fail (exit 2) instead of skipping metrics whose backbone weights are missing")
    s.add_argument("--resize", choices=("clean", "legacy-pytorch"), default="clean")
    s.add_argument("--device", default=None)
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--json", dest="json_out", default=None, metavar="FILE", help="also write the results as JSON")

    m = sub.add_parser("samples", help="write the bundled sample photos and a degraded copy")
    m.add_argument("out", help="output folder; gets photos/ and degraded/")
    m.add_argument("--size", type=int, default=256)
    m.add_argument("--jpeg-quality", type=int, default=20, help="quality of the degraded copy (default 20)")

    t = sub.add_parser("stats", help="compute and save FID reference statistics")
    t.add_argument("images")
    t.add_argument("out", help=".npz file to write")
    t.add_argument("--weights", default=None)
    t.add_argument("--resize", choices=("clean", "legacy-pytorch"), default="clean")
    t.add_argument("--device", default=None)
    t.add_argument("--batch-size", type=int, default=32)

    g = sub.add_parser("generate", help="run a generator on a dataset and write its outputs as PNG files")
    g.add_argument("model", help="checkpoint (TorchScript, state_dict + --arch) or package.module:factory")
    g.add_argument("out", help="output folder (one <uid>.png per sample)")
    g.add_argument("--data", default=None, help="dataset folder or manifest (default: the built-in sample set)")
    g.add_argument("--arch", default=None, help="architecture of a bare state_dict")
    g.add_argument("--trust-checkpoint", action="store_true",
                   help="allow unpickling a full model object (runs code from the file)")
    g.add_argument("--device", default=None)
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--seed", type=int, default=0)

    sub.add_parser("backbones", help="list the registered backbones")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from pytest_i2i.errors import I2IError

    try:
        commands = {"score": _score, "samples": _samples, "stats": _stats, "generate": _generate,
                    "backbones": _backbones}
        return commands[args.command](args)
    except I2IError as e:
        print(f"i2i: error: {e}", file=sys.stderr)
        return 2


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


def _score(args: argparse.Namespace) -> int:
    import pytest_i2i
    from pytest_i2i.errors import I2IInputError, WeightsError

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in PAIRED_METRICS + SET_METRICS]
    if unknown:
        raise I2IInputError(f"--metrics: unknown {', '.join(unknown)}; known: {', '.join(PAIRED_METRICS + SET_METRICS)}")
    if args.weights_dir:
        import os

        os.environ["I2I_WEIGHTS_DIR"] = str(Path(args.weights_dir).expanduser().resolve())

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
                bb = pytest_i2i.backbone("inception-fid", weights=args.weights, device=args.device)
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


def _stats(args: argparse.Namespace) -> int:
    import pytest_i2i

    stats = pytest_i2i.compute_stats(args.images, weights=args.weights, device=args.device, resize=args.resize,
                                     batch_size=args.batch_size)
    path = stats.save(args.out)
    print(f"wrote statistics of {stats.n} images ({stats.dim}-d, {stats.meta}) to {path}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from PIL import Image

    from pytest_i2i.data import load_dataset
    from pytest_i2i.generators import generate, load_generator

    dataset = load_dataset(args.data)
    gen = load_generator(args.model, arch=args.arch, trust=args.trust_checkpoint, device=args.device, seed=args.seed)
    result = generate(gen, dataset.inputs(), texts=dataset.instructions(), batch_size=args.batch_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for uid, img in zip(dataset.uids, result.outputs):
        if img is not None:
            arr = (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
            Image.fromarray(arr).save(out / f"{uid}.png")
    print(f"wrote {len(result.ok_indices)} of {len(dataset)} outputs to {out}")
    for i, msg in sorted(result.errors.items()):
        print(f"failed: {dataset.uids[i]}: {msg}", file=sys.stderr)
    return 1 if result.errors else 0


def _backbones(args: argparse.Namespace) -> int:
    from pytest_i2i.backbones.registry import get_spec, list_backbone_families, list_backbones

    for name in list_backbones():
        spec = get_spec(name)
        print(f"{name}: {spec.description} [input {spec.input_size[0]}x{spec.input_size[1]}, "
              f"weights {spec.pretrained.files[0].filename}]")
    for usage in list_backbone_families().values():
        print(f"{usage}: built on demand")
    return 0


if __name__ == "__main__":
    sys.exit(main())
