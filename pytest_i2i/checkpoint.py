"""Reading weights and checkpoint files without running code, and loading them strictly.

The one place where pytest-i2i reads a tensor file (backbone weights, a PatchGAN critic, a
generator's state_dict), so every read follows the same rules:

* :func:`read_checkpoint`: ``.safetensors`` files are read with safetensors; anything else with
  ``torch.load(weights_only=True)``, whose restricted unpickler builds only tensors and plain
  containers and never runs code from the file. A file that is a well-formed pickle but needs
  more (a pickled ``nn.Module``, a ``__reduce__`` payload) raises :class:`CheckpointError` with
  ``needs_code=True``; the only code-running read in the package, behind an explicit opt-in, is
  in :mod:`pytest_i2i.generators.loading`.
* :func:`read_state_dict`: the state_dict inside such a file (directly, or under ``"state_dict"``
  or ``"model"``).
* :func:`load_state_dict_strict` / :func:`load_state_dict_file`: every key present, no key extra,
  every shape equal, or an :class:`~pytest_i2i.errors.I2IInputError` listing the differences.

>>> from pytest_i2i.checkpoint import load_state_dict_file
>>> load_state_dict_file(model, "weights.safetensors", what="my model")   # doctest: +SKIP
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_i2i.errors import CheckpointError, I2IInputError

if TYPE_CHECKING:
    from torch import nn

#: keys under which a checkpoint commonly nests its state_dict (checked in this order)
STATE_DICT_KEYS = ("state_dict", "model")
# Phrases of torch's weights-only unpickler when a *well-formed* pickle needs a global or a call
# it does not allow, i.e. when only full (code-running) unpickling could read the file.
_NEEDS_CODE_MARKERS = ("GLOBAL ", "Can only create new object", "call reduce for unrecognized function")


def read_checkpoint(path: str | os.PathLike, *, what: str) -> Any:
    """The object stored in the file at ``path``, read without running any code from it.

    Args:
        path: a ``.safetensors`` file or a ``torch.save`` file.
        what: what the file is, used in messages (e.g. ``"weights for backbone 'x'"``).

    Returns:
        For ``.safetensors``, a dict of CPU tensors; otherwise whatever ``torch.load`` with
        ``weights_only=True`` builds (tensors, dicts, lists, numbers, strings), on the CPU.

    Raises:
        CheckpointError: the file is unreadable (missing, not a regular file, truncated, corrupt,
            another format, a decompression bomb: see :func:`check_inflation`), or it needs
            code-running unpickling (``needs_code=True``, ``references`` names the
            global it asks for when torch says which). The message names the file and ``what``.
    """
    import torch

    from pytest_i2i.files import regular_file

    try:
        p = regular_file(path, f"{what}: file")
    except I2IInputError as e:
        raise CheckpointError(str(e)) from None
    check_inflation(p, what=what)
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(p), device="cpu")
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch and safetensors raise many types for bad files
        first_line = (str(e).splitlines() or ["(no message)"])[0][:300]
        if isinstance(e, pickle.UnpicklingError) and any(m in str(e) for m in _NEEDS_CODE_MARKERS):
            found = re.search(r"GLOBAL (\S+)", str(e))
            raise CheckpointError(
                f"{p} ({what}) holds pickled objects that only code-running unpickling could read"
                + (f" (it references {found.group(1)})" if found else "")
                + "; it was not loaded (files are read with torch.load(weights_only=True) or safetensors)",
                needs_code=True, references=found.group(1) if found else None,
            ) from None
        raise CheckpointError(
            f"cannot read {p} ({what}): {type(e).__name__}: {first_line}. It is not a readable tensor file "
            "(a .safetensors file, or a torch.save file readable with weights_only=True): is it truncated, "
            "corrupt or of another format?"
        ) from None


#: a zip checkpoint may declare at most this many times its size on disk in uncompressed members
#: (torch.save stores members uncompressed: a regular file declares about 1x; deflated float weights
#: compress by well under 2x)
MAX_INFLATION = 8
#: ... or its size on disk plus this many bytes, whichever is more (small files with padding)
INFLATION_SLACK = 64 * 2**20


def check_inflation(path: Path, *, what: str) -> None:
    """Refuse a zip checkpoint whose members would inflate far beyond its size on disk, before
    torch reads it (a decompression bomb: a 2 MB ``.pt`` whose member inflates to 2 GiB made
    ``torch.load`` allocate gigabytes before failing). Only the zip's central directory is read.

    The limit: the declared uncompressed sizes may total at most ``max(MAX_INFLATION x size on
    disk, size on disk + INFLATION_SLACK)``.

    Raises:
        CheckpointError: naming the file, the declared and the allowed sizes.
    """
    import zipfile

    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return  # not a readable zip: torch.load reports what it is
    on_disk = path.stat().st_size
    declared = sum(m.file_size for m in members)
    allowed = max(MAX_INFLATION * on_disk, on_disk + INFLATION_SLACK)
    if declared > allowed:
        biggest = max(members, key=lambda m: m.file_size)
        raise CheckpointError(
            f"{path} ({what}): refused by the decompression-bomb guard: its zip members declare "
            f"{declared} bytes uncompressed for {on_disk} bytes on disk (at most {allowed} allowed; largest member "
            f"{biggest.filename!r}: {biggest.file_size} bytes, compressed to {biggest.compress_size}); torch.save "
            "never compresses, so this file was not written by it"
        )


def read_state_dict(path: str | os.PathLike, *, what: str) -> dict[str, Any]:
    """The state_dict in the file at ``path`` (:func:`read_checkpoint`): the file's dict of tensors,
    or the one it holds under ``"state_dict"`` or ``"model"``.

    Raises:
        CheckpointError: unreadable file (see :func:`read_checkpoint`).
        I2IInputError: the file holds something else (a tensor, a list, a number).
    """
    import torch

    obj = read_checkpoint(path, what=what)
    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in STATE_DICT_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise I2IInputError(f"{path} ({what}) holds a {type(obj).__name__}, not a state_dict")
    return obj


def load_state_dict_strict(module: nn.Module, state: Mapping[str, Any], *, source: str, target: str) -> None:
    """``module.load_state_dict(state, strict=True)`` with a clear error naming both sides.

    Args:
        module: the module to fill.
        state: the state_dict.
        source: where ``state`` comes from, for messages (e.g. ``"weights file /w/x.pth"``).
        target: what ``module`` is, for messages (e.g. ``"backbone 'inception-fid'"``).

    Raises:
        I2IInputError: missing or unexpected keys (counted, the first ones named) or a shape
            mismatch (torch's message, which names the parameter and both shapes).
    """
    expected = set(module.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise I2IInputError(f"{source} does not fit {target}: {len(missing)} missing keys {_some(missing)}, "
                            f"{len(unexpected)} unexpected keys {_some(unexpected)}")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:  # shape mismatches
        raise I2IInputError(f"{source} does not fit {target}: {str(e)[:800]}") from None


def load_state_dict_file(
    module: nn.Module, path: str | os.PathLike, *, what: str,
    transform: Callable[[dict, nn.Module], dict] | None = None,
) -> None:
    """Load the state_dict in the file at ``path`` into ``module``, safely and strictly.

    Args:
        module: the module to fill.
        path: the weights file (:func:`read_state_dict`).
        what: what ``module`` is, for messages (e.g. ``"backbone 'inception-fid'"``).
        transform: ``(state_dict, module) -> state_dict`` applied before loading (e.g. timm's
            checkpoint filters, which rename keys or resample position embeddings).

    Raises:
        CheckpointError: unreadable file. I2IInputError: not a state_dict, or it does not fit.
    """
    state = read_state_dict(path, what=f"weights for {what}")
    if transform is not None:
        state = transform(state, module)
    load_state_dict_strict(module, state, source=f"weights file {path}", target=what)


def _some(keys: list[str], k: int = 8) -> str:
    return "[" + ", ".join(keys[:k]) + (", ..." if len(keys) > k else "") + "]"
