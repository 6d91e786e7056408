"""CLIP backbones built with open_clip: image *and* text embeddings through the one registry.

Names:

- ``clip-vit-b-32``: ViT-B/32 with OpenAI's weights (the CLIPScore / CLIP-I / directional default);
- ``clip-vit-l-14-336``: ViT-L/14 at 336 px with OpenAI's weights (CMMD's default, as in the paper);
- ``clip:<open_clip model>/<pretrained tag>``: any model and tag open_clip knows, e.g.
  ``clip:ViT-L-14/openai`` or ``clip:ViT-B-32/laion2b_s34b_b79k``.

Preprocessing follows the tag's open_clip config: mean/std normalisation, centre crop when
``resize_mode`` is ``"shortest"`` (``"squash"`` resizes the whole image), and the QuickGELU
variant of the architecture where the tag was trained with it (all OpenAI weights). Resizing
uses the project's resize modes (``"clean"`` = antialiased Pillow bicubic, open_clip's default
interpolation); every result records the preprocessing it used.

Published weights are the Hugging Face hub copies open_clip itself downloads
(``open_clip.get_pretrained_cfg(model, tag)["hf_hub"]``): ``open_clip_model.safetensors``, else
``open_clip_pytorch_model.bin``, verified against the sha256 recorded in
:data:`pytest_i2i.backbones.weights.HF_PUBLISHED` where established, else against the sha256 the
hub publishes (see :mod:`pytest_i2i.backbones.weights`). OpenAI's own ``.pt`` files are TorchScript archives: loading them would execute
code from the file, so they are never accepted (convert them or use the hub copy).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_i2i.backbones.backbone import Backbone
from pytest_i2i.backbones.registry import register_backbone, register_backbone_family
from pytest_i2i.backbones.spec import BackboneSpec
from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile, hf_file
from pytest_i2i.errors import I2IInputError, UnknownNameError
from pytest_i2i.texts import check_texts

if TYPE_CHECKING:
    import torch
    from torch import nn

# The file names open_clip looks for in a hub repo given as "org/name/" (open_clip.constants).
HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"
HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

_RESIZE_MODES = {"shortest": True, "squash": False}  # open_clip resize_mode -> centre crop


@dataclass(frozen=True)
class ClipSpec(BackboneSpec):
    """A :class:`BackboneSpec` plus the open_clip model, tag and preprocessing it stands for."""

    model_name: str = ""
    tag: str = ""
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"
    quick_gelu: bool = False

    @property
    def preprocess(self) -> dict[str, Any]:
        """The preprocessing, as recorded in results (``resize`` is added by the metric)."""
        return {"open_clip_model": self.model_name, "pretrained_tag": self.tag,
                "resize_mode": self.resize_mode, "center_crop": self.center_crop,
                "open_clip_interpolation": self.interpolation, "input_size": list(self.input_size),
                "mean": list(self.mean), "std": list(self.std), "quick_gelu": self.quick_gelu}


@dataclass
class ClipBackbone(Backbone):
    """A loaded CLIP backbone: images through :meth:`iter_features` (output ``"image_embeds"``),
    texts through :meth:`encode_text` (each distinct string is embedded once per backbone)."""

    _text_cache: dict[str, tuple[Any, bool]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.spec.interpolation != "bicubic":
            self.warnings.append(
                f"open_clip preprocesses {self.spec.model_name}/{self.spec.tag} with {self.spec.interpolation} "
                "interpolation; here images are resized with the project's resize modes ('clean' is antialiased "
                "bicubic), so embeddings differ slightly from open_clip's own pipeline")

    @functools.cached_property
    def tokenizer(self) -> Any:
        import open_clip

        with optional_dependency(f"the tokenizer of open_clip model {self.spec.model_name}"):
            return open_clip.get_tokenizer(self.spec.model_name)

    @property
    def context_length(self) -> int:
        return int(self.tokenizer.context_length)

    def encode_text(
        self, texts: str | Sequence[str], *, name: str = "texts", return_truncated: bool = False,
        batch_size: int = 256,
    ) -> torch.Tensor | tuple[torch.Tensor, list[int]]:
        """Un-normalised text embeddings (N, D) on CPU, float32.

        Texts longer than :attr:`context_length` tokens are truncated by the tokenizer (as
        open_clip does); with ``return_truncated`` the indices of those texts are returned too,
        so callers can say which were cut.

        Raises:
            I2IInputError: an empty string or non-string item (named ``name[i]``).
        """
        import torch

        items = check_texts(texts, name)
        missing = self.load_cached_texts([t for t in dict.fromkeys(items) if t not in self._text_cache],
                                         self._text_cache)
        for start in range(0, len(missing), batch_size):
            chunk = missing[start:start + batch_size]
            tokens = self.tokenizer(chunk).to(self.device)
            with torch.inference_mode():
                emb = self.model.encode_text(tokens).float().cpu()
            for text, e in zip(chunk, emb):
                self._text_cache[text] = (e.clone(), self._n_tokens(text) > self.context_length)
            self.save_cached_texts(chunk, self._text_cache)
        out = torch.stack([self._text_cache[t][0] for t in items])
        if not return_truncated:
            return out
        return out, [i for i, t in enumerate(items) if self._text_cache[t][1]]

    def _n_tokens(self, text: str) -> int:
        """Length of ``text``'s token sequence before truncation, special tokens included."""
        tok = self.tokenizer
        if hasattr(tok, "encode"):  # open_clip SimpleTokenizer: <sot> BPE tokens <eot>
            return len(tok.encode(text)) + 2
        inner = getattr(tok, "tokenizer", None)  # open_clip HFTokenizer wraps a transformers tokenizer
        if inner is not None:
            return len(inner(tok.clean_fn(text))["input_ids"])
        return 0


@functools.cache
def _adapter_class() -> type:
    from torch import nn

    class OpenClipAdapter(nn.Module):
        """Prepared images (normalised by the image pipeline, see ``ClipSpec.mean``/``std``) →
        ``{"image_embeds": (N, D)}``.

        ``clip`` is the untouched open_clip model, so published state_dicts load into it unchanged.
        """

        def __init__(self, clip: nn.Module) -> None:
            super().__init__()
            self.clip = clip

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"image_embeds": self.clip.encode_image(x)}

        def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
            return self.clip.encode_text(tokens)

    return OpenClipAdapter


class _NoRandomInitNotice(logging.Filter):
    # open_clip logs a root-logger warning for every model built without weights; ours are
    # loaded right after (or are seeded random on purpose), so the notice is misleading.
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded for model")


@contextlib.contextmanager
def optional_dependency(what: str) -> Iterator[None]:
    """Turn a missing package that open_clip imports on demand (``transformers`` for a SigLIP or
    Hugging Face tokenizer, ``timm`` for timm towers, ...) into a :class:`MissingDependencyError`
    naming the package and ``what`` needs it."""
    from pytest_i2i.errors import MissingDependencyError

    try:
        yield
    except MissingDependencyError:
        raise
    except ImportError as e:
        package = getattr(e, "name", None) or str(e)
        raise MissingDependencyError(f"{what} needs the package {package!r}, which is not installed "
                                     f"(pip install {package.split('.')[0]}): {e}") from None


def build_open_clip(model_name: str, quick_gelu: bool) -> nn.Module:
    """The open_clip architecture ``model_name`` without any weights (no download, ever)."""
    import open_clip

    quiet = _NoRandomInitNotice()
    root = logging.getLogger()
    root.addFilter(quiet)
    try:
        with optional_dependency(f"open_clip model {model_name}"):
            return open_clip.create_model(model_name, pretrained=None, force_quick_gelu=quick_gelu,
                                          pretrained_image=False, pretrained_text=False)
    finally:
        root.removeFilter(quiet)


def _create(model_name: str, quick_gelu: bool) -> nn.Module:
    return _adapter_class()(build_open_clip(model_name, quick_gelu))


def _init_random(model_name: str, quick_gelu: bool, model: nn.Module, seed: int) -> None:
    import torch

    # open_clip's own initialisation, drawn from a private generator state seeded with ``seed``
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = build_open_clip(model_name, quick_gelu)
    model.clip.load_state_dict(fresh.state_dict())


def hf_weights_files(hf_hub: str) -> tuple[WeightsFile, ...]:
    """The files open_clip would fetch for an ``hf_hub`` entry (``"org/name/"`` or ``"org/name/file"``).

    ``"org/name/"`` means ``open_clip_model.safetensors``, else ``open_clip_pytorch_model.bin``;
    an explicit ``.bin``/``.pth`` file is preceded by its ``.safetensors`` twin, as open_clip
    does. Locally (weights dir, torch hub cache) each is looked for as ``org--name.<ext>``.
    """
    repo_id, _, filename = hf_hub.rpartition("/")
    if not repo_id:
        raise I2IInputError(f"not an open_clip hf_hub entry: {hf_hub!r}")
    if not filename:
        names = [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]
    elif filename.endswith((".bin", ".pth")):
        names = [filename[:-4] + ".safetensors", filename]
    else:
        names = [filename]
    local = repo_id.replace("/", "--")
    return tuple(hf_file(repo_id, n, f"{local}.{n.rsplit('.', 1)[-1]}") for n in names)


def clip_spec(
    name: str, model_name: str, tag: str, *, hf_hub: str, openai_url: str = "",
    mean: tuple[float, float, float] = OPENAI_MEAN, std: tuple[float, float, float] = OPENAI_STD,
    interpolation: str = "bicubic", resize_mode: str = "shortest", quick_gelu: bool = False,
    input_size: tuple[int, int] = (224, 224),
) -> ClipSpec:
    """The spec of an open_clip model + pretrained tag (values as in ``open_clip.get_pretrained_cfg``)."""
    if resize_mode not in _RESIZE_MODES:
        raise I2IInputError(f"open_clip resize_mode {resize_mode!r} of {model_name}/{tag} is not supported "
                            f"(supported: {', '.join(_RESIZE_MODES)})")
    source = f"open_clip {model_name}/{tag}, Hugging Face hub copy {hf_hub.rstrip('/')}"
    if "openaipublic" in openai_url:
        source += (f"; OpenAI's own TorchScript file {openai_url} (sha256 {openai_url.split('/')[-2]}) is not "
                   "accepted: it cannot be loaded without executing code from the file")
    mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    return ClipSpec(
        name=name,
        create=functools.partial(_create, model_name, quick_gelu),
        init_random=functools.partial(_init_random, model_name, quick_gelu),
        pretrained=PretrainedCfg(files=hf_weights_files(hf_hub), source=source,
                                 license="MIT (OpenAI CLIP)" if tag == "openai" else "see the hub model card"),
        input_size=input_size,
        default_resize="clean",
        outputs=("image_embeds",),
        description=f"CLIP {model_name} ({tag}) via open_clip: image and text embeddings",
        weights_target=lambda m: m.clip,
        backbone_class=ClipBackbone,
        center_crop=_RESIZE_MODES[resize_mode],
        model_name=model_name, tag=tag, mean=mean, std=std, interpolation=interpolation,
        resize_mode=resize_mode, quick_gelu=quick_gelu,
    )


@functools.cache
def resolve_clip_family(rest: str) -> ClipSpec:
    """The spec of ``"clip:<model>/<tag>"`` from open_clip's own model and pretrained configs."""
    import open_clip

    model_name, _, tag = rest.partition("/")
    if model_name not in open_clip.list_models():
        raise UnknownNameError("open_clip model", model_name, open_clip.list_models())
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    if not tag or not open_clip.is_pretrained_cfg(model_name, tag):
        raise UnknownNameError("backbone", f"clip:{rest}", [f"clip:{model_name}/{t}" for t in tags])
    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    model_cfg = open_clip.get_model_config(model_name)
    size = model_cfg["vision_cfg"]["image_size"]
    size = (size, size) if isinstance(size, int) else tuple(size)
    return clip_spec(
        f"clip:{rest}", model_name, tag, hf_hub=cfg["hf_hub"], openai_url=cfg.get("url", ""),
        mean=cfg.get("mean", OPENAI_MEAN), std=cfg.get("std", OPENAI_STD),
        interpolation=cfg.get("interpolation", "bicubic"), resize_mode=cfg.get("resize_mode", "shortest"),
        quick_gelu=bool(cfg.get("quick_gelu", False) or model_cfg.get("quick_gelu", False)), input_size=size,
    )


# The two named backbones are spelled out (rather than asked of open_clip) so that listing the
# registry does not import torch; tests check these values against open_clip's configs.
CLIP_VIT_B_32 = register_backbone(clip_spec(
    "clip-vit-b-32", "ViT-B-32", "openai", hf_hub="timm/vit_base_patch32_clip_224.openai/",
    openai_url="https://openaipublic.azureedge.net/clip/models/"
               "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
    quick_gelu=True, input_size=(224, 224),
))
CLIP_VIT_L_14_336 = register_backbone(clip_spec(
    "clip-vit-l-14-336", "ViT-L-14-336", "openai", hf_hub="timm/vit_large_patch14_clip_336.openai/",
    openai_url="https://openaipublic.azureedge.net/clip/models/"
               "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt",
    quick_gelu=True, input_size=(336, 336),
))
register_backbone_family("clip", resolve_clip_family, help="clip:<open_clip model>/<pretrained tag>")
