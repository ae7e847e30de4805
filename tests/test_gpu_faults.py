"""GPU faults, shown on this CPU machine with real workers and real fits: CUDA running out of memory mid-fit (raised
as `torch.cuda.OutOfMemoryError` from inside the fit by the documented `ULMFIT_DEMO_FAULT_OOM_AT` hook) and a GPU
that is gone when a run starts or resumes."""
import json

from ulmfit_demo.runs import callback, checkpoint, launcher, store
from test_runs import batches_per_epoch, ckpt, tiny, wait_final


def test_cuda_oom_fails_the_run_naming_bs_and_seq_len_and_keeps_the_checkpoint(monkeypatch):
    cfg = tiny(lm_epochs=2)
    n = batches_per_epoch(cfg)
    monkeypatch.setenv(callback.FAULT_OOM_ENV, str(n + 2))  # in the second LM epoch
    rid = launcher.submit("lm", cfg, "demo", preset="tiny")
    r = wait_final(rid)
    assert r["status"] == store.FAILED
    err = r["error"]
    assert "ran out of memory" in err and "during lm" in err
    assert f"bs={cfg.bs}" in err and f"seq_len={cfg.seq_len}" in err and str(ckpt(rid).parent) in err
    assert "OutOfMemoryError" in store.read_log(rid)  # the real exception reached the worker from inside fit
    saved = checkpoint.load(ckpt(rid))
    assert saved["meta"]["step"] == n  # epoch 1's checkpoint, kept

    monkeypatch.delenv(callback.FAULT_OOM_ENV)
    launcher.resume(rid)
    r = wait_final(rid)
    assert r["status"] == store.SUCCEEDED, r["error"]
    assert [e for e in store.events(rid, "resumed") if "after epoch 1" in e["message"]]


def test_cuda_oom_in_the_classifier_names_its_sequence_length(monkeypatch):
    cfg = tiny(clas_phases=[{"freeze_to": -1, "epochs": 1, "lr": 2e-2}])
    n = batches_per_epoch(cfg) * (cfg.lm_frozen_epochs + cfg.lm_epochs)  # the LM's steps; global steps go on into
    monkeypatch.setenv(callback.FAULT_OOM_ENV, str(n + 2))                # the classifier
    rid = launcher.submit("ulmfit", cfg, "demo", preset="tiny")
    r = wait_final(rid)
    assert r["status"] == store.FAILED
    assert "during clas" in r["error"] and f"clas_seq_len={cfg.clas_seq_len}" in r["error"], r["error"]


def test_a_gpu_gone_since_the_run_was_queued_falls_back_to_the_cpu_with_a_notice():
    # A run queued on a machine whose GPU was visible then (validation accepted device 'cuda'): created in the
    # store as the Train page would have, then started here, where torch sees no GPU.
    rid = store.create_run("lm", tiny(device="cuda").to_dict(), preset="tiny", corpus="demo")
    launcher.start_next()
    r = wait_final(rid)
    assert r["status"] == store.SUCCEEDED, r["error"]
    notes = [e for e in store.events(rid, "device") if e["level"] == "warning"]
    assert len(notes) == 1 and "no GPU now" in notes[0]["message"] and "CPU" in notes[0]["message"]


def test_a_run_that_trained_on_a_gpu_resumes_on_the_cpu_with_a_notice(monkeypatch):
    cfg = tiny(lm_epochs=2)
    n = batches_per_epoch(cfg)
    monkeypatch.setenv(callback.FAULT_OOM_ENV, str(n + 2))
    rid = launcher.submit("lm", cfg, "demo", preset="tiny")
    assert wait_final(rid)["status"] == store.FAILED
    assert not [e for e in store.events(rid, "device") if e["level"] == "warning"]  # same device: nothing to say
    # The first attempt's record, as a GPU machine leaves it; the machine it resumes on has no GPU.
    state_file = store.run_dir(rid) / "state.json"
    state = json.loads(state_file.read_text())
    assert state["device_type"] == "cpu"
    state_file.write_text(json.dumps({**state, "device_type": "cuda"}))
    monkeypatch.delenv(callback.FAULT_OOM_ENV)
    launcher.resume(rid)
    r = wait_final(rid)
    assert r["status"] == store.SUCCEEDED, r["error"]
    notes = [e for e in store.events(rid, "device") if e["level"] == "warning"]
    assert len(notes) == 1 and "trained on the GPU before" in notes[0]["message"]
