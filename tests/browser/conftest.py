"""A live `streamlit run app.py` on a free port and headless Debian chromium driven by Selenium.

The server gets its own `$ULMFIT_DEMO_HOME` (the `browser_home` fixture, which tests may fill before the server
starts, e.g. with a trained model) and the test mirror; chromium runs with networking features off so it never
reaches outside this machine. Screenshots go to the test's tmp dir.
"""
import os
from pathlib import Path

import pytest
from liveserver import CHROMEDRIVER, CHROMIUM, Server

@pytest.fixture(scope="session")
def browser_home(tmp_path_factory) -> Path:
    "The live server's `$ULMFIT_DEMO_HOME`. Fill it (models, runs) before the first use of `server`."
    return tmp_path_factory.mktemp("browser_home")


@pytest.fixture(scope="session")
def server(browser_home, fastai_home):
    s = Server(browser_home, fastai_home)
    yield s
    s.stop()


@pytest.fixture
def driver(tmp_path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        msg = "Debian chromium and chromium-driver are needed (the README's test command installs them)"
        if os.environ.get("ULMFIT_DEMO_ALLOW_NO_BROWSER") == "1":
            pytest.skip(msg)
        pytest.fail(msg + "; set ULMFIT_DEMO_ALLOW_NO_BROWSER=1 to skip browser tests instead")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
              "--window-size=1400,1800", f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        opts.add_argument(a)
    # An explicit driver path keeps Selenium Manager from trying to download a driver of its own.
    d = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(60)
    d.shots_dir = tmp_path
    yield d
    d.quit()
