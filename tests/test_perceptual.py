"""LPIPS and DISTS against their reference implementations, on the same weights and images.

The trunks' published ImageNet files cannot be had here, so every trunk is torchvision's
architecture with seeded random weights (torchvision's own initialisation), saved to a file and
loaded through the project's weights path (``weights=<file>``) and, with the same tensors, into
the reference implementations (whose pretrained downloads are replaced by the same random
trunk). The learned heads are the real, published files: LPIPS' v0.1 linear layers and DISTS'
α/β from the installed packages. Every number here is UNCALIBRATED (random trunks); the tests
compare implementations, not values.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import pytest_i2i
from pytest_i2i.errors import I2IInputError, WeightsNotFound
from pytest_i2i.images import sample_images

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NETS = ("alex", "vgg", "squeeze")


@pytest.fixture(scope="module")
def trunk_files(tmp_path_factory):
    """Seeded random torchvision trunks in the published files' key layout (``features.<i>.*``;
    SqueezeNet with its classifier too, as the published file has it)."""
    import torchvision
    from torchvision.models.vgg import cfgs, make_layers

    root = tmp_path_factory.mktemp("trunks")
    files = {}
    torch.manual_seed(1)
    files["alex"] = {f"features.{k}": v for k, v in torchvision.models.alexnet().features.state_dict().items()}
    torch.manual_seed(2)
    vgg = make_layers(cfgs["D"], batch_norm=False)
    for m in vgg.modules():  # torchvision's VGG init (kaiming normal, zero bias)
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.constant_(m.bias, 0)
    files["vgg"] = {f"features.{k}": v for k, v in vgg.state_dict().items()}
    torch.manual_seed(3)
    files["squeeze"] = torchvision.models.squeezenet1_1().state_dict()
    paths = {}
    for net, state in files.items():
        paths[net] = root / f"random_{net}.pth"
        torch.save(state, paths[net])
    return paths


@pytest.fixture(scope="module")
def images():
    """Real photos (bundled): pairs of different photos and of a photo and its edited copy; one
    pair of a non-square size."""
    photos = sample_images(size=96)
    x = torch.stack([photos[i] for i in range(len(photos))])
    a = torch.stack([x[0], x[1], x[2], x[3]])
    b = torch.stack([x[4], (x[1] * 0.7 + 0.2).clamp(0, 1), x[2].flip(-1), x[5]])
    return a[..., :64, :64].contiguous(), b[..., :64, :64].contiguous(), a[..., :48, :80].contiguous(), \
        b[..., :48, :80].contiguous()


def _trunk_state(ref_state_keys, features_state):
    """Map ``features.<i>.<rest>`` onto a reference trunk's keys (``slice<k>.<i>.<rest>`` or
    ``slices.<k>.<i>.<rest>``), which keep torchvision's layer index."""
    out = {}
    for key in ref_state_keys:
        parts = key.split(".")
        rest = parts[2:] if parts[0] != "slices" else parts[3:]
        idx = parts[1] if parts[0] != "slices" else parts[2]
        out[key] = features_state[".".join(["features", idx, *rest])]
    return out


def _lpips_reference(net: str, trunk_file, spatial: bool = False):
    import lpips

    ref = lpips.LPIPS(net=net, pnet_rand=True, spatial=spatial, verbose=False)  # real lin layers, random trunk
    state = torch.load(trunk_file, weights_only=True)
    ref.net.load_state_dict(_trunk_state(list(ref.net.state_dict()), state))
    return ref.eval()


def _torchmetrics_lpips(net: str, trunk_file, monkeypatch):
    import torchvision
    from torchmetrics.functional.image import lpips as tm_lpips
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    def no_download(name, pretrained=False):  # torchmetrics would download torchvision's file
        return getattr(torchvision.models, name)(weights=None).features

    monkeypatch.setattr(tm_lpips, "_get_tv_model_features", no_download)
    metric = LearnedPerceptualImagePatchSimilarity(net_type=net, normalize=True)
    state = torch.load(trunk_file, weights_only=True)
    metric.net.net.load_state_dict(_trunk_state(list(metric.net.net.state_dict()), state))
    return metric


@pytest.mark.parametrize("net", NETS)
def test_lpips_equals_the_lpips_package_and_torchmetrics(net, trunk_files, images, monkeypatch):
    a, b, a2, b2 = images
    ref = _lpips_reference(net, trunk_files[net])
    tm = _torchmetrics_lpips(net, trunk_files[net], monkeypatch)
    for x, y in ((a, b), (a2, b2)):
        ours = pytest_i2i.lpips(x, y, net=net, weights=trunk_files[net])
        with torch.no_grad():
            expected = ref(x, y, normalize=True).flatten().double()
            expected_tm = tm.net(x, y, normalize=True).flatten().double()
        got = torch.tensor(ours.per_sample, dtype=torch.float64)
        assert expected.min() > 1e-2  # a meaningful comparison: the pairs differ
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(got, expected_tm, rtol=1e-6, atol=1e-6)
        tm.reset()
        tm.update(x, y)
        assert ours.value == pytest.approx(float(tm.compute()), rel=1e-6, abs=1e-6)
        assert ours.extra["net"] == net and ours.extra["version"] == "0.1"
        assert ours.calibrated is False  # random trunk, even with the published linear layers
        assert ours.extra["lin_weights_sha256"] == pytest_i2i.metrics.perceptual.LPIPS_LIN_FILES[net].sha256


@pytest.mark.parametrize("net", ["alex", "squeeze"])
def test_lpips_spatial_maps_equal_the_references(net, trunk_files, images, monkeypatch):
    a, b, a2, b2 = images
    ref = _lpips_reference(net, trunk_files[net], spatial=True)
    import torchvision
    from torchmetrics.functional.image import lpips as tm_lpips

    monkeypatch.setattr(tm_lpips, "_get_tv_model_features",
                        lambda name, pretrained=False: getattr(torchvision.models, name)(weights=None).features)
    tm = tm_lpips._LPIPS(pretrained=True, net=net, spatial=True, pnet_rand=True)
    tm.net.load_state_dict(_trunk_state(list(tm.net.state_dict()), torch.load(trunk_files[net], weights_only=True)))
    for x, y in ((a, b), (a2, b2)):
        ours = pytest_i2i.lpips(x, y, net=net, weights=trunk_files[net], spatial=True)
        got = torch.tensor(ours.extra["maps"], dtype=torch.float64)
        with torch.no_grad():
            expected = ref(x, y, normalize=True)[:, 0].double()
            expected_tm = tm(x, y, normalize=True)[:, 0].double()
        assert got.shape == (x.shape[0], x.shape[2], x.shape[3])
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(got, expected_tm, rtol=1e-6, atol=1e-6)
        assert ours.extra["max"] == pytest.approx(expected.flatten(1).amax(1).tolist(), rel=1e-6, abs=1e-6)


def test_lpips_baseline_and_inputs_in_minus_one_one(trunk_files, images):
    """``value_range=(-1, 1)`` is torchmetrics' ``normalize=False``; the head without linear layers
    is the package's ``lpips=False`` baseline (the shared local distance summed over channels)."""
    import lpips

    from pytest_i2i.backbones.factory import backbone
    from pytest_i2i.metrics.perceptual import lpips_head

    a, b, _, _ = images
    ours = pytest_i2i.lpips(a, b, weights=trunk_files["alex"])
    signed = pytest_i2i.lpips(2 * a - 1, 2 * b - 1, weights=trunk_files["alex"], value_range=(-1.0, 1.0))
    assert signed.per_sample == pytest.approx(ours.per_sample, rel=1e-6, abs=1e-7)

    base = lpips.LPIPS(net="alex", lpips=False, pnet_rand=True, verbose=False)
    base.net.load_state_dict(_trunk_state(list(base.net.state_dict()), torch.load(trunk_files["alex"],
                                                                                 weights_only=True)))
    bb = backbone("lpips-alex", weights=trunk_files["alex"])
    feats = bb(torch.cat([a, b]))
    n = a.shape[0]
    got = lpips_head(None, False)({k: v[:n] for k, v in feats.items()}, {k: v[n:] for k, v in feats.items()},
                                  (64, 64))["value"]
    with torch.no_grad():
        expected = base(a, b, normalize=True).flatten()
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


def test_lpips_weights_provenance_and_lin_weights_file(trunk_files, images, tmp_path):
    from pytest_i2i.metrics.perceptual import LPIPS_LIN_FILES, head_candidates

    a, b, _, _ = images
    shipped = [p for p in head_candidates("lpips-alex") if p.is_file()]
    assert shipped, "the lpips package (a test dependency) ships the linear layers"
    from pytest_i2i.files import sha256_file

    assert {sha256_file(p) for p in shipped} == {LPIPS_LIN_FILES["alex"].sha256}

    r = pytest_i2i.lpips(a, b, weights="random")
    assert r.calibrated is False and r.backbone == "lpips-alex" and r.weights_sha256.startswith("random:")

    state = torch.load(shipped[0], weights_only=True, map_location="cpu")
    doubled = {k: 2 * v for k, v in state.items()}
    torch.save(doubled, tmp_path / "my_lin.pth")
    twice = pytest_i2i.lpips(a, b, weights=trunk_files["alex"], lin_weights=tmp_path / "my_lin.pth")
    once = pytest_i2i.lpips(a, b, weights=trunk_files["alex"])
    assert twice.per_sample == pytest.approx([2 * v for v in once.per_sample], rel=1e-6)
    assert twice.extra["lin_weights_sha256"] != once.extra["lin_weights_sha256"]
    assert any("my_lin.pth" in w and "not a published" in w for w in twice.warnings)

    # lin layers numbered with a gap (lin0, lin2, ...) are not LPIPS' layout
    torch.save({k.replace("lin1.", "lin9."): v for k, v in state.items()}, tmp_path / "gap.pth")
    with pytest.raises(I2IInputError, match="no LPIPS linear layers"):
        pytest_i2i.lpips(a, b, weights="random", lin_weights=tmp_path / "gap.pth")
    torch.save({"something": torch.zeros(3)}, tmp_path / "not_lin.pth")
    with pytest.raises(I2IInputError, match="no LPIPS linear layers"):
        pytest_i2i.lpips(a, b, weights="random", lin_weights=tmp_path / "not_lin.pth")
    with pytest.raises(I2IInputError, match="3 linear layers|linear layers"):
        torch.save({f"lin{k}.model.1.weight": state[f"lin{k}.model.1.weight"] for k in range(3)},
                   tmp_path / "short.pth")
        pytest_i2i.lpips(a, b, weights="random", lin_weights=tmp_path / "short.pth")


def test_missing_weights_name_the_files(monkeypatch, tmp_path, images):
    """Without the published files anywhere (and offline), the errors name the files to install."""
    from pytest_i2i.metrics import perceptual

    a, b, _, _ = images
    monkeypatch.setenv("I2I_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsNotFound, match="alexnet-owt-7be5be79.pth"):
        pytest_i2i.lpips(a, b)
    with pytest.raises(WeightsNotFound, match="vgg16-397923af.pth"):
        pytest_i2i.dists(a, b)
    monkeypatch.setattr(perceptual, "head_candidates", lambda head: [])
    with pytest.raises(WeightsNotFound, match="lpips_v0.1_squeeze.pth") as e:
        pytest_i2i.lpips(a, b, net="squeeze", weights="random")
    assert "pip install lpips" in str(e.value) and e.value.filename == "lpips_v0.1_squeeze.pth"
    with pytest.raises(WeightsNotFound, match="dists_alpha_beta.pt") as e:
        pytest_i2i.dists(a, b, weights="random")
    assert "pip install DISTS-pytorch" in str(e.value)
    (tmp_path / "lpips_v0.1_squeeze.pth").write_bytes(b"not the published file")
    from pytest_i2i.errors import WeightsHashMismatch

    with pytest.raises(WeightsHashMismatch):
        pytest_i2i.lpips(a, b, net="squeeze", weights="random")


def test_lpips_pairs_of_different_sizes_and_bad_input(trunk_files, images):
    from pytest_i2i.images.resize import resize_batch

    a, b, _, _ = images
    small_b = resize_batch(b, (40, 40), "clean")
    r = pytest_i2i.lpips(a, small_b, weights=trunk_files["alex"])
    same = pytest_i2i.lpips(a, resize_batch(small_b, (64, 64), "clean"), weights=trunk_files["alex"])
    assert r.per_sample == pytest.approx(same.per_sample, rel=1e-6, abs=1e-7)
    assert any("resized to (64, 64)" in w for w in r.warnings)
    with pytest.raises(I2IInputError, match="lpips"):
        pytest_i2i.lpips(a[..., :20, :20], b[..., :20, :20], weights="random")
    with pytest.raises(I2IInputError, match="not one of its trunks"):
        pytest_i2i.lpips(a, b, backbone="dists-vgg16", weights="random")
    with pytest.raises(I2IInputError, match="net='squeeze'"):
        pytest_i2i.lpips(a, b, net="squeeze", backbone="lpips-vgg", weights="random")
    from pytest_i2i.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="alex"):
        pytest_i2i.lpips(a, b, net="resnet", weights="random")


# -- DISTS --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vgg_state(trunk_files):
    return torch.load(trunk_files["vgg"], weights_only=True)


def _patched_vgg16(vgg_state):
    from torchvision.models.vgg import VGG, cfgs, make_layers

    def vgg16(*args, **kwargs):  # the references ask for torchvision's pretrained file
        model = VGG(make_layers(cfgs["D"], batch_norm=False), init_weights=False)
        model.features.load_state_dict({k.removeprefix("features."): v for k, v in vgg_state.items()})
        return model

    return vgg16


def test_dists_equals_the_reference_package_and_torchmetrics(trunk_files, vgg_state, images, monkeypatch):
    import torchvision
    from DISTS_pytorch import DISTS_pt
    from torchmetrics.functional.image import dists as tm_dists

    monkeypatch.setattr(torchvision.models, "vgg16", _patched_vgg16(vgg_state))
    monkeypatch.setattr(tm_dists, "vgg16", _patched_vgg16(vgg_state))
    ref = DISTS_pt.DISTS().eval()  # reads the published alpha/beta (a copy under sys.prefix)
    tm = tm_dists.DISTSNetwork().eval()
    a, b, a2, b2 = images
    for x, y in ((a, b), (a2, b2)):
        ours = pytest_i2i.dists(x, y, weights=trunk_files["vgg"])
        got = torch.tensor(ours.per_sample, dtype=torch.float64)
        with torch.no_grad():
            expected = ref(x, y).flatten().double()
            expected_tm = tm(x, y).flatten().double()
        assert expected.min() > 1e-3
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got, expected_tm, rtol=1e-5, atol=1e-5)
    assert ours.calibrated is False and ours.backbone == "dists-vgg16"
    assert ours.extra["alpha_beta_sha256"] == pytest_i2i.metrics.perceptual.DISTS_ALPHA_BETA_FILE.sha256
    x = a[:2]
    assert pytest_i2i.dists(x, x.clone(), weights=trunk_files["vgg"]).value == pytest.approx(0.0, abs=1e-6)


def test_the_sensitivity_engine_scores_lpips_and_dists_as_the_functions_do():
    from pytest_i2i.perturb import local_edit
    from pytest_i2i.validation.sensitivity import edit_seed, run_sensitivity

    r = run_sensitivity(metrics=["lpips", "lpips_max", "dists"], ops=["gaussian_blur"], areas_percent=[25.0],
                        weights="random", size=48, n_images=2, repeats=1)
    assert set(r.table.metric) == {"lpips", "lpips_max", "dists"}
    assert r.calibration["lpips"] == r.calibration["dists"] == "uncalibrated"
    img = sample_images(48)[1]
    copy = local_edit(img, "gaussian_blur", area=0.25, region="ellipse", seed=edit_seed(0, 1, 0, 0)).image
    s = r.scores
    row = s[(s.image == "chelsea.png") & (s.op == "gaussian_blur")]
    lp = pytest_i2i.lpips(img[None], copy[None], weights="random")
    di = pytest_i2i.dists(img[None], copy[None], weights="random")
    assert float(row[row.metric == "lpips"].value.iloc[0]) == pytest.approx(lp.value, rel=1e-6)
    assert float(row[row.metric == "lpips_max"].value.iloc[0]) == pytest.approx(lp.extra["max"][0], rel=1e-6)
    assert float(row[row.metric == "dists"].value.iloc[0]) == pytest.approx(di.value, rel=1e-6)


# -- the shared local distance and the backbone components ---------------------------------------------
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "nhwc_permuted"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_local_distance_map_equals_the_direct_formula(layout, weighted, dtype):
    """Σ_c w_c (f̂a − f̂b)², f̂ = f / (‖f‖ + 1e-10): computed directly in float64 (SYNTHETIC random maps
    with zero vectors at some positions). ``nhwc_permuted``: (N, h, w, C) tensors seen as (N, C, h, w)
    through ``permute(0, 3, 1, 2)`` (token grids, channels-last features); float64 is computed in float64."""
    from pytest_i2i.metrics.functional.perceptual import local_distance_map

    g = torch.Generator().manual_seed(0)
    fa = torch.relu(torch.randn(3, 16, 5, 7, generator=g, dtype=dtype))
    fb = torch.relu(fa + 0.5 * torch.randn(3, 16, 5, 7, generator=g, dtype=dtype))
    fa[0, :, 1, 2] = 0  # a zero vector against a non-zero one
    fa[1, :, 0, 0] = fb[1, :, 0, 0] = 0  # two zero vectors
    w = torch.rand(1, 16, 1, 1, generator=g, dtype=dtype) if weighted else None
    if layout == "channels_last":
        fa, fb = fa.contiguous(memory_format=torch.channels_last), fb.contiguous(memory_format=torch.channels_last)
    elif layout == "nhwc_permuted":
        fa, fb = (x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) for x in (fa, fb))
    got = local_distance_map(fa, fb, w)
    assert got.dtype == dtype and got.shape == (3, 5, 7)
    a, b = fa.double(), fb.double()
    direct = (a / (a.norm(dim=1, keepdim=True) + 1e-10) - b / (b.norm(dim=1, keepdim=True) + 1e-10)) ** 2
    direct = (direct * (w.double() if weighted else 1.0)).sum(1)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(got.double(), direct, rtol=tol * 10, atol=tol)
    assert got[1, 0, 0] == 0 and torch.isfinite(got).all()
    assert (local_distance_map(fa, fa.clone(), w) == 0).all()  # identical maps: exactly 0
    with pytest.raises(I2IInputError, match="weights"):
        local_distance_map(fa, fb, torch.ones(3))
    with pytest.raises(I2IInputError, match="equal shape"):
        local_distance_map(fa, fb[:, :8])


def test_a_backbone_with_components_is_identified_by_all_its_files(tmp_path, monkeypatch):
    """``BackboneSpec.components``: the component's file is resolved by its own rules, handed to the
    loader, and part of ``weights_sha256``; replacing it changes the identity (``weights_unchanged``)."""
    from pytest_i2i.backbones.factory import backbone, weights_unchanged
    from pytest_i2i.backbones.registry import _REGISTRY, register_backbone
    from pytest_i2i.backbones.spec import BackboneSpec
    from pytest_i2i.backbones.weights import PretrainedCfg, WeightsFile
    from pytest_i2i.files import sha256_file

    seen = {}

    def load(model, path, components):
        seen.update(main=path, **components)
        model.weight.data.fill_(float(torch.load(path)["v"]) + float(torch.load(components["test-part"])["v"]))

    def spec(name, filename, **kw):
        return BackboneSpec(name=name, create=lambda: torch.nn.Linear(1, 1, bias=False),
                            init_random=lambda m, s: None, pretrained=PretrainedCfg((WeightsFile(filename),)),
                            input_size=(8, 8), outputs=("y",), **kw)

    register_backbone(spec("test-part", "part.pt"))
    register_backbone(spec("test-composite", "main.pt", components=("test-part",), load_weights=load))
    try:
        monkeypatch.setenv("I2I_WEIGHTS_DIR", str(tmp_path))
        torch.save({"v": torch.tensor(1.0)}, tmp_path / "main.pt")
        torch.save({"v": torch.tensor(2.0)}, tmp_path / "part.pt")
        bb = backbone("test-composite")
        assert float(bb.model.weight) == 3.0 and seen["test-part"] == tmp_path / "part.pt"
        import hashlib

        joined = f"{sha256_file(tmp_path / 'main.pt')}+test-part:{sha256_file(tmp_path / 'part.pt')}"
        assert bb.weights_sha256 == hashlib.sha256(joined.encode()).hexdigest()
        assert bb.calibrated is False  # nothing to verify either file against

        class Result:  # the provenance fields of a MetricResult
            backbone, weights_sha256, calibrated = "test-composite", bb.weights_sha256, False

        assert weights_unchanged(Result())
        torch.save({"v": torch.tensor(5.0)}, tmp_path / "part.pt")
        assert not weights_unchanged(Result())
        assert float(backbone("test-composite").model.weight) == 6.0
        (tmp_path / "part.pt").unlink()
        with pytest.raises(WeightsNotFound, match="part.pt"):
            backbone("test-composite")
    finally:
        _REGISTRY.pop("test-composite", None)
        _REGISTRY.pop("test-part", None)


LPIPS_EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "lpips-example"


@pytest.mark.skipif(not LPIPS_EXAMPLE.is_dir(), reason="../shared/data/lpips-example not present")
def test_lpips_on_the_reference_example_files(trunk_files):
    """The LPIPS repository's example triplet (real 64x64 PNG files): ours from the file paths equals
    the package on the images read the package's way (``im2tensor``: u8 / 127.5 − 1, ``normalize=False``).
    Random trunk: the values are UNCALIBRATED, not the repository's published ones."""
    import lpips
    import numpy as np
    from PIL import Image

    ref = _lpips_reference("alex", trunk_files["alex"])
    paths = {k: LPIPS_EXAMPLE / f"imgs_ex_{k}.png" for k in ("ref", "p0", "p1")}
    ours = pytest_i2i.lpips([str(paths["ref"])] * 2, [str(paths["p0"]), str(paths["p1"])], weights=trunk_files["alex"])
    tensors = {k: lpips.im2tensor(np.asarray(Image.open(p).convert("RGB"))) for k, p in paths.items()}
    with torch.no_grad():
        expected = [float(ref(tensors["ref"], tensors[k])) for k in ("p0", "p1")]
    assert ours.per_sample == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert all(name.endswith("imgs_ex_ref.png") for name in ours.sample_names)


def test_the_model_suite_gates_them_with_weights_and_skips_them_naming_the_files(pytester, tmp_path, monkeypatch):
    """``suites/model`` (copied unchanged) has a fidelity_to_target test for each: gated when the trunk's
    weights are there (here ``--i2i-weights lpips-alex=random``, uncalibrated), skipped with the file to
    install when not (offline, empty caches). The generator is a SYNTHETIC TorchScript brightness map."""
    import shutil

    from pytest_i2i.suite import suite_metrics

    assert {"lpips", "dists", "dreamsim"} <= set(suite_metrics("fidelity_to_target"))

    class Brighten(torch.nn.Module):
        def forward(self, x):
            return (x * 0.9 + 0.05).clamp(0, 1)

    model = tmp_path / "brighten.pt"
    torch.jit.script(Brighten()).save(str(model))
    suite = Path(__file__).resolve().parents[1] / "suites" / "model" / "test_model.py"
    shutil.copy(suite, pytester.path / "test_model.py")
    pytester.makepyprojecttoml("""
        [tool.i2i.thresholds]
        lpips = 1.0
    """)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("I2I_WEIGHTS_DIR", raising=False)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--i2i-max-samples=2", "-rs", f"--i2i-model={model}",
        "--i2i-weights", "lpips-alex=random", "-k", "fidelity_to_target and (lpips or dists or dreamsim)")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines_random([
        "*dists: weights for backbone 'dists-vgg16' (vgg16-397923af.pth) not found*",
        "*dreamsim: weights for backbone 'dreamsim-ensemble' (dreamsim_ensemble_checkpoint.zip) not found*",
    ])


def _write_pngs(folder: Path, images) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    for i, x in enumerate(images):
        arr = (x.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        Image.fromarray(arr).save(folder / f"{i:02d}.png")
    return folder


def test_i2i_score_lists_computes_and_skips_them(tmp_path, capsys, monkeypatch):
    """``i2i metrics`` lists them (from the registry); ``i2i score --metrics lpips,dists,dreamsim`` skips each
    naming its file when the weights are missing (offline, empty caches), and with ``--weights random``
    gives the functions' values on the same files (UNCALIBRATED)."""
    from pytest_i2i.cli import main
    from pytest_i2i.metrics import perceptual

    photos = sample_images(48)
    real = _write_pngs(tmp_path / "real", [photos[i] for i in range(3)])
    fake = _write_pngs(tmp_path / "fake", [photos[i].flip(-1) for i in range(3)])
    assert main(["metrics"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("lpips", "dists", "dreamsim"))

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("I2I_WEIGHTS_DIR", raising=False)
    assert main(["score", str(real), str(fake), "--metrics", "lpips,dists,dreamsim"]) == 0
    out = capsys.readouterr().out
    for file in ("alexnet-owt-7be5be79.pth", "vgg16-397923af.pth", "dreamsim_ensemble_checkpoint.zip"):
        assert file in out
    monkeypatch.setattr(perceptual, "head_candidates", lambda head: [])  # no lpips package: its head is missing
    assert main(["score", str(real), str(fake), "--metrics", "lpips", "--weights", "random"]) == 0
    assert "skipped lpips" in (out := capsys.readouterr().out) and "lpips_v0.1_alex.pth" in out
    monkeypatch.undo()

    out_json = tmp_path / "scores.json"
    assert main(["score", str(real), str(fake), "--metrics", "lpips,dists", "--weights", "random",
                 "--json", str(out_json)]) == 0
    import json

    got = {r["name"]: r["value"] for r in json.loads(out_json.read_text())["results"]}
    assert got["lpips"] == pytest.approx(pytest_i2i.lpips(str(real), str(fake), weights="random").value, rel=1e-6)
    assert got["dists"] == pytest.approx(pytest_i2i.dists(str(real), str(fake), weights="random").value, rel=1e-6)


def test_score_files_name_them_with_their_direction(tmp_path):
    """A score file's ``LPIPS`` / ``DISTS`` / ``DreamSim`` columns are the registered distances (lower is better)."""
    from pytest_i2i.validation.judgments import load_scores

    f = tmp_path / "scores.csv"
    f.write_text("item,model,LPIPS,DISTS,DreamSim\na.png,A,0.1,0.2,0.3\n")
    s = load_scores(f)
    assert s.higher_is_better == {"LPIPS": False, "DISTS": False, "DreamSim": False}
    assert s.registry_names == {"LPIPS": "lpips", "DISTS": "dists", "DreamSim": "dreamsim"}


def test_a_judgment_sets_images_are_scored_with_them(tmp_path):
    """``i2i validate --metrics lpips,dists`` on a BAPPS-layout 2AFC set (SYNTHETIC: bundled photos at 32 px
    and their edited copies, invented judge fractions) scores each triplet with the functions' values:
    the 2AFC score equals the one computed here from ``pytest_i2i.lpips`` / ``dists`` directly (UNCALIBRATED)."""
    import numpy as np

    from pytest_i2i.validation.validation_report import validate

    photos = sample_images(32)
    root = tmp_path / "bapps" / "traditional"
    hs = [0.1, 0.8, 0.3, 0.6]
    names = []
    for i, h in enumerate(hs):
        ref = photos[i]
        triplet = {"ref": ref, "p0": (ref * 0.6 + 0.2).clamp(0, 1), "p1": ref.flip(-1)}
        for part, x in triplet.items():
            _write_pngs(root / part / f"tmp{i}", [x])
            (root / part / f"tmp{i}" / "00.png").rename(root / part / f"{i:06d}.png")
            (root / part / f"tmp{i}").rmdir()
        (root / "judge").mkdir(exist_ok=True)
        np.save(root / "judge" / f"{i:06d}.npy", np.array([h]))
        names.append(f"{i:06d}.png")
    report = validate([tmp_path / "bapps"], tmp_path / "r", metrics=["lpips", "dists"], weights="random",
                      n_resamples=100)
    for name, fn in (("lpips", pytest_i2i.lpips), ("dists", pytest_i2i.dists)):
        rows = [r for r in report["results"] if r["metric"] == name and r["level"] == "2afc"]
        assert len(rows) == 1 and rows[0]["n"] == len(hs) and rows[0]["calibrated"] is False
        refs = [str(root / "ref" / n) for n in names]
        d0 = np.array(fn(refs, [str(root / "p0" / n) for n in names], weights="random").per_sample)
        d1 = np.array(fn(refs, [str(root / "p1" / n) for n in names], weights="random").per_sample)
        h = np.array(hs)
        credit = (d0 < d1) * (1 - h) + (d1 < d0) * h + 0.5 * (d0 == d1)
        assert rows[0]["two_afc"]["value"] == pytest.approx(credit.mean(), abs=1e-9)


def test_lpips_maps_become_the_reports_heat_maps(tmp_path, images):
    """``lpips(spatial=True)``'s per-pixel maps (image-sized, one per pair) are drawn by the HTML report
    over each worst sample's output, captioned with the metric's name (random trunk: UNCALIBRATED)."""
    from pytest_i2i.html_report import export_images, render_html
    from pytest_i2i.report import metric_entry

    a, b, _, _ = images
    r = pytest_i2i.lpips(a[:2], b[:2], weights="random", spatial=True)
    assert [len(m) for m in r.extra["maps"]] == [64, 64] and [len(m[0]) for m in r.extra["maps"]] == [64, 64]
    for uid, x in zip(r.sample_names, b[:2]):
        export_images(tmp_path / "images", uid, {"output": x})
    entry = metric_entry("test_lpips", 0, r, "passed", [])
    report = {"session": {}, "metrics": [entry]}
    page = render_html(report, tmp_path).read_text()
    heats = sorted((tmp_path / "plots").glob("m0-lpips-*heat*.png"))
    assert len(heats) == 2 and page.count("lpips map</figcaption>") == 2
