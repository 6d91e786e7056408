"""The README's commands work as written: the "On a fresh machine" blocks are taken from README.md
(so this test cannot drift from it), two blocks (main job, tests) and the two-folder ``i2i score``
example, must name the tools through ``.venv/bin/`` (a fresh shell has no activated venv) and run,
minus the install steps, in a fresh folder. The main job's block is run by
``tests/test_report_browser.py`` (which renders its report in Chromium); the test-suite block is this
suite itself. Example outputs quoted in the README are compared with what the code prints.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_fresh_machine_blocks_use_the_venv_and_install_first(readme_commands):
    """Exactly two copy-paste blocks (the main job, the tests), each a fresh-machine install then its
    command; the two-folder ``i2i score`` example after them uses the installed venv too."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## On a fresh machine\n", 1)[1].split("\n## ", 1)[0]
    raw = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(raw) == 2 and len(readme_commands) == 3
    for block in raw:
        assert block.startswith("python3 -m venv .venv && .venv/bin/pip install -e "), block
        for command in block.split("&&")[2:]:
            assert command.strip().startswith(".venv/bin/"), f"not runnable in a fresh shell: {command.strip()}"
    score = re.search(r"To score two\s+folders[^`]*`([^`]+)`", section).group(1)
    assert all(c.strip().startswith(".venv/bin/i2i ") for c in score.split("&&")), score
    kinds = [" ".join([Path(block[0][0]).name, *block[0][1:4]]) for block in readme_commands]
    assert kinds == ["python -m pytest suites/model", "python -m pytest -n", "i2i samples i2i-samples"]


def test_score_two_folders_command_runs(readme_commands, tmp_path):
    block = readme_commands[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "I2I_"))}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               I2I_OFFLINE="1", HF_HUB_OFFLINE="1", TORCH_HOME=str(tmp_path / "torch"),
               HF_HUB_CACHE=str(tmp_path / "hf"), OMP_NUM_THREADS="1")
    outputs = []
    for argv in block:
        run = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"{argv}: {run.stdout[-2000:]}{run.stderr[-2000:]}"
        outputs.append(run.stdout)
    assert (tmp_path / "i2i-samples" / "photos").is_dir() and "wrote 8 bundled photos" in outputs[0]
    table = outputs[1]
    assert re.search(r"^psnr\s", table, flags=re.M) and re.search(r"^ssim\s", table, flags=re.M)
    assert "skipped fid" in table and "pt_inception-2015-12-05-6726825d.pth" in table  # offline: said, not hidden


def test_example_outputs_are_what_the_code_prints():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = re.search(r"^pytest_i2i\.list_backbones\(\)\s+# (\[.*\])$", text, flags=re.M)
    # in a fresh process, as a user runs it (other tests register backbones of their own in this one)
    printed = subprocess.run([sys.executable, "-c", "import pytest_i2i; print(pytest_i2i.list_backbones())"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120).stdout.strip()
    assert quoted and quoted.group(1) == printed
    # the options the README lists for the plugin are the plugin's options
    listed = set(re.findall(r"`(--i2i-[a-z-]+)`", text.split("Options (one group", 1)[1].split("\n\n", 1)[0]))
    run = subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    offered = set(re.findall(r"(--i2i-[a-z-]+)", run.stdout))
    assert listed and listed <= offered, listed - offered


def test_pictures_exist_and_are_small():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {"docs/report.png", "docs/sensitivity.png", "docs/validation.png"} <= set(pictures)
    for rel in pictures:
        path = ROOT / rel
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", rel
        assert path.stat().st_size < 500_000, f"{rel}: {path.stat().st_size} bytes"
