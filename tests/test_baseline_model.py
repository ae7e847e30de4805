"""The TF-IDF + logistic-regression baseline as a model like any other: stored (kind `baseline`, hashed files, no
pickle), loaded, bundled, used by inference and the CLI, trained by a `baseline` run (also several seeds at once),
and shown on the Sentiment, Models and Train pages. Real scikit-learn, SQLite and Streamlit AppTest; no mocks."""
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from support import run_page

from ulmfit_demo import models
from ulmfit_demo.cli import main as cli_main
from ulmfit_demo.judge import baseline
from ulmfit_demo.models import inference, kinds
from ulmfit_demo.runs import store

REPO = Path(__file__).resolve().parent.parent

TRAIN = [
    ("Great fun, wonderful cast.", "positive"), ("I loved the music, excellent.", "positive"),
    ("A wonderful, moving story.", "positive"), ("Great photography and excellent pacing.", "positive"),
    ("A terrible film, I hated it.", "negative"), ("Awful acting and a boring story.", "negative"),
    ("Boring, terrible cast.", "negative"), ("I hated the music, awful.", "negative"),
]
PROBE = ["An excellent, wonderful film!", "A boring, awful mess.", "words never seen before", "Great fun but awful."]


@pytest.fixture(scope="module")
def fitted():
    texts, labels = zip(*TRAIN)
    return baseline.fit(list(texts), list(labels))


@pytest.fixture
def base_id(fitted):
    return models.save_baseline(fitted, name="tiny baseline", corpus="demo", metrics={"accuracy": 0.9, "n_valid": 8})


# ---------------------------------------------------------------------------------------------------- the store

def test_save_and_load_round_trip_gives_the_same_predictions(fitted, base_id):
    assert base_id.startswith("base-")
    folder = models.models_dir() / base_id
    assert sorted(p.name for p in folder.iterdir()) == ["baseline.json", "baseline.safetensors", "meta.json"]
    meta = models.read_meta(base_id)
    assert meta["format"] == models.FORMAT and meta["kind"] == "baseline" and meta["labels"] == fitted.labels
    assert meta["tokenizer"]["kind"] == "tfidf"
    for name in ("baseline.json", "baseline.safetensors"):
        assert meta["files"][name]["bytes"] == (folder / name).stat().st_size and len(meta["files"][name]["sha256"]) == 64
    loaded = models.load(base_id)
    assert loaded.kind == "baseline" and isinstance(loaded.model, baseline.Baseline)
    assert loaded.labels == fitted.labels
    assert np.abs(loaded.model.predict_proba(PROBE) - fitted.predict_proba(PROBE)).max() < 1e-12
    row = models.get(base_id)
    assert row["kind"] == "baseline" and row["metrics"]["accuracy"] == 0.9
    assert [r["id"] for r in models.list_models("baseline")] == [base_id]
    assert models.list_models("classifier") == []


def test_models_list_json_shows_the_kind(base_id, capsys):
    assert cli_main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["kind"]) for r in rows] == [(base_id, "baseline")]


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "missing"])
def test_a_damaged_file_is_refused_naming_it(base_id, damage):
    p = models.models_dir() / base_id / "baseline.safetensors"
    raw = p.read_bytes()
    if damage == "flip_byte":  # same size: only the checksum can tell
        p.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    elif damage == "truncate":
        p.write_bytes(raw[:40])
    else:
        p.unlink()
    with pytest.raises(models.ModelError) as e:
        models.load(base_id)
    msg = str(e.value)
    assert "baseline.safetensors" in msg and "tiny baseline" in msg
    assert {"flip_byte": "checksum", "truncate": "truncated", "missing": "missing"}[damage] in msg
    with pytest.raises(models.ModelError, match="baseline.safetensors"):
        inference.predict(base_id, "fine")


def test_a_file_swapped_for_another_baselines_is_refused(fitted, base_id, tmp_path):
    other = baseline.fit(["good good", "bad bad", "good", "bad"], ["yes", "no", "yes", "no"])
    other.save(tmp_path)
    (models.models_dir() / base_id / "baseline.json").write_bytes((tmp_path / "baseline.json").read_bytes())
    with pytest.raises(models.ModelError, match="baseline.json"):
        models.load(base_id)


def test_bundle_export_and_import(fitted, base_id, tmp_path):
    out = models.export_bundle(base_id, tmp_path / "b.zip")
    names = set(zipfile.ZipFile(out).namelist())
    assert names == {"baseline.json", "baseline.safetensors", "meta.json", "README.md"}
    assert "scikit-learn" in zipfile.ZipFile(out).read("README.md").decode()
    new = models.import_bundle(out, name="imported baseline")
    assert new != base_id and models.get(new)["kind"] == "baseline" and models.get(new)["source"] == "bundle"
    assert models.get(new)["metrics"]["accuracy"] == 0.9
    for t in PROBE:
        assert inference.predict(new, t)["probs"] == pytest.approx(inference.predict(base_id, t)["probs"], abs=1e-12)
    # a bundle whose weights were tampered with is refused before anything is stored
    buf = io.BytesIO()
    with zipfile.ZipFile(out) as z, zipfile.ZipFile(buf, "w") as w:
        for n in z.namelist():
            data = z.read(n)
            w.writestr(n, data[:-1] + bytes([data[-1] ^ 1]) if n == "baseline.safetensors" else data)
    with pytest.raises(models.ModelError, match="baseline.safetensors"):
        models.import_bundle(buf.getvalue())
    assert len(models.list_models("baseline")) == 2


def _write_format_1(b: baseline.Baseline, folder: Path) -> None:
    "The files as format 1 wrote them (before 2026-12-05): vocabulary as a term -> column map, idf as JSON numbers."
    from safetensors.numpy import save_file

    meta = dict(format=1, kind="tfidf-logreg", labels=list(b.labels), params={**b.params, "ngram_range": [1, 2]},
                vocabulary={t: int(i) for t, i in b.vectorizer.vocabulary_.items()}, idf=b.vectorizer.idf_.tolist())
    (folder / "baseline.json").write_text(json.dumps(meta), encoding="utf-8")
    save_file({"coef": b.coef, "intercept": b.intercept}, str(folder / "baseline.safetensors"))


def test_format_2_is_compact_and_format_1_still_loads(fitted, tmp_path):
    new, old = tmp_path / "new", tmp_path / "old"
    fitted.save(new)
    old.mkdir()
    _write_format_1(fitted, old)
    meta = json.loads((new / "baseline.json").read_text())
    assert meta["format"] == 2 and isinstance(meta["vocabulary"], list) and "idf" not in meta
    assert (new / "baseline.json").stat().st_size < (old / "baseline.json").stat().st_size / 2
    for folder in (new, old):
        back = baseline.load(folder)
        assert back.vectorizer.vocabulary_ == fitted.vectorizer.vocabulary_
        assert np.abs(back.predict_proba(PROBE) - fitted.predict_proba(PROBE)).max() < 1e-12
    meta["vocabulary"] = meta["vocabulary"] + [meta["vocabulary"][0]]  # a repeated term
    (new / "baseline.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="baseline.json is damaged.*distinct terms"):
        baseline.load(new)
    meta["vocabulary"][-1] = 7  # a term that is not text
    (new / "baseline.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="baseline.json is damaged.*not a list of terms"):
        baseline.load(new)


@pytest.mark.parametrize("fmt", [2, 1])
def test_the_bundle_readme_code_predicts_as_the_app_does(fitted, base_id, tmp_path, monkeypatch, fmt):
    "The README's numpy + scikit-learn snippet, run as a user would, on a bundle of either stored format."
    if fmt == 1:  # a model stored before format 2: its files as they were, its recorded hashes updated
        folder = models.models_dir() / base_id
        _write_format_1(fitted, folder)
        m = json.loads((folder / "meta.json").read_text())
        for name in ("baseline.json", "baseline.safetensors"):
            import hashlib
            raw = (folder / name).read_bytes()
            m["files"][name] = {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
        (folder / "meta.json").write_text(json.dumps(m))
    out = models.export_bundle(base_id, tmp_path / "b.zip")
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(out) as z:
        z.extractall(folder)
    code = (folder / "README.md").read_text().split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(folder)
    ns: dict = {}
    exec(code, ns)
    d = float(np.asarray(ns["d"]).ravel()[0])
    assert (d > 0) == (fitted.labels[1] == "positive")  # "A wonderful film.": positive
    assert d == pytest.approx(float(fitted._decision(["A wonderful film."]).ravel()[0]), abs=1e-9)


def test_fastai_export_refuses_a_baseline(base_id, tmp_path):
    with pytest.raises(models.ModelError, match="not a fastai model"):
        models.export_fastai(base_id, tmp_path / "x.pkl")
    assert not (tmp_path / "x.pkl").exists()


# ---------------------------------------------------------------------------------------------------- inference

def test_predict_batch_attributions_and_csv(fitted, base_id, monkeypatch):
    res = inference.predict(base_id, PROBE[0])
    assert res["label"] == "positive" and sum(res["probs"].values()) == pytest.approx(1.0)
    assert res["probs"]["positive"] == pytest.approx(fitted.predict_proba([PROBE[0]])[0, 1], abs=1e-12)  # T = 1

    monkeypatch.setattr(kinds, "PROGRESS_STEP", 2)
    calls = []
    batch = inference.predict_batch(base_id, PROBE + ["  "], progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, 4), (4, 4)]
    assert [b["label"] for b in batch[:4]] == fitted.predict(PROBE) and batch[4]["label"] is None

    attr = inference.attributions(base_id, '"Wonderful" film... but awful, boring!')
    assert set(attr) >= {"label", "prob", "probs", "method", "words", "scored", "n_words", "truncated"}
    assert attr["method"].startswith("Linear weights") and attr["scale"] == "logit"
    assert [w["text"] for w in attr["words"]] == ['"Wonderful"', "film...", "but", "awful,", "boring!"]
    assert [w["tokens"] for w in attr["words"]] == [["wonderful"], ["film"], ["but"], ["awful"], ["boring"]]
    scores = {w["tokens"][0]: w["score"] for w in attr["words"]}
    assert attr["label"] == "negative" and scores["awful"] > 0 and scores["wonderful"] < 0 and scores["film"] == 0
    assert attr["scored"] == attr["n_words"] == 5

    out = inference.score_csv(base_id, b"review,id\nAn excellent film,1\nAwful and boring,2\n", "review")
    assert out["prediction"].tolist() == ["positive", "negative"]
    assert {"confidence", "p_negative", "p_positive"} <= set(out.columns)


def test_sample_weights_weigh_the_rows_and_bad_ones_are_refused(fitted):
    texts, labels = map(list, zip(*TRAIN))
    # equal weights fit what no weights fit (the loss only scales); skewed weights pull the model toward heavy rows
    same = baseline.fit(texts, labels, sample_weight=[1.0] * len(texts))
    assert same.predict_proba(PROBE) == pytest.approx(fitted.predict_proba(PROBE), abs=1e-4)
    assert same.params["weighted"] and "weighted" not in fitted.params
    heavy = [20.0 if "awful" in t.lower() else 1.0 for t in texts]  # only the negative rows that say "awful"
    leaning = baseline.fit(texts, labels, sample_weight=heavy)
    neg = leaning.labels.index("negative")
    assert leaning.predict_proba(["Great fun but awful."])[0, neg] > fitted.predict_proba(["Great fun but awful."])[0, neg]
    for bad in ([1.0] * 3, [1.0] * 7 + [0.0], [1.0] * 7 + [float("nan")]):
        with pytest.raises(ValueError, match="one positive number per text"):
            baseline.fit(texts, labels, sample_weight=bad)


def test_nb_weighting_is_folded_into_the_stored_model(tmp_path):
    """nb=True scales each term by its log-count ratio before the regression; the scaled regression's decisions are
    what the saved model (plain format) gives, and its word scores still add up to its decision."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    texts, labels = map(list, zip(*TRAIN))
    nb = baseline.fit(texts, labels, nb=True, min_df=1)
    assert nb.params["nb"] is True
    X = nb.vectorizer.transform(texts)
    pos = np.array([lab == "positive" for lab in labels])
    p = np.asarray((X > 0)[pos].sum(0)).ravel() + 1.0
    q = np.asarray((X > 0)[~pos].sum(0)).ravel() + 1.0
    r = np.log((p / p.sum()) / (q / q.sum()))
    assert (r[[nb.vectorizer.vocabulary_[w] for w in ("great", "wonderful")]] > 0).all()
    assert (r[[nb.vectorizer.vocabulary_[w] for w in ("awful", "boring")]] < 0).all()
    lr = LogisticRegression(C=nb.params["C"], max_iter=3000, random_state=0).fit(X @ sparse.diags(r), labels)
    Xp = nb.vectorizer.transform(PROBE)
    d = np.asarray(Xp @ sparse.diags(r) @ lr.coef_.T).ravel() + lr.intercept_[0]
    assert nb._decision(PROBE).ravel() == pytest.approx(d, abs=1e-6)
    nb.save(tmp_path)
    back = baseline.load(tmp_path)
    assert back.predict_proba(PROBE) == pytest.approx(nb.predict_proba(PROBE), abs=1e-12)
    assert back.params["nb"] is True
    text = "Great fun, but the music was awful."
    ww = nb.word_weights(text)
    d = nb._decision([text])[0, 0]
    assert sum(v for _, v in ww) == pytest.approx((1 if d > 0 else -1) * (d - nb.intercept[0]), abs=1e-9)
    with pytest.raises(ValueError, match="exactly two labels"):
        baseline.fit(texts + ["Meh."], labels + ["neutral"], nb=True)


def test_the_stored_temperature_is_applied(fitted):
    mid = models.save_baseline(fitted, name="scaled", corpus="demo", calibration={"temperature": 2.0})
    z = fitted.logits([PROBE[0]])[0] / 2.0
    want = np.exp(z) / np.exp(z).sum()
    assert inference.predict(mid, PROBE[0])["probs"]["positive"] == pytest.approx(want[1], abs=1e-12)


def test_a_temperature_left_off_is_not_applied_and_the_models_page_says_why(fitted):
    "`report.calibrate` left T off (it hurt on held-out halves): predictions use T = 1; the page says so, no curve."
    from test_judge import overconfident

    from ulmfit_demo.judge import report

    cal = report.calibrate(*overconfident(n=60, k=2, factor=1.0, seed=2), seed=0)
    assert cal["applied"] is False and cal["fitted_temperature"] != 1.0
    mid = models.save_baseline(fitted, name="left off", corpus="demo", calibration=cal,
                               metrics={"accuracy": 0.9, "n_valid": 60, **report.calibration_metrics(cal)})
    z = fitted.logits([PROBE[0]])[0]  # as fitted: no temperature
    want = np.exp(z) / np.exp(z).sum()
    assert inference.predict(mid, PROBE[0])["probs"]["positive"] == pytest.approx(want[1], abs=1e-12)
    at = run_page("pages/models.py", mdl_model=mid)
    assert not at.exception
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert not any(t.get("name", "").startswith("temperature-scaled") for t in fig["data"])
    assert any(f"(T = {cal['fitted_temperature']:.2f}) was tried and left off" in c.value
               and f"{cal['ece_uncalibrated']:.3f} -> {cal['ece_temperature']:.3f}" in c.value for c in at.caption)


def test_generation_refuses_a_baseline(base_id):
    with pytest.raises(inference.InferenceError, match="a baseline cannot generate text"):
        inference.generate(base_id, "This movie")
    assert cli_main(["generate", "--model", base_id, "--prompt", "This movie"]) == 1


# ---------------------------------------------------------------------------------------------------- runs, CLI

def _cli(*args, timeout=180):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "ulmfit_demo", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_cli_baseline_run_on_imdb_sample_then_predict(imdb_sample_archive, home):
    # a subprocess with this test's throwaway home; the corpus comes from ULMFIT_DEMO_MIRROR (a missing archive fails)
    assert os.environ["ULMFIT_DEMO_HOME"] == str(home)
    p = _cli("train", "--kind", "baseline", "--dataset", "imdb_sample", "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    assert len(p.stdout.strip().splitlines()) == 1
    out = json.loads(p.stdout)
    assert out["status"] == "SUCCEEDED" and out["model_id"].startswith("base-") and out["error"] is None
    m = out["metrics"]
    assert m["accuracy"] >= 0.85 and m["n_valid"] == 200 and m["n_train"] == 800
    assert 0 <= m["ece"] <= 1 and 0 <= m["ece_uncalibrated"] <= 1 and m["temperature"] > 0
    assert 0 <= m["ood_accuracy"] <= 1  # imdb_sample's labels are negative/positive: judged out of domain too
    meta = models.read_meta(out["model_id"])
    assert meta["run_id"] == out["run_id"] and meta["calibration"]["reliability"] and meta["judge"]["ood"]

    p = _cli("predict", "--model", out["model_id"], "--text", "A wonderful, moving film with a superb cast.", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["label"] == "positive"
    runs = json.loads(_cli("runs", "list", "--json").stdout)
    assert [(r["run_id"], r["kind"], r["status"]) for r in runs] == [(out["run_id"], "baseline", "SUCCEEDED")]
    assert runs[0]["best_metric"].startswith("accuracy 0.8")


def test_seeds_summarise_runs_that_differ_only_by_seed(capsys):
    assert cli_main(["train", "--kind", "baseline", "--dataset", "demo", "--seeds", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"runs", "summary"} and len(out["runs"]) == 2
    assert all(set(r) == {"run_id", "status", "model_id", "metrics", "error"} and r["status"] == "SUCCEEDED"
               for r in out["runs"])
    cfgs = [store.get(r["run_id"])["config"] for r in out["runs"]]
    assert cfgs[1]["seed"] == cfgs[0]["seed"] + 1 and {**cfgs[0], "seed": 0} == {**cfgs[1], "seed": 0}
    s = out["summary"]
    assert {"accuracy", "ece", "ece_uncalibrated", "ood_accuracy"} <= set(s) and "baseline_accuracy" not in s
    accs = [r["metrics"]["accuracy"] for r in out["runs"]]
    assert s["accuracy"] == pytest.approx({"mean": np.mean(accs), "std": np.std(accs, ddof=1), "min": min(accs),
                                           "max": max(accs), "n": 2})
    # without --json: one line per run, then the table
    assert cli_main(["train", "--kind", "baseline", "--dataset", "demo", "--seeds", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "SUCCEEDED" in lines[0] and "SUCCEEDED" in lines[1] and "over 2 seeds" in lines[2]
    assert lines[3].split()[0] == "accuracy"


def test_a_baseline_needs_a_labelled_corpus():
    from ulmfit_demo.data import uploads
    from ulmfit_demo.runs import launcher
    from ulmfit_demo.train import presets

    rows = "text,label\n" + "".join(f"great movie number {i} with a plot,pos\n" for i in range(30))
    uploads.import_csv("onelabel", rows.encode(), "text", "label")
    with pytest.raises(presets.ConfigError, match="only one label.*The baseline is a classifier too"):
        launcher.submit("baseline", presets.QUICK, "onelabel")
    assert store.list_runs() == []
    assert presets.check_config(presets.ULMFIT.with_(emb_sz=10), "baseline") == []  # no LM: its shape is moot


# ---------------------------------------------------------------------------------------------------- pages

def _frame(at, column: str):
    "The first table on the page with this column (AppTest does not expose a dataframe's key)."
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _train_baseline_run(capsys) -> dict:
    assert cli_main(["train", "--kind", "baseline", "--dataset", "demo", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_sentiment_page_with_a_baseline(base_id):
    at = run_page("pages/sentiment.py", sent_model=base_id)
    blobs = "\n".join(m.value for m in at.markdown)
    assert "% confident" in blobs and "Positive" in blobs  # the default review is a clear favourite
    assert "pushed towards positive" in blobs and "wonderful" in blobs.lower()
    assert "to the baseline&#x27;s score" in blobs  # hover text says what a linear weight means
    assert any(c.value.startswith("Linear weights") for c in at.caption)
    assert any("words, lowercased" in c.value for c in at.caption)
    assert "tiny baseline" in at.selectbox(key="sent_model").format_func(base_id)

    assert at.get("file_uploader")  # CSV scoring is offered (AppTest cannot upload: score_csv is tested above)


def test_models_page_compares_with_the_baseline_and_draws_the_reliability_diagram(capsys):
    out = _train_baseline_run(capsys)
    at = run_page("pages/models.py", mdl_model=out["model_id"])
    blobs = "\n".join(m.value for m in at.markdown)
    n = out["metrics"]["n_valid"]
    assert f"Baseline {out['metrics']['accuracy']:.0%} on {n:,} validation reviews" in blobs
    charts = at.get("plotly_chart")
    fig = json.loads(charts[0].proto.spec)
    names = [t.get("name", "") for t in fig["data"]]
    assert any(x.startswith("as trained (ECE") for x in names) and any(x.startswith("temperature-scaled") for x in names)
    table = _frame(at, "ECE (calibrated)")
    row = table.iloc[0]
    assert row["kind"] == "baseline" and row["accuracy"] == f"{out['metrics']['accuracy']:.1%}"
    assert row["baseline accuracy"] == "" and row["ECE (calibrated)"] == f"{out['metrics']['ece']:.3f}"
    assert row["OOD accuracy"] == f"{out['metrics']['ood_accuracy']:.1%}"
    assert any("no fastai export" in c.value for c in at.caption)
    assert not at.get("download_button") or all("fastai" not in b.proto.label for b in at.get("download_button"))


def test_models_page_comparison_line_for_a_classifier_judged_beside_its_baseline(ids, tmp_path):
    """A real classifier whose metadata holds the judge's figures (as a classifier run records them): the line
    reads 'ULMFiT x% vs baseline y% on the same n reviews', and nothing when the figures are absent."""
    from ulmfit_demo.ui import model_widgets as mw

    at = run_page("pages/models.py", mdl_model=ids["clas"])
    assert not any("vs baseline" in m.value for m in at.markdown)  # not judged: nothing made up
    src = models.export_bundle(ids["clas"], tmp_path / "c.zip")
    buf = io.BytesIO()
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(buf, "w") as w:
        for name in z.namelist():
            data = z.read(name)
            if name == "meta.json":
                meta = json.loads(data)
                meta["metrics"].update(accuracy=0.71, baseline_accuracy=0.87, n_valid=200, ece=0.04)
                data = json.dumps(meta).encode()
            w.writestr(name, data)
    judged = models.import_bundle(buf.getvalue(), name="judged classifier")
    line = mw.baseline_comparison(models.get(judged))
    assert line.startswith("ULMFiT 71% vs baseline 87% on the same 200 reviews.") and "baseline is ahead by 16" in line
    at = run_page("pages/models.py", mdl_model=judged)
    assert any("ULMFiT 71% vs baseline 87% on the same 200 reviews" in m.value for m in at.markdown)
    table = _frame(at, "ECE (calibrated)").set_index("name")
    assert table.loc["judged classifier", "baseline accuracy"] == "87.0%"
    assert table.loc["judged classifier", "OOD accuracy"] == ""  # not measured: blank


def test_train_page_shows_a_baseline_run_and_offers_the_kind(capsys):
    out = _train_baseline_run(capsys)
    at = run_page("pages/train.py", train_run=out["run_id"])
    from ulmfit_demo.train import presets

    assert presets.KINDS["baseline"] in at.radio(key="train_kind").options  # options show each kind's description
    figs = _frame(at, "figure")
    assert figs.iloc[0].tolist() == ["validation accuracy", f"{out['metrics']['accuracy']:.1%}"]
    assert any(out["model_id"] in c.value for c in at.caption)
    at.radio(key="train_kind").set_value("baseline").run()
    assert not at.exception
    assert any("only `max_docs` and `seed` apply" in c.value for c in at.caption)
