"""Word tokenization of a corpus with fastai's `Tokenizer(WordTokenizer())`, cached on disk by content hash.

Pages call this for statistics and previews; a corpus (or a sample of it) is never tokenized twice. Large corpora
are sampled: the caller says how many documents, and the UI says it is a sample.

A cache entry is `<key>.parquet` plus its `<key>.json` sidecar. The parquet is streamed, chunk by chunk, into a temp
file of its own (`.<key>.parquet.<pid>.<random>.tmp`, so two processes tokenizing the same corpus never share one),
fsynced and renamed into place; the sidecar, written last, is the commit point: an entry counts only when the sidecar
is there and its row count matches the parquet. A process killed mid-way leaves at most a temp file (removed by the
next writer of that key once its process is gone) or a parquet without a sidecar, and the next call tokenizes again.

Test hook, honoured only when set: `ULMFIT_DEMO_TEST_TOKENIZE_DELAY=seconds` sleeps after each chunk of tokenized
documents is written to the temp file (and, in `train.tokens.train_subword`, after each chunk of SentencePiece's
input and once after it trains), so tests can kill a worker mid-tokenization. It writes nothing else.
"""
import json
import os
import secrets
import time
from pathlib import Path

import pandas as pd

from ulmfit_demo import config
from ulmfit_demo.data.corpora import fingerprint

# spaCy refuses texts over `nlp.max_length` (1,000,000 chars); one 2 MB review must not break a whole corpus, and
# a single document this long says nothing more about token statistics than its first part does.
MAX_CHARS = 100_000
TOKENIZE_DELAY_ENV = "ULMFIT_DEMO_TEST_TOKENIZE_DELAY"


def delay_hook() -> None:
    "The test hook's pause (see the module docstring); nothing when unset."
    if s := float(os.environ.get(TOKENIZE_DELAY_ENV, "0") or 0):
        time.sleep(s)


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
    path = config.sub("cache") / f"tok-word-{fingerprint(part)}.parquet"
    if (hit := read_entry(path)) is not None:
        return hit
    out = _write_entry(part, path)
    # The commit point: only now is the entry complete.
    config.atomic_write(path.with_suffix(".json"), json.dumps({"n_docs": len(out), "max_docs": max_docs}))
    return out


def read_entry(path: Path) -> pd.DataFrame | None:
    "The cached frame at `path` if the entry is complete (sidecar present, row counts agree), else None."
    meta = path.with_suffix(".json")
    if not (meta.exists() and path.exists()):
        return None
    import pyarrow as pa

    try:
        n_docs = json.loads(meta.read_text())["n_docs"]
        df = pd.read_parquet(path)
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):  # torn by an older version: a miss
        return None
    if len(df) != n_docs:
        return None
    return df.assign(tokens=df["tokens"].map(list))


def _write_entry(part: pd.DataFrame, path: Path) -> pd.DataFrame:
    "Tokenize `part` chunk by chunk into a private temp file, then fsync and rename it to `path`."
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Worker processes cost seconds to start; for a few thousand short docs one process is faster.
    n_workers = 0 if len(part) <= 5000 else min(os.cpu_count() or 1, 4)
    # About ten chunks; with workers at least 10,000 docs each, since every chunk starts a new pool.
    size = max(32 if n_workers == 0 else 10_000, -(-len(part) // 10))
    # The types of the corpus columns from the whole frame (a chunk of empty labels alone would infer `null`).
    schema = (pa.Schema.from_pandas(part, preserve_index=False)
              .append(pa.field("tokens", pa.list_(pa.string()))).append(pa.field("n_tokens", pa.int64())))
    _sweep(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    chunks = []
    try:
        with pq.ParquetWriter(tmp, schema) as w:
            for i in range(0, len(part), size):
                c = part.iloc[i:i + size]
                toks = word_tokenize(c["text"].tolist(), n_workers=n_workers)
                c = c.assign(tokens=toks, n_tokens=[len(t) for t in toks])
                w.write_table(pa.Table.from_pandas(c, schema=schema, preserve_index=False))
                chunks.append(c)
                delay_hook()
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if not chunks:
        return part.assign(tokens=[], n_tokens=[]).astype({"n_tokens": "int64"})
    return pd.concat(chunks).reset_index(drop=True)


def _sweep(path: Path) -> None:
    "Remove temp files of this entry left by processes that are gone (a SIGKILL skips every `finally`)."
    for p in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            pid = int(p.name[len(path.name) + 2:].split(".")[0])
        except ValueError:
            continue
        if not config.pid_alive(pid):
            p.unlink(missing_ok=True)
