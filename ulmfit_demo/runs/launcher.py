"""Starting, cancelling and resuming runs. One job at a time: a start while another run is RUNNING leaves the new run
QUEUED; when a worker ends it starts the next queued run, and `startup_check` (called by the page and the CLI)
starts one too if none is running.

A worker is `python -m ulmfit_demo.runs.worker <run_id>`, a separate OS process in its own session and process
group (`start_new_session=True`): it outlives the Streamlit server, a closed tab and a Ctrl-C in the terminal that
started the server. Its stdout/stderr go to `runs/<id>/worker.log`.
"""
import os
import signal
import subprocess
import sys
import threading
import time

from ulmfit_demo import config, system
from ulmfit_demo.data import corpora
from ulmfit_demo.runs import distrib, store
from ulmfit_demo.train import presets
from ulmfit_demo.train.presets import Config, ConfigError

# A cancel flag is checked about once a second inside training; a worker that has not stopped this long after the
# flag (stuck in I/O, say) gets SIGTERM for its process group, and SIGKILL after three times as long.
CANCEL_GRACE_S = 20.0


def check_source(cfg: Config, kind: str) -> None:
    "A `pretrained='run:<id>'` must name a run that left a language model of the same shape and tokenizer."
    p = str(cfg.pretrained)
    if not p.startswith("run:") or kind in ("baseline", "ensemble"):  # these start from no weights
        return
    if kind == "curve":  # its LM run is queued just ahead of it: the point checks it when it runs
        return
    src = store.get(p[4:]) if all(c.isalnum() or c in "-_" for c in p[4:]) and p[4:] else None
    if src is None:
        raise ConfigError(f"pretrained={p!r}: there is no run {p[4:]!r}. Pick one from the runs list.")
    if not (config.sub("runs") / src["id"] / "lm_model.pth").exists():
        raise ConfigError(f"Run {src['id']} has no finished language model to start from (status {src['status']}). "
                          f"Pick a run whose LM or pretraining stage succeeded.")
    scfg = src["config"]
    diff = [f"{k} {scfg.get(k)} (this run: {getattr(cfg, k)})" for k in ("emb_sz", "n_hid", "n_layers", "tokenizer")
            if scfg.get(k) != getattr(cfg, k)]
    if diff:
        raise ConfigError(f"To start from run {src['id']}, use its settings: {', '.join(diff)}.")


# Run kinds whose run leaves a classifier (or a baseline) an ensemble can average.
MEMBER_KINDS = ("ulmfit", "clas", "baseline")


def check_members(cfg: Config, corpus_name: str, finished: bool = False) -> list[dict]:
    """The member runs of an ensemble config, checked against the store; raises `ConfigError` saying which run and
    what to do. They must share corpus, `max_docs` and `seed`: the ensemble is measured on the validation rows they
    all validated on (see `ensemble_stage`). At submit time a member may still be queued or running (it is ahead in
    the queue); `finished`: when the ensemble runs, each must have SUCCEEDED with a model."""
    runs = []
    for rid in presets.member_ids(cfg):
        r = store.get(rid)
        if r is None:
            raise ConfigError(f"members: there is no run {rid!r}. Pick finished ULMFiT, classifier or baseline runs "
                              f"(the runs list shows them).")
        if r["kind"] not in MEMBER_KINDS:
            raise ConfigError(f"members: run {rid} is a {r['kind']} run, which leaves no classifier. Pick ULMFiT, "
                              f"classifier or baseline runs.")
        if r["corpus"] != corpus_name:
            raise ConfigError(f"members: run {rid} trained on {r['corpus']!r}, not {corpus_name!r}: an ensemble run is "
                              f"measured on the validation rows its members share. Pick runs of {corpus_name!r}.")
        diff = [f"{k} {r['config'].get(k)!r} (this run: {getattr(cfg, k)!r})" for k in ("max_docs", "seed")
                if r["config"].get(k) != getattr(cfg, k)]
        if diff:
            raise ConfigError(f"members: run {rid} validated on other rows ({', '.join(diff)}): set max_docs and seed "
                              f"to its values, or pick runs trained with these.")
        if finished and (r["status"] != store.SUCCEEDED or not r.get("model_id")):
            why = f": {r['error']}" if r.get("error") else ""
            raise ConfigError(f"Member run {rid} ({r['kind']}{', backwards' if r['config'].get('backwards') else ''}) "
                              f"is {r['status']}{why}. Resume it (`python -m ulmfit_demo runs resume {rid}`), then "
                              f"resume this run.")
        if not finished and r["status"] not in (store.SUCCEEDED, *store.ACTIVE):
            raise ConfigError(f"members: run {rid} ended {r['status']}: resume it first, or pick another run.")
        runs.append(r)
    return runs


def validate(kind: str, cfg: Config, corpus) -> None:
    "Everything checked before a run is created: settings, corpus, starting weights, members. Raises `ConfigError`."
    presets.validate(cfg, kind, corpus, cuda=system.device_info()["device"] == "cuda")
    check_source(cfg, kind)
    if kind == "ensemble":
        check_members(cfg, corpus.name)
    if cfg.procs > 1:
        why = distrib.available()
        if why:
            raise ConfigError(why)


def submit(kind: str, cfg: Config, corpus_name: str, preset: str = "Custom", corpus=None) -> str:
    """Validate, create the run (QUEUED) and start it if nothing else runs. Returns the run id. Raises
    `ConfigError` / `corpora.CorpusError` with a message before anything is stored."""
    corpus = corpus if corpus is not None else corpora.load(corpus_name)
    validate(kind, cfg, corpus)
    run_id = store.create_run(kind, cfg.to_dict(), preset=preset, corpus=corpus_name)
    start_next()
    return run_id


def spawn(run_id: str) -> int | None:
    "Start the worker process for a run already claimed (RUNNING, no pid)."
    log = open(store.log_path(run_id), "ab")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(config.REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONUNBUFFERED"] = "1"
    # OpenMP threads that sleep when they wait instead of spinning: measured here, a 2-thread run beside another
    # busy process kept ~55% of its idle speed with it, and fell far below one thread without it.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    procs = int((store.get(run_id) or {}).get("config", {}).get("procs", 1) or 1)
    if procs > 1:
        # accelerate's launcher starts the `procs` workers and is the run's process: when one worker dies it ends
        # the others and exits, and the run is INTERRUPTED like any worker that died.
        cmd = distrib.launch_command(run_id, procs)
    else:
        cmd = [sys.executable, "-m", "ulmfit_demo.runs.worker", run_id]
    try:
        p = subprocess.Popen(cmd, cwd=config.REPO,
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, env=env)
    except OSError as e:
        store.finish(run_id, store.FAILED, error=f"Could not start the worker process: {e}")
        return None
    finally:
        log.close()
    store.set_pid(run_id, p.pid)
    # Reap the child when it exits, so it does not linger as a zombie of this (long-lived) process.
    threading.Thread(target=p.wait, daemon=True, name=f"reap-{run_id}").start()
    return p.pid


def start_next() -> str | None:
    "If no run is RUNNING, start the oldest QUEUED background run. Returns its id, or None."
    run_id = store.claim_next()
    if run_id is not None:
        spawn(run_id)
    return run_id


def _signal_run(pid: int, sig) -> None:
    try:
        # A background worker leads its own process group (its DataLoader workers, if any, are in it); a CLI
        # foreground run is in the terminal's group, so only the process itself is signalled.
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def cancel(run_id: str) -> str | None:
    "Ask a run to stop: QUEUED -> CANCELLED now; RUNNING -> the flag its worker checks. Returns the status after."
    return store.request_cancel(run_id)


def enforce_cancels(grace_s: float = CANCEL_GRACE_S) -> None:
    "The fallback for a worker that ignores its flag: SIGTERM to its group, then SIGKILL."
    now = time.time()
    for r in store.running():
        asked = r.get("cancel_requested")
        if not asked or not r["pid"] or not store.pid_file_alive(r["pid"]):
            continue
        if now - asked > 3 * grace_s:
            _signal_run(r["pid"], signal.SIGKILL)
        elif now - asked > grace_s:
            _signal_run(r["pid"], signal.SIGTERM)


def resume(run_id: str) -> str:
    "Queue an INTERRUPTED, CANCELLED or FAILED run again; it continues from its last complete checkpoint."
    r = store.get(run_id)
    if r is None:
        raise ConfigError(f"There is no run {run_id!r}.")
    if not store.requeue(run_id):
        raise ConfigError(f"Run {run_id} is {r['status']}: only an interrupted, cancelled or failed run can be "
                          f"resumed.")
    store.add_event(run_id, "resume", "Resume requested; the run continues from its last complete checkpoint.")
    start_next()
    return store.get(run_id)["status"]


def startup_check() -> list[str]:
    """Mark runs whose process is gone INTERRUPTED, push stuck cancels, and start a queued run if none is running.
    Cheap (a few small queries): the page calls it on every refresh. Returns the ids marked INTERRUPTED."""
    gone = store.mark_gone(store.pid_file_alive)
    enforce_cancels()
    start_next()
    return gone
