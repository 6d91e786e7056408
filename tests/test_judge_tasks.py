"""``i2i judge make``: task manifests with recorded sides, known gold answers, repeats and frozen images."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from pytest_i2i.errors import DatasetError, I2IInputError, UnsafePathError
from pytest_i2i.judge import Scale, load_tasks, make_2afc, make_pairwise, make_perturbation_2afc, make_rating


@pytest.fixture(scope="module")
def gold_tasks(tmp_path_factory):
    """Six 2AFC triplets with known answers from three bundled photos (64 px), two of them repeated."""
    return make_perturbation_2afc(tmp_path_factory.mktemp("gold") / "tasks", n_images=3, size=64,
                                  ops=("gaussian_blur", "jpeg"), repeats=2, seed=5).parent


def _arr(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def test_gold_answer_is_the_weaker_edit_and_sides_are_recorded(gold_tasks):
    tasks = load_tasks(gold_tasks)
    assert tasks.kind == "2afc" and len(tasks.items) == 6 and len(tasks.repeats) == 2
    for tid, it in tasks.items.items():
        ref, p0, p1 = (_arr(tasks.root / it[k]) for k in ("reference", "p0", "p1"))
        d0, d1 = np.abs(p0 - ref).mean(), np.abs(p1 - ref).mean()
        assert it["gold"] == ("p0" if d0 < d1 else "p1"), f"{tid}: gold {it['gold']} but L1 {d0:.3f} / {d1:.3f}"
        assert it["note"]["weak"] != it["note"]["strong"] and it["left"] in ("p0", "p1")
    assert {it["left"] for it in tasks.items.values()} == {"p0", "p1"}
    assert {it["gold"] for it in tasks.items.values()} == {"p0", "p1"}
    # every image is listed with the sha256 of its bytes; a reference shared by two triplets is stored once
    raw = json.loads((gold_tasks / "tasks.json").read_text())
    assert len(raw["images"]) == 3 + 12 and set(raw["images"]) == set(tasks.images)


def test_same_seed_same_study_other_seed_other_sides(gold_tasks, tmp_path):
    again = make_perturbation_2afc(tmp_path / "a", n_images=3, size=64, ops=("gaussian_blur", "jpeg"), repeats=2,
                                   seed=5)
    assert json.loads(again.read_text()) == json.loads((gold_tasks / "tasks.json").read_text())
    other = make_perturbation_2afc(tmp_path / "b", n_images=3, size=64, ops=("gaussian_blur", "jpeg"), repeats=2,
                                   seed=6)
    sides = lambda p: [it["left"] for it in json.loads(p.read_text())["items"]]  # noqa: E731
    assert sides(other) != sides(again)
    with pytest.raises(DatasetError, match="already holds a task manifest"):
        make_perturbation_2afc(tmp_path / "a", n_images=1, size=64)


def test_schedule_is_per_rater_deterministic_with_swapped_repeats(gold_tasks):
    tasks = load_tasks(gold_tasks)
    ann, bob = tasks.schedule("ann"), tasks.schedule("bob")
    assert ann == tasks.schedule("ann") and [s.task for s in ann] != [s.task for s in bob]
    for slots in (ann, bob):
        assert len(slots) == 8 and sorted(s.task for s in slots if s.occurrence == 1) == sorted(tasks.items)
        for rid in tasks.repeats:
            first = next(k for k, s in enumerate(slots) if s.task == rid and s.occurrence == 1)
            second = next(k for k, s in enumerate(slots) if s.task == rid and s.occurrence == 2)
            assert second > first and slots[second].left == slots[first].right != slots[first].left


def test_missing_and_modified_images_are_named(gold_tasks, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(gold_tasks, copy)
    tasks = load_tasks(copy)
    victims = sorted(tasks.images)[:2]
    for rel in victims:
        (copy / "images" / rel).unlink()
    changed = sorted(tasks.images)[5]
    with open(copy / "images" / changed, "ab") as f:
        f.write(b"\0")
    with pytest.raises(DatasetError) as e:
        load_tasks(copy)
    msg = str(e.value)
    assert "2 image(s) missing" in msg and all(v in msg for v in victims)
    assert "differ from their recorded sha256" in msg and changed in msg


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["items"][0].update(p0="../../secret.png"), "normalised relative path"),
    (lambda d: d["items"][0].update(p0="/etc/passwd.png"), "normalised relative path"),
    (lambda d: d["items"][0].update(p0="gold/x.tiff"), "not a format browsers show"),
    (lambda d: d["items"][1].update(id=d["items"][0]["id"]), "duplicate id"),
    (lambda d: d["items"][0].update(id="a@b"), "item id 'a@b' is not valid"),
    (lambda d: d["items"][0].update(gold="p2"), "gold must be one of p0, p1"),
    (lambda d: d["items"][0].update(left="middle"), "left must be one of"),
    (lambda d: d["items"][0].pop("reference"), "needs reference"),
    (lambda d: d.update(kind="ranking"), "kind 'ranking' unknown"),
    (lambda d: d.update(colour="red"), "unknown key"),
    (lambda d: d.update(repeats=["nope"]), "'repeats' must list"),
    (lambda d: d.update(scale={"min": 1, "max": 5}), "declares its 'scale'"),
])
def test_malformed_manifests_are_refused_naming_the_problem(gold_tasks, tmp_path, edit, match):
    data = json.loads((gold_tasks / "tasks.json").read_text())
    edit(data)
    shutil.copytree(gold_tasks / "images", tmp_path / "images")
    (tmp_path / "tasks.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=match):
        load_tasks(tmp_path)


def test_a_symlink_leading_out_of_the_images_root_is_refused(gold_tasks, tmp_path):
    shutil.copytree(gold_tasks, tmp_path / "t")
    (tmp_path / "secret.png").write_bytes(b"x")
    data = json.loads((tmp_path / "t" / "tasks.json").read_text())
    (tmp_path / "t" / "images" / "link.png").symlink_to(tmp_path / "secret.png")
    data["items"][0]["p0"] = "link.png"
    data.pop("images")
    (tmp_path / "t" / "tasks.json").write_text(json.dumps(data))
    with pytest.raises(UnsafePathError, match="outside the root"):
        load_tasks(tmp_path / "t")


def _outputs(folder, images, *, degrade: int | None):
    folder.mkdir()
    for name, arr in images.items():
        img = Image.fromarray(arr)
        if degrade:
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=degrade)
            img = Image.open(buf)
        img.save(folder / f"{name}.png")


def test_pairwise_from_two_output_folders_with_gold(tmp_path):
    from pytest_i2i.data import sample_dataset

    ds = sample_dataset(32)
    targets = {s.uid: s.target for s in ds}
    _outputs(tmp_path / "ckpt_a", targets, degrade=None)
    _outputs(tmp_path / "ckpt_b", targets, degrade=10)
    path = make_pairwise(tmp_path / "ab", a=tmp_path / "ckpt_a", b=tmp_path / "ckpt_b", gold=2, seed=1)
    tasks = load_tasks(path)
    assert tasks.kind == "pairwise" and tasks.models == {"a": "ckpt_a", "b": "ckpt_b"}
    assert len(tasks.items) == len(ds) + 2
    real = [it for it in tasks.items.values() if not it.get("gold")]
    assert all({"input", "reference", "instruction", "a", "b"} <= set(it) for it in real)
    assert real[0]["instruction"] == "colorize this photo"
    gold = [it for it in tasks.items.values() if it.get("gold")]
    assert [g["gold"] for g in gold] == ["a", "a"]
    for g in gold:  # A's own output against it with a visible local edit
        assert np.abs(_arr(tasks.root / g["a"]) - _arr(tasks.root / g["b"])).max() > 0
    # an output missing for a sample of the dataset is named
    (tmp_path / "ckpt_b" / "rocket.png").unlink()
    with pytest.raises(DatasetError, match=r"--b lacks 1 of them, e.g. \['rocket'\]"):
        make_pairwise(tmp_path / "ab2", a=tmp_path / "ckpt_a", b=tmp_path / "ckpt_b")


def test_2afc_and_rating_from_folders(tmp_path, photo_folders):
    real, fake = photo_folders
    path = make_2afc(tmp_path / "t", reference=real, p0=real, p1=fake, gold=1)
    tasks = load_tasks(path)
    assert len(tasks.items) == 9 and sum(1 for it in tasks.items.values() if it.get("gold")) == 1
    scale = Scale.parse("1:5", labels="1=bad,5=excellent")
    path = make_rating(tmp_path / "r", images=[real, fake], models=["orig", "jpeg"], reference=real, scale=scale,
                       repeats=3)
    tasks = load_tasks(path)
    assert tasks.scale.values() == [1, 2, 3, 4, 5] and len(tasks.items) == 16 and len(tasks.repeats) == 3
    assert {it["model"] for it in tasks.items.values()} == {"orig", "jpeg"}


@pytest.mark.parametrize("text, labels, match", [
    ("1-5", "", "MIN:MAX"), ("5:1", "", "min < max"), ("0:1:0.3", "", "whole number of steps"),
    ("0:1000", "", "at most 101"), ("1:5", "6=great", "not a value of the scale"), ("1:5", "bad", "VALUE=LABEL"),
])
def test_bad_scales_are_refused(text, labels, match):
    with pytest.raises(I2IInputError, match=match):
        Scale.parse(text, labels=labels)


def test_cli_make_refuses_bad_options_and_serve_refuses_other_interfaces_without_token(tmp_path, capsys):
    from pytest_i2i.cli import main

    assert main(["judge", "make", "perturb", str(tmp_path / "t"), "--n-images", "1", "--size", "32",
                 "--ops", "jpeg,gaussian_noise", "--seed", "1"]) == 0
    assert "2afc, 2 items (2 gold, 0 repeated)" in capsys.readouterr().out
    assert main(["judge", "make", "perturb", str(tmp_path / "u"), "--ops", "sharpen"]) == 2
    assert "unknown operation 'sharpen'" in capsys.readouterr().err
    assert main(["judge", "make", "rating", str(tmp_path / "v"), "--images", str(tmp_path), "--scale", "5"]) == 2
    assert "MIN:MAX" in capsys.readouterr().err
    assert main(["judge", "serve", str(tmp_path / "t"), "--out", str(tmp_path / "o"), "--host", "0.0.0.0"]) == 2
    assert "needs a token" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_the_page_assets_are_package_data():
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "pytest_i2i.judge"]
    assets = sorted(p.name for p in (root / "pytest_i2i" / "judge" / "static").iterdir())
    assert assets and all(any(fnmatch.fnmatch(f"static/{a}", g) for g in globs) for a in assets), (assets, globs)
