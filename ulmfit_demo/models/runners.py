"""Loaded models ready for inference ("runners"), one per model per process, and the text they read.

Models are loaded once per process (keyed by id and the weights file's stamp) and each is used under its own lock:
fastai's AWD-LSTM keeps its hidden state inside the module, so two requests at once would read each other's state.
Text is tokenized exactly as in training (fastai's rules, then spaCy words or the stored SentencePiece model) and
numericalized with the stored vocab. `inference` (classification) and `generate` (language models) build on this.

Pages import this module: fastai and torch are imported inside functions.
"""
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ulmfit_demo.models.registry import ModelError, stamp as model_stamp
from ulmfit_demo.models.store import Loaded, load, sp_model_path

# Characters read from one text. spaCy refuses more than 1,000,000; a review longer than this says nothing more
# to a sentiment model than its first part does (the classifier only pools over its last 1,440 tokens anyway).
MAX_CHARS = 100_000


class InferenceError(ModelError):
    "Input that a model cannot use: the message says what was wrong and what to do."


# ----------------------------------------------------------------------------------------------------------- runners

@dataclass
class Runner:
    "A loaded model with its tokenizer and a lock; one per model per process."
    loaded: Loaded
    tok: Any  # a callable: list[str] -> iterator of token lists (None for a baseline, which reads raw text)
    subword: bool
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The same classifier at other precisions ("bf16", "int8": `fastcpu.model_for`), built on first use under
    # `lock`; cached and dropped with this runner, so a changed model file never serves a stale copy.
    variants: dict = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.loaded.id

    @property
    def kind(self) -> str:
        return self.loaded.kind

    @property
    def meta(self) -> dict:
        return self.loaded.meta

    @property
    def labels(self) -> list[str]:
        return self.loaded.labels

    @property
    def backwards(self) -> bool:
        "Trained on reversed text (fastai's `backwards=True`): token order is reversed before the model reads it."
        m = self.loaded.meta
        return bool((m.get("arch") or {}).get("backwards") or (m.get("training") or {}).get("backwards"))

    def idx(self, tok: str, default: int = 0) -> int:
        return self.loaded.o2i.get(tok, default)


_CACHE: "OrderedDict[str, tuple[str, Runner]]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
MAX_CACHED = 4


def _make_tokenizer(loaded: Loaded):
    from fastai.text import core as tcore
    from fastai.text.all import SentencePieceTokenizer, TokenizeWithRules, WordTokenizer, defaults

    names = loaded.meta["tokenizer"].get("rules")
    rules = [getattr(tcore, n) for n in names if hasattr(tcore, n)] if names else list(defaults.text_proc_rules)
    if loaded.meta["tokenizer"].get("kind") == "subword":
        sp = sp_model_path(loaded)
        if sp is None or not sp.is_file():
            raise ModelError(f"Model {loaded.id} is a subword model but its SentencePiece file is missing.")
        return TokenizeWithRules(SentencePieceTokenizer(sp_model=str(sp), cache_dir=str(loaded.folder)), rules=rules), True
    return TokenizeWithRules(WordTokenizer(), rules=rules), False


def runner(model) -> Runner:
    """The cached `Runner` for a model id (or pass a Runner through). Reloads when the model's files changed. An
    ensemble gets its `ensemble.EnsembleRunner` instead: nothing to load, its members have runners of their own."""
    if isinstance(model, Runner):
        return model
    from ulmfit_demo.models import ensemble  # imported here: it builds on this module

    if ensemble.is_ensemble(model):
        return ensemble.runner(model)
    if not isinstance(model, str):
        raise ModelError(f"Expected a model id, got {type(model).__name__}.")
    stamp = model_stamp(model)
    with _CACHE_LOCK:
        hit = _CACHE.get(model)
        if hit and hit[0] == stamp:
            _CACHE.move_to_end(model)
            return hit[1]
    loaded = load(model)
    # A baseline reads raw text with its own TF-IDF vectorizer: no fastai tokenizer to build.
    tok, subword = (None, False) if loaded.kind == "baseline" else _make_tokenizer(loaded)
    r = Runner(loaded, tok, subword)
    with _CACHE_LOCK:
        _CACHE[model] = (stamp, r)
        while len(_CACHE) > MAX_CACHED:
            _CACHE.popitem(last=False)
    return r


def forget(model_id: str) -> None:
    "Drop a model from this process's cache (after delete or replace)."
    with _CACHE_LOCK:
        _CACHE.pop(model_id, None)


def _need(r: Runner, kind: str) -> None:
    "Refuse a model of the wrong kind. A baseline does whatever a classifier does (`kind` 'classifier'), no more."
    if kind == "classifier" and r.kind in ("baseline", "ensemble"):
        return
    if kind == "language_model" and r.kind == "ensemble":
        raise InferenceError(f"Model {r.meta['name']!r} is an ensemble of sentiment classifiers: it cannot generate "
                             f"text. Pick a language model.")
    if kind == "language_model" and r.kind == "baseline":
        raise InferenceError(f"Model {r.meta['name']!r} is a TF-IDF baseline: a baseline cannot generate text. "
                             f"Pick a language model.")
    if r.kind != kind:
        what = "a sentiment classifier" if kind == "classifier" else "a language model"
        raise InferenceError(f"Model {r.meta['name']!r} is a {r.kind.replace('_', ' ')}; this needs {what}.")


# ----------------------------------------------------------------------------------------------------------- text

def check_text(text: Any) -> tuple[str, bool]:
    "The text to use and whether it was cut; refuses what is not text or is blank."
    if not isinstance(text, str):
        raise InferenceError(f"Expected text, got {type(text).__name__}.")
    if not text.strip():
        raise InferenceError("The text is empty: type or paste a review (a sentence or more).")
    return (text[:MAX_CHARS], True) if len(text) > MAX_CHARS else (text, False)


def tokenize(r: Runner, texts: list[str]) -> list[list[str]]:
    "Tokens of each text, with the same rules and tokenizer as in training (starts with `xxbos`)."
    return [list(t) for t in r.tok(texts)]


def numericalize(r: Runner, toks: list[str]) -> list[int]:
    unk = r.idx("xxunk", 0)
    pad = r.idx("xxpad", 1)
    # A literal "xxpad" typed by someone must not be taken for padding: the encoder would skip it.
    return [unk if (i := r.idx(t, unk)) == pad else i for t in toks]
