"""The pretrained start offline: the starter LM command (on a tiny corpus: CI never retrains the real one), runs that
start from it (`pretrained="auto"`), what happens when it is missing or damaged, subword vocabularies, and the
bundled sentiment model shipped in `assets/sentiment` (read-only, hash-checked, good on obvious sentences)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_training import run_in_process
from ulmfit_demo import config, models
from ulmfit_demo.models import ensemble, inference
from ulmfit_demo.runs import store
from ulmfit_demo.models import starter
from ulmfit_demo.train import presets, start

REPO = Path(__file__).resolve().parent.parent
TINY_STARTER = dict(corpora=["demo"], sp_vocab_sz=600, sp_train_chars=100_000, emb_sz=16, n_hid=32, n_layers=1, bs=8,
                    seq_len=16, shard_tokens=4000, passes=1, valid_tokens=1500, threads=1, lr=1e-2)


def _sets(**over):
    return [a for k, v in {**TINY_STARTER, **over}.items() for a in ("--set", f"{k}={json.dumps(v)}")]


def _cli(*args, env=None, timeout=300):
    e = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, "-m", "ulmfit_demo", *args], cwd=REPO, env=e, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_starter(tmp_path_factory):
    "The real rebuild command, on the demo corpus and a tiny shape."
    out = tmp_path_factory.mktemp("starter") / "lm"
    p = _cli("train", "--kind", "pretrain", "--preset", "starter", *_sets(), "--out", str(out), "--json",
             env={"ULMFIT_DEMO_HOME": str(out.parent / "home")})
    assert p.returncode == 0, p.stderr[-3000:]
    return out, json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture
def use_starter(tiny_starter, monkeypatch):
    monkeypatch.setenv("ULMFIT_DEMO_STARTER", str(tiny_starter[0]))
    return tiny_starter[0]


def test_starter_command_writes_checked_weights_vocab_and_card(tiny_starter):
    out, res = tiny_starter
    card = res["card"]
    assert res["status"] == "SUCCEEDED" and res["out"] == str(out)
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "lm.safetensors", "manifest.json", "spm.model",
                                                       "vocab.json"]
    man = starter.check(out)  # every file matches its hash
    assert set(man) == set(starter.FILES)
    assert list(card["train_docs_by_source"]) == ["demo"] and card["tokens_seen"] >= card["pass_tokens"] * 0.9
    assert 1 < card["valid_perplexity"] < 600 and card["arch"]["emb_sz"] == 16
    assert set(card["valid_by_source"]) == {"demo"} and card["valid_by_source"]["demo"]["tokens"] > 1000
    assert card["direction"] == "fwd" and res["status"] == "SUCCEEDED" and card["precision"]
    # The backward model lies beside it: same pieces and vocab, trained on the same text read right to left.
    bwd = out.with_name("lm_bwd")
    starter.check(bwd)
    bcard = json.loads((bwd / "card.json").read_text())
    assert bcard["direction"] == "bwd" and bcard["backwards"] and starter.folder.__defaults__ == (False,)
    assert (bwd / "spm.model").read_bytes() == (out / "spm.model").read_bytes()
    assert (bwd / "vocab.json").read_text() == (out / "vocab.json").read_text()
    assert (bwd / "lm.safetensors").read_bytes() != (out / "lm.safetensors").read_bytes()
    # The vocabulary is SentencePiece's, whole: every piece has a row, so nothing a user types is cut to xxunk.
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(out / "spm.model"))
    vocab = json.loads((out / "vocab.json").read_text())
    assert {sp.id_to_piece(i) for i in range(sp.get_piece_size())} <= set(vocab) and card["vocab_size"] == len(vocab)
    state, vocab2, _, _ = starter.load(out)
    assert vocab2 == vocab and state["0.encoder.weight"].shape == (len(vocab), 16)
    assert state["1.decoder.weight"] is state["0.encoder.weight"]  # tied, as fastai's LM


def test_a_run_on_auto_starts_from_the_starter_and_is_judged_beside_the_baseline(use_starter):
    cfg = presets.QUICK.with_(max_docs=120, bs=8, seq_len=16, clas_seq_len=16, lm_frozen_epochs=0, lm_epochs=1,
                              clas_phases=({"freeze_to": -1, "epochs": 1, "lr": 2e-2},
                                           {"freeze_to": 0, "epochs": 1, "lr": 5e-3}),
                              cpu_threads=1, sample_words=3, pretrained="auto")
    r = run_in_process("ulmfit", cfg)
    assert r["status"] == store.SUCCEEDED, r["error"]
    assert r["summary"]["start"] == "starter"
    ev = store.events(r["id"])
    note = [e["message"] for e in ev if e["kind"] == "pretrained"]
    assert note and "bundled starter" in note[0] and "emb_sz 16" in note[0]
    # The run trains with the starter's shape, pieces and vocab (rows line up with the pretrained weights).
    rdir = store.run_dir(r["id"])
    assert json.loads((rdir / "vocab.json").read_text()) == json.loads((use_starter / "vocab.json").read_text())
    assert (rdir / "spm" / "spm.model").read_bytes() == (use_starter / "spm.model").read_bytes()
    m = r["summary"]["metrics"]
    for k in ("accuracy", "baseline_accuracy", "ece", "ece_uncalibrated", "ood_accuracy", "temperature"):
        assert k in m and np.isfinite(m[k]), k
    assert 0 <= m["ece"] <= 1 and 0 <= m["ood_accuracy"] <= 1 and m["n_valid"] > 0

    # The classifier carries its temperature; it is applied by predict, and an exported+imported copy keeps it.
    mid = r["model_id"]
    meta = models.read_meta(mid)
    T = meta["calibration"]["temperature"]
    assert T == pytest.approx(m["temperature"]) and len(meta["calibration"]["reliability"]) == 15
    p1 = inference.predict(mid, "A fine film with a great cast.")["probs"]
    copy = models.import_bundle(models.bundle_bytes(mid))
    assert models.read_meta(copy)["calibration"]["temperature"] == pytest.approx(T)
    p2 = inference.predict(copy, "A fine film with a great cast.")["probs"]
    assert p1 == pytest.approx(p2, abs=1e-6)


def test_auto_without_a_starter_trains_from_scratch_and_says_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("ULMFIT_DEMO_STARTER", str(tmp_path / "nothing"))
    cfg, info = start.resolve(presets.QUICK, "ulmfit")
    assert info["source"] == "none" and cfg.pretrained == "none" and info["level"] == "warning"
    assert "FROM SCRATCH" in info["message"] and "bundled starter" in info["message"]
    assert "manifest.json is missing" in info["message"]


def test_a_backward_run_on_auto_names_the_backward_weights_and_the_forward_starter(tiny_starter, tmp_path,
                                                                                   monkeypatch):
    fwd_only = tmp_path / "lm"
    shutil.copytree(tiny_starter[0], fwd_only)  # a forward starter without its backward twin
    monkeypatch.setenv("ULMFIT_DEMO_STARTER", str(fwd_only))
    cfg, info = start.resolve(presets.QUICK.with_(backwards=True), "ulmfit")
    assert info["source"] == "none" and "reads forwards" in info["message"]
    assert "wt103-bwd" in info["message"] and "wt103-fwd" not in info["message"]
    assert "backwards = false" in info["message"] and "directions=bwd" in info["message"]


def test_a_backward_run_on_auto_starts_from_the_backward_starter(use_starter):
    cfg, info = start.resolve(presets.QUICK.with_(backwards=True), "ulmfit")
    assert info["source"] == "starter" and "reads backwards" in info["message"]
    assert cfg.pretrained == "starter" and cfg.emb_sz == 16 and cfg.backwards
    r = run_in_process("lm", presets.QUICK.with_(backwards=True, max_docs=80, bs=8, seq_len=16, lm_frozen_epochs=0,
                                                  lm_epochs=1, cpu_threads=1, sample_words=2))
    assert r["status"] == store.SUCCEEDED, r["error"]
    assert r["summary"]["start"] == "starter"
    rdir = store.run_dir(r["id"])
    assert (rdir / "spm" / "spm.model").read_bytes() == (use_starter.with_name("lm_bwd") / "spm.model").read_bytes()


def test_a_starter_build_pauses_at_its_time_limit_and_resumes_to_the_same_schedule(tmp_path):
    env = {"ULMFIT_DEMO_HOME": str(tmp_path / "home")}
    out = tmp_path / "lm"
    base = ["train", "--kind", "pretrain", "--preset", "starter", "--out", str(out), "--json"]
    p = _cli(*base, *_sets(directions=["fwd"], time_limit_s=0.5), env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    paused = res["directions"]["fwd"]
    assert res["status"] == "PAUSED" and 0 < paused["shard"] < paused["shards"] and not out.exists()
    # Starting again without --resume would throw the hours away: refused, and the checkpoint is kept.
    p = _cli(*base, *_sets(directions=["fwd"]), env=env)
    assert p.returncode == 1 and "--resume" in p.stderr and "Traceback" not in p.stderr
    p = _cli(*base, *_sets(directions=["fwd"]), "--resume", env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    card = json.loads(p.stdout.strip().splitlines()[-1])["card"]
    assert card["sittings"] == 2 and card["shards"] == paused["shards"] and len(card["history"]) == paused["shards"]
    assert [h["shard"] for h in card["history"]] == list(range(1, paused["shards"] + 1))
    starter.check(out)


def test_a_damaged_starter_is_refused_with_the_file_named(tiny_starter, tmp_path, monkeypatch):
    bad = tmp_path / "starter"
    shutil.copytree(tiny_starter[0], bad)
    with open(bad / "lm.safetensors", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02\x03")
    monkeypatch.setenv("ULMFIT_DEMO_STARTER", str(bad))
    with pytest.raises(starter.StarterError, match="lm.safetensors is damaged"):
        starter.load()
    cfg, info = start.resolve(presets.QUICK, "ulmfit")
    assert info["source"] == "none" and "lm.safetensors is damaged" in info["message"]


def test_a_file_damaged_after_a_good_check_is_still_refused(tiny_starter, tmp_path):
    # `check` remembers files it hashed whole (the bundled model's members each check the whole folder); a write
    # after that, of the same size, must still be caught.
    folder = tmp_path / "starter"
    shutil.copytree(tiny_starter[0], folder)  # copies keep their old modification times: files at rest
    starter.check(folder)
    starter.check(folder)  # remembered: not hashed again
    weights = folder / "lm.safetensors"
    good = weights.read_bytes()
    with open(weights, "r+b") as f:
        f.seek(100)
        f.write(bytes(b ^ 0xFF for b in good[100:104]))
    assert weights.stat().st_size == len(good)
    with pytest.raises(starter.StarterError, match="lm.safetensors is damaged"):
        starter.check(folder)
    weights.write_bytes(good)
    starter.check(folder)  # whole again: accepted


def test_explicit_starter_with_another_shape_is_refused_before_any_work(use_starter):
    errs = presets.check_config(presets.QUICK.with_(pretrained="starter", emb_sz=32), "ulmfit")
    assert any("bundled starter fits emb_sz 16" in e for e in errs)
    assert not presets.check_config(start.adopt_starter(presets.QUICK), "ulmfit")


def test_a_subword_vocab_is_the_whole_sentencepiece_model_whatever_max_vocab_says():
    cfg = presets.QUICK.with_(max_docs=120, tokenizer="subword", sp_vocab_sz=500, max_vocab=100, min_freq=5,
                              pretrained="none", emb_sz=16, n_hid=32, n_layers=1, bs=8, seq_len=16,
                              lm_frozen_epochs=0, lm_epochs=1, cpu_threads=1, sample_words=2)
    r = run_in_process("lm", cfg)
    assert r["status"] == store.SUCCEEDED, r["error"]
    import sentencepiece as spm

    rdir = store.run_dir(r["id"])
    sp = spm.SentencePieceProcessor(model_file=str(rdir / "spm" / "spm.model"))
    vocab = json.loads((rdir / "vocab.json").read_text())
    pieces = {sp.id_to_piece(i) for i in range(sp.get_piece_size())}
    extra = [v for v in vocab if v not in pieces and not v.startswith("xx")]
    assert pieces <= set(vocab) and extra == []  # every piece, nothing else but fastai's special tokens and fillers
    assert len(pieces) == sp.get_piece_size() == len([v for v in vocab if v in pieces])


# ------------------------------------------------------------------------------------------------ bundled model

OBVIOUS = [
    # films
    ("What a wonderful film! The acting is superb.", "positive"),
    ("I loved this movie, it was brilliant from start to finish.", "positive"),
    ("An excellent, moving story with great performances.", "positive"),
    ("This was the worst movie I have ever seen.", "negative"),
    ("Terrible acting and a boring, stupid plot.", "negative"),
    ("A complete waste of time. I hated every minute of it.", "negative"),
    # products
    ("This phone is fantastic and the battery lasts all day.", "positive"),
    ("Great product, works perfectly. Highly recommended!", "positive"),
    ("The best purchase I have made this year, I love it.", "positive"),
    ("This blender broke after two days, a total waste of money.", "negative"),
    ("Awful product. Do not buy it.", "negative"),
    ("The headphones stopped working after a week. Very disappointed.", "negative"),
    # restaurants
    ("Best pizza in town, friendly staff and quick service!", "positive"),
    ("Delicious food and a lovely atmosphere. We will definitely be back.", "positive"),
    ("The pasta was fresh and the dessert was amazing.", "positive"),
    ("The food was cold and the waiter was rude.", "negative"),
    ("We waited an hour for a bland, overpriced meal.", "negative"),
    ("Dirty tables and terrible food. Never again.", "negative"),
    # services
    ("The hotel room was spotless and the staff were so helpful.", "positive"),
    ("My plumber arrived on time and fixed everything quickly. Excellent service.", "positive"),
    ("The support team solved my problem in minutes. Thank you!", "positive"),
    ("The airline lost my bag and nobody helped.", "negative"),
    ("Customer service was useless and kept me on hold for two hours.", "negative"),
    ("The mechanic overcharged me and the car still does not start.", "negative"),
]


def test_predicting_through_the_bundled_model_keeps_its_parts_open(bundled):
    # The bundled ensemble and its members are one cache entry each: a prediction must not evict and reload a member
    # (it did with room for 4 models, making every verdict 0.7 s instead of a few ms).
    from ulmfit_demo.models import kinds

    inference.predict("bundled", "A wonderful film.")
    parts = [m["id"] for m in (models.read_meta("bundled").get("members") or [])] or ["bundled"]
    opened = {p: kinds.open(p) for p in parts}
    # the Sentiment page's "Compare two models": another model of the user's judged between the bundled model's verdicts
    from ulmfit_demo.judge import baseline

    other = models.save_baseline(baseline.fit(["good fun", "great film", "bad plot", "awful acting"],
                                              ["positive", "positive", "negative", "negative"], min_df=1),
                                 name="another model", corpus="demo")
    for text in ("The plot was dull.", "Great pizza!", "It broke after a week."):
        inference.predict("bundled", text)
        inference.predict(other, text)
    assert all(kinds.open(p) is opened[p] for p in parts)


def test_bundled_model_is_listed_read_only_and_gets_obvious_sentences_right(bundled):
    rows = models.list_models()
    b = [r for r in rows if r["id"] == "bundled"]
    # one classifier, or an ensemble of shipped parts (v2: whichever candidate was best on held-out rows)
    assert b and b[0]["origin"] == "bundled" and b[0]["kind"] in ("classifier", "ensemble")
    assert all(r["id"] not in models.registry.bundled_members() for r in rows)  # parts are not listed beside it
    assert models.resolve("latest", "classifier") == "bundled"  # nothing trained yet: the bundled one is the default
    res = inference.predict_batch("bundled", [t for t, _ in OBVIOUS])
    wrong = [(t, r["label"], round(max(r["probs"].values()), 2)) for (t, want), r in zip(OBVIOUS, res)
             if r["label"] != want]
    # All 24. The v1 model (film reviews only) got 19: wrong on the headphones (95% positive), the hotel room, the
    # airline, the customer service and the mechanic, complaints without the words a film review would use.
    assert wrong == [], wrong
    with pytest.raises(models.ModelError, match="cannot be deleted"):
        models.delete("bundled")
    with pytest.raises(models.ModelError, match="cannot be renamed"):
        models.rename("bundled", "mine")
    assert models.get("bundled")["origin"] == "bundled"


@pytest.mark.parametrize("text, want", [
    ("What a wonderful film! The acting is superb.", "positive"),
    ("The headphones stopped working after a week. Very disappointed.", "negative"),  # issue #18's two sentences
    ("Best pizza in town, friendly staff and quick service!", "positive"),
])
def test_fresh_machine_cli_predicts_with_the_bundled_model(tmp_path, bundled, text, want):
    p = _cli("predict", "--model", "bundled", "--text", text, "--json",
             env={"ULMFIT_DEMO_HOME": str(tmp_path / "empty_home")})
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["label"] == want and out["probs"][want] >= 0.7, out


def test_every_shipped_model_weighs_at_most_25_mb():
    "The repository's rule for weights in assets/: each model (an ensemble's every part) 25 MB or less."
    assets = Path(__file__).resolve().parent.parent / "assets"
    folders = sorted(d for d in [assets, *assets.rglob("*")] if d.is_dir() and any(d.glob("*.safetensors")))
    names = [str(d.relative_to(assets)) for d in folders]
    assert {"starter_lm", "starter_lm_bwd"} <= set(names) and any(n.startswith("sentiment") for n in names), names
    for d in folders:
        own = sum(f.stat().st_size for f in d.iterdir() if f.is_file())  # a part's files are counted in its folder
        assert own <= 25 * 10**6, (d, own)


def test_a_damaged_bundled_file_gives_the_message_and_nothing_else_breaks(tmp_path, monkeypatch):
    bad = tmp_path / "sentiment"
    shutil.copytree(models.registry.BUNDLED_DIR, bad)
    weights = sorted(bad.rglob("weights.safetensors"))[0]  # the classifier's, or an ensemble's first part's
    with open(weights, "r+b") as f:
        f.seek(4096)
        f.write(b"\xff\xfe\xfd")
    monkeypatch.setenv("ULMFIT_DEMO_BUNDLED", str(bad))
    assert any(r["id"] == "bundled" for r in models.list_models())  # listing stays cheap and works
    with pytest.raises(models.ModelError, match="weights.safetensors is damaged.*git checkout"):
        inference.predict("bundled", "Great film.")
    (bad / "meta.json").unlink()
    assert all(r["id"] != "bundled" for r in models.list_models())
    with pytest.raises(models.ModelError, match="bundled sentiment model is missing or damaged"):
        models.get("bundled")


def test_a_starter_build_that_fails_says_why_and_leaves_the_existing_starter_as_it_was(tiny_starter, tmp_path):
    out = tmp_path / "lm"
    shutil.copytree(tiny_starter[0], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    p = _cli("train", "--kind", "pretrain", "--preset", "starter", *_sets(valid_tokens=10**6), "--out", str(out),
             env={"ULMFIT_DEMO_HOME": str(tmp_path / "home")})
    assert p.returncode == 1 and "Lower valid_tokens" in p.stderr and "Traceback" not in p.stderr
    p = _cli("train", "--kind", "pretrain", "--preset", "starter", *_sets(bs=512, seq_len=70, shard_tokens=10**5),
             "--out", str(out), env={"ULMFIT_DEMO_HOME": str(tmp_path / "home")})
    assert p.returncode == 1 and "lower bs" in p.stderr and "Traceback" not in p.stderr
    p = _cli("train", "--kind", "pretrain", "--preset", "starter", *_sets(directions=["sideways"]), "--out", str(out),
             env={"ULMFIT_DEMO_HOME": str(tmp_path / "home")})
    assert p.returncode == 1 and "directions must be" in p.stderr and "Traceback" not in p.stderr
    assert {q.name: q.read_bytes() for q in out.iterdir()} == before and not (tmp_path / "lm.building").exists()
    starter.check(out)


# ------------------------------------------------------------------------------------------------ bundled v2 build

TINY_BUNDLED = dict(corpus="demo", max_train_docs=160, holdout=0.25, max_holdout=40, bs=8, clas_seq_len=16,
                    steps=[[-1, 2e-2], [0, 5e-3], [0, 3e-3]], precision="fp32")


def _bundled(*args, env):
    sets = [a for k, v in TINY_BUNDLED.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    e = dict(os.environ, PYTHONPATH=str(REPO), **env)
    return subprocess.run([sys.executable, "-m", "ulmfit_demo.train.bundled", *args, *sets], cwd=REPO, env=e,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("args, want", [
    (["finish", "--set", 'rules=["median"]'], "rules must list one or more of mean, geometric, not 'median'"),
    (["finish", "--set", "baseline_shares=[0.5, 1.5]"], "baseline_shares must be numbers between 0 and 1"),
    (["finish", "--set", "baseline_balance=label"], "baseline_balance must be 'source' or 'none'"),
    (["finish", "--set", "tie=0.5"], "tie must be a share of accuracy from 0 to 0.05"),
    (["finish", "--set", "classifiers=[]"], "classifiers must list classifier folders with at least one forward"),
    (["finish", "--set", "classifiers=fwd"], "classifiers must list classifier folders with at least one forward"),
    (["finish", "--set", 'classifiers=["bwd"]'], "classifiers must list classifier folders with at least one forward"),
    (["direction", "fwd", "--train-seed", "-1"], "--train-seed must be 0 or more"),
    (["direction", "bwd", "--set", "patience=-1"], "patience must be a whole number of epochs"),
    (["direction", "fwd", "--set", "max_epochs=0"], "max_epochs must be a whole number of epochs, 1 or more"),
    (["direction", "fwd", "--set", "max_tokens"], "--set 'max_tokens': write KEY=VALUE"),
    (["direction", "fwd", "--set", "epochs=3"], "Unknown setting 'epochs': use one of corpus, holdout"),
    (["direction", "fwd", "--set", "balance=label"], "balance must be 'source' (each source's rows capped"),
    # no bundled model (the tests' ULMFIT_DEMO_BUNDLED names none): nothing to take into the build
    (["adopt"], "has no readable card.json and meta.json"),
])
def test_the_bundled_build_refuses_bad_settings_before_any_work(tmp_path, args, want):
    home = tmp_path / "home"
    p = _bundled(*args, env={"ULMFIT_DEMO_HOME": str(home)})
    assert p.returncode == 1 and want in p.stdout and "Traceback" not in p.stderr, p.stdout + p.stderr[-2000:]
    assert not (home / "bundled_build").exists() and not (home / "models").exists()


@pytest.mark.parametrize("card, meta", [
    ({"members": ["fwd"]}, {"kind": "ensemble", "members": [{"id": "bundled.fwd"}]}),  # members not named
    ([1], {"kind": "classifier"}),  # not a card at all
    ({"members": {"fwd": "clas-1"}}, {"kind": "ensemble"}),  # an ensemble without its members
    ({"members": {"fwd": "clas-1"}}, {"kind": "ensemble", "members": ["bundled.fwd"]}),
])
def test_adopt_refuses_a_bundled_folder_it_cannot_read(tmp_path, card, meta):
    "A card or metadata of the wrong shape: a message, and nothing written into the home."
    folder, home = tmp_path / "sentiment", tmp_path / "home"
    folder.mkdir()
    (folder / "card.json").write_text(json.dumps(card))
    (folder / "meta.json").write_text(json.dumps(meta))
    e = dict(os.environ, PYTHONPATH=str(REPO), ULMFIT_DEMO_HOME=str(home), ULMFIT_DEMO_BUNDLED=str(folder))
    p = subprocess.run([sys.executable, "-m", "ulmfit_demo.train.bundled", "adopt"], cwd=REPO, env=e,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "is not what `finish` wrote" in p.stdout and "Traceback" not in p.stderr, \
        p.stdout + p.stderr[-2000:]
    assert not (home / "bundled_build").exists() and not (home / "models").exists()


def test_epochs_past_the_steps_need_a_last_step_that_trains_every_layer(tmp_path):
    from dataclasses import replace

    from ulmfit_demo.train import bundled

    cfg = replace(bundled.BundledConfig(), steps=((-1, 2e-2), (-2, 1e-2)), max_epochs=5)
    with pytest.raises(bundled.BuildError, match="the last step must train every layer"):
        bundled.train_direction(cfg, "fwd")
    assert not (config.home() / "bundled_build").exists()
    assert bundled._step(replace(cfg, steps=((-1, 2e-2), (0, 5e-3))), 4) == (0, 5e-3)


def test_balanced_epochs_cap_each_source_at_the_second_largest_and_draw_the_largest_anew():
    import numpy as np

    from ulmfit_demo.train import bundled

    src = np.array(["yelp"] * 500 + ["imdb"] * 120 + ["amazon"] * 60)
    a, b = bundled.balanced_rows(src, 1), bundled.balanced_rows(src, 2)
    for pick in (a, b):
        got = dict(zip(*np.unique(src[pick], return_counts=True)))
        assert got == {"yelp": 120, "imdb": 120, "amazon": 60}  # the smaller sources whole, the largest capped
        assert len(set(pick)) == len(pick) and (np.diff(pick) > 0).all()  # each row once, in corpus order
    assert set(a[src[a] == "yelp"]) != set(b[src[b] == "yelp"])  # another epoch, other Yelp rows
    assert (bundled.balanced_rows(src, 1) == a).all()  # seeded: a resumed build reads the same rows
    one = np.array(["demo"] * 7)
    assert list(bundled.balanced_rows(one, 0)) == list(range(7))  # one source: every row


def test_a_balanced_classifier_has_its_own_folder_in_the_same_build(tmp_path):
    from dataclasses import replace

    from ulmfit_demo.train import bundled

    cfg = bundled.BundledConfig()
    bal = replace(cfg, balance="source")
    assert bal.key() == cfg.key()  # the same rows: one build, so finish can pool them
    assert bundled.build_dir(bal, "fwd").name == "fwd-bal" and bundled.build_dir(bal, "fwd", 43).name == "fwd-bal-s43"
    for name, mid in (("fwd", "clas-a"), ("fwd-bal", "clas-b"), ("fwd-bal-s43", "clas-c")):
        folder = bundled.build_dir(cfg, "fwd").parent / name
        folder.mkdir(parents=True)
        (folder / "state.json").write_text(json.dumps({"model_id": mid}))
    assert bundled.built(cfg) == {"fwd": "clas-a", "fwd-bal": "clas-b", "fwd-bal-s43": "clas-c"}


def test_the_bundled_build_pauses_resumes_and_ships_the_candidate_best_on_held_out_rows(use_starter, tmp_path):
    env = {"ULMFIT_DEMO_HOME": str(tmp_path / "home"), "ULMFIT_DEMO_STARTER": str(use_starter)}
    p = _bundled("direction", "fwd", "--time-limit-s", "0", env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    paused = json.loads(p.stdout.strip().splitlines()[-1])
    assert paused["step"] == 1 and paused["model_id"] is None and "continue with --resume" in p.stdout
    # Starting again without --resume would throw the finished epochs away: refused, and the checkpoint is kept.
    p = _bundled("direction", "fwd", env=env)
    assert p.returncode == 1 and "--resume" in p.stdout and "Traceback" not in p.stderr
    p = _bundled("direction", "fwd", "--resume", env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    fwd = json.loads(p.stdout.strip().splitlines()[-1])
    assert fwd["step"] >= 2 and fwd["model_id"] and "resumed after epoch 1" in p.stdout
    # Patience 0 stops the backward direction after its first all-layer epoch; a larger one reopens it, and the
    # classifier it stores then is the one the build uses.
    p = _bundled("direction", "bwd", "--set", "patience=0", env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    stopped = json.loads(p.stdout.strip().splitlines()[-1])
    assert stopped["step"] == 2 and stopped["model_id"]
    p = _bundled("direction", "bwd", "--resume", "--set", "patience=0", env=env)  # stopped under it: nothing to do
    assert p.returncode == 0 and "already finished" in p.stdout
    # patience 2: one more all-layer epoch whichever of the two was better
    p = _bundled("direction", "bwd", "--resume", "--set", "patience=2", env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    bwd3 = json.loads(p.stdout.strip().splitlines()[-1])
    assert bwd3["step"] == 3 and bwd3["model_id"] not in (None, stopped["model_id"]) and "continuing" in p.stdout
    # Past its steps (a direction still improving at its last one): every layer again at the last step's LR, until
    # max_epochs or patience; the best epoch's weights are stored again.
    p = _bundled("direction", "bwd", "--resume", "--set", "max_epochs=4", "--set", "patience=5", env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    bwd = json.loads(p.stdout.strip().splitlines()[-1])
    assert bwd["step"] == 4 and bwd["model_id"] not in (None, bwd3["model_id"])
    assert "continuing" in p.stdout and "epoch 4 (freeze_to 0, lr 0.003)" in p.stdout
    # Another training seed of the forward direction: the same rows, its own folder; finish averages both seeds.
    p = _bundled("direction", "fwd", "--train-seed", "43", env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    fwd43 = json.loads(p.stdout.strip().splitlines()[-1])
    assert fwd43["model_id"] not in (None, fwd["model_id"])
    out = tmp_path / "sentiment"
    p = _bundled("finish", "--out", str(out), "--set", "baseline_shares=[0.4, 0.5]", env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    card = json.loads((out / "card.json").read_text())
    cands = card["candidates"]
    assert cands["fwd (mean)"]["members"] == ["fwd", "fwd-s43"] and card["directions"]["bwd"]["model_id"] == \
        bwd["model_id"]
    choices = {f"{g} ({r})" for g in ("fwd", "fwd+bwd") for r in ("mean", "geometric")} | {
        f"{g}+{lin} ({s}, {r})" for g in ("fwd", "fwd+bwd") for lin in ("baseline", "baseline+nb-tfidf")
        for s in (0.4, 0.5) for r in ("mean", "geometric")}
    # Beside the candidates, each member alone and the baseline fitted with every row alike, for the card.
    assert set(cands) == choices | {"fwd", "fwd-s43", "bwd", "baseline", "nb-tfidf", "baseline-none"}
    assert cands["fwd+baseline (0.4, geometric)"]["weights"] == pytest.approx([0.3, 0.3, 0.4])
    # the two linear members share the baseline's weight
    assert cands["fwd+bwd+baseline+nb-tfidf (0.4, mean)"]["members"] == ["fwd", "fwd-s43", "bwd", "baseline",
                                                                        "nb-tfidf"]
    assert cands["fwd+bwd+baseline+nb-tfidf (0.4, mean)"]["weights"] == pytest.approx([0.2, 0.2, 0.2, 0.2, 0.2])
    metas = [json.loads(m.read_text()) for m in (tmp_path / "home" / "models").glob("*/meta.json")]
    nb_meta, = [m for m in metas if m["name"] == "Bundled sentiment, NB-weighted TF-IDF baseline"]
    assert nb_meta["kind"] == "baseline" and nb_meta["model"]["params"]["nb"] is True
    assert nb_meta["model"]["params"]["ngram_range"] == [1, 3]
    # Chosen on the held-out training rows only: no candidate scores higher there.
    assert card["chosen"] in choices
    top = max(cands[c]["held"]["score"] for c in choices)
    tied = [c for c in choices if cands[c]["held"]["score"] >= top - 0.001 - 1e-12]  # `tie`: 0.1 point
    assert card["chosen"] in tied
    assert cands[card["chosen"]]["held"]["ece"] <= min(cands[c]["held"]["ece"] for c in tied) + 1e-4
    # Every candidate measured on the test rows (demo: its validation rows) and the out-of-domain sentences.
    assert all(set(v["eval"]) == {"demo", "ood"} for v in cands.values())
    assert cands["fwd"]["eval"]["ood"]["n"] == 200 and 0 <= cands["fwd"]["eval"]["ood"]["positive_share"] <= 1
    assert card["directions"]["fwd"]["sittings"] == 2 and card["rows"]["train_by_source"]
    assert card["directions"]["fwd-s43"]["train_seed"] == 43
    # finish again reads the classifiers' probabilities back from beside the build instead of predicting again
    kept = list((tmp_path / "home" / "bundled_build").glob("*/probs/*.npy"))
    assert len(kept) >= 2 * 3
    starter.check(out)  # every file, members' included, matches the manifest
    # The Models page compares the pick with the baseline on the same held-out rows: both recorded in its metadata.
    meta = json.loads((out / "meta.json").read_text())
    m_acc = meta["metrics"]["accuracy"]
    if len(card["members"]) > 1:  # an ensemble: pooled by the rule chosen, measured on the held-out rows
        assert meta["rule"] == card["rule"] and meta["evaluation"]["n"] == card["rows"]["held"]
        assert ensemble.evaluation_line(meta).startswith(f"Ensemble {m_acc:.1%} vs ")
        assert "held-out training rows of demo (never trained on)" in ensemble.evaluation_line(meta)
        assert [round(x["weight"], 6) for x in meta["members"]] == [round(w / sum(card["weights"]), 6)
                                                                   for w in card["weights"]]
    # its out-of-domain figures by kind of sentence, for the Sentiment page's weak spots
    judged = meta["judge"]["ood"]
    assert judged["ood_accuracy"] == pytest.approx(cands[card["chosen"]]["eval"]["ood"]["accuracy"])
    assert set(judged["by_phenomenon"]) == {"plain", "negation", "contrast", "sarcasm", "short", "long"}
    m = meta["metrics"]
    assert m["n_valid"] == card["rows"]["held"] and 0 < m["baseline_accuracy"] <= 1 and 0 < m["accuracy"] <= 1
    assert m["held_mean_over_sources"] == cands[card["chosen"]]["held"]["score"] and 0 <= m["ece"] <= 1
    p = _cli("predict", "--model", "bundled", "--text", "A wonderful film.", "--json",
             env={"ULMFIT_DEMO_HOME": str(tmp_path / "fresh"), "ULMFIT_DEMO_BUNDLED": str(out)})
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout)["label"] in ("positive", "negative")
    # Texts cut to another length: the same rows, so the same build, in a folder of its own; `finish` pools every
    # forward classifier built unless `classifiers` names the ones to choose among (recorded in the card).
    p = _bundled("direction", "fwd", "--set", "max_tokens=24", "--set", "patience=0", env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    t24 = json.loads(p.stdout.strip().splitlines()[-1])
    assert t24["model_id"] not in (None, fwd["model_id"], fwd43["model_id"])
    assert [f.parent.name for f in (tmp_path / "home" / "bundled_build").glob("*/fwd-t24/state.json")] == ["fwd-t24"]
    t24_meta = json.loads((tmp_path / "home" / "models" / t24["model_id"] / "meta.json").read_text())
    assert t24_meta["name"] == "Bundled sentiment, forward AWD-LSTM (texts cut to 24 tokens)"
    out2 = tmp_path / "sentiment2"
    p = _bundled("finish", "--out", str(out2), "--set", "baseline_shares=[0.4]", "--set", 'rules=["geometric"]',
                 "--set", 'classifiers=["fwd-t24", "bwd"]', env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    card2 = json.loads((out2 / "card.json").read_text())
    assert card2["candidates"]["fwd+bwd (geometric)"]["members"] == ["fwd-t24", "bwd"]
    assert card2["config"]["classifiers"] == ["fwd-t24", "bwd"] and set(card2["directions"]) == {"fwd-t24", "bwd"}
    p = _bundled("finish", "--out", str(tmp_path / "sentiment3"), "--set", 'classifiers=["fwd", "fwd-s99"]', env=env)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "classifiers names 'fwd-s99', not built here; built: fwd, fwd-s43, fwd-t24, bwd" in p.stdout
    assert not (tmp_path / "sentiment3").exists()
    # Another machine, an empty home: `adopt` takes the shipped model's classifiers into its build, as copies with
    # the epochs its card recorded; `finish` there (the linear members fitted again on the same rows) measures the
    # shipped pick as it was measured where it was built.
    env2 = dict(env, ULMFIT_DEMO_HOME=str(tmp_path / "home2"), ULMFIT_DEMO_BUNDLED=str(out))
    p = _bundled("adopt", env=env2)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    got = json.loads(p.stdout.strip().splitlines()[-1])
    shipped_clas = [n for n in card["members"] if n.startswith(("fwd", "bwd"))]
    assert "fwd" in shipped_clas and list(got["adopted"]) == shipped_clas == list(got["built"])
    assert not set(got["adopted"].values()) & set(card["members"].values())  # copies under ids of their own
    st_fwd = json.loads(next((tmp_path / "home2" / "bundled_build").glob("*/fwd/state.json")).read_text())
    assert st_fwd["adopted"]["built_as"] == card["members"]["fwd"] and st_fwd["model_id"] == got["adopted"]["fwd"]
    assert st_fwd["history"] == card["directions"]["fwd"]["history"]
    p = _bundled("adopt", env=env2)  # again: nothing new, nothing replaced
    assert p.returncode == 0 and json.loads(p.stdout.strip().splitlines()[-1])["adopted"] == {}
    assert "fwd: already in this build (" + got["adopted"]["fwd"] in p.stdout
    p = _bundled("direction", "fwd", "--resume", "--set", "max_epochs=6", "--set", "patience=5", env=env2)
    assert p.returncode == 1 and "fwd was adopted from the bundled model" in p.stdout, p.stdout[-2000:]
    assert "cannot be continued" in p.stdout and "Traceback" not in p.stderr
    # a shipped model built from other rows cannot join a build: refused with the settings that differ
    home3 = tmp_path / "home3"
    p = _bundled("adopt", "--set", "crop_frac=0.5", env=dict(env2, ULMFIT_DEMO_HOME=str(home3)))
    assert p.returncode == 1 and "was built from other rows or another recipe" in p.stdout, p.stdout[-2000:]
    assert "they differ in crop_frac" in p.stdout and not (home3 / "bundled_build").exists()
    out4 = tmp_path / "sentiment4"
    p = _bundled("finish", "--out", str(out4), "--set", "baseline_shares=[0.4, 0.5]", env=env2)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    again = json.loads((out4 / "card.json").read_text())["candidates"][card["chosen"]]
    assert again["members"] == cands[card["chosen"]]["members"]
    assert again["held"]["score"] == pytest.approx(cands[card["chosen"]]["held"]["score"], abs=1e-9)
    assert again["eval"]["demo"]["accuracy"] == pytest.approx(cands[card["chosen"]]["eval"]["demo"]["accuracy"])
