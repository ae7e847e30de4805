"""What a corpus is here, below both ways of reading one (`corpora`, one corpus; `combined`, several as one): the
frame every corpus becomes (`Corpus`: `text`, `label`, `split` in `SPLITS`) and its counts, the error every corpus step
raises, and the names the app knows (the named corpora, the uploads' folder, the shape of a combined name).
"""
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ulmfit_demo import config

SPLITS = ("train", "valid", "test", "unsup")


class CorpusError(ValueError):
    "A corpus cannot be had or used: the message says what was wrong and what to do."


@dataclass
class Corpus:
    name: str
    df: pd.DataFrame  # text, label, split
    problems: list[str] = field(default_factory=list)  # things a person should know (non-UTF-8 files, dropped rows)

    @property
    def labels(self) -> list[str]:
        return sorted(x for x in self.df["label"].unique() if x != "")


def count_values(s: pd.Series) -> dict:
    return {str(k): int(v) for k, v in s.value_counts().sort_index().items()}


def by_split_label(df: pd.DataFrame) -> dict:
    "Counts per split x label (`''` for unlabelled), splits in `SPLITS` order: `info`'s and a run record's figures."
    return {sp: count_values(df.loc[df["split"] == sp, "label"]) for sp in SPLITS if (df["split"] == sp).any()}


# ----------------------------------------------------------------------------------------------------------- names

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


def uploads_dir() -> Path:
    return config.sub("datasets")
