"""The vocabulary-size trade-off: at each size, tokens per review, the share that becomes `xxunk` and the size of the
embedding matrix, for word tokens (`word_sweep`) and subword tokens (`subword_point`), and their plotly figures.
"""
from collections import Counter

import pandas as pd

from ulmfit_demo.text.subwords import SubwordModel
from ulmfit_demo.text.vocab import Vocab, build_vocab

# Vocabulary sizes tried by the sweep. Word: Numericalize's max_vocab (60,000 is fastai's default).
# Subword: SentencePiece vocab_sz; each is a training run, so fewer points.
WORD_SWEEP = (100, 250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 60000)
SUBWORD_SWEEP = (100, 250, 500, 1000, 2000, 4000, 8000, 16000)


def default_emb_sz() -> int:
    "AWD-LSTM's embedding size in fastai's default language-model config (`awd_lstm_lm_config`)."
    from fastai.text.all import awd_lstm_lm_config
    return int(awd_lstm_lm_config["emb_sz"])


def vocab_point(docs: list[list[str]], min_freq: int, max_vocab: int, emb_sz: int) -> dict:
    "For token lists `docs` under `Numericalize(min_freq, max_vocab)`: rows, tokens per doc, unknown rate, parameters."
    return _point(build_vocab(docs, min_freq, max_vocab), len(docs), emb_sz)


def _point(v: Vocab, n_docs: int, emb_sz: int) -> dict:
    n = v.n_tokens
    return {"vocab_rows": v.size, "mean_tokens": n / n_docs if n_docs else 0.0,
            "unk_rate": 1 - v.coverage if n else 0.0, "emb_params": v.size * emb_sz}


def word_sweep(docs: list[list[str]], min_freq: int, emb_sz: int, sizes=WORD_SWEEP) -> list[dict]:
    """Word tokens at each `max_vocab` in `sizes`. Sizes past the corpus's distinct words give the same vocabulary;
    only the first of those is kept (a flat line of copies says nothing)."""
    out, seen = [], set()
    counter = Counter(t for d in docs for t in d)
    for mv in sizes:
        v = build_vocab(counter, min_freq, mv)
        if v.words in seen:
            continue
        seen.add(v.words)
        out.append({"tokenizer": "word", "setting": mv, **_point(v, len(docs), emb_sz)})
    return out


def subword_point(model: SubwordModel, docs: list[list[str]], min_freq: int, emb_sz: int) -> dict:
    """Subword tokens of the corpus under one SentencePiece model. fastai numericalizes pieces like words
    (`Numericalize`, max_vocab 60,000), so a piece seen fewer than `min_freq` times also becomes xxunk and the
    embedding has one row per kept piece."""
    return {"tokenizer": "subword", "setting": model.asked, "pieces": model.n_pieces,
            **vocab_point(docs, min_freq, 60000, emb_sz)}


def sweep_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["tokenizer", "setting", "vocab_rows", "mean_tokens", "unk_rate",
                                       "emb_params"]).sort_values(["tokenizer", "vocab_rows"]).reset_index(drop=True)


COLORS = {"word": "#4c78a8", "subword": "#f58518"}


def sweep_figures(df: pd.DataFrame, emb_sz: int) -> dict:
    "Three plotly figures over vocabulary size (rows of the embedding matrix): tokens, unknown rate, parameters."
    import plotly.graph_objects as go

    specs = {
        "tokens": ("mean_tokens", "Tokens per review", None),
        "unk": ("unk_rate", "Tokens that become xxunk", ".0%"),
        "params": ("emb_params", f"Embedding: rows × {emb_sz} numbers", "~s"),
    }
    figs = {}
    for key, (col, title, fmt) in specs.items():
        fig = go.Figure()
        for kind in ("word", "subword"):
            part = df[df["tokenizer"] == kind]
            if part.empty:
                continue
            setting = "max_vocab" if kind == "word" else "vocab_sz"
            fig.add_trace(go.Scatter(
                x=part["vocab_rows"].tolist(), y=part[col].tolist(), mode="lines+markers", name=kind,
                line=dict(color=COLORS[kind]), customdata=part["setting"].tolist(),
                hovertemplate=f"{kind}<br>vocabulary %{{x:,}} rows ({setting} %{{customdata:,}})<br>%{{y}}"
                              "<extra></extra>"))
        fig.update_layout(title=dict(text=title, font=dict(size=14)), height=300,
                          margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.3),
                          xaxis_title="vocabulary size (rows)")
        fig.update_xaxes(type="log", dtick=1, tickformat="~s")
        if fmt:
            fig.update_yaxes(tickformat=fmt)
        if key != "tokens":
            fig.update_yaxes(rangemode="tozero")
        figs[key] = fig
    return figs
