"""The bundled sentiment classifier (`--model bundled`): ULMFiT stage 3 from the starter language model, once, here.

The starter LM already read every IMDb review (labels unused), so stage 2 (LM fine-tuning on the target corpus) is
folded into it. This module fine-tunes a classifier on IMDb's 25k labelled training reviews with the seeds' recipe
at the starter's size: the head first, then the last layer group, then everything, with discriminative learning
rates `slice(lr / 2.6**4, lr)`. A seeded 10% of the training reviews is held out: the temperature is fitted there
and the card's validation figures come from there; IMDb's 25k test reviews are only measured, never tuned on.

Reviews are long and the model has only seen whole reviews, so a one-line input looked like nothing it knew (a
length bias: most short sentences came out positive). Some training rows are therefore short crops of a review (1
to 2 of its sentences) carrying the review's label. Long reviews are cut to their last `max_tokens` tokens to keep
an epoch affordable on a CPU (the verdict of a review is mostly at its end; prediction still reads the whole text).
"""
import argparse
import json
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ulmfit_demo import config, models
from ulmfit_demo.data import corpora
from ulmfit_demo.judge import baseline, calibration, report
from ulmfit_demo.models import registry, starter
from ulmfit_demo.train import evaluate
from ulmfit_demo.train import stages as training
from ulmfit_demo.train.presets import Config


@dataclass(frozen=True)
class BundledConfig:
    valid_pct: float = 0.1  # held out of IMDb's training reviews: temperature fitting and validation figures
    max_tokens: int = 320  # a training review is cut to its last this many tokens
    crop_frac: float = 0.3  # this share of training reviews also gives a short crop (1-2 sentences) with its label
    bs: int = 64
    clas_seq_len: int = 72
    drop_mult: float = 0.5
    phases: tuple = ((-1, 1, 2e-2), (-2, 1, 1e-2), (0, 1, 5e-3))  # (freeze_to, epochs, top LR): gradual unfreezing
    lr_div: float = 2.6**4
    max_train_docs: int | None = None  # tests: a small sample
    max_test_docs: int | None = None
    threads: int = 2
    seed: int = 42


LABELS = {"neg": "negative", "pos": "positive"}
_SENT = re.compile(r"(?<=[.!?])\s+")


def crops(texts: list[str], labels: list[str], frac: float, seed: int) -> pd.DataFrame:
    "Short crops (one or two consecutive sentences of a review, 3+ words) with the review's label."
    rng = np.random.RandomState(seed)
    rows = []
    for t, lab in zip(texts, labels):
        if rng.rand() >= frac:
            continue
        sents = [s for s in _SENT.split(re.sub(r"<br\s*/?>", " ", t)) if len(s.split()) >= 3]
        if not sents:
            continue
        i = rng.randint(len(sents))
        rows.append((" ".join(sents[i:i + 1 + rng.randint(2)]), lab))
    return pd.DataFrame(rows, columns=["text", "label"])


def build(starter_dir: Path, home_out: Path, cfg: BundledConfig = BundledConfig(), docs: pd.DataFrame | None = None,
          log=print) -> dict:
    """Train the classifier; returns what the card needs plus `model_id` (saved in the current model store) and the
    held-out/test logits (`valid_logits`, `test_logits`, with their labels) for calibration and figures."""
    import torch
    from fastai.torch_core import set_seed

    torch.set_num_threads(cfg.threads)
    t_all = time.time()
    lm_state, vocab, sp_model, scard = starter.load(starter_dir)
    arch = scard["arch"]
    if docs is None:
        docs = corpora.load("imdb").df
    # One spelling of the verdicts across the app's models and the out-of-domain set.
    lab = docs[docs["label"] != ""].assign(label=lambda d: d["label"].replace(LABELS))
    train = lab[lab["split"] == "train"]
    test = lab[lab["split"] == "test"]
    if cfg.max_train_docs:
        train = train.sample(n=min(cfg.max_train_docs, len(train)), random_state=cfg.seed)
    if cfg.max_test_docs:
        test = test.sample(n=min(cfg.max_test_docs, len(test)), random_state=cfg.seed)
    rng = np.random.RandomState(cfg.seed)
    is_valid = rng.rand(len(train)) < cfg.valid_pct
    trn, val = train[~is_valid], train[is_valid]
    cr = crops(trn["text"].tolist(), trn["label"].tolist(), cfg.crop_frac, cfg.seed)
    log(f"{len(trn):,} training reviews + {len(cr):,} crops, {len(val):,} held out, {len(test):,} test reviews")

    tok = training.Tok("subword", Path(sp_model))
    t0 = time.time()
    tr_df = pd.concat([trn[["text", "label"]], cr], ignore_index=True)
    tr_toks = [ts[:1] + ts[1:][-cfg.max_tokens:] for ts in tok.tokenize(tr_df["text"].tolist())]
    va_toks = tok.tokenize(val["text"].tolist())
    te_toks = tok.tokenize(test["text"].tolist())
    log(f"tokenized in {time.time() - t0:.0f}s; mean training length {np.mean(list(map(len, tr_toks))):.0f} tokens")

    rc = Config(tokenizer="subword", emb_sz=arch["emb_sz"], n_hid=arch["n_hid"], n_layers=arch["n_layers"],
                bs=cfg.bs, clas_seq_len=cfg.clas_seq_len, drop_mult_clas=cfg.drop_mult, lr_div=cfg.lr_div,
                clas_phases=tuple({"freeze_to": f, "epochs": e, "lr": lr} for f, e, lr in cfg.phases),
                pretrained="none", seed=cfg.seed)
    df = pd.DataFrame({"tokens": tr_toks + va_toks, "label": list(tr_df["label"]) + list(val["label"]),
                       "is_valid": [False] * len(tr_toks) + [True] * len(va_toks)})
    set_seed(cfg.seed, reproducible=True)
    dls = training.clas_dls(df, vocab, rc, "cpu")
    learn = training.clas_learner(dls, rc, Path(home_out) / "work", starter.encoder_of(lm_state))
    rows = []
    learn.logger = lambda row: (rows.append(list(row)), log("  ".join(
        f"{v:.4f}" if isinstance(v, float) else str(v) for v in row)))
    t0 = time.time()
    training.fit_phases(learn, training.clas_phases(rc))
    train_s = time.time() - t0
    log(f"trained in {train_s / 60:.1f} min")

    t0 = time.time()
    labels = [str(c) for c in dls.vocab[1]]
    va_logits = evaluate.clas_logits(learn, va_toks)
    te_logits = evaluate.clas_logits(learn, te_toks)
    eval_s = time.time() - t0
    va_y = np.array([labels.index(v) for v in val["label"]])
    te_y = np.array([labels.index(v) for v in test["label"]])

    def probs(texts):
        z = evaluate.clas_logits(learn, tok.tokenize(texts))
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    judged = report.judge(labels=labels, valid_logits=va_logits, valid_y=va_y, valid_texts=val["text"].tolist(),
                          train_texts=trn["text"].tolist(), train_labels=trn["label"].tolist(),
                          predict_probs=probs, seed=cfg.seed)
    T = judged["calibration"]["temperature"]
    # The card's yardstick: the baseline fitted on all 25k training reviews, on the same test reviews.
    t0 = time.time()
    base = baseline.fit(train["text"].tolist(), train["label"].tolist(), seed=cfg.seed)
    base_s = time.time() - t0
    base_test = float(np.mean([p == t for p, t in zip(base.predict(test["text"].tolist()), test["label"])]))
    te_p = calibration.apply_temperature(te_logits, T)
    test_fig = {"accuracy": float((te_logits.argmax(1) == te_y).mean()), "baseline_accuracy": base_test,
                "ece": calibration.ece(te_p, te_y), "ece_uncalibrated": calibration.ece(
                    calibration.apply_temperature(te_logits, 1.0), te_y), "n": int(len(te_y)),
                "baseline_fit_s": round(base_s, 1), "baseline_train_reviews": int(len(train))}
    metrics = dict(judged["metrics"], test_accuracy=test_fig["accuracy"],
                   test_baseline_accuracy=base_test, test_ece=test_fig["ece"])
    log(f"valid {metrics['accuracy']:.4f} (baseline {metrics['baseline_accuracy']:.4f}); test {test_fig['accuracy']:.4f}"
        f" (baseline on 25k {base_test:.4f}); ECE test {test_fig['ece_uncalibrated']:.4f} -> {test_fig['ece']:.4f} "
        f"(T {T:.2f}); OOD {metrics.get('ood_accuracy')}")
    model_id = models.save_learner(
        learn, kind="classifier", name="Bundled IMDb sentiment (starter LM)", corpus="imdb",
        arch=training.arch_meta(rc, "clas"), tokenizer=tok.meta, metrics=metrics,
        extra={"stage": "clas", "preset": "bundled", "config": asdict(cfg), "start": "starter"},
        calibration=judged["calibration"], judge={"ood": judged.get("ood"), "test": test_fig})
    return {"model_id": model_id, "labels": labels, "config": asdict(cfg), "epochs": rows, "metrics": metrics,
            "test": test_fig, "ood": judged.get("ood"), "calibration": {k: v for k, v in judged["calibration"].items()
                                                                       if not k.startswith("reliability")},
            "n_train": len(trn), "n_crops": len(cr), "n_valid": len(val), "n_test": len(test),
            "train_s": round(train_s, 1), "eval_s": round(eval_s, 1), "total_s": round(time.time() - t_all, 1),
            "starter": {k: scard.get(k) for k in ("tokens_seen", "valid_perplexity", "train_s")}}


def export(model_id: str, out: Path) -> Path:
    """Copy a stored classifier into `out` as the bundled model: the same files and format as the store, id
    "bundled", plus a manifest of hashes checked before every load."""
    src = registry.models_dir() / registry._check_id(model_id)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    meta = json.loads((src / registry.META).read_text())
    meta.update(id=registry.BUNDLED_ID, source="bundled", run_id=None)
    files = [registry.WEIGHTS, registry.SPM]
    for f in files:
        shutil.copyfile(src / f, tmp / f)
    config.atomic_write(tmp / registry.META, json.dumps(meta, indent=1))
    starter.write_manifest(tmp, files + [registry.META])
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return out


def main(argv=None) -> int:
    "python -m ulmfit_demo.train.bundled [--out assets/sentiment]: rebuild the bundled model (about an hour on 2 cores)."
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--out", default=str(registry.BUNDLED_DIR))
    ap.add_argument("--starter", default=str(starter.folder()))
    ap.add_argument("--max-train-docs", type=int, default=None)
    ap.add_argument("--max-test-docs", type=int, default=None)
    a = ap.parse_args(argv)
    cfg = BundledConfig(max_train_docs=a.max_train_docs, max_test_docs=a.max_test_docs)
    res = build(Path(a.starter), config.home(), cfg, log=lambda m: print(m, flush=True))
    export(res["model_id"], Path(a.out))
    res["built"] = time.strftime("%Y-%m-%d %H:%M:%S")
    (Path(a.out) / "card.json").write_text(json.dumps(res, indent=1, default=str))
    print(json.dumps({k: res[k] for k in ("metrics", "test", "train_s", "total_s")}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
