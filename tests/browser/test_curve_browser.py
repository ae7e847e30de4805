"""The label-efficiency curve's chart in a real browser: a tiny curve run by the real CLI into the live server's home,
then the Models page in headless chromium draws one line per method on a log axis, with its sentence."""
import json
import os
import subprocess
import sys
import time

import pytest
from liveserver import REPO
from webutil import screenshot, wait_for_text, wait_idle

from support import mirror_archive

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Traces plotly drew for the chart, and the x axis's type, read from the page's own plotly object.
CHART_JS = """
const el = [...document.querySelectorAll('.js-plotly-plot')].find(e => e.layout && e.layout.xaxis &&
    e.layout.xaxis.type === 'log');
if (!el) return null;
el.scrollIntoView();
return {names: el.data.filter(t => t.mode === 'lines+markers').map(t => t.name),
        markers: el.querySelectorAll('.scatterlayer .trace .points path').length,
        drawn: el.querySelectorAll('.scatterlayer .trace').length};
"""


def test_models_page_draws_the_curve(browser_home, fastai_home, server, driver):
    mirror_archive("imdb_sample.tgz")
    env = dict(os.environ, ULMFIT_DEMO_HOME=str(browser_home), FASTAI_HOME=str(fastai_home), PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, "-m", "ulmfit_demo", "curve", "--dataset", "imdb_sample", "--labels",
                        "10,20", "--seeds", "1", "--tiny", "--json"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    driver.get(f"{server.url}/models")
    wait_for_text(driver, "Where pretraining pays", timeout=90)
    wait_idle(driver)
    sentence = json.loads(p.stdout)["sentence"]
    wait_for_text(driver, sentence[:60], timeout=60)
    chart = None
    for _ in range(60):
        chart = driver.execute_script(CHART_JS)
        if chart and chart["drawn"]:
            break
        time.sleep(0.5)
    shot = screenshot(driver, "curve_models_page")
    assert chart, f"no log-axis chart on the Models page (screenshot {shot})"
    assert chart["names"] == ["TF-IDF + LR baseline", "ULMFiT (pretrained LM, fine-tuned)",
                              "same classifier from scratch"]
    assert chart["drawn"] >= 3 and chart["markers"] == 6  # 2 numbers of labels x 3 methods, one seed
