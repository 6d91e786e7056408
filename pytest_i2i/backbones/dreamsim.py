"""DreamSim's encoders (Fu et al. 2023) and DINO ViT-B/16, registered on import.

* ``dino-vitb16``: timm ``vit_base_patch16_224.dino`` (DINO ViT-B/16, Caron et al. 2021), like
  ``dino-vits16`` (outputs ``cls`` and ``patch_tokens``); its published files are timm's Hugging
  Face copy and DINO's own release file (``dino_vitbase16_pretrain.pth``, what ``dreamsim``
  fetches through ``torch.hub``). It is also the base of DreamSim's DINO branch.
* ``dreamsim-ensemble`` (the default of :func:`pytest_i2i.dreamsim`): DINO ViT-B/16 (class token),
  OpenAI CLIP ViT-B/16 and OpenCLIP ViT-B/16 (image embeddings), concatenated: 768 + 512 + 512;
  ``dreamsim-dino-vitb16``, ``dreamsim-clip-vitb32``, ``dreamsim-open-clip-vitb32``: the
  single-branch models. (The ``dreamsim`` package's ensemble is all ViT-B/16; its single-branch
  CLIP models are ViT-B/32.)

Each takes 224 x 224 images in [0, 1] (the whole image is resized, no crop, as ``dreamsim``'s
preprocessing does; the project's ``"clean"`` resize is bicubic with antialiasing on float data,
``dreamsim``'s is PIL bicubic on 8-bit images) and returns ``{"embedding": (N, D)}``; the
normalisation of each branch happens inside the model. Weights: DreamSim's release zip of the
variant (v0.2.0 checkpoints, MIT licence), plus ``dino-vitb16``'s file for the DINO branch; see
:mod:`pytest_i2i.backbones.dreamsim_model`. No sha256 of the zips is published, so a found zip is
used and labelled uncalibrated, with its sha256 in the warning (record it to verify later copies).

Imports neither torch, timm nor open_clip.
"""

from __future__ import annotations

from functools import partial

from pytest_i2i.backbones.registry import register_backbone
from pytest_i2i.backbones.spec import BackboneSpec
from pytest_i2i.backbones.vit import timm_spec, weights_files
from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile

_RELEASE = "https://github.com/ssundaram21/dreamsim/releases/download/v0.2.0-checkpoints/"
_DINO_URL = "https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth"

DINO_VITB16 = register_backbone(timm_spec(
    "dino-vitb16", "vit_base_patch16_224.dino",
    PretrainedCfg(weights_files("vit_base_patch16_224.dino", "timm/vit_base_patch16_224.dino")
                  + (WeightsFile(filename="dino_vitbase16_pretrain.pth", url=_DINO_URL),),
                  source="DINO ViT-B/16 (Caron et al. 2021), timm vit_base_patch16_224.dino / DINO's release",
                  license="Apache-2.0"),
    (224, 224),
    "DINO ViT-B/16 (timm vit_base_patch16_224.dino): 768-d CLS token and 14x14 patch tokens",
))


def _branches(variant: str):
    from pytest_i2i.backbones.dreamsim_model import Branch

    dino = Branch("dino", "vit_base_patch16_224.dino")
    return {
        "ensemble": (dino, Branch("clip", "ViT-B-16", quick_gelu=True, member="clip_vitb16_pretrain.pth.tar"),
                     Branch("clip", "ViT-B-16", member="open_clip_vitb16_pretrain.pth.tar")),
        "dino_vitb16": (dino,),
        "clip_vitb32": (Branch("clip", "ViT-B-32", quick_gelu=True, member="clip_vitb32_pretrain.pth.tar"),),
        "open_clip_vitb32": (Branch("clip", "ViT-B-32", member="open_clip_vitb32_pretrain.pth.tar"),),
    }[variant]


def _create(branches) -> object:
    from pytest_i2i.backbones.dreamsim_model import DreamSimEncoder

    return DreamSimEncoder(branches() if callable(branches) else branches)


def _init_random(model, seed: int) -> None:
    from pytest_i2i.backbones.dreamsim_model import init_random

    init_random(model, seed)


def _load(lora_dir: str, dino_component: str | None, model, path, components) -> None:
    from pytest_i2i.backbones.dreamsim_model import load_dreamsim
    from pytest_i2i.backbones.registry import get_spec

    dino_filter = get_spec(dino_component).filter_state_dict if dino_component else None
    load_dreamsim(model, path, components, lora_dir=lora_dir, dino_component=dino_component, dino_filter=dino_filter)


def dreamsim_spec(name: str, branches, *, pretrained: PretrainedCfg, lora_dir: str, has_dino: bool,
                  description: str, input_size: tuple[int, int] = (224, 224)) -> BackboneSpec:
    """The spec of a DreamSim encoder: ``branches`` (a sequence of
    :class:`~pytest_i2i.backbones.dreamsim_model.Branch`, or a function returning one), the release
    file and the LoRA directory in it; a DINO branch's base is ``dino-vitb16``'s file."""
    dino = "dino-vitb16" if has_dino else None
    return BackboneSpec(
        name=name,
        create=partial(_create, branches),
        init_random=_init_random,
        pretrained=pretrained,
        input_size=input_size,
        default_resize="clean",
        outputs=("embedding",),
        description=description,
        components=(dino,) if dino else (),
        load_weights=partial(_load, lora_dir, dino),
    )


#: DreamSim variant (the ``dreamsim`` package's ``dreamsim_type``) -> (backbone name, LoRA dir, zip size)
DREAMSIM_VARIANTS: dict[str, tuple[str, str, int | None]] = {
    "ensemble": ("dreamsim-ensemble", "ensemble_lora", 1_261_181_618),  # size: pinned by public download scripts
    "dino_vitb16": ("dreamsim-dino-vitb16", "dino_vitb16_single_lora", None),
    "clip_vitb32": ("dreamsim-clip-vitb32", "clip_vitb32_single_lora", None),
    "open_clip_vitb32": ("dreamsim-open-clip-vitb32", "open_clip_vitb32_single_lora", None),
}
_DESCRIPTIONS = {
    "ensemble": "DreamSim ensemble: DINO ViT-B/16 + CLIP ViT-B/16 + OpenCLIP ViT-B/16 with LoRA, 1792-d embedding",
    "dino_vitb16": "DreamSim single branch: DINO ViT-B/16 with LoRA, 768-d embedding",
    "clip_vitb32": "DreamSim single branch: CLIP ViT-B/32 with LoRA, 512-d embedding",
    "open_clip_vitb32": "DreamSim single branch: OpenCLIP ViT-B/32 with LoRA, 512-d embedding",
}

for _variant, (_name, _lora, _size) in DREAMSIM_VARIANTS.items():
    _zip = f"dreamsim_{_variant}_checkpoint.zip"
    register_backbone(dreamsim_spec(
        _name, partial(_branches, _variant),
        pretrained=PretrainedCfg(files=(WeightsFile(filename=_zip, url=_RELEASE + _zip, size=_size),),
                                 source=f"DreamSim v0.2.0 checkpoints ({_variant}), Fu et al. 2023", license="MIT"),
        lora_dir=_lora, has_dino=_variant in ("ensemble", "dino_vitb16"), description=_DESCRIPTIONS[_variant],
    ))
