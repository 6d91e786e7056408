"""Finding, verifying and (only when allowed) downloading backbone weights files.

Resolution order for a backbone's published weights (first hit wins):

1. an explicit file path given by the user (``weights="path/to/file.pth"``);
2. the weights directory: the ``weights_dir`` argument, else ``$I2I_WEIGHTS_DIR``
   (the plugin sets it from ``--i2i-weights-dir``);
3. the torch hub checkpoint cache (``$TORCH_HOME/hub/checkpoints``, i.e. ``torch.hub.get_dir()``);
4. the Hugging Face hub cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``);
5. a download into the torch hub cache, only when downloads are allowed
   (``allow_download=True`` or ``$I2I_ALLOW_DOWNLOAD=1``);
6. otherwise :class:`~pytest_i2i.errors.WeightsNotFound`, naming the file, its sha256 and where to put it.

A file found by name (steps 2-5) whose sha256 differs from the published one is refused
(:class:`~pytest_i2i.errors.WeightsHashMismatch`): it is partial or tampered. A file given by
explicit path is the user's choice and is used; it counts as *calibrated* only when its hash
matches the published one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pytest_i2i.errors import WeightsHashMismatch, WeightsNotFound
from pytest_i2i.files import sha256_file

ENV_WEIGHTS_DIR = "I2I_WEIGHTS_DIR"
ENV_ALLOW_DOWNLOAD = "I2I_ALLOW_DOWNLOAD"


@dataclass(frozen=True)
class WeightsFile:
    """One published weights file.

    Attributes:
        filename: the file name looked for in every location.
        sha256: full published sha256, or ``None`` when no trustworthy published hash exists
            (then the file is used unverified and results say so).
        url: where the file is published (used only when downloads are allowed).
        hf_hub_id: Hugging Face repo id, for the HF cache lookup (``None`` if not on the hub).
        hf_filename: the file's name inside that repo (defaults to ``filename``).
    """

    filename: str
    sha256: str | None = None
    url: str | None = None
    hf_hub_id: str | None = None
    hf_filename: str | None = None


@dataclass(frozen=True)
class PretrainedCfg:
    """The published weights of a backbone: one or more interchangeable files (first is preferred)."""

    files: tuple[WeightsFile, ...]
    source: str = ""
    license: str = ""


@dataclass(frozen=True)
class ResolvedWeights:
    """Where a weights file was found and what it is."""

    path: Path
    sha256: str
    calibrated: bool
    location: str  # "explicit path", "weights dir", "torch hub cache", "hf hub cache", "download"
    warnings: tuple[str, ...] = ()


def downloads_allowed(allow_download: bool | None = None) -> bool:
    if allow_download is not None:
        return allow_download
    return os.environ.get(ENV_ALLOW_DOWNLOAD, "").strip().lower() in {"1", "true", "yes", "on"}


def torch_hub_checkpoints_dir() -> Path:
    # Same rule as torch.hub.get_dir(), without importing torch.
    if "TORCH_HOME" in os.environ:
        base = Path(os.environ["TORCH_HOME"])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"
    return base / "hub" / "checkpoints"


def hf_hub_cache_dir() -> Path:
    if "HF_HUB_CACHE" in os.environ:
        return Path(os.environ["HF_HUB_CACHE"])
    if "HF_HOME" in os.environ:
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface" / "hub"


def _hf_candidates(wf: WeightsFile) -> list[Path]:
    if not wf.hf_hub_id:
        return []
    repo_dir = hf_hub_cache_dir() / ("models--" + wf.hf_hub_id.replace("/", "--")) / "snapshots"
    if not repo_dir.is_dir():
        return []
    name = wf.hf_filename or wf.filename
    found = sorted(p for p in repo_dir.glob(f"*/{name}") if p.is_file())
    main_ref = repo_dir.parent / "refs" / "main"
    if main_ref.is_file():  # the revision huggingface_hub itself would use comes first
        rev = main_ref.read_text().strip()
        found.sort(key=lambda p: p.parent.name != rev)
    return found


def search_paths(
    pretrained: PretrainedCfg, weights_dir: str | os.PathLike | None = None
) -> list[tuple[Path, str, WeightsFile]]:
    """``(path, location, file)`` where the published files are looked for, in resolution order
    (steps 2-4 of the module docstring; ``weights_dir`` defaults to ``$I2I_WEIGHTS_DIR``)."""
    wdir = weights_dir if weights_dir is not None else os.environ.get(ENV_WEIGHTS_DIR)
    found: list[tuple[Path, str, WeightsFile]] = []
    for wf in pretrained.files:
        if wdir:
            found.append((Path(wdir).expanduser() / wf.filename, "weights dir", wf))
        found.append((torch_hub_checkpoints_dir() / wf.filename, "torch hub cache", wf))
        found.extend((p, "hf hub cache", wf) for p in _hf_candidates(wf))
    return found


def _check(path: Path, wf: WeightsFile, location: str) -> ResolvedWeights:
    actual = sha256_file(path)
    if wf.sha256 is None:
        return ResolvedWeights(
            path, actual, True, location,
            (f"{wf.filename}: no published sha256 is known, so the file at {path} was not hash-verified "
             f"(its sha256 is {actual})",),
        )
    if actual != wf.sha256:
        raise WeightsHashMismatch(
            f"weights file {path} (found in the {location}) has sha256 {actual}, but the published "
            f"{wf.filename} has sha256 {wf.sha256}: the file is partial or not the published one and is refused. "
            f"Delete it and install the published file."
        )
    return ResolvedWeights(path, actual, True, location)


def resolve_weights(
    backbone_name: str,
    pretrained: PretrainedCfg,
    weights: str | os.PathLike | None = None,
    *,
    weights_dir: str | os.PathLike | None = None,
    allow_download: bool | None = None,
) -> ResolvedWeights:
    """Find the weights file of ``backbone_name`` following the documented resolution order.

    Args:
        backbone_name: used in messages.
        pretrained: the backbone's published files.
        weights: an explicit file path, or ``None`` to search.
        weights_dir: a weights directory searched first (default ``$I2I_WEIGHTS_DIR``).
        allow_download: allow a download as a last resort (default ``$I2I_ALLOW_DOWNLOAD``).

    Raises:
        WeightsNotFound: nothing usable anywhere (message names the file, sha256 and locations).
        WeightsHashMismatch: a file with the published name has the wrong sha256.
    """
    known = {wf.sha256 for wf in pretrained.files if wf.sha256}
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsNotFound(
                f"weights file {path} for backbone {backbone_name!r} does not exist",
                filename=path.name, sha256=None, searched=[str(path)],
            )
        actual = sha256_file(path)
        if actual in known:
            return ResolvedWeights(path, actual, True, "explicit path")
        by_name = {wf.filename: wf for wf in pretrained.files}
        if path.name in by_name and by_name[path.name].sha256 is None:
            return _check(path, by_name[path.name], "explicit path")
        return ResolvedWeights(
            path, actual, False, "explicit path",
            (f"{path} is not a published {backbone_name} weights file (sha256 {actual}); results are uncalibrated",),
        )

    wdir = weights_dir if weights_dir is not None else os.environ.get(ENV_WEIGHTS_DIR)
    searched: list[str] = []
    for path, location, wf in search_paths(pretrained, weights_dir):
        searched.append(str(path))
        if path.is_file():
            return _check(path, wf, location)

    if downloads_allowed(allow_download):
        for wf in pretrained.files:
            if wf.url:
                return _download(wf)

    first = pretrained.files[0]
    where = f"${ENV_WEIGHTS_DIR} (or --i2i-weights-dir)" + (f", currently {wdir}" if wdir else "")
    lines = [
        f"weights for backbone {backbone_name!r} not found. Expected the file {first.filename}"
        + (f" (sha256 {first.sha256})" if first.sha256 else " (no published sha256 known)")
        + (f" from {first.url}" if first.url else "")
        + ".",
        f"Put it in {where}, or in {torch_hub_checkpoints_dir()}, or pass weights='path/to/{first.filename}'.",
    ]
    for wf in pretrained.files[1:]:
        lines.append(f"Also accepted: {wf.filename}" + (f" (sha256 {wf.sha256})" if wf.sha256 else ""))
    lines.append(f"Downloads are disabled; set {ENV_ALLOW_DOWNLOAD}=1 to allow one. Searched: {', '.join(searched)}")
    raise WeightsNotFound("\n".join(lines), filename=first.filename, sha256=first.sha256, searched=searched)


def _download(wf: WeightsFile) -> ResolvedWeights:
    import tempfile

    import torch.hub

    dest_dir = torch_hub_checkpoints_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{wf.filename}.", suffix=".partial")
    os.close(fd)
    try:
        try:
            torch.hub.download_url_to_file(wf.url, tmp, progress=False)
        except Exception as e:  # noqa: BLE001 - network errors come in many types
            raise WeightsNotFound(
                f"downloading {wf.url} failed ({type(e).__name__}: {e}); install {wf.filename} by hand",
                filename=wf.filename, sha256=wf.sha256, searched=[wf.url],
            ) from None
        actual = sha256_file(tmp)
        if wf.sha256 is not None and actual != wf.sha256:
            raise WeightsHashMismatch(
                f"downloaded {wf.url} has sha256 {actual}, expected {wf.sha256}; the download was discarded"
            )
        dest = dest_dir / wf.filename
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return _check(dest, wf, "download")
