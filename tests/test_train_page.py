"""The Train page under AppTest: the form refuses bad settings with a message, starts a real background run, and the
live view draws that run from the store; the LR finder's suggestion goes into the form; an interrupted run offers
Resume; a run without pretrained weights says so loudly."""
import subprocess
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

from ulmfit_demo.runs import store
from ulmfit_demo.train import presets
from test_runs import TINY, ckpt, tiny, wait_final
from test_training import run_in_process

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "train.py")


def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    return at


def markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def set_knob(at, name, value):
    w = next(w for kind in (at.number_input, at.selectbox, at.text_input, at.checkbox) for w in kind
             if w.key == f"train_k_{name}")
    w.set_value(value)


def test_page_renders_with_no_runs_and_shows_the_presets():
    at = page()
    assert at.radio(key="train_preset").options == ["ULMFiT", "Quick", "Custom"]
    at.radio(key="train_preset").set_value("ULMFiT").run()
    assert any("seeds' schedule exactly" in c.value for c in at.caption)
    assert any("No runs yet" in i.value for i in at.info)
    assert at.button(key="train_start")


def test_bad_custom_settings_are_refused_with_a_message():
    at = page()
    at.radio(key="train_preset").set_value("Custom").run()
    set_knob(at, "lm_lr", 0.0)
    at.button(key="train_start").click().run()
    assert not at.exception
    assert any("must be above 0" in e.value for e in at.error)
    assert store.list_runs() == []


def test_start_a_tiny_run_from_the_form_and_watch_it_in_the_live_view():
    at = page()
    at.radio(key="train_preset").set_value("Custom").run()
    at.selectbox(key="train_base").set_value("Quick").run()
    for k in ("emb_sz", "n_hid", "n_layers", "bs", "seq_len", "clas_seq_len", "min_freq", "lm_epochs", "cpu_threads",
              "log_every", "sample_words", "max_docs"):
        set_knob(at, k, TINY[k])
    set_knob(at, "pretrained", "none")
    at.run()
    at.button(key="train_start").click().run()
    assert not at.exception, at.exception
    runs = store.list_runs()
    assert len(runs) == 1 and runs[0]["preset"] == "Custom" and runs[0]["config"]["emb_sz"] == TINY["emb_sz"]
    r = wait_final(runs[0]["id"])
    assert r["status"] == store.SUCCEEDED, r["error"]

    at.run()
    assert not at.exception
    text = markdown(at)
    assert "SUCCEEDED" in text and f"step **{r['step']}** of {r['total_steps']}" in text
    assert len(at.get("plotly_chart")) >= 3  # loss with bands, LR per group, accuracy/perplexity
    assert "epoch 1" in text  # the LM samples timeline
    epochs = next(d.value for d in at.dataframe if "stage" in d.value.columns)
    assert list(epochs.columns[:4]) == ["stage", "epoch", "train_loss", "valid_loss"]
    assert set(epochs["stage"]) == {"LM fine-tuning", "Classifier"}
    assert not [b for b in at.button if b.key and b.key.startswith("train_cancel")]  # nothing left to cancel
    assert any("from scratch" in w.value for w in at.warning)


def test_lr_finder_suggestion_goes_into_the_form():
    r = run_in_process("lr_find", tiny(lr_find_iters=30))
    assert r["status"] == store.SUCCEEDED, r["error"]
    at = page()
    use = next(b for b in at.button if b.key == f"train_use_lr_{r['id']}")
    use.click().run()
    assert not at.exception
    assert at.session_state["train_preset"] == "Custom"
    assert at.number_input(key="train_k_lm_frozen_lr").value == r["summary"]["lr_suggestion"]
    assert any("put into the Custom form" in s.value for s in at.success)


def test_an_interrupted_run_shows_why_and_resumes_from_the_page():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    rid = store.create_run("lm", tiny().to_dict(), preset="tiny", corpus="demo")
    assert store.claim(rid, dead.pid)
    ckpt(rid).parent.mkdir(parents=True)
    at = page()  # the page's start-up check finds the worker gone
    assert store.get(rid)["status"] == store.INTERRUPTED
    assert any("stopped without finishing" in w.value for w in at.warning)
    at.button(key=f"train_resume_{rid}").click().run()
    assert not at.exception
    assert store.get(rid)["status"] in (store.RUNNING, store.SUCCEEDED)
    assert wait_final(rid)["status"] == store.SUCCEEDED


def test_missing_pretrained_weights_are_announced_loudly():
    # The ULMFiT architecture (WT103's shape) on a handful of short texts: offline, no WT103 in the mirror.
    cfg = presets.ULMFIT.with_(max_docs=16, bs=4, seq_len=8, clas_seq_len=8, lm_frozen_epochs=0, lm_epochs=1,
                               cpu_threads=1, sample_words=2, pretrained="wt103")
    r = run_in_process("lm", cfg)
    assert r["status"] == store.SUCCEEDED, r["error"]
    at = page()
    loud = [e.value for e in at.error if "from scratch" in e.value]
    assert loud and "ULMFIT_DEMO_MIRROR" in loud[0] and "wt103-fwd.tgz" in loud[0]


def test_custom_exposes_every_knob():
    from dataclasses import fields

    at = page()
    at.radio(key="train_preset").set_value("Custom").run()
    keys = {w.key for kind in (at.number_input, at.selectbox, at.text_input, at.checkbox) for w in kind}
    missing = {f.name for f in fields(presets.Config)} - {k[len("train_k_"):] for k in keys if k.startswith("train_k_")}
    assert missing == {"clas_phases"}  # the phases are a table (data editor), checked below
    assert any(set(d.value.columns) == {"freeze_to", "epochs", "lr"} for d in at.dataframe)
