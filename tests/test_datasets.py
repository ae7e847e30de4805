"""The corpus layer on real files: the mirror's archives, fixtures built here, and uploads with bad input."""
import io
import shutil
import tarfile
import zipfile

import pandas as pd
import pytest
from support import mirror_archive

from ulmfit_demo import config
from ulmfit_demo.data import corpora as datasets, tokcache, uploads
from ulmfit_demo.data.corpora import CorpusError


def test_demo_corpus_is_there_offline_and_balanced():
    c = datasets.load("demo")
    info = datasets.info(c)
    assert info["n_docs"] >= 400
    assert info["by_label"]["positive"] == info["by_label"]["negative"]
    assert set(info["by_split"]) == {"train", "valid"}
    sentences = c.df["text"].str.count(r"[.!?]+(\s|$)")
    assert sentences.max() <= 10 and (c.df["text"].str.len() > 0).all()
    # it exercises fastai's rules: entities, line breaks, repeated chars/words, ALL CAPS
    for pat in ["&amp;", "<br />", "!!!!", r"\b(?P<w>[a-z]+) (?P=w) (?P=w) (?P=w)\b", r"\b[A-Z]{3,}\b"]:
        assert c.df["text"].str.contains(pat, regex=True).any(), pat


def test_imdb_sample_from_mirror_into_fastai_cache(fastai_home):
    mirror_archive("imdb_sample.tgz")
    shutil.rmtree(config.fastai_data() / "imdb_sample", ignore_errors=True)
    seen = []
    path = datasets.fetch("imdb_sample", lambda m, f: seen.append(f))
    assert path == fastai_home / "data" / "imdb_sample" and (path / "texts.csv").is_file()
    assert seen and seen[-1] == 1.0
    info = datasets.info(datasets.load("imdb_sample"))
    assert info == {"name": "imdb_sample", "n_docs": 1000, "by_split": {"train": 800, "valid": 200},
                    "by_label": {"negative": 500, "positive": 500},
                    "by_split_label": {"train": {"negative": 400, "positive": 400},
                                       "valid": {"negative": 100, "positive": 100}}}
    assert not list(config.fastai_data().glob(".*staging*"))


def test_fastai_cache_is_used_first(monkeypatch, fastai_home):
    "A corpus already in fastai's cache is used as is: no mirror needed."
    mirror_archive("imdb_sample.tgz")
    datasets.fetch("imdb_sample")
    monkeypatch.setenv("ULMFIT_DEMO_MIRROR", "/nonexistent")
    assert datasets.fetch("imdb_sample") == fastai_home / "data" / "imdb_sample"


@pytest.mark.parametrize("mirror,why", [("/nonexistent/mirror", "no such folder"), ("EMPTY", "has no imdb.tgz")])
def test_missing_mirror_or_archive_says_what_was_tried(tmp_path, monkeypatch, mirror, why):
    monkeypatch.setenv("ULMFIT_DEMO_MIRROR", str(tmp_path) if mirror == "EMPTY" else mirror)
    monkeypatch.setenv("FASTAI_HOME", str(tmp_path / "fh"))
    with pytest.raises(CorpusError) as e:
        datasets.fetch("imdb")
    msg = str(e.value)
    assert "fastai's cache" in msg and why in msg and "ULMFIT_DEMO_MIRROR" in msg and "demo corpus" in msg
    assert datasets.load("demo").df.shape[0] >= 400  # the app stays usable


@pytest.mark.parametrize("bad", ["../etc", "a/b", "..", "/abs", "", "x" * 60, "name with space"])
def test_bad_corpus_names_refused(bad):
    with pytest.raises(CorpusError, match="not a valid corpus name"):
        datasets.fetch(bad)
    with pytest.raises(CorpusError, match="not a valid corpus name"):
        uploads.import_csv(bad, b"text\nhello\n", "text")
    assert list(datasets.uploads_dir().iterdir()) == []


def test_wrong_archive_layout_refused(tmp_path, monkeypatch):
    "A mirror archive with the right name but not fastai's layout is refused with a message, nothing installed."
    arc = tmp_path / "imdb_sample.tgz"
    with tarfile.open(arc, "w:gz") as t:
        data = b"label,text,is_valid\n"
        ti = tarfile.TarInfo("something_else/texts.csv")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    monkeypatch.setenv("ULMFIT_DEMO_MIRROR", str(tmp_path))
    monkeypatch.setenv("FASTAI_HOME", str(tmp_path / "fh"))
    with pytest.raises(CorpusError, match="fastai's layout"):
        datasets.fetch("imdb_sample")
    assert not (tmp_path / "fh" / "data" / "imdb_sample").exists()


# ------------------------------------------------------------------------------------------------ CSV uploads

CSV = b"review,sentiment,valid\nGreat film!,pos,0\nAwful film.,neg,1\nLoved it,pos,0\nHated it,neg,0\n"


def test_csv_upload_with_mapped_columns():
    c = uploads.import_csv("mine", CSV, "review", "sentiment", "valid")
    assert datasets.info(c) == {"name": "mine", "n_docs": 4, "by_split": {"train": 3, "valid": 1},
                                "by_label": {"neg": 2, "pos": 2},  # an upload keeps the user's labels as they are
                                "by_split_label": {"train": {"neg": 1, "pos": 2}, "valid": {"neg": 1}}}
    again = datasets.load("mine")
    pd.testing.assert_frame_equal(again.df, c.df)
    assert "mine" in [r["name"] for r in datasets.list_corpora()]
    assert datasets.classifier_frame(again)["is_valid"].sum() == 1


def test_csv_without_mapped_columns_names_the_columns_found():
    with pytest.raises(CorpusError) as e:
        uploads.import_csv("mine", CSV, "text", "label")
    assert "'text'" in str(e.value) and "'label'" in str(e.value)
    assert "'review', 'sentiment', 'valid'" in str(e.value)
    assert not (datasets.uploads_dir() / "mine").exists()


@pytest.mark.parametrize("data,msg", [(b"", "empty"), (b"   \n", "empty"), (b"text,label\n", "no rows")])
def test_empty_csv(data, msg):
    with pytest.raises(CorpusError, match=msg):
        uploads.import_csv("mine", data, "text", "label")


def test_single_label_csv_is_lm_only():
    c = uploads.import_csv("onelabel", b"text,label\nnice,pos\nsweet,pos\ngood,pos\n", "text", "label")
    assert any("only one label" in p for p in c.problems)
    with pytest.raises(CorpusError, match="only one label.*still fine-tune a language model"):
        datasets.classifier_frame(c)


def test_unlabelled_csv_is_lm_only():
    c = uploads.import_csv("nolabel", b"text\none\ntwo\n", "text")
    assert set(c.df["label"]) == {""}
    with pytest.raises(CorpusError, match="no labels"):
        datasets.classifier_frame(c)


def test_existing_corpus_is_never_lost():
    uploads.import_csv("keep", CSV, "review", "sentiment")
    with pytest.raises(CorpusError, match="already exists"):
        uploads.import_csv("keep", b"text\nother\n", "text")
    with pytest.raises(CorpusError):
        uploads.import_csv("keep", b"text,label\n", "text", "label", overwrite=True)  # bad input, even with replace
    assert len(datasets.load("keep").df) == 4
    uploads.import_csv("keep", b"text\nother\n", "text", overwrite=True)
    assert datasets.load("keep").df["text"].tolist() == ["other"]


def test_two_mb_review_is_handled():
    "One huge review: stored whole, tokenized (capped at MAX_CHARS for spaCy) without error."
    big = ("This film is long. " * 110_000)[:2_000_000]
    data = pd.DataFrame({"text": [big, "Short and sweet.", "Dull."], "label": ["pos", "pos", "neg"]}).to_csv(index=False)
    c = uploads.import_csv("big", data.encode(), "text", "label")
    assert len(c.df["text"][0]) == 2_000_000
    tok = tokcache.tokenized(c.df)
    assert tok["n_tokens"][0] > 10_000 and tok["tokens"][0][0] == "xxbos"


# ------------------------------------------------------------------------------------------------ zip uploads

def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in members.items():
            z.writestr(n, d)
    return buf.getvalue()


def test_zip_of_class_folders():
    data = zip_bytes({"reviews/train/pos/1.txt": b"great", "reviews/train/neg/2.txt": b"bad",
                      "reviews/valid/pos/3.txt": b"fine", "reviews/valid/neg/4.txt": b"poor",
                      "reviews/train/pos/notes.md": b"not a review"})
    c = uploads.import_folder_zip("folders", data)
    assert datasets.info(c)["by_split"] == {"train": 2, "valid": 2}
    assert sorted(c.labels) == ["neg", "pos"]
    assert any("not .txt" in p for p in c.problems)


def test_non_utf8_file_reported_rest_kept():
    data = zip_bytes({"pos/good.txt": "Très bien".encode(), "neg/bad.txt": "caf\xe9 awful".encode("latin-1"),
                      "neg/ok.txt": b"boring"})
    c = uploads.import_folder_zip("enc", data)
    assert len(c.df) == 3
    assert any("1 files not UTF-8" in p and "bad.txt" in p for p in c.problems)
    assert "café awful" in c.df["text"].tolist() and "Très bien" in c.df["text"].tolist()
    assert datasets.load("enc").problems == c.problems


@pytest.mark.parametrize("evil", ["../evil.txt", "/abs/evil.txt"])
def test_zip_with_escaping_path_refused(tmp_path, evil):
    before = sorted(p.name for p in datasets.uploads_dir().iterdir())
    with pytest.raises(CorpusError, match="refused, nothing was stored"):
        uploads.import_folder_zip("evil", zip_bytes({"pos/1.txt": b"ok", evil: b"pwned"}))
    assert sorted(p.name for p in datasets.uploads_dir().iterdir()) == before
    assert not (config.home() / "evil.txt").exists() and not (datasets.uploads_dir() / "evil.txt").exists()


def test_zip_bomb_upload_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("pos/bomb.txt", b"a" * (40 * 1024**2))
    with pytest.raises(CorpusError, match="compression ratio"):
        uploads.import_folder_zip("bomb", buf.getvalue())
    assert not (datasets.uploads_dir() / "bomb").exists()


def test_not_a_zip_and_no_class_folders():
    with pytest.raises(CorpusError, match="not a zip"):
        uploads.import_folder_zip("x", b"plain text")
    with pytest.raises(CorpusError, match="No .txt files"):
        uploads.import_folder_zip("x", zip_bytes({"readme.md": b"hi"}))


# ------------------------------------------------------------------------------------------------ caching

def test_tokenized_corpus_is_cached_by_content(monkeypatch):
    df = datasets.load("demo").df.head(30)
    first = tokcache.tokenized(df)
    files = list((config.home() / "cache").glob("tok-word-*.parquet"))
    assert len(files) == 1

    def boom(*a, **k):
        raise AssertionError("tokenized twice")

    monkeypatch.setattr(tokcache, "word_tokenize", boom)
    again = tokcache.tokenized(df)
    assert again["tokens"].tolist() == first["tokens"].tolist()
    with pytest.raises(AssertionError, match="tokenized twice"):  # different content: a new key
        tokcache.tokenized(df.assign(text=df["text"] + "!"))
