"""Using saved models: predict, predict_batch, word attributions, generated text, CSV scoring. Pages, the CLI and the
benchmarks call this module for all of it.

Each call opens the model (`kinds.open`: once per process, cached) and asks it through the one interface every kind
answers to (`kinds.Model`): an AWD-LSTM classifier, a TF-IDF baseline and an ensemble all predict, and a language
model generates, without this module knowing which it holds. Pages import this module: fastai and torch are
imported inside the functions that need them.
"""
import math
from typing import Any, Callable

from ulmfit_demo.data import corpora, uploads
from ulmfit_demo.models import kinds
from ulmfit_demo.models.awd import ATTR_WORK, MAX_ATTR_WORDS, TOP_K  # noqa: F401 - callers read them here
from ulmfit_demo.models.kinds import (CLASSIFY, GENERATE, MAX_CHARS, InferenceError, check_text,  # noqa: F401
                                      forget)
from ulmfit_demo.text.decode import detokenize  # noqa: F401 - callers use inference.detokenize

# The opened model for an id (cached): `kinds.open`.
runner = kinds.open


def predict(model, text: str) -> dict:
    """`{"label", "probs": {label: p}}` for one text, plus `n_tokens` and `truncated` (text cut at MAX_CHARS); an
    ensemble adds each member's verdict (`members`)."""
    return kinds.open(model).require(CLASSIFY).predict(text)


def predict_batch(model, texts: list[str], progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Predictions for many texts, in their order. Blank texts get `label` None and an `error`. With `progress`,
    texts go in steps and `progress(done, total)` is called after each."""
    return kinds.open(model).require(CLASSIFY).predict_batch(texts, progress)


def attributions(model, text: str, work: int = ATTR_WORK, budget_s: float | None = None) -> dict:
    """Per-word scores: `{"label", "prob", "method", "words": [{"text", "score"}], "scored": n, "n_words": N}`.
    Positive scores pushed towards the verdict; `method` says how they were made (occlusion for an AWD-LSTM and an
    ensemble, linear weights for a baseline, with `scale` 'logit'). `work` bounds words scored x tokens; with
    `budget_s`, words are scored until that many seconds have passed and the rest are left unscored (`timed_out`
    True): a page must answer while a training run shares the CPU. Without it the result does not depend on the
    machine."""
    return kinds.open(model).require(CLASSIFY).attributions(text, work, budget_s)


def generate(model, prompt: str, n_words: int = 40, temperature: float = 0.75, n_samples: int = 1,
             seed: int = 0, top_k: int = TOP_K) -> dict:
    """Sample continuations of `prompt` from a language model: `{"texts", "samples": [{"text", "tokens",
    "steps"}], "prompt_tokens", "subword"}`; the same seed gives the same text."""
    return kinds.open(model).require(GENERATE).generate(prompt, n_words, temperature, n_samples, seed, top_k)


def perplexity(model) -> float | None:
    "The LM's validation perplexity as measured at the end of training, if the model recorded one."
    meta = model if isinstance(model, dict) else kinds.open(model).meta
    m = meta.get("metrics") or {}
    if "perplexity" in m:
        return float(m["perplexity"])
    if "valid_loss" in m:
        return float(math.exp(m["valid_loss"]))
    return None


# ----------------------------------------------------------------------------------------------------------- CSV

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(v: Any) -> Any:
    "A text cell that a spreadsheet would run as a formula gets a leading quote (OWASP's CSV injection advice)."
    return "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v


def score_csv(model, data: bytes, text_col: str, progress: Callable[[int, int], None] | None = None):
    """Read an uploaded CSV (bytes) and add the model's verdict to every row: `prediction`, `confidence` and one
    `p_<label>` column per label. Raises `InferenceError` when the column is missing or the file unreadable."""
    import pandas as pd  # deferred: pages import this module, and only a CSV upload needs pandas here

    try:
        df = uploads.read_csv_upload(data)
    except corpora.CorpusError as e:
        raise InferenceError(str(e)) from None
    if text_col not in df.columns:
        raise InferenceError(f"The CSV has no column {text_col!r}. Columns found: "
                             f"{', '.join(repr(c) for c in df.columns)}. Pick the column that holds the text.")
    m = kinds.open(model).require(CLASSIFY)
    preds = m.predict_batch(df[text_col].tolist(), progress)
    out = df.copy()
    out["prediction"] = [p["label"] or "" for p in preds]
    out["confidence"] = [round(p["probs"][p["label"]], 4) if p["label"] else None for p in preds]
    for lab in m.labels:
        out[f"p_{lab}"] = [round(p["probs"][lab], 4) if p["label"] else None for p in preds]
    out["note"] = [p.get("error", "") for p in preds]
    if not out["note"].astype(bool).any():
        out = out.drop(columns="note")
    return pd.DataFrame(out)


def safe_csv(df) -> bytes:
    "The frame as UTF-8 CSV with every text cell escaped against formula injection."
    return df.map(escape_cell).to_csv(index=False).encode("utf-8")
