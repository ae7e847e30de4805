"""Checks on a stored model before any weight reaches it: the metadata's format and kind, the weights file's size,
sha256 and readable header, the vocab against the embedding's rows, and the architecture against the weights'
shapes (`load_weights_checked`). Every refusal is a `ModelError` that says what is wrong and what to do.
"""
import math
from pathlib import Path

from ulmfit_demo.io import sha256
from ulmfit_demo.judge import baseline
from ulmfit_demo.models.arch import build_model
from ulmfit_demo.models.registry import FORMAT, FORMAT_VERSION, KINDS, WEIGHTS, ModelError


_sha256 = sha256  # the name the rest of `models` imports


def _check_meta(meta: dict, where: str) -> None:
    if meta.get("format") != FORMAT:
        raise ModelError(f"{where} is not a ULMFiT Studio model (no '{FORMAT}' marker in its metadata).")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelError(f"{where} was saved by a newer version of ULMFiT Studio (format "
                         f"{meta.get('format_version')}); update this app to load it.")
    if meta.get("kind") not in KINDS:
        raise ModelError(f"{where} has an unknown kind {meta.get('kind')!r}.")
    if meta["kind"] == "baseline":
        _check_baseline_meta(meta, where)
        return
    if meta["kind"] == "ensemble":
        _check_ensemble_meta(meta, where)
        return
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


# ----------------------------------------------------------------------------------------------------------- baseline

def baseline_files() -> tuple[str, ...]:
    "The files of a baseline model, as `judge.baseline.Baseline.save` writes them."
    return (baseline.JSON_NAME, baseline.WEIGHTS_NAME)


def _check_baseline_meta(meta: dict, where: str) -> None:
    if len(meta.get("labels") or []) < 2:
        raise ModelError(f"{where} is a baseline without its labels in the metadata.")
    files = meta.get("files")
    # Exactly the baseline's own file names: metadata must never name a path of its choosing.
    if not isinstance(files, dict) or set(files) != set(baseline_files()):
        raise ModelError(f"{where} has incomplete metadata: 'files' must list {', '.join(baseline_files())} with "
                         f"their sha256 and size.")
    for name, f in files.items():
        if not isinstance(f, dict) or not isinstance(f.get("sha256"), str) or not isinstance(f.get("bytes"), int):
            raise ModelError(f"{where} has incomplete metadata: the sha256 or size of {name} is missing.")


def load_baseline_checked(folder: Path, meta: dict, where: str, verify_hash: bool = True):
    """The `judge.baseline.Baseline` stored in `folder`, after checking each of its files against the size and sha256
    recorded in `meta` (and its labels against the metadata's)."""
    _check_meta(meta, where)
    if meta["kind"] != "baseline":
        raise ModelError(f"{where} is a {meta['kind'].replace('_', ' ')}, not a baseline.")
    for name, f in meta["files"].items():
        p = folder / name
        if not p.is_file():
            raise ModelError(f"{where}: the baseline file {name} is missing. Train or import the model again.")
        size = p.stat().st_size
        if size != f["bytes"]:
            raise ModelError(f"{where}: the baseline file {name} is {size:,} bytes but should be {f['bytes']:,}: it "
                             f"is truncated or damaged. Train or import the model again; nothing else was changed.")
        if verify_hash and _sha256(p) != f["sha256"]:
            raise ModelError(f"{where}: the baseline file {name} is damaged (its checksum does not match the one "
                             f"recorded when it was saved). Train or import the model again; nothing else was "
                             f"changed.")
    try:
        base = baseline.load(folder)
    except ValueError as e:
        raise ModelError(f"{where}: {e}.") from None
    if [str(x) for x in base.labels] != [str(x) for x in meta["labels"]]:
        raise ModelError(f"{where}: the baseline's labels {base.labels} are not the metadata's {meta['labels']}: "
                         f"its files do not belong together. Train or import the model again.")
    return base


# ----------------------------------------------------------------------------------------------------------- ensemble

def _check_ensemble_meta(meta: dict, where: str) -> None:
    "An ensemble's metadata: labels, and at least two members each with an id, a name, a kind and a positive weight."
    if len(meta.get("labels") or []) < 2:
        raise ModelError(f"{where} is an ensemble without its labels in the metadata.")
    members = meta.get("members")
    if not isinstance(members, list) or len(members) < 2:
        raise ModelError(f"{where} is an ensemble without at least two members in its metadata.")
    for m in members:
        if not (isinstance(m, dict) and isinstance(m.get("id"), str) and isinstance(m.get("name"), str)
                and m.get("kind") in ("classifier", "baseline") and isinstance(m.get("weight"), (int, float))
                and math.isfinite(m["weight"]) and m["weight"] > 0):
            raise ModelError(f"{where} has incomplete metadata: each ensemble member needs an id, a name, a kind "
                             f"(classifier or baseline) and a positive weight.")
    if meta.get("rule", "mean") not in ("mean", "geometric"):
        raise ModelError(f"{where} pools its members by an unknown rule {meta.get('rule')!r} (this version knows mean "
                         f"and geometric): export it from the version that made it, or build it again here.")
