"""Saved models: safetensors weights + JSON metadata under `$ULMFIT_DEMO_HOME/models/<model_id>/`, and a SQLite
registry beside them (`models/registry.db`).

Loading rebuilds the fastai AWD-LSTM from the stored architecture and vocab and fills it from safetensors: nothing is
ever unpickled, so a model file cannot run code. fastai's `export.pkl` is offered as an export for fastai users;
importing one runs its pickle and therefore needs an explicit `trust=True`.

This module is imported by pages: fastai, torch and safetensors are imported inside the functions that need them.
"""
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import tempfile
import zipfile
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ulmfit_demo import config

KINDS = ("language_model", "classifier")
FORMAT = "ulmfit-studio-model"
FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
META = "meta.json"
SPM = "spm.model"
BUNDLE_README = "README.md"

PICKLE_RISK = ("A fastai .pkl file is a Python pickle: opening it runs whatever code its author put inside, with your "
               "permissions (it could read, change or delete your files). Only import a .pkl you made yourself or got "
               "from someone you trust; a model bundle (.zip) carries no code and is always safe to import.")

# Limits on an imported bundle: the biggest real model (AWD-LSTM, 60k vocab) is ~180 MB of weights.
MAX_BUNDLE_MEMBER = 2 << 30
MAX_META_BYTES = 64 << 20


class ModelError(ValueError):
    "A model cannot be saved, loaded, imported or found: the message says what was wrong and what to do."


# ----------------------------------------------------------------------------------------------------------- registry

def models_dir() -> Path:
    return config.sub("models")


def _db() -> sqlite3.Connection:
    con = sqlite3.connect(models_dir() / "registry.db", timeout=30)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA busy_timeout=30000")
    con.execute("""CREATE TABLE IF NOT EXISTS models (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, run_id TEXT, corpus TEXT,
        metrics TEXT NOT NULL DEFAULT '{}', created TEXT NOT NULL, size_bytes INTEGER NOT NULL DEFAULT 0,
        source TEXT NOT NULL DEFAULT 'trained')""")
    return con


def _row(r: sqlite3.Row) -> dict:
    d = dict(r)
    d["metrics"] = json.loads(d["metrics"] or "{}")
    return d


def _register(meta: dict, size: int) -> None:
    with closing(_db()) as con, con:
        con.execute("INSERT OR REPLACE INTO models (id, name, kind, run_id, corpus, metrics, created, size_bytes, source) "
                    "VALUES (?,?,?,?,?,?,?,?,?)",
                    (meta["id"], meta["name"], meta["kind"], meta.get("run_id"), meta.get("corpus"),
                     json.dumps(meta.get("metrics") or {}), meta["created"], size, meta.get("source", "trained")))


def _reconcile() -> None:
    # A model folder is moved into place before its row is written: a crash in between must not lose the model.
    with closing(_db()) as con:
        known = {r[0] for r in con.execute("SELECT id FROM models")}
    for d in models_dir().iterdir():
        if d.is_dir() and not d.name.startswith(".") and d.name not in known and (d / META).is_file():
            try:
                meta = json.loads((d / META).read_text())
                if meta.get("format") == FORMAT and meta.get("id") == d.name:
                    _register(meta, _folder_size(d))
            except (OSError, ValueError):
                continue


def list_models(kind: str | None = None) -> list[dict]:
    "Registered models, newest first: id, name, kind, run_id, corpus, metrics (dict), created, size_bytes, source."
    if kind is not None and kind not in KINDS:
        raise ModelError(f"Unknown model kind {kind!r}: use one of {', '.join(KINDS)}.")
    _reconcile()
    q = "SELECT * FROM models" + (" WHERE kind = ?" if kind else "") + " ORDER BY created DESC, rowid DESC"
    with closing(_db()) as con:
        return [_row(r) for r in con.execute(q, (kind,) if kind else ())]


def get(model_id: str) -> dict:
    "One registry entry, or `ModelError` saying which models exist."
    with closing(_db()) as con:
        r = con.execute("SELECT * FROM models WHERE id = ?", (model_id,)).fetchone()
    if r is None:
        have = ", ".join(m["id"] for m in list_models()[:8]) or "none yet (train one on the Train page)"
        raise ModelError(f"There is no model {model_id!r}. Models: {have}.")
    return _row(r)


def resolve(ref: str, kind: str | None = None) -> str:
    "A model id from an id, a unique name, or `latest` (newest model of `kind`)."
    rows = list_models(kind)
    what = {"classifier": "classifier", "language_model": "language model"}.get(kind, "model")
    if ref == "latest":
        if not rows:
            raise ModelError(f"There is no {what} yet: train one first (Train page, or `python -m ulmfit_demo train`).")
        return rows[0]["id"]
    if any(r["id"] == ref for r in rows):
        return ref
    named = [r for r in rows if r["name"] == ref]
    if len(named) == 1:
        return named[0]["id"]
    if len(named) > 1:
        raise ModelError(f"{len(named)} models are named {ref!r}: use an id ({', '.join(r['id'] for r in named)}).")
    if kind and any(r["id"] == ref for r in list_models()):
        raise ModelError(f"Model {ref!r} is not a {what}: pick a {what} (`models list`).")
    raise ModelError(f"There is no {what} {ref!r}. Known: "
                     f"{', '.join(r['id'] for r in rows[:8]) or 'none yet'}.")


def rename(model_id: str, name: str) -> dict:
    name = _check_name(name)
    get(model_id)
    meta = read_meta(model_id)
    meta["name"] = name
    config.atomic_write(models_dir() / model_id / META, json.dumps(meta, indent=1))
    with closing(_db()) as con, con:
        con.execute("UPDATE models SET name = ? WHERE id = ?", (name, model_id))
    return get(model_id)


def delete(model_id: str) -> None:
    "Remove a model: its folder is renamed away first, so a half-deleted model is never listed."
    get(model_id)
    folder = models_dir() / model_id
    trash = models_dir() / f".trash-{model_id}-{secrets.token_hex(3)}"
    if folder.exists():
        os.replace(folder, trash)
    with closing(_db()) as con, con:
        con.execute("DELETE FROM models WHERE id = ?", (model_id,))
    shutil.rmtree(trash, ignore_errors=True)


def read_meta(model_id: str) -> dict:
    _check_id(model_id)
    p = models_dir() / model_id / META
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise ModelError(f"Model {model_id!r} has no metadata file ({p}): its folder is missing or incomplete. "
                         f"Delete it from the registry and train or import it again.") from None
    except ValueError as e:
        raise ModelError(f"The metadata of model {model_id!r} is damaged ({e}). Delete it and train or import it "
                         f"again.") from None


_ID_RE = re.compile(r"^[a-z]+-\d{8}-\d{6}-[0-9a-f]{4,8}$")


def _check_id(model_id: str) -> str:
    # Ids become folder names: never let one be a path.
    if not isinstance(model_id, str) or not _ID_RE.match(model_id):
        raise ModelError(f"{model_id!r} is not a model id (they look like clas-20250101-120000-1a2b).")
    return model_id


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ModelError("A model name cannot be empty.")
    if len(name) > 80:
        raise ModelError(f"A model name can have at most 80 characters (this one has {len(name)}).")
    return name


def _new_id(kind: str) -> str:
    prefix = {"language_model": "lm", "classifier": "clas"}[kind]
    return f"{prefix}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _folder_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


# ----------------------------------------------------------------------------------------------------------- saving

def _versions() -> dict:
    import fastai
    import torch

    import platform
    return {"fastai": fastai.__version__, "torch": torch.__version__, "python": platform.python_version()}


def _jsonable(x: Any) -> Any:
    "Plain JSON values from configs that may hold tuples, numpy or torch scalars."
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, bool, type(None))):
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return float(x)
    if hasattr(x, "item"):
        return x.item()
    return str(x)


def describe_model(model, kind: str) -> dict:
    """The architecture of a fastai AWD-LSTM model, read from its modules: everything `build_model` needs to make
    the same shapes again. Read from the model rather than trusted from the caller, so a learner built with
    defaults, or one that came out of an `export.pkl`, is described exactly."""
    from fastai.text.all import AWD_LSTM, LinearDecoder, PoolingLinearClassifier, SentenceEncoder, SigmoidRange
    from torch import nn

    if kind == "classifier":
        if not (len(model) == 2 and isinstance(model[0], SentenceEncoder) and isinstance(model[1], PoolingLinearClassifier)):
            raise ModelError("This is not a fastai text classifier (SentenceEncoder + PoolingLinearClassifier).")
        enc = model[0].module
    else:
        if not (len(model) == 2 and isinstance(model[1], LinearDecoder)):
            raise ModelError("This is not a fastai language model (encoder + LinearDecoder).")
        enc = model[0]
    if not isinstance(enc, AWD_LSTM):
        raise ModelError(f"Only AWD-LSTM models are supported (this one is {type(enc).__name__}).")
    cfg = dict(emb_sz=enc.emb_sz, n_hid=enc.n_hid, n_layers=enc.n_layers, pad_token=enc.pad_token,
               bidir=enc.n_dir == 2, hidden_p=enc.hidden_dps[0].p, input_p=enc.input_dp.p,
               embed_p=enc.encoder_dp.embed_p, weight_p=enc.rnns[0].weight_p)
    out = {"arch": "AWD_LSTM", "vocab_sz": enc.encoder.num_embeddings}
    if kind == "language_model":
        dec = model[1]
        cfg.update(output_p=dec.output_dp.p, tie_weights=dec.decoder.weight is enc.encoder.weight,
                   out_bias=dec.decoder.bias is not None)
    else:
        se, head = model[0], model[1]
        lins, ps, y_range = [], [], None
        for block in head.layers:
            if isinstance(block, SigmoidRange):
                y_range = [block.low, block.high]
                continue
            lins.append(next(m for m in block if isinstance(m, nn.Linear)).out_features)
            ps.append(next((m.p for m in block if isinstance(m, nn.Dropout)), 0.0))
        cfg["output_p"] = ps[0]
        out.update(n_class=lins[-1], seq_len=se.bptt, max_len=se.max_len, pad_idx=se.pad_idx,
                   lin_ftrs=lins[:-1], ps=ps[1:], y_range=y_range)
    out["config"] = cfg
    return _jsonable(out)


def build_model(desc: dict, kind: str):
    "An untrained fastai model with the architecture `describe_model` recorded (dropouts already scaled: drop_mult 1)."
    from fastai.text.all import AWD_LSTM, get_language_model, get_text_classifier

    cfg = dict(desc["config"])
    if kind == "language_model":
        return get_language_model(AWD_LSTM, desc["vocab_sz"], config=cfg, drop_mult=1.0)
    for k in ("tie_weights", "out_bias"):
        cfg.pop(k, None)
    y_range = tuple(desc["y_range"]) if desc.get("y_range") else None
    return get_text_classifier(AWD_LSTM, desc["vocab_sz"], desc["n_class"], seq_len=desc["seq_len"], config=cfg,
                               drop_mult=1.0, lin_ftrs=list(desc["lin_ftrs"]), ps=list(desc["ps"]),
                               pad_idx=desc["pad_idx"], max_len=desc["max_len"], y_range=y_range)


def _split_tied(state: dict) -> tuple[dict, dict]:
    """safetensors refuses tensors that share memory; AWD-LSTM ties the embedding to the dropout copy and (LM) to the
    decoder. Keep one name per tensor and record the others as aliases."""
    keep, tied, seen = {}, {}, {}
    for k, t in state.items():
        key = (t.device.type, t.data_ptr(), tuple(t.shape), tuple(t.stride()), t.dtype) if t.numel() else None
        if key is not None and key in seen:
            tied[k] = seen[key]
            continue
        if key is not None:
            seen[key] = k
        keep[k] = t.detach().to("cpu").contiguous().clone()
    return keep, tied


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_write_json(p: Path, obj: dict) -> None:
    with open(p, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())


def _tokenizer_meta(tokenizer: dict | None) -> tuple[dict, Path | None]:
    tok = dict(tokenizer or {"kind": "word"})
    if tok.get("kind") not in ("word", "subword"):
        raise ModelError(f"Unknown tokenizer kind {tok.get('kind')!r}: use 'word' or 'subword'.")
    from fastai.text.all import defaults
    tok.setdefault("rules", [r.__name__ for r in defaults.text_proc_rules])
    sp = None
    if tok["kind"] == "subword":
        sp = Path(tok.get("sp_model") or "")
        if not sp.is_file():
            raise ModelError(f"The SentencePiece model {str(sp)!r} was not found: a subword model cannot be saved "
                             f"without it.")
        tok["sp_model"] = SPM
    return _jsonable(tok), sp


def save_learner(learn, *, kind: str, name: str, corpus: str, run_id: str | None = None, arch: dict | None = None,
                 tokenizer: dict | None = None, metrics: dict | None = None, extra: dict | None = None) -> str:
    """Save a trained fastai text Learner as a model (safetensors + JSON) and register it; returns the model id.
    See the team contract: `kind` is `language_model` or `classifier`; the vocab comes from `learn.dls.vocab`."""
    if kind not in KINDS:
        raise ModelError(f"Unknown model kind {kind!r}: use one of {', '.join(KINDS)}.")
    vocab = getattr(learn.dls, "vocab", None)
    if vocab is None:
        raise ModelError("The learner's DataLoaders have no vocab (learn.dls.vocab): build them with fastai's "
                         "TextBlock/TextDataLoaders, or set dls.vocab, before saving.")
    if kind == "classifier":
        vocab, labels = list(vocab[0]), [str(c) for c in vocab[1]]
    else:
        vocab, labels = list(vocab), []
    return _save_model(learn.model, kind=kind, name=name, corpus=corpus, run_id=run_id, arch=arch or {},
                       vocab=[str(v) for v in vocab], labels=labels, tokenizer=tokenizer, metrics=metrics or {},
                       extra=extra or {}, source="trained")


def _save_model(model, *, kind, name, corpus, run_id, arch, vocab, labels, tokenizer, metrics, extra, source,
                created=None) -> str:
    from safetensors.torch import save_file

    name = _check_name(name)
    desc = describe_model(model, kind)
    if desc["vocab_sz"] != len(vocab):
        raise ModelError(f"The vocab has {len(vocab)} entries but the model's embedding has {desc['vocab_sz']} rows.")
    if kind == "classifier" and desc["n_class"] != len(labels):
        raise ModelError(f"{len(labels)} labels but the classifier has {desc['n_class']} outputs.")
    tok, sp = _tokenizer_meta(tokenizer)
    model_id = _new_id(kind)
    final = models_dir() / model_id
    tmp = Path(tempfile.mkdtemp(dir=models_dir(), prefix=f".{model_id}."))
    try:
        state, tied = _split_tied(model.state_dict())
        # Written under a temp name and renamed, so a reader never sees a half-written weights file.
        wtmp = tmp / (WEIGHTS + ".tmp")
        save_file(state, str(wtmp), metadata={"format": FORMAT, "kind": kind})
        with open(wtmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(wtmp, tmp / WEIGHTS)
        if sp is not None:
            shutil.copyfile(sp, tmp / SPM)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "id": model_id, "name": name, "kind": kind,
                "corpus": corpus, "run_id": run_id, "created": created or _now(), "source": source,
                "arch": _jsonable(arch), "model": desc, "vocab": vocab, "labels": labels, "tokenizer": tok,
                "metrics": _jsonable(metrics), "training": _jsonable(extra), "versions": _versions(),
                "weights": {"file": WEIGHTS, "sha256": _sha256(tmp / WEIGHTS), "bytes": (tmp / WEIGHTS).stat().st_size,
                            "tied": tied}}
        _fsync_write_json(tmp / META, meta)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _register(meta, _folder_size(final))
    return model_id


# ----------------------------------------------------------------------------------------------------------- loading

@dataclass
class Loaded:
    "A model rebuilt from disk, in eval mode, with what inference needs to tokenize and read its outputs."
    id: str
    meta: dict
    model: Any  # fastai SequentialRNN
    vocab: list[str]
    labels: list[str]
    o2i: dict = field(repr=False, default_factory=dict)
    folder: Path | None = None

    @property
    def kind(self) -> str:
        return self.meta["kind"]


def _check_meta(meta: dict, where: str) -> None:
    if meta.get("format") != FORMAT:
        raise ModelError(f"{where} is not a ULMFiT Studio model (no '{FORMAT}' marker in its metadata).")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelError(f"{where} was saved by a newer version of ULMFiT Studio (format "
                         f"{meta.get('format_version')}); update this app to load it.")
    if meta.get("kind") not in KINDS:
        raise ModelError(f"{where} has an unknown kind {meta.get('kind')!r}.")
    for k in ("model", "vocab", "tokenizer"):
        if k not in meta:
            raise ModelError(f"{where} has incomplete metadata: '{k}' is missing.")
    if meta["kind"] == "classifier" and len(meta.get("labels") or []) < 2:
        raise ModelError(f"{where} is a classifier without its labels in the metadata.")


def load_weights_checked(folder: Path, meta: dict, where: str, verify_hash: bool = True):
    """Rebuild the model described by `meta` and fill it from `folder/weights.safetensors`, checking the file
    (size, hash, readable header) and that the vocab matches the embedding's shape before touching the model."""
    from safetensors import SafetensorError, safe_open

    _check_meta(meta, where)
    wpath = folder / WEIGHTS
    w = meta.get("weights", {})
    if not wpath.is_file():
        raise ModelError(f"{where}: the weights file {WEIGHTS} is missing. Train or import the model again.")
    size = wpath.stat().st_size
    if w.get("bytes") is not None and size != w["bytes"]:
        raise ModelError(f"{where}: the weights file is {size:,} bytes but should be {w['bytes']:,}: it is truncated "
                         f"or damaged. Train or import the model again; nothing else was changed.")
    if verify_hash and w.get("sha256") and _sha256(wpath) != w["sha256"]:
        raise ModelError(f"{where}: the weights file is damaged (its checksum does not match the one recorded when "
                         f"it was saved). Train or import the model again; nothing else was changed.")
    try:
        with safe_open(str(wpath), framework="pt", device="cpu") as f:
            keys = list(f.keys())
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in keys}
            state = {k: f.get_tensor(k) for k in keys}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelError(f"{where}: the weights file cannot be read ({e}): it is damaged or truncated. Train or "
                         f"import the model again; nothing else was changed.") from None
    emb_key = next((k for k in ("0.encoder.weight", "0.module.encoder.weight") if k in shapes), None)
    if emb_key is None:
        raise ModelError(f"{where}: the weights file has no AWD-LSTM embedding: it is not a model this app saved.")
    n_vocab, n_emb = len(meta["vocab"]), shapes[emb_key][0]
    if n_vocab != n_emb or meta["model"].get("vocab_sz") != n_emb:
        raise ModelError(f"{where}: the vocab in the metadata has {n_vocab:,} words but the weights' embedding has "
                         f"{n_emb:,} rows: they do not belong together. Refused; export the model again from where "
                         f"it was trained.")
    model = build_model(meta["model"], meta["kind"])
    for alias, canon in w.get("tied", {}).items():
        if canon not in state:
            raise ModelError(f"{where}: the weights file lacks {canon!r}: it is damaged.")
        state[alias] = state[canon]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0:3]
        raise ModelError(f"{where}: the weights do not fit the architecture in the metadata ({' '.join(first)}). "
                         f"Refused.") from None
    model.eval()
    model.reset()
    return model


def load(model_id: str) -> Loaded:
    "Rebuild a registered model from its folder (no pickle involved). Raises `ModelError` on anything amiss."
    _check_id(model_id)
    get(model_id)
    folder = models_dir() / model_id
    meta = read_meta(model_id)
    model = load_weights_checked(folder, meta, f"Model {meta.get('name', model_id)!r} ({model_id})")
    vocab = meta["vocab"]
    return Loaded(id=model_id, meta=meta, model=model, vocab=vocab, labels=meta.get("labels") or [],
                  o2i={w: i for i, w in enumerate(vocab)}, folder=folder)


def sp_model_path(loaded: Loaded) -> Path | None:
    tok = loaded.meta["tokenizer"]
    return (loaded.folder / tok["sp_model"]) if tok.get("kind") == "subword" else None


def stamp(model_id: str) -> str:
    "Changes when the model's files change: caches of loaded models key on it."
    p = models_dir() / _check_id(model_id) / WEIGHTS
    try:
        st = p.stat()
    except FileNotFoundError:
        return "missing"
    return f"{st.st_mtime_ns}-{st.st_size}"


# ----------------------------------------------------------------------------------------------------------- export

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


def export_bundle(model_id: str, out: Path) -> Path:
    "A zip with the weights, metadata and a README; written atomically to `out`."
    meta = read_meta(_check_id(model_id))
    folder = models_dir() / model_id
    load_weights_checked(folder, meta, f"Model {model_id}")  # never hand out a damaged model
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(folder / WEIGHTS, WEIGHTS)
        z.write(folder / META, META)
        if (folder / SPM).is_file():
            z.write(folder / SPM, SPM)
        z.writestr(BUNDLE_README, _readme(meta))
    return config.atomic_write(Path(out), buf.getvalue())


def bundle_bytes(model_id: str) -> bytes:
    with tempfile.TemporaryDirectory() as td:
        return export_bundle(model_id, Path(td) / "m.zip").read_bytes()


def _fastai_learner(loaded: Loaded):
    """A fastai Learner around the loaded model whose DataLoaders tokenize and numericalize like training did, so
    that `load_learner(...).predict(text)` works for fastai users."""
    import pandas as pd
    from fastai.text.all import (CategoryBlock, ColReader, CrossEntropyLossFlat, DataBlock, LMLearner,
                                 SentencePieceTokenizer, TextBlock, TextLearner, Tokenizer, WordTokenizer)

    tok = loaded.meta["tokenizer"]
    if tok.get("kind") == "subword":
        tok_tfm = Tokenizer(SentencePieceTokenizer(sp_model=str(sp_model_path(loaded)), cache_dir=str(loaded.folder)),
                            sep="")
    else:
        tok_tfm = Tokenizer(WordTokenizer())
    if loaded.kind == "classifier":
        df = pd.DataFrame({"text": ["xxunk"] * len(loaded.labels), "label": loaded.labels})
        block = DataBlock(blocks=(TextBlock(tok_tfm, vocab=loaded.vocab), CategoryBlock(vocab=loaded.labels)),
                          get_x=ColReader("text"), get_y=ColReader("label"), splitter=lambda items: (list(range(len(items))), []))
        dls = block.dataloaders(df, bs=2)
        learn = TextLearner(dls, loaded.model, loss_func=CrossEntropyLossFlat())
    else:
        df = pd.DataFrame({"text": ["xxunk " * 40]})
        seq_len = int(loaded.meta.get("arch", {}).get("seq_len", 72) or 72)
        block = DataBlock(blocks=TextBlock(tok_tfm, vocab=loaded.vocab, is_lm=True, seq_len=seq_len),
                          get_x=ColReader("text"), splitter=lambda items: ([0], []))
        dls = block.dataloaders(df, bs=1, seq_len=seq_len)
        learn = LMLearner(dls, loaded.model, loss_func=CrossEntropyLossFlat())
    return learn


def export_fastai(model_id: str, out: Path) -> Path:
    "fastai's `learn.export()` pickle of the model, for fastai users (`load_learner(out)`); written atomically."
    loaded = load(model_id)
    learn = _fastai_learner(loaded)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as td:
        learn.path = Path(td)
        learn.model_dir = "."
        learn.export("export.pkl")
        os.replace(Path(td) / "export.pkl", out)
    return out


def fastai_bytes(model_id: str) -> bytes:
    with tempfile.TemporaryDirectory() as td:
        return export_fastai(model_id, Path(td) / "export.pkl").read_bytes()


# ----------------------------------------------------------------------------------------------------------- import

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
        for need in (META, WEIGHTS):
            if need not in members:
                raise ModelError(f"The bundle has no {need}: it was not exported by ULMFiT Studio. Files in it: "
                                 f"{', '.join(list(members)[:10]) or 'none'}.")
        for m in (META, WEIGHTS, SPM):
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
        with tempfile.TemporaryDirectory(dir=models_dir(), prefix=".import-") as td:
            td = Path(td)
            try:
                for m in (WEIGHTS, SPM):
                    if m in members:
                        with z.open(m) as src, open(td / m, "wb") as dst:
                            shutil.copyfileobj(src, dst)
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise ModelError(f"The bundle is damaged ({e}).") from None
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
                               source="bundle")


def pickle_imports(path: Path, limit: int = 200) -> list[str]:
    """The modules and names a pickle (or torch zip) would import when opened, read without executing it: shown
    beside the trust question so a person can see, e.g., `os.system` before saying yes."""
    import pickletools

    path = Path(path)
    blobs = []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            blobs = [z.read(n) for n in z.namelist() if n.endswith(".pkl")][:4]
    else:
        blobs = [path.read_bytes()]
    found: list[str] = []
    for blob in blobs:
        strings: list[str] = []
        try:
            for op, arg, _ in pickletools.genops(io.BytesIO(blob)):
                if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                    strings.append(arg)
                elif op.name == "GLOBAL":
                    found.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
        except Exception:  # noqa: BLE001 - a malformed pickle still gets the warning; listing is best effort
            found.append("(the rest could not be read)")
    out = list(dict.fromkeys(found))
    return out[:limit]


# What a fastai text export legitimately imports; anything else (os.system, builtins.exec, subprocess...) is named
# to the person before they decide to trust the file.
EXPECTED_MODULES = ("fastai", "fastcore", "torch", "numpy", "pandas", "spacy", "sentencepiece", "thinc", "srsly",
                    "pathlib", "collections", "_codecs", "copyreg", "functools", "typing", "fastprogress", "re",
                    "catalogue", "cymem", "preshed", "blis", "murmurhash", "plum", "enum", "dataclasses", "cloudpickle",
                    "fasttransform", "inspect", "random", "confection", "weasel", "wasabi")
EXPECTED_BUILTINS = {"set", "frozenset", "slice", "range", "complex", "bytearray", "bytes", "getattr", "dict", "list",
                     "tuple", "object", "type", "int", "float", "str", "bool", "long", "unicode",
                     "print"}  # print: fastai stores it as the default logger


def unexpected_imports(names: list[str]) -> list[str]:
    "Names from `pickle_imports` that a fastai text model has no reason to import."
    out = []
    for n in names:
        mod, _, attr = n.partition(".")
        if mod in ("builtins", "__builtin__"):
            if attr not in EXPECTED_BUILTINS:
                out.append(n)
        elif mod not in EXPECTED_MODULES:
            out.append(n)
    return out


def import_pkl(path: Path, *, trust: bool = False, name: str | None = None, corpus: str | None = None) -> str:
    """Import fastai's `export.pkl`. Opening it runs the pickle, so without `trust=True` this refuses before the file
    is read at all."""
    path = Path(path)
    if not trust:
        raise ModelError("Refused: importing a .pkl needs an explicit trust confirmation. " + PICKLE_RISK)
    if not path.is_file():
        raise ModelError(f"No such file: {path}.")
    from fastai.text.all import LMLearner, SentencePieceTokenizer, load_learner

    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fastai's pickle warning: the person has just accepted that risk
            learn = load_learner(path, cpu=True)
    except Exception as e:  # noqa: BLE001 - any failure of a foreign pickle becomes one message
        raise ModelError(f"fastai could not load {path.name}: {type(e).__name__}: {e}") from None
    kind = "language_model" if isinstance(learn, LMLearner) else "classifier"
    tok = {"kind": "word"}
    inner = getattr(_find_tokenizer(learn), "tokenizer", None)
    if isinstance(inner, SentencePieceTokenizer):
        sp = Path(getattr(inner, "sp_model", None) or Path(inner.cache_dir) / "spm.model")
        if not sp.is_file():
            raise ModelError(f"{path.name} uses a SentencePiece tokenizer whose model file ({sp}) is not on this "
                             f"machine: it cannot be imported without it.")
        tok = {"kind": "subword", "vocab_sz": getattr(inner, "vocab_sz", None), "sp_model": str(sp)}
    vocab = learn.dls.vocab
    return _save_model(learn.model, kind=kind, name=name or path.stem, corpus=corpus or "(imported)", run_id=None,
                       arch={}, vocab=[str(v) for v in (vocab[0] if kind == "classifier" else vocab)],
                       labels=[str(c) for c in vocab[1]] if kind == "classifier" else [], tokenizer=tok, metrics={},
                       extra={"imported_from": path.name}, source="pkl")


def _find_tokenizer(learn):
    "The fastai `Tokenizer` transform inside an exported learner's DataLoaders, if there is one."
    from fastai.text.all import Tokenizer

    try:
        for tfm in learn.dls.train_ds.tfms[0].fs if hasattr(learn.dls.train_ds, "tfms") else []:
            if isinstance(tfm, Tokenizer):
                return tfm
    except (AttributeError, IndexError, TypeError):
        pass
    return None
