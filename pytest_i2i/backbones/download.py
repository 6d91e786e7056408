"""Fetching published weights files: plain URLs (and mirrors) and the Hugging Face hub.

Used by :func:`pytest_i2i.backbones.weights.resolve_weights` when a file is installed nowhere
and downloads are allowed. Both paths leave nothing partial in a cache: a file appears under its
final name only complete and matching every hash and size known for it.

* :func:`fetch_url`: the torch-hub way for files hosted elsewhere (``$TORCH_HOME/hub/checkpoints``,
  the sha256 prefix in torch-hub names, a tqdm progress bar), written here rather than called as
  ``torch.hub.download_url_to_file`` because that function has no timeout (a server that stalls
  hangs it for ever) and accepts a body shorter than its ``Content-Length`` (``http.client`` does
  not raise ``IncompleteRead`` on chunked reads). One process downloads a given file at a time
  (a lock file next to it); the others wait and then use its result.
* :func:`fetch_hf`: ``huggingface_hub`` (its cache layout, revisions, locks and progress bar).
  The file's metadata is asked for first with one short request without retries, so an
  unreachable hub fails in seconds instead of after ``huggingface_hub``'s back-off (measured
  23 s on a machine without DNS); the hub's LFS sha256 (the ETag) is the expected hash when no
  sha256 is pinned.

A source that failed is not tried again in the same process (:func:`forget_download_failures`
resets that), and once a host could not be reached at all, other files on it are not tried
either: on a network without access, each host costs at most one timeout per process.

Standard library only at import.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pytest_i2i.errors import WeightsHashMismatch
from pytest_i2i.files import TMP_PREFIX, fsync_dir, remember_sha256, sha256_file

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
CHUNK = 1 << 20

_FAILED: dict[str, tuple[str, bool]] = {}  # source -> (why it failed, whether it delivered wrong content)
_DEAD_HOSTS: dict[str, str] = {}  # host -> why it could not be reached (this process)
_LOCK = threading.Lock()


class DownloadFailed(Exception):
    """A source could not deliver the file (network, HTTP status, truncation, timeout)."""


@dataclass(frozen=True)
class Expected:
    """What is known of a file before it is downloaded; ``None`` where nothing is known."""

    sha256: str | None = None
    sha256_prefix: str | None = None
    size: int | None = None

    def check(self, actual_sha256: str, actual_size: int, source: str, what: str) -> None:
        """Raise :class:`WeightsHashMismatch` when the content contradicts what is known."""
        problem = None
        if self.sha256 is not None and actual_sha256 != self.sha256:
            problem = f"sha256 {actual_sha256}, expected {self.sha256}"
        elif self.sha256_prefix is not None and not actual_sha256.startswith(self.sha256_prefix):
            problem = f"sha256 {actual_sha256}, but its name promises the prefix {self.sha256_prefix}"
        elif self.size is not None and actual_size != self.size:
            problem = f"{actual_size} bytes, expected {self.size}"
        if problem:
            raise WeightsHashMismatch(f"{what} downloaded from {source} has {problem}; the download was discarded "
                                      "and nothing was written to the cache")


def forget_download_failures() -> None:
    """Allow sources and hosts that failed earlier in this process to be tried again."""
    with _LOCK:
        _FAILED.clear()
        _DEAD_HOSTS.clear()


def _refuse_known_failure(source: str, host: str) -> None:
    with _LOCK:
        if source in _FAILED:
            reason, mismatch = _FAILED[source]
            raise (WeightsHashMismatch if mismatch else DownloadFailed)(
                f"{reason} (earlier in this process; not retried)")
        if host and host in _DEAD_HOSTS:
            raise DownloadFailed(f"not tried: {host} could not be reached earlier in this process "
                                 f"({_DEAD_HOSTS[host]})")


def _remember_failure(source: str, reason: str, host: str = "", unreachable: bool = False,
                      mismatch: bool = False) -> DownloadFailed:
    with _LOCK:
        _FAILED[source] = (reason, mismatch)
        if unreachable and host:
            _DEAD_HOSTS[host] = reason
    return DownloadFailed(reason)


def _describe(e: BaseException) -> str:
    reason = getattr(e, "reason", None)  # urllib.error.URLError wraps the socket error
    inner = reason if isinstance(reason, BaseException) else None
    text = str(inner if inner is not None else e) or type(inner or e).__name__
    return f"{type(inner or e).__name__}: {text}"


# -- plain URLs ------------------------------------------------------------------------------------
def fetch_url(url: str, dest: Path, expected: Expected, *, timeout: float, what: str) -> Path:
    """Download ``url`` to ``dest`` (created only complete and matching ``expected``).

    Args:
        url: ``http(s)://`` or ``file://`` address.
        dest: the final path, e.g. ``$TORCH_HOME/hub/checkpoints/<name>``.
        expected: hashes and size the content must match.
        timeout: seconds to wait for a connection and for each read; a server that sends
            nothing for that long fails the download.
        what: the file, for messages.

    Returns:
        ``dest``. If another process completed it while this one waited for the lock, its file
        is returned as is (the caller verifies every file it uses).

    Raises:
        DownloadFailed: the source could not deliver the file.
        WeightsHashMismatch: the delivered content contradicts ``expected``.
    """
    from filelock import FileLock

    host = urlsplit(url).netloc
    _refuse_known_failure(url, host)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dest.parent / f".{dest.name}.lock")):
        if dest.is_file():
            return dest
        tmp = dest.parent / f"{TMP_PREFIX}{dest.name}.{os.getpid()}.{threading.get_ident()}.partial"
        try:
            with open(tmp, "wb") as out:
                digest, size = _stream(url, out, timeout, what, host)
                out.flush()
                os.fsync(out.fileno())
            try:
                expected.check(digest, size, url, what)
            except WeightsHashMismatch as e:
                _remember_failure(url, str(e), mismatch=True)
                raise
            os.replace(tmp, dest)
            fsync_dir(dest.parent)
        finally:
            tmp.unlink(missing_ok=True)
        remember_sha256(dest, digest)
    return dest


def _stream(url: str, out, timeout: float, what: str, host: str) -> tuple[str, int]:
    """Copy the body of ``url`` into ``out``; (sha256, bytes). Raises DownloadFailed."""
    import http.client
    import urllib.error
    import urllib.request

    from pytest_i2i import __version__

    h = hashlib.sha256()
    n = 0
    request = urllib.request.Request(url, headers={"User-Agent": f"pytest-i2i/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s)/file URLs of weights
    except urllib.error.HTTPError as e:
        raise _remember_failure(url, f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        raise _remember_failure(url, _describe(e), host, unreachable=True) from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.strip().isdigit() else None
        bar = _progress(total, what)
        try:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                h.update(chunk)
                n += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        except TimeoutError:
            raise _remember_failure(url, f"the server sent nothing for {timeout:g} s after {n} bytes") from None
        except (OSError, http.client.HTTPException) as e:
            raise _remember_failure(url, f"{_describe(e)} after {n} bytes") from None
        finally:
            if bar is not None:
                bar.close()
    if total is not None and n != total:
        raise _remember_failure(url, f"truncated: the server sent {n} of {total} bytes")
    return h.hexdigest(), n


def _progress(total: int | None, what: str):
    from pytest_i2i.pipeline import progress_enabled

    if not progress_enabled():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=what, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr)


# -- the Hugging Face hub ---------------------------------------------------------------------------
def fetch_hf(repo_id: str, filename: str, revision: str | None, cache_dir: Path, expected: Expected, *,
             timeout: float) -> Path:
    """Download ``filename`` of ``repo_id`` at ``revision`` into the HF cache with ``huggingface_hub``.

    ``$HF_ENDPOINT`` (read now) selects the hub. Returns the snapshot path of the file.

    Raises:
        DownloadFailed: the hub could not be reached or has no such file.
        WeightsHashMismatch: the hub serves, or delivered, other content than ``expected``; a
            delivered blob is removed from the cache again.
    """
    try:
        from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    except ImportError as e:  # a dependency of timm and open_clip, so normally present
        raise DownloadFailed(f"huggingface_hub is not installed ({e})") from None

    endpoint = os.environ.get("HF_ENDPOINT") or None
    rev = revision or "main"
    url = hf_hub_url(repo_id, filename, revision=rev, endpoint=endpoint)
    host = urlsplit(url).netloc
    _refuse_known_failure(url, host)
    try:
        meta = get_hf_file_metadata(url, timeout=timeout)
    except Exception as e:  # noqa: BLE001 - httpx, HTTP status and offline-mode errors of any version
        name = type(e).__name__
        unreachable = any(k in name for k in ("Connect", "Timeout", "Offline", "Network"))
        raise _remember_failure(url, _describe(e).splitlines()[0][:300], host, unreachable) from None
    hub_sha = meta.etag if meta.etag and SHA256_HEX.fullmatch(meta.etag) else None
    if expected.sha256 and hub_sha and hub_sha != expected.sha256:
        raise WeightsHashMismatch(
            f"{repo_id}/{filename} at revision {rev} on {host} has sha256 {hub_sha}, but the published file "
            f"pinned for it has sha256 {expected.sha256}: not downloaded")
    want = Expected(expected.sha256 or hub_sha, expected.sha256_prefix, expected.size or meta.size)

    blobs = cache_dir / ("models--" + repo_id.replace("/", "--")) / "blobs"
    before = set(os.listdir(blobs)) if blobs.is_dir() else set()
    try:
        path = Path(hf_hub_download(repo_id, filename, revision=rev, cache_dir=str(cache_dir), endpoint=endpoint,
                                    etag_timeout=timeout))
    except Exception as e:  # noqa: BLE001
        _remove_new(blobs, before, only_incomplete=True)
        raise _remember_failure(url, _describe(e).splitlines()[0][:300]) from None
    digest = sha256_file(path)
    try:
        want.check(digest, path.stat().st_size, url, f"{repo_id}/{filename}")
    except WeightsHashMismatch as e:
        path.unlink(missing_ok=True)  # the snapshot pointer
        _remove_new(blobs, before, only_incomplete=False)
        _remember_failure(url, str(e), mismatch=True)
        raise
    return path


def _remove_new(blobs: Path, before: set[str], *, only_incomplete: bool) -> None:
    """Remove what a failed ``hf_hub_download`` added to ``blobs`` (older versions keep partial
    ``*.incomplete`` files for resuming; a blob with the wrong content must go too)."""
    if not blobs.is_dir():
        return
    for name in set(os.listdir(blobs)) - before:
        if not only_incomplete or name.endswith(".incomplete"):
            (blobs / name).unlink(missing_ok=True)
