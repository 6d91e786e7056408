"""The VIEScore judge / autometrics, GenAI-Bench and TIFA adapters on SYNTHETIC fixtures written here
in each native format (made-up scores and votes, never presented as human data), and their bad input:
duplicate keys, NaN, missing files, partial coverage, mismatched uid sets, wrong flags."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pytest_i2i.errors import JudgmentError
from pytest_i2i.validation.judgments import detect_layout, genaibench, load_judgments, load_scores, tifa, viescore
from pytest_i2i.validation.validation_report import validate

from test_judgment_adapters import write_imagenhub


def write_judge(root: Path, scores: dict[str, dict[str, dict[str, object]]]) -> Path:
    """``results_synthjudge/ImagenHub_Synth/<model>/<crit>.json`` from {model: {crit: {uid: score}}}."""
    task = root / "results_synthjudge" / "ImagenHub_Synth"
    for model, crits in scores.items():
        (task / model).mkdir(parents=True, exist_ok=True)
        for crit, by_uid in crits.items():
            (task / model / f"{crit}.json").write_text(json.dumps(
                {uid: {"score": s, "reasoning": "synthetic", "prompt_input": "synthetic"} for uid, s in by_uid.items()}))
    return task


# -- VIEScore judges --------------------------------------------------------------------------------
def test_viescore_reduction_is_vieScores_own(tmp_path):
    task = write_judge(tmp_path, {"A": {"SC": {"u1": [7, 3], "u2": [8.5, 9], "u3": 12, "u4": 7.5},
                                       "PQ": {"u1": [10, 10], "u2": [4, 6], "u3": [-2, 5], "u4": [9]}}})
    assert viescore.detect(task) and detect_layout(task) is None  # scores, not a judgment set
    ms = viescore.load_judge(task)
    assert ms.name == "synthjudge" and ms.kind == "judge" and ms.warnings == []
    sc, pq, o = (ms.by_criterion[c] for c in ("SC", "PQ", "overall"))
    assert sc[("u1", "A")] == 0.3 and pq[("u1", "A")] == 1.0           # min of the sub-scores / 10
    assert sc[("u2", "A")] == 0.8                                       # int(8.5) = 8, as VIEScore's code
    assert sc[("u3", "A")] == 1.0 and pq[("u3", "A")] == 0.0            # clipped to [0, 1]
    assert sc[("u4", "A")] == 0.75                                      # a plain number: no truncation
    assert o[("u2", "A")] == pytest.approx(math.sqrt(0.8 * 0.4))
    assert ms.raw["SC"][("u2", "A")] == [8.5, 9]                        # raw sub-scores kept


def test_viescore_partial_coverage_and_missing_files_are_reported(tmp_path):
    task = write_judge(tmp_path, {"A": {"SC": {"u1": [5], "u2": [6]}, "PQ": {"u1": [5], "u3": [7]}},
                                  "B": {"SC": {"u1": [5]}}})
    ms = viescore.load_judge(task)
    assert set(ms.by_criterion["SC"]) == {("u1", "A")}
    text = " ".join(ms.warnings)
    assert "B/PQ.json" in text and "not scored" in text
    assert "1 uid(s) have SC but no PQ" in text and "u2" in text and "1 uid(s) have PQ but no SC" in text


@pytest.mark.parametrize("content,message", [
    ('{"u1": {"score": [5]}, "u1": {"score": [9]}}', "duplicate key 'u1'"),
    ('{"u1": {"score": [5], "score": [9]}}', "duplicate key 'score'"),
    ('{"u1": {"score": [NaN]}}', "NaN"),
    ('{"u1": {"score": [5, "x"]}}', "not a finite number"),
    ('{"u1": {"reasoning": "no score"}}', "has no 'score'"),
    ('{"u1": {"score": []}}', "empty score list"),
])
def test_viescore_bad_judge_files_name_the_file_and_key(tmp_path, content, message):
    task = write_judge(tmp_path, {"A": {"PQ": {"u1": [5]}}})
    (task / "A" / "SC.json").write_text(content)
    with pytest.raises(JudgmentError, match=message) as err:
        viescore.load_judge(task)
    assert "SC.json" in str(err.value)


def test_viescore_compact_table_reads_exactly_the_native_folder(tmp_path):
    task = write_judge(tmp_path, {"A": {"SC": {"u1": [7, 3], "u2": 8.5}, "PQ": {"u1": [10, 10], "u2": [4, 6]}},
                                  "B": {"SC": {"u1": [1]}, "PQ": {"u1": [2], "u9": [3]}}})
    table = tmp_path / "judge.tsv"
    table.write_bytes(viescore.write_judge_table(task))
    a, b = viescore.load_judge(task), viescore.load_judge_table(table, name="synthjudge")
    assert a.by_criterion == b.by_criterion and a.raw == b.raw and a.warnings == b.warnings
    table.write_text(table.read_text().replace("u2\t", "u1\t"))
    with pytest.raises(JudgmentError, match="uid 'u1' appears twice"):
        viescore.load_judge_table(table, name="x")


def test_autometrics_duplicate_key_and_directions(tmp_path):
    folder = tmp_path / "results_autometrics" / "ImagenHub_Synth"
    folder.mkdir(parents=True)
    (folder / "A.json").write_text('{"u1": {"LPIPS": 0.2, "DINO": 0.5, "CLIP_I": 0.9}}')
    s = load_scores(folder)
    assert s.higher_is_better == {"LPIPS": False, "DINO": True, "CLIP_I": True}
    assert s.registry_names == {"LPIPS": "lpips", "DINO": "dino_image", "CLIP_I": "clip_image"}  # the registry
    (folder / "A.json").write_text('{"u1": {"LPIPS": 0.2}, "u1": {"LPIPS": 0.3}}')
    with pytest.raises(JudgmentError, match=r"A.json: duplicate key 'u1'"):
        load_scores(folder)
    table = tmp_path / "auto.tsv"
    (folder / "A.json").write_text('{"u1": {"LPIPS": 0.2}, "u2": {"LPIPS": 0.25}}')
    table.write_bytes(viescore.write_autometrics_table(folder))
    [ms] = viescore.load_autometrics_table(table)
    assert ms.values == load_scores(folder).values["LPIPS"] and ms.higher_is_better is False


def test_a_judge_with_uids_the_raters_do_not_have_is_a_problem_naming_the_file(tmp_path, rng):
    write_imagenhub(tmp_path / "ImagenHub_Synth", rng, uids=tuple(f"u{i}" for i in range(8)), models=("A", "B"))
    scores = {m: {"SC": {f"u{i}": [int(rng.integers(0, 11))] for i in range(8)},
                  "PQ": {f"u{i}": [int(rng.integers(0, 11))] for i in range(8)}} for m in ("A", "B")}
    scores["A"]["SC"]["ghost.jpg"] = [5]
    scores["A"]["PQ"]["ghost.jpg"] = [5]
    task = write_judge(tmp_path, scores)
    report = validate([tmp_path / "ImagenHub_Synth", task], tmp_path / "r", n_resamples=100, plots="none",
                      convention="viescore")
    bad = [p for p in report["problems"] if "not in the ratings" in p["reason"]]
    assert bad and "ghost.jpg" in bad[0]["reason"] and "results_synthjudge" in bad[0]["reason"]
    row = next(r for r in report["results"] if r["level"] == "model" and r["criterion"] == "SC")
    assert row["n"] == 16 and row["join"]["n_scored_not_judged"] == 1  # computed on the joined units


# -- GenAI-Bench -----------------------------------------------------------------------------------
VOTES = [("leftvote", "[[A>B]]"), ("rightvote", "[[A>B]]"), ("tievote", "[[A=B]]"), ("bothbad_vote", "[[A=B=Bad]]"),
         ("bothbad_vote", None), ("rightvote", "[[B>>A]]"), ("tievote", "[[A=B=Bad]]"), ("leftvote", "[[C]]")]


def write_pairwise(folder: Path, judges: dict[str, list[tuple[str, str | None]]]) -> Path:
    for judge, votes in judges.items():
        (folder / judge).mkdir(parents=True, exist_ok=True)
        lines = []
        for i, (human, model) in enumerate(votes):
            v = genaibench.judge_vote(model, "x")
            lines.append(json.dumps({"idx": i, "source_prompt": "synthetic", "human_vote": human, "model_vote": model,
                                     "response": "synthetic", "correct": genaibench.is_right(v, genaibench.HUMAN_VOTES[human])}))
        (folder / judge / "pairwise.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_genai_bench_votes_and_accuracy(tmp_path):
    folder = write_pairwise(tmp_path / "ie", {"j1": VOTES, "j2": [(h, "[[A>B]]") for h, _ in VOTES]})
    js = load_judgments(folder)
    assert js.kind == "preference" and list(js.table["vote"]) == ["a", "b", "tie", "both_bad", "both_bad", "b",
                                                                   "tie", "a"]
    j1 = next(m for m in js.scores if m.name == "j1")
    assert list(j1.votes.values()) == ["a", "a", "same", "both_bad", None, "b", "both_bad", "other"]
    assert any("without a parsed vote" in w for w in j1.warnings) and any("outside" in w for w in j1.warnings)
    report = validate([folder], tmp_path / "r", n_resamples=200, plots="none")
    row = next(r for r in report["results"] if r["metric"] == "j1")
    # right: idx 0 (a), 2 (same vs tie), 3 (both_bad), 5 (b) -> 4 of 8; preferences idx 0, 1, 5, 7 -> 2 of 4
    assert row["accuracy"]["with_ties"]["value"] == 0.5 and row["accuracy"]["without_ties"]["value"] == 0.5
    assert row["accuracy"]["decisive"]["value"] == pytest.approx(2 / 3)  # idx 0, 1, 5 decisive for both
    assert row["confusion"]["tie"]["same"] == 1 and row["confusion"]["both_bad"]["None"] == 1
    diff = next(c for c in report["comparisons"] if c["level"] == "preference")
    assert diff["value"] == pytest.approx(0.5 - 2 / 8)


@pytest.mark.parametrize("breakage,message", [
    ("correct", "correct = True but model_vote"),
    ("human", "has human vote"),
    ("missing", "every judge must vote on the same pairs"),
    ("duplicate", "appears twice"),
    ("dupkey", "duplicate key 'human_vote'"),
])
def test_genai_bench_bad_input_names_the_file(tmp_path, breakage, message):
    folder = write_pairwise(tmp_path / "ie", {"j1": VOTES[:4], "j2": VOTES[:4]})
    path = folder / "j2" / "pairwise.jsonl"
    lines = path.read_text().splitlines()
    if breakage == "correct":
        lines[1] = lines[1].replace('"correct": false', '"correct": true')
    elif breakage == "human":
        lines[0] = lines[0].replace("leftvote", "rightvote")
    elif breakage == "missing":
        lines = lines[:-1]
    elif breakage == "duplicate":
        lines.append(lines[0])
    else:
        lines[0] = lines[0].replace('"human_vote": "leftvote"', '"human_vote": "leftvote", "human_vote": "tievote"')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(JudgmentError, match=message) as err:
        load_judgments(folder)
    assert "pairwise.jsonl" in str(err.value) or "ie" in str(err.value)


def test_a_per_image_metric_votes_on_a_preference_set(tmp_path):
    folder = write_pairwise(tmp_path / "ie", {"j1": VOTES})
    scores = tmp_path / "s.csv"  # SYNTHETIC per-image scores of the left (a) and right (b) image
    rows = ["item,model,ssim"] + [f"{i},a,{0.9 if i in (0, 3) else 0.5}" for i in range(8)] + \
           [f"{i},b,{0.5 if i in (0, 3) else 0.9 if i % 2 else 0.5}" for i in range(8)]
    scores.write_text("\n".join(rows) + "\n")
    report = validate([folder, scores], tmp_path / "r", n_resamples=200, plots="none")
    row = next(r for r in report["results"] if r["metric"] == "ssim")
    # votes: a for 0, 3; b for 1, 5, 7; same for 2, 4, 6 -> right: 0, 1, 2 (tie), 4 (both bad), 5, 6 (tie) = 6 of 8
    assert row["accuracy"]["with_ties"]["value"] == 6 / 8 and "vote_rule" in row


# -- TIFA --------------------------------------------------------------------------------------------
def write_tifa(folder: Path, rng, n_prompts: int = 6) -> Path:
    data = {}
    for t in range(n_prompts):
        for g in ("gen_a", "gen_b", "gen_c"):
            hs = [int(v) for v in rng.integers(1, 6, size=2)]
            data[f"p{t}_{g}"] = {"text_id": f"p{t}", "image_path": f"p{t}_{g}.jpg", "text": "synthetic",
                                 "human_scores": hs, "human_avg": sum(hs) / 2, "clipscore_vitb32": float(rng.normal(30)),
                                 "tifa_vilt": float(rng.random())}
    folder.mkdir(parents=True)
    (folder / tifa.FILE).write_text(json.dumps(data))
    return folder


def test_tifa_ratings_and_scores(tmp_path, rng):
    folder = write_tifa(tmp_path / "t", rng)
    js = load_judgments(folder)
    assert js.kind == "rating" and js.models == ["gen_a", "gen_b", "gen_c"] and js.raters == ["rater1", "rater2"]
    by = {m.name: m for m in js.scores}
    assert by["clipscore_vitb32"].registry_name == "clip_text" and by["tifa_vilt"].higher_is_better
    table = tmp_path / "t.tsv"
    table.write_bytes(tifa.write_table(folder / tifa.FILE))
    again = tifa.load_table(table, name=js.name)
    assert again.table.equals(js.table) and [m.values for m in again.scores] == [m.values for m in js.scores]


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["p0_gen_a"].update(human_avg=1.25), "human_avg 1.25 is not the mean"),
    (lambda d: d["p0_gen_a"].update(human_scores=[0, 3]), "not a 1-5 Likert score"),
    (lambda d: d["p0_gen_a"].update(text_id="q9"), "is not '<text_id>_<generator>'"),
    (lambda d: d["p0_gen_a"].update(tifa_vilt=None), "not a finite number"),
])
def test_tifa_bad_input_names_the_key(tmp_path, rng, edit, message):
    folder = write_tifa(tmp_path / "t", rng)
    data = json.loads((folder / tifa.FILE).read_text())
    edit(data)
    (folder / tifa.FILE).write_text(json.dumps(data))
    with pytest.raises(JudgmentError, match=message) as err:
        load_judgments(folder)
    assert "p0_gen_a" in str(err.value) and tifa.FILE in str(err.value)


def test_tifa_nan_and_duplicate_keys(tmp_path, rng):
    folder = write_tifa(tmp_path / "t", rng)
    path = folder / tifa.FILE
    text = path.read_text()
    path.write_text(text.replace('"tifa_vilt": ', '"tifa_vilt": NaN, "x": ', 1))
    with pytest.raises(JudgmentError, match="NaN"):
        load_judgments(folder)
    path.write_text(text.replace('"p0_gen_b": ', '"p0_gen_a": ', 1))
    with pytest.raises(JudgmentError, match="duplicate key 'p0_gen_a'"):
        load_judgments(folder)
