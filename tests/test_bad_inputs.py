"""The bad-input corpus: every input here is written by the test itself, and each one gets either
a documented conversion (the exact converted tensor is asserted) or a project error
(a subclass of ``pytest_i2i.errors.I2IError``) whose message names the input. Never a bare
traceback, a hang (each case runs under a 20 s alarm) or a silent wrong number.

The finer points of each rule are tested next to the code: tests/test_images.py (conversions,
decompression bomb, in-memory inputs) and tests/test_dataset.py (manifests, folders, paths).
This file is the one list of hostile inputs, one case per input (``pytest -k <id>``).
"""

from __future__ import annotations

import os
import signal
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import pytest_i2i
from pytest_i2i import l1, load_dataset, load_generator, load_images
from pytest_i2i.metrics.functional.frechet import load_stats
from pytest_i2i.errors import DatasetError, I2IError, I2IInputError, UnsafePathError


@dataclass
class Converted:
    """The input is accepted; these are the exact canonical tensors (3, H, W) float32 it gives."""

    expected: list[torch.Tensor]


@dataclass
class Raises:
    """The input is refused with ``error`` (or a subclass); the message holds every fragment."""

    error: type[I2IError]
    fragments: tuple[str, ...]


CASES: dict[str, Callable[[Path], tuple[Callable[[], Any], Converted | Raises]]] = {}


def case(fn):
    CASES[fn.__name__.removeprefix("case_")] = fn
    return fn


def decode_all(source: Any, **kw: Any) -> list[torch.Tensor]:
    s = load_images(source, name="fakes", **kw)
    return [s[i] for i in range(len(s))]


def unit(hwc_uint8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(hwc_uint8.astype(np.float32) / np.float32(255)).permute(2, 0, 1).contiguous()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(width: int, height: int, bit_depth: int, color_type: int, rows: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(rows))
            + png_chunk(b"IEND", b""))


RGB = np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)


def save(path: Path, arr: np.ndarray = RGB, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


# -- image files -----------------------------------------------------------------------------------
@case
def case_zero_byte_png(tmp):
    (tmp / "zero.png").write_bytes(b"")
    return lambda: decode_all(tmp / "zero.png"), Raises(I2IInputError, ("zero.png", "zero-byte"))


@case
def case_truncated_png(tmp):
    data = save(tmp / "full.png").read_bytes()
    (tmp / "cut.png").write_bytes(data[: len(data) // 2])
    return lambda: decode_all(tmp / "cut.png"), Raises(I2IInputError, ("cut.png", "truncated or corrupt"))


@case
def case_truncated_jpeg(tmp):
    big = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = save(tmp / "full.jpg", big).read_bytes()
    (tmp / "cut.jpg").write_bytes(data[: len(data) // 2])
    return lambda: decode_all(tmp / "cut.jpg"), Raises(I2IInputError, ("cut.jpg", "truncated or corrupt"))


@case
def case_text_file_named_png(tmp):
    (tmp / "notes.png").write_text("not a picture\n")
    return lambda: decode_all(tmp / "notes.png"), Raises(I2IInputError, ("notes.png", "not an image file"))


@case
def case_png_with_bad_crc(tmp):
    data = bytearray(save(tmp / "ok.png").read_bytes())
    data[20] ^= 0xFF  # inside IHDR: its CRC no longer matches
    (tmp / "badcrc.png").write_bytes(bytes(data))
    return lambda: decode_all(tmp / "badcrc.png"), Raises(I2IInputError, ("badcrc.png",))


@case
def case_cmyk_jpeg(tmp):
    p = tmp / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(p, quality=95)
    with Image.open(p) as im:  # the rule: Pillow's own CMYK -> RGB of the decoded pixels
        expected = unit(np.asarray(im.convert("RGB")))
    return lambda: decode_all(p), Converted([expected])


@case
def case_cmyk_tiff_lossless(tmp):
    p = tmp / "cmyk.tif"
    Image.new("CMYK", (3, 2), (0, 255, 255, 0)).save(p)  # pure red, stored losslessly
    expected = torch.zeros(3, 2, 3)
    expected[0] = 1.0
    return lambda: decode_all(p), Converted([expected])


@case
def case_16bit_gray_png(tmp):
    a = np.array([[0, 1, 257, 32768, 65535]], dtype=np.uint16)
    p = save(tmp / "g16.png", a)
    expected = torch.from_numpy(a.astype(np.float32) / np.float32(65535)).expand(3, -1, -1).contiguous()
    return lambda: decode_all(p), Converted([expected])


@case
def case_16bit_rgb_png(tmp):
    """Pillow decodes 16-bit RGB PNGs to 8 bits by keeping the high byte (documented)."""
    vals = np.array([[[0x1234, 0xABCD, 0xFFFF], [0x00FF, 0x8000, 0x0001]]], dtype=">u2")
    p = tmp / "rgb16.png"
    p.write_bytes(raw_png(2, 1, 16, 2, b"\x00" + vals[0].tobytes()))
    expected = unit((vals.astype(np.int64) >> 8).astype(np.uint8))
    return lambda: decode_all(p), Converted([expected])


@case
def case_palette_png_with_transparency(tmp):
    img = Image.new("P", (3, 1))
    img.putpalette([10, 20, 30, 200, 100, 0, 0, 255, 0] + [0] * (253 * 3))
    img.putdata([0, 1, 2])
    p = tmp / "pal.png"
    img.save(p, transparency=0)  # index 0 fully transparent -> white
    expected = unit(np.array([[[255, 255, 255], [200, 100, 0], [0, 255, 0]]], dtype=np.uint8))
    return lambda: decode_all(p), Converted([expected])


@case
def case_rgba_png_alpha(tmp):
    rgba = np.array([[[255, 0, 0, 0], [0, 0, 255, 255], [0, 0, 0, 0]]], dtype=np.uint8)
    p = save(tmp / "rgba.png", rgba)
    expected = unit(np.array([[[255, 255, 255], [0, 0, 255], [255, 255, 255]]], dtype=np.uint8))
    return lambda: decode_all(p), Converted([expected])


@case
def case_one_by_one_png(tmp):
    px = np.array([[[12, 200, 255]]], dtype=np.uint8)
    return lambda: decode_all(save(tmp / "dot.png", px)), Converted([unit(px)])


@case
def case_exif_orientation(tmp):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    p = save(tmp / "exif.png", RGB, exif=exif.tobytes())  # PNG: lossless, so the result is exact
    return lambda: decode_all(p), Converted([unit(np.ascontiguousarray(np.rot90(RGB, k=-1)))])


@case
def case_decompression_bomb_header(tmp):
    p = tmp / "bomb.png"
    p.write_bytes(raw_png(20000, 20000, 8, 2, b"\x00" * 64))  # IHDR claims 4e8 pixels; 100 bytes on disk

    def run():
        t0 = time.perf_counter()
        try:
            return decode_all(p)
        finally:
            assert time.perf_counter() - t0 < 2.0, "the bomb was decoded"
    return run, Raises(I2IInputError, ("bomb.png", "400000000 pixels", "decompression-bomb"))


@case
def case_non_utf8_file_name(tmp):
    folder = tmp / "imgs"
    folder.mkdir()
    try:
        save(Path(os.fsdecode(os.path.join(os.fsencode(folder), b"\xff.png"))))
    except OSError:
        pytest.skip("this filesystem refuses non-UTF-8 file names")

    def run():
        s = load_images(folder, name="fakes")
        assert s.names == ["\\xff.png"]  # shown with an escape, printable anywhere
        return [s[0]]
    return run, Converted([unit(RGB)])


@case
def case_non_utf8_file_name_corrupt(tmp):
    folder = tmp / "imgs"
    folder.mkdir()
    try:
        with open(os.path.join(os.fsencode(folder), b"caf\xe9.png"), "wb") as f:
            f.write(b"garbage")
    except OSError:
        pytest.skip("this filesystem refuses non-UTF-8 file names")
    return lambda: decode_all(folder), Raises(I2IInputError, ("caf\\xe9.png", "not an image file"))


@case
def case_empty_folder(tmp):
    (tmp / "empty").mkdir()
    return lambda: decode_all(tmp / "empty"), Raises(I2IInputError, ("fakes", "empty", "contains no image files"))


@case
def case_folder_of_non_images(tmp):
    folder = tmp / "docs"
    folder.mkdir()
    for name in ("a.txt", "b.csv", "c.json", ".hidden.png"):
        (folder / name).write_text("x")
    return lambda: decode_all(folder), Raises(I2IInputError, ("docs", "contains no image files"))


@case
def case_symlink_loop_in_folder(tmp):
    folder = tmp / "imgs"
    folder.mkdir()
    save(folder / "a.png")
    os.symlink("loop.png", folder / "loop.png")
    return lambda: decode_all(folder), Raises(I2IInputError, ("loop.png", "symlink loop"))


@case
def case_dangling_symlink(tmp):
    folder = tmp / "imgs"
    folder.mkdir()
    os.symlink(tmp / "gone.png", folder / "link.png")
    return lambda: decode_all(folder), Raises(I2IInputError, ("link.png", "dangling"))


@case
def case_missing_path(tmp):
    return lambda: decode_all(tmp / "nope"), Raises(I2IInputError, ("fakes", "nope", "does not exist"))


# -- tensors and arrays ----------------------------------------------------------------------------
def _with(value: float) -> torch.Tensor:
    x = torch.full((3, 4, 5), 0.5)
    x[1, 2, 3] = value
    return x


@case
def case_nan_tensor(tmp):
    return lambda: decode_all(_with(float("nan"))), Raises(I2IInputError, ("fakes[0]", "NaN"))


@case
def case_inf_tensor(tmp):
    return lambda: decode_all(_with(float("inf"))), Raises(I2IInputError, ("fakes[0]", "Inf"))


@case
def case_float_0_255(tmp):
    x = torch.from_numpy(RGB.astype(np.float32)).permute(2, 0, 1)
    return lambda: decode_all(x), Raises(I2IInputError, ("fakes[0]", "outside the declared range [0, 1]", "divide by 255"))


@case
def case_negative_floats(tmp):
    return lambda: decode_all(_with(-0.5)), Raises(I2IInputError, ("fakes[0]", "value_range=(-1, 1)"))


@case
def case_tanh_range_declared(tmp):
    x = torch.linspace(-1, 1, 3 * 4 * 5).reshape(3, 4, 5)
    return lambda: decode_all(x, value_range=(-1, 1)), Converted([((x.double() + 1) / 2).float()])


@case
def case_two_channels_gray_alpha(tmp):
    x = torch.tensor([[[0.2, 0.6]], [[1.0, 0.5]]])  # gray, alpha
    composite = (x[0].double() * x[1].double() + 1 - x[1].double()).float()
    return lambda: decode_all(x), Converted([composite.expand(3, -1, -1).contiguous()])


@case
def case_five_channels(tmp):
    return lambda: decode_all(torch.rand(5, 4, 4)), Raises(I2IInputError, ("fakes[0]", "5 channels"))


@case
def case_one_channel(tmp):
    x = torch.rand(1, 4, 5, generator=torch.Generator().manual_seed(0))
    return lambda: decode_all(x), Converted([x.expand(3, -1, -1).contiguous()])


@case
def case_five_dim_tensor(tmp):
    return lambda: decode_all(torch.rand(1, 2, 3, 4, 4)), Raises(I2IInputError, ("fakes[0]", "CHW or HW"))


@case
def case_one_dim_array(tmp):
    return lambda: decode_all(np.zeros(7, dtype=np.uint8)), Raises(I2IInputError, ("fakes[0]", "HW or HWC"))


@case
def case_int64_tensor(tmp):
    return (lambda: decode_all(torch.zeros(3, 4, 4, dtype=torch.int64)),
            Raises(I2IInputError, ("fakes[0]", "unsupported dtype int64")))


@case
def case_uint16_array(tmp):
    a = (np.arange(12, dtype=np.uint32).reshape(2, 2, 3) * 5957).astype(np.uint16)
    expected = torch.from_numpy(a.astype(np.float32) / np.float32(65535)).permute(2, 0, 1).contiguous()
    return lambda: decode_all(a), Converted([expected])


@case
def case_empty_image(tmp):
    return lambda: decode_all(np.zeros((0, 4, 3), dtype=np.uint8)), Raises(I2IInputError, ("fakes[0]", "empty image"))


# -- metric front-end ------------------------------------------------------------------------------
@case
def case_mismatched_pair_counts(tmp):
    return (lambda: l1(torch.rand(3, 3, 8, 8), torch.rand(2, 3, 8, 8)),
            Raises(I2IInputError, ("a has 3 images, b has 2",)))


@case
def case_nan_in_metric_input(tmp):
    b = torch.rand(2, 3, 8, 8)
    b[1, 0, 0, 0] = float("nan")
    return lambda: l1(torch.rand(2, 3, 8, 8), b), Raises(I2IInputError, ("b[1]", "NaN"))


# -- dataset manifests -----------------------------------------------------------------------------
def _manifest(tmp: Path, name: str, content: str | bytes) -> Path:
    save(tmp / "a.png")
    save(tmp / "b.png")
    p = tmp / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def _dataset_case(tmp, name, content, error, *fragments):
    p = _manifest(tmp, name, content)
    return lambda: load_dataset(p), Raises(error, (name, *fragments))


@case
def case_manifest_duplicate_uids(tmp):
    return _dataset_case(tmp, "m.csv", "uid,input\na,a.png\na,b.png\n", DatasetError,
                         "line 2", "line 3", "duplicate uids", "'a'")


@case
def case_manifest_bad_csv_quoting(tmp):
    return _dataset_case(tmp, "m.csv", 'uid,input\na,a.png\nb,"b.png\n', DatasetError, "line 3", "malformed CSV")


@case
def case_manifest_missing_column(tmp):
    return _dataset_case(tmp, "m.csv", "uid,target\na,a.png\n", DatasetError, "line 1", "'input'")


@case
def case_manifest_extra_field(tmp):
    return _dataset_case(tmp, "m.csv", "uid,input\na,a.png\nb,b.png,x\n", DatasetError, "line 3", "3 fields")


@case
def case_manifest_bad_jsonl_line(tmp):
    return _dataset_case(tmp, "m.jsonl", '{"input": "a.png"}\n{"input": "b.png",\n', DatasetError,
                         "line 2", "malformed JSON")


@case
def case_manifest_wrong_type(tmp):
    return _dataset_case(tmp, "m.jsonl", '{"input": "a.png", "instruction": 3}\n', DatasetError,
                         "line 1", "'instruction'", "string")


@case
def case_manifest_not_an_object(tmp):
    return _dataset_case(tmp, "m.jsonl", '["a.png"]\n', DatasetError, "line 1", "JSON object")


@case
def case_manifest_missing_file(tmp):
    return _dataset_case(tmp, "m.csv", "uid,input\na,nope.png\n", DatasetError, "line 2", "nope.png",
                         "does not exist")


@case
def case_manifest_non_utf8_bytes(tmp):
    return _dataset_case(tmp, "m.csv", b"uid,input,instruction\na,a.png,caf\xe9\n", DatasetError,
                         "line 2", "UTF-8")


@case
def case_manifest_path_traversal(tmp):
    save(tmp / "secret.png")
    root = tmp / "root"
    root.mkdir()
    return _dataset_case(root, "m.csv", "uid,input\na,../secret.png\n", UnsafePathError, "line 2",
                         "'../secret.png'", "outside the root")


@case
def case_manifest_absolute_path(tmp):
    target = save(tmp / "elsewhere" / "x.png")
    return _dataset_case(tmp, "m.jsonl", f'{{"input": "{target}"}}\n', UnsafePathError, "line 1", "absolute path")


@case
def case_manifest_symlink_loop(tmp):
    os.symlink("loop.png", tmp / "loop.png")
    return _dataset_case(tmp, "m.csv", "uid,input\na,loop.png\n", UnsafePathError, "line 2", "symlink loop")


@case
def case_manifest_header_only(tmp):
    return _dataset_case(tmp, "m.csv", "uid,input\n", DatasetError, "empty")


@case
def case_dataset_folder_non_utf8_name(tmp):
    inputs = tmp / "data" / "inputs"
    save(inputs / "a.png")
    try:
        with open(os.path.join(os.fsencode(inputs), b"caf\xe9.png"), "wb") as f:
            f.write((inputs / "a.png").read_bytes())
    except OSError:
        pytest.skip("this filesystem refuses non-UTF-8 file names")
    return lambda: load_dataset(tmp / "data"), Raises(DatasetError, ("caf\\xe9.png", "UTF-8"))


# -- public arguments (issue 19): every one checked, by name, before any work ----------------------
PAIR = (torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)),
        torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)))


def argument_case(name, metric, kwargs, fragments):
    def make(tmp):
        return lambda: metric(*PAIR, **kwargs), Raises(I2IInputError, fragments)

    make.__name__ = f"case_{name}"
    return case(make)


for _name, _metric, _kwargs, _fragments in [
    ("confidence_as_string", l1, {"confidence": "0.95"}, ("confidence", "'0.95'")),
    ("confidence_one", l1, {"confidence": 1.0}, ("confidence", "(0, 1)")),
    ("confidence_nan", l1, {"confidence": float("nan")}, ("confidence", "nan")),
    ("n_resamples_zero", l1, {"n_resamples": 0}, ("n_resamples", ">= 2")),
    ("n_resamples_one", l1, {"n_resamples": 1}, ("n_resamples", ">= 2")),
    ("seed_negative", l1, {"seed": -1}, ("seed", "-1")),
    ("seed_huge", l1, {"seed": 2**64}, ("seed", str(2**64))),
    ("batch_size_float", l1, {"batch_size": 2.0}, ("batch_size", "2.0")),
    ("batch_size_zero", l1, {"batch_size": 0}, ("batch_size", ">= 1")),
    ("batch_size_bool", l1, {"batch_size": True}, ("batch_size", "True")),
    ("value_range_infinite", l1, {"value_range": (0.0, float("inf"))}, ("value_range", "finite")),
    ("value_range_nan", l1, {"value_range": (float("nan"), 1.0)}, ("value_range",)),
    ("value_range_reversed", l1, {"value_range": (1.0, 0.0)}, ("value_range", "low must be < high")),
    ("device_meta", l1, {"device": "meta"}, ("device", "meta")),
    ("device_missing_cuda_index", l1, {"device": "cuda:97"}, ("device", "cuda:97")),
    ("resize_unknown", l1, {"resize": "bogus"}, ("resize", "bogus")),
    ("psnr_data_range_zero", pytest_i2i.psnr, {"data_range": 0}, ("data_range", "> 0")),
    ("ssim_sigma_negative", pytest_i2i.ssim, {"sigma": -1.5}, ("sigma", "-1.5")),
]:
    argument_case(_name, _metric, _kwargs, _fragments)


@case
def case_kid_subsets_zero(tmp):
    return lambda: pytest_i2i.kid(*PAIR, subsets=0, weights="random"), Raises(I2IInputError, ("subsets", ">= 1"))


@case
def case_kid_subset_size_negative(tmp):
    return (lambda: pytest_i2i.kid(*PAIR, subset_size=-3, weights="random"),
            Raises(I2IInputError, ("subset_size", "-3")))


@case
def case_inception_score_splits_zero(tmp):
    return (lambda: pytest_i2i.inception_score(PAIR[0], splits=0, weights="random"),
            Raises(I2IInputError, ("splits", ">= 1")))


# -- tensors of unusual kinds ------------------------------------------------------------------------
@case
def case_meta_tensor(tmp):
    return lambda: decode_all(torch.empty(3, 4, 4, device="meta")), Raises(I2IInputError, ("fakes", "meta tensor"))


@case
def case_nested_tensor(tmp):
    nested = torch.nested.nested_tensor([torch.rand(3, 4, 4), torch.rand(3, 5, 5)])
    return lambda: decode_all(nested), Raises(I2IInputError, ("fakes", "nested tensor"))


@case
def case_sparse_tensor_read_by_value(tmp):
    dense = torch.zeros(3, 4, 5)
    dense[0, 1, 2], dense[2, 3, 4] = 0.5, 1.0
    return lambda: decode_all(dense.to_sparse()), Converted([dense])


@case
def case_quantized_tensor_dequantized(tmp):
    x = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(2))
    q = torch.quantize_per_tensor(x, scale=1 / 255, zero_point=0, dtype=torch.quint8)
    return lambda: decode_all(q), Converted([q.dequantize()])


@case
def case_pil_mode_La(tmp):
    la = np.zeros((2, 3, 2), dtype=np.uint8)
    la[..., 0], la[..., 1] = 100, 255  # opaque: the premultiplied gray equals the gray
    im = Image.fromarray(la, "LA").convert("La")
    expected = torch.full((3, 2, 3), np.float32(100) / np.float32(255), dtype=torch.float32)
    return lambda: decode_all(im), Converted([expected])


# -- paths that are not regular files: refused by stat, never opened (no hang) ---------------------
def fifo(tmp, name):
    path = tmp / name
    os.mkfifo(path)
    return path


@case
def case_fifo_named_png(tmp):
    p = fifo(tmp, "pipe.png")
    return lambda: decode_all(p), Raises(I2IInputError, ("pipe.png", "not a regular file", "FIFO"))


@case
def case_character_device_as_image(tmp):
    return lambda: decode_all("/dev/null"), Raises(I2IInputError, ("/dev/null", "not a regular file",
                                                                   "character device"))


@case
def case_dangling_symlink_image(tmp):
    (tmp / "link.png").symlink_to(tmp / "gone.png")
    return lambda: decode_all(tmp / "link.png"), Raises(I2IInputError, ("link.png", "dangling symbolic link"))


@case
def case_fifo_dataset(tmp):
    p = fifo(tmp, "manifest.csv")
    return lambda: load_dataset(p), Raises(I2IInputError, ("manifest.csv", "not a regular file"))


@case
def case_fifo_statistics_file(tmp):
    p = fifo(tmp, "stats.npz")
    return lambda: load_stats(p), Raises(I2IInputError, ("stats.npz", "not a regular file"))


@case
def case_fifo_generator_file(tmp):
    p = fifo(tmp, "g.pth")
    return lambda: load_generator(p, arch="pix2pix-unet256"), Raises(I2IInputError, ("g.pth", "not a regular file"))


@case
def case_fifo_judgment_file(tmp):
    from pytest_i2i.validation.judgments.format import read_text

    p = fifo(tmp, "ratings.json")
    return lambda: read_text(p), Raises(I2IInputError, ("ratings.json", "not a regular file"))


# -- statistics files (FID): a Gaussian's, or refused ------------------------------------------------
def stats_file(tmp, **arrays):
    path = tmp / "stats.npz"
    np.savez(path, **arrays)
    return path


@case
def case_statistics_zero_d_mu(tmp):
    p = stats_file(tmp, mu=np.float64(1.0), sigma=np.eye(2))
    return lambda: load_stats(p), Raises(I2IInputError, ("stats.npz", "mu", "1-D"))


@case
def case_statistics_negative_identity_sigma(tmp):
    """The review's probe: sigma = -I gave FID 0.0."""
    p = stats_file(tmp, mu=np.zeros(3), sigma=-np.eye(3))
    return lambda: load_stats(p), Raises(I2IInputError, ("stats.npz", "not positive semi-definite"))


@case
def case_statistics_asymmetric_sigma(tmp):
    p = stats_file(tmp, mu=np.zeros(2), sigma=np.array([[1.0, 0.9], [0.0, 1.0]]))
    return lambda: load_stats(p), Raises(I2IInputError, ("stats.npz", "not symmetric"))


@case
def case_statistics_indefinite_sigma(tmp):
    p = stats_file(tmp, mu=np.zeros(2), sigma=np.array([[1.0, 2.0], [2.0, 1.0]]))  # eigenvalues 3 and -1
    return lambda: load_stats(p), Raises(I2IInputError, ("stats.npz", "smallest eigenvalue -1"))


@case
def case_statistics_shape_mismatch(tmp):
    p = stats_file(tmp, mu=np.zeros(3), sigma=np.eye(2))
    return lambda: load_stats(p), Raises(I2IInputError, ("stats.npz", "(3, 3)", "(2, 2)"))


@case
def case_statistics_pickled_object(tmp):
    p = tmp / "stats.npz"
    np.savez(p, mu=np.array([{"a": 1}], dtype=object), sigma=np.eye(1))
    return lambda: load_stats(p), Raises(I2IInputError, ("stats.npz", "not a readable .npz"))


@case
def case_frechet_distance_negative_sigma(tmp):
    from pytest_i2i.metrics.functional.frechet import frechet_distance

    return (lambda: frechet_distance(np.zeros(2), -np.eye(2), np.zeros(2), np.eye(2)),
            Raises(I2IInputError, ("sigma1",)))


# -- checkpoints: the decompression-bomb guard reads only the zip directory ---------------------------
def zip_bomb(path, mib):
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("archive/data/0", "w", force_zip64=True) as member:
            block = bytes(2**20)
            for _ in range(mib):  # zeros deflate ~1000:1
                member.write(block)
    return path


@case
def case_generator_checkpoint_decompression_bomb(tmp):
    p = zip_bomb(tmp / "bomb.pt", 160)
    return (lambda: load_generator(p, arch="pix2pix-unet256"),
            Raises(I2IInputError, ("bomb.pt", "decompression-bomb guard")))


@case
def case_weights_checkpoint_decompression_bomb(tmp):
    from pytest_i2i.checkpoint import read_checkpoint

    p = zip_bomb(tmp / "weights.pt", 100)
    return (lambda: read_checkpoint(p, what="test weights"),
            Raises(I2IInputError, ("weights.pt", "test weights", "decompression-bomb")))

# -- the test --------------------------------------------------------------------------------------
@pytest.fixture
def alarm():
    """Fail a case that takes more than 20 s instead of hanging the suite."""
    def on_alarm(signum, frame):
        raise TimeoutError("bad input made the loader hang")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_corpus_is_large_enough():
    assert len(CASES) > 80


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, tmp_path, alarm):
    run, outcome = CASES[name](tmp_path)
    if isinstance(outcome, Converted):
        got = run()
        assert len(got) == len(outcome.expected)
        for t, e in zip(got, outcome.expected):
            assert t.dtype == torch.float32 and t.shape == e.shape and t.shape[0] == 3
            assert bool(torch.isfinite(t).all()) and 0.0 <= float(t.min()) and float(t.max()) <= 1.0
            assert torch.equal(t, e), (t - e).abs().max()
        return
    with pytest.raises(I2IError) as info:
        run()
    err = info.value
    assert isinstance(err, outcome.error), f"{type(err).__name__}: {err}"
    assert type(err).__module__ == "pytest_i2i.errors"
    msg = str(err)
    missing = [f for f in outcome.fragments if f not in msg]
    assert not missing, f"{missing} not in: {msg}"
    msg.encode("utf-8")  # printable on any UTF-8 terminal or log (no lone surrogates)
