"""Data: pick or get a corpus, upload your own, and see exactly what fastai will feed the model."""
import html

import streamlit as st

from ulmfit_demo import plots
from ulmfit_demo.data import batches, combined, corpora, tokcache, uploads
from ulmfit_demo.ui import common as ui

ui.setup_page("Data", ":material/dataset:")
st.caption("Choose the text the model learns from, then look at it the way the model will: as tokens, "
           "in batches.")

STATS_SAMPLE = 2000  # documents tokenized for lengths and previews; counts always cover the whole corpus

# ------------------------------------------------------------------------------------------------ choose / get
rows = corpora.list_corpora()
by_name = {r["name"]: r for r in rows}
if (pending := st.session_state.pop("data_select", None)) in by_name:
    # A combination just composed below: select it before the radio is drawn (its key cannot change after). One
    # whose parts are not all on disk yet is only shown, with its Get button; the other pages keep theirs.
    if by_name[pending]["available"]:
        st.session_state["corpus"] = pending
        st.session_state.pop("data_choice", None)  # the radio starts again from `corpus`
    else:
        st.session_state["data_choice"] = pending
if st.session_state.get("corpus") not in by_name or not by_name[st.session_state["corpus"]]["available"]:
    st.session_state["corpus"] = "demo"

left, right = st.columns([3, 2])
with left:
    names = [r["name"] for r in rows]
    choice = st.radio("Corpus", names, index=names.index(st.session_state["corpus"]), key="data_choice",
                      format_func=lambda n: by_name[n]["title"] + ("" if by_name[n]["available"] else "  (not on this machine yet)"))
    info = by_name[choice]
    st.write(info["about"])
    if info["kind"] == "combined":
        st.caption(f"Train on it from the command line with `--dataset {choice}`.")

with left.expander("Combine corpora"):
    st.write("Read several labelled corpora as one, for example film reviews with restaurant and product reviews. "
             "A cap keeps at most that many training rows of a corpus (a fixed sample, balanced by label as far "
             "as the corpus allows); its validation and test rows are always kept whole, and each corpus is "
             "validated on its own valid (else test) split.")
    plain = [r["name"] for r in rows if r["kind"] != "combined" and r["labelled"]]
    picked = st.multiselect("Corpora", plain, key="data_combine_parts",
                            format_func=lambda n: by_name[n]["title"])
    caps = {}
    for part in picked:
        caps[part] = st.number_input(f"Training rows from {part} (0 = all)", min_value=0, step=1000, value=0,
                                     key=f"data_combine_cap_{part}")
    spec = "+".join(f"{p}:{int(caps[p])}" if caps[p] else p for p in picked)
    if spec:
        st.code(spec, language=None)
    if st.button("Use this combination", key="data_combine_go", disabled=len(picked) < 2):
        try:
            st.session_state["data_select"] = combined.save(spec)
        except corpora.CorpusError as e:
            st.error(str(e))
        else:
            st.rerun()

with right:
    if st.session_state.pop("data_cancel", False):
        st.info("Cancelled. Nothing was kept, and the corpora you already had are unchanged.")
    if not info["available"] and info["fetchable"]:
        st.write("This corpus is not on this machine yet. Getting it looks in fastai's cache, then in the mirror "
                 "folder (`ULMFIT_DEMO_MIRROR`), then downloads it with fastai.")
        if st.button(f"Get {choice}", type="primary", key="data_get"):
            # Clicking Cancel reruns the page, which stops this fetch mid-way; extraction is staged in a temp
            # folder, so nothing half-written is left behind.
            st.button("Cancel", key="data_cancel")
            bar = st.progress(0.0, text="Starting...")
            try:
                corpora.fetch(choice, lambda msg, frac: bar.progress(frac if frac is not None else 0.0, text=msg))
            except corpora.CorpusError as e:
                bar.empty()
                st.error(str(e))
            else:
                st.session_state["corpus"] = choice
                st.rerun()

if not info["available"]:
    st.stop()
st.session_state["corpus"] = choice

# ------------------------------------------------------------------------------------------------ upload


@st.cache_data(max_entries=4, show_spinner="Reading the CSV...")
def csv_head(file_id: str, _data: bytes):
    """The first rows of an uploaded CSV, parsed once per upload (keyed by its id, not by hashing its bytes): the
    file may be the full IMDb, 135 MB, and without this every click on the page parsed all of it again."""
    return uploads.read_csv_upload(_data).head(5)


with st.expander("Upload your own corpus"):
    # The limit the server was started with (.streamlit/config.toml, or a --server.maxUploadSize flag).
    st.caption(f"Files up to {st.get_option('server.maxUploadSize')} MB each (for scale: the full IMDb, "
               "100,000 reviews, is about 135 MB as one CSV). For a bigger file, restart the app with a higher limit: "
               "`./studio run --server.maxUploadSize=<MB>`. The built-in corpora above (IMDb, WikiText-2) are not "
               "uploaded: their Get button fetches them, and this limit does not apply.")
    tab_csv, tab_zip = st.tabs(["CSV file", "Zip of folders"])
    with tab_csv:
        st.write("A CSV with one text per row. You choose which column holds the text, and optionally the label "
                 "and a validation flag (True/1/yes). Without labels the corpus can train a language model only.")
        up = st.file_uploader("CSV file", type=["csv"], key="data_csv_file")
        if up is not None:
            try:
                head = csv_head(up.file_id, up.getvalue())
            except corpora.CorpusError as e:
                st.error(str(e))
            else:
                cols = list(head.columns)
                st.dataframe(head, hide_index=True)
                c1, c2, c3 = st.columns(3)
                text_col = c1.selectbox("Text column", cols, key="data_csv_text")
                none = "(none)"
                label_col = c2.selectbox("Label column", [none] + cols, key="data_csv_label",
                                         index=1 + cols.index("label") if "label" in cols else 0)
                valid_col = c3.selectbox("Validation flag column", [none] + cols, key="data_csv_valid",
                                         index=1 + cols.index("is_valid") if "is_valid" in cols else 0)
                name = st.text_input("Name for this corpus", key="data_csv_name", placeholder="my_reviews")
                replace = st.checkbox("Replace a corpus with the same name", key="data_csv_replace")
                if st.button("Import CSV", key="data_csv_import", disabled=not name):
                    try:
                        c = uploads.import_csv(name, up.getvalue(), text_col,
                                               None if label_col == none else label_col,
                                               None if valid_col == none else valid_col, overwrite=replace)
                    except corpora.CorpusError as e:
                        st.error(str(e))
                    else:
                        st.success(f"Imported {len(c.df):,} texts as '{name}'.")
                        for p in c.problems:
                            st.warning(p)
                        st.session_state["corpus"] = name
    with tab_zip:
        st.write("A .zip with one folder per class holding .txt files (for example `pos/` and `neg/`), optionally "
                 "inside `train/` and `valid/` folders.")
        zup = st.file_uploader("Zip file", type=["zip"], key="data_zip_file")
        zname = st.text_input("Name for this corpus", key="data_zip_name", placeholder="my_folders")
        zreplace = st.checkbox("Replace a corpus with the same name", key="data_zip_replace")
        if st.button("Import zip", key="data_zip_import", disabled=zup is None or not zname):
            try:
                c = uploads.import_folder_zip(zname, zup.getvalue(), overwrite=zreplace)
            except corpora.CorpusError as e:
                st.error(str(e))
            else:
                st.success(f"Imported {len(c.df):,} texts as '{zname}'.")
                for p in c.problems:
                    st.warning(p)
                st.session_state["corpus"] = zname

# ------------------------------------------------------------------------------------------------ statistics
corpus = ui.current_corpus(choice)
st.header("What is in it")
for p in corpus.problems:
    st.warning(p)
n = len(corpus.df)
m1, m2, m3 = st.columns(3)
m1.metric("Documents", f"{n:,}")
m2.metric("Labels", ", ".join(corpus.labels) if corpus.labels else "none")
m3.metric("Splits", ", ".join(corpus.df["split"].unique()))
st.dataframe(corpora.counts_table(corpus), width="content")
if "source" in corpus.df.columns:
    st.subheader("Where the documents come from")
    st.dataframe(combined.parts_table(corpus), hide_index=True, width="content",
                 column_config={"share of training rows": st.column_config.ProgressColumn(
                                    "share of training rows", format="percent", min_value=0, max_value=1),
                                "positive (train)": st.column_config.NumberColumn(format="percent")})
    st.caption("`positive (train)` is the share of a corpus's training rows labelled positive: the balance the "
               "classifier sees from it. Each corpus is validated on its own valid split, else its test split.")

st.subheader("Examples" + (" per domain" if "domain" in corpus.df.columns else ""))
shown = corpora.examples(corpus)
for tab, (group, ex) in zip(st.tabs(list(shown)), shown.items()):
    with tab:
        for _, ex_row in ex.iterrows():
            text = ex_row["text"][:400] + ("…" if len(ex_row["text"]) > 400 else "")
            # st.html: a review's `*`, `_` or `$` is text here, not markdown or LaTeX.
            st.html(f"<p style='margin:0 0 .6em 0'><b>{html.escape(ex_row['label'] or '(no label)')}</b> · "
                    f"{html.escape(text)}</p>")


@st.cache_data(show_spinner="Tokenizing with fastai (cached after the first time)...", max_entries=8)
def tokenized(name: str, fp: str):
    return tokcache.tokenized(ui.current_corpus(name).df, max_docs=STATS_SAMPLE)


fp = ui.current_fingerprint(choice)
tok = tokenized(choice, fp)


@st.cache_resource(show_spinner=False, max_entries=8)
def clas_vocab(name: str, fp: str, _tok):
    "fastai's `Numericalize` set up on the labelled documents, as the classifier batch below uses it."
    return batches.numericalizer(_tok[_tok["label"] != ""]["tokens"].tolist())

sampled = len(tok) < n
seq_len = st.slider("seq_len: tokens the model reads at once", 8, 128, 72, key="data_seq_len",
                    help="fastai's default is 72 for classifiers and the seeds use 80 for the language model.")
st.plotly_chart(plots.length_histogram(tok["n_tokens"], seq_len), width="stretch")
st.caption(f"Lengths from fastai's word tokenizer on {'a random sample of ' if sampled else 'all '}{len(tok):,} "
           f"documents. Median {int(tok['n_tokens'].median())} tokens; "
           f"{(tok['n_tokens'] > seq_len).mean():.0%} are longer than seq_len.")

# ------------------------------------------------------------------------------------------------ classifier batch
st.header("A classifier batch")
st.write("For the sentiment classifier, fastai groups reviews of similar length into a batch and pads the shorter "
         "ones with `xxpad` so the batch is a rectangle. Hover a highlighted token to see what it means.")
if corpus.labels:
    c1, c2 = st.columns(2)
    cbs = c1.slider("Reviews per batch (bs)", 2, 8, 4, key="data_clas_bs")
    show = c2.slider("Tokens shown per review", 20, 200, 60, key="data_clas_show")
    num = clas_vocab(choice, fp, tok)
    rows_b = batches.classifier_batch(tok, bs=cbs, seq_len=seq_len, seed=0, num=num)
    for r in rows_b:
        st.markdown(f"**{r['label']}** · {len(r['tokens'])} tokens" + (f", {r['n_pad']} of them padding" if r["n_pad"] else ""))
        st.markdown(ui.tokens_html_cut(r["tokens"], show), unsafe_allow_html=True)
    st.caption("fastai pads in whole chunks of seq_len before the text and puts the remainder after it "
               "(`pad_input_chunk`); a cut row keeps its last tokens in view so the padding shows.")
    text_toks = [t for r in rows_b for t in r["tokens"] if t != "xxpad"]
    n_unk, n_lab = sum(t == "xxunk" for t in text_toks), int(tok["label"].ne("").sum())
    st.caption(f"Red `xxunk`: a word seen fewer than 3 times in the {n_lab:,} labelled documents tokenized here, so "
               f"fastai's vocabulary ({len(num.vocab):,} entries, `Numericalize(min_freq=3)`) has no number for it. "
               f"In this batch: {n_unk:,} of {len(text_toks):,} text tokens ({n_unk / max(len(text_toks), 1):.0%}). "
               "A bigger corpus leaves fewer; the Tokenizers page shows the trade-off.")
else:
    st.info("This corpus has no labels, so it has no classifier batches. It can still train a language model (below).")

# ------------------------------------------------------------------------------------------------ LM picture


@st.cache_data(max_entries=32, show_spinner=False)
def paragraph_tokens(text: str) -> list[list[str]]:
    "fastai's word tokens of the paragraph: fastai builds a new spaCy pipeline per call (0.2-0.4 s), so once per text."
    return tokcache.word_tokenize([text])


st.header("Language-model batches")
st.write("A language model learns to predict the next token. fastai joins all texts into one stream, cuts it into "
         "`bs` equal mini-streams (the rows), and reads every row in windows of `seq_len` tokens: batch 1 is the "
         "first window of each row, batch 2 the next window, and so on, so each row continues where it left off.")
src = st.radio("Stream", ["An example paragraph", "The start of this corpus"], horizontal=True, key="data_lm_src")
if src == "An example paragraph":
    text = st.text_area("Paragraph", batches.EXAMPLE_STREAM, key="data_lm_text", height=100)
    docs = paragraph_tokens(text) if text.strip() else [[]]
else:
    docs = tok["tokens"].tolist()[:50]
stream = [t for d in docs for t in d]
c1, c2 = st.columns(2)
bs = c1.slider("bs: rows (mini-streams)", 2, 16, 6, key="data_lm_bs")
lm_seq = c2.slider("seq_len: window length", 2, 20, 5, key="data_lm_seq")
try:
    pic = batches.stream_picture(stream, bs, lm_seq)
except ValueError as e:
    st.warning(str(e))
    st.stop()
st.subheader(f"1 · The stream cut into {bs} mini-streams of {pic['mini_len']} tokens")
st.caption(f"{len(stream)} tokens in the stream; shading marks the windows of {lm_seq}.")
st.markdown(ui.token_table_html([m[:120] for m in pic["minis"]], window=lm_seq,
                                row_labels=[f"row {i + 1}" for i in range(bs)]), unsafe_allow_html=True)
st.subheader("2 · Batch by batch")
n_show = min(len(pic["batches"]), 4)
for b, tab in enumerate(st.tabs([f"batch {i + 1}" for i in range(n_show)])):
    with tab:
        st.markdown(ui.token_table_html(pic["batches"][b], row_labels=[f"row {i + 1}" for i in range(bs)]),
                    unsafe_allow_html=True)
if len(pic["batches"]) > n_show:
    st.caption(f"{len(pic['batches']) - n_show} more batches follow the same way.")
st.subheader("3 · What fastai's LMDataLoader actually yields: input x and target y")
try:
    real = batches.lm_loader_batches(docs, bs, lm_seq, max_batches=1)
except ValueError as e:
    st.warning(str(e))
else:
    st.write(f"The target `y` is the input `x` shifted by one token: at every position the model is asked for the "
             f"next token. Because the last input needs a target too, fastai keeps one token back, so its rows "
             f"hold {real['row_len']} tokens each here (the picture above used {pic['mini_len']}).")
    first = real["batches"][0]
    cx, cy = st.columns(2)
    cx.markdown("**x (input)**")
    cx.markdown(ui.token_table_html(first["x"]), unsafe_allow_html=True)
    cy.markdown("**y (target)**")
    cy.markdown(ui.token_table_html(first["y"]), unsafe_allow_html=True)
