"""The ULMFiT stages as plain functions over fastai Learners.

Stage 1 (pretrain) and stage 2 (LM fine-tuning) are `language_model_learner` + one-cycle phases; stage 3 is
`text_classifier_learner` on the LM's vocab with the LM's encoder, gradual unfreezing (`freeze_to(-2)`, `(-3)`,
`unfreeze`) and discriminative learning rates `slice(lr / 2.6**4, lr)`. Nothing here knows about the run store,
and nothing here imports `ulmfit_demo.runs`: the worker (`runs/job.py`) wires these functions to a callback,
checkpoints and the store, and the benchmark and the starter-LM build call them directly.

Texts are tokenized once (`tokens`: word tokens are cached on disk by `tokcache`) and fed to fastai's own
`Numericalize`, `LMDataLoader` and `SortedDL`: the same transforms `TextBlock` builds, minus re-tokenizing on every
run. `Tok`, `tokenize_docs` and `train_subword` are re-exported from `tokens`, so a caller drives a run's
stages through this one module. fastai is imported inside functions: pages import `presets`, which must stay light,
and may import this module.
"""
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ulmfit_demo import config
from ulmfit_demo.io import atomic_torch_save
from ulmfit_demo.train import precision
from ulmfit_demo.train.presets import Config, ConfigError
from ulmfit_demo.train.tokens import Tok, tokenize_docs, train_subword  # noqa: F401 - re-exported, see above


@dataclass(frozen=True)
class Phase:
    "One `fit_one_cycle` call: which layer groups train, for how many epochs, at what learning rate(s)."
    label: str
    freeze_to: int  # -1 head only, -2/-3 last groups, 0 everything
    epochs: int
    lr: float  # the top group's LR
    lr_div: float | None = None  # discriminative: slice(lr / lr_div, lr); None = one LR for all groups

    @property
    def lr_arg(self):
        return slice(self.lr / self.lr_div, self.lr) if self.lr_div else self.lr


def lm_phases(cfg: Config, kind: str, pretrained: bool) -> list[Phase]:
    """The seeds' LM schedule: frozen epochs (only the embeddings new to the pretrained vocab learn), then every
    layer. From scratch nothing is pretrained, so freezing would leave a random LSTM untrained: all layers train."""
    if kind == "pretrain":
        return [Phase("Pretraining from scratch", 0, cfg.pretrain_epochs, cfg.pretrain_lr)]
    first = ("LM: frozen (new embeddings + head)", -1) if pretrained else ("LM: warm-up, all layers (from scratch)", 0)
    phases = [Phase(first[0], first[1], cfg.lm_frozen_epochs, cfg.lm_frozen_lr),
              Phase("LM: all layers unfrozen", 0, cfg.lm_epochs, cfg.lm_lr)]
    return [p for p in phases if p.epochs > 0]


def clas_phases(cfg: Config) -> list[Phase]:
    "Gradual unfreezing: the head first at one LR, then deeper groups with discriminative LRs."
    names = {-1: "head only", 0: "all layers"}
    out = []
    for p in cfg.clas_phases:
        ft = int(p["freeze_to"])
        label = f"Classifier: {names.get(ft, f'last {-ft} layer groups')}"
        out.append(Phase(label, ft, int(p["epochs"]), float(p["lr"]), None if ft == -1 else cfg.lr_div))
    return [p for p in out if p.epochs > 0]


def set_trainable(learn, freeze_to: int) -> None:
    "fastai's freeze_to/unfreeze. Both clear the optimizer's state, as between the seeds' fit calls."
    if freeze_to == 0:
        learn.unfreeze()
    else:
        learn.freeze_to(freeze_to)


# ------------------------------------------------------------------------------------------------------ device

def resolve_device(cfg: Config) -> tuple[str, str]:
    """(device, precision) this run will use: on a GPU mixed precision, bf16 where the GPU has it; on a CPU bf16
    where it was measured to pay on this CPU (`precision.cpu_default`), else fp32. A run that
    asks for 'cuda' where torch sees no GPU (it was there when the run was queued, and is gone now) gets the CPU:
    the caller says so (a run is never refused at start for hardware that validation already accepted)."""
    import torch

    cuda = torch.cuda.is_available()
    dev = "cuda" if (cuda and cfg.device in ("auto", "cuda")) else "cpu"
    prec = cfg.precision
    if dev == "cpu":
        prec = precision.cpu_precision(prec)
    elif prec == "auto":
        prec = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return dev, prec


def apply_precision(learn, prec: str):
    "Mixed precision on `learn`: fastai's AMP callback on a GPU, the CPU's bf16 autocast on a CPU."
    on_cpu = learn.dls.device is None or str(learn.dls.device).startswith("cpu")
    if prec == "bf16":
        return precision.cpu_bf16(learn) if on_cpu else learn.to_bf16()
    if prec == "fp16":
        return learn.to_fp16()
    return learn


def set_threads(cfg: Config) -> None:
    import torch

    if cfg.cpu_threads:
        torch.set_num_threads(int(cfg.cpu_threads))


# ------------------------------------------------------------------------------------------------------ data

def lm_split(n: int, valid_pct: float, seed: int) -> tuple[list[int], list[int]]:
    "The seeds' RandomSplitter(valid_pct), seeded: the same texts validate a run and its resumption."
    import numpy as np

    idx = np.random.RandomState(seed).permutation(n)
    cut = max(1, int(round(valid_pct * n)))
    return sorted(idx[cut:].tolist()), sorted(idx[:cut].tolist())


def build_vocab(token_lists, cfg: Config, sp_model: Path | None = None) -> list[str]:
    """fastai's `make_vocab` (special tokens first, padded to a multiple of 8) over the LM's training texts. Word
    tokens are cut by `max_vocab`/`min_freq`; subword tokens keep every SentencePiece piece (the pieces are the
    vocabulary: cutting them would only turn rare pieces into xxunk)."""
    from fastai.text.all import make_vocab

    counts = Counter(t for ts in token_lists for t in ts)
    if cfg.tokenizer != "subword" or sp_model is None:
        return make_vocab(counts, min_freq=cfg.min_freq, max_vocab=cfg.max_vocab)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    for i in range(sp.get_piece_size()):
        counts[sp.id_to_piece(i)] += 0
    return make_vocab(counts, min_freq=0, max_vocab=len(counts) + 64)


def lm_dls(df: pd.DataFrame, splits, vocab: list[str], cfg: Config, device: str, bs: int | None = None,
           seq_len: int | None = None):
    "Language-model DataLoaders over the `tokens` column: Numericalize + LMDataLoader, as TextBlock(is_lm=True)."
    from fastai.text.all import Datasets, LMDataLoader, Numericalize, attrgetter, reverse_text

    tfms = [attrgetter("tokens"), Numericalize(vocab=vocab)] + ([reverse_text] if cfg.backwards else [])
    lens = df["tokens"].map(len).tolist()
    dsets = Datasets(df, [tfms], splits=splits, dl_type=LMDataLoader)
    dls = dsets.dataloaders(bs=bs or cfg.bs, seq_len=seq_len or cfg.seq_len, device=device)
    train_tokens = sum(lens[i] for i in splits[0])
    if len(dls.train) == 0 or len(dls.valid) == 0:
        which = "training" if len(dls.train) == 0 else "validation"
        raise ConfigError(f"The language model gets no {which} batch: {cfg.bs} sequences of {cfg.seq_len} tokens "
                          f"need {cfg.bs * (cfg.seq_len + 1):,} tokens and the {which} texts have "
                          f"{train_tokens if which == 'training' else sum(lens) - train_tokens:,}. Lower bs or "
                          f"seq_len, or use more text (max_docs).")
    return dls


def clas_dls(df: pd.DataFrame, vocab: list[str], cfg: Config, device: str):
    """Classifier DataLoaders: the LM's vocab, labels through Categorize, texts sorted by length and padded in
    chunks of `clas_seq_len` (SortedDL + Pad_Chunk, as TextBlock builds them). `df` needs `is_valid`."""
    from fastai.text.all import (Categorize, Datasets, Numericalize, Pad_Chunk, SortedDL, attrgetter,
                                 reverse_text)

    splits = (df.index[~df["is_valid"]].tolist(), df.index[df["is_valid"]].tolist())
    x_tfms = [attrgetter("tokens"), Numericalize(vocab=vocab)] + ([reverse_text] if cfg.backwards else [])
    dsets = Datasets(df, [x_tfms, [attrgetter("label"), Categorize()]], splits=splits, dl_type=SortedDL)
    dls = dsets.dataloaders(bs=cfg.bs, before_batch=Pad_Chunk(seq_len=cfg.clas_seq_len), device=device)
    if len(dls.train) == 0:
        raise ConfigError(f"Batch size {cfg.bs} is larger than the {len(splits[0])} labelled training texts: the "
                          f"classifier gets no full batch. Lower bs.")
    return dls


# ------------------------------------------------------------------------------------------------------ learners

def lm_config(cfg: Config) -> dict:
    from fastai.text.all import awd_lstm_lm_config

    return dict(awd_lstm_lm_config, emb_sz=cfg.emb_sz, n_hid=cfg.n_hid, n_layers=cfg.n_layers)


def clas_config(cfg: Config) -> dict:
    from fastai.text.all import awd_lstm_clas_config

    return dict(awd_lstm_clas_config, emb_sz=cfg.emb_sz, n_hid=cfg.n_hid, n_layers=cfg.n_layers)


def arch_meta(cfg: Config, stage: str) -> dict:
    "The `arch` dict of the models contract: the AWD-LSTM config as JSON values, plus drop_mult and seq_len."
    if stage == "clas":
        d = dict(clas_config(cfg), drop_mult=cfg.drop_mult_clas, seq_len=cfg.clas_seq_len,
                 max_len=cfg.clas_seq_len * 20)
    else:
        d = dict(lm_config(cfg), drop_mult=cfg.drop_mult_lm, seq_len=cfg.seq_len)
    return json.loads(json.dumps(d))


def _stderr_logger(row):
    # fastai's epoch table (epoch, train_loss, valid_loss, accuracy, ...): to stderr, so the worker's log has it
    # and the CLI's stdout stays one JSON document.
    print("  ".join(f"{v:.6f}" if isinstance(v, float) else str(v) for v in row), file=sys.stderr, flush=True)


def lm_learner(dls, cfg: Config, path: Path, drop_mult: float | None = None):
    "An AWD-LSTM language model with the seeds' metrics; starting weights are loaded separately."
    from fastai.text.all import AWD_LSTM, Perplexity, accuracy, language_model_learner

    learn = language_model_learner(dls, AWD_LSTM, config=lm_config(cfg), backwards=cfg.backwards,
                                   drop_mult=cfg.drop_mult_lm if drop_mult is None else drop_mult,
                                   pretrained=False, metrics=[accuracy, Perplexity()], path=path, wd=cfg.wd)
    learn.logger = _stderr_logger
    return learn


def load_start_weights(learn, wgts: dict, old_vocab: list[str]) -> None:
    """fastai's `load_pretrained` on an in-memory state dict: rows of the embedding (and decoder bias) follow the
    new vocab, words the old vocab lacks start at the mean embedding; then freeze, as `language_model_learner`."""
    from fastai.text.all import clean_raw_keys, load_ignore_keys, match_embeds

    new_vocab = learn.dls.vocab
    wgts = clean_raw_keys(match_embeds(dict(wgts), old_vocab, new_vocab))
    mine = learn.model.state_dict()
    if len(mine) != len(wgts) or any(a.shape != b.shape for a, b in zip(mine.values(), wgts.values())):
        shapes = next((f"{k}: {tuple(b.shape)} vs {tuple(a.shape)}" for (k, a), b in zip(mine.items(), wgts.values())
                       if a.shape != b.shape), f"{len(wgts)} tensors vs {len(mine)}")
        raise ConfigError(f"The starting weights do not fit this model ({shapes}): use the emb_sz, n_hid and "
                          f"n_layers of the run they come from.")
    load_ignore_keys(learn.model, wgts)
    learn.freeze()


def lm_state(learn) -> dict:
    return {k: v.detach().cpu() for k, v in learn.model.state_dict().items()}


def encoder_state(learn) -> dict:
    "What `save_encoder` writes: the AWD-LSTM part of the language model."
    from fastai.text.all import get_model

    enc = get_model(learn.model)[0]
    enc = getattr(enc, "module", enc)
    return {k: v.detach().cpu() for k, v in enc.state_dict().items()}


def clas_learner(dls, cfg: Config, path: Path, encoder: dict | None):
    """A classifier whose encoder is the fine-tuned LM's (`load_encoder`), frozen but for the head, like the seeds'
    `text_classifier_learner(...)` + `load_encoder`."""
    from fastai.text.all import AWD_LSTM, accuracy, clean_raw_keys, text_classifier_learner

    learn = text_classifier_learner(dls, AWD_LSTM, seq_len=cfg.clas_seq_len, config=clas_config(cfg),
                                    backwards=cfg.backwards, pretrained=False, drop_mult=cfg.drop_mult_clas,
                                    max_len=cfg.clas_seq_len * 20, metrics=accuracy, path=path, wd=cfg.wd)
    learn.logger = _stderr_logger
    if encoder is not None:
        enc = learn.model[0]
        enc = getattr(enc, "module", enc)
        try:
            enc.load_state_dict(clean_raw_keys(dict(encoder)))
        except RuntimeError as e:
            raise ConfigError(f"The language model's encoder does not fit this classifier ({str(e)[:200]}): the "
                              f"classifier must use the LM's emb_sz, n_hid and n_layers.") from None
    learn.freeze()
    return learn


# ------------------------------------------------------------------------------------------------------ training

def fit_phases(learn, phases: list[Phase], cbs=None, start: tuple[int, int] = (0, 0), restore=None,
               on_phase=None, is_cancelled=lambda: False) -> None:
    """Run `phases` in order from (phase, epochs already done in it). `restore(learn, with_opt)` reloads a
    checkpoint once the first phase's layer groups are set (freezing clears the optimizer, so the optimizer state
    is restored after it, and only when resuming inside a phase). Stops after a phase if `is_cancelled()`."""
    first = True
    for i, ph in enumerate(phases):
        if i < start[0]:
            continue
        e0 = start[1] if i == start[0] else 0
        if e0 >= ph.epochs:
            continue
        set_trainable(learn, ph.freeze_to)
        if first and restore is not None:
            restore(learn, e0 > 0)
        first = False
        if on_phase:
            on_phase(i, ph, e0)
        with learn.no_bar():
            learn.fit_one_cycle(ph.epochs, ph.lr_arg, start_epoch=e0, cbs=cbs)
        if is_cancelled():
            return
    if first and restore is not None:
        restore(learn, False)  # every epoch was done before the interruption: the weights are the checkpoint's


def final_metrics(learn) -> dict:
    "The last epoch's row of fastai's table as a dict (train_loss, valid_loss, accuracy, perplexity)."
    names = learn.recorder.metric_names[1:-1]
    vals = learn.recorder.values[-1] if learn.recorder.values else []
    return {n: float(v) for n, v in zip(names, vals) if v is not None}


def generate(learn, ids: list[int], n_words: int, seed: int, temperature: float = 0.75,
             skip_ids: tuple = ()) -> list[int]:
    """Sample `n_words` token ids after `ids` from a language model, with its own seeded generator: the training
    run's random state is untouched, and the same weights give the same sample."""
    import torch

    model = learn.model
    was_training = model.training
    dev = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    out = []
    model.eval()
    try:
        with torch.no_grad():
            model.reset()
            x = torch.tensor([ids], device=dev)
            for _ in range(n_words):
                logits = model(x)[0][0, -1].float().cpu()
                for s in skip_ids:
                    logits[s] = -math.inf
                nxt = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g).item())
                out.append(nxt)
                x = torch.tensor([[nxt]], device=dev)
    finally:
        model.reset()
        model.train(was_training)
    return out


def sample_text(learn, tok: Tok, vocab: list[str], prompt: str, n_words: int, seed: int) -> str:
    "The prompt plus a seeded continuation, as text (xxbos and padding dropped)."
    o2i = {w: i for i, w in enumerate(vocab)}
    toks = tok.tokenize([prompt])[0]
    ids = [o2i.get(t, 0) for t in toks]
    # Never sample padding, unknowns, a new text, or make_vocab's filler entries.
    skip = tuple(i for i, t in enumerate(vocab) if t in ("xxunk", "xxpad", "xxbos") or t.startswith("xxfake"))
    new = generate(learn, ids, n_words, seed, skip_ids=skip)
    return tok.detok(toks + [vocab[i] for i in new])


def find_lr(learn, num_it: int) -> tuple[list[float], list[float], dict]:
    "fastai's `lr_find` (weights restored afterwards): the sweep's LRs, smoothed losses and suggestions."
    from fastai.text.all import minimum, slide, steep, valley

    with learn.no_bar():
        sugg = learn.lr_find(num_it=num_it, show_plot=False, suggest_funcs=(valley, slide, minimum, steep))
    lrs = [float(x) for x in learn.recorder.lrs]
    losses = [float(x) for x in learn.recorder.losses]
    return lrs, losses, {k: float(v) for k, v in sugg._asdict().items() if v is not None and math.isfinite(v)}


def save_start_files(folder: Path, learn, vocab: list[str]) -> None:
    """What later runs start from: the full LM state dict (stage 1 -> stage 2 via `pretrained='run:<id>'`), the
    encoder (LM -> classifier) and the vocab, each written atomically."""
    atomic_torch_save(lm_state(learn), Path(folder) / "lm_model.pth")
    atomic_torch_save(encoder_state(learn), Path(folder) / "lm_encoder.pth")
    config.atomic_write(Path(folder) / "vocab.json", json.dumps(list(vocab)))
