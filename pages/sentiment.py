"""Sentiment: a trained classifier's verdict on a review, the words that pushed it, what-if edits, two models side by
side, and batch scoring of a CSV. Presenter mode hides the technical controls and enlarges the type."""
import html

import streamlit as st

from ulmfit_demo import models
from ulmfit_demo.data import corpora, uploads
from ulmfit_demo.models import inference, kinds
from ulmfit_demo.text import decode
from ulmfit_demo.ui import common as ui
from ulmfit_demo.ui import model_widgets as mw

# Short reviews written for this page: clear cases, a mixed one, and one with negation.
EXAMPLES = {
    "A clear favourite": "What a wonderful film! The acting is superb, the story kept me hooked from the first "
                         "minute, and I left the cinema smiling.",
    "A clear flop": "A dull, badly written mess. The jokes fall flat and I was checking my watch after twenty "
                    "minutes. Avoid it.",
    "Mixed feelings": "The photography is beautiful and the music is lovely, but the plot drags and the ending "
                      "makes no sense at all.",
    "Negation": "I did not enjoy this movie. It was not funny and not exciting, although the lead actor is not bad.",
    "Shouting": "THIS IS THE BEST MOVIE EVER!!!! Go and see it right now.",
    # Not only films: the bundled model also learned from restaurant and shop sentences and product reviews.
    "A good dinner": "The pasta was fresh, the staff were lovely and the bill was fair. We will be back next week.",
    "A gadget that failed": "The charger stopped working after three days and customer support never answered my "
                            "emails.",
}
WEAK_ACCURACY = 0.7  # below this measured validation accuracy the page says the verdicts are close to guesses
CSV_MAX_ROWS = 20_000  # beyond this use `python -m ulmfit_demo predict --csv`: the page would sit for minutes
# A review longer than this is judged on its first MAX_REVIEW characters, and the page says so. The page reads the
# review three times (verdict and word scores, What-if before and after); at this length a text of punctuation only
# (~1.2 tokens a character, the worst class of bench/bench_inputs.py) still answers in about 2 s on 2 CPU cores. Most
# reviews are shorter (IMDb's median is about 1,000 characters).
MAX_REVIEW = 5_000
# Word scores cost one pass of the whole review per word: the page scores words for about this long, then shows the
# verdict with the rest unscored (a training run may share the CPU), within at most this many words x tokens. The
# bundled model (four AWD-LSTMs and two linear models) scores the 23 words of the first example in 0.09 s on 2 idle
# cores.
ATTR_BUDGET_S = 0.6
ATTR_WORK = 60_000
WHATIF_MAX = 100  # characters of the What-if's replacement: a word or a phrase

ui.setup_page("Sentiment", ":material/sentiment_satisfied:")
presenter = st.sidebar.toggle("Presenter mode", key="sent_presenter",
                              help="Hides the technical controls and uses large type, for showing on a projector.")
if presenter:
    st.markdown("""<style>
    .stTextArea textarea {font-size: 1.5rem !important; line-height: 1.4 !important;}
    [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li {font-size: 1.3rem;}
    [data-testid="stMetricValue"] {font-size: 3rem;}
    </style>""", unsafe_allow_html=True)
else:
    st.caption("A sentiment classifier reads a review and says whether it is positive or negative, how sure it is, "
               "and which words pushed it there.")

row = mw.pick_model(kinds.CLASSIFY, "sent_model", "Sentiment model", where=st.sidebar, show=not presenter)
if row is None:
    mw.train_link("sentiment classifier")
    st.stop()


@st.cache_data(max_entries=32, show_spinner=False)
def _made_of(model_id: str, stamp: str) -> str | None:
    return mw.made_of(model_id)


try:  # an ensemble (the bundled model may be one) says what it is made of, in words for the audience too
    made = _made_of(row["id"], models.stamp(row["id"]))
except models.ModelError:
    made = None  # a broken model says so where it is used, below
if made:
    st.caption(made)
try:  # what it was measured to do, read once for the lines below
    row_meta = models.read_meta(row["id"])
except models.ModelError:
    row_meta = {}  # a broken model says so where it is used, below
tested = mw.tested_line(row_meta)  # how often it was right on each corpus's test split: for the audience too
if tested:
    st.caption(tested)
if not presenter:  # what to expect before showing it to anyone: where it was measured to go wrong
    weak = mw.weak_spots(row_meta)
    if weak:
        st.caption(weak)
acc = (row.get("metrics") or {}).get("accuracy")
base = (row.get("metrics") or {}).get("baseline_accuracy")
BASELINE_GAP = 0.05  # this far below the baseline fitted on the same split, the page says so (a demo deserves better)
if acc is not None and not presenter and (acc < WEAK_ACCURACY or (base is not None and acc < base - BASELINE_GAP)):
    b = next((m for m in models.list_models() if m["id"] == "bundled"), None)
    bt = mw.test_accuracy(models.read_meta("bundled"), "imdb") if b else None
    other = ("" if b is None or row["id"] == "bundled" else " For a demo, pick the bundled sentiment model in the "
             "sidebar" + (f" ({bt:.0%} on IMDb's 25,000 test reviews)." if bt is not None else "."))
    st.warning(f"This classifier got **{acc:.0%}** of its held-out reviews right (guessing gets about 50%"
               + (f"; a TF-IDF baseline fitted on the same reviews got **{base:.0%}**" if base is not None else "")
               + ("), so its verdicts are close to guesses." if acc < WEAK_ACCURACY else "), so trust its verdicts "
                  "less than that simple model's.") + " Small corpora do this, from scratch most of all." + other,
               icon=":material/info:")


@st.cache_data(max_entries=128, show_spinner=False)
def _attributions(model_id: str, stamp: str, text: str) -> dict:
    # `stamp` changes when the model's files change, so a replaced model never serves stale answers.
    return inference.attributions(model_id, text, work=ATTR_WORK, budget_s=ATTR_BUDGET_S)


@st.cache_data(max_entries=128, show_spinner=False)
def _predict(model_id: str, stamp: str, text: str) -> dict:
    return inference.predict(model_id, text)


def judge(model_row: dict, text: str, fn=_attributions):
    "Run the model, or show what went wrong in one line. Returns None on error."
    try:
        with st.spinner("Reading the review..."):
            return fn(model_row["id"], models.stamp(model_row["id"]), text)
    except models.ModelError as e:
        st.error(str(e))
        return None


def labels_of(model_row: dict) -> list[str]:
    return models.read_meta(model_row["id"]).get("labels", [])


def set_example():
    choice = st.session_state.get("sent_example")
    if choice in EXAMPLES:
        st.session_state["sent_text"] = EXAMPLES[choice]


if "sent_text" not in st.session_state:
    st.session_state["sent_text"] = EXAMPLES["A clear favourite"]


def show_review(model_row: dict, large: bool) -> None:
    # The example box names the example only while the review is that example's text.
    if EXAMPLES.get(st.session_state.get("sent_example")) not in (None, st.session_state.get("sent_text")):
        st.session_state["sent_example"] = "(choose one)"
    st.selectbox("Try an example", ["(choose one)"] + list(EXAMPLES), key="sent_example", on_change=set_example)
    text = st.text_area("Review", key="sent_text", height=150 if large else 120,
                        placeholder="Type or paste a movie review...",
                        help=f"Press Ctrl+Enter (or click outside the box) to judge it. Up to {MAX_REVIEW:,} "
                             f"characters.")
    st.button("Judge this review", key="sent_go", type="primary")
    if kinds.blank(text):
        st.info("Type a review above, or pick an example, to see what the model thinks.")
        return
    if len(text) > MAX_REVIEW:  # no max_chars on the box: it would cut a pasted review without a word
        st.warning(f"This review is very long ({len(text):,} characters): the page judges its first "
                   f"{MAX_REVIEW:,}. Judge longer texts with `python -m ulmfit_demo predict --text ...` (it reads "
                   f"{inference.MAX_CHARS:,}).")
        text = text[:MAX_REVIEW]
    attr = judge(model_row, text)
    if attr is None:
        return
    labels = labels_of(model_row)
    left, right = st.columns([2, 3])
    with left:
        st.markdown(mw.verdict_html(attr, labels, large), unsafe_allow_html=True)
        # On this verdict, in presenter mode too: a short text of a kind this model was measured to misread.
        caution = mw.verdict_caution(models.read_meta(model_row["id"]), text)
        if caution:
            st.caption(":material/warning: " + caution)
        st.plotly_chart(mw.probs_figure(attr["probs"], labels, large), key="sent_probs_chart",
                        config={"displayModeBar": False})
        if attr.get("members"):  # an ensemble: what each of its models said, averaged into the verdict above
            st.markdown("**What each member says**")
            st.markdown(mw.members_html(attr["members"], labels), unsafe_allow_html=True)
            if not large:
                geo = (models.read_meta(model_row["id"]).get("rule") or "mean") == "geometric"
                st.caption("The ensemble's probability of each label is the weighted "
                           + ("geometric mean of its members' (each with its own calibration applied), scaled so "
                              "the labels add up to 100%." if geo else
                              "mean of its members' (each with its own calibration applied)."))
    with right:
        st.markdown("**Which words pushed it**")
        st.markdown(mw.attribution_html(attr, labels, large), unsafe_allow_html=True)
        st.markdown(mw.attribution_legend(attr, labels), unsafe_allow_html=True)
        st.caption(attr["method"] + (f" Only the first {attr['scored']} of {attr['n_words']} words were scored"
                                     + (" (the rest would keep you waiting)." if attr.get("timed_out") else ".")
                                     if attr["scored"] < attr["n_words"] else ""))
    if attr["truncated"]:
        st.warning(f"This text is very long: only its first {inference.MAX_CHARS:,} characters were read.")
    if large or not attr.get("seen_as"):
        pass  # an ensemble's members read the text each their own way; their verdicts are shown above
    elif attr["seen_as"] == "words":  # a TF-IDF baseline
        with st.expander("How the model saw it (words)"):
            toks = [t for w in attr["words"] for t in w["tokens"]]
            st.markdown(ui.tokens_html(toks), unsafe_allow_html=True)
            st.caption(f"{len(toks)} words, lowercased. The baseline counts them and their two-word phrases (TF-IDF), "
                       f"ignoring order beyond that; a word or phrase it never saw in training counts for nothing.")
    else:
        with st.expander("How the model saw it (tokens)"):
            toks = ["xxbos"] + [t for w in attr["words"] for t in w["tokens"]]
            st.markdown(ui.tokens_html(toks), unsafe_allow_html=True)
            st.caption(f"{len(toks)} tokens. Special tokens (orange) mark capitals, repeats and the start of the "
                       f"review; hover over one for its meaning. Words the model never saw in training become xxunk.")
    what_if(model_row, attr, labels)


def what_if(model_row: dict, attr: dict, labels: list[str]) -> None:
    words = [w["text"] for w in attr["words"]]
    if not words:
        return
    st.subheader("What if...")
    # Default to the word that mattered most, so the first thing shown is the biggest move.
    scores = [w["score"] if w["score"] is not None else -1.0 for w in attr["words"]]
    best = max(range(len(words)), key=lambda i: scores[i])
    # The box offers word positions, and a position of the previous review is often valid in the next one: so a new
    # review (or a new model reading it differently) starts the What-if afresh, at its own most telling word, with
    # no replacement typed for another review.
    if st.session_state.get("sent_whatif_for") != words:
        st.session_state["sent_whatif_for"] = words
        st.session_state["sent_whatif_word"] = best
        st.session_state["sent_whatif_new"] = ""
    if st.session_state.get("sent_whatif_word") not in range(len(words)):
        st.session_state["sent_whatif_word"] = best
    a, b = st.columns(2)
    i = a.selectbox("Change this word", range(len(words)), key="sent_whatif_word",
                    format_func=lambda k: f"{words[k]}  (word {k + 1})")
    new = b.text_input("...into (leave empty to remove it)", key="sent_whatif_new", max_chars=WHATIF_MAX)[:WHATIF_MAX]
    new = "" if kinds.blank(new) else new  # nothing visible typed: the word is removed
    edited = words[:i] + ([new.strip()] if new.strip() else []) + words[i + 1:]
    text = decode.join_words(edited)
    if kinds.blank(text):
        st.info("Nothing is left of the review once that word is removed.")
        return
    res = judge(model_row, text, _predict)
    # "Before" from the same call as "after": word scores always run in fp32, `predict` may run a faster CPU copy
    # (models.fastcpu) whose probabilities differ by a point or so, which would show as a move with nothing changed.
    orig = judge(model_row, decode.join_words(words), _predict)
    if res is None or orig is None:
        return
    lab = attr["label"]
    before, after = orig["probs"][lab], res["probs"][lab]
    verb = f'replacing "{words[i]}" with "{new.strip()}"' if new.strip() else f'leaving out "{words[i]}"'
    # The same words as HTML: escaped, and isolated so a right-to-left mark typed in them cannot reverse the rest.
    bdi = lambda w: f"<bdi>{html.escape(w)}</bdi>"  # noqa: E731
    verb_html = (f'replacing "{bdi(words[i])}" with "{bdi(new.strip())}"' if new.strip()
                 else f'leaving out "{bdi(words[i])}"')
    c1, c2 = st.columns([1, 2])
    c1.metric(f"Confidence in {lab}", f"{after:.0%}", f"{(after - before) * 100:+.1f} points",
              help=f"Was {before:.0%} before {verb}.")
    c2.markdown(f'<div style="color:#57606a;font-size:0.9em">After {verb_html}:</div>'
                f'<div style="border-left:3px solid #d0d7de;padding-left:10px">{bdi(text)}</div>'
                + ("" if res["label"] == lab else
                   f'<div style="margin-top:6px;font-weight:600">The verdict flips to {html.escape(res["label"])}.</div>'),
                unsafe_allow_html=True)


def compare(model_row: dict) -> None:
    text = st.session_state.get("sent_text", "")[:MAX_REVIEW]  # as the first tab judges it
    st.write("The review from the first tab, judged by two models at once.")
    other = mw.pick_model(kinds.CLASSIFY, "sent_model_b", "Second model", exclude=model_row["id"])
    if other is None:
        st.info("There is only one sentiment classifier on this machine. Train another (for example with a "
                "different preset or corpus) to compare them here.")
        return
    if kinds.blank(text):
        st.info("Type a review in the first tab first.")
        return
    st.markdown(f'<div style="border-left:3px solid #d0d7de;padding-left:10px;margin-bottom:8px">'
                f'{html.escape(text[:600])}{"..." if len(text) > 600 else ""}</div>', unsafe_allow_html=True)
    for col, r, k in zip(st.columns(2), (model_row, other), ("a", "b")):
        with col:
            st.markdown(f"**{html.escape(mw.model_title(r))}**", unsafe_allow_html=True)
            attr = judge(r, text)
            if attr is None:
                continue
            labels = labels_of(r)
            st.markdown(mw.verdict_html(attr, labels), unsafe_allow_html=True)
            st.plotly_chart(mw.probs_figure(attr["probs"], labels), key=f"sent_cmp_chart_{k}",
                            config={"displayModeBar": False})
            st.markdown(mw.attribution_html(attr, labels), unsafe_allow_html=True)


def batch(model_row: dict) -> None:
    st.write("Upload a CSV with one review per row; every row gets the model's verdict. The download has the same "
             "rows plus `prediction`, `confidence` and one probability column per label.")
    up = st.file_uploader("CSV file", type=["csv"], key="sent_csv")
    if up is None:
        return
    data = up.getvalue()
    try:
        head = uploads.read_csv_upload(data)
    except corpora.CorpusError as e:
        st.error(str(e))
        return
    cols = list(head.columns)
    guess = next((c for c in cols if c.lower() in ("text", "review", "reviews", "comment", "sentence")), cols[0])
    if st.session_state.get("sent_csv_col") not in cols:
        st.session_state["sent_csv_col"] = guess
    col = st.selectbox("Which column holds the text?", cols, key="sent_csv_col")
    st.caption(f"{len(head):,} rows, columns: {', '.join(cols)}.")
    if len(head) > CSV_MAX_ROWS:
        st.warning(f"This file has {len(head):,} rows; the page scores at most {CSV_MAX_ROWS:,}. For bigger files use "
                   f"`python -m ulmfit_demo predict --model {model_row['id']} --csv FILE --text-col {col} --out OUT`.")
        return
    job = (model_row["id"], models.stamp(model_row["id"]), up.file_id, col)
    if st.button(f"Score {len(head):,} rows", key="sent_csv_go", type="primary"):
        try:
            bar, progress = ui.progress_bar("Scoring reviews")
            try:
                result = inference.score_csv(model_row["id"], data, col, progress)
            finally:
                bar.empty()
            st.session_state["sent_csv_result"] = (job, result)
        except models.ModelError as e:
            st.error(str(e))
            return
    done = st.session_state.get("sent_csv_result")
    if done and done[0] == job:
        out = done[1]
        counts = out["prediction"].replace("", "(blank text)").value_counts()
        st.write(" · ".join(f"**{html.escape(str(k))}**: {v:,}" for k, v in counts.items()))
        st.dataframe(out, hide_index=True, key="sent_csv_table")
        name = (up.name.rsplit(".", 1)[0] or "reviews") + "_predictions.csv"
        st.download_button("Download predictions (CSV)", inference.safe_csv(out), file_name=name, mime="text/csv",
                           key="sent_csv_download",
                           help="Cells that a spreadsheet would run as a formula (starting with =, +, -, @) get a "
                                "leading quote, so opening the file is safe.")


if presenter:
    show_review(row, large=True)
else:
    tab_one, tab_cmp, tab_csv = st.tabs(["Judge a review", "Compare two models", "Score a CSV"])
    with tab_one:
        show_review(row, large=False)
    with tab_cmp:
        compare(row)
    with tab_csv:
        batch(row)
