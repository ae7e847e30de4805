"""The recipe in one command: `recipe --dataset imdb_sample --tiny --json` as a real subprocess queues forward and
backward ULMFiT runs, the baseline and their ensemble in the real background queue (real workers, fastai, SQLite), and
the Train page shows the same table. Refusals store nothing; an ensemble run whose member failed says which one."""
import json
import os
import subprocess
import sys

import pytest

from support import REPO, run_page
from ulmfit_demo.data import corpora
from ulmfit_demo.models import registry
from ulmfit_demo.runs import launcher, recipe, store, worker
from ulmfit_demo.train import precision, presets
from ulmfit_demo.train.presets import ConfigError

pytestmark = pytest.mark.slow


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "ulmfit_demo", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(REPO)))


def test_tiny_recipe_end_to_end_and_the_train_page_shows_its_table():
    p = cli("recipe", "--dataset", "imdb_sample", "--tiny", "--json")
    assert p.returncode == 0, p.stderr[-4000:]
    out = json.loads(p.stdout)
    assert out["status"] == store.SUCCEEDED
    roles = {"forward", "backward", "ensemble", "baseline"}
    assert set(out["runs"]) == set(out["models"]) == set(out["accuracies"]) == roles
    for role, acc in out["accuracies"].items():
        assert isinstance(acc, float) and 0 <= acc <= 1, (role, acc)
    assert out["estimates"] == {} and "Measuring" not in p.stderr  # --tiny: no duration said, none invented

    runs = {role: store.get(rid) for role, rid in out["runs"].items()}
    assert all(r["status"] == store.SUCCEEDED for r in runs.values())
    fwd, bwd = runs["forward"], runs["backward"]
    assert (fwd["kind"], bwd["kind"], runs["baseline"]["kind"], runs["ensemble"]["kind"]) == (
        "ulmfit", "ulmfit", "baseline", "ensemble")
    assert fwd["config"]["backwards"] is False and bwd["config"]["backwards"] is True
    # Same corpus sample and seed: the same split. The tiny settings are overrides of the preset, nothing else.
    for k in ("max_docs", "seed", "emb_sz", "clas_phases"):
        assert fwd["config"][k] == bwd["config"][k] == runs["ensemble"]["config"][k]
    assert fwd["config"]["max_docs"] == recipe.TINY["max_docs"]
    # The queue ran them one after another, the ensemble last.
    order = [runs[r] for r in ("forward", "backward", "baseline", "ensemble")]
    assert all(a["finished"] <= b["started"] + 1e-3 for a, b in zip(order, order[1:]))

    # The ensemble is the forward and backward classifiers, measured on the rows the runs validated on.
    meta = registry.read_meta(out["models"]["ensemble"])
    assert [m["id"] for m in meta["members"]] == [out["models"]["forward"], out["models"]["backward"]]
    for role in ("forward", "backward"):
        m = registry.read_meta(out["models"][role])
        assert m["kind"] == "classifier" and m["run_id"] == out["runs"][role]
    assert meta["run_id"] == out["runs"]["ensemble"]
    ev = meta["evaluation"]
    assert ev["accuracy"] == out["accuracies"]["ensemble"] and ev["dataset"] == "imdb_sample"
    cfg = presets.Config.from_dict(fwd["config"])
    docs = presets.sample_docs(corpora.load("imdb_sample").df, cfg.max_docs, cfg.seed)
    val = corpora.classifier_frame(corpora.Corpus("imdb_sample", docs))
    n_valid = int(val["is_valid"].sum())
    assert ev["n"] == n_valid < len(corpora.classifier_frame(corpora.load("imdb_sample")).query("is_valid"))
    table = {row["role"]: row for row in out["table"]}
    assert [row["role"] for row in out["table"]] == ["forward", "backward", "ensemble", "baseline"]
    assert {row["n_valid"] for row in out["table"]} == {n_valid}
    for role, row in table.items():
        assert row["accuracy"] == out["accuracies"][role] and row["seconds"] > 0
        assert row["device"] and row["precision"], row
    # a CPU: bf16 where bf16cpu.json measured it to pay on this CPU, else fp32
    assert table["forward"]["precision"] == precision.cpu_default()[0]
    assert table["forward"]["inference_accuracy"] == ev["members"][0]["accuracy"]

    text = recipe.table_text(recipe.status(out["recipe"]))
    assert f"{out['accuracies']['baseline']:.4f}" in text and "backward ULMFiT" in text

    at = run_page("pages/train.py")
    assert any(s.value == "Full recipe" for s in at.subheader)
    shown = next(d.value for d in at.dataframe if "in one pass" in d.value.columns)
    assert list(shown["run"]) == [out["runs"][r] for r in ("forward", "backward", "ensemble", "baseline")]
    assert list(shown["accuracy"]) == [f"{out['accuracies'][r]:.1%}" for r in ("forward", "backward", "ensemble",
                                                                                "baseline")]
    assert any(out["recipe"] in m.value and "SUCCEEDED" in m.value for m in at.markdown)


def test_ctrl_c_cancels_the_recipes_runs():
    import signal
    import time

    from ulmfit_demo.runs import callback

    # Slow batches (the documented test hook, inherited by the workers): the tiny recipe would otherwise be over
    # before the Ctrl-C on a fast machine.
    p = subprocess.Popen([sys.executable, "-m", "ulmfit_demo", "recipe", "--dataset", "imdb_sample", "--tiny",
                          "--json"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO), **{callback.DELAY_ENV: "0.5"}),
                         # A test run started in the background (`cmd &` in a script) inherits SIGINT ignored, and
                         # Python then never turns Ctrl-C into KeyboardInterrupt: give the CLI a terminal's default.
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while not (any(r["status"] == store.RUNNING for r in store.list_runs())
                   and any(len(recipe.runs_of(g)) == 4 for g in recipe.recipes())):
            assert time.time() < deadline and p.poll() is None, "the recipe never had its four runs with one running"
            time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=180)
    finally:
        p.kill()
    assert p.returncode == 1, err[-3000:]
    assert "cancelling the recipe's runs" in err
    st = json.loads(out)
    status = {row["role"]: row["status"] for row in st["table"]}
    assert status["forward"] in (store.CANCELLED, store.SUCCEEDED)  # it may have ended before the flag was read
    assert status["backward"] == status["baseline"] == status["ensemble"] == store.CANCELLED
    assert all(r["status"] not in store.ACTIVE for r in store.list_runs())
    assert not registry.list_models(kind="ensemble")


def test_the_train_pages_full_recipe_button_queues_the_same_four_runs():
    from test_runs import wait_final

    at = run_page("pages/train.py")
    at.radio(key="train_preset").set_value("Quick").run()
    at.button(key="train_recipe").click().run()
    assert not at.exception, at.exception
    runs = store.list_runs()
    assert sorted(r["kind"] for r in runs) == ["baseline", "ensemble", "ulmfit", "ulmfit"]
    group = recipe.recipes(runs)[0]
    by_role = recipe.runs_of(group)
    assert {r["preset"] for r in runs} == {"Full recipe · Quick"} and set(by_role) == set(recipe.ROLES)
    assert by_role["ensemble"]["config"]["members"] == f"{by_role['forward']['id']},{by_role['backward']['id']}"
    assert any(s.value == "Full recipe" for s in at.subheader)
    recipe.cancel(group)  # the Quick preset for real would take minutes: the page's part is done
    for r in runs:
        assert wait_final(r["id"])["status"] in (store.CANCELLED, store.SUCCEEDED)


def test_unknown_dataset_is_refused_and_stores_nothing():
    p = cli("recipe", "--dataset", "no_such_corpus", "--tiny", "--json", timeout=120)
    assert p.returncode == 1 and p.stdout == ""
    assert "no corpus called 'no_such_corpus'" in p.stderr
    assert store.list_runs() == []
    with pytest.raises(corpora.CorpusError):
        recipe.submit_recipe("no_such_corpus", tiny=True)
    with pytest.raises(ConfigError, match="Unknown preset"):
        recipe.submit_recipe("imdb_sample", preset="huge", tiny=True)
    assert store.list_runs() == []


def test_ensemble_run_checks_its_members_and_names_the_one_that_failed():
    cfg = presets.QUICK.with_(**recipe.TINY)
    with pytest.raises(ConfigError, match="at least two member runs"):
        launcher.submit("ensemble", cfg.with_(members="20250101-120000-ab12"), "imdb_sample")
    with pytest.raises(ConfigError, match="there is no run"):
        launcher.submit("ensemble", cfg.with_(members="20250101-120000-ab12,20250101-120000-cd34"), "imdb_sample")
    with pytest.raises(ConfigError, match="for the ensemble kind only"):
        launcher.submit("ulmfit", cfg.with_(members="a,b"), "imdb_sample")
    a = store.create_run("ulmfit", cfg.to_dict(), corpus="imdb_sample", foreground=True)
    b = store.create_run("ulmfit", cfg.with_(backwards=True).to_dict(), corpus="imdb_sample", foreground=True)
    other = store.create_run("ulmfit", cfg.with_(seed=7).to_dict(), corpus="imdb_sample", foreground=True)
    with pytest.raises(ConfigError, match=f"run {other} validated on other rows"):
        launcher.submit("ensemble", cfg.with_(members=f"{a},{other}"), "imdb_sample")
    assert store.claim(a, os.getpid())
    store.finish(a, store.FAILED, error="boom")
    with pytest.raises(ConfigError, match=f"run {a} ended FAILED"):
        launcher.submit("ensemble", cfg.with_(members=f"{a},{b}"), "imdb_sample")
    assert [r["kind"] for r in store.list_runs()] == ["ulmfit"] * 3  # every refusal stored nothing

    # Queued behind a member that then failed (as the recipe's queue would have it): the run fails naming it.
    ens = store.create_run("ensemble", cfg.with_(members=f"{a},{b}").to_dict(), corpus="imdb_sample",
                           foreground=True)
    assert store.claim(ens, os.getpid())
    assert worker.execute(ens) == store.FAILED
    err = store.get(ens)["error"]
    assert f"Member run {a} (ulmfit) is FAILED: boom" in err and f"runs resume {a}" in err
    assert registry.list_models() == []


def test_cpu_estimate_is_measured_on_this_machine():
    corpus = corpora.load("imdb_sample")
    cfg = presets.QUICK.with_(**recipe.TINY)
    est = recipe.estimate(cfg, corpus, label="Tiny")
    assert est["batches"] >= 1 and est["tokens_per_s"] > 0 and est["seconds"] > 0
    assert 1 < est["tokens_per_word"] < 2  # counted with the run's own tokenizer on sampled texts
    expected = 2 * (est["lm_tokens"] * 2 + est["clas_tokens"] * 3) / est["tokens_per_s"]  # 1 + 1 LM, 3 clas epochs
    assert est["seconds"] == pytest.approx(expected)
    assert "extrapolation" in est["text"] and f"{est['batches']} timed LM batch" in est["text"]
