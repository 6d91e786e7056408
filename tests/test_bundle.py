"""The bundled judgment sets (``human_judgments/``): hashes, regeneration from the native files, and
equality with what the native files give (the native checks skip without ``../shared/data``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pytest_i2i.errors import JudgmentError
from pytest_i2i.validation.judgments import bundle, genaibench, imagenhub, load_scores, tifa, viescore
from pytest_i2i.validation.names import BUILTIN

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "viescore-imagenhub").is_dir(), reason="../shared/data not present")


def test_every_bundled_file_matches_its_recorded_sha256():
    for name in BUILTIN:
        folder = bundle.bundle_dir() / name
        hashes = bundle.verify(folder)
        assert hashes and (folder / "LICENSE").is_file() and (folder / "SOURCE.md").is_file()
        text = (folder / "SOURCE.md").read_text()
        assert "commit" in text and "licen" in text.lower()


def test_a_modified_bundled_file_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "hj"
    shutil.copytree(bundle.bundle_dir(), copy)
    victim = copy / "genai-bench-image-edition" / "votes.tsv"
    victim.write_text(victim.read_text().replace("leftvote", "rightvote", 1))
    monkeypatch.setenv(bundle.ENV, str(copy))
    assert bundle.bundle_dir() == copy
    with pytest.raises(JudgmentError, match="votes.tsv: sha256 .* differs from bundle.toml"):
        bundle.load_builtin("genai-bench-image-edition")
    bundle.load_builtin("tifa-human")  # the other sets are untouched
    with pytest.raises(JudgmentError, match="unknown built-in judgment set 'nope'; built-in sets: viescore-imagenhub"):
        bundle.load_builtin("nope")
    with pytest.raises(JudgmentError, match="no task 'Text-To-Video'; tasks: Control-Guided_IG"):
        bundle.load_builtin("viescore-imagenhub", tasks=["Text-To-Video"])


def test_no_bundle_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(bundle.ENV, str(tmp_path))
    monkeypatch.setattr(bundle, "__file__", str(tmp_path / "a" / "b" / "c" / "bundle.py"))
    with pytest.raises(JudgmentError, match="built-in judgment sets were not found.*I2I_HUMAN_JUDGMENTS"):
        bundle.bundle_dir()


@needs_shared
def test_regenerated_files_equal_the_bundle_byte_for_byte():
    rows = bundle.regenerate(SHARED)
    assert len(rows) == 47
    assert all(r["equal"] for r in rows), [r["path"] for r in rows if not r["equal"]]


@needs_shared
def test_the_regeneration_script_checks_and_fails_on_a_different_native_version(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("regenerate", ROOT / "human_judgments" / "regenerate.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--source", str(SHARED), "tifa-human"]) == 0
    assert "2 file(s); 0 differ" in capsys.readouterr().out
    native = tmp_path / "tifa-human"
    shutil.copytree(SHARED / "tifa-human", native)
    f = native / "human_annotations" / "human_annotations_with_scores.json"
    f.chmod(0o644)
    f.write_text(f.read_text().replace('"human_avg": 5.0', '"human_avg": 5.00', 1))
    assert script.main(["--source", str(tmp_path), "tifa-human"]) == 2
    assert "a different version of the native set" in capsys.readouterr().err


def _same_scores(a, b):
    assert (a.name, a.higher_is_better, a.kind, a.registry_name) == (b.name, b.higher_is_better, b.kind, b.registry_name)
    assert a.values == b.values and a.votes == b.votes and a.warnings == b.warnings
    assert a.by_criterion == b.by_criterion and a.raw == b.raw


@needs_shared
def test_bundled_sets_load_exactly_what_the_native_files_give():
    vs = SHARED / "viescore-imagenhub" / "paper_implementation"
    for task in ("Subject-Driven_IE", "Text-Guided_IG"):  # partial LLaVA coverage; CLIP_Score; CRLF rater files
        sets, scores = bundle.load_builtin("viescore-imagenhub", tasks=[task])
        native = imagenhub.load(vs / "_human_annotations" / "ImagenHub_human_eval_results" / f"ImagenHub_{task}")
        assert sets[0].table.equals(native.table)
        by_name = {s.name: s for s in scores}
        for judge in bundle.VIESCORE_JUDGES:
            _same_scores(by_name[judge], viescore.load_judge(vs / "_answers" / f"results_{judge}" / f"ImagenHub_{task}",
                                                             binding=f"ImagenHub_{task}"))
        for ms in load_scores(vs / "_answers" / "results_autometrics" / f"ImagenHub_{task}").metric_scores(
                binding=f"ImagenHub_{task}"):
            got = by_name[ms.name]
            assert got.values == ms.values and got.higher_is_better == ms.higher_is_better
    js = bundle.load_builtin("genai-bench-image-edition")[0][0]
    native = genaibench.load(SHARED / "genai-bench-image-edition" / "results" / "image_edition",
                             name="genai-bench-image-edition")
    assert js.table.equals(native.table)
    for a, b in zip(js.scores, native.scores):
        _same_scores(a, b)
    js = bundle.load_builtin("tifa-human")[0][0]
    native = tifa.load(SHARED / "tifa-human", name="tifa-human")
    assert js.table.equals(native.table)
    for a, b in zip(js.scores, native.scores):
        _same_scores(a, b)


def test_builtin_runs_offline_from_a_copy_of_the_bundle(tmp_path, monkeypatch):
    """A fresh clone: no ../shared, only human_judgments/ (here copied elsewhere and found by the env var)."""
    from pytest_i2i.cli import main

    copy = tmp_path / "hj"
    shutil.copytree(bundle.bundle_dir(), copy)
    monkeypatch.setenv(bundle.ENV, str(copy))
    out = tmp_path / "r"
    rc = main(["validate", "--builtin", "genai-bench-image-edition", "--out", str(out), "--resamples", "100"])
    assert rc == 0
    md = (out / "report.md").read_text()
    assert "3 of 3 published cells reproduced" in md and "gpt4o | 919 | 0.535" in md
    assert np.isclose(float(md.split("gpt4o | 919 | ")[1][:5]), 492 / 919, atol=5e-4)
