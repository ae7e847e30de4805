"""The bundled sentiment model (`--model bundled`): ULMFiT stage 3 from the two starter language models, built here.

The starters (`assets/starter_lm`, `assets/starter_lm_bwd`) already read every review of the mirror's IMDb, Yelp and
Amazon corpora (labels unused), so stage 2 (LM fine-tuning on the target text) is folded into them. This module
fine-tunes a forward and a backward classifier on the labelled training rows of several corpora at once
(`BundledConfig.corpus`, a combined-corpus spec), then chooses what ships:

1. `direction fwd` / `direction bwd`: one classifier per direction, each in its own process (one CPU thread each runs
   two at once on 2 cores). Gradual unfreezing with discriminative learning rates: the head for one epoch, the last
   layer group for one, then every layer for as many epochs as the held-out accuracy keeps rising (each a one-cycle
   of its own at a falling top LR; the best epoch's weights are kept). A checkpoint is written after every epoch, so
   `--resume` continues a build stopped by `--time-limit-s` or anything else. The finished classifier is stored in
   the model store, calibrated on the held-out rows. A direction stopped early by `patience` is continued by
   `--resume --set patience=N` with a larger N, one that used up its steps still improving by `--resume --set
   max_epochs=N` (every layer at the last step's LR); the classifier stored then replaces it in the build.
   `--train-seed N` trains another classifier of a direction on the same rows (`fwd-s43`), `--set max_tokens=N` one
   that reads its texts cut to another length (`fwd-t1440`), `--set balance=source` one whose epochs read each
   source's rows up to the second-largest source's count (`fwd-bal`): all belong to the same build, the rows being
   the same.
2. `finish`: the TF-IDF baseline fitted on exactly the same training rows (each source's rows weighing the same in
   all: `baseline_balance`) and, with `nb_baseline`, a Naive-Bayes-weighted one of 1-3-grams on the same rows; then
   every candidate measured on the held-out training rows: the forward classifiers (every one built, or those
   `classifiers` names, averaged), those with the backward ones, each of the two with the baseline (or both linear
   members, half each) at each of `baseline_shares` of the weight, each pooled by each of `rules` (the mean of the
   members' probabilities or of their log-probabilities: `models.ensemble`). The best is exported as the bundled
   model (`models.shipped.export`) with a card: best held-out mean (within `tie`), then best calibrated, then fewest
   members. The test splits and the out-of-domain sentences are only measured, for the card, never used to choose.
   Each member's probabilities are kept beside the build, so `finish` run again predicts only for classifiers it
   has not seen.
3. `adopt`: a build lives in one machine's home (`bundled_build/<key>/`), the shipped model in git. On another
   machine, `adopt` imports the shipped model's classifiers into the model store and into this build as finished
   directions (their recorded epochs and scores, marked `adopted`), when its card's config has this build's key; a
   new classifier (`direction bwd --train-seed 43`) then joins them in `finish`, which fits the linear members
   again on the same rows. An adopted classifier cannot be continued: its checkpoints do not ship.

Held-out rows are drawn per source (`holdout` of its training rows, at most `max_holdout`), so each corpus counts
the same in the choice: the score is the mean of the per-source accuracies. Reviews are long and a one-line input
would look like nothing the model knew, so some training rows are short crops of a longer text (1 or 2 of its
sentences, with its label), and long texts are cut to their last `max_tokens` tokens to keep an epoch affordable on
a CPU (prediction still reads the whole text).
"""
import argparse
import hashlib
import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ulmfit_demo import config, models
from ulmfit_demo.data import corpora
from ulmfit_demo.data.crops import crops
from ulmfit_demo.data.labels import canonical
from ulmfit_demo.judge import baseline, calibration, ood, report
from ulmfit_demo.models import ensemble, kinds, registry, shipped, starter
from ulmfit_demo.train import evaluate
from ulmfit_demo.train import stages as training
from ulmfit_demo.train.presets import Config, ConfigError, parse_sets

DIRECTIONS = ("fwd", "bwd")


@dataclass(frozen=True)
class BundledConfig:
    corpus: str = "imdb+yelp_sentences:120000+amazon_reviews"  # labelled `train` rows of these; see data.combined
    holdout: float = 0.1  # of each source's training rows: early stopping, temperature, the candidates' choice
    max_holdout: int = 2500  # per source, so the short Yelp sentences do not swamp the choice
    max_tokens: int = 320  # a training text is cut to its last this many tokens
    # "source": each epoch reads every training row of each source up to as many as the second-largest source has,
    # the largest source's rows drawn anew each epoch (seeded), so Yelp's 118k short sentences do not make up 72% of
    # every batch; "none": every row every epoch. Like `max_tokens`, it names a classifier's folder (`fwd-bal`).
    balance: str = "none"
    crop_frac: float = 0.3  # this share of training texts with 2+ sentences also gives a short crop with its label
    bs: int = 64
    clas_seq_len: int = 72
    drop_mult: float = 0.5
    # (freeze_to, top LR) per epoch: head, last layer group, then all layers at falling LRs while held-out rises.
    steps: tuple = ((-1, 2e-2), (-2, 1e-2), (0, 5e-3), (0, 3e-3), (0, 2e-3), (0, 1e-3), (0, 1e-3))
    patience: int = 1  # all-layer epochs without a better held-out score before stopping
    # At most this many epochs (None: one per step). Past the listed steps, every layer keeps training at the last
    # step's LR while held-out accuracy rises: `--resume --set max_epochs=9` continues a direction that used up its
    # steps still improving.
    max_epochs: int | None = None
    lr_div: float = 2.6**4
    precision: str = "bf16"  # on a CPU: bf16 autocast (train/precision.py); weights stay fp32
    max_train_docs: int | None = None  # per source, before the hold-out (tests)
    max_test_docs: int | None = None  # per source
    seed: int = 42
    # `finish` only (not in the key: they choose among the classifiers trained, they train none)
    baseline_balance: str = "source"  # "source": each source's rows weigh the same in the baseline's fit; "none"
    baseline_shares: tuple = (0.3, 0.4, 0.5, 0.6)  # the baseline's weight in a candidate that has it
    rules: tuple = ("mean", "geometric")  # how a candidate pools its members' probabilities (models.ensemble)
    # Held-out means this close to the best are a tie (0.1 point is about one review per source, far below the noise
    # of 6k rows): among the tied, the best calibrated ships, then the one with fewer members.
    tie: float = 0.001
    # A second linear member beside the baseline: the same TF-IDF with Naive-Bayes feature weighting and 1-3-grams
    # (`NB_BASELINE`); candidates with it give the two linear members half the baseline share each.
    nb_baseline: bool = True
    # The classifier folders `finish` chooses among (`fwd`, `fwd-s43`, `fwd-t1440`, `bwd`, ...; see `built`); None:
    # every classifier built. A choice recorded in the card, instead of moving folders aside.
    classifiers: tuple | None = None

    def key(self) -> str:
        """Names the build's checkpoint folder: another config is another build. `patience` and `max_epochs` are left
        out: they only say when to stop, so a direction can be continued with larger ones (`--resume --set ...`);
        `max_tokens` names a classifier's folder within the build instead (`build_dir`); the rest of `_NOT_IN_KEY`
        only steers `finish`."""
        d = {k: v for k, v in asdict(self).items() if k not in _NOT_IN_KEY}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


# `max_tokens` only changes how one classifier trains on the same rows: classifiers with another one share the build,
# each in its own folder (`build_dir`), and `finish` can pool them.
_NOT_IN_KEY = ("patience", "max_epochs", "baseline_balance", "baseline_shares", "rules", "tie", "nb_baseline",
               "classifiers", "max_tokens", "balance")
# The NB-weighted member (`baseline.fit(nb=True)`): chosen on the build's held-out rows only (the v3 classifiers'
# kept probabilities, geometric pooling), over 1-2 / 1-3-grams x C 1 / 4 / 16: 1-3-grams (min_df 3, 655k terms, about
# 20 MB) at C=4 was best alone (held-out mean 91.55 against the plain baseline's 91.22) and beside it.
NB_BASELINE = dict(ngram_range=(1, 3), min_df=3, C=4.0)


_DEFAULT = BundledConfig()


class BuildError(ValueError):
    "The build cannot go on: the message says why and what to do."


def rows(cfg: BundledConfig) -> dict[str, pd.DataFrame]:
    """`train` (with crops), `held` (held-out training rows) and `test` frames (`text`, `label`, `source`); the same
    rows for every call with the same config."""
    df = corpora.load(cfg.corpus).df
    if "source" not in df:
        df = df.assign(source=cfg.corpus)
    df = df[df["label"] != ""].assign(label=lambda d: d["label"].map(canonical))
    trn, held, test = [], [], []
    for src, part in df.groupby("source", sort=False):
        tr = part[part["split"] == "train"]
        if cfg.max_train_docs:
            tr = tr.sample(n=min(cfg.max_train_docs, len(tr)), random_state=cfg.seed)
        tr = tr.sample(frac=1.0, random_state=cfg.seed)
        n_h = min(cfg.max_holdout, max(1, int(round(cfg.holdout * len(tr)))))
        held.append(tr.iloc[:n_h])
        trn.append(tr.iloc[n_h:])
        te = part[part["split"] == "test"]
        if te.empty:  # a corpus without a test split (the demo one): its validation rows are what it has
            te = part[part["split"] == "valid"]
        if cfg.max_test_docs:
            te = te.sample(n=min(cfg.max_test_docs, len(te)), random_state=cfg.seed)
        test.append(te)
    cols = ["text", "label", "source"]
    trn = pd.concat(trn)[cols]
    cr = pd.concat([crops(part["text"].tolist(), part["label"].tolist(), cfg.crop_frac, cfg.seed).assign(source=src)
                    for src, part in trn.groupby("source", sort=False)], ignore_index=True)
    return {"train": pd.concat([trn, cr], ignore_index=True), "held": pd.concat(held)[cols].reset_index(drop=True),
            "test": pd.concat(test)[cols].reset_index(drop=True), "n_crops": len(cr)}


def build_dir(cfg: BundledConfig, direction: str, train_seed: int | None = None) -> Path:
    """A direction's checkpoint folder: `fwd`; `fwd-s43` for another training seed (the same rows, split by `cfg.seed`;
    only the initialisation of the head and the order of batches change); `fwd-t1440` for texts cut to another
    `max_tokens` than the default (`fwd-t1440-s43` both)."""
    extra = "" if cfg.max_tokens == _DEFAULT.max_tokens else f"-t{int(cfg.max_tokens)}"
    extra += "-bal" if cfg.balance == "source" else ""
    extra += "" if train_seed in (None, cfg.seed) else f"-s{int(train_seed)}"
    return config.home() / "bundled_build" / cfg.key() / f"{direction}{extra}"


def _state(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "state.json").read_text())
    except (OSError, ValueError):
        return None


def _put_state(folder: Path, st: dict) -> None:
    config.atomic_write(folder / "state.json", json.dumps(st, indent=1))


def _recipe(cfg: BundledConfig, arch: dict, backwards: bool) -> Config:
    return Config(tokenizer="subword", emb_sz=arch["emb_sz"], n_hid=arch["n_hid"], n_layers=arch["n_layers"],
                  bs=cfg.bs, clas_seq_len=cfg.clas_seq_len, drop_mult_clas=cfg.drop_mult, lr_div=cfg.lr_div,
                  pretrained="none", seed=cfg.seed, backwards=backwards)


def held_scores(logits: np.ndarray, held: pd.DataFrame, labels: list[str]) -> dict:
    "Accuracy per source of held-out rows and their mean (the score every choice here is made on)."
    pred = np.asarray(labels)[logits.argmax(1)]
    per = {src: float((pred[m] == held["label"].values[m]).mean())
           for src in held["source"].unique() for m in [(held["source"] == src).values]}
    return {"score": float(np.mean(list(per.values()))), "by_source": per}


def train_direction(cfg: BundledConfig, direction: str, *, resume: bool = False, restart: bool = False,
                    threads: int = 1, time_limit_s: float | None = None, train_seed: int | None = None,
                    log=print) -> dict:
    """Fine-tune one direction's classifier (resumable, see the module's docstring). Returns the state: `done` with
    `model_id` when finished, else paused with the epochs done so far."""
    import torch
    from fastai.torch_core import set_seed

    if direction not in DIRECTIONS:
        raise BuildError(f"direction must be fwd or bwd, not {direction!r}.")
    if cfg.balance not in ("none", "source"):
        raise BuildError(f"balance must be 'source' (each source's rows capped at the second-largest source's count "
                         f"each epoch) or 'none', not {cfg.balance!r}.")
    if train_seed is not None and int(train_seed) < 0:
        raise BuildError(f"--train-seed must be 0 or more, not {train_seed}.")
    if not isinstance(cfg.patience, int) or cfg.patience < 0:
        raise BuildError(f"patience must be a whole number of epochs, 0 or more, not {cfg.patience!r}.")
    if cfg.max_epochs is not None and (not isinstance(cfg.max_epochs, int) or isinstance(cfg.max_epochs, bool)
                                       or cfg.max_epochs < 1):
        raise BuildError(f"max_epochs must be a whole number of epochs, 1 or more (or null: one per step), not "
                         f"{cfg.max_epochs!r}.")
    if (cfg.max_epochs or 0) > len(cfg.steps) and cfg.steps[-1][0] != 0:
        raise BuildError(f"max_epochs {cfg.max_epochs} goes past the {len(cfg.steps)} steps, and past them every "
                         f"layer trains at the last step's LR: the last step must train every layer (freeze_to 0), "
                         f"not {cfg.steps[-1][0]}.")
    torch.set_num_threads(threads)
    tseed = cfg.seed if train_seed is None else int(train_seed)
    folder = build_dir(cfg, direction, tseed)
    st = _state(folder)
    if st and st.get("model_id") and not restart:
        if not (resume and st["step"] < _epochs(cfg) and not _stopped(st, cfg)):
            log(f"{direction}: already finished as {st['model_id']} ({folder}); --restart to build it again")
            return st
        if st.get("adopted"):
            raise BuildError(f"{folder.name} was adopted from the bundled model ({st['adopted'].get('shipped_id')}): "
                             f"its training checkpoints do not ship, so it cannot be continued. Train another seed "
                             f"(--train-seed N), or --restart to train {folder.name} here from the start.")
        # Stopped early under a smaller patience, or at the end of its epochs while still improving: continue it;
        # the classifier stored then replaces this one here.
        was = st["config"].get("patience", cfg.patience)
        if _stopped(st, replace(cfg, patience=was)):
            why = f"by patience {was}; continuing with patience {cfg.patience}"
        else:
            why = f"at the end of its epochs; continuing up to {_epochs(cfg)} epochs"
        log(f"{direction}: finished as {st['model_id']} after epoch {st['step']} {why}")
        st["model_id"] = None
    if st:
        st["config"] = asdict(cfg)
    if st and not (resume or restart):
        raise BuildError(f"A {direction} build is already there ({st['step']} of {_epochs(cfg)} epochs done, "
                         f"{folder}): pass --resume to continue it or --restart to discard it and start over.")
    if restart or not st:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        st = {"config": asdict(cfg), "direction": direction, "train_seed": tseed, "step": 0, "history": [], "best": None,
              "train_s": 0.0, "sittings": 0, "model_id": None}
    st["sittings"] += 1
    t_start = time.time()

    sfolder = starter.folder(backwards=direction == "bwd")
    lm_state, vocab, sp_model, scard = starter.load(sfolder)
    backwards = direction == "bwd"
    if bool(scard.get("backwards") or (scard.get("arch") or {}).get("backwards")) != backwards:
        raise BuildError(f"The starter in {sfolder} does not read {'backwards' if backwards else 'forwards'}: build "
                         f"it first ({starter.REBUILD} --set directions={direction}).")
    data = rows(cfg)
    trn, held = data["train"], data["held"]
    log(f"{direction}: {len(trn):,} training rows ({data['n_crops']:,} of them crops), {len(held):,} held out; "
        f"by source {trn['source'].value_counts().to_dict()}")
    tok = training.Tok("subword", Path(sp_model))
    t0 = time.time()
    tr_toks = [ts[:1] + ts[1:][-cfg.max_tokens:] for ts in tok.tokenize(trn["text"].tolist())]
    he_toks = tok.tokenize(held["text"].tolist())
    log(f"{direction}: tokenized in {time.time() - t0:.0f}s; mean training length "
        f"{np.mean(list(map(len, tr_toks))):.0f} tokens")

    rc = _recipe(cfg, scard["arch"], backwards)
    # fastai's own validation each epoch is a small sample (its loss is logged); the choice uses all held-out rows.
    n_val = min(len(held), 256)
    df = pd.DataFrame({"tokens": tr_toks + he_toks[:n_val],
                       "label": list(trn["label"]) + list(held["label"][:n_val]),
                       "is_valid": [False] * len(tr_toks) + [True] * n_val})
    set_seed(tseed + st["step"], reproducible=True)
    dls = training.clas_dls(df, vocab, rc, "cpu")
    learn = training.clas_learner(dls, rc, folder / "work", starter.encoder_of(lm_state))
    training.apply_precision(learn, cfg.precision)
    labels = [str(c) for c in dls.vocab[1]]
    learn.logger = lambda row: log(f"{direction}: " + "  ".join(
        f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))

    k = st["step"]
    if k:
        training.set_trainable(learn, _step(cfg, k)[0] if k < _epochs(cfg) else 0)
        same_phase = k < _epochs(cfg) and _step(cfg, k - 1)[0] == _step(cfg, k)[0]
        learn.load(str(folder / "last"), with_opt=same_phase)
        log(f"{direction}: resumed after epoch {k} ({st['train_s'] / 60:.0f} min trained over "
            f"{st['sittings'] - 1} sitting(s))")
    while k < _epochs(cfg) and not _stopped(st, cfg):
        ft, lr = _step(cfg, k)
        if cfg.balance == "source":  # this epoch's rows: the largest source drawn anew
            pick = balanced_rows(trn["source"].values, tseed * 1000 + k)
            learn.dls = training.clas_dls(pd.concat([df.iloc[pick], df[df["is_valid"]]], ignore_index=True), vocab,
                                          rc, "cpu")
            log(f"{direction}: epoch {k + 1} reads {len(pick):,} rows, by source "
                f"{trn['source'].iloc[pick].value_counts().to_dict()}")
        if k == 0 or _step(cfg, k - 1)[0] != ft:
            training.set_trainable(learn, ft)
        t0 = time.time()
        with learn.no_bar():
            learn.fit_one_cycle(1, slice(lr / cfg.lr_div, lr) if ft != -1 else lr)
        took = time.time() - t0
        sc = held_scores(evaluate.clas_logits(learn, he_toks, backwards), held, labels)
        k += 1
        better = st["best"] is None or sc["score"] > st["best"]["score"]
        learn.save(str(folder / "last"), with_opt=True)
        if better:
            shutil.copyfile(folder / "last.pth", folder / "best.pth")
            st["best"] = {"step": k, "score": sc["score"]}
        st["history"].append({"epoch": k, "freeze_to": ft, "lr": lr, "train_s": round(took, 1), **sc})
        st.update(step=k, train_s=st["train_s"] + took)
        _put_state(folder, st)
        log(f"{direction}: epoch {k} (freeze_to {ft}, lr {lr:g}) in {took / 60:.1f} min: held-out "
            + ", ".join(f"{s} {a:.4f}" for s, a in sc["by_source"].items()) + f" (mean {sc['score']:.4f})"
            + (" best" if better else ""))
        if time_limit_s is not None and time.time() - t_start > time_limit_s and k < _epochs(cfg) \
                and not _stopped(st, cfg):
            log(f"{direction}: paused at the time limit after epoch {k}; continue with --resume")
            return st

    learn.load(str(folder / "best"), with_opt=False)
    logits = evaluate.clas_logits(learn, he_toks, backwards)
    y = np.array([labels.index(v) for v in held["label"]])
    cal = report.calibrate(logits, y, seed=cfg.seed)
    sc = held_scores(logits, held, labels)
    metrics = {"accuracy": float((logits.argmax(1) == y).mean()), "n_valid": int(len(y)),
               **{f"held_{s}": a for s, a in sc["by_source"].items()}}
    metrics.update(report.calibration_metrics(cal))
    tags = ([f"texts cut to {cfg.max_tokens:,} tokens"] if cfg.max_tokens != _DEFAULT.max_tokens else []) + (
        ["rows balanced by source"] if cfg.balance == "source" else []) + (
        [f"seed {tseed}"] if tseed != cfg.seed else [])
    name = f"Bundled sentiment, {'backward' if backwards else 'forward'} AWD-LSTM" + (
        f" ({', '.join(tags)})" if tags else "")
    st["model_id"] = models.save_learner(
        learn, kind="classifier", name=name, corpus=cfg.corpus, arch=training.arch_meta(rc, "clas"),
        tokenizer=tok.meta, metrics=metrics, calibration=cal,
        extra={"stage": "clas", "preset": "bundled", "config": asdict(cfg), "backwards": backwards,
               "start": str(sfolder.name), "epochs": st["history"], "best_epoch": st["best"]["step"],
               "train_seed": tseed})
    _put_state(folder, st)
    log(f"{direction}: done, best epoch {st['best']['step']} (held-out mean {st['best']['score']:.4f}); stored as "
        f"{st['model_id']}")
    return st


def balanced_rows(sources: np.ndarray, seed: int) -> np.ndarray:
    """Positions of one epoch's training rows under `balance="source"`: every row of each source up to as many as
    the second-largest source has, the rest of a larger source's rows drawn at random (`seed`: one draw per epoch)."""
    sources = np.asarray(sources)
    counts = pd.Series(sources).value_counts()
    cap = int(counts.iloc[1]) if len(counts) > 1 else int(counts.iloc[0])
    rng = np.random.default_rng(seed)
    keep = []
    for src in counts.index:
        ix = np.flatnonzero(sources == src)
        keep.append(ix if len(ix) <= cap else rng.choice(ix, cap, replace=False))
    return np.sort(np.concatenate(keep))


def _epochs(cfg: BundledConfig) -> int:
    return len(cfg.steps) if cfg.max_epochs is None else cfg.max_epochs


def _step(cfg: BundledConfig, k: int) -> tuple:
    "(freeze_to, top LR) of epoch k + 1: the k-th step, or past the steps the last one (every layer, its LR)."
    return tuple(cfg.steps[min(k, len(cfg.steps) - 1)])


def _stopped(st: dict, cfg: BundledConfig) -> bool:
    "Early stopping: once every layer trains, `patience` epochs without a better held-out score end the build."
    best = st["best"]
    all_layers = [h for h in st["history"] if h["freeze_to"] == 0]
    return bool(all_layers and best and st["step"] - best["step"] >= cfg.patience)


# ------------------------------------------------------------------------------------------------------ choosing

def _probs(model_id: str, texts: list[str]) -> np.ndarray:
    "Calibrated probabilities [negative, positive] on the app's own prediction path (what a user gets)."
    res = kinds.open(model_id).predict_batch(texts)
    return np.array([[r["probs"].get("negative", 0.0), r["probs"].get("positive", 0.0)] for r in res])


def _probs_kept(cfg: BundledConfig, model_id: str, texts: list[str]) -> np.ndarray:
    """`_probs`, kept beside the build (a stored model never changes its answers): `finish` run again, e.g. after one
    direction was continued, reads the other members' probabilities back instead of predicting 38k texts again."""
    h = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:12]
    path = config.home() / "bundled_build" / cfg.key() / "probs" / f"{model_id}-{h}.npy"
    if path.is_file():
        p = np.load(path)
        if p.shape == (len(texts), 2):
            return p
    p = _probs(model_id, texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, p)
    tmp.replace(path)
    return p


LABELS = ["negative", "positive"]


def _figures(p: np.ndarray, frame: pd.DataFrame) -> dict:
    "Accuracy per source, ECE and the share called positive of probabilities `p` on `frame`'s rows."
    y = frame["label"].map(LABELS.index).values
    out = {}
    for src in frame["source"].unique():
        m = (frame["source"] == src).values
        out[src] = {"accuracy": float((p[m].argmax(1) == y[m]).mean()), "n": int(m.sum()),
                    "ece": float(calibration.ece(p[m], y[m])), "positive_share": float((p[m].argmax(1) == 1).mean())}
    return out


def built(cfg: BundledConfig) -> dict[str, str]:
    """Every finished classifier of this build, folder name -> model id: `fwd`, `fwd-s43` (another training seed),
    `fwd-t1440` (another `max_tokens`), `bwd`, ...; each direction's default first."""
    root = config.home() / "bundled_build" / cfg.key()
    out = {}
    for d in DIRECTIONS:
        names = sorted((p.name for p in root.glob(f"{d}*") if re.fullmatch(rf"{d}(-t\d+)?(-bal)?(-s\d+)?", p.name)),
                       key=lambda n: (n != d, len(n), n))
        for n in names:
            mid = (_state(root / n) or {}).get("model_id")
            if mid:
                out[n] = mid
    return out


def _fit_baseline(trn: pd.DataFrame, held: pd.DataFrame, cfg: BundledConfig, balance: str, nb: bool = False):
    """The TF-IDF baseline on the training rows, `balance`d ("source": each source's rows weigh the same in all, so
    118k short Yelp sentences do not outvote 25k long reviews; "none": every row alike), with its temperature fitted
    on the held-out rows. Returns (baseline, calibration, held-out logits in LABELS order)."""
    w = None
    if balance == "source":
        n = trn["source"].map(trn["source"].value_counts()).values.astype(float)
        w = (1.0 / n) * len(n) / (1.0 / n).sum()
    elif balance != "none":
        raise BuildError(f"baseline_balance must be 'source' or 'none', not {balance!r}.")
    extra = dict(NB_BASELINE, nb=True) if nb else {}
    base = baseline.fit(trn["text"].tolist(), trn["label"].tolist(), seed=cfg.seed, sample_weight=w, **extra)
    z = _baseline_logits(base, held["text"].tolist())
    return base, report.calibrate(z, held["label"].map(LABELS.index).values, seed=cfg.seed), z


def _baseline_logits(base, texts: list[str]) -> np.ndarray:
    labs = [canonical(x) for x in base.labels]
    return base.logits(texts)[:, [labs.index(x) for x in LABELS]]


def _pool(ps: list[np.ndarray], weights: list[float], rule: str) -> np.ndarray:
    "The ensemble's probabilities from its members' (`ensemble._combine`'s two rules, on arrays)."
    w = np.asarray(weights, dtype=float) / sum(weights)
    if rule == "mean":
        return sum(wi * p for wi, p in zip(w, ps))
    logs = sum(wi * np.log(np.maximum(p, 1e-12)) for wi, p in zip(w, ps))
    e = np.exp(logs - logs.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def candidates(members: list[str], cfg: BundledConfig) -> dict[str, dict]:
    """What may ship, by name: the forward classifiers built (every training seed, averaged); those with the backward
    ones; each of the two with the baseline as a member at each of `baseline_shares` of the weight (the classifiers
    share the rest equally); everything of two or more members pooled by each of `rules`."""
    fwd = [m for m in members if m.startswith("fwd")]
    bwd = [m for m in members if m.startswith("bwd")]
    groups = {"fwd": fwd, **({"fwd+bwd": fwd + bwd} if bwd else {})}
    out = {}
    for g, parts in groups.items():
        for rule in (cfg.rules if len(parts) > 1 else ("mean",)):
            out[g + (f" ({rule})" if len(parts) > 1 else "")] = {
                "members": parts, "weights": [1.0] * len(parts), "rule": rule}
        linear = [["baseline"]] + ([["baseline", "nb-tfidf"]] if "nb-tfidf" in members else [])
        for lin in (lin for lin in linear if "baseline" in members):
            for share in cfg.baseline_shares:
                for rule in cfg.rules:
                    out[f"{g}+{'+'.join(lin)} ({share:g}, {rule})"] = {
                        "members": parts + lin, "rule": rule,
                        "weights": [(1 - share) / len(parts)] * len(parts) + [share / len(lin)] * len(lin)}
    return out


def _check_choice(cfg: BundledConfig) -> None:
    "The settings `finish` chooses with, refused before any work with what to pass instead."
    if cfg.baseline_balance not in ("source", "none"):
        raise BuildError(f"baseline_balance must be 'source' or 'none', not {cfg.baseline_balance!r}.")
    c = cfg.classifiers
    if c is not None and (not isinstance(c, (list, tuple)) or not all(isinstance(x, str) for x in c)
                          or not any(x.startswith("fwd") for x in c)):
        raise BuildError(f"classifiers must list classifier folders with at least one forward one, e.g. "
                         f"'[\"fwd\", \"fwd-s43\", \"bwd\"]' (or leave it out: every one built), not {c!r}.")
    bad = [r for r in cfg.rules if r not in ensemble.RULES]
    if not cfg.rules or bad:
        raise BuildError(f"rules must list one or more of {', '.join(ensemble.RULES)}"
                         + (f", not {', '.join(map(repr, bad))}." if bad else "."))
    shares = list(cfg.baseline_shares)
    if not all(isinstance(x, (int, float)) and 0 < x < 1 for x in shares):
        raise BuildError(f"baseline_shares must be numbers between 0 and 1 (the baseline's share of the weight), "
                         f"got {shares}.")
    if not isinstance(cfg.tie, (int, float)) or not 0 <= cfg.tie < 0.05:
        raise BuildError(f"tie must be a share of accuracy from 0 to 0.05 (0.001 is 0.1 point), got {cfg.tie!r}.")


def finish(cfg: BundledConfig, out: Path, log=print) -> dict:
    """Fit the baseline on the same training rows, measure every candidate on the held-out rows, export the best
    as the bundled model in `out` with its card. The test rows are measured for the card only."""
    t_all = time.time()
    _check_choice(cfg)
    ids = built(cfg)
    if cfg.classifiers is not None:
        missing = [c for c in cfg.classifiers if c not in ids]
        if missing:
            raise BuildError(f"classifiers names {', '.join(map(repr, missing))}, not built here; built: "
                             f"{', '.join(ids) or 'none'}.")
        ids = {k: v for k, v in ids.items() if k in cfg.classifiers}
    if not any(k.startswith("fwd") for k in ids):
        raise BuildError("The forward classifier is not built yet: run `python -m ulmfit_demo.train.bundled "
                         "direction fwd` first (and `direction bwd` for the forward+backward candidates).")
    data = rows(cfg)
    trn, held, test = data["train"], data["held"], data["test"]
    y_held = held["label"].map(LABELS.index).values
    t0 = time.time()
    base, cal, z = _fit_baseline(trn, held, cfg, cfg.baseline_balance)
    base_id = models.save_baseline(
        base, name="Bundled sentiment, TF-IDF baseline", corpus=cfg.corpus, calibration=cal,
        metrics={"accuracy": float((z.argmax(1) == y_held).mean()), "n_valid": int(len(y_held))},
        extra={"preset": "bundled", "config": asdict(cfg), "train_rows": int(len(trn)),
               "balance": cfg.baseline_balance})
    base_s = time.time() - t0
    log(f"baseline (rows balanced by {cfg.baseline_balance}) fitted on the same {len(trn):,} training rows in "
        f"{base_s:.0f}s: {base_id}")

    members = {**ids, "baseline": base_id}
    if cfg.nb_baseline:
        t0 = time.time()
        nbm, nb_cal, nb_z = _fit_baseline(trn, held, cfg, cfg.baseline_balance, nb=True)
        members["nb-tfidf"] = models.save_baseline(
            nbm, name="Bundled sentiment, NB-weighted TF-IDF baseline", corpus=cfg.corpus, calibration=nb_cal,
            metrics={"accuracy": float((nb_z.argmax(1) == y_held).mean()), "n_valid": int(len(y_held))},
            extra={"preset": "bundled", "config": asdict(cfg), "train_rows": int(len(trn)),
                   "balance": cfg.baseline_balance})
        base_s += time.time() - t0
        log(f"NB-weighted baseline ({NB_BASELINE}) fitted in {time.time() - t0:.0f}s: {members['nb-tfidf']}")
    cands = candidates(list(members), cfg)
    t0 = time.time()
    p_held = {k: _probs_kept(cfg, mid, held["text"].tolist()) for k, mid in members.items()}
    ood_frame = ood.load().assign(source="ood")[["text", "label", "source"]]
    evalset = pd.concat([test, ood_frame], ignore_index=True)
    p_eval = {k: _probs_kept(cfg, mid, evalset["text"].tolist()) for k, mid in members.items()}
    eval_s = time.time() - t0
    # For the card only: the baseline with every row alike too (the yardstick before `baseline_balance`).
    other = "none" if cfg.baseline_balance != "none" else None
    if other:
        b2, cal2, z2 = _fit_baseline(trn, held, cfg, other)
        t2 = (cal2 or {}).get("temperature") or 1.0
        p_held[f"baseline-{other}"] = calibration.apply_temperature(z2, t2)
        p_eval[f"baseline-{other}"] = calibration.apply_temperature(_baseline_logits(b2, evalset["text"].tolist()), t2)

    def measured(spec: dict) -> dict:
        ph = _pool([p_held[p] for p in spec["members"]], spec["weights"], spec["rule"])
        pe = _pool([p_eval[p] for p in spec["members"]], spec["weights"], spec["rule"])
        return {**spec, "held": {**held_scores(np.log(ph + 1e-12), held, LABELS),
                                 "ece": float(calibration.ece(ph, y_held))},
                "eval": _figures(pe, evalset)}

    singles = {k: {"members": [k], "weights": [1.0], "rule": "mean"} for k in p_held if k not in cands}
    table = {name: measured(spec) for name, spec in {**cands, **singles}.items()}
    # The choice: the best mean held-out accuracy over sources, within `tie`; then the better calibrated; then fewer
    # members.
    top = max(table[c]["held"]["score"] for c in cands)
    chosen = min((c for c in cands if table[c]["held"]["score"] >= top - cfg.tie - 1e-12),
                 key=lambda c: (round(table[c]["held"]["ece"], 4), len(cands[c]["members"])))
    log("held-out (mean over sources; ECE): " + ", ".join(
        f"{c} {table[c]['held']['score']:.4f}; {table[c]['held']['ece']:.3f}" for c in table) + f" -> {chosen}")
    spec = cands[chosen]
    extra = {"build": {"chosen": chosen, "candidates": table, "config": asdict(cfg),
                       "rows": {"train": int(len(trn)), "crops": int(data["n_crops"]), "held": int(len(held)),
                                "test": int(len(test)),
                                "train_by_source": trn["source"].value_counts().to_dict()}}}
    ph = _pool([p_held[p] for p in spec["members"]], spec["weights"], spec["rule"])
    # Its out-of-domain figures by kind of sentence, as every run's classifier keeps them (`meta["judge"]["ood"]`):
    # the Sentiment page names the weak spots.
    p_ood = _pool([p_eval[p] for p in spec["members"]], spec["weights"], spec["rule"])[
        (evalset["source"] == "ood").values]
    extra["judge"] = {"ood": ood.score(lambda texts: [LABELS[i] for i in p_ood.argmax(1)])}  # same rows, same order
    acc_of = lambda p: float((p.argmax(1) == y_held).mean())  # noqa: E731
    if len(spec["members"]) == 1:
        src_id = members[spec["members"][0]]
    else:
        ens = ensemble.plan([members[p] for p in spec["members"]], "Bundled sentiment model", spec["weights"],
                            spec["rule"])
        # Measured as any ensemble is (`ensemble.evaluate`'s figures), on the held-out rows it was chosen on.
        evaluation = {"accuracy": acc_of(ph), "n": int(len(held)), "n_left_out": 0, "labels": LABELS,
                      "dataset": cfg.corpus, "split": "held-out training rows",
                      "where": f"the {len(held):,} held-out training rows of "
                               f"{', '.join(held['source'].unique())} (never trained on)",
                      "members": [{"id": m["id"], "name": m["name"], "kind": m["kind"], "weight": m["weight"],
                                   "accuracy": acc_of(p_held[p])} for m, p in zip(ens.members, spec["members"])]}
        src_id = ensemble.save(ens, evaluation, source="built", extra={"preset": "bundled", "chosen": chosen})
    # What the Models page compares: the pick and the baseline on the same held-out rows (row-level accuracy, as
    # every run's `accuracy` / `baseline_accuracy`), plus the pick's calibration there.
    extra["metrics"] = {**(models.read_meta(src_id).get("metrics") or {}), "accuracy": acc_of(ph),
                        "baseline_accuracy": acc_of(p_held["baseline"]), "n_valid": int(len(held)),
                        "held_mean_over_sources": table[chosen]["held"]["score"],
                        "ece": float(calibration.ece(ph, y_held))}
    shipped.export(src_id, Path(out), name="Bundled sentiment model", extra_meta=extra)
    card = {"built": time.strftime("%Y-%m-%d %H:%M:%S"), "chosen": chosen,
            "members": {p: members[p] for p in spec["members"]}, "weights": spec["weights"], "rule": spec["rule"],
            "config": asdict(cfg), "candidates": table, "rows": extra["build"]["rows"],
            "directions": {d: {k: v for k, v in (_state(build_dir(cfg, "fwd").parent / d) or {}).items()
                               if k != "config"} for d in ids},
            "starters": {d: {k: (starter.card(starter.folder(d == "bwd")) or {}).get(k)
                             for k in ("tokens_seen", "valid_perplexity", "train_s", "arch")} for d in DIRECTIONS},
            "baseline_fit_s": round(base_s, 1), "eval_s": round(eval_s, 1), "finish_s": round(time.time() - t_all, 1)}
    config.atomic_write(Path(out) / "card.json", json.dumps(card, indent=1, default=str))
    starter.write_manifest(Path(out), sorted(str(p.relative_to(out)) for p in Path(out).rglob("*")
                                             if p.is_file() and p.name != starter.MANIFEST))
    return card


def adopt(cfg: BundledConfig, log=print) -> dict[str, str]:
    """Put the classifiers of the bundled model the app uses (`registry.bundled_dir()`: `assets/sentiment`) into this
    build as finished directions, so that `finish` can choose among them and classifiers trained here since: a build
    lives in one machine's home, the shipped model in git. Each is imported into the model store as a copy (checked
    against its metadata, as any bundle is) and its folder gets the state its card recorded, marked `adopted`. Only a
    model built from this build's rows can join it (the card's config has the same `key`). A classifier this build
    already has is left as it is. Returns folder name -> model id of those adopted now."""
    folder = registry.bundled_dir()
    try:
        card = json.loads((folder / "card.json").read_text())
        meta = json.loads((folder / registry.META).read_text())
    except (OSError, ValueError) as e:
        raise BuildError(f"The bundled model in {folder} has no readable card.json and meta.json ({e}): there is "
                         f"nothing to adopt. Restore assets/sentiment from git, or build the classifiers here."
                         ) from None
    members = card.get("members") if isinstance(card, dict) else None
    one = [{"id": registry.BUNDLED_ID}]  # the bundled model is one classifier: its card names one member
    parts = meta.get("members") if isinstance(meta, dict) and meta.get("kind") == "ensemble" else one
    if not (isinstance(members, dict) and isinstance(card.get("config", {}), dict) and isinstance(parts, list)
            and all(isinstance(m, dict) and isinstance(m.get("id"), str) for m in parts)):
        raise BuildError(f"The bundled model's card.json or meta.json in {folder} is not what `finish` wrote (its "
                         f"members cannot be read): there is nothing to adopt. Restore assets/sentiment from git.")
    fields = BundledConfig.__dataclass_fields__
    theirs = replace(BundledConfig(), **{k: v for k, v in (card.get("config") or {}).items() if k in fields})
    if theirs.key() != cfg.key():
        diff = sorted(k for k in fields if k not in _NOT_IN_KEY
                      and json.dumps(getattr(theirs, k)) != json.dumps(getattr(cfg, k)))
        raise BuildError(f"The bundled model in {folder} was built from other rows or another recipe (build "
                         f"{theirs.key()}, this one {cfg.key()}; they differ in {', '.join(diff) or 'the card'}): its "
                         f"classifiers cannot join this build. Pass the same settings with --set, or build here.")
    names, ids = list(members), [m["id"] for m in parts]
    if len(names) != len(ids):
        raise BuildError(f"The bundled model's card names {len(names)} members and its meta.json {len(ids)}: the "
                         f"folder {folder} is not what `finish` wrote. Restore it from git.")
    root = build_dir(cfg, "fwd").parent
    out = {}
    for name, sid in zip(names, ids):
        if not re.fullmatch(r"(fwd|bwd)(-t\d+)?(-s\d+)?", name):
            continue  # a linear member: `finish` fits it again on the same rows
        st = _state(root / name)
        if st:
            what = st.get("model_id") or f"{st.get('step', 0)} epochs done, unfinished"
            log(f"{name}: already in this build ({what}), left as it is")
            continue
        rec = dict((card.get("directions") or {}).get(name) or {}, config=card.get("config"))
        mid = models.import_bundle(models.bundle_bytes(sid))
        rec.update(model_id=mid, adopted={"from": str(folder), "shipped_id": sid,
                                          "built_as": members[name], "card_built": card.get("built")})
        (root / name).mkdir(parents=True, exist_ok=True)
        _put_state(root / name, rec)
        out[name] = mid
        log(f"{name}: adopted from the bundled model ({sid}, built {card.get('built')}) as {mid}")
    return out


def _parse_sets(pairs: list[str]) -> dict:
    "`--set` pairs (`presets.parse_sets`) checked against BundledConfig's fields; lists become tuples, as it keeps them."
    try:
        out = parse_sets(pairs)
    except ConfigError as e:
        raise BuildError(str(e)) from None
    fields = BundledConfig.__dataclass_fields__
    for k, v in out.items():
        if k not in fields:
            raise BuildError(f"Unknown setting {k!r}: use one of {', '.join(fields)}.")
        if isinstance(v, list):
            out[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v)
    return out


def main(argv=None) -> int:
    """python -m ulmfit_demo.train.bundled {direction fwd|bwd, finish, adopt}: rebuild the bundled sentiment model
    (hours on 2 cores: run both directions at once, one thread each, then finish); adopt takes the shipped model's
    classifiers into this machine's build, to choose among them and new ones."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("what", choices=["direction", "finish", "adopt"])
    ap.add_argument("direction", nargs="?", choices=DIRECTIONS)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a BundledConfig field")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--restart", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--time-limit-s", type=float, default=None)
    ap.add_argument("--train-seed", type=int, default=None,
                    help="another training seed for the direction (same rows): finish averages every seed built")
    ap.add_argument("--out", default=str(registry.BUNDLED_DIR))
    a = ap.parse_args(argv)
    log = lambda m: print(m, flush=True)  # noqa: E731
    try:
        cfg = replace(BundledConfig(), **_parse_sets(a.set))
        if a.what == "direction":
            if not a.direction:
                raise BuildError("Name the direction: `direction fwd` or `direction bwd`.")
            st = train_direction(cfg, a.direction, resume=a.resume, restart=a.restart, threads=a.threads,
                                 time_limit_s=a.time_limit_s, train_seed=a.train_seed, log=log)
            print(json.dumps({k: st.get(k) for k in ("direction", "step", "best", "model_id", "train_s")}))
        elif a.what == "adopt":
            got = adopt(cfg, log=log)
            print(json.dumps({"adopted": got, "built": built(cfg)}))
        else:
            card = finish(cfg, Path(a.out), log=log)
            print(json.dumps({"chosen": card["chosen"], "candidates": {
                c: {"held": v["held"]["score"], **{s: f["accuracy"] for s, f in v["eval"].items()}}
                for c, v in card["candidates"].items()}}))
    except (BuildError, starter.StarterError, models.ModelError, corpora.CorpusError) as e:
        print(f"error: {e}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
