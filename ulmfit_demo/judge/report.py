"""One classifier judged as an ML engineer would, in one call: accuracy beside the TF-IDF baseline fitted on the
same split, expected calibration error before and after temperature scaling (held-out protocol, see
`calibration.cross_fit`; the temperature applied only where it helped there), a reliability table, and accuracy on
the app's out-of-domain sentences.

Used by the training job after every classifier stage and by the bundled model's build: the figures land in the
model's metadata (`meta["judge"]`) and its temperature in `meta["calibration"]`, where inference applies it.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ulmfit_demo.judge import baseline, calibration, ood

# Label spellings read as a two-way sentiment, so models of any corpus can be scored on the OOD set.
_POS = {"pos", "positive", "1", "good", "yes", "true"}
_NEG = {"neg", "negative", "0", "bad", "no", "false"}


def sentiment_map(labels: list[str]) -> dict | None:
    "`{model label: 'positive'|'negative'}` when the labels are a positive/negative pair, else None."
    if len(labels) != 2:
        return None
    m = {}
    for lab in labels:
        low = str(lab).strip().lower()
        m[lab] = "positive" if low in _POS else "negative" if low in _NEG else None
    return m if sorted(m.values(), key=str) == ["negative", "positive"] else None


def cross_fitted_probs(logits: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
    "Each row scaled by a temperature fitted on the other half: probabilities that were not fitted on themselves."
    idx = np.random.default_rng(seed).permutation(len(y))
    halves = (idx[: len(y) // 2], idx[len(y) // 2:])
    out = np.empty_like(logits, dtype=np.float64)
    for a, b in (halves, halves[::-1]):
        T = calibration.fit_temperature(logits[b], y[b]) if len(b) else 1.0
        out[a] = calibration.apply_temperature(logits[a], T)
    return out


def _table(df) -> list[dict]:
    return [{k: (None if v != v else float(v)) for k, v in r.items()} for r in df.to_dict("records")]


def calibrate(logits: np.ndarray, y: np.ndarray, seed: int = 0) -> dict | None:
    """Temperature scaling judged on held-out halves (`calibration.cross_fit`) plus reliability tables before and
    after (cross-fitted): what a model's metadata keeps under `calibration`. None for fewer than 4 rows.

    The temperature is applied (`temperature`, what predictions use) only where it lowered the ECE measured on rows
    it was not fitted on (`applied`): on a small validation set a fitted T can make calibration worse, and a model
    must not ship a correction that was measured to hurt. `ece` is then the ECE of the probabilities as used; the
    temperature tried and its ECE stay on record (`fitted_temperature`, `ece_temperature`)."""
    if len(y) < 4:
        return None
    cal = calibration.cross_fit(logits, y, seed=seed)
    applied = cal["ece"] < cal["ece_uncalibrated"]
    before = calibration.reliability(calibration.apply_temperature(logits, 1.0), y)
    after = calibration.reliability(cross_fitted_probs(logits, y, seed), y) if applied else None
    return {"temperature": cal["temperature"] if applied else 1.0, "applied": applied,
            "fitted_temperature": cal["temperature"], "ece": cal["ece"] if applied else cal["ece_uncalibrated"],
            "ece_uncalibrated": cal["ece_uncalibrated"], "ece_temperature": cal["ece"], "n": cal["n"],
            "reliability_uncalibrated": _table(before), "reliability": _table(after) if applied else None,
            "protocol": "temperature fitted on one half of the validation set, ECE measured on the other half, "
                        "and the reverse; 15 equal-width bins; applied only where it lowered that ECE"}


def calibration_metrics(cal: dict | None) -> dict:
    """The flat figures of `calibrate`'s result for a run's metrics: `ece` (as used), `ece_uncalibrated`,
    `temperature` (as used), and where the temperature was not applied, the one tried and its ECE."""
    if not cal:
        return {}
    out = {"ece": cal["ece"], "ece_uncalibrated": cal["ece_uncalibrated"], "temperature": cal["temperature"]}
    if cal.get("applied") is False:
        out.update(temperature_tried=cal["fitted_temperature"], ece_temperature=cal["ece_temperature"])
    return out


def calibration_words(m: dict) -> str:
    "`calibration_metrics` in one sentence (with a leading space), or '' when calibration was not measured."
    if not isinstance(m.get("ece"), (int, float)):
        return ""
    if isinstance(m.get("temperature_tried"), (int, float)):
        return (f" Calibration error (ECE) {m['ece_uncalibrated']:.3f}; temperature scaling (T = "
                f"{m['temperature_tried']:.2f}) was left off: on held-out halves it made that worse "
                f"({m['ece_temperature']:.3f}).")
    return (f" Calibration error (ECE) {m['ece_uncalibrated']:.3f} -> {m['ece']:.3f} after temperature scaling "
            f"(T = {m['temperature']:.2f}).")


def judge(*, labels: list[str], valid_logits: np.ndarray, valid_y: np.ndarray, valid_texts: list[str],
          train_texts: list[str], train_labels: list[str], predict_probs: Callable[[list[str]], np.ndarray],
          seed: int = 0) -> dict:
    """`metrics` (flat numbers for the run's summary), `calibration` (temperature + reliability tables for the model's
    metadata) and `ood` (by domain/phenomenon). `predict_probs(texts)` scores new texts with the model."""
    logits = np.asarray(valid_logits, dtype=np.float64)
    y = np.asarray(valid_y)
    acc = float((logits.argmax(1) == y).mean())
    base = baseline.fit(train_texts, train_labels, seed=seed)
    base_pred = base.predict(valid_texts)
    truth = [labels[i] for i in y]
    base_acc = float(np.mean([p == t for p, t in zip(base_pred, truth)]))
    metrics = {"accuracy": acc, "baseline_accuracy": base_acc, "n_valid": int(len(y))}
    out = {"metrics": metrics, "baseline": base}
    cal = calibrate(logits, y, seed)
    if cal is not None:
        metrics.update(calibration_metrics(cal))
        out["calibration"] = cal
    smap = sentiment_map(labels)
    if smap is not None:
        res = ood.score(lambda texts: [smap[labels[i]] for i in np.asarray(predict_probs(texts)).argmax(1)])
        base_ood = ood.score(lambda texts: [smap[p] for p in base.predict(texts)])
        metrics.update(ood_accuracy=res["ood_accuracy"], ood_positive_rate=res["positive_rate"],
                       baseline_ood_accuracy=base_ood["ood_accuracy"])
        out["ood"] = res
    return out
