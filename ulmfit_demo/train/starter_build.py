"""Stage 1 done here, once: building the starter language models shipped in `assets/` (issue #18).

fastai's WikiText-103 weights cannot be fetched offline, so the app ships its own small AWD-LSTMs, forward and
backward, pretrained on CPU on the unlabelled-use text of the mirror: IMDb's reviews, WikiText-2, Yelp sentences and
Amazon product reviews (labels unused; each corpus's `test` rows left out, since the bundled classifier is judged on
them), with one SentencePiece model over that mix (no word a user types is ever `xxunk`).

A build runs for hours on 2 cores, so it is made to run in several sittings:
- `prepare` (once, shared by both directions): SentencePiece on an equal share of characters from each corpus, the
  held-out documents (about `valid_tokens` per corpus), every training document as ids, in `work/prep/`, whose
  `done.json` is written last (the commit point).
- one fastai `fit_one_cycle` per direction over `passes` passes of the training text, cut into shards of about
  `shard_tokens` tokens: a shard is one fastai epoch (a few minutes), each pass visits the documents in a new seeded
  order, and after every shard the model, the optimizer and where the schedule stands are checkpointed atomically.
  `--resume` reloads the checkpoint and continues the same one-cycle schedule from the next shard
  (`fit_one_cycle(start_epoch=...)`); `time_limit_s` ends a sitting cleanly after a checkpoint.
- the finished model is measured (perplexity per source on the held-out documents, per token and per word: per word
  compares models whose pieces differ) and written with its card into a staging folder that replaces `out` in one
  rename: an unfinished build never touches the shipped starter.
Training runs in bf16 on a CPU where `train/precision.py` measured it to pay (`precision="auto"`).

The command is `python -m ulmfit_demo train --kind pretrain --preset starter [--resume]`; tests run it on a tiny corpus.
"""
import fcntl
import hashlib
import json
import math
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ulmfit_demo import config as appconfig
from ulmfit_demo.data import corpora
from ulmfit_demo.io import atomic_torch_save
from ulmfit_demo.models import starter
from ulmfit_demo.models.starter import StarterError
from ulmfit_demo.train import precision, stages
from ulmfit_demo.train.presets import Config


@dataclass(frozen=True)
class StarterConfig:
    sp_vocab_sz: int = 8000  # SentencePiece pieces (the vocab is all of them plus fastai's special tokens)
    emb_sz: int = 128  # embedding size; the classifier pools 3 x emb_sz features
    n_hid: int = 512  # LSTM hidden size
    n_layers: int = 2  # LSTM layers
    bs: int = 64  # sequences per batch
    seq_len: int = 70  # BPTT length
    lr: float = 5e-3  # one-cycle top learning rate
    drop_mult: float = 0.1  # a small model on tens of millions of tokens underfits: little dropout
    wd: float = 0.01  # weight decay
    clip: float = 0.25  # gradient norm clipping (the AWD-LSTM paper's 0.25)
    passes: float = 2.0  # passes over the training text, all inside one one-cycle schedule
    train_tokens: int = 0  # 0: a pass is all the training text; N: a pass is a seeded sample of documents of ~N tokens
    shard_tokens: int = 2_000_000  # one fastai epoch, checkpointed after it: a few minutes on 2 cores
    valid_tokens: int = 50_000  # held out per corpus for the perplexity per source (documents until this many tokens)
    sp_train_chars: int = 8_000_000  # SentencePiece reads this many characters, an equal share from each corpus
    corpora: tuple = ("imdb", "wikitext2_small", "yelp_sentences", "amazon_reviews")
    skip_splits: tuple = ("test",)  # rows the starter never reads: the classifiers are judged on them
    directions: tuple = ("fwd", "bwd")  # which models this command trains (both share the prepared data)
    precision: str = "auto"  # "auto": bf16 where measured to pay on this CPU (train/precision.py), "fp32", "bf16"
    threads: int = 0  # torch threads (0: torch's default, all cores)
    time_limit_s: float = 0  # end this sitting (checkpointed, resumable) after this long; 0: run to the end
    seed: int = 42

    def data_key(self) -> str:
        "What the prepared data depends on: the same key reuses it."
        d = {k: getattr(self, k) for k in ("sp_vocab_sz", "valid_tokens", "sp_train_chars", "corpora",
                                           "skip_splits", "seed")}
        return hashlib.sha1(json.dumps(d, sort_keys=True, default=list).encode()).hexdigest()[:10]

    def train_key(self) -> dict:
        "What a checkpoint depends on: resuming under other values would mix two schedules."
        return {k: getattr(self, k) for k in ("emb_sz", "n_hid", "n_layers", "bs", "seq_len", "lr", "drop_mult",
                                              "wd", "clip", "passes", "train_tokens", "shard_tokens", "seed")}


DIRS = {"fwd": False, "bwd": True}


def direction_dir(cfg: StarterConfig, data: "Prepared", direction: str) -> Path:
    "One direction's checkpoints, per training settings: a build with other settings never resumes this one."
    key = hashlib.sha1(json.dumps(cfg.train_key(), sort_keys=True).encode()).hexdigest()[:8]
    return data.prep.parent / f"{direction}-{key}"


def work_dir(cfg: StarterConfig) -> Path:
    "Where a build keeps its prepared data and checkpoints (under the app's home: it survives the repo's checkouts)."
    return appconfig.sub("starter_build") / cfg.data_key()


def out_dir(out: Path, direction: str) -> Path:
    "The forward model goes to `out`, the backward one beside it as `<out>_bwd` (as the app looks for them)."
    return Path(out) if direction == "fwd" else Path(out).with_name(Path(out).name + "_bwd")


# ------------------------------------------------------------------------------------------------------ preparing

def _docs(cfg: StarterConfig, load) -> pd.DataFrame:
    "Every usable document of the corpora (labels dropped, `skip_splits` left out), with its source."
    frames = []
    for name in cfg.corpora:
        df = load(name).df
        df = df[~df["split"].isin(cfg.skip_splits)]
        frames.append(pd.DataFrame({"text": df["text"].values, "source": name}))
    df = pd.concat(frames, ignore_index=True)
    return df[df["text"].str.strip() != ""].reset_index(drop=True)


def prepare(cfg: StarterConfig, load=None, log=print) -> Path:
    "The prepared data folder (built once per `data_key`, under a lock so two directions can start together)."
    prep = work_dir(cfg) / "prep"
    prep.mkdir(parents=True, exist_ok=True)
    with open(prep.parent / "prep.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (prep / "done.json").exists():
            _prepare(prep, cfg, load, log)
    return prep


def _prepare(prep: Path, cfg: StarterConfig, load, log) -> None:
    if load is None:
        load = corpora.load
    t0 = time.time()
    docs = _docs(cfg, load)
    rng = np.random.RandomState(cfg.seed)
    docs = docs.iloc[rng.permutation(len(docs))].reset_index(drop=True)
    log(f"{len(docs):,} documents from {', '.join(cfg.corpora)} (leaving out their {'/'.join(cfg.skip_splits)} rows)")

    # SentencePiece reads an equal share of characters from each corpus, so short Yelp sentences get pieces too.
    share = cfg.sp_train_chars // len(cfg.corpora)
    sp_texts = []
    for name in cfg.corpora:
        texts = docs.loc[docs["source"] == name, "text"]
        sp_texts += texts.iloc[:max(1, int(np.searchsorted(texts.str.len().cumsum().values, share)) + 1)].tolist()
    for p in prep.glob("spm*"):
        if p.is_dir():
            shutil.rmtree(p)
    sp_model = stages.train_subword(sp_texts, cfg.sp_vocab_sz, prep / "spm")
    tok = stages.Tok("subword", sp_model)
    log(f"SentencePiece ({cfg.sp_vocab_sz} pieces) on {len(sp_texts):,} documents in {time.time() - t0:.0f}s")

    # Tokens as ids of a provisional vocabulary (first seen, first numbered), remapped to fastai's frequency order
    # at the end: 30M+ tokens never sit in memory as Python strings.
    ids_of: dict[str, int] = {}
    chunks, lens, valid_flags = [], [], []
    held = Counter()
    chunk = 2000
    for i in range(0, len(docs), chunk):
        part = docs.iloc[i:i + chunk]
        for ts, src in zip(tok.tokenize(part["text"].tolist()), part["source"]):
            a = np.fromiter((ids_of.setdefault(t, len(ids_of)) for t in ts), dtype=np.int32, count=len(ts))
            is_valid = held[src] < cfg.valid_tokens
            if is_valid:
                held[src] += len(a)
            chunks.append(a)
            lens.append(len(a))
            valid_flags.append(is_valid)
        if (i // chunk) % 10 == 0:
            log(f"tokenized {min(i + chunk, len(docs)):,}/{len(docs):,} documents ({time.time() - t0:.0f}s)")
    ids = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
    counts = np.bincount(ids, minlength=len(ids_of))
    words = docs["text"].str.split().str.len().values

    import sentencepiece as spm
    from fastai.text.all import make_vocab

    c = Counter({t: int(counts[i]) for t, i in ids_of.items()})
    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    for i in range(sp.get_piece_size()):
        c[sp.id_to_piece(i)] += 0
    vocab = make_vocab(c, min_freq=0, max_vocab=len(c) + 64)
    o2i = {t: i for i, t in enumerate(vocab)}
    remap = np.zeros(len(ids_of), np.int32)
    for t, i in ids_of.items():
        remap[i] = o2i[t]
    ids = remap[ids]
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    np.save(prep / "ids.npy", ids)
    np.save(prep / "offsets.npy", offsets)
    meta = pd.DataFrame({"source": docs["source"].values, "valid": valid_flags, "words": words,
                         "tokens": np.asarray(lens)})
    meta.to_parquet(prep / "docs.parquet", index=False)
    appconfig.atomic_write(prep / "vocab.json", json.dumps(list(vocab)))
    train = meta[~meta["valid"]]
    summary = {"config": asdict(cfg), "n_docs": len(meta), "tokens": int(len(ids)), "vocab_size": len(vocab),
               "sp_pieces": int(sp.get_piece_size()), "sp_docs": len(sp_texts),
               "train_docs_by_source": {k: int(v) for k, v in train["source"].value_counts().items()},
               "train_tokens_by_source": {k: int(v) for k, v in train.groupby("source")["tokens"].sum().items()},
               "valid_tokens_by_source": {k: int(v) for k, v in meta[meta["valid"]].groupby("source")["tokens"].sum().items()},
               "prepare_s": round(time.time() - t0, 1)}
    appconfig.atomic_write(prep / "done.json", json.dumps(summary, indent=1))  # last: the commit point
    log(f"prepared {summary['tokens']:,} tokens ({sum(summary['train_tokens_by_source'].values()):,} to train on) "
        f"in {summary['prepare_s']:.0f}s")


class Prepared:
    "The prepared data, read back: ids per document, which are held out, and the vocab."

    def __init__(self, prep: Path):
        self.prep = prep
        self.ids = np.load(prep / "ids.npy", mmap_mode="r")
        self.offsets = np.load(prep / "offsets.npy")
        self.meta = pd.read_parquet(prep / "docs.parquet")
        self.vocab = json.loads((prep / "vocab.json").read_text())
        self.summary = json.loads((prep / "done.json").read_text())
        self.train_idx = np.flatnonzero(~self.meta["valid"].values)
        self.valid_idx = np.flatnonzero(self.meta["valid"].values)

    def doc(self, i: int, backwards: bool):
        import torch

        a = torch.from_numpy(np.array(self.ids[self.offsets[i]:self.offsets[i + 1]], dtype=np.int64))
        return a.flip(0) if backwards else a

    def pass_docs(self, cfg: StarterConfig, p: int) -> np.ndarray:
        "The training documents of pass `p` in its own seeded order (a sample of ~train_tokens if set)."
        order = self.train_idx[np.random.RandomState(cfg.seed + 1000 + p).permutation(len(self.train_idx))]
        if cfg.train_tokens:
            lens = self.meta["tokens"].values[order]
            order = order[:int(np.searchsorted(np.cumsum(lens), cfg.train_tokens)) + 1]
        return order

    def pass_tokens(self, cfg: StarterConfig) -> int:
        return int(self.meta["tokens"].values[self.pass_docs(cfg, 0)].sum())


# ------------------------------------------------------------------------------------------------------ training

def _run_config(cfg: StarterConfig, backwards: bool):
    return Config(tokenizer="subword", sp_vocab_sz=cfg.sp_vocab_sz, emb_sz=cfg.emb_sz, n_hid=cfg.n_hid,
                  n_layers=cfg.n_layers, bs=cfg.bs, seq_len=cfg.seq_len, drop_mult_lm=cfg.drop_mult, wd=cfg.wd,
                  pretrained="none", seed=cfg.seed, backwards=backwards)


def _dl(data: Prepared, idx, cfg: StarterConfig, backwards: bool, shuffle: bool = False):
    from fastai.text.all import LMDataLoader

    return LMDataLoader([data.doc(int(i), backwards) for i in idx], bs=cfg.bs, seq_len=cfg.seq_len, shuffle=shuffle,
                        device="cpu")


def train(cfg: StarterConfig, direction: str, data: Prepared, resume: bool, log=print) -> dict | None:
    """Train one direction to the end of its schedule (or of this sitting). Returns where it stands:
    `{"done": bool, "epoch", "epochs", ...}`; the checkpoint holds the weights."""
    import torch
    from fastai.callback.core import Callback, CancelFitException
    from fastai.text.all import DataLoaders, GradientClip
    from fastai.torch_core import set_seed

    backwards = DIRS[direction]
    ddir = direction_dir(cfg, data, direction)
    ckpt_path = ddir / "checkpoint.pth"
    state_path = ddir / "state.json"
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    n_shards = max(1, round(data.pass_tokens(cfg) / cfg.shard_tokens))
    epochs = max(1, round(cfg.passes * n_shards))
    state = json.loads(state_path.read_text()) if state_path.exists() else None
    if state is not None and not resume:
        raise StarterError(f"A {direction} starter build is in progress in {ddir} ({state['epoch'] + 1}/"
                           f"{state['epochs']} shards done): continue it with --resume, or delete that folder to "
                           f"start over.")
    if state is None and resume:
        others = [p.parent.name for p in data.prep.parent.glob(f"{direction}-*/state.json")]
        if others:
            log(f"{direction}: no build with these settings to resume, so it starts; builds with other settings "
                f"are in {', '.join(others)} (resume one with the same --set values)")
    if state is not None and state.get("done"):
        return state
    ddir.mkdir(parents=True, exist_ok=True)
    prec = precision.cpu_precision(cfg.precision)
    rc = _run_config(cfg, backwards)
    set_seed(cfg.seed + (1 if backwards else 0), reproducible=True)
    valid = _dl(data, data.valid_idx, cfg, backwards)

    def shard(e: int):
        p, s = divmod(e, n_shards)
        order = data.pass_docs(cfg, p)
        cum = np.cumsum(data.meta["tokens"].values[order])
        lo, hi = (int(np.searchsorted(cum, cum[-1] * k / n_shards)) for k in (s, s + 1))
        return _dl(data, order[lo:hi if s + 1 < n_shards else len(order)], cfg, backwards, shuffle=False)

    start = state["epoch"] + 1 if state else 0
    dls = DataLoaders(shard(start), valid, device="cpu")
    dls.vocab = data.vocab  # what language_model_learner sizes the model by (TextBlock's dls carry it)
    learn = stages.lm_learner(dls, rc, path=ddir)
    learn.logger = lambda row: None
    learn = stages.apply_precision(learn, prec)
    if state is not None:
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        learn.model.load_state_dict(ck["model"])
        learn.create_opt()
        from fastcore.foundation import L

        learn.opt.load_state_dict({"state": L(ck["opt"]["state"]), "hypers": L(ck["opt"]["hypers"])})
        log(f"{direction}: resuming after shard {start}/{epochs} ({state['tokens_seen']:,} tokens seen in "
            f"{state['train_s'] / 3600:.2f} h over {state['sittings']} sitting(s))")
    else:
        state = {"train_key": cfg.train_key(), "epoch": -1, "epochs": epochs, "n_shards": n_shards,
                 "tokens_seen": 0, "train_s": 0.0, "sittings": 0, "history": [], "precision": prec, "done": False}
        log(f"{direction}: {epochs} shards ({cfg.passes:g} passes of {data.pass_tokens(cfg):,} tokens), "
            f"AWD-LSTM {cfg.emb_sz}/{cfg.n_hid}/{cfg.n_layers}, {prec}")
    state["sittings"] += 1
    state["precision_by_sitting"] = state.get("precision_by_sitting", []) + [prec]
    t_sit = time.time()

    class Shards(Callback):
        "Each fastai epoch reads the next shard; after it, checkpoint, and end the sitting at the time limit."
        order = 60  # after the Recorder (50), whose figures the checkpoint logs

        def before_epoch(self):
            if self.epoch != start or self.learn.dls.loaders[0] is None:
                self.learn.dls.loaders[0] = shard(self.epoch)
            self.t0, self.n = time.time(), 0

        def after_batch(self):
            if self.training:
                self.n += 1
                if self.n % 200 == 0:
                    rate = self.n * cfg.bs * cfg.seq_len / (time.time() - self.t0)
                    log(f"{direction}: shard {self.epoch + 1}/{epochs} batch {self.n}/{len(self.dl)} loss "
                        f"{float(self.learn.smooth_loss):.3f}, {rate:,.0f} tokens/s")

        def after_epoch(self):
            if self.epoch < start:  # fastai's SkipToEpoch cancels the epochs done before, and still calls this
                return
            dt = time.time() - self.t0
            tokens = self.n * cfg.bs * cfg.seq_len
            vals = self.learn.recorder.values[-1] if self.learn.recorder.values else []
            names = self.learn.recorder.metric_names[1:-1]
            row = {n: float(v) for n, v in zip(names, vals)}
            state["epoch"], state["tokens_seen"], state["train_s"] = self.epoch, state["tokens_seen"] + tokens, \
                state["train_s"] + dt
            state["history"].append({"shard": self.epoch + 1, "tokens_seen": state["tokens_seen"],
                                     "train_s": round(state["train_s"], 1), "tokens_per_s": round(tokens / dt),
                                     **{k: round(v, 4) for k, v in row.items()}})
            atomic_torch_save({"model": self.learn.model.state_dict(),
                               "opt": self.learn.opt.state_dict()}, ckpt_path)
            appconfig.atomic_write(state_path, json.dumps(state, indent=1))  # after the weights: the commit point
            log(f"{direction}: shard {self.epoch + 1}/{epochs} done, valid loss {row.get('valid_loss', float('nan')):.4f}"
                f" (perplexity {math.exp(min(row.get('valid_loss', 50), 50)):.1f}), {tokens / dt:,.0f} tokens/s, "
                f"{state['tokens_seen'] / 1e6:.1f}M tokens in {state['train_s'] / 3600:.2f} h")
            if cfg.time_limit_s and time.time() - t_sit > cfg.time_limit_s and self.epoch + 1 < epochs:
                log(f"{direction}: time limit of this sitting reached; continue with --resume")
                raise CancelFitException()

    with learn.no_bar():
        learn.fit_one_cycle(epochs, cfg.lr, start_epoch=start, cbs=[GradientClip(cfg.clip), Shards()])
    if state["epoch"] + 1 >= epochs:
        state["done"] = True
        appconfig.atomic_write(state_path, json.dumps(state, indent=1))
    return state


# ------------------------------------------------------------------------------------------------------ measuring

def evaluate(model, vocab: list[str], data: Prepared, backwards: bool, cfg: StarterConfig, sp_model: Path | None = None,
             texts_by_source: dict | None = None) -> dict:
    """Held-out figures per source: loss per token and perplexity per token and per (whitespace) word. Per word
    compares models whose pieces differ (v1 and v2). `texts_by_source` re-tokenizes raw texts with `sp_model`
    (another model's pieces); otherwise the prepared held-out ids are used."""
    import torch
    import torch.nn.functional as F

    model.eval()
    out = {}
    if texts_by_source is None:
        srcs = data.meta["source"].values
        groups = {s: [(data.doc(int(i), backwards), int(data.meta["words"].values[i])) for i in data.valid_idx
                      if srcs[i] == s] for s in dict.fromkeys(srcs[data.valid_idx])}
    else:
        tok = stages.Tok("subword", Path(sp_model))
        o2i = {t: i for i, t in enumerate(vocab)}
        groups = {}
        for s, texts in texts_by_source.items():
            docs = []
            for t, ts in zip(texts, tok.tokenize(list(texts))):
                a = torch.tensor([o2i.get(x, 0) for x in ts], dtype=torch.long)
                docs.append((a.flip(0) if backwards else a, len(t.split())))
            groups[s] = docs
    with torch.no_grad():
        for s, docs in groups.items():
            # One stream per source, read in windows with the hidden state carried, as an LM is validated.
            stream = torch.cat([d for d, _ in docs])
            n_words = sum(w for _, w in docs)
            rows = 16
            per = (len(stream) - 1) // rows
            x = stream[:rows * per].view(rows, per)
            y = stream[1:rows * per + 1].view(rows, per)
            model.reset()
            nll, n = 0.0, 0
            for j in range(0, per, cfg.seq_len):
                logits = model(x[:, j:j + cfg.seq_len])[0]
                nll += float(F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                             y[:, j:j + cfg.seq_len].reshape(-1), reduction="sum"))
                n += y[:, j:j + cfg.seq_len].numel()
            words = n_words * n / max(1, len(stream))  # the words of the tokens scored
            out[s] = {"tokens": n, "loss": round(nll / n, 4), "perplexity": round(math.exp(nll / n), 2),
                      "word_perplexity": round(math.exp(nll / words), 2)}
        model.reset()
    return out


def _model_from_state(state: dict, vocab_len: int, cfg: StarterConfig):
    from fastai.text.all import AWD_LSTM, get_language_model

    m = get_language_model(AWD_LSTM, vocab_len, config=stages.lm_config(_run_config(cfg, False)), drop_mult=0.)
    m.load_state_dict(state)
    return m


def finish(cfg: StarterConfig, direction: str, data: Prepared, state: dict, out: Path, log=print) -> dict:
    "Measure the trained direction and write its starter folder (staging, then one rename)."
    import torch
    from safetensors.torch import save_file

    backwards = DIRS[direction]
    ck = torch.load(direction_dir(cfg, data, direction) / "checkpoint.pth", map_location="cpu", weights_only=True)
    model = _model_from_state(ck["model"], len(data.vocab), cfg)
    t0 = time.time()
    per_source = evaluate(model, data.vocab, data, backwards, cfg)
    log(f"{direction}: held-out figures per source in {time.time() - t0:.0f}s: {per_source}")
    # The previous starter of this direction on the same held-out documents (its own pieces), for the card.
    previous = None
    final = out_dir(out, direction)
    if (final / "card.json").exists():
        try:
            wgts, pvocab, psp, pcard = starter.load(final)
            pcfg = StarterConfig(**{k: v for k, v in pcard["arch"].items() if k in ("emb_sz", "n_hid", "n_layers")},
                                 seq_len=cfg.seq_len)
            pm = _model_from_state(wgts, len(pvocab), pcfg)
            texts = _held_out_texts(cfg, data)
            previous = {"built": pcard.get("built"), "tokens_seen": pcard.get("tokens_seen"),
                        "train_s": pcard.get("train_s"), "corpora": pcard.get("config", {}).get("corpora"),
                        "arch": {k: pcard["arch"][k] for k in ("emb_sz", "n_hid", "n_layers")},
                        "valid_perplexity_own": pcard.get("valid_perplexity"),
                        "per_source": evaluate(pm, pvocab, data, backwards, cfg, psp, texts)}
        except (StarterError, OSError, KeyError, ValueError) as e:
            log(f"{direction}: the previous starter in {final} could not be measured beside it ({e})")
    staging = final.with_name(final.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    sd = {k: v.detach().cpu().to(torch.float16).contiguous() for k, v in ck["model"].items()}
    sd.pop("1.decoder.weight", None)  # tied to the embedding: stored once
    save_file(sd, str(staging / "lm.safetensors.tmp"))
    (staging / "lm.safetensors.tmp").replace(staging / "lm.safetensors")
    appconfig.atomic_write(staging / "vocab.json", json.dumps(list(data.vocab)))
    appconfig.atomic_write(staging / "spm.model", (data.prep / "spm" / "spm.model").read_bytes())
    summ = data.summary
    total_tok = sum(v["tokens"] for v in per_source.values())
    mixed_loss = sum(v["loss"] * v["tokens"] for v in per_source.values()) / max(1, total_tok)
    card = {
        "what": f"AWD-LSTM language model pretrained from scratch, reading {'backwards' if backwards else 'forwards'} "
                f"(ULMFiT stage 1)",
        "direction": direction, "backwards": backwards,
        "config": asdict(cfg), "arch": stages.arch_meta(_run_config(cfg, backwards), "lm"),
        "vocab_size": len(data.vocab), "sp_pieces": summ["sp_pieces"],
        "train_docs_by_source": summ["train_docs_by_source"], "train_tokens_by_source": summ["train_tokens_by_source"],
        "train_tokens": sum(summ["train_tokens_by_source"].values()), "pass_tokens": data.pass_tokens(cfg),
        "passes": cfg.passes, "tokens_seen": state["tokens_seen"], "shards": state["epochs"],
        "valid_tokens_by_source": summ["valid_tokens_by_source"],
        "valid_by_source": per_source, "valid_loss": round(mixed_loss, 4),
        "valid_perplexity": round(math.exp(mixed_loss), 2),
        "train_s": round(state["train_s"], 1), "sittings": state["sittings"],
        "precision": state.get("precision_by_sitting"), "tokens_per_s": round(state["tokens_seen"] / state["train_s"]),
        "prepare_s": summ["prepare_s"], "history": state["history"],
        "previous": previous, "threads": cfg.threads or torch.get_num_threads(), "torch": torch.__version__,
        "built": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": f"{starter.REBUILD} --resume (in {state['sittings']} sitting(s))",
    }
    appconfig.atomic_write(staging / "card.json", json.dumps(card, indent=2))
    starter.write_manifest(staging)  # last: a folder without a manifest is never used
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.replace(old)
    staging.replace(final)
    shutil.rmtree(old, ignore_errors=True)
    return card


def _held_out_texts(cfg: StarterConfig, data: Prepared) -> dict:
    "The raw texts of the held-out documents, per source (to measure a model with other pieces on them)."
    docs = _docs(cfg, corpora.load)
    docs = docs.iloc[np.random.RandomState(cfg.seed).permutation(len(docs))].reset_index(drop=True)
    docs = docs[data.meta["valid"].values]
    return {s: g["text"].tolist() for s, g in docs.groupby("source", sort=False)}


def build(out: Path, cfg: StarterConfig = StarterConfig(), load=None, log=print, resume: bool = False) -> dict:
    """Prepare (once), train each direction of `cfg.directions` (or continue them with `resume`) and, when a
    direction's schedule is complete, write its starter folder. Returns `{direction: card or progress}`."""
    problems = []
    if not cfg.passes > 0:
        problems.append(f"passes must be above 0 (e.g. 2), got {cfg.passes}.")
    if cfg.time_limit_s < 0:
        problems.append(f"time_limit_s must be 0 (no limit) or more seconds, got {cfg.time_limit_s}.")
    if cfg.shard_tokens < cfg.bs * (cfg.seq_len + 1):
        problems.append(f"shard_tokens ({cfg.shard_tokens:,}) must hold at least one batch of {cfg.bs} x "
                        f"{cfg.seq_len + 1} = {cfg.bs * (cfg.seq_len + 1):,} tokens: raise it or lower bs/seq_len.")
    bad = [d for d in cfg.directions if d not in DIRS]
    if bad or not cfg.directions:
        problems.append(f"directions must be some of {list(DIRS)} (e.g. --set directions=bwd), got "
                        f"{list(cfg.directions)}.")
    if problems:
        raise StarterError(" ".join(problems))
    t0 = time.time()
    prep = prepare(cfg, load, log)
    data = Prepared(prep)
    n_train = int(data.meta.loc[~data.meta["valid"], "tokens"].sum())
    if len(data.train_idx) == 0:
        raise StarterError(f"Every document of {', '.join(cfg.corpora)} was held out for measuring (valid_tokens "
                           f"{cfg.valid_tokens:,} per corpus): nothing is left to train on. Lower valid_tokens "
                           f"(--set valid_tokens=N) or add corpora.")
    if n_train < 2 * cfg.bs * (cfg.seq_len + 1):
        raise StarterError(f"{', '.join(cfg.corpora)} leave {n_train:,} training tokens after holding out "
                           f"{cfg.valid_tokens:,} per corpus; batches of {cfg.bs} x {cfg.seq_len} need at least "
                           f"{2 * cfg.bs * (cfg.seq_len + 1):,}: lower bs or seq_len (--set), lower valid_tokens, or "
                           f"add corpora.")
    if len(data.valid_idx) == 0:
        raise StarterError("No document was held out: set valid_tokens above 0 (e.g. --set valid_tokens=50000).")
    res = {}
    for d in cfg.directions:
        state = train(cfg, d, data, resume, log)
        if state["done"]:
            res[d] = finish(cfg, d, data, state, out, log)
            res[d]["status"] = "SUCCEEDED"
        else:
            res[d] = {"status": "PAUSED", "shard": state["epoch"] + 1, "shards": state["epochs"],
                      "tokens_seen": state["tokens_seen"], "train_s": round(state["train_s"], 1),
                      "work": str(direction_dir(cfg, data, d))}
        if cfg.time_limit_s and time.time() - t0 > cfg.time_limit_s:
            for rest in cfg.directions[cfg.directions.index(d) + 1:]:
                res[rest] = {"status": "PAUSED", "shard": 0, "work": str(direction_dir(cfg, data, rest))}
            break
    return res
