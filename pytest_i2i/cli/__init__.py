"""The ``i2i`` command line: one module per subcommand, each with ``register(subparsers)``.

    i2i samples OUT              write the bundled photos and a degraded copy (the demo folders)
    i2i score REAL FAKE          score two folders with any registered metric (default: paired, FID/KID/IS)
    i2i stats IMAGES OUT.npz     save reference feature statistics for FID
    i2i generate MODEL OUT       run a generator on a dataset and write its outputs as PNG
    i2i metrics                  list the registered metrics, what each needs, whether it is ready here
    i2i backbones                list the registered backbones, their weights files, whether they are ready
    i2i cache info|clear         show or empty the on-disk feature/output cache (--cache-dir)
    i2i validate PATH... --out D correlate metrics with human judgments (table, plots, JSON)
    i2i sensitivity --out D      detection AUROC of controlled local edits vs nuisances, per metric
    i2i judge make|serve|status  collect your own human judgments on a local judging page

Exit status: 0 success, 1 a metric failed, 2 bad input or usage (message on stderr).
Shared flags read the same in every subcommand that takes them (:mod:`pytest_i2i.cli.options`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules, in the order ``i2i --help`` lists them.
SUBCOMMANDS = ("score", "samples", "stats", "generate", "metrics", "backbones", "validate", "sensitivity", "cache",
               "judge")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="i2i", description="pytest-i2i: evaluate image-to-image results.")
    p.add_argument("--version", action="version", version=f"%(prog)s (pytest-i2i) {_version()}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"pytest_i2i.cli.{name}").register(sub)
    return p


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-i2i")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pytest_i2i import interface
    from pytest_i2i.backbones.weights import set_interface
    from pytest_i2i.errors import I2IError

    previous = interface.CURRENT[0]
    set_interface("cli")  # messages name the CLI's options (--weights-dir, --arch, --offline, ...)
    try:
        return args.run(args)
    except I2IError as e:
        print(f"i2i: error: {e}", file=sys.stderr)
        return 2
    finally:
        set_interface(previous)  # main() called in-process (tests, scripts) leaves the caller's spelling
