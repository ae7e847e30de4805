"""How the Tokenizers page draws tokens: rows of chips, a rule's change to the text as a diff, subword pieces in
alternating colours, and what each special token that appears means. Everything typed is escaped: it is user input.
"""
import html

import streamlit as st

from ulmfit_demo import text as tk
from ulmfit_demo.ui import common as ui

MAX_CHIPS = 1500  # tokens drawn per row of chips; the counts above them always cover all tokens
DIFF_CHARS = 2500  # characters of text shown per rule in the trace
PALETTE = ["#dbe9f6", "#fde2c4", "#d9f0d3", "#eadcf2"]  # alternating piece colours: the boundaries are the point

# The page's own styles: the rule-by-rule diff (`tokdiff`) and subword pieces (`sp`); the chips' are `common`'s.
CSS = """
<style>
.tokdiff {white-space:pre-wrap; font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:0.85em;
          background:#fafafa; border:1px solid #eee; border-radius:6px; padding:6px 8px; margin:2px 0 10px 0;}
.tokdiff del {background:#fbd5d5; color:#8a1c1c;}
.tokdiff ins {background:#cdeccd; color:#145214; text-decoration:none; font-weight:600;}
.sp {unicode-bidi:isolate; display:inline-block; margin:1px 0; padding:0 2px; font-family:ui-monospace,SFMono-Regular,Menlo,monospace;
     font-size:0.85em; line-height:1.7em; border-radius:3px;}
.sp sub {color:#777; font-size:0.75em; margin-left:1px;}
</style>"""


def chips(tokens, titles=None) -> None:
    shown = tokens[:MAX_CHIPS]
    st.markdown(ui.tokens_html(shown, None if titles is None else titles[:MAX_CHIPS]), unsafe_allow_html=True)
    if len(tokens) > MAX_CHIPS:
        st.caption(f"Showing the first {MAX_CHIPS:,} of {len(tokens):,} tokens.")


def _visible(s: str) -> str:
    return html.escape(s).replace("\n", "↵\n")


def diff_html(before: str, after: str) -> str:
    segs, left = tk.diff_segments(before, after, DIFF_CHARS)
    tags = {"same": "{}", "del": "<del>{}</del>", "ins": "<ins>{}</ins>"}
    body = "".join(tags[k].format(_visible(s)) for k, s in segs)
    if left:
        body += f'<span style="color:#888"> … ({left:,} more characters)</span>'
    return f'<div class="tokdiff">{body}</div>'


def pieces_html(pieces, ids=None, show_ids=False) -> str:
    out = []
    for i, p in enumerate(pieces[:MAX_CHIPS]):
        tip = f"id {ids[i]}" if ids is not None else ""
        sub = f"<sub>{ids[i]}</sub>" if show_ids and ids is not None else ""
        shown = html.escape(p.replace("\n", "\\n"))
        out.append(f'<span class="sp" style="background:{PALETTE[i % len(PALETTE)]}" title="{tip}">{shown}{sub}</span>')
    more = f'<div style="color:#888;font-size:0.8em">… and {len(pieces) - MAX_CHIPS:,} more</div>' \
        if len(pieces) > MAX_CHIPS else ""
    return '<div class="tokrow">' + "".join(out) + "</div>" + more


def special_notes(tokens) -> None:
    present = [t for t in ui.SPECIAL_TOKENS if t in set(tokens)]
    if present:
        st.markdown("\n".join(f"- {ui.token_chip(t)} {html.escape(ui.SPECIAL_TOKENS[t])}" for t in present),
                    unsafe_allow_html=True)
