"""Streamlit pieces shared by the Sentiment, Generate and Models pages: the model picker, the "no model yet" notice,
the verdict, coloured attributions, and their plotly charts. Pages only; the CLI and the worker never import this.

Every piece of text that goes into `unsafe_allow_html` passes through `html.escape`: reviews come from users.
"""
import html
import math
import re
from datetime import datetime

import plotly.graph_objects as go
import streamlit as st

from ulmfit_demo import config, models
from ulmfit_demo.models import kinds, starter
from ulmfit_demo.models.awd import reads_backwards

KIND_WORDS = {k: cls.noun for k, cls in kinds.CLASSES.items()}
POSITIVE = "#1a7f37"
NEGATIVE = "#cf222e"
OTHER = ["#0969da", "#8250df", "#bf8700", "#1b7c83", "#953800"]


def label_colour(label: str, labels: list[str]) -> str:
    low = label.lower()
    if low.startswith(("pos", "good")) or low in ("1", "true", "yes"):
        return POSITIVE
    if low.startswith(("neg", "bad")) or low in ("0", "false", "no"):
        return NEGATIVE
    return OTHER[labels.index(label) % len(OTHER)] if label in labels else OTHER[0]


def label_face(label: str, colour: str, size: str) -> str:
    """A smiling, frowning or plain face drawn as inline SVG in the label's colour. An emoji would need an emoji font,
    and on machines without one (many Linux boxes a demo runs on) it shows as an empty box."""
    low = label.lower()
    mouth = ("M7 14.5 Q12 19 17 14.5" if low.startswith(("pos", "good")) else
             "M7 17 Q12 12.5 17 17" if low.startswith(("neg", "bad")) else "M7.5 15.5 H16.5")
    return (f'<svg viewBox="0 0 24 24" width="{size}" height="{size}" role="img" aria-label="{html.escape(label)}" '
            f'style="vertical-align:-0.12em" fill="none" stroke="{colour}" stroke-width="2" stroke-linecap="round">'
            f'<circle cx="12" cy="12" r="10"/><circle cx="8.5" cy="9.5" r="0.6" fill="{colour}"/>'
            f'<circle cx="15.5" cy="9.5" r="0.6" fill="{colour}"/><path d="{mouth}"/></svg>')


def model_title(row: dict) -> str:
    "How a model is named in pickers: its name, what it scored, when it was made."
    m = row.get("metrics") or {}
    bits = []
    if "accuracy" in m and kinds.can(row, kinds.CLASSIFY):
        bits.append(f"accuracy {m['accuracy']:.0%}")
    if "perplexity" in m:
        bits.append(f"perplexity {m['perplexity']:.0f}")
    try:
        bits.append(datetime.fromisoformat(row["created"]).strftime("%d %b %H:%M"))
    except (KeyError, ValueError):
        pass
    return f"{row['name']} ({', '.join(bits)})" if bits else row["name"]


def train_link(what: str = "model") -> None:
    "Say plainly that there is no model yet, and point at the Train page's Quick run."
    st.info(f"There is no trained {what} on this machine yet. A **Quick run** on the built-in demo reviews trains one "
            f"in a few minutes on an ordinary laptop: open the Train page, keep the demo corpus and the Quick "
            f"preset, and press Start. Come back here when it has finished.", icon=":material/info:")
    if (config.REPO / "pages" / "train.py").exists():
        try:
            st.page_link("pages/train.py", label="Go to Train: Quick run on the demo corpus",
                         icon=":material/model_training:", query_params={"preset": "quick", "corpus": "demo"})
            return
        except st.errors.StreamlitAPIException:  # the page run on its own (tests), outside the app's navigation
            pass
    st.markdown("Open **Train** in the menu on the left.")


def pick_model(task: str, key: str, label: str = "Model", where=None, exclude: str | None = None,
               show: bool = True) -> dict | None:
    """A select box of the registered models that can do `task` (`kinds.CLASSIFY`: classifiers, baselines,
    ensembles; `kinds.GENERATE`: language models), newest first (the newest is the default). Returns the chosen
    registry row, or None when there is none. With `show=False` the choice is kept but the box is not drawn."""
    able = kinds.able(task)
    # One kind: the registry's list of that kind, which for language models includes the shipped starter.
    listed = models.list_models(able[0]) if len(able) == 1 else models.list_models()
    rows = [r for r in listed if r["kind"] in able and r["id"] != exclude]
    if not rows:
        return None
    ids = [r["id"] for r in rows]
    by_id = {r["id"]: r for r in rows}
    # The choice lives under a plain key too: Streamlit forgets a widget's value on runs where it is not drawn
    # (presenter mode hides the picker), and the presenter must keep the model they picked.
    keep = f"{key}_id"
    if st.session_state.get(keep) not in ids:
        st.session_state[keep] = ids[0]
    if show:
        if st.session_state.get(key) not in ids:
            st.session_state[key] = st.session_state[keep]
        st.session_state[keep] = (where or st).selectbox(
            label, ids, key=key, format_func=lambda i: model_title(by_id[i]),
            help="Trained " + and_([KIND_WORDS[k] + "s" for k in able]) + " on this machine, newest first"
                 + (", then the ones shipped with the app." if any(r.get("origin") == "bundled" for r in rows)
                    else "."))
    return by_id[st.session_state[keep]]


def starter_sources(fwd: dict | None, bwd: dict | None = None) -> list[dict]:
    """The starters' held-out perplexity per source they read (rows of a table): per SentencePiece token and per word,
    for the forward starter and, when there is one, the backward. Only figures the cards hold."""
    out = []
    by = {d: (c or {}).get("valid_by_source") or {} for d, c in (("forward", fwd), ("backward", bwd))}
    for src in dict.fromkeys([*by["forward"], *by["backward"]]):
        row = {"source": starter.SOURCES.get(src, src)}
        for d in ("forward", "backward"):
            if not (bwd if d == "backward" else fwd):
                continue
            f = by[d].get(src) or {}
            row[f"{d}: per token"] = f"{f['perplexity']:,.1f}" if isinstance(f.get("perplexity"), (int, float)) else ""
            row[f"{d}: per word"] = (f"{f['word_perplexity']:,.0f}" if isinstance(f.get("word_perplexity"), (int, float))
                                     else "")
        row["held-out tokens"] = next((f"{f['tokens']:,}" for f in (by["forward"].get(src), by["backward"].get(src))
                                       if isinstance((f or {}).get("tokens"), int)), "")
        out.append(row)
    return out


def starter_about(card: dict) -> str:
    """What the shipped starter language model is and how it was made, in one paragraph of markdown, read from its
    card (a rebuilt or newer starter describes itself; a figure the card lacks is left out, never made up)."""
    cfg = card.get("config") or {}
    arch = card.get("arch") or {}
    num = lambda v: isinstance(v, (int, float)) and math.isfinite(v)  # noqa: E731
    shape = ", ".join(f"{k} {arch[k]}" for k in ("emb_sz", "n_hid", "n_layers") if num(arch.get(k)))
    vocab = (f"{card['vocab_size']:,}-token SentencePiece vocabulary" if num(card.get("vocab_size")) else "")
    bits = [b for b in (shape, vocab) if b]
    what = html.escape(str(card.get("what") or "AWD-LSTM language model"))
    out = f"**Starter language model**, shipped with the app: {what}" + (f" ({'; '.join(bits)})" if bits else "") + "."
    by_src = card.get("train_docs_by_source") or {}
    corp = [f"{html.escape(starter.SOURCES.get(k, str(k)))} ({v:,} documents)" if num(v)
            else html.escape(starter.SOURCES.get(k, str(k))) for k, v in by_src.items()] or [
        html.escape(starter.SOURCES.get(c, str(c))) for c in cfg.get("corpora") or []]
    toks = card.get("tokens_seen") or card.get("train_tokens")
    made = "It read " + (f"{toks / 1e6:,.1f}M tokens of " if num(toks) else "") + and_(corp) if corp else ""
    if made:
        secs = card.get("train_s")
        made += (f" in {secs / 60:,.0f} min" if num(secs) else "") + (
            f" on {card['threads']} CPU thread{'s' if card['threads'] != 1 else ''}" if num(card.get("threads")) else "")
        made += (f", built {html.escape(str(card['built'])[:10])}" if card.get("built") else "") + "."
        out += " " + made
    ppl = card.get("valid_perplexity")
    if num(ppl):
        held = f" on {card['valid_docs']:,} held-out documents" if num(card.get("valid_docs")) else " on held-out text"
        out += (f" **Perplexity {ppl:,.1f}**{held}: on average as unsure of the next word as if it picked among "
                f"{ppl:,.0f} equally likely words (lower is better).")
    out += (" It was not fine-tuned on any one corpus (ULMFiT's stage 1): it writes like the texts it read. Runs on "
            "the Train page start from it.")
    return out


def and_(words: list[str]) -> str:
    "['a', 'b', 'c'] -> 'a, b and c'; [] -> ''."
    return "" if not words else words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def corpus_words(corpus: str | None) -> list[str]:
    """A corpus id in words, one item per part: "imdb+yelp_sentences:120000" -> ["IMDb reviews", "Yelp sentences"].
    An id without words (an upload) stays as it is; none gives []."""
    parts = [re.sub(r":.*$", "", c.strip()) for c in re.split(r"\+", corpus or "") if c.strip()]
    return list(dict.fromkeys(starter.SOURCES.get(c, c) for c in parts if c != "?"))


_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five"}

# The out-of-domain set's kinds of sentence (`assets/ood/README.md`), in words for people who do not train models.
OOD_KINDS = {"plain": "plain statements", "short": "verdicts of one to four words", "long": "long everyday sentences",
             "contrast": 'sentences turned round by a "but"', "negation": 'negations such as "not bad at all"',
             "sarcasm": "sarcasm"}
WEAK_KIND = 0.7  # a kind of sentence the model gets right less often than this is named as a weak spot
LEAN = 0.2  # calling this much more (or less) than half of the balanced set positive is named as a lean


def weak_spots(meta: dict) -> str | None:
    """Where the model goes wrong, measured, in one sentence for a presenter: its accuracy on the out-of-domain
    sentences and the kinds of sentence it gets right less than `WEAK_KIND` of the time ("...but only 50% of
    negations such as "not bad at all" and 30% of sarcasm"). None when it was not measured there."""
    res = (meta.get("judge") or {}).get("ood") or {}
    by = {k: v for k, v in (res.get("by_phenomenon") or {}).items() if k in OOD_KINDS and isinstance(v, (int, float))}
    if not by or not isinstance(res.get("ood_accuracy"), (int, float)):
        return None
    head = (f"Measured on {res.get('n') or 'the'} short everyday sentences it never trained on: right "
            f"{res['ood_accuracy']:.0%} of the time")
    # The set is half positive, half negative: a model far from calling half of it positive leans one way.
    rate = res.get("positive_rate")
    lean = ""
    if isinstance(rate, (int, float)) and abs(rate - 0.5) >= LEAN:
        side = "positive" if rate > 0.5 else "negative"
        lean = (f" It leans {side}: it called {rate if side == 'positive' else 1 - rate:.0%} of them {side}, where "
                f"half are.")
    weak = sorted((k for k, a in by.items() if a < WEAK_KIND), key=lambda k: by[k])
    if not weak:
        return (head + f", and at least {WEAK_KIND:.0%} on every kind of sentence ({and_(list(OOD_KINDS.values()))})."
                + lean)
    plain = f", {by['plain']:.0%} of {OOD_KINDS['plain']}" if "plain" in by and "plain" not in weak else ""
    return head + plain + ", but only " + and_([f"{by[k]:.0%} of {OOD_KINDS[k]}" for k in weak]) + "." + lean


# What two of those kinds look like on the surface, for a caution under one verdict (`verdict_caution`): a negation
# word, or a word that turns a sentence round. Sarcasm has no such mark.
_KIND_CUES = {
    "negation": re.compile(r"\b(?:not|no|never|nothing|none|nobody|nowhere|neither|nor|cannot|without)\b"
                           r"|\w+n['\u2019]t\b", re.IGNORECASE),
    "contrast": re.compile(r"\b(?:but|yet|although|though|however)\b", re.IGNORECASE),
}
CAUTION_MAX_WORDS = 40  # the out-of-domain sentences are one or two sentences; a long review is another matter


def verdict_caution(meta: dict, text: str) -> str | None:
    """A caution for one verdict, for a presenter and the audience: the text is short, has the mark of a kind of
    sentence this model was measured to get right less than `WEAK_KIND` of the time (a negation, a "but"), and the
    line says which word and the figure measured. None otherwise, and for a model never judged out of domain."""
    res = (meta.get("judge") or {}).get("ood") or {}
    by = res.get("by_phenomenon") or {}
    if not isinstance(text, str) or len(text.split()) > CAUTION_MAX_WORDS:
        return None
    for kind, cue in _KIND_CUES.items():
        a = by.get(kind)
        m = cue.search(text) if isinstance(a, (int, float)) and a < WEAK_KIND else None
        if m:
            what = "a negation" if kind == "negation" else "a turn"
            return (f'Take this verdict with care: the text has {what} ("{m.group(0)}"), and this model got only '
                    f"{a:.0%} of {OOD_KINDS[kind]} right when tested on everyday sentences it never trained on.")
    return None


def made_of(model_id: str) -> str | None:
    """What an ensemble is made of, in one sentence for people who do not train models, from its metadata and its
    members': "Bundled sentiment model: the average of 3 models — a forward AWD-LSTM classifier, a backward one and
    a TF-IDF baseline — trained on IMDb reviews, Yelp sentences and Amazon product reviews." Alike members next to
    each other are counted ("two forward AWD-LSTM classifiers"). None when the model is not an ensemble."""
    meta = models.read_meta(model_id)
    members = meta.get("members") or []
    if meta.get("kind") != "ensemble" or not members:
        return None
    kinds_of = []  # (noun, side) of each member, in order
    for m in members:
        if m.get("kind") == "baseline":
            try:  # "a TF-IDF baseline and a Naive-Bayes-weighted one"
                nb = bool(((models.read_meta(m["id"]).get("model") or {}).get("params") or {}).get("nb"))
            except models.ModelError:
                nb = False
            kinds_of.append(("TF-IDF baseline", "Naive-Bayes-weighted" if nb else None))
            continue
        try:
            side = "backward" if reads_backwards(models.read_meta(m["id"])) else "forward"
        except models.ModelError:  # a member gone: say what it was, not which way it read
            side = None
        kinds_of.append(("AWD-LSTM classifier", side))
    groups: list[list] = []  # runs of alike members: [noun, side, how many]
    for noun, side in kinds_of:
        if groups and groups[-1][:2] == [noun, side]:
            groups[-1][2] += 1
        else:
            groups.append([noun, side, 1])
    parts, prev = [], None
    for noun, side, n in groups:
        many = _NUMBERS.get(n, str(n))
        if prev == noun:  # "a forward AWD-LSTM classifier, a backward one"
            parts.append((f"a {side} one" if side else "another one") if n == 1 else f"{many} {side or 'other'} ones")
        elif n > 1:
            parts.append(f"{many} {side + ' ' if side else ''}{noun}s")
        else:
            parts.append(f"a {side} {noun}" if side else f"a{'n' if noun[0] in 'AEIO' else ''} {noun}")
        prev = noun
    weights = [float(m.get("weight") or 0) for m in members]
    how = "the average" if max(weights) - min(weights) < 1e-9 else "a weighted average"
    read = corpus_words(meta.get("corpus"))
    head = f"{meta.get('name') or model_id}: {how} of {len(members)} models"
    return f"{head} — {and_(parts)} — trained on {and_(read)}." if read else f"{head}: {and_(parts)}."


# ----------------------------------------------------------------------------------------------------------- verdict

def verdict_html(res: dict, labels: list[str], large: bool = False) -> str:
    lab = res["label"]
    p = res["probs"][lab]
    colour = label_colour(lab, labels)
    size = "2.6rem" if large else "1.8rem"
    sure = "very sure" if p >= 0.9 else "fairly sure" if p >= 0.7 else "unsure" if p < 0.6 else "leaning"
    return (f'<div style="font-size:{size};font-weight:700;color:{colour};line-height:1.2">'
            f'{label_face(lab, colour, "0.9em")} {html.escape(lab.capitalize())}</div>'
            f'<div style="font-size:{"1.3rem" if large else "1rem"};color:#57606a">'
            f'{p:.0%} confident ({sure})</div>')


def members_html(members: list[dict], labels: list[str]) -> str:
    "An ensemble's members, one line each: name, weight, verdict and confidence in the verdict's colour."
    lines = []
    for m in members:
        lab = m["label"]
        colour = label_colour(lab, labels)
        kind = KIND_WORDS.get(m["kind"], m["kind"])
        lines.append(f'<div style="margin:2px 0">{label_face(lab, colour, "1em")} <b style="color:{colour}">'
                     f'{html.escape(lab.capitalize())}</b> {m["probs"][lab]:.0%} confident · {html.escape(m["name"])} '
                     f'<span style="color:#57606a">({html.escape(kind)}, weight {m["weight"]:.2f})</span></div>')
    return "".join(lines)


def probs_figure(probs: dict, labels: list[str], large: bool = False) -> go.Figure:
    "One horizontal bar per label: how likely the model thinks each is."
    labs = list(probs)
    fig = go.Figure(go.Bar(x=[probs[k] for k in labs], y=labs, orientation="h",
                           marker_color=[label_colour(k, labels) for k in labs],
                           text=[f"{probs[k]:.0%}" for k in labs], textposition="auto",
                           hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    fig.update_layout(xaxis=dict(range=[0, 1], tickformat=".0%", title="probability"),
                      yaxis=dict(autorange="reversed"), height=110 + 40 * len(labs),
                      margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
                      font=dict(size=20 if large else 14))
    return fig


def attribution_html(attr: dict, labels: list[str], large: bool = False) -> str:
    """The review as coloured words: the colour of the verdict where a word pushed towards it, the other label's
    colour (or grey) where it pushed away; stronger colour, bigger push. Hover shows the number."""
    lab = attr["label"]
    toward = label_colour(lab, labels)
    others = [x for x in labels if x != lab]
    away = label_colour(others[0], labels) if len(others) == 1 else "#6e7781"
    scores = [abs(w["score"]) for w in attr["words"] if w["score"] is not None]
    top = max(scores) if scores and max(scores) > 0 else 1.0
    spans = []
    for w in attr["words"]:
        s = w["score"]
        if s is None:
            spans.append(f'<span title="not scored" style="unicode-bidi:isolate">{html.escape(w["text"])}</span>')
            continue
        a = min(abs(s) / top, 1.0)
        colour = toward if s > 0 else away
        alpha = int(round(a * 0.85 * 255))
        tip = (f"adds {s:+.2f} to the baseline's score (log-odds) for {lab}" if attr.get("scale") == "logit" else
               f"leaving it out changes confidence in {lab} by {-s * 100:+.1f} points")
        spans.append(f'<span title="{html.escape(tip)}" style="unicode-bidi:isolate;background:{colour}{alpha:02x};'
                     f'color:{"#fff" if a > 0.55 else "inherit"};border-radius:4px;padding:1px 3px">'
                     f'{html.escape(w["text"])}</span>')
    size = "1.5rem" if large else "1.05rem"
    return f'<div style="font-size:{size};line-height:2.1;word-wrap:break-word">{" ".join(spans)}</div>'


def attribution_legend(attr: dict, labels: list[str]) -> str:
    lab = attr["label"]
    others = [x for x in labels if x != lab]
    toward = label_colour(lab, labels)
    away = label_colour(others[0], labels) if len(others) == 1 else "#6e7781"
    other = html.escape(others[0]) if len(others) == 1 else "another label"
    pill = "display:inline-block;white-space:nowrap;color:#fff;border-radius:4px;padding:1px 6px;margin:2px 4px 2px 0"
    return (f'<div style="font-size:0.9rem"><span style="background:{toward}cc;{pill}">pushed towards '
            f'{html.escape(lab)}</span><span style="background:{away}cc;{pill}">pushed towards {other}</span>'
            f'<span style="color:#57606a;white-space:nowrap">stronger colour = bigger push</span></div>')


def topk_figure(step: dict, title: str) -> go.Figure:
    "The k likeliest next words at one step, the one that was drawn highlighted."
    words = [w for w, _ in step["top"]]
    probs = [p for _, p in step["top"]]
    chosen = step["chosen"]
    if chosen not in words:  # drawn from outside the top k: show it too, so the chart explains the pick
        words.append(chosen)
        probs.append(step["chosen_prob"])
    colours = ["#e36209" if w == chosen else "#4c78a8" for w in words]
    fig = go.Figure(go.Bar(x=probs, y=[_show_token(w) for w in words], orientation="h", marker_color=colours,
                           text=[f"{p:.1%}" for p in probs], textposition="auto",
                           hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_layout(title=title, xaxis=dict(title="probability", tickformat=".0%"), yaxis=dict(autorange="reversed"),
                      height=90 + 30 * len(words), margin=dict(l=10, r=10, t=40, b=10), showlegend=False)
    return fig


TOKEN_NOTES = {"xxmaj": "xxmaj (next word Capitalised)", "xxup": "xxup (next word in CAPS)",
               "xxbos": "xxbos (a new review starts)", "xxrep": "xxrep (repeated character)",
               "xxwrep": "xxwrep (repeated word)", "xxunk": "xxunk (unknown word)", "xxeos": "xxeos (end)"}


def _show_token(t: str) -> str:
    t = t.replace("\u2581", "·")
    return TOKEN_NOTES.get(t, TOKEN_NOTES.get(t.lstrip("·"), t))


def confusion_figure(conf) -> go.Figure:
    "Actual labels down, predicted across, counts in the cells (fastai's `plot_confusion_matrix`)."
    z = conf.values.tolist()
    fig = go.Figure(go.Heatmap(z=z, x=[str(c) for c in conf.columns], y=[str(i) for i in conf.index],
                               colorscale="Blues", showscale=False, text=z, texttemplate="%{text}",
                               hovertemplate="actual %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_layout(xaxis=dict(title="predicted", side="top"), yaxis=dict(title="actual", autorange="reversed"),
                      height=120 + 60 * len(z), margin=dict(l=10, r=10, t=50, b=10), font=dict(size=14))
    return fig


# ----------------------------------------------------------------------------------------------------------- judging

def _pct(v) -> str:
    return f"{v:.0%}" if isinstance(v, (int, float)) and math.isfinite(v) else ""


def baseline_comparison(row: dict) -> str | None:
    """One line comparing a model with the baseline fitted on the same split, from the figures its run recorded
    (`accuracy`, `baseline_accuracy`, `n_valid`); None when they were not recorded (nothing is made up)."""
    m = row.get("metrics") or {}
    acc, base, n = m.get("accuracy"), m.get("baseline_accuracy"), m.get("n_valid")
    on = f"on the same {n:,} reviews" if isinstance(n, (int, float)) else "on the same validation reviews"
    if row["kind"] == "baseline":
        if not isinstance(acc, (int, float)):
            return None
        return (f"Baseline {_pct(acc)}" + (f" on {n:,} validation reviews" if isinstance(n, (int, float)) else "")
                + ": the yardstick a ULMFiT classifier of this corpus has to beat.")
    if not (isinstance(acc, (int, float)) and isinstance(base, (int, float))):
        return None
    gap = round((acc - base) * 100, 1)  # one decimal: whole points disagreed with the rounded percentages shown
    who = "ULMFiT" if row["kind"] == "classifier" else "The ensemble"  # an ensemble may have the baseline inside
    verdict = (f"{who} is ahead by {gap:.1f} points." if gap > 0 else f"The baseline is ahead by {-gap:.1f} points: on "
               f"this corpus and preset {who} has not earned its cost yet." if gap < 0 else "They are level.")
    return f"{who} {_pct(acc)} vs baseline {_pct(base)} {on}. {verdict}"


def judge_table(rows: list[dict]):
    "Every classifier and baseline with the figures it was judged by; blank where a figure was not measured."
    import pandas as pd

    def cell(m, k, fmt):
        v = m.get(k)
        return fmt.format(v) if isinstance(v, (int, float)) and math.isfinite(v) else ""

    # Shorter words than KIND_WORDS: a table column, where "ULMFiT" says which side of the comparison a row is on.
    names = {"classifier": "ULMFiT classifier", "baseline": "baseline", "ensemble": "ensemble"}
    out = [{"name": r["name"], "kind": names.get(r["kind"], KIND_WORDS.get(r["kind"], r["kind"])),
            "corpus": r["corpus"], "accuracy": cell(r["metrics"], "accuracy", "{:.1%}"),
            "baseline accuracy": cell(r["metrics"], "baseline_accuracy", "{:.1%}"),
            "ECE (calibrated)": cell(r["metrics"], "ece", "{:.3f}"),
            "OOD accuracy": cell(r["metrics"], "ood_accuracy", "{:.1%}")}
           for r in rows if kinds.can(r, kinds.CLASSIFY)]
    return pd.DataFrame(out, columns=["name", "kind", "corpus", "accuracy", "baseline accuracy", "ECE (calibrated)",
                                      "OOD accuracy"])


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _test_figures(meta: dict) -> list[tuple[str, dict, dict]]:
    """(set, the model's figures, the baseline's) for each test split a built model was measured on (what
    `train.bundled.finish` recorded in `meta["build"]`: the chosen candidate's and the baseline's `eval`; the
    out-of-domain sentences are the set "ood"). Only sets with a recorded accuracy; [] for a model without them."""
    build = meta.get("build") if isinstance(meta.get("build"), dict) else {}
    cands = build.get("candidates") if isinstance(build.get("candidates"), dict) else {}
    mine = (cands.get(build.get("chosen")) or {}).get("eval")
    base = (cands.get("baseline") or {}).get("eval")
    base = base if isinstance(base, dict) else {}
    if not isinstance(mine, dict):
        return []
    return [(src, f, base.get(src) if isinstance(base.get(src), dict) else {}) for src, f in mine.items()
            if isinstance(f, dict) and _num(f.get("accuracy"))]


def test_accuracy(meta: dict, source: str) -> float | None:
    "A built model's recorded accuracy on one corpus's test split (`_test_figures`); None when not recorded."
    return next((f["accuracy"] for src, f, _ in _test_figures(meta) if src == source), None)


def tested_line(meta: dict) -> str | None:
    """How often a built model was right on each corpus's test split (texts like those it learned from, never seen
    in training), with the baseline fitted on the same rows, in one sentence for an audience; None when not
    recorded. The out-of-domain sentences have their own line (`weak_spots`)."""
    figs = [(src, f, b) for src, f, b in _test_figures(meta) if src != "ood" and _num(f.get("n"))]
    if not figs:
        return None
    said = and_([f"{f['accuracy']:.0%} of {f['n']:,} {starter.SOURCES.get(src, src)}" for src, f, _ in figs])
    base = ([f"{b['accuracy']:.0%}" for _, _, b in figs] if all(_num(b.get("accuracy")) for _, _, b in figs)
            else None)
    return (f"Tested on texts like the ones it learned from, but never shown to it in training: right on {said}"
            + (f" (a TF-IDF baseline trained on the same texts: {and_(base)})" if base else "") + ".")


def test_splits_table(meta: dict):
    """A built model's figures on each corpus's test split and the out-of-domain sentences (`_test_figures`), beside
    the TF-IDF baseline fitted on the same training rows, one row per set; None for a model without them. Only
    recorded figures: a figure not recorded is a blank cell."""
    import pandas as pd

    out = []
    for src, f, bf in _test_figures(meta):
        b = bf.get("accuracy")
        out.append({
            "test rows": "everyday sentences from other domains" if src == "ood" else starter.SOURCES.get(src, src),
            "texts": f"{f['n']:,}" if _num(f.get("n")) else "",
            "this model": f"{f['accuracy']:.1%}", "baseline, same training rows": f"{b:.1%}" if _num(b) else "",
            "ahead by (points)": f"{(f['accuracy'] - b) * 100:+.1f}" if _num(b) else "",
            "ECE": f"{f['ece']:.3f}" if _num(f.get("ece")) else "",
            "called positive": f"{f['positive_share']:.0%}" if _num(f.get("positive_share")) else ""})
    return pd.DataFrame(out) if out else None

def fmt_size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n}"


def fmt_metric(v) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return "—"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)
