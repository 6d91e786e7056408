"""End to end in a real browser: headless Chromium, driven by selenium, through a whole judging session.

2AFC tasks with known answers are made from the bundled photos (controlled perturbations), served, and
answered with the keyboard; the page is reloaded mid-way and must resume where the rater left off. The
folder must then load with ``load_judgments``, hold the expected answers, and give a validation report.
The scripted rater's judgments are labelled synthetic. Screenshots go to the test's artifacts
(``tmp_path/artifacts`` and ``$I2I_TEST_ARTIFACTS`` when set). Skipped, saying why, without Chromium.
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
# the browser: the ``chromium`` fixture of conftest.py (skips, saying why, without Chromium)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from pytest_i2i.judge import JudgeServer, load_tasks, make_perturbation_2afc  # noqa: E402
from pytest_i2i.judge.records import parse_item  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # metrics on tiny images: threads only add contention


def test_full_session_with_keyboard_reload_and_resume(tmp_path, chromium, save_screenshot):
    from pytest_i2i.validation.judgments import load_judgments
    from pytest_i2i.validation.validation_report import validate

    start = time.monotonic()
    tasks_dir = make_perturbation_2afc(tmp_path / "tasks", n_images=3, size=128, ops=("gaussian_blur", "jpeg"),
                                       repeats=1, seed=3).parent
    tasks = load_tasks(tasks_dir)
    schedule = {(s.task, s.occurrence): s for s in tasks.schedule("ann")}
    total = tasks.n_slots()
    assert total == 7
    out = tmp_path / "judged"
    with JudgeServer(tasks_dir, out, port=0, synthetic=True) as srv:
        driver = chromium
        try:
            wait = WebDriverWait(driver, 15)
            driver.get(srv.url)
            field = wait.until(lambda d: d.find_element(By.ID, "rater-input") if d.find_element(
                By.ID, "rater-input").is_displayed() else False)
            field.send_keys("ann", Keys.ENTER)

            def answer_one(k: int) -> None:
                # the item is on screen and its answer buttons are live
                wait.until(lambda d: d.execute_script(
                    "const s = document.getElementById('stage'); const b = document.querySelector('#answers button');"
                    "return s && s.dataset.task && b && !b.disabled;"))
                stage = driver.find_element(By.ID, "stage")
                slot = schedule[(stage.get_attribute("data-task"), int(stage.get_attribute("data-occurrence")))]
                gold = tasks.items[slot.task]["gold"]
                time.sleep(0.25)  # the page ignores keys in the first 200 ms of an item (a key held from the last)
                driver.find_element(By.TAG_NAME, "body").send_keys(
                    Keys.ARROW_LEFT if slot.left == gold else Keys.ARROW_RIGHT)
                wait.until(lambda d: d.find_element(By.ID, "progress-text").text == f"{k + 1} / {total}")

            for k in range(3):
                answer_one(k)
            wait.until(lambda d: d.execute_script(
                "const b = document.querySelector('#answers button'); return b && !b.disabled;"))
            shot = save_screenshot(driver, "judge-2afc.png")
            driver.refresh()  # mid-way: the page must come back to the same rater and item 4 of 7
            wait.until(lambda d: d.find_element(By.ID, "progress-text").text == f"3 / {total}")
            assert driver.find_element(By.ID, "rater-name").text == "ann"
            assert not driver.find_element(By.ID, "login").is_displayed()
            for k in range(3, total):
                answer_one(k)
            wait.until(lambda d: d.find_element(By.ID, "done").is_displayed())
            save_screenshot(driver, "judge-done.png")
            driver.get(srv.url + "status")
            wait.until(lambda d: "ann" in d.find_element(By.ID, "raters").text)
            driver.find_element(By.ID, "rank").click()  # the metric ranking, computed on the study's images
            wait.until(lambda d: d.find_element(By.ID, "ranking").is_displayed())
            assert "l1" in driver.find_element(By.ID, "ranking").text
            save_screenshot(driver, "judge-status.png")
        finally:
            driver.quit()
    assert shot.stat().st_size > 10_000
    elapsed = time.monotonic() - start

    js = load_judgments(out)
    assert js.synthetic and js.kind == "2afc" and len(js.table) == total
    for item, h in zip(js.table["item"], js.table["h"]):
        task, rater, _ = parse_item("2afc", item)
        assert rater == "ann"
        assert h == (1.0 if tasks.items[task]["gold"] == "p1" else 0.0), f"{item}: h = {h}"
    report = validate([out], tmp_path / "report", metrics=["l1"], n_resamples=200)
    row = next(r for r in report["results"] if r["metric"] == "l1")
    assert row["n"] == total and row["two_afc"]["value"] is not None
    assert (tmp_path / "report" / "report.md").is_file()
    assert elapsed < 60, f"the browser session took {elapsed:.1f} s"
