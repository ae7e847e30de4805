"""No input breaks a page (#21): property-based tests (Hypothesis) drive `predict`, word scores, the What-if,
generate's prompt and the Tokenizers page's text through arbitrary Unicode (the classes of `nasty_inputs`), on real
models (the bundled sentiment model, the starter LM, the tiny models) and real pages (`AppTest`). Each input gives a
result or a one-line message, never an exception, and user text reaches the page's HTML only escaped.

Under CI (`CI=true`) the examples are derandomized (a fixed seed) and few; the long inputs at the app's stated limits
are explicit examples, run every time.
"""
import math
import os

import pytest
from hypothesis import HealthCheck, example, given, settings

from nasty_inputs import HTML, texts
from support import REPO
from ulmfit_demo import text as tk
from ulmfit_demo.models import inference, kinds

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Model calls take ~0.1 s and page runs ~1 s each on 2 cores: enough examples to mix the classes, few enough for CI.
settings.register_profile("fuzz", deadline=None, derandomize=CI, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
FAST = settings(settings.get_profile("fuzz"), max_examples=12 if CI else 30)
PAGE = settings(settings.get_profile("fuzz"), max_examples=5 if CI else 12)

SENT_LIMIT = 5_000  # pages/sentiment.py MAX_REVIEW
PROMPT_LIMIT = 500  # pages/generate.py: the prompt box's max_chars
LONG_WORD = "a" * 100_000
# What user HTML looks like if it reached the page unescaped (the pages' own HTML never contains these).
RAW_HTML = [h for h in HTML if h.startswith("<")]


def one_line(msg: str) -> bool:
    return bool(msg.strip()) and "\n" not in msg.strip() and "Traceback" not in msg


def check_page(at, typed: list[str]) -> None:
    "No exception; every error and warning one line; typed HTML only ever escaped in HTML-enabled markdown."
    assert not at.exception, at.exception
    for e in list(at.error) + list(at.warning):
        assert one_line(e.value), e.value
    for md in at.markdown:
        if md.proto.allow_html:
            for raw in RAW_HTML:
                if any(raw in t for t in typed):
                    assert raw not in md.value, md.value[:300]


# ----------------------------------------------------------------------------------------------------------- models

@pytest.fixture
def classifiers(ids, bundled):
    return ["bundled", ids["clas"], ids["sub"]]


@FAST
@given(text=texts)
@example(text=LONG_WORD)
@example(text=("Great acting, dull plot. " * 300)[:SENT_LIMIT])
@example(text="x" * (inference.MAX_CHARS + 1))
@example(text="\u200b\x1b")
def test_predict_and_word_scores_take_any_text(classifiers, text):
    for m in classifiers:
        labels = inference.runner(m).labels
        if kinds.blank(text):  # nothing visible (spaces, control and format characters only): a message
            with pytest.raises(inference.InferenceError) as e:
                inference.predict(m, text)
            assert one_line(str(e.value))
            continue
        p = inference.predict(m, text)
        assert p["label"] in labels and math.isclose(sum(p["probs"].values()), 1.0, rel_tol=1e-4)
        assert p["truncated"] == (len(text) > inference.MAX_CHARS)
        a = inference.attributions(m, text[:SENT_LIMIT], work=60_000, budget_s=0.6)  # as the page calls it
        assert a["label"] in labels and 0 <= a["scored"] <= a["n_words"] == len(a["words"])
        assert all(w["score"] is None or math.isfinite(w["score"]) for w in a["words"])


@FAST
@given(prompt=texts)
@example(prompt=LONG_WORD[:PROMPT_LIMIT])
@example(prompt=("I liked this movie because " * 20)[:PROMPT_LIMIT])
@example(prompt=LONG_WORD)
@example(prompt="\U0001f468\u200d\U0001f469xxbos")  # found by Hypothesis
def test_generate_continues_any_prompt(prompt):
    g = inference.generate("starter", prompt, n_words=3, n_samples=1, seed=0)
    s = g["samples"][0]
    assert len(s["tokens"]) == 3 and len(s["steps"]) == 3
    assert all(0 < step["chosen_prob"] <= 1 and step["chosen"] not in ("xxunk", "xxpad") for step in s["steps"])
    # The start-of-text token is never shown, unless the prompt itself says "xxbos" (echoed as typed).
    assert isinstance(g["texts"][0], str) and ("xxbos" not in g["texts"][0] or "xxbos" in prompt)


@pytest.fixture(scope="module")
def subword_200(tmp_path_factory):
    from ulmfit_demo.data import corpora

    part, fp = tk.corpus_sample(corpora.load("demo").df)
    return tk.train_subword(part["text"].tolist(), 200, fp)


@FAST
@given(text=texts)
@example(text=LONG_WORD)
@example(text=("Great acting, dull plot. " * 1000))
def test_tokenizer_steps_take_any_text(subword_200, text):
    text, note = tk.prepare_input(text)
    assert len(text) <= tk.MAX_INPUT_CHARS and (note is None or one_line(note))
    tr = tk.trace(text)
    assert all(isinstance(t, str) for t in tr.tokens)
    pcs = tk.subword_tokens(subword_200, text)
    assert len(tk.piece_ids(subword_200, pcs)) == len(pcs)


# ----------------------------------------------------------------------------------------------------------- pages

def _app(page: str, **state):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / page), default_timeout=180)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def sentiment_page(bundled):
    return _app("pages/sentiment.py")


@PAGE
@given(review=texts, edit=texts)
@example(review=LONG_WORD, edit="")
@example(review=("Great acting, dull plot. " * 300)[:SENT_LIMIT], edit="<script>alert(1)</script>")
@example(review="\u200b\u2060 \u202e", edit="")  # only invisible characters: nothing to judge (found by Hypothesis)
def test_the_sentiment_page_and_its_what_if_take_any_review_and_edit(sentiment_page, review, edit):
    at = sentiment_page
    at.text_area(key="sent_text").set_value(review).run()
    check_page(at, [review])
    if kinds.blank(review):
        assert any("Type a review" in i.value for i in at.info)
        return
    assert at.selectbox(key="sent_whatif_word").options  # the What-if is there, built on this review
    at.text_input(key="sent_whatif_new").set_value(edit).run()
    check_page(at, [review, edit])
    if len(review) > SENT_LIMIT:
        assert any("very long" in w.value for w in at.warning)


@pytest.fixture
def generate_page():
    return _app("pages/generate.py", gen_n_words=5)


@PAGE
@given(prompt=texts)
@example(prompt=LONG_WORD[:PROMPT_LIMIT])
@example(prompt="<b>bold</b> I liked it" + "\u202e" * 20)
def test_the_generate_page_takes_any_prompt(generate_page, prompt):
    import html

    at = generate_page
    at.text_input(key="gen_prompt").set_value(prompt).run()
    check_page(at, [prompt])
    out = [m.value for m in at.markdown if "Sample " in m.value and "seed" in m.value]
    assert len(out) == 2 and all(f"<b><bdi>{html.escape(prompt.strip())}</bdi></b>" in s for s in out)


@pytest.fixture
def tokenizers_page():
    return _app("pages/tokenizers.py", tok_sizes="200")


@PAGE
@given(text=texts)
@example(text=LONG_WORD)
@example(text="<img src=x onerror=alert(1)> " * 1000)
def test_the_tokenizers_page_takes_any_text(tokenizers_page, text):
    at = tokenizers_page
    at.text_area(key="tok_text").set_value(text).run()
    check_page(at, [text])
    if len(text) > tk.MAX_INPUT_CHARS:
        assert any("uses the first" in w.value for w in at.warning)
