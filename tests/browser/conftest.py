"""A live `streamlit run app.py` on a free port and headless Debian chromium driven by Selenium.

The server gets its own `$ULMFIT_DEMO_HOME` (the `browser_home` fixture, which tests may fill before the server
starts, e.g. with a trained model) and the test mirror; chromium runs with networking features off so it never
reaches outside this machine. Screenshots go to the test's tmp dir.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, home: Path, fastai_home: Path):
        self.home, self.port = home, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, ULMFIT_DEMO_HOME=str(home), FASTAI_HOME=str(fastai_home), ULMFIT_DEMO_OFFLINE="1",
                   PYTHONUNBUFFERED="1")
        self.log = home.parent / f"streamlit-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless=true",
             f"--server.port={self.port}", "--server.address=127.0.0.1", "--browser.gatherUsageStats=false",
             "--server.fileWatcherType=none"],
            cwd=REPO, env=env, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{self.log.read_text()[-3000:]}")
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"streamlit did not answer on {self.url}:\n{self.log.read_text()[-3000:]}")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)


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
