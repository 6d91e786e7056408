"""The ViT feature backbones, built with timm: ``dino-vits16``, ``dinov2-vits14`` and ``timm:<model name>``.

Each wraps the timm model in :class:`pytest_i2i.backbones.timm_adapter.TimmFeatures` (outputs
``cls`` and ``patch_tokens``) and loads the published timm ``state_dict`` into the inner model,
through the model module's ``checkpoint_filter_fn`` (position embeddings made for another image
size are resampled, as timm does). Images are centre-cropped to the input aspect ratio, resized
"clean" and normalised with the timm pretrained cfg's mean/std.

Published weights (timm's Hugging Face files, verified against the sha256 recorded in
:data:`pytest_i2i.backbones.weights.HF_PUBLISHED` where established, else against the sha256 the
hub publishes):

* ``dino-vits16``: timm ``vit_small_patch16_224.dino`` (DINO ViT-S/16, Caron et al. 2021), 224 px.
* ``dinov2-vits14``: timm ``vit_small_patch14_dinov2.lvd142m`` (DINOv2 ViT-S/14, Oquab et al. 2023),
  run at 224 px (16 x 16 patches of 14 px); the published 518 px position embedding is resampled.
* ``timm:<model name>``: any timm model (``arch`` or ``arch.tag``) at its pretrained cfg's input
  size, with the weights file its pretrained cfg names.

Importing this module imports neither torch nor timm.
"""

from __future__ import annotations

from functools import lru_cache, partial
from typing import Any

from pytest_i2i.backbones.registry import register_backbone, register_backbone_family
from pytest_i2i.backbones.spec import BackboneSpec
from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile, hf_file
from pytest_i2i.errors import UnknownNameError

OUTPUTS = ("cls", "patch_tokens")
#: timm's IMAGENET_DEFAULT_MEAN / _STD, the normalisation of the DINO and DINOv2 pretrained cfgs
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _create(model_name: str, model_kwargs: dict[str, Any]):
    from pytest_i2i.backbones.timm_adapter import create

    return create(model_name, **model_kwargs)


def _init_random(model, seed: int) -> None:
    from pytest_i2i.backbones.timm_adapter import init_random

    init_random(model, seed)


def _filter(model_name: str, state_dict: dict, model) -> dict:
    from pytest_i2i.backbones.timm_adapter import filter_state_dict

    return filter_state_dict(model_name, state_dict, model)


def _inner(model):
    return model.model


def weights_files(
    model_name: str, hf_hub_id: str | None, hf_filename: str | None = None, url: str | None = None
) -> tuple[WeightsFile, ...]:
    """The published files of timm model ``model_name`` (``arch.tag``), Hugging Face file first.

    In a weights directory or the torch hub cache the HF file is looked for as
    ``<arch.tag>.<ext>`` (HF names such as ``model.safetensors`` are not unique); in the HF hub
    cache under its own name. ``url`` is a second, direct download (timm's non-HF location).
    """
    files = []
    if hf_hub_id:
        hf_name = hf_filename or "model.safetensors"
        files.append(hf_file(hf_hub_id, hf_name, f"{model_name}.{hf_name.rsplit('.', 1)[-1]}"))
    if url:
        files.append(WeightsFile(filename=url.rsplit("/", 1)[-1].split("?")[0], sha256=None, url=url))
    if not files:  # no published weights: only a file the user puts in the weights dir
        files.append(WeightsFile(filename=f"{model_name}.safetensors", sha256=None))
    return tuple(files)


def timm_spec(
    name: str,
    model_name: str,
    pretrained: PretrainedCfg,
    input_size: tuple[int, int],
    description: str,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    **model_kwargs: Any,
) -> BackboneSpec:
    """The spec of backbone ``name``: timm model ``model_name`` (``arch.tag``) in the adapter,
    its images normalised with the pretrained cfg's ``mean`` and ``std``."""
    return BackboneSpec(
        name=name,
        create=partial(_create, model_name, model_kwargs),
        init_random=_init_random,
        pretrained=pretrained,
        input_size=input_size,
        default_resize="clean",
        outputs=OUTPUTS,
        description=description,
        weights_target=_inner,
        filter_state_dict=partial(_filter, model_name),
        center_crop=True,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
    )


DINO_VITS16 = register_backbone(timm_spec(
    "dino-vits16", "vit_small_patch16_224.dino",
    PretrainedCfg(weights_files("vit_small_patch16_224.dino", "timm/vit_small_patch16_224.dino"),
                  source="DINO ViT-S/16 (Caron et al. 2021), timm vit_small_patch16_224.dino", license="Apache-2.0"),
    (224, 224),
    "DINO ViT-S/16 (timm vit_small_patch16_224.dino): 384-d CLS token and 14x14 patch tokens",
))

DINOV2_VITS14 = register_backbone(timm_spec(
    "dinov2-vits14", "vit_small_patch14_dinov2.lvd142m",
    PretrainedCfg(weights_files("vit_small_patch14_dinov2.lvd142m", "timm/vit_small_patch14_dinov2.lvd142m"),
                  source="DINOv2 ViT-S/14 (Oquab et al. 2023), timm vit_small_patch14_dinov2.lvd142m",
                  license="Apache-2.0"),
    (224, 224),
    "DINOv2 ViT-S/14 (timm vit_small_patch14_dinov2.lvd142m) at 224 px: 384-d CLS token and 16x16 patch tokens",
    img_size=224,
))


@lru_cache(maxsize=None)
def resolve_timm(model_name: str) -> BackboneSpec:
    """The spec of ``"timm:<model_name>"`` (``arch`` or ``arch.tag``) from timm's pretrained cfg.

    Raises:
        UnknownNameError: timm has no such architecture, or no such pretrained tag for it.
    """
    import difflib

    import timm
    from timm.models import get_pretrained_cfg

    arch = model_name.partition(".")[0]
    cfg = None
    if timm.is_model(arch):
        try:
            cfg = get_pretrained_cfg(model_name)
        except RuntimeError:  # timm: "Invalid pretrained tag (...)"
            cfg = None
    if cfg is None:
        pool = timm.list_models(f"{arch}.*", pretrained=True) if timm.is_model(arch) else timm.list_models()
        close = difflib.get_close_matches(model_name, pool, n=8, cutoff=0.5)
        raise UnknownNameError("timm model", model_name, [*close, "(timm.list_models() lists every name)"])
    full = f"{arch}.{cfg.tag}" if cfg.tag else arch
    url = cfg.url if isinstance(cfg.url, str) and cfg.url and not cfg.custom_load else None
    return timm_spec(
        f"timm:{model_name}", full,
        PretrainedCfg(weights_files(full, cfg.hf_hub_id, cfg.hf_hub_filename, url), source=f"timm {full}",
                      license=cfg.license or ""),
        (int(cfg.input_size[1]), int(cfg.input_size[2])),
        f"timm {full}: pooled (CLS) feature and patch tokens",
        mean=tuple(cfg.mean), std=tuple(cfg.std),
    )


register_backbone_family("timm", resolve_timm, help="timm:<model name>")
