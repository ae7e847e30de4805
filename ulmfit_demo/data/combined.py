"""A corpus made of several corpora, named by joining their names with `+`, each optionally capped:

    imdb+yelp_sentences:25000+amazon_reviews

`name:N` keeps at most N of that part's `train` rows: a sample balanced by label as far as the part allows (a label
with fewer than its share gives all it has and the others fill the rest), drawn with a fixed seed (`CAP_SEED`), so a
spec always means the same rows. Its `valid`, `test` and `unsup` rows are kept whole. The spec is the corpus's name
everywhere a corpus name is accepted (`corpora.load`, `data info`, `train --dataset`, `--eval-dataset`, the pages):
`corpora` reads each part like any corpus and `join` makes them one. This module knows the spec, never how a corpus
is read, so it imports `catalog` and not `corpora`.

The combined frame is the parts' frames one after the other, plus three columns:
- `source`: the part's corpus name;
- `src_row`: the row's index in that part's own frame (`corpora.load(source).df`), so a run can say which rows it read;
- `domain`: amazon_reviews' own `domain` column (apparel, baby, ...); for the others the part's `NamedCorpus.domain`
  (`films` for imdb, imdb_sample and demo, `businesses` for yelp_sentences, `wikipedia` for wikitext2_small), and an
  upload's own name.

Validation rows are chosen per part (`corpora.classifier_frame`): each part's valid split, else its test split, else
a seeded 20%. A classifier refuses a part without labels, and parts whose labels cannot be the same classes.

A run records what it read in `rows.json` (`record`); combinations a person composed on the Data page are kept in
`$ULMFIT_DEMO_HOME/combinations.json` so every page's corpus picker offers them.
"""
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

from ulmfit_demo import config
from ulmfit_demo.data.catalog import NAMED, SPLITS, Corpus, CorpusError, by_split_label, is_combined, uploads_dir
from ulmfit_demo.data.labels import canonical

CAP_SEED = 0  # the cap's sample is part of the spec's meaning: the same spec, the same rows, whatever the run's seed
MAX_SPEC = 400
EXAMPLE = "imdb+yelp_sentences:25000+amazon_reviews"


@dataclass(frozen=True)
class Part:
    name: str
    cap: int | None = None

    def __str__(self) -> str:
        return self.name + (f":{self.cap}" if self.cap is not None else "")


def _known() -> list[str]:
    return list(NAMED) + sorted(d.name for d in uploads_dir().iterdir()
                                if d.is_dir() and (d / "corpus.parquet").exists())


def parse(spec: str) -> list[Part]:
    "The parts of a combined spec; `CorpusError` in one line saying what to write instead."
    if not isinstance(spec, str) or not spec.strip():
        raise CorpusError(f"An empty corpus name: write corpus names joined by '+', e.g. {EXAMPLE}.")
    spec = spec.strip()
    if len(spec) > MAX_SPEC:
        raise CorpusError(f"A combined corpus name of {len(spec)} characters is too long (at most {MAX_SPEC}).")
    parts, seen = [], set()
    for raw in spec.split("+"):
        raw = raw.strip()
        if not raw:
            raise CorpusError(f"{spec!r} has an empty part: join corpus names with one '+' each, e.g. {EXAMPLE}.")
        name, colon, cap = raw.partition(":")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$", name):
            raise CorpusError(f"{name!r} in {spec!r} is not a corpus name: use names like imdb or yelp_sentences, "
                              f"e.g. {EXAMPLE}.")
        if name not in _known():
            raise CorpusError(f"{name!r} in {spec!r} is not a corpus this app knows: write one of "
                              f"{', '.join(_known())} (`data list`), e.g. {EXAMPLE}.")
        n = None
        if colon:
            if not re.match(r"^[0-9]{1,9}$", cap) or int(cap) < 1:
                raise CorpusError(f"{raw!r} in {spec!r}: after ':' write how many training rows to keep at most, a "
                                  f"whole number of 1 or more, e.g. {name}:25000 (or just {name} for all of them).")
            n = int(cap)
        if name in seen:
            raise CorpusError(f"{name!r} appears twice in {spec!r}: name each corpus once, with at most one cap "
                              f"(e.g. {name}:5000).")
        seen.add(name)
        parts.append(Part(name, n))
    return parts


def normalize(spec: str) -> str:
    "The spec as the app writes it (no spaces): the name a run and a saved combination carry."
    return "+".join(map(str, parse(spec)))


def _domain(name: str) -> str:
    return NAMED[name].domain if name in NAMED else name


def capped(df: pd.DataFrame, cap: int | None, seed: int = CAP_SEED) -> pd.DataFrame:
    """`df` with at most `cap` of its `train` rows, balanced by label as far as it allows, in the frame's order; the
    other splits whole."""
    train = df["split"] == "train"
    if cap is None or int(train.sum()) <= cap:
        return df
    groups = sorted(df[train].groupby("label").groups.items(), key=lambda kv: len(kv[1]))
    left, keep = cap, []
    for k, (lab, idx) in enumerate(groups):
        take = min(len(idx), left // (len(groups) - k))  # smallest label first: what it cannot give, others give
        keep.append(df.loc[idx].sample(n=take, random_state=seed).index)
        left -= take
    rows = df.index[~train].append(keep).sort_values() if keep else df.index[~train]
    return df.loc[rows]


def join(parts: list[Part], read: Iterable[Corpus]) -> Corpus:
    """The combined corpus: `read` yields each part's corpus in `parts` order (`corpora.load` of its name, one at a
    time), capped here and joined with `source`/`src_row`/`domain`."""
    frames, problems = [], []
    for p, c in zip(parts, read, strict=True):
        df = capped(c.df, p.cap)
        n_train = int((c.df["split"] == "train").sum())
        if p.cap is not None and p.cap > n_train:
            problems.append(f"{p}: {p.name} has {n_train:,} training rows, fewer than the cap; all are kept.")
        dom = df["domain"].astype(str) if "domain" in df.columns else _domain(p.name)
        frames.append(pd.DataFrame({"text": df["text"].values, "label": df["label"].values, "split": df["split"].values,
                                    "source": p.name, "src_row": df.index.to_numpy(dtype="int64"),
                                    "domain": dom if isinstance(dom, str) else dom.values}))
        problems += [f"{p.name}: {x}" for x in c.problems]
    return Corpus("+".join(map(str, parts)), pd.concat(frames, ignore_index=True), problems)


def check_classifier(corpus: Corpus) -> None:
    """Refuse, naming the part, a combined corpus a classifier cannot learn from as one task: a part without labels
    (write the spec without it, or train a language model), or parts whose labels cannot be the same classes."""
    df = corpus.df
    labs = {src: sorted(set(g.loc[g["label"] != "", "label"])) for src, g in df.groupby("source", sort=False)}
    without = [s for s, ls in labs.items() if not ls]
    if without and len(without) < len(labs):
        rest = "+".join(p for p in corpus.name.split("+") if p.partition(":")[0] not in without)
        raise CorpusError(f"{', '.join(without)} in {corpus.name!r} has no labels: a classifier (and the baseline) "
                          f"reads labelled text only. Write {rest!r} for this run, or choose the 'lm' kind.")
    named = [(s, ls) for s, ls in labs.items() if ls]
    for i, (s1, l1) in enumerate(named):
        for s2, l2 in named[i + 1:]:
            clash = sorted({a for a in l1 for b in l2 if a != b and canonical(a) == canonical(b)})
            if clash or not set(l1) & set(l2):
                raise CorpusError(f"{s1!r} labels its texts {', '.join(l1)} but {s2!r} uses {', '.join(l2)}: a "
                                  f"classifier on {corpus.name!r} would learn them as different classes. Combine "
                                  f"corpora with the same labels (upload yours again with the same label names), or "
                                  f"leave one out.")


# ----------------------------------------------------------------------------------------------------------- rows read

def ranges(ids) -> list[list[int]]:
    "Sorted row ids as inclusive `[first, last]` runs: 0..24999 and 30000 -> `[[0, 24999], [30000, 30000]]`."
    out: list[list[int]] = []
    for i in sorted(set(int(x) for x in ids)):
        if out and i == out[-1][1] + 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def expand(rs: list[list[int]]) -> list[int]:
    "The row ids of `ranges`' output."
    return [i for a, b in rs for i in range(a, b + 1)]


def record(docs: pd.DataFrame, corpus_name: str, seed: int, max_docs: int | None) -> dict:
    """What a run read, per part: row count, counts per split x label, and the row ids (`src_row`, the row's index in
    that corpus's own frame) as ranges. `docs` is the run's frame after sampling; a single corpus has one part."""
    caps = {p.name: p.cap for p in parse(corpus_name)} if is_combined(corpus_name) else {corpus_name: None}
    src = docs["source"] if "source" in docs.columns else pd.Series(corpus_name, index=docs.index)
    sources = {}
    for name in caps:
        g = docs[src == name]
        sources[name] = {"cap": caps[name], "n_rows": int(len(g)), "by_split_label": by_split_label(g),
                         "rows": ranges(g["src_row"])}
    return {"format": 1, "corpus": corpus_name, "seed": seed, "max_docs": max_docs, "cap_seed": CAP_SEED,
            "n_rows": int(len(docs)), "sources": sources,
            "about": "rows: inclusive [first, last] runs of row indices into corpora.load(<source>).df"}


def summary(rec: dict) -> str:
    "One line for a run's events: rows per part and split."
    parts = []
    for name, s in rec["sources"].items():
        splits = " · ".join(f"{sp} {sum(d.values()):,}" for sp, d in s["by_split_label"].items())
        cap = f":{s['cap']}" if s["cap"] else ""
        parts.append(f"{name}{cap} {s['n_rows']:,} ({splits})")
    return f"Read {rec['n_rows']:,} rows: " + "; ".join(parts) + " (rows.json lists them)."


# ----------------------------------------------------------------------------------------------------------- saved

def _saved_path() -> Path:
    return config.home() / "combinations.json"


def saved() -> list[str]:
    "Combinations composed on the Data page, in the order they were saved."
    p = _saved_path()
    try:
        items = json.loads(p.read_text()) if p.exists() else []
    except (OSError, ValueError):
        return []  # a damaged list loses the shortcuts only: every spec still works typed in full
    return [s for s in items if isinstance(s, str) and is_combined(s)]


def save(spec: str) -> str:
    "Keep a combination for the pickers (validated first); returns its normalized name."
    name = normalize(spec)
    if not is_combined(name):
        raise CorpusError(f"{name!r} is one corpus: pick it directly, or join several with '+', e.g. {EXAMPLE}.")
    items = [s for s in saved() if s != name] + [name]
    config.atomic_write(_saved_path(), json.dumps(items, indent=1))
    return name


def forget(spec: str) -> None:
    config.atomic_write(_saved_path(), json.dumps([s for s in saved() if s != spec], indent=1))


def listed(rows: list[dict]) -> list[dict]:
    "`list_corpora` rows for the saved combinations, given the rows of the plain corpora."
    by = {r["name"]: r for r in rows}
    out = []
    for spec in saved():
        try:
            parts = parse(spec)
        except CorpusError:
            continue  # a part was removed (an upload deleted): the combination is not offered
        ps = [by[p.name] for p in parts]
        out.append(dict(name=spec, title=f"{spec} (combined)", kind="combined",
                        about="Several corpora read as one: " + "; ".join(
                            f"{r['title']}" + (f", at most {p.cap:,} training rows" if p.cap else "")
                            for p, r in zip(parts, ps)) + ".",
                        labelled=all(r["labelled"] for r in ps), available=all(r["available"] for r in ps),
                        fetchable=all(r["available"] or r["fetchable"] for r in ps)))
    return out


def parts_table(corpus: Corpus) -> pd.DataFrame:
    """One row per part of a combined corpus, for the Data page: its cap, documents per split, labelled training rows
    and the share of them that is positive (the balance a classifier sees from that part)."""
    caps = {p.name: p.cap for p in parse(corpus.name)}
    rows = []
    for src, g in corpus.df.groupby("source", sort=False):
        trn = g[(g["split"] == "train") & (g["label"] != "")]
        pos = trn["label"].map(canonical).eq("positive").mean() if len(trn) else None
        cap = caps.get(src)
        rows.append({"corpus": src, "training rows kept": "all" if cap is None else f"at most {cap:,}",
                     "documents": len(g),
                     **{sp: int((g["split"] == sp).sum()) for sp in SPLITS},
                     "share of training rows": len(trn) / max(1, int(((corpus.df["split"] == "train")
                                                                       & (corpus.df["label"] != "")).sum())),
                     "positive (train)": pos})
    return pd.DataFrame(rows)
