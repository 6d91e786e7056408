"""Duplicate names never collapse (issue 19): report image files per uid, paired no-regression
values per sample name. Generated cases; values are synthetic."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_i2i.html_report import image_path

UIDS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=300)


@settings(max_examples=300, deadline=None)
@given(a=UIDS, b=UIDS, role=st.sampled_from(["input", "output", "target"]))
def test_distinct_uids_never_share_a_report_image_file(a, b, role):
    pa, pb = image_path(Path("images"), a, role), image_path(Path("images"), b, role)
    assert (pa == pb) == (a == b)
    assert pa.parent == Path("images") and len(pa.name.encode()) <= 255 and "/" not in pa.name


def test_the_reviews_uids_get_their_own_files():
    """uids that sanitised to one file name made every HTML grid show the same image."""
    names = {image_path(Path("d"), uid, "output").name for uid in ("a/b", "a:b", "a b", "a_b", "a?b")}
    assert len(names) == 5 and "a_b__output.png" in names  # a clean uid keeps its plain name


def test_a_missing_optional_package_of_open_clip_is_named(monkeypatch):
    """A SigLIP tokenizer needs ``transformers``: a missing one gave a bare ModuleNotFoundError."""
    import builtins

    import pytest

    from pytest_i2i.backbones.clip import optional_dependency
    from pytest_i2i.errors import MissingDependencyError

    real_import = builtins.__import__

    def no_transformers(name, *args, **kwargs):
        if name.split(".")[0] == "transformers":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_transformers)
    with pytest.raises(MissingDependencyError, match="ViT-B-16-SigLIP.*'transformers'.*pip install transformers"):
        with optional_dependency("the tokenizer of open_clip model ViT-B-16-SigLIP"):
            import transformers  # noqa: F401
