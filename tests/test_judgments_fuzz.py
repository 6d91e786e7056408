"""Fuzzing the judgment, manifest and score parsers: any bytes either parse or raise the project's
DatasetError naming the file; never another exception, never a hang (a bounded number of examples,
each with a deadline)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_i2i.errors import DatasetError
from pytest_i2i.validation.judgments import load_judgments, load_scores, read_manifest
from pytest_i2i.validation.judgments.format import read_tidy

TOKENS = ["[", "]", ",", " ", "\t", "\n", "\r\n", "0", "0.5", "1", "2", "-1", "nan", "inf", "1e999", "uid", "item",
          "score", "model", "rater", "criterion", "h", "p0", "p1", "a", "b", "winner", "reference", '"', "{", "}", ":",
          "=", "name", "kind", "rating", "2afc", "[[files]]", "path", "sha256", "../", "/etc/passwd", "\x00", "é",
          "\ufeff", "LPIPS", "null", "true", "dist_img", "ref_img", "dmos", "votes", "left_vote", "right_vote",
          "ref_path", "left_path", "right_path", "id", "i01_01_1.bmp", "x.png", "sample_1.jpg"]

payloads = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.lists(st.sampled_from(TOKENS), max_size=60).map(lambda t: "".join(t).encode("utf-8", "surrogatepass")),
)
FUZZ = settings(max_examples=25, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _check(fn, data: bytes, name: str, prefix: str = "") -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        path = folder / name
        try:
            path.write_bytes(prefix.encode() + data)
        except ValueError:
            return
        try:
            fn(path)
        except DatasetError as e:
            assert name in str(e) or str(folder) in str(e), f"error does not name the file: {e}"


@FUZZ
@given(payloads)
def test_imagenhub_rater_file(data):
    _check(lambda p: load_judgments(p.parent), data, "Fuzz_rater1.tsv", "uid\tA\tB\n")


@pytest.mark.parametrize("kind", ["rating", "edit-rating", "2afc", "pairwise"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
@FUZZ
@given(data=payloads)
def test_tidy_tables(kind, suffix, data):
    _check(lambda p: read_tidy(p, kind), data, f"t{suffix}")


@FUZZ
@given(payloads)
def test_manifest(data):
    _check(lambda p: load_judgments(p), data, "judgments.toml", 'name = "f"\nkind = "rating"\n')


@pytest.mark.parametrize("name", ["s.json", "s.csv", "s.jsonl"])
@FUZZ
@given(data=payloads)
def test_scores(name, data):
    _check(lambda p: load_scores(p, directions={"x": True}), data, name)


@pytest.mark.parametrize("name,prefix", [
    ("data.csv", "id,votes,left_vote,right_vote,ref_path,left_path,right_path\n"),
    ("mos_with_names.txt", ""),
    ("dmos.csv", "dist_img,ref_img,dmos,var\n"),
])
@FUZZ
@given(data=payloads)
def test_native_tables(name, prefix, data):
    _check(lambda p: load_judgments(p.parent), data, name, prefix)


@FUZZ
@given(payloads)
def test_raw_manifest_reader(data):
    _check(read_manifest, data, "m.toml")
