"""Tokenizers: how a text becomes tokens and ids for an AWD-LSTM, word vs subword, with fastai's own rules."""
import streamlit as st

from ulmfit_demo import text as tk
from ulmfit_demo.data import tokcache
from ulmfit_demo.ui import common as ui
from ulmfit_demo.ui.tokenizers import CSS, MAX_CHIPS, chips, diff_html, pieces_html, special_notes

MAX_VOCAB_STEPS = [100, 250, 500, 1000, 2000, 5000, 10000, 30000, 60000]

ui.setup_page("Tokenizers", ":material/text_fields:")
st.markdown(CSS, unsafe_allow_html=True)
st.caption("A model cannot read letters: text is cut into tokens, and each token gets a number. "
           "Type a text and watch every step fastai takes.")

name = ui.corpus_picker()


# ------------------------------------------------------------------------------------------------ cached work

@st.cache_resource(show_spinner="Loading the corpus...", max_entries=4)
def corpus_sample(corpus: str, stamp: str):
    "The corpus sample SentencePiece and the vocabulary learn from, its content hash, and the corpus size."
    df = ui.load_corpus(corpus, stamp).df
    part, fp = tk.corpus_sample(df)
    return part, fp, len(df)


@st.cache_data(show_spinner=False, max_entries=64)
def trace(text: str):
    return tk.trace(text)


@st.cache_resource(show_spinner="Tokenizing the corpus with fastai (cached after the first time)...", max_entries=4)
def word_docs(fp: str, _part):
    return tokcache.tokenized(_part, max_docs=None)["tokens"].tolist()


@st.cache_resource(show_spinner=False, max_entries=16)
def vocab(fp: str, min_freq: int, max_vocab: int, _docs):
    return tk.build_vocab(_docs, min_freq, max_vocab)


@st.cache_resource(show_spinner=False, max_entries=32)
def subword(fp: str, size: int, with_rules: bool, _texts):
    "(model, None) or (None, message): a size SentencePiece refuses is a message, not an exception."
    try:
        return tk.train_subword(_texts, size, fp, with_rules), None
    except tk.SubwordError as e:
        return None, str(e)


@st.cache_resource(show_spinner=False, max_entries=32)
def subword_docs(fp: str, size: int, with_rules: bool, _model, _texts):
    return tk.subword_corpus(_model, _texts)


@st.cache_data(show_spinner=False, max_entries=16)
def word_sweep(fp: str, min_freq: int, emb_sz: int, _docs):
    return tk.word_sweep(_docs, min_freq, emb_sz)


@st.cache_resource(show_spinner=False)
def emb_default() -> int:
    return tk.default_emb_sz()


def train_all(fp, sizes, with_rules, texts) -> dict:
    "Every size's model; sizes not trained before get a progress bar (SentencePiece takes seconds on big samples)."
    todo = [s for s in sizes if tk.cached_subword(fp, s, with_rules) is None]
    bar = st.progress(0.0, text="Training SentencePiece...") if todo else None
    out = {}
    for s in sizes:
        if bar is not None and s in todo:
            k = todo.index(s)
            bar.progress(k / len(todo), text=f"Training SentencePiece with {s:,} pieces ({k + 1} of {len(todo)})...")
        out[s] = subword(fp, s, with_rules, texts)
    if bar is not None:
        bar.empty()
    return out


# ------------------------------------------------------------------------------------------------ input

part, fp, n_corpus = corpus_sample(name, ui.corpus_stamp(name))
texts = part["text"].tolist()
sample_words = (f"{len(part):,} reviews of **{name}**" if len(part) == n_corpus
                else f"a sample of {len(part):,} of the {n_corpus:,} reviews of **{name}**")
presets = {p[0]: p for p in tk.PRESETS}

if "tok_text" not in st.session_state:
    st.session_state["tok_text"] = tk.PRESETS[0][1]
    st.session_state["tok_preset"] = tk.PRESETS[0][0]


def _use_preset():
    st.session_state["tok_text"] = presets[st.session_state["tok_preset"]][1]


def _use_random():
    st.session_state["tok_rand"] = st.session_state.get("tok_rand", 0) + 1
    st.session_state["tok_text"] = tk.random_review(part, st.session_state["tok_rand"])


c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
c1.selectbox("Try an example", list(presets), key="tok_preset", on_change=_use_preset)
c2.button("Random review", key="tok_random", help="A review drawn from the corpus picked in the sidebar.", on_click=_use_random, width="stretch",
          disabled=not texts)
raw = st.text_area("Text", key="tok_text", height=110,
                   help="Anything: a review, a sentence, a paragraph. Ctrl+Enter applies it.")
if raw == presets[st.session_state["tok_preset"]][1]:
    st.caption("What this example shows: " + presets[st.session_state["tok_preset"]][2])

text, cut_note = tk.prepare_input(raw)
if cut_note:
    st.warning(cut_note)
has_text = bool(text.strip())
if not has_text:
    st.info("Type or paste a text above (a movie review works well), or pick an example, to see its tokens.")

tab_word, tab_sub, tab_num, tab_sweep = st.tabs(["Word tokens", "Subword tokens", "Numbers (ids)",
                                                 "Vocabulary size"])

# ------------------------------------------------------------------------------------------------ word
with tab_word:
    if has_text:
        tr = trace(text)
        st.subheader(f"{len(tr.tokens):,} word tokens")
        st.caption("fastai's `Tokenizer(WordTokenizer())`: spaCy splits words, fastai's rules add the `xx` "
                   "markers. Hover a marker to read what it means.")
        chips(tr.tokens)
        special_notes(tr.tokens)

        st.subheader("Rule by rule")
        st.caption("fastai applies its rules to the text in this order, then spaCy splits it. "
                   "Red was taken out, green was put in.")
        for k, step in enumerate(tr.steps, 1):
            title = f"**{k}. `{step.name}`**: {step.note}"
            if not step.changed:
                st.markdown(f"<span style='color:#888'>{k}. <code>{step.name}</code>: no change here.</span>",
                            unsafe_allow_html=True, help=step.note)
            elif isinstance(step.after, str):
                st.markdown(title)
                st.markdown(diff_html(step.before, step.after), unsafe_allow_html=True)
            else:
                st.markdown(title)
                changed = None if step.name == "split" else \
                    ["changed by this rule" if b != a else "" for b, a in zip(step.before, step.after)]
                chips(step.after, changed)
        st.caption("Why the markers? The model keeps one entry per word, so 'The' and 'the' should be the same "
                   "word; `xxmaj` keeps the fact that it was capitalised as a token of its own.")

# ------------------------------------------------------------------------------------------------ subword
with tab_sub:
    st.caption(f"SentencePiece learns the most useful pieces of words from {sample_words}. "
               "A small vocabulary gives short pieces and many tokens; a large one keeps whole words.")
    s1, s2, s3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    sizes_raw = s1.text_input("Vocabulary sizes", value=", ".join(map(str, tk.DEFAULT_SUBWORD_SIZES)),
                              key="tok_sizes", help="Comma-separated; each size trains its own SentencePiece model.")
    with_rules = s2.checkbox("Apply fastai's rules first (as training does)", value=True, key="tok_sp_rules",
                             help="Off: SentencePiece sees the raw text, as in fastai's tutorial.")
    show_ids = s3.toggle("Show ids", key="tok_sp_ids")
    try:
        sizes = tk.parse_sizes(sizes_raw)
    except ValueError as e:
        st.error(str(e))
        sizes = []
    if sizes and has_text:
        models = train_all(fp, sizes, with_rules, texts)
        cols = st.columns(1 + len(sizes))
        with cols[0]:
            wt = trace(text).tokens
            st.markdown(f"**word** · {len(wt):,} tokens")
            st.markdown(pieces_html(wt), unsafe_allow_html=True)
        for col, size in zip(cols[1:], sizes):
            model, err = models[size]
            with col:
                if err:
                    st.markdown(f"**subword {size:,}**")
                    st.warning(err)
                    continue
                pcs = tk.subword_tokens(model, text)
                st.markdown(f"**subword {size:,}** · {len(pcs):,} tokens")
                st.markdown(pieces_html(pcs, tk.piece_ids(model, pcs), show_ids), unsafe_allow_html=True)
                if model.note:  # the bound is the corpus sample's, not the typed text's: say which sample
                    st.warning(f"You asked for {size:,}, but SentencePiece learns from {sample_words}, and that "
                               f"supports at most {model.n_pieces:,} pieces: {model.n_pieces:,} is the largest that "
                               f"works here (the limit comes from the corpus, not from the text above). Larger sizes "
                               f"give this same tokenizer; a bigger corpus in the sidebar gives more pieces.")
        st.caption("`▁` marks a piece that starts a new word. Hover a piece for its id in SentencePiece's "
                   "vocabulary.")

# ------------------------------------------------------------------------------------------------ numbers
with tab_num:
    st.caption(f"fastai's `Numericalize` builds a vocabulary from the word tokens of {sample_words}, then "
               "replaces each token by its position in it. Tokens that are too rare become `xxunk` (id 0).")
    n1, n2 = st.columns(2)
    min_freq = n1.slider("min_freq: keep tokens seen at least this often", 1, 10, 3, key="tok_min_freq")
    max_vocab = n2.select_slider("max_vocab: at most this many tokens", MAX_VOCAB_STEPS, value=60000,
                                 key="tok_max_vocab")
    docs = word_docs(fp, part)
    v = vocab(fp, min_freq, max_vocab, docs)
    m = st.columns(4)
    m[0].metric("Vocabulary size", f"{v.size:,}", help=f"Rows of the embedding matrix, including {v.n_fake} "
                "'xxfake' rows fastai adds to make it a multiple of 8.")
    m[1].metric("Coverage", f"{v.coverage:.1%}", help="Share of the corpus's tokens that have their own id.")
    m[2].metric("Corpus tokens", f"{v.n_tokens:,}")
    m[3].metric("Distinct tokens", f"{len(v.counter):,}")
    if has_text:
        table = tk.numericalize(v, trace(text).tokens)
        st.markdown("**This text as numbers** (hover a token for its id)")
        chips(["xxunk" if not k else t for t, k in zip(table["token"], table["in_vocab"])],
              [f"id {i}" + ("" if k else f" (was '{t}')") for t, i, k in
               zip(table["token"], table["id"], table["in_vocab"])])
        st.code(" ".join(map(str, table["id"].tolist()[:MAX_CHIPS])), language=None, wrap_lines=True)
        unk = table[~table["in_vocab"]].drop_duplicates("token").assign(
            token=lambda d: d["token"].map(lambda t: t.replace("\n", "\\n") if t.strip() else repr(t)))
        if unk.empty:
            st.success("Every token of this text has its own id.")
        else:
            st.markdown(f"**{len(unk):,} token{'s' if len(unk) != 1 else ''} of this text became `xxunk`**, "
                        "and why:")
            st.dataframe(unk[["token", "corpus_count", "why_unknown"]], hide_index=True,
                         column_config={"corpus_count": "times in the corpus", "why_unknown": "why"})
    st.markdown("**The vocabulary starts with fastai's special tokens, then the most frequent tokens:**")
    chips(v.itos[:40], [f"id {i}" for i in range(min(40, v.size))])

# ------------------------------------------------------------------------------------------------ sweep
with tab_sweep:
    st.markdown("A bigger vocabulary means **fewer tokens per review** and **fewer unknown tokens**, but "
                "**a bigger embedding matrix**: the model learns one vector of numbers per vocabulary entry.")
    e1, e2 = st.columns([1, 3], vertical_alignment="bottom")
    emb_sz = int(e1.number_input("Embedding size", 8, 2048, value=emb_default(), step=8, key="tok_emb_sz",
                                 help="Numbers per token vector. fastai's AWD-LSTM uses "
                                      f"{emb_default()} (awd_lstm_lm_config)."))
    e2.caption(f"Measured on {sample_words}, with min_freq = {min_freq} (set on the Numbers tab). "
               "Each subword point is a SentencePiece model trained for it.")
    rows = word_sweep(fp, min_freq, emb_sz, docs)
    sweep_sizes = list(tk.SUBWORD_SWEEP)
    ready = all(tk.cached_subword(fp, s, with_rules) is not None for s in sweep_sizes)
    if not ready and not st.session_state.get("tok_sweep_on"):
        st.button(f"Add subword points (trains {len(sweep_sizes)} SentencePiece models)", key="tok_sweep",
                  on_click=lambda: st.session_state.update(tok_sweep_on=True))
    else:
        seen, capped = set(), None
        for size, (model, err) in train_all(fp, sweep_sizes, with_rules, texts).items():
            if err or model.n_pieces in seen:
                capped = capped or (model.n_pieces if model else None)
                continue
            seen.add(model.n_pieces)
            rows.append(tk.subword_point(model, subword_docs(fp, size, with_rules, model, texts), min_freq, emb_sz))
        if capped:
            st.caption(f"This corpus supports at most {capped:,} subword pieces: larger sizes give the same "
                       "tokenizer, so they are one point.")
    df = tk.sweep_frame(rows)
    figs = tk.sweep_figures(df, emb_sz)
    f = st.columns(3)
    for col, key in zip(f, ("tokens", "unk", "params")):
        col.plotly_chart(figs[key], width="stretch", key=f"tok_fig_{key}", config={"displayModeBar": False})
    st.caption("Word tokens per review do not change with the vocabulary: rare words just become `xxunk`. "
               "Subword tokenization instead cuts rare words into known pieces, so a small vocabulary costs "
               "longer sequences, not unknown tokens. Subword pieces then go through the same `Numericalize` "
               "(min_freq above), so near the largest vocabulary a corpus supports, pieces seen fewer than "
               "min_freq times become `xxunk` too.")
    with st.expander("The numbers"):
        st.dataframe(df, hide_index=True, column_config={
            "setting": "max_vocab / vocab_sz asked", "vocab_rows": "vocabulary (rows)",
            "mean_tokens": st.column_config.NumberColumn("tokens per review", format="%.1f"),
            "unk_rate": st.column_config.NumberColumn("xxunk rate", format="percent"),
            "emb_params": st.column_config.NumberColumn("embedding numbers", format="localized")})
