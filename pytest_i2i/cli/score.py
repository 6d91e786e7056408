"""``i2i score``: score a folder of outputs against a folder of references, with any registered metric."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

#: the roles ``i2i score REAL FAKE`` fills: FAKE is the outputs, REAL the references (targets or inputs)
ROLE_SOURCES = {"outputs": "fake", "targets": "real", "inputs": "real"}


def scorable(spec: Any) -> str | None:
    """Why a registered metric cannot be scored from two image folders, or ``None`` when it can."""
    missing = [role for role in spec.args if role not in ROLE_SOURCES]
    if not spec.args or missing:
        return f"needs {', '.join(m.replace('_', ' ') for m in missing) or 'data the command does not take'}"
    if spec.required:
        return f"needs {', '.join(spec.required)}"
    return None


def reads_statistics(spec: Any) -> bool:
    """Whether a metric accepts saved feature statistics (``.npz``) in place of images: the Fréchet distances."""
    return spec.kind == "set" and spec.statistic == "pytest_i2i.metrics.functional.frechet:frechet_distance_features"


#: metrics needing larger images than this are computed only on request (MS-SSIM needs 176 px)
DEFAULT_MAX_MIN_SIZE = 64


def default_metrics() -> list[str]:
    """What ``i2i score`` computes without ``--metrics``: the weight-free metrics that work on small
    images and the FID Inception's metrics (CLIP, DINO and the rest on request: their weights are
    separate downloads)."""
    from pytest_i2i.metrics.registry import metric_specs

    return [s.name for s in metric_specs()
            if scorable(s) is None and s.min_size <= DEFAULT_MAX_MIN_SIZE
            and (not s.needs_weights or s.backbone == "inception-fid")]


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("score", help="score a folder of outputs against a folder of references",
                       description="Score FAKE (generated images) against REAL (references) with registered metrics. "
                                   "Metrics whose backbone weights are missing and cannot be downloaded are skipped, "
                                   "saying which file to install (--require-weights makes that an error).")
    s.add_argument("real", help="reference images (targets or inputs): folder, image file or statistics .npz (FID)")
    s.add_argument("fake", help="generated images: folder or image file")
    s.add_argument("--metrics", default=None,
                   help="comma-separated registered metric names, or 'all' (default: the weight-free metrics and "
                        "those on the FID Inception; `i2i metrics` lists them with what each needs)")
    from pytest_i2i.cli.options import WEIGHTS_OPTIONS, add_options

    add_options(s, "weights", *WEIGHTS_OPTIONS, "require_weights", "resize", "device", "batch_size", "seed",
                weights={"help": "backbone weights: a file (when the chosen metrics share one backbone), or 'random' "
                                 "for an uncalibrated smoke test (default: the published files, searched as "
                                 "documented)"},
                seed={"help": "seed of the bootstrap CIs and of KID's subsets (default 0)"})
    s.add_argument("--num-workers", type=int, default=None, metavar="N",
                   help="DataLoader worker processes that decode and resize image files "
                        "(default: $I2I_NUM_WORKERS, else 0 on <= 2 CPUs, else min(4, CPUs - 1))")
    s.add_argument("--json", dest="json_out", default=None, metavar="FILE", help="also write the results as JSON")
    s.add_argument("--pair-by-position", action="store_true",
                   help="pair REAL and FAKE folders by sorted position even when their file names differ "
                        "(default: paired metrics pair files by name, and differing names are an error)")
    add_options(s, "cache_dir")
    s.set_defaults(run=_score)


def _score(args: argparse.Namespace) -> int:
    from pytest_i2i import distributed
    from pytest_i2i.cli.cache import apply_cache_dir
    from pytest_i2i.errors import UnknownNameError
    from pytest_i2i.metrics.registry import list_metrics

    if args.json_out:
        check_json_path(Path(args.json_out))
    apply_cache_dir(args)
    known = list_metrics()
    if args.metrics is None:
        metrics = default_metrics()
    elif args.metrics.strip() == "all":
        metrics = known
    else:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        for m in metrics:
            if m not in known:
                raise UnknownNameError("metric", m, known)
    if args.num_workers is not None:
        from pytest_i2i.pipeline import configure_pipeline

        configure_pipeline(num_workers=args.num_workers)
    # Under torchrun every rank scores its shard of the images; rank 0 prints and writes.
    with distributed.torchrun_group(args.device):
        return _score_metrics(args, metrics)


def check_json_path(path: Path) -> None:
    """``--json FILE`` must be writable before any work: its folder exists and takes files."""
    from pytest_i2i.errors import I2IInputError
    from pytest_i2i.files import folder_unwritable

    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise I2IInputError(f"--json {path}: is a directory; pass a file name")
    if not folder.is_dir():
        raise I2IInputError(f"--json {path}: the folder {folder} does not exist")
    problem = folder_unwritable(folder)
    if problem:
        raise I2IInputError(f"--json {path}: {problem}")


def pair_folders(real: str, fake: str, by_position: bool) -> tuple[Any, Any]:
    """The REAL and FAKE sources a paired metric compares, paired by file name.

    When both are folders, their image files are matched by name without the extension (``a.png``
    with ``a.jpg``): the same names give two lists of paths in one order. Different names are an
    error naming them, unless ``by_position`` (``--pair-by-position``) asks for pairing by sorted
    position. Anything else (files, statistics) is returned as is.

    Raises:
        I2IInputError: the names differ (without ``by_position``) or a folder holds two files of one name.
    """
    from pytest_i2i.errors import I2IInputError
    from pytest_i2i.images.imageset import list_image_files

    rp, fp = Path(real).expanduser(), Path(fake).expanduser()
    if by_position or not (rp.is_dir() and fp.is_dir()):
        return real, fake
    sides = {}
    for label, folder in (("REAL", rp), ("FAKE", fp)):
        by_stem: dict[str, Path] = {}
        for f in list_image_files(folder, label):
            if f.stem in by_stem:
                raise I2IInputError(f"{label} {folder}: {by_stem[f.stem].name} and {f.name} have one name; paired "
                                    "metrics pair files by name (rename one, or pass --pair-by-position)")
            by_stem[f.stem] = f
        sides[label] = by_stem
    only_real = sorted(set(sides["REAL"]) - set(sides["FAKE"]))
    only_fake = sorted(set(sides["FAKE"]) - set(sides["REAL"]))
    if only_real or only_fake:
        def some(names: list[str]) -> str:
            return ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "") or "none"

        raise I2IInputError(f"REAL {rp} and FAKE {fp} hold different file names, so paired metrics cannot pair "
                            f"them by name: only in REAL: {some(only_real)}; only in FAKE: {some(only_fake)}. "
                            "Pass --pair-by-position to pair them by sorted position")
    order = sorted(sides["FAKE"])
    return [str(sides["REAL"][k]) for k in order], [str(sides["FAKE"][k]) for k in order]


def _score_metrics(args: argparse.Namespace, metrics: list[str]) -> int:
    import pytest_i2i
    from pytest_i2i import distributed
    from pytest_i2i.cli.options import apply_weights_options
    from pytest_i2i.errors import I2IError, I2IInputError, WeightsError
    from pytest_i2i.metrics.registry import DEFAULT_BATCH_SIZE, metric_spec

    apply_weights_options(args)
    specs = [metric_spec(m) for m in metrics]
    backbones_used = {s.backbone for s in specs if s.backbone and scorable(s) is None}
    if args.weights not in (None, "random") and len(backbones_used) > 1:
        raise I2IInputError(f"--weights {args.weights}: one weights file cannot serve the backbones "
                            f"{', '.join(sorted(backbones_used))}; score them in separate runs, or use --weights-dir")
    sources = {"real": args.real, "fake": args.fake}
    if any(s.kind != "set" and {ROLE_SOURCES.get(r) for r in s.args} == {"real", "fake"} for s in specs):
        paired = pair_folders(args.real, args.fake, args.pair_by_position)
    else:
        paired = (args.real, args.fake)
    real_is_stats = Path(args.real).suffix == ".npz"
    batch_size = args.batch_size if args.batch_size is not None else DEFAULT_BATCH_SIZE
    results: list[Any] = []
    skipped: list[dict[str, str]] = []
    failed: list[dict[str, str]] = []
    loaded: dict[str, Any] = {}
    for spec in specs:
        reason = scorable(spec)
        if (reason is None and real_is_stats and not reads_statistics(spec)
                and any(ROLE_SOURCES[r] == "real" for r in spec.args)):
            reason = "REAL is a statistics file; only the Fréchet distances (fid, fd_vit) read statistics"
        if reason is not None:
            skipped.append({"metric": spec.name, "reason": reason})
            continue
        kwargs: dict[str, Any] = {}
        if "batch_size" in spec.accepts:
            kwargs["batch_size"] = batch_size
        if "seed" in spec.accepts:
            kwargs["seed"] = args.seed
        if "resize" in spec.accepts:
            kwargs["resize"] = args.resize
        if spec.backbone is not None:
            if spec.backbone not in loaded:
                try:
                    loaded[spec.backbone] = pytest_i2i.backbone(spec.backbone, weights=args.weights,
                                                                device=distributed.rank_device(args.device))
                except WeightsError as e:
                    if args.require_weights:
                        raise
                    loaded[spec.backbone] = e
            bb = loaded[spec.backbone]
            if isinstance(bb, Exception):
                skipped.append({"metric": spec.name, "reason": str(bb)})
                continue
            kwargs["backbone"] = bb
        elif "device" in spec.accepts and args.device is not None:
            kwargs["device"] = distributed.rank_device(args.device)
        if spec.name == "inception_score":
            n = len(pytest_i2i.load_images(args.fake, name="fake"))
            kwargs["splits"] = min(10, n)
        use = sources if spec.kind == "set" else dict(zip(("real", "fake"), paired))
        try:
            results.append(spec.function(*(use[ROLE_SOURCES[role]] for role in spec.args), **kwargs))
        except WeightsError as e:  # a file of the metric's own (e.g. LPIPS' linear layers), not the backbone's
            if args.require_weights:
                raise
            skipped.append({"metric": spec.name, "reason": str(e)})
        except I2IError as e:  # this metric cannot be computed on these images; the others still are
            failed.append({"metric": spec.name, "error": f"{type(e).__name__}: {e}"})

    if not distributed.is_main():
        return 0
    _print_table(results, skipped, failed)
    if args.json_out:
        payload = {"real": args.real, "fake": args.fake, "results": [r.to_dict() for r in results],
                   "skipped": skipped, "failed": failed}
        Path(args.json_out).write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False))
        print(f"wrote {args.json_out}")
    return 1 if failed else 0


def _print_table(results: list[Any], skipped: list[dict[str, str]], failed: list[dict[str, str]] = ()) -> None:
    rows = [("metric", "value", "95% CI / std", "n", "backbone", "calibrated")]
    for r in results:
        spread = (f"[{r.ci[0]:.4g}, {r.ci[1]:.4g}]" if r.ci is not None
                  else (f"± {r.std:.4g}" if r.std is not None else ""))
        arrow = "↑" if r.higher_is_better else "↓"
        rows.append((f"{r.name} {arrow}", f"{r.value:.6g}", spread, str(r.n), r.backbone or "-",
                     "yes" if r.calibrated else "NO"))
    rows += [(f["metric"], "FAILED", "", "", "", "") for f in failed]
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
    for f in failed:
        print(f"\nfailed {f['metric']}: {f['error']}")
    notes = sorted({w for r in results for w in r.warnings if not w.startswith("uncalibrated")})
    for w in notes:
        print(f"note: {w}")
