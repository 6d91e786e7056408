"""``i2i validate`` and the report end to end. Synthetic sets are written here and labelled
SYNTHETIC; the real-data test (ImagenHub ratings + VIEScore's LPIPS) skips when ../shared is absent
and checks the report against an independent pandas + scipy computation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as ss
from PIL import Image

from pytest_i2i.cli import main
from pytest_i2i.errors import I2IInputError, JudgmentError
from pytest_i2i.validation.judgments import write_manifest
from pytest_i2i.validation.validation_report import validate

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
IMAGENHUB = SHARED / "imagenhub-text-guided-ie"
VIESCORE = SHARED / "viescore-lpips-text-guided-ie"


def _strict_json(path: Path) -> dict:
    def reject(name):
        raise AssertionError(f"{path}: non-strict JSON constant {name}")

    return json.loads(path.read_text(), parse_constant=reject)


def _row(report, criterion, level, metric):
    rows = [r for r in report["results"] if (r["criterion"], r["level"], r["metric"]) == (criterion, level, metric)]
    assert len(rows) == 1
    return rows[0]


def _img(path: Path, rng, size: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def write_edit_set(root: Path, rng, n_uids: int = 6) -> Path:
    """A SYNTHETIC ImagenHub-layout set: 3 models x n_uids x 3 raters, with input and output images."""
    uids = [f"s{i}.png" for i in range(n_uids)]
    models = ["A", "B", "C"]
    for r in (1, 2, 3):
        lines = ["uid\t" + "\t".join(models)]
        for uid in uids:
            lines.append(uid + "\t" + "\t".join(f"[{rng.choice([0, 0.5, 1]):g}, {rng.choice([0, 0.5, 1]):g}]"
                                                for _ in models))
        root.mkdir(exist_ok=True)
        (root / f"Synthetic_IE_rater{r}.tsv").write_text("\n".join(lines) + "\n")
    for uid in uids:
        _img(root / "images" / "input" / uid, rng)
        for m in models:
            _img(root / "images" / m / uid, rng)
    write_manifest({"name": "synthetic-edit", "kind": "edit-rating", "format": "imagenhub", "synthetic": True,
                    "description": "SYNTHETIC test data, not human judgments", "images_root": "images"},
                   root / "judgments.toml")
    return root


@pytest.fixture
def edit_set(tmp_path, rng):
    return write_edit_set(tmp_path / "edit", rng)


def test_computed_metrics_on_an_edit_set(edit_set, tmp_path):
    out = tmp_path / "report"
    report = validate([edit_set], out, metrics=["l1", "psnr"], n_resamples=200)
    data = _strict_json(out / "validation.json")
    assert data["judgment_sets"][0]["synthetic"] is True
    assert "SYNTHETIC" in (out / "report.md").read_text()
    assert (out / "table.csv").read_text().startswith("set,criterion,metric,level,n")
    assert any(p.startswith("plots/") for p in data["plots"]) and (out / data["plots"][0]).is_file()
    # l1 recomputed here on the same pairs, then scipy on the mean SC over raters
    js_rows = [r for r in report["results"] if r["metric"] == "l1" and r["level"] == "item" and r["criterion"] == "SC"]
    assert js_rows[0]["n"] == 18
    from pytest_i2i.validation.judgments import load_judgments

    t = load_judgments(edit_set).table
    sc = t[t["criterion"] == "SC"].groupby(["item", "model"])["score"].mean()
    l1 = []
    for item, model in sc.index:
        a = np.asarray(Image.open(edit_set / "images" / "input" / item), float) / 255
        b = np.asarray(Image.open(edit_set / "images" / model / item), float) / 255
        l1.append(np.abs(a - b).mean())
    expected = -ss.spearmanr(l1, sc.to_numpy()).statistic  # l1 is a distance: oriented = -raw
    assert js_rows[0]["correlations"]["spearman"]["value"] == pytest.approx(expected, abs=1e-9)
    assert data["metrics"]["l1"]["higher_is_better"] is False and data["metrics"]["l1"]["calibrated"] is True


def test_constant_metric_is_null_with_reason_and_exit_1(edit_set, tmp_path, capsys):
    scores = tmp_path / "const.csv"
    rows = ["item,model,flat"] + [f"s{i}.png,{m},0.5" for i in range(6) for m in "ABC"]
    scores.write_text("\n".join(rows) + "\n")
    out = tmp_path / "r"
    rc = main(["validate", str(edit_set), str(scores), "--out", str(out), "--direction", "flat=higher",
               "--resamples", "100"])
    assert rc == 1
    data = _strict_json(out / "validation.json")
    row = _row(data, "SC", "item", "flat")
    assert row["correlations"]["spearman"]["value"] is None
    assert "constant" in row["correlations"]["spearman"]["reason"]
    assert any(p["metric"] == "flat" and "constant" in p["reason"] for p in data["problems"])


def test_uid_mismatch_between_scores_and_judgments_is_reported(edit_set, tmp_path):
    scores = tmp_path / "other.csv"
    scores.write_text("item,model,MyDist\nzzz.png,A,0.1\nyyy.png,B,0.2\n")
    with pytest.raises(JudgmentError, match="direction of metric 'MyDist' unknown"):  # a CSV: no format directions
        validate([edit_set, scores], tmp_path / "r", n_resamples=100)
    report = validate([edit_set, scores], tmp_path / "r", n_resamples=100, directions={"MyDist": False})
    assert any("no value for any judged" in p["reason"] for p in report["problems"])
    # the scores are bound to the only set: uids it does not have are named, with the file
    assert any("not in the ratings" in p["reason"] and "zzz.png" in p["reason"] and "other.csv" in p["reason"]
               for p in report["problems"])


@pytest.mark.parametrize("args,message", [
    (["nowhere"], "does not exist"),
    (["EMPTY"], "neither a judgment set nor precomputed scores. Recognised judgment layouts"),
])
def test_bad_paths_exit_2_with_the_layouts(tmp_path, capsys, args, message):
    (tmp_path / "EMPTY").mkdir()
    rc = main(["validate", *[str(tmp_path / a) for a in args], "--out", str(tmp_path / "r")])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err
    if "layouts" in message:
        assert "ImagenHub" in err and "BAPPS" in err and "TID2013" in err


def test_no_metric_at_all_is_an_error(edit_set, tmp_path):
    with pytest.raises(I2IInputError, match="no metric to correlate"):
        validate([edit_set], tmp_path / "r", metrics=[])


def test_two_afc_set_with_a_computed_distance(tmp_path, rng):
    root = tmp_path / "bapps" / "traditional"
    hs = rng.random(8)
    for i, h in enumerate(hs):
        for part in ("ref", "p0", "p1"):
            _img(root / part / f"{i:06d}.png", rng, 16)
        (root / "judge").mkdir(exist_ok=True)
        np.save(root / "judge" / f"{i:06d}.npy", np.array([h]))
    report = validate([tmp_path / "bapps"], tmp_path / "r", metrics=["l1"], n_resamples=200)
    row = _row(report, "2afc", "2afc", "l1")

    def l1(a, b):
        return np.abs(np.asarray(Image.open(a), float) - np.asarray(Image.open(b), float)).mean()

    credit = []
    for i, h in enumerate(hs):
        d0 = l1(root / "ref" / f"{i:06d}.png", root / "p0" / f"{i:06d}.png")
        d1 = l1(root / "ref" / f"{i:06d}.png", root / "p1" / f"{i:06d}.png")
        credit.append((d0 < d1) * (1 - h) + (d1 < d0) * h + 0.5 * (d0 == d1))
    assert row["two_afc"]["value"] == pytest.approx(np.mean(credit), abs=1e-6)
    assert row["human_ceiling"] == pytest.approx(np.mean(hs**2 + (1 - hs) ** 2))


def test_pairwise_set_with_precomputed_similarity(tmp_path, rng):
    """A SYNTHETIC tidy pairwise set; the metric is a similarity (higher = better), so the candidate
    with the higher value is the one the metric prefers."""
    root = tmp_path / "pw"
    root.mkdir()
    winners = rng.choice(["a", "b", "tie"], size=10)
    (root / "p.csv").write_text("item,a,b,winner\n" + "".join(f"i{k},x,y,{w}\n" for k, w in enumerate(winners)))
    write_manifest({"name": "synthetic-pairwise", "kind": "pairwise", "synthetic": True,
                    "files": [{"path": "p.csv"}]}, root / "judgments.toml")
    sims = rng.random((10, 2))
    scores = tmp_path / "s.csv"
    scores.write_text("item,model,clip_image\n" + "".join(f"i{k},p{j},{sims[k, j]}\n" for k in range(10)
                                                         for j in range(2)))
    report = validate([root, scores], tmp_path / "r", n_resamples=100)
    h = np.array([{"a": 0.0, "b": 1.0, "tie": 0.5}[w] for w in winners])
    expected = np.mean([(s0 > s1) * (1 - p) + (s1 > s0) * p + 0.5 * (s0 == s1) for (s0, s1), p in zip(sims, h)])
    assert _row(report, "2afc", "2afc", "clip_image")["two_afc"]["value"] == pytest.approx(expected, abs=1e-12)


def test_backbone_metrics_with_random_weights_are_labelled_uncalibrated(tmp_path, rng):
    """The labelling path, with stand-ins for the backbone metrics (building a random-weight ViT takes
    ~15 s on this CPU; the metrics themselves are tested in test_vit_metrics.py). The stand-ins record
    the weights they were given and return results marked uncalibrated, as weights="random" does."""
    from pytest_i2i.result import MetricResult

    seen = []

    def per_pair(a, b, *, weights=None, device=None, batch_size=16):
        seen.append(weights)
        values = [float(np.mean(np.asarray(Image.open(x), float)) - np.mean(np.asarray(Image.open(y), float)))
                  for x, y in zip(a, b)]
        return MetricResult("vit_patch_distance", float(np.mean(values)), False, len(values), per_sample=values,
                            sample_names=[str(x) for x in a], calibrated=weights != "random")

    def set_level(a, b, *, weights=None, device=None, batch_size=16):
        seen.append(weights)
        return MetricResult("fd_vit", float(len(a)) + rng.random(), False, len(a), calibrated=weights != "random")

    import dataclasses

    from pytest_i2i.metrics.registry import metric_spec, register_metric

    originals = [metric_spec("vit_patch_distance"), metric_spec("fd_vit")]
    out = tmp_path / "r"
    small = write_edit_set(tmp_path / "small", rng, n_uids=3)
    try:  # validate calls metrics through the registry: register the stand-ins there
        for spec, fn in zip(originals, (per_pair, set_level)):
            register_metric(dataclasses.replace(spec, fn=fn), overwrite=True)
        report = validate([small], out, metrics=["vit_patch_distance", "fd_vit"], weights="random", n_resamples=100)
    finally:
        for spec in originals:
            register_metric(spec, overwrite=True)
    assert set(seen) == {"random"}
    assert report["metrics"]["vit_patch_distance"]["calibrated"] is False
    assert report["metrics"]["fd_vit"]["level"] == "system"
    sys_row = _row(report, "SC", "system", "fd_vit")
    assert sys_row["n"] == 3 and sys_row["calibrated"] is False
    assert "set-level" in _row(report, "SC", "item", "fd_vit")["reason"]
    md = (out / "report.md").read_text()
    assert "vit_patch_distance (UNCALIBRATED" in md and "WARNING" in md


# -- the real data ---------------------------------------------------------------------------------
@pytest.mark.skipif(not (IMAGENHUB.is_dir() and VIESCORE.is_dir()), reason="../shared/data not present")
def test_real_imagenhub_with_viescore_lpips(tmp_path):
    import pandas as pd

    out = tmp_path / "real"
    rc = main(["validate", str(IMAGENHUB), str(VIESCORE), "--out", str(out), "--resamples", "200"])
    assert rc == 0
    data = _strict_json(out / "validation.json")
    # independent: pandas on the TSVs, the JSON keys as uids, scipy on the joined vectors
    frames = []
    for r in (1, 2, 3):
        df = pd.read_csv(IMAGENHUB / f"Text-Guided_IE_rater{r}.tsv", sep="\t").melt(id_vars="uid", var_name="model")
        df[["SC", "PQ"]] = df["value"].str.strip("[] ").str.split(",", expand=True).astype(float)
        frames.append(df.assign(rater=r))
    ratings = pd.concat(frames)
    lp = pd.DataFrame([(uid, f.stem, v["LPIPS"]) for f in sorted(VIESCORE.glob("*.json"))
                       for uid, v in json.loads(f.read_text()).items()], columns=["uid", "model", "lpips"])
    joined = ratings.groupby(["uid", "model"])[["SC", "PQ"]].mean().reset_index().merge(lp, on=["uid", "model"])
    assert len(joined) == 1432
    for crit in ("SC", "PQ"):
        item = _row(data, crit, "item", "LPIPS")
        assert item["n"] == 1432 and item["join"]["n_judged_not_scored"] == 179  # Imagic has no LPIPS file
        assert item["raw"]["spearman"] == pytest.approx(ss.spearmanr(joined["lpips"], joined[crit]).statistic,
                                                        abs=1e-9)
        assert item["raw"]["kendall"] == pytest.approx(ss.kendalltau(joined["lpips"], joined[crit]).statistic,
                                                       abs=1e-9)
        assert item["correlations"]["pearson"]["value"] == pytest.approx(
            -ss.pearsonr(joined["lpips"], joined[crit]).statistic, abs=1e-9)
        per_model = joined.groupby("model")[["lpips", crit]].mean()
        system = _row(data, crit, "system", "LPIPS")
        assert system["n"] == 8
        assert system["raw"]["spearman"] == pytest.approx(
            ss.spearmanr(per_model["lpips"], per_model[crit]).statistic, abs=1e-9)
    # leave-one-rater-out, rater 1 vs the mean of raters 2 and 3, on all 9 models' SC
    wide = ratings.pivot_table(index=["uid", "model"], columns="rater", values="SC")
    agreement = [a for a in data["agreement"] if a["criterion"] == "SC"][0]
    assert agreement["leave_one_rater_out"]["item"]["spearman"]["per_rater"][0] == pytest.approx(
        ss.spearmanr(wide[1], wide[[2, 3]].mean(axis=1)).statistic, abs=1e-9)
    assert 0 < agreement["krippendorff_alpha"]["interval"] < 1


# -- the pytest suite (suites/validation), with pytester ---------------------------------------------
SUITE = Path(__file__).resolve().parents[1] / "suites" / "validation"


def _suite_project(pytester, rng, scores: dict | None) -> list[str]:
    """A pytester folder holding the suite and a SYNTHETIC ImagenHub-layout set (+ optional per-model
    score JSON files, VIEScore's autometrics layout)."""
    for name in ("conftest.py", "test_judgments.py"):
        (pytester.path / name).write_text((SUITE / name).read_text())
    root = pytester.path / "set"
    root.mkdir()
    for r in (1, 2):
        lines = ["uid\tA\tB\tC"] + [f"u{i}\t" + "\t".join(f"[{rng.choice([0, 0.5, 1]):g},{rng.choice([0, 0.5, 1]):g}]"
                                                           for _ in range(3)) for i in range(8)]
        (root / f"Synthetic_IE_rater{r}.tsv").write_text("\n".join(lines) + "\n")
    paths = [str(root)]
    if scores is not None:
        folder = pytester.path / "scores"
        folder.mkdir()
        for model, values in scores.items():
            (folder / f"{model}.json").write_text(json.dumps(values))
        paths.append(str(folder))
    return paths


def _scores(rng, constant=False):
    return {m: {f"u{i}": {"LPIPS": 0.5 if constant else round(float(rng.random()), 4)} for i in range(8)}
            for m in "ABC"}


def test_suite_passes_and_writes_the_report(pytester, rng):
    paths = _suite_project(pytester, rng, _scores(rng))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-s", f"--i2i-judgments={','.join(paths)}",
                                           f"--i2i-report={pytester.path / 'rep'}")
    result.assert_outcomes(passed=5)
    data = _strict_json(pytester.path / "rep" / "validation" / "validation.json")
    assert data["judgment_sets"][0]["n_items"] == 8 and "LPIPS" in data["metrics"]


def test_suite_fails_for_real_reasons(pytester, rng):
    paths = _suite_project(pytester, rng, _scores(rng, constant=True))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--i2i-judgments={','.join(paths)}")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*test_every_metric_is_scored_on_every_set*", "*LPIPS*constant*"])
    # a malformed cell: the set does not load, every test says why
    rater = Path(paths[0]) / "Synthetic_IE_rater2.tsv"
    rater.write_text(rater.read_text().replace("]", " 1]", 1))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--i2i-judgments={','.join(paths)}")
    result.assert_outcomes(failed=5)
    result.stdout.fnmatch_lines(["*could not be validated: JudgmentError*rater2.tsv, line 2*malformed cell*"])


def test_suite_runs_the_bundled_sets_without_judgments(pytester, rng, monkeypatch):
    """No --i2i-judgments: the bundled real sets run offline (one ImagenHub task here, to stay fast)."""
    _suite_project(pytester, rng, None)
    monkeypatch.setenv("I2I_VALIDATION_TASKS", "Control-Guided_IG")
    monkeypatch.setenv("I2I_VALIDATION_RESAMPLES", "100")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--i2i-report={pytester.path / 'rep'}")
    result.assert_outcomes(passed=5)
    data = _strict_json(pytester.path / "rep" / "validation" / "validation.json")
    assert {js["name"] for js in data["judgment_sets"]} == {"ImagenHub_Control-Guided_IG", "genai-bench-image-edition",
                                                          "tifa-human"}
    cells = data["reproduction"]["viescore-imagenhub"]["cells"]
    run = [c for c in cells if c["task"] == "Control-Guided_IG"]
    assert run and all(c["within"] for c in run)  # every published cell of that task
    assert (pytester.path / "rep" / "validation" / "leaderboard.png").is_file()
