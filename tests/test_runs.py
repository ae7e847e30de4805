"""Background runs with real worker processes, a real SQLite file and real fastai on tiny models: success with a
saved model, the queue, SIGKILL + resume, cancel, disk full, NaN loss, concurrent writers, and refusals before any
work. Test hooks are the documented env vars of `runs.checkpoint` and `runs.callback`."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ulmfit_demo.data import corpora as datasets, uploads
from ulmfit_demo.runs import launcher, store, views
from ulmfit_demo.train import presets
from ulmfit_demo.train.presets import ConfigError

REPO = Path(__file__).resolve().parent.parent

# Tiny on purpose: 2 shared cores. Two LM phases and three classifier phases still exercise freezing, gradual
# unfreezing and discriminative LRs.
TINY = dict(max_docs=80, tokenizer="word", emb_sz=16, n_hid=32, n_layers=1, bs=8, seq_len=16, clas_seq_len=16, min_freq=1,
            max_vocab=2000, pretrained="none", lm_frozen_epochs=1, lm_frozen_lr=1e-2, lm_epochs=1, lm_lr=5e-3,
            clas_phases=[{"freeze_to": -1, "epochs": 1, "lr": 2e-2}, {"freeze_to": -2, "epochs": 1, "lr": 1e-2},
                         {"freeze_to": 0, "epochs": 1, "lr": 5e-3}],
            cpu_threads=1, log_every=2, sample_words=5, lr_find_iters=20)


def tiny(**kw) -> presets.Config:
    return presets.QUICK.with_(**{**TINY, **kw})


def wait_for(pred, what: str, timeout: float = 240, run_id: str | None = None):
    "Poll until `pred()` is truthy; a guard against hangs, not a speed assertion."
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    log = store.read_log(run_id)[-3000:] if run_id else ""
    pytest.fail(f"timed out waiting for {what}; run: {store.get(run_id) if run_id else ''}\nlog:\n{log}")


def wait_final(run_id: str, timeout: float = 240) -> dict:
    wait_for(lambda: store.get(run_id)["status"] not in store.ACTIVE, f"run {run_id} to end", timeout, run_id)
    return store.get(run_id)


def kill_and_check_interrupted(rid: str) -> None:
    "SIGKILL a run's worker group; once it is gone, the start-up check (and only it) marks the run INTERRUPTED."
    pid = store.get(rid)["pid"]
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not store.pid_file_alive(pid), "the killed worker to be gone")
    assert store.get(rid)["status"] == store.RUNNING  # nobody has looked yet
    assert launcher.startup_check() == [rid]
    r = store.get(rid)
    assert r["status"] == store.INTERRUPTED and "Resume" in r["error"]


def ckpt(run_id: str, stage: str = "lm") -> Path:
    return store.run_dir(run_id) / "checkpoints" / f"{stage}.pth"


def batches_per_epoch(cfg) -> int:
    "The LM's training batches per epoch for `cfg` on the demo corpus, built the way the worker builds them."
    from ulmfit_demo.train import stages as training

    docs = presets.sample_docs(datasets.load("demo").df, cfg.max_docs, cfg.seed)
    docs = docs[docs["text"].str.strip() != ""].reset_index(drop=True)
    docs, _ = training.tokenize_docs(docs, cfg, Path("."))
    trn, val = training.lm_split(len(docs), cfg.lm_valid_pct, cfg.seed)
    return len(training.lm_dls(docs, (trn, val), training.build_vocab(docs["tokens"].iloc[trn], cfg), cfg, "cpu").train)


# ---------------------------------------------------------------------------------------------------- success, queue

def test_worker_runs_ulmfit_to_a_saved_model_and_second_start_waits():
    from ulmfit_demo import models

    a = launcher.submit("ulmfit", tiny(), "demo", preset="tiny")
    b = launcher.submit("lm", tiny(lm_epochs=2), "demo", preset="tiny")
    assert store.get(a)["status"] == store.RUNNING
    assert store.get(b)["status"] == store.QUEUED  # one job at a time
    ra = wait_final(a)
    rb = wait_final(b)
    assert ra["status"] == store.SUCCEEDED, ra["error"]
    assert rb["status"] == store.SUCCEEDED, rb["error"]
    assert rb["started"] >= ra["finished"] - 1e-3  # B began only after A ended

    m = store.metrics(a)
    # Metric rows for every stage: batch losses, per-group LRs, and per-epoch rows.
    for stage in ("lm", "clas"):
        s = m[m["stage"] == stage]
        assert {("batch", "loss"), ("train", "loss"), ("valid", "loss"), ("valid", "accuracy"),
                ("epoch", "time"), ("epoch", "tokens_per_s")} <= set(zip(s["split"], s["name"]))
        assert s[s["name"].str.startswith("lr/")]["name"].nunique() >= 2
    assert (m[(m["stage"] == "lm") & (m["name"] == "perplexity")]["value"] > 1).all()
    # Discriminative LRs in the classifier's last phase: lower groups get lower rates.
    last = m[(m["stage"] == "clas") & m["name"].str.startswith("lr/")]
    last = last[last["step"] == last["step"].max()].sort_values("name")["value"].tolist()
    assert last == sorted(last) and last[0] < last[-1]
    table = views.epoch_table(m)
    assert list(table["stage"]).count("Classifier") == 3 and list(table["stage"]).count("LM fine-tuning") == 2

    saved = {x["id"]: x for x in models.list_models()}
    assert ra["model_id"] in saved and saved[ra["model_id"]]["kind"] == "classifier"
    assert saved[ra["model_id"]]["run_id"] == a
    assert ra["summary"]["models"]["lm"] in saved
    assert 0 <= ra["summary"]["metrics"]["accuracy"] <= 1
    ev = store.events(a)
    assert views.scratch_warning(ev)["reason"] == "choice"
    assert len(views.samples(ev)) == 2  # one LM sample per LM epoch
    assert [b["stage"] for b in views.phase_bands(ev, int(m["step"].max()))] == ["lm", "lm", "clas", "clas", "clas"]
    assert "ended SUCCEEDED" in store.read_log(a)
    loss, acc = views.overlay_figures([ra, rb], store.metrics([a, b]))  # the runs list's overlay
    assert len(loss.data) == 2 and all(len(t.x) > 3 for t in loss.data)
    assert {t.name.split(" ")[0] for t in acc.data} == {a, b}


def test_pages_side_never_imports_fastai_and_worker_never_imports_streamlit():
    code = ("import sys; import ulmfit_demo.runs.launcher, ulmfit_demo.runs.views, ulmfit_demo.train.presets, "
            "ulmfit_demo.train.pretrained; assert 'fastai' not in sys.modules and 'torch' not in sys.modules; "
            "import ulmfit_demo.runs.worker, ulmfit_demo.runs.callback, ulmfit_demo.train.stages, "
            "ulmfit_demo.cli.train; "
            "assert 'streamlit' not in sys.modules; print('ok')")
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert p.stdout.strip() == "ok", p.stderr


# ---------------------------------------------------------------------------------------------------- faults

def test_sigkill_mid_epoch_is_interrupted_then_resumes_to_success(monkeypatch):
    monkeypatch.setenv("ULMFIT_DEMO_TEST_BATCH_DELAY", "0.05")
    rid = launcher.submit("lm", tiny(lm_epochs=3), "demo", preset="tiny")

    def past_first_checkpoint():
        m = store.metrics(rid)
        ends = m[(m["split"] == "valid") & (m["name"] == "loss")]["step"]
        return ckpt(rid).exists() and len(ends) and (m[m["split"] == "batch"]["step"] > ends.max() + 2).any()

    wait_for(past_first_checkpoint, "the first checkpoint and some batches after it", run_id=rid)
    kill_and_check_interrupted(rid)

    assert launcher.resume(rid) == store.RUNNING
    r = wait_final(rid)
    assert r["status"] == store.SUCCEEDED, r["error"]
    m = store.metrics(rid)
    epochs = m[(m["split"] == "valid") & (m["name"] == "loss")]
    assert list(epochs["epoch"]) == [0, 1, 2, 3]  # each epoch once: replayed batches replaced their old rows
    steps = m[(m["split"] == "batch") & (m["name"] == "loss")]["step"]
    assert steps.is_unique and steps.is_monotonic_increasing
    assert any(e["kind"] == "resumed" and "checkpoint" in e["message"] for e in store.events(rid))


def test_cancel_stops_the_run_and_keeps_checkpoints(monkeypatch):
    from ulmfit_demo.runs import checkpoint

    monkeypatch.setenv("ULMFIT_DEMO_TEST_BATCH_DELAY", "0.05")
    rid = launcher.submit("lm", tiny(lm_epochs=4), "demo", preset="tiny")
    queued = launcher.submit("lm", tiny(), "demo", preset="tiny")
    assert launcher.cancel(queued) == store.CANCELLED  # a queued run is cancelled at once
    wait_for(lambda: ckpt(rid).exists(), "a checkpoint", run_id=rid)
    assert launcher.cancel(rid) == store.RUNNING  # the flag is set; the worker stops itself
    r = wait_final(rid, timeout=60)
    assert r["status"] == store.CANCELLED and "kept" in r["error"]
    saved = checkpoint.load(ckpt(rid))
    assert saved["meta"]["stage"] == "lm" and saved["meta"]["epochs_done"] >= 1
    wait_for(lambda: not store.pid_file_alive(r["pid"]), "the cancelled worker to exit")
    assert store.get(queued)["status"] == store.CANCELLED  # and it never started


def test_disk_full_while_checkpointing_fails_with_reason_and_keeps_previous_checkpoint(monkeypatch):
    import torch

    from ulmfit_demo.runs import checkpoint

    monkeypatch.setenv(checkpoint.FAULT_ENOSPC_ENV, "2")  # the second checkpoint write finds the disk full
    rid = launcher.submit("lm", tiny(lm_epochs=2), "demo", preset="tiny")
    r = wait_final(rid)
    assert r["status"] == store.FAILED
    assert "Disk full" in r["error"] and "checkpoint is intact" in r["error"]
    saved = checkpoint.load(ckpt(rid))
    assert saved["meta"]["stage_epoch"] == 0  # epoch 1's checkpoint, whole
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())
    assert not list(ckpt(rid).parent.glob("*.tmp"))  # the torn temp file was removed

    monkeypatch.delenv(checkpoint.FAULT_ENOSPC_ENV)  # space freed: resume finishes the run
    launcher.resume(rid)
    r = wait_final(rid)
    assert r["status"] == store.SUCCEEDED, r["error"]


def test_nan_loss_fails_the_run_and_keeps_the_last_good_checkpoint(monkeypatch):
    import torch

    from ulmfit_demo.runs import callback, checkpoint

    cfg = tiny(lm_epochs=2)
    n = batches_per_epoch(cfg)
    monkeypatch.setenv(callback.FAULT_NAN_ENV, str(n + 3))  # in the second epoch
    rid = launcher.submit("lm", cfg, "demo", preset="tiny")
    r = wait_final(rid)
    assert r["status"] == store.FAILED
    assert "loss became nan" in r["error"].lower() and f"step {n + 3}" in r["error"]
    saved = checkpoint.load(ckpt(rid))
    assert saved["meta"]["step"] == n  # the end of epoch 1, untouched by the NaN
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())


# ---------------------------------------------------------------------------------------------------- store

WRITER = """
import sys
from ulmfit_demo.runs import store
rid, tag = sys.argv[1], sys.argv[2]
for i in range(150):
    store.add_metrics(rid, [("lm", 0, 0, i, tag, f"m{j}", float(i)) for j in range(10)])
    store.heartbeat(rid, step=i)
    if i % 10 == 0:
        store.add_event(rid, "note", tag)
    # a run submitted while the other process writes: its read-then-insert must wait for the lock, not fail
    store.create_run("lm", {}, preset=tag, corpus="demo")
print("done")
"""


def test_two_processes_writing_the_store_at_once_lose_nothing():
    rid = store.create_run("lm", tiny().to_dict(), corpus="demo")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, rid, tag], env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "locked" not in err and out.strip() == "done"
    m = store.metrics(rid)
    assert len(m) == 2 * 150 * 10
    assert m.groupby("split").size().to_dict() == {"a": 1500, "b": 1500}
    assert len(store.events(rid, "note")) == 30
    assert sorted(r["preset"] for r in store.list_runs() if r["id"] != rid) == ["a"] * 150 + ["b"] * 150


def test_startup_check_marks_a_dead_pid_interrupted_and_starts_the_queue():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    rid = store.create_run("lm", tiny().to_dict(), corpus="demo")
    assert store.claim(rid, dead.pid)
    queued = store.create_run("lm", tiny().to_dict(), corpus="demo")
    assert not store.pid_file_alive(dead.pid)
    assert launcher.startup_check() == [rid]
    assert store.get(rid)["status"] == store.INTERRUPTED
    assert store.get(queued)["status"] == store.RUNNING  # nothing was running any more: the queue moved
    launcher.cancel(queued)
    assert wait_final(queued)["status"] == store.CANCELLED


# ---------------------------------------------------------------------------------------------------- refusals

def _one_label_corpus():
    rows = "text,label\n" + "".join(f"great movie number {i} with a plot,pos\n" for i in range(30))
    return uploads.import_csv("onelabel", rows.encode(), "text", "label")


@pytest.mark.parametrize("kind, overrides, corpus, message", [
    ("ulmfit", {}, "onelabel", "only one label"),
    ("lm", {"lm_lr": 0}, "demo", "must be above 0"),
    ("ulmfit", {"clas_phases": [{"freeze_to": -1, "epochs": 1, "lr": -1e-3}]}, "demo", "must be above 0"),
    ("lm", {"lm_frozen_epochs": 0, "lm_epochs": 0}, "demo", "0 epochs"),
    ("ulmfit", {"clas_phases": [{"freeze_to": -1, "epochs": 0, "lr": 1e-3}]}, "demo", "0 epochs"),
    ("ulmfit", {"bs": 5000}, "demo", "larger than the"),
    ("ulmfit", {"clas_crops": 1.5}, "demo", "clas_crops must be at most 1"),
    ("lm", {"bs": 64, "seq_len": 500, "max_docs": 10}, "demo", "training tokens"),
    ("lm", {"pretrained": "wt103"}, "demo", "WikiText-103 weights fit"),
    ("lm", {"pretrained": "run:nope"}, "demo", "no run"),
    ("lm", {"precision": "fp16", "device": "cpu"}, "demo", "needs a GPU"),
])
def test_bad_settings_are_refused_with_a_message_before_any_work(kind, overrides, corpus, message):
    if corpus == "onelabel":
        _one_label_corpus()
    with pytest.raises(ConfigError) as e:
        launcher.submit(kind, tiny(**overrides), corpus, preset="tiny")
    assert message in str(e.value)
    assert store.list_runs() == []  # nothing created, nothing started


def test_unknown_knob_and_resume_of_a_finished_run_are_refused():
    with pytest.raises(ConfigError, match="Unknown setting"):
        presets.Config.from_dict({"bs": 8, "learning_rate": 1})
    rid = store.create_run("lm", tiny().to_dict(), corpus="demo")
    with pytest.raises(ConfigError, match="only an interrupted, cancelled or failed run"):
        launcher.resume(rid)


# ---------------------------------------------------------------------------------------------------- CLI

def _cli(*args, timeout=240):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "ulmfit_demo", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_cli_train_json_then_runs_commands():
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    p = _cli("train", "--preset", "quick", "--dataset", "demo", *sets, "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert set(out) >= {"run_id", "status", "model_id", "metrics"}
    assert out["status"] == "SUCCEEDED" and out["model_id"].startswith("clas")
    assert 0 <= out["metrics"]["accuracy"] <= 1 and out["metrics"]["lm_perplexity"] > 1
    assert "step" in p.stderr and len(p.stdout.strip().splitlines()) == 1  # progress and tables go to stderr

    runs = json.loads(_cli("runs", "list", "--json").stdout)
    assert [r["run_id"] for r in runs] == [out["run_id"]] and runs[0]["preset"] == "Quick*"
    shown = json.loads(_cli("runs", "show", out["run_id"], "--json").stdout)
    assert shown["status"] == "SUCCEEDED" and len(shown["epochs"]) == 5 and shown["device"]
    p = _cli("runs", "cancel", out["run_id"])
    assert p.returncode == 1 and "nothing to cancel" in p.stderr
    p = _cli("runs", "resume", out["run_id"])
    assert p.returncode == 1 and "only an interrupted" in p.stderr
    p = _cli("train", "--dataset", "demo", "--set", "lm_lr=-1", "--json")
    assert p.returncode == 1 and "must be above 0" in p.stderr and p.stdout == ""
    p = _cli("train", "--dataset", "demo", "--set", "lm_lr", "--json")
    assert p.returncode == 1 and "--set 'lm_lr': write KEY=VALUE" in p.stderr and p.stdout == ""


def test_the_runs_list_tells_a_backward_run_from_a_forward_one():
    fwd = store.create_run("ulmfit", tiny().to_dict(), preset="tiny", corpus="demo")
    bwd = store.create_run("ulmfit", tiny(backwards=True).to_dict(), preset="tiny", corpus="demo")
    df = views.runs_frame(store.list_runs()).set_index("run")
    assert df.loc[fwd, "kind"] == "ulmfit" and df.loc[bwd, "kind"] == "ulmfit · backwards"
