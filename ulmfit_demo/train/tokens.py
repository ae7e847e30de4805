"""A run's tokenizer: fastai's word tokens (spaCy + rules, cached on disk by `tokcache`) or a SentencePiece model
trained on the run's own texts with fastai's rules (`train_subword`), applied once to a run's documents
(`tokenize_docs`). `Tok.meta` is what a saved model records; `Tok.detok` writes tokens back as text.

Test hook, honoured only when set: `ULMFIT_DEMO_TEST_TOKENIZE_DELAY=seconds` (see `data.tokcache`) also pauses
`train_subword` while it writes SentencePiece's input and once after SentencePiece trains, before the model is
moved into place.
"""
import os
import shutil
from pathlib import Path

import pandas as pd

from ulmfit_demo.data.tokcache import MAX_CHARS, delay_hook, tokenized, word_tokenize
from ulmfit_demo.text.decode import detokenize
from ulmfit_demo.train.presets import Config


class Tok:
    """The tokenizer of a run: fastai's word tokenizer (spaCy + rules) or a SentencePiece model trained on the run's
    texts with the same rules. `meta` is what `models.save_learner` records."""

    def __init__(self, kind: str, sp_model: Path | None = None):
        self.kind, self.sp_model = kind, sp_model
        self._sp = None

    @property
    def meta(self) -> dict:
        if self.kind == "word":
            return {"kind": "word"}
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(self.sp_model))
        return {"kind": "subword", "vocab_sz": int(sp.get_piece_size()), "sp_model": str(self.sp_model)}

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        if self.kind == "word":
            return word_tokenize(texts)
        from fastai.text.all import SentencePieceTokenizer, tokenize_texts

        if self._sp is None:
            self._sp = SentencePieceTokenizer(sp_model=self.sp_model, cache_dir=self.sp_model.parent)
        return [list(t) for t in tokenize_texts([t[:MAX_CHARS] for t in texts], n_workers=0, tok=self._sp)]

    def detok(self, tokens: list[str]) -> str:
        "Readable text, written back the way the Generate page writes it (capitals, repeats, punctuation restored)."
        return detokenize(tokens, subword=self.kind == "subword")


def train_subword(texts: list[str], vocab_sz: int, folder: Path) -> Path:
    """Train SentencePiece (fastai's settings: unigram, fastai's special tokens as user symbols) on `texts` after
    fastai's rules; the model lands in `folder/spm.model`. An existing model is reused (a resumed run must keep
    the same pieces its checkpoints were trained on).

    Training happens in `folder/.training`, emptied first so nothing of a killed attempt (half its input, a model
    never moved) is read. `spm.model` is the commit point: renamed into place last, after `spm.vocab`."""
    folder = Path(folder)
    model = folder / "spm.model"
    if model.exists():
        return model
    from fastai.text.all import SentencePieceTokenizer, defaults, maps

    tmp = folder / ".training"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    sp = SentencePieceTokenizer(vocab_sz=vocab_sz, cache_dir=tmp)
    raw = tmp / "texts.out"
    every = max(32, -(-len(texts) // 10))  # the test hook's pauses: about ten while the input is written
    with open(raw, "w", encoding="utf-8") as f:
        for i, t in enumerate(maps(*defaults.text_proc_rules, [t[:MAX_CHARS] for t in texts]), 1):
            for line in _chunks(t):
                f.write(line + "\n")
            if i % every == 0:
                f.flush()
                delay_hook()
    trained = Path(sp.train(raw))
    delay_hook()  # a complete model in `.training`, not yet committed
    for p in (trained.with_suffix(".vocab"), trained):
        if p.exists():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
            os.replace(p, folder / p.name)
    shutil.rmtree(tmp, ignore_errors=True)
    return model


def _chunks(text: str, limit: int = 2000):
    "Lines of at most `limit` characters: SentencePiece silently skips longer ones (a Wikipedia article is one)."
    for line in text.split("\n"):
        cur = ""
        for w in line.split(" "):
            if cur and len(cur) + 1 + len(w) > limit:
                yield cur
                cur = ""
            cur = f"{cur} {w}" if cur else w
        if cur.strip():
            yield cur


def tokenize_docs(docs: pd.DataFrame, cfg: Config, folder: Path, sp_model: Path | None = None) -> tuple[pd.DataFrame, Tok]:
    """`docs` (text, label, split) plus a `tokens` column. Word tokens come from the on-disk cache shared with the
    Data page; subword tokens from a SentencePiece model (`sp_model`, or one trained here on these texts)."""
    docs = docs.reset_index(drop=True)
    if cfg.tokenizer == "word":
        toks = tokenized(docs[["text", "label", "split"]], max_docs=None)
        return docs.assign(tokens=toks["tokens"].values), Tok("word")
    if sp_model is None:
        sp_model = train_subword(docs["text"].tolist(), cfg.sp_vocab_sz, Path(folder) / "spm")
    tok = Tok("subword", Path(sp_model))
    return docs.assign(tokens=tok.tokenize(docs["text"].tolist())), tok
