"""Issue #17, part 1: the mirror's two review corpora, one label vocabulary, and combined corpora (`a+b:N+c`) read
through `corpora.load` by every path that takes a corpus name, with the run's record of which rows it read. Real
archives from `$ULMFIT_DEMO_MIRROR` (a missing one fails), real baseline runs in a worker, the real bundled model."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from support import mirror_archive
from ulmfit_demo import models
from ulmfit_demo.data import combined, corpora, uploads
from ulmfit_demo.data.corpora import CorpusError
from ulmfit_demo.judge import baseline

REPO = Path(__file__).resolve().parent.parent


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ulmfit_demo", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def cli_json(*args):
    r = cli(*args, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def one_line_error(r) -> str:
    assert r.returncode != 0 and r.stdout == ""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


# ----------------------------------------------------------------------------------------------------------- corpora

def test_yelp_sentences_counts_from_the_mirror():
    mirror_archive("yelp_sentences.tgz")
    out = cli_json("data", "info", "yelp_sentences")
    assert out["n_docs"] == 156282
    assert out["by_split"] == {"test": 10000, "train": 146282}
    assert out["by_split_label"] == {"train": {"negative": 57373, "positive": 88909},
                                     "test": {"negative": 3841, "positive": 6159}}
    assert "by_domain" not in out  # yelp has no domain column


def test_amazon_reviews_counts_per_split_label_and_domain():
    mirror_archive("amazon_reviews.tgz")
    out = cli_json("data", "info", "amazon_reviews")
    assert out["by_split"] == {"test": 3157, "train": 13276, "unsup": 12680}
    assert out["by_split_label"] == {"train": {"negative": 6351, "positive": 6925},
                                     "test": {"negative": 1454, "positive": 1703}, "unsup": {"": 12680}}
    assert out["by_domain"] == {"apparel": 3819, "baby": 3734, "camera_photo": 2554, "health_personal_care": 3500,
                                "magazines": 2199, "music": 3933, "software": 2066, "sports_outdoors": 3740,
                                "toys_games": 3568}
    rows = {r["name"]: r for r in cli_json("data", "list")}
    assert rows["yelp_sentences"]["available"] and rows["amazon_reviews"]["available"]


@pytest.mark.parametrize("name", ["yelp_sentences", "amazon_reviews"])
def test_an_empty_mirror_says_not_in_the_mirror_in_one_line(tmp_path, name):
    r = cli("data", "info", name, env={"ULMFIT_DEMO_MIRROR": str(tmp_path), "FASTAI_HOME": str(tmp_path / "fh")})
    line = one_line_error(r)
    assert f"'{name}' is not in the mirror" in line and f"put {name}.tgz in {tmp_path}" in line
    assert "internet" not in line  # fastai does not publish it: there is nothing to download
    r = cli("data", "info", name, env={"ULMFIT_DEMO_MIRROR": "", "FASTAI_HOME": str(tmp_path / "fh")})
    assert "set ULMFIT_DEMO_MIRROR" in one_line_error(r)
    assert not (tmp_path / "fh" / "data" / name).exists()


def test_an_old_parquet_copy_with_other_labels_is_not_reused():
    "The cache key has a version: a copy written by an older reader (imdb's neg/pos) is never read back."
    mirror_archive("yelp_sentences.tgz")
    path = corpora.fetch("yelp_sentences")
    old = corpora.config.sub("cache") / f"corpus-yelp_sentences-{corpora._stamp(path)}.parquet"
    corpora.frame(["stale"], ["neg"], ["train"]).to_parquet(old, index=False)
    old.with_suffix(".json").write_text('{"problems": []}')
    c = corpora.load("yelp_sentences")
    assert c.labels == ["negative", "positive"] and len(c.df) == 156282


# ----------------------------------------------------------------------------------------------------------- labels

def test_imdb_says_negative_positive_and_an_imdb_baseline_joins_the_bundled_model(bundled_awd):
    "The issue's case: `models ensemble bundled <baseline fitted on imdb>` was refused for neg/pos vs negative/positive."
    mirror_archive("imdb.tgz")
    run = cli_json("train", "--kind", "baseline", "--dataset", "imdb", "--set", "max_docs=4000")
    assert run["status"] == "SUCCEEDED", run
    assert models.read_meta(run["model_id"])["labels"] == ["negative", "positive"]
    ens = cli_json("models", "ensemble", bundled_awd, run["model_id"], "--name", "bundled+imdb",
                   "--eval-dataset", "imdb_sample")
    assert ens["evaluation"]["n"] == 200 and ens["evaluation"]["accuracy"] > 0.6
    pred = cli_json("predict", "--model", ens["model_id"], "--text", "A wonderful, moving film.")
    assert pred["label"] == "positive" and set(pred["probs"]) == {"negative", "positive"}


def _old_imdb_baseline() -> str:
    "A baseline as one stored before the label change: fitted on IMDb reviews labelled neg/pos, corpus imdb."
    df = corpora.classifier_frame(corpora.load("imdb_sample"))
    trn = df[~df["is_valid"]]
    base = baseline.fit(trn["text"].tolist(), [{"negative": "neg", "positive": "pos"}[x] for x in trn["label"]])
    return models.save_baseline(base, name="imdb baseline (old labels)", corpus="imdb", metrics={"accuracy": 0.8})


def test_models_stored_with_neg_pos_keep_working_in_ensembles(bundled_awd):
    mirror_archive("imdb_sample.tgz")
    old = _old_imdb_baseline()
    assert models.read_meta(old)["labels"] == ["neg", "pos"]
    run = cli_json("train", "--kind", "baseline", "--dataset", "imdb_sample")
    assert run["status"] == "SUCCEEDED", run
    # old (neg/pos) + new imdb_sample (negative/positive), and old + bundled, both measured on imdb_sample's labels
    for members in ([old, run["model_id"]], [bundled_awd, old]):
        ens = cli_json("models", "ensemble", *members, "--name", "+".join(members), "--eval-dataset", "imdb_sample")
        meta = models.read_meta(ens["model_id"])
        assert meta["labels"] == ["negative", "positive"]
        assert ens["evaluation"]["n"] == 200 and ens["evaluation"]["n_left_out"] == 0
        assert all(m["accuracy"] > 0.55 for m in ens["evaluation"]["members"])
        pred = cli_json("predict", "--model", ens["model_id"], "--text", "Dull, badly acted and far too long.")
        assert pred["label"] == "negative"
    # the old model alone still answers in its own labels
    assert cli_json("predict", "--model", old, "--text", "Great.")["label"] in ("neg", "pos")


# ----------------------------------------------------------------------------------------------------------- combined

def test_combined_frame_caps_and_validation_rows_per_part():
    for a in ("imdb_sample.tgz", "yelp_sentences.tgz", "amazon_reviews.tgz"):
        mirror_archive(a)
    c = corpora.load(" imdb_sample + yelp_sentences:3000+amazon_reviews:901")
    assert c.name == "imdb_sample+yelp_sentences:3000+amazon_reviews:901"
    df = c.df
    assert list(df.columns) == ["text", "label", "split", "source", "src_row", "domain"]
    yelp, amazon = corpora.load("yelp_sentences").df, corpora.load("amazon_reviews").df
    y = df[df["source"] == "yelp_sentences"]
    assert (y["split"] == "train").sum() == 3000 and (y["split"] == "test").sum() == 10000  # test kept whole
    assert y.loc[y["split"] == "train", "label"].value_counts().to_dict() == {"negative": 1500, "positive": 1500}
    assert (y["text"].values == yelp.loc[y["src_row"], "text"].values).all()  # src_row points into yelp's own frame
    a = df[df["source"] == "amazon_reviews"]
    assert sorted(a.loc[a["split"] == "train", "label"].value_counts().tolist()) == [450, 451]
    assert (a["domain"].values == amazon.loc[a["src_row"], "domain"].values).all() and a["domain"].nunique() == 9
    assert set(df.loc[df["source"] == "imdb_sample", "domain"]) == {"films"}
    assert set(y["domain"]) == {"businesses"}
    # the same spec always means the same rows (the cap's seed is fixed)
    assert corpora.load("imdb_sample+yelp_sentences:3000+amazon_reviews:901").df.equals(df)
    # validation: imdb_sample's valid split, yelp's and amazon's test splits (they have no valid split)
    f = corpora.classifier_frame(c)
    v = f[f["is_valid"]].groupby("source")["split"].unique().map(list).to_dict()
    assert v == {"imdb_sample": ["valid"], "yelp_sentences": ["test"], "amazon_reviews": ["test"]}
    assert not f["label"].eq("").any()  # amazon's unsup rows are not classifier rows
    info = corpora.info(c)
    assert info["by_source"]["yelp_sentences"]["by_split"] == {"test": 10000, "train": 3000}
    assert info["by_domain"]["films"] == 1000


def test_a_cap_is_balanced_as_far_as_the_part_allows():
    csv = "text,label\n" + "".join(f"bad {i},neg\n" for i in range(2)) + "".join(f"good {i},pos\n" for i in range(10))
    uploads.import_csv("skewed", csv.encode(), "text", "label")
    df = corpora.load("skewed:6").df
    assert df["label"].value_counts().to_dict() == {"pos": 4, "neg": 2}  # neg gives all it has, pos fills the rest
    assert set(df["domain"]) == {"skewed"}


@pytest.mark.parametrize("spec,says", [
    ("imdb_sample+nope", "'nope' in 'imdb_sample+nope' is not a corpus this app knows: write one of"),
    ("imdb_sample:lots", "after ':' write how many training rows to keep at most"),
    ("imdb_sample:0+demo", "after ':' write how many training rows to keep at most"),
    ("imdb_sample+demo+imdb_sample:10", "'imdb_sample' appears twice"),
    ("imdb_sample++demo", "has an empty part"),
    ("imdb_sample+../etc", "'../etc' in 'imdb_sample+../etc' is not a corpus name"),
    ("demo+/abs/path", "is not a corpus name"),
])
def test_bad_specs_get_one_line_saying_what_to_write(spec, says, tmp_path):
    line = one_line_error(cli("data", "info", spec))
    assert says in line and ("e.g." in line or "write" in line)
    with pytest.raises(CorpusError):
        corpora.fetch(spec)
    assert not list(Path(os.environ["ULMFIT_DEMO_HOME"]).glob("**/etc"))


def test_plain_names_still_refuse_path_tricks():
    for bad in ("../etc", "a/b", "x:1/..", "..+.."):
        with pytest.raises(CorpusError):
            corpora.local_path(bad)
        with pytest.raises(CorpusError, match="not a valid corpus name"):
            uploads.import_csv(bad, b"text\nhello\n", "text")


def test_an_unlabelled_part_is_refused_for_a_classifier_and_fine_for_a_language_model():
    mirror_archive("imdb_sample.tgz")
    mirror_archive("wikitext2_small.tgz")
    line = one_line_error(cli("train", "--kind", "baseline", "--dataset", "imdb_sample+wikitext2_small"))
    assert "wikitext2_small in 'imdb_sample+wikitext2_small' has no labels" in line and "Write 'imdb_sample'" in line
    c = corpora.load("imdb_sample+wikitext2_small")
    assert set(c.df["source"]) == {"imdb_sample", "wikitext2_small"}  # a language model may read both


def test_parts_with_clashing_label_names_are_refused_for_a_classifier():
    mirror_archive("imdb_sample.tgz")
    uploads.import_csv("mine", b"text,label\nfine,pos\nawful,neg\nok,pos\nbad,neg\n", "text", "label")
    with pytest.raises(CorpusError, match="'mine' uses neg, pos"):
        corpora.classifier_frame(corpora.load("imdb_sample+mine"))


def test_saved_combinations_are_listed_for_every_picker():
    mirror_archive("imdb_sample.tgz")
    name = combined.save("imdb_sample + demo:100")
    assert name == "imdb_sample+demo:100"
    rows = {r["name"]: r for r in corpora.list_corpora()}
    assert rows[name]["kind"] == "combined" and rows[name]["available"] and rows[name]["labelled"]
    assert corpora.local_path(name) is not None
    with pytest.raises(CorpusError, match="is one corpus"):
        combined.save("demo")


# ----------------------------------------------------------------------------------------------------------- runs

@pytest.mark.parametrize("dataset,n_valid", [("yelp_sentences", None), ("amazon_reviews", None)])
def test_a_baseline_run_on_each_new_corpus(dataset, n_valid):
    mirror_archive(f"{dataset}.tgz")
    run = cli_json("train", "--kind", "baseline", "--dataset", dataset, "--set", "max_docs=3000")
    assert run["status"] == "SUCCEEDED", run
    assert run["metrics"]["accuracy"] > 0.6 and run["metrics"]["n_valid"] > 100
    assert models.read_meta(run["model_id"])["labels"] == ["negative", "positive"]
    rec = json.loads((Path(os.environ["ULMFIT_DEMO_HOME"]) / "runs" / run["run_id"] / "rows.json").read_text())
    assert list(rec["sources"]) == [dataset] and rec["n_rows"] == 3000 == rec["sources"][dataset]["n_rows"]


def test_a_combined_baseline_run_records_exactly_the_rows_it_read():
    for a in ("imdb_sample.tgz", "yelp_sentences.tgz", "amazon_reviews.tgz"):
        mirror_archive(a)
    spec = "imdb_sample:200+yelp_sentences:300+amazon_reviews:400"
    run = cli_json("train", "--kind", "baseline", "--dataset", spec)
    assert run["status"] == "SUCCEEDED", run
    assert run["metrics"]["n_train"] == 900  # the caps: imdb_sample 200 of 800, yelp 300, amazon 400
    rdir = Path(os.environ["ULMFIT_DEMO_HOME"]) / "runs" / run["run_id"]
    rec = json.loads((rdir / "rows.json").read_text())
    assert rec["corpus"] == spec and list(rec["sources"]) == ["imdb_sample", "yelp_sentences", "amazon_reviews"]
    expected = corpora.load(spec).df
    for name, part in rec["sources"].items():
        rows = combined.expand(part["rows"])
        own = corpora.load(name).df
        assert len(rows) == part["n_rows"] == (expected["source"] == name).sum()
        assert own.loc[rows, "text"].tolist() == expected.loc[expected["source"] == name, "text"].tolist()
        assert sum(part["by_split_label"]["train"].values()) == part["cap"]
    assert rec["sources"]["yelp_sentences"]["by_split_label"]["test"] == {"negative": 3841, "positive": 6159}
    assert rec["sources"]["amazon_reviews"]["by_split_label"]["unsup"] == {"": 12680}
    shown = cli_json("runs", "show", run["run_id"])
    assert shown["summary"]["rows"]["sources"] == {"imdb_sample": 400, "yelp_sentences": 10300,
                                                   "amazon_reviews": 16237}
    assert any(e["kind"] == "corpus" and "yelp_sentences:300 10,300" in e["message"] for e in shown["events"])


# ----------------------------------------------------------------------------------------------------------- Data page

def test_examples_per_domain_for_amazon():
    "What the Data page shows under Examples: two labelled reviews of each of amazon's nine domains."
    mirror_archive("amazon_reviews.tgz")
    ex = corpora.examples(corpora.load("amazon_reviews"))
    assert list(ex) == ["apparel", "baby", "camera_photo", "health_personal_care", "magazines", "music", "software",
                        "sports_outdoors", "toys_games"]
    assert all(len(v) == 2 and v["label"].isin(["negative", "positive"]).all() for v in ex.values())
    assert list(corpora.examples(corpora.load("demo"))) == ["negative", "positive"]  # no domains: per label


def test_data_page_composes_a_combined_corpus_and_shows_its_parts():
    from support import run_page

    for a in ("imdb_sample.tgz", "yelp_sentences.tgz"):
        mirror_archive(a)
        corpora.fetch(a.removesuffix(".tgz"))
    at = run_page("pages/data.py", timeout=300)
    at.multiselect(key="data_combine_parts").set_value(["imdb_sample", "yelp_sentences"]).run()
    at.number_input(key="data_combine_cap_yelp_sentences").set_value(2000).run()
    at.button(key="data_combine_go").click().run()
    assert not at.exception, at.exception
    assert at.session_state["corpus"] == "imdb_sample+yelp_sentences:2000"
    assert combined.saved() == ["imdb_sample+yelp_sentences:2000"]
    parts = next(d.value for d in at.dataframe if "corpus" in getattr(d.value, "columns", []))
    assert parts.set_index("corpus")["train"].to_dict() == {"imdb_sample": 800, "yelp_sentences": 2000}
    assert parts.set_index("corpus")["positive (train)"].to_dict() == {"imdb_sample": 0.5, "yelp_sentences": 0.5}
    tabs = [t.label for t in at.tabs]
    assert tabs[tabs.index("businesses"):tabs.index("businesses") + 2] == ["businesses", "films"]  # per domain
    assert any(h.value == "A classifier batch" for h in at.header)
