"""Word tokenization of a corpus with fastai's `Tokenizer(WordTokenizer())`, cached on disk by content hash.

Pages call this for statistics and previews; a corpus (or a sample of it) is never tokenized twice. Large corpora
are sampled: the caller says how many documents, and the UI says it is a sample.
"""
import json
import os

import pandas as pd

from ulmfit_demo import config
from ulmfit_demo.data.corpora import fingerprint

# spaCy refuses texts over `nlp.max_length` (1,000,000 chars); one 2 MB review must not break a whole corpus, and
# a single document this long says nothing more about token statistics than its first part does.
MAX_CHARS = 100_000


def sample(df: pd.DataFrame, max_docs: int | None, seed: int = 0) -> pd.DataFrame:
    "A seeded sample of at most `max_docs` rows, in the corpus's order."
    if max_docs is None or len(df) <= max_docs:
        return df.reset_index(drop=True)
    return df.sample(n=max_docs, random_state=seed).sort_index().reset_index(drop=True)


def word_tokenize(texts: list[str], n_workers: int = 0) -> list[list[str]]:
    "fastai's default word tokenization (spaCy + fastai's rules) of each text, long texts cut at `MAX_CHARS`."
    from fastai.text.all import WordTokenizer, tokenize_texts

    return [list(t) for t in tokenize_texts([t[:MAX_CHARS] for t in texts], n_workers=n_workers,
                                            tok=WordTokenizer())]


def tokenized(df: pd.DataFrame, max_docs: int | None = 2000, seed: int = 0) -> pd.DataFrame:
    """`df` (or a seeded sample of `max_docs` rows) with a `tokens` column (list of str) and `n_tokens`.
    Cached under `$ULMFIT_DEMO_HOME/cache/` keyed by the corpus content hash and the sample size."""
    part = sample(df, max_docs, seed)
    key = f"tok-word-{fingerprint(part)}"
    path = config.sub("cache") / f"{key}.parquet"
    if path.exists():
        return pd.read_parquet(path).assign(tokens=lambda d: d["tokens"].map(list))
    # Worker processes cost seconds to start; for a few thousand short docs one process is faster.
    n_workers = 0 if len(part) <= 5000 else min(os.cpu_count() or 1, 4)
    toks = word_tokenize(part["text"].tolist(), n_workers=n_workers)
    out = part.assign(tokens=toks, n_tokens=[len(t) for t in toks])
    tmp = path.with_name(path.name + ".tmp")
    out.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    config.atomic_write(path.with_suffix(".json"), json.dumps({"n_docs": len(out), "max_docs": max_docs}))
    return out
