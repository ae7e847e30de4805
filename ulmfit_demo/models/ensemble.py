"""Ensembles: several sentiment models of one label set used as one, averaging their probabilities (ULMFiT's forward +
backward classifiers of a corpus, optionally with its TF-IDF baseline).

An ensemble is a model folder holding only `meta.json` (kind `ensemble`): its members' ids, names, kinds and weights
(equal by default), its pooling `rule` and the labels. Each member answers through `inference` exactly as it would
alone (its own temperature applied), and the ensemble's probability of a label is, by `rule`, the weighted mean of the
members' probabilities of that label (`mean`, the default) or their weighted geometric mean renormalised over the
labels (`geometric`: a weighted mean of log-probabilities, which keeps an average of calibrated members calibrated
where the plain mean makes it under-confident), labels matched by name (members may list their labels in a different order, and a model stored when the
`imdb` corpus still said `neg`/`pos` matches `negative`/`positive`: `data.labels.canonical`). Nothing here is fitted: an
ensemble's accuracy is only what `evaluate` measured on given texts, recorded with the corpus it was measured on.

Refused, storing nothing: fewer than two members, a member listed twice, a missing member, a language model, members
whose labels differ, and nested ensembles (an ensemble as a member: list its members instead; flattening would
silently change their weights). A model that an ensemble uses cannot be deleted (`registry.delete` names the
ensemble). A bundle of an ensemble carries each member's own bundle, and importing it installs them too, except a
member that is a shipped model this machine has with the same files ("bundled", or a part of it), which is reused.

The bundled sentiment model may itself be an ensemble (`shipped`): its folder holds its members' folders, each a
model of its own with id `bundled.<sub>`, which the user's ensembles may list as members like any classifier.

The kind (`Ensemble`) answers through `kinds.Model`'s verbs like any model; the functions below build, store and
measure one. Over 400 lines in one module on purpose: building, checking, predicting, measuring and bundling an
ensemble all turn on the same member list and label matching; split apart they would each re-derive it.
"""
import io
import json
import math
import os
import re
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable

from ulmfit_demo import config
from ulmfit_demo.data import corpora
from ulmfit_demo.data.labels import canonical
from ulmfit_demo.data.labels import same as same_labels
from ulmfit_demo.models import kinds, registry
from ulmfit_demo.models.awd import ATTR_WORK, MAX_ATTR_WORDS
from ulmfit_demo.models.kinds import BUNDLE_README, CLASSIFY, MAX_BUNDLE_MEMBER, Model, check_text, register
from ulmfit_demo.models.registry import FORMAT, FORMAT_VERSION, META, ModelError

KIND = "ensemble"
MEMBER_KINDS = ("classifier", "baseline")
COMBINE = "weighted mean of the members' calibrated probabilities, labels matched by name"
# How the members' probabilities are pooled (`rule` in the metadata; an ensemble stored without one pools by `mean`).
RULES = {"mean": COMBINE,
         "geometric": "weighted geometric mean of the members' calibrated probabilities, renormalised over the labels "
                      "(a weighted mean of log-probabilities), labels matched by name"}
ATTRIBUTION_METHOD = ("Occlusion on the ensemble: each word's score is how much the ensemble's confidence in its "
                      "verdict (its members' probabilities combined) drops when that word alone is removed "
                      "from the text; every member reads every variant. Negative: removing it makes the ensemble more "
                      "sure.")
# Texts per step of word scores under a time budget: the clock is read between steps (each member reads each text).
BUDGET_STEP = 16
# A word for occlusion is what a reader sees as one: a run of non-spaces, punctuation attached.
_WORD = re.compile(r"\S+")


def _member_zip(i: int) -> str:
    "Where member `i`'s own bundle sits in an ensemble bundle (named by position: never a path from the metadata)."
    return f"members/{i}.zip"


@register
class Ensemble(Model):
    """An ensemble's metadata, nothing loaded: its members are opened one by one (`kinds.open`, cached as any model)
    when it answers. `id` is None for an ensemble planned but not stored yet (`plan`)."""
    kind = KIND
    tasks = frozenset({CLASSIFY})
    what = "an ensemble of sentiment classifiers"
    noun = "ensemble"
    no_fastai_export = ("The bundle carries each member's own bundle, so importing it installs the whole ensemble. "
                        "An ensemble has no fastai export: it has no weights of its own.")

    @classmethod
    def open(cls, model_id):
        return cls(model_id, registry.read_meta(model_id))

    @property
    def members(self) -> list[dict]:
        return list(self.meta["members"])

    @property
    def rule(self) -> str:
        rule = self.meta.get("rule") or "mean"
        if rule not in RULES:
            raise ModelError(f"The ensemble {self.meta.get('name')!r} pools its members by an unknown rule {rule!r} "
                             f"(this version knows {' and '.join(RULES)}): build it again here.")
        return rule

    def cannot(self, task):
        if task != CLASSIFY:
            return (f"Model {self.name!r} is an ensemble of sentiment classifiers: it cannot generate text. Pick a "
                    f"language model.")
        return super().cannot(task)

    def describe(self) -> dict:
        return {**super().describe(), "arch": "ensemble", "members": self.members, "rule": self.rule,
                "combine": RULES[self.rule]}

    def predict(self, text):
        """`{"label", "probs", "truncated", "members": [{"id", "name", "kind", "weight", "label", "probs"}]}`: the
        ensemble's verdict and each member's (probabilities in the ensemble's label order)."""
        text, cut = check_text(text)
        return {**_combine(self, [kinds.open(mid).predict(text) for mid in _member_ids(self)]), "truncated": cut}

    def predict_batch(self, texts, progress=None):
        """Each row with its members' verdicts too. Each member scores every text in one batch call;
        `progress(done, total)` counts the ensemble's share of the work in texts."""
        ids = _member_ids(self)
        per_member = []
        for k, mid in enumerate(ids):
            step = None
            if progress:
                def step(done, total, k=k):
                    progress(min(total, (k * total + done) // len(ids)), total)
            per_member.append(kinds.open(mid).predict_batch(texts, step))
        out = []
        for answers in zip(*per_member):
            bad = next((a for a in answers if a["label"] is None), None)
            out.append({"label": None, "probs": {}, "error": bad.get("error", "")} if bad else _combine(self, answers))
        return out

    def attributions(self, text, work=ATTR_WORK, budget_s=None):
        """Word scores by occlusion of the ensemble itself (`ATTRIBUTION_METHOD`), plus `members` (each member's
        verdict on the whole text). The members' own attributions are not mixed: an AWD-LSTM's occlusion and a
        baseline's linear weights are on different scales. At most MAX_ATTR_WORDS words, fewer for long texts
        (words x words <= `work`); with `budget_s`, variants are scored in steps of BUDGET_STEP texts until that many
        seconds have passed and the rest are left unscored (`timed_out`), as an AWD-LSTM's are."""
        text, cut = check_text(text)
        spans = [m.span() for m in _WORD.finditer(text)]
        n = max(1, min(MAX_ATTR_WORDS, work // max(len(spans), 1)))
        scored = spans[:n]
        todo = [text] + [_without(text, a, b) for a, b in scored]
        if budget_s is None:
            rows = self.predict_batch(todo)
        else:
            for mid in _member_ids(self):  # opening a member (a first use: loading its files) is not scoring time
                kinds.open(mid)
            t0, rows = time.perf_counter(), []
            for k in range(0, len(todo), BUDGET_STEP):  # the whole text first, always
                rows += self.predict_batch(todo[k:k + BUDGET_STEP])
                if time.perf_counter() - t0 > budget_s:
                    break
        scored = scored[:len(rows) - 1]
        full = rows[0]
        lab = full["label"]
        base = full["probs"][lab]
        words = []
        for k, (a, b) in enumerate(spans):
            r = rows[k + 1] if k < len(scored) else None
            # A one-word text has nothing left once its word is removed: that word is not scored rather than guessed.
            score = base - r["probs"][lab] if r is not None and r["label"] is not None else None
            words.append({"text": text[a:b], "score": score, "tokens": [text[a:b]]})
        return {"label": lab, "prob": base, "probs": full["probs"], "method": ATTRIBUTION_METHOD, "words": words,
                "scored": len(scored), "n_words": len(spans), "truncated": cut, "members": full["members"],
                "timed_out": len(rows) < len(todo)}

    def export_bundle(self, z):
        "Its metadata, a README and each member's own bundle."
        ids = _member_ids(self)
        z.writestr(META, json.dumps(self.meta, indent=1))
        z.writestr(BUNDLE_README, _readme(self.meta))
        for i, mid in enumerate(ids):  # already compressed: stored as they are
            z.writestr(_member_zip(i), kinds.bundle_bytes(kinds.open(mid)), compress_type=zipfile.ZIP_STORED)

    @classmethod
    def import_bundle(cls, z, meta, name, install):
        """Each member's bundle first (checked as any bundle is, by `install`), then the ensemble over them. On any
        refusal the members installed so far are removed again, so a bad bundle leaves nothing behind."""
        return _import_bundle(z, meta, name, install)


def _ensemble(model) -> Ensemble:
    "The ensemble behind an id (or pass an `Ensemble` through)."
    m = kinds.open(model)
    if not isinstance(m, Ensemble):
        raise ModelError(f"Model {m.name!r} ({m.id}) is {m.what}, not an ensemble.")
    return m


# ----------------------------------------------------------------------------------------------------------- building

def plan(member_ids: list[str], name: str, weights: list[float] | None = None, rule: str = "mean") -> Ensemble:
    """Check the members and return the ensemble they would make, not stored. Raises `ModelError` saying what was
    wrong and what to do: see the module's docstring for what is refused."""
    name = registry._check_name(name)
    if rule not in RULES:
        raise ModelError(f"Unknown pooling rule {rule!r}: use {' or '.join(RULES)} (the weighted mean of the members' "
                         f"probabilities, or of their log-probabilities).")
    ids = [str(m) for m in member_ids]
    if len(ids) < 2:
        raise ModelError(f"An ensemble needs at least two models; got {len(ids)}"
                         + (f" ({ids[0]})" if ids else "") + ". Add another classifier with the same labels, e.g. the "
                         "backward model of the same corpus or its TF-IDF baseline.")
    twice = sorted({m for m in ids if ids.count(m) > 1})
    if twice:
        raise ModelError(f"{', '.join(twice)} is listed more than once: list each model once (use --weights to count "
                         f"one model more).")
    rows = []
    for mid in ids:
        try:
            row = registry.get(registry._check_id(mid))
        except ModelError as e:
            raise ModelError(f"Cannot build the ensemble: {e}") from None
        if row["kind"] == KIND:
            inner = [m["id"] for m in registry.read_meta(mid).get("members", [])]
            others = " ".join(m for m in ids if m != mid)
            # The bundled model may be an ensemble too: its members (`bundled.fwd`, ...) are models of their own.
            raise ModelError(f"{row['name']!r} ({mid}) is itself an ensemble (of {', '.join(inner)}). Ensembles are "
                             f"not nested: list its members beside the other models instead (`models ensemble "
                             f"{' '.join(inner)} {others} --name NAME`).")
        if row["kind"] not in MEMBER_KINDS:
            raise ModelError(f"{row['name']!r} ({mid}) is a {row['kind'].replace('_', ' ')}, not a classifier: an "
                             f"ensemble averages the probabilities of sentiment classifiers or baselines. Use the "
                             f"classifier fine-tuned from it.")
        rows.append(row)
    labels = [[str(x) for x in registry.read_meta(r["id"]).get("labels") or []] for r in rows]
    for r, labs in zip(rows[1:], labels[1:]):
        if not same_labels(labs, labels[0]):
            raise ModelError(f"The members must predict the same labels: {rows[0]['name']!r} ({rows[0]['id']}) "
                             f"predicts {', '.join(labels[0])} but {r['name']!r} ({r['id']}) predicts {', '.join(labs)}. Pick "
                             f"classifiers of the same corpus (or of corpora with the same labels).")
    if weights is None:
        weights = [1.0] * len(ids)
    weights = [float(w) for w in weights]
    if len(weights) != len(ids):
        raise ModelError(f"{len(weights)} weights for {len(ids)} models: give one weight per model, or none for equal "
                         f"weights.")
    if not all(math.isfinite(w) and w > 0 for w in weights):
        raise ModelError(f"Weights must be positive numbers (got {', '.join(f'{w:g}' for w in weights)}).")
    total = sum(weights)
    corpora = list(dict.fromkeys(r.get("corpus") or "?" for r in rows))
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "id": None, "name": name, "kind": KIND,
            "corpus": " + ".join(corpora), "run_id": None, "created": None, "source": "built",
            "labels": [canonical(x) for x in labels[0]], "rule": rule, "combine": RULES[rule], "metrics": {},
            "members": [{"id": r["id"], "name": r["name"], "kind": r["kind"], "weight": w / total,
                         "corpus": r.get("corpus"), "labels": labs}
                        for r, w, labs in zip(rows, weights, labels)]}
    return Ensemble(None, meta)


def save(ens: Ensemble, evaluation: dict | None = None, source: str = "built", extra: dict | None = None) -> str:
    "Store a planned ensemble (with the figures `evaluate` measured, if any) and register it; returns its id."
    meta = json.loads(json.dumps(ens.meta))
    model_id = registry._new_id(KIND)
    meta.update(id=model_id, created=registry._now(), source=source, training=dict(extra or {}))
    if evaluation:
        _put_evaluation(meta, evaluation)
    final = registry.models_dir() / model_id
    tmp = Path(tempfile.mkdtemp(dir=registry.models_dir(), prefix=f".{model_id}."))
    try:
        with open(tmp / META, "w") as f:
            json.dump(meta, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    registry._register(meta, registry._folder_size(final))
    return model_id


def create(member_ids: list[str], name: str, weights: list[float] | None = None, eval_dataset: str | None = None,
           eval_max: int | None = None, progress: Callable[[int, int], None] | None = None,
           rule: str = "mean") -> str:
    """Build and store an ensemble; returns its id. With `eval_dataset`, it is first measured on that corpus's
    validation rows (`evaluate_dataset`) and the figures are stored with it; if that fails, nothing is stored."""
    ens = plan(member_ids, name, weights, rule)
    figures = evaluate_dataset(ens, eval_dataset, eval_max, progress=progress) if eval_dataset else None
    return save(ens, figures)


def members(model) -> list[dict]:
    "The members as stored (id, name at build time, kind, weight, corpus), each with `current`: its registry row."
    ens = _ensemble(model)
    out = []
    for m in ens.members:
        try:
            cur = registry.get(m["id"])
        except ModelError:
            cur = None
        out.append(dict(m, current=cur))
    return out


def used_by(model_id: str) -> list[dict]:
    "The ensembles (id, name) that list `model_id` among their members."
    return registry.used_by(model_id)


# ----------------------------------------------------------------------------------------------------------- using

def _member_ids(ens: Ensemble) -> list[str]:
    out = []
    for m in ens.members:
        try:
            registry.get(m["id"])
        except ModelError:
            raise ModelError(f"The ensemble {ens.meta['name']!r} is broken: its member {m['name']!r} ({m['id']}) is "
                             f"not on this machine any more. Delete the ensemble and build it again from models that "
                             f"exist (`models ensemble ID ID ... --name NAME`).") from None
        out.append(m["id"])
    return out


def _in_labels_of(ens: Ensemble, answer: dict) -> dict:
    "A member's answer with its labels named as the ensemble names them (`neg` -> `negative` where it says so)."
    name = {canonical(lab): lab for lab in ens.labels}
    return {"label": name.get(canonical(answer["label"]), answer["label"]),
            "probs": {name.get(canonical(k), k): v for k, v in answer["probs"].items()}}


def _combine(ens: Ensemble, answers: list[dict]) -> dict:
    "The ensemble's verdict from its members' answers to one text (in member order)."
    answers = [_in_labels_of(ens, a) for a in answers]
    if ens.rule == "geometric":
        # exp of the weighted mean log-probability, renormalised; a member's 0 is floored so one member cannot veto
        logs = {lab: sum(m["weight"] * math.log(max(a["probs"][lab], 1e-12)) for m, a in zip(ens.members, answers))
                for lab in ens.labels}
        top = max(logs.values())
        z = sum(math.exp(v - top) for v in logs.values())
        probs = {lab: math.exp(v - top) / z for lab, v in logs.items()}
    else:
        probs = {lab: sum(m["weight"] * a["probs"][lab] for m, a in zip(ens.members, answers)) for lab in ens.labels}
    label = max(ens.labels, key=lambda lab: probs[lab])  # first label on a tie, as argmax
    return {"label": label, "probs": probs,
            "members": [{"id": m["id"], "name": m["name"], "kind": m["kind"], "weight": m["weight"],
                         "label": a["label"], "probs": {lab: a["probs"][lab] for lab in ens.labels}}
                        for m, a in zip(ens.members, answers)]}


def _without(text: str, a: int, b: int) -> str:
    "The text with the word at [a, b) removed, and one space beside it, so the rest reads as before."
    return (text[:a] + text[b:].lstrip()) if text[b:].strip() else text[:a].rstrip()



# ----------------------------------------------------------------------------------------------------------- measuring

def evaluate(model, texts: list[str], labels: list[str],
             progress: Callable[[int, int], None] | None = None) -> dict:
    """Accuracy of the ensemble and of each member on `texts` with true `labels`, all from one scoring pass:
    `{"accuracy", "n", "n_left_out", "members": [{"id", "name", "kind", "weight", "accuracy"}], "labels"}`. Rows whose
    label the ensemble does not predict, or whose text is blank, are left out (counted in `n_left_out`)."""
    ens = _ensemble(model)
    if len(texts) != len(labels):
        raise ModelError(f"{len(texts)} texts but {len(labels)} labels: give one label per text.")
    name = {canonical(lab): lab for lab in ens.labels}  # a corpus's `pos` is the ensemble's `positive`, and back
    keep = [(t, name[canonical(y)]) for t, y in zip(texts, labels) if canonical(y) in name]
    if not keep:
        raise ModelError(f"None of the {len(texts)} rows has a label this ensemble predicts ({', '.join(ens.labels)}): "
                         f"measure it on the corpus its members were trained on.")
    rows = ens.predict_batch([t for t, _ in keep], progress)
    pairs = [(r, y) for r, (_, y) in zip(rows, keep) if r["label"] is not None]
    if not pairs:
        raise ModelError("Every text to measure on is blank.")
    n = len(pairs)
    return {"accuracy": sum(r["label"] == y for r, y in pairs) / n, "n": n, "n_left_out": len(texts) - n,
            "labels": ens.labels,
            "members": [{"id": m["id"], "name": m["name"], "kind": m["kind"], "weight": m["weight"],
                         "accuracy": sum(r["members"][i]["label"] == y for r, y in pairs) / n}
                        for i, m in enumerate(ens.members)]}


def evaluate_dataset(model, dataset: str, max_docs: int | None = None, seed: int = 0,
                     progress: Callable[[int, int], None] | None = None) -> dict:
    """`evaluate` on the validation rows of a corpus (`corpora.classifier_frame`: its valid split, else its test
    split), or a seeded sample of `max_docs` of them; the figures also name the corpus and how many rows it has."""
    df = corpora.classifier_frame(corpora.load(dataset))
    valid = df[df["is_valid"]]
    n_valid = len(valid)
    if max_docs is not None and n_valid > max_docs:
        valid = valid.sample(n=int(max_docs), random_state=seed)
    out = evaluate(model, valid["text"].tolist(), valid["label"].astype(str).tolist(), progress)
    return {**out, "dataset": dataset, "split": "validation", "n_valid": n_valid,
            "sampled": len(valid) < n_valid, "seed": seed}


def _put_evaluation(meta: dict, figures: dict) -> None:
    meta["evaluation"] = dict(figures, measured=registry._now())
    best = max(m["accuracy"] for m in figures["members"])
    meta["metrics"] = {"accuracy": figures["accuracy"], "n_valid": figures["n"], "best_member_accuracy": best}


def record_evaluation(model_id: str, figures: dict) -> dict:
    """Store figures from `evaluate`/`evaluate_dataset` in the ensemble's metadata (`evaluation`) and its registry
    metrics (`accuracy`, `n_valid`, `best_member_accuracy`); add `dataset` to say what they were measured on."""
    _ensemble(model_id)
    meta = registry.read_meta(model_id)
    _put_evaluation(meta, figures)
    config.atomic_write(registry.models_dir() / model_id / META, json.dumps(meta, indent=1))
    registry._register(meta, registry._folder_size(registry.models_dir() / model_id))
    return meta


def evaluation_line(meta: dict, members: bool = True) -> str | None:
    """One sentence comparing the ensemble with each member on the rows it was measured on; None if never measured.
    With `members=False` only the best member is named (a page that shows every member's figure in a table)."""
    ev = meta.get("evaluation")
    if not ev:
        return None
    where = ev.get("where") or (f"the {ev['n']:,} validation reviews of {ev['dataset']}" if ev.get("dataset")
                                else f"{ev['n']:,} reviews")
    top = max(ev["members"], key=lambda m: m["accuracy"])
    gap = round((ev["accuracy"] - top["accuracy"]) * 100, 1)
    best = "" if members else f" ({top['name']}, {top['accuracy']:.1%})"
    verdict = (f"{gap:.1f} points above its best member{best}." if gap > 0 else
               f"{-gap:.1f} points below its best member{best}: averaging did not help here." if gap < 0 else
               f"level with its best member{best}.")
    if not members:
        return f"Ensemble {ev['accuracy']:.1%} on {where}: {verdict}"
    mem = ", ".join(f"{m['name']} {m['accuracy']:.1%}" for m in ev["members"])
    return f"Ensemble {ev['accuracy']:.1%} vs {mem}, on {where}: {verdict}"


# ----------------------------------------------------------------------------------------------------------- bundles

_RULE_README = {"mean": "weighted mean of its members' probabilities of that label",
                "geometric": "weighted geometric mean of its members' probabilities of that label, divided by the "
                             "sum of those over the labels (`rule`: geometric)"}


def _readme(meta: dict) -> str:
    rows = "\n".join(f"| `{_member_zip(i)}` | {m['name']} | {m['kind']} | {m['weight']:.4g} |"
                     for i, m in enumerate(meta["members"]))
    return f"""# {meta['name']}

An ensemble exported from ULMFiT Studio (model id `{meta['id']}`): its probability of each label
({', '.join(meta['labels'])}) is the {_RULE_README[meta.get('rule') or 'mean']}, each member with its own temperature
applied (`calibration.temperature` in its metadata). It has no weights of its own.

| member bundle | name | kind | weight |
| --- | --- | --- | --- |
{rows}

Each member is an ordinary model bundle with its own README (how to load it with plain fastai or scikit-learn).
`{META}` lists the members in this order.

## With ULMFiT Studio

    python -m ulmfit_demo models import this_bundle.zip
    python -m ulmfit_demo predict --model <the id it prints> --text "A wonderful film." --json
"""


def _fingerprint(meta: dict):
    "What a model's files are, from the hashes its metadata records (an AWD-LSTM's weights, a baseline's files)."
    if (meta.get("weights") or {}).get("sha256"):
        return meta["weights"]["sha256"]
    files = meta.get("files")
    if isinstance(files, dict) and files:
        return sorted((str(k), v.get("sha256")) for k, v in files.items() if isinstance(v, dict))
    return None


def _same_as_shipped(member_meta: dict) -> str | None:
    """The id of the shipped model a member was exported from ("bundled", or a part of it such as "bundled.fwd") when
    this machine has that very model (the same files): use it instead of a copy."""
    mid = member_meta.get("id")
    if not registry.is_bundled(mid):
        return None
    try:
        registry.get(mid)
        mine = registry.read_meta(mid)
    except ModelError:
        return None
    theirs = _fingerprint(member_meta)
    return mid if theirs is not None and theirs == _fingerprint(mine) else None


def _import_bundle(z: zipfile.ZipFile, meta: dict, name: str | None, install: Callable[[bytes], str]) -> str:
    "`Ensemble.import_bundle`."
    entries = {i.filename: i for i in z.infolist()}
    new_ids, installed = [], []
    try:
        for i, m in enumerate(meta["members"]):
            entry = _member_zip(i)
            if entry not in entries:
                raise ModelError(f"The ensemble bundle lacks {entry} (member {m.get('name')!r}): it was not exported "
                                 f"whole. Export the ensemble again.")
            if entries[entry].file_size > MAX_BUNDLE_MEMBER:
                raise ModelError(f"{entry} in the bundle is {entries[entry].file_size:,} bytes: too large to be a "
                                 f"model.")
            try:
                raw = z.read(entry)
                with zipfile.ZipFile(io.BytesIO(raw)) as inner:
                    inner_meta = json.loads(inner.read(META))
            except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as e:
                raise ModelError(f"{entry} in the ensemble bundle is not a readable model bundle ({e}).") from None
            if not isinstance(inner_meta, dict) or inner_meta.get("kind") not in MEMBER_KINDS:
                raise ModelError(f"{entry} in the ensemble bundle is not a classifier or baseline bundle: refused.")
            if mine := _same_as_shipped(inner_meta):
                new_ids.append(mine)
                continue
            mid = install(raw)
            installed.append(mid)
            new_ids.append(mid)
        ens = plan(new_ids, name or meta.get("name") or "imported ensemble", [m["weight"] for m in meta["members"]],
                   meta.get("rule") or "mean")
        ev = meta.get("evaluation")
        # The members are copies of the ones measured, so the figures still describe this ensemble.
        figures = dict(ev, members=[dict(f, id=i) for f, i in zip(ev["members"], new_ids)]) if ev else None
        return save(ens, figures, source="bundle", extra={"imported_from": meta.get("id")})
    except BaseException:
        for mid in installed:
            try:
                registry.delete(mid)
            except ModelError:
                pass
        raise
