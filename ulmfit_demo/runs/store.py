"""The run store: one SQLite file (`$ULMFIT_DEMO_HOME/runs.db`) in WAL mode, shared by the Streamlit server, worker
processes and the CLI.

Tables: `runs` (one row per run: status, config, pid, heartbeat, times, error, progress), `metrics` (run, stage,
phase, epoch, step, split, name, value, time) and `events` (run, time, level, kind, message, data): stage starts,
samples, warnings, checkpoints. Every write is a short transaction; read-modify-write ones use `BEGIN IMMEDIATE` so
two processes never both think they claimed the same run, and WAL + a long busy timeout let readers and one writer
proceed together without "database is locked".

A little over 400 lines on purpose: the schema and every query against it stay in one file, so a change to a
column, a status or a transaction is made and reviewed in one place.
"""
import json
import os
import secrets
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ulmfit_demo import config

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED = (
    "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "INTERRUPTED")
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)
ACTIVE = (QUEUED, RUNNING)
RESUMABLE = (INTERRUPTED, CANCELLED, FAILED)

# Seconds a connection waits for another writer before giving up. Checkpoint fsyncs and a busy page can hold the
# write lock for a while on a loaded machine; a metric write must wait for them, never fail.
BUSY_TIMEOUT_S = 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    preset TEXT,
    corpus TEXT,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    pid INTEGER,
    heartbeat REAL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    error TEXT,
    cancel_requested REAL,
    foreground INTEGER NOT NULL DEFAULT 0,
    device TEXT,
    stage TEXT,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER,
    rate REAL,
    model_id TEXT,
    summary TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    phase INTEGER,
    epoch INTEGER,
    step INTEGER NOT NULL,
    split TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics(run_id, step);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    time REAL NOT NULL,
    level TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT,
    data TEXT
);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id, id);
"""

_ready: set = set()


def db_path() -> Path:
    return config.home() / "runs.db"


def run_dir(run_id: str) -> Path:
    "The run's folder: config.json, worker.log, checkpoints/ and its outputs."
    check_id(run_id)
    p = config.sub("runs") / run_id
    p.mkdir(parents=True, exist_ok=True)
    return p


def check_id(run_id: str) -> str:
    # Ids become folder names: refuse anything but what `new_id` makes before it touches a path.
    if not isinstance(run_id, str) or not run_id or len(run_id) > 64 or not all(c.isalnum() or c in "-_" for c in run_id):
        raise ValueError(f"{run_id!r} is not a run id (like 20250101-120000-ab12).")
    return run_id


def new_id() -> str:
    "Sortable and readable: creation time, then random hex so two starts in one second differ."
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@contextmanager
def connect(immediate: bool = False):
    """A short-lived connection (cheap, and safe across threads and forks). `immediate` takes the write lock at
    BEGIN, so a read followed by a write cannot be overtaken by another process in between."""
    path = db_path()
    con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        con.row_factory = sqlite3.Row
        con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        key = str(path)
        if key not in _ready:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
            _ready.add(key)
        # WAL + NORMAL: a crash can lose the last transactions but never corrupts the file; fsync per metric
        # batch would cost the training loop more than the metrics are worth.
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield con
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()


def _row(r: sqlite3.Row | None) -> dict | None:
    if r is None:
        return None
    d = dict(r)
    d["config"] = json.loads(d["config"]) if d.get("config") else {}
    d["summary"] = json.loads(d["summary"]) if d.get("summary") else {}
    d["foreground"] = bool(d["foreground"])
    return d


# ----------------------------------------------------------------------------------------------------------- runs

def create_run(kind: str, cfg: dict, *, preset: str | None = None, corpus: str | None = None,
               foreground: bool = False, pid: int | None = None) -> str:
    "A new QUEUED run; its config is also written to `runs/<id>/config.json` (atomically) for people and tools."
    run_id = new_id()
    # The write lock at BEGIN: a deferred transaction that reads and then inserts fails at once ("database is
    # locked", no busy wait) when another process commits in between, e.g. a worker's heartbeat.
    with connect(immediate=True) as con:
        while con.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone():
            run_id = new_id()
        con.execute("INSERT INTO runs (id, kind, preset, corpus, status, config, pid, heartbeat, created, foreground) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (run_id, kind, preset, corpus, QUEUED, json.dumps(cfg), pid, time.time(), time.time(),
                     int(foreground)))
    config.atomic_write(run_dir(run_id) / "config.json",
                        json.dumps({"id": run_id, "kind": kind, "preset": preset, "corpus": corpus, "config": cfg},
                                   indent=2))
    return run_id


def get(run_id: str) -> dict | None:
    with connect() as con:
        return _row(con.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone())


def list_runs(limit: int = 500, status: str | None = None) -> list[dict]:
    "Newest first."
    q, args = "SELECT * FROM runs", []
    if status:
        q, args = q + " WHERE status=?", [status]
    with connect() as con:
        return [_row(r) for r in con.execute(q + " ORDER BY created DESC, id DESC LIMIT ?", (*args, limit))]


def running() -> list[dict]:
    return list_runs(status=RUNNING)


def claim(run_id: str, pid: int | None = None) -> bool:
    """QUEUED -> RUNNING for this run if no run is RUNNING (one job at a time). Used by the CLI's foreground run,
    which waits its turn; background runs go through `claim_next`."""
    with connect(immediate=True) as con:
        if con.execute("SELECT 1 FROM runs WHERE status=?", (RUNNING,)).fetchone():
            return False
        cur = con.execute("UPDATE runs SET status=?, pid=?, heartbeat=?, started=COALESCE(started, ?), "
                          "attempts=attempts+1 WHERE id=? AND status=?",
                          (RUNNING, pid, time.time(), time.time(), run_id, QUEUED))
        return cur.rowcount == 1


def claim_next() -> str | None:
    """The oldest QUEUED background run becomes RUNNING (pid unknown until it is spawned), if none is RUNNING.
    Whoever gets it must start its worker; the transaction makes sure only one process gets it."""
    with connect() as con:  # the common case, nothing queued, without taking the write lock (pages poll this)
        if not con.execute("SELECT 1 FROM runs WHERE status=? AND foreground=0 LIMIT 1", (QUEUED,)).fetchone():
            return None
    with connect(immediate=True) as con:
        if con.execute("SELECT 1 FROM runs WHERE status=?", (RUNNING,)).fetchone():
            return None
        r = con.execute("SELECT id FROM runs WHERE status=? AND foreground=0 ORDER BY created, id LIMIT 1",
                        (QUEUED,)).fetchone()
        if r is None:
            return None
        con.execute("UPDATE runs SET status=?, pid=NULL, heartbeat=?, started=COALESCE(started, ?), "
                    "attempts=attempts+1 WHERE id=?", (RUNNING, time.time(), time.time(), r["id"]))
        return r["id"]


def attach(run_id: str, pid: int) -> bool:
    "The worker says it is alive. False if the run is not RUNNING for it (cancelled meanwhile, or another owner)."
    with connect(immediate=True) as con:
        cur = con.execute("UPDATE runs SET pid=?, heartbeat=? WHERE id=? AND status=? AND (pid IS NULL OR pid=?)",
                          (pid, time.time(), run_id, RUNNING, pid))
        return cur.rowcount == 1


def set_pid(run_id: str, pid: int) -> None:
    with connect() as con:
        con.execute("UPDATE runs SET pid=? WHERE id=? AND status=? AND pid IS NULL", (pid, run_id, RUNNING))


def heartbeat(run_id: str, **progress) -> None:
    "Now is the heartbeat; `progress` may set stage, step, total_steps, rate, device."
    allowed = {"stage", "step", "total_steps", "rate", "device"}
    cols = {k: v for k, v in progress.items() if k in allowed and v is not None}
    sets = ", ".join(["heartbeat=?"] + [f"{k}=?" for k in cols])
    with connect() as con:
        con.execute(f"UPDATE runs SET {sets} WHERE id=?", (time.time(), *cols.values(), run_id))


def finish(run_id: str, status: str, *, error: str | None = None, model_id: str | None = None,
           summary: dict | None = None) -> None:
    "RUNNING -> a final status. A run someone else already ended (e.g. marked INTERRUPTED) is left alone."
    assert status in (SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)
    with connect(immediate=True) as con:
        old = con.execute("SELECT summary FROM runs WHERE id=?", (run_id,)).fetchone()
        merged = {**(json.loads(old["summary"]) if old and old["summary"] else {}), **(summary or {})}
        con.execute("UPDATE runs SET status=?, error=?, finished=?, heartbeat=?, model_id=COALESCE(?, model_id), "
                    "summary=? WHERE id=? AND status=?",
                    (status, error, time.time(), time.time(), model_id, json.dumps(merged), run_id, RUNNING))


def update_summary(run_id: str, **items) -> None:
    "Merge `items` into the run's summary JSON (final metrics, model ids per stage...)."
    with connect(immediate=True) as con:
        r = con.execute("SELECT summary FROM runs WHERE id=?", (run_id,)).fetchone()
        merged = {**(json.loads(r["summary"]) if r and r["summary"] else {}), **items}
        con.execute("UPDATE runs SET summary=? WHERE id=?", (json.dumps(merged), run_id))


def request_cancel(run_id: str) -> str | None:
    "A QUEUED run is CANCELLED at once; a RUNNING one gets the flag its worker checks. Returns the status after."
    with connect(immediate=True) as con:
        r = con.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
        if r is None:
            return None
        if r["status"] == QUEUED:
            con.execute("UPDATE runs SET status=?, finished=?, error=? WHERE id=?",
                        (CANCELLED, time.time(), "Cancelled before it started.", run_id))
            return CANCELLED
        if r["status"] == RUNNING:
            con.execute("UPDATE runs SET cancel_requested=COALESCE(cancel_requested, ?) WHERE id=?",
                        (time.time(), run_id))
        return r["status"]


def cancel_requested(run_id: str) -> bool:
    with connect() as con:
        r = con.execute("SELECT cancel_requested, status FROM runs WHERE id=?", (run_id,)).fetchone()
        return bool(r and (r["cancel_requested"] or r["status"] != RUNNING))


def requeue(run_id: str) -> bool:
    "INTERRUPTED/CANCELLED/FAILED -> QUEUED, for a resume. The worker continues from the last complete checkpoint."
    with connect(immediate=True) as con:
        cur = con.execute("UPDATE runs SET status=?, cancel_requested=NULL, error=NULL, finished=NULL, pid=NULL, "
                          "foreground=0, heartbeat=? WHERE id=? AND status IN (?,?,?)",
                          (QUEUED, time.time(), run_id, *RESUMABLE))
        return cur.rowcount == 1


def mark_gone(is_alive, starting_grace_s: float = 120) -> list[str]:
    """The start-up check: RUNNING runs whose process is gone, and foreground QUEUED runs whose CLI is gone, become
    INTERRUPTED. `is_alive(pid)` decides; a RUNNING run with no pid yet is being spawned unless that took too long."""
    now, gone = time.time(), []
    with connect() as con:  # read first: the write lock only when a run may have to change
        if not con.execute("SELECT 1 FROM runs WHERE status=? OR (status=? AND foreground=1) LIMIT 1",
                           (RUNNING, QUEUED)).fetchone():
            return []
    with connect(immediate=True) as con:
        for r in con.execute("SELECT id, status, pid, heartbeat, foreground, cancel_requested FROM runs "
                             "WHERE status IN (?,?)", (RUNNING, QUEUED)).fetchall():
            if r["status"] == QUEUED and not r["foreground"]:
                continue
            if r["pid"] is None:
                dead = r["status"] == RUNNING and now - (r["heartbeat"] or 0) > starting_grace_s
            else:
                dead = not is_alive(r["pid"])
            if dead and r["cancel_requested"]:  # stopped by the SIGTERM/SIGKILL fallback of a cancel
                con.execute("UPDATE runs SET status=?, finished=?, error=? WHERE id=?",
                            (CANCELLED, now, "Cancelled (the worker was stopped). Checkpoints of finished epochs "
                                             "are kept.", r["id"]))
            elif dead:
                gone.append(r["id"])
                con.execute("UPDATE runs SET status=?, finished=?, error=? WHERE id=?",
                            (INTERRUPTED, now, f"The {'worker' if r['status'] == RUNNING else 'CLI'} process "
                                               f"{r['pid'] or ''} stopped without finishing (killed, crashed or the "
                                               f"machine restarted). Resume continues from the last complete "
                                               f"checkpoint.", r["id"]))
    for run_id in gone:
        add_event(run_id, "interrupted", "Found the worker process gone; marked INTERRUPTED.", level="warning")
    return gone


# ----------------------------------------------------------------------------------------------------------- metrics

METRIC_COLS = ("stage", "phase", "epoch", "step", "split", "name", "value")


def add_metrics(run_id: str, rows: list[tuple]) -> None:
    "`rows` of (stage, phase, epoch, step, split, name, value), written in one transaction."
    if not rows:
        return
    now = time.time()
    with connect() as con:
        con.executemany("INSERT INTO metrics (run_id, stage, phase, epoch, step, split, name, value, time) "
                        "VALUES (?,?,?,?,?,?,?,?,?)", [(run_id, *r, now) for r in rows])


def drop_metrics_after(run_id: str, step: int) -> int:
    """On resume: rows written after the checkpoint we go back to (global step `step`) would be duplicated by the
    replayed batches. Steps count across stages, so one comparison covers them all."""
    with connect() as con:
        return con.execute("DELETE FROM metrics WHERE run_id=? AND step>?", (run_id, step)).rowcount


def last_step(run_id: str) -> int | None:
    "The highest step of the run's metric rows (None before the first): where a resumed attempt's TensorBoard file starts."
    with connect() as con:
        return con.execute("SELECT MAX(step) FROM metrics WHERE run_id=?", (run_id,)).fetchone()[0]


def metrics(run_ids: str | list[str], since_id: int = 0) -> pd.DataFrame:
    "Metric rows of one or several runs, oldest first."
    ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
    if not ids:
        return pd.DataFrame(columns=["id", "run_id", *METRIC_COLS, "time"])
    marks = ",".join("?" * len(ids))
    with connect() as con:
        cur = con.execute(f"SELECT * FROM metrics WHERE run_id IN ({marks}) AND id>? ORDER BY id", (*ids, since_id))
        rows = cur.fetchall()
        cols = [d[0] for d in cur.description]
    return pd.DataFrame([tuple(r) for r in rows], columns=cols)


def add_event(run_id: str, kind: str, message: str = "", *, level: str = "info", data: dict | None = None) -> None:
    with connect() as con:
        con.execute("INSERT INTO events (run_id, time, level, kind, message, data) VALUES (?,?,?,?,?,?)",
                    (run_id, time.time(), level, kind, message, json.dumps(data) if data is not None else None))


def events(run_id: str, kind: str | None = None) -> list[dict]:
    q, args = "SELECT * FROM events WHERE run_id=?", [run_id]
    if kind:
        q, args = q + " AND kind=?", args + [kind]
    with connect() as con:
        out = [dict(r) for r in con.execute(q + " ORDER BY id", args)]
    for e in out:
        e["data"] = json.loads(e["data"]) if e["data"] else {}
    return out


def log_path(run_id: str) -> Path:
    return run_dir(run_id) / "worker.log"


def read_log(run_id: str, max_bytes: int = 64_000) -> str:
    "The end of the worker's log (stdout and stderr), for the page's log viewer."
    p = log_path(run_id)
    if not p.exists():
        return ""
    with open(p, "rb") as f:
        f.seek(max(0, p.stat().st_size - max_bytes))
        return f.read().decode("utf-8", errors="replace")


def delete_run(run_id: str) -> None:
    "Forget a finished run (its folder stays until removed by hand: checkpoints are never deleted behind a back)."
    with connect(immediate=True) as con:
        r = con.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
        if r and r["status"] in ACTIVE:
            raise ValueError(f"Run {run_id} is {r['status']}: cancel it first.")
        for t in ("metrics", "events"):
            con.execute(f"DELETE FROM {t} WHERE run_id=?", (run_id,))
        con.execute("DELETE FROM runs WHERE id=?", (run_id,))


def pid_file_alive(pid: int) -> bool:
    "Whether `pid` is a live (not zombie) process of ours: a reused pid of some other program does not count."
    if pid is None or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if not config.pid_alive(pid):
        return False
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # no /proc (macOS): os.kill said it exists
        return True
    try:
        return b"ulmfit_demo" in (proc / "cmdline").read_bytes()
    except OSError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False  # a zombie: dead, waiting for its parent to reap it
            return b"ulmfit_demo" in (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            return False
    return True
