"""Where corpora come from, and how they become one DataFrame shape: columns `text`, `label` and `split`.

`label` is the class as a string, `""` for unlabelled text (IMDb's `unsup`, WikiText). `split` is one of `train`,
`valid`, `test`, `unsup`. Named corpora are found in this order (DESIGN.md, "Where data comes from"): fastai's cache,
then an archive of the same name in `$ULMFIT_DEMO_MIRROR` (a folder or base URL), then fastai's own download, then a
clear message of what was tried; the built-in demo corpus is always there. Uploaded corpora (CSV, zip of class
folders) are stored by `uploads` and listed and loaded here like the others.
"""
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from ulmfit_demo import config
from ulmfit_demo.data.download import download
from ulmfit_demo.data.extract import UnsafeArchive, extract
from ulmfit_demo.data.labels import ALIASES

Progress = Callable[[str, float | None], None]
SPLITS = ("train", "valid", "test", "unsup")


class CorpusError(ValueError):
    "A corpus cannot be had or used: the message says what was wrong and what to do."


@dataclass(frozen=True)
class NamedCorpus:
    name: str
    title: str
    about: str
    folder: str | None = None  # folder name inside fastai's data cache (and at the archive's root)
    marker: str | None = None  # a path inside `folder` that only a complete extraction has
    fastai_url: str | None = None  # attribute of fastai's `URLs`, for the online step
    labelled: bool = True
    domain: str = "other"  # what its texts are about, for a combined corpus's `domain` column (amazon's has its own)

    @property
    def archive(self) -> str | None:
        return f"{self.folder}.tgz" if self.folder else None


NAMED = {
    c.name: c
    for c in [
        NamedCorpus("demo", "Demo reviews (built in)",
                    "Short movie reviews written for this app, balanced positive/negative. Always available, offline.",
                    domain="films"),
        NamedCorpus("imdb_sample", "IMDb sample (1,000 reviews)",
                    "1,000 IMDb reviews with a train/valid flag: fastai's URLs.IMDB_SAMPLE. About 0.5 MB.",
                    folder="imdb_sample", marker="texts.csv", fastai_url="IMDB_SAMPLE", domain="films"),
        NamedCorpus("imdb", "IMDb full (100,000 reviews)",
                    "The Large Movie Review Dataset: 25k train, 25k test (labelled), 50k unlabelled: fastai's "
                    "URLs.IMDB, as in the ULMFiT paper. About 60 MB to download, 133 MB unpacked.",
                    folder="imdb", marker="unsup", fastai_url="IMDB", domain="films"),
        NamedCorpus("wikitext2_small", "WikiText-2 (small, general English)",
                    "Wikipedia articles, no labels: for pretraining a language model from scratch (ULMFiT stage 1). "
                    "WikiText-2's validation file is used as training text here and its test file for validation.",
                    folder="wikitext2_small", marker="valid.txt", labelled=False, domain="wikipedia"),
        # Not fastai archives (no fastai URL): found in fastai's cache layout or the mirror only, never downloaded.
        NamedCorpus("yelp_sentences", "Yelp sentences (156k, restaurants, shops, services)",
                    "Short sentences from Yelp business reviews (8 words on average), labelled negative/positive, "
                    "146k train / 10k test: everyday non-film text (Shen et al. 2017). Yelp's terms: academic and "
                    "non-commercial use. In the mirror only; about 3 MB.",
                    folder="yelp_sentences", marker="texts.csv", domain="businesses"),
        NamedCorpus("amazon_reviews", "Amazon product reviews (29k, nine domains)",
                    "Amazon reviews of nine non-film domains (apparel, baby, camera, health, magazines, music, "
                    "software, sports, toys) from FDU-MTL (Liu et al. 2017): 13k labelled train, 3k test, 13k "
                    "unlabelled, with a domain column. In the mirror only; about 6 MB.",
                    folder="amazon_reviews", marker="texts.csv"),
    ]
}

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")


def check_name(name: str) -> str:
    "A corpus name is a plain folder name: refuse `/`, `..` and the like before it touches a path."
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise CorpusError(f"{name!r} is not a valid corpus name: use letters, digits, '-' and '_' "
                          f"(up to 48, starting with a letter or digit), for example 'my_reviews'.")
    return name


def is_combined(name) -> bool:
    "Whether `name` is a combined corpus (`imdb+yelp_sentences:25000`): a plain corpus name has neither '+' nor ':'."
    return isinstance(name, str) and ("+" in name or ":" in name)


# ----------------------------------------------------------------------------------------------------------- listing

def uploads_dir() -> Path:
    return config.sub("datasets")


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
    from ulmfit_demo.data import combined

    out.extend(combined.listed(out))
    return out


def local_path(name: str) -> Path | None:
    """Where the corpus lies on disk now, or None if it would have to be fetched first. For a combined corpus: the part
    changed last (pages stamp their caches with its mtime), or None while any part is missing."""
    if is_combined(name):
        from ulmfit_demo.data import combined

        return combined.local_path(name)
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
        from ulmfit_demo.data import combined

        return combined.fetch(name, progress)
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

@dataclass
class Corpus:
    name: str
    df: pd.DataFrame  # text, label, split
    problems: list[str] = field(default_factory=list)  # things a person should know (non-UTF-8 files, dropped rows)

    @property
    def labels(self) -> list[str]:
        return sorted(x for x in self.df["label"].unique() if x != "")


# Bumped whenever a reader's output changes, so an older parquet copy is never reused (v2: imdb's labels read
# `negative`/`positive`, no longer its folder names `neg`/`pos`).
CACHE_VERSION = 2


def load(name: str, progress: Progress | None = None) -> Corpus:
    """The corpus as a DataFrame, fetching it first if needed. Folder corpora are cached as parquet after the first read.
    A combined name (`imdb+yelp_sentences:25000`) is read part by part (`combined`)."""
    if is_combined(name):
        from ulmfit_demo.data import combined

        return combined.load(name, progress)
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

def _counts(s: pd.Series) -> dict:
    return {str(k): int(v) for k, v in s.value_counts().sort_index().items()}


def _split_label(df: pd.DataFrame) -> dict:
    return {sp: _counts(df.loc[df["split"] == sp, "label"]) for sp in SPLITS if (df["split"] == sp).any()}


def info(corpus: Corpus) -> dict:
    """Counts per split, per label (`""` for unlabelled) and per split x label: the numbers `data info --json` prints.
    Plus `by_domain` where the corpus has a `domain` column (amazon_reviews, a combined corpus), and `by_source` (each
    part's counts, and its cap) for a combined corpus."""
    df = corpus.df
    out = {"name": corpus.name, "n_docs": int(len(df)), "by_split": _counts(df["split"]),
           "by_label": _counts(df["label"]), "by_split_label": _split_label(df)}
    if "domain" in df.columns:
        out["by_domain"] = _counts(df["domain"])
    if "source" in df.columns:
        out["by_source"] = {src: {"n_docs": int(len(g)), "by_split": _counts(g["split"]),
                                  "by_label": _counts(g["label"]), "by_split_label": _split_label(g)}
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
        from ulmfit_demo.data import combined

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
