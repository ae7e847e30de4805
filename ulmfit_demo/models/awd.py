"""The fastai AWD-LSTM kinds: a sentiment `Classifier` and a `LanguageModel`, opened from their stored folders.

Text is tokenized exactly as in training (fastai's rules, then spaCy words or the stored SentencePiece model) and
numericalized with the stored vocab. A classifier scores texts batched longest first and padded as fastai pads
(`class_probs`), word scores come from occlusion; a language model samples continuations of a prompt. Every call
runs under the model's lock: the AWD-LSTM keeps its hidden state inside the module.

Pages import this module (through `inference`): fastai and torch are imported inside the functions that need them,
so a page opens without loading them.
"""
import math
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

from ulmfit_demo.models import fastcpu, kinds
from ulmfit_demo.models.checks import load_weights_checked
from ulmfit_demo.models.kinds import (BUNDLE_README, CLASSIFY, GENERATE, MAX_CHARS, InferenceError, Stored,
                                     blank_rows, check_text, register, verdict)
from ulmfit_demo.models.registry import META, SPM, WEIGHTS, ModelError, model_folder, models_dir
from ulmfit_demo.models.store import Loaded, _save_model, sp_model_path
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
TOP_K = 10

ATTRIBUTION_METHOD = ("Occlusion: each word's score is how much the model's confidence in its verdict drops when "
                      "that word alone is left out (negative: leaving it out makes the model more sure).")


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


def reads_backwards(meta: dict) -> bool:
    """Whether a stored AWD-LSTM's metadata says it was trained on reversed text: in its `arch`, in its training
    record (what a run saves), or in the config its builder recorded there."""
    training = meta.get("training") or {}
    cfg = training.get("config")
    return bool((meta.get("arch") or {}).get("backwards") or training.get("backwards")
                or (isinstance(cfg, dict) and cfg.get("backwards")))


class AwdModel(Stored):
    "What both AWD-LSTM kinds share: the loaded network, its tokenizer and vocab, and the bundle format."

    def __init__(self, loaded: Loaded):
        super().__init__(loaded)
        self.tok, self.subword = _make_tokenizer(loaded)
        # The same network at other precisions ("bf16", "int8": `fastcpu.model_for`), built on first use under
        # `lock`; dropped with this model, so a changed model file never serves a stale copy.
        self.variants: dict = {}

    @property
    def backwards(self) -> bool:
        "Trained on reversed text (fastai's `backwards=True`): token order is reversed before the model reads it."
        return reads_backwards(self.meta)

    def idx(self, tok: str, default: int = 0) -> int:
        return self.loaded.o2i.get(tok, default)

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        "Tokens of each text, with the same rules and tokenizer as in training (starts with `xxbos`)."
        return [list(t) for t in self.tok(texts)]

    def numericalize(self, toks: list[str]) -> list[int]:
        unk = self.idx("xxunk", 0)
        pad = self.idx("xxpad", 1)
        # A literal "xxpad" typed by someone must not be taken for padding: the encoder would skip it.
        return [unk if (i := self.idx(t, unk)) == pad else i for t in toks]

    def describe(self) -> dict:
        return {**super().describe(), "arch": "AWD-LSTM", "subword": self.subword, "backwards": self.backwards}

    # ------------------------------------------------------------------------------------------------ bundles

    def export_bundle(self, z) -> None:
        folder = model_folder(self.id)
        load_weights_checked(folder, self.meta, f"Model {self.id}")  # never hand out a damaged model
        z.write(folder / WEIGHTS, WEIGHTS)
        z.write(folder / META, META)
        if (folder / SPM).is_file():
            z.write(folder / SPM, SPM)
        z.writestr(BUNDLE_README, _readme(self.meta))

    @classmethod
    def import_bundle(cls, z, meta, name, install):
        members = {i.filename for i in z.infolist()}
        if WEIGHTS not in members:
            raise ModelError(f"The bundle has no {WEIGHTS}: it was not exported by ULMFiT Studio. Files in it: "
                             f"{', '.join(list(members)[:10]) or 'none'}.")
        with tempfile.TemporaryDirectory(dir=models_dir(), prefix=".import-") as td:
            td = Path(td)
            try:
                for m in (WEIGHTS, SPM):
                    if m in members:
                        with z.open(m) as src, open(td / m, "wb") as dst:
                            shutil.copyfileobj(src, dst)
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise ModelError(f"The bundle is damaged ({e}).") from None
            tok = meta["tokenizer"]
            if tok.get("kind") == "subword" and not (td / SPM).is_file():
                raise ModelError(f"The bundle holds a subword model but not its SentencePiece file ({SPM}).")
            model = load_weights_checked(td, meta, "The bundle")
            tokenizer = dict(tok, sp_model=str(td / SPM)) if tok.get("kind") == "subword" else tok
            return _save_model(model, kind=meta["kind"], name=name or meta.get("name") or "imported model",
                               corpus=meta.get("corpus"), run_id=meta.get("run_id"), arch=meta.get("arch") or {},
                               vocab=meta["vocab"], labels=meta.get("labels") or [], tokenizer=tokenizer,
                               metrics=meta.get("metrics") or {},
                               extra=dict(meta.get("training") or {}, imported_from=meta.get("id")),
                               source="bundle", calibration=meta.get("calibration"), judge=meta.get("judge"))


# ----------------------------------------------------------------------------------------------------------- classifier

@register
class Classifier(AwdModel):
    "A fastai text classifier (AWD-LSTM encoder + pooling head), its temperature applied to every verdict."
    kind = "classifier"
    tasks = frozenset({CLASSIFY})
    what = "a classifier"
    noun = "sentiment classifier"

    def predict(self, text: str) -> dict:
        text, cut = check_text(text)
        with self.lock:
            toks = self.tokenize([text])[0]
            p = class_probs(self, [self.numericalize(toks)])[0]
        return {**verdict(self.labels, p), "n_tokens": len(toks), "truncated": cut}

    def predict_batch(self, texts, progress=None):
        """Tokenized in one spaCy pipe per step, batched longest-first and padded as fastai pads. A verdict never
        depends on its batch-mates (`concat_pool`), so the steps change nothing but the wait; the lock is released
        between steps."""
        todo, kept, results = blank_rows(texts)
        probs: list = []
        step = kinds.PROGRESS_STEP if progress else max(len(kept), 1)
        for k in range(0, len(kept), step):
            with self.lock:
                seqs = [self.numericalize(toks) for toks in self.tokenize(kept[k:k + step])]
                probs.extend(class_probs(self, seqs))
            if progress:
                progress(min(k + step, len(kept)), len(kept))
        for j, i in enumerate(todo):
            results[i] = verdict(self.labels, probs[j])
        return results

    def attributions(self, text, work=ATTR_WORK, budget_s=None):
        """By occlusion (ATTRIBUTION_METHOD), on AWD-LSTM tokens grouped into the words a reader sees. `work` bounds
        words scored x tokens; with `budget_s`, words are scored in batches until that many seconds have passed and
        the rest are left unscored (`timed_out`)."""
        text, cut = check_text(text)
        with self.lock:
            toks = self.tokenize([text])[0]
            ids = self.numericalize(toks)
            units = word_units(toks, self.subword)
            scored = units[:max(1, min(MAX_ATTR_WORDS, work // max(len(ids), 1)))]
            variants = [ids] + [[t for k, t in enumerate(ids) if k not in set(u)] for u in scored]
            probs = _occlusion_probs(self, variants, budget_s)
            timed_out = len(probs) < len(variants)
            scored = scored[:len(probs) - 1]
        c = int(probs[0].argmax())
        base = float(probs[0][c])
        words = []
        for k, u in enumerate(units):
            shown = detokenize([toks[i] for i in u], self.subword)
            score = base - float(probs[k + 1][c]) if k < len(scored) else None
            words.append({"text": shown, "score": score, "tokens": [toks[i] for i in u]})
        return {"label": self.labels[c], "prob": base,
                "probs": {lab: float(probs[0][i]) for i, lab in enumerate(self.labels)},
                "method": ATTRIBUTION_METHOD, "words": words, "scored": len(scored), "n_words": len(units),
                "truncated": cut, "timed_out": timed_out, "seen_as": "tokens"}


def pad_batch(seqs: list[list[int]], pad: int, bptt: int):
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


def encode(enc, x, starts: list[int]):
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


def concat_pool(out, mask):
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


def class_probs(m: Classifier, seqs: list[list[int]], precision: str | None = None):
    """Class probabilities for numericalized texts, in the given order: batched longest first, as fastai's SortedDL.
    On a CPU the model runs at `precision` (default: the fast path where it was measured to pay, `fastcpu`). Call
    under `m.lock`."""
    import torch

    model = fastcpu.model_for(m, precision)
    bptt = model[0].bptt
    pad = m.meta["model"].get("pad_idx", 1)
    if m.backwards:
        seqs = [s[::-1] for s in seqs]
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    out = torch.empty(len(seqs), len(m.labels))
    # Temperature scaling fitted on held-out reviews when the model was judged (`judge.report`): 1 = as trained.
    temp = float((m.meta.get("calibration") or {}).get("temperature") or 1.0)
    k = 0
    with torch.no_grad():
        while k < len(order):
            longest = len(seqs[order[k]])
            bs = max(1, min(MAX_BS, TOKEN_BUDGET // max(longest, 1)))
            idx = order[k:k + bs]
            x, starts = pad_batch([seqs[i] for i in idx], pad, bptt)
            enc_out, mask = encode(model[0], x, starts)
            logits = model[1].layers(concat_pool(enc_out.float(), mask))  # a bf16 encoder pools in fp32
            out[idx] = torch.softmax(logits.float() / temp, dim=-1)
            k += bs
    return out


def _occlusion_probs(m: Classifier, variants: list[list[int]], budget_s: float | None):
    """Class probabilities of the whole text (row 0) and its occluded variants, in fp32 (scores are small
    differences: no rounding in them). With `budget_s`, in batches of about BUDGET_STEP_TOKENS tokens, stopping once
    the budget is spent; the first batch (the whole text, with more variants if they fit) is always scored."""
    if budget_s is None:
        return class_probs(m, variants, precision="fp32")
    import torch

    t0 = time.perf_counter()
    step = max(1, BUDGET_STEP_TOKENS // max(len(variants[0]), 1))
    done = []
    for k in range(0, len(variants), step):
        done.append(class_probs(m, variants[k:k + step], precision="fp32"))
        if time.perf_counter() - t0 > budget_s:
            break
    return torch.cat(done)


# ----------------------------------------------------------------------------------------------------------- language model

@register
class LanguageModel(AwdModel):
    "A fastai AWD-LSTM language model: it continues a prompt (forward models only)."
    kind = "language_model"
    tasks = frozenset({GENERATE})
    what = "a language model"
    noun = "language model"

    def generate(self, prompt, n_words=40, temperature=0.75, n_samples=1, seed=0, top_k=TOP_K):
        """Sample continuations of `prompt`. Each sample `i` draws from its own generator seeded `seed + i`, so the
        same seed gives the same text. Like fastai's `LMLearner.predict`: `xxunk` is never drawn and probabilities
        are raised to `1/temperature`. Returns `{"texts", "samples": [{"text", "tokens", "steps"}]}` where
        `steps[k]` is the top-k next-word distribution the k-th word was drawn from."""
        import torch

        if self.backwards:
            raise InferenceError(f"{self.name!r} was trained on reversed text (backwards): it predicts the word "
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
        vocab = self.loaded.vocab
        banned = [i for i in (self.idx("xxunk", -1), self.idx("xxpad", -1)) if i >= 0]
        with self.lock:
            toks = self.tokenize([prompt])[0] if prompt.strip() else ["xxbos"]
            ids = self.numericalize(toks)
            gens = [torch.Generator().manual_seed(int(seed) + i) for i in range(n_samples)]
            model = self.loaded.model
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
            samples.append({"text": detokenize(toks + gen_toks, self.subword), "tokens": gen_toks,
                            "steps": steps[s]})
        # `subword`: the tokens are SentencePiece pieces ('\u2581' starts a word), so a caller joining them says so.
        return {"texts": [s["text"] for s in samples], "samples": samples, "prompt_tokens": toks,
                "subword": self.subword}


# ----------------------------------------------------------------------------------------------------------- README

def _readme(meta: dict) -> str:
    kind = meta["kind"]
    build = ("get_language_model(AWD_LSTM, m['vocab_sz'], config=m['config'], drop_mult=1.0)" if kind == "language_model"
             else "get_text_classifier(AWD_LSTM, m['vocab_sz'], m['n_class'], seq_len=m['seq_len'],\n"
                  "    config={k: v for k, v in m['config'].items() if k not in ('tie_weights', 'out_bias')},\n"
                  "    drop_mult=1.0, lin_ftrs=m['lin_ftrs'], ps=m['ps'], pad_idx=m['pad_idx'], max_len=m['max_len'])")
    return f"""# {meta['name']}

A {kind.replace('_', ' ')} (fastai AWD-LSTM) exported from ULMFiT Studio. Model id `{meta['id']}`, trained on
`{meta.get('corpus')}`, fastai {meta['versions'].get('fastai')}, torch {meta['versions'].get('torch')}.

Files: `{WEIGHTS}` (the weights, safetensors: no code inside), `{META}` (architecture, vocab, labels, tokenizer
settings, metrics){', `' + SPM + '` (the SentencePiece model used to tokenize)' if meta['tokenizer'].get('kind') == 'subword' else ''}.

## With ULMFiT Studio

    python -m ulmfit_demo models import this_bundle.zip
    python -m ulmfit_demo {'predict --model latest --text "A wonderful film." --json' if kind == 'classifier'
                            else 'generate --model latest --prompt "This movie" --n-words 20 --temperature 0.8 --seed 0 --json'}

## With plain fastai

```python
import json
from fastai.text.all import *
from safetensors.torch import load_file

meta = json.load(open("{META}")); m = meta["model"]
model = {build}
state = load_file("{WEIGHTS}")
for alias, name in meta["weights"]["tied"].items():  # tied weights are stored once
    state[alias] = state[name]
model.load_state_dict(state); model.eval()
```

Tokenize new text as in training (`Tokenizer(WordTokenizer())` for word models, `SentencePieceTokenizer(sp_model=
"{SPM}")` for subword ones), numericalize with `meta["vocab"]` (unknown words -> index of `xxunk`), and for a
classifier read `meta["labels"]` in output order.
"""
