"""Using saved models: predict, predict_batch, word attributions, CSV scoring; and, from `generate`, text from a
language model. Pages, the CLI and the benchmarks call this module for all of it (`inference.generate` included).

Each call takes the model's runner (`runners`: loaded once per process, used under its lock) and resets the model's
hidden state first. Pages import this module: fastai and torch are imported inside functions. A baseline model
(kind `baseline`, TF-IDF + logistic regression) answers the same calls from raw text, with no tokenizer or lock; an
ensemble (kind `ensemble`) answers them from its members' answers (`ensemble`).
"""
import math
from typing import Any, Callable

from ulmfit_demo.models.generate import generate, perplexity  # noqa: F401 - callers use inference.generate
from ulmfit_demo.models.runners import (MAX_CHARS, InferenceError, Runner, _need, check_text, forget,  # noqa: F401
                                        numericalize, runner, tokenize)
from ulmfit_demo.text.decode import detokenize, word_units

# Occlusion costs one forward pass of the whole text per word: at most this many words are scored, and fewer
# for long texts so that words x tokens stays under ATTR_WORK (a few seconds on a CPU for a full-size model).
MAX_ATTR_WORDS = 300
ATTR_WORK = 200_000
# Rows x tokens per forward pass in batch prediction: bounds memory for long reviews.
TOKEN_BUDGET = 32_768
# Word scores under a time budget are computed in steps of about this many tokens, the clock read between steps: a
# step of a long review must not itself blow the budget (32k tokens is seconds on 2 cores).
BUDGET_STEP_TOKENS = 8_192
MAX_BS = 64
# Texts per step when batch prediction reports progress: two full batches; ~8 s for a full-size AWD-LSTM on 2 CPU cores
# (bench_inference: ~17 reviews/s), so a bar moves often enough, and tokenizing per step costs next to nothing.
PROGRESS_STEP = 128

ATTRIBUTION_METHOD = ("Occlusion: each word's score is how much the model's confidence in its verdict drops when "
                      "that word alone is left out (negative: leaving it out makes the model more sure).")


# ----------------------------------------------------------------------------------------------------------- classify

def _pad_batch(seqs: list[list[int]], pad: int, bptt: int):
    """Pad like fastai's `pad_input_chunk`: whole chunks of `bptt` pads in front, the remainder after the text, so
    the encoder can skip rows that are all padding in a chunk and the pooling masks the rest. Returns the batch and
    where each row's text starts."""
    import torch

    n = max(len(s) for s in seqs)
    rows, starts = [], []
    for s in seqs:
        gap = n - len(s)
        starts.append((gap // bptt) * bptt)
        rows.append([pad] * starts[-1] + s + [pad] * (gap % bptt))
    return torch.tensor(rows, dtype=torch.long), starts


def _encode(enc, x, starts: list[int]):
    """fastai's `SentenceEncoder.forward`, chunk by chunk with the hidden state carried, where a row joins at the
    chunk its text starts in. fastai finds those rows by looking for padding at the chunk's first column, which
    also drops a shorter text whose neighbour's end-padding covers that column: its verdict would then depend on
    the other reviews in its batch. Rows must be sorted by `starts`."""
    import torch

    bs, sl = x.shape
    bptt, pad, max_len = enc.bptt, enc.pad_idx, enc.max_len
    enc.reset()
    mask = x == pad
    outs, masks = [], []
    for i in range(0, sl, bptt):
        real_bs = sum(1 for s in starts if s <= i)
        o = enc.module(x[:real_bs, i:min(i + bptt, sl)])
        if max_len is None or sl - i <= max_len:
            if o.shape[0] < bs:
                o = torch.cat([o, o.new_zeros(bs - o.shape[0], *o.shape[1:])])
            outs.append(o)
            masks.append(mask[:, i:min(i + bptt, sl)])
    return torch.cat(outs, dim=1), torch.cat(masks, dim=1)


def _class_probs(r: Runner, seqs: list[list[int]], precision: str | None = None):
    """Class probabilities for numericalized texts, in the given order: batched longest first, as fastai's SortedDL.
    On a CPU the model runs at `precision` (default: the fast path where it was measured to pay, `fastcpu`)."""
    import torch

    from ulmfit_demo.models import fastcpu

    model = fastcpu.model_for(r, precision)
    bptt = model[0].bptt
    pad = r.loaded.meta["model"].get("pad_idx", 1)
    if r.backwards:
        seqs = [s[::-1] for s in seqs]
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    out = torch.empty(len(seqs), len(r.labels))
    # Temperature scaling fitted on held-out reviews when the model was judged (`judge.report`): 1 = as trained.
    temp = float((r.loaded.meta.get("calibration") or {}).get("temperature") or 1.0)
    k = 0
    with torch.no_grad():
        while k < len(order):
            longest = len(seqs[order[k]])
            bs = max(1, min(MAX_BS, TOKEN_BUDGET // max(longest, 1)))
            idx = order[k:k + bs]
            x, starts = _pad_batch([seqs[i] for i in idx], pad, bptt)
            enc_out, mask = _encode(model[0], x, starts)
            logits = model[1].layers(_concat_pool(enc_out.float(), mask))  # a bf16 encoder pools in fp32
            out[idx] = torch.softmax(logits.float() / temp, dim=-1)
            k += bs
    return out


def _concat_pool(out, mask):
    """[last real token, max pool, avg pool], as fastai's `masked_concat_pool`, but with the last token found from the
    mask itself. fastai counts the pads in the last `bptt` positions, which points into the front padding when a
    short text's remainder padding and its chunk padding share that window: then a review's verdict would depend on
    which other reviews shared its batch. Without padding both agree exactly (so `predict` = fastai's `predict`)."""
    import torch

    pos = torch.arange(mask.shape[1], device=mask.device).expand_as(mask).masked_fill(mask, -1)
    last = out[torch.arange(out.shape[0]), pos.max(dim=1).values]
    lens = (~mask).sum(dim=1).clamp(min=1).to(out.dtype)
    avg = out.masked_fill(mask[:, :, None], 0).sum(dim=1) / lens[:, None]
    mx = out.masked_fill(mask[:, :, None], -float("inf")).max(dim=1)[0]
    return torch.cat([last, mx, avg], 1)


def _verdict(r: Runner, p) -> dict:
    probs = {lab: float(p[i]) for i, lab in enumerate(r.labels)}
    return {"label": r.labels[int(p.argmax())], "probs": probs}


def predict(model, text: str) -> dict:
    """`{"label", "probs": {label: p}}` for one text, plus `n_tokens` and `truncated` (text cut at MAX_CHARS)."""
    r = runner(model)
    _need(r, "classifier")
    if r.kind == "ensemble":  # members' answers averaged (`ensemble`)
        from ulmfit_demo.models import ensemble

        return ensemble.predict(r, text)
    text, cut = check_text(text)
    if r.kind == "baseline":
        p = _baseline_probs(r, [text])[0]
        return {**_verdict(r, p), "n_tokens": len(_baseline_words(r, text)), "truncated": cut}
    with r.lock:
        toks = tokenize(r, [text])[0]
        p = _class_probs(r, [numericalize(r, toks)])[0]
    return {**_verdict(r, p), "n_tokens": len(toks), "truncated": cut}


def predict_batch(model, texts: list[str], progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Predictions for many texts, in their order. Blank texts get `label` None and an `error`; tokenized in one
    spaCy pipe, batched longest-first and padded as fastai pads. With `progress`, texts go in steps of
    PROGRESS_STEP and `progress(done, total)` is called after each (a verdict never depends on its batch-mates, see
    `_concat_pool`, so the steps change nothing but the wait); the model lock is released between steps."""
    r = runner(model)
    _need(r, "classifier")
    if r.kind == "ensemble":  # members' answers averaged (`ensemble`)
        from ulmfit_demo.models import ensemble

        return ensemble.predict_batch(r, texts, progress)
    results: list[dict | None] = [None] * len(texts)
    todo, kept = [], []
    for i, t in enumerate(texts):
        try:
            text, _ = check_text("" if t is None or (isinstance(t, float) and math.isnan(t)) else str(t))
            todo.append(i)
            kept.append(text)
        except InferenceError as e:
            results[i] = {"label": None, "probs": {}, "error": str(e)}
    probs: list = []
    step = PROGRESS_STEP if progress else max(len(kept), 1)
    for k in range(0, len(kept), step):
        if r.kind == "baseline":
            probs.extend(_baseline_probs(r, kept[k:k + step]))
        else:
            with r.lock:
                seqs = [numericalize(r, toks) for toks in tokenize(r, kept[k:k + step])]
                probs.extend(_class_probs(r, seqs))
        if progress:
            progress(min(k + step, len(kept)), len(kept))
    for j, i in enumerate(todo):
        results[i] = _verdict(r, probs[j])
    return results  # type: ignore[return-value]


def attributions(model, text: str, work: int = ATTR_WORK, budget_s: float | None = None) -> dict:
    """Per-word scores by occlusion (see ATTRIBUTION_METHOD): `{"label", "prob", "method", "words": [{"text",
    "score"}], "scored": n, "n_words": N}`. Positive scores pushed towards the verdict. For a baseline model the
    scores are its linear weights instead (see BASELINE_ATTRIBUTION_METHOD), in the same shape, with `scale`
    'logit'. `work` bounds words scored x tokens; with `budget_s`, words are scored in batches until that many
    seconds have passed and the rest are left unscored (`timed_out` True): a page must answer while a training
    run shares the CPU. Without it the result does not depend on the machine."""
    r = runner(model)
    _need(r, "classifier")
    if r.kind == "ensemble":  # members' answers averaged (`ensemble`)
        from ulmfit_demo.models import ensemble

        return ensemble.attributions(r, text)
    text, cut = check_text(text)
    if r.kind == "baseline":
        return _baseline_attributions(r, text, cut)
    with r.lock:
        toks = tokenize(r, [text])[0]
        ids = numericalize(r, toks)
        units = word_units(toks, r.subword)
        scored = units[:max(1, min(MAX_ATTR_WORDS, work // max(len(ids), 1)))]
        variants = [ids] + [[t for k, t in enumerate(ids) if k not in set(u)] for u in scored]
        probs = _occlusion_probs(r, variants, budget_s)
        timed_out = len(probs) < len(variants)
        scored = scored[:len(probs) - 1]
    c = int(probs[0].argmax())
    base = float(probs[0][c])
    words = []
    for k, u in enumerate(units):
        shown = detokenize([toks[i] for i in u], r.subword)
        score = base - float(probs[k + 1][c]) if k < len(scored) else None
        words.append({"text": shown, "score": score, "tokens": [toks[i] for i in u]})
    return {"label": r.labels[c], "prob": base, "probs": {lab: float(probs[0][i]) for i, lab in enumerate(r.labels)},
            "method": ATTRIBUTION_METHOD, "words": words, "scored": len(scored), "n_words": len(units),
            "truncated": cut, "timed_out": timed_out}


def _occlusion_probs(r: Runner, variants: list[list[int]], budget_s: float | None):
    """Class probabilities of the whole text (row 0) and its occluded variants, in fp32 (scores are small
    differences: no rounding in them). With `budget_s`, in batches of about BUDGET_STEP_TOKENS tokens, stopping once
    the budget is spent; the first batch (the whole text, with more variants if they fit) is always scored."""
    import time

    if budget_s is None:
        return _class_probs(r, variants, precision="fp32")
    import torch

    t0 = time.perf_counter()
    step = max(1, BUDGET_STEP_TOKENS // max(len(variants[0]), 1))
    done = []
    for k in range(0, len(variants), step):
        done.append(_class_probs(r, variants[k:k + step], precision="fp32"))
        if time.perf_counter() - t0 > budget_s:
            break
    return torch.cat(done)


# ----------------------------------------------------------------------------------------------------------- baseline

BASELINE_ATTRIBUTION_METHOD = ("Linear weights: each word's score is its share of the TF-IDF x logistic-regression "
                               "weight behind the verdict (a two-word phrase's weight is split between its two "
                               "words); words the baseline never saw in training score 0.")


def _baseline_probs(r: Runner, texts: list[str]):
    """(n, k) probabilities of a baseline model, scaled by the temperature fitted when it was judged (as
    `_class_probs` does for an AWD-LSTM). Stateless and thread-safe: no lock needed."""
    from ulmfit_demo.judge import calibration

    temp = float((r.loaded.meta.get("calibration") or {}).get("temperature") or 1.0)
    return calibration.apply_temperature(r.loaded.model.logits(texts), temp)


def _baseline_words(r: Runner, text: str) -> list:
    "The words the baseline reads in `text` (regex matches of its TF-IDF token pattern)."
    import re

    return list(re.finditer(r.loaded.model.vectorizer.token_pattern, text))


def _baseline_attributions(r: Runner, text: str, cut: bool) -> dict:
    """`attributions` for a baseline: each word with its `word_weights` score. A word is shown with the punctuation
    that follows it (up to the next word), so the coloured review reads like the text that was typed."""
    base = r.loaded.model
    p = _baseline_probs(r, [text])[0]
    c = int(p.argmax())
    spans = [m.span() for m in _baseline_words(r, text)]
    weights = base.word_weights(text)  # same pattern, same text: one (surface, score) per span, in order
    words = []
    for k, ((a, _), (surface, score)) in enumerate(zip(spans, weights)):
        start = 0 if k == 0 else a
        end = spans[k + 1][0] if k + 1 < len(spans) else len(text)
        words.append({"text": text[start:end].strip(), "score": float(score), "tokens": [surface.lower()]})
    return {"label": r.labels[c], "prob": float(p[c]), "probs": {lab: float(p[i]) for i, lab in enumerate(r.labels)},
            "method": BASELINE_ATTRIBUTION_METHOD, "words": words, "scored": len(words), "n_words": len(words),
            "truncated": cut, "scale": "logit"}


# ----------------------------------------------------------------------------------------------------------- CSV

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(v: Any) -> Any:
    "A text cell that a spreadsheet would run as a formula gets a leading quote (OWASP's CSV injection advice)."
    return "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v


def score_csv(model, data: bytes, text_col: str, progress: Callable[[int, int], None] | None = None):
    """Read an uploaded CSV (bytes) and add the model's verdict to every row: `prediction`, `confidence` and one
    `p_<label>` column per label. Raises `InferenceError` when the column is missing or the file unreadable."""
    import pandas as pd

    from ulmfit_demo.data import corpora, uploads

    try:
        df = uploads.read_csv_upload(data)
    except corpora.CorpusError as e:
        raise InferenceError(str(e)) from None
    if text_col not in df.columns:
        raise InferenceError(f"The CSV has no column {text_col!r}. Columns found: "
                             f"{', '.join(repr(c) for c in df.columns)}. Pick the column that holds the text.")
    r = runner(model)
    preds = predict_batch(r, df[text_col].tolist(), progress)
    out = df.copy()
    out["prediction"] = [p["label"] or "" for p in preds]
    out["confidence"] = [round(p["probs"][p["label"]], 4) if p["label"] else None for p in preds]
    for lab in r.labels:
        out[f"p_{lab}"] = [round(p["probs"][lab], 4) if p["label"] else None for p in preds]
    out["note"] = [p.get("error", "") for p in preds]
    if not out["note"].astype(bool).any():
        out = out.drop(columns="note")
    return pd.DataFrame(out)


def safe_csv(df) -> bytes:
    "The frame as UTF-8 CSV with every text cell escaped against formula injection."
    return df.map(escape_cell).to_csv(index=False).encode("utf-8")
