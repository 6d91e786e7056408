"""Hugging Face diffusers pipelines as generators (``diffusers:PATH_OR_HUB_ID``), offline.

The pipelines here are tiny and synthetic: a UNet with 8 input channels (InstructPix2Pix) or 4
(img2img), a VAE and a CLIP text encoder built from configs with seeded random weights, and a
byte-level BPE tokenizer whose vocabulary and merges this file writes. They are saved with
``save_pretrained`` (safetensors) and loaded through ``load_generator``, the ``i2i`` CLI and the
pytest plugin. Outputs are compared exactly with the same pipeline called directly through
diffusers with the same per-sample seeds. Nothing is downloaded (``HF_HUB_OFFLINE=1`` where a hub
id is resolved, against a Hugging Face cache laid out by the test).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

from pytest_i2i.errors import (  # noqa: E402
    I2IInputError,
    MissingDependencyError,
    UnknownNameError,
    UntrustedCheckpointError,
)
from pytest_i2i.generators import generate, generator_key, load_generator, prompt_field, sample_seed  # noqa: E402

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    # diffusers' Euler schedulers call np.array(tensor, copy=False), which numpy 2 flags; not ours to fix
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]
ROOT = Path(__file__).resolve().parents[1]
STEPS = {"num_inference_steps": "2"}


def _byte_alphabet() -> list[str]:
    """The 256 printable stand-ins of byte-level BPE: printable Latin-1 bytes as themselves, the
    others shifted past 255 in byte order."""
    keep = set(range(33, 127)) | set(range(161, 173)) | set(range(174, 256))
    out, shift = [], 0
    for b in range(256):
        if b in keep:
            out.append(chr(b))
        else:
            out.append(chr(256 + shift))
            shift += 1
    return out


def write_tokenizer_files(folder: Path) -> tuple[Path, Path, int]:
    """A CLIP-style vocabulary (every byte, alone and word-final) with a few merges (synthetic)."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = _byte_alphabet()
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    merges = [("c", "o"), ("co", "l"), ("t", "h"), ("th", "e</w>"), ("p", "h"), ("o", "to</w>")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab["to</w>"] = vocab.get("to</w>", len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    return folder / "vocab.json", folder / "merges.txt", len(vocab)


def build_pipeline(kind: str, folder: Path, work: Path) -> Path:
    """A tiny pipeline of ``kind`` ("ip2p" or "img2img") with seeded random weights, saved to ``folder``."""
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionImg2ImgPipeline,
        StableDiffusionInstructPix2PixPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab, merges, n_vocab = write_tokenizer_files(work / f"tok_{kind}")
    tokenizer = CLIPTokenizer(str(vocab), str(merges), model_max_length=16)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=8 if kind == "ip2p" else 4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16, norm_num_groups=4,
        attention_head_dim=4)
    vae = AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, layers_per_block=1)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=n_vocab, hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
        max_position_embeddings=16, projection_dim=16, bos_token_id=n_vocab - 2, eos_token_id=n_vocab - 1,
        pad_token_id=n_vocab - 1))
    scheduler = EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                 steps_offset=1)
    cls = StableDiffusionInstructPix2PixPipeline if kind == "ip2p" else StableDiffusionImg2ImgPipeline
    pipe = cls(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
               safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipelines")
    return {kind: build_pipeline(kind, root / kind, root) for kind in ("ip2p", "img2img")}


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """The built-in colorization set at 32x32, first 3 samples, as a dataset folder (synthetic inputs)."""
    from PIL import Image

    from pytest_i2i.data.samples import sample_dataset

    root = tmp_path_factory.mktemp("data")
    (root / "inputs").mkdir()
    (root / "targets").mkdir()
    rows = []
    for sample in list(sample_dataset(32))[:3]:
        Image.fromarray(sample.input).save(root / "inputs" / f"{sample.uid}.png")
        Image.fromarray(sample.target).save(root / "targets" / f"{sample.uid}.png")
        rows.append({"uid": sample.uid, "instruction": sample.instruction, "source_caption": sample.source_caption,
                     "target_caption": sample.target_caption})
    (root / "texts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def photos(n: int = 3, size: int = 32) -> torch.Tensor:
    from pytest_i2i.images.samples import sample_images

    imgs = sample_images(size)
    return torch.stack([imgs[i] for i in range(n)])


def direct(folder: Path, cls_name: str, images, texts, names, seed=0, **call) -> torch.Tensor:
    """The reference: the pipeline called through diffusers itself, one sample per call, each with a
    CPU torch.Generator seeded with sample_seed(seed, name)."""
    pipe = getattr(diffusers, cls_name).from_pretrained(str(folder), safety_checker=None, feature_extractor=None,
                                                        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    outs = []
    for i, name in enumerate(names):
        g = torch.Generator("cpu").manual_seed(sample_seed(seed, name))
        outs.append(pipe(prompt=texts[i], image=images[i:i + 1], generator=[g], output_type="pt", **call).images)
    return torch.cat(outs).float()


# ----------------------------------------------------------------------------------------------
# loading and generating
# ----------------------------------------------------------------------------------------------
def test_instruct_pix2pix_equals_diffusers_called_directly(pipelines):
    x, texts, names = photos(), ["make it red", "colorize this photo", "the cat"], ["u1", "u2", "u3"]
    gen = load_generator(f"diffusers:{pipelines['ip2p']}",
                         generator_options={**STEPS, "image_guidance_scale": "1.2", "guidance_scale": "5"})
    assert (gen.kind, gen.arch, gen.text_field) == ("diffusers", "StableDiffusionInstructPix2PixPipeline",
                                                    "instruction")
    assert gen.options == {"num_inference_steps": 2, "image_guidance_scale": 1.2, "guidance_scale": 5.0}
    out = gen(x, texts, names=names)
    ref = direct(pipelines["ip2p"], "StableDiffusionInstructPix2PixPipeline", x, texts, names,
                 num_inference_steps=2, image_guidance_scale=1.2, guidance_scale=5.0)
    assert out.shape == (3, 3, 32, 32) and torch.equal(out, ref)
    # per-sample seeds: independent of batch composition and order, bitwise; different per sample
    assert torch.equal(gen(x[[2, 0]], [texts[2], texts[0]], names=["u3", "u1"]), out[[2, 0]])
    assert not torch.equal(gen(x[:1], texts[:1], names=["other"]), out[:1])
    result = generate(gen, x, texts=texts, batch_size=2)  # names "image_0"... from the tensor set
    assert not result.errors and len(result.ok_indices) == 3
    assert gen.provenance()["options"]["num_inference_steps"] == 2


def test_img2img_takes_the_target_caption_and_its_own_options(pipelines):
    spec = f"diffusers:{pipelines['img2img']}"
    assert prompt_field(spec) == "target_caption"
    assert prompt_field(spec, {"prompt_field": "instruction"}) == "instruction"
    gen = load_generator(spec, generator_options={**STEPS, "strength": "0.6", "negative_prompt": "blurry"})
    assert gen.text_field == "target_caption" and gen.arch == "StableDiffusionImg2ImgPipeline"
    x, texts, names = photos(2), ["a color photo", "a painting"], ["a", "b"]
    ref = direct(pipelines["img2img"], "StableDiffusionImg2ImgPipeline", x, texts, names, num_inference_steps=2,
                 strength=0.6, negative_prompt="blurry")
    assert torch.equal(gen(x, texts, names=names), ref)
    with pytest.raises(UnknownNameError, match="image_guidance_scale") as info:
        load_generator(spec, generator_options={"image_guidance_scale": "1.5"})
    assert "strength" in str(info.value) and "num_inference_steps" in str(info.value)  # the valid ones


def test_output_size_and_inputs_off_the_scale_factor(pipelines):
    spec = f"diffusers:{pipelines['ip2p']}"
    gen = load_generator(spec, generator_options={**STEPS, "height": "24", "width": "16"})
    assert gen(photos(1), ["x"]).shape == (1, 3, 24, 16)
    odd = torch.rand(1, 3, 33, 31, generator=torch.Generator().manual_seed(0))
    plain = load_generator(spec, generator_options=STEPS)
    assert plain(odd, ["x"]).shape == (1, 3, 33, 31)  # generated at 32x30, resized back
    assert any("resized back" in w for w in plain.warnings)
    for bad, match in (({"height": "24"}, "both height and width"), ({"height": "25", "width": "16"}, "multiple of 2"),
                       ({"num_inference_steps": "many"}, "not an integer"), ({"torch_dtype": "int8"}, "float16")):
        with pytest.raises(I2IInputError, match=match):
            load_generator(spec, generator_options={**STEPS, **bad})
    with pytest.raises(I2IInputError, match="train"):
        load_generator(spec, mode="train")
    with pytest.raises(I2IInputError, match="architecture options"):
        load_generator(spec, arch_kwargs={"ngf": 8})


def test_pickle_weights_need_trust(pipelines, tmp_path):
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(pipelines["ip2p"], folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(str(weights)), folder / "unet" / "diffusion_pytorch_model.bin")
    weights.unlink()
    with pytest.raises(UntrustedCheckpointError, match=r"unet.*diffusion_pytorch_model\.bin.*--i2i-trust-checkpoint"):
        load_generator(f"diffusers:{folder}", generator_options=STEPS)
    with pytest.raises(UntrustedCheckpointError):
        generator_key(f"diffusers:{folder}")
    gen = load_generator(f"diffusers:{folder}", generator_options=STEPS, trust=True)
    assert gen.trusted
    ref = load_generator(f"diffusers:{pipelines['ip2p']}", generator_options=STEPS)
    assert torch.equal(gen(photos(1), ["x"], names=["a"]), ref(photos(1), ["x"], names=["a"]))


def test_bad_specs_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(I2IInputError, match="no model_index.json"):
        load_generator(f"diffusers:{tmp_path / 'empty'}")
    with pytest.raises(I2IInputError, match="neither an existing folder nor a Hugging Face hub id"):
        load_generator("diffusers:./no/such/dir/x")
    with pytest.raises(I2IInputError, match="give a pipeline folder"):
        load_generator("diffusers:")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model_index.json").write_text(json.dumps(
        {"_class_name": "StableDiffusionInstructPix2PixPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}))
    with pytest.raises(I2IInputError, match="component folder unet/ is missing"):
        load_generator(f"diffusers:{tmp_path / 'half'}")


# ----------------------------------------------------------------------------------------------
# cache keys and the Hugging Face cache
# ----------------------------------------------------------------------------------------------
def test_cache_key_holds_every_weights_hash_the_options_and_the_seed(pipelines, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(pipelines["ip2p"], folder)
    spec = f"diffusers:{folder}"
    base = generator_key(spec, generator_options=STEPS)
    assert base["pipeline_class"] == "StableDiffusionInstructPix2PixPipeline"
    assert base["generator_options"] == {"num_inference_steps": 2} and base["seed"] == 0
    assert generator_key(spec, generator_options=STEPS) == base
    assert generator_key(spec, generator_options={"num_inference_steps": "3"}) != base
    assert generator_key(spec, generator_options=STEPS, seed=1) != base
    hashed = []
    for part in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                 "text_encoder/model.safetensors", "scheduler/scheduler_config.json"):
        f = folder / part
        data = bytearray(f.read_bytes())
        data[-1] ^= 1 if f.suffix == ".safetensors" else 0
        f.write_bytes(bytes(data) + (b" " if f.suffix == ".json" else b""))
        hashed.append(generator_key(spec, generator_options=STEPS)["pipeline_sha256"])
    assert len({base["pipeline_sha256"], *hashed}) == 5  # each file is part of the identity


def test_outputs_are_cached_and_the_generator_not_loaded_again(pipelines, tmp_path):
    from pytest_i2i.generators.caching import cached_generate
    from pytest_i2i.cache.store import Store

    store = Store(tmp_path / "cache", 10**9)
    spec = f"diffusers:{pipelines['ip2p']}"
    key = generator_key(spec, generator_options=STEPS, hasher=store.file_sha256)
    loads = []

    def load():
        loads.append(1)
        return load_generator(spec, generator_options=STEPS)

    x, texts = photos(), ["a", "b", "c"]
    first, _ = cached_generate(x, texts, load=load, options=key, store=store)
    second, provenance = cached_generate(x, texts, load=load, options=key, store=store)
    assert len(loads) == 1 and provenance["kind"] == "diffusers"
    assert all(torch.equal(a, b) for a, b in zip(first.outputs, second.outputs))
    # a partial rerun (one new text) generates only that sample, and the others stay bitwise equal
    third, _ = cached_generate(x, ["a", "b", "changed"], load=load, options=key, store=store)
    assert len(loads) == 2 and torch.equal(third.outputs[0], first.outputs[0])
    assert not torch.equal(third.outputs[2], first.outputs[2])


def test_hub_id_from_the_hugging_face_cache_offline(pipelines, tmp_path, monkeypatch):
    cache = tmp_path / "hf"
    repo = cache / "models--tiny-org--tiny-ip2p"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(pipelines["ip2p"], snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    gen = load_generator("diffusers:tiny-org/tiny-ip2p", generator_options=STEPS)
    local = load_generator(f"diffusers:{pipelines['ip2p']}", generator_options=STEPS)
    assert gen.sha256 == local.sha256
    assert torch.equal(gen(photos(1), ["x"], names=["a"]), local(photos(1), ["x"], names=["a"]))
    assert generator_key("diffusers:tiny-org/tiny-ip2p")["pipeline_sha256"] == local.sha256
    with pytest.raises(I2IInputError, match="no local folder of that name, and not found in the Hugging Face cache"):
        load_generator("diffusers:tiny-org/not-cached")


def test_without_diffusers_the_error_names_the_extra(pipelines, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # `import diffusers` now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'pytest-i2i\[diffusers\]'"):
        load_generator(f"diffusers:{pipelines['ip2p']}")
    monkeypatch.setitem(sys.modules, "diffusers", diffusers)
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError, match=r"pytest-i2i\[diffusers\]"):
        load_generator(f"diffusers:{pipelines['ip2p']}")


def test_extra_is_declared():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {re_name(r) for r in extras["diffusers"]}
    assert {"diffusers", "transformers", "safetensors"} <= names


def re_name(requirement: str) -> str:
    import re

    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


# ----------------------------------------------------------------------------------------------
# the CLI and the plugin, end to end
# ----------------------------------------------------------------------------------------------
def test_cli_generate(pipelines, small_data, tmp_path, capsys):
    from pytest_i2i.cli import main

    out = tmp_path / "out"
    spec = f"diffusers:{pipelines['img2img']}"
    assert main(["generate", spec, str(out), "--data", str(small_data), "--generator-option", "num_inference_steps=2",
                 "--generator-option", "strength=0.5"]) == 0
    assert len(list(out.glob("*.png"))) == 3 and "wrote 3 of 3" in capsys.readouterr().out
    assert main(["generate", spec, str(out), "--data", str(small_data), "--generator-option",
                 "image_guidance_scale=2"]) == 2
    assert "image_guidance_scale" in capsys.readouterr().err
    assert main(["generate", spec, str(out), "--data", str(small_data), "--generator-option", "steps"]) == 2
    assert "--generator-option: 'steps' is not KEY=VALUE" in capsys.readouterr().err


def _offline_env(tmp_path: Path) -> dict[str, str]:
    import os

    # one intra-op thread: tiny models on a shared CPU only lose time to thread contention (see one_torch_thread)
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "I2I_OFFLINE": "1",
            "TORCH_HOME": str(tmp_path / "torch"), "HF_HUB_CACHE": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def clip_weights_dir(tmp_path_factory):
    """Seeded random weights (N(0, 0.02), float16: synthetic, uncalibrated) of every tensor of the
    clip-vit-b-32 architecture, in a file given to the plugin with ``--i2i-weights`` (a file under the
    published name in a weights dir would be refused: its content is not the published one). The
    shapes come from open_clip's model built on the meta device (no memory, no initialisation)."""
    import open_clip
    from safetensors.torch import save_file


    folder = tmp_path_factory.mktemp("clip_weights")
    shapes = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True, device="meta").state_dict()
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.randn(v.shape, generator=g) * 0.02).to(torch.float16) for k, v in shapes.items()}
    save_file(state, str(folder / "random_clip_vit_b_32.safetensors"))
    return folder / "random_clip_vit_b_32.safetensors"


def test_model_suite_end_to_end_with_clip_direction(pipelines, clip_weights_dir, small_data, pytester, monkeypatch,
                                                    tmp_path):
    for key, value in _offline_env(tmp_path).items():
        if key != "PYTHONPATH":
            monkeypatch.setenv(key, value)
    shutil.copy(ROOT / "suites" / "model" / "test_model.py", pytester.path / "test_model.py")
    pytester.makepyprojecttoml("""
        [tool.i2i.thresholds]
        ssim = -1.0
        clip_direction = -1.0
        clip_image = -1.0
    """)
    report = tmp_path / "report"
    # a subprocess, as for every plugin run: in-process, pytester drops the modules the run imported
    # afterwards, and their registrations (backbones, metrics) would be made twice by later imports
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-rs", f"--i2i-data={small_data}", f"--i2i-model=diffusers:{pipelines['ip2p']}",
        "--i2i-generator-option=num_inference_steps=2", "--i2i-generator-option", "image_guidance_scale=1.5",
        f"--i2i-weights=clip-vit-b-32={clip_weights_dir}", f"--i2i-report={report}", f"--i2i-cache-dir={tmp_path / 'c'}")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) == 0, result.stdout.str()
    assert outcomes["passed"] >= 5, result.stdout.str()  # validity, determinism, ssim, clip_image, clip_direction
    result.stdout.fnmatch_lines(["*test_instruction_following*clip_direction*>= -1*pass*"])
    data = json.loads((report / "i2i-report.json").read_text())
    by_name = {m["result"]["name"]: m for m in data["metrics"]}
    assert by_name["clip_direction"]["result"]["n"] == 3 and by_name["clip_direction"]["outcome"] == "passed"
    assert data["session"]["model"]["kind"] == "diffusers"
