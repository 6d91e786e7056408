"""A content-addressed on-disk cache for backbone features, text embeddings and generator outputs.

Repeated evaluation runs (CI on the same checkpoint, a metric re-run after a threshold change)
recompute nothing that a previous run already computed: features are keyed by what determines
them, never by file names or dates.

Enabling it
-----------
- Library and ``i2i`` CLI: off unless a folder is given: ``cache_dir=`` / ``--cache-dir`` or the
  environment variable ``I2I_CACHE_DIR``. :func:`configure` sets a process-wide default.
- pytest plugin: ``--i2i-cache-dir=DIR`` (ini ``i2i_cache_dir``, env ``I2I_CACHE_DIR``); without
  it the plugin uses pytest's own cache folder, ``.pytest_cache/d/i2i`` (cleared by
  ``pytest --cache-clear``, off with ``-p no:cacheprovider``).
- Size limit: ``max_size=`` / ``--i2i-cache-max-size`` / ``I2I_CACHE_MAX_SIZE`` ("500MB", "2GiB",
  a byte count); default 2 GB. ``0`` disables the cache. Least recently used entries are evicted.

What is keyed on what (every part hashed into the key, see :func:`make_key`)
- image features: backbone name, weights sha256, resize mode, input size, centre crop, dtype,
  device type, the sha256 of the decoded image tensor (float32 (3, H, W) in [0, 1]) before
  cropping and resizing, and the number of images in the forward pass that computes it (kernels
  pick their algorithm by batch size, so the last bits depend on it; see
  :func:`pytest_i2i.cache.features.feature_key`);
- CLIP text embeddings: backbone name, weights sha256, device type and the text;
- generator outputs: checkpoint sha256, the declared generator options (architecture, input and
  output range, architecture kwargs), seed, device type, the input image's sha256 and its text;
- every key also holds :data:`KEY_SCHEMA` and the versions of pytest-i2i, torch, Pillow and numpy,
  so an upgrade that changes a computation (even in the last bits) never reads old values.

On-disk format (version 1)
--------------------------
::

    DIR/
      CACHEDIR.TAG                  marks the folder as a cache (backup tools skip it)
      i2i-cache-v1/
        index.sqlite3 (+ -wal, -shm) the index (SQLite, WAL mode)
        objects/<ns>/<k0k1>/<key>.i2i one file per entry; <ns> = features | text | outputs | ...

``<key>`` is the hex sha256 of the canonical JSON of the key parts. An entry file is::

    b"I2IC" | format version (1 byte, = 1) | sha256 of the payload (32 bytes)
            | payload length (8 bytes, little-endian) | payload

and the payload is a tensor bundle: a 4-byte little-endian header length, a UTF-8 JSON header
``{"tensors": {name: [dtype, shape, offset, nbytes]}, "meta": {...}}`` and the raw little-endian
tensor bytes (float32 stored as is, so cached values are bit-identical to computed ones; no
pickle anywhere). On every read the magic, version, length and checksum are verified; an entry
that fails (bad checksum, truncated, unreadable) is deleted and reported with a
:class:`CacheWarning`, and the caller recomputes it: a damaged cache never fails a run.

The index table ``entries(key, ns, size, created, last_access)`` drives the size limit (LRU
eviction by ``last_access``) and ``i2i cache info``; table ``file_hashes`` remembers the sha256
of large files (weights, checkpoints) by (path, size, mtime, ctime, inode), so a warm run does
not re-read hundreds of megabytes. The entry files are the truth: a file without an index row
(a writer killed between the rename and the index update) is valid and re-indexed when read; a
row without a file is dropped.

Concurrency and crash safety
----------------------------
Writers write a temporary file in the entry's own folder and ``os.replace`` it onto the final
name (atomic on POSIX and Windows), so a reader sees either no entry or a complete one, also
after a writer is killed with SIGKILL; leftover temporary files (``.tmp-*``) are never read and
are removed by :meth:`Store.clear`. Entries are not ``fsync``-ed: two ``fsync`` calls per entry
(file and folder) cost about 10 ms on a local disk, a third of a ViT-B/32 forward pass per image
on a CPU (``benchmarks/bench_pipeline_overhead.py``). A power loss can therefore leave an entry
empty or partial; its checksum catches that on the next read, and it is dropped and recomputed
like any damaged entry. Several processes (pytest-xdist
workers, parallel CI jobs on one machine) may share one folder: two writers of the same key write
the same bytes, and the last rename wins harmlessly; the index is SQLite in WAL mode with a busy
timeout. The folder must be on a local file system (SQLite's WAL mode needs shared memory, which
network file systems do not provide reliably).

Shared caches (``I2I_CACHE_KEY``)
---------------------------------
The checksum above detects damage, not forgery: anyone who can write the folder can write an
entry with a matching checksum (say, a results entry claiming SSIM 0.999 for a true 0.678, which
a gate would then pass). A CI cache restored from shared storage (other branches, forks, pull
requests) is such a folder. With ``I2I_CACHE_KEY`` set (a CI secret, never given to untrusted
jobs), every entry is written with magic ``b"I2IS"`` and an HMAC-SHA256 under that key, bound to
the entry's namespace and key, in place of the sha256; the remembered file hashes carry an HMAC
too. Only entries that verify are read; unsigned entries, entries signed with another key and
forged ones are ignored (one :class:`CacheWarning` per kind, left in place) and recomputed, and
the recomputed value overwrites them signed. Without the key, signed entries are ignored the same
way (they cannot be verified). What it does not protect: a job that holds the key can write any
entry, so give it only to jobs whose results you trust; entries are authenticated, not secret;
removing entries only costs recomputation.

The test hook ``I2I_CACHE_TEST_SLEEP_BEFORE_RENAME`` (seconds) makes a writer sleep between
writing its temporary file and the rename; it exists only so that the tests can kill a writer
at that moment.

This package imports only the standard library at import time (the plugin imports it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_i2i.cache.store import Store

ENV_CACHE_DIR = "I2I_CACHE_DIR"
ENV_CACHE_MAX_SIZE = "I2I_CACHE_MAX_SIZE"
#: the HMAC key of a shared cache (a CI secret): see "Shared caches" above
ENV_CACHE_KEY = "I2I_CACHE_KEY"
DEFAULT_MAX_SIZE = 2 * 10**9
#: Bumped whenever the meaning of a key part or the way a cached value is computed changes.
KEY_SCHEMA = 1

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([a-zA-Z]*)\s*$")


class CacheWarning(UserWarning):
    """A cache entry was unusable (and dropped) or the cache folder could not be used."""


def parse_size(text: str | int, what: str = "cache size") -> int:
    """Bytes in ``"500MB"``, ``"2GiB"``, ``"1.5gb"`` or ``"123456"`` (decimal and binary units).

    Raises:
        I2IInputError: not a size (the message names ``what``).
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = _SIZE.match(str(text))
        if not m or m.group(2).lower() not in _UNITS:
            from pytest_i2i.errors import I2IInputError

            raise I2IInputError(f"{what}: {text!r} is not a size (examples: 500MB, 2GB, 2GiB, 1000000)")
        value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value < 0:
        from pytest_i2i.errors import I2IInputError

        raise I2IInputError(f"{what}: {text!r} is negative")
    return value


_default: tuple[Path | None, int | None] | None = None
_opened: dict[tuple[str, int, bytes | None], Store] = {}


def configure(cache_dir: str | os.PathLike | None, max_size: int | str | None = None) -> tuple | None:
    """Set the process-wide default cache (``None`` turns it off); returns the previous setting,
    which can be passed back to :func:`restore`. The environment variables apply when unset."""
    global _default
    previous = _default
    _default = (Path(cache_dir) if cache_dir is not None else None,
                parse_size(max_size) if max_size is not None else None)
    return previous


def restore(previous: tuple | None) -> None:
    """Undo :func:`configure` (``previous`` is what it returned)."""
    global _default
    _default = previous


def get_cache(cache_dir: str | os.PathLike | None = None, max_size: int | str | None = None) -> Store | None:
    """The cache to use: ``cache_dir`` if given, else the :func:`configure` default, else
    ``$I2I_CACHE_DIR``; ``None`` when none is set or the size limit is 0 (cache off).

    One :class:`~pytest_i2i.cache.store.Store` is opened per folder and process.
    """
    if cache_dir is None:
        if _default is not None:
            cache_dir, default_size = _default
            max_size = max_size if max_size is not None else default_size
        else:
            env = os.environ.get(ENV_CACHE_DIR, "").strip()
            cache_dir = Path(env).expanduser() if env else None
    if cache_dir is None:
        return None
    if max_size is None:
        env_size = os.environ.get(ENV_CACHE_MAX_SIZE, "").strip()
        max_size = parse_size(env_size, ENV_CACHE_MAX_SIZE) if env_size else DEFAULT_MAX_SIZE
    size = parse_size(max_size)
    if size == 0:
        return None
    root = Path(cache_dir).expanduser().absolute()
    secret = cache_secret()
    key = (str(root), size, secret)
    if key not in _opened:
        from pytest_i2i.cache.store import Store

        _opened[key] = Store(root, max_size=size, secret=secret)
    return _opened[key]


def cache_secret() -> bytes | None:
    """The HMAC key from ``$I2I_CACHE_KEY`` (UTF-8 bytes of the value, surrounding white space
    dropped), or ``None`` when unset or empty (entries are then checksummed, not authenticated)."""
    value = os.environ.get(ENV_CACHE_KEY, "").strip()
    return value.encode() if value else None


def make_key(**parts: object) -> str:
    """The hex sha256 of the canonical JSON of ``parts`` plus :data:`KEY_SCHEMA` and the versions of
    pytest-i2i, torch, Pillow and numpy (an upgrade can change results in the last bits)."""
    import hashlib
    import json

    payload = {"schema": KEY_SCHEMA, "versions": _versions(), **parts}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


_VERSIONS: dict[str, str | None] = {}


def _versions() -> dict[str, str | None]:
    if not _VERSIONS:
        from importlib import metadata

        from pytest_i2i import __version__

        _VERSIONS["pytest-i2i"] = __version__
        for dist in ("torch", "pillow", "numpy"):
            try:
                _VERSIONS[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                _VERSIONS[dist] = None
    return _VERSIONS


__all__ = ["CacheWarning", "configure", "restore", "get_cache", "make_key", "parse_size",
           "cache_secret", "ENV_CACHE_DIR", "ENV_CACHE_MAX_SIZE", "ENV_CACHE_KEY", "DEFAULT_MAX_SIZE", "KEY_SCHEMA"]
