"""How images flow to the backbones: workers, threads, memory reuse, progress bars and GPU autocast.

One process-wide setting, read by :meth:`pytest_i2i.images.ImageSet.iter_prepared` and
:meth:`pytest_i2i.backbones.backbone.Backbone.__call__`. Set it with :func:`configure_pipeline`
(or the environment: ``I2I_NUM_WORKERS``, ``I2I_PREP_THREADS``, ``I2I_REUSE_MEMORY``,
``I2I_PROGRESS``, ``I2I_AUTOCAST``).

* ``num_workers``: decoding, hashing, centre-cropping, resizing and normalising run in that
  many DataLoader worker processes (``fork``; 0 = in the calling process), for image files only
  (in-memory images decode in microseconds). Default 0 under pytest (no start-up cost for the
  small sets tests use) and on machines with 2 CPUs or fewer (measured: no gain there), else
  ``min(4, CPUs - 1)``. Features are bit-identical whatever the number of workers: each image
  goes through the same functions (:class:`pytest_i2i.images.Preprocess`,
  :func:`~pytest_i2i.images.prepare.prepare_image`).
* ``prep_threads``: without workers, the images of each batch are decoded, hashed and prepared
  by that many threads while the calling thread waits for them (decoding, hashing and resizing
  release the GIL), and the forward pass runs after them, so the two never compete for cores.
  Default: the CPUs this process may use, at most 4; 1 = in the calling thread. Bit-identical
  whatever the number (each thread prepares with one torch thread, as workers do).
* ``reuse_memory``: CPU forward passes reuse the memory of the pass before instead of faulting in
  fresh pages (:mod:`pytest_i2i.allocator`: glibc's malloc tuned once, its mappings off during a
  pass; page faults were about a fifth of the FID Inception's forward time on CPU). Default on;
  ``False`` or ``I2I_REUSE_MEMORY=0`` leaves malloc as it is. Does nothing off glibc.
* ``progress``: a tqdm bar on stderr for work that takes over 2 s. Default: off under pytest
  (``--i2i-progress`` or ``I2I_PROGRESS=1`` turns it on), else on when stderr is a terminal.
* ``autocast``: ``None`` (default, float32) or ``"float16"`` / ``"bfloat16"``: backbone forward
  passes under ``torch.autocast`` on CUDA only. It changes features by ~1e-3 relative, so it is
  refused on CPU and must never be used for the numerics checks; results computed with it say
  so in their warnings.

>>> from pytest_i2i.pipeline import configure_pipeline
>>> configure_pipeline(num_workers=2, progress=False)   # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from pytest_i2i.errors import I2IInputError

AUTOCAST_DTYPES = ("float16", "bfloat16")
PROGRESS_DELAY_S = 2.0


@dataclass
class PipelineSettings:
    """Explicit settings; ``None`` means "the environment, else the default" (see the module docstring)."""

    num_workers: int | None = None
    progress: bool | None = None
    autocast: str | None = None
    prep_threads: int | None = None
    reuse_memory: bool | None = None


SETTINGS = PipelineSettings()


def configure_pipeline(
    *, num_workers: int | None = None, progress: bool | None = None, autocast: str | None = None,
    prep_threads: int | None = None, reuse_memory: bool | None = None,
) -> PipelineSettings:
    """Set the process-wide pipeline settings (arguments left ``None`` keep their current value).

    Raises:
        I2IInputError: a negative ``num_workers``, ``prep_threads`` < 1 or an unknown ``autocast`` dtype.
    """
    if num_workers is not None:
        SETTINGS.num_workers = _check_count(num_workers, "num_workers", 0)
    if prep_threads is not None:
        SETTINGS.prep_threads = _check_count(prep_threads, "prep_threads", 1)
    if reuse_memory is not None:
        SETTINGS.reuse_memory = bool(reuse_memory)
    if progress is not None:
        SETTINGS.progress = bool(progress)
    if autocast is not None:
        SETTINGS.autocast = _check_autocast(autocast, "autocast")
    return SETTINGS


def reset_pipeline() -> None:
    """Back to the defaults (environment, then automatic)."""
    SETTINGS.num_workers = SETTINGS.progress = SETTINGS.autocast = None
    SETTINGS.prep_threads = SETTINGS.reuse_memory = None


def under_pytest() -> bool:
    """True while pytest runs a test or fixture (pytest sets ``PYTEST_CURRENT_TEST`` then)."""
    return "PYTEST_CURRENT_TEST" in os.environ


def num_workers() -> int:
    """DataLoader workers for decoding and resizing (see the module docstring)."""
    chosen = _count_setting(SETTINGS.num_workers, "I2I_NUM_WORKERS", 0)
    if chosen is not None:
        return chosen
    if under_pytest():
        return 0
    cpus = usable_cpus()
    # Measured (benchmarks/bench_scale.py, workers part): on 2 cores the forward pass already
    # keeps both busy and a worker buys nothing; with more cores decoding overlaps the forward.
    return 0 if cpus <= 2 else min(4, cpus - 1)


def prep_threads() -> int:
    """Threads that prepare each batch's images when there are no workers (see the module docstring)."""
    chosen = _count_setting(SETTINGS.prep_threads, "I2I_PREP_THREADS", 1)
    return min(4, usable_cpus()) if chosen is None else chosen


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def reuse_memory() -> bool:
    """Whether CPU forward passes tune malloc to reuse freed memory (see the module docstring)."""
    if SETTINGS.reuse_memory is not None:
        return SETTINGS.reuse_memory
    return os.environ.get("I2I_REUSE_MEMORY", "").strip().lower() not in ("0", "false", "no", "off")


def progress_enabled() -> bool:
    """Whether long loops show a tqdm bar (see the module docstring)."""
    if SETTINGS.progress is not None:
        return SETTINGS.progress
    env = os.environ.get("I2I_PROGRESS", "").strip().lower()
    if env:
        return env in ("1", "true", "yes", "on")
    if under_pytest():
        return False
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress_bar(total: int, desc: str) -> Any:
    """A tqdm bar on stderr that appears after 2 s of work, or ``None`` when progress is off."""
    if not progress_enabled():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", delay=PROGRESS_DELAY_S, file=sys.stderr, leave=False)


def autocast_dtype(device: Any) -> Any:
    """The ``torch`` dtype to autocast forward passes on ``device`` to, or ``None`` (float32).

    Raises:
        I2IInputError: autocast is requested but ``device`` is not a CUDA device.
    """
    name = SETTINGS.autocast
    if name is None:
        env = os.environ.get("I2I_AUTOCAST", "").strip().lower()
        name = _check_autocast(env, "I2I_AUTOCAST") if env not in ("", "0", "off", "none", "false") else None
    if name is None:
        return None
    import torch

    if torch.device(device).type != "cuda":
        raise I2IInputError(
            f"autocast={name!r} needs a CUDA device, the backbone runs on {device}: on CPU it would be slower "
            "and change the features; unset it (configure_pipeline(autocast=None) / I2I_AUTOCAST) or use a GPU"
        )
    return getattr(torch, name)


def autocast_note() -> str | None:
    """The warning recorded in results computed under autocast (``None`` when it is off)."""
    name = SETTINGS.autocast or os.environ.get("I2I_AUTOCAST", "").strip().lower()
    if name in AUTOCAST_DTYPES:
        return (f"backbone forward passes ran under torch.autocast({name}): features differ from float32 by "
                "~1e-3 relative; not comparable with float32 results or published numbers")
    return None


def _count_setting(explicit: int | None, env: str, minimum: int) -> int | None:
    """The explicit setting, else the environment variable ``env`` (an integer >= ``minimum``), else ``None``."""
    if explicit is not None:
        return explicit
    raw = os.environ.get(env, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise I2IInputError(f"{env} must be an integer >= {minimum}, got {raw!r}") from None
    return _check_count(value, env, minimum)


def _check_count(n: int, what: str, minimum: int) -> int:
    if n < minimum:
        raise I2IInputError(f"{what} must be an integer >= {minimum}, got {n}")
    return int(n)


def _check_autocast(name: str, what: str) -> str:
    if name not in AUTOCAST_DTYPES:
        raise I2IInputError(f"{what} must be one of {', '.join(AUTOCAST_DTYPES)} (or unset), got {name!r}")
    return name
