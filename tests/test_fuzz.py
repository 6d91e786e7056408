"""Property-based fuzzing (hypothesis) of the image loader and the dataset manifest parser.

The property: an input gives either a valid canonical image (float32, shape (3, H, W), finite,
in [0, 1]) or dataset, or a :class:`~pytest_i2i.errors.I2IError` whose message names the input;
never any other exception. ``derandomize=True`` and a fixed ``max_examples`` keep the runs
reproducible and bounded in CI.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pytest_i2i import load_dataset, load_images  # noqa: E402
from pytest_i2i.errors import I2IError  # noqa: E402
from pytest_i2i.images import load_image_file, sample_images  # noqa: E402

FUZZ = settings(derandomize=True, max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _seeds() -> dict[str, bytes]:
    photo = (sample_images(size=32)[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    out = {}
    for fmt, ext in (("PNG", "png"), ("JPEG", "jpg")):
        buf = io.BytesIO()
        Image.fromarray(photo).save(buf, format=fmt)
        out[ext] = buf.getvalue()
    return out


SEEDS = _seeds()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def assert_canonical(t: torch.Tensor) -> None:
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    assert t.ndim == 3 and t.shape[0] == 3 and t.shape[1] >= 1 and t.shape[2] >= 1
    assert bool(torch.isfinite(t).all())
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0


def check_file(folder: Path, data: bytes, name: str) -> None:
    path = folder / name
    path.write_bytes(data)
    try:
        t = load_image_file(path)
    except I2IError as e:
        event("refused")
        assert name in str(e), str(e)
    else:
        event("decoded")
        assert_canonical(t)


@st.composite
def mutated(draw) -> tuple[bytes, str]:
    ext = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[ext])
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "zero"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            data[pos:pos + 8] = b"\x00" * len(data[pos:pos + 8])
    return bytes(data), ext


@FUZZ
@given(st.binary(max_size=512), st.sampled_from(["png", "jpg", "gif", "bmp", "tif", "webp"]))
def test_random_bytes(workdir, data, ext):
    check_file(workdir, data, f"random.{ext}")


@FUZZ
@given(mutated())
def test_mutated_real_photos(workdir, case):
    data, ext = case
    check_file(workdir, data, f"mutated.{ext}")


DTYPES = ["uint8", "uint16", "int16", "int32", "int64", "float16", "float32", "float64", "bool", "complex64"]


@st.composite
def arrays(draw):
    if draw(st.booleans()):  # image-like: HWC / CHW / NCHW shapes and in-range values, then odd ones
        shape = tuple(draw(st.sampled_from([[4, 5, 3], [3, 4, 5], [2, 3, 4, 5], [4, 5], [4, 5, 1], [2, 4, 5],
                                            [4, 5, 4], [1, 1, 3]])))
        pool = [0, 0.25, 1] if draw(st.integers(0, 3)) else [0, 1, -1, 2, 255, float("nan")]
    else:
        ndim = draw(st.integers(0, 5))
        shape = tuple(draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim)))
        pool = [0, 1, 0.5, -1, 2, 255, 65535, 1e-7, 1 + 1e-7, float("nan"), float("inf"), -float("inf")]
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    n = int(np.prod(shape)) if shape else 1
    values = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    with np.errstate(all="ignore"):
        arr = np.array(values, dtype=np.float64).reshape(shape)
        arr = arr.astype(dtype) if dtype.kind != "b" else arr.astype(bool)
    as_tensor = draw(st.booleans()) and dtype.kind != "c" and dtype != np.uint16
    return torch.from_numpy(arr) if as_tensor else arr, draw(st.sampled_from([(0, 1), (-1, 1)]))


@FUZZ
@given(arrays())
def test_random_arrays_and_tensors(case):
    x, value_range = case
    try:
        s = load_images(x, name="fuzzed", value_range=value_range)
        images = [s[i] for i in range(len(s))]
    except I2IError as e:
        event("refused")
        assert "fuzzed" in str(e), str(e)
    else:
        event("accepted")
        for t in images:
            assert_canonical(t)


FIELDS = ["uid", "input", "target", "instruction", "source_caption", "target_caption", "x"]
VALUES = ["a", "b", "a.png", "b.png", "../a.png", "/etc/passwd", "", " ", "nope.png", "sub/a", "é", "1", "\x00"]


@st.composite
def manifests(draw) -> tuple[str, str]:
    if draw(st.booleans()):
        if draw(st.booleans()):  # mostly well-formed: uid,input[,...] rows with one mutation at most
            header = ["uid", "input"] + draw(st.lists(st.sampled_from(FIELDS[2:]), max_size=2, unique=True))
            rows = [[uid, f"{uid}.png"] + ["x"] * (len(header) - 2) for uid in draw(st.sampled_from(["a", "b", "ab"]))]
            if rows and draw(st.booleans()):
                r, c = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(header) - 1))
                rows[r][c] = draw(st.sampled_from(VALUES + ['"', 'a,b', '"q"']))
        else:
            header = draw(st.lists(st.sampled_from(FIELDS), min_size=0, max_size=4))
            rows = draw(st.lists(st.lists(st.sampled_from(VALUES + ['"', 'a,b', '"q"']), max_size=5), max_size=4))
        text = "\n".join([",".join(header)] + [",".join(r) for r in rows])
        return text + draw(st.sampled_from(["", "\n", "\r\n"])), "m.csv"
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.integers(0, 4)) == 0:
            lines.append(draw(st.text(alphabet='{}[]":,ab .\\\n', max_size=20)))
        else:
            keys = draw(st.lists(st.sampled_from(FIELDS), max_size=4))
            obj = {k: draw(st.one_of(st.sampled_from(VALUES), st.integers(-2, 2), st.none(), st.just([1])))
                   for k in keys}
            if draw(st.booleans()):  # a well-formed line
                obj = {"input": draw(st.sampled_from(["a.png", "b.png"]))}
            lines.append(json.dumps(obj))
    return "\n".join(lines), "m.jsonl"


@pytest.fixture(scope="module")
def manifest_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("manifests")
    for name in ("a", "b"):
        Image.new("RGB", (4, 3), (10, 20, 30)).save(root / f"{name}.png")
    return root


@FUZZ
@given(manifests())
def test_random_manifests(manifest_root, case):
    text, name = case
    path = manifest_root / name
    path.write_text(text, encoding="utf-8")
    try:
        ds = load_dataset(path)
    except I2IError as e:
        event(f"refused {name}")
        assert name in str(e), str(e)
    else:
        event(f"loaded {name}")
        assert len(ds) >= 1 and len(set(ds.uids)) == len(ds)
        for t in ds.inputs():
            assert_canonical(t)
