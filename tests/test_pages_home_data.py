"""AppTest: the home and Data pages render, switch corpora, follow the sliders, and report fetch failures."""
import shutil

import pandas as pd
from support import mirror_archive, run_page

from ulmfit_demo import config
from ulmfit_demo.data import corpora as datasets, uploads

run = run_page


def test_home_shows_stages_and_machine_status():
    at = run("app.py")
    md = " ".join(m.value for m in at.markdown)
    for stage in ("General language model", "Fine-tuned language model", "Sentiment classifier"):
        assert stage in md
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Device"] in ("CPU", "GPU")
    assert int(metrics["Corpora ready"]) >= 1  # the demo corpus, always
    assert any("demo" in c.value.lower() for c in at.caption)
    # nothing trained here; the starter LM ships with the app (the fixture hides the bundled sentiment model)
    assert metrics["Models ready"] == "1"
    assert any("0 trained here, 1 shipped with the app (Starter language model)" in c.value for c in at.caption)
    # A fresh FASTAI_HOME has no WikiText-103 weights; the starter LM shipped in assets/ is the pretrained start.
    assert metrics["Pretrained encoder"] == "starter LM"


def test_home_counts_the_registered_models(ids):
    metrics = {m.label: m.value for m in run("app.py").metric}
    n_models = len([k for k in ids if k != "ref"])  # `ref` is a reference prediction, not a model
    assert metrics["Models ready"] == str(n_models + 1)  # + the starter LM shipped with the app


def test_data_page_demo_counts_and_lm_picture_follow_sliders():
    at = run("pages/data.py")
    metrics = {m.label: m.value for m in at.metric}
    n = len(datasets.load("demo").df)
    assert metrics["Documents"] == f"{n:,}"
    # fastai's padding is shown in the batch (a typical batch: the one after SortedDL's longest-first batch)...
    assert any('class="tok pad"' in m.value for m in at.markdown)
    # ...and a row longer than what is shown is cut in the middle, so the padding at its end stays in view
    from ulmfit_demo.ui import common as ui

    cut = ui.tokens_html_cut(["xxbos"] + ["word"] * 50 + ["xxpad"] * 3, 20)
    assert "22 more tokens" in cut and cut.count('class="tok pad"') == 3
    # the xxunk note gives the vocabulary and the batch's unknown share that fastai's own objects give
    from ulmfit_demo.data import batches, tokcache

    tok = tokcache.tokenized(datasets.load("demo").df, max_docs=2000)
    num = batches.numericalizer(tok[tok["label"] != ""]["tokens"].tolist())
    text = [t for r in batches.classifier_batch(tok, bs=4, seq_len=72, seed=0, num=num) for t in r["tokens"]
            if t != "xxpad"]
    n_unk = sum(t == "xxunk" for t in text)
    note = next(c.value for c in at.caption if c.value.startswith("Red `xxunk`"))
    assert f"({len(num.vocab):,} entries" in note and f"{n_unk:,} of {len(text):,} text tokens" in note
    assert 0 < n_unk < len(text)
    heads = [s.value for s in at.subheader]
    assert any("cut into 6 mini-streams" in h for h in heads)
    at.slider(key="data_lm_bs").set_value(3).run()
    assert any("cut into 3 mini-streams" in s.value for s in at.subheader)
    at.slider(key="data_lm_seq").set_value(10).run()
    assert any("windows of 10" in c.value for c in at.caption)
    # the LMDataLoader explanation states the real row length fastai used
    assert any("hold" in m.value and "tokens each" in m.value for m in at.markdown)


def test_data_page_switches_corpus():
    mirror_archive("imdb_sample.tgz")
    datasets.fetch("imdb_sample")
    at = run("pages/data.py")
    at.radio(key="data_choice").set_value("imdb_sample").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Documents"] == "1,000"
    assert at.session_state["corpus"] == "imdb_sample"
    assert any("random sample" in c.value or "all 1,000" in c.value for c in at.caption)


def test_data_page_get_with_missing_archive_shows_message_and_stays_usable(monkeypatch, tmp_path):
    monkeypatch.setenv("ULMFIT_DEMO_MIRROR", str(tmp_path))  # a mirror folder without imdb.tgz
    shutil.rmtree(config.fastai_data() / "imdb", ignore_errors=True)
    at = run("pages/data.py")
    at.radio(key="data_choice").set_value("imdb").run()
    at.button(key="data_get").click().run()
    assert not at.exception
    assert any("has no imdb.tgz" in e.value and "demo corpus still works" in e.value for e in at.error)
    at.radio(key="data_choice").set_value("demo").run()
    assert not at.exception and at.metric


def test_data_page_get_from_mirror(fastai_home):
    mirror_archive("imdb_sample.tgz")
    shutil.rmtree(config.fastai_data() / "imdb_sample", ignore_errors=True)
    at = run("pages/data.py")
    at.radio(key="data_choice").set_value("imdb_sample").run()
    at.button(key="data_get").click().run()
    assert not at.exception
    assert (config.fastai_data() / "imdb_sample" / "texts.csv").exists()
    assert {m.label: m.value for m in at.metric}["Documents"] == "1,000"


def test_data_page_with_a_2mb_review_and_no_labels():
    big = ("What a long review. " * 100_000)[:2_000_000]
    uploads.import_csv("huge", pd.DataFrame({"text": [big, "tiny one", "another"]}).to_csv(index=False).encode(), "text")
    at = run("pages/data.py", corpus="huge")
    assert at.session_state["corpus"] == "huge"
    assert any("no labels" in i.value for i in at.info)  # no classifier batch, said plainly
    at.radio(key="data_lm_src").set_value("The start of this corpus").run()
    assert not at.exception


def test_data_page_csv_upload_preview_columns_and_import():
    "The uploaded CSV's first rows and its columns are shown (and stay shown on later reruns); Import stores it."
    csv = pd.DataFrame({"review": [f"Review number {i}, quite good." for i in range(8)],
                        "label": ["pos", "neg"] * 4}).to_csv(index=False).encode()
    at = run("pages/data.py")
    at.get("file_uploader")[0].upload("mine.csv", csv, "text/csv")
    at.run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 5 and list(at.dataframe[0].value.columns) == ["review", "label"]
    assert at.selectbox(key="data_csv_text").options == ["review", "label"]
    at.slider(key="data_lm_bs").set_value(3).run()  # an unrelated rerun: the preview is still there
    assert at.selectbox(key="data_csv_text").options == ["review", "label"]
    at.selectbox(key="data_csv_label").set_value("label")
    at.text_input(key="data_csv_name").set_value("mine").run()
    at.button(key="data_csv_import").click().run()
    assert not at.exception
    assert any("Imported 8 texts as 'mine'" in s.value for s in at.success)
    assert datasets.load("mine").labels == ["neg", "pos"]
