"""``i2i score`` never reports on less, or on other pairs, than it says (issue 19): the --json path
is checked before any work, one metric that cannot be computed is reported while the others print,
and folders are paired by file name (by position only on request). Images are synthetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pytest_i2i.cli import main
from pytest_i2i.cli.score import pair_folders
from pytest_i2i.errors import I2IInputError


def write(folder: Path, names: list[str], seed: int = 0, size: int = 16) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in names]
    for name, arr in zip(names, arrays):
        Image.fromarray(arr).save(folder / name)
    return arrays


def test_json_folder_that_does_not_exist_is_an_error_before_any_work(tmp_path, capsys):
    write(tmp_path / "a", ["x.png"])
    rc = main(["score", str(tmp_path / "a"), str(tmp_path / "a"), "--metrics", "l1",
               "--json", str(tmp_path / "nope" / "out.json")])
    out, err = capsys.readouterr()
    assert rc == 2 and "--json" in err and "does not exist" in err and str(tmp_path / "nope") in err
    assert "l1" not in out  # nothing was computed or printed


def test_one_metric_that_cannot_be_computed_is_reported_and_the_others_print(tmp_path, capsys):
    write(tmp_path / "real", ["a.png", "b.png"], seed=0)
    write(tmp_path / "fake", ["a.png", "b.png"], seed=1)
    out_json = tmp_path / "out.json"
    rc = main(["score", str(tmp_path / "real"), str(tmp_path / "fake"), "--metrics", "l1,ms_ssim,psnr",
               "--json", str(out_json)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "l1" in out and "psnr" in out and "FAILED" in out and "failed ms_ssim" in out
    data = json.loads(out_json.read_text())
    assert [r["name"] for r in data["results"]] == ["l1", "psnr"]
    assert [f["metric"] for f in data["failed"]] == ["ms_ssim"] and "ms_ssim" in data["failed"][0]["error"].lower()


def test_renamed_file_is_not_paired_with_another_image(tmp_path, capsys):
    """The review's probe: renaming one file silently paired astronaut with chelsea and exited 0."""
    write(tmp_path / "real", ["astronaut.png", "chelsea.png"])
    write(tmp_path / "fake", ["astronaut.png", "zz_chelsea.png"])
    rc = main(["score", str(tmp_path / "real"), str(tmp_path / "fake"), "--metrics", "l1"])
    err = capsys.readouterr().err
    assert rc == 2 and "only in REAL: chelsea" in err and "only in FAKE: zz_chelsea" in err
    assert "--pair-by-position" in err
    assert main(["score", str(tmp_path / "real"), str(tmp_path / "fake"), "--metrics", "l1",
                 "--pair-by-position"]) == 0


def test_set_metrics_do_not_need_matching_names(tmp_path, capsys):
    write(tmp_path / "real", ["a.png", "b.png", "c.png"])
    write(tmp_path / "fake", ["x.png", "y.png"], seed=3)
    assert main(["score", str(tmp_path / "real"), str(tmp_path / "fake"), "--metrics", "kid",
                 "--weights", "random"]) in (0, 1)
    assert "only in REAL" not in capsys.readouterr().err


@settings(max_examples=15, deadline=None)
@given(names=st.lists(st.text("abcxyz_-0123", min_size=1, max_size=6), min_size=1, max_size=5, unique=True),
       ext=st.sampled_from([".png", ".bmp"]), data=st.data())
def test_pairing_by_name_follows_names_not_positions(tmp_path_factory, names, ext, data):
    root = tmp_path_factory.mktemp("pairs")
    shuffled = data.draw(st.permutations(names))
    real = write(root / "real", [n + ".png" for n in names], seed=1)
    by_name = dict(zip(names, real))
    (root / "fake").mkdir()
    for n in shuffled:
        Image.fromarray(by_name[n]).save(root / "fake" / (n + ext))
    a, b = pair_folders(str(root / "real"), str(root / "fake"), False)
    assert [Path(p).stem for p in a] == [Path(p).stem for p in b] == sorted(names)
    if len(names) > 1:
        extra = data.draw(st.sampled_from(names))
        (root / "fake" / (extra + ext)).rename(root / "fake" / (extra + "_renamed" + ext))
        with pytest.raises(I2IInputError, match=f"only in REAL: .*{extra}"):
            pair_folders(str(root / "real"), str(root / "fake"), False)
        assert pair_folders(str(root / "real"), str(root / "fake"), True) == (str(root / "real"), str(root / "fake"))


def test_two_files_of_one_name_are_refused(tmp_path):
    write(tmp_path / "real", ["a.png", "a.bmp"])
    write(tmp_path / "fake", ["a.png"])
    with pytest.raises(I2IInputError, match="a.bmp and a.png have one name|a.png and a.bmp have one name"):
        pair_folders(str(tmp_path / "real"), str(tmp_path / "fake"), False)
