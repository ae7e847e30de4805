"""Using saved models: predict, predict_batch, generate, word attributions.

Models are loaded once per process (keyed by id and the weights file's stamp) and each is used under its own lock:
fastai's AWD-LSTM keeps its hidden state inside the module, so two requests at once would read each other's state.
Every call resets that state first. Text is tokenized exactly as in training (fastai's rules, then spaCy words or the
stored SentencePiece model) and numericalized with the stored vocab.

Pages import this module: fastai and torch are imported inside functions.
"""
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from ulmfit_demo import models
from ulmfit_demo.models import ModelError
from ulmfit_demo.text.decode import detokenize, word_units

# Characters read from one text. spaCy refuses more than 1,000,000; a review longer than this says nothing more
# to a sentiment model than its first part does (the classifier only pools over its last 1,440 tokens anyway).
MAX_CHARS = 100_000
# Occlusion costs one forward pass of the whole text per word: at most this many words are scored, and fewer
# for long texts so that words x tokens stays under ATTR_WORK (a few seconds on a CPU for a full-size model).
MAX_ATTR_WORDS = 300
ATTR_WORK = 200_000
# Rows x tokens per forward pass in batch prediction: bounds memory for long reviews.
TOKEN_BUDGET = 32_768
MAX_BS = 64
# Texts per step when batch prediction reports progress: two full batches; ~8 s for a full-size AWD-LSTM on 2 CPU cores
# (bench_inference: ~17 reviews/s), so a bar moves often enough, and tokenizing per step costs next to nothing.
PROGRESS_STEP = 128
TOP_K = 10

ATTRIBUTION_METHOD = ("Occlusion: each word's score is how much the model's confidence in its verdict drops when "
                      "that word alone is left out (negative: leaving it out makes the model more sure).")


class InferenceError(ModelError):
    "Input that a model cannot use: the message says what was wrong and what to do."


# ----------------------------------------------------------------------------------------------------------- runners

@dataclass
class Runner:
    "A loaded model with its tokenizer and a lock; one per model per process."
    loaded: models.Loaded
    tok: Any  # a callable: list[str] -> iterator of token lists
    subword: bool
    lock: threading.Lock = field(default_factory=threading.Lock)

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


def _make_tokenizer(loaded: models.Loaded):
    from fastai.text import core as tcore
    from fastai.text.all import SentencePieceTokenizer, TokenizeWithRules, WordTokenizer, defaults

    names = loaded.meta["tokenizer"].get("rules")
    rules = [getattr(tcore, n) for n in names if hasattr(tcore, n)] if names else list(defaults.text_proc_rules)
    if loaded.meta["tokenizer"].get("kind") == "subword":
        sp = models.sp_model_path(loaded)
        if sp is None or not sp.is_file():
            raise ModelError(f"Model {loaded.id} is a subword model but its SentencePiece file is missing.")
        return TokenizeWithRules(SentencePieceTokenizer(sp_model=str(sp), cache_dir=str(loaded.folder)), rules=rules), True
    return TokenizeWithRules(WordTokenizer(), rules=rules), False


def runner(model) -> Runner:
    "The cached `Runner` for a model id (or pass a Runner through). Reloads when the model's files changed."
    if isinstance(model, Runner):
        return model
    if not isinstance(model, str):
        raise ModelError(f"Expected a model id, got {type(model).__name__}.")
    stamp = models.stamp(model)
    with _CACHE_LOCK:
        hit = _CACHE.get(model)
        if hit and hit[0] == stamp:
            _CACHE.move_to_end(model)
            return hit[1]
    loaded = models.load(model)
    tok, subword = _make_tokenizer(loaded)
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


def _class_probs(r: Runner, seqs: list[list[int]]):
    "Class probabilities for numericalized texts, in the given order: batched longest first, as fastai's SortedDL."
    import torch

    model = r.loaded.model
    bptt = model[0].bptt
    pad = r.loaded.meta["model"].get("pad_idx", 1)
    if r.backwards:
        seqs = [s[::-1] for s in seqs]
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    out = torch.empty(len(seqs), len(r.labels))
    k = 0
    with torch.no_grad():
        while k < len(order):
            longest = len(seqs[order[k]])
            bs = max(1, min(MAX_BS, TOKEN_BUDGET // max(longest, 1)))
            idx = order[k:k + bs]
            x, starts = _pad_batch([seqs[i] for i in idx], pad, bptt)
            enc_out, mask = _encode(model[0], x, starts)
            logits = model[1].layers(_concat_pool(enc_out, mask))
            out[idx] = torch.softmax(logits.float(), dim=-1)
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
    text, cut = check_text(text)
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
        with r.lock:
            seqs = [numericalize(r, toks) for toks in tokenize(r, kept[k:k + step])]
            probs.extend(_class_probs(r, seqs))
        if progress:
            progress(min(k + step, len(kept)), len(kept))
    for j, i in enumerate(todo):
        results[i] = _verdict(r, probs[j])
    return results  # type: ignore[return-value]


def attributions(model, text: str) -> dict:
    """Per-word scores by occlusion (see ATTRIBUTION_METHOD): `{"label", "prob", "method", "words": [{"text",
    "score"}], "scored": n, "n_words": N}`. Positive scores pushed towards the verdict."""
    r = runner(model)
    _need(r, "classifier")
    text, cut = check_text(text)
    with r.lock:
        toks = tokenize(r, [text])[0]
        ids = numericalize(r, toks)
        units = word_units(toks, r.subword)
        scored = units[:max(1, min(MAX_ATTR_WORDS, ATTR_WORK // max(len(ids), 1)))]
        variants = [ids] + [[t for k, t in enumerate(ids) if k not in set(u)] for u in scored]
        probs = _class_probs(r, variants)
    c = int(probs[0].argmax())
    base = float(probs[0][c])
    words = []
    for k, u in enumerate(units):
        shown = detokenize([toks[i] for i in u], r.subword)
        score = base - float(probs[k + 1][c]) if k < len(scored) else None
        words.append({"text": shown, "score": score, "tokens": [toks[i] for i in u]})
    return {"label": r.labels[c], "prob": base, "probs": {lab: float(probs[0][i]) for i, lab in enumerate(r.labels)},
            "method": ATTRIBUTION_METHOD, "words": words, "scored": len(scored), "n_words": len(units),
            "truncated": cut}


# ----------------------------------------------------------------------------------------------------------- generate

def generate(model, prompt: str, n_words: int = 40, temperature: float = 0.75, n_samples: int = 1,
             seed: int = 0, top_k: int = TOP_K) -> dict:
    """Sample continuations of `prompt` from a language model. Each sample `i` draws from its own generator seeded
    `seed + i`, so the same seed gives the same text. Like fastai's `LMLearner.predict`: `xxunk` is never drawn and
    probabilities are raised to `1/temperature`. Returns `{"texts", "samples": [{"text", "tokens", "steps"}]}`
    where `steps[k]` is the top-k next-word distribution the k-th word was drawn from."""
    import torch

    r = runner(model)
    _need(r, "language_model")
    if r.backwards:
        raise InferenceError(f"{r.meta['name']!r} was trained on reversed text (backwards): it predicts the word "
                             f"before, not the next one, so it cannot continue a prompt. Pick a forward model.")
    if not isinstance(prompt, str):
        raise InferenceError("The prompt must be text.")
    if not 1 <= int(n_words) <= 1000:
        raise InferenceError(f"Number of words must be between 1 and 1000 (got {n_words}).")
    if not 1 <= int(n_samples) <= 20:
        raise InferenceError(f"Number of samples must be between 1 and 20 (got {n_samples}).")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise InferenceError(f"Temperature must be above 0 (got {temperature}); 1 samples as trained, lower is "
                             f"safer, higher is wilder.")
    prompt = prompt[:MAX_CHARS]
    n_words, n_samples = int(n_words), int(n_samples)
    vocab = r.loaded.vocab
    banned = [i for i in (r.idx("xxunk", -1), r.idx("xxpad", -1)) if i >= 0]
    with r.lock:
        toks = tokenize(r, [prompt])[0] if prompt.strip() else ["xxbos"]
        ids = numericalize(r, toks)
        gens = [torch.Generator().manual_seed(int(seed) + i) for i in range(n_samples)]
        model = r.loaded.model
        out_ids = [[] for _ in range(n_samples)]
        steps = [[] for _ in range(n_samples)]
        with torch.no_grad():
            model.reset()
            x = torch.tensor([ids] * n_samples, dtype=torch.long)
            for _ in range(n_words):
                logits = model(x)[0][:, -1].float()
                logits[:, banned] = -math.inf
                probs = torch.softmax(logits / temperature, dim=-1)
                nxt = []
                for s in range(n_samples):
                    j = int(torch.multinomial(probs[s], 1, generator=gens[s]))
                    top_p, top_i = probs[s].topk(min(top_k, probs.shape[1]))
                    steps[s].append({"chosen": vocab[j], "chosen_prob": float(probs[s, j]),
                                     "top": [(vocab[int(i)], float(p)) for p, i in zip(top_p, top_i)]})
                    out_ids[s].append(j)
                    nxt.append(j)
                x = torch.tensor(nxt, dtype=torch.long)[:, None]
        model.reset()
    samples = []
    for s in range(n_samples):
        gen_toks = [vocab[i] for i in out_ids[s]]
        samples.append({"text": detokenize(toks + gen_toks, r.subword), "tokens": gen_toks, "steps": steps[s]})
    return {"texts": [s["text"] for s in samples], "samples": samples, "prompt_tokens": toks}


def perplexity(model) -> float | None:
    "The LM's validation perplexity as measured at the end of training, if the model recorded one."
    r = model if isinstance(model, dict) else runner(model).meta
    m = r.get("metrics") or {}
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
