"""Stage 1 done once, here: the starter language model shipped in `assets/starter_lm/`.

fastai's WikiText-103 weights cannot be fetched offline, so the app ships its own small AWD-LSTM pretrained on
CPU from the mirror's IMDb texts (all 100k reviews, labels unused: the unlabelled text ULMFiT's paper fine-tunes on)
plus WikiText-2 for general English, with SentencePiece subwords (no word of a new text is ever `xxunk`).

`build` tokenizes, sizes one epoch to a token budget (one-cycle needs its length up front), trains, measures
perplexity on held-out documents and writes the weights (fp16 safetensors), vocab, SentencePiece model and a
card (`card.json`). The command is `python -m ulmfit_demo train --kind pretrain --preset starter`; tests run the
same function on a tiny corpus.
"""
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from ulmfit_demo.io import sha256


@dataclass(frozen=True)
class StarterConfig:
    sp_vocab_sz: int = 8000  # SentencePiece pieces (the vocab is all of them plus fastai's special tokens)
    emb_sz: int = 128  # embedding size; the classifier pools 3 x emb_sz features
    n_hid: int = 512  # LSTM hidden size
    n_layers: int = 2  # LSTM layers
    bs: int = 64  # sequences per batch
    seq_len: int = 70  # BPTT length
    lr: float = 5e-3  # one-cycle top learning rate
    drop_mult: float = 0.1  # less than 1 epoch of 30M+ tokens: the model underfits, so little dropout
    wd: float = 0.01  # weight decay
    clip: float = 0.25  # gradient norm clipping (the AWD-LSTM paper's 0.25)
    train_tokens: int = 14_000_000  # one epoch over this many tokens (documents sampled to fit)
    valid_docs: int = 600  # held-out documents for the reported perplexity
    sp_train_docs: int = 20_000  # documents SentencePiece is trained on
    corpora: tuple = ("imdb", "wikitext2_small")
    threads: int = 1  # torch threads (1: safe beside other work on a 2-core machine)
    time_limit_s: float = 5400  # hard stop: training ends (and is saved, flagged) past this
    seed: int = 42


def _docs(corpora, load) -> pd.DataFrame:
    "Every document of the corpora (labels dropped), with its source."
    frames = []
    for name in corpora:
        df = load(name).df
        frames.append(pd.DataFrame({"text": df["text"].values, "source": name}))
    df = pd.concat(frames, ignore_index=True)
    return df[df["text"].str.strip() != ""].reset_index(drop=True)


def build(out: Path, cfg: StarterConfig = StarterConfig(), load=None, log=print) -> dict:
    "Pretrain the starter LM into `out/` and return its card; a failed or cancelled build leaves `out` as it was."
    import shutil

    try:
        return _build(out, cfg, load, log)
    except BaseException:
        shutil.rmtree(Path(out).with_name(Path(out).name + ".building"), ignore_errors=True)
        raise


def _build(out: Path, cfg: StarterConfig = StarterConfig(), load=None, log=print) -> dict:
    "`build` without the clean-up."
    import numpy as np
    import torch
    from fastai.text.all import GradientClip, make_vocab
    from collections import Counter

    from ulmfit_demo import config as appconfig
    from ulmfit_demo.train import stages as training
    from ulmfit_demo.train.presets import Config

    if load is None:
        from ulmfit_demo.data import corpora as datasets
        load = datasets.load
    # Everything is written into a staging folder that replaces `out` only when complete: an interrupted or failed
    # build leaves the starter that was there (the one the app ships, by default) as it was.
    final = Path(out)
    out = final.with_name(final.name + ".building")
    import shutil
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    torch.set_num_threads(cfg.threads)
    t_start = time.time()
    docs = _docs(cfg.corpora, load)
    rng = np.random.RandomState(cfg.seed)
    docs = docs.iloc[rng.permutation(len(docs))].reset_index(drop=True)
    log(f"{len(docs):,} documents from {', '.join(cfg.corpora)}")
    if len(docs) < 2 * cfg.valid_docs:
        raise StarterError(f"{', '.join(cfg.corpora)} has {len(docs):,} non-empty documents and valid_docs is "
                           f"{cfg.valid_docs}: hold out at most half of them (--set valid_docs=N) or add corpora.")

    # SentencePiece on a sample, then the held-out docs, then training docs until the token budget is met.
    sp_dir = out / ".work"
    sp_model = training.train_subword(docs["text"].iloc[:cfg.sp_train_docs].tolist(), cfg.sp_vocab_sz, sp_dir)
    tok = training.Tok("subword", sp_model)
    valid = docs.iloc[:cfg.valid_docs]
    rest = docs.iloc[cfg.valid_docs:]
    # The general-English corpora are small beside IMDb: all of them train, IMDb reviews fill the rest.
    rest = pd.concat([rest[rest["source"] != "imdb"], rest[rest["source"] == "imdb"]], ignore_index=True)
    v_toks = tok.tokenize(valid["text"].tolist())
    t_toks, n = [], 0
    chunk = 2000
    for i in range(0, len(rest), chunk):
        part = tok.tokenize(rest["text"].iloc[i:i + chunk].tolist())
        for ts in part:
            if n >= cfg.train_tokens:
                break
            t_toks.append(ts)
            n += len(ts)
        if n >= cfg.train_tokens:
            break
    sources = rest["source"].iloc[:len(t_toks)].value_counts().to_dict()
    log(f"tokenized {len(t_toks):,} training docs ({n:,} tokens) + {len(v_toks)} held out in "
        f"{time.time() - t_start:.0f}s")
    t_tok = time.time() - t_start

    # The whole SentencePiece vocabulary (fastai's special tokens first), so nothing a user types is xxunk.
    counts = Counter(t for ts in t_toks for t in ts)
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    for i in range(sp.get_piece_size()):
        counts[sp.id_to_piece(i)] += 0
    vocab = make_vocab(counts, min_freq=0, max_vocab=len(counts) + 64)

    if n < 2 * cfg.bs * (cfg.seq_len + 1):
        raise StarterError(f"The training documents hold {n:,} tokens; batches of {cfg.bs} x {cfg.seq_len} need at "
                           f"least {2 * cfg.bs * (cfg.seq_len + 1):,}. Add corpora or lower bs/seq_len (--set).")
    df = pd.DataFrame({"tokens": t_toks + v_toks})
    splits = (list(range(len(t_toks))), list(range(len(t_toks), len(df))))
    rc = Config(tokenizer="subword", sp_vocab_sz=cfg.sp_vocab_sz, emb_sz=cfg.emb_sz, n_hid=cfg.n_hid,
                n_layers=cfg.n_layers, bs=cfg.bs, seq_len=cfg.seq_len, drop_mult_lm=cfg.drop_mult, wd=cfg.wd,
                pretrained="none", seed=cfg.seed)
    from fastai.torch_core import set_seed
    set_seed(cfg.seed, reproducible=True)
    dls = training.lm_dls(df, splits, vocab, rc, "cpu")
    learn = training.lm_learner(dls, rc, path=sp_dir)
    learn.logger = lambda row: log("  ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    progress = _Progress(len(dls.train), cfg.time_limit_s, log)
    t0 = time.time()
    with learn.no_bar():
        learn.fit_one_cycle(1, cfg.lr, cbs=[GradientClip(cfg.clip), progress])
    train_s = time.time() - t0
    with learn.no_bar():
        valid_loss, valid_acc = (float(v) for v in learn.validate()[:2])
    ppl = math.exp(valid_loss)
    tokens_seen = progress.batches * cfg.bs * cfg.seq_len
    log(f"trained {progress.batches}/{len(dls.train)} batches ({tokens_seen:,} tokens) in {train_s:.0f}s; "
        f"held-out perplexity {ppl:.1f}")

    from safetensors.torch import save_file
    state = {k: v.detach().cpu().to(torch.float16).contiguous() for k, v in learn.model.state_dict().items()}
    # The decoder shares the embedding's weight (tied): store it once.
    state.pop("1.decoder.weight", None)
    tmp = out / "lm.safetensors.tmp"
    save_file(state, str(tmp))
    tmp.replace(out / "lm.safetensors")
    appconfig.atomic_write(out / "vocab.json", json.dumps(list(vocab)))
    appconfig.atomic_write(out / "spm.model", Path(sp_model).read_bytes())
    card = {
        "what": "AWD-LSTM language model pretrained from scratch (ULMFiT stage 1)",
        "config": asdict(cfg), "arch": training.arch_meta(rc, "lm"),
        "vocab_size": len(vocab), "sp_pieces": int(sp.get_piece_size()),
        "train_docs": len(t_toks), "train_docs_by_source": {str(k): int(v) for k, v in sources.items()},
        "train_tokens": int(n), "tokens_seen": int(tokens_seen),
        "batches": progress.batches, "batches_planned": len(dls.train), "stopped_early": progress.stopped,
        "valid_docs": len(v_toks), "valid_tokens": int(sum(map(len, v_toks))),
        "valid_loss": valid_loss, "valid_perplexity": ppl,
        "valid_accuracy": valid_acc,
        "tokenize_s": round(t_tok, 1), "train_s": round(train_s, 1), "tokens_per_s": round(tokens_seen / train_s),
        "threads": cfg.threads, "torch": torch.__version__,
        "built": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    appconfig.atomic_write(out / "card.json", json.dumps(card, indent=2))
    write_manifest(out)  # last: a folder without a manifest is never used
    shutil.rmtree(sp_dir, ignore_errors=True)
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.replace(old)
    out.replace(final)
    shutil.rmtree(old, ignore_errors=True)
    return card


class _Progress:
    "Logs tokens/s every few minutes and stops at the time limit (the card says so: `stopped_early`)."

    def __new__(cls, *a, **k):
        from fastai.callback.core import Callback

        class P(Callback):
            order = 99

            def __init__(self, n, limit, log):
                self.n, self.limit, self.log, self.batches, self.stopped = n, limit, log, 0, False
                self.t0 = time.time()
                self.last = self.t0

            def after_batch(self):
                if not self.training:
                    return
                self.batches += 1
                now = time.time()
                if now - self.last > 120:
                    self.last = now
                    rate = self.batches * self.learn.dls.bs * self.learn.dls.train.seq_len / (now - self.t0)
                    self.log(f"batch {self.batches}/{self.n} loss {float(self.learn.smooth_loss):.3f} "
                             f"{rate:,.0f} tok/s, eta {(self.n - self.batches) * (now - self.t0) / self.batches / 60:.0f} min")
                if now - self.t0 > self.limit:
                    from fastai.callback.core import CancelEpochException
                    self.stopped = True
                    self.log(f"time limit reached after {self.batches} batches")
                    raise CancelEpochException()

        return P(*a, **k)


# ------------------------------------------------------------------------------------------------------ loading

FILES = ("lm.safetensors", "vocab.json", "spm.model", "card.json")
MANIFEST = "manifest.json"
# Shipped with the app; `ULMFIT_DEMO_STARTER` points elsewhere (a rebuilt starter, or a tiny one in tests).
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "assets" / "starter_lm"
REBUILD = "python -m ulmfit_demo train --kind pretrain --preset starter"


def folder() -> Path:
    import os

    return Path(os.environ.get("ULMFIT_DEMO_STARTER") or DEFAULT_DIR)


def card(path: Path | None = None) -> dict | None:
    "The starter's card (cheap: no hashing, no torch), or None when there is no starter."
    try:
        return json.loads((Path(path or folder()) / "card.json").read_text())
    except (OSError, ValueError):
        return None


def arch(path: Path | None = None) -> dict | None:
    "`{emb_sz, n_hid, n_layers}` of the starter, which a run starting from it must use."
    c = card(path)
    return {k: c["arch"][k] for k in ("emb_sz", "n_hid", "n_layers")} if c else None


class StarterError(ValueError):
    "The starter files are missing or damaged: the message says which file and what to do."


def write_manifest(folder: Path, files=FILES) -> dict:
    "sha256 and size of each file, checked by `check` before the files are used."
    from ulmfit_demo import config as appconfig

    folder = Path(folder)
    man = {f: {"sha256": sha256(folder / f), "bytes": (folder / f).stat().st_size} for f in files}
    appconfig.atomic_write(folder / MANIFEST, json.dumps(man, indent=1))
    return man


def check(folder: Path, what: str = "starter language model", rebuild: str = "") -> dict:
    "The manifest, after checking every file it lists; `StarterError` naming the first missing or damaged one."
    folder = Path(folder)
    try:
        man = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise StarterError(f"The bundled {what} in {folder} cannot be used: {MANIFEST} is missing or unreadable "
                           f"({type(e).__name__}). Restore the folder from git (`git checkout -- {folder.name}`)"
                           f"{rebuild}.") from None
    for name, want in man.items():
        p = folder / name
        if not p.is_file():
            raise StarterError(f"The bundled {what} cannot be used: {p} is missing. Restore it from git "
                               f"(`git checkout -- {p}`){rebuild}.")
        if p.stat().st_size != want["bytes"] or sha256(p) != want["sha256"]:
            raise StarterError(f"The bundled {what} cannot be used: {p} is damaged (its checksum does not match "
                               f"{MANIFEST}). Restore it from git (`git checkout -- {p}`){rebuild}.")
    return man


def load(path: Path | None = None) -> tuple[dict, list[str], Path, dict]:
    "(fp32 LM state dict with the tied decoder restored, vocab, SentencePiece model path, card), checked first."
    import torch
    from safetensors.torch import load_file

    folder = Path(path or globals()["folder"]())
    check(folder, rebuild=f" or rebuild it: {REBUILD}")
    from fastai.text.all import AWD_LSTM, get_language_model

    saved = {k: v.to(torch.float32) for k, v in load_file(str(folder / "lm.safetensors")).items()}
    saved["1.decoder.weight"] = saved["0.encoder.weight"]
    vocab = json.loads((folder / "vocab.json").read_text())
    card = json.loads((folder / "card.json").read_text())
    # safetensors stores keys sorted; fastai's loaders match weights by position, so give them the model's order.
    cfg = {k: v for k, v in card["arch"].items() if k not in ("drop_mult", "seq_len")}
    order = get_language_model(AWD_LSTM, len(vocab), config=cfg).state_dict().keys()
    missing = [k for k in order if k not in saved]
    if missing or len(saved) != len(order):
        raise StarterError(f"The bundled starter's weights do not fit its card's architecture ({missing[:3]}); "
                           f"rebuild it: {REBUILD}.")
    return {k: saved[k] for k in order}, vocab, folder / "spm.model", card


def encoder_of(lm_state: dict) -> dict:
    "The AWD-LSTM part of a language model's state dict (`save_encoder`'s content)."
    return {k[2:]: v for k, v in lm_state.items() if k.startswith("0.")}
