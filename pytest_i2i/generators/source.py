"""What a generator spec names, without loading it: its files, its cache key parts, its text column.

A spec is a checkpoint file, a ``package.module:factory``, or ``diffusers:PATH_OR_HUB_ID``: a
Hugging Face diffusers pipeline in a local folder (as ``save_pretrained`` writes it) or on the hub
(resolved through diffusers' own download into the Hugging Face cache; offline, with
``HF_HUB_OFFLINE=1`` or ``I2I_OFFLINE=1``, only the cache is used).

:func:`generator_key` gives the parts of the on-disk cache key of a generator run as plain data
(the cache itself stays data-only): for a file, its sha256; for a pipeline, the sha256 of every
file ``from_pretrained`` reads (configs, tokenizer files and weights), the pipeline class and the
diffusers / transformers versions; then the options, the mode, the seed and the device type.

Standard library only at import (the diffusers import happens only to resolve a hub id).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_i2i.errors import I2IInputError, UntrustedCheckpointError
from pytest_i2i.files import sha256_file
from pytest_i2i.generators.options import coerce_value, guess_value

DIFFUSERS_PREFIX = "diffusers:"
#: how to get the optional dependencies of diffusers pipelines
DIFFUSERS_EXTRA = "pip install 'pytest-i2i[diffusers]'"
#: the dataset's text columns (pytest_i2i.data.manifest.TEXT_FIELDS; repeated: this module stays import-light)
TEXT_FIELDS = ("instruction", "source_caption", "target_caption")


@dataclass(frozen=True)
class PipelineKind:
    """A diffusers pipeline class pytest-i2i runs as a generator.

    Attributes:
        name: short name for reports.
        prompt_field: the dataset text column its prompt comes from by default.
        description: one line for the docs.
    """

    name: str
    prompt_field: str
    description: str


#: ``_class_name`` of ``model_index.json`` -> how it is run. Other pipeline classes whose call takes
#: ``prompt`` and ``image`` are run the same way, with a note that they are untested.
PIPELINES: dict[str, PipelineKind] = {
    "StableDiffusionInstructPix2PixPipeline": PipelineKind(
        "instruct-pix2pix", "instruction",
        "InstructPix2Pix and its fine-tunes (MagicBrush): the prompt is the edit instruction"),
    "StableDiffusionImg2ImgPipeline": PipelineKind(
        "img2img", "target_caption",
        "SDEdit-style img2img: the prompt describes the wanted output (strength = noise level)"),
}

#: generation options every pipeline call takes where its signature has them, typed
CALL_OPTIONS: dict[str, type] = {
    "num_inference_steps": int, "guidance_scale": float, "image_guidance_scale": float, "strength": float,
    "negative_prompt": str, "eta": float, "guidance_rescale": float, "clip_skip": int,
}
#: options of pytest-i2i itself: output size (the input is resized to it) and the text column
OWN_OPTIONS: dict[str, Any] = {"height": int, "width": int, "prompt_field": TEXT_FIELDS}
#: options of ``from_pretrained``
LOAD_OPTIONS: dict[str, Any] = {"torch_dtype": ("float32", "float16", "bfloat16"), "variant": str, "revision": str}
#: pipeline components never loaded: the safety checker replaces flagged outputs with black images,
#: which would corrupt every metric; its feature extractor serves only it
SKIPPED_COMPONENTS = ("safety_checker", "feature_extractor")
#: weight files that only full unpickling reads
PICKLE_WEIGHTS = (".bin", ".ckpt", ".pt", ".pth")
_CONFIG_SUFFIXES = (".json", ".txt", ".model", ".tiktoken")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def is_diffusers_spec(spec: str | os.PathLike) -> bool:
    return isinstance(spec, str) and spec.startswith(DIFFUSERS_PREFIX)


def offline() -> bool:
    """Whether hub look-ups must stay in the local cache: the project's one offline switch
    (``I2I_OFFLINE`` / ``--i2i-offline`` / ``HF_HUB_OFFLINE``, see :mod:`pytest_i2i.backbones.weights`)."""
    from pytest_i2i.backbones.weights import downloads_allowed

    return not downloads_allowed()


def check_diffusers_spec(spec: str) -> str:
    """The ``PATH_OR_HUB_ID`` of a ``diffusers:`` spec.

    Raises:
        I2IInputError: empty, or neither an existing path nor a hub id (``org/name``).
    """
    body = spec[len(DIFFUSERS_PREFIX):].strip()
    if not body:
        raise I2IInputError(f"generator {spec!r}: give a pipeline folder or a hub id after 'diffusers:'")
    if not Path(body).expanduser().exists() and not _HUB_ID.match(body):
        raise I2IInputError(f"generator {spec!r}: {body} is neither an existing folder nor a Hugging Face "
                            "hub id (org/name)")
    return body


def typed_generator_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Generation options typed by the tables above (unknown keys: the literal they spell; the
    loader checks them against the pipeline's call)."""
    table = {**CALL_OPTIONS, **OWN_OPTIONS, **LOAD_OPTIONS}
    return {k: coerce_value(v, table[k], f"generator option {k}") if k in table else guess_value(v)
            for k, v in dict(options or {}).items()}


# -- pipeline folders ----------------------------------------------------------------------------
def read_model_index(folder: Path) -> dict[str, Any]:
    """The pipeline's ``model_index.json``.

    Raises:
        I2IInputError: missing or not a JSON object with ``_class_name``.
    """
    index = folder / "model_index.json"
    if not index.is_file():
        raise I2IInputError(f"diffusers pipeline {folder}: no model_index.json (is it a folder written by "
                            "save_pretrained, or a hub pipeline repository?)")
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise I2IInputError(f"diffusers pipeline {index}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("_class_name"), str):
        raise I2IInputError(f"diffusers pipeline {index}: no _class_name")
    return data


def components(index: Mapping[str, Any]) -> list[str]:
    """The component folders a pipeline loads (``[library, class]`` entries, minus :data:`SKIPPED_COMPONENTS`)."""
    return sorted(k for k, v in index.items()
                  if not k.startswith("_") and isinstance(v, list) and len(v) == 2 and v[0] is not None
                  and k not in SKIPPED_COMPONENTS)


def _variant_of(name: str) -> str | None:
    # diffusion_pytorch_model.fp16.safetensors -> fp16; model.fp16-00001-of-00002.safetensors -> fp16
    parts = name.split(".")
    return parts[-2].split("-")[0] if len(parts) >= 3 else None


def pipeline_files(folder: Path, *, trust: bool = False, variant: str | None = None) -> list[Path]:
    """The files ``from_pretrained`` reads from ``folder``: ``model_index.json``, every loaded
    component's configuration and tokenizer files, and its weights: the ``.safetensors`` files of
    the ``variant`` (or, with ``trust``, pickle weights where a component has no safetensors).

    Raises:
        I2IInputError: no ``model_index.json``, or a component folder is missing.
        UntrustedCheckpointError: a component has weights only as pickle files and ``trust`` is False.
    """
    index = read_model_index(folder)
    files = [folder / "model_index.json"]
    for comp in components(index):
        sub = folder / comp
        if not sub.is_dir():
            raise I2IInputError(f"diffusers pipeline {folder}: component folder {comp}/ is missing "
                                f"(model_index.json lists {comp}: {index[comp]})")
        entries = sorted(p for p in sub.iterdir() if p.is_file() and not p.name.startswith("."))
        files += [p for p in entries if p.name.endswith(_CONFIG_SUFFIXES)]
        safe = [p for p in entries if p.suffix == ".safetensors" and _variant_of(p.name) == variant]
        pickled = [p for p in entries if p.suffix in PICKLE_WEIGHTS and _variant_of(p.name) == variant]
        if safe:
            files += safe
        elif pickled and not trust:
            raise UntrustedCheckpointError(
                f"diffusers pipeline {folder}: component {comp} has weights only as pickle files "
                f"({', '.join(p.name for p in pickled)}); reading them can run code from the files, so they were "
                "not loaded. Convert them to safetensors, or if you trust their source pass "
                "--i2i-trust-checkpoint (pytest), --trust-checkpoint (i2i generate) or trust=True (load_generator)."
            )
        else:
            files += pickled
    return files


def pipeline_digest(folder: Path, files: Sequence[Path], hasher: Callable[[Path], str] = sha256_file) -> str:
    """One sha256 over ``(relative path, file sha256)`` of every file: the pipeline's identity."""
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f"{f.relative_to(folder).as_posix()}\0{hasher(f)}\n".encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=32)
def _download(body: str, trust: bool, variant: str | None, revision: str | None, local_only: bool) -> str:
    try:
        from diffusers import DiffusionPipeline
    except ImportError as e:
        from pytest_i2i.errors import MissingDependencyError

        raise MissingDependencyError(f"diffusers pipelines need the diffusers and transformers packages "
                                     f"({e}); install them with {DIFFUSERS_EXTRA}") from None
    try:
        return str(DiffusionPipeline.download(
            body, use_safetensors=None if trust else True, variant=variant, revision=revision,
            local_files_only=local_only, **{c: None for c in SKIPPED_COMPONENTS}))
    except Exception as e:  # noqa: BLE001 - hub errors come in many types
        where = ("the Hugging Face cache (offline: HF_HUB_OFFLINE / I2I_OFFLINE is set)" if local_only
                 else "the Hugging Face hub or its cache")
        raise I2IInputError(f"diffusers pipeline {body!r}: no local folder of that name, and not found in {where}: "
                            f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}") from None


def resolve_pipeline_folder(body: str, *, trust: bool = False, variant: str | None = None,
                            revision: str | None = None) -> Path:
    """The local folder of pipeline ``body``: itself when it is a folder, else the hub id's snapshot
    in the Hugging Face cache (downloaded first unless offline)."""
    path = Path(body).expanduser()
    if path.exists():
        if not path.is_dir():
            raise I2IInputError(f"diffusers pipeline {path} is a file; give the folder with model_index.json")
        return path.resolve()
    return Path(_download(body, trust, variant, revision, offline()))


# -- what callers need before loading --------------------------------------------------------------
def prompt_field(spec: str | os.PathLike | None, generator_options: Mapping[str, Any] | None = None) -> str:
    """The dataset text column a generator's texts come from: the ``prompt_field`` option, else the
    pipeline's default (:data:`PIPELINES`), else ``"instruction"``."""
    options = typed_generator_options(generator_options)
    if "prompt_field" in options:
        return options["prompt_field"]
    if spec is not None and is_diffusers_spec(spec):
        folder = resolve_pipeline_folder(check_diffusers_spec(str(spec)), trust=False,
                                         variant=options.get("variant"), revision=options.get("revision"))
        kind = PIPELINES.get(read_model_index(folder)["_class_name"])
        if kind is not None:
            return kind.prompt_field
    return "instruction"


def generator_key(
    spec: str | os.PathLike, *, arch: str | None = None, arch_options: Mapping[str, Any] | None = None,
    generator_options: Mapping[str, Any] | None = None, input_range: Sequence[float] | None = None,
    output_range: Sequence[float] | None = None, mode: str = "eval", seed: int = 0, device: str | None = None,
    trust: bool = False, hasher: Callable[[Path], str] = sha256_file,
) -> dict[str, Any] | None:
    """The parts of the cache key of a generator run, or ``None`` when the spec has no content hash
    (a ``package.module:factory``: its code can change under the same name).

    ``hasher`` hashes one file (default :func:`pytest_i2i.files.sha256_file`; the on-disk cache
    passes its own, which remembers hashes across runs).
    """
    common = {"seed": int(seed), "device_type": (device or "cpu").split(":")[0], "mode": mode}
    if is_diffusers_spec(spec):
        options = typed_generator_options(generator_options)
        variant = options.get("variant")
        folder = resolve_pipeline_folder(check_diffusers_spec(str(spec)), trust=trust, variant=variant,
                                         revision=options.get("revision"))
        files = pipeline_files(folder, trust=trust, variant=variant)
        return {"pipeline_sha256": pipeline_digest(folder, files, hasher),
                "pipeline_class": read_model_index(folder)["_class_name"], "generator_options": options,
                "diffusers_version": _version("diffusers"), "transformers_version": _version("transformers"),
                **common}
    path = Path(spec).expanduser()
    if not path.is_file():
        return None
    if arch is not None:
        from pytest_i2i.generators.registry import get_generator_arch

        arch_kwargs = get_generator_arch(arch).typed_options(arch_options)
    else:
        arch_kwargs = {k: guess_value(v) for k, v in dict(arch_options or {}).items()}
    return {"checkpoint_sha256": hasher(path), "arch": arch,
            "input_range": None if input_range is None else [float(v) for v in input_range],
            "output_range": None if output_range is None else [float(v) for v in output_range],
            "arch_kwargs": arch_kwargs, **common}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
