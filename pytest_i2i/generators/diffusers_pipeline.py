"""Hugging Face diffusers pipelines as generators: ``load_generator("diffusers:PATH_OR_HUB_ID")``.

The pipeline class is read from ``model_index.json``: InstructPix2Pix
(``StableDiffusionInstructPix2PixPipeline``, also MagicBrush and other fine-tunes of it) and
SDEdit-style img2img (``StableDiffusionImg2ImgPipeline``) are tested; another pipeline class whose
call takes ``prompt`` and ``image`` runs the same way, with a note.

- **Weights** are read from ``.safetensors`` files only (``use_safetensors=True``); a component with
  only pickle weights (``.bin``, ``.ckpt``) is refused unless ``trust=True``
  (``--i2i-trust-checkpoint``). The safety checker is not loaded (it would blank flagged outputs).
- **Prompts** come from the dataset's text column :func:`~pytest_i2i.generators.source.prompt_field`:
  ``instruction`` for InstructPix2Pix, ``target_caption`` for img2img (option ``prompt_field``).
- **Generation options** (``--i2i-generator-option KEY=VALUE``) are the pipeline call's own keyword
  arguments: ``num_inference_steps``, ``guidance_scale``, ``image_guidance_scale`` (InstructPix2Pix),
  ``strength`` (img2img), ``negative_prompt``, ``eta``, ... (any argument of the call with a number,
  string or boolean default); not given, the pipeline's defaults apply. Also: ``height`` and
  ``width`` (output size: the input is resized to it, both multiples of the VAE's scale factor),
  ``torch_dtype`` (``float16``/``bfloat16``/``float32``), ``variant`` (e.g. ``fp16`` weight files),
  ``revision`` (of a hub repository), ``prompt_field``.
- **Seeds**: each sample runs alone (a batch of one) with its own ``torch.Generator`` seeded by
  :func:`~pytest_i2i.generators.runner.sample_seed` of the run's seed and the sample's uid, so an
  output is bitwise independent of the batch size, of the other samples and of their order (a
  batched UNet call differs from single calls in the last bits, measured 1e-6). The noise is drawn
  on the CPU, so it is the same on every device.
- Without ``height``/``width``, an input whose sides are not multiples of the VAE's scale factor is
  generated at the rounded-down size (as the pipeline's image processor does) and the output resized
  back to the input's size (bicubic, antialiased), with a note.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from pytest_i2i.errors import I2IInputError, MissingDependencyError, UnknownNameError
from pytest_i2i.generators.options import coerce_value
from pytest_i2i.generators.runner import Generator
from pytest_i2i.generators.source import (
    CALL_OPTIONS,
    DIFFUSERS_EXTRA,
    LOAD_OPTIONS,
    OWN_OPTIONS,
    PIPELINES,
    SKIPPED_COMPONENTS,
    check_diffusers_spec,
    pipeline_digest,
    pipeline_files,
    read_model_index,
    resolve_pipeline_folder,
    typed_generator_options,
)

#: call arguments pytest-i2i sets itself (or that make no sense per sample)
_RESERVED = {"prompt", "image", "generator", "latents", "output_type", "return_dict", "num_images_per_prompt",
             "callback_on_step_end_tensor_inputs", "callback_steps"}
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def import_diffusers() -> Any:
    """The ``diffusers`` module, after checking that ``transformers`` is importable too.

    Raises:
        MissingDependencyError: either is missing; the message names the extra to install.
    """
    try:
        import diffusers
        import transformers  # noqa: F401 - the text encoders and tokenizers of every pipeline
    except ImportError as e:
        raise MissingDependencyError(f"diffusers pipelines need the diffusers and transformers packages ({e}); "
                                     f"install them with {DIFFUSERS_EXTRA}") from None
    return diffusers


def call_option_types(pipeline_cls: type) -> dict[str, Any]:
    """The generation options a pipeline class's call takes, name -> type: the typed table
    (:data:`~pytest_i2i.generators.source.CALL_OPTIONS`) where the call has the argument, and
    every other argument whose default is a number, a string or a boolean."""
    params = inspect.signature(pipeline_cls.__call__).parameters
    out: dict[str, Any] = {}
    for name, p in params.items():
        if name == "self" or name in _RESERVED or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if name in CALL_OPTIONS:
            out[name] = CALL_OPTIONS[name]
        elif isinstance(p.default, (bool, int, float, str)):
            out[name] = type(p.default)
    return out


class DiffusersEditor:
    """A loaded pipeline behind the generator call ``(images in [0, 1], texts, *, seeds) -> images in [0, 1]``.

    Attributes:
        pipeline: the diffusers pipeline.
        call_options: keyword arguments of every pipeline call.
        size: ``(height, width)`` the inputs are resized to, or ``None`` (the input's size).
        scale: the VAE's scale factor (image sides are multiples of it).
        notes: things worth reporting, appended to the generator's warnings by the caller.
    """

    input_range = (0.0, 1.0)
    output_range = (0.0, 1.0)

    def __init__(self, pipeline: Any, *, call_options: Mapping[str, Any], size: tuple[int, int] | None,
                 device: torch.device, source: str) -> None:
        self.pipeline = pipeline
        self.call_options = dict(call_options)
        self.size = size
        self.device = device
        self.source = source
        self.scale = int(getattr(pipeline, "vae_scale_factor", 8) or 8)
        self.notes: list[str] = []
        self._noted_resize = False

    def __call__(self, images: torch.Tensor, texts: Sequence[str], *, seeds: Sequence[int]) -> torch.Tensor:
        from pytest_i2i.images.resize import resize_batch

        outs = []
        for i in range(images.shape[0]):
            image = images[i:i + 1].float()
            h, w = image.shape[-2:]
            if self.size is not None:
                image = resize_batch(image.cpu(), self.size, "clean")
                wanted = self.size
            else:
                wanted = (h, w)
                rounded = (h // self.scale * self.scale, w // self.scale * self.scale)
                if min(rounded) == 0:  # that sample's failure (generate() records it), not a usage error
                    raise ValueError(f"an input of {h}x{w} pixels is smaller than the pipeline's scale factor "
                                     f"{self.scale}")
                if rounded != (h, w):
                    image = resize_batch(image.cpu(), rounded, "clean")
                    if not self._noted_resize:
                        self._noted_resize = True
                        self.notes.append(
                            f"generator {self.source}: inputs whose sides are not multiples of {self.scale} are "
                            f"generated at the rounded-down size and resized back (e.g. {h}x{w} -> "
                            f"{rounded[0]}x{rounded[1]} -> {h}x{w}); set height/width to choose the size")
            generator = torch.Generator("cpu").manual_seed(int(seeds[i]))
            result = self.pipeline(prompt=texts[i], image=image.to(self.device), generator=[generator],
                                   output_type="pt", return_dict=True, **self.call_options)
            out = result.images
            if not isinstance(out, torch.Tensor):
                out = torch.as_tensor(out)
            out = out.float()
            if out.ndim == 4 and out.shape[-1] == 3 and out.shape[1] != 3:  # channels-last from some pipelines
                out = out.permute(0, 3, 1, 2)
            if tuple(out.shape[-2:]) != tuple(wanted):
                out = resize_batch(out.cpu().clamp(0, 1), tuple(wanted), "clean")
            outs.append(out.cpu())
        return torch.cat(outs)


def load_pipeline_generator(
    spec: str, *, trust: bool = False, device: str | torch.device | None = None, seed: int = 0,
    generator_options: Mapping[str, Any] | None = None, mode: str = "eval",
) -> Generator:
    """Load ``spec`` (``"diffusers:PATH_OR_HUB_ID"``) as a :class:`Generator` (see the module docstring).

    Raises:
        MissingDependencyError: diffusers or transformers is not installed.
        I2IInputError: no such folder or cached hub id, no ``model_index.json``, a pipeline class
            that does not take ``prompt`` and ``image``, a bad option value, or ``mode="train"``.
        UnknownNameError: a generation option the pipeline does not take (the valid ones are listed).
        UntrustedCheckpointError: a component has only pickle weights and ``trust`` is False.
    """
    diffusers = import_diffusers()
    if mode != "eval":
        raise I2IInputError(f"generator {spec}: mode={mode!r} applies to torch modules (pix2pix), "
                            "not to diffusers pipelines")
    body = check_diffusers_spec(spec)
    options = typed_generator_options(generator_options)
    variant, revision = options.get("variant"), options.get("revision")
    folder = resolve_pipeline_folder(body, trust=trust, variant=variant, revision=revision)
    index = read_model_index(folder)
    files = pipeline_files(folder, trust=trust, variant=variant)
    class_name = index["_class_name"]
    notes: list[str] = []
    pipeline_cls = getattr(diffusers, class_name, None)
    if pipeline_cls is None:
        raise I2IInputError(f"diffusers pipeline {folder}: class {class_name} is not in diffusers "
                            f"{diffusers.__version__}")
    call_params = inspect.signature(pipeline_cls.__call__).parameters
    if "prompt" not in call_params or "image" not in call_params:
        raise I2IInputError(f"diffusers pipeline {folder}: {class_name} does not take prompt= and image=, "
                            f"so it is not an image editor; supported: {', '.join(PIPELINES)}")
    kind = PIPELINES.get(class_name)
    if kind is None:
        notes.append(f"pipeline class {class_name} is run like {', '.join(PIPELINES)} (prompt and image), "
                     "but pytest-i2i has not tested it")
    call_types = call_option_types(pipeline_cls)
    valid = {**call_types, **OWN_OPTIONS, **LOAD_OPTIONS}
    for key in options:
        if key not in valid:
            raise UnknownNameError(f"{class_name} generation option", key, valid)
    call_options = {k: coerce_value(v, call_types[k], f"generator option {k}") for k, v in options.items()
                    if k in call_types}
    # trust: safetensors where a component has them, pickle weights elsewhere (diffusers' own fallback)
    load_kwargs: dict[str, Any] = {"use_safetensors": None if trust else True, "local_files_only": True}
    if variant is not None:
        load_kwargs["variant"] = variant
    if "torch_dtype" in options:
        load_kwargs["torch_dtype"] = _DTYPES[options["torch_dtype"]]
    init_params = inspect.signature(pipeline_cls.__init__).parameters
    load_kwargs.update({c: None for c in SKIPPED_COMPONENTS if c in init_params})
    if "requires_safety_checker" in init_params:
        load_kwargs["requires_safety_checker"] = False
    try:
        with _quiet_loading():
            pipeline = pipeline_cls.from_pretrained(str(folder), **load_kwargs)
    except Exception as e:  # noqa: BLE001 - diffusers/transformers raise many types for bad folders
        raise I2IInputError(f"diffusers pipeline {folder} ({class_name}) could not be loaded: "
                            f"{type(e).__name__}: {str(e).splitlines()[0][:400] if str(e) else ''}") from None
    dev = torch.device(device) if device is not None else torch.device("cpu")
    pipeline = pipeline.to(dev)
    pipeline.set_progress_bar_config(disable=True)
    size = _size(options, int(getattr(pipeline, "vae_scale_factor", 8) or 8), spec)
    editor = DiffusersEditor(pipeline, call_options=call_options, size=size, device=dev, source=spec)
    gen = Generator(
        editor, kind="diffusers", source=spec, sha256=pipeline_digest(folder, files), arch=class_name,
        input_range=editor.input_range, output_range=editor.output_range, seed=seed, device=dev, trusted=trust,
        warnings=notes, mode=mode, text_field=options.get("prompt_field") or (kind.prompt_field if kind else
                                                                              "instruction"),
        options=options,
    )
    editor.notes = gen.warnings  # the editor's notes land in the generator's warnings
    return gen


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """No loading progress bars from diffusers and transformers (restored afterwards)."""
    import diffusers.utils.logging as d_log
    import transformers.utils.logging as t_log

    restore = [m for m in (d_log, t_log) if m.is_progress_bar_enabled()]
    for m in restore:
        m.disable_progress_bar()
    try:
        yield
    finally:
        for m in restore:
            m.enable_progress_bar()


def _size(options: Mapping[str, Any], scale: int, spec: str) -> tuple[int, int] | None:
    height, width = options.get("height"), options.get("width")
    if height is None and width is None:
        return None
    if height is None or width is None:
        raise I2IInputError(f"generator {spec}: give both height and width (the output size), or neither")
    for name, value in (("height", height), ("width", width)):
        if value < scale or value % scale:
            raise I2IInputError(f"generator {spec}: {name}={value} must be a positive multiple of {scale} "
                                "(the pipeline's VAE scale factor)")
    return (int(height), int(width))
