"""DreamSim against the ``dreamsim`` package (0.2.1) on the same weights, built and saved to files here.

DreamSim's release (a zip of converted base weights and PEFT LoRA adapters) and DINO's weights
cannot be downloaded here, so this module builds a release in DreamSim's own layout from seeded
random weights of the real architectures: the CLIP/OpenCLIP vision towers are open_clip models
converted to the layout ``dreamsim`` reads (DINO's ViT class, ``pos_drop`` as ln_pre, plus
``proj``), the DINO branch is timm's DINO ViT-B/16 in DINO's key layout, and the LoRA adapters are
written by PEFT itself (``get_peft_model`` on ``dreamsim``'s ``PerceptualModel``, random A and B,
``save_pretrained``) with the training configuration of the DreamSim repository. The reference is
the installed ``dreamsim`` package driven end to end (``dreamsim.dreamsim(pretrained=True,
cache_dir=...)``: its file checks, ``PerceptualModel``, PEFT's ``from_pretrained``, its
normalisation and distance); only its ``torch.hub.load`` of DINO's GitHub repository is replaced by
the same construction DINO's ``hubconf`` performs (``vit_base(patch_size=16)`` from ``dreamsim``'s
copy of DINO's ``vision_transformer``, loaded strictly with the same DINO weights).

Every number is UNCALIBRATED (random weights): the tests compare implementations, not values.
"""

from __future__ import annotations

import json
import os
import zipfile

import pytest
import torch

import pytest_i2i
from pytest_i2i.errors import I2IInputError
from pytest_i2i.images import sample_images

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.filterwarnings("ignore::FutureWarning")]

SLOW = pytest.mark.skipif(os.environ.get("I2I_TEST_SLOW") != "1", reason="slow: set I2I_TEST_SLOW=1")
LORA = {"r": 16, "lora_alpha": 8, "lora_dropout": 0.3, "bias": "none", "target_modules": ["qkv"]}
TAGS = {"ensemble": "ensemble_", "dino_vitb16": "dino_vitb16_single_", "clip_vitb32": "clip_vitb32_single_",
        "open_clip_vitb32": "open_clip_vitb32_single_"}
MODELS = {"ensemble": ("dino_vitb16", "clip_vitb16", "open_clip_vitb16"), "dino_vitb16": ("dino_vitb16",),
          "clip_vitb32": ("clip_vitb32",), "open_clip_vitb32": ("open_clip_vitb32",)}


def _dino_layout(visual: torch.nn.Module) -> dict[str, torch.Tensor]:
    """An open_clip vision tower in the layout of dreamsim's ``<model>_pretrain.pth.tar`` files."""
    sd = visual.state_dict()
    out = {"cls_token": sd["class_embedding"].reshape(1, 1, -1), "pos_embed": sd["positional_embedding"][None],
           "patch_embed.proj.weight": sd["conv1.weight"],
           "patch_embed.proj.bias": torch.zeros(sd["conv1.weight"].shape[0]),
           "pos_drop.weight": sd["ln_pre.weight"], "pos_drop.bias": sd["ln_pre.bias"],
           "norm.weight": sd["ln_post.weight"], "norm.bias": sd["ln_post.bias"], "proj": sd["proj"]}
    names = {"ln_1": "norm1", "ln_2": "norm2", "attn.in_proj_weight": "attn.qkv.weight",
             "attn.in_proj_bias": "attn.qkv.bias", "attn.out_proj": "attn.proj", "mlp.c_fc": "mlp.fc1",
             "mlp.c_proj": "mlp.fc2"}
    for key, v in sd.items():
        if key.startswith("transformer.resblocks."):
            i, rest = key.removeprefix("transformer.resblocks.").split(".", 1)
            for src, dst in names.items():
                if rest == src or rest.startswith(src + "."):
                    out[f"blocks.{i}.{dst}{rest[len(src):]}"] = v
                    break
            else:
                raise AssertionError(key)
    return out


def _clip_tower(model_name: str, quick_gelu: bool, seed: int) -> torch.nn.Module:
    import open_clip

    torch.manual_seed(seed)
    visual = open_clip.create_model(model_name, pretrained=None, force_quick_gelu=quick_gelu).visual
    with torch.no_grad():  # open_clip zero-initialises nothing that matters here; perturb the norms too
        for name, p in visual.named_parameters():
            if name.endswith("weight") and p.ndim == 1:
                p.add_(0.1 * torch.randn_like(p))
    return visual


def _hub_load(dino_state):
    def load(repo, model, *args, **kwargs):  # what DINO's hubconf.dino_vitb16 builds, without GitHub
        from dreamsim.feature_extraction.vision_transformer import vit_base

        assert (repo, model) == ("facebookresearch/dino:main", "dino_vitb16")
        vit = vit_base(patch_size=16, num_classes=0)
        vit.load_state_dict(dino_state, strict=True)
        return vit

    return load


def build_release(root, variant: str, monkeypatch) -> dict:
    """A DreamSim release of ``variant`` in the package's layout, from seeded random weights."""
    import timm
    from dreamsim.config import dreamsim_args
    from dreamsim.model import PerceptualModel
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file

    cache = root / f"cache_{variant}"
    weights_dir = root / "weights"
    cache.mkdir()
    weights_dir.mkdir(exist_ok=True)
    dino_state = None
    for k, model_type in enumerate(MODELS[variant]):
        if model_type == "dino_vitb16":
            torch.manual_seed(100)
            vit = timm.create_model("vit_base_patch16_224.dino", pretrained=False)
            with torch.no_grad():
                for name, p in vit.named_parameters():
                    if name in ("cls_token", "pos_embed"):
                        p.normal_(0, 0.02)
                    elif p.ndim == 1 and name.endswith("weight"):
                        p.add_(0.1 * torch.randn_like(p))
            dino_state = {k2: v.contiguous() for k2, v in vit.state_dict().items()}
            save_file(dino_state, str(weights_dir / "vit_base_patch16_224.dino.safetensors"))  # dino-vitb16's name
            head = {f"module.head.mlp.{i}.{p}": torch.zeros(shape) for i, (w, b) in
                    ((0, ((2048, 768), (2048,))), (2, ((2048, 2048), (2048,))), (4, ((256, 2048), (256,))))
                    for p, shape in (("weight", w), ("bias", b))}
            head["module.head.last_layer.weight"] = torch.zeros(2048, 256)
            torch.save({"student": head}, cache / "dino_vitb16_pretrain.pth")
        else:
            patch = int(model_type[-2:])
            quick = not model_type.startswith("open_clip")
            visual = _clip_tower(f"ViT-B-{patch}", quick, seed=200 + k)
            torch.save({"state_dict": _dino_layout(visual)}, cache / f"{model_type}_pretrain.pth.tar")
    if dino_state is not None:
        monkeypatch.setattr(torch.hub, "load", _hub_load(dino_state))

    cfg = dreamsim_args["model_config"][variant]
    base = PerceptualModel(**cfg, device="cpu", load_dir=str(cache), normalize_embeds=True)
    peft_model = get_peft_model(base, LoraConfig(**LORA))
    g = torch.Generator().manual_seed(300)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_A" in name:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
            elif "lora_B" in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
    lora_dir = cache / f"{TAGS[variant]}lora"
    peft_model.save_pretrained(str(lora_dir))
    zip_path = root / f"dreamsim_{variant}_checkpoint.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        for f in sorted(cache.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(cache).as_posix())
    return {"zip": zip_path, "cache": cache, "weights_dir": weights_dir}


def _reference(release, variant):
    from dreamsim import dreamsim

    model, _ = dreamsim(pretrained=True, device="cpu", cache_dir=str(release["cache"]), dreamsim_type=variant)
    return model


@pytest.fixture(scope="module")
def pairs():
    photos = sample_images(224)
    x = torch.stack([photos[i] for i in range(len(photos))])
    a = torch.stack([x[0], x[1], x[2]])
    b = torch.stack([x[3], (x[1] * 0.6 + 0.3).clamp(0, 1), 0.5 * x[2] + 0.5 * x[5]])
    return a, b


def _check_variant(variant, tmp_path, monkeypatch, pairs):
    release = build_release(tmp_path, variant, monkeypatch)
    monkeypatch.setenv("I2I_WEIGHTS_DIR", str(release["weights_dir"]))
    a, b = pairs
    ours = pytest_i2i.dreamsim(a, b, variant=variant, weights=release["zip"], batch_size=2)
    ref = _reference(release, variant)
    with torch.no_grad():
        expected = torch.cat([ref(a[i:i + 1], b[i:i + 1]).flatten() for i in range(len(a))]).double()
        embed = ref.embed(a)
    got = torch.tensor(ours.per_sample, dtype=torch.float64)
    assert expected.min() > 1e-3, expected  # the pairs differ: a meaningful comparison
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert ours.calibrated is False and ours.extra["variant"] == variant
    assert ours.backbone == f"dreamsim-{variant.replace('_', '-')}"
    with torch.no_grad(), ref.disable_adapter():  # the adapters matter: without them the distances change
        base = torch.cat([ref(a[i:i + 1], b[i:i + 1]).flatten() for i in range(len(a))]).double()
    assert (base - expected).abs().max() > 1e-3

    # the embeddings themselves (before DreamSim's centring): the concatenated branch features
    from pytest_i2i.metrics.functional.perceptual import _center_unit

    bb = pytest_i2i.backbone(ours.backbone, weights=release["zip"])
    torch.testing.assert_close(_center_unit(bb(a)["embedding"]), embed, rtol=1e-4, atol=1e-5)
    return release


def test_clip_branch_equals_the_dreamsim_package(tmp_path, monkeypatch, pairs):
    _check_variant("clip_vitb32", tmp_path, monkeypatch, pairs)


@pytest.mark.slow
@SLOW
def test_open_clip_branch_equals_the_dreamsim_package(tmp_path, monkeypatch, pairs):
    _check_variant("open_clip_vitb32", tmp_path, monkeypatch, pairs)


@pytest.mark.slow
@SLOW
def test_dino_branch_equals_the_dreamsim_package(tmp_path, monkeypatch, pairs):
    _check_variant("dino_vitb16", tmp_path, monkeypatch, pairs)


@pytest.mark.slow
@SLOW
def test_ensemble_equals_the_dreamsim_package(tmp_path, monkeypatch, pairs):
    release = _check_variant("ensemble", tmp_path, monkeypatch, pairs)
    monkeypatch.setenv("I2I_WEIGHTS_DIR", str(tmp_path / "empty"))
    from pytest_i2i.errors import WeightsNotFound

    with pytest.raises(WeightsNotFound, match="dino"):  # the DINO base is a separate file, named
        pytest_i2i.dreamsim(*pairs, weights=release["zip"])


def test_release_files_that_do_not_fit_are_refused(tmp_path):
    from pytest_i2i.backbones.dreamsim_model import clip_from_dino_layout, read_lora
    from pytest_i2i.errors import CheckpointError

    with pytest.raises(I2IInputError, match="not supported"):
        read_lora({**LORA, "use_dora": True}, {}, "x")
    with pytest.raises(I2IInputError, match="target_modules"):
        read_lora({**LORA, "target_modules": ["qkv", "proj"]}, {}, "x")
    with pytest.raises(I2IInputError, match="unexpected adapter key"):
        read_lora(LORA, {"base_model.model.mlp.fc1.weight": torch.zeros(1)}, "x")
    with pytest.raises(I2IInputError, match="lora_A only"):
        read_lora(LORA, {"base_model.model.extractor_list.0.model.blocks.0.attn.qkv.lora_A.weight": torch.zeros(1)},
                  "x")
    with pytest.raises(I2IInputError, match="bias is not zero"):
        clip_from_dino_layout({"patch_embed.proj.bias": torch.ones(3), "proj": torch.zeros(1)}, "x")
    (tmp_path / "dreamsim_clip_vitb32_checkpoint.zip").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="zip"):
        pytest_i2i.dreamsim(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), variant="clip_vitb32",
                            weights=tmp_path / "dreamsim_clip_vitb32_checkpoint.zip")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("clip_vitb32_single_lora/adapter_config.json", json.dumps(LORA))
    with pytest.raises(I2IInputError, match="has no clip_vitb32_pretrain.pth.tar"):
        pytest_i2i.dreamsim(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), variant="clip_vitb32",
                            weights=tmp_path / "other.zip")
    from pytest_i2i.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="ensemble"):
        pytest_i2i.dreamsim(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), variant="vitl14", weights="random")
    with pytest.raises(I2IInputError, match="embedding"):
        pytest_i2i.dreamsim(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), backbone="dino-vits16",
                            weights="random")
