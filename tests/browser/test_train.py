"""The Train page in a real browser: a tiny background run's loss curve is drawn, survives a page reload and keeps
growing (the page reads the store; the worker is a separate process), and Cancel stops it."""
import re
import time

import pytest
from selenium.webdriver.common.by import By
from webutil import click_button, screenshot, wait_for_text

from ulmfit_demo.runs import launcher, store

pytestmark = pytest.mark.browser

# Points on the loss figure: plotly keeps the drawn (decoded) traces on its div as `_fullData`.
POINTS_JS = """
const gd = document.querySelector('.js-plotly-plot');
if (!gd || !gd._fullData) return -1;
return Math.max(0, ...gd._fullData.filter(t => (t.name || '').startsWith('train loss')).map(t => t.x.length));
"""


def _points(driver) -> int:
    try:
        return int(driver.execute_script(POINTS_JS))
    except Exception:  # noqa: BLE001 - mid-rerender
        return -1


def _wait_points_above(driver, n: int, timeout: float = 120) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        p = _points(driver)
        if p > n:
            return p
        time.sleep(0.5)
    body = driver.find_element(By.TAG_NAME, "body").text
    raise AssertionError(f"the loss curve did not grow past {n} points in {timeout}s:\n{body[-2000:]}")


def test_live_curve_survives_a_reload_and_keeps_growing_then_cancel(server, driver, browser_home, monkeypatch):
    from test_runs import tiny

    monkeypatch.setenv("ULMFIT_DEMO_HOME", str(browser_home))  # the live server's store
    monkeypatch.setenv("ULMFIT_DEMO_TEST_BATCH_DELAY", "0.25")  # a tiny model, slowed so it is seen mid-run
    rid = launcher.submit("lm", tiny(lm_epochs=6, log_every=1), "demo", preset="tiny")
    try:
        driver.get(f"{server.url}/train")
        wait_for_text(driver, "RUNNING", timeout=120)
        first = _wait_points_above(driver, 2)
        screenshot(driver, "train-live-before-reload")

        driver.refresh()
        wait_for_text(driver, "step", timeout=120)
        after_reload = _wait_points_above(driver, 0)
        assert after_reload >= first  # nothing lost with the old tab
        grown = _wait_points_above(driver, after_reload + 2)
        assert grown > first
        m = re.search(r"step (\d+) of (\d+)", driver.find_element(By.TAG_NAME, "body").text)
        assert m and 0 < int(m.group(1)) < int(m.group(2))
        screenshot(driver, "train-live-after-reload")

        click_button(driver, "Cancel", timeout=60)  # the live fragment redraws it every second: found again if stale
        wait_for_text(driver, "CANCELLED", timeout=90)
        assert store.get(rid)["status"] == store.CANCELLED
    finally:
        launcher.cancel(rid)
        deadline = time.time() + 90
        while store.get(rid)["status"] in store.ACTIVE and time.time() < deadline:
            time.sleep(0.5)
