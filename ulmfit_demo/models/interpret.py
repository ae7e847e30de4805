"""How a classifier does on a corpus's validation rows: a confusion matrix and its most confident mistakes, as
fastai's `ClassificationInterpretation.plot_confusion_matrix` and `top_losses` show them."""
import math
from dataclasses import dataclass, field

import pandas as pd

from ulmfit_demo.data import corpora, labels
from ulmfit_demo.models import kinds

# Validation rows scored at most: IMDb's 25,000 would take minutes on a CPU; a seeded sample says the same.
MAX_DOCS = 2000


@dataclass
class Interpretation:
    model_id: str
    corpus: str
    labels: list[str]
    confusion: pd.DataFrame  # rows: actual label, columns: predicted label, cells: counts
    mistakes: pd.DataFrame  # text, actual, predicted, confidence (p of predicted), loss (-log p of actual)
    accuracy: float
    n_docs: int
    n_valid: int  # validation rows in the corpus (n_docs < n_valid when sampled)
    notes: list[str] = field(default_factory=list)


def interpret(model, corpus: corpora.Corpus, max_docs: int = MAX_DOCS, top: int = 10, seed: int = 0,
              progress=None) -> Interpretation:
    """Score the validation rows of `corpus` (`corpora.classifier_frame`) with a classifier model. `progress(done,
    total)` as in `inference.predict_batch`."""
    r = kinds.open(model).require(kinds.CLASSIFY)
    df = corpora.classifier_frame(corpus)
    valid = df[df["is_valid"]]
    # The corpus's labels in the model's own names (a model stored with neg/pos judged on negative/positive rows).
    to_model = {labels.canonical(lab): lab for lab in r.labels}
    valid = valid.assign(label=valid["label"].map(lambda lab: to_model.get(labels.canonical(lab), lab)))
    n_valid = len(valid)
    notes = []
    unknown = sorted(set(valid["label"]) - set(r.labels))
    if unknown:
        notes.append(f"{int(valid['label'].isin(unknown).sum())} rows have labels the model does not know "
                     f"({', '.join(unknown)}) and were left out.")
        valid = valid[~valid["label"].isin(unknown)]
    if valid.empty:
        raise corpora.CorpusError(f"{corpus.name!r} has no validation rows with the labels this model predicts "
                                   f"({', '.join(r.labels)}): pick the corpus the model was trained on.")
    if len(valid) > max_docs:
        valid = valid.sample(n=max_docs, random_state=seed)
        notes.append(f"A seeded sample of {max_docs:,} of the {n_valid:,} validation reviews was scored.")
    preds = r.predict_batch(valid["text"].tolist(), progress)
    out = valid[["text", "label"]].rename(columns={"label": "actual"}).reset_index(drop=True)
    out["predicted"] = [p["label"] for p in preds]
    out["confidence"] = [p["probs"].get(p["label"], math.nan) if p["label"] else math.nan for p in preds]
    out["loss"] = [-math.log(max(p["probs"].get(a, 0.0), 1e-12)) if p["label"] else math.nan
                   for p, a in zip(preds, out["actual"])]
    scored = out.dropna(subset=["predicted"])
    conf = pd.crosstab(pd.Categorical(scored["actual"], categories=r.labels),
                       pd.Categorical(scored["predicted"], categories=r.labels), dropna=False)
    conf.index.name, conf.columns.name = "actual", "predicted"
    wrong = scored[scored["actual"] != scored["predicted"]].sort_values("loss", ascending=False)
    return Interpretation(model_id=r.id, corpus=corpus.name, labels=list(r.labels), confusion=conf,
                          mistakes=wrong.head(top).reset_index(drop=True),
                          accuracy=float((scored["actual"] == scored["predicted"]).mean()) if len(scored) else 0.0,
                          n_docs=len(scored), n_valid=n_valid, notes=notes)
