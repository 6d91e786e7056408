"""Rebuild the bundled judgment files from the native public sets and check their sha256.

    python human_judgments/regenerate.py --source NATIVE_DIR          # check: rebuild in memory, compare
    python human_judgments/regenerate.py --source NATIVE_DIR --write  # rewrite the files and bundle.toml

The native sets are the unchanged copies of the public repositories named in each set's SOURCE.md
(VIEScore, GenAI-Bench, TIFA). What each bundled file is made from, and how, is in
``pytest_i2i.validation.judgments.bundle`` (one place, also used by the tests); this script only
calls it. Exit status 0: every bundled file equals its rebuilt bytes and bundle.toml's sha256.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from pytest_i2i.errors import I2IError
    from pytest_i2i.validation.judgments.bundle import BUILTIN, regenerate

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True, type=Path, help="folder holding the native public sets, one sub-folder per set as named in SOURCE.md")
    ap.add_argument("--write", action="store_true", help="rewrite the bundled files and bundle.toml")
    ap.add_argument("names", nargs="*", default=list(BUILTIN), help=f"sets (default: {', '.join(BUILTIN)})")
    args = ap.parse_args(argv)
    try:
        rows = regenerate(args.source, names=args.names, write=args.write)
    except I2IError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    bad = [r for r in rows if not r["equal"]] if not args.write else []
    for r in rows:
        state = "written" if args.write else ("ok" if r["equal"] else "DIFFERS")
        print(f"{state:8} {r['set']}/{r['path']}  sha256 {r['sha256'][:16]}  from {r['source']}")
    print(f"{len(rows)} file(s); {len(bad)} differ" if not args.write else f"{len(rows)} file(s) written")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
