"""DreamSim's encoder (Fu et al. 2023) built from the project's ViT and CLIP architectures, and its weights.

:class:`DreamSimEncoder` runs one or more *branches* on the same 224 px images in [0, 1] and
concatenates their features into ``{"embedding": (N, D)}``, as the ``dreamsim`` package's
``PerceptualModel.embed`` does (before its ``normalize_embeds`` step, which the metric applies):

* a ``"dino"`` branch is a timm ViT (``vit_base_patch16_224.dino``: DINO ViT-B/16); its feature is
  the class token *after the last block and before the final norm* (DreamSim's ``feat_type="cls"``
  reads block 11's output through a hook), on images normalised with ImageNet's mean/std;
* a ``"clip"`` branch is an open_clip vision tower (ViT-B/16 or ViT-B/32, QuickGELU for OpenAI's
  weights); its feature is the projected image embedding (``feat_type="embedding"``: ln_post of the
  class token times ``proj``), on images normalised with OpenAI CLIP's mean/std.

Weights (:func:`load_dreamsim`): DreamSim's release zip for the variant holds the CLIP branches'
base weights (converted to the layout of DINO's ViT class, ``<name>_pretrain.pth.tar``) and the
LoRA adapters (``<tag>_lora/adapter_config.json`` and ``adapter_model.safetensors`` or ``.bin``,
PEFT's files) of the fine-tuned ``attn.qkv`` layers of every branch. The DINO branch's base
weights are not in the zip (``dreamsim`` fetches DINO's release through ``torch.hub``): they are
the project's ``dino-vitb16`` backbone file (a component, resolved by its own rules). Loading maps
the converted CLIP layout onto open_clip's, checks every key, and merges each adapter into its
weight, ``W + (α / r) · B A``, the computation PEFT performs in eval mode (merged, the forward pass
is one matrix product instead of two; the difference is float round-off).

Imports torch, timm and open_clip.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pytest_i2i.errors import CheckpointError, I2IInputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Branch:
    """One DreamSim branch.

    Attributes:
        kind: ``"dino"`` (timm ViT, pre-norm class token) or ``"clip"`` (open_clip vision tower,
            projected embedding).
        model_name: the timm model name (``"dino"``) or the open_clip model name (``"clip"``).
        quick_gelu: open_clip's QuickGELU activation (OpenAI's CLIP weights).
        member: the file in the release zip holding the branch's base weights (``"clip"`` branches).
        model_kwargs: extra arguments of the timm model (e.g. ``img_size`` for small test models).
    """

    kind: str
    model_name: str
    quick_gelu: bool = False
    member: str | None = None
    model_kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def mean(self) -> tuple[float, float, float]:
        return IMAGENET_MEAN if self.kind == "dino" else OPENAI_MEAN

    @property
    def std(self) -> tuple[float, float, float]:
        return IMAGENET_STD if self.kind == "dino" else OPENAI_STD


def _clip_tower(model_name: str, quick_gelu: bool) -> nn.Module:
    """open_clip's vision tower of ``model_name`` (its text tower is never built)."""
    import open_clip

    cfg = open_clip.get_model_config(model_name)
    if cfg is None:
        raise I2IInputError(f"open_clip has no model {model_name!r}")
    try:
        from open_clip.model import CLIPVisionCfg, _build_vision_tower

        return _build_vision_tower(cfg["embed_dim"], CLIPVisionCfg(**cfg["vision_cfg"]), quick_gelu=quick_gelu)
    except (ImportError, TypeError):  # pragma: no cover - an open_clip without this builder
        from pytest_i2i.backbones.clip import build_open_clip

        return build_open_clip(model_name, quick_gelu).visual


class DreamSimEncoder(nn.Module):
    """DreamSim's branches on images in [0, 1] → ``{"embedding": (N, Σ D_branch)}``."""

    def __init__(self, branches: Sequence[Branch]) -> None:
        super().__init__()
        import timm

        self.config = tuple(branches)
        mods = []
        for b in self.config:
            if b.kind == "dino":
                mods.append(timm.create_model(b.model_name, pretrained=False, **dict(b.model_kwargs)))
            elif b.kind == "clip":
                mods.append(_clip_tower(b.model_name, b.quick_gelu))
            else:
                raise I2IInputError(f"unknown DreamSim branch kind {b.kind!r}")
        self.branches = nn.ModuleList(mods)
        for i, b in enumerate(self.config):
            self.register_buffer(f"mean{i}", torch.tensor(b.mean).view(1, 3, 1, 1), persistent=False)
            self.register_buffer(f"std{i}", torch.tensor(b.std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = []
        for i, (b, m) in enumerate(zip(self.config, self.branches)):
            h = (x - getattr(self, f"mean{i}")) / getattr(self, f"std{i}")
            if b.kind == "dino":
                _, prefix = m.forward_intermediates(h, indices=[len(m.blocks) - 1], return_prefix_tokens=True,
                                                    norm=False, output_fmt="NLC", intermediates_only=True)[0]
                feats.append(prefix[:, 0])
            else:
                feats.append(m(h))
        return {"embedding": torch.cat(feats, dim=-1)}


def init_random(model: DreamSimEncoder, seed: int) -> None:
    from pytest_i2i.backbones.timm_adapter import init_random as init

    init(model, seed)


# -- weights -------------------------------------------------------------------------------------
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")
_DINO_TO_CLIP = {
    "norm1": "ln_1", "norm2": "ln_2", "attn.qkv.weight": "attn.in_proj_weight", "attn.qkv.bias": "attn.in_proj_bias",
    "attn.proj": "attn.out_proj", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
}


def clip_from_dino_layout(state: dict[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """A CLIP vision tower's state_dict in DreamSim's converted layout (DINO's ViT class with
    ``pos_drop`` as ln_pre, plus ``proj``) → open_clip's ``VisionTransformer`` keys.

    The converted layout has a patch-embedding bias that CLIP does not have; it must be zero.

    Raises:
        I2IInputError: a key that has no counterpart, a missing ``proj``, or a non-zero patch bias.
    """
    out: dict[str, torch.Tensor] = {}
    for key, v in state.items():
        if key == "cls_token":
            out["class_embedding"] = v.reshape(-1)
        elif key == "pos_embed":
            out["positional_embedding"] = v.reshape(v.shape[-2], v.shape[-1])
        elif key == "patch_embed.proj.weight":
            out["conv1.weight"] = v
        elif key == "patch_embed.proj.bias":
            if v.abs().max() != 0:
                raise I2IInputError(f"{what}: patch_embed.proj.bias is not zero; CLIP's patch embedding has no bias")
        elif key.startswith("pos_drop."):
            out["ln_pre." + key.removeprefix("pos_drop.")] = v
        elif key.startswith("norm."):
            out["ln_post." + key.removeprefix("norm.")] = v
        elif key == "proj":
            out["proj"] = v
        elif m := _BLOCK.match(key):
            rest = m.group(2)
            for src, dst in _DINO_TO_CLIP.items():
                if rest == src or rest.startswith(src + "."):
                    rest = dst + rest[len(src):]
                    break
            else:
                raise I2IInputError(f"{what}: no open_clip counterpart for {key!r}")
            out[f"transformer.resblocks.{m.group(1)}.{rest}"] = v
        else:
            raise I2IInputError(f"{what}: no open_clip counterpart for {key!r}")
    if "proj" not in out:
        raise I2IInputError(f"{what}: no 'proj' (the image projection) in the converted CLIP weights")
    return out


def _find(names: list[str], suffix: str) -> str | None:
    found = [n for n in names if n == suffix or n.endswith("/" + suffix)]
    return min(found, key=len) if found else None


def _torch_load_bytes(data: bytes, what: str) -> Any:
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad or code-carrying files
        raise CheckpointError(f"cannot read {what} with torch.load(weights_only=True): {type(e).__name__}: "
                              f"{str(e).splitlines()[0][:300] if str(e) else ''}") from None


@dataclass
class LoraAdapter:
    """PEFT LoRA adapter of DreamSim: ``{(branch, block): (A, B)}`` and the scale α / r."""

    pairs: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    scale: float = 1.0


_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?extractor_list\.(\d+)\.model\.blocks\.(\d+)\.attn\.qkv\."
                       r"lora_([AB])(?:\.default)?\.weight$")


def read_lora(config: dict[str, Any], weights: dict[str, torch.Tensor], what: str) -> LoraAdapter:
    """DreamSim's LoRA adapter from PEFT's ``adapter_config.json`` and adapter weights.

    Raises:
        I2IInputError: a configuration this loader does not reproduce (DoRA, rsLoRA, trained
            biases, fan-in/fan-out layout, modules other than ``qkv``) or keys it does not know.
    """
    r, alpha = config.get("r"), config.get("lora_alpha")
    if not isinstance(r, int) or r < 1 or not isinstance(alpha, (int, float)):
        raise I2IInputError(f"{what}: adapter_config.json needs an int 'r' >= 1 and a number 'lora_alpha'")
    targets = config.get("target_modules")
    targets = [targets] if isinstance(targets, str) else list(targets or [])
    unsupported = [k for k in ("use_dora", "use_rslora", "fan_in_fan_out") if config.get(k)]
    if config.get("bias", "none") != "none":
        unsupported.append(f"bias={config.get('bias')!r}")
    if targets != ["qkv"]:
        unsupported.append(f"target_modules={targets!r}")
    if unsupported:
        raise I2IInputError(f"{what}: LoRA settings not supported here ({', '.join(unsupported)}); DreamSim's "
                            "release uses plain LoRA on the attention qkv layers")
    parts: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    for key, v in weights.items():
        m = _LORA_KEY.match(key)
        if m is None:
            raise I2IInputError(f"{what}: unexpected adapter key {key!r}")
        parts.setdefault((int(m.group(1)), int(m.group(2))), {})[m.group(3)] = v.to(torch.float32)
    pairs = {}
    for k, ab in parts.items():
        if set(ab) != {"A", "B"}:
            raise I2IInputError(f"{what}: branch {k[0]} block {k[1]} has lora_{''.join(ab)} only")
        pairs[k] = (ab["A"], ab["B"])
    return LoraAdapter(pairs, float(alpha) / r)


def read_release(path: Path, lora_dir: str, members: Sequence[str]) -> tuple[dict[str, Any], LoraAdapter]:
    """The base-weight ``members`` and the LoRA adapter (``<lora_dir>/``) of a DreamSim release zip.

    Raises:
        CheckpointError: not a zip, or a member that cannot be read safely.
        I2IInputError: a missing member (the message lists what the zip holds).
    """
    what = f"DreamSim weights {path}"
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"cannot read {what}: {e} (DreamSim's release is a zip file)") from None
    with zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]

        def member(name: str) -> bytes:
            found = _find(names, name)
            if found is None:
                raise I2IInputError(f"{what} has no {name} (it holds {', '.join(sorted(names)[:12])})")
            return zf.read(found)

        bases = {}
        for m in members:
            obj = _torch_load_bytes(member(m), f"{what} ({m})")
            state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
            if not isinstance(state, dict):
                raise I2IInputError(f"{what} ({m}) holds no state_dict")
            bases[m] = state
        config = json.loads(member(f"{lora_dir}/adapter_config.json").decode("utf-8"))
        if _find(names, f"{lora_dir}/adapter_model.safetensors") is not None:
            from safetensors.torch import load as load_safetensors

            weights = load_safetensors(member(f"{lora_dir}/adapter_model.safetensors"))
        else:
            weights = _torch_load_bytes(member(f"{lora_dir}/adapter_model.bin"), f"{what} ({lora_dir} adapter)")
    return bases, read_lora(config, weights, f"{what} ({lora_dir})")


def load_dreamsim(model: DreamSimEncoder, path: Path, components: dict[str, Path], *, lora_dir: str,
                  dino_component: str | None, dino_filter) -> None:
    """Fill ``model`` from a DreamSim release zip and, for a DINO branch, the DINO base file; then
    merge the LoRA adapters. Every parameter is set (strict loads) and every adapter is used."""
    from pytest_i2i.checkpoint import load_state_dict_strict, read_state_dict

    members = [b.member for b in model.config if b.kind == "clip"]
    bases, lora = read_release(path, lora_dir, members)
    for i, (b, m) in enumerate(zip(model.config, model.branches)):
        if b.kind == "clip":
            state = clip_from_dino_layout(bases[b.member], f"DreamSim weights {path} ({b.member})")
            load_state_dict_strict(m, state, source=f"{path} ({b.member})", target=f"DreamSim branch {i} ({b.model_name})")
        else:
            if dino_component is None or dino_component not in components:
                raise I2IInputError(f"DreamSim branch {i} needs the DINO base weights (backbone {dino_component!r})")
            src = components[dino_component]
            state = read_state_dict(src, what=f"DINO base weights of DreamSim branch {i}")
            if dino_filter is not None:
                state = dino_filter(state, m)
            load_state_dict_strict(m, state, source=f"weights file {src}", target=f"DreamSim branch {i} ({b.model_name})")
    merge_lora(model, lora, f"DreamSim weights {path} ({lora_dir})")


def merge_lora(model: DreamSimEncoder, lora: LoraAdapter, what: str) -> None:
    """``W ← W + (α / r) · B A`` for every adapted qkv weight.

    Raises:
        I2IInputError: an adapter for a branch or block the model does not have, a shape that does
            not fit, or a branch of the model without any adapter.
    """
    with torch.no_grad():
        for (i, j), (a, b) in sorted(lora.pairs.items()):
            if i >= len(model.branches):
                raise I2IInputError(f"{what}: an adapter for branch {i}; the model has {len(model.branches)}")
            m, kind = model.branches[i], model.config[i].kind
            blocks = m.blocks if kind == "dino" else m.transformer.resblocks
            if j >= len(blocks):
                raise I2IInputError(f"{what}: an adapter for block {j} of branch {i}, which has {len(blocks)}")
            weight = blocks[j].attn.qkv.weight if kind == "dino" else blocks[j].attn.in_proj_weight
            delta = (b @ a) * lora.scale
            if delta.shape != weight.shape:
                raise I2IInputError(f"{what}: adapter of branch {i} block {j} gives {tuple(delta.shape)}, the qkv "
                                    f"weight is {tuple(weight.shape)}")
            weight.add_(delta.to(weight.dtype))
    adapted = {i for i, _ in lora.pairs}
    missing = [i for i in range(len(model.branches)) if i not in adapted]
    if missing:
        raise I2IInputError(f"{what}: no adapter for branch(es) {missing}; is this the zip of another variant?")
