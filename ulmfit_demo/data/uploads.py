"""Uploaded corpora: a CSV (the person maps the text, label and validation columns) or a zip of one folder per class
of `.txt` files, normalised to the corpus frame (`text`, `label`, `split`) and stored under
`$ULMFIT_DEMO_HOME/datasets/<name>/` (parquet + meta.json), where `corpora.list_corpora` and `corpora.load` find them.

A zip is extracted with the same limits as any archive (`extract`); text that is not UTF-8 is kept and reported by
name. An upload replaces an existing one only when asked, and never leaves it half-written.
"""
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

from ulmfit_demo.data.catalog import NAMED, Corpus, CorpusError, check_name, uploads_dir
from ulmfit_demo.data.corpora import frame, read_text_file, summarize_problems
from ulmfit_demo.data.extract import DEFAULT_LIMITS, Limits, UnsafeArchive, extract


def _store_upload(name: str, df: pd.DataFrame, about: str, problems: list[str], overwrite: bool) -> Corpus:
    "Write the normalised frame and its metadata into a temp folder, then rename: an existing corpus is never half-lost."
    check_name(name)
    if name in NAMED:
        raise CorpusError(f"{name!r} is the name of a built-in corpus: pick another name.")
    final = uploads_dir() / name
    if final.exists() and not overwrite:
        raise CorpusError(f"A corpus called {name!r} already exists: pick another name, or choose to replace it.")
    tmp = Path(tempfile.mkdtemp(dir=uploads_dir(), prefix=f".{name}."))
    try:
        df.to_parquet(tmp / "corpus.parquet", index=False)
        labelled = (df["label"] != "").any()
        (tmp / "meta.json").write_text(json.dumps({"about": about, "problems": problems, "labelled": bool(labelled),
                                                   "n_docs": len(df)}))
        if final.exists():
            old = final.with_name(f".{name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Corpus(name, df, problems)


def read_csv_upload(data: bytes) -> pd.DataFrame:
    "Parse an uploaded CSV (UTF-8, else Latin-1), with messages a person can act on."
    if not data or not data.strip():
        raise CorpusError("The CSV file is empty: upload a file with a header row and at least one row of text.")
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise CorpusError("The CSV file is empty: upload a file with a header row and at least one row of text.") from None
    except pd.errors.ParserError as e:
        raise CorpusError(f"This file could not be read as CSV ({e}). Save it as comma-separated values and retry.") from None
    if raw.empty:
        raise CorpusError(f"The CSV has a header ({', '.join(raw.columns)}) but no rows of text.")
    return raw


def import_csv(name: str, data: bytes, text_col: str, label_col: str | None = None, valid_col: str | None = None,
               overwrite: bool = False) -> Corpus:
    """Store an uploaded CSV as corpus `name`. `label_col` None makes a language-model-only corpus; `valid_col`
    holds a truthy flag (True/1/yes/valid) for validation rows."""
    check_name(name)
    raw = read_csv_upload(data)
    wanted = [c for c in (text_col, label_col, valid_col) if c]
    missing = [c for c in wanted if c not in raw.columns]
    if missing:
        raise CorpusError(f"The CSV has no column {', '.join(repr(c) for c in missing)}. Columns found: "
                          f"{', '.join(repr(c) for c in raw.columns)}. Pick the columns to use from those.")
    text = raw[text_col].astype(str)
    keep = text.str.strip() != ""
    problems = [f"{int((~keep).sum())} rows with empty text were left out"] if (~keep).any() else []
    raw = raw[keep]
    if raw.empty:
        raise CorpusError(f"Every row of column {text_col!r} is empty: pick the column that holds the text.")
    label = raw[label_col].astype(str).str.strip() if label_col else pd.Series([""] * len(raw), index=raw.index)
    if valid_col:
        split = raw[valid_col].astype(str).str.strip().str.lower().isin(["true", "1", "yes", "valid", "y"]).map(
            {True: "valid", False: "train"})
    else:
        split = pd.Series(["train"] * len(raw), index=raw.index)
    df = frame(raw[text_col].values, label.values, split.values)
    labs = sorted(set(df["label"]) - {""})
    about = (f"Uploaded CSV: {len(df):,} texts, " + (f"labels {', '.join(labs)}." if labs else "no labels (language model only)."))
    if len(labs) == 1:
        problems.append(f"only one label ({labs[0]!r}): usable for the language model, not for a classifier")
    return _store_upload(name, df, about, problems, overwrite)


def import_folder_zip(name: str, data: bytes, limits: Limits = DEFAULT_LIMITS, overwrite: bool = False) -> Corpus:
    """Store an uploaded zip of one folder per class of `.txt` files (optionally under `train/` and `valid/` or
    `test/`, optionally inside one top folder) as corpus `name`."""
    check_name(name)
    if not data:
        raise CorpusError("The zip file is empty.")
    with tempfile.TemporaryDirectory() as td:
        zpath = Path(td) / "upload.zip"
        zpath.write_bytes(data)
        if not zipfile.is_zipfile(zpath):
            raise CorpusError("This file is not a zip archive: upload a .zip holding one folder per class of .txt files.")
        try:
            root = extract(zpath, Path(td) / "x", limits=limits)
        except UnsafeArchive as e:
            raise CorpusError(f"The zip was refused, nothing was stored: {e}") from None
        df, problems = _from_class_folders(root)
    about = f"Uploaded zip: {len(df):,} texts, labels {', '.join(sorted(set(df['label'])))}."
    return _store_upload(name, df, about, problems, overwrite)


def _from_class_folders(root: Path) -> tuple[pd.DataFrame, list[str]]:
    dirs = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(("__MACOSX", "."))]
    files = [f for f in root.iterdir() if f.is_file()]
    while len(dirs) == 1 and not files:  # zips often wrap everything in one top folder
        root = dirs[0]
        dirs = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(("__MACOSX", "."))]
        files = [f for f in root.iterdir() if f.is_file()]
    split_dirs = {d.name.lower(): d for d in dirs if d.name.lower() in ("train", "valid", "test")}
    layout = ([(d, "valid" if s == "test" else s) for s, d in split_dirs.items()] if split_dirs else [(root, "train")])
    texts, labels, splits, bad, skipped = [], [], [], [], 0
    for base, split in layout:
        for cls in sorted(d for d in base.iterdir() if d.is_dir() and not d.name.startswith(("__MACOSX", "."))):
            for f in sorted(cls.rglob("*")):
                if not f.is_file():
                    continue
                if f.suffix.lower() != ".txt":
                    skipped += 1
                    continue
                texts.append(read_text_file(f, bad))
                labels.append(cls.name)
                splits.append(split)
    if not texts:
        raise CorpusError("No .txt files were found in class folders. The zip should hold one folder per class, e.g. "
                          "pos/1.txt, neg/2.txt (optionally inside train/ and valid/).")
    problems = summarize_problems(bad)
    if skipped:
        problems.append(f"{skipped} files that are not .txt were left out")
    if len(set(labels)) == 1:
        problems.append(f"only one class folder ({labels[0]!r}): usable for the language model, not for a classifier")
    return frame(texts, labels, splits), problems


def delete_upload(name: str) -> None:
    check_name(name)
    if name in NAMED:
        raise CorpusError(f"{name!r} is built in and cannot be deleted.")
    shutil.rmtree(uploads_dir() / name)
