"""Model bundles: a zip with the weights, the metadata, the SentencePiece model if any, and a README showing how to
load it with ULMFiT Studio or plain fastai (`export_bundle`); and installing one as a new model (`import_bundle`).

A bundle carries no code, so importing one is always safe: only the known members are read, each within size
limits, and the weights are checked against the metadata (shapes, vocab, architecture) before anything is stored.
A baseline model's bundle holds its two files instead of the weights, each checked against its recorded sha256.
An ensemble's bundle holds its metadata and each member's own bundle (`ensemble.export_bundle`).
"""
import io
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

from ulmfit_demo import config
from ulmfit_demo.models.checks import _check_meta, baseline_files, load_baseline_checked, load_weights_checked
from ulmfit_demo.models.registry import META, SPM, WEIGHTS, ModelError, _check_id, model_folder, models_dir, read_meta
from ulmfit_demo.models.store import _save_baseline, _save_model

BUNDLE_README = "README.md"

# Limits on an imported bundle: the biggest real model (AWD-LSTM, 60k vocab) is ~180 MB of weights.
MAX_BUNDLE_MEMBER = 2 << 30
MAX_META_BYTES = 64 << 20


def _readme(meta: dict) -> str:
    kind = meta["kind"]
    build = ("get_language_model(AWD_LSTM, m['vocab_sz'], config=m['config'], drop_mult=1.0)" if kind == "language_model"
             else "get_text_classifier(AWD_LSTM, m['vocab_sz'], m['n_class'], seq_len=m['seq_len'],\n"
                  "    config={k: v for k, v in m['config'].items() if k not in ('tie_weights', 'out_bias')},\n"
                  "    drop_mult=1.0, lin_ftrs=m['lin_ftrs'], ps=m['ps'], pad_idx=m['pad_idx'], max_len=m['max_len'])")
    return f"""# {meta['name']}

A {kind.replace('_', ' ')} (fastai AWD-LSTM) exported from ULMFiT Studio. Model id `{meta['id']}`, trained on
`{meta.get('corpus')}`, fastai {meta['versions'].get('fastai')}, torch {meta['versions'].get('torch')}.

Files: `{WEIGHTS}` (the weights, safetensors: no code inside), `{META}` (architecture, vocab, labels, tokenizer
settings, metrics){', `' + SPM + '` (the SentencePiece model used to tokenize)' if meta['tokenizer'].get('kind') == 'subword' else ''}.

## With ULMFiT Studio

    python -m ulmfit_demo models import this_bundle.zip
    python -m ulmfit_demo {'predict --model latest --text "A wonderful film." --json' if kind == 'classifier'
                            else 'generate --model latest --prompt "This movie" --n-words 20 --temperature 0.8 --seed 0 --json'}

## With plain fastai

```python
import json
from fastai.text.all import *
from safetensors.torch import load_file

meta = json.load(open("{META}")); m = meta["model"]
model = {build}
state = load_file("{WEIGHTS}")
for alias, name in meta["weights"]["tied"].items():  # tied weights are stored once
    state[alias] = state[name]
model.load_state_dict(state); model.eval()
```

Tokenize new text as in training (`Tokenizer(WordTokenizer())` for word models, `SentencePieceTokenizer(sp_model=
"{SPM}")` for subword ones), numericalize with `meta["vocab"]` (unknown words -> index of `xxunk`), and for a
classifier read `meta["labels"]` in output order.
"""


def _baseline_readme(meta: dict) -> str:
    from ulmfit_demo.judge import baseline

    j, w = baseline.JSON_NAME, baseline.WEIGHTS_NAME
    return f"""# {meta['name']}

A TF-IDF + logistic-regression baseline (scikit-learn) exported from ULMFiT Studio. Model id `{meta['id']}`, fitted
on `{meta.get('corpus')}`, labels {', '.join(meta['labels'])}.

Files: `{j}` (the TF-IDF vocabulary, idf, labels and settings), `{w}` (the logistic regression's coef and intercept,
safetensors: no code inside), `{META}` (metadata, metrics, sha256 of each file).

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
vec.idf_ = np.array(b["idf"])
d = vec.transform(["A wonderful film."]) @ w["coef"].T + w["intercept"]
# two labels: d > 0 means b["labels"][1]; more labels: argmax of d
```
"""


def export_bundle(model_id: str, out: Path) -> Path:
    "A zip with the weights, metadata and a README; written atomically to `out`."
    meta = read_meta(_check_id(model_id))
    if meta.get("kind") == "ensemble":  # its members' own bundles inside
        from ulmfit_demo.models import ensemble

        return ensemble.export_bundle(model_id, out)
    folder = model_folder(model_id)
    if meta.get("kind") == "baseline":
        load_baseline_checked(folder, meta, f"Model {model_id}")  # never hand out a damaged model
        files = list(baseline_files())
    else:
        load_weights_checked(folder, meta, f"Model {model_id}")
        files = [WEIGHTS]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(folder / f, f)
        z.write(folder / META, META)
        if (folder / SPM).is_file():
            z.write(folder / SPM, SPM)
        z.writestr(BUNDLE_README, _baseline_readme(meta) if meta.get("kind") == "baseline" else _readme(meta))
    return config.atomic_write(Path(out), buf.getvalue())


def bundle_bytes(model_id: str) -> bytes:
    with tempfile.TemporaryDirectory() as td:
        return export_bundle(model_id, Path(td) / "m.zip").read_bytes()


def import_bundle(data: bytes | Path, name: str | None = None) -> str:
    """Install a zip from `export_bundle` as a new model and return its id. Reads only the known members, checks the
    weights against the metadata (shapes, vocab, architecture) before anything is stored."""
    raw = Path(data).read_bytes() if isinstance(data, (str, Path)) else data
    if not raw:
        raise ModelError("The bundle is empty: pick the .zip exported from the Models page or `models export`.")
    try:
        z = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise ModelError("This file is not a model bundle (.zip). A fastai export.pkl is imported with the trust "
                         "option instead.") from None
    with z:
        members = {i.filename: i for i in z.infolist()}
        if META not in members:
            raise ModelError(f"The bundle has no {META}: it was not exported by ULMFiT Studio. Files in it: "
                             f"{', '.join(list(members)[:10]) or 'none'}.")
        for m in (META, WEIGHTS, SPM, *baseline_files()):
            if m in members and members[m].file_size > MAX_BUNDLE_MEMBER:
                raise ModelError(f"{m} in the bundle is {members[m].file_size:,} bytes: too large to be a model.")
        if members[META].file_size > MAX_META_BYTES:
            raise ModelError(f"{META} in the bundle is {members[META].file_size:,} bytes: too large.")
        try:
            meta = json.loads(z.read(META))
        except (ValueError, zipfile.BadZipFile) as e:
            raise ModelError(f"{META} in the bundle cannot be read ({e}).") from None
        if not isinstance(meta, dict):
            raise ModelError(f"{META} in the bundle is not a JSON object.")
        _check_meta(meta, "The bundle")
        if meta["kind"] == "ensemble":  # installs its members' bundles, then the ensemble over them
            from ulmfit_demo.models import ensemble

            return ensemble.import_bundle(z, meta, name)
        is_base = meta["kind"] == "baseline"
        for need in (baseline_files() if is_base else (WEIGHTS,)):
            if need not in members:
                raise ModelError(f"The bundle has no {need}: it was not exported by ULMFiT Studio. Files in it: "
                                 f"{', '.join(list(members)[:10]) or 'none'}.")
        with tempfile.TemporaryDirectory(dir=models_dir(), prefix=".import-") as td:
            td = Path(td)
            try:
                for m in (baseline_files() if is_base else (WEIGHTS, SPM)):
                    if m in members:
                        with z.open(m) as src, open(td / m, "wb") as dst:
                            shutil.copyfileobj(src, dst)
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise ModelError(f"The bundle is damaged ({e}).") from None
            if is_base:
                base = load_baseline_checked(td, meta, "The bundle")
                return _save_baseline(base, name=name or meta.get("name") or "imported baseline",
                                      corpus=meta.get("corpus"), run_id=meta.get("run_id"),
                                      metrics=meta.get("metrics") or {},
                                      extra=dict(meta.get("training") or {}, imported_from=meta.get("id")),
                                      calibration=meta.get("calibration"), judge=meta.get("judge"), source="bundle")
            tok = meta["tokenizer"]
            if tok.get("kind") == "subword" and not (td / SPM).is_file():
                raise ModelError(f"The bundle holds a subword model but not its SentencePiece file ({SPM}).")
            model = load_weights_checked(td, meta, "The bundle")
            tokenizer = dict(tok, sp_model=str(td / SPM)) if tok.get("kind") == "subword" else tok
            return _save_model(model, kind=meta["kind"], name=name or meta.get("name") or "imported model",
                               corpus=meta.get("corpus"), run_id=meta.get("run_id"), arch=meta.get("arch") or {},
                               vocab=meta["vocab"], labels=meta.get("labels") or [], tokenizer=tokenizer,
                               metrics=meta.get("metrics") or {},
                               extra=dict(meta.get("training") or {}, imported_from=meta.get("id")),
                               source="bundle", calibration=meta.get("calibration"), judge=meta.get("judge"))
