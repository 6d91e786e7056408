"""Tests of evaluation datasets (pytest_i2i.data): folder layout, CSV/JSONL manifests, path
confinement, error reporting, subsets and the built-in colorization sample set.

Every file is written by the test itself into ``tmp_path`` (small PNG/BMP/TIFF images, lossless
so pixels compare exactly); the only external images are the photos bundled with scikit-image.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pytest_i2i.data import COLORIZATION_TEXTS, I2IDataset, Sample, load_dataset, sample_dataset
from pytest_i2i.errors import DatasetError, I2IInputError, UnsafePathError
from pytest_i2i.images import COLOR_PHOTOS

H, W = 5, 7


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def write_image(path: Path, seed: int) -> np.ndarray:
    """A random RGB image (H x W) written losslessly to ``path``; returns its HWC uint8 pixels."""
    arr = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return arr


def pixels(t: torch.Tensor) -> np.ndarray:
    """Canonical (3, H, W) float tensor back to HWC uint8."""
    return np.round(t.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    import csv

    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    return write_csv(path, rows) if path.suffix == ".csv" else write_jsonl(path, rows)


def raises(exc: type[Exception], *fragments: str):
    """Context manager: ``exc`` is raised and its message contains every fragment."""

    class _Check:
        def __enter__(self):
            self.cm = pytest.raises(exc)
            self.info = self.cm.__enter__()
            return self.info

        def __exit__(self, *args):
            handled = self.cm.__exit__(*args)
            msg = str(self.info.value)
            for fragment in fragments:
                assert fragment in msg, f"{fragment!r} not in error message: {msg}"
            return handled

    return _Check()


@pytest.fixture
def photos(tmp_path) -> dict[str, np.ndarray]:
    """Three input images a, b, c under tmp_path/data/inputs (mixed lossless formats)."""
    root = tmp_path / "data"
    return {
        "b": write_image(root / "inputs" / "b.png", 1),
        "a": write_image(root / "inputs" / "a.bmp", 2),
        "c": write_image(root / "inputs" / "c.tiff", 3),
    }


# --------------------------------------------------------------------------------------------
# folder layout
# --------------------------------------------------------------------------------------------


def test_folder_inputs_only(tmp_path, photos):
    (tmp_path / "data" / "inputs" / "notes.txt").write_text("not an image")
    (tmp_path / "data" / "inputs" / ".hidden.png").write_bytes(b"ignored")
    ds = load_dataset(tmp_path / "data")
    assert ds.uids == ["a", "b", "c"]
    assert len(ds) == 3 and isinstance(ds[0], Sample) and ds[0].uid == "a"
    inputs = ds.inputs()
    assert inputs.names == ["a", "b", "c"]
    for i, uid in enumerate(ds.uids):
        np.testing.assert_array_equal(pixels(inputs[i]), photos[uid])
    assert ds.targets() is None
    assert ds.instructions() is None and ds.source_captions() is None and ds.target_captions() is None
    assert ds.root == (tmp_path / "data").resolve()
    assert str(tmp_path / "data") in ds.source and not ds.synthetic
    assert "3 samples" in ds.description


def test_folder_targets_are_matched_by_stem_not_position(tmp_path, photos):
    root = tmp_path / "data"
    # target names sort in another order than the inputs' (z_ prefix is not used: stems must match)
    targets = {"c": write_image(root / "targets" / "c.png", 13), "a": write_image(root / "targets" / "a.png", 11),
               "b": write_image(root / "targets" / "b.bmp", 12)}
    ds = load_dataset(root)
    tset = ds.targets()
    assert tset is not None and tset.names == ds.uids
    for i, uid in enumerate(ds.uids):
        np.testing.assert_array_equal(pixels(tset[i]), targets[uid])
        np.testing.assert_array_equal(pixels(ds.inputs()[i]), photos[uid])


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_folder_texts(tmp_path, photos, fmt):
    root = tmp_path / "data"
    rows = [
        {"uid": "c", "instruction": "make it snowy", "target_caption": "a snowy street"},
        {"uid": "a", "instruction": "färben, bitte 🎨", "target_caption": 'a "quoted", comma\nand newline'},
        {"uid": "b", "instruction": "add a hat", "target_caption": "a cat in a hat"},
    ]
    write_manifest(root / f"texts.{fmt}", rows)
    ds = load_dataset(root)
    by_uid = {r["uid"]: r for r in rows}
    assert ds.instructions() == [by_uid[u]["instruction"] for u in ds.uids]
    assert ds.target_captions() == [by_uid[u]["target_caption"] for u in ds.uids]
    assert ds.source_captions() is None
    assert ds[0].instruction == "färben, bitte 🎨"


def _no_inputs(root: Path) -> None:
    write_image(root / "images" / "a.png", 0)


def _empty_inputs(root: Path) -> None:
    (root / "inputs").mkdir(parents=True)
    (root / "inputs" / "readme.txt").write_text("no images here")


def _input_without_target(root: Path) -> None:
    write_image(root / "inputs" / "a.png", 0)
    write_image(root / "inputs" / "lonely.png", 1)
    write_image(root / "targets" / "a.png", 2)


def _target_without_input(root: Path) -> None:
    write_image(root / "inputs" / "a.png", 0)
    write_image(root / "targets" / "a.png", 1)
    write_image(root / "targets" / "stray.png", 2)


def _duplicate_stem(root: Path) -> None:
    write_image(root / "inputs" / "a.png", 0)
    write_image(root / "inputs" / "a.bmp", 1)


def _both_texts_files(root: Path) -> None:
    write_image(root / "inputs" / "a.png", 0)
    write_jsonl(root / "texts.jsonl", [{"uid": "a", "instruction": "x"}])
    write_csv(root / "texts.csv", [{"uid": "a", "instruction": "x"}])


def _texts_unknown_uid(root: Path) -> None:
    write_image(root / "inputs" / "a.png", 0)
    write_jsonl(root / "texts.jsonl", [{"uid": "a", "instruction": "x"}, {"uid": "ghost", "instruction": "y"}])


def _texts_missing_row(root: Path) -> None:
    write_image(root / "inputs" / "a.png", 0)
    write_image(root / "inputs" / "norow.png", 1)
    write_jsonl(root / "texts.jsonl", [{"uid": "a", "instruction": "x"}])


def _texts_partial_field(root: Path) -> None:
    write_image(root / "inputs" / "a.png", 0)
    write_image(root / "inputs" / "blank.png", 1)
    write_csv(root / "texts.csv", [{"uid": "a", "instruction": "x"}, {"uid": "blank", "instruction": ""}])


def _texts_unknown_column(root: Path) -> None:
    write_image(root / "inputs" / "a.png", 0)
    write_csv(root / "texts.csv", [{"uid": "a", "instrution": "typo"}])


@pytest.mark.parametrize(
    "build, fragments",
    [
        (_no_inputs, ["data", "no inputs/ folder"]),
        (_empty_inputs, ["inputs", "no image files"]),
        (_input_without_target, ["targets", "lonely"]),
        (_target_without_input, ["targets", "stray"]),
        (_duplicate_stem, ["'a'", "a.png", "a.bmp"]),
        (_both_texts_files, ["texts.jsonl", "texts.csv"]),
        (_texts_unknown_uid, ["texts.jsonl, line 2", "ghost"]),
        (_texts_missing_row, ["texts.jsonl", "norow"]),
        (_texts_partial_field, ["instruction", "blank"]),
        (_texts_unknown_column, ["texts.csv, line 1", "instrution"]),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_folder_errors(tmp_path, build, fragments):
    root = tmp_path / "data"
    build(root)
    with raises(DatasetError, *fragments):
        load_dataset(root)


def test_folder_non_utf8_file_name(tmp_path):
    root = tmp_path / "data"
    write_image(root / "inputs" / "a.png", 0)
    bad = os.path.join(os.fsencode(root / "inputs"), b"caf\xe9.png")
    try:
        with open(bad, "wb") as f:
            f.write((root / "inputs" / "a.png").read_bytes())
    except OSError:
        pytest.skip("this filesystem refuses non-UTF-8 file names")
    with raises(DatasetError, str(root / "inputs"), "caf\\xe9.png", "UTF-8"):
        load_dataset(root)


def test_folder_symlinks(tmp_path):
    root = tmp_path / "data"
    write_image(root / "inputs" / "a.png", 0)
    outside = write_image(tmp_path / "outside" / "secret.png", 1)
    (root / "inputs" / "b.png").symlink_to(tmp_path / "outside" / "secret.png")
    with raises(UnsafePathError, "b.png", "outside the root"):
        load_dataset(root)
    ds = load_dataset(root, allow_outside_root=True)
    np.testing.assert_array_equal(pixels(ds.inputs()[1]), outside)

    (root / "inputs" / "b.png").unlink()
    (root / "inputs" / "x.png").symlink_to(root / "inputs" / "y.png")
    (root / "inputs" / "y.png").symlink_to(root / "inputs" / "x.png")
    with raises(UnsafePathError, "symlink loop"):
        load_dataset(root, allow_outside_root=True)


def test_corrupt_image_error_names_the_file(tmp_path, photos):
    (tmp_path / "data" / "inputs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    ds = load_dataset(tmp_path / "data")  # decoding is lazy
    i = ds.uids.index("broken")
    with raises(I2IInputError, "broken.png"):
        ds.inputs()[i]


# --------------------------------------------------------------------------------------------
# manifests
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_manifest(tmp_path, suffix):
    root = tmp_path / "data"
    imgs = {n: write_image(root / "img" / f"{n}.png", i) for i, n in enumerate(["x", "y", "z", "tx", "ty", "tz"])}
    rows = [
        {"uid": "zeta", "input": "img/z.png", "target": "img/tz.png", "instruction": "i3", "source_caption": "s3"},
        {"input": "img/x.png", "target": "img/tx.png", "instruction": "i1", "source_caption": "s1"},  # uid = stem
        {"uid": "mid", "input": "./img/y.png", "target": "img/ty.png", "instruction": "i2", "source_caption": "s2"},
    ]
    ds = load_dataset(write_manifest(root / f"data{suffix}", rows))
    assert ds.uids == ["mid", "x", "zeta"]
    assert ds.instructions() == ["i2", "i1", "i3"] and ds.source_captions() == ["s2", "s1", "s3"]
    assert ds.target_captions() is None
    for i, (inp, tgt) in enumerate([("y", "ty"), ("x", "tx"), ("z", "tz")]):
        np.testing.assert_array_equal(pixels(ds.inputs()[i]), imgs[inp])
        np.testing.assert_array_equal(pixels(ds.targets()[i]), imgs[tgt])
    assert ds.root == root.resolve()
    first_row_line = 2 if suffix == ".csv" else 1  # CSV line 1 is the header
    assert ds.origin("zeta").endswith(f"data{suffix}, line {first_row_line}")


def test_manifest_csv_with_bom_and_jsonl_int_uid(tmp_path):
    write_image(tmp_path / "a.png", 0)
    (tmp_path / "m.csv").write_bytes("\ufeffinput,instruction\na.png,hello\n".encode())
    assert load_dataset(tmp_path / "m.csv").instructions() == ["hello"]
    write_jsonl(tmp_path / "m.jsonl", [{"uid": 7, "input": "a.png", "target": None}])
    ds = load_dataset(tmp_path / "m.jsonl")
    assert ds.uids == ["7"] and ds.targets() is None


MANIFEST_ERRORS = [
    # (file name, content, error fragments besides the file name)
    ("data.csv", "uid,target\na,a.png\n", ["line 1", "'input'"]),
    ("data.csv", "uid,input,caption\na,a.png,hi\n", ["line 1", "'caption'"]),
    ("data.csv", "uid,input,input\na,a.png,a.png\n", ["line 1", "duplicate column"]),
    ("data.csv", "", ["empty"]),
    ("data.csv", "uid,input\n", ["empty"]),
    ("data.csv", "uid,input\na,a.png\nb,b.png,extra\n", ["line 3", "3 fields", "header (line 1) has 2"]),
    ("data.csv", 'uid,input\na,a.png\nb,"b.png\n', ["line 3", "malformed CSV"]),
    ("data.csv", "uid,input\na,a.png\nb,\n", ["line 3", "input"]),
    ("data.csv", "uid,input\na,a.png\nb,nope.png\n", ["line 3", "nope.png", "does not exist"]),
    ("data.csv", "uid,input\na,a.png\na,b.png\n", ["data.csv, line 2", "data.csv, line 3", "duplicate uids", "'a'"]),
    ("data.csv", "uid,input\nsub/a,a.png\n", ["line 2", "'sub/a'"]),
    ("data.csv", "uid,input\n a,a.png\n", ["line 2", "whitespace"]),
    ("data.csv", "uid,input,target\na,a.png,b.png\nc,b.png,\n", ["target", "c (", "line 3"]),
    ("data.csv", "uid,input\na,a.png\nb,b.png\n", []),  # control: loads
    ("data.jsonl", '{"input": "a.png"}\n\n{"input": "b.png",\n', ["line 3", "malformed JSON"]),
    ("data.jsonl", '{"input": "a.png"}\n["b.png"]\n', ["line 2", "JSON object"]),
    ("data.jsonl", '{"input": "a.png", "instruction": 3}\n', ["line 1", "'instruction'", "string"]),
    ("data.jsonl", '{"input": "a.png", "input": "b.png"}\n', ["line 1", "duplicate key"]),
    ("data.jsonl", '{"input": "a.png"}\n{"input": "b.png", "prompt": "x"}\n', ["line 2", "'prompt'"]),
    ("data.jsonl", '{"uid": "a"}\n', ["line 1", "input"]),
    ("data.jsonl", "\n\n", ["empty"]),
]


@pytest.mark.parametrize("name, content, fragments", MANIFEST_ERRORS)
def test_manifest_errors(tmp_path, name, content, fragments):
    write_image(tmp_path / "a.png", 0)
    write_image(tmp_path / "b.png", 1)
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    if not fragments:
        assert load_dataset(path).uids == ["a", "b"]
        return
    with raises(DatasetError, str(path), *fragments):
        load_dataset(path)


def test_manifest_non_utf8_bytes(tmp_path):
    write_image(tmp_path / "a.png", 0)
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"uid,input,instruction\na,a.png,ok\nb,a.png,caf\xe9\n")
    with raises(DatasetError, "latin1.csv, line 3", "UTF-8"):
        load_dataset(path)


@pytest.fixture
def escape_layout(tmp_path) -> tuple[Path, np.ndarray]:
    """tmp/root/ holds the manifests; tmp/outside/o.png lies outside it; tmp/root/in.png inside."""
    write_image(tmp_path / "root" / "in.png", 0)
    return tmp_path / "root", write_image(tmp_path / "outside" / "o.png", 1)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink_file", "symlink_dir"])
def test_manifest_paths_cannot_leave_root(escape_layout, kind):
    root, outside = escape_layout
    ref = {
        "dotdot": "../outside/o.png",
        "absolute": str(root.parent / "outside" / "o.png"),
        "symlink_file": "link.png",
        "symlink_dir": "linkdir/o.png",
    }[kind]
    if kind == "symlink_file":
        (root / "link.png").symlink_to(root.parent / "outside" / "o.png")
    if kind == "symlink_dir":
        (root / "linkdir").symlink_to(root.parent / "outside", target_is_directory=True)
    reason = "absolute path" if kind == "absolute" else "outside the root"
    path = write_csv(root / "m.csv", [{"uid": "in", "input": "in.png"}, {"uid": "out", "input": ref}])
    with raises(UnsafePathError, "m.csv, line 3", repr(ref), reason):
        load_dataset(path)
    ds = load_dataset(path, allow_outside_root=True)
    np.testing.assert_array_equal(pixels(ds.inputs()[ds.uids.index("out")]), outside)


def test_manifest_absolute_path_inside_root_is_refused_too(escape_layout):
    root, _ = escape_layout
    path = write_jsonl(root / "m.jsonl", [{"input": str(root / "in.png")}])
    with raises(UnsafePathError, "m.jsonl, line 1", "absolute path"):
        load_dataset(path)
    assert load_dataset(path, allow_outside_root=True).uids == ["in"]


def test_manifest_dotdot_is_refused_before_looking_at_the_file(escape_layout):
    root, _ = escape_layout
    path = write_csv(root / "m.csv", [{"input": "../missing.png"}])
    with raises(UnsafePathError, "m.csv, line 2", "outside the root"):
        load_dataset(path)  # not "does not exist": files outside the root are not probed


def test_manifest_dotdot_that_stays_inside_is_allowed(escape_layout):
    root, _ = escape_layout
    (root / "sub").mkdir()
    path = write_jsonl(root / "m.jsonl", [{"input": "sub/../in.png"}])
    assert load_dataset(path).uids == ["in"]


def test_manifest_target_escaping_root(escape_layout):
    root, _ = escape_layout
    path = write_jsonl(root / "m.jsonl", [{"input": "in.png", "target": "../outside/o.png"}])
    with raises(UnsafePathError, "m.jsonl, line 1", "outside"):
        load_dataset(path)


def test_manifest_symlink_loop(escape_layout):
    root, _ = escape_layout
    (root / "loop1.png").symlink_to(root / "loop2.png")
    (root / "loop2.png").symlink_to(root / "loop1.png")
    path = write_csv(root / "m.csv", [{"input": "in.png"}, {"input": "loop1.png"}])
    for allow in (False, True):
        with raises(UnsafePathError, "m.csv, line 3", "symlink loop"):
            load_dataset(path, allow_outside_root=allow)


# --------------------------------------------------------------------------------------------
# load_dataset dispatch, subsets, direct construction
# --------------------------------------------------------------------------------------------


def test_load_dataset_refuses_other_forms(tmp_path):
    (tmp_path / "data.txt").write_text("a.png\n")
    for bad in (tmp_path / "data.txt", tmp_path / "missing.csv"):
        with raises(I2IInputError, str(bad), "folder", ".csv", ".jsonl"):
            load_dataset(bad)
    with raises(I2IInputError, "int"):
        load_dataset(3)  # type: ignore[arg-type]


def test_subset_is_first_n_by_uid_whatever_the_row_order(tmp_path):
    names = ["e", "b", "d", "a", "c"]
    for i, n in enumerate(names):
        write_image(tmp_path / f"{n}.png", i)
    m1 = write_csv(tmp_path / "m1.csv", [{"input": f"{n}.png"} for n in names])
    m2 = write_jsonl(tmp_path / "m2.jsonl", [{"input": f"{n}.png"} for n in reversed(names)])
    s1, s2 = load_dataset(m1).subset(3), load_dataset(m2, max_samples=3)
    assert s1.uids == s2.uids == ["a", "b", "c"]
    assert s1.n_total == s2.n_total == 5
    for i in range(3):
        assert torch.equal(s1.inputs()[i], s2.inputs()[i])
    full = load_dataset(m1)
    assert full.subset(99) is full and full.subset(5).uids == sorted(names)
    assert full.subset(4).uids == sorted(names)[:4] and len(full.subset(4).inputs()) == 4
    for bad in (0, -1, True, 2.5):
        with pytest.raises(I2IInputError):
            full.subset(bad)  # type: ignore[arg-type]
    with raises(I2IInputError, "max_samples"):
        load_dataset(m1, max_samples=0)


def test_sample_and_direct_construction():
    img = np.zeros((H, W, 3), dtype=np.uint8)
    s = Sample("a", "some/file.png", instruction="x")
    assert s.input == Path("some/file.png")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.uid = "b"  # type: ignore[misc]
    with raises(I2IInputError, "instruction"):
        Sample("a", img, instruction=3)  # type: ignore[arg-type]
    with raises(DatasetError, "mine", "target", "b ("):
        I2IDataset([Sample("a", img, img), Sample("b", img)], source="mine")
    with raises(DatasetError, "duplicate uids", "'a'"):
        I2IDataset([Sample("a", img), Sample("a", img)], source="mine")
    with raises(DatasetError, "mine", "no samples"):
        I2IDataset([], source="mine")


# --------------------------------------------------------------------------------------------
# built-in sample set
# --------------------------------------------------------------------------------------------


def test_sample_dataset_colorization():
    size = 32
    ds = sample_dataset(size=size)
    assert ds.uids == sorted(COLOR_PHOTOS) and len(ds) == len(COLOR_PHOTOS)
    assert ds.synthetic and ds.root is None
    assert "synthetic" in ds.description and "grayscale" in ds.description
    assert not isinstance(ds[0].input, Path)  # in memory, nothing written
    assert ds.instructions() == [COLORIZATION_TEXTS["instruction"]] * len(ds) == ["colorize this photo"] * len(ds)
    assert ds.source_captions() == ["a black and white photo"] * len(ds)
    assert ds.target_captions() == ["a color photo"] * len(ds)
    inputs, targets = ds.inputs(), ds.targets()
    assert inputs.names == targets.names == ds.uids
    for i, uid in enumerate(ds.uids):
        x, y = inputs[i], targets[i]
        assert x.shape == y.shape == (3, size, size)
        assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2]), f"{uid}: input is not gray"
        assert float((y[0] - y[1]).abs().max()) > 0.05 or float((y[1] - y[2]).abs().max()) > 0.05, \
            f"{uid}: target is gray"
        luma = 0.299 * y[0] + 0.587 * y[1] + 0.114 * y[2]  # ITU-R BT.601
        assert float((x[0] - luma).abs().max()) <= 1.01 / 255, f"{uid}: input is not the BT.601 luma of the target"


def test_load_dataset_without_path_is_the_sample_set_and_feeds_metrics():
    import pytest_i2i

    ds = load_dataset(None, max_samples=2)
    assert ds.uids == sorted(COLOR_PHOTOS)[:2] and ds.synthetic and ds.inputs()[0].shape == (3, 128, 128)
    r = pytest_i2i.psnr(ds.inputs(), ds.targets())
    assert r.n == 2 and list(r.sample_names) == ds.uids
    assert all(np.isfinite(v) and v > 0 for v in r.per_sample)
