"""Several training processes through accelerate's launcher (gloo on this CPU machine), with real processes: one run
in the store, one curve, and a process killed mid-run leaves the run INTERRUPTED, which Resume finishes."""
import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from ulmfit_demo.runs import launcher, store
from test_runs import REPO, batches_per_epoch, tiny, wait_final, wait_for

TWO = dict(procs=2, cpu_threads=1)


def workers_of(launcher_pid: int) -> list[psutil.Process]:
    "The worker processes accelerate's launcher started (its children running the worker module)."
    out = []
    for c in psutil.Process(launcher_pid).children(recursive=True):
        try:
            if "ulmfit_demo.runs.worker" in " ".join(c.cmdline()):
                out.append(c)
        except psutil.NoSuchProcess:
            pass
    return out


def test_a_run_of_two_processes_trains_once_reports_once_and_saves_one_model():
    rid = launcher.submit("ulmfit", tiny(**TWO), "demo", preset="tiny")
    r = store.get(rid)
    assert r["status"] == store.RUNNING
    launcher_cmd = " ".join(psutil.Process(r["pid"]).cmdline()) if r["pid"] else ""
    assert "accelerate" in launcher_cmd and "--num_processes 2" in launcher_cmd
    wait_for(lambda: len(workers_of(store.get(rid)["pid"])) == 2 or store.get(rid)["status"] != store.RUNNING,
             "two worker processes", run_id=rid)
    r = wait_final(rid, timeout=400)
    assert r["status"] == store.SUCCEEDED, r["error"]
    assert len(store.list_runs()) == 1
    log = store.read_log(rid)
    assert "lost another process" not in log and "stopped by the launcher" not in log
    assert "[rank 1]" in log  # the second process ran the job too (it prints its events, rank 0 stores them)
    m = store.metrics(rid)
    # One curve: rank 0 alone writes, so no (stage, step, split, name) appears twice.
    assert not m.duplicated(["stage", "step", "split", "name"]).any()
    assert set(m["stage"]) == {"lm", "clas"}
    assert "2 processes" in (store.get(rid)["device"] or "")
    # Each process reads half of every epoch: two LM epochs (warm-up + unfrozen) of ceil(n / 2) steps each.
    n = batches_per_epoch(tiny(**TWO))
    assert json.loads((store.run_dir(rid) / "state.json").read_text())["steps"]["lm"] == 2 * -(-n // 2)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("victim", ["worker", "launcher"])
def test_killing_one_of_two_processes_interrupts_the_run_and_resume_finishes_it(monkeypatch, victim):
    from ulmfit_demo.runs import callback

    monkeypatch.setenv(callback.DELAY_ENV, "0.3")  # slow batches: time to kill mid-epoch
    rid = launcher.submit("lm", tiny(lm_epochs=3, **TWO), "demo", preset="tiny")
    ck = store.run_dir(rid) / "checkpoints" / "lm.pth"
    wait_for(lambda: ck.exists(), "the first checkpoint", run_id=rid)
    lpid = store.get(rid)["pid"]
    workers = workers_of(lpid)
    assert len(workers) == 2
    if victim == "worker":
        workers[-1].send_signal(signal.SIGKILL)  # accelerate's launcher ends the other one and exits
    else:
        os.kill(lpid, signal.SIGKILL)  # the launcher alone: its workers notice and stop
    wait_for(lambda: gone(lpid) and all(gone(w.pid) for w in workers), "every process of the run to end",
             run_id=rid)
    launcher.startup_check()
    r = store.get(rid)
    assert r["status"] == store.INTERRUPTED, (r["status"], r["error"])
    monkeypatch.delenv(callback.DELAY_ENV)
    launcher.resume(rid)
    r = wait_final(rid, timeout=400)
    assert r["status"] == store.SUCCEEDED, r["error"]
    assert len(store.list_runs()) == 1
    assert [e for e in store.events(rid, "resumed") if "from its checkpoint" in e["message"]]


def test_cli_procs_two_is_one_run_that_succeeds(home):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cfg = {k: v for k, v in tiny().to_dict().items() if k in ("max_docs", "emb_sz", "n_hid", "n_layers", "bs",
                                                              "seq_len", "clas_seq_len", "pretrained",
                                                              "tokenizer", "min_freq", "cpu_threads")}
    sets = [a for k, v in cfg.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    p = subprocess.run([sys.executable, "-m", "ulmfit_demo", "train", "--preset", "quick", "--dataset", "demo",
                        "--set", "lm_epochs=1", *sets, "--procs", "2", "--json"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    assert out["status"] == "SUCCEEDED" and out["model_id"], out
    runs = store.list_runs()
    assert [r["id"] for r in runs] == [out["run_id"]]
    assert runs[0]["config"]["procs"] == 2


def test_procs_is_refused_for_the_lr_finder_with_a_message():
    import pytest

    from ulmfit_demo.train.presets import ConfigError

    with pytest.raises(ConfigError, match="LR finder runs in one process"):
        launcher.submit("lr_find", tiny(**TWO), "demo", preset="tiny")
    assert store.list_runs() == []
