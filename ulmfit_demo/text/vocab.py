"""Ids: fastai's `Numericalize(min_freq, max_vocab)` set up on a corpus's tokens (`build_vocab`), and each token's id
with why an unknown one became `xxunk` (`numericalize`).
"""
from collections import Counter
from dataclasses import dataclass

import pandas as pd


class _Counted(list):
    "Token lists with their `Counter` attached: `Numericalize.setups` uses `dsets.counter` instead of recounting."

    def __init__(self, counter: Counter):
        super().__init__()
        self.counter = counter


@dataclass
class Vocab:
    num: object  # the fastai `Numericalize`, set up
    counter: Counter  # token -> count in the corpus
    min_freq: int
    max_vocab: int
    words: frozenset  # the vocabulary without fastai's `xxfake` padding

    @property
    def itos(self) -> list[str]:
        return list(self.num.vocab)

    @property
    def size(self) -> int:
        "Rows of the embedding matrix: fastai pads the vocabulary to a multiple of 8 with `xxfake` entries."
        return len(self.num.vocab)

    @property
    def n_fake(self) -> int:
        return sum(1 for t in self.num.vocab if t == "xxfake")

    @property
    def n_tokens(self) -> int:
        return sum(self.counter.values())

    def known(self, tok: str) -> bool:
        # Not `tok in num.o2i`: o2i is a defaultdict, and every unknown token numericalized adds itself to it.
        return tok in self.words

    @property
    def coverage(self) -> float:
        "Share of the corpus's tokens that have their own id (the rest become xxunk)."
        total = self.n_tokens
        return sum(c for t, c in self.counter.items() if self.known(t)) / total if total else 0.0


def build_vocab(docs: list[list[str]] | Counter, min_freq: int = 3, max_vocab: int = 60000) -> Vocab:
    "fastai's `Numericalize(min_freq, max_vocab)` set up on the corpus tokens `docs` (or their `Counter`)."
    from fastai.text.all import Numericalize

    counter = docs if isinstance(docs, Counter) else Counter(t for d in docs for t in d)
    num = Numericalize(min_freq=min_freq, max_vocab=max_vocab)
    num.setup(_Counted(counter))
    return Vocab(num, counter, min_freq, max_vocab, frozenset(t for t in num.vocab if t != "xxfake"))


def numericalize(vocab: Vocab, tokens: list[str]) -> pd.DataFrame:
    """One row per token: its id from fastai's `Numericalize`, whether it is in the vocabulary, its corpus count, and
    for an unknown token why it is not in the vocabulary."""
    ids = [int(i) for i in vocab.num(tokens)]
    rows = []
    for tok, i in zip(tokens, ids):
        known, freq = vocab.known(tok), vocab.counter.get(tok, 0)
        if known:
            why = ""
        elif freq == 0:
            why = "never seen in the corpus"
        elif freq < vocab.min_freq:
            why = f"seen {freq} time{'s' if freq != 1 else ''}; min_freq is {vocab.min_freq}"
        else:
            why = f"seen {freq} times, but the vocabulary is full (max_vocab {vocab.max_vocab:,})"
        rows.append({"token": tok, "id": i, "in_vocab": known, "corpus_count": freq, "why_unknown": why})
    return pd.DataFrame(rows, columns=["token", "id", "in_vocab", "corpus_count", "why_unknown"])
