"""Calibration: expected calibration error, reliability diagrams and temperature scaling (Guo et al., 2017).

Everything works on plain numpy arrays: `probs` (n, k) rows summing to one, `logits` (n, k), `labels` (n,) integer
column indices. Bins are equal-width over the top-class confidence, each bin `(lo, hi]`."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

T_MIN, T_MAX = 0.05, 20.0  # separable data drives the NLL optimum to T -> 0; clamp so the result stays usable


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels).astype(np.int64).ravel()
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ValueError(f"expected (n, k) scores and n labels, got {probs.shape} and {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(f"labels must be column indices in [0, {probs.shape[1]})")
    return probs, labels


def _bins(conf: np.ndarray, n_bins: int) -> np.ndarray:
    "Bin index of each confidence: bin b holds (b/n_bins, (b+1)/n_bins]; a confidence of 0 goes to bin 0."
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], conf, side="left")


def reliability(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> pd.DataFrame:
    "One row per bin: `bin_lo, bin_hi, count, confidence` (mean top-class probability), `accuracy`; NaN when empty."
    probs, labels = _check(probs, labels)
    conf, correct = probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(np.float64)
    b = _bins(conf, n_bins)
    count = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(b, weights=conf, minlength=n_bins) / count
        acc = np.bincount(b, weights=correct, minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame({"bin_lo": edges[:-1], "bin_hi": edges[1:], "count": count.astype(int),
                         "confidence": mean_conf, "accuracy": acc})


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    "Expected calibration error: sum over bins of (bin size / n) x |accuracy - mean confidence|."
    r = reliability(probs, labels, n_bins)
    n = r["count"].sum()
    if n == 0:
        return float("nan")
    r = r[r["count"] > 0]
    return float((r["count"] / n * (r["accuracy"] - r["confidence"]).abs()).sum())


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def nll(logits: np.ndarray, labels: np.ndarray, T: float = 1.0) -> float:
    "Mean negative log-likelihood of `labels` under softmax(logits / T)."
    logits, labels = _check(logits, labels)
    if not len(labels):
        return float("nan")
    return float(-_log_softmax(logits / T)[np.arange(len(labels)), labels].mean())


def apply_temperature(logits: np.ndarray, T: float) -> np.ndarray:
    "softmax(logits / T)."
    return np.exp(_log_softmax(np.asarray(logits, dtype=np.float64) / float(T)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] minimising NLL of softmax(logits / T); 1.0 when there is nothing to fit.

    NLL is convex in 1/T, hence unimodal in log T: a golden-section search on log T finds the optimum (or the clamp,
    for separable data where it lies at T -> 0) without gradients, whatever n is."""
    logits, labels = _check(logits, labels)
    if not len(labels) or logits.shape[1] < 2:
        return 1.0
    f = lambda u: nll(logits, labels, math.exp(u))  # noqa: E731
    a, b = math.log(T_MIN), math.log(T_MAX)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    while b - a > 1e-6:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    u = (a + b) / 2
    # the ends are candidates too: a flat or monotone NLL must return the clamp exactly
    best = min((f(x), x) for x in (u, math.log(T_MIN), math.log(T_MAX), 0.0))
    return float(min(max(math.exp(best[1]), T_MIN), T_MAX))


def cross_fit(logits: np.ndarray, labels: np.ndarray, n_folds: int = 2, seed: int = 0, n_bins: int = 15) -> dict:
    """Temperature scaling judged on data it was not fitted on.

    The validation set is shuffled (seeded) into `n_folds` folds, stratified by label. For each fold, T is fitted on
    the other folds and ECE/NLL are measured on this fold, before and after scaling; the figures are the means over
    folds, so `ece` and `ece_uncalibrated` are measured on exactly the same held-out rows and are comparable. The
    returned `temperature` is fitted on ALL rows: it is what the saved model uses, and its own ECE would be optimistic,
    which is why it is not reported.

    Returns `{"temperature", "ece", "ece_uncalibrated", "nll", "nll_uncalibrated", "n", "n_folds",
    "fold_temperatures"}`."""
    logits, labels = _check(logits, labels)
    n = len(labels)
    if n_folds < 2:
        raise ValueError("cross_fit needs n_folds >= 2: ECE must be measured on rows T was not fitted on")
    if n < n_folds:
        raise ValueError(f"cross_fit needs at least {n_folds} validation rows, got {n}")
    rng = np.random.default_rng(seed)
    fold = np.empty(n, dtype=np.int64)
    # stratified: deal each label's shuffled rows round-robin, starting where the previous label stopped
    start = 0
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        fold[idx] = (start + np.arange(len(idx))) % n_folds
        start = (start + len(idx)) % n_folds
    res = {"ece": [], "ece_uncalibrated": [], "nll": [], "nll_uncalibrated": [], "fold_temperatures": []}
    for k in range(n_folds):
        test, train = fold == k, fold != k
        if not test.any() or not train.any():
            continue
        T = fit_temperature(logits[train], labels[train])
        res["fold_temperatures"].append(T)
        res["ece"].append(ece(apply_temperature(logits[test], T), labels[test], n_bins))
        res["ece_uncalibrated"].append(ece(apply_temperature(logits[test], 1.0), labels[test], n_bins))
        res["nll"].append(nll(logits[test], labels[test], T))
        res["nll_uncalibrated"].append(nll(logits[test], labels[test], 1.0))
    out = {k: float(np.mean(v)) for k, v in res.items() if k != "fold_temperatures"}
    return {"temperature": fit_temperature(logits, labels), **out, "n": int(n), "n_folds": int(n_folds),
            "fold_temperatures": res["fold_temperatures"]}
