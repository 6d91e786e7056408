"""The sensitivity engine end to end (tiny: 3 photos, 48 px, one random-weights ViT), its numbers
re-derived independently, its files, and the ``i2i sensitivity`` command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from pytest_i2i.errors import I2IInputError, UnknownNameError
from pytest_i2i.metrics.functional.frechet import frechet_distance_features
from pytest_i2i.validation.sensitivity import UNCALIBRATED, edit_seed, run_sensitivity, write_outputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


METRICS = ["l1", "ssim", "ms_ssim", "ciede2000", "dino_image", "fd_vit"]
OPS = ["colour_shift", "gaussian_blur", "insert_object"]
AREAS = [2.0, 25.0]


@pytest.fixture(scope="module")
def result():
    return run_sensitivity(metrics=METRICS, ops=OPS, areas_percent=AREAS, weights="random", size=48, n_images=3,
                           repeats=1, n_permutations=99)


@pytest.mark.parametrize("n, d", [(10, 30), (40, 6)])
def test_low_rank_frechet_equals_the_full_covariance_formula(n, d):
    from pytest_i2i.metrics.functional.frechet import frechet_distance

    g = np.random.default_rng(n)
    x, y = g.normal(size=(n, d)), g.normal(0.3, 1.5, size=(n + 3, d))
    full = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert frechet_distance_features(x, y) == pytest.approx(full, rel=1e-6)
    assert frechet_distance_features(x, x) == pytest.approx(0.0, abs=1e-9)


def test_table_layout_and_labels(result):
    t = result.table
    assert result.skipped.keys() == {"ms_ssim"} and "176" in result.skipped["ms_ssim"]
    paired = t[t.kind == "paired"]
    assert set(paired.metric) == {"l1", "ssim", "ciede2000", "dino_image"}
    assert len(paired) == 4 * len(OPS) * len(AREAS) * 5  # against all nuisances pooled + each of 4
    assert paired.auroc.between(0, 1).all()
    assert (paired[paired.against == "all"].n_nuisance == 3 * 4).all() and (paired.n_edit == 3).all()
    sets = t[t.kind == "set"]
    assert set(sets.metric) == {"fd_vit"} and sets.p_value.between(0, 1).all()
    assert result.calibration == {"l1": "weight-free", "ssim": "weight-free", "ciede2000": "weight-free",
                                  "dino_image": UNCALIBRATED, "fd_vit": UNCALIBRATED}
    assert not result.calibrated and result.statement[0].startswith("UNCALIBRATED")


def test_scores_equal_the_public_metrics(result):
    """The engine's per-copy scores are the metrics' own values on the same copies."""
    import pytest_i2i
    from pytest_i2i.images import sample_images
    from pytest_i2i.perturb import local_edit

    img = sample_images(48)[1]
    a_idx, area = 1, AREAS[1]
    copy = local_edit(img, "gaussian_blur", area=area / 100, region="ellipse", seed=edit_seed(0, 1, 0, a_idx)).image
    s = result.scores
    row = s[(s.image == "chelsea.png") & (s.op == "gaussian_blur") & (s.area_percent == area)]
    bb = pytest_i2i.backbone("dino-vits16", weights="random")
    expected = {"l1": pytest_i2i.l1(img[None], copy[None]).value,
                "ciede2000": pytest_i2i.ciede2000(img[None], copy[None]).value,
                "dino_image": pytest_i2i.dino_image(img[None], copy[None], backbone=bb).value}
    for metric, value in expected.items():
        assert float(row[row.metric == metric].value.iloc[0]) == pytest.approx(value, rel=1e-6, abs=1e-9)


def test_auroc_and_statement_follow_from_the_scores(result):
    s, t = result.scores, result.table
    for metric, similar in (("ssim", True), ("ciede2000", False)):
        m = s[s.metric == metric]
        neg = m[m.kind == "nuisance"].value.to_numpy()
        pos = m[(m.kind == "edit") & (m.op == "insert_object") & (m.area_percent == 25.0)].value.to_numpy()
        sign = -1 if similar else 1
        brute = np.mean([(sign * p > sign * q) + 0.5 * (p == q) for p in pos for q in neg])
        row = t[(t.metric == metric) & (t.op == "insert_object") & (t.area_percent == 25.0) & (t.against == "all")]
        assert float(row.auroc.iloc[0]) == pytest.approx(brute, abs=1e-12)
    for metric in ("l1", "ciede2000", "dino_image"):
        line = next(x for x in result.statement if x.startswith(metric))
        for op in OPS:
            cells = t[(t.metric == metric) & (t.op == op) & (t.against == "all") & (t.auroc >= 0.9)]
            expected = "never in the tested range" if cells.empty else f"{cells.area_percent.min():g}%"
            assert f"{op} {expected}" in line


def test_outputs_carry_every_number_and_the_uncalibrated_label(result, tmp_path):
    paths = write_outputs(result, tmp_path)
    table = pd.read_csv(paths["table"])
    assert len(table) == len(result.table) and set(table.calibration) >= {"weight-free", UNCALIBRATED}
    data = json.loads(paths["json"].read_text())
    assert data["calibrated"] is False and data["label"] == UNCALIBRATED
    assert len(data["table"]) == len(result.table) and len(data["scores"]) == len(result.scores)
    assert data["statement"] == result.statement
    assert paths["statement"].read_text().startswith("UNCALIBRATED")
    assert (tmp_path / "UNCALIBRATED.txt").exists()
    for key in ("paired_plot", "set_plot"):
        assert paths[key].read_bytes()[:4] == b"\x89PNG"


def test_weight_free_run_is_calibrated_and_deterministic(tmp_path):
    kwargs = {"metrics": ["l1", "psnr"], "ops": ["jpeg"], "areas_percent": [5.0, 25.0], "size": 32, "n_images": 2,
              "repeats": 1}
    a, b = run_sensitivity(**kwargs), run_sensitivity(**kwargs)
    assert a.calibrated and not any("UNCALIBRATED" in line for line in a.statement)
    pd.testing.assert_frame_equal(a.table, b.table)
    paths = write_outputs(a, tmp_path)
    assert not (tmp_path / "UNCALIBRATED.txt").exists() and "set_plot" not in paths


def test_user_folder_and_bad_arguments(tmp_path):
    from pytest_i2i.images import write_sample_folder

    write_sample_folder(tmp_path / "imgs", size=40, names=("coffee", "rocket"))
    r = run_sensitivity(tmp_path / "imgs", metrics="l1", ops="copy_move", areas_percent=[10.0], size=32, repeats=1)
    assert r.config["image_names"] == ["coffee.png", "rocket.png"]
    with pytest.raises(UnknownNameError, match="metric"):
        run_sensitivity(metrics=["no_such_metric"])
    with pytest.raises(UnknownNameError, match="operation"):
        run_sensitivity(metrics=["l1"], ops=["blur"])
    with pytest.raises(I2IInputError, match="areas"):
        run_sensitivity(metrics=["l1"], areas_percent=[60.0])
    with pytest.raises(I2IInputError, match="n_images"):
        run_sensitivity(metrics=["l1"], n_images=1)


def test_missing_weights_skip_or_fail(monkeypatch, tmp_path):
    from pytest_i2i.errors import WeightsError

    monkeypatch.setenv("I2I_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.delenv("I2I_ALLOW_DOWNLOAD", raising=False)
    try:
        import pytest_i2i

        pytest_i2i.backbone("dino-vits16")
        pytest.skip("dino-vits16 weights are installed on this machine")
    except WeightsError:
        pass
    r = run_sensitivity(metrics=["l1", "dino_image"], ops=["jpeg"], areas_percent=[25.0], size=32, n_images=2,
                        repeats=1)
    assert "dino_image" in r.skipped and "weights" in r.skipped["dino_image"]
    assert any(line.startswith("dino_image: skipped") for line in r.statement)
    with pytest.raises(WeightsError):
        run_sensitivity(metrics=["dino_image"], ops=["jpeg"], areas_percent=[25.0], size=32, n_images=2,
                        require_weights=True)


def test_cli(tmp_path, capsys):
    from pytest_i2i.cli import main

    out = tmp_path / "out"
    code = main(["sensitivity", "--metrics", "l1,ciede2000", "--ops", "erase_fill", "--areas", "5,25",
                 "--n-images", "2", "--size", "32", "--repeats", "1", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "l1: detects" in printed and (out / "sensitivity.csv").exists() and (out / "sensitivity.json").exists()
    assert main(["sensitivity", "--metrics", "nope", "--out", str(out)]) == 2
    assert "unknown metric" in capsys.readouterr().err
    assert main(["sensitivity", "--images", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert main(["sensitivity", "--areas", "a,b", "--out", str(out)]) == 2


def test_paired_scores_of_identical_images_never_count_as_detections():
    """Sanity: nuisance copies are real changes; an edit with no effect scores as the original."""
    from pytest_i2i.validation.functional.detection import detection_auroc

    zeros = torch.zeros(4).numpy()
    assert detection_auroc(zeros, np.array([0.1, 0.2]), higher_is_more_similar=False) == 0.0
