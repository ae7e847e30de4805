"""The TF-IDF + logistic-regression baseline as a model kind (`Baseline`): the yardstick every classifier is judged
beside (`judge.baseline` fits it), stored and used like any classifier.

It reads raw text with its own TF-IDF vectorizer: no fastai tokenizer, no hidden state, so no lock is needed. Its
verdicts are scaled by the temperature fitted when it was judged, as an AWD-LSTM's are; its word scores are its
linear weights, on a logit scale.
"""
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from ulmfit_demo.judge import baseline, calibration
from ulmfit_demo.models import kinds
from ulmfit_demo.models.checks import baseline_files, load_baseline_checked
from ulmfit_demo.models.kinds import BUNDLE_README, CLASSIFY, Stored, blank_rows, check_text, register, verdict
from ulmfit_demo.models.registry import META, ModelError, model_folder, models_dir
from ulmfit_demo.models.store import _save_baseline

ATTRIBUTION_METHOD = ("Linear weights: each word's score is its share of the TF-IDF x logistic-regression "
                      "weight behind the verdict (a two-word phrase's weight is split between its two "
                      "words); words the baseline never saw in training score 0.")


@register
class Baseline(Stored):
    kind = "baseline"
    tasks = frozenset({CLASSIFY})
    what = "a TF-IDF baseline"
    noun = "TF-IDF baseline"
    no_fastai_export = ("A baseline has no fastai export: it is scikit-learn (TF-IDF + logistic regression), not a "
                        "fastai model. Its bundle's README shows how to use it with numpy and scikit-learn.")

    def cannot(self, task):
        if task != CLASSIFY:
            return f"Model {self.name!r} is a TF-IDF baseline: a baseline cannot generate text. Pick a language model."
        return super().cannot(task)

    def probs(self, texts: list[str]):
        "(n, k) probabilities, scaled by the temperature fitted when the baseline was judged. Thread-safe."
        temp = float((self.meta.get("calibration") or {}).get("temperature") or 1.0)
        return calibration.apply_temperature(self.loaded.model.logits(texts), temp)

    def _words(self, text: str) -> list:
        "The words the baseline reads in `text` (regex matches of its TF-IDF token pattern)."
        return list(re.finditer(self.loaded.model.vectorizer.token_pattern, text))

    def predict(self, text):
        text, cut = check_text(text)
        p = self.probs([text])[0]
        return {**verdict(self.labels, p), "n_tokens": len(self._words(text)), "truncated": cut}

    def predict_batch(self, texts, progress=None):
        todo, kept, results = blank_rows(texts)
        step = kinds.PROGRESS_STEP if progress else max(len(kept), 1)
        probs: list = []
        for k in range(0, len(kept), step):
            probs.extend(self.probs(kept[k:k + step]))
            if progress:
                progress(min(k + step, len(kept)), len(kept))
        for j, i in enumerate(todo):
            results[i] = verdict(self.labels, probs[j])
        return results

    def attributions(self, text, work=0, budget_s=None):
        """Each word with its `word_weights` score (`work` and `budget_s` do not apply: one pass scores every word).
        A word is shown with the punctuation that follows it (up to the next word), so the coloured review reads
        like the text that was typed."""
        text, cut = check_text(text)
        p = self.probs([text])[0]
        c = int(p.argmax())
        spans = [m.span() for m in self._words(text)]
        weights = self.loaded.model.word_weights(text)  # same pattern, same text: one (surface, score) per span
        words = []
        for k, ((a, _), (surface, score)) in enumerate(zip(spans, weights)):
            start = 0 if k == 0 else a
            end = spans[k + 1][0] if k + 1 < len(spans) else len(text)
            words.append({"text": text[start:end].strip(), "score": float(score), "tokens": [surface.lower()]})
        return {"label": self.labels[c], "prob": float(p[c]),
                "probs": {lab: float(p[i]) for i, lab in enumerate(self.labels)},
                "method": ATTRIBUTION_METHOD, "words": words, "scored": len(words), "n_words": len(words),
                "truncated": cut, "scale": "logit", "seen_as": "words"}

    def describe(self) -> dict:
        return {**super().describe(), "arch": "TF-IDF + logistic regression"}

    # ------------------------------------------------------------------------------------------------ bundles

    def export_bundle(self, z) -> None:
        folder = model_folder(self.id)
        load_baseline_checked(folder, self.meta, f"Model {self.id}")  # never hand out a damaged model
        for f in baseline_files():
            z.write(folder / f, f)
        z.write(folder / META, META)
        z.writestr(BUNDLE_README, _readme(self.meta))

    @classmethod
    def import_bundle(cls, z, meta, name, install):
        members = {i.filename for i in z.infolist()}
        for need in baseline_files():
            if need not in members:
                raise ModelError(f"The bundle has no {need}: it was not exported by ULMFiT Studio. Files in it: "
                                 f"{', '.join(list(members)[:10]) or 'none'}.")
        with tempfile.TemporaryDirectory(dir=models_dir(), prefix=".import-") as td:
            td = Path(td)
            try:
                for m in baseline_files():
                    with z.open(m) as src, open(td / m, "wb") as dst:
                        shutil.copyfileobj(src, dst)
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise ModelError(f"The bundle is damaged ({e}).") from None
            base = load_baseline_checked(td, meta, "The bundle")
            return _save_baseline(base, name=name or meta.get("name") or "imported baseline",
                                  corpus=meta.get("corpus"), run_id=meta.get("run_id"),
                                  metrics=meta.get("metrics") or {},
                                  extra=dict(meta.get("training") or {}, imported_from=meta.get("id")),
                                  calibration=meta.get("calibration"), judge=meta.get("judge"), source="bundle")


def _readme(meta: dict) -> str:
    j, w = baseline.JSON_NAME, baseline.WEIGHTS_NAME
    return f"""# {meta['name']}

A TF-IDF + logistic-regression baseline (scikit-learn) exported from ULMFiT Studio. Model id `{meta['id']}`, fitted
on `{meta.get('corpus')}`, labels {', '.join(meta['labels'])}.

Files: `{j}` (the TF-IDF vocabulary in column order, labels and settings), `{w}` (the idf and the logistic
regression's coef and intercept, safetensors: no code inside), `{META}` (metadata, metrics, sha256 of each file).

## With ULMFiT Studio

    python -m ulmfit_demo models import this_bundle.zip
    python -m ulmfit_demo predict --model <the id it prints> --text "A wonderful film." --json

## With numpy and scikit-learn

```python
import json, numpy as np
from safetensors.numpy import load_file
from sklearn.feature_extraction.text import TfidfVectorizer

b = json.load(open("{j}")); p = b["params"]; w = load_file("{w}")
vec = TfidfVectorizer(ngram_range=tuple(p["ngram_range"]), token_pattern=p["token_pattern"],
                      sublinear_tf=p["sublinear_tf"], vocabulary=b["vocabulary"]).fit([""])
vec.idf_ = w["idf"] if "idf" in w else np.array(b["idf"])  # (models stored before format 2: idf in the JSON)
d = vec.transform(["A wonderful film."]) @ w["coef"].T + w["intercept"]
# two labels: d > 0 means b["labels"][1]; more labels: argmax of d
```
"""
