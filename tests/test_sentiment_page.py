"""AppTest: the Sentiment page with and without a model; every widget: examples, review box, judge button, what-if
word and replacement, the second model, CSV upload/column/score/download, presenter mode."""
from pathlib import Path

import pytest

from support import run_page
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent


def run(**state):
    return run_page("pages/sentiment.py", **state)


def html_blobs(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_without_a_model_it_says_so_and_points_to_train():
    at = run()
    assert any("no trained sentiment classifier" in i.value and "Quick run" in i.value for i in at.info)
    assert "Train" in html_blobs(at)
    assert not at.text_area  # nothing that cannot work is shown


def test_without_a_model_the_app_links_to_the_train_page():
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/sentiment.py")
    at.run()
    assert not at.exception, at.exception
    links = at.get("page_link")
    assert any("Quick run" in (l.proto.label or "") for l in links)


def test_default_review_gets_a_verdict_chart_and_coloured_words(ids):
    at = run(sent_model=ids["clas"])
    blobs = html_blobs(at)
    assert "% confident" in blobs and ("Positive" in blobs or "Negative" in blobs)
    assert len(at.get("plotly_chart")) >= 1
    assert "pushed towards positive" in blobs and "wonderful" in blobs
    assert any(c.value.startswith("Occlusion") for c in at.caption)
    assert any("tokens" in c.value for c in at.caption)  # the token view (not presenter mode)


def test_examples_fill_the_review_box(ids):
    at = run()
    at.selectbox(key="sent_example").set_value("Negation").run()
    assert not at.exception
    assert at.text_area(key="sent_text").value.startswith("I did not enjoy")
    at.button(key="sent_go").click().run()
    assert not at.exception and "% confident" in html_blobs(at)


def test_empty_review_asks_for_text(ids):
    at = run()
    at.text_area(key="sent_text").set_value("   ").run()
    assert any("Type a review" in i.value for i in at.info)
    assert "% confident" not in html_blobs(at)


def test_html_in_the_review_is_shown_as_text(ids):
    at = run()
    at.text_area(key="sent_text").set_value('<img src=x onerror="alert(1)"><b>bold</b> superb film').run()
    assert not at.exception
    blobs = html_blobs(at)
    assert "<img" not in blobs and "<b>" not in blobs
    assert "&lt;img" in blobs or "&lt;" in blobs


def test_emoji_only_and_one_megabyte_reviews(ids):
    at = run(sent_model=ids["clas"])
    at.text_area(key="sent_text").set_value("😀😀😀").run()
    assert not at.exception and "% confident" in html_blobs(at)
    at.text_area(key="sent_text").set_value("Good acting and a fine plot. " * 36_000).run()
    assert not at.exception
    assert any("very long" in w.value for w in at.warning)
    assert any("Only the first" in c.value for c in at.caption)


def test_what_if_editing_the_deciding_word_moves_and_flips_the_verdict(ids):
    at = run(sent_model=ids["flip"], sent_text="the film was superb and the plot long")
    # the what-if box starts on the word that mattered most
    words = at.selectbox(key="sent_whatif_word")
    assert words.format_func(words.value).startswith("superb")
    metric = next(m for m in at.metric if m.label.startswith("Confidence in positive"))
    assert metric.delta.startswith("-")  # leaving it out costs confidence
    at.text_input(key="sent_whatif_new").set_value("awful").run()
    assert "the film was awful and" in html_blobs(at) and "flips to negative" in html_blobs(at)
    at.text_input(key="sent_whatif_new").set_value("")
    at.selectbox(key="sent_whatif_word").set_value(0).run()  # leave out "the" instead: no flip
    assert not at.exception and "flips" not in html_blobs(at)


def test_two_models_side_by_side(ids):
    at = run(sent_model=ids["flip"], sent_text="superb")
    second = at.selectbox(key="sent_model_b")
    assert ids["flip"] not in second.options  # the first model is not offered twice
    second.set_value(ids["clas"]).run()
    assert not at.exception
    blobs = html_blobs(at)
    assert "flip-word classifier" in blobs and "tiny classifier" in blobs
    assert blobs.count("% confident") >= 3  # first tab + two columns


def test_only_one_classifier_means_nothing_to_compare(home):
    import tiny_models as tm

    ids = tm.install(home)
    from ulmfit_demo import models
    for k in ("flip", "sub"):
        models.delete(ids[k])
    at = run()
    assert any("only one sentiment classifier" in i.value for i in at.info)


def test_csv_batch_scoring_with_column_choice_and_download(ids):
    at = run(sent_model=ids["clas"])
    data = b"id,comment,other\n1,=cmd|' /C calc'!A0 great,x\n2,dull,y\n3,,z\n"
    at.get("file_uploader")[0].upload("reviews.csv", data, "text/csv")
    at.run()
    assert not at.exception
    col = at.selectbox(key="sent_csv_col")
    assert col.value == "comment" and col.options == ["id", "comment", "other"]
    at.button(key="sent_csv_go").click().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["prediction"][:2]) != [] and table["prediction"][2] == ""
    assert {"confidence", "p_negative", "p_positive"} <= set(table.columns)
    dl = at.get("download_button")
    assert dl and "Download predictions" in dl[0].proto.label
    dl[0].click().run()
    assert not at.exception
    # choosing another column and scoring again replaces the table
    at.selectbox(key="sent_csv_col").set_value("other").run()
    assert not at.dataframe  # the old result belongs to the other column
    at.button(key="sent_csv_go").click().run()
    assert at.dataframe[0].value["other"].tolist() == ["x", "y", "z"]


def test_unreadable_csv_gets_a_message(ids):
    at = run()
    at.get("file_uploader")[0].upload("empty.csv", b"", "text/csv")
    at.run()
    assert not at.exception
    assert any("empty" in e.value for e in at.error)


def test_presenter_mode_hides_controls_keeps_the_model_and_enlarges_type(ids):
    at = run()
    at.selectbox(key="sent_model").set_value(ids["flip"]).run()
    at.toggle(key="sent_presenter").set_value(True).run()
    assert not at.exception
    assert not at.sidebar.selectbox  # no model picker
    assert not at.tabs and not at.get("file_uploader")
    blobs = html_blobs(at)
    assert "font-size: 1.5rem" in blobs and "2.6rem" in blobs
    at.text_area(key="sent_text").set_value("superb").run()
    assert "Positive" in html_blobs(at)  # still the flip model, which knows "superb"
    at.toggle(key="sent_presenter").set_value(False).run()
    assert at.sidebar.selectbox(key="sent_model").value == ids["flip"]


def test_damaged_model_shows_a_message_not_a_trace(ids, home):
    w = home / "models" / ids["clas"] / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:200])
    at = run(sent_model=ids["clas"])
    assert any("truncated" in e.value for e in at.error)


def test_a_weak_classifier_is_called_weak_with_its_measured_accuracy(ids):
    from ulmfit_demo import models

    weak, strong = models.get(ids["clas"])["metrics"]["accuracy"], models.get(ids["flip"])["metrics"]["accuracy"]
    assert weak < 0.7 <= strong, (weak, strong)  # the tiny models: a one-epoch demo classifier, a one-word rule
    warned = [w.value for w in run(sent_model=ids["clas"]).warning]
    assert any(f"**{weak:.0%}**" in w and "close to guesses" in w for w in warned), warned
    assert not [w.value for w in run(sent_model=ids["flip"]).warning if "close to guesses" in w.value]
    # presenter mode hides it: the presenter has already seen it
    assert not [w.value for w in run(sent_model=ids["clas"], sent_presenter=True).warning]


def test_a_weak_classifier_points_at_the_bundled_model_with_its_imdb_test_figure(ids, bundled):
    "Beside the shipped model, the warning says which model to demo instead, with the figure its build measured."
    from ulmfit_demo import models
    from ulmfit_demo.ui import model_widgets as mw

    imdb = mw.test_accuracy(models.read_meta("bundled"), "imdb")
    assert imdb is not None  # the shipped build measured it
    warned = [w.value for w in run(sent_model=ids["clas"]).warning]
    assert any(f"pick the bundled sentiment model in the sidebar ({imdb:.0%} on IMDb's 25,000 test reviews)" in w
               for w in warned), warned


def test_the_tested_line_says_only_what_the_build_recorded():
    from ulmfit_demo.ui import model_widgets as mw

    meta = {"build": {"chosen": "x", "candidates": {
        "x": {"eval": {"imdb": {"accuracy": 0.918, "n": 25000}, "yelp_sentences": {"accuracy": 0.97, "n": 10000},
                       "ood": {"accuracy": 0.77, "n": 200}}},
        "baseline": {"eval": {"imdb": {"accuracy": 0.896}, "yelp_sentences": {"accuracy": 0.955}}}}}}
    assert mw.tested_line(meta) == (
        "Tested on texts like the ones it learned from, but never shown to it in training: right on 92% of 25,000 "
        "IMDb reviews and 97% of 10,000 Yelp sentences (a TF-IDF baseline trained on the same texts: 90% and 96%).")
    assert mw.test_accuracy(meta, "imdb") == 0.918 and mw.test_accuracy(meta, "amazon_reviews") is None
    # a baseline figure missing for one set: no baseline clause rather than a partial one
    del meta["build"]["candidates"]["baseline"]["eval"]["yelp_sentences"]
    assert mw.tested_line(meta).endswith("Yelp sentences.")
    # the out-of-domain sentences alone are `weak_spots`' line; a run's model has no build
    assert mw.tested_line({"build": {"chosen": "x", "candidates": {"x": {"eval": {"ood": {"accuracy": 0.7,
                                                                                         "n": 200}}}}}}) is None
    assert mw.tested_line({}) is None and mw.test_accuracy({}, "imdb") is None
    assert mw.tested_line({"build": "not a dict"}) is None


def test_the_page_names_the_weak_spots_measured_out_of_domain(home):
    """A model judged on the out-of-domain sentences (as every run's classifier is): the page says how often it was
    right and names the kinds of sentence it gets right less than 70% of the time, with the measured figures."""
    from ulmfit_demo import models
    from ulmfit_demo.judge import baseline, ood
    from ulmfit_demo.ui import model_widgets as mw

    words = {"positive": "great wonderful loved superb", "negative": "awful boring hated terrible"}
    texts = [f"{w} film {i}" for i in range(20) for lab, w in words.items()]
    labels = [lab for _ in range(20) for lab in words]
    base = baseline.fit(texts, labels, min_df=1)
    res = ood.score(base.predict)
    mid = models.save_baseline(base, name="word list", corpus="demo", judge={"ood": res})
    line = mw.weak_spots(models.read_meta(mid))
    assert line.startswith(f"Measured on 200 short everyday sentences it never trained on: right "
                           f"{res['ood_accuracy']:.0%} of the time")
    weak = [k for k, a in res["by_phenomenon"].items() if a < mw.WEAK_KIND]
    assert weak  # a word list cannot read "not bad at all"
    for k in weak:
        assert f"{res['by_phenomenon'][k]:.0%} of {mw.OOD_KINDS[k]}" in line.split("but only")[1]
    at = run(sent_model=mid)
    assert line in [c.value for c in at.caption]
    assert line not in [c.value for c in run(sent_model=mid, sent_presenter=True).caption]
    # On a verdict, in presenter mode too: a short text with the mark of a weak kind gets a caution naming the word
    # and the figure measured; a text without one, none.
    assert res["by_phenomenon"]["negation"] < mw.WEAK_KIND
    neg = f"{res['by_phenomenon']['negation']:.0%} of negations such as \"not bad at all\""
    for presenter in (False, True):
        caps = [c.value for c in run(sent_model=mid, sent_text="Honestly, I wasn't bored once.",
                                     sent_presenter=presenter).caption]
        assert any("Take this verdict with care" in c and '("wasn\'t")' in c and neg in c for c in caps), caps
        caps = [c.value for c in run(sent_model=mid, sent_text="A superb film.", sent_presenter=presenter).caption]
        assert not any("Take this verdict with care" in c for c in caps), caps
    # a model never judged out of domain says nothing rather than something made up
    assert mw.weak_spots({"judge": {}}) is None and mw.weak_spots({}) is None
    strong = {"ood_accuracy": 0.9, "n": 200, "by_phenomenon": {k: 0.9 for k in mw.OOD_KINDS}}
    assert "at least 70% on every kind of sentence" in mw.weak_spots({"judge": {"ood": strong}})
    # A model that calls most of the balanced set one thing is said to lean that way, with the share it called so.
    assert "leans" not in mw.weak_spots({"judge": {"ood": dict(strong, positive_rate=0.64)}})
    assert mw.weak_spots({"judge": {"ood": dict(strong, positive_rate=0.9)}}).endswith(
        "It leans positive: it called 90% of them positive, where half are.")
    assert mw.weak_spots({"judge": {"ood": dict(strong, positive_rate=0.25)}}).endswith(
        "It leans negative: it called 75% of them negative, where half are.")


def test_a_verdict_caution_needs_a_short_text_the_mark_of_a_weak_kind_and_a_measurement():
    from ulmfit_demo.ui import model_widgets as mw

    meta = {"judge": {"ood": {"ood_accuracy": 0.77, "n": 200,
                              "by_phenomenon": {"negation": 0.55, "contrast": 0.6, "plain": 0.97, "sarcasm": 0.3}}}}
    line = mw.verdict_caution(meta, "I couldn\u2019t be happier with this blender.")
    assert '("couldn\u2019t")' in line and '55% of negations such as "not bad at all"' in line
    assert '("but")' in mw.verdict_caution(meta, "The wait was long, but the food was worth it.")
    assert '"never"' in mw.verdict_caution(meta, "The wait was never long, but it was loud.")  # the first kind named
    assert mw.verdict_caution(meta, "A notable, nothingness-free film.") is None  # words only, not parts of words
    assert mw.verdict_caution(meta, "It was not good. " + "More words here. " * 20) is None  # a long review
    strong = {"judge": {"ood": {"by_phenomenon": {"negation": 0.8, "contrast": 0.9}}}}
    assert mw.verdict_caution(strong, "Not bad at all.") is None  # not a weak spot of this model
    assert mw.verdict_caution({}, "Not bad at all.") is None  # never measured: nothing made up


def test_a_fresh_machine_judges_with_the_bundled_model(bundled):
    "Nothing trained yet: the page picks the bundled model and judges the default review, with no weak-model warning."
    at = run()
    blobs = html_blobs(at)
    assert "% confident" in blobs and "Positive" in blobs  # the default review is a clear favourite
    assert not any("close to guesses" in w.value for w in at.warning)
    assert not any("no trained sentiment classifier" in i.value for i in at.info)
    # what it was tested on, from the figures its build recorded, for the audience (presenter mode too)
    from ulmfit_demo import models
    from ulmfit_demo.ui import model_widgets as mw

    line = mw.tested_line(models.read_meta("bundled"))
    assert line and "IMDb reviews" in line and any(c.value == line for c in at.caption)
    assert any(c.value == line for c in run(sent_presenter=True).caption)


@pytest.mark.parametrize("example, label", [("A good dinner", "Positive"), ("A gadget that failed", "Negative"),
                                            ("A clear flop", "Negative")])
def test_the_examples_get_the_verdict_a_reader_gives_them_from_the_bundled_model(bundled, example, label):
    "The examples offered for a demo, films and not, are judged as any reader would by the model a demo uses."
    at = run()
    at.selectbox(key="sent_example").set_value(example).run()
    at.button(key="sent_go").click().run()
    verdict = next(m.value for m in at.markdown if "% confident (" in m.value)  # the verdict comes first
    assert f"{label}</div>" in verdict, verdict


def test_a_damaged_bundled_model_gives_the_message_and_the_page_still_works(tmp_path, monkeypatch, bundled):
    import shutil

    bad = tmp_path / "sentiment"
    shutil.copytree(bundled, bad)
    with open(sorted(bad.rglob("weights.safetensors"))[0], "r+b") as f:  # the classifier's or an ensemble part's
        f.seek(4096)
        f.write(b"\x00\x00\x00")
    monkeypatch.setenv("ULMFIT_DEMO_BUNDLED", str(bad))
    at = run()
    assert any("weights.safetensors is damaged" in e.value for e in at.error)
