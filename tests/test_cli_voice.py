"""The command line speaks with one voice: help on every flag, the shared flags spelled and typed the
same in every subcommand that takes them, ``--version``, and messages in the CLI's own syntax.

Parser-level checks (no model, no images) plus two cheap runs of ``i2i``.
"""

from __future__ import annotations

import argparse

import pytest

from pytest_i2i.cli import build_parser, main
from pytest_i2i.cli.options import OPTIONS


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "i2i"):
    """(``"i2i score"``, its parser) for every subcommand at any depth, the top parser included."""
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subcommands(sub, f"{prefix} {name}")


def _flags(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        yield action


def test_every_flag_and_argument_has_help():
    missing = [f"{cmd}: {'/'.join(a.option_strings) or a.dest}"
               for cmd, p in _subcommands(build_parser()) for a in _flags(p) if not (a.help or "").strip()]
    assert missing == []


def test_shared_flags_read_the_same_everywhere():
    seen: dict[str, list[str]] = {}
    for cmd, p in _subcommands(build_parser()):
        for a in _flags(p):
            long = [s for s in a.option_strings if s.startswith("--")]
            for name, spec in OPTIONS.items():
                flag = "--" + name.replace("_", "-")
                if flag not in long:
                    continue
                seen.setdefault(name, []).append(cmd)
                assert long == [flag], f"{cmd}: {long}"
                assert a.type is spec.get("type"), f"{cmd} {flag}: type {a.type}"
                assert a.metavar == spec.get("metavar"), f"{cmd} {flag}: metavar {a.metavar}"
                assert a.nargs == (0 if spec.get("action") == "store_true" else None), f"{cmd} {flag}"
            # no subcommand spells a shared option another way (e.g. --weights_dir, --batchsize, --i2i-device)
            for s in long:
                assert not s.startswith("--i2i-"), f"{cmd}: {s}"
                assert s.replace("_", "-") == s, f"{cmd}: {s}"
    # the flags apply where they should
    assert {"i2i score", "i2i stats", "i2i sensitivity", "i2i validate"} <= set(seen["weights"])
    assert {"i2i score", "i2i stats", "i2i sensitivity", "i2i validate", "i2i backbones", "i2i metrics",
            "i2i judge serve", "i2i judge status"} <= set(seen["weights_dir"])
    assert {"i2i score", "i2i stats", "i2i sensitivity", "i2i generate"} <= set(seen["device"])
    assert {"i2i score", "i2i sensitivity"} <= set(seen["require_weights"])
    assert {"i2i score", "i2i stats"} <= set(seen["resize"])
    assert {"i2i score", "i2i sensitivity", "i2i validate", "i2i generate"} <= set(seen["seed"])


def test_shared_flags_check_their_values(capsys):
    for argv in (["score", "a", "b", "--batch-size", "0"], ["score", "a", "b", "--seed", "-1"],
                 ["score", "a", "b", "--resize", "bilinear"]):
        with pytest.raises(SystemExit) as info:
            build_parser().parse_args(argv)
        assert info.value.code == 2
        assert argv[3] in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("i2i (pytest-i2i) ") and out.strip() != "i2i (pytest-i2i)"


def test_errors_use_the_cli_syntax(tmp_path, capsys):
    import torch

    ckpt = tmp_path / "unknown.pth"
    torch.save({"enc.0.weight": torch.zeros(2, 2)}, ckpt)
    assert main(["generate", str(ckpt), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot detect the architecture" in err and "pass --arch one of" in err and "--i2i-" not in err


def test_metrics_and_backbones_say_what_each_needs_and_whether_it_is_ready(tmp_path, capsys, monkeypatch):
    import json

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    assert main(["metrics", "--offline", "--json"]) == 0
    rows = {r["metric"]: r for r in json.loads(capsys.readouterr().out)["metrics"]}
    assert rows["l1"]["ready"] == "ready" and rows["l1"]["needs"] == "nothing"
    assert rows["ssim"]["ready"] == "ready" and rows["ssim"]["needs"] == "images >= 11 px"  # its 11x11 window
    assert rows["fid"]["needs"].startswith("inception-fid weights") and rows["fid"]["ready"] == "missing (offline)"
    assert "images >= " in rows["ms_ssim"]["needs"]
    assert main(["metrics", "--offline"]) == 0
    table = capsys.readouterr().out
    assert "needs" in table.splitlines()[0] and "ready" in table.splitlines()[0] and "not ready: weights of" in table
    assert main(["backbones", "--offline", "--json"]) == 0
    backbones = {b["name"]: b for b in json.loads(capsys.readouterr().out)["backbones"]}
    fid = backbones["inception-fid"]
    assert fid["ready"] is False and fid["state"] == "missing (offline)"
    assert "pt_inception-2015-12-05-6726825d.pth" in fid["needs"]
