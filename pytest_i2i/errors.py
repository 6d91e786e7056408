"""The project's own exception types.

Every error raised on purpose by pytest-i2i derives from :class:`I2IError`, so callers
(and the pytest plugin) can tell a clear, user-facing problem from a bug.
"""

from __future__ import annotations

from collections.abc import Iterable


class I2IError(Exception):
    """Base class of every error pytest-i2i raises on purpose."""


class I2IInputError(I2IError, ValueError):
    """An input (image, tensor, file, argument) is unusable. The message names the input."""


class UnknownNameError(I2IError, KeyError):
    """A registry lookup used a name that is not registered; the message lists the valid ones."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(self.known) or '(none)'}")

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return self.args[0]


class WeightsError(I2IError):
    """Base class for problems with weights files (backbone weights, checkpoints).

    ``backbone`` names the backbone whose weights were being resolved (``None`` when unknown).
    """

    backbone: str | None = None


class WeightsNotFound(WeightsError, FileNotFoundError):
    """No usable weights file was found; the message names the file, its sha256 and how to install it."""

    def __init__(self, message: str, *, filename: str, sha256: str | None, searched: list[str],
                 backbone: str | None = None):
        self.filename = filename
        self.sha256 = sha256
        self.searched = searched
        self.backbone = backbone
        super().__init__(message)

    def __str__(self) -> str:
        return self.args[0]


class WeightsHashMismatch(WeightsError):
    """A weights file exists but its sha256 differs from the published one (partial or tampered)."""


class CheckpointError(WeightsError, I2IInputError):
    """A weights or checkpoint file cannot be read safely (see :mod:`pytest_i2i.checkpoint`):
    truncated, corrupt, of another format, or a pickle that only code-running unpickling could read.

    ``needs_code`` is true in the last case; ``references`` then names the global the pickle
    asks for (e.g. ``"os.system"``), when the reader said which.
    """

    def __init__(self, message: str, *, needs_code: bool = False, references: str | None = None):
        self.needs_code = needs_code
        self.references = references
        super().__init__(message)


class UntrustedCheckpointError(I2IError):
    """A checkpoint needs full unpickling (it could run code) and the user did not opt in to trust it."""


class MissingDependencyError(I2IError, ImportError):
    """An optional dependency is not installed; the message names the extra to install
    (e.g. ``pip install 'pytest-i2i[diffusers]'``)."""


class GeneratorOutputError(I2IError):
    """A generator's output batch is unusable (not an image batch, NaN/Inf, out of range).

    ``indices`` are the positions of the offending samples in the batch (every position when
    the whole batch is malformed, e.g. a wrong shape).
    """

    def __init__(self, message: str, *, indices: Iterable[int]):
        self.indices = sorted(indices)
        super().__init__(message)


class GeneratorCallError(I2IError):
    """The generator's own model raised while running on a batch (e.g. an input size its
    architecture refuses). The message names the generator, the samples and the error;
    ``names`` are the samples of the batch. :func:`pytest_i2i.generate` turns it into an error of
    each sample that fails on its own, and keeps generating the others."""

    def __init__(self, message: str, *, names: Iterable[str]):
        self.names = list(names)
        super().__init__(message)


class GenerationTimeout(I2IError):
    """A generator call did not return within the time allowed (``timeout_s`` of
    :func:`pytest_i2i.generate`, ``--i2i-generation-timeout``). ``names`` are the samples of that call.
    The call cannot be stopped from outside; it is abandoned and the generator is not called again."""

    def __init__(self, message: str, *, names: Iterable[str], seconds: float):
        self.names = list(names)
        self.seconds = seconds
        super().__init__(message)


class DatasetError(I2IInputError):
    """A dataset or data file (folder layout, manifest, texts or judgment file) is unusable.

    The message names the file and, for tables, the 1-based line.
    """


class UnsafePathError(DatasetError):
    """A path read from a file (manifest, judgment file) escapes its declared root, is absolute
    where that is not allowed, or is a symlink loop."""


class JudgmentError(DatasetError):
    """A human-judgment set or score file (manifest, native table, cell) is unusable.

    The message names the file and, where known, the line, uid or column."""
