"""Native-layout adapters. Each test writes a SYNTHETIC fixture in the native format itself (made-up
judgments, never presented as human data); the ImagenHub adapter is also checked on the real files
in ../shared/data when present, against an independent pandas + scipy computation."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_i2i.errors import JudgmentError
from pytest_i2i.validation.judgments import detect_layout, load_judgments
from pytest_i2i.validation.judgments.imagenhub import parse_cell

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
IMAGENHUB = SHARED / "imagenhub-text-guided-ie"
VIESCORE = SHARED / "viescore-lpips-text-guided-ie"
HUMAN_JUDGMENTS = Path(__file__).resolve().parents[1] / "human_judgments"


def _png(path: Path, value: int, size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)


def write_imagenhub(folder: Path, rng, *, uids=("s1.jpg", "s2.jpg", "s3.jpg", "s4.jpg"),
                    models=("A", "B", "C"), raters=3) -> dict:
    """Synthetic rater TSVs in ImagenHub's layout; returns {(rater, uid, model): (SC, PQ)}."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for r in range(1, raters + 1):
        lines = ["uid\t" + "\t".join(models)]
        for uid in uids:
            cells = []
            for j, m in enumerate(models):
                sc, pq = (float(v) for v in rng.choice([0, 0.5, 1], size=2))
                truth[(r, uid, m)] = (sc, pq)
                sep = ", " if (j + r) % 2 else ","
                cells.append(f"[{sc:g}{sep}{pq:g}]")
            lines.append(uid + "\t" + "\t".join(cells))
        (folder / f"Synthetic_IE_rater{r}.tsv").write_text("\r\n".join(lines))
    return truth


def test_imagenhub_synthetic(tmp_path, rng):
    truth = write_imagenhub(tmp_path / "ih", rng)
    assert detect_layout(tmp_path / "ih") == "imagenhub"
    js = load_judgments(tmp_path / "ih")
    assert js.kind == "edit-rating" and js.criteria == ["SC", "PQ", "overall"]
    assert len(js.table) == 3 * 4 * 3 * 3 and js.raters == ["rater1", "rater2", "rater3"]
    t = js.table.set_index(["rater", "item", "model", "criterion"])["score"]
    for (r, uid, m), (sc, pq) in truth.items():
        assert t[(f"rater{r}", uid, m, "SC")] == sc and t[(f"rater{r}", uid, m, "PQ")] == pq
        assert t[(f"rater{r}", uid, m, "overall")] == pytest.approx(math.sqrt(sc * pq))
    assert any("auto-detected" in w for w in js.warnings)


@pytest.mark.parametrize("cell,ok", [("[0,0]", (0, 0)), ("[0.5, 1]", (0.5, 1)), (" [1 , 0.5] ", (1, 0.5)),
                                     ("[0,  1]", (0, 1)), ("[0.5 1]", None), ("[2, 0]", None), ("[0.5, 1, 0]", None),
                                     ("", None), ("[a, b]", None), ("0.5, 1", None), ("[nan, 1]", None)])
def test_imagenhub_cells(cell, ok):
    if ok is None:
        with pytest.raises(JudgmentError, match="here"):
            parse_cell(cell, "here")
    else:
        assert parse_cell(cell, "here") == ok


def _rewrite(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


@pytest.mark.parametrize("breakage,message", [
    (lambda f: _rewrite(f / "Synthetic_IE_rater2.tsv", "s3.jpg", "s9.jpg"), "uid mismatch.*s9.jpg"),
    (lambda f: _rewrite(f / "Synthetic_IE_rater3.tsv", "\tC", "\tD"), "model columns"),
    (lambda f: _rewrite(f / "Synthetic_IE_rater1.tsv", "s2.jpg", "s1.jpg"), "appears twice"),
    (lambda f: (f / "Synthetic_IE_rater1.tsv").write_text("uid\tA\n"), "empty"),
    (lambda f: (f / "Synthetic_IE_rater1.tsv").write_bytes(b"uid\tA\n\xff\xfe\t[0,0]\n"), "UTF-8"),
    (lambda f: _rewrite(f / "Synthetic_IE_rater2.tsv", "]", "]\t[0,0]"), "fields"),
])
def test_imagenhub_bad_input_names_the_file(tmp_path, rng, breakage, message):
    folder = tmp_path / "ih"
    write_imagenhub(folder, rng)
    breakage(folder)
    with pytest.raises(JudgmentError, match=message) as err:
        load_judgments(folder)
    assert "_rater" in str(err.value)


def test_imagenhub_malformed_cell_names_file_line_uid_model(tmp_path, rng):
    folder = tmp_path / "ih"
    write_imagenhub(folder, rng, uids=("s1.jpg",), models=("A",))
    (folder / "Synthetic_IE_rater2.tsv").write_text("uid\tA\ns1.jpg\t[0.5 1]\n")
    with pytest.raises(JudgmentError, match=r"rater2.tsv, line 2, uid 's1.jpg', model 'A': malformed cell"):
        load_judgments(folder)


# -- BAPPS ----------------------------------------------------------------------------------------
def write_bapps(root: Path, judges: dict[str, list[float]]) -> None:
    for subset, hs in judges.items():
        for i, h in enumerate(hs):
            stem = f"{i:06d}"
            for part, v in (("ref", 100), ("p0", 90 + i), ("p1", 140 - i)):
                _png(root / subset / part / f"{stem}.png", v)
            (root / subset / "judge").mkdir(parents=True, exist_ok=True)
            np.save(root / subset / "judge" / f"{stem}.npy", np.array([h], dtype=np.float32))


def test_bapps_synthetic(tmp_path):
    write_bapps(tmp_path / "2afc" / "val", {"traditional": [0.0, 0.5, 1.0], "cnn": [0.25]})
    assert detect_layout(tmp_path) == "bapps"
    js = load_judgments(tmp_path)
    assert js.kind == "2afc" and len(js.table) == 4
    row = js.table.set_index("item").loc["2afc/val/traditional/000001"]
    assert row["h"] == 0.5 and row["p1"] == "2afc/val/traditional/p1/000001.png"
    assert js.images_root == tmp_path


@pytest.mark.parametrize("breakage,message", [
    (lambda d: np.save(d / "judge" / "000000.npy", np.array([1.5])), r"\[0, 1\]"),
    (lambda d: np.save(d / "judge" / "000000.npy", np.array([0.1, 0.2])), "one number"),
    (lambda d: (d / "judge" / "000000.npy").write_bytes(b"garbage"), "not a readable .npy"),
    (lambda d: (d / "p1" / "000000.png").unlink(), "missing image 000000"),
])
def test_bapps_bad_input(tmp_path, breakage, message):
    write_bapps(tmp_path, {"traditional": [0.2]})
    breakage(tmp_path / "traditional")
    with pytest.raises(JudgmentError, match=message):
        load_judgments(tmp_path)


# -- NIGHTS ---------------------------------------------------------------------------------------
NIGHTS_HEADER = ",id,votes,left_vote,right_vote,ref_path,left_path,right_path,prompt,split,is_imagenet\n"


def test_nights_synthetic(tmp_path):
    for name in ("r.png", "l.png", "x.png"):
        _png(tmp_path / "imgs" / name, 50)
    (tmp_path / "data.csv").write_text(
        NIGHTS_HEADER + "0,t0,7,2,5,imgs/r.png,imgs/l.png,imgs/x.png,a dog,test,True\n"
        "1,t1,5,5,0,imgs/r.png,imgs/l.png,imgs/x.png,a cat,test,False\n"
        "2,t2,6,6,0,imgs/r.png,imgs/l.png,imgs/x.png,a cat,train,False\n")
    assert detect_layout(tmp_path) == "nights"
    js = load_judgments(tmp_path)
    assert js.table["item"].tolist() == ["t0", "t2"]  # t1 has 5 < 6 votes: dropped, as DreamSim does
    assert js.table["h"].tolist() == pytest.approx([5 / 7, 0.0])
    assert any("fewer than 6 votes" in w for w in js.warnings)


def test_nights_bad_input(tmp_path):
    (tmp_path / "data.csv").write_text(NIGHTS_HEADER + "0,t0,seven,2,5,r.png,l.png,x.png,p,test,True\n")
    with pytest.raises(JudgmentError, match=r"data.csv, line 2: votes 'seven' is not a number"):
        load_judgments(tmp_path)


# -- TID2013 and KADID-10k ------------------------------------------------------------------------
def test_tid2013_synthetic(tmp_path):
    _png(tmp_path / "reference_images" / "I01.BMP", 10)
    _png(tmp_path / "distorted_images" / "i01_01_1.bmp", 20)
    _png(tmp_path / "distorted_images" / "i01_02_5.bmp", 30)
    (tmp_path / "mos_with_names.txt").write_text("5.51429 i01_01_1.bmp\n2.0 i01_02_5.bmp\n")
    assert detect_layout(tmp_path) == "tid2013"
    js = load_judgments(tmp_path)
    assert js.table["score"].tolist() == [5.51429, 2.0]
    assert js.table["reference"].tolist() == ["reference_images/I01.BMP"] * 2


@pytest.mark.parametrize("text,message", [("5.5\n", "expected '<MOS> <image name>'"),
                                          ("x i01_01_1.bmp\n", "MOS 'x' is not a number"),
                                          ("5 picture.bmp\n", "not TID2013's")])
def test_tid2013_bad_lines(tmp_path, text, message):
    (tmp_path / "mos_with_names.txt").write_text(text)
    with pytest.raises(JudgmentError, match=message):
        load_judgments(tmp_path)


def test_kadid_synthetic(tmp_path):
    for name, v in (("I01.png", 0), ("I01_01_01.png", 10), ("I01_01_02.png", 20), ("I01_02_01.png", 30)):
        _png(tmp_path / "images" / name, v)
    (tmp_path / "dmos.csv").write_text("dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.5\n"
                                       "I01_01_02.png,I01.png,4.33,0.8\nI01_02_01.png,I01.png,2.1,0.9\n")
    assert detect_layout(tmp_path) == "kadid10k"
    js = load_judgments(tmp_path)
    assert js.table["score"].tolist() == [4.57, 4.33, 2.1] and js.images_root == tmp_path
    (tmp_path / "images" / "I01_01_02.png").unlink()
    with pytest.raises(JudgmentError, match="missing.*I01_01_02.png"):
        load_judgments(tmp_path)


# -- the real ImagenHub files ---------------------------------------------------------------------
real = pytest.mark.skipif(not IMAGENHUB.is_dir(), reason="../shared/data/imagenhub-text-guided-ie not present")


@real
def test_real_imagenhub_against_pandas():
    import pandas as pd

    js = load_judgments(IMAGENHUB)
    assert js.models == ["CycleDiffusion", "DiffEdit", "Imagic", "InstructPix2Pix", "MagicBrush", "Pix2PixZero",
                         "Prompt2prompt", "SDEdit", "Text2Live"]
    assert js.table["item"].nunique() == 179 and len(js.table) == 179 * 9 * 3 * 3
    # independent parse: pandas, then a regex-free split of each "[SC, PQ]" cell
    frames = []
    for r in (1, 2, 3):
        df = pd.read_csv(IMAGENHUB / f"Text-Guided_IE_rater{r}.tsv", sep="\t").melt(id_vars="uid", var_name="model")
        df[["SC", "PQ"]] = df["value"].str.strip("[] ").str.split(",", expand=True).astype(float)
        frames.append(df.assign(rater=f"rater{r}"))
    ref = pd.concat(frames)
    ref["overall"] = np.sqrt(ref["SC"] * ref["PQ"])
    ours = js.table.pivot_table(index="model", columns="criterion", values="score", aggfunc="mean")
    theirs = ref.groupby("model")[["SC", "PQ", "overall"]].mean()
    np.testing.assert_allclose(ours.loc[theirs.index, ["SC", "PQ", "overall"]].to_numpy(), theirs.to_numpy(),
                               atol=1e-12)


@real
def test_real_imagenhub_manifest_verifies_the_hashes(tmp_path):
    for f in IMAGENHUB.glob("*.tsv"):
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(HUMAN_JUDGMENTS / "imagenhub-text-guided-ie.toml", tmp_path / "judgments.toml")
    js = load_judgments(tmp_path)
    assert [f["verified"] for f in js.files] == [True, True, True]
    assert js.synthetic is False and js.manifest["licence"] == "MIT"
    assert not any("auto-detected" in w for w in js.warnings)


LPIPS_EXAMPLE = SHARED / "lpips-example"


@pytest.mark.skipif(not LPIPS_EXAMPLE.is_dir(), reason="../shared/data/lpips-example not present")
def test_bapps_layout_with_the_real_lpips_example_triplet(tmp_path):
    """The real LPIPS example images laid out as one BAPPS item. They come without a judgment: an
    empty judge/ folder is an error; the judge written afterwards is SYNTHETIC (made up here)."""
    from pytest_i2i.validation.validation_report import validate

    sub = tmp_path / "example"
    for part in ("ref", "p0", "p1"):
        (sub / part).mkdir(parents=True)
        shutil.copy(LPIPS_EXAMPLE / f"imgs_ex_{part}.png", sub / part / "000000.png")
    (sub / "judge").mkdir()
    with pytest.raises(JudgmentError, match="no .npy judge files"):
        load_judgments(tmp_path)
    np.save(sub / "judge" / "000000.npy", np.array([0.25]))  # SYNTHETIC judgment
    js = load_judgments(tmp_path)
    assert js.kind == "2afc" and js.table["item"].tolist() == ["example/000000"]
    report = validate([tmp_path], tmp_path / "out", metrics=["l1"], n_resamples=100)
    row = [r for r in report["results"] if r["metric"] == "l1"][0]

    def l1(a, b):
        return np.abs(np.asarray(Image.open(a), float) - np.asarray(Image.open(b), float)).mean()

    d0, d1 = l1(sub / "ref/000000.png", sub / "p0/000000.png"), l1(sub / "ref/000000.png", sub / "p1/000000.png")
    assert row["two_afc"]["value"] == pytest.approx((d0 < d1) * 0.75 + (d1 < d0) * 0.25 + 0.5 * (d0 == d1))
