"""Subword tokens: fastai's `SubwordTokenizer` (SentencePiece) trained on a corpus sample and cached on disk under
`$ULMFIT_DEMO_HOME/cache/spm/` (`train_subword`), the pieces of a text and their ids, SentencePiece's size errors
turned into messages a person can act on, and the sizes the page accepts (`parse_sizes`).

fastai and sentencepiece are imported inside functions: pages import this module.
"""
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ulmfit_demo import config

DEFAULT_SUBWORD_SIZES = (200, 1000, 10000)  # the seeds' three sizes
SUBWORD_LIMITS = (10, 60_000)  # what the page accepts; SentencePiece says if the corpus cannot support a size


class SubwordError(ValueError):
    "SentencePiece cannot make a model of the asked size from this text; the message says what size can."

    def __init__(self, msg: str, smallest: int | None = None, largest: int | None = None):
        super().__init__(msg)
        self.smallest, self.largest = smallest, largest


_TOO_SMALL = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")
_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")


def explain_sp_error(msg: str, asked: int) -> SubwordError:
    """SentencePiece's error turned into a message a person can act on. It states the bound itself: too small
    ("... smaller than required_chars. 30 vs 31": every distinct character needs a piece) or too high
    ("... Please set it to a value <= 27", raised when the size is a hard limit)."""
    if m := _TOO_SMALL.search(msg):
        need = int(m.group(2))
        return SubwordError(f"A vocabulary of {asked:,} is too small for the text SentencePiece learns from: every "
                            f"distinct character needs a piece of its own, plus the special tokens. The smallest that "
                            f"works here is "
                            f"{need:,}.", smallest=need)
    if m := _TOO_HIGH.search(msg):
        top = int(m.group(2))
        return SubwordError(f"A vocabulary of {asked:,} is too large for the text SentencePiece learns from: it "
                            f"finds at most {top:,} pieces in it. The largest that works here is {top:,}; use "
                            f"more text for more.", largest=top)
    return SubwordError(f"SentencePiece could not train a vocabulary of {asked:,} on this text: {msg}")


@dataclass(frozen=True)
class SubwordModel:
    path: Path  # the SentencePiece .model file (what a saved fastai model with a subword tokenizer carries)
    asked: int  # vocab_sz given to SubwordTokenizer
    n_pieces: int  # pieces SentencePiece actually made (fewer than asked when the text cannot support more)
    with_rules: bool  # trained on text after fastai's rules (as TextDataLoaders does) or on raw text

    @property
    def note(self) -> str | None:
        if self.n_pieces >= self.asked:
            return None
        # The bound comes from the texts SentencePiece was trained on (a corpus sample), not the text tokenized.
        return (f"You asked for {self.asked:,}, but the text SentencePiece learned from supports at most "
                f"{self.n_pieces:,} pieces: {self.n_pieces:,} is the largest that works there, and larger sizes give "
                f"this same tokenizer. More pieces need more (or more varied) text to learn from.")


def sp_input(text: str, with_rules: bool = True) -> str:
    "What SentencePiece reads: the text after fastai's rules (lower-cased, with xxmaj/xxup...), or the raw text."
    if not with_rules:
        return text
    from fastai.text.all import compose, defaults
    return compose(*defaults.text_proc_rules)(text)


def spm_cache() -> Path:
    p = config.sub("cache") / "spm"
    p.mkdir(parents=True, exist_ok=True)
    return p


def _spm_key(fp: str, vocab_sz: int, with_rules: bool) -> str:
    # fastai's other training settings (unigram, character coverage for English) are fixed, so these are enough.
    return f"spm-{fp}-v{vocab_sz}-{'rules' if with_rules else 'raw'}"


def cached_subword(fp: str, vocab_sz: int, with_rules: bool = True) -> SubwordModel | None:
    "The model trained earlier for this sample and settings, or None."
    path = spm_cache() / f"{_spm_key(fp, vocab_sz, with_rules)}.model"
    if not path.exists():
        return None
    return SubwordModel(path, vocab_sz, _processor(str(path)).GetPieceSize(), with_rules)


def train_subword(texts: list[str], vocab_sz: int, fp: str, with_rules: bool = True) -> SubwordModel:
    """fastai's `SubwordTokenizer(vocab_sz)` trained on `texts` (whose content hash is `fp`), cached under
    `$ULMFIT_DEMO_HOME/cache/spm/`: asking again for the same sample and settings loads the file. Raises
    `SubwordError` when SentencePiece refuses the size."""
    if (hit := cached_subword(fp, vocab_sz, with_rules)) is not None:
        return hit
    if not any(t.strip() for t in texts):
        raise SubwordError("There is no text to learn subword pieces from: the corpus sample is empty.")
    from fastai.text.all import SubwordTokenizer

    dest = spm_cache() / f"{_spm_key(fp, vocab_sz, with_rules)}.model"
    # fastai trains into `cache_dir/spm.model`: a folder per training keeps two sessions (or two sizes) from
    # overwriting each other's files mid-way; only the finished model is copied into the cache, atomically (the
    # commit point: `cached_subword` looks at nothing else). The pid in the name lets a later training remove the
    # folders of processes killed mid-way, which no `finally` cleaned up.
    _sweep_work()
    work = Path(tempfile.mkdtemp(dir=spm_cache(), prefix=f".train-{os.getpid()}-"))
    try:
        sp = SubwordTokenizer(vocab_sz=vocab_sz, cache_dir=work)
        raw = work / "texts.out"
        # The same file `SubwordTokenizer.setup` writes, without its console progress bar (the CLI's stdout is JSON).
        with open(raw, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(sp_input(t, with_rules) + "\n")
        try:
            model = sp.train(raw)
        except RuntimeError as e:
            raise explain_sp_error(str(e), vocab_sz) from None
        config.atomic_write(dest, Path(model).read_bytes())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return SubwordModel(dest, vocab_sz, _processor(str(dest)).GetPieceSize(), with_rules)


def _sweep_work() -> None:
    "Remove the training folders of processes that are gone."

    for d in spm_cache().glob(".train-*-*"):
        pid = d.name.split("-")[1]
        if pid.isdigit() and not config.pid_alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


@lru_cache(maxsize=32)
def _processor(path: str):
    from sentencepiece import SentencePieceProcessor
    sp = SentencePieceProcessor()
    sp.Load(path)
    return sp


@lru_cache(maxsize=32)
def _subword_tok(path: str):
    from fastai.text.all import SubwordTokenizer
    # cache_dir: fastai creates it even when loading a model; the model's own folder keeps `./tmp` out of the cwd.
    return SubwordTokenizer(sp_model=path, cache_dir=str(Path(path).parent))


def subword_tokens(model: SubwordModel, text: str) -> list[str]:
    "Pieces of `text` as fastai's `SubwordTokenizer` gives them (`▁` marks a piece that starts a word)."
    return [str(p) for p in next(iter(_subword_tok(str(model.path))([sp_input(text, model.with_rules)])))]


def subword_corpus(model: SubwordModel, texts: list[str]) -> list[list[str]]:
    tok = _subword_tok(str(model.path))
    return [[str(p) for p in ps] for ps in tok([sp_input(t, model.with_rules) for t in texts])]


def piece_ids(model: SubwordModel, pieces: list[str]) -> list[int]:
    "Each piece's id in SentencePiece's own vocabulary."
    sp = _processor(str(model.path))
    return [sp.PieceToId(p) for p in pieces]


def parse_sizes(s: str) -> list[int]:
    "'200, 1000, 10000' -> [200, 1000, 10000]; a `ValueError` saying what to type otherwise."
    parts = [p for p in re.split(r"[,\s;]+", s.strip()) if p]
    if not parts:
        raise ValueError("Type one or more vocabulary sizes, separated by commas, e.g. 200, 1000, 10000.")
    lo, hi = SUBWORD_LIMITS
    out = []
    for p in parts:
        if not re.fullmatch(r"\d+", p.replace("_", "")):
            raise ValueError(f"{p!r} is not a whole number. Type sizes like 200, 1000, 10000.")
        n = int(p.replace("_", ""))
        if not lo <= n <= hi:
            raise ValueError(f"{n:,} is out of range: use sizes between {lo:,} and {hi:,}.")
        if n not in out:
            out.append(n)
    if len(out) > 6:
        raise ValueError("At most 6 sizes at once: each one trains a SentencePiece model.")
    return out
