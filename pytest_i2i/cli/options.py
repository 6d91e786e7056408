"""The flags several ``i2i`` subcommands share, defined once so that they read the same everywhere.

Each is the pytest plugin's ``--i2i-<name>`` without the prefix: ``--weights``, ``--weights-dir``,
``--offline``, ``--weights-mirror``, ``--require-weights``, ``--device``, ``--batch-size``,
``--resize``, ``--seed``, ``--cache-dir``. A subcommand adds the ones that apply to it with
:func:`add_options` (its own default or help where it differs) and applies the weights settings
with :func:`apply_weights_options`.
"""

from __future__ import annotations

import argparse
from typing import Any


def positive_int(text: str) -> int:
    """``argparse`` type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def seed_int(text: str) -> int:
    """``argparse`` type: a seed, an integer in [0, 2**63 - 1]."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= 2**63 - 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**63 - 1], got {value}")
    return value


#: name -> add_argument keywords; ``help`` may hold ``{default}`` for the subcommand's default
OPTIONS: dict[str, dict[str, Any]] = {
    "weights": {"default": None, "metavar": "FILE|random",
                "help": "backbone weights: a file, or 'random' for an uncalibrated smoke test (labelled so); "
                        "default: the published files, found or downloaded as `i2i backbones` shows"},
    "weights_dir": {"default": None, "metavar": "DIR",
                    "help": "folder searched first for backbone weights files (default $I2I_WEIGHTS_DIR)"},
    "offline": {"action": "store_true",
                "help": "never download weights (or diffusers pipelines): what is missing is skipped, saying which "
                        "file to install (default: $I2I_OFFLINE, $HF_HUB_OFFLINE)"},
    "weights_mirror": {"default": None, "metavar": "URL",
                       "help": "download published weights files by name from this server instead of their hosts "
                               "(default $I2I_WEIGHTS_MIRROR)"},
    "require_weights": {"action": "store_true",
                        "help": "fail (exit 2) instead of skipping metrics whose backbone weights are missing"},
    "device": {"default": None, "metavar": "DEVICE", "help": "torch device: cpu, cuda, cuda:N or mps (default cpu)"},
    "batch_size": {"type": positive_int, "default": 16, "metavar": "N",
                   "help": "images per forward pass (default {default})"},
    "resize": {"choices": ("clean", "legacy-pytorch"), "default": "clean",
               "help": "resize convention: clean (antialiased bicubic, clean-fid) or legacy-pytorch (pytorch-fid's "
                       "bilinear, to reproduce its numbers); default {default}"},
    "seed": {"type": seed_int, "default": 0, "metavar": "N", "help": "random seed (default {default})"},
    "cache_dir": {"default": None, "metavar": "DIR",
                  "help": "reuse and store features in this cache folder (default $I2I_CACHE_DIR; off if unset)"},
}

#: the weights options (the pytest plugin's ``--i2i-weights-dir``, ``--i2i-offline``, ``--i2i-weights-mirror``)
WEIGHTS_OPTIONS = ("weights_dir", "offline", "weights_mirror")


def add_options(parser: argparse.ArgumentParser, *names: str, **overrides: dict[str, Any]) -> None:
    """Add the shared options ``names`` to ``parser``; ``overrides[name]`` replaces some keywords
    (e.g. ``batch_size={"default": 32}``, ``seed={"help": "draws the bootstrap resamples"}``)."""
    for name in names:
        kwargs = {**OPTIONS[name], **overrides.get(name, {})}
        kwargs["help"] = kwargs["help"].replace("{default}", str(kwargs.get("default")))
        parser.add_argument("--" + name.replace("_", "-"), **kwargs)


def apply_weights_options(args: argparse.Namespace) -> None:
    """Make the weights options the process's settings (the environment variables the resolver reads)."""
    import os
    from pathlib import Path

    from pytest_i2i.backbones import weights

    if getattr(args, "weights_dir", None):
        os.environ[weights.ENV_WEIGHTS_DIR] = str(Path(args.weights_dir).expanduser().resolve())
    if getattr(args, "offline", False):
        os.environ[weights.ENV_OFFLINE] = "1"
    if getattr(args, "weights_mirror", None):
        os.environ[weights.ENV_MIRROR] = args.weights_mirror
    weights.set_interface("cli")
