"""The model registry: which models exist, under `$ULMFIT_DEMO_HOME/models/`, and how a model is named and found.

A model is a folder `models/<model_id>/` (`weights.safetensors`, `meta.json`, `spm.model` for subword models; see
`store`) plus a row in a SQLite index beside them (`models/registry.db`). The folder is the truth: a folder moved
into place without its row (a crash in between) is registered again on the next listing. Ids are checked before
they touch a path. Also here: the folder format's names and `ModelError`, which every module of `models` raises.

Two models ship with the app and are listed beside the user's, read-only: the bundled sentiment model ("bundled",
`assets/sentiment`) and the starter language model ("starter"). The bundled one is either one classifier or an
ensemble whose members lie in its sub-folders (`assets/sentiment/fwd/`, ...): each member is a model of its own,
`bundled.<sub>`, found by id (`predict --model bundled.fwd`) but listed only as a part of "bundled".
"""
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from ulmfit_demo import config
from ulmfit_demo.models import starter

# "baseline": the TF-IDF + logistic-regression yardstick (`judge.baseline`), stored and used like any classifier.
# "ensemble": members' probabilities averaged (`ensemble`); its folder holds only the metadata naming its members.
KINDS = ("language_model", "classifier", "baseline", "ensemble")
# An id starts with its kind's prefix: a person reading an id (or a stamp, `stamp`) can tell an ensemble from it.
ID_PREFIX = {"language_model": "lm", "classifier": "clas", "baseline": "base", "ensemble": "ens"}
FORMAT = "ulmfit-studio-model"
FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
META = "meta.json"
SPM = "spm.model"


class ModelError(ValueError):
    "A model cannot be saved, loaded, imported or found: the message says what was wrong and what to do."


# The sentiment model shipped with the app (`assets/sentiment`, written by `shipped.export`): listed with the user's
# models as id "bundled", origin "bundled"; read-only (never renamed, deleted or overwritten) and every file
# hash-checked against its manifest before use. `ULMFIT_DEMO_BUNDLED` points elsewhere (tests, or a rebuilt one).
BUNDLED_ID = "bundled"
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "assets" / "sentiment"
# When the bundled model is an ensemble, each member is a model folder `<bundled_dir>/<sub>/` with id `bundled.<sub>`.
# A short plain name: it becomes a folder name, so it can never be a path.
_MEMBER_RE = re.compile(r"^bundled\.([a-z][a-z0-9_]{0,31})$")


def bundled_dir() -> Path:
    return Path(os.environ.get("ULMFIT_DEMO_BUNDLED") or BUNDLED_DIR)


def shipped_member(model_id) -> str | None:
    "The sub-folder of a shipped member's id (`bundled.fwd` -> `fwd`); None for any other id. Checks the form only."
    m = _MEMBER_RE.match(model_id) if isinstance(model_id, str) else None
    return m.group(1) if m else None


def is_bundled(model_id) -> bool:
    "The bundled model or one of its members: files in the app's assets, read-only, checked by their manifest."
    return model_id == BUNDLED_ID or shipped_member(model_id) is not None


def _bundled_meta() -> dict | None:
    try:
        meta = json.loads((bundled_dir() / META).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def bundled_members() -> list[str]:
    "The member ids the bundled model's metadata lists (`bundled.<sub>`); [] when it is one classifier, or missing."
    meta = _bundled_meta() or {}
    if meta.get("kind") != "ensemble":
        return []
    return [m["id"] for m in meta.get("members") or [] if isinstance(m, dict) and shipped_member(m.get("id"))]


def _member_folder(model_id: str) -> Path:
    "A shipped member's folder, once the bundled model's metadata is seen to list it; `ModelError` otherwise."
    members = bundled_members()
    if model_id not in members:
        have = ", ".join(members)
        raise ModelError(f"There is no model {model_id!r}: the bundled sentiment model "
                         + (f"has the members {have}." if have else "has no members (it is one classifier, "
                            f"id {BUNDLED_ID!r}).") + " Its members are used by id, e.g. `predict --model "
                         + (members[0] if members else BUNDLED_ID) + "`.")
    return bundled_dir() / shipped_member(model_id)


# The starter language model shipped with the app (`assets/starter_lm`, see `models.starter`): listed as id "starter"
# where language models are asked for (`list_models("language_model")`: Generate's picker, `generate --model`), so
# a fresh machine can generate text. Not in the all-kinds list: its folder is the starter's own format (what runs
# start from), not a model folder, so it cannot be exported, renamed or deleted like the others. Read-only and
# hash-checked before use, as the bundled classifier.
STARTER_ID = "starter"
SHIPPED = (BUNDLED_ID, STARTER_ID)


def models_dir() -> Path:
    return config.sub("models")


def model_folder(model_id: str) -> Path:
    "Where a model's files are: the bundled one (and its members) in the app's assets, every other under models/."
    if model_id == STARTER_ID:
        return starter.folder()
    if shipped_member(model_id):
        return _member_folder(model_id)
    return bundled_dir() if model_id == BUNDLED_ID else models_dir() / _check_id(model_id)


def _bundled_row() -> dict | None:
    "The bundled model's registry row from its metadata (cheap: no hashing), or None when it is not there."
    meta = _bundled_meta()
    if meta is None:
        return None
    return {"id": BUNDLED_ID, "name": meta.get("name", "Bundled sentiment model"), "kind": meta.get("kind"),
            "run_id": None, "corpus": meta.get("corpus"), "metrics": meta.get("metrics") or {},
            "created": meta.get("created", ""), "size_bytes": _folder_size(bundled_dir()), "source": "bundled",
            "origin": "bundled"}


def _member_row(model_id: str) -> dict:
    "A shipped member's registry row from its own metadata; `ModelError` when bundled lists no such member."
    folder = model_folder(model_id)
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError):
        raise ModelError(f"The bundled sentiment model is damaged: the metadata of its member {model_id!r} "
                         f"({folder / META}) cannot be read. Restore assets/sentiment from git, or rebuild it. Your "
                         f"own models are not affected.") from None
    return {"id": model_id, "name": meta.get("name") or model_id, "kind": meta.get("kind"), "run_id": None,
            "corpus": meta.get("corpus"), "metrics": meta.get("metrics") or {}, "created": meta.get("created", ""),
            "size_bytes": _folder_size(folder), "source": "bundled", "origin": "bundled",
            "part_of": BUNDLED_ID}


def _starter_row() -> dict | None:
    "The starter LM's registry row from its card (cheap: no hashing, no torch), or None when it is not there."
    card = starter.card()
    if not card:
        return None
    cfg = card.get("config") or {}
    back = bool((card.get("arch") or {}).get("backwards") or cfg.get("backwards"))
    metrics = {k: float(card[c]) for k, c in (("perplexity", "valid_perplexity"), ("valid_loss", "valid_loss"),
                                              ("lm_accuracy", "valid_accuracy")) if isinstance(card.get(c), (int, float))}
    return {"id": STARTER_ID, "name": "Starter language model" + (" (backwards)" if back else ""),
            "kind": "language_model", "run_id": None, "corpus": "+".join(map(str, cfg.get("corpora") or [])) or None,
            "metrics": metrics, "created": str(card.get("built", "")).replace(" ", "T"),
            "size_bytes": _folder_size(starter.folder()), "source": "starter", "origin": "bundled", "card": card}


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
        rows = [dict(_row(r), origin=r["source"]) for r in con.execute(q, (kind,) if kind else ())]
    b = _bundled_row()
    # Last: the user's own models come first ("latest" is theirs); the shipped ones are there when they have none.
    # The bundled model is the app's sentiment classifier however it is made (one classifier, or an ensemble), so it
    # is listed where classifiers are asked for: `latest` classifier on a fresh machine is it. Its members are not
    # listed: they are parts of it (`bundled_members`).
    shipped = [b] if b and (kind in (None, b["kind"]) or (kind == "classifier" and b["kind"] == "ensemble")) else []
    if kind == "language_model":  # see STARTER_ID for why only here
        shipped += [s] if (s := _starter_row()) else []
    return rows + shipped


def get(model_id: str) -> dict:
    "One registry entry, or `ModelError` saying which models exist."
    if model_id == BUNDLED_ID:
        b = _bundled_row()
        if b is None:
            raise ModelError(f"The bundled sentiment model is missing or damaged ({bundled_dir() / META} cannot be "
                             f"read). Restore assets/sentiment from git, or rebuild it: python -m "
                             f"ulmfit_demo.train.bundled. Your own models are not affected.")
        return b
    if shipped_member(model_id):
        return _member_row(model_id)
    if model_id == STARTER_ID:
        s = _starter_row()
        if s is None:
            raise ModelError(f"The starter language model is missing ({starter.folder() / 'card.json'} cannot be "
                             f"read). Restore assets/starter_lm from git, or rebuild it: {starter.REBUILD}.")
        return s
    with closing(_db()) as con:
        r = con.execute("SELECT * FROM models WHERE id = ?", (model_id,)).fetchone()
    if r is None:
        have = ", ".join(m["id"] for m in list_models()[:8]) or "none yet (train one on the Train page)"
        raise ModelError(f"There is no model {model_id!r}. Models: {have}.")
    return _row(r)


def resolve(ref: str, kind: str | None = None) -> str:
    "A model id from an id, a unique name, or `latest` (newest model of `kind`)."
    what = {"classifier": "classifier", "language_model": "language model", "ensemble": "ensemble"}.get(kind, "model")
    if shipped_member(ref):  # a part of the bundled model: not listed, found by its id
        if kind and get(ref)["kind"] != kind:
            raise ModelError(f"Model {ref!r} is not a {what}: pick a {what} (`models list`).")
        return ref
    rows = list_models(kind)
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


def _refuse_bundled(model_id: str, what: str) -> None:
    if shipped_member(model_id):
        raise ModelError(f"{model_id!r} is a part of the bundled sentiment model, which ships with the app: it cannot "
                         f"be {what}. Export it and import the bundle to get a copy of your own.")
    if model_id == BUNDLED_ID:
        raise ModelError(f"The bundled sentiment model ships with the app and cannot be {what}. Export it and import "
                         f"the bundle to get a copy of your own.")
    if model_id == STARTER_ID:
        raise ModelError(f"The starter language model ships with the app (assets/starter_lm) and cannot be {what}.")


def rename(model_id: str, name: str) -> dict:
    _refuse_bundled(model_id, "renamed")
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
    _refuse_bundled(model_id, "deleted")
    row = get(model_id)
    users = used_by(model_id)
    if users:  # refused rather than leaving the ensemble broken
        names = ", ".join(f"{u['name']!r} ({u['id']})" for u in users)
        raise ModelError(f"{row['name']!r} is a member of the ensemble{'s' if len(users) > 1 else ''} {names}: "
                         f"deleting it would break {'them' if len(users) > 1 else 'it'}. Delete the ensemble first "
                         f"(Models page, or `models delete {users[0]['id']}`), then this model.")
    folder = models_dir() / model_id
    trash = models_dir() / f".trash-{model_id}-{secrets.token_hex(3)}"
    if folder.exists():
        os.replace(folder, trash)
    with closing(_db()) as con, con:
        con.execute("DELETE FROM models WHERE id = ?", (model_id,))
    shutil.rmtree(trash, ignore_errors=True)


def _member_ids(model_id: str) -> list[str]:
    "The member ids an ensemble's metadata lists (valid ids only); [] when it cannot be read."
    try:
        members = read_meta(model_id).get("members") or []
    except ModelError:
        return []
    return [m["id"] for m in members if isinstance(m, dict) and isinstance(m.get("id"), str)
            and (is_bundled(m["id"]) or _ID_RE.match(m["id"]))]


def used_by(model_id: str) -> list[dict]:
    "The ensembles (`id`, `name`) that list `model_id` among their members."
    _reconcile()
    with closing(_db()) as con:
        rows = [dict(r) for r in con.execute("SELECT id, name FROM models WHERE kind = 'ensemble'")]
    return [r for r in rows if model_id in _member_ids(r["id"])]


def read_meta(model_id: str) -> dict:
    p = model_folder(model_id) / META
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
    # Ids become folder names: never let one be a path (a shipped member's sub-folder is a plain name, `_MEMBER_RE`).
    if model_id in SHIPPED or shipped_member(model_id):
        return model_id
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
    return f"{ID_PREFIX[kind]}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _folder_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def stamp(model_id: str) -> str:
    "Changes when the model's files change: caches of loaded models key on it."
    if is_bundled(model_id):
        # Every file of the bundled folder, members' included: loading any part checks the whole folder (`store.load`).
        return _tree_stamp(bundled_dir())
    p = model_folder(model_id) / WEIGHTS
    if model_id == STARTER_ID:
        p = p.with_name("lm.safetensors")
    if not p.exists():  # a baseline has no weights.safetensors: its metadata changes with its files
        p = p.with_name(META)
    try:
        st = p.stat()
    except FileNotFoundError:
        return "missing"
    where = f"{p.parent}-" if model_id == STARTER_ID else ""  # ULMFIT_DEMO_STARTER may point at another copy
    own = f"{where}{st.st_mtime_ns}-{st.st_size}"
    if model_id.startswith(ID_PREFIX["ensemble"] + "-"):  # an ensemble answers with its members' files
        own += "+" + "+".join(stamp(m) for m in _member_ids(model_id))
    return own


def _tree_stamp(folder: Path) -> str:
    "The folder (its path: it may be another copy) and the time and size of every file in it; 'missing' without it."
    try:
        files = sorted((str(f.relative_to(folder)), f.stat()) for f in folder.rglob("*") if f.is_file())
    except OSError:  # a file went while we looked: a stamp nothing cached has, so the folder is read afresh
        return f"changing-{secrets.token_hex(4)}"
    if not files:
        return "missing"
    every = "+".join(f"{name}:{st.st_mtime_ns}-{st.st_size}" for name, st in files)
    return f"{folder}-{hashlib.sha256(every.encode()).hexdigest()[:16]}"
