"""ViT backbones built with timm, and the metrics fd_vit, dino_image and vit_patch_distance.

The default architectures are built by timm with seeded random weights, saved to files and
loaded back through ``pytest_i2i.backbone(name, weights=path)`` (the real loading path). Each
metric is compared with its formula computed here on the timm model called directly, with the
normalisation done by hand. Every number computed here is uncalibrated.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import pytest_i2i
from pytest_i2i.backbones import registry
from pytest_i2i.backbones.timm_adapter import init_random
from pytest_i2i.errors import I2IInputError, UnknownNameError, WeightsNotFound
from pytest_i2i.images import load_images, resize_batch, sample_images
from pytest_i2i.metrics.functional.frechet import frechet_distance
from pytest_i2i.metrics.functional.similarity import MAP_EPS, cosine_similarity
from pytest_i2i.metrics.functional.feature_map import layer_distance_map, pool_distance_map

timm = pytest.importorskip("timm")

DINO = "vit_small_patch16_224.dino"
DINOV2 = "vit_small_patch14_dinov2.lvd142m"
TINY = "vit_tiny_patch16_224"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TOL = 1e-6


@pytest.fixture(scope="module", autouse=True)
def isolated(tmp_path_factory):
    """Empty torch hub / HF hub caches, no weights dir, downloads off and failing if attempted."""
    root = tmp_path_factory.mktemp("caches")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(root / "torch_home"))
        mp.setenv("HF_HUB_CACHE", str(root / "hf_cache"))
        for var in ("I2I_WEIGHTS_DIR", "I2I_ALLOW_DOWNLOAD", "HF_HOME", "XDG_CACHE_HOME"):
            mp.delenv(var, raising=False)
        mp.setattr(torch.hub, "download_url_to_file", lambda url, *a, **k: pytest.fail(f"download attempted: {url}"))
        yield root


def random_timm(model_name: str, seed: int, **kwargs) -> torch.nn.Module:
    model = timm.create_model(model_name, pretrained=False, **kwargs)
    init_random(model, seed)
    return model.eval()


@pytest.fixture(scope="module")
def dino_files(tmp_path_factory):
    """The DINO ViT-S/16 architecture with seeded random weights, saved as .pth and .safetensors."""
    from safetensors.torch import save_file

    state = random_timm(DINO, seed=3).state_dict()
    d = tmp_path_factory.mktemp("vit_weights")
    torch.save(state, d / "random_dino_vits16.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, str(d / "random_dino_vits16.safetensors"))
    return d / "random_dino_vits16.pth", d / "random_dino_vits16.safetensors"


@pytest.fixture(scope="module")
def dino(dino_files):
    return pytest_i2i.backbone("dino-vits16", weights=dino_files[0])


@pytest.fixture(scope="module")
def direct(dino_files):
    """The timm model itself, loaded with the same file by plain torch."""
    model = timm.create_model(DINO, pretrained=False)
    model.load_state_dict(torch.load(dino_files[0], weights_only=True))
    return model.eval()


@pytest.fixture(scope="module")
def photos():
    imgs = sample_images(64)
    return [imgs[i] for i in range(len(imgs))]


def direct_features(model, images, mean=IMAGENET_MEAN, std=IMAGENET_STD, size=224):
    """(cls (N, D), patch tokens (N, h, w, D)) in float64: normalisation by hand, timm model called directly."""
    x = resize_batch(torch.stack(images), (size, size), "clean")
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        tokens = model.forward_features(x)
    patches = tokens[:, model.num_prefix_tokens:]
    g = int(math.isqrt(patches.shape[1]))
    return tokens[:, 0].double(), patches.reshape(len(images), g, g, -1).double()


def cos(x, y):
    return (x * y).sum(-1) / (x.norm(dim=-1) * y.norm(dim=-1))


# --------------------------------------------------------------------------------------------
# backbones
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dino-vits16", "dinov2-vits14"])
def test_random_weights_are_a_function_of_the_seed(name):
    spec = registry.get_spec(name)

    def build(seed, global_seed):
        torch.manual_seed(global_seed)  # the global RNG state must not matter
        model = spec.create()
        spec.init_random(model, seed)
        return {**dict(model.named_parameters()), **dict(model.named_buffers())}

    a, b, c = build(7, 0), build(7, 1), build(8, 0)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    params = [k for k, v in a.items() if isinstance(v, torch.nn.Parameter)]
    assert all(not torch.equal(a[k], c[k]) for k in params)


@pytest.mark.parametrize("name, tag", [("dino-vits16", "vit_small_patch16_224.dino"),
                                       ("dinov2-vits14", "vit_small_patch14_dinov2.lvd142m")])
def test_named_backbones_normalise_as_their_timm_pretrained_cfg(name, tag):
    from timm.models import get_pretrained_cfg

    cfg, spec = get_pretrained_cfg(tag), registry.get_spec(name)
    assert spec.mean == tuple(cfg.mean) and spec.std == tuple(cfg.std)
    assert registry.get_spec(f"timm:{tag}").mean == tuple(cfg.mean)


def test_random_backbone_results_are_uncalibrated(photos):
    bb = pytest_i2i.backbone("dino-vits16", weights="random", seed=1)
    assert bb.calibrated is False and bb.weights_sha256 == "random:seed=1"
    r = pytest_i2i.dino_image(photos[:2], photos[2:4], backbone=bb)
    assert r.calibrated is False and r.backbone == "dino-vits16"


def test_pth_and_safetensors_files_load_the_same_weights(dino, dino_files, direct):
    from_st = pytest_i2i.backbone("dino-vits16", weights=dino_files[1])
    assert from_st is not dino and from_st.weights_path == dino_files[1]
    for bb in (dino, from_st):
        assert not bb.calibrated
        assert any("not a published dino-vits16 weights file" in w for w in bb.warnings)
        got = bb.model.model.state_dict()
        assert all(torch.equal(got[k], v) for k, v in direct.state_dict().items())


def test_backbone_outputs_equal_the_timm_model_called_directly(dino, direct, photos):
    cls, patches = direct_features(direct, photos[:2])
    out = dino(dino.preprocess().normalize(resize_batch(torch.stack(photos[:2]), (224, 224), "clean")))
    assert out["cls"].shape == (2, 384) and out["patch_tokens"].shape == (2, 14, 14, 384)
    torch.testing.assert_close(out["cls"].double(), cls, rtol=0, atol=TOL)
    torch.testing.assert_close(out["patch_tokens"].double(), patches, rtol=0, atol=TOL)


def test_dinov2_checkpoint_with_518px_position_embedding_loads_into_the_224px_model(tmp_path, photos):
    from safetensors.torch import save_file

    published = random_timm(DINOV2, seed=4)  # timm's default for this tag: 518 px, 37 x 37 patches
    assert published.pos_embed.shape == (1, 1 + 37 * 37, 384)
    path = tmp_path / "random_dinov2_518.safetensors"
    save_file({k: v.contiguous() for k, v in published.state_dict().items()}, str(path))

    bb = pytest_i2i.backbone("dinov2-vits14", weights=path)
    assert bb.input_size == (224, 224) and bb.model.model.pos_embed.shape == (1, 1 + 16 * 16, 384)
    # timm's own loading of the same file into a 224 px model
    ref = timm.create_model(DINOV2, pretrained=True, img_size=224, pretrained_cfg_overlay={"file": str(path)}).eval()
    ours = bb.model.model.state_dict()
    assert ours.keys() == ref.state_dict().keys()
    assert all(torch.equal(ours[k], v) for k, v in ref.state_dict().items())
    assert not torch.equal(ours["pos_embed"][:, 1:], published.pos_embed[:, 1:1 + 256])  # resampled, not cut

    cls, patches = direct_features(ref, photos[:2])
    got = bb.features(load_images(photos[:2]))
    assert got["patch_tokens"].shape == (2, 16, 16, 384)
    torch.testing.assert_close(got["cls"].double(), cls, rtol=0, atol=TOL)
    torch.testing.assert_close(got["patch_tokens"].double(), patches, rtol=0, atol=TOL)


def test_timm_family_builds_any_timm_model(photos, tmp_path, monkeypatch):
    spec = registry.get_spec(f"timm:{TINY}")
    hf_id = f"timm/{TINY}.augreg_in21k_ft_in1k"
    assert spec.input_size == (224, 224) and spec.center_crop and spec.default_resize == "clean"
    assert spec.pretrained.files[0].hf_hub_id == hf_id
    assert spec.pretrained.files[0].hf_filename == "model.safetensors"
    assert "timm" in registry.list_backbone_families()

    bb = pytest_i2i.backbone(f"timm:{TINY}", weights="random")
    direct_model = timm.create_model(TINY, pretrained=False)
    direct_model.load_state_dict(bb.model.model.state_dict())
    cls, patches = direct_features(direct_model.eval(), photos[:2], mean=(0.5,) * 3, std=(0.5,) * 3)
    r = pytest_i2i.vit_patch_distance(photos[:2], photos[2:4], backbone=bb)
    _, patches_b = direct_features(direct_model, photos[2:4], mean=(0.5,) * 3, std=(0.5,) * 3)
    assert r.extra["grid"] == [14, 14] and r.calibrated is False
    np.testing.assert_allclose(r.per_sample, (2 - 2 * cos(patches, patches_b)).mean((1, 2)).numpy(), rtol=0, atol=TOL)
    torch.testing.assert_close(bb.features(load_images(photos[:2]))["cls"].double(), cls, rtol=0, atol=TOL)

    # the published file is looked up where huggingface_hub would have put it, by timm's HF id
    with pytest.raises(WeightsNotFound, match=f"{TINY}.augreg_in21k_ft_in1k.safetensors"):
        pytest_i2i.backbone(f"timm:{TINY}")
    from safetensors.torch import save_file

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    repo = tmp_path / "hf" / ("models--" + hf_id.replace("/", "--"))
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    state = random_timm(TINY, seed=5).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(repo / "snapshots" / "abc123" / "model.safetensors"))
    found = pytest_i2i.backbone(f"timm:{TINY}")  # a plain file in a snapshot: no hash to check it against
    assert not found.calibrated and any("no published sha256 is known" in w for w in found.warnings)
    assert all(torch.equal(found.model.model.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize("name", ["timm:not_a_timm_model", f"timm:{TINY}.no_such_tag"])
def test_unknown_timm_model_raises_unknown_name(name):
    with pytest.raises(UnknownNameError, match="timm model"):
        pytest_i2i.backbone(name, weights="random")


def test_default_backbone_is_dino_vits16_with_its_published_file(photos):
    with pytest.raises(WeightsNotFound, match=r"vit_small_patch16_224\.dino\.safetensors") as e:
        pytest_i2i.fd_vit(photos[:2], photos[2:4])
    assert "huggingface.co/timm/vit_small_patch16_224.dino/resolve/main/model.safetensors" in str(e.value)


# --------------------------------------------------------------------------------------------
# metrics against their formulas
# --------------------------------------------------------------------------------------------


def test_dino_image_equals_cosine_of_direct_cls_features(dino, direct, photos):
    a, b = photos[:4], photos[4:]
    r = pytest_i2i.dino_image(a, b, backbone=dino)
    expected = cos(direct_features(direct, a)[0], direct_features(direct, b)[0])
    assert r.name == "dino_image" and r.higher_is_better and r.n == 4 and not r.calibrated
    np.testing.assert_allclose(r.per_sample, expected.numpy(), rtol=0, atol=TOL)
    assert r.value == pytest.approx(float(expected.mean()), abs=TOL)
    assert r.ci[0] <= r.value <= r.ci[1] and r.sample_names == [f"a[{i}]" for i in range(4)]
    assert r.weights_sha256 == dino.weights_sha256 and r.resize == "clean"


def test_vit_patch_distance_equals_direct_patch_cosine_distance(dino, direct, photos):
    """2 - 2 cos per patch: the squared distance of unit-normalised tokens (feature_map_distance on one layer)."""
    a, b = photos[:4], photos[4:]
    r = pytest_i2i.vit_patch_distance(a, b, backbone=dino, top_k_percent=10.0)
    d = 2 - 2 * cos(direct_features(direct, a)[1], direct_features(direct, b)[1])  # (4, 14, 14)
    flat = d.flatten(1)
    k = math.ceil(0.10 * 196)
    assert r.name == "vit_patch_distance" and not r.higher_is_better and r.extra["grid"] == [14, 14]
    np.testing.assert_allclose(r.per_sample, flat.mean(1).numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(r.extra["max"], flat.max(1).values.numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(r.extra["top_k_mean"], flat.sort(1, descending=True).values[:, :k].mean(1).numpy(),
                               rtol=0, atol=TOL)
    np.testing.assert_allclose(np.array(r.extra["maps"]), d.numpy(), rtol=0, atol=TOL)
    assert r.value == pytest.approx(float(flat.mean()), abs=TOL)
    assert pytest_i2i.MetricResult.from_json(r.to_json()).extra["maps"] == r.extra["maps"]
    assert r.extra["layers"] == ["patch_tokens"]
    same = pytest_i2i.feature_map_distance(a, b, backbone=dino, top_k_percent=10.0)  # one implementation
    assert same.per_sample == r.per_sample and same.extra["maps"] == r.extra["maps"]


def test_fd_vit_equals_frechet_distance_of_direct_cls_features(dino, direct, photos):
    real, fake = photos[:4], photos[4:]
    r = pytest_i2i.fd_vit(real, fake, backbone=dino)
    fr, ff = (direct_features(direct, s)[0].numpy() for s in (real, fake))
    expected = frechet_distance(fr.mean(0), np.cov(fr, rowvar=False), ff.mean(0), np.cov(ff, rowvar=False))
    assert r.name == "fd_vit" and not r.higher_is_better and r.extra["feature"] == "cls" and not r.calibrated
    assert r.value == pytest.approx(expected, rel=TOL)
    assert any("rank-deficient" in w for w in r.warnings)
    # precomputed statistics (compute_stats on the same feature) give the same value
    stats = pytest_i2i.compute_stats(real, backbone=dino, feature="cls")
    assert pytest_i2i.fd_vit(stats, fake, backbone=dino).value == pytest.approx(r.value, rel=1e-12)


def test_identical_images_give_similarity_one_and_distance_zero(dino, photos):
    assert pytest_i2i.dino_image(photos[:4], photos[:4], backbone=dino).value == pytest.approx(1.0, abs=1e-12)
    r = pytest_i2i.vit_patch_distance(photos[:4], photos[:4], backbone=dino)
    assert r.value == pytest.approx(0.0, abs=1e-12)
    assert np.abs(np.array(r.extra["maps"])).max() < 1e-12


def test_local_edit_raises_patch_distance_in_that_corner(dino, photos):
    a = photos[:4]
    b = [x.clone() for x in a]
    g = torch.Generator().manual_seed(0)
    for x in b:
        x[:, :16, :16] = torch.rand(3, 16, 16, generator=g)  # top-left quarter side: 56 px = 3.5 patches at 224
    r = pytest_i2i.vit_patch_distance(a, b, backbone=dino)
    maps = np.array(r.extra["maps"])
    for m in maps:
        row, col = np.unravel_index(m.argmax(), m.shape)
        assert row < 4 and col < 4, (row, col)
        outside = np.ones_like(m, dtype=bool)
        outside[:4, :4] = False
        assert m[:4, :4].mean() > 5 * m[outside].mean()


def test_dino_image_and_patch_distance_share_one_forward_pass_per_image(dino, photos):
    a = [x.flip(-1) for x in photos[:4]]  # images this backbone has not seen yet
    b = [x.flip(-2) for x in photos[:4]]
    seen: list[int] = []
    handle = dino.model.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[0]))
    try:
        hits = dino.memo.hits
        pytest_i2i.dino_image(a, b, backbone=dino)
        assert sum(seen) == 8 and dino.memo.hits == hits
        pytest_i2i.vit_patch_distance(a, b, backbone=dino)
        assert sum(seen) == 8 and dino.memo.hits == hits + 8
    finally:
        handle.remove()


# --------------------------------------------------------------------------------------------
# input errors and notes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["dino_image", "vit_patch_distance"])
def test_mismatched_pair_counts_raise(dino, photos, metric):
    with pytest.raises(I2IInputError, match="mismatched pair counts"):
        getattr(pytest_i2i, metric)(photos[:3], photos[:4], backbone=dino)


def test_fd_vit_needs_two_images_per_set(dino, photos):
    with pytest.raises(I2IInputError, match="fd_vit needs at least 2 images"):
        pytest_i2i.fd_vit(photos[:1], photos[:3], backbone=dino)


def test_pairs_of_different_sizes_are_recorded(dino, photos):
    small = [resize_batch(x[None], (48, 40), "clean")[0] for x in photos[:2]]
    r = pytest_i2i.vit_patch_distance(photos[:2], small, backbone=dino)
    notes = [w for w in r.warnings if "sizes differ" in w]
    assert len(notes) == 2 and "64x64 vs 48x40" in notes[0] and "224x224" in notes[0]
    assert all(0 < v < 4 for v in r.per_sample)
    same = pytest_i2i.vit_patch_distance(photos[:2], photos[2:4], backbone=dino)
    assert not any("sizes differ" in w for w in same.warnings)


def test_bad_top_k_percent_and_passing_backbone_with_weights_raise(dino, photos):
    with pytest.raises(I2IInputError, match="top_k_percent"):
        pytest_i2i.vit_patch_distance(photos[:2], photos[:2], backbone=dino, top_k_percent=0)
    with pytest.raises(I2IInputError, match="either a loaded backbone or weights"):
        pytest_i2i.dino_image(photos[:2], photos[:2], backbone=dino, weights="random")


# --------------------------------------------------------------------------------------------
# functional
# --------------------------------------------------------------------------------------------


def test_pool_distance_map_mean_max_and_top_k():
    m = torch.arange(16, dtype=torch.float64).reshape(1, 4, 4) / 16
    pooled = pool_distance_map(m, top_k_percent=20)  # ceil(0.2 * 16) = 4 cells: 12..15
    assert pooled["mean"].item() == pytest.approx(7.5 / 16)
    assert pooled["max"].item() == pytest.approx(15 / 16)
    assert pooled["top_k_mean"].item() == pytest.approx(13.5 / 16)
    assert pool_distance_map(m, top_k_percent=100)["top_k_mean"].item() == pytest.approx(7.5 / 16)
    assert pool_distance_map(m, top_k_percent=0.1)["top_k_mean"].item() == pytest.approx(15 / 16)
    for bad in (0, -1, 100.5):
        with pytest.raises(I2IInputError, match="top_k_percent"):
            pool_distance_map(m, top_k_percent=bad)
    with pytest.raises(I2IInputError, match=r"\(N, h, w\)"):
        pool_distance_map(m[0])


def test_functional_cosine_and_distance_map_edge_cases():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    y = torch.tensor([[-3.0, -4.0], [1.0, 0.0]])
    assert cosine_similarity(x, y, eps=MAP_EPS).tolist() == [-1.0, 0.0]  # feature maps: a zero vector gives 0
    with pytest.raises(I2IInputError, match="zero vectors"):  # global embeddings: a zero vector is an error
        cosine_similarity(x, y)
    d = layer_distance_map(x.view(1, 1, 2, 2), y.view(1, 1, 2, 2))  # opposite: 2 - 2 cos = 4; zero vs unit: 1
    assert d.shape == (1, 1, 2) and d.flatten().tolist() == pytest.approx([4.0, 1.0], abs=1e-9)
    with pytest.raises(I2IInputError, match="same shape"):
        cosine_similarity(x, y[:1])
    with pytest.raises(I2IInputError, match=r"\(N, h, w, C\)"):
        layer_distance_map(x, y)
    with pytest.raises(I2IInputError, match="NaN or Inf"):
        cosine_similarity(x, torch.full_like(y, float("nan")))
