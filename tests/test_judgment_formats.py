"""The tidy judgment format, the TOML manifest and precomputed scores. Every judgment written
here is SYNTHETIC (made up for the test) and its manifest says so."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_i2i.errors import DatasetError, JudgmentError, UnsafePathError
from pytest_i2i.validation.judgments import (
    LAYOUTS,
    load_judgments,
    load_scores,
    read_manifest,
    write_manifest,
)

HUMAN_JUDGMENTS = Path(__file__).resolve().parents[1] / "human_judgments"


def _manifest(folder: Path, kind: str, files: list[dict], **extra) -> Path:
    data = {"name": f"synthetic-{kind}", "kind": kind, "description": "SYNTHETIC test data, not human judgments",
            "synthetic": True, **extra, "files": files}
    return write_manifest(data, folder / "judgments.toml")


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(path)


def test_rating_table_with_manifest_and_hash(tmp_path):
    table = tmp_path / "ratings.csv"
    table.write_text("item,model,rater,criterion,score\n"
                     "a,m1,r1,q,1\na,m1,r2,q,0.5\nb,m1,r1,q,0\nb,m1,r2,q,0\n")
    digest = hashlib.sha256(table.read_bytes()).hexdigest()
    _manifest(tmp_path, "edit-rating", [{"path": "ratings.csv", "sha256": digest}], criteria=["q"])
    js = load_judgments(tmp_path)
    assert js.synthetic and js.kind == "edit-rating" and js.raters == ["r1", "r2"]
    assert js.files[0]["verified"] and js.files[0]["sha256"] == digest
    assert js.table["score"].tolist() == [1.0, 0.5, 0.0, 0.0]
    assert js.summary()["synthetic"] is True


def test_hash_mismatch_is_an_error(tmp_path):
    (tmp_path / "r.csv").write_text("item,score\na,1\nb,2\nc,3\n")
    _manifest(tmp_path, "rating", [{"path": "r.csv", "sha256": "0" * 64}])
    with pytest.raises(JudgmentError, match="sha256 of .*r.csv"):
        load_judgments(tmp_path)


def test_jsonl_2afc_pairwise_and_column_mapping(tmp_path):
    for name in ("ref.png", "x.png", "y.png"):
        _png(tmp_path / "img" / name, 10)
    (tmp_path / "t.jsonl").write_text(
        '{"item": "t1", "reference": "ref.png", "p0": "x.png", "p1": "y.png", "h": "0.25"}\n')
    _manifest(tmp_path, "2afc", [{"path": "t.jsonl"}], images_root="img")
    js = load_judgments(tmp_path / "judgments.toml")
    assert js.table["h"].tolist() == [0.25] and js.images_root == (tmp_path / "img").resolve()
    assert js.files[0]["verified"] is False and len(js.files[0]["sha256"]) == 64

    other = tmp_path / "pw"
    other.mkdir()
    (other / "p.csv").write_text("id,a,b,winner\n1,u.png,v.png,b\n2,u.png,v.png,tie\n")
    _manifest(other, "pairwise", [{"path": "p.csv"}], columns={"item": "id"})
    assert load_judgments(other).table["h"].tolist() == [1.0, 0.5]


@pytest.mark.parametrize("content,message", [
    ("item,score\n", "empty"),
    ("item,score\na,x\n", "score 'x' is not a number"),
    ("item,score\na,nan\n", "not a finite number"),
    ("item,score,colour\na,1,red\n", "unknown column"),
    ("item,score\na,1\na,2\n", "duplicate records"),
])
def test_bad_tidy_tables_name_the_file(tmp_path, content, message):
    (tmp_path / "r.csv").write_text(content)
    _manifest(tmp_path, "rating", [{"path": "r.csv"}])
    with pytest.raises(DatasetError, match=message) as err:
        load_judgments(tmp_path)
    assert "r.csv" in str(err.value) or "judgments.toml" in str(err.value)


def test_paths_may_not_escape_the_root(tmp_path):
    (tmp_path / "outside.csv").write_text("item,score\na,1\n")
    inner = tmp_path / "set"
    inner.mkdir()
    _manifest(inner, "rating", [{"path": "../outside.csv"}])
    with pytest.raises(UnsafePathError, match="outside the root"):
        load_judgments(inner)
    (inner / "r.csv").write_text("item,score,image,reference\na,1,../../etc/passwd,ref.png\n")
    (inner / "img").mkdir()
    _manifest(inner, "rating", [{"path": "r.csv"}], images_root="img")
    with pytest.raises(UnsafePathError):
        load_judgments(inner)


def test_missing_images_are_an_error(tmp_path):
    _png(tmp_path / "img" / "ref.png", 1)
    (tmp_path / "r.csv").write_text("item,score,image,reference\na,1,gone.png,ref.png\n")
    _manifest(tmp_path, "rating", [{"path": "r.csv"}], images_root="img")
    with pytest.raises(JudgmentError, match="1 image\\(s\\) missing.*gone.png"):
        load_judgments(tmp_path)


@pytest.mark.parametrize("text,message", [
    ('name = "x"\n', "no 'kind'"),
    ('name = "x"\nkind = "opinion"\n', "kind 'opinion' unknown"),
    ('name = "x"\nkind = "rating"\nlicense = "MIT"\n', "unknown manifest key 'license'"),
    ('name = "x"\nkind = "rating"\nsynthetic = "yes"\n', "'synthetic' must be a bool"),
    ('name = "x"\nkind = "rating"\n[[files]]\npath = "a"\nsha256 = "abc"\n', "64 hex"),
    ('name = "x\nkind', "malformed TOML"),
])
def test_bad_manifests(tmp_path, text, message):
    p = tmp_path / "m.toml"
    p.write_text(text)
    with pytest.raises(JudgmentError, match=message):
        read_manifest(p)


def test_manifest_round_trip(tmp_path):
    data = {"name": "n", "kind": "rating", "synthetic": True, "criteria": ["a", "b"], "columns": {"score": "mos"},
            "files": [{"path": "x.csv", "sha256": "a" * 64}], "description": 'quote " and \\ backslash'}
    assert read_manifest(write_manifest(data, tmp_path / "m.toml")) == data


@pytest.mark.parametrize("name", ["imagenhub-text-guided-ie", "bapps", "nights", "tid2013", "kadid10k"])
def test_shipped_manifests_parse_and_claim_real_sources(name):
    m = read_manifest(HUMAN_JUDGMENTS / f"{name}.toml")
    assert m["synthetic"] is False and m["source"] and m["licence"] and "download" in m
    assert m.get("format") in {"imagenhub", "bapps", "nights", "tid2013", "kadid10k"}


def test_unrecognised_folder_lists_the_layouts(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(JudgmentError, match="no recognised layout") as err:
        load_judgments(tmp_path)
    for layout in LAYOUTS[1:]:
        assert layout.split(":")[0] in str(err.value)


# -- precomputed scores ---------------------------------------------------------------------------
def test_scores_folder_csv_and_directions(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "M1.json").write_text(json.dumps({"a": {"LPIPS": 0.1}, "b": {"LPIPS": 0.2}}))
    (folder / "M2.json").write_text(json.dumps({"a": {"LPIPS": 0.3}}))
    s = load_scores(folder)
    assert s.values["LPIPS"] == {("a", "M1"): 0.1, ("b", "M1"): 0.2, ("a", "M2"): 0.3}
    assert s.higher_is_better == {"LPIPS": False}
    csv = tmp_path / "scores.csv"
    csv.write_text("item,model,mymetric\na,M1,1.5\n")
    with pytest.raises(JudgmentError, match="direction of metric 'mymetric' unknown"):
        load_scores(csv)
    assert load_scores(csv, directions={"mymetric": True}).values["mymetric"] == {("a", "M1"): 1.5}


@pytest.mark.parametrize("content,message", [
    ('{"a": {"LPIPS": NaN}}', "NaN"),
    ('{"a": {"LPIPS": "0.1"}}', "not a finite number"),
    ('{"a": 0.1}', "expected"),
    ('{"a": {}}', "no metric value"),
    ("{", "malformed JSON"),
])
def test_bad_score_files(tmp_path, content, message):
    p = tmp_path / "s.json"
    p.write_text(content)
    with pytest.raises(JudgmentError, match=message) as err:
        load_scores(p)
    assert "s.json" in str(err.value)
