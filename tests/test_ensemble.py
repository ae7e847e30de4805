"""Ensembles: real tiny classifiers (forward, backward) and a real TF-IDF baseline combined through the CLI; the
ensemble's probabilities are the mean of what each member says alone; refusals store nothing; bundles carry the
members; a member cannot be deleted from under its ensemble; measured figures are measured; the Sentiment and Models
pages show it. Real fastai, scikit-learn, SQLite and Streamlit AppTest; no mocks."""
import functools
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tiny_models
from support import run_page

from ulmfit_demo import models
from ulmfit_demo.cli import main as cli_main
from ulmfit_demo.judge import baseline
from ulmfit_demo.models import ensemble, inference
from ulmfit_demo.ui import model_widgets as mw

TEXTS = ["What a wonderful film, the cast is superb!", "A dull, awful mess. Avoid it.",
         "The music is lovely but the plot drags."]


@functools.lru_cache(maxsize=1)
def _backward_template() -> Path:
    "A tiny classifier trained on reversed text (fastai's backwards=True), once per process, in its own home."
    import torch
    from fastai.text.all import AWD_LSTM, TextDataLoaders, accuracy, text_classifier_learner

    home = Path(tempfile.mkdtemp(prefix="tiny-bwd-"))
    old = os.environ.get("ULMFIT_DEMO_HOME")
    os.environ["ULMFIT_DEMO_HOME"] = str(home)
    try:
        torch.manual_seed(0)
        df = tiny_models.demo_frame()
        dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=16, seq_len=16,
                                      seed=0, backwards=True)
        learn = text_classifier_learner(dls, AWD_LSTM, config=dict(tiny_models.CLAS_CFG), seq_len=16,
                                        pretrained=False, metrics=accuracy, drop_mult=0.5)
        with learn.no_bar(), learn.no_logging():
            learn.fit(1, 1e-2)
            val = learn.validate()
        mid = models.save_learner(learn, kind="classifier", name="tiny backward classifier", corpus="demo",
                                  arch=dict(tiny_models.CLAS_CFG, drop_mult=0.5, seq_len=16, backwards=True),
                                  tokenizer={"kind": "word"}, extra={"backwards": True},
                                  metrics={"valid_loss": float(val[0]), "accuracy": float(val[1])})
    finally:
        if old is None:
            os.environ.pop("ULMFIT_DEMO_HOME", None)
        else:
            os.environ["ULMFIT_DEMO_HOME"] = old
    return home / "models" / mid


@pytest.fixture
def trio(ids):
    "Forward classifier, backward classifier and a baseline fitted on the same corpus, all in this test's home."
    src = _backward_template()
    shutil.copytree(src, models.models_dir() / src.name)
    models.list_models()  # the folder is the truth: registered on the next listing
    df = tiny_models.demo_frame()
    trn = df[~df["is_valid"]]
    base = baseline.fit(trn["text"].tolist(), trn["label"].tolist())
    bid = models.save_baseline(base, name="tiny baseline", corpus="demo", metrics={"accuracy": 0.8})
    return {**ids, "bwd": src.name, "base": bid, "fitted": base}


def cli(capsys, *argv) -> tuple[int, str, str]:
    rc = cli_main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def build(capsys, *member_ids, name="fwd+bwd+base", extra=()) -> str:
    rc, out, err = cli(capsys, "models", "ensemble", *member_ids, "--name", name, "--json", *extra)
    assert rc == 0, err
    return json.loads(out)["model_id"]


def mean_of_members(member_ids, text, weights=None):
    weights = weights or [1.0] * len(member_ids)
    alone = [inference.predict(m, text)["probs"] for m in member_ids]
    return {lab: sum(w * p[lab] for w, p in zip(weights, alone)) / sum(weights) for lab in alone[0]}


# ---------------------------------------------------------------------------------------------------- building, using

def test_cli_ensemble_predicts_the_mean_of_its_members(trio, capsys):
    members = [trio["clas"], trio["bwd"], trio["base"]]
    eid = build(capsys, *members)
    row = models.get(eid)
    assert row["kind"] == "ensemble" and row["name"] == "fwd+bwd+base" and row["metrics"] == {}
    folder = models.models_dir() / eid
    assert [p.name for p in folder.iterdir()] == ["meta.json"]
    meta = models.read_meta(eid)
    assert [m["id"] for m in meta["members"]] == members
    assert [m["name"] for m in meta["members"]] == [models.get(m)["name"] for m in members]
    assert [m["weight"] for m in meta["members"]] == pytest.approx([1 / 3] * 3)
    assert meta["labels"] == ["negative", "positive"]
    # the backward member really reads reversed text: it must differ from the forward one for the test to mean much
    assert inference.predict(trio["bwd"], TEXTS[0])["probs"] != inference.predict(trio["clas"], TEXTS[0])["probs"]
    for text in TEXTS:
        res = inference.predict(eid, text)
        want = mean_of_members(members, text)
        assert res["probs"] == pytest.approx(want, abs=1e-9)
        assert res["label"] == max(want, key=want.get)
        assert [m["id"] for m in res["members"]] == members
        for m in res["members"]:
            assert m["probs"] == pytest.approx(inference.predict(m["id"], text)["probs"], abs=1e-12)
    # the CLI says the same, with each member's verdict
    rc, out, _ = cli(capsys, "predict", "--model", eid, "--text", TEXTS[1], "--json")
    assert rc == 0
    got = json.loads(out)
    assert got["probs"] == pytest.approx(mean_of_members(members, TEXTS[1]), abs=1e-9)
    assert [m["name"] for m in got["members"]] == [models.get(m)["name"] for m in members]
    rc, out, _ = cli(capsys, "predict", "--model", "fwd+bwd+base", "--text", TEXTS[1])  # by name too
    assert rc == 0 and "tiny baseline" in out and "weight 0.33" in out


def test_weights_are_applied_and_a_member_may_be_the_baseline_in_another_label_order(trio, capsys):
    base = trio["fitted"]
    assert base.labels == ["negative", "positive"]
    # The same baseline with its labels the other way round: for two labels the coefficients point at labels[1].
    flipped = baseline.Baseline(labels=base.labels[::-1], vectorizer=base.vectorizer, coef=-base.coef,
                                intercept=-base.intercept, params=base.params)
    fid = models.save_baseline(flipped, name="flipped baseline", corpus="demo")
    assert models.read_meta(fid)["labels"] == ["positive", "negative"]
    eid = build(capsys, trio["clas"], fid, name="weighted", extra=("--weights", "3", "1"))
    assert [m["weight"] for m in models.read_meta(eid)["members"]] == pytest.approx([0.75, 0.25])
    for text in TEXTS:
        res = inference.predict(eid, text)
        assert list(res["probs"]) == ["negative", "positive"]  # the first member's order; the other matched by name
        assert res["probs"] == pytest.approx(mean_of_members([trio["clas"], fid], text, [3, 1]), abs=1e-9)
        assert res["probs"] == pytest.approx(mean_of_members([trio["clas"], trio["base"]], text, [3, 1]), abs=1e-6)


def test_the_geometric_rule_pools_log_probabilities_and_survives_export_and_import(trio, capsys, tmp_path,
                                                                                     monkeypatch):
    members = [trio["clas"], trio["base"]]
    eid = build(capsys, *members, name="geo", extra=("--weights", "3", "1", "--rule", "geometric"))
    meta = models.read_meta(eid)
    assert meta["rule"] == "geometric" and "geometric mean" in meta["combine"]
    texts = TEXTS + ["ok"]
    for text in texts:
        alone = [inference.predict(m, text)["probs"] for m in members]
        raw = {lab: np.exp(0.75 * np.log(alone[0][lab]) + 0.25 * np.log(alone[1][lab])) for lab in alone[0]}
        want = {lab: v / sum(raw.values()) for lab, v in raw.items()}
        res = inference.predict(eid, text)
        assert res["probs"] == pytest.approx(want, abs=1e-9) and res["label"] == max(want, key=want.get)
        assert sum(res["probs"].values()) == pytest.approx(1.0)
    # not the arithmetic mean: the rule changes the numbers (the members disagree enough on some text)
    assert any(abs(inference.predict(eid, t)["probs"]["positive"]
                   - mean_of_members(members, t, [3, 1])["positive"]) > 1e-3 for t in texts)
    # a batch says what single predictions say; the word scores are occlusion of the pooled verdict
    for r, t in zip(models.kinds.open(eid).predict_batch(texts), texts):
        assert r["probs"] == pytest.approx(inference.predict(eid, t)["probs"], abs=1e-6)
    attr = inference.attributions(eid, TEXTS[0])
    assert attr["prob"] == pytest.approx(inference.predict(eid, TEXTS[0])["probs"][attr["label"]])
    # the Sentiment and Models pages say how the members are combined
    at = run_page("pages/sentiment.py", sent_model=eid)
    assert any("weighted geometric mean of its members'" in c.value for c in at.caption)
    at = run_page("pages/models.py", mdl_model=eid)
    assert any("as log-probabilities (a geometric mean" in c.value for c in at.caption)
    out = tmp_path / "geo.zip"
    rc, _, err = cli(capsys, "models", "export", eid, "--out", out)
    assert rc == 0, err
    with zipfile.ZipFile(out) as z:
        assert "geometric mean" in z.read("README.md").decode()
    want = {t: inference.predict(eid, t)["probs"] for t in texts}
    monkeypatch.setenv("ULMFIT_DEMO_HOME", str(tmp_path / "other-home"))
    rc, got, err = cli(capsys, "models", "import", out)
    assert rc == 0, err
    new = got.strip()
    assert models.read_meta(new)["rule"] == "geometric"
    for t in texts:
        assert inference.predict(new, t)["probs"] == pytest.approx(want[t], abs=1e-6)


def test_an_unknown_rule_is_refused_when_building_and_in_stored_metadata(trio, capsys):
    before = _state()
    with pytest.raises(models.ModelError, match="Unknown pooling rule 'median'"):
        ensemble.create([trio["clas"], trio["base"]], "nope", rule="median")
    assert _state() == before
    eid = build(capsys, trio["clas"], trio["base"], name="later edited")
    path = models.models_dir() / eid / "meta.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps(dict(meta, rule="median")))
    with pytest.raises(models.ModelError, match="unknown rule 'median'"):
        inference.predict(eid, TEXTS[0])


def test_batch_and_csv_scoring_agree_with_single_predictions(trio, capsys, tmp_path):
    eid = build(capsys, trio["clas"], trio["bwd"], trio["base"])
    seen = []
    rows = inference.predict_batch(eid, TEXTS + ["   "], progress=lambda d, t: seen.append((d, t)))
    for text, r in zip(TEXTS, rows):
        assert r["probs"] == pytest.approx(inference.predict(eid, text)["probs"], abs=1e-6)
        assert len(r["members"]) == 3
    assert rows[3]["label"] is None and "empty" in rows[3]["error"]
    assert seen[-1] == (3, 3) and all(d <= t for d, t in seen)
    src = tmp_path / "in.csv"
    src.write_text("review\n" + "\n".join(f'"{t}"' for t in TEXTS) + "\n")
    out = tmp_path / "out.csv"
    rc, _, err = cli(capsys, "predict", "--model", eid, "--csv", src, "--text-col", "review", "--out", out)
    assert rc == 0, err
    import pandas as pd

    df = pd.read_csv(out)
    assert list(df["prediction"]) == [r["label"] for r in rows[:3]]
    assert df["p_positive"].tolist() == pytest.approx([round(r["probs"]["positive"], 4) for r in rows[:3]], abs=1e-4)


def test_attributions_are_occlusion_of_the_ensemble_itself(trio, capsys):
    eid = build(capsys, trio["flip"], trio["clas"], name="flip+fwd")
    text = "the plot was superb and the cast"
    a = inference.attributions(eid, text)
    assert a["method"].startswith("Occlusion on the ensemble")
    assert [w["text"] for w in a["words"]] == text.split() and a["scored"] == a["n_words"] == 7
    assert a["probs"] == pytest.approx(inference.predict(eid, text)["probs"], abs=1e-6)
    lab = a["label"]
    words = text.split()
    for k, w in enumerate(a["words"]):  # each score: the ensemble's drop when that word alone is removed
        variant = " ".join(words[:k] + words[k + 1:])
        assert w["score"] == pytest.approx(a["prob"] - inference.predict(eid, variant)["probs"][lab], abs=1e-6)
    assert [m["id"] for m in a["members"]] == [trio["flip"], trio["clas"]]
    one = inference.attributions(eid, "superb")
    assert one["words"][0]["score"] is None  # nothing is left to judge once the only word is removed


def test_attributions_under_a_time_budget_stop_early_and_say_so(trio, capsys):
    "A page's budget holds for an ensemble too: the whole text is always judged, the words scored in time only."
    eid = build(capsys, trio["flip"], trio["clas"], name="flip+fwd")
    text = " ".join(["the plot was superb and the cast"] * 6)  # 42 words: three steps of BUDGET_STEP texts
    whole = inference.attributions(eid, text)
    assert whole["scored"] == whole["n_words"] == 42 and whole["timed_out"] is False
    cut = inference.attributions(eid, text, budget_s=0)  # spent after the first step
    assert cut["timed_out"] is True and cut["scored"] == ensemble.BUDGET_STEP - 1 < cut["n_words"] == 42
    assert cut["probs"] == pytest.approx(whole["probs"], abs=1e-6) and cut["label"] == whole["label"]
    assert [w["score"] for w in cut["words"][:cut["scored"]]] == pytest.approx(
        [w["score"] for w in whole["words"][:cut["scored"]]], abs=1e-6)
    assert all(w["score"] is None for w in cut["words"][cut["scored"]:])


# ---------------------------------------------------------------------------------------------------- refusals

def _state():
    return sorted(r["id"] for r in models.list_models()), sorted(p.name for p in models.models_dir().iterdir())


@pytest.mark.parametrize("case", ["labels_differ", "missing", "one", "language_model", "nested", "twice",
                                  "bad_weights", "bad_eval_dataset"])
def test_refusals_say_why_and_store_nothing(trio, capsys, case):
    other = baseline.fit(["great fun film", "awful boring film", "great film", "awful film"],
                         ["good", "bad", "good", "bad"])
    odd = models.save_baseline(other, name="good/bad baseline", corpus="other")
    if case == "nested":
        inner = build(capsys, trio["clas"], trio["bwd"], name="inner")
    before = _state()
    argv = {"labels_differ": [trio["clas"], odd],
            "missing": [trio["clas"], "clas-20200101-000000-dead"],
            "one": [trio["clas"]],
            "language_model": [trio["clas"], trio["lm"]],
            "nested": [inner if case == "nested" else "", trio["base"]],
            "twice": [trio["clas"], trio["clas"]],
            "bad_weights": [trio["clas"], trio["bwd"], "--weights", "1", "0"],
            "bad_eval_dataset": [trio["clas"], trio["bwd"], "--eval-dataset", "no_such_corpus"]}[case]
    rc, out, err = cli(capsys, "models", "ensemble", *argv, "--name", "nope", "--json")
    assert rc == 1 and out == ""
    want = {"labels_differ": ["same labels", "negative, positive", "bad, good"],
            "missing": ["Cannot build the ensemble", "no model 'clas-20200101-000000-dead'"],
            "one": ["at least two models"],
            "language_model": ["tiny LM", "not a classifier"],
            "nested": ["itself an ensemble", trio["clas"], trio["bwd"], "not nested"],
            "twice": ["more than once"],
            "bad_weights": ["positive"],
            "bad_eval_dataset": ["no_such_corpus"]}[case]
    for w in want:
        assert w in err, err
    assert _state() == before
    assert not any(r["name"] == "nope" for r in models.list_models())


def test_an_ensemble_cannot_generate_or_be_exported_for_fastai(trio, capsys, tmp_path):
    eid = build(capsys, trio["clas"], trio["base"])
    with pytest.raises(models.ModelError, match="ensemble of sentiment classifiers"):
        inference.generate(eid, "This movie")
    with pytest.raises(models.ModelError, match="no weights of its own"):
        models.export_fastai(eid, tmp_path / "e.pkl")
    assert not (tmp_path / "e.pkl").exists()


# ---------------------------------------------------------------------------------------------------- delete, bundles

def test_a_member_in_use_cannot_be_deleted_and_the_message_names_the_ensemble(trio, capsys):
    eid = build(capsys, trio["clas"], trio["base"], name="critics")
    assert [u["id"] for u in ensemble.used_by(trio["base"])] == [eid]
    with pytest.raises(models.ModelError, match="member of the ensemble 'critics'") as e:
        models.delete(trio["base"])
    assert eid in str(e.value) and "Delete the ensemble first" in str(e.value)
    rc, _, err = cli(capsys, "models", "delete", trio["base"])
    assert rc == 1 and "critics" in err
    assert (models.models_dir() / trio["base"]).is_dir() and models.get(trio["base"])
    assert inference.predict(eid, TEXTS[0])["label"]  # still whole
    # a member's files changing changes the ensemble's stamp, so cached answers are not served stale
    s = models.stamp(eid)
    models.rename(trio["base"], "renamed baseline")
    assert models.stamp(eid) != s
    assert cli(capsys, "models", "delete", eid)[0] == 0
    assert cli(capsys, "models", "delete", trio["base"])[0] == 0
    assert trio["base"] not in {r["id"] for r in models.list_models()}


def test_bundle_carries_the_members_and_imports_elsewhere_predicting_the_same(trio, capsys, tmp_path, monkeypatch):
    members = [trio["clas"], trio["bwd"], trio["base"]]
    eid = build(capsys, *members, name="travelling", extra=("--weights", "2", "1", "1"))
    want = {t: inference.predict(eid, t) for t in TEXTS}
    out = tmp_path / "ens.zip"
    rc, _, err = cli(capsys, "models", "export", eid, "--out", out)
    assert rc == 0, err
    with zipfile.ZipFile(out) as z:
        assert sorted(z.namelist()) == ["README.md", "members/0.zip", "members/1.zip", "members/2.zip", "meta.json"]
        assert "weighted mean" in z.read("README.md").decode()
    # another machine: an empty home
    monkeypatch.setenv("ULMFIT_DEMO_HOME", str(tmp_path / "other-home"))
    assert models.list_models() == []
    rc, got, err = cli(capsys, "models", "import", out)
    assert rc == 0, err
    new = got.strip()
    rows = {r["id"]: r for r in models.list_models()}
    assert rows[new]["kind"] == "ensemble" and rows[new]["name"] == "travelling" and len(rows) == 4
    meta = models.read_meta(new)
    assert [rows[m["id"]]["name"] for m in meta["members"]] == ["tiny classifier", "tiny backward classifier",
                                                                 "tiny baseline"]
    assert {m["id"] for m in meta["members"]} == set(rows) - {new}
    assert [m["weight"] for m in meta["members"]] == pytest.approx([0.5, 0.25, 0.25])
    for t in TEXTS:
        res = inference.predict(new, t)
        assert res["label"] == want[t]["label"]
        assert res["probs"] == pytest.approx(want[t]["probs"], abs=1e-6)
    # a bundle with a member missing is refused and leaves nothing behind
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(out) as z, zipfile.ZipFile(bad, "w") as w:
        for n in z.namelist():
            if n != "members/2.zip":
                w.writestr(n, z.read(n))
    before = sorted(models.models_dir().iterdir())
    with pytest.raises(models.ModelError, match="members/2.zip"):
        models.import_bundle(bad)
    assert sorted(models.models_dir().iterdir()) == before


def test_an_ensemble_with_the_bundled_model_reuses_it_on_import(bundled_awd, trio, capsys, tmp_path):
    eid = build(capsys, bundled_awd, trio["base"], name="bundled+baseline")
    res = inference.predict(eid, TEXTS[0])
    assert res["probs"] == pytest.approx(mean_of_members([bundled_awd, trio["base"]], TEXTS[0]), abs=1e-9)
    data = models.bundle_bytes(eid)
    n_before = len(models.list_models())
    new = models.import_bundle(data, name="again")
    # the bundled member is this machine's own bundled model (same weights): not copied; the baseline is
    assert [m["id"] for m in models.read_meta(new)["members"]][0] == bundled_awd
    assert len(models.list_models()) == n_before + 2
    assert inference.predict(new, TEXTS[0])["probs"] == pytest.approx(res["probs"], abs=1e-9)


# ---------------------------------------------------------------------------------------------------- measuring

def test_evaluate_counts_what_each_member_and_the_ensemble_got_right(trio, capsys):
    eid = build(capsys, trio["clas"], trio["bwd"], trio["base"])
    df = tiny_models.demo_frame()
    val = df[df["is_valid"]].head(40)
    texts, truth = val["text"].tolist(), val["label"].tolist()
    res = ensemble.evaluate(eid, texts + ["a text of an unknown label"], truth + ["neutral"])
    assert res["n"] == 40 and res["n_left_out"] == 1
    ens_rows = inference.predict_batch(eid, texts)
    assert res["accuracy"] == pytest.approx(np.mean([r["label"] == t for r, t in zip(ens_rows, truth)]))
    for m in res["members"]:
        alone = inference.predict_batch(m["id"], texts)
        assert m["accuracy"] == pytest.approx(np.mean([r["label"] == t for r, t in zip(alone, truth)]))
    assert models.get(eid)["metrics"] == {}  # evaluate measures; it does not store
    ensemble.record_evaluation(eid, dict(res, dataset="demo (first 40)"))
    assert models.get(eid)["metrics"]["accuracy"] == res["accuracy"]
    assert "demo (first 40)" in ensemble.evaluation_line(models.read_meta(eid))
    # the short form (a page with every member's figure in a table) names only the best member, with its figure
    short = ensemble.evaluation_line(models.read_meta(eid), members=False)
    top = max(res["members"], key=lambda m: m["accuracy"])
    assert short.startswith(f"Ensemble {res['accuracy']:.1%} on the 40 validation reviews of demo (first 40): ")
    assert f"best member ({top['name']}, {top['accuracy']:.1%})" in short
    assert all(m["name"] not in short for m in res["members"] if m["name"] != top["name"])
    # the Models page's "where does it go wrong" takes an ensemble too, and agrees with evaluate on all valid rows
    from ulmfit_demo.data import corpora
    from ulmfit_demo.models import interpret

    it = interpret.interpret(eid, corpora.load("demo"))
    every = ensemble.evaluate(eid, df[df["is_valid"]]["text"].tolist(), df[df["is_valid"]]["label"].tolist())
    assert it.n_docs == every["n"] == 112 and it.accuracy == pytest.approx(every["accuracy"])
    assert it.labels == ["negative", "positive"] and int(it.confusion.values.sum()) == 112


def test_cli_eval_dataset_stores_the_measured_figures(trio, capsys):
    rc, out, err = cli(capsys, "models", "ensemble", trio["clas"], trio["base"], "--name", "measured",
                       "--eval-dataset", "demo", "--eval-max", "30", "--json")
    assert rc == 0, err
    got = json.loads(out)
    eid, ev = got["model_id"], got["evaluation"]
    assert ev["dataset"] == "demo" and ev["n"] == 30 and ev["sampled"] and ev["n_valid"] == 112
    meta = models.read_meta(eid)
    assert meta["evaluation"]["accuracy"] == ev["accuracy"]
    assert models.get(eid)["metrics"] == {"accuracy": ev["accuracy"], "n_valid": 30,
                                          "best_member_accuracy": max(m["accuracy"] for m in ev["members"])}
    # the same seeded rows, scored again, give the same figure
    df = tiny_models.demo_frame()
    valid = df[df["is_valid"]].sample(n=30, random_state=0)
    again = ensemble.evaluate(eid, valid["text"].tolist(), valid["label"].tolist())
    assert again["accuracy"] == ev["accuracy"]


# ---------------------------------------------------------------------------------------------------- pages

def test_sentiment_page_shows_the_ensemble_verdict_and_each_members(trio, capsys):
    eid = build(capsys, trio["clas"], trio["bwd"], trio["base"], name="three critics")
    at = run_page("pages/sentiment.py", sent_model=eid)
    blobs = "\n".join(m.value for m in at.markdown)
    assert "What each member says" in blobs and "% confident" in blobs
    for name in ("tiny classifier", "tiny backward classifier", "tiny baseline"):
        assert name in blobs
    assert any(c.value.startswith("Occlusion on the ensemble") for c in at.caption)
    text = at.text_area(key="sent_text").value
    for m in inference.predict(eid, text)["members"]:
        assert f"{m['probs'][m['label']]:.0%} confident" in blobs
    # what it is made of, in words; alike members side by side are counted
    assert mw.made_of(eid) == ("three critics: the average of 3 models — a forward AWD-LSTM classifier, a backward one "
                               "and a TF-IDF baseline — trained on the demo reviews.")
    four = build(capsys, trio["clas"], trio["flip"], trio["bwd"], trio["base"], name="four critics",
                 extra=("--weights", "1", "1", "1", "3"))
    assert mw.made_of(four).startswith("four critics: a weighted average of 4 models — two forward AWD-LSTM "
                                       "classifiers, a backward one and a TF-IDF baseline — trained on ")
    df = tiny_models.demo_frame()
    trn = df[~df["is_valid"]]
    nb = models.save_baseline(baseline.fit(trn["text"].tolist(), trn["label"].tolist(), nb=True), name="tiny NB",
                              corpus="demo")
    mixed = build(capsys, trio["clas"], trio["bwd"], trio["base"], nb, name="mixed critics")
    assert mw.made_of(mixed) == ("mixed critics: the average of 4 models — a forward AWD-LSTM classifier, a backward "
                                "one, a TF-IDF baseline and a Naive-Bayes-weighted one — trained on the demo reviews.")


def test_models_page_lists_the_ensemble_with_its_members_and_refuses_deleting_one(trio, capsys):
    eid = build(capsys, trio["clas"], trio["base"], name="pair", extra=("--eval-dataset", "demo", "--eval-max", "20"))
    at = run_page("pages/models.py", mdl_model=eid)
    table = at.dataframe[0].value.set_index("name")
    assert table.loc["pair", "kind"] == "ensemble"
    assert table.loc["pair", "accuracy"] == f"{models.get(eid)['metrics']['accuracy']:.1%}"
    members = next(d.value for d in at.dataframe if "member" in d.value.columns)
    assert list(members["member"]) == ["tiny classifier", "tiny baseline"]
    assert any("Ensemble" in m.value and "validation reviews of demo" in m.value for m in at.markdown)
    assert not any("Not measured" in c.value for c in at.caption)
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download bundle (.zip)" in labels and "Download fastai export (.pkl)" not in labels
    at.selectbox(key="mdl_model").set_value(trio["base"]).run()
    assert any("member of" in i.value and "pair" in i.value for i in at.info)
    at.checkbox(key="mdl_delete_confirm").check().run()
    at.button(key="mdl_delete").click().run()
    assert not at.exception
    assert any("member of the ensemble 'pair'" in e.value for e in at.error)
    assert trio["base"] in {r["id"] for r in models.list_models()}
    # an ensemble built without --eval-dataset has no accuracy of its own, and the page says so
    unmeasured = build(capsys, trio["clas"], trio["bwd"], name="not measured")
    assert any("Not measured" in c.value for c in run_page("pages/models.py", mdl_model=unmeasured).caption)
