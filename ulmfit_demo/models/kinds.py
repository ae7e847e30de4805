"""The one interface every kind of model answers to (`Model`), the table of kinds, and opening a stored model.

A stored model is opened (`open`) as an instance of its kind's class: `awd.Classifier`, `awd.LanguageModel`,
`tfidf.Baseline`, `ensemble.Ensemble`; each module registers its classes (`register`), and `models/__init__.py`
imports them all, so the table is full before anything is opened. Adding a kind is one module with its class and
one line there. Callers (inference, the pages, the CLI, bundles) use the verbs below and never ask which kind they
hold; a kind that cannot do something says so in its own words (`cannot`). Read it the way fastai's `Learner` and
scikit-learn's estimators read: a few verbs, the same for every model.

- `predict_batch(texts, progress)` -> one `{"label", "probs"}` per text (blank texts get `label` None and an
  `error`); `predict(text)` is one of them with `n_tokens` and `truncated`;
- `attributions(text, work, budget_s)` -> the words that drove the verdict, in one shape for every kind;
- `generate(prompt, ...)` -> text (language models);
- `describe()` -> what it is, in words and figures a page can show;
- `export_bundle(z)` writes its files into a bundle zip; `import_bundle(z, meta, name, install)` installs one.

Opened models are cached per process (keyed by id and the files' stamp, so a changed file is read again), and each
is used under its own lock: fastai's AWD-LSTM keeps its hidden state inside the module, so two requests at once
would read each other's state.
"""
import io
import math
import threading
import unicodedata
import zipfile
from collections import OrderedDict
from typing import Any, Callable

from ulmfit_demo.models import registry
from ulmfit_demo.models.registry import ModelError
from ulmfit_demo.models.store import Loaded, load

# Characters read from one text. spaCy refuses more than 1,000,000; a review longer than this says nothing more
# to a sentiment model than its first part does (the classifier only pools over its last 1,440 tokens anyway).
MAX_CHARS = 100_000

# Bundles (`bundle`): the README's name, and limits on an imported zip (the biggest real model, an AWD-LSTM with a
# 60k vocab, is ~180 MB of weights).
BUNDLE_README = "README.md"
MAX_BUNDLE_MEMBER = 2 << 30
MAX_META_BYTES = 64 << 20

CLASSIFY, GENERATE = "classify", "generate"

# Texts per step when batch prediction reports progress: two full batches of an AWD-LSTM; ~8 s for a full-size one on
# 2 CPU cores (bench_inference: ~17 reviews/s), so a bar moves often enough, and tokenizing per step costs next to
# nothing. Read at call time, so a test can make it small.
PROGRESS_STEP = 128


class InferenceError(ModelError):
    "Input that a model cannot use: the message says what was wrong and what to do."


# Characters nobody sees: spaces, line breaks, and format/control characters such as a zero-width space or a bidi mark.
INVISIBLE = ("Zs", "Zl", "Zp", "Cc", "Cf")


def blank(text: str) -> bool:
    """No character a reader would see. A review of zero-width spaces is not empty to `str.strip`, yet a model reads
    nothing in it: judging it would show a verdict about no words."""
    return all(ch.isspace() or unicodedata.category(ch) in INVISIBLE for ch in text)


def check_text(text: Any) -> tuple[str, bool]:
    "The text to use and whether it was cut; refuses what is not text or is blank."
    if not isinstance(text, str):
        raise InferenceError(f"Expected text, got {type(text).__name__}.")
    if blank(text):
        raise InferenceError("The text is empty: type or paste a review (a sentence or more).")
    return (text[:MAX_CHARS], True) if len(text) > MAX_CHARS else (text, False)


class Model:
    """A stored model, opened. Subclasses set `kind` (the registry's name for it), `tasks` (what it can be asked:
    CLASSIFY, GENERATE) and implement the verbs of their tasks; `open` builds one from its id and metadata."""
    kind: str = ""
    tasks: frozenset = frozenset()
    what: str = "model"  # in words, for messages: "a TF-IDF baseline"
    noun: str = "model"  # what a listing calls one: "TF-IDF baseline"
    # Why fastai's `learn.export()` pickle is not offered for this kind (None: it is).
    no_fastai_export: str | None = None

    def __init__(self, model_id: str | None, meta: dict):
        self.id = model_id
        self.meta = meta
        # One request at a time per model: fastai's AWD-LSTM keeps its hidden state inside the module.
        self.lock = threading.Lock()

    @classmethod
    def open(cls, model_id: str) -> "Model":
        "The model stored under `model_id` (its registry row says it is of this kind)."
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self.meta.get("name") or str(self.id)

    @property
    def labels(self) -> list[str]:
        return list(self.meta.get("labels") or [])

    # ------------------------------------------------------------------------------------------------ asking

    def cannot(self, task: str) -> str:
        "Why this model cannot do `task`, and what to pick instead."
        need = "a sentiment classifier" if task == CLASSIFY else "a language model"
        return f"Model {self.name!r} is {self.what}; this needs {need}."

    def require(self, task: str) -> "Model":
        "This model, if it can do `task`; else `InferenceError` with `cannot(task)`."
        if task not in self.tasks:
            raise InferenceError(self.cannot(task))
        return self

    def predict(self, text: str) -> dict:
        """`{"label", "probs": {label: p}}` for one text, plus `n_tokens` and `truncated` (text cut at MAX_CHARS)."""
        raise InferenceError(self.cannot(CLASSIFY))

    def predict_batch(self, texts: list[str], progress: Callable[[int, int], None] | None = None) -> list[dict]:
        """Predictions for many texts, in their order; blank ones get `label` None and an `error`. With
        `progress(done, total)` the work goes in steps and the caller hears after each."""
        raise InferenceError(self.cannot(CLASSIFY))

    def attributions(self, text: str, work: int, budget_s: float | None = None) -> dict:
        """`{"label", "prob", "probs", "method", "words": [{"text", "score", "tokens"}], "scored", "n_words",
        "truncated", "seen_as"}`: positive scores pushed towards the verdict (see each kind's `method`); `seen_as`
        says what units the model read ("tokens", "words"; absent when its members each read their own)."""
        raise InferenceError(self.cannot(CLASSIFY))

    def generate(self, prompt: str, n_words: int, temperature: float, n_samples: int, seed: int,
                 top_k: int) -> dict:
        raise InferenceError(self.cannot(GENERATE))

    def describe(self) -> dict:
        "What it is, for a page or a listing: `{kind, what, name, labels}` and whatever the kind adds."
        return {"kind": self.kind, "what": self.what, "name": self.name, "labels": self.labels}

    # ------------------------------------------------------------------------------------------------ bundles

    def export_bundle(self, z) -> None:
        "Write this model's files, its metadata and a README into the open `zipfile.ZipFile` `z`."
        raise ModelError(f"{self.name!r} ({self.what}) cannot be exported as a bundle.")

    @classmethod
    def import_bundle(cls, z, meta: dict, name: str | None, install: Callable[[bytes], str]) -> str:
        """Install the bundle `z` (its checked `meta` read already) as a new model; returns its id. `install` installs
        another bundle (an ensemble's members)."""
        raise ModelError(f"A {cls.what} cannot be imported from a bundle.")


class Stored(Model):
    "A kind whose own files `store.load` rebuilds (the AWD-LSTMs, the baseline): it answers from that `Loaded`."

    def __init__(self, loaded: Loaded):
        super().__init__(loaded.id, loaded.meta)
        self.loaded = loaded

    @classmethod
    def open(cls, model_id):
        return cls(load(model_id))

    @property
    def labels(self) -> list[str]:
        return self.loaded.labels


def bundle_bytes(m: Model) -> bytes:
    "The model's bundle (`Model.export_bundle`) as the bytes of a zip."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        m.export_bundle(z)
    return buf.getvalue()


def verdict(labels: list[str], p) -> dict:
    """`{"label", "probs"}` from a row of class probabilities in `labels`' order."""
    return {"label": labels[int(p.argmax())], "probs": {lab: float(p[i]) for i, lab in enumerate(labels)}}


def blank_rows(texts: list) -> tuple[list[int], list[str], list[dict | None]]:
    """The texts a batch can score (indices and texts, each cut at MAX_CHARS) and a result list where every blank
    or non-text row already holds its `{"label": None, "probs": {}, "error"}`."""
    results: list[dict | None] = [None] * len(texts)
    todo, kept = [], []
    for i, t in enumerate(texts):
        try:
            text, _ = check_text("" if t is None or (isinstance(t, float) and math.isnan(t)) else str(t))
            todo.append(i)
            kept.append(text)
        except InferenceError as e:
            results[i] = {"label": None, "probs": {}, "error": str(e)}
    return todo, kept, results


# ----------------------------------------------------------------------------------------------------------- the table

CLASSES: dict[str, type[Model]] = {}


def register(cls: type[Model]) -> type[Model]:
    "Class decorator: `cls` answers for models of kind `cls.kind`."
    CLASSES[cls.kind] = cls
    return cls


def kind_class(kind: str) -> type[Model]:
    try:
        return CLASSES[kind]
    except KeyError:
        raise ModelError(f"Unknown model kind {kind!r}: this app knows {', '.join(sorted(CLASSES))}.") from None


def able(task: str) -> tuple[str, ...]:
    "The kinds that can do `task`, in the order they registered."
    return tuple(k for k, cls in CLASSES.items() if task in cls.tasks)


def can(row: dict, task: str) -> bool:
    "Whether a model of this registry row (or metadata) can do `task`, without opening it."
    cls = CLASSES.get(row.get("kind"))
    return cls is not None and task in cls.tasks


_CACHE: "OrderedDict[str, tuple[str, Model]]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
# Models kept open per process. An ensemble holds no weights, but it and each of its members are entries: the bundled
# model alone takes 7 (itself, four AWD-LSTMs, two linear models; about 350 MB), and with too few every prediction
# through it evicts and reloads a member (v3 with room for 4: 0.7 s instead of 20 ms warm). 12 keeps it open beside
# the Sentiment page's second model and a small ensemble of the user's.
MAX_CACHED = 12


def open(model) -> Model:
    """The opened model for an id (or pass a `Model` through), cached; opened again when its files changed."""
    if isinstance(model, Model):
        return model
    if not isinstance(model, str):
        raise ModelError(f"Expected a model id, got {type(model).__name__}.")
    stamp = registry.stamp(model)
    with _CACHE_LOCK:
        hit = _CACHE.get(model)
        if hit and hit[0] == stamp:
            _CACHE.move_to_end(model)
            return hit[1]
    m = kind_class(registry.get(model)["kind"]).open(model)
    with _CACHE_LOCK:
        _CACHE[model] = (stamp, m)
        while len(_CACHE) > MAX_CACHED:
            _CACHE.popitem(last=False)
    return m


def forget(model_id: str) -> None:
    "Drop a model from this process's cache (after delete or replace)."
    with _CACHE_LOCK:
        _CACHE.pop(model_id, None)
