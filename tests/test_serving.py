"""Serving on a laptop (DESIGN.md, "Serving on a laptop"): the README's run command listens on loopback only;
`--share` or `ULMFIT_DEMO_SHARE=1` listens on every interface and says on stderr who can then reach the app. The config
keeps XSRF protection on, and its upload limit holds the largest corpus the app is built for.

The servers are real `./studio run` processes; the listening sockets are read from `/proc` (Linux, as the README
requires). The only traffic is the health check on 127.0.0.1."""
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tarfile
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from support import mirror_archive

REPO = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
LOOPBACK = {"127.0.0.1", "::1"}
EVERY_INTERFACE = {"0.0.0.0", "::"}


def readme_run_command() -> list[str]:
    "The README's first command, as a person types it (its comment left out)."
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    cmd = shlex.split(block.splitlines()[0], comments=True)
    assert cmd[:2] == ["./studio", "run"], f"the README's first command is {cmd}, expected ./studio run"
    return cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group_pids(pgid: int) -> set[int]:
    "Every live process in process group `pgid` (the server and anything it started)."
    pids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                # the command name (field 2) may hold spaces; the fields after its closing parenthesis do not
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:  # state, ppid, pgrp
                pids.add(int(d.name))
    return pids


def _socket_inodes(pids: set[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def _addr(hexaddr: str) -> str:
    "An address as /proc/net/tcp{,6} writes it (32-bit words in host byte order) in the usual notation."
    raw = bytes.fromhex(hexaddr)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)) if sys.byteorder == "little" else raw
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def listening(pgid: int) -> set[tuple[str, int]]:
    "(address, port) of every TCP socket that the processes of group `pgid` listen on."
    inodes = _socket_inodes(_group_pids(pgid))
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            local, state, inode = f[1], f[3], f[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                host, port = local.rsplit(":", 1)
                found.add((_addr(host), int(port, 16)))
    return found


class StudioRun:
    "`./studio run` as the README gives it, plus harmless streamlit flags, in a throwaway home; stopped as a group."

    def __init__(self, tmp: Path, extra: list[str], env: dict[str, str]):
        self.port = _free_port()
        self.log = tmp / f"studio-{self.port}.log"
        self.err = tmp / f"studio-{self.port}.err"
        home = tmp / "home"
        home.mkdir(exist_ok=True)
        e = {k: v for k, v in os.environ.items() if k != "ULMFIT_DEMO_SHARE"}
        e.update(ULMFIT_DEMO_HOME=str(home), FASTAI_HOME=str(tmp / "fastai_home"), ULMFIT_DEMO_OFFLINE="1",
                 PYTHONUNBUFFERED="1", PIP_NO_INDEX="1")  # the venv is installed: pip must not look online
        if sys.prefix != sys.base_prefix:
            e["ULMFIT_DEMO_VENV"] = sys.prefix  # the venv running these tests
        e.update(env)
        cmd = readme_run_command() + [f"--server.port={self.port}", *extra, "--server.headless=true",
                                      "--server.fileWatcherType=none"]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=e, stdout=open(self.log, "wb"), stderr=open(self.err, "wb"),
                                     start_new_session=True)
        self._wait_healthy()

    def output(self) -> str:
        return f"--- stdout\n{self.log.read_text()[-3000:]}\n--- stderr\n{self.err.read_text()[-3000:]}"

    def _wait_healthy(self, timeout: float = 240):
        url = f"http://127.0.0.1:{self.port}/_stcore/health"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"./studio run exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if urllib.request.urlopen(url, timeout=2).read() == b"ok":
                    return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"no answer on {url} within {timeout}s:\n{self.output()}")

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@pytest.fixture
def studio(tmp_path):
    started = []

    def start(extra=(), env=None):
        s = StudioRun(tmp_path, list(extra), env or {})
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def _ours(s: StudioRun) -> set[str]:
    socks = listening(s.proc.pid)
    addrs = {a for a, p in socks if p == s.port}
    assert addrs, f"no listening socket on port {s.port} in the server's process group: {socks}\n{s.output()}"
    return addrs


def test_the_readme_run_command_listens_on_loopback_only(studio):
    s = studio()
    socks = listening(s.proc.pid)
    assert _ours(s) <= LOOPBACK, f"./studio run listens on {socks}: reachable from other machines"
    assert {a for a, _ in socks} <= LOOPBACK, socks  # nothing else in the tree listens beyond this machine either
    assert "sharing is on" not in s.err.read_text()


@pytest.mark.parametrize("how", ["--share", "ULMFIT_DEMO_SHARE=1"])
def test_sharing_listens_on_every_interface_and_says_who_can_reach_it(studio, how):
    # --share in the middle of the arguments: it must be taken out before they reach `streamlit run`
    s = studio(extra=["--share"]) if how == "--share" else studio(env={"ULMFIT_DEMO_SHARE": "1"})
    addrs = _ours(s)
    assert addrs & EVERY_INTERFACE, f"with {how} the app listens on {addrs} only"
    err = " ".join(s.err.read_text().split())
    for said in ("WARNING", "every network interface", f"port {s.port}", "same network or Wi-Fi", "no login",
                 "start and cancel training", "uploaded corpora", "delete models"):
        assert said in err, f"{said!r} missing from the warning on stderr:\n{s.output()}"


def test_config_keeps_xsrf_protection_and_loopback():
    server = CONFIG["server"]
    assert server["enableXsrfProtection"] is True
    assert server.get("enableCORS", True) is True  # Streamlit's default; turning it off would weaken XSRF too
    assert server["address"] == "127.0.0.1"  # plain `streamlit run app.py` is loopback too


def test_upload_limit_holds_the_full_imdb_as_one_csv():
    """The largest corpus the app is built for, full IMDb, must fit the uploader as one CSV (its text plus room for
    quoting and columns); Streamlit counts maxUploadSize in MiB."""
    limit = CONFIG["server"]["maxUploadSize"]
    assert isinstance(limit, int) and limit > 0
    with tarfile.open(mirror_archive("imdb.tgz")) as tf:
        text = sum(m.size for m in tf if m.isfile() and m.name.endswith(".txt"))
    assert text > 100e6, f"{text:,} bytes of text: not the full IMDb"
    assert limit * 1024**2 >= 1.2 * text, f"maxUploadSize={limit} MB is too small for the full IMDb as a CSV"
    assert f"up to {limit} MB" in " ".join((REPO / "README.md").read_text().split())  # README, "Serving"
