"""`load_dataset`: the one entry point to evaluation datasets, from ``None`` (the built-in sample
set), a dataset folder or a ``.csv`` / ``.jsonl`` manifest (formats in :mod:`pytest_i2i.data.dataset`)."""

from __future__ import annotations

import os
from pathlib import Path

from pytest_i2i.data.dataset import ACCEPTED_FORMS, I2IDataset, load_folder, load_manifest, positive_int
from pytest_i2i.data.manifest import TABLE_SUFFIXES
from pytest_i2i.data.samples import sample_dataset
from pytest_i2i.errors import I2IInputError


def load_dataset(
    path: str | os.PathLike | None = None, *, max_samples: int | None = None, allow_outside_root: bool = False
) -> I2IDataset:
    """Load an evaluation dataset (formats in :mod:`pytest_i2i.data.dataset`).

    Args:
        path: ``None`` (the built-in sample set), a dataset folder, or a ``.csv`` / ``.jsonl`` manifest.
        max_samples: keep the first ``max_samples`` samples in uid order (``--i2i-max-samples``).
        allow_outside_root: accept absolute paths and paths outside the root.

    Returns:
        The dataset, ordered by uid.

    Raises:
        DatasetError: any problem with the folder, manifest or texts file (names file and line).
        UnsafePathError: a path escapes the root or is a symlink loop.
        I2IInputError: ``path`` is none of the accepted forms; ``max_samples`` < 1.
    """
    if max_samples is not None:
        max_samples = positive_int(max_samples, "max_samples")
    if path is None:
        dataset = sample_dataset()
    elif not isinstance(path, (str, os.PathLike)):
        raise I2IInputError(f"dataset: unsupported type {type(path).__name__}; pass {ACCEPTED_FORMS}")
    else:
        p = Path(path).expanduser()
        if p.is_dir():
            dataset = load_folder(p, allow_outside_root=allow_outside_root)
        elif p.is_file() and p.suffix.lower() in TABLE_SUFFIXES:
            dataset = load_manifest(p, allow_outside_root=allow_outside_root)
        elif not p.exists():
            raise I2IInputError(f"dataset: {p} does not exist; pass {ACCEPTED_FORMS}")
        elif not p.is_file():
            from pytest_i2i.files import regular_file

            regular_file(p, "dataset:")  # a FIFO, a device, a socket: refused without opening it
        else:
            raise I2IInputError(f"dataset: {p} is not a dataset; pass {ACCEPTED_FORMS}")
    return dataset if max_samples is None else dataset.subset(max_samples)
