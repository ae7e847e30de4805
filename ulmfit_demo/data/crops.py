"""Short crops of labelled texts: one or two consecutive sentences of a longer review, with the review's label.

A classifier trained only on whole reviews has never seen a one-line input, and on one ("Best pizza in town!") it
answers from whatever a review's first words usually lead to. Adding some crops of the training texts to the
classifier's training rows shows it short texts with the same labels, at no new labelling cost. The bundled build
(`train.bundled`) and the classifier stage of a run (`Config.clas_crops`) both use this. Pure Python and pandas.
"""
import re

import numpy as np
import pandas as pd

_SENT = re.compile(r"(?<=[.!?])\s+")
_BR = re.compile(r"<br\s*/?>")


def crops(texts: list[str], labels: list[str], frac: float, seed: int) -> pd.DataFrame:
    """`text`/`label` rows: for about `frac` of the texts with 2+ sentences of 3+ words, one crop of one or two
    consecutive such sentences with the text's label. The same texts, `frac` and `seed` give the same crops."""
    rng = np.random.RandomState(seed)
    rows = []
    for t, lab in zip(texts, labels):
        sents = [s for s in _SENT.split(_BR.sub(" ", t)) if len(s.split()) >= 3]
        if len(sents) < 2 or rng.rand() >= frac:
            continue
        i = rng.randint(len(sents))
        rows.append((" ".join(sents[i:i + 1 + rng.randint(2)]), lab))
    return pd.DataFrame(rows, columns=["text", "label"])
