"""Keys of generator outputs in the on-disk cache (documented in :mod:`pytest_i2i.cache`).

The generator side (:mod:`pytest_i2i.generators.caching`) decides what identifies a generator
run and passes it here as a plain dict of options; this module only turns data into keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_i2i.cache import make_key

OUTPUTS = "outputs"
GENERATORS = "generators"


def output_key(options: Mapping[str, Any], image_sha256: str, text: str | None) -> str:
    """The cache key of one generated output: the generator ``options`` (JSON-able: checkpoint
    sha256, declared options, seed, device type, ...), the input image's sha256 and its text."""
    return make_key(kind=OUTPUTS, image_sha256=image_sha256, text=text, **options)


def generator_key(options: Mapping[str, Any]) -> str:
    """The cache key of what a run of the generator ``options`` recorded (provenance, detected range)."""
    return make_key(kind=GENERATORS, **options)
