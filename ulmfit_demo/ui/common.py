"""Streamlit helpers every page shares: page set-up, token chips, the corpus picker and cached corpus loading. Only
pages import this module; the worker and the CLI never do (they must not import streamlit)."""
import html

import streamlit as st

from ulmfit_demo.data import corpora

# What each of fastai's special tokens means, in plain words (fastai.text.core: TK_MAJ, TK_UP, TK_REP, ...).
SPECIAL_TOKENS = {
    "xxbos": "beginning of a text: tells the model a new review starts here, so it can forget the previous one",
    "xxeos": "end of a text",
    "xxmaj": "the next word was Capitalised: the word itself is lower-cased so 'The' and 'the' share one entry",
    "xxup": "the next word was written in ALL CAPS (and is lower-cased after this marker)",
    "xxrep": "a character repeated: 'xxrep 4 !' stands for '!!!!'",
    "xxwrep": "a word repeated: 'xxwrep 4 very' stands for 'very very very very'",
    "xxunk": "unknown: a word too rare to get its own entry in the vocabulary",
    "xxpad": "padding: fills up shorter texts so a batch is a rectangle; the model ignores it",
    "xxfld": "separates fields when a text is made of several columns",
}

_CSS = """
<style>
/* unicode-bidi: a right-to-left override typed into a text must not reverse what follows it on the page */
.tok {unicode-bidi:isolate; display:inline-block; margin:1px 2px; padding:0 4px; border-radius:4px; background:#eef1f5;
      font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:0.85em; line-height:1.6em;}
.tok.sp {background:#fde2b6; color:#8a4b00; font-weight:600;}
.tok.pad {background:#f3f3f3; color:#aaa;}
.tok.unk {background:#f9c9c9; color:#8a0000;}
.tokrow {line-height:1.9em;}
</style>
"""


def _through_app_navigation() -> None:
    """Make sure this page runs inside app.py's `st.navigation`, never as a bare script.

    Streamlit decides per server process whether `pages/` next to the main script is an old-style (v1) pages folder:
    until the first run of app.py calls `st.navigation`, it assumes v1. So when the first visit after a server start
    is a deep link (`/train` from a bookmark or a tab left open), Streamlit runs `pages/train.py` on its own: no page
    config (narrow layout), and a sidebar listing file names. Here we switch that assumption off and rerun, which
    goes through app.py and lands on the same page (v1 and app.py give pages the same url path, hence the same id).
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def setup_page(title: str, icon: str = "") -> None:
    "Title plus the shared CSS for token chips. Call once at the top of a page."
    _through_app_navigation()
    st.markdown(_CSS, unsafe_allow_html=True)
    st.title(f"{icon} {title}".strip())


def token_chip(tok: str, title: str | None = None) -> str:
    "One token as an HTML chip; special tokens stand out. All text is escaped: tokens come from user input."
    cls = "tok"
    if tok == "xxpad":
        cls += " pad"
    elif tok == "xxunk":
        cls += " unk"
    elif tok in SPECIAL_TOKENS:
        cls += " sp"
    tip = title if title is not None else SPECIAL_TOKENS.get(tok, "")
    shown = html.escape(tok.replace("\n", "\\n").replace(" ", "·") if tok.strip() or tok == "" else repr(tok)[1:-1])
    return f'<span class="{cls}" title="{html.escape(tip)}">{shown}</span>'


def tokens_html(tokens, titles=None) -> str:
    chips = [token_chip(t, None if titles is None else titles[i]) for i, t in enumerate(tokens)]
    return '<div class="tokrow">' + "".join(chips) + "</div>"


def progress_bar(what: str):
    "A progress bar and a `progress(done, total)` callback that moves it (as `inference.predict_batch` calls it)."
    bar = st.progress(0.0, text=f"{what}...")

    def update(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{what}: {done:,} of {total:,}")

    return bar, update


def tokens_html_cut(tokens, head: int, tail: int = 12) -> str:
    "The first `head` and the last `tail` tokens, with how many were left out between them."
    if len(tokens) <= head + tail:
        return tokens_html(tokens)
    gap = f'<span style="color:#888;margin:0 6px">… {len(tokens) - head - tail:,} more tokens …</span>'
    return ('<div class="tokrow">' + "".join(token_chip(t) for t in tokens[:head]) + gap
            + "".join(token_chip(t) for t in tokens[-tail:]) + "</div>")


def token_table_html(rows, window: int | None = None, row_labels=None) -> str:
    """Rows of tokens as an HTML table of chips. With `window`, alternate cell shading every `window` tokens so the
    windows a model reads at once are visible."""
    out = ['<div style="overflow-x:auto"><table style="border-collapse:collapse;font-size:0.85em">']
    for r, row in enumerate(rows):
        label = "" if row_labels is None else f'<th style="padding:2px 6px;text-align:right;color:#666">{html.escape(str(row_labels[r]))}</th>'
        cells = []
        for j, tok in enumerate(row):
            shade = "#f7f7fb" if window and (j // window) % 2 else "transparent"
            cells.append(f'<td style="padding:0;background:{shade}">{token_chip(tok)}</td>')
        out.append(f"<tr>{label}{''.join(cells)}</tr>")
    out.append("</table></div>")
    return "".join(out)


def corpus_picker(where=st.sidebar, key: str = "corpus") -> str:
    """A select box of corpora that are on disk (the Data page fetches the others). The choice is shared by all
    pages through `st.session_state['corpus']` and defaults to the built-in demo corpus."""
    rows = [r for r in corpora.list_corpora() if r["available"]]
    names = [r["name"] for r in rows]
    titles = {r["name"]: r["title"] for r in rows}
    if st.session_state.get("corpus") not in names:
        st.session_state["corpus"] = "demo"
    choice = where.selectbox("Corpus", names, index=names.index(st.session_state["corpus"]),
                             format_func=lambda n: titles[n], key=f"{key}_picker",
                             help="Corpora on this machine. Get IMDb or upload your own on the Data page.")
    st.session_state["corpus"] = choice
    return choice


@st.cache_resource(show_spinner="Loading corpus...", max_entries=4)
def load_corpus(name: str, stamp: str):
    """One Corpus per (name, stamp), shared by all sessions and read-only: `stamp` changes when an upload is replaced,
    so a page never shows a stale corpus. A resource, not data: `st.cache_data` hands every call a pickled copy of the
    whole corpus (the full IMDb is 130 MB of text), on every rerun of every session."""
    return corpora.load(name)


def _stamp(name: str) -> str:
    p = corpora.local_path(name)
    return str(p.stat().st_mtime_ns) if p is not None else ""


def corpus_stamp(name: str) -> str:
    "Changes when the corpus's files change (an upload replaced): caches keyed on a corpus key on this too."
    return _stamp(name)


def current_corpus(name: str):
    return load_corpus(name, _stamp(name))


@st.cache_data(show_spinner=False, max_entries=8)
def _fingerprint(name: str, stamp: str) -> str:
    return corpora.fingerprint(load_corpus(name, stamp).df)


def current_fingerprint(name: str) -> str:
    "The corpus's content hash (every text hashed), once per version of the corpus rather than once per rerun."
    return _fingerprint(name, _stamp(name))
