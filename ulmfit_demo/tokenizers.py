"""How text becomes tokens and ids for an AWD-LSTM, step by step, with fastai's own objects.

- Word tokens: fastai's `Tokenizer(WordTokenizer())`, traced rule by rule (`trace`).
- Subword tokens: fastai's `SubwordTokenizer` (SentencePiece) trained on a corpus sample, cached on disk
  (`train_subword`).
- Ids: fastai's `Numericalize(min_freq, max_vocab)` on the corpus's word tokens (`build_vocab`, `numericalize`).
- The vocab-size sweep: tokens per review, unknown-token rate and embedding-matrix size (`word_sweep`,
  `subword_point`, `sweep_figures`).

fastai is imported inside functions: pages import this module and must render without paying for fastai first.
"""
import difflib
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ulmfit_demo import config, tokcache
from ulmfit_demo.datasets import fingerprint

# The playground tokenizes at most this much of a pasted text: a long review is ~10k characters; a 1 MB paste
# would make the page redraw hundreds of thousands of chips while saying nothing a shorter text does not.
MAX_INPUT_CHARS = 20_000
# Documents of the current corpus used to train SentencePiece and build the word vocabulary (the seeds use 2,000).
SAMPLE_DOCS = 2000
DEFAULT_SUBWORD_SIZES = (200, 1000, 10000)  # the seeds' three sizes
SUBWORD_LIMITS = (10, 60_000)  # what the page accepts; SentencePiece says if the corpus cannot support a size
# Vocabulary sizes tried by the sweep. Word: Numericalize's max_vocab (60,000 is fastai's default).
# Subword: SentencePiece vocab_sz; each is a training run, so fewer points.
WORD_SWEEP = (100, 250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 60000)
SUBWORD_SWEEP = (100, 250, 500, 1000, 2000, 4000, 8000, 16000)

# Examples for the input box, each there to make one rule (or one limit of word tokenization) show itself.
PRESETS = [
    ("A bit of everything",
     "Once again Mr. Costner has dragged out a movie... I LOVED the music!!!! It is very very very very long.<br />"
     "Still, don't miss it.",
     "Capitals, ALL CAPS, repeated characters and words, an HTML line break, a contraction."),
    ("HTML leftovers", "Loved it.<br /><br />The caf&eacute; scene &lt;3 and Tom &amp; Jerry on TV.",
     "fix_html turns <br /> into line breaks and entities into characters. Note '&amp;' becomes '& &': fastai "
     "replaces 'amp;' with '&' before decoding, and this page shows what fastai really does."),
    ("ALL CAPS", "I LOVE it!!!! THE BEST FILM OF THE YEAR.", "xxup marks words in capitals; xxrep marks '!!!!'."),
    ("Capitalised names", "Once again Mr. Costner has dragged out a movie for far longer than necessary.",
     "The seeds' example: xxmaj marks each capitalised word, so the word itself can be stored lower-case."),
    ("Repeated characters", "Sooooo good!!!! Wow......", "xxrep, the count, then the character."),
    ("A word repeated", "This is very very very very good", "xxwrep, the count, then the word."),
    ("Contractions", "I don't think it's worth it, you'd agree? We can't say we didn't try.",
     "spaCy splits 'don't' into 'do' + 'n't' and 'it's' into 'it' + ''s'."),
    ("A URL", "Trailer at https://www.example.com/films/trailer#top, 10/10.",
     "spec_add_spaces cuts around / and #; replace_rep even finds 'www'."),
    ("Emoji", "Loved it 😍🍿 would watch again 👍👍👍", "Emoji are tokens like any other character; 👍👍👍 is a repetition."),
    ("Non-Latin script", "Это был отличный фильм. 素晴らしい映画でした。",
     "fastai's capital rules only know A-Z, so 'Это' gets no xxmaj; Japanese has no spaces, so the word tokenizer "
     "keeps a whole sentence as one token. SentencePiece splits it into pieces."),
]

# Plain words for each rule, by function name; a rule fastai adds in a later version falls back to its docstring.
RULE_NOTES = {
    "fix_html": "Cleans web leftovers: `<br />` becomes a line break, HTML entities such as `&eacute;` become characters.",
    "replace_rep": "A character repeated 3 or more times becomes `xxrep`, the count and the character.",
    "replace_wrep": "A word repeated 3 or more times in a row becomes `xxwrep`, the count and the word.",
    "spec_add_spaces": "Puts spaces around `/` and `#` so they become tokens of their own.",
    "rm_useless_spaces": "Squeezes runs of spaces into one.",
    "replace_all_caps": "A word in ALL CAPS is lower-cased, with `xxup` in front to remember it.",
    "replace_maj": "A Capitalised word is lower-cased, with `xxmaj` in front to remember it.",
    "lowercase": "Everything left is lower-cased, and `xxbos` marks where the text begins.",
    "split": "spaCy cuts the text into words and punctuation (`don't` becomes `do` + `n't`).",
    "replace_space": "A space left inside a token becomes `▁` (fastai's post-rule, applied to each token).",
}


# ----------------------------------------------------------------------------------------------------------- input

def prepare_input(text: str | None) -> tuple[str, str | None]:
    "The text the playground works on, and a message if it had to be cut."
    text = text or ""
    if len(text) <= MAX_INPUT_CHARS:
        return text, None
    return text[:MAX_INPUT_CHARS], (f"This text has {len(text):,} characters; the playground uses the first "
                                    f"{MAX_INPUT_CHARS:,}. Tokenizing the rest works the same way.")


def random_review(df: pd.DataFrame, seed: int) -> str:
    "One text of the corpus, chosen by `seed` (so a test, or the same click count, gets the same review)."
    if df.empty:
        return ""
    return str(df["text"].sample(n=1, random_state=seed).iloc[0])


def corpus_sample(df: pd.DataFrame, max_docs: int | None = SAMPLE_DOCS) -> tuple[pd.DataFrame, str]:
    "The documents SentencePiece and the vocabulary are built from (a seeded sample), and their content hash."
    part = tokcache.sample(df, max_docs)
    return part, fingerprint(part)


# ----------------------------------------------------------------------------------------------------------- word

@lru_cache(maxsize=1)
def _spacy():
    # Building spaCy's tokenizer costs about a second; it holds no per-text state, so one is shared.
    from fastai.text.all import WordTokenizer
    return WordTokenizer()


def special_tokens() -> list[str]:
    "fastai's special tokens, in its order (xxunk, xxpad, xxbos, ...)."
    from fastai.text.all import defaults
    return list(defaults.text_spec_tok)


@dataclass
class Step:
    name: str  # the fastai function's name, or "split"
    note: str  # what it does, in plain words
    before: str | list[str]
    after: str | list[str]  # a string for rules on the text, a token list for the split and post-rules

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass
class Trace:
    text: str
    steps: list[Step]
    split_tokens: list[str]  # what `Tokenizer(WordTokenizer())(text)` returns
    tokens: list[str]  # after fastai's post-rules: what `tokenize_texts` (and so training) gives


def trace(text: str) -> Trace:
    """fastai's word tokenization of `text`, one step at a time.

    fastai (2.x) applies every rule of `defaults.text_proc_rules` to the raw string, in order, `lowercase` included
    (`Tokenizer._tokenize1` is `tok([compose(*rules)(text)])`); only then does spaCy split it. The rules that add
    `xxup`/`xxmaj` therefore work on space-separated words of the string, not on spaCy's tokens. Corpus
    tokenization (`TokenizeWithRules`) then applies `defaults.text_postproc_rules` to each token."""
    from fastai.text.all import defaults

    steps, cur = [], text
    for rule in defaults.text_proc_rules:
        nxt = rule(cur)
        steps.append(Step(rule.__name__, _note(rule), cur, nxt))
        cur = nxt
    split = [str(t) for t in next(iter(_spacy()([cur])))]
    steps.append(Step("split", RULE_NOTES["split"], cur, split))
    toks = split
    for rule in defaults.text_postproc_rules:
        nxt = [rule(t) for t in toks]
        steps.append(Step(rule.__name__, _note(rule), toks, nxt))
        toks = nxt
    return Trace(text, steps, split, toks)


def _note(rule) -> str:
    return RULE_NOTES.get(rule.__name__) or (rule.__doc__ or rule.__name__).strip()


def word_tokens(text: str) -> list[str]:
    "Final word tokens of `text`, exactly as fastai's corpus tokenization makes them."
    return trace(text).tokens


_PIECES = re.compile(r"\S+\s*|\s+")


def diff_segments(before: str, after: str, max_chars: int = 3000) -> tuple[list[tuple[str, str]], int]:
    """What a rule changed, as `(op, text)` segments, `op` one of `same`, `del`, `ins`, compared word by word
    (a word keeps its trailing spaces, so a rule that only adds spaces still shows). Covers the first `max_chars`
    characters of `after`; the second value is how many characters of `after` that leaves out."""
    # difflib is quadratic on repetitive text (20k characters of a repeated phrase take minutes), so only the
    # shown part is compared: `after`'s first `max_chars` against a slightly longer start of `before`, scaled by
    # how much the rule grew or shrank the text. What `before` has past that window is not shown.
    scale = len(before) / max(len(after), 1)
    a = _pieces_upto(before, min(int(max_chars * scale * 1.2) + 200, 4 * max_chars))
    b = _pieces_upto(after, max_chars)
    left = len(after) - len("".join(b))
    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    if left and ops and ops[-1][0] == "replace":
        # `a` runs past the window: only as much of it as `b` has left can be what the rule replaced.
        op, i1, i2, j1, j2 = ops[-1]
        ops[-1] = (op, i1, min(i2, i1 + j2 - j1), j1, j2)
    out = []
    for op, i1, i2, j1, j2 in ops:
        segs = [("same", "".join(b[j1:j2]))] if op == "equal" else \
            [("del", "".join(a[i1:i2])), ("ins", "".join(b[j1:j2]))]
        out += [(k, s) for k, s in segs if s]
    if left:
        while out and out[-1][0] == "del":  # the part of `before` past the window, not a deletion
            out.pop()
    # One 20k-character "word" (no spaces) would otherwise be shown whole.
    out = [(k, s if len(s) <= max_chars else s[:max_chars] + "…") for k, s in out]
    return out, max(left, 0)


def _pieces_upto(text: str, n_chars: int) -> list[str]:
    "Whole pieces covering at least the first `n_chars` characters (so a cut never splits a word)."
    out, n = [], 0
    for m in _PIECES.finditer(text):
        if n >= n_chars:
            break
        out.append(m.group())
        n += len(m.group())
    return out


# ----------------------------------------------------------------------------------------------------------- subword

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
        return SubwordError(f"A vocabulary of {asked:,} is too small for this text: every distinct character needs "
                            f"a piece of its own, plus the special tokens. The smallest that works here is "
                            f"{need:,}.", smallest=need)
    if m := _TOO_HIGH.search(msg):
        top = int(m.group(2))
        return SubwordError(f"A vocabulary of {asked:,} is too large for this text: SentencePiece finds at most "
                            f"{top:,} pieces in it. The largest that works here is {top:,}; use more text for "
                            f"more.", largest=top)
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
        return (f"You asked for {self.asked:,}, but this text supports at most {self.n_pieces:,} pieces: "
                f"{self.n_pieces:,} is the largest that works here, and larger sizes give this same tokenizer.")


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
    # overwriting each other's files mid-way; only the finished model is copied into the cache, atomically.
    work = Path(tempfile.mkdtemp(dir=spm_cache(), prefix=".train-"))
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


# ----------------------------------------------------------------------------------------------------------- ids

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


# ----------------------------------------------------------------------------------------------------------- sweep

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
