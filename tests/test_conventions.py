"""One convention each, shared by every layer: non-finite numbers in JSON, and text inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pytest_i2i.errors import I2IInputError
from pytest_i2i.jsonsafe import from_json_safe, to_json_safe
from pytest_i2i.texts import check_texts


def test_non_finite_numbers_become_strings_and_come_back():
    data = {"a": math.inf, "b": [-math.inf, 1.5, (math.nan, 2)], 3: {"c": np.float32("nan")},
            "d": np.int64(4), "e": np.bool_(True), "f": torch.tensor(-math.inf), "g": None, "h": "nan"}
    safe = to_json_safe(data)
    assert safe == {"a": "inf", "b": ["-inf", 1.5, ["nan", 2]], "3": {"c": "nan"}, "d": 4, "e": True, "f": "-inf",
                    "g": None, "h": "nan"}
    assert type(safe["d"]) is int and type(safe["e"]) is bool
    json.dumps(safe, allow_nan=False)  # strict JSON
    back = from_json_safe(safe["b"][:2])
    assert back[0] == -math.inf and back[1] == 1.5
    assert math.isnan(from_json_safe("nan")) and from_json_safe("name") == "name"


def test_results_and_the_sensitivity_table_write_non_finite_floats_alike():
    import pandas as pd

    from pytest_i2i.result import MetricResult
    from pytest_i2i.validation.sensitivity.result import _records

    r = MetricResult(name="psnr", value=math.inf, higher_is_better=True, n=2, per_sample=[math.inf, 30.0])
    assert r.to_dict()["value"] == "inf" and r.to_dict()["per_sample"] == ["inf", 30.0]
    table = pd.DataFrame({"auroc": [np.float64("nan")], "statistic": [np.float32("inf")], "n": [np.int32(3)]})
    assert _records(table) == [{"auroc": "nan", "statistic": "inf", "n": 3}]


def test_texts_are_checked_alike_for_clip_and_for_generators():
    assert check_texts("a cat") == ["a cat"]
    assert check_texts(("a", "b"), "captions") == ["a", "b"]
    assert check_texts(["", "x"], "instructions", n=2, single=False, blank=True) == ["", "x"]
    bad = [
        (dict(texts=[]), "texts is empty"),
        (dict(texts=["a", " "], name="captions"), r"captions\[1\] is an empty string"),
        (dict(texts=["a", 3]), r"texts\[1\] is a int, not a string"),
        (dict(texts=5), "texts must be a string or a list of strings, got int"),
        (dict(texts="abc", n=3, single=False), r"texts must be a list of strings \(one per image\), got str"),
        (dict(texts=["a"], n=2, single=False, blank=True), "texts has 1 entries for 2 images"),
    ]
    for kwargs, message in bad:
        with pytest.raises(I2IInputError, match=message):
            check_texts(**kwargs)
