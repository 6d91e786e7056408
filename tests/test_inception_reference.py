"""FID / KID / IS against the reference implementations, on the same weights and inputs.

pytorch-fid (FID) and torch-fidelity (KID, IS) are run on a seeded random-init FID Inception
saved in pytorch-fid's format and loaded by both sides from that file. Tolerances: FID 1e-4
relative (the issue's bound), KID and IS 1e-6 relative on identical features.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pytest_i2i

pytest.importorskip("pytorch_fid")
pytest.importorskip("torch_fidelity")


@pytest.fixture(scope="module")
def pytorch_fid_model(inception_weights_file, monkeypatch_module):
    import pytorch_fid.inception as pfi

    monkeypatch_module.setattr(pfi, "load_state_dict_from_url",
                               lambda *a, **k: torch.load(inception_weights_file, weights_only=True))
    block = pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]
    return pfi.InceptionV3([block], resize_input=True, normalize_input=True, use_fid_inception=True).eval()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def ours(inception_weights_file):
    return pytest_i2i.backbone("inception-fid", weights=inception_weights_file)


def test_backbone_outputs_equal_pytorch_fid_model(ours, pytorch_fid_model):
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = pytorch_fid_model(x)[0].flatten(1)
    got = ours(ours.preprocess().normalize(x))["pool3"]  # the pipeline's normalisation, then the network
    # ours runs channels-last (oneDNN), pytorch-fid contiguous: they differ by float32 round-off only
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-5)
    assert not ours.calibrated


def test_fid_matches_pytorch_fid(ours, pytorch_fid_model, photo_folders):
    from pytorch_fid.fid_score import calculate_frechet_distance, get_activations

    real, fake = photo_folders
    acts = [get_activations(sorted(str(p) for p in d.iterdir()), pytorch_fid_model, batch_size=4, dims=2048,
                            device="cpu", num_workers=0) for d in (real, fake)]
    mu = [a.mean(axis=0) for a in acts]
    sigma = [np.cov(a, rowvar=False) for a in acts]
    try:
        expected = calculate_frechet_distance(mu[0], sigma[0], mu[1], sigma[1])
    except ValueError as e:  # pytorch-fid refuses complex sqrtm results on rank-deficient covariances
        pytest.fail(f"pytorch-fid could not compute the reference: {e}")
    got = pytest_i2i.fid(real, fake, backbone=ours, resize="legacy-pytorch", batch_size=4)
    assert got.value == pytest.approx(expected, rel=1e-4)
    assert got.resize == "legacy-pytorch"
    assert got.calibrated is False and got.weights_sha256 == ours.weights_sha256
    assert any("rank-deficient" in w for w in got.warnings)
    # the same features through our streaming statistics reproduce numpy's mean/cov
    stats = pytest_i2i.compute_stats(real, backbone=ours, resize="legacy-pytorch", batch_size=3)
    np.testing.assert_allclose(stats.mean, mu[0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(stats.cov, sigma[0], rtol=0, atol=1e-6)


def test_fid_reads_pytorch_fid_stats_file(ours, photo_folders, tmp_path):
    real, fake = photo_folders
    stats = pytest_i2i.compute_stats(real, backbone=ours, resize="legacy-pytorch")
    np.savez(tmp_path / "ref.npz", mu=stats.mean, sigma=stats.cov)  # pytorch-fid's --save-stats layout
    direct = pytest_i2i.fid(real, fake, backbone=ours, resize="legacy-pytorch")
    via_file = pytest_i2i.fid(tmp_path / "ref.npz", fake, backbone=ours, resize="legacy-pytorch")
    assert via_file.value == pytest.approx(direct.value, rel=1e-9)
    assert any("no provenance" in w for w in via_file.warnings)


def _features(ours, folder, key):
    return ours.features(pytest_i2i.load_images(folder), resize="legacy-pytorch")[key]


def test_kid_matches_torch_fidelity_on_same_features(ours, photo_folders):
    from torch_fidelity.metric_kid import kid_features_to_metric

    real, fake = photo_folders
    fr, ff = _features(ours, real, "pool3"), _features(ours, fake, "pool3")
    ref = kid_features_to_metric(fr.double(), ff.double(), kid_subsets=20, kid_subset_size=6, kid_degree=3,
                                 kid_gamma=None, kid_coef0=1, rng_seed=2020, verbose=False)
    got = pytest_i2i.kid(real, fake, backbone=ours, resize="legacy-pytorch", subsets=20, subset_size=6, seed=2020)
    assert got.value == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-6, abs=1e-12)
    assert got.std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-6, abs=1e-12)


def test_inception_score_matches_torch_fidelity_on_same_logits(ours, photo_folders):
    from torch_fidelity.metric_isc import isc_features_to_metric

    real, _ = photo_folders
    logits = _features(ours, real, "logits_unbiased")
    for shuffle in (False, True):
        ref = isc_features_to_metric(logits, splits=4, shuffle=shuffle, rng_seed=2020)
        got = pytest_i2i.inception_score(real, backbone=ours, resize="legacy-pytorch", splits=4, shuffle=shuffle,
                                         seed=2020)
        assert got.value == pytest.approx(ref["inception_score_mean"], rel=1e-6)
        assert got.std == pytest.approx(ref["inception_score_std"], rel=1e-6, abs=1e-12)


def test_torch_fidelity_loads_the_same_weights_file_and_agrees(ours, inception_weights_file):
    """torch-fidelity's Inception has the same keys: one file serves both, with equal pool3 features."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    ref = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                      feature_extractor_weights_path=str(inception_weights_file))
    u8 = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pool, logits = ref(u8)
    # torch-fidelity normalises (u - 128) / 128; ours (x - 0.5) / 0.5, so x = u / 256 gives the same network input
    got = ours(ours.preprocess().normalize(u8.float() / 256))
    torch.testing.assert_close(got["pool3"], pool, rtol=0, atol=1e-5)
    torch.testing.assert_close(got["logits_unbiased"], logits, rtol=0, atol=1e-4)
