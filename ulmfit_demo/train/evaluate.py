"""A classifier judged right after training, on the app's own prediction path: its raw outputs on tokenized texts
(`clas_logits`, exactly as `predict` computes them, so the figures a run reports are the ones a user gets) and the
full report (`judge_learner`: baseline on the same split, calibration, out-of-domain sentences; see `judge.report`).
"""
import numpy as np

from ulmfit_demo.judge import report
from ulmfit_demo.models.awd import concat_pool, encode, pad_batch


def clas_logits(learn, toks: list[list[str]], backwards: bool = False, bs: int = 64):
    """Raw classifier outputs (numpy, one row per text, input order) for tokenized texts, computed exactly as the
    app's `predict` computes them (models.awd: batches that never change a text's verdict), so the figures a
    run reports are the ones a user gets. Used to judge a classifier right after training."""
    import torch

    o2i = {w: i for i, w in enumerate(learn.dls.vocab[0])}
    unk = o2i.get("xxunk", 0)
    seqs = [([o2i.get(t, unk) for t in ts] or [unk]) for ts in toks]
    if backwards:
        seqs = [s[::-1] for s in seqs]
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    out = np.zeros((len(seqs), len(learn.dls.vocab[1])), dtype=np.float32)
    model = learn.model
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    try:
        with torch.no_grad():
            for k in range(0, len(order), bs):
                idx = order[k:k + bs]
                x, starts = pad_batch([seqs[i] for i in idx], model[0].pad_idx, model[0].bptt)
                enc_out, mask = encode(model[0], x.to(dev), starts)
                out[idx] = model[1].layers(concat_pool(enc_out, mask)).float().cpu().numpy()
    finally:
        model.reset()
        model.train(was_training)
    return out


def judge_learner(learn, frame, tok, backwards: bool = False, seed: int = 0) -> dict:
    """`judge.report.judge` for a trained classifier Learner. `frame` is the run's classifier frame (`text`, `label`,
    `tokens`, `is_valid`); the baseline is fitted on its training rows and everything is measured on its valid rows."""
    val, trn = frame[frame["is_valid"]], frame[~frame["is_valid"]]
    labels = [str(c) for c in learn.dls.vocab[1]]
    logits = clas_logits(learn, val["tokens"].tolist(), backwards)
    y = np.array([labels.index(str(v)) for v in val["label"]])

    def probs(texts):
        z = clas_logits(learn, tok.tokenize(texts), backwards)
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    return report.judge(labels=labels, valid_logits=logits, valid_y=y, valid_texts=val["text"].tolist(),
                        train_texts=trn["text"].tolist(), train_labels=[str(v) for v in trn["label"]],
                        predict_probs=probs, seed=seed)


def summary(m: dict, n_train: int) -> str:
    "One sentence a person can read: the classifier beside the baseline, its calibration, out-of-domain accuracy."
    msg = (f"Accuracy {m['accuracy']:.1%} vs {m['baseline_accuracy']:.1%} for a TF-IDF + logistic-regression "
           f"baseline fitted on the same {n_train:,} texts and judged on the same {m['n_valid']:,}.")
    msg += report.calibration_words(m)
    if "ood_accuracy" in m:
        msg += (f" Out-of-domain sentences: {m['ood_accuracy']:.1%} (baseline {m['baseline_ood_accuracy']:.1%}); "
                f"{m['ood_positive_rate']:.0%} of them called positive.")
    return msg
