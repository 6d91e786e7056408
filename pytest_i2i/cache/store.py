"""The generic content-addressed store: entry files with checksums, a SQLite index, LRU eviction.

The on-disk format, the atomic-write protocol and the concurrency rules are documented in
:mod:`pytest_i2i.cache`. Every failure of the cache itself (unwritable folder, damaged entry,
locked index) is turned into a :class:`~pytest_i2i.cache.CacheWarning` and a miss: the cache can
make a run faster, never make it fail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import struct
import threading
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_i2i.cache import ENV_CACHE_KEY as _ENV_KEY
from pytest_i2i.cache import CacheWarning
from pytest_i2i.files import TMP_PREFIX, remember_sha256, sha256_file, write_bytes_atomic

FORMAT_VERSION = 1
LAYOUT = f"i2i-cache-v{FORMAT_VERSION}"
MAGIC = b"I2IC"
#: the magic of an authenticated entry: the digest is an HMAC-SHA256 under the cache key
MAGIC_SIGNED = b"I2IS"
_HEADER = struct.Struct("<4sB32sQ")  # magic, format version, sha256(payload) or HMAC, payload length
SUFFIX = ".i2i"
TEST_SLEEP_ENV = "I2I_CACHE_TEST_SLEEP_BEFORE_RENAME"
_CACHEDIR_TAG = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                 "# This file is a cache directory tag created by pytest-i2i.\n"
                 "# For information about cache directory tags see https://bford.info/cachedir/\n")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, ns TEXT NOT NULL, size INTEGER NOT NULL,
    created REAL NOT NULL, last_access REAL NOT NULL);
CREATE INDEX IF NOT EXISTS entries_lru ON entries(last_access);
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL, sha256 TEXT NOT NULL);
"""


class Store:
    """One cache folder (see :mod:`pytest_i2i.cache` for the format).

    Args:
        root: the cache folder (created on first write).
        max_size: bytes of entry files kept; beyond it the least recently used entries are evicted.

    Namespaces (``ns``) separate kinds of values (``"features"``, ``"text"``, ``"outputs"``); keys
    are hex sha256 strings from :func:`pytest_i2i.cache.make_key`.
    """

    def __init__(self, root: str | os.PathLike, max_size: int, secret: bytes | None = None) -> None:
        self.root = Path(root)
        #: the HMAC key (``I2I_CACHE_KEY``): entries are signed with it, and only entries signed
        #: with it are read (see "Shared caches" in :mod:`pytest_i2i.cache`)
        self.secret = secret or None
        self.untrusted = 0
        self._untrusted_warned: set[str] = set()
        self.dir = self.root / LAYOUT
        self.max_size = int(max_size)
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self.dropped = 0
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._broken: str | None = None

    def __repr__(self) -> str:
        signed = ", signed" if self.secret else ""
        return f"Store({str(self.root)!r}, max_size={self.max_size}{signed})"

    # -- index -------------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection | None:
        """The index connection of this process (``None`` once the cache proved unusable)."""
        if self._broken is not None:
            return None
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            tag = self.root / "CACHEDIR.TAG"
            if not tag.exists():
                _atomic_write(tag, _CACHEDIR_TAG.encode())
            conn = sqlite3.connect(self.dir / "index.sqlite3", timeout=60.0, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=60000")
            for _ in range(50):  # switching to WAL needs a moment of exclusive access
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError:
                    time.sleep(0.1)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            self._give_up(f"cannot open the cache index in {self.dir}: {type(e).__name__}: {e}")
            return None
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _give_up(self, why: str) -> None:
        self._broken = why
        warnings.warn(f"pytest-i2i cache disabled for this run: {why}", CacheWarning, stacklevel=3)

    def _execute(self, sql: str, rows: Iterable[tuple] | tuple = (), *, many: bool = False) -> list[tuple]:
        with self._lock:
            conn = self._db()
            if conn is None:
                return []
            try:
                if many:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        conn.executemany(sql, rows)  # type: ignore[arg-type]
                        conn.execute("COMMIT")
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    return []
                return conn.execute(sql, rows).fetchall()  # type: ignore[arg-type]
            except sqlite3.Error as e:
                warnings.warn(f"pytest-i2i cache index {self.dir}: {type(e).__name__}: {e}", CacheWarning,
                              stacklevel=3)
                return []

    # -- entries -----------------------------------------------------------------------------
    def path(self, ns: str, key: str) -> Path:
        """Where the entry ``key`` of namespace ``ns`` lives."""
        if not (ns.isidentifier() and len(key) >= 8 and all(c in "0123456789abcdef" for c in key)):
            raise ValueError(f"bad cache namespace/key {ns!r}/{key!r}")
        return self.dir / "objects" / ns / key[:2] / f"{key}{SUFFIX}"

    def has(self, ns: str, key: str) -> bool:
        """Whether an entry file exists for ``key`` (intact or not: :meth:`get_many` checks)."""
        return self.path(ns, key).is_file()

    def get(self, ns: str, key: str) -> bytes | None:
        """The payload stored under ``key``, or ``None`` (missing or dropped as damaged)."""
        return self.get_many(ns, [key]).get(key)

    def get_many(self, ns: str, keys: Iterable[str]) -> dict[str, bytes]:
        """``{key: payload}`` for the keys present and intact; damaged entries are dropped with a warning."""
        found: dict[str, bytes] = {}
        now = time.time()
        touched: list[tuple] = []
        for key in dict.fromkeys(keys):
            p = self.path(ns, key)
            try:
                raw = p.read_bytes()
            except FileNotFoundError:
                self.misses += 1
                continue
            except OSError as e:
                self.discard(ns, key, f"unreadable ({type(e).__name__}: {e})")
                continue
            payload, problem, untrusted = _unframe(raw, self.secret, ns, key)
            if untrusted:
                self._ignore(ns, key, problem)  # type: ignore[arg-type]
                continue
            if problem is not None:
                self.discard(ns, key, problem)
                continue
            found[key] = payload  # type: ignore[assignment]
            touched.append((key, ns, len(raw), now, now, now))
            self.hits += 1
        if touched:  # refresh the LRU clock (and re-index files whose writer died before indexing)
            self._execute("INSERT INTO entries(key, ns, size, created, last_access) VALUES (?, ?, ?, ?, ?) "
                          "ON CONFLICT(key) DO UPDATE SET last_access = ?", touched, many=True)
        return found

    def _ignore(self, ns: str, key: str, problem: str) -> None:
        """An entry this store may not trust (unsigned, or signed with another key): a miss, left in
        place (the recomputed value overwrites it); one :class:`CacheWarning` per kind of problem."""
        self.misses += 1
        self.untrusted += 1
        if problem not in self._untrusted_warned:
            self._untrusted_warned.add(problem)
            warnings.warn(f"pytest-i2i cache {self.dir}: ignoring entries that are {problem} (first: "
                          f"{self.path(ns, key)}); they are recomputed", CacheWarning, stacklevel=4)

    def discard(self, ns: str, key: str, problem: str) -> None:
        """Delete a damaged entry, with a :class:`CacheWarning` saying what was wrong."""
        p = self.path(ns, key)
        self.misses += 1
        self.dropped += 1
        warnings.warn(f"pytest-i2i cache: entry {p} is damaged ({problem}); it was deleted and will be "
                      "recomputed", CacheWarning, stacklevel=4)
        try:
            p.unlink()
        except OSError:
            pass
        self._execute("DELETE FROM entries WHERE key = ?", (key,))

    def put(self, ns: str, key: str, payload: bytes) -> None:
        self.put_many(ns, {key: payload})

    def put_many(self, ns: str, items: Mapping[str, bytes]) -> None:
        """Store every ``key -> payload`` atomically (see :mod:`pytest_i2i.cache`), then evict
        least recently used entries beyond ``max_size``. Failures warn and are otherwise ignored."""
        if not items or self._db() is None:
            return
        now = time.time()
        rows: list[tuple] = []
        try:
            for key, payload in items.items():
                p = self.path(ns, key)
                p.parent.mkdir(parents=True, exist_ok=True)
                data = _frame(payload, self.secret, ns, key)
                # No fsync (see "Concurrency and crash safety" in pytest_i2i.cache): two per entry
                # cost ~10 ms, a third of a ViT-B/32 forward pass per image on a CPU.
                _atomic_write(p, data, durable=False)
                rows.append((key, ns, len(data), now, now, len(data), now))
        except OSError as e:
            warnings.warn(f"pytest-i2i cache: cannot write to {self.dir}: {type(e).__name__}: {e}", CacheWarning,
                          stacklevel=3)
        if rows:
            self.writes += len(rows)
            self._execute("INSERT INTO entries(key, ns, size, created, last_access) VALUES (?, ?, ?, ?, ?) "
                          "ON CONFLICT(key) DO UPDATE SET size = ?, last_access = ?", rows, many=True)
            self.evict()

    def evict(self, max_size: int | None = None) -> int:
        """Delete least recently used entries until the indexed size is at most ``max_size``
        (default: the store's limit); returns the number of entries deleted."""
        limit = self.max_size if max_size is None else max_size
        total = self._execute("SELECT total(size) FROM entries")
        if not total or total[0][0] <= limit:
            return 0
        excess = total[0][0] - limit
        victims: list[tuple[str, str]] = []
        for key, ns, size in self._execute("SELECT key, ns, size FROM entries ORDER BY last_access, key"):
            if excess <= 0:
                break
            victims.append((key, ns))
            excess -= size
        for key, ns in victims:
            try:
                self.path(ns, key).unlink()
            except FileNotFoundError:
                pass
            except OSError:
                continue
        self._execute("DELETE FROM entries WHERE key = ?", [(k,) for k, _ in victims], many=True)
        return len(victims)

    # -- whole store -------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Folder, format, size limit, and entries / bytes per namespace (from the index)."""
        by_ns = {ns: {"entries": n, "bytes": int(b)} for ns, n, b in
                 self._execute("SELECT ns, count(*), total(size) FROM entries GROUP BY ns ORDER BY ns")}
        hashes = self._execute("SELECT count(*) FROM file_hashes")
        return {
            "path": str(self.root), "layout": LAYOUT, "max_size": self.max_size,
            "entries": sum(v["entries"] for v in by_ns.values()),
            "bytes": sum(v["bytes"] for v in by_ns.values()),
            "namespaces": by_ns, "file_hashes": hashes[0][0] if hashes else 0,
            "signed": bool(self.secret),
            "this_process": {"hits": self.hits, "misses": self.misses, "writes": self.writes,
                             "dropped": self.dropped, "untrusted": self.untrusted},
        }

    def clear(self) -> int:
        """Delete every entry, temporary file and the index; returns the number of entries removed."""
        n = self.info()["entries"] if self.dir.exists() else 0
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn, self._pid, self._broken = None, -1, None
            shutil.rmtree(self.dir, ignore_errors=True)
        return n

    # -- remembered file hashes --------------------------------------------------------------
    def file_sha256(self, path: str | os.PathLike) -> str:
        """sha256 of a file, remembered across runs by (path, size, mtime, ctime, inode).

        ctime cannot be set back by a user, so a file rewritten in place (even with its mtime
        restored) is hashed again. A remembered hash is handed to the process-wide memo of
        :func:`pytest_i2i.files.sha256_file`, so later hashing of the file in this process
        (e.g. by the weights resolver) reads nothing either.
        """
        p = Path(path).resolve()
        st = p.stat()
        stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        row = self._execute("SELECT size, mtime_ns, ctime_ns, inode, sha256 FROM file_hashes WHERE path = ?",
                            (str(p),))
        if row and tuple(row[0][:4]) == stamp:
            remembered = self._verified_hash(str(p), stamp, row[0][4])
            if remembered is not None:
                remember_sha256(p, remembered, st)
                return remembered
        digest = sha256_file(p)
        self._execute("INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?, ?, ?)",
                      [(str(p), *stamp, self._signed_hash(str(p), stamp, digest))], many=True)
        return digest


    def _signed_hash(self, path: str, stamp: tuple, digest: str) -> str:
        """The ``file_hashes.sha256`` column: the digest, followed by ``:`` and its HMAC when signed."""
        if not self.secret:
            return digest
        mac = hmac.new(self.secret, json.dumps([path, *stamp, digest]).encode(), hashlib.sha256).hexdigest()
        return f"{digest}:{mac}"

    def _verified_hash(self, path: str, stamp: tuple, value: str) -> str | None:
        """The digest in a ``file_hashes`` row when this store may trust it, else ``None`` (rehash)."""
        digest = value.partition(":")[0]
        return digest if hmac.compare_digest(self._signed_hash(path, stamp, digest), value) else None


# -- entry files ---------------------------------------------------------------------------------
def _mac(secret: bytes, ns: str, key: str, payload: bytes) -> bytes:
    """HMAC-SHA256 of an entry, bound to its namespace and key (a signed entry copied under another
    key, or into another namespace, does not verify)."""
    m = hmac.new(secret, f"{LAYOUT}\0{ns}\0{key}\0".encode(), hashlib.sha256)
    m.update(payload)
    return m.digest()


def _frame(payload: bytes, secret: bytes | None = None, ns: str = "", key: str = "") -> bytes:
    if secret:
        return _HEADER.pack(MAGIC_SIGNED, FORMAT_VERSION, _mac(secret, ns, key, payload), len(payload)) + payload
    return _HEADER.pack(MAGIC, FORMAT_VERSION, hashlib.sha256(payload).digest(), len(payload)) + payload


def _unframe(raw: bytes, secret: bytes | None = None, ns: str = "",
             key: str = "") -> tuple[bytes | None, str | None, bool]:
    """``(payload, None, False)`` for an intact entry this store may trust; else ``(None, what is
    wrong, untrusted)``: ``untrusted`` when the entry is intact as far as can be told but not
    signed with ``secret`` (unsigned while a key is set, signed with another key, or signed while
    no key is set), ``False`` when it is damaged."""
    if len(raw) < _HEADER.size:
        return None, f"truncated: {len(raw)} bytes, shorter than the header", False
    magic, version, digest, length = _HEADER.unpack_from(raw)
    if magic not in (MAGIC, MAGIC_SIGNED):
        return None, "not a pytest-i2i cache entry (bad magic)", False
    if version != FORMAT_VERSION:
        return None, f"entry format version {version}, expected {FORMAT_VERSION}", False
    payload = raw[_HEADER.size:]
    if len(payload) != length:
        return None, f"truncated: payload has {len(payload)} bytes, header says {length}", False
    if magic == MAGIC_SIGNED:
        if not secret:
            return None, f"signed (HMAC) while {_ENV_KEY} is not set, so they cannot be verified", True
        if not hmac.compare_digest(_mac(secret, ns, key, payload), digest):
            return None, f"not signed with this {_ENV_KEY} (another key, or forged)", True
        return payload, None, False
    if hashlib.sha256(payload).digest() != digest:
        return None, "checksum mismatch", False
    if secret:
        return None, f"unsigned while {_ENV_KEY} is set", True
    return payload, None, False


def _atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """:func:`pytest_i2i.files.write_bytes_atomic` (``durable``: fsync the file and its folder),
    with the test hook that holds the writer between the write and the rename (so a test can
    SIGKILL it there)."""
    delay = os.environ.get(TEST_SLEEP_ENV)
    write_bytes_atomic(path, data, sync_dir=durable, durable=durable,
                       before_replace=(lambda: time.sleep(float(delay))) if delay else None)


# -- tensor bundles ------------------------------------------------------------------------------
def pack_tensors(tensors: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> bytes:
    """A payload holding named CPU tensors (any numeric dtype, stored bit-exactly) and JSON ``meta``."""
    import numpy as np

    header: dict[str, Any] = {"tensors": {}, "meta": dict(meta or {})}
    blobs: list[bytes] = []
    offset = 0
    for name, t in tensors.items():
        arr = np.ascontiguousarray(t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t))
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        blob = arr.tobytes()
        header["tensors"][name] = [arr.dtype.str, list(arr.shape), offset, len(blob)]
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return struct.pack("<I", len(head)) + head + b"".join(blobs)


def unpack_tensors(payload: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """``({name: torch.Tensor}, meta)`` from :func:`pack_tensors` output; raises ``ValueError`` if malformed."""
    import numpy as np
    import torch

    try:
        (n,) = struct.unpack_from("<I", payload)
        header = json.loads(payload[4:4 + n])
        body = memoryview(payload)[4 + n:]
        out = {}
        for name, (dtype, shape, offset, nbytes) in header["tensors"].items():
            arr = np.frombuffer(body[offset:offset + nbytes], dtype=np.dtype(dtype)).reshape(shape)
            out[name] = torch.from_numpy(arr.copy())
        return out, header.get("meta", {})
    except (struct.error, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"malformed tensor bundle: {type(e).__name__}: {e}") from None


def load_bundles(store: Store, ns: str, keys: Iterable[str]) -> dict[str, tuple[dict[str, Any], dict]]:
    """``{key: (tensors, meta)}`` for the keys found intact (a malformed bundle is dropped as damaged)."""
    out = {}
    for key, payload in store.get_many(ns, keys).items():
        try:
            out[key] = unpack_tensors(payload)
        except ValueError as e:
            store.discard(ns, key, str(e))
    return out


def save_bundles(store: Store, ns: str, items: Mapping[str, tuple[Mapping[str, Any], Mapping]]) -> None:
    """Store ``{key: (tensors, meta)}`` (see :func:`pack_tensors`)."""
    store.put_many(ns, {key: pack_tensors(t, meta) for key, (t, meta) in items.items()})
