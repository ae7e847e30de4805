"""What fastai feeds the model: classifier batches and the language-model stream picture.

Tokens come from fastai's `Tokenizer`, ids from `Numericalize`, batches from fastai's own `SortedDL` +
`pad_input_chunk` (classifier) and `LMDataLoader` (language model); this module only turns their tensors back into
tokens for display.
"""
from functools import partial

import pandas as pd

# An original paragraph for the LM picture (about 90 tokens, like the one the seeds use).
EXAMPLE_STREAM = (
    "A language model reads text one token at a time and guesses the next one. To train it, we join every review "
    "into one long stream. Then we cut that stream into a few equal parts, one per row of the batch. Each row is "
    "read in order, window after window, so the model can carry what it remembers from one window to the next. "
    "The target is simply the same text, shifted by one token."
)


def numericalizer(token_lists, min_freq: int = 3, max_vocab: int = 60000):
    "fastai's `Numericalize`, set up on `token_lists` (its defaults are the seeds': min_freq=3, max_vocab=60000)."
    from fastai.text.all import L, Numericalize

    num = Numericalize(min_freq=min_freq, max_vocab=max_vocab)
    num.setup(L(token_lists))
    return num


# -------------------------------------------------------------------------------------------------------- LM picture

def stream_picture(tokens: list[str], bs: int, seq_len: int) -> dict:
    """The seeds' picture of language-model batching: the token stream cut into `bs` contiguous mini-streams of
    `len(tokens) // bs` tokens, each read in windows of `seq_len`. Batch `b` is window `b` of every mini-stream.

    Returns `{"mini_len", "minis": [bs lists], "batches": [[bs rows of <= seq_len tokens], ...]}`."""
    if bs < 1 or seq_len < 1:
        raise ValueError("bs and seq_len must be at least 1")
    mini_len = len(tokens) // bs
    if mini_len == 0:
        raise ValueError(f"{len(tokens)} tokens cannot fill {bs} rows: lower bs or use a longer text.")
    minis = [tokens[i * mini_len:(i + 1) * mini_len] for i in range(bs)]
    n_batches = -(-mini_len // seq_len)
    batches = [[m[b * seq_len:(b + 1) * seq_len] for m in minis] for b in range(n_batches)]
    return {"mini_len": mini_len, "minis": minis, "batches": batches}


def lm_loader_batches(docs: list[list[str]], bs: int, seq_len: int, max_batches: int = 4, num=None) -> dict:
    """Batches from fastai's real `LMDataLoader` over `docs` (token lists, in order, no shuffling so the picture is
    stable). fastai keeps one token back so the last input still has a target: each row holds
    `(n_tokens - 1) // bs` tokens, one fewer than the simple picture when `n_tokens` divides evenly.

    Returns `{"n_tokens", "row_len", "n_batches", "batches": [{"x": rows, "y": rows}]}`."""
    from fastai.text.all import L, LMDataLoader

    n_tokens = sum(len(d) for d in docs)
    if n_tokens - 1 < bs:
        raise ValueError(f"{n_tokens} tokens cannot fill {bs} rows: lower bs or use a longer text.")
    num = num or numericalizer(docs, min_freq=1)
    dl = LMDataLoader(L(num(d) for d in docs), bs=bs, seq_len=seq_len, shuffle=False)
    vocab = num.vocab
    out = []
    for i, (x, y) in enumerate(dl):
        if i >= max_batches:
            break
        out.append({"x": [[vocab[t] for t in row] for row in x.tolist()],
                    "y": [[vocab[t] for t in row] for row in y.tolist()]})
    return {"n_tokens": n_tokens, "row_len": dl.bl, "n_batches": dl.n_batches, "batches": out}


# -------------------------------------------------------------------------------------------------------- classifier

def classifier_batch(tok_df: pd.DataFrame, bs: int = 4, seq_len: int = 72, seed: int = 0, num=None) -> list[dict]:
    """One training batch as fastai's text classifier DataLoaders build it (`TextBlock` uses `SortedDL` with
    `pad_input_chunk`): texts of similar length together, padded at the front in chunks of `seq_len`.

    `tok_df` has `tokens` and `label`. Returns one dict per row: `tokens` (xxpad included: it is what the model
    gets), `label`, `n_pad`."""
    from fastai.text.all import (Categorize, Datasets, ItemGetter, SortedDL, pad_input_chunk, set_seed)

    df = tok_df[tok_df["label"] != ""].reset_index(drop=True)
    if df.empty:
        raise ValueError("This corpus has no labels, so there are no classifier batches: see the language-model view.")
    num = num or numericalizer(df["tokens"].tolist())
    dsets = Datasets(df, [[ItemGetter("tokens"), num], [ItemGetter("label"), Categorize()]])
    set_seed(seed)
    dl = SortedDL(dsets, bs=min(bs, len(df)), shuffle=True, before_batch=partial(pad_input_chunk, seq_len=seq_len),
                  res=df["tokens"].map(len).tolist())
    # SortedDL puts the longest text in its first batch (to run out of memory early, not mid-epoch), so on a corpus
    # of long reviews the first batch is one 1,700-token review and rows of padding: show the next, a typical one.
    it = iter(dl)
    x, y = next(it)
    if len(dl) > 1:
        x, y = next(it)
    labels = dsets.tfms[1][1].vocab  # the Categorize vocab, set up on this data
    rows = []
    for xi, yi in zip(x.tolist(), y.tolist()):
        toks = [num.vocab[t] for t in xi]
        rows.append({"tokens": toks, "label": labels[yi], "n_pad": sum(t == "xxpad" for t in toks)})
    return rows
