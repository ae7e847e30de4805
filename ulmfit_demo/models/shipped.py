"""The bundled sentiment model's folder (`registry.bundled_dir()`, `assets/sentiment`), written from a stored model.

`export(model_id, out)` writes a model of the store as the bundled model, id "bundled", in the store's own format:

- a classifier (or a TF-IDF baseline): its files and its metadata;
- an ensemble: its metadata, and each member's complete model folder in a sub-folder named for what the member is
  (`fwd/`, `bwd/`, `baseline/`), the member's id becoming `bundled.<sub>`;

plus `manifest.json`: the sha256 and size of every file (members' as relative paths, `fwd/weights.safetensors`),
checked by `store.load` before any part of the folder is used. The folder is written beside `out` and swapped in only
once whole. `card.json` (how it was built and what it measured, for people) is the builder's, written after.
"""
import json
import os
import shutil
from pathlib import Path

from ulmfit_demo import config
from ulmfit_demo.models import registry, starter
from ulmfit_demo.models.awd import reads_backwards
from ulmfit_demo.models.checks import baseline_files, load_baseline_checked, load_weights_checked
from ulmfit_demo.models.registry import BUNDLED_ID, META, SPM, WEIGHTS, ModelError

# What can ship as the bundled model: it is the app's sentiment model.
KINDS = ("classifier", "baseline", "ensemble")
MEMBER_KINDS = ("classifier", "baseline")


def export(model_id: str, out: Path, name: str | None = None, extra_meta: dict | None = None) -> Path:
    """Write the stored model `model_id` into `out` as the bundled model (see the module's docstring); returns `out`.
    `name` renames it; `extra_meta` is merged into its metadata (the builder's measured figures). An existing `out` is
    replaced only once everything was written."""
    model_id = registry._check_id(model_id)
    registry.get(model_id)
    meta = registry.read_meta(model_id)
    if meta.get("kind") not in KINDS:
        raise ModelError(f"{meta.get('name', model_id)!r} ({model_id}) is a {str(meta.get('kind')).replace('_', ' ')}: "
                         f"the bundled model is a sentiment model ({', '.join(KINDS)}).")
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if meta["kind"] == "ensemble":
            meta = _members_into(meta, tmp)
        else:
            _copy_files(model_id, meta, tmp)
        meta.update(extra_meta or {})
        meta.update(id=BUNDLED_ID, source="bundled", run_id=None)
        if name is not None:
            meta["name"] = registry._check_name(name)
        config.atomic_write(tmp / META, json.dumps(meta, indent=1))
        starter.write_manifest(tmp, sorted(f.relative_to(tmp).as_posix() for f in tmp.rglob("*") if f.is_file()))
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _members_into(meta: dict, folder: Path) -> dict:
    "Each member's model folder into `folder/<sub>`; the ensemble's metadata (a copy) naming them `bundled.<sub>`."
    meta = json.loads(json.dumps(meta))
    new_ids: dict[str, str] = {}
    for m in meta["members"]:
        registry.get(m["id"])  # a member that is gone says so, in the registry's words
        mmeta = registry.read_meta(m["id"])
        if mmeta.get("kind") not in MEMBER_KINDS:
            raise ModelError(f"Member {m['id']} of {meta.get('name')!r} is a {mmeta.get('kind')}, not a classifier "
                             f"or a baseline.")
        sub = _sub(mmeta, {registry.shipped_member(i) for i in new_ids.values()})
        _copy_files(m["id"], mmeta, folder / sub)
        new_ids[m["id"]] = m_id = f"{BUNDLED_ID}.{sub}"
        mmeta.update(id=m_id, source="bundled", run_id=None)
        config.atomic_write(folder / sub / META, json.dumps(mmeta, indent=1))
        m["id"] = m_id
    # Figures measured with the ensemble name its members by id too.
    for f in (meta.get("evaluation") or {}).get("members") or []:
        if isinstance(f, dict) and f.get("id") in new_ids:
            f["id"] = new_ids[f["id"]]
    return meta


def _sub(meta: dict, taken: set) -> str:
    "A member's sub-folder: what it is (`fwd`, `bwd` for an AWD-LSTM reading backwards, `baseline`), unique."
    base = "baseline" if meta["kind"] == "baseline" else "bwd" if reads_backwards(meta) else "fwd"
    sub, n = base, 2
    while sub in taken:
        sub, n = f"{base}{n}", n + 1
    return sub


def _copy_files(model_id: str, meta: dict, dest: Path) -> None:
    """The model's own files (an AWD-LSTM's weights and SentencePiece model, a baseline's files as its metadata
    records them) into `dest`, after checking them against the hashes in its metadata: a damaged model never ships."""
    src = registry.model_folder(model_id)
    where = f"Model {meta.get('name', model_id)!r} ({model_id})"
    if meta["kind"] == "baseline":
        load_baseline_checked(src, meta, where)
        files = list(baseline_files())
    else:
        load_weights_checked(src, meta, where)
        files = [WEIGHTS] + ([SPM] if (meta.get("tokenizer") or {}).get("kind") == "subword" else [])
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        if not (src / f).is_file():
            raise ModelError(f"{where}: its file {f} is missing. Train or import the model again.")
        shutil.copyfile(src / f, dest / f)
        with open(dest / f, "rb+") as fh:
            os.fsync(fh.fileno())


def _swap(tmp: Path, out: Path) -> None:
    "Put the finished `tmp` at `out`; the folder there before goes only once the new one is in place."
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
