"""``i2i cache info`` / ``i2i cache clear``: inspect or empty the on-disk cache (see :mod:`pytest_i2i.cache`)."""

from __future__ import annotations

import argparse

from pytest_i2i.cli.options import add_options


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("cache", help="show or clear the on-disk cache of features and generator outputs")
    actions = c.add_subparsers(dest="action", required=True)
    for name, helptext in (("info", "folder, size limit, entries and bytes per kind"),
                           ("clear", "delete every entry and the index")):
        a = actions.add_parser(name, help=helptext)
        add_options(a, "cache_dir", cache_dir={
            "help": "the cache folder (default $I2I_CACHE_DIR; the pytest plugin's default is .pytest_cache/d/i2i "
                    "under the rootdir)"})
        a.add_argument("--json", action="store_true", help="print machine-readable JSON")
    c.set_defaults(run=_cache)


def apply_cache_dir(args: argparse.Namespace) -> None:
    """Make ``--cache-dir`` the process's default cache (``$I2I_CACHE_DIR`` applies without it)."""
    if getattr(args, "cache_dir", None):
        from pytest_i2i import cache

        cache.configure(args.cache_dir)


def _cache(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    from pytest_i2i.cache import ENV_CACHE_DIR, get_cache
    from pytest_i2i.errors import I2IInputError

    folder = args.cache_dir or os.environ.get(ENV_CACHE_DIR, "").strip()
    if not folder:
        raise I2IInputError(f"no cache folder: pass --cache-dir DIR or set {ENV_CACHE_DIR} "
                            "(the pytest plugin's default is .pytest_cache/d/i2i)")
    root = Path(folder).expanduser()
    if root.exists() and not root.is_dir():
        raise I2IInputError(f"--cache-dir: {root} is not a folder")
    store = get_cache(root, max_size=os.environ.get("I2I_CACHE_MAX_SIZE") or None)
    if store is None:
        raise I2IInputError("the cache size limit is 0 (I2I_CACHE_MAX_SIZE): the cache is off")
    if args.action == "clear":
        n = store.clear() if root.exists() else 0
        print(json.dumps({"path": str(root), "removed_entries": n}) if args.json
              else f"removed {n} entries from {root}")
        return 0
    info = store.info() if (root / "i2i-cache-v1").exists() else {
        "path": str(root), "layout": "i2i-cache-v1", "max_size": store.max_size, "entries": 0, "bytes": 0,
        "namespaces": {}, "file_hashes": 0}
    info.pop("this_process", None)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    print(f"cache folder  {info['path']} ({info['layout']})")
    print(f"size          {_human(info['bytes'])} of {_human(info['max_size'])} limit, {info['entries']} entries")
    for ns, v in info["namespaces"].items():
        print(f"  {ns:<12}{v['entries']:>8} entries  {_human(v['bytes'])}")
    print(f"file hashes   {info['file_hashes']} remembered")
    return 0


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"
