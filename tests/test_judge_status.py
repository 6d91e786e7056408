"""The judgment store and the live status: rows the project's loader reads, per-rater numbers checked by
hand, the ranking equal to ``validate`` on the same folder. The scripted answers are synthetic."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from pytest_i2i.errors import DatasetError, I2IInputError
from pytest_i2i.judge import (
    JudgmentStore,
    MetricRanking,
    Scale,
    load_tasks,
    make_pairwise,
    make_perturbation_2afc,
    make_rating,
    read_study,
    study_status,
)
from pytest_i2i.judge.records import DATA_NAME, read_rows
from pytest_i2i.validation.judgments import load_judgments

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gold_dir(tmp_path_factory):
    return make_perturbation_2afc(tmp_path_factory.mktemp("st") / "tasks", n_images=3, size=32,
                                  ops=("gaussian_blur", "jpeg"), repeats=2, seed=4).parent


def _side_of(slot, role):
    return "left" if slot.left == role else "right"


def test_per_rater_numbers_and_agreement_by_hand(gold_dir, tmp_path):
    tasks = load_tasks(gold_dir)
    with JudgmentStore(tmp_path / "out", tasks, synthetic=True) as store:
        for slot in store.schedule("ann"):  # always the known answer
            store.add("ann", slot, _side_of(slot, tasks.items[slot.task]["gold"]))
        for slot in store.schedule("bob"):  # always the left image
            store.add("bob", slot, "left")
        judgments = store.judgments()
    s = study_status(tasks, judgments)
    ann, bob = s["raters"]["ann"], s["raters"]["bob"]
    assert ann["n"] == bob["n"] == 8 and ann["gold"]["agreement"] == 1.0
    assert ann["self_consistency"] == {"n_pairs": 2, "agreement": 1.0}
    bob_slots = tasks.schedule("bob")
    bob_right = sum(s_.left == tasks.items[s_.task]["gold"] for s_ in bob_slots)
    assert bob["gold"]["agreement"] == pytest.approx(bob_right / 8)
    assert bob["self_consistency"]["agreement"] == 0.0 and bob["left_rate"] == 1.0  # sides swapped on repeats
    # Krippendorff's alpha (nominal, 2 coders, no missing values) from its definition, by hand
    first = {(j.rater, j.task): j.value for j in judgments if j.occurrence == 1}
    ids = sorted(tasks.items)
    a = np.array([first[("ann", t)] for t in ids])
    b = np.array([first[("bob", t)] for t in ids])
    values = np.concatenate([a, b])
    n = values.size
    n_c = {v: float((values == v).sum()) for v in set(values)}
    d_o = 2 * float((a != b).sum())  # each unit contributes its two ordered disagreeing pairs (m_u - 1 = 1)
    d_e = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k)
    alpha = 1 - (n - 1) * d_o / d_e
    assert s["agreement"]["krippendorff_alpha"]["nominal"] == pytest.approx(alpha, abs=1e-12)
    assert s["agreement"]["rater_agreement"]["value"] == pytest.approx(float((a == b).mean()))
    assert json.loads(json.dumps(s, allow_nan=False)) == s


def test_ranking_equals_validate_on_the_same_folder(gold_dir, tmp_path):
    from pytest_i2i.validation.validation_report import validate

    tasks = load_tasks(gold_dir)
    out = tmp_path / "out"
    rng = np.random.default_rng(0)
    with JudgmentStore(out, tasks, synthetic=True) as store:
        for rater in ("ann", "bob", "cyd"):
            for slot in store.schedule(rater):
                store.add(rater, slot, str(rng.choice(["left", "right", "cant_tell"])))
    ranking = MetricRanking(out, tasks, ["l1", "psnr"], n_resamples=300, seed=1).compute()
    report = validate([out], tmp_path / "rep", metrics=["l1", "psnr"], n_resamples=300, seed=1)
    for metric in ("l1", "psnr"):
        mine = next(r for r in ranking["rows"] if r["metric"] == metric)
        ref = next(r for r in report["results"] if r["metric"] == metric)
        assert mine["n"] == ref["n"] == 24
        assert mine["value"] == ref["two_afc"]["value"] and mine["ci"] == ref["two_afc"]["ci"]


def test_pairwise_answers_are_rows_the_loader_reads(tmp_path):
    from PIL import Image

    from pytest_i2i.data import sample_dataset

    ds = sample_dataset(24)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for s in ds:
            arr = np.asarray(s.target) if folder == "a" else 255 - np.asarray(s.target)
            Image.fromarray(arr.astype("uint8")).save(tmp_path / folder / f"{s.uid}.png")
    tasks = load_tasks(make_pairwise(tmp_path / "t", a=tmp_path / "a", b=tmp_path / "b", repeats=0))
    answers = ["left", "right", "tie", "both_bad"]
    with JudgmentStore(tmp_path / "out", tasks) as store:
        slots = store.schedule("ann")[:4]
        for slot, ans in zip(slots, answers):
            store.add("ann", slot, ans)
        with pytest.raises(I2IInputError, match="not allowed"):
            store.add("ann", store.schedule("ann")[5], "cant_tell")
    js = load_judgments(tmp_path / "out")
    assert js.kind == "pairwise" and not js.synthetic and len(js.table) == 4
    expected = [0.0 if slots[0].left == "a" else 1.0, 1.0 if slots[1].left == "a" else 0.0, 0.5, 0.5]
    assert list(js.table["h"]) == expected
    raw = [r for _, r in read_rows(tmp_path / "out" / DATA_NAME)[0]]
    assert raw[2]["winner"] == "tie" and "winner" not in raw[3] and raw[3]["h"] == "0.5"
    _, judgments, _ = read_study(tmp_path / "out")
    assert [j.outcome for j in judgments][2:] == ["tie", "both_bad"]
    assert all(r["reference"].startswith("target/") for r in raw)


def test_rating_with_repeats_and_scale_checks(tmp_path, photo_folders):
    real, fake = photo_folders
    scale = Scale.parse("1:5", criterion="quality")
    tasks = load_tasks(make_rating(tmp_path / "t", images=[real, fake], models=["orig", "jpeg"], scale=scale,
                                   repeats=2))
    with JudgmentStore(tmp_path / "out", tasks) as store:
        for rater, offset in (("ann", 0), ("bob", 1)):
            for k, slot in enumerate(store.schedule(rater)):
                store.add(rater, slot, 1 + (k + offset) % 5)
        size = (tmp_path / "out" / DATA_NAME).stat().st_size
        for bad in (0, 6, 2.5, float("nan"), "3", True):
            with pytest.raises(I2IInputError):
                store.add("cyd", store.schedule("cyd")[0], bad)
        assert (tmp_path / "out" / DATA_NAME).stat().st_size == size
        judgments = store.judgments()
    js = load_judgments(tmp_path / "out")
    assert js.criteria == ["quality"] and set(js.table["rater"]) == {"ann", "bob"} and len(js.table) == 36
    assert sum(js.table["item"].str.endswith("#2")) == 4 and set(js.table["model"]) == {"orig", "jpeg"}
    s = study_status(tasks, judgments)
    assert s["raters"]["ann"]["self_consistency"]["n_pairs"] == 2
    assert "left_rate" not in s["raters"]["ann"] and s["agreement"]["krippendorff_alpha"]["interval"] is not None


def test_a_failed_write_leaves_nothing_behind(gold_dir, tmp_path, monkeypatch):
    import pytest_i2i.judge.store as store_module

    tasks = load_tasks(gold_dir)
    real_write = os.write
    with JudgmentStore(tmp_path / "out", tasks) as store:
        slot0, slot1 = store.schedule("ann")[:2]
        store.add("ann", slot0, "left")
        size = (tmp_path / "out" / DATA_NAME).stat().st_size

        def half_then_full_disk(fd, data):
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(store_module.os, "write", half_then_full_disk)
        with pytest.raises(OSError):
            store.add("ann", slot1, "left")
        monkeypatch.setattr(store_module.os, "write", real_write)
        assert (tmp_path / "out" / DATA_NAME).stat().st_size == size and len(store.judgments()) == 1
        assert store.add("ann", slot1, "right")[1] is True
    assert len(load_judgments(tmp_path / "out").table) == 2


def test_the_folder_belongs_to_one_study(gold_dir, tmp_path):
    tasks = load_tasks(gold_dir)
    out = tmp_path / "out"
    with JudgmentStore(out, tasks):
        pass
    with pytest.raises(DatasetError, match="synthetic = False"):
        JudgmentStore(out, tasks, synthetic=True).open()
    other = load_tasks(make_perturbation_2afc(tmp_path / "other", n_images=1, size=32, ops=("jpeg",)))
    with pytest.raises(DatasetError, match="holds judgments of another task set"):
        JudgmentStore(out, other).open()
    with open(out / DATA_NAME, "a") as f:
        f.write('{"item": "t0099@ann", "reference": "x.png", "p0": "y.png", "p1": "z.png", "h": "1"}\n')
    with pytest.raises(DatasetError, match=r"line 1: task 't0099' is not in"):
        JudgmentStore(out, tasks).open()
