"""Evaluation datasets for the plugin: input images, optional targets and texts.

:func:`load_dataset` reads a folder layout or a CSV / JSONL manifest (formats in
:mod:`pytest_i2i.data.dataset`); :func:`sample_dataset` is the built-in set used when no data
is given. Module dependencies run one way: ``loading`` → ``samples`` → ``dataset`` → ``manifest``.
"""

from pytest_i2i.data.dataset import I2IDataset, Sample, load_folder, load_manifest
from pytest_i2i.data.loading import load_dataset
from pytest_i2i.data.manifest import TEXT_FIELDS, read_table, resolve_under_root
from pytest_i2i.data.samples import COLORIZATION_TEXTS, sample_dataset

__all__ = [
    "COLORIZATION_TEXTS", "TEXT_FIELDS", "I2IDataset", "Sample", "load_dataset", "load_folder", "load_manifest",
    "read_table", "resolve_under_root", "sample_dataset",
]
