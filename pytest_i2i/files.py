"""Files, the lowest layer: content hashes and atomic writes, used by every other layer.

* :func:`sha256_file`: the sha256 of a file, memoised per process on (path, size, mtime), so
  a large weights file, checkpoint or judgment file is hashed once. Trust decisions (published
  weights, bundled judgment files, cache entries) follow this content hash, never a file name.
* :func:`write_bytes_atomic` / :func:`write_text_atomic` / :func:`write_json_atomic`: a
  temporary file in the target's folder, flushed and ``fsync``-ed, then ``os.replace``-d onto
  the name (atomic on POSIX and Windows) and the folder ``fsync``-ed: a reader sees the old
  file or the new one, never half of one, even if the writer is killed with SIGKILL.

Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

#: every temporary file of an atomic write starts with this (never read; safe to delete when orphaned)
TMP_PREFIX = ".tmp-"


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words (``"a FIFO (named pipe)"``, ``"a character device"``, ...)."""
    import stat

    for test, what in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def regular_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a :class:`~pathlib.Path` when it is a regular file (symlinks followed), else an
    :class:`~pytest_i2i.errors.I2IInputError` naming ``what`` and the path.

    Checked with ``stat`` before anything opens the file: a FIFO, a device (``/dev/zero``) or a
    socket is refused as "not a regular file" (opening or reading one can block forever or never
    end), a missing path as "does not exist", a dangling symbolic link as such.
    """
    import stat

    from pytest_i2i.errors import I2IInputError

    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        if p.is_symlink():
            raise I2IInputError(f"{what} {p}: dangling symbolic link (its target does not exist)") from None
        raise I2IInputError(f"{what} {p} does not exist") from None
    except OSError as e:
        raise I2IInputError(f"{what} {p}: cannot be read ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise I2IInputError(f"{what} {p} is not a regular file: it is {file_kind(st.st_mode)}")
    return p


def folder_unwritable(folder: Path) -> str | None:
    """Why files cannot be written under ``folder`` (created later if missing), or ``None``.

    Tried for real (a temporary file created and removed in the folder, or in its nearest existing
    parent), since permission bits do not tell (root, read-only mounts, ACLs). Creates nothing.
    """
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return f"{folder}: no existing parent folder"
        probe = probe.parent
    if not probe.is_dir():
        return f"{folder} cannot be created: {probe} is not a directory"
    try:
        fd, name = tempfile.mkstemp(dir=probe, prefix=".i2i-write-test-")
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        where = "" if probe == folder else f" (in {probe}, where it would be created)"
        return f"{folder} is not writable{where}: {e.strerror or e}"
    return None


_HASHES: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of the file at ``path``, memoised on (resolved path, size, mtime_ns)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        known = _HASHES.get(key)
    if known is not None:
        return known
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    remember_sha256(p, digest, st)
    return digest


def remember_sha256(path: str | os.PathLike, digest: str, stat: os.stat_result | None = None) -> None:
    """Record a hash computed elsewhere (e.g. remembered across runs by the on-disk cache)."""
    p = Path(path)
    st = stat if stat is not None else p.stat()
    with _HASH_LOCK:
        _HASHES[(str(p.resolve()), st.st_size, st.st_mtime_ns)] = digest


def fsync_dir(folder: str | os.PathLike) -> None:
    """``fsync`` a folder so a rename in it is durable (a no-op where folders cannot be opened)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, mode: int | None = None,
                       sync_dir: bool = True, before_replace: Any = None, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring).

    Args:
        path: the target file; its folder is created if missing.
        data: the bytes to write.
        mode: permission bits of the new file (default: ``0o666`` minus the umask, as ``open``).
        sync_dir: also ``fsync`` the folder after the rename (durable rename).
        before_replace: called with no argument between the write and the rename (test hooks).
        durable: ``fsync`` the file before the rename (default). ``False`` (and ``sync_dir=False``)
            keeps the atomicity a killed process can see (the old file or the new one, never half
            of one) but not across a power loss, which may leave the new name empty or partial:
            only for files whose readers verify a checksum and can rebuild them (cache entries),
            where an ``fsync`` per file would cost more than the work it saves.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f"{TMP_PREFIX}{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, target)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    if sync_dir:
        fsync_dir(target.parent)


def write_text_atomic(path: str | os.PathLike, text: str, **kwargs: Any) -> None:
    """:func:`write_bytes_atomic` of UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"), **kwargs)


def write_json_atomic(path: str | os.PathLike, data: Any, **kwargs: Any) -> None:
    """Strict JSON (no NaN/Inf: see :mod:`pytest_i2i.report` for how non-finite numbers are
    written), indented, keys sorted, newline-terminated, written atomically."""
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_text_atomic(path, text, **kwargs)


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    with _UMASK_LOCK:  # os.umask can only be read by setting it
        current = os.umask(0)
        os.umask(current)
    return current
