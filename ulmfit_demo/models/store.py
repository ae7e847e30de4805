"""Saving and loading model folders: a fastai Learner (or a bare model) saved as safetensors weights + JSON
metadata (`save_learner`), and rebuilt from them (`load` returns a `Loaded`). Not the run store (`runs/store.py`).

A folder is written under a temp name and renamed into place, so a reader never sees half a model; then it is
registered. Loading rebuilds the AWD-LSTM from the stored architecture and fills it from safetensors after
`checks.load_weights_checked`: nothing is ever unpickled, so a model file cannot run code. The TF-IDF baseline is a
model too (`save_baseline`, kind `baseline`): its own JSON + safetensors files, hashed in the metadata and checked by
`checks.load_baseline_checked` before `judge.baseline.load` reads them.
"""
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ulmfit_demo.models import starter
from ulmfit_demo.models.arch import _jsonable, describe_model
from ulmfit_demo.models.checks import _sha256, baseline_files, load_baseline_checked, load_weights_checked
from ulmfit_demo.models.registry import (FORMAT, FORMAT_VERSION, KINDS, META, SPM, STARTER_ID, WEIGHTS, ModelError,
                                         _check_id, _check_name, _folder_size, _new_id, _now, _register, bundled_dir,
                                         get, is_bundled, model_folder, models_dir, read_meta)


def _versions() -> dict:
    import fastai
    import torch

    import platform
    return {"fastai": fastai.__version__, "torch": torch.__version__, "python": platform.python_version()}


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
                 tokenizer: dict | None = None, metrics: dict | None = None, extra: dict | None = None,
                 calibration: dict | None = None, judge: dict | None = None) -> str:
    """Save a trained fastai text Learner as a model (safetensors + JSON) and register it; returns the model id.
    See the team contract: `kind` is `language_model` or `classifier`; the vocab comes from `learn.dls.vocab`.
    `calibration` (temperature, ECE, reliability tables: `judge.report`) is applied by inference; `judge` holds the
    out-of-domain breakdown."""
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
                       extra=extra or {}, source="trained", calibration=calibration, judge=judge)


def _save_model(model, *, kind, name, corpus, run_id, arch, vocab, labels, tokenizer, metrics, extra, source,
                created=None, calibration=None, judge=None) -> str:
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
                **({"calibration": _jsonable(calibration)} if calibration else {}),
                **({"judge": _jsonable(judge)} if judge else {}),
                "weights": {"file": WEIGHTS, "sha256": _sha256(tmp / WEIGHTS), "bytes": (tmp / WEIGHTS).stat().st_size,
                            "tied": tied}}
        _fsync_write_json(tmp / META, meta)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _register(meta, _folder_size(final))
    return model_id


def save_baseline(baseline, *, name: str, corpus: str, run_id: str | None = None, metrics: dict | None = None,
                  extra: dict | None = None, calibration: dict | None = None, judge: dict | None = None) -> str:
    """Save a fitted `judge.baseline.Baseline` as a model of kind `baseline` and register it; returns the model id.
    Its files are the baseline's own (JSON + safetensors, no pickle), each recorded with its sha256 and size.
    `calibration` (temperature, reliability tables) and `judge` land in the metadata as for a classifier."""
    return _save_baseline(baseline, name=name, corpus=corpus, run_id=run_id, metrics=metrics or {},
                          extra=extra or {}, calibration=calibration, judge=judge, source="trained")


def _save_baseline(baseline, *, name, corpus, run_id, metrics, extra, calibration, judge, source,
                   created=None) -> str:
    import platform

    import sklearn


    name = _check_name(name)
    labels = [str(x) for x in baseline.labels]
    if len(labels) < 2:
        raise ModelError(f"A baseline needs at least two labels, got {labels}.")
    model_id = _new_id("baseline")
    final = models_dir() / model_id
    tmp = Path(tempfile.mkdtemp(dir=models_dir(), prefix=f".{model_id}."))
    try:
        baseline.save(tmp)
        files = {}
        for fname in baseline_files():
            with open(tmp / fname, "rb+") as f:
                os.fsync(f.fileno())
            files[fname] = {"sha256": _sha256(tmp / fname), "bytes": (tmp / fname).stat().st_size}
        p = baseline.params or {}
        tok = {"kind": "tfidf", "lowercase": True, "token_pattern": p.get("token_pattern"),
               "ngram_range": p.get("ngram_range"), "min_df": p.get("min_df"), "sublinear_tf": p.get("sublinear_tf"),
               "n_terms": len(baseline.vectorizer.vocabulary_)}
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "id": model_id, "name": name, "kind": "baseline",
                "corpus": corpus, "run_id": run_id, "created": created or _now(), "source": source,
                "model": {"type": "tfidf-logreg", "params": _jsonable(p)}, "labels": labels, "tokenizer": _jsonable(tok),
                "metrics": _jsonable(metrics), "training": _jsonable(extra),
                "versions": {"sklearn": sklearn.__version__, "python": platform.python_version()}, "files": files}
        if calibration is not None:
            meta["calibration"] = _jsonable(calibration)
        if judge is not None:
            meta["judge"] = _jsonable(judge)
        _fsync_write_json(tmp / META, meta)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _register(meta, _folder_size(final))
    return model_id


@dataclass
class Loaded:
    "A model rebuilt from disk, in eval mode, with what inference needs to tokenize and read its outputs."
    id: str
    meta: dict
    model: Any  # fastai SequentialRNN; for kind `baseline` a `judge.baseline.Baseline`
    vocab: list[str]
    labels: list[str]
    o2i: dict = field(repr=False, default_factory=dict)
    folder: Path | None = None

    @property
    def kind(self) -> str:
        return self.meta["kind"]


def load(model_id: str) -> Loaded:
    "Rebuild a registered model from its folder (no pickle involved). Raises `ModelError` on anything amiss."
    _check_id(model_id)
    row = get(model_id)
    if model_id == STARTER_ID:
        return _load_starter(row)
    folder = model_folder(model_id)
    if is_bundled(model_id):  # shipped files: every one (all members' too) checked against the manifest before use
        try:
            starter.check(bundled_dir(), what="sentiment model",
                          rebuild=" or rebuild it: python -m ulmfit_demo.train.bundled")
        except starter.StarterError as e:
            raise ModelError(str(e)) from None
    meta = read_meta(model_id)
    if meta.get("kind") == "ensemble":
        n = len(meta.get("members") or [])
        raise ModelError(f"{meta.get('name', model_id)!r} is an ensemble of {n} models: it has no weights of its own, "
                         f"so it cannot be loaded as one network or exported for fastai. Use it to predict, or export "
                         f"it as a bundle (.zip), which carries its members.")
    if meta.get("kind") == "baseline":  # TF-IDF + logistic regression: its files are hashed and checked first
        base = load_baseline_checked(folder, meta, f"Model {meta.get('name', model_id)!r} ({model_id})")
        return Loaded(id=model_id, meta=meta, model=base, vocab=[], labels=list(base.labels), folder=folder)
    model = load_weights_checked(folder, meta, f"Model {meta.get('name', model_id)!r} ({model_id})")
    vocab = meta["vocab"]
    return Loaded(id=model_id, meta=meta, model=model, vocab=vocab, labels=meta.get("labels") or [],
                  o2i={w: i for i, w in enumerate(vocab)}, folder=folder)


def _load_starter(row: dict) -> Loaded:
    """The starter language model (`models.starter`: checked against its manifest, fp16 weights widened, decoder
    tied) as a `Loaded` like any language model; its metadata is made from its card."""
    from fastai.text.all import AWD_LSTM, get_language_model

    try:
        state, vocab, sp, card = starter.load()
    except starter.StarterError as e:
        raise ModelError(str(e)) from None
    arch = {k: v for k, v in card["arch"].items() if k not in ("drop_mult", "seq_len", "backwards")}
    model = get_language_model(AWD_LSTM, len(vocab), config=arch)
    model.load_state_dict(state, strict=True)
    model.eval()
    meta = {"id": STARTER_ID, "name": row["name"], "kind": "language_model", "corpus": row["corpus"],
            "metrics": row["metrics"], "arch": card["arch"], "vocab": vocab, "labels": [],
            "tokenizer": {"kind": "subword", "sp_model": sp.name}, "source": "starter"}
    return Loaded(id=STARTER_ID, meta=meta, model=model, vocab=vocab, labels=[],
                  o2i={w: i for i, w in enumerate(vocab)}, folder=sp.parent)


def sp_model_path(loaded: Loaded) -> Path | None:
    tok = loaded.meta["tokenizer"]
    return (loaded.folder / tok["sp_model"]) if tok.get("kind") == "subword" else None
