"""The app's out-of-domain set: short everyday sentences (films, products, restaurants, services, books/music) written
by hand for this project, labelled `positive`/`negative`. A test set: nothing is ever tuned on it.
See assets/ood/README.md for how it was written."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

CSV = Path(__file__).resolve().parents[2] / "assets" / "ood" / "sentences.csv"
LABELS = ("negative", "positive")


def load() -> pd.DataFrame:
    "The OOD sentences: columns `text, label, domain, phenomenon`."
    if not CSV.is_file():
        raise ValueError(f"the out-of-domain set {CSV} is missing; restore assets/ood/ from the repository")
    df = pd.read_csv(CSV, dtype=str, keep_default_na=False)
    missing = {"text", "label", "domain", "phenomenon"} - set(df.columns)
    if missing:
        raise ValueError(f"{CSV} lacks columns {sorted(missing)}; restore assets/ood/ from the repository")
    return df


def score(predict_labels: Callable[[list[str]], list[str]], df: pd.DataFrame | None = None) -> dict:
    """Judge any predictor (texts -> labels) on the OOD set: overall accuracy, accuracy by domain and by phenomenon,
    and the share of sentences predicted positive (a model that says `positive` to everything is caught here).

    A predictor answering anything other than `positive`/`negative` raises `ValueError`: the OOD set only makes sense
    for a two-way sentiment model with those label names."""
    df = load() if df is None else df
    texts = df["text"].tolist()
    pred = [str(p) for p in predict_labels(texts)]
    if len(pred) != len(texts):
        raise ValueError(f"the predictor returned {len(pred)} labels for {len(texts)} texts")
    unknown = sorted(set(pred) - set(LABELS))
    if unknown:
        raise ValueError(f"the predictor answered {unknown}, but the out-of-domain set is labelled "
                         f"{list(LABELS)}: it only judges a positive/negative sentiment model")
    d = df.assign(pred=pred, correct=[p == t for p, t in zip(pred, df["label"])])
    by = lambda col: {k: float(g["correct"].mean()) for k, g in d.groupby(col, sort=True)}  # noqa: E731
    return {"ood_accuracy": float(d["correct"].mean()), "n": int(len(d)), "by_domain": by("domain"),
            "by_phenomenon": by("phenomenon"), "positive_rate": float((d["pred"] == "positive").mean())}
