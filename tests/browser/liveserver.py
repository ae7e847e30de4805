"""`streamlit run app.py` as a real server process on a free port, for browser tests (the `server` fixture, or a
fresh one for tests that need a server no page has run on yet)."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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
