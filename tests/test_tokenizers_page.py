"""The Tokenizers page under Streamlit's AppTest: each section renders from real fastai output, and bad input gets
a message instead of an exception."""
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ulmfit_demo import text as tk
from ulmfit_demo.data import corpora as datasets, uploads

TIMEOUT = 240
PAGE = Path(__file__).resolve().parent.parent / "pages" / "tokenizers.py"


@pytest.fixture
def at():
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    return app.run()


def tab(app, title):
    return next(t for t in app.tabs if t.label == title)


def html_of(section) -> str:
    return "\n".join(m.value for m in section.markdown)


def set_text(app, text):
    app.text_area(key="tok_text").input(text)
    return app.run()


def test_each_section_renders(at):
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Word tokens", "Subword tokens", "Numbers (ids)", "Vocabulary size"]
    word = tab(at, "Word tokens")
    n = len(tk.trace(tk.PRESETS[0][1]).tokens)
    assert any(h.value == f"{n:,} word tokens" for h in word.subheader)
    page = html_of(word)
    for rule in ("fix_html", "replace_rep", "replace_wrep", "replace_all_caps", "replace_maj", "lowercase", "split"):
        assert f"`{rule}`" in page or f"<code>{rule}</code>" in page
    assert "<ins>xxbos </ins>" in page and "<del>" in page  # what lowercase and the others changed
    assert ui_note("xxmaj") in page  # the plain-words note for a marker that appears

    sub = html_of(tab(at, "Subword tokens"))
    assert "**subword 200**" in sub and "**subword 1,000**" in sub and "▁xxmaj" in sub
    # The demo corpus cannot support 10,000 pieces: a message says the largest that works; the others still show.
    warns = [w.value for w in tab(at, "Subword tokens").warning]
    assert any("largest that works" in w for w in warns)

    num = tab(at, "Numbers (ids)")
    assert {m.label for m in num.metric} >= {"Vocabulary size", "Coverage", "Corpus tokens"}
    assert any(c.value.split()[0] == "2" for c in num.code)  # xxbos is id 2

    sweep = tab(at, "Vocabulary size")
    assert len(sweep.get("plotly_chart")) == 3
    assert sweep.number_input(key="tok_emb_sz").value == 400


def ui_note(tok):
    import html
    from ulmfit_demo.ui.common import SPECIAL_TOKENS
    return html.escape(SPECIAL_TOKENS[tok])


def test_preset_fills_the_text_and_shows_its_tokens(at):
    at.selectbox(key="tok_preset").select("A word repeated").run()
    assert not at.exception
    assert at.text_area(key="tok_text").value == "This is very very very very good"
    assert ">xxwrep<" in html_of(tab(at, "Word tokens"))
    assert any("xxwrep" in c.value for c in at.caption)  # what this example shows


def test_typed_text_is_tokenized(at):
    at = set_text(at, "I LOVE it!!!!")
    page = html_of(tab(at, "Word tokens"))
    assert ">xxup</span>" in page and ">xxrep</span>" in page
    assert any(h.value == "8 word tokens" for h in tab(at, "Word tokens").subheader)


def test_random_review_comes_from_the_corpus(at):
    at.button(key="tok_random").click().run()
    assert not at.exception
    assert at.text_area(key="tok_text").value in set(datasets.load("demo").df["text"])


def test_empty_text_gets_a_prompt(at):
    at = set_text(at, "")
    assert not at.exception
    assert any("Type or paste a text" in i.value for i in at.info)
    assert not tab(at, "Word tokens").subheader  # nothing to show, and nothing broken
    assert len(tab(at, "Vocabulary size").get("plotly_chart")) == 3  # corpus-level sections still work


def test_one_megabyte_text_is_cut_with_a_message(at):
    big = "".join(f"Word{i % 89} " for i in range(200_000))[:1_000_000]
    at = set_text(at, big)
    assert not at.exception
    assert any("1,000,000 characters" in w.value and f"first {tk.MAX_INPUT_CHARS:,}" in w.value for w in at.warning)
    assert any("more characters" in m.value for m in tab(at, "Word tokens").markdown)  # the trace is cut too
    assert any("Showing the first" in c.value for c in tab(at, "Word tokens").caption)


def test_non_latin_text_and_emoji(at):
    at = set_text(at, "Это был отличный фильм. 素晴らしい映画でした。 😍🍿")
    assert not at.exception
    assert ">это</span>" in html_of(tab(at, "Word tokens")) and ">😍</span>" in html_of(tab(at, "Word tokens"))
    assert "😍" in html_of(tab(at, "Subword tokens"))


def test_subword_sizes_are_editable_and_bad_sizes_explained(at):
    at.text_input(key="tok_sizes").input("300").run()
    assert not at.exception
    sub = html_of(tab(at, "Subword tokens"))
    assert "**subword 300**" in sub and "**subword 200**" not in sub
    at.text_input(key="tok_sizes").input("5").run()
    assert any("out of range" in e.value for e in at.error)
    at.text_input(key="tok_sizes").input("20, 500").run()
    assert not at.exception
    warns = [w.value for w in tab(at, "Subword tokens").warning]
    assert any("too small" in w and "smallest that works" in w for w in warns)
    assert "**subword 500**" in html_of(tab(at, "Subword tokens"))  # the size that works is still shown


def test_ids_toggle_and_raw_text(at):
    at.toggle(key="tok_sp_ids").set_value(True).run()
    assert "<sub>" in html_of(tab(at, "Subword tokens"))
    at.checkbox(key="tok_sp_rules").uncheck().run()
    assert not at.exception and "▁xxmaj" not in html_of(tab(at, "Subword tokens"))  # raw text: capitals kept


def test_numbers_follow_the_sliders_and_explain_unknowns(at):
    at = set_text(at, "Zorblax is a movie")
    num = tab(at, "Numbers (ids)")
    table = num.dataframe[0].value
    assert "zorblax" in set(table["token"]) and "never seen in the corpus" in set(table["why_unknown"])
    size3 = vocab_size(at)
    at.slider(key="tok_min_freq").set_value(1).run()
    assert vocab_size(at) > size3
    at.select_slider(key="tok_max_vocab").set_value(100).run()
    # 100 kept (9 of them fastai's special tokens), then padded to a multiple of 8 with xxfake.
    assert vocab_size(at) == 104


def vocab_size(app) -> int:
    return int(next(m for m in tab(app, "Numbers (ids)").metric if m.label == "Vocabulary size").value
               .replace(",", ""))


def test_sweep_adds_subword_points(at):
    import json
    sweep = tab(at, "Vocabulary size")
    names = {d["name"] for d in json.loads(sweep.get("plotly_chart")[0].proto.spec)["data"]}
    assert names == {"word"}
    at.button(key="tok_sweep").click().run()
    assert not at.exception
    sweep = tab(at, "Vocabulary size")
    fig = json.loads(sweep.get("plotly_chart")[0].proto.spec)
    sub = next(d for d in fig["data"] if d["name"] == "subword")
    assert len(sub["x"]) >= 4 and sub["y"][0] > sub["y"][-1]  # more pieces, fewer tokens per review
    assert any("at most" in c.value for c in sweep.caption)  # the demo corpus caps the largest sizes


def test_three_sentence_corpus(home):
    df = pd.DataFrame({"text": ["The cat sat on the mat.", "A dog barked at the cat!", "We all went home."],
                       "label": ["pos", "neg", "pos"]})
    uploads.import_csv("three", df.to_csv(index=False).encode(), "text", "label")
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    app.session_state["corpus"] = "three"
    app.run()
    assert not app.exception
    assert any("3 reviews of **three**" in c.value for c in tab(app, "Subword tokens").caption)
    warns = [w.value for w in tab(app, "Subword tokens").warning]
    # 200 is already more than three sentences support: every size says so, none crashes.
    assert sum("largest that works" in w for w in warns) == 3
    assert len(tab(app, "Vocabulary size").get("plotly_chart")) == 3
