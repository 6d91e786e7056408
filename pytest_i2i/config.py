"""The plugin's options: one table, three sources, one precedence.

Every option ``--i2i-<name>`` can also be set by the ini key ``i2i_<name>`` (``[tool.pytest.ini_options]``
or pytest.ini) and by the environment variable ``I2I_<NAME>``; the command line beats the
environment, which beats ini. Invalid or contradictory values raise ``pytest.UsageError``.

``KEY=VALUE`` options (kind ``"pairs"``: ``--i2i-arch-option``, ``--i2i-generator-option``) are
repeatable on the command line, one per line in ini, and ``;``-separated in the environment; they
merge key by key with the same precedence (a key on the command line beats the same key in the
environment, which beats ini).

Standard library only (pytest imports this through the plugin in every run; the generator modules it
uses for validation are standard library only too).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_i2i.errors import I2IError
from pytest_i2i.generators.options import MODES, parse_pairs
from pytest_i2i.generators.source import check_diffusers_spec, is_diffusers_spec


@dataclass(frozen=True)
class Option:
    name: str  # without the --i2i- prefix, dashes
    help: str
    kind: str = "str"  # "str" | "path" | "int" | "float" | "flag" | "pairs" (KEY=VALUE, repeatable)
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return "i2i_" + self.name.replace("-", "_")

    @property
    def env(self) -> str:
        return "I2I_" + self.name.replace("-", "_").upper()


OPTIONS: tuple[Option, ...] = (
    Option("model", "generator: a checkpoint (TorchScript, state_dict + --i2i-arch), package.module:factory, "
           "or diffusers:PATH_OR_HUB_ID (a diffusers pipeline)", "str", "CKPT"),
    Option("arch", "architecture name when the checkpoint is a bare state_dict", "str", "NAME"),
    Option("arch-option", "KEY=VALUE option of the architecture (repeatable), e.g. norm=batch, use_dropout=false, "
           "ngf=32 for pix2pix/CycleGAN", "pairs", "KEY=VALUE"),
    Option("generator-option", "KEY=VALUE generation option (repeatable): a diffusers pipeline call's "
           "num_inference_steps, guidance_scale, image_guidance_scale, strength, negative_prompt, ...; height, "
           "width, torch_dtype, variant, revision; prompt_field (the dataset text column)", "pairs", "KEY=VALUE"),
    Option("generator-mode", "eval (default) or train: train runs torch generators in train mode (dropout on, "
           "batch norm with per-image statistics), as pix2pix's test.py does without --eval", "str", "MODE"),
    Option("data", "dataset folder or CSV/JSONL manifest (default: the built-in sample set)", "path", "PATH"),
    Option("baseline", "a second checkpoint to compare against (no-regression tests)", "str", "CKPT"),
    Option("device", "torch device for generators and backbones (default cpu)", "str", "DEVICE"),
    Option("batch-size", "images per forward pass (default 8)", "int", "N"),
    Option("weights-dir", "folder searched first for backbone weights files", "path", "DIR"),
    Option("weights", "BACKBONE=FILE or BACKBONE=random (repeatable): the weights one backbone uses, a file "
           "(uncalibrated unless it is the published one) or seeded random weights (an uncalibrated smoke test)",
           "pairs", "NAME=FILE"),
    Option("require-weights", "error instead of skip when backbone weights are missing", "flag"),
    Option("offline", "never download backbone weights (also on with HF_HUB_OFFLINE=1); missing weights skip "
           "their tests, or fail them under --i2i-require-weights", "flag"),
    Option("weights-mirror", "download published weights files by name from this server instead of their hosts "
           "(an internal mirror)", "str", "URL"),
    Option("seed", "seed for generators and bootstrap resampling (default 0)", "int", "N"),
    Option("max-samples", "use only the first N samples of the dataset", "int", "N"),
    Option("cache-dir", "folder of the on-disk cache of features and generator outputs "
           "(default: .pytest_cache/d/i2i)", "path", "DIR"),
    Option("cache-max-size", "size limit of the cache folder, e.g. 500MB or 2GiB (default 2GB; 0 turns the "
           "cache off)", "str", "SIZE"),
    Option("report", "write the JSON report and HTML page into this folder", "path", "DIR"),
    Option("judgments", "human-judgment sets for suites/validation: manifests or folders, comma-separated",
           "str", "PATHS"),
    Option("sensitivity-images", "image folder for the sensitivity suite (default: the bundled photos)",
           "path", "DIR"),
    Option("progress", "show progress bars for long work (quiet under pytest by default)", "flag"),
    Option("trust-checkpoint", "allow unpickling a full model object from --i2i-model/--i2i-baseline "
           "(runs code from the file: only for checkpoints you trust)", "flag"),
    Option("allow-lost-samples", "evaluate and gate on the samples that generated when some produced no valid "
           "output (default: a metric on the model's outputs fails, naming the lost samples)", "flag"),
    Option("generation-timeout", "seconds one generator call (one batch) may take; a call that does not return "
           "in time fails its samples and the ones after it, naming them (default: no limit)", "float", "SECONDS"),
)

DEFAULTS: dict[str, Any] = {"device": "cpu", "batch_size": 8, "seed": 0, "require_weights": False,
                            "offline": False, "trust_checkpoint": False, "progress": False, "generator_mode": "eval",
                            "allow_lost_samples": False}


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("i2i", "image-to-image model evaluation (pytest-i2i)")
    for opt in OPTIONS:
        if opt.kind == "flag":
            group.addoption(f"--i2i-{opt.name}", action="store_true", default=None, dest=opt.dest,
                            help=f"{opt.help} (ini {opt.dest}, env {opt.env})")
        elif opt.kind == "pairs":
            group.addoption(f"--i2i-{opt.name}", action="append", default=None, dest=opt.dest, metavar=opt.metavar,
                            help=f"{opt.help} (ini {opt.dest}: one per line, env {opt.env}: ';'-separated)")
        else:
            group.addoption(f"--i2i-{opt.name}", action="store", default=None, dest=opt.dest, metavar=opt.metavar,
                            help=f"{opt.help} (ini {opt.dest}, env {opt.env})")
        ini_type = {"flag": "bool", "pairs": "linelist"}.get(opt.kind, "string")
        parser.addini(opt.dest, opt.help, type=ini_type, default=None)


def get_cli_or_ini(config: pytest.Config, opt: Option) -> tuple[Any, str]:
    """(raw value, source) for one option: command line, else environment, else ini, else default."""
    if opt.kind == "pairs":
        return _get_pairs(config, opt)
    value = config.getoption(opt.dest)
    if value is not None:
        return value, "command line"
    if opt.env in os.environ and os.environ[opt.env] != "":
        raw = os.environ[opt.env]
        if opt.kind == "flag":
            return raw.strip().lower() in {"1", "true", "yes", "on"}, f"env {opt.env}"
        return raw, f"env {opt.env}"
    value = config.getini(opt.dest)
    if value not in (None, "", []):
        return value, f"ini {opt.dest}"
    return DEFAULTS.get(opt.dest.removeprefix("i2i_")), "default"


def _get_pairs(config: pytest.Config, opt: Option) -> tuple[dict[str, str] | None, str]:
    """A ``KEY=VALUE`` option merged key by key: ini, then the environment, then the command line."""
    where = f"--i2i-{opt.name}"
    layers = [(f"ini {opt.dest}", config.getini(opt.dest) or []),
              (f"env {opt.env}", [p for p in os.environ.get(opt.env, "").split(";") if p.strip()]),
              ("command line", config.getoption(opt.dest) or [])]
    merged: dict[str, str] = {}
    sources = []
    for source, items in layers:
        items = [str(i) for i in items if str(i).strip()]
        if not items:
            continue
        sources.append(source)
        try:
            merged.update(parse_pairs(items, f"{where} (from {source})"))
        except I2IError as e:
            raise pytest.UsageError(str(e)) from None
    if not merged:
        return None, "default"
    return merged, ", ".join(sources)


@dataclass
class I2IOptions:
    """The resolved, validated options of one pytest session."""

    model: str | None = None
    arch: str | None = None
    arch_option: dict[str, str] = field(default_factory=dict)
    generator_option: dict[str, str] = field(default_factory=dict)
    generator_mode: str = "eval"
    data: Path | None = None
    baseline: str | None = None
    device: str = "cpu"
    batch_size: int = 8
    weights_dir: Path | None = None
    weights: dict[str, str] = field(default_factory=dict)
    require_weights: bool = False
    offline: bool = False
    weights_mirror: str | None = None
    seed: int = 0
    max_samples: int | None = None
    cache_dir: Path | None = None
    cache_max_size: str | None = None
    report: Path | None = None
    trust_checkpoint: bool = False
    judgments: str | None = None
    sensitivity_images: Path | None = None
    progress: bool = False
    allow_lost_samples: bool = False
    generation_timeout: float | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items() if k != "sources"}


_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?|xpu(:\d+)?)$")


def resolve_options(config: pytest.Config) -> I2IOptions:
    """Read and validate every option; raises ``pytest.UsageError`` naming the option and its source."""
    opts = I2IOptions()
    base = Path(config.invocation_params.dir)
    for opt in OPTIONS:
        raw, source = get_cli_or_ini(config, opt)
        attr = opt.dest.removeprefix("i2i_")
        opts.sources[attr] = source
        if raw is None:
            continue
        where = f"--i2i-{opt.name} (from {source})"
        if opt.kind == "int":
            try:
                value: Any = int(str(raw).strip())
            except ValueError:
                raise pytest.UsageError(f"{where}: {raw!r} is not an integer") from None
            if attr in ("batch_size", "max_samples") and value < 1:
                raise pytest.UsageError(f"{where}: must be >= 1, got {value}")
            if attr == "seed" and not 0 <= value <= 2**63 - 1:
                raise pytest.UsageError(f"{where}: must be in [0, 2**63 - 1], got {value}")
        elif opt.kind == "float":
            import math

            try:
                value = float(str(raw).strip())
            except ValueError:
                raise pytest.UsageError(f"{where}: {raw!r} is not a number") from None
            if not math.isfinite(value) or value <= 0:
                raise pytest.UsageError(f"{where}: must be a finite number > 0, got {raw!r}")
        elif opt.kind == "path":
            value = (base / Path(str(raw)).expanduser()).resolve()
        elif opt.kind == "flag":
            value = bool(raw)
        elif opt.kind == "pairs":
            value = raw
        else:
            value = str(raw).strip()
        setattr(opts, attr, value)
    _resolve_weights_files(opts, base)
    _validate(opts)
    return opts


def _resolve_weights_files(o: I2IOptions, base: Path) -> None:
    """``--i2i-weights NAME=FILE``: files resolved against the invocation folder and checked to exist."""
    for name, value in list(o.weights.items()):
        if value == "random":
            continue
        path = (base / Path(value).expanduser()).resolve()
        if not path.is_file():
            raise pytest.UsageError(f"--i2i-weights {name}={value}: {path} is not a file (give a weights file or "
                                    "'random')")
        o.weights[name] = str(path)


def _validate(o: I2IOptions) -> None:
    if not _DEVICE.match(o.device):
        raise pytest.UsageError(f"--i2i-device (from {o.sources.get('device')}): {o.device!r} is not a torch device "
                                "that holds data (cpu, cuda, cuda:N, mps, xpu)")
    if o.device != "cpu":
        _check_device_available(o)
    if o.baseline and not o.model:
        raise pytest.UsageError("--i2i-baseline needs --i2i-model: a baseline is compared with a model")
    if o.arch and not o.model:
        raise pytest.UsageError("--i2i-arch needs --i2i-model: it names the architecture of that checkpoint")
    for attr in ("arch_option", "generator_option"):
        if getattr(o, attr) and not o.model:
            raise pytest.UsageError(f"--i2i-{attr.replace('_', '-')} needs --i2i-model: it configures that generator")
    if o.generator_mode not in MODES:
        raise pytest.UsageError(f"--i2i-generator-mode (from {o.sources.get('generator_mode')}): "
                                f"{o.generator_mode!r} is not one of {', '.join(MODES)}")
    for attr in ("model", "baseline"):
        value = getattr(o, attr)
        if not value:
            continue
        if is_diffusers_spec(value):
            try:
                check_diffusers_spec(value)
            except I2IError as e:
                raise pytest.UsageError(f"--i2i-{attr}: {e}") from None
        elif not _is_spec(value) and not Path(value).expanduser().exists():
            raise pytest.UsageError(f"--i2i-{attr}: {value} does not exist (give a checkpoint file, "
                                    "package.module:factory or diffusers:PATH_OR_HUB_ID)")
    if o.model and o.baseline and o.model == o.baseline:
        raise pytest.UsageError("--i2i-baseline is the same checkpoint as --i2i-model")
    if o.data is not None and not o.data.exists():
        raise pytest.UsageError(f"--i2i-data: {o.data} does not exist")
    if o.sensitivity_images is not None and not o.sensitivity_images.is_dir():
        raise pytest.UsageError(f"--i2i-sensitivity-images: {o.sensitivity_images} is not a directory")
    if o.weights_dir is not None and not o.weights_dir.is_dir():
        if o.sources.get("weights_dir", "").startswith("env"):
            # a CI-wide environment setting must not break runs that never load weights (nor --help):
            # the folder is searched when weights are needed, and a missing-weights message says it is missing
            pass
        else:
            raise pytest.UsageError(f"--i2i-weights-dir (from {o.sources.get('weights_dir')}): {o.weights_dir} is "
                                    "not a directory")
    if o.weights_mirror is not None and not re.match(r"^(https?|file)://", o.weights_mirror):
        raise pytest.UsageError(f"--i2i-weights-mirror: {o.weights_mirror!r} is not an http(s):// or file:// URL")
    for attr in ("report", "cache_dir"):
        path = getattr(o, attr)
        if path is not None and path.exists() and not path.is_dir():
            raise pytest.UsageError(f"--i2i-{attr.replace('_', '-')}: {path} exists and is not a directory")
    if o.report is not None:
        from pytest_i2i.files import folder_unwritable

        problem = folder_unwritable(o.report)
        if problem:
            raise pytest.UsageError(f"--i2i-report (from {o.sources.get('report')}): {problem}")


def _check_device_available(o: I2IOptions) -> None:
    """A CUDA/MPS/XPU device that this machine does not have is a usage error now, before any generation.
    (torch is imported only here, for a device other than the CPU, i.e. by runs that use pytest-i2i.)"""
    import torch

    kind, _, index = o.device.partition(":")
    where = f"--i2i-device (from {o.sources.get('device')})"
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (index and int(index) >= count):
            raise pytest.UsageError(f"{where}: {o.device!r} is not available on this machine ({count} CUDA device(s))")
    elif kind == "mps" and not torch.backends.mps.is_available():
        raise pytest.UsageError(f"{where}: 'mps' is not available on this machine")
    elif kind == "xpu":
        xpu = getattr(torch, "xpu", None)
        count = xpu.device_count() if xpu is not None and xpu.is_available() else 0
        if count == 0 or (index and int(index) >= count):
            raise pytest.UsageError(f"{where}: {o.device!r} is not available on this machine ({count} XPU device(s))")


def _is_spec(value: str) -> bool:
    """``package.module:factory`` rather than a path."""
    mod, sep, attr = value.partition(":")
    return bool(sep) and attr.isidentifier() and all(p.isidentifier() for p in mod.split("."))


def read_thresholds(config: pytest.Config) -> dict[str, dict[str, Any]]:
    """``[tool.i2i.thresholds]`` of the pyproject.toml next to the ini file / rootdir.

    Each entry is ``metric = value`` (gated by the metric's direction) or a table
    ``metric = {value = 0.2, confidence = 0.95, margin = 0.01}``.
    """
    import tomllib

    candidates = [p for p in (config.inipath, Path(config.rootpath) / "pyproject.toml") if p]
    for path in candidates:
        path = Path(path)
        if path.name != "pyproject.toml" or not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise pytest.UsageError(f"{path}: cannot parse [tool.i2i.thresholds]: {e}") from None
        raw = data.get("tool", {}).get("i2i", {}).get("thresholds", {})
        if not isinstance(raw, dict):
            raise pytest.UsageError(f"{path}: [tool.i2i.thresholds] must be a table of metric = value entries")
        out: dict[str, dict[str, Any]] = {}
        for metric, spec in raw.items():
            entry = spec if isinstance(spec, dict) else {"value": spec}
            out[metric] = _check_threshold(path, metric, entry)
        return out
    return {}


THRESHOLD_KEYS = {"value": "the threshold", "confidence": "one-sided confidence of the gate, in (0, 1)",
                  "margin": "allowed regression against --i2i-baseline, >= 0"}


def _number(value: Any) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_threshold(path: Path, metric: str, entry: dict[str, Any]) -> dict[str, Any]:
    where = f"{path}: [tool.i2i.thresholds] {metric}"
    unknown = sorted(set(entry) - set(THRESHOLD_KEYS))
    if unknown:
        raise pytest.UsageError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(THRESHOLD_KEYS)}")
    if not _number(entry.get("value")):
        raise pytest.UsageError(f"{where} needs a finite numeric value, got {entry.get('value')!r}")
    if "confidence" in entry and not (_number(entry["confidence"]) and 0.0 < entry["confidence"] < 1.0):
        raise pytest.UsageError(f"{where}: confidence must be a number in (0, 1) (e.g. 0.95, not a string), "
                                f"got {entry['confidence']!r}")
    if "margin" in entry and not (_number(entry["margin"]) and entry["margin"] >= 0):
        raise pytest.UsageError(f"{where}: margin must be a finite number >= 0, got {entry['margin']!r}")
    return entry


def check_arch_name(options: I2IOptions) -> None:
    """``--i2i-arch`` must name a registered generator architecture: one line listing the valid
    names, before any generation. Called once every conftest is loaded (a conftest may register
    an architecture)."""
    if not options.arch:
        return
    from pytest_i2i.errors import UnknownNameError
    from pytest_i2i.generators.registry import list_generator_archs

    known = list_generator_archs()
    if options.arch not in known:
        raise pytest.UsageError(f"--i2i-arch (from {options.sources.get('arch')}): "
                                f"{UnknownNameError('generator architecture', options.arch, known)}")


def check_threshold_names(thresholds: dict[str, dict[str, Any]]) -> None:
    """Every ``[tool.i2i.thresholds]`` key must be a registered metric (a typo must not silently
    turn a gate off). Called once every conftest is loaded, so metrics registered there count."""
    from pytest_i2i.errors import UnknownNameError
    from pytest_i2i.metrics.registry import list_metrics

    known = list_metrics()
    unknown = [name for name in thresholds if name not in known]
    if unknown:
        raise pytest.UsageError("[tool.i2i.thresholds]: " + "; ".join(
            str(UnknownNameError("metric", name, known)) for name in unknown))
