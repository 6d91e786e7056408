"""`load_generator`: the one way the plugin, the CLI and users load an image-to-image generator.

Accepted sources (tried in this order):

0. ``"diffusers:PATH_OR_HUB_ID"``: a Hugging Face diffusers pipeline (InstructPix2Pix, img2img),
   see :mod:`pytest_i2i.generators.diffusers_pipeline`; ``generator_options`` are its generation
   options;
1. ``"package.module:factory"`` (a string with ``:`` that is not an existing path): the module is
   imported and ``factory(**arch_kwargs)`` must return an ``nn.Module`` or a callable;
2. a TorchScript archive (``torch.jit.save``): loaded with ``torch.jit.load``, whose restricted
   unpickler builds only TorchScript types and runs no Python ``__reduce__``;
3. a ``.safetensors`` file or a ``torch.save`` checkpoint read with ``weights_only=True``, holding
   a state_dict (directly or under ``"state_dict"``, ``"model"``, ``"generator"``, ``"netG"`` or
   ``"G"``): the architecture ``arch`` (or the one detected from the keys, with the options read
   from them, see :func:`~pytest_i2i.generators.registry.match_arch`) is built with ``arch_kwargs``
   and the weights loaded strictly (after the architecture's ``adapt_state_dict``);
4. a checkpoint that cannot be read with ``weights_only=True`` because it holds pickled objects
   (e.g. a whole ``nn.Module``): refused with :class:`~pytest_i2i.errors.UntrustedCheckpointError`
   unless ``trust=True`` (``--i2i-trust-checkpoint``), since unpickling it can run any code.
"""

from __future__ import annotations

import importlib
import os
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pytest_i2i.checkpoint import load_state_dict_strict, read_checkpoint
from pytest_i2i.files import sha256_file
from pytest_i2i.errors import CheckpointError, I2IInputError, UntrustedCheckpointError
from pytest_i2i.generators.options import guess_value
from pytest_i2i.generators.registry import GeneratorArch, Range, check_range, get_generator_arch, match_arch
from pytest_i2i.generators.runner import Generator, _first_line
from pytest_i2i.generators.source import TEXT_FIELDS, is_diffusers_spec
from pytest_i2i.interface import spell

#: Keys under which training scripts commonly nest the generator's state_dict.
STATE_DICT_KEYS = ("state_dict", "model", "generator", "netG", "G")
_FACTORY_SPEC = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_TRUST_HINT = ("pass --i2i-trust-checkpoint (pytest), --trust-checkpoint (i2i generate) "
               "or trust=True (load_generator)")


def load_generator(
    path_or_spec: str | os.PathLike,
    arch: str | GeneratorArch | None = None,
    *,
    trust: bool = False,
    device: str | torch.device | None = None,
    input_range: Range | None = None,
    output_range: Range | None = None,
    seed: int = 0,
    arch_kwargs: Mapping[str, Any] | None = None,
    mode: str = "eval",
    generator_options: Mapping[str, Any] | None = None,
) -> Generator:
    """Load a generator from a file, a ``package.module:factory`` spec or a diffusers pipeline
    (see the module docstring).

    Args:
        path_or_spec: a TorchScript file, a state_dict / checkpoint file, a ``.safetensors`` file,
            ``"package.module:factory"`` or ``"diffusers:PATH_OR_HUB_ID"``.
        arch: registered architecture name (or a :class:`GeneratorArch`) for a state_dict; if
            ``None`` it is detected from the checkpoint's keys. Only valid for state_dicts.
        trust: allow full unpickling of a checkpoint that holds pickled objects. This runs code
            stored in the file: use it only for files from a trusted source.
        device: where the model runs (default CPU).
        input_range: the value range the model expects; default: the architecture's, else the
            module's ``input_range`` attribute, else ``(-1, 1)`` (recorded as assumed).
        output_range: the model's output range; default: the architecture's, else the module's
            ``output_range`` attribute, else detected from the first output batch.
        seed: ``torch.manual_seed`` applied before every call (per-sample seeds derive from it).
        arch_kwargs: architecture options (keyword arguments of its ``build``; strings from a
            command line are typed by its option schema) or keyword arguments of the factory.
            For a detected architecture they override the options read from the keys.
        mode: ``"eval"`` (default) or ``"train"``, see :data:`~pytest_i2i.generators.runner.MODES`.
        generator_options: generation options of a diffusers pipeline; for every generator,
            ``prompt_field`` names the dataset text column its texts come from.

    Returns:
        A :class:`Generator` recording its source, kind, file sha256, architecture and options.

    Raises:
        I2IInputError: the file is missing, empty, truncated or not a checkpoint; the spec cannot
            be imported; the state_dict does not fit the architecture (missing / unexpected keys
            are listed); the architecture cannot be detected; ``arch`` given for a self-contained model.
        UnknownNameError: ``arch`` is not a registered architecture name.
        UntrustedCheckpointError: the file needs code execution to unpickle and ``trust`` is False.
        MissingDependencyError: a diffusers pipeline without diffusers / transformers installed.
    """
    text = os.fspath(path_or_spec)
    if is_diffusers_spec(path_or_spec):
        if arch is not None or arch_kwargs:
            raise I2IInputError(f"arch / architecture options apply to state_dict checkpoints, not to the "
                                f"pipeline {text} (use generation options)")
        from pytest_i2i.generators.diffusers_pipeline import load_pipeline_generator

        return load_pipeline_generator(text, trust=trust, device=device, seed=seed,
                                       generator_options=generator_options, mode=mode)
    text_field = _own_generator_options(generator_options, text)
    arch_spec = get_generator_arch(arch) if isinstance(arch, str) else arch
    kwargs = dict(arch_kwargs or {})
    path = Path(text).expanduser()
    if isinstance(path_or_spec, str) and ":" in text and not path.exists():
        if not _FACTORY_SPEC.match(text):
            raise I2IInputError(f"generator {text!r} is neither an existing file nor a 'package.module:factory' spec")
        _no_arch(arch_spec, text, "a factory spec builds its own model")
        kwargs = {k: guess_value(v) for k, v in kwargs.items()}
        model, kind, sha, trusted, notes = _from_factory(text, kwargs), "factory", None, False, []
    else:
        _check_file(path)
        sha = sha256_file(path)
        if _is_torchscript(path):
            _no_arch(arch_spec, text, "a TorchScript file carries its own architecture")
            _no_kwargs(kwargs, text)
            model, kind, trusted, notes = _from_torchscript(path), "torchscript", False, []
        else:
            model, arch_spec, kwargs, trusted, notes = _from_checkpoint(path, arch_spec, kwargs, trust, mode)
            kind = "state_dict" if arch_spec is not None else "pickle"
    in_range, out_range = _ranges(model, arch_spec, input_range, output_range, text, notes)
    return Generator(
        model, kind=kind, source=str(path) if kind != "factory" else text, sha256=sha,
        arch=arch_spec.name if arch_spec is not None else None, input_range=in_range, output_range=out_range,
        seed=seed, device=device, trusted=trusted, warnings=notes, mode=mode, text_field=text_field,
        options=kwargs,
    )


def _own_generator_options(options: Mapping[str, Any] | None, source: str) -> str:
    """The text field of a non-pipeline generator: the only generation option it takes is ``prompt_field``."""
    given = dict(options or {})
    extra = sorted(set(given) - {"prompt_field"})
    if extra:
        raise I2IInputError(f"generation options {extra} apply to diffusers pipelines, not to {source} "
                            "(its only generation option is prompt_field)")
    field = str(given.get("prompt_field", "instruction")).strip()
    if field not in TEXT_FIELDS:
        raise I2IInputError(f"generator option prompt_field: {field!r} is not one of {', '.join(TEXT_FIELDS)}")
    return field


def _check_file(path: Path) -> None:
    from pytest_i2i.checkpoint import check_inflation
    from pytest_i2i.files import regular_file

    regular_file(path, "generator file")
    if path.stat().st_size == 0:
        raise I2IInputError(f"generator file {path} is empty")
    check_inflation(path, what="generator file")


def _no_arch(arch: GeneratorArch | None, source: str, why: str) -> None:
    if arch is not None:
        raise I2IInputError(f"{spell('arch', arch.name)} applies only to state_dict checkpoints; {source}: {why}")


def _no_kwargs(kwargs: dict, source: str) -> None:
    if kwargs:
        raise I2IInputError(f"arch_kwargs apply only to architectures and factories, not to {source}")


def _from_factory(spec: str, kwargs: dict) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - ImportError or whatever the user's module raises on import
        raise I2IInputError(f"generator spec {spec!r}: cannot import {module_name}: {type(e).__name__}: {e}") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise I2IInputError(f"generator spec {spec!r}: {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise I2IInputError(f"generator spec {spec!r}: {attr} is a {type(obj).__name__}, not a factory function")
    try:
        model = obj(**kwargs)
    except Exception as e:  # noqa: BLE001 - report the user's factory failure with the spec named
        raise I2IInputError(f"generator factory {spec!r} raised {type(e).__name__}: {e}") from e
    if not callable(model):
        raise I2IInputError(f"generator factory {spec!r} returned a {type(model).__name__}, "
                            "not an nn.Module or callable")
    return model


def _is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a ``torch.jit.save`` archive (a zip with ``constants.pkl`` and ``code/``)."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def _from_torchscript(path: Path) -> nn.Module:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice; the user chose the format
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad archives
        raise I2IInputError(f"generator file {path} looks like a TorchScript archive but cannot be loaded: "
                            f"{type(e).__name__}: {_first_line(e)}") from None


def _from_checkpoint(
    path: Path, arch: GeneratorArch | None, kwargs: dict, trust: bool, mode: str = "eval"
) -> tuple[nn.Module | Any, GeneratorArch | None, dict, bool, list[str]]:
    """(model, architecture used or None for a pickled module, architecture options used, trusted,
    notes) from a checkpoint file."""
    obj, trusted = _read_checkpoint(path, trust)
    notes = [f"{path} was unpickled with code execution (trust=True)"] if trusted else []
    found = _unwrap(obj, path)
    if not isinstance(found, dict):  # a pickled module or callable, only reachable with trust
        _no_arch(arch, str(path), "it holds a whole pickled model")
        _no_kwargs(kwargs, str(path))
        return found, None, {}, trusted, notes
    state = found
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
        notes.append(f"{path}: removed the 'module.' prefix of (Distributed)DataParallel from every key")
    detected: dict[str, Any] = {}
    if arch is None:
        name, detected = match_arch(state, source=str(path))
        arch = get_generator_arch(name)
        said = {"use_dropout", "no_dropout"} & {*detected, *kwargs}
        if mode == "train" and "use_dropout" in arch.options and not said:
            notes.append(f"{path}: whether {arch.name} uses dropout cannot be read from its keys; train mode "
                         f"assumes the preset's default (see its description); pass "
                         f"{spell('arch_option', 'use_dropout=true|false')} to say")
    options = {**arch.typed_options(detected), **arch.typed_options(kwargs)}
    try:
        model = arch.build(**options)
    except I2IInputError:
        raise
    except Exception as e:  # noqa: BLE001 - a builder rejecting its options is a usage problem
        raise I2IInputError(f"architecture {arch.name!r} cannot be built with options {options}: "
                            f"{type(e).__name__}: {_first_line(e)}") from None
    if arch.adapt_state_dict is not None:
        state, adapted = arch.adapt_state_dict(model, state)
        notes += [f"{path}: {note}" for note in adapted]
    _load_strict(model, state, path, arch.name, options)
    return model, arch, options, trusted, notes


def _read_checkpoint(path: Path, trust: bool) -> tuple[Any, bool]:
    """The object in ``path`` and whether code-running unpickling was needed (only with ``trust``)."""
    try:
        return read_checkpoint(path, what="generator checkpoint"), False
    except CheckpointError as e:
        if not e.needs_code:
            raise
        if not trust:
            raise UntrustedCheckpointError(
                f"generator file {path} is not a plain state_dict: reading it needs full unpickling"
                + (f" (it references {e.references})" if e.references else "")
                + ", which can run arbitrary code from the file. It was not loaded. If you trust its source, "
                f"{_TRUST_HINT}; better, save a state_dict (torch.save(model.state_dict(), ...)) "
                "or a TorchScript archive (torch.jit.save)."
            ) from None
    # The only place in pytest-i2i that unpickles with code execution (weights_only=False): the file
    # failed the safe reader because it holds pickled objects, and the user vouched for it (trust=True).
    try:
        return torch.load(path, map_location="cpu", weights_only=False), True
    except Exception as e:  # noqa: BLE001
        raise I2IInputError(f"generator file {path} could not be unpickled even with trust=True: "
                            f"{type(e).__name__}: {_first_line(e)}") from e


def _unwrap(obj: Any, path: Path) -> dict | Any:
    """The state_dict (a dict of tensors) or the pickled model inside a checkpoint object."""
    if isinstance(obj, dict):
        if any(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        for key in STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and any(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
            if isinstance(inner, nn.Module):
                return inner
        keys = ", ".join(map(repr, list(obj)[:10])) or "none"
        raise I2IInputError(f"generator file {path} holds a dict without a state_dict (top-level keys: {keys}); "
                            f"expected tensors, or a state_dict under one of {', '.join(STATE_DICT_KEYS)}")
    if isinstance(obj, nn.Module) or (callable(obj) and not isinstance(obj, type)):
        return obj
    raise I2IInputError(f"generator file {path} holds a {type(obj).__name__}, not a state_dict or a model")


def _load_strict(model: nn.Module, state: dict, path: Path, arch_name: str, options: Mapping[str, Any]) -> None:
    """The shared strict loader, plus what the keys say the checkpoint is when it does not fit."""
    what = f"architecture {arch_name!r}" + (f" with options {dict(options)}" if options else "")
    try:
        load_state_dict_strict(model, state, source=f"generator file {path}", target=what)
    except I2IInputError as e:
        raise I2IInputError(f"{e}{_hint(state, arch_name, options)}") from None


def _hint(state: Mapping, arch_name: str, options: Mapping[str, Any]) -> str:
    """What the keys say the checkpoint is, when that differs from what was asked for."""
    try:
        name, found = match_arch(state)
    except I2IInputError:
        return ""
    if name == arch_name and found == dict(options):
        return ""
    flags = " ".join(spell("arch_option", f"{k}={str(v).lower() if isinstance(v, bool) else v}")
                     for k, v in found.items())
    return f"; its keys match {spell('arch', name)}" + (f" {flags}" if flags else "") + f" (or leave out {spell('arch')})"


def _ranges(model: Any, arch: GeneratorArch | None, input_range: Range | None, output_range: Range | None,
            source: str, notes: list[str]) -> tuple[Range, Range | None]:
    """Input and output ranges: declared, else the architecture's, else the model's attributes."""
    def pick(declared: Range | None, name: str) -> Range | None:
        if declared is not None:
            return check_range(declared, name)
        if arch is not None:
            return getattr(arch, name)
        attr = getattr(model, name, None)
        return check_range(attr, f"generator {source}: attribute {name}") if attr is not None else None

    in_range = pick(input_range, "input_range")
    if in_range is None:
        in_range = (-1.0, 1.0)
        notes.append(f"input range of generator {source} not declared; assumed [-1, 1] "
                     "(pass input_range= / set an input_range attribute on the model)")
    return in_range, pick(output_range, "output_range")
