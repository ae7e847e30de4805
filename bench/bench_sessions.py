"""Many viewers: does a room full of open tabs slow down the training it is watching?

    .venv/bin/python bench/bench_sessions.py [--sessions 8] [--minutes 3] [--corpus imdb_sample] [--out FILE]
                                             [--browser-nice 19] [--dwell 3] [--quiet-minutes M]

Starts the app for real (`streamlit run app.py` on a free loopback port, a throwaway ULMFIT_DEMO_HOME and FASTAI_HOME,
ULMFIT_DEMO_OFFLINE=1, ULMFIT_DEMO_MIRROR defaulting to /work/shared/data), fetches the corpus from the mirror, and
starts a language-model fine-tuning through the app's own launcher (`launcher.submit("lm", Quick with --epochs LM
epochs, ...)`: a background worker process, as the Train page's Start button makes), long enough that it trains
throughout. Once its first batches are in the store:

1. warm-up: one headless chromium opens every page once (caches filled, as on a machine that has been used); these
   cold times are reported apart;
2. window "before": --quiet-minutes of training with no viewer;
3. window "viewers": --sessions headless chromium sessions, each with its own profile, cycle through every page by URL
   path (http://127.0.0.1:PORT/train, ...), each starting at a different page, resting --dwell seconds on a page
   once it is ready (live fragments keep polling meanwhile), for --minutes;
4. window "after": --quiet-minutes with no viewer again, so drift of the machine's other load shows;
5. the run is cancelled, the browsers and the server are stopped, the throwaway home is removed.

Page ready, per visit: the clock starts before `driver.get(url)` (a full page load and a new Streamlit session, as
typing the URL does) and stops at the first poll (every 0.2 s) at which all of these hold: Streamlit's own run-state
hook `[data-testid=stApp][data-test-script-state]` says "notRunning" (the script run, fragments included, has
ended), the "running" indicator `[data-testid=stStatusWidgetRunningIcon]` is gone, no element is marked
`data-stale="true"`, the main area's `h1` holds the page's title, and a text only that page draws is visible. The
Train page's live fragments rerun every few seconds, so its ready needs a gap between them.
A visit is an error when it shows a Streamlit exception box (`stException`, at ready or after the dwell), says
"Page not found", or is not ready within --ready-timeout s. Browser console entries of level SEVERE whose text names
the app's address are counted (and their distinct texts kept in the JSON).

Training tokens/s, per window: the run's own batch rows in the store (split "batch", name "loss": one row every
`log_every` training steps, stamped with the wall time it was written). Over the rows inside the window,
(last step - first step) x bs x seq_len / (last time - first time): wall time, so epoch ends (validation, the
sample, the checkpoint) that fall in a window count, as a user waiting for the run feels them. Beside it, the
median of the per-row rates (each `log_every` steps over its own seconds), which leaves the epoch-end pauses out.
The store's per-epoch tokens/s metric and the heartbeat's `rate` are measured over whole epochs: too coarse here.

CPU, per window: CPU seconds (user + system, from psutil) of the Streamlit server, of chromium (every process under
each chromedriver) and chromedriver, of the training worker, and of the whole machine (all cores, from
/proc/stat via psutil); "other" is the machine's busy time no process of this bench accounts for (other jobs on a
shared machine). Processes are sampled every 2 s, so a process that lives under 2 s can be missed.
The browsers run on this machine, so they compete with the training for its cores, as tabs on the laptop that
trains do; viewers on other machines would cost it only the server's share. `--browser-nice 19` approximates that.
The run must stay alive: its status in the store at the end of the viewer window is printed (RUNNING expected; a run
marked INTERRUPTED by a page's startup check would be "lost").
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "browser"))

# (url path, name, the page's title, a text only that page draws): the texts are those tests/browser/test_urls.py
# checks each page by.
PAGES = [
    ("", "home", "ULMFiT Studio", "On this machine now"),
    ("data", "data", "Data", "Language-model batches"),
    ("tokenizers", "tokenizers", "Tokenizers", "Rule by rule"),
    ("train", "train", "Train", "ULMFiT in three steps"),
    ("sentiment", "sentiment", "Sentiment", "which words pushed it there"),
    ("generate", "generate", "Generate", "only ever predicts the next word"),
    ("models", "models", "Models", "Each finished training run leaves a model here"),
]

PROBE = re.compile(r"/[\w-]+/_stcore/(health|host-config) - Failed to load resource: .* 404")

STATE_JS = """
const app = document.querySelector('[data-testid="stApp"]');
const h1 = document.querySelector('[data-testid="stMain"] h1');
const body = document.body ? document.body.innerText : '';
return {state: app ? app.getAttribute('data-test-script-state') : null,
        h1: h1 ? h1.innerText : '',
        text: body.includes(arguments[0]),
        running: !!document.querySelector('[data-testid="stStatusWidgetRunningIcon"]'),
        stale: document.querySelectorAll('[data-stale="true"]').length,
        exc: document.querySelectorAll('[data-testid="stException"]').length,
        notfound: body.includes('Page not found')};
"""


def pct(xs, q):
    "The q-th percentile (nearest rank) of xs, or None."
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * len(xs) + 0.5) - 1))]


# ------------------------------------------------------------------------------------------------ browsers

def new_driver(profile: Path):
    from liveserver import CHROMEDRIVER, CHROMIUM
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
              # Loopback only: any other host name fails to resolve inside this browser.
              "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
              "--window-size=1400,1800", f"--user-data-dir={profile}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path keeps Selenium Manager from trying to download a driver (or a browser) of its own.
    d = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(120)
    return d


def visit(driver, base: str, page, timeout: float) -> dict:
    "Open one page by its URL and wait until it is ready (see the module docstring). Returns what was seen."
    path, name, title, text = page
    t0 = time.perf_counter()
    out = {"page": name, "t": time.time(), "ready_s": None, "error": None}
    try:
        driver.get(f"{base}/{path}")
    except Exception as e:  # noqa: BLE001 - a page-load timeout is a finding, not a crash of the bench
        out["error"] = f"load: {type(e).__name__}"
        return out
    deadline = t0 + timeout
    s = {}
    while time.perf_counter() < deadline:
        try:
            s = driver.execute_script(STATE_JS, text) or {}
        except Exception:  # noqa: BLE001 - mid-navigation
            s = {}
        if s.get("exc"):
            out["error"] = "exception"
            break
        if s.get("notfound"):
            out["error"] = "page not found"
            break
        if (s.get("state") == "notRunning" and not s.get("running") and not s.get("stale") and s.get("text")
                and title in (s.get("h1") or "")):
            out["ready_s"] = time.perf_counter() - t0
            break
        time.sleep(0.2)
    else:
        out["error"] = f"not ready in {timeout:.0f}s (state {s.get('state')}, running {s.get('running')})"
    return out


def console_errors(driver, origin: str) -> dict:
    """SEVERE console entries since the last call, in three lists: those naming the app's address; of those, the
    404s of Streamlit's own base-path probe (a deep link `/train` makes its frontend try `/train/_stcore/health` and
    `/train/_stcore/host-config` before `/_stcore/...`: streamlit/streamlit#7074, not the app's doing); the rest."""
    try:
        logs = driver.get_log("browser")
    except Exception:  # noqa: BLE001
        return {"app": [], "probe": [], "other": []}
    out = {"app": [], "probe": [], "other": []}
    for e in logs:
        if e.get("level") != "SEVERE":
            continue
        m = e.get("message", "")
        if origin not in m:
            out["other"].append(m)
        elif PROBE.search(m):
            out["probe"].append(m)
        else:
            out["app"].append(m)
    return out


def renice(driver, nice: int) -> None:
    """chromedriver and every chromium process under it to `nice`. With the kernel's autogroup scheduling on (Debian's
    default), nice only ranks processes of one session against each other, and the training worker has a session of
    its own: so the browsers' autogroup (this bench's session, the bench included: it mostly waits) gets `nice` too.
    Chromium resets some renderers to nice 0, so the viewers call this again after each visit."""
    import psutil

    if not nice:
        return
    try:
        root = psutil.Process(driver.service.process.pid)
        procs = [root] + root.children(recursive=True)
        groups = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except (psutil.Error, OSError):
        return
    for p in procs:
        try:
            if p.nice() != nice:
                p.nice(nice)
            if groups:  # the autogroup of the session the process is in (chromium may start sessions of its own)
                Path(f"/proc/{p.pid}/autogroup").write_text(str(nice))
        except (psutil.Error, OSError):
            pass


class Viewer(threading.Thread):
    "One browser session cycling through every page until `stop` is set."

    def __init__(self, idx: int, driver, base: str, stop: threading.Event, dwell: float, timeout: float,
                 nice: int = 0):
        super().__init__(daemon=True, name=f"viewer-{idx}")
        self.idx, self.driver, self.base, self.stop, self.dwell, self.timeout = idx, driver, base, stop, dwell, timeout
        self.nice = nice
        self.visits, self.console, self.crash = [], {"app": [], "probe": [], "other": []}, None

    def run(self):
        k = self.idx
        try:
            while not self.stop.is_set():
                page = PAGES[k % len(PAGES)]
                k += 1
                v = visit(self.driver, self.base, page, self.timeout)
                if v["error"] is None and self.stop.wait(self.dwell) is False:
                    # A box raised later (a live fragment failing on a rerun) counts for this visit too.
                    try:
                        if self.driver.execute_script(STATE_JS, page[3]).get("exc"):
                            v["error"] = "exception (after dwell)"
                    except Exception:  # noqa: BLE001
                        pass
                renice(self.driver, self.nice)
                c = console_errors(self.driver, self.base.split("//")[1])
                v["console"] = c["app"]
                for kind, msgs in c.items():
                    self.console[kind] += msgs
                self.visits.append(v)
        except Exception as e:  # noqa: BLE001 - reported, not raised in a thread
            self.crash = f"{type(e).__name__}: {e}"


# ------------------------------------------------------------------------------------------------ CPU

class CpuMeter:
    """CPU seconds per group of processes between `start()` and `stop()`, sampled every `every` seconds, and the
    whole machine's busy seconds."""

    def __init__(self, groups, every: float = 2.0):
        self.groups, self.every = groups, every  # groups: name -> callable returning root pids
        self.base, self.last, self.group_of = {}, {}, {}
        self._stop = threading.Event()
        self._t = None

    def _sample(self, first: bool):
        import psutil

        own = set()
        for g, roots in self.groups.items():
            for pid in roots():
                try:
                    p = psutil.Process(pid)
                    procs = [p] + p.children(recursive=True)
                except psutil.Error:
                    continue
                for q in procs:
                    if q.pid in own:
                        continue
                    try:
                        c = q.cpu_times()
                    except psutil.Error:
                        continue
                    key = (q.pid, q.create_time())
                    own.add(q.pid)
                    self.group_of[key] = g
                    if first:
                        self.base[key] = c.user + c.system
                    self.last[key] = c.user + c.system

    def _machine(self):
        import psutil

        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)

    def start(self):
        import psutil

        self.t0, self.m0, self.load0 = time.time(), self._machine(), os.getloadavg()
        self.self0 = sum(psutil.Process().cpu_times()[:2])
        self._sample(first=True)
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self):
        while not self._stop.wait(self.every):
            self._sample(first=False)

    def stop(self) -> dict:
        import psutil

        self._sample(first=False)
        self._stop.set()
        self._t.join()
        wall = time.time() - self.t0
        out = {g: 0.0 for g in self.groups}
        for key, last in self.last.items():
            out[self.group_of[key]] += last - self.base.get(key, 0.0)
        busy = self._machine() - self.m0
        mine = sum(psutil.Process().cpu_times()[:2]) - self.self0
        res = {f"{g}_cpu_s": round(v, 1) for g, v in out.items()}
        res.update(bench_cpu_s=round(mine, 1), machine_busy_cpu_s=round(busy, 1),
                   other_cpu_s=round(busy - sum(out.values()) - mine, 1), wall_s=round(wall, 1),
                   cores=psutil.cpu_count(), loadavg_start=[round(x, 2) for x in self.load0],
                   loadavg_end=[round(x, 2) for x in os.getloadavg()])
        return res


def top_others(exclude: set, n: int = 5) -> list[str]:
    "The busiest processes not started by this bench (nor under one it started), for the record of what else ran."
    import psutil

    for pid in list(exclude):
        try:
            exclude |= {c.pid for c in psutil.Process(pid).children(recursive=True)}
        except psutil.Error:
            pass
    procs = []
    for p in psutil.process_iter(["pid", "cmdline", "cpu_percent"]):
        try:
            if p.pid in exclude:
                continue
            p.cpu_percent(None)
            procs.append(p)
        except psutil.Error:
            pass
    time.sleep(1.0)
    rows = []
    for p in procs:
        try:
            rows.append((p.cpu_percent(None), p.pid, " ".join(p.cmdline())[:110]))
        except psutil.Error:
            pass
    return [f"{c:.0f}% pid {pid}: {cmd}" for c, pid, cmd in sorted(rows, reverse=True)[:n] if c > 1]


# ------------------------------------------------------------------------------------------------ training

def tokens_per_s(run_id: str, t0: float, t1: float, tokens_per_step: int) -> dict:
    "Training tokens/s between wall times t0 and t1 from the run's batch rows in the store (see the docstring)."
    from ulmfit_demo.runs import store

    m = store.metrics(run_id)
    b = m[(m["split"] == "batch") & (m["name"] == "loss") & (m["time"] >= t0) & (m["time"] <= t1)]
    b = b.sort_values("time")
    if len(b) < 2:
        return {"tokens_per_s": None, "median_tokens_per_s": None, "steps": 0}
    steps, secs = int(b["step"].iloc[-1] - b["step"].iloc[0]), float(b["time"].iloc[-1] - b["time"].iloc[0])
    ds, dt = b["step"].diff().iloc[1:], b["time"].diff().iloc[1:]
    rates = [s / t for s, t in zip(ds, dt) if t > 0 and s > 0]
    return {"tokens_per_s": round(steps * tokens_per_step / secs, 1) if secs > 0 else None,
            "median_tokens_per_s": round(statistics.median(rates) * tokens_per_step, 1) if rates else None,
            "steps": steps, "seconds": round(secs, 1)}


def wait_training(run_id: str, timeout: float = 900) -> None:
    "Until the run has written a few batch rows (tokenizing and setting up are over)."
    from ulmfit_demo.runs import store

    deadline = time.time() + timeout
    while time.time() < deadline:
        r = store.get(run_id)
        if r["status"] not in store.ACTIVE:
            raise RuntimeError(f"run {run_id} ended {r['status']} before training: {r.get('error')}\n"
                               f"{store.read_log(run_id)[-3000:]}")
        m = store.metrics(run_id)
        if len(m) and (m["split"] == "batch").sum() >= 3:
            return
        time.sleep(2)
    raise RuntimeError(f"run {run_id} did not start training within {timeout:.0f}s")


# ------------------------------------------------------------------------------------------------ main

def summarise(visits: list[dict]) -> dict:
    ok = [v for v in visits if v["error"] is None and v["ready_s"] is not None]
    per = {}
    for _, name, _, _ in PAGES:
        xs = [v["ready_s"] for v in ok if v["page"] == name]
        per[name] = {"n": len(xs), "p50_s": pct(xs, 50), "p95_s": pct(xs, 95),
                     "errors": sum(v["page"] == name and v["error"] is not None for v in visits)}
    xs = [v["ready_s"] for v in ok]
    return {"visits": len(visits), "ready": len(ok), "p50_s": pct(xs, 50), "p95_s": pct(xs, 95), "per_page": per}


def _commit() -> str:
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                               text=True).stdout
        return head.strip() + ("+dirty" if dirty.strip() else "")
    except OSError:
        return "?"


def fmt(x, unit="s"):
    return "-" if x is None else f"{x:.2f}{unit}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=8, help="concurrent browser sessions in the viewer window")
    ap.add_argument("--minutes", type=float, default=3.0, help="length of the viewer window")
    ap.add_argument("--quiet-minutes", type=float, default=None,
                    help="length of each window without viewers, before and after (default: --minutes / 2, >= 1)")
    ap.add_argument("--corpus", default="imdb_sample", help="corpus the run trains on (demo, imdb_sample, ...)")
    ap.add_argument("--epochs", type=int, default=30, help="LM epochs of the run: enough to train throughout")
    ap.add_argument("--dwell", type=float, default=3.0, help="seconds a viewer stays on a page once it is ready")
    ap.add_argument("--ready-timeout", type=float, default=120.0)
    ap.add_argument("--browser-nice", type=int, default=0,
                    help="run chromium at this nice level (19: the browsers yield the CPU, as browsers on the viewers' "
                         "own machines would; the slowdown left is the server's)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "sessions.json"))
    a = ap.parse_args()
    quiet = a.quiet_minutes if a.quiet_minutes is not None else max(1.0, a.minutes / 2)

    tmp = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    os.environ.update(ULMFIT_DEMO_HOME=str(tmp / "home"), FASTAI_HOME=str(tmp / "fastai"), ULMFIT_DEMO_OFFLINE="1")
    os.environ.setdefault("ULMFIT_DEMO_MIRROR", "/work/shared/data")
    (tmp / "home").mkdir()
    (tmp / "fastai").mkdir()

    from liveserver import Server

    from ulmfit_demo.data import corpora
    from ulmfit_demo.runs import launcher, store
    from ulmfit_demo.train import presets

    server, run_id, drivers, viewers = None, None, [], []
    res = {"argv": sys.argv[1:], "loadavg_at_start": os.getloadavg(), "host": platform.node(), "python": platform.python_version(),
           "cores": os.cpu_count(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "commit": _commit()}
    try:
        corpus = corpora.load(a.corpus)
        cfg = presets.preset("quick").with_(lm_epochs=a.epochs)
        tps = cfg.bs * cfg.seq_len
        server = Server(tmp / "home", tmp / "fastai")
        print(f"server {server.url} (pid {server.proc.pid}); home {tmp / 'home'}", flush=True)
        run_id = launcher.submit("lm", cfg, a.corpus, preset="Quick", corpus=corpus)
        print(f"run {run_id}: Quick LM fine-tuning on {a.corpus} ({len(corpus.df):,} texts), {a.epochs} epochs, "
              f"bs {cfg.bs} x seq_len {cfg.seq_len} = {tps} tokens a step", flush=True)
        wait_training(run_id)
        worker_pid = store.get(run_id)["pid"]
        res.update(run_id=run_id, corpus=a.corpus, tokens_per_step=tps, sessions=a.sessions, minutes=a.minutes,
                   quiet_minutes=quiet, dwell_s=a.dwell)

        groups = {"server": lambda: [server.proc.pid], "worker": lambda: [worker_pid],
                  "chromium": lambda: [d.service.process.pid for d in drivers]}

        # 1. warm-up: every page once, cold
        d0 = new_driver(tmp / "profile-warm")
        cold = []
        for page in PAGES:
            v = visit(d0, server.url, page, a.ready_timeout * 3)
            cold.append(v)
            print(f"  cold {v['page']:<11} {fmt(v['ready_s'])} {v['error'] or ''}", flush=True)
        d0.quit()
        res["cold"] = cold

        def window(name: str, minutes: float, meter_groups=groups):
            meter = CpuMeter(meter_groups)
            meter.start()
            t0 = time.time()
            yield meter
            t1 = time.time()
            c = meter.stop()
            tp = tokens_per_s(run_id, t0, t1, tps)
            r = store.get(run_id)
            out = {"t0": t0, "t1": t1, **tp, "cpu": c, "run_status": r["status"],
                   "heartbeat_age_s": round(time.time() - (r["heartbeat"] or 0), 1), "stage": r.get("stage")}
            res[name] = out
            yield out

        # 2. before
        print(f"window 'before': {quiet:g} min without viewers; others: "
              f"{top_others({os.getpid(), server.proc.pid, worker_pid})}", flush=True)
        w = window("before", quiet)
        next(w)
        time.sleep(quiet * 60)
        before = next(w)

        # 3. viewers
        print(f"window 'viewers': {a.sessions} sessions for {a.minutes:g} min", flush=True)
        for i in range(a.sessions):
            drivers.append(new_driver(tmp / f"profile-{i}"))
            renice(drivers[-1], a.browser_nice)
        stop = threading.Event()
        viewers = [Viewer(i, d, server.url, stop, a.dwell, a.ready_timeout, a.browser_nice)
                   for i, d in enumerate(drivers)]
        w = window("viewers", a.minutes)
        next(w)
        for v in viewers:
            v.start()
        time.sleep(a.minutes * 60)
        stop.set()
        for v in viewers:
            v.join(a.ready_timeout + 30)
        during = next(w)
        others_during = top_others({os.getpid(), server.proc.pid, worker_pid}
                                   | {d.service.process.pid for d in drivers})
        for d in drivers:
            try:
                d.quit()
            except Exception:  # noqa: BLE001
                pass
        drivers.clear()

        # 4. after
        print(f"window 'after': {quiet:g} min without viewers", flush=True)
        w = window("after", quiet)
        next(w)
        time.sleep(quiet * 60)
        after = next(w)

        visits = [x for v in viewers for x in v.visits]
        summ = summarise(visits)
        errs = [v for v in visits if v["error"]]
        console = [m for v in viewers for m in v.console["app"]]
        probe = [m for v in viewers for m in v.console["probe"]]
        other = [m for v in viewers for m in v.console["other"]]
        res.update(summary=summ, visits=visits, crashes=[v.crash for v in viewers if v.crash],
                   errors=sorted({f"{v['page']}: {v['error']}" for v in errs}),
                   console_severe=len(console), console_distinct=sorted(set(console))[:20],
                   console_probe_404=len(probe), console_other_severe=len(other),
                   console_other_distinct=sorted(set(other))[:20], others_during=others_during)

        # ---------------------------------------------------------------------------------------------- report
        print(f"\npage ready over {summ['visits']} visits by {a.sessions} sessions in {a.minutes:g} min: "
              f"p50 {fmt(summ['p50_s'])}, p95 {fmt(summ['p95_s'])}")
        for name, p in summ["per_page"].items():
            print(f"  {name:<11} n {p['n']:>3}  p50 {fmt(p['p50_s']):>7}  p95 {fmt(p['p95_s']):>7}  errors {p['errors']}")
        print(f"page errors: {len(errs)} ({', '.join(res['errors']) or 'none'}); console SEVERE from the app: "
              f"{len(console)} ({len(set(console))} distinct), besides {len(probe)} 404s of Streamlit's base-path "
              f"probe on deep links (streamlit#7074); SEVERE not naming the app: {len(other)}"
              + (f"; viewer crashes: {res['crashes']}" if res["crashes"] else ""))
        for m in (res["console_distinct"] + res["console_other_distinct"])[:6]:
            print(f"    console: {m[:200]}")
        lost = during["run_status"] != store.RUNNING
        print(f"run {run_id}: {during['run_status']} at the end of the viewer window (heartbeat "
              f"{during['heartbeat_age_s']}s old), {'LOST' if lost else 'alive'}")
        quiet_tps = [x["tokens_per_s"] for x in (before, after) if x["tokens_per_s"]]
        quiet_med = [x["median_tokens_per_s"] for x in (before, after) if x["median_tokens_per_s"]]
        ref = statistics.mean(quiet_tps) if quiet_tps else None
        ref_med = statistics.mean(quiet_med) if quiet_med else None
        ratio = during["tokens_per_s"] / ref if ref and during["tokens_per_s"] else None
        ratio_med = during["median_tokens_per_s"] / ref_med if ref_med and during["median_tokens_per_s"] else None
        res.update(ratio=ratio, ratio_median=ratio_med)
        print("training tokens/s (wall: steps over the window; median: of 10-step intervals):")
        for name, x in (("before", before), ("viewers", during), ("after", after)):
            print(f"  {name:<8} {x['tokens_per_s'] or 0:>8,.0f} wall  {x['median_tokens_per_s'] or 0:>8,.0f} median "
                  f"({x['steps']} steps in {x.get('seconds', 0)}s)")
        if ratio:
            print(f"  with viewers / without (mean of before and after): {ratio:.2f} wall, "
                  f"{ratio_med:.2f} median")
        print("CPU seconds per window (2 cores = 2 CPU s per s):")
        for name, x in (("before", before), ("viewers", during), ("after", after)):
            c = x["cpu"]
            print(f"  {name:<8} {c['wall_s']:>5.0f}s wall: server {c['server_cpu_s']:>6.1f}  chromium "
                  f"{c['chromium_cpu_s']:>6.1f}  worker {c['worker_cpu_s']:>6.1f}  other {c['other_cpu_s']:>6.1f}  "
                  f"machine {c['machine_busy_cpu_s']:>6.1f}; load {c['loadavg_start'][0]:.2f} -> "
                  f"{c['loadavg_end'][0]:.2f}")
        c = during["cpu"]
        viewers_cpu = c["server_cpu_s"] - before["cpu"]["server_cpu_s"] * c["wall_s"] / before["cpu"]["wall_s"] \
            + c["chromium_cpu_s"]
        res["viewers_cpu_s"] = round(viewers_cpu, 1)
        res["server_cpu_per_visit_s"] = round(c["server_cpu_s"] / max(summ["visits"], 1), 3)
        print(f"  the viewers took {viewers_cpu:.0f} CPU s in {c['wall_s']:.0f}s ({viewers_cpu / c['wall_s']:.2f} of "
              f"{c['cores']} cores: chromium plus the server's CPU above its quiet rate); the server's share: "
              f"{c['server_cpu_s'] / c['wall_s']:.2f} cores, {res['server_cpu_per_visit_s']:.2f} CPU s per visit"
              + (f"; chromium ran at nice {a.browser_nice}" if a.browser_nice else ""))
        print(f"  other load during the viewers: {others_during}")
        return 0
    finally:
        for d in drivers:
            try:
                d.quit()
            except Exception:  # noqa: BLE001
                pass
        if run_id is not None:
            try:
                launcher.cancel(run_id)
                deadline = time.time() + 60
                while store.get(run_id)["status"] in store.ACTIVE and time.time() < deadline:
                    time.sleep(1)
                r = store.get(run_id)
                if r["status"] in store.ACTIVE and r.get("pid"):
                    os.killpg(r["pid"], 9)
                res["final_status"] = store.get(run_id)["status"]
            except Exception as e:  # noqa: BLE001
                print(f"stopping the run: {e}", file=sys.stderr)
        if server is not None:
            server.stop()
            try:
                res["server_log_tail"] = server.log.read_text(errors="replace")[-4000:]
            except OSError:
                pass
        if a.out:
            Path(a.out).parent.mkdir(parents=True, exist_ok=True)
            Path(a.out).write_text(json.dumps(res, indent=1, default=str))
            print(f"wrote {a.out}")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
