"""Where corpora come from, and how they become one DataFrame shape: columns `text`, `label` and `split`.

`label` is the class as a string, `""` for unlabelled text (IMDb's `unsup`, WikiText). `split` is one of `train`,
`valid`, `test`, `unsup`. Named corpora are found in this order (DESIGN.md, "Where data comes from"): fastai's cache,
then an archive of the same name in `$ULMFIT_DEMO_MIRROR` (a folder or base URL), then fastai's own download, then a
clear message of what was tried; the built-in demo corpus is always there. Uploaded corpora (CSV, zip of class
folders) are stored by `uploads` and listed and loaded here like the others.

Every corpus name, plain or combined, is read here: a combined one (`imdb+yelp_sentences:25000`) part by part, each
part like any corpus, then joined by `combined`, which knows the spec but never reads a corpus itself. What a corpus
is (`Corpus`, `CorpusError`, `NAMED`, `SPLITS`, ...) lives in `catalog`, below both.
"""
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Callable

import pandas as pd

from ulmfit_demo import config
from ulmfit_demo.data import combined
from ulmfit_demo.data.catalog import (NAMED, SPLITS, Corpus, CorpusError, NamedCorpus, by_split_label, check_name,
                                      count_values, is_combined, uploads_dir)
from ulmfit_demo.data.download import download
from ulmfit_demo.data.extract import UnsafeArchive, extract
from ulmfit_demo.data.labels import ALIASES

Progress = Callable[[str, float | None], None]


# ----------------------------------------------------------------------------------------------------------- listing

def list_corpora() -> list[dict]:
    "Every corpus the app knows: named ones and uploads, with whether it can be loaded right now without fetching."
    out = [dict(name=c.name, title=c.title, about=c.about, kind="named", labelled=c.labelled,
                available=local_path(c.name) is not None, fetchable=c.folder is not None)
           for c in NAMED.values()]
    for d in sorted(uploads_dir().iterdir()):
        meta = d / "meta.json"
        if d.is_dir() and meta.exists() and (d / "corpus.parquet").exists():
            m = json.loads(meta.read_text())
            out.append(dict(name=d.name, title=f"{d.name} (uploaded)", about=m.get("about", "Uploaded corpus."),
                            kind="upload", labelled=m.get("labelled", True), available=True, fetchable=False))
    out.extend(combined.listed(out))
    return out


def local_path(name: str) -> Path | None:
    """Where the corpus lies on disk now, or None if it would have to be fetched first. For a combined corpus: the part
    changed last (pages stamp their caches with its mtime), or None while any part is missing."""
    if is_combined(name):
        paths = [local_path(p.name) for p in combined.parse(name)]
        return None if None in paths else max(paths, key=lambda p: p.stat().st_mtime_ns)
    check_name(name)
    if name == "demo":
        return config.ASSETS / "demo_reviews.csv"
    if name in NAMED:
        c = NAMED[name]
        p = config.fastai_data() / c.folder
        return p if (p / c.marker).exists() else None
    p = uploads_dir() / name
    return p if (p / "corpus.parquet").exists() else None


# ----------------------------------------------------------------------------------------------------------- fetching

def fetch(name: str, progress: Progress | None = None) -> Path:
    """Make the named corpus available locally and return its folder. Tries fastai's cache, the mirror, fastai's
    download, in that order; raises `CorpusError` listing what was tried. A combined corpus fetches each part."""
    if is_combined(name):
        for p in combined.parse(name):  # a part that cannot be had raises its own message
            fetch(p.name, progress)
        return local_path(name)
    check_name(name)
    if (p := local_path(name)) is not None:
        return p
    if name not in NAMED:
        raise CorpusError(f"There is no corpus called {name!r}. Known: {', '.join(c['name'] for c in list_corpora())}.")
    c = NAMED[name]
    report = progress or (lambda msg, frac: None)
    tried = [f"fastai's cache ({config.fastai_data() / c.folder}): not there"]
    archive = _archive_from_fastai_cache(c)
    if archive is None:
        archive, why = _archive_from_mirror(c, report)
        tried.append(why)
    if archive is None and c.fastai_url and not config.offline():
        archive, why = _archive_online(c, report)
        tried.append(why)
    elif archive is None and c.fastai_url:
        tried.append("online download: switched off (ULMFIT_DEMO_OFFLINE)")
    if archive is None and not c.fastai_url:
        # Only the mirror has it: "connect to the internet" would send a person to look for a download that is none.
        m = config.mirror()
        where = (f"put {c.archive} in {m}" if m and not re.match(r"^https?://", m)
                 else f"put {c.archive} in a folder and set ULMFIT_DEMO_MIRROR to it")
        raise CorpusError(f"{name!r} is not in the mirror (fastai does not publish it, so it is never downloaded). "
                          f"Tried: " + "; ".join(tried) + f". To use it, {where}. The built-in demo corpus still "
                          f"works.")
    if archive is None:
        raise CorpusError(f"Could not get {name!r}. Tried: " + "; ".join(tried) + ". Put "
                          f"{c.archive} in a folder and set ULMFIT_DEMO_MIRROR to it, or connect to the internet. "
                          f"The built-in demo corpus still works.")
    return _install(c, archive, report)


def _archive_from_fastai_cache(c: NamedCorpus) -> Path | None:
    # A user may have downloaded the archive with fastai but not extracted it (or the extraction was interrupted).
    p = config.fastai_data().parent / "archive" / c.archive
    return p if p.is_file() else None


def _archive_from_mirror(c: NamedCorpus, report: Progress) -> tuple[Path | None, str]:
    m = config.mirror()
    if m is None:
        return None, "mirror: ULMFIT_DEMO_MIRROR is not set"
    if re.match(r"^https?://", m):
        if config.offline():
            return None, f"mirror {m}: not tried (ULMFIT_DEMO_OFFLINE)"
        try:
            return _download(m.rstrip("/") + "/" + c.archive, c, report), f"mirror {m}"
        except Exception as e:  # noqa: BLE001 - any network failure means: try the next source
            return None, f"mirror {m}: {type(e).__name__}: {e}"
    folder = Path(m).expanduser()
    if not folder.is_dir():
        return None, f"mirror {folder}: no such folder"
    p = folder / c.archive
    if not p.is_file():
        return None, f"mirror {folder}: has no {c.archive}"
    return p, f"mirror {folder}"


def _archive_online(c: NamedCorpus, report: Progress) -> tuple[Path | None, str]:
    from fastai.data.external import URLs  # the URL is fastai's; imported only here because it is slow

    url = getattr(URLs, c.fastai_url)
    try:
        return _download(url, c, report), f"online {url}"
    except Exception as e:  # noqa: BLE001
        return None, f"online {url}: {type(e).__name__}: {e}"


def _download(url: str, c: NamedCorpus, report: Progress) -> Path:
    "Download into fastai's archive folder (beside its data folder), as fastai's `untar_data` would."
    return download(url, config.fastai_data().parent / "archive" / c.archive, report)


def _install(c: NamedCorpus, archive: Path, report: Progress) -> Path:
    "Extract into a staging folder beside fastai's data and move the corpus folder into place in one rename."
    data = config.fastai_data()
    data.mkdir(parents=True, exist_ok=True)
    staging = data / f".{c.folder}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        extract(archive, staging, progress=report)
        src = staging / c.folder
        if not (src / c.marker).exists():
            raise CorpusError(f"{archive} does not have fastai's layout: expected {c.folder}/{c.marker} inside.")
        final = data / c.folder
        if final.exists():  # an incomplete earlier extraction: replace it
            shutil.rmtree(final)
        os.replace(src, final)
        return final
    except UnsafeArchive as e:
        raise CorpusError(f"{archive.name}: {e}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------- loading

# Bumped whenever a reader's output changes, so an older parquet copy is never reused (v2: imdb's labels read
# `negative`/`positive`, no longer its folder names `neg`/`pos`).
CACHE_VERSION = 2


def load(name: str, progress: Progress | None = None) -> Corpus:
    """The corpus as a DataFrame, fetching it first if needed. Folder corpora are cached as parquet after the first read.
    A combined name (`imdb+yelp_sentences:25000`) is read part by part, one at a time, and joined by `combined`."""
    if is_combined(name):
        parts = combined.parse(name)
        return combined.join(parts, (load(p.name, progress) for p in parts))
    path = fetch(name, progress) if name != "demo" else local_path("demo")
    if name == "demo":
        return Corpus(name, _from_sample_csv(path))
    if name == "imdb_sample":
        return Corpus(name, _from_sample_csv(path / "texts.csv"))
    if name in NAMED:
        cached = config.sub("cache") / f"corpus-{name}-v{CACHE_VERSION}-{_stamp(path)}.parquet"
        # Both files atomically (a temp name of its own per writer); the sidecar, written last, is the commit point.
        if cached.exists() and cached.with_suffix(".json").exists():
            meta = json.loads(cached.with_suffix(".json").read_text())
            return Corpus(name, pd.read_parquet(cached), meta["problems"])
        df, problems = (_from_imdb_folder(path, progress) if name == "imdb"
                        else _from_wikitext(path) if name == "wikitext2_small" else _from_split_csv(path / "texts.csv"))
        config.atomic_write(cached, df.to_parquet(index=False))
        config.atomic_write(cached.with_suffix(".json"), json.dumps({"problems": problems}))
        return Corpus(name, df, problems)
    meta = json.loads((path / "meta.json").read_text())
    return Corpus(name, pd.read_parquet(path / "corpus.parquet"), meta.get("problems", []))


def _stamp(path: Path) -> str:
    # Cheap identity of an extracted folder: it changes when the corpus is extracted again.
    st = path.stat()
    return hashlib.sha1(f"{path}|{st.st_mtime_ns}|{st.st_ino}".encode()).hexdigest()[:12]


def frame(text, label, split) -> pd.DataFrame:
    "The corpus frame from three columns of values, every column a string."
    return pd.DataFrame({"text": pd.Series(text, dtype=str), "label": pd.Series(label, dtype=str),
                         "split": pd.Series(split, dtype=str)})


def _from_sample_csv(path: Path) -> pd.DataFrame:
    "fastai's IMDB_SAMPLE layout: `label,text,is_valid`."
    raw = pd.read_csv(path)
    valid = raw["is_valid"].astype(str).str.lower().isin(["true", "1"])
    return frame(raw["text"], raw["label"], valid.map({True: "valid", False: "train"}))


def _from_split_csv(path: Path) -> tuple[pd.DataFrame, list[str]]:
    "`label,text,split[,domain]` (the mirror's yelp_sentences and amazon_reviews): empty label = unlabelled."
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    bad = sorted(set(raw["split"]) - set(SPLITS))
    if bad:
        raise CorpusError(f"{path} has split values {bad}: expected {', '.join(SPLITS)}. Restore the archive.")
    df = frame(raw["text"], raw["label"], raw["split"])
    if "domain" in raw.columns:
        df["domain"] = raw["domain"].astype(str).values
    keep = df["text"].str.strip() != ""
    problems = [f"{int((~keep).sum())} empty texts left out"] if not keep.all() else []
    return df[keep].reset_index(drop=True), problems


def read_text_file(p: Path, problems: list[str]) -> str:
    "UTF-8, else read as Windows-1252/Latin-1 and reported by name: one odd file never costs the whole corpus."
    raw = p.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(str(p))
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            return raw.decode("latin-1")


def summarize_problems(paths: list[str], what: str = "files") -> list[str]:
    if not paths:
        return []
    names = ", ".join(Path(p).name for p in paths[:10]) + (" ..." if len(paths) > 10 else "")
    return [f"{len(paths)} {what} not UTF-8 (kept, read as Windows-1252/Latin-1; check them): {names}"]


def _from_imdb_folder(path: Path, progress: Progress | None) -> tuple[pd.DataFrame, list[str]]:
    "fastai's IMDB layout: train/{pos,neg}, test/{pos,neg}, unsup. Labels read `negative`/`positive` (`labels`)."
    report = progress or (lambda msg, frac: None)
    jobs = [(path / s / lab, ALIASES[lab], s) for s in ("train", "test") for lab in ("neg", "pos")]
    jobs.append((path / "unsup", "", "unsup"))
    texts, labels, splits, bad = [], [], [], []
    for k, (folder, lab, split) in enumerate(jobs):
        report(f"Reading {split}/{lab or 'unlabelled'} reviews", k / len(jobs))
        for e in sorted(os.scandir(folder), key=lambda e: e.name):
            if e.name.endswith(".txt"):
                texts.append(read_text_file(Path(e.path), bad))
                labels.append(lab)
                splits.append(split)
    report("Read all reviews", 1.0)
    return frame(texts, labels, splits), summarize_problems(bad)


def _from_wikitext(path: Path) -> tuple[pd.DataFrame, list[str]]:
    "One document per Wikipedia article: articles start at top-level ` = Title = ` lines."
    texts, splits = [], []
    for fname, split in (("valid.txt", "train"), ("test.txt", "valid")):
        cur: list[str] = []
        for line in (path / fname).read_text(encoding="utf-8").splitlines():
            if re.match(r"^ = [^=].* = $", line) and cur:
                texts.append("\n".join(cur).strip())
                splits.append(split)
                cur = []
            if line.strip():
                cur.append(line.strip())
        if cur:
            texts.append("\n".join(cur).strip())
            splits.append(split)
    return frame(texts, [""] * len(texts), splits), []


# ----------------------------------------------------------------------------------------------------------- stats

def info(corpus: Corpus) -> dict:
    """Counts per split, per label (`""` for unlabelled) and per split x label: the numbers `data info --json` prints.
    Plus `by_domain` where the corpus has a `domain` column (amazon_reviews, a combined corpus), and `by_source` (each
    part's counts, and its cap) for a combined corpus."""
    df = corpus.df
    out = {"name": corpus.name, "n_docs": int(len(df)), "by_split": count_values(df["split"]),
           "by_label": count_values(df["label"]), "by_split_label": by_split_label(df)}
    if "domain" in df.columns:
        out["by_domain"] = count_values(df["domain"])
    if "source" in df.columns:
        out["by_source"] = {src: {"n_docs": int(len(g)), "by_split": count_values(g["split"]),
                                  "by_label": count_values(g["label"]), "by_split_label": by_split_label(g)}
                            for src, g in df.groupby("source", sort=False)}
    return out


def counts_table(corpus: Corpus) -> pd.DataFrame:
    "Documents per split (rows) and label (columns), for the Data page."
    t = pd.crosstab(corpus.df["split"], corpus.df["label"].replace("", "(unlabelled)"))
    return t.reindex([s for s in SPLITS if s in t.index])


def examples(corpus: Corpus, per: int = 2, seed: int = 0) -> dict[str, pd.DataFrame]:
    """A few labelled texts per domain (amazon_reviews' nine, a combined corpus's parts), else per label: what the
    Data page shows as examples. Seeded, so a rerun shows the same ones."""
    df = corpus.df[corpus.df["label"] != ""]
    if df.empty:
        df = corpus.df
    key = "domain" if "domain" in df.columns else "label"
    return {str(k): g.sample(n=min(per, len(g)), random_state=seed)[["label", "text"]]
            for k, g in df.groupby(key, sort=True)}


def classifier_frame(corpus: Corpus, seed: int = 42) -> pd.DataFrame:
    """Labelled rows with an `is_valid` column, as fastai's `TextDataLoaders.from_df(valid_col=...)` wants. Uses the
    corpus's own valid split, else its test split (as the seeds do for IMDb), else a seeded random 20%. Refuses a
    corpus a classifier cannot learn from, with a message."""
    if "source" in corpus.df.columns:
        combined.check_classifier(corpus)  # every part labelled, one label vocabulary: else a message naming the part
    df = corpus.df[corpus.df["label"] != ""]
    labels = sorted(df["label"].unique())
    if len(labels) == 0:
        raise CorpusError(f"{corpus.name!r} has no labels: it can fine-tune a language model, but a classifier needs "
                          f"labelled text. Upload a CSV with a label column, or pick a labelled corpus.")
    if len(labels) == 1:
        raise CorpusError(f"{corpus.name!r} has only one label ({labels[0]!r}): a classifier needs at least two. It can "
                          f"still fine-tune a language model.")
    df = df.copy()
    if "source" in df.columns:
        # Each part by its own rule: imdb's test split validates imdb even where another part has a valid split.
        df["is_valid"] = pd.concat([_valid_rows(g, seed) for _, g in df.groupby("source", sort=False)])
    else:
        df["is_valid"] = _valid_rows(df, seed)
    if df["is_valid"].all() or not df["is_valid"].any():
        raise CorpusError(f"{corpus.name!r} needs both training and validation rows for a classifier.")
    return df.reset_index(drop=True)


def _valid_rows(df: pd.DataFrame, seed: int) -> pd.Series:
    "The validation rows of one corpus's labelled frame: its valid split, else its test split, else a seeded 20%."
    if (df["split"] == "valid").any():
        return df["split"] == "valid"
    if (df["split"] == "test").any():
        return df["split"] == "test"
    # Positional, exactly as before parts existed, so a single corpus keeps the split its earlier runs used.
    picked = df.sample(frac=1.0, random_state=seed).index.isin(df.sample(frac=0.2, random_state=seed).index)
    return pd.Series(picked, index=df.index)


def fingerprint(df: pd.DataFrame) -> str:
    "A content hash of a corpus frame: caches of tokenized text are keyed by it, so an edited corpus is never stale."
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(df[["text", "label", "split"]], index=False).values.tobytes())
    return h.hexdigest()[:16]
