"""CLIP backbones and metrics (clip_text, clip_image, clip_direction, cmmd) against direct formulas.

A seeded random-init open_clip ViT-B-32 (the real architecture, QuickGELU as OpenAI's weights
need) is built here with open_clip itself, saved as a safetensors file and loaded back through
``pytest_i2i.backbone("clip-vit-b-32", weights=path)``. Each metric is compared with its formula
computed in the test on that open_clip model (``encode_image`` / ``encode_text``, open_clip's
tokenizer and config, the same crop + resize): agreement to 1e-6. Nothing is downloaded: the
caches point into tmp and network access fails the test.
"""

from __future__ import annotations

import functools
import socket
from types import SimpleNamespace

import numpy as np
import open_clip
import pytest
import torch

import pytest_i2i
from pytest_i2i.backbones import factory
from pytest_i2i.backbones.clip import ClipBackbone, resolve_clip_family
from pytest_i2i.backbones.registry import get_spec
from pytest_i2i.backbones.weights import HF_PUBLISHED
from pytest_i2i.errors import I2IInputError, UnknownNameError, WeightsHashMismatch, WeightsNotFound
from pytest_i2i.images import sample_images
from pytest_i2i.images.prepare import center_crop_to_aspect
from pytest_i2i.images.resize import resize_batch
from pytest_i2i.result import UNCALIBRATED_WARNING

MODEL, TAG, SEED = "ViT-B-32", "openai", 1234
CFG = open_clip.get_pretrained_cfg(MODEL, TAG)
SIZE = (224, 224)
TEXTS = ["an astronaut in a white suit", "a cat", "a cup of coffee on a table", "a photo of deep space"]
TOL = 1e-6


@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory):
    """Empty torch / HF caches in tmp, no weights dir, and any download or connection fails."""
    root = tmp_path_factory.mktemp("caches")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(root / "torch_home"))
        mp.setenv("HF_HUB_CACHE", str(root / "hf_cache"))
        for var in ("I2I_WEIGHTS_DIR", "I2I_ALLOW_DOWNLOAD", "HF_HOME", "XDG_CACHE_HOME"):
            mp.delenv(var, raising=False)
        mp.setattr(torch.hub, "download_url_to_file", lambda url, *a, **k: pytest.fail(f"download of {url}"))
        mp.setattr(socket.socket, "connect", lambda self, addr, *a, **k: pytest.fail(f"connection to {addr}"))
        yield root
    for key in [k for k in factory._LOADED if str(k[0]).startswith("clip")]:
        del factory._LOADED[key]


def open_clip_model(quick_gelu: bool, seed: int = SEED) -> torch.nn.Module:
    torch.manual_seed(seed)
    return open_clip.create_model(MODEL, pretrained=None, force_quick_gelu=quick_gelu).eval()


@pytest.fixture(scope="module")
def ref():
    """The open_clip model the direct formulas run on (random init, OpenAI's QuickGELU variant)."""
    assert CFG["quick_gelu"] is True
    return open_clip_model(quick_gelu=True)


@pytest.fixture(scope="module")
def weights_file(ref, tmp_path_factory):
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("clip") / "random_clip_vit_b_32.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def bb(weights_file):
    return pytest_i2i.backbone("clip-vit-b-32", weights=weights_file)


@pytest.fixture(scope="module")
def photos():
    """4 bundled photos at 64x64, as an ImageSet and as an (N, 3, 64, 64) tensor."""
    imgs = sample_images(64)[:4]
    return imgs, torch.stack([imgs[i] for i in range(len(imgs))])


@pytest.fixture(scope="module")
def other_photos():
    imgs = sample_images(64)[4:8]
    return torch.stack([imgs[i] for i in range(len(imgs))])


@pytest.fixture(scope="module")
def direct(ref, photos, other_photos):
    """Reference image embeddings of the photos and the other photos, computed once."""
    return image_embeds(ref, photos[1]), image_embeds(ref, other_photos)


# ----------------------------------------------------------------------------------------------
# the direct formulas, on the open_clip model itself
# ----------------------------------------------------------------------------------------------


def preprocess(images: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """open_clip's 'shortest' preprocessing: centre crop, bicubic resize ('clean'), mean/std."""
    x = torch.stack([resize_batch(center_crop_to_aspect(img, SIZE)[None], SIZE, "clean")[0] for img in images])
    mean = torch.tensor(CFG["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(CFG["std"]).view(1, 3, 1, 1)
    return (x - mean) / std


def image_embeds(model, images) -> torch.Tensor:
    with torch.no_grad():
        return model.encode_image(preprocess(images)).double()


@functools.cache
def tokenizer():
    return open_clip.get_tokenizer(MODEL)


_TEXT_EMBEDS: dict[str, torch.Tensor] = {}


def text_embeds(model, texts: list[str]) -> torch.Tensor:
    """open_clip text embeddings of ``texts`` on the reference model (each string encoded once here too)."""
    missing = [t for t in dict.fromkeys(texts) if t not in _TEXT_EMBEDS]
    if missing:
        with torch.no_grad():
            _TEXT_EMBEDS.update(zip(missing, model.encode_text(tokenizer()(missing)).double()))
    return torch.stack([_TEXT_EMBEDS[t] for t in texts])


def unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True)


def cos(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return (unit(a) * unit(b)).sum(dim=1).numpy()


# ----------------------------------------------------------------------------------------------
# backbones
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, model, tag", [("clip-vit-b-32", "ViT-B-32", "openai"),
                                              ("clip-vit-l-14-336", "ViT-L-14-336", "openai")])
def test_named_backbones_follow_open_clip_configs(name, model, tag):
    spec, cfg = get_spec(name), open_clip.get_pretrained_cfg(model, tag)
    size = open_clip.get_model_config(model)["vision_cfg"]["image_size"]
    assert (spec.model_name, spec.tag, spec.input_size) == (model, tag, (size, size))
    assert spec.mean == pytest.approx(cfg["mean"]) and spec.std == pytest.approx(cfg["std"])
    assert spec.quick_gelu is cfg["quick_gelu"] is True
    assert spec.center_crop is (cfg["resize_mode"] == "shortest") is True
    repo = cfg["hf_hub"].rstrip("/")
    assert [(f.hf_hub_id, f.hf_filename, f.sha256) for f in spec.pretrained.files] == [
        (repo, n, HF_PUBLISHED.get((repo, n), (None,))[0])
        for n in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")]
    assert spec.pretrained.files[0].sha256 is not None  # the preferred file's sha256 is pinned
    assert cfg["url"].split("/")[-2] in spec.pretrained.source  # OpenAI's TorchScript file: named, not accepted
    assert not any(f.filename.endswith(".pt") for f in spec.pretrained.files)
    family = resolve_clip_family(f"{model}/{tag}")
    fields = ("input_size", "mean", "std", "quick_gelu", "center_crop", "resize_mode", "interpolation", "pretrained")
    assert [getattr(family, f) for f in fields] == [getattr(spec, f) for f in fields]


def test_clip_family_names():
    laion = get_spec("clip:ViT-B-32/laion2b_s34b_b79k")
    assert laion.quick_gelu is False and laion.input_size == SIZE
    assert laion.pretrained.files[0].hf_hub_id == "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    assert get_spec("clip:ViT-L-14/openai").quick_gelu is True
    with pytest.raises(UnknownNameError, match="open_clip model"):
        get_spec("clip:NoSuchNet/openai")
    for bad in ("clip:ViT-B-32/no-such-tag", "clip:ViT-B-32"):
        with pytest.raises(UnknownNameError, match="clip:ViT-B-32/openai"):
            get_spec(bad)
    clipa = get_spec("clip:ViT-L-14-CLIPA/datacomp1b")  # bilinear in open_clip, squashed (no centre crop)
    assert clipa.center_crop is False and clipa.interpolation == "bilinear"
    loaded = ClipBackbone(clipa, torch.nn.Identity(), torch.device("cpu"), "x", False)
    assert any("bilinear interpolation" in w for w in loaded.warnings)
    assert not ClipBackbone(laion, torch.nn.Identity(), torch.device("cpu"), "x", False).warnings


def test_weights_file_loads_through_the_registry(bb, ref, weights_file, photos, direct):
    import hashlib

    assert isinstance(bb, ClipBackbone) and bb.calibrated is False
    assert bb.weights_sha256 == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    loaded, saved = bb.model.clip.state_dict(), ref.state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)
    got = bb.features(photos[0])["image_embeds"].double()
    torch.testing.assert_close(got, direct[0], rtol=0, atol=TOL)


def test_openai_weights_need_the_quick_gelu_variant(bb, ref, photos):
    gelu = open_clip_model(quick_gelu=False)
    gelu.load_state_dict(ref.state_dict())
    assert any(type(m).__name__ == "QuickGELU" for m in bb.model.modules())
    assert not any(type(m).__name__ == "QuickGELU" for m in gelu.modules())
    ours = bb.features(photos[0])["image_embeds"].double()
    assert (ours - image_embeds(gelu, photos[1])).abs().max() > 1e-3


def hf_cache_layout(cache, hub_id: str, weights_file, *, as_blob: bool):
    """``weights_file`` in the HF cache as ``open_clip_model.safetensors`` of ``hub_id``: as huggingface_hub
    lays it out (``blobs/<sha256>`` + snapshot link) or as a plain link under the name."""
    import hashlib
    import shutil

    repo = cache / ("models--" + hub_id.replace("/", "--"))
    snap = repo / "snapshots" / ("ab12" * 10)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("ab12" * 10)
    target = weights_file
    if as_blob:
        (repo / "blobs").mkdir()
        target = repo / "blobs" / hashlib.sha256(weights_file.read_bytes()).hexdigest()
        shutil.copy(weights_file, target)
    (snap / "open_clip_model.safetensors").symlink_to(target)
    return snap / "open_clip_model.safetensors"


def test_published_file_is_found_in_the_hf_cache(offline, weights_file, photos):
    # random weights under the published name of clip-vit-b-32 (its sha256 is pinned): refused
    import shutil

    named = hf_cache_layout(offline / "hf_cache", "timm/vit_base_patch32_clip_224.openai", weights_file, as_blob=False)
    with pytest.raises(WeightsHashMismatch, match="e6d1bd7789aa45192b3bf90570a789b478bae1b74ebcce7eddd908e83a2b7c31"):
        pytest_i2i.backbone("clip-vit-b-32")
    shutil.rmtree(named.parents[2])
    # a tag without a pinned sha256, laid out by huggingface_hub: verified against the hub's sha256
    name = "clip:ViT-B-32/laion2b_s34b_b79k"
    path = hf_cache_layout(offline / "hf_cache", get_spec(name).pretrained.files[0].hf_hub_id, weights_file,
                           as_blob=True)
    found = pytest_i2i.backbone(name)
    assert found.weights_path == path and found.calibrated is True
    assert not any("no published sha256" in w for w in found.warnings)
    r = pytest_i2i.clip_image(photos[0], photos[0], backbone=found)
    assert r.calibrated is True and r.backbone == name and r.weights_sha256 == found.weights_sha256
    shutil.rmtree(path.parents[2])


def test_missing_weights_name_the_hub_file_and_cmmd_defaults_to_vit_l_14_336(photos):
    with pytest.raises(WeightsNotFound) as e:
        pytest_i2i.backbone("clip-vit-l-14-336")
    msg = str(e.value)
    assert "timm--vit_large_patch14_clip_336.openai.safetensors" in msg
    assert "huggingface.co/timm/vit_large_patch14_clip_336.openai/resolve/main/open_clip_model.safetensors" in msg
    with pytest.raises(WeightsNotFound, match="clip-vit-l-14-336"):
        pytest_i2i.cmmd(photos[0], photos[0])


def test_random_weights_are_seeded_open_clip_init_and_uncalibrated(ref, photos):
    rnd = pytest_i2i.backbone("clip:ViT-B-32/laion2b_s34b_b79k", weights="random", seed=3)
    expected = open_clip_model(quick_gelu=False, seed=3).state_dict()
    got = rnd.model.clip.state_dict()
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert not torch.equal(got["visual.proj"], ref.state_dict()["visual.proj"])  # another seed, other weights
    assert not any(type(m).__name__ == "QuickGELU" for m in rnd.model.modules())
    r = pytest_i2i.clip_text(photos[0][:1], "a photo", backbone=rnd)
    assert r.calibrated is False and r.warnings[0] == UNCALIBRATED_WARNING and r.weights_sha256 == "random:seed=3"


# ----------------------------------------------------------------------------------------------
# metrics against the direct formulas
# ----------------------------------------------------------------------------------------------


def test_clip_text_matches_clipscore_formula(bb, ref, photos, direct):
    r = pytest_i2i.clip_text(photos[0], TEXTS, backbone=bb)
    c = cos(direct[0], text_embeds(ref, TEXTS))
    np.testing.assert_allclose(r.extra["cosine"], c, rtol=0, atol=TOL)
    np.testing.assert_allclose(r.per_sample, 2.5 * np.maximum(c, 0), rtol=0, atol=TOL)
    assert r.value == pytest.approx(float(np.mean(2.5 * np.maximum(c, 0))), abs=TOL)
    assert r.ci[0] <= r.value <= r.ci[1] and r.n == 4 and r.sample_names == list(photos[0].names)
    assert r.resize == "clean" and r.extra["preprocess"]["resize_mode"] == "shortest"
    assert r.extra["preprocess"]["center_crop"] is True and r.calibrated is False
    w = pytest_i2i.clip_text(photos[0], TEXTS, backbone=bb, w=1.0)
    np.testing.assert_allclose(w.per_sample, np.maximum(c, 0), rtol=0, atol=TOL)


class TorchmetricsCLIP:
    """The interface torchmetrics' ``clip_score`` calls, around the same open_clip model."""

    config = SimpleNamespace()

    def __init__(self, model):
        self.model = model

    def to(self, device):
        return self

    def get_image_features(self, pixel_values):
        return self.model.encode_image(pixel_values)

    def get_text_features(self, input_ids, attention_mask):
        return self.model.encode_text(input_ids)


def torchmetrics_processor(images=None, text=None, **kwargs):
    if images is not None:
        return {"pixel_values": preprocess(images)}
    tokens = tokenizer()(text)
    return {"input_ids": tokens, "attention_mask": (tokens != 0).long()}


def test_torchmetrics_scale_equals_torchmetrics_clip_score(bb, ref, photos, direct):
    from torchmetrics.functional.multimodal.clip_score import clip_score as tm_clip_score

    images = photos[1]
    r = pytest_i2i.clip_text(images, TEXTS, backbone=bb, torchmetrics_scale=True)
    c = np.asarray(r.extra["cosine"])
    np.testing.assert_allclose(c, cos(direct[0], text_embeds(ref, TEXTS)), rtol=0, atol=TOL)
    np.testing.assert_allclose(r.per_sample, 100 * c, rtol=0, atol=1e-9)
    pos = [i for i in range(4) if c[i] > 0]
    assert 0 < len(pos) < 4  # both signs, so the two clamp conventions are told apart
    load = lambda: (TorchmetricsCLIP(ref), torchmetrics_processor)  # noqa: E731
    with torch.no_grad():
        whole = float(tm_clip_score(list(images), TEXTS, load))
        positive = float(tm_clip_score(list(images[pos]), [TEXTS[i] for i in pos], load))
        single = [float(tm_clip_score(images[i], TEXTS[i], load)) for i in range(4)]
    assert r.value == pytest.approx(whole, abs=1e-4)  # torchmetrics clamps the mean of 100·cos at 0
    sub = pytest_i2i.clip_text(images[pos], [TEXTS[i] for i in pos], backbone=bb, torchmetrics_scale=True)
    assert sub.value == pytest.approx(positive, abs=1e-4) and positive > 0
    np.testing.assert_allclose(single, np.maximum(100 * c, 0), rtol=0, atol=1e-4)  # one pair: max(100·cos, 0)
    with pytest.raises(I2IInputError, match="w does not apply"):
        pytest_i2i.clip_text(images, TEXTS, backbone=bb, torchmetrics_scale=True, w=1.0)


def test_clip_image_matches_formula_and_identity_is_one(bb, ref, photos, other_photos, direct):
    r = pytest_i2i.clip_image(photos[0], other_photos, backbone=bb)
    expected = cos(direct[0], direct[1])
    np.testing.assert_allclose(r.per_sample, expected, rtol=0, atol=TOL)
    assert r.value == pytest.approx(float(expected.mean()), abs=TOL) and r.higher_is_better
    same = pytest_i2i.clip_image(photos[0], photos[1], backbone=bb)
    np.testing.assert_allclose(same.per_sample, 1.0, rtol=0, atol=TOL)
    assert same.ci[0] == pytest.approx(1.0, abs=TOL) and same.ci[1] == pytest.approx(1.0, abs=TOL)


def test_clip_direction_matches_instructpix2pix_formula(bb, ref, photos, other_photos, direct):
    src, tgt = ["a photo", "a photo", "a cat", "a cat"], ["a painting", "a sketch", "a dog", "a dog"]
    r = pytest_i2i.clip_direction(photos[0], other_photos, src, tgt, backbone=bb)
    d_img = unit(direct[1]) - unit(direct[0])
    d_txt = unit(text_embeds(ref, tgt)) - unit(text_embeds(ref, src))
    np.testing.assert_allclose(r.per_sample, cos(d_img, d_txt), rtol=0, atol=TOL)

    one = pytest_i2i.clip_direction(photos[0], other_photos, "a photo", "a painting", backbone=bb)
    d_one = unit(text_embeds(ref, ["a painting"])) - unit(text_embeds(ref, ["a photo"]))
    np.testing.assert_allclose(one.per_sample, cos(d_img, d_one.expand(4, -1)), rtol=0, atol=TOL)

    templates = ["a rendering of {}.", "{}"]
    ens = pytest_i2i.clip_direction(photos[0], other_photos, src, tgt, backbone=bb, templates=templates)

    def ensembled(texts):
        e = torch.stack([unit(text_embeds(ref, [t.format(x) for t in templates])).mean(0) for x in texts])
        return unit(e)

    np.testing.assert_allclose(ens.per_sample, cos(d_img, ensembled(tgt) - ensembled(src)), rtol=0, atol=TOL)
    assert ens.extra["templates"] == templates
    assert np.abs(np.asarray(ens.per_sample) - np.asarray(r.per_sample)).max() > 1e-4

    same = pytest_i2i.clip_direction(photos[0], photos[1], "a photo", "a painting", backbone=bb)
    assert same.per_sample == [0.0] * 4 and any("no image or no text direction" in w for w in same.warnings)


def test_cmmd_matches_the_reference_estimator(bb, ref, photos, other_photos, direct):
    r = pytest_i2i.cmmd(photos[0], other_photos, backbone=bb)
    x = unit(direct[0]).numpy()
    y = unit(direct[1]).numpy()

    def k_mean(a, b):  # google-research cmmd/distance.py: mean of the full kernel matrix (biased)
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * 10.0**2)).mean()

    expected = 1000 * (k_mean(x, x) + k_mean(y, y) - 2 * k_mean(x, y))
    assert r.value == pytest.approx(expected, rel=TOL, abs=1e-9) and r.value > 0
    assert not r.higher_is_better and r.extra["n_real"] == r.extra["n_fake"] == 4
    assert "biased" in r.extra["estimator"] and r.backbone == "clip-vit-b-32"
    assert pytest_i2i.cmmd(photos[0], photos[1], backbone=bb).value == pytest.approx(0.0, abs=1e-9)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(photos[1][0].shape, generator=g)

    def perturbed(strength):  # the first image of the set gets noisier
        return torch.cat([(photos[1][:1] + strength * noise).clamp(0, 1), photos[1][1:]])

    grown = [pytest_i2i.cmmd(photos[1], perturbed(s), backbone=bb).value for s in (0.05, 0.3)]
    assert 0 < grown[0] < grown[1]


# ----------------------------------------------------------------------------------------------
# text embeddings, bad input
# ----------------------------------------------------------------------------------------------


def test_each_distinct_text_is_embedded_once(bb, photos, monkeypatch):
    embedded: list[int] = []
    original = bb.model.clip.encode_text

    def counting(tokens, *args, **kwargs):
        embedded.append(len(tokens))
        return original(tokens, *args, **kwargs)

    monkeypatch.setattr(bb.model.clip, "encode_text", counting)
    pytest_i2i.clip_text(photos[0], ["zebra one", "zebra two", "zebra one", "zebra one"], backbone=bb)
    assert sum(embedded) == 2
    pytest_i2i.clip_direction(photos[0], photos[0], "zebra one", ["zebra two"] * 4, backbone=bb)
    assert sum(embedded) == 2
    pytest_i2i.clip_direction(photos[0], photos[0], "zebra one", "zebra two", backbone=bb,
                              templates=["a photo of {}.", "art of {}"])
    assert sum(embedded) == 2 + 4
    emb = bb.encode_text(["zebra two", "zebra one"])
    assert emb.shape == (2, 512) and sum(embedded) == 6


def test_long_texts_are_truncated_and_named(bb, ref, photos, direct):
    long = "a very long caption about " + " ".join(["stars"] * 100)
    texts = [TEXTS[0], long, TEXTS[2], long + " and more"]
    r = pytest_i2i.clip_text(photos[0], texts, backbone=bb)
    c = cos(direct[0], text_embeds(ref, texts))  # open_clip truncates the same way
    np.testing.assert_allclose(r.extra["cosine"], c, rtol=0, atol=TOL)
    msg = [w for w in r.warnings if "context length" in w]
    assert len(msg) == 1 and "texts[1], texts[3]" in msg[0] and "77-token" in msg[0] and "texts[0]" not in msg[0]
    _, truncated = bb.encode_text(texts, return_truncated=True)
    assert truncated == [1, 3]


def test_bad_input_is_named(bb, photos, other_photos):
    with pytest.raises(I2IInputError, match="images has 4 images but texts has 3"):
        pytest_i2i.clip_text(photos[0], TEXTS[:3], backbone=bb)
    with pytest.raises(I2IInputError, match=r"texts\[2\] is an empty string"):
        pytest_i2i.clip_text(photos[0], ["a", "b", "  ", "d"], backbone=bb)
    with pytest.raises(I2IInputError, match=r"target_texts\[0\] is an empty string"):
        pytest_i2i.clip_direction(photos[0], other_photos, "a photo", "", backbone=bb)
    with pytest.raises(I2IInputError, match="source_texts has 2 texts"):
        pytest_i2i.clip_direction(photos[0], other_photos, ["a", "b"], "c", backbone=bb)
    with pytest.raises(I2IInputError, match="mismatched pair counts"):
        pytest_i2i.clip_image(photos[0], other_photos[:3], backbone=bb)
    with pytest.raises(I2IInputError, match=r"templates\[0\]"):
        pytest_i2i.clip_direction(photos[0], other_photos, "a", "b", backbone=bb, templates=["no slot"])
    with pytest.raises(I2IInputError, match=r"texts\[1\] is a int"):
        bb.encode_text(["ok", 3])


def test_pairs_of_different_sizes_are_resized_and_recorded(bb, ref, photos, other_photos, direct):
    outputs = [other_photos[0], other_photos[1], other_photos[2][:, 8:56, :], other_photos[3]]
    r = pytest_i2i.clip_image(photos[0], outputs, backbone=bb)
    expected = cos(direct[0], torch.cat([direct[1][:2], image_embeds(ref, [outputs[2]]), direct[1][3:]]))
    np.testing.assert_allclose(r.per_sample, expected, rtol=0, atol=TOL)
    notes = [w for w in r.warnings if "sizes differ" in w]
    assert len(notes) == 1 and notes[0].startswith("pair 2 ") and "64x64 vs 48x64" in notes[0]
    assert "centre-cropped" in notes[0] and "224x224" in notes[0] and "resize='clean'" in notes[0]
