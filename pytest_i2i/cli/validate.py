"""``i2i validate``: correlate metrics with human judgments and write the validation report."""

from __future__ import annotations

import argparse
import shlex
import sys


def _computable() -> str:
    """Registered paired and set metrics (the registry is import-light); correlate.computable_metrics
    narrows them to those taking (reference, outputs)."""
    from pytest_i2i.metrics.registry import list_metrics

    return ",".join(list_metrics(kind="paired") + list_metrics(kind="set"))


def register(sub: argparse._SubParsersAction) -> None:
    from pytest_i2i.validation.names import BUILTIN, CONVENTIONS, METHODS

    s = sub.add_parser(
        "validate", help="correlate metrics with human judgments (report folder: table, plots, JSON)",
        description="PATHs are judgment sets (a judgments.toml manifest, a .toml file, or a folder in a native "
                    "layout: ImagenHub, BAPPS, NIGHTS, TID2013, KADID-10k, GenAI-Bench, TIFA), precomputed score "
                    "files/folders (<model>.json files {item: {metric: value}}, or a CSV/JSONL with item[, model] "
                    "and metric columns), VIEScore judge folders (<model>/{SC,PQ}.json), or roots with one such "
                    "folder per task (choose with --task). --builtin runs the bundled real sets offline.")
    s.add_argument("paths", nargs="*", metavar="PATH")
    s.add_argument("--builtin", nargs="?", const="all", default=None, metavar="NAME[,NAME]",
                   help=f"bundled sets: {', '.join(BUILTIN)} (default with no value: all)")
    s.add_argument("--task", action="append", default=[], metavar="TASK",
                   help="a task under root folders, e.g. Text-Guided_IE (repeat for several; default: every task of "
                        "the human root)")
    s.add_argument("--out", required=True, metavar="DIR", help="report folder (created)")
    s.add_argument("--convention", choices=list(CONVENTIONS), default="default",
                   help="headline aggregate of the within-generator correlations: default (Fisher-z mean, weighted "
                        "by n-3) or viescore (VIEScore's published tanh-mean); both are always in the report")
    s.add_argument("--methods", default=None,
                   help=f"correlations at item and system level, from {','.join(METHODS)} (default: all; "
                        "spearman,pearson with --builtin alone)")
    s.add_argument("--metrics", default="",
                   help=f"comma-separated project metrics computed on the sets' images, from {_computable()} "
                        "(default: none: precomputed scores only)")
    s.add_argument("--weights", default=None,
                   help="backbone weights: a file, or 'random' (uncalibrated: labelled so in the report)")
    s.add_argument("--direction", action="append", default=[], metavar="METRIC=lower|higher",
                   help="which way a precomputed metric points (registered metric names and aliases need none)")
    s.add_argument("--resamples", type=int, default=1000, help="bootstrap draws (default %(default)s)")
    s.add_argument("--confidence", type=float, default=0.95)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--resample-raters", action="store_true",
                   help="also resample raters in the bootstraps (with 3 raters this lowers every draw's correlation)")
    s.add_argument("--plots", choices=["all", "summary", "none"], default=None,
                   help="all: a scatter plot per row and the leaderboard; summary: the leaderboard only "
                        "(default: summary with --builtin, else all)")
    s.add_argument("--vote-margin", type=float, default=0.0,
                   help="preference sets: score difference under which a per-image metric votes 'same'")
    s.add_argument("--device", default=None)
    s.add_argument("--allow-outside-root", action="store_true",
                   help="let paths in manifests leave their declared root")
    s.set_defaults(run=_validate)


def _validate(args: argparse.Namespace) -> int:
    from pytest_i2i.errors import I2IInputError
    from pytest_i2i.validation.names import METHODS
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
    methods = [m.strip() for m in (args.methods or "").split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or (args.methods is not None and not methods):
        raise I2IInputError(f"--methods {args.methods!r}: choose from {', '.join(METHODS)}")
    builtin = [b.strip() for b in args.builtin.split(",") if b.strip()] if args.builtin else []
    if not args.paths and not builtin:
        raise I2IInputError("give judgment sets (PATH...) or --builtin")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    report = validate(args.paths, args.out, builtin=builtin, tasks=args.task, metrics=metrics, weights=args.weights,
                      directions=directions, device=args.device, n_resamples=args.resamples,
                      confidence=args.confidence, seed=args.seed, allow_outside_root=args.allow_outside_root,
                      convention=args.convention, methods=methods or None, resample_raters=args.resample_raters,
                      plots=args.plots or ("summary" if builtin else "all"), vote_margin=args.vote_margin,
                      command="i2i validate " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if
                      len(sys.argv) > 2 else None)
    print(open(f"{args.out}/{MD_NAME}", encoding="utf-8").read())
    print(f"wrote {args.out}/{JSON_NAME}, {args.out}/{CSV_NAME}, {args.out}/{MD_NAME}, {len(report['plots'])} plot(s)")
    return 1 if report["problems"] else 0
