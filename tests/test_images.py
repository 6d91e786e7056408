"""Tests of image loading, conversion, validation and resizing (pytest_i2i.images).

Every input is written by the test itself into ``tmp_path`` (nothing is downloaded); the only
external images are the scikit-image photos bundled in its wheel (``sample_images``).
"""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile

from pytest_i2i.errors import I2IInputError
from pytest_i2i.images import (
    COLOR_PHOTOS,
    RESIZE_MODES,
    ImageSet,
    Preprocess,
    as_pairs,
    load_image_file,
    load_images,
    resize_batch,
    sample_images,
)
from pytest_i2i.images import convert as convert_mod
from pytest_i2i.images.imageset import iter_pair_batches

H, W = 5, 7  # non-square on purpose: a transposed result has the wrong shape


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def load_all(source, **kw) -> list[torch.Tensor]:
    """Build the ImageSet and decode every image (errors are raised on access)."""
    s = load_images(source, **kw)
    return [s[i] for i in range(len(s))]


def chw(hwc_uint8: np.ndarray) -> torch.Tensor:
    """Expected canonical tensor of an HWC uint8 array."""
    return torch.from_numpy(hwc_uint8.astype(np.float32) / np.float32(255)).permute(2, 0, 1).contiguous()


def assert_canonical(t: torch.Tensor, h: int = H, w: int = W) -> None:
    assert isinstance(t, torch.Tensor)
    assert t.dtype == torch.float32
    assert tuple(t.shape) == (3, h, w)
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int, height: int) -> bytes:
    """A tiny, valid-looking RGB PNG whose IHDR claims width x height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))


@pytest.fixture
def ref() -> np.ndarray:
    """A random HWC uint8 RGB image covering 0 and 255."""
    a = np.random.default_rng(0).integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    a[0, 0] = (0, 0, 0)
    a[0, 1] = (255, 255, 255)
    return a


@pytest.fixture
def ref_png(tmp_path, ref) -> Path:
    p = tmp_path / "ref.png"
    Image.fromarray(ref).save(p)
    return p


# --------------------------------------------------------------------------------------------
# accepted inputs
# --------------------------------------------------------------------------------------------


def test_folder_sorted_and_filters_non_images_and_hidden(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    colours = {"b.png": (0, 0, 255), "a.png": (255, 0, 0), "c.bmp": (0, 255, 0)}
    for fname, c in colours.items():
        Image.new("RGB", (W, H), c).save(folder / fname)
    (folder / "notes.txt").write_text("not an image")
    (folder / "model.pth").write_bytes(b"\x00" * 16)
    Image.new("RGB", (W, H), (9, 9, 9)).save(folder / ".hidden.png", format="PNG")
    (folder / "._a.png").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")  # hidden too
    (folder / "sub.png").mkdir()  # a directory with an image suffix is not an image
    Image.new("RGB", (W, H), (1, 2, 3)).save(folder / "sub.png" / "nested.png")  # not recursive

    s = load_images(folder, name="real")
    assert isinstance(s, ImageSet)
    assert s.names == ["a.png", "b.png", "c.bmp"]
    imgs = [s[i] for i in range(len(s))]
    for t, fname in zip(imgs, s.names):
        assert_canonical(t)
        expected = torch.tensor(colours[fname], dtype=torch.float32) / 255
        assert torch.equal(t, expected[:, None, None].expand(3, H, W))


def test_list_of_paths_and_single_file(tmp_path, ref, ref_png):
    other = np.ascontiguousarray(255 - ref)
    p2 = tmp_path / "other.png"
    Image.fromarray(other).save(p2)

    imgs = load_all([str(ref_png), p2])  # str and Path mixed, order kept (not sorted)
    assert len(imgs) == 2
    assert torch.equal(imgs[0], chw(ref))
    assert torch.equal(imgs[1], chw(other))

    (single,) = load_all(ref_png)
    assert_canonical(single)
    assert torch.equal(single, chw(ref))
    assert load_images(ref_png).names == ["ref.png"]


def test_pil_image(ref):
    (t,) = load_all(Image.fromarray(ref))
    assert_canonical(t)
    assert torch.equal(t, chw(ref))
    # PIL images inside a list too
    imgs = load_all([Image.fromarray(ref), Image.fromarray(ref[::-1].copy())])
    assert torch.equal(imgs[1], chw(ref[::-1].copy()))


def test_numpy_hwc_uint8_uint16_float(ref):
    (t8,) = load_all(ref)
    assert_canonical(t8)
    assert torch.equal(t8, chw(ref))

    a16 = (ref.astype(np.uint16) * 257)
    a16[0, 2] = (1, 65534, 65535)
    (t16,) = load_all(a16)
    assert_canonical(t16)
    expected16 = torch.from_numpy(a16.astype(np.float32) / np.float32(65535)).permute(2, 0, 1)
    assert torch.equal(t16, expected16)
    assert float(t16[2, 0, 2]) == 1.0

    for dtype in (np.float32, np.float64):
        af = ref.astype(dtype) / 255
        (tf,) = load_all(af)
        assert_canonical(tf)
        torch.testing.assert_close(tf, chw(ref), rtol=0, atol=1e-7)

    # HW grayscale numpy is replicated
    (tg,) = load_all(ref[..., 0])
    assert_canonical(tg)
    assert torch.equal(tg, chw(ref)[0:1].expand(3, H, W))


def test_numpy_nhwc_batch(ref):
    batch = np.stack([ref, 255 - ref, ref[::-1]])
    s = load_images(batch, name="fakes")
    assert len(s) == 3
    assert s.names == ["fakes[0]", "fakes[1]", "fakes[2]"]
    for i in range(3):
        assert_canonical(s[i])
        assert torch.equal(s[i], chw(np.ascontiguousarray(batch[i])))


def test_torch_chw_uint8_float_and_nchw_batch(ref):
    t_u8 = torch.from_numpy(ref).permute(2, 0, 1).contiguous()
    (a,) = load_all(t_u8)
    assert_canonical(a)
    assert torch.equal(a, chw(ref))

    t_f = chw(ref)
    (b,) = load_all(t_f.clone().requires_grad_(True))
    assert_canonical(b)
    assert torch.equal(b, t_f)

    (c,) = load_all(t_f.half())  # half precision is accepted
    torch.testing.assert_close(c, t_f, rtol=0, atol=1e-3)

    batch = torch.stack([t_f, 1 - t_f])
    imgs = load_all(batch)
    assert len(imgs) == 2
    assert torch.equal(imgs[0], t_f)
    torch.testing.assert_close(imgs[1], 1 - t_f, rtol=0, atol=0)


def test_list_of_tensors_and_mixed_list(ref, ref_png):
    t = chw(ref)
    imgs = load_all([t, 1 - t, torch.from_numpy(ref).permute(2, 0, 1), ref, ref_png, Image.fromarray(ref)])
    assert len(imgs) == 6
    for i in (0, 2, 3, 4, 5):
        assert_canonical(imgs[i])
        assert torch.equal(imgs[i], t)
    assert torch.equal(imgs[1], 1 - t)


def test_value_range_minus_one_one():
    x = torch.tensor([[-1.0, 0.0, 1.0, 0.5]]).expand(3, 1, 4).contiguous()
    (t,) = load_all(x, value_range=(-1, 1))
    assert_canonical(t, 1, 4)
    assert torch.equal(t[0, 0], torch.tensor([0.0, 0.5, 1.0, 0.75]))
    # numpy too
    (tn,) = load_all(np.array([[[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]]), value_range=(-1, 1))
    assert torch.equal(tn[:, 0, 0], torch.zeros(3)) and torch.equal(tn[:, 0, 1], torch.ones(3))
    # without declaring the range, -1 is refused with a hint
    with pytest.raises(I2IInputError, match=r"value_range=\(-1, 1\)"):
        load_all(x, name="gen_out")


def test_tiny_out_of_range_float_within_tolerance_is_clipped():
    x = torch.full((3, 2, 2), 1.0 + 5e-7)
    x[:, 0, 0] = -5e-7
    (t,) = load_all(x)
    assert float(t.max()) == 1.0 and float(t.min()) == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_float_tensor_in_unit_range_equals_the_numpy_route_and_is_a_copy(dtype, layout):
    """In-range float tensors take a one-copy path; it gives what the general (numpy) route gives, bit
    for bit, as a contiguous float32 tensor that does not share the caller's memory (SYNTHETIC data)."""
    from pytest_i2i.images.convert import array_to_tensor, tensor_to_tensor

    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 9, 14, generator=g, dtype=dtype)
    x[0, 0, 0], x[1, 0, 1] = 0.0, 1.0  # the bounds themselves are in range
    if layout == "channels_last":
        x = x[None].contiguous(memory_format=torch.channels_last)[0]
    elif layout == "strided":
        x = torch.rand(3, 9, 28, generator=g, dtype=dtype)[:, :, ::2]
    got = tensor_to_tensor(x, "x")
    want = array_to_tensor(x.permute(1, 2, 0).numpy(), "x")
    assert got.dtype == torch.float32 and got.is_contiguous() and torch.equal(got, want)
    assert got.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    x.fill_(0.5)  # the caller's tensor changes later; the image read before does not
    assert torch.equal(got, want)


def test_existing_imageset_is_returned_as_is(ref):
    s = load_images(ref)
    assert load_images(s) is s


# --------------------------------------------------------------------------------------------
# documented conversions (files written with Pillow)
# --------------------------------------------------------------------------------------------


def test_grayscale_L_replicated(tmp_path, ref):
    g = ref[..., 0]
    p = tmp_path / "gray.png"
    Image.fromarray(g, mode="L").save(p)
    t = load_image_file(p)
    assert_canonical(t)
    expected = torch.from_numpy(g.astype(np.float32) / np.float32(255))
    for c in range(3):
        assert torch.equal(t[c], expected)


def test_rgba_half_transparent_red_composited_on_white(tmp_path):
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 128)  # half-transparent red
    rgba[0, 1] = (0, 0, 255, 255)  # opaque blue
    rgba[0, 2] = (0, 0, 0, 0)  # fully transparent black: must become white, not black
    p = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(p)
    t = load_image_file(p)
    assert_canonical(t, 1, 3)

    alpha = np.float32(128) / np.float32(255)
    one_minus = np.float32(1) - alpha
    # rgb * alpha + 1 * (1 - alpha), in float32
    assert float(t[0, 0, 0]) == float(np.float32(1) * alpha + one_minus)
    assert float(t[1, 0, 0]) == float(one_minus)
    assert float(t[2, 0, 0]) == float(one_minus)
    assert abs(float(t[1, 0, 0]) - 127 / 255) < 1e-7
    assert abs(float(t[0, 0, 0]) - 1.0) < 1e-7
    assert t[:, 0, 1].tolist() == [0.0, 0.0, 1.0]
    assert t[:, 0, 2].tolist() == [1.0, 1.0, 1.0]

    # same rule for a 4-channel array and a PIL image in memory
    (ta,) = load_all(rgba)
    (tp,) = load_all(Image.fromarray(rgba, mode="RGBA"))
    assert torch.equal(ta, t) and torch.equal(tp, t)


def test_la_composited_on_white(tmp_path):
    la = np.array([[[200, 255], [200, 0], [100, 51]]], dtype=np.uint8)
    p = tmp_path / "la.png"
    Image.fromarray(la, mode="LA").save(p)
    t = load_image_file(p)
    assert_canonical(t, 1, 3)
    g = la[..., 0].astype(np.float64) / 255
    a = la[..., 1].astype(np.float64) / 255
    expected = g * a + (1 - a)
    for c in range(3):
        np.testing.assert_allclose(t[c].numpy(), expected, rtol=0, atol=1e-7)
    assert float(t[0, 0, 1]) == 1.0  # transparent -> white


def _palette_image() -> Image.Image:
    img = Image.new("P", (3, 1))
    img.putpalette([10, 20, 30, 200, 100, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    img.putdata([0, 1, 2])
    return img


def test_palette_png_without_transparency(tmp_path):
    p = tmp_path / "pal.png"
    _palette_image().save(p)
    assert Image.open(p).mode == "P"
    t = load_image_file(p)
    assert_canonical(t, 1, 3)
    expected = torch.tensor([[10, 200, 0], [20, 100, 255], [30, 0, 0]], dtype=torch.float32) / 255
    assert torch.equal(t[:, 0, :], expected)


def test_palette_png_with_transparency(tmp_path):
    p = tmp_path / "pal_t.png"
    _palette_image().save(p, transparency=0)  # palette index 0 fully transparent
    with Image.open(p) as im:
        assert im.mode == "P" and "transparency" in im.info
    t = load_image_file(p)
    assert_canonical(t, 1, 3)
    assert t[:, 0, 0].tolist() == [1.0, 1.0, 1.0]  # composited on white, not (10, 20, 30)
    assert torch.equal(t[:, 0, 1], torch.tensor([200, 100, 0], dtype=torch.float32) / 255)


def test_16bit_grayscale_png_divided_by_65535(tmp_path):
    a = (np.arange(H * W, dtype=np.uint32).reshape(H, W) * 1531).astype(np.uint16)
    a[0, 0], a[0, 1], a[0, 2] = 0, 1, 65535
    p = tmp_path / "g16.png"
    Image.fromarray(a).save(p)
    with Image.open(p) as im:
        assert im.mode.startswith("I")  # really 16 bits on disk
    t = load_image_file(p)
    assert_canonical(t)
    expected = torch.from_numpy(a.astype(np.float32) / np.float32(65535))
    for c in range(3):
        assert torch.equal(t[c], expected)
    assert float(t[0, 0, 1]) == np.float32(1) / np.float32(65535)  # not 0 as an 8-bit reduction gives


def test_cmyk_jpeg_converted_to_rgb(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(p, quality=95)  # pure red in CMYK
    with Image.open(p) as im:
        assert im.mode == "CMYK"
    t = load_image_file(p)
    assert_canonical(t, 16, 16)
    torch.testing.assert_close(t.mean(dim=(1, 2)), torch.tensor([1.0, 0.0, 0.0]), rtol=0, atol=0.02)


def test_exif_orientation_applied(tmp_path):
    # stored 32 wide x 16 high: left half dark, right half bright
    arr = np.zeros((16, 32, 3), dtype=np.uint8)
    arr[:, 16:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    p = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(p, exif=exif.tobytes(), quality=95)
    with Image.open(p) as im:
        assert im.size == (32, 16) and im.getexif().get(0x0112) == 6

    t = load_image_file(p)
    assert_canonical(t, 32, 16)  # transposed: H=32, W=16
    # rotating 90 degrees clockwise brings the stored left (dark) half to the top
    assert float(t[:, :12].mean()) < 0.1
    assert float(t[:, 20:].mean()) > 0.9


def test_mode_1(tmp_path):
    img = Image.new("1", (4, 2), 0)
    img.putpixel((1, 0), 1)
    img.putpixel((3, 1), 1)
    expected = torch.zeros(2, 4)
    expected[0, 1] = expected[1, 3] = 1.0
    p = tmp_path / "bw.png"
    img.save(p)
    for source in (p, img):
        (t,) = load_all(source)
        assert_canonical(t, 2, 4)
        for c in range(3):
            assert torch.equal(t[c], expected)


# --------------------------------------------------------------------------------------------
# bad inputs: always I2IInputError, naming the file or argument
# --------------------------------------------------------------------------------------------


def test_missing_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(I2IInputError, match="real") as e:
        load_images(missing, name="real")
    assert str(missing) in str(e.value)
    # a missing path inside a list fails on access and names the file
    s = load_images([missing / "x.png"], name="fake")
    with pytest.raises(I2IInputError) as e:
        s[0]
    assert "x.png" in str(e.value) and "fake" in str(e.value)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(I2IInputError, match="real") as e:
        load_images(tmp_path / "empty", name="real")
    assert str(tmp_path / "empty") in str(e.value)


def test_zero_byte_file(tmp_path):
    p = tmp_path / "zero.png"
    p.write_bytes(b"")
    with pytest.raises(I2IInputError, match="zero.png"):
        load_all(p)


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_truncated_file(tmp_path, fmt):
    arr = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    full = tmp_path / f"full.{fmt}"
    Image.fromarray(arr).save(full)
    data = full.read_bytes()
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(data[: len(data) // 2])
    load_image_file(full)  # the intact file decodes
    with pytest.raises(I2IInputError, match=f"cut.{fmt}"):
        load_all(cut)


def test_text_file_named_png(tmp_path):
    p = tmp_path / "fake.png"
    p.write_text("hello, I am not a PNG\n" * 10)
    with pytest.raises(I2IInputError, match="fake.png"):
        load_all(p)
    # in a folder too
    with pytest.raises(I2IInputError, match="fake.png"):
        load_all(tmp_path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_inf_tensors(bad):
    x = torch.rand(3, 4, 4)
    x[1, 2, 3] = bad
    with pytest.raises(I2IInputError, match=r"gen\[0\]") as e:
        load_all(x, name="gen")
    assert ("NaN" if bad != bad else "Inf") in str(e.value)
    # in an NCHW batch the message names the image index
    batch = torch.rand(3, 3, 4, 4)
    batch[2, 0, 0, 0] = bad
    s = load_images(batch, name="gen")
    s[0], s[1]
    with pytest.raises(I2IInputError, match=r"gen\[2\]"):
        s[2]


@pytest.mark.parametrize("value", [1.01, -0.01, 255.0])
def test_floats_outside_unit_range(value):
    x = torch.rand(3, 4, 4)
    x[0, 0, 0] = value
    with pytest.raises(I2IInputError, match=r"outputs\[0\].*outside") as e:
        load_all(x, name="outputs")
    assert f"{value:.6g}" in str(e.value)
    with pytest.raises(I2IInputError, match=r"outputs\[0\]"):
        load_all(x.permute(1, 2, 0).numpy(), name="outputs")
    with pytest.raises(I2IInputError, match=r"outputs\[0\]"):
        load_all(x.clamp(-1, 1) * 1.5, name="outputs", value_range=(-1, 1))


def test_five_channel_tensor_and_numpy():
    with pytest.raises(I2IInputError, match=r"fakes\[0\].*5 channels"):
        load_all(torch.rand(5, 8, 8), name="fakes")
    with pytest.raises(I2IInputError, match=r"fakes\[0\].*5 channels"):
        load_all(np.random.default_rng(0).random((8, 8, 5)), name="fakes")


def test_unsupported_type():
    with pytest.raises(I2IInputError, match="fakes.*dict"):
        load_images({"a": 1}, name="fakes")
    with pytest.raises(I2IInputError, match=r"fakes\[1\].*int"):
        load_images([torch.rand(3, 2, 2), 42], name="fakes")


def test_mismatched_pair_counts():
    with pytest.raises(I2IInputError, match=r"outputs has 3 images, targets has 2"):
        as_pairs(torch.rand(3, 3, 4, 4), torch.rand(2, 3, 4, 4), names=("outputs", "targets"))
    sa, sb = as_pairs(torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4))
    assert len(sa) == len(sb) == 2
    with pytest.raises(I2IInputError, match="mismatched pair counts"):
        next(iter_pair_batches(load_images(torch.rand(2, 3, 4, 4)), load_images(torch.rand(1, 3, 4, 4)), 4))


def test_decompression_bomb_refused_quickly_without_decoding(tmp_path, monkeypatch):
    p = tmp_path / "bomb.png"
    p.write_bytes(bomb_png(20000, 20000))
    assert p.stat().st_size < 200
    assert struct.unpack(">II", p.read_bytes()[16:24]) == (20000, 20000)  # what the IHDR claims
    with pytest.raises(Image.DecompressionBombError):  # Pillow itself reads that header (valid CRC)
        Image.open(p)

    def no_decode(self, *a, **k):
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    t0 = time.perf_counter()
    with pytest.raises(I2IInputError, match="bomb.png.*decompression-bomb"):
        load_all(p, name="fakes")
    assert time.perf_counter() - t0 < 1.0

    # the project's own guard holds even when Pillow's is switched off (MAX_IMAGE_PIXELS = None)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(I2IInputError, match="bomb.png.*decompression-bomb"):
        load_all(p)
    # and it also covers sizes between the project limit and Pillow's error limit (2x warning limit)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10**12)
    p2 = tmp_path / "bomb2.png"
    p2.write_bytes(bomb_png(10000, 10000))  # 1e8 > MAX_PIXELS
    with pytest.raises(I2IInputError, match="bomb2.png.*decompression-bomb"):
        load_all(p2)


def test_max_pixels_applies_to_in_memory_images(monkeypatch):
    monkeypatch.setattr(convert_mod, "MAX_PIXELS", 100)
    with pytest.raises(I2IInputError, match=r"x\[0\].*decompression-bomb"):
        load_all(np.zeros((11, 10, 3), dtype=np.uint8), name="x")
    load_all(np.zeros((10, 10, 3), dtype=np.uint8), name="x")


BAD_INPUTS = {
    "dict": {"a": 1},
    "set": {1, 2},
    "int": 3,
    "bytes": b"\x89PNG",
    "none": None,
    "empty list": [],
    "empty nchw": torch.zeros(0, 3, 4, 4),
    "empty nhwc": np.zeros((0, 4, 4, 3), dtype=np.uint8),
    "1-d array": np.zeros(5, dtype=np.uint8),
    "5-d tensor": torch.zeros(1, 1, 3, 4, 4),
    "0-d tensor": torch.tensor(0.5),
    "zero-size image": np.zeros((0, 4, 3), dtype=np.uint8),
    "zero channels": np.zeros((4, 4, 0), dtype=np.uint8),
    "int64 tensor": torch.zeros(3, 4, 4, dtype=torch.int64),
    "int32 array": np.zeros((4, 4, 3), dtype=np.int32),
    "complex array": np.zeros((4, 4, 3), dtype=np.complex64),
    "object array": np.full((4, 4, 3), None, dtype=object),
    "string array": np.full((4, 4, 3), "a"),
    "nchw numpy": np.zeros((2, 3, 8, 8), dtype=np.uint8),
    "4-d tensor in list": [torch.zeros(1, 3, 4, 4)],
    "nested list": [[torch.zeros(3, 4, 4)]],
    "I mode out of 16 bits": Image.fromarray(np.full((2, 2), 70000, dtype=np.int32)),
    "F mode out of range": Image.fromarray(np.full((2, 2), 2.0, dtype=np.float32)),
    "empty PIL": Image.new("RGB", (0, 0)),
    "nan float16": torch.full((3, 2, 2), float("nan"), dtype=torch.float16),
    "bfloat16 out of range": torch.full((3, 2, 2), 3.0, dtype=torch.bfloat16),
    "inverted value_range": (torch.zeros(3, 2, 2), {"value_range": (1, -1)}),
}


@pytest.mark.parametrize("key", list(BAD_INPUTS))
def test_bad_inputs_raise_only_i2i_input_error(key):
    """pytest.raises(I2IInputError) lets any other exception type (bare PIL/torch/numpy) fail the test."""
    src = BAD_INPUTS[key]
    kw = {}
    if isinstance(src, tuple):
        src, kw = src
    with pytest.raises(I2IInputError, match="badarg") as e:
        load_all(src, name="badarg", **kw)
    assert type(e.value).__module__ == "pytest_i2i.errors"


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
def test_bad_files_raise_only_i2i_input_error(tmp_path):
    """A folder of broken files: every one fails with I2IInputError naming it, nothing else escapes."""
    folder = tmp_path / "broken"
    folder.mkdir()
    good = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(good).save(tmp_path / "good.png")
    Image.fromarray(good).save(tmp_path / "good.jpg")
    Image.fromarray(good).save(tmp_path / "good.gif")
    png, jpg, gif = ((tmp_path / f"good.{e}").read_bytes() for e in ("png", "jpg", "gif"))
    contents = {
        "a_zero.png": b"",
        "b_text.png": b"plain text",
        "c_header_only.png": png[:8],
        "d_cut.png": png[:60],
        "e_cut.jpg": jpg[:200],
        "f_header_only.jpg": jpg[:2],
        "g_cut.gif": gif[:40],
        "h_garbage.tif": b"II*\x00" + b"\xff" * 40,
        "i_badcrc.png": png[:20] + bytes([png[20] ^ 0xFF]) + png[21:],
        "j_png_as.jpg": png[: len(png) // 3],
        "k_bomb.webp": bomb_png(30000, 30000),
    }
    for fname, data in contents.items():
        (folder / fname).write_bytes(data)
    s = load_images(folder, name="broken")
    assert s.names == sorted(contents)
    for i, fname in enumerate(s.names):
        with pytest.raises(I2IInputError) as e:
            s[i]
        assert fname in str(e.value), str(e.value)


# --------------------------------------------------------------------------------------------
# resize
# --------------------------------------------------------------------------------------------


def test_resize_legacy_pytorch_equals_interpolate():
    x = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(0))
    for size in ((10, 31), (8, 8), (40, 5)):
        out = resize_batch(x, size, "legacy-pytorch")
        ref = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        assert torch.equal(out, ref)
        assert tuple(out.shape) == (2, 3, *size)


def _pillow_bicubic_reference(x: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    arr = x.numpy().astype(np.float32)
    out = np.empty((arr.shape[0], arr.shape[1], h, w), dtype=np.float32)
    for i in range(arr.shape[0]):
        for c in range(arr.shape[1]):
            ch = Image.fromarray(arr[i, c], mode="F")
            out[i, c] = np.asarray(ch.resize((w, h), resample=Image.Resampling.BICUBIC))
    return out


def test_resize_clean_equals_pillow_float_bicubic_and_is_clipped():
    g = torch.Generator().manual_seed(1)
    # sharp 0/1 edges make bicubic overshoot outside [0, 1], so the clipping is exercised
    x = (torch.rand(2, 3, 12, 9, generator=g) > 0.5).float()
    for size in ((31, 20), (5, 4), (12, 30)):
        raw = _pillow_bicubic_reference(x, size)
        out = resize_batch(x, size, "clean")
        assert out.dtype == torch.float32 and tuple(out.shape) == (2, 3, *size)
        np.testing.assert_allclose(out.numpy(), np.clip(raw, 0, 1), rtol=0, atol=1e-6)
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    raw_up = _pillow_bicubic_reference(x, (31, 20))
    assert raw_up.max() > 1.0 + 1e-3 and raw_up.min() < -1e-3  # the reference really overshoots
    # smooth data: matches the unclipped reference
    y = torch.rand(1, 3, 16, 16, generator=g) * 0.5 + 0.25
    np.testing.assert_allclose(resize_batch(y, (7, 9), "clean").numpy(), _pillow_bicubic_reference(y, (7, 9)),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_resize_same_size_unchanged(mode):
    x = torch.rand(2, 3, 9, 11)
    out = resize_batch(x, (9, 11), mode)
    assert torch.equal(out, x)


def test_resize_unknown_mode_lists_valid_modes():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(I2IInputError) as e:
        resize_batch(x, (4, 4), "bilinear")
    msg = str(e.value)
    assert "bilinear" in msg and "clean" in msg and "legacy-pytorch" in msg
    with pytest.raises(I2IInputError, match="legacy-pytorch"):
        resize_batch(x, (8, 8), "nearest")  # checked even when no resize is needed
    with pytest.raises(I2IInputError, match="legacy-pytorch"):
        Preprocess((4, 4), resize="area")
    with pytest.raises(I2IInputError, match="legacy-pytorch"):
        next(iter_pair_batches(load_images(x), load_images(x), 2, resize="area"))


def test_clean_antialiases_checkerboard_where_legacy_aliases():
    n = 48
    yy, xx = np.mgrid[:n, :n]
    board = torch.from_numpy(((yy + xx) % 2).astype(np.float32))
    x = board.expand(1, 3, n, n).contiguous()
    clean = resize_batch(x, (16, 16), "clean")
    legacy = resize_batch(x, (16, 16), "legacy-pytorch")
    # clean averages the fine pattern to mid-grey everywhere
    assert float((clean - 0.5).abs().max()) < 0.02
    # legacy samples single pixels: a full-contrast (aliased) pattern survives
    assert float(legacy.min()) == 0.0 and float(legacy.max()) == 1.0
    assert float(legacy.std()) > 0.45


# --------------------------------------------------------------------------------------------
# batching
# --------------------------------------------------------------------------------------------


def _sized(h: int, w: int, seed: int) -> torch.Tensor:
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))


def test_iter_batches_groups_consecutive_equal_sizes():
    imgs = [_sized(4, 4, 0), _sized(4, 4, 1), _sized(4, 4, 2), _sized(6, 5, 3), _sized(4, 4, 4), _sized(4, 4, 5)]
    s = load_images(imgs)
    got = list(s.iter_batches(2))
    assert [idx for idx, _ in got] == [[0, 1], [2], [3], [4, 5]]
    for idx, batch in got:
        assert batch.dtype == torch.float32
        assert torch.equal(batch, torch.stack([imgs[i] for i in idx]))
    assert [idx for idx, _ in s.iter_batches(10)] == [[0, 1, 2], [3], [4, 5]]
    with pytest.raises(I2IInputError, match="batch_size"):
        next(s.iter_batches(0))


@pytest.mark.parametrize("mode", RESIZE_MODES)
def test_iter_batches_resizes_to_size(mode):
    imgs = [_sized(4, 4, 0), _sized(6, 5, 1), _sized(8, 8, 2), _sized(3, 9, 3), _sized(8, 8, 4)]
    got = list(load_images(imgs).iter_batches(2, Preprocess((8, 8), resize=mode)))
    assert [idx for idx, _ in got] == [[0, 1], [2, 3], [4]]
    for idx, batch in got:
        assert tuple(batch.shape[1:]) == (3, 8, 8)
        for j, i in enumerate(idx):
            assert torch.equal(batch[j], resize_batch(imgs[i][None], (8, 8), mode)[0])
    assert torch.equal(got[1][1][0], imgs[2])  # already the right size: untouched


def test_iter_pair_batches_resizes_b_and_notes_the_pair():
    a = [_sized(4, 4, 0), _sized(4, 4, 1), _sized(4, 4, 2)]
    b = [_sized(4, 4, 10), _sized(6, 7, 11), _sized(4, 4, 12)]
    sa, sb = as_pairs(a, b, names=("outputs", "targets"))
    got = list(iter_pair_batches(sa, sb, 8, resize="clean"))
    assert len(got) == 1
    idx, xa, xb, notes = got[0]
    assert idx == [0, 1, 2]
    assert torch.equal(xa, torch.stack(a))
    assert torch.equal(xb[0], b[0]) and torch.equal(xb[2], b[2])
    assert torch.equal(xb[1], resize_batch(b[1][None], (4, 4), "clean")[0])
    assert len(notes) == 1
    note = notes[0]
    assert "pair 1" in note and "outputs[1]" in note and "targets[1]" in note
    assert "(6, 7)" in note and "(4, 4)" in note and "clean" in note


def test_iter_pair_batches_note_travels_with_its_pair():
    # pair 1 is mismatched AND starts a new batch (a's size changes): its note belongs to that batch
    a = [_sized(4, 4, 0), _sized(6, 6, 1), _sized(6, 6, 2)]
    b = [_sized(4, 4, 3), _sized(5, 5, 4), _sized(6, 6, 5)]
    got = list(iter_pair_batches(load_images(a, name="a"), load_images(b, name="b"), 8, resize="legacy-pytorch"))
    assert [g[0] for g in got] == [[0], [1, 2]]
    assert got[0][3] == []
    assert len(got[1][3]) == 1 and "pair 1" in got[1][3][0]
    assert torch.equal(got[1][2][0], resize_batch(b[1][None], (6, 6), "legacy-pytorch")[0])
    # the batch size splits batches too
    got = list(iter_pair_batches(load_images(a[1:] * 2), load_images(b[1:] * 2), 3, resize="clean"))
    assert [g[0] for g in got] == [[0, 1, 2], [3]]
    assert [len(g[3]) for g in got] == [2, 0]


# --------------------------------------------------------------------------------------------
# bundled samples
# --------------------------------------------------------------------------------------------


def test_sample_images_are_the_8_colour_photos():
    s = sample_images(64)
    assert len(s) == 8 == len(COLOR_PHOTOS)
    assert s.names == [f"{n}.png" for n in COLOR_PHOTOS]
    imgs = [s[i] for i in range(len(s))]
    for t in imgs:
        assert_canonical(t, 64, 64)
        assert float(t.std()) > 0.02  # a photo, not a flat image
        # colour: channels differ somewhere
        assert float((t[0] - t[1]).abs().max()) > 0.05 or float((t[1] - t[2]).abs().max()) > 0.05
    for i in range(8):
        for j in range(i + 1, 8):
            assert not torch.equal(imgs[i], imgs[j]), (s.names[i], s.names[j])
