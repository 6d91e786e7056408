"""The pytest entry point stays import-light and changes nothing in unrelated runs."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "torchvision", "timm", "open_clip", "numpy", "PIL", "scipy", "pandas")


def test_importing_the_package_and_plugin_imports_no_heavy_module():
    code = (
        "import sys, pytest_i2i, pytest_i2i.plugin\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_plugin_is_registered_and_unrelated_run_stays_light(pytester):
    pytester.makepyfile(
        f"""
        import sys

        def test_unrelated(request):
            assert request.config.pluginmanager.has_plugin("i2i")
            loaded = [m for m in {HEAVY!r} if m in sys.modules]
            assert loaded == [], loaded
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_help_lists_the_option_group(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*image-to-image model evaluation (pytest-i2i)*", "*--i2i-weights-dir*"])


def test_weights_dir_command_line_beats_ini(pytester, tmp_path):
    cli_dir, ini_dir = tmp_path / "cli", tmp_path / "ini"
    cli_dir.mkdir()
    ini_dir.mkdir()
    pytester.makeini(f"[pytest]\ni2i_weights_dir = {ini_dir}\n")
    pytester.makepyfile(
        """
        import os, sys

        def test_dir():
            print("DIR=" + os.environ["I2I_WEIGHTS_DIR"])
        """
    )
    result = pytester.runpytest_subprocess("-s")
    result.stdout.fnmatch_lines([f"*DIR={ini_dir}"])
    result = pytester.runpytest_subprocess("-s", f"--i2i-weights-dir={cli_dir}")
    result.stdout.fnmatch_lines([f"*DIR={cli_dir}"])
    result = pytester.runpytest_subprocess(f"--i2i-weights-dir={tmp_path / 'missing'}")
    result.stderr.fnmatch_lines(["*--i2i-weights-dir*is not a directory*"])


def test_unrelated_xdist_run_leaves_no_report_parts(pytester, tmp_path, monkeypatch):
    import pytest

    pytest.importorskip("xdist")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    pytester.makepyfile("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert not list(tmp_path.glob("i2i-parts-*"))
    result.stdout.no_fnmatch_line("*pytest-i2i metrics*")
