"""AppTest: the Models page: registry table, model choice, rename, delete (with confirmation), export buttons,
bundle import, .pkl import behind the trust checkbox, and the interpretation section."""
import pickle

from support import run_page

from ulmfit_demo import models


def run(**state):
    return run_page("pages/models.py", **state)


def test_without_models_it_says_so_and_still_offers_import():
    at = run()
    assert any("no trained model" in i.value for i in at.info)
    assert at.get("file_uploader")  # importing a bundle is how a machine without training gets a model
    # No table of models; the tables left are the shipped starter's figures and the label-efficiency curve measured
    # when the app was built.
    assert [list(d.value.columns)[0] for d in at.dataframe] == ["source", "method"]


def test_the_shipped_starter_says_what_it_read_and_its_perplexity_per_source(monkeypatch, tmp_path):
    from ulmfit_demo.models import starter

    fwd, bwd = starter.card(), starter.card(starter.folder(backwards=True))
    assert fwd and bwd
    at = run()
    table = next(d.value for d in at.dataframe if "source" in d.value.columns)
    want = {starter.SOURCES[k]: v for k, v in fwd["valid_by_source"].items()}
    assert sorted(table["source"]) == sorted(want)
    for _, r in table.iterrows():  # the card's own figures, forward and backward
        assert r["forward: per token"] == f"{want[r['source']]['perplexity']:,.1f}"
        back = {starter.SOURCES[k]: v for k, v in bwd["valid_by_source"].items()}[r["source"]]
        assert r["backward: per word"] == f"{back['word_perplexity']:,.0f}"
    assert any("Starter language model" in m.value and f"{fwd['tokens_seen'] / 1e6:,.1f}M tokens" in m.value
               for m in at.markdown)
    monkeypatch.setenv("ULMFIT_DEMO_STARTER", str(tmp_path / "no-starter"))
    at = run()
    assert not any("source" in d.value.columns for d in at.dataframe)
    assert not any("Starter language model" in m.value for m in at.markdown)


def test_registry_table_and_export_buttons(ids):
    at = run()
    table = at.dataframe[0].value
    names = {k: models.get(ids[k])["name"] for k in ("lm", "clas", "flip", "sub")}
    assert sorted(table["name"]) == sorted(names.values())
    assert {"name", "kind", "corpus", "accuracy", "perplexity", "created", "size"} <= set(table.columns)
    row = table.set_index("name").loc[names["lm"]]
    assert row["perplexity"] == f"{models.get(ids['lm'])['metrics']['perplexity']:,.1f}"
    # the selected model's id (for the CLI) and its run are spelled out under the picker
    sel = models.get(at.selectbox(key="mdl_model").value)
    origin = f"run `{sel['run_id']}`" if sel["run_id"] else "trained here"
    assert any(f"id `{sel['id']}`" in c.value and origin in c.value for c in at.caption)
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download bundle (.zip)" in labels and "Download fastai export (.pkl)" in labels
    at.selectbox(key="mdl_model").set_value(ids["lm"]).run()
    assert not at.exception


def test_rename(ids):
    at = run(mdl_model=ids["clas"])
    at.text_input(key=f"mdl_new_name_{ids['clas']}").set_value("Cinema critic").run()
    at.button(key="mdl_rename").click().run()
    assert not at.exception
    assert models.get(ids["clas"])["name"] == "Cinema critic"
    assert any("Renamed" in s.value for s in at.success)
    at.text_input(key=f"mdl_new_name_{ids['clas']}").set_value("  ").run()
    at.button(key="mdl_rename").click().run()
    assert any("empty" in e.value for e in at.error)


def test_delete_needs_the_confirmation(ids):
    at = run(mdl_model=ids["flip"])
    assert at.button(key="mdl_delete").disabled
    at.checkbox(key="mdl_delete_confirm").check().run()
    at.button(key="mdl_delete").click().run()
    assert not at.exception
    assert ids["flip"] not in {r["id"] for r in models.list_models()}
    assert any("Deleted" in s.value for s in at.success)


def test_import_a_bundle(ids, tmp_path):
    data = models.export_bundle(ids["clas"], tmp_path / "b.zip").read_bytes()
    at = run()
    at.get("file_uploader")[0].upload("b.zip", data, "application/zip")
    at.run()
    at.text_input(key="mdl_import_name").set_value("from a friend")
    at.button(key="mdl_import_go").click().run()
    assert not at.exception
    assert "from a friend" in {r["name"] for r in models.list_models()}
    assert any("Imported" in s.value for s in at.success)


def test_import_a_bad_bundle_shows_the_reason(ids):
    at = run()
    at.get("file_uploader")[0].upload("b.zip", b"PK\x03\x04 not really", "application/zip")
    at.run()
    at.button(key="mdl_import_go").click().run()
    assert not at.exception
    assert any("not a model bundle" in e.value or "damaged" in e.value for e in at.error)


class _Evil:
    path = ""

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pkl_import_warns_names_the_risk_and_needs_trust(ids, tmp_path):
    marker = tmp_path / "pwned.txt"
    ev = _Evil()
    ev.path = str(marker)
    at = run()
    at.get("file_uploader")[0].upload("export.pkl", pickle.dumps(ev), "application/octet-stream")
    at.run()
    assert not at.exception
    assert any("runs whatever code" in w.value for w in at.warning)
    assert any("io.open" in e.value for e in at.error)  # a name a fastai model never needs, shown before trusting
    assert at.button(key="mdl_import_go").disabled
    assert not marker.exists() and len(models.list_models()) == 4


def test_trusted_fastai_export_imports(ids, tmp_path):
    data = models.export_fastai(ids["clas"], tmp_path / "e.pkl").read_bytes()
    at = run()
    at.get("file_uploader")[0].upload("mine.pkl", data, "application/octet-stream")
    at.run()
    assert not at.error  # a real fastai export names nothing unexpected
    at.checkbox(key="mdl_trust").check().run()
    assert not at.button(key="mdl_import_go").disabled
    at.button(key="mdl_import_go").click().run()
    assert not at.exception
    assert any(r["source"] == "pkl" and r["name"] == "mine" for r in models.list_models())


def test_interpretation_confusion_matrix_and_mistakes(ids):
    at = run()
    at.selectbox(key="mdl_interp_model").set_value(ids["clas"]).run()
    assert at.selectbox(key="mdl_interp_corpus").value == "demo"  # the corpus the model was trained on
    at.button(key="mdl_interp_go").click().run()
    assert not at.exception
    acc = next(m for m in at.metric if m.label == "Accuracy on validation")
    assert acc.value.endswith("%")
    assert at.get("plotly_chart")
    mistakes = [d.value for d in at.dataframe if "predicted" in d.value.columns]
    assert mistakes and (mistakes[0]["actual"] != mistakes[0]["predicted"]).all()


def test_the_bundled_model_is_offered_without_rename_or_delete(bundled):
    from support import run_page

    at = run_page("pages/models.py")
    assert not at.exception
    assert any("ships with the app" in c.value for c in at.caption)
    assert not [b for b in at.button if b.key in ("mdl_rename", "mdl_delete")]
    # its comparison with the baseline on the same held-out rows, from the figures the build recorded
    fig = models.read_meta("bundled")["metrics"]
    gap = round((fig["accuracy"] - fig["baseline_accuracy"]) * 100, 1)
    who = "ULMFiT" if models.read_meta("bundled")["kind"] == "classifier" else "The ensemble"
    line = f"{who} is ahead by {gap:.1f} points" if gap > 0 else f"baseline is ahead by {-gap:.1f} points"
    assert any(line in m.value and f"same {fig['n_valid']:,} reviews" in m.value for m in at.markdown), line
    assert not any("Not measured" in c.value for c in at.caption)  # it was measured, and says so just above
    # each member alone on the held-out rows the ensemble was measured on, in the members' table, in their order
    meta = models.read_meta("bundled")
    if meta.get("members"):
        tab = next(d.value for d in at.dataframe if "member" in d.value.columns)
        assert list(tab["on the ensemble's rows"]) == [f"{m['accuracy']:.1%}" for m in meta["evaluation"]["members"]]
        assert "corpus" not in tab.columns  # every member read the ensemble's corpus: the table above says it once
    # and its figures on each test split beside the baseline fitted on the same rows, as the build recorded them
    ev = meta["build"]["candidates"][meta["build"]["chosen"]]["eval"]
    base = meta["build"]["candidates"]["baseline"]["eval"]
    tests = next(d.value for d in at.dataframe if "this model" in d.value.columns)
    assert list(tests["texts"]) == [f"{f['n']:,}" for f in ev.values()]
    assert list(tests["this model"]) == [f"{f['accuracy']:.1%}" for f in ev.values()]
    assert list(tests["baseline, same training rows"]) == [f"{base[k]['accuracy']:.1%}" for k in ev]
    assert list(tests["ahead by (points)"]) == [f"{(ev[k]['accuracy'] - base[k]['accuracy']) * 100:+.1f}" for k in ev]
    assert tests["test rows"].iloc[-1] == "everyday sentences from other domains"
    assert "IMDb reviews" in set(tests["test rows"])


def test_the_test_split_table_shows_only_recorded_figures():
    from ulmfit_demo.ui import model_widgets as mw

    assert mw.test_splits_table({}) is None  # a run's model: no build, no table
    assert mw.test_splits_table({"build": {"chosen": "x", "candidates": ["not", "a", "dict"]}}) is None
    assert mw.test_splits_table({"build": {"chosen": "x", "candidates": {"x": {"eval": {}}}}}) is None
    meta = {"build": {"chosen": "x", "candidates": {
        "x": {"eval": {"imdb": {"accuracy": 0.9, "n": 100, "ece": 0.02, "positive_share": 0.5},
                       "amazon_reviews": {"accuracy": 0.8},  # no n, ECE or share recorded
                       "broken": {"accuracy": "n/a"}}},  # not a figure: left out, not shown as one
        "baseline": {"eval": {"imdb": {"accuracy": 0.85}}}}}}
    t = mw.test_splits_table(meta)
    assert list(t["test rows"]) == ["IMDb reviews", "Amazon product reviews"]
    assert t.iloc[0].to_dict() == {"test rows": "IMDb reviews", "texts": "100", "this model": "90.0%",
                                   "baseline, same training rows": "85.0%", "ahead by (points)": "+5.0",
                                   "ECE": "0.020", "called positive": "50%"}
    assert t.iloc[1].to_dict() == {"test rows": "Amazon product reviews", "texts": "", "this model": "80.0%",
                                   "baseline, same training rows": "", "ahead by (points)": "", "ECE": "",
                                   "called positive": ""}
