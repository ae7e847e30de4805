"""The bundled sentiment model as an ensemble of shipped members (`models.shipped`): a real forward subword classifier,
a real backward classifier and a real TF-IDF baseline, made an ensemble, written as the bundled folder, and used from
there: predicted with by `--model bundled` and by each member's id (`bundled.fwd`), listed read-only, refused for
rename and delete, hash-checked (a damaged member file is named), the default classifier of an empty store, carried by
a bundle to another machine, described on the Sentiment page; and the one-classifier format still written as before.
Real fastai, torch, scikit-learn and AppTest; no mocks."""
import json
import shutil
import zipfile

import pytest
import tiny_models
from support import run_page
from test_ensemble import _backward_template

from ulmfit_demo import config, models
from ulmfit_demo.cli import main as cli_main
from ulmfit_demo.judge import baseline
from ulmfit_demo.models import ensemble, inference, registry, shipped, starter
from ulmfit_demo.models.checks import baseline_files

TEXTS = ["What a wonderful film, the cast is superb!", "A dull, awful mess. Avoid it."]
PARTS = ["bundled.fwd", "bundled.bwd", "bundled.baseline"]


def cli(capsys, *argv) -> tuple[int, str, str]:
    rc = cli_main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def source(ids):
    """In this test's home: a forward subword classifier, a backward word classifier, a baseline, and the ensemble of
    the three (what the bundled model's builder makes), with what each says of TEXTS."""
    src = _backward_template()
    shutil.copytree(src, models.models_dir() / src.name)
    models.list_models()  # the folder is the truth: registered on the next listing
    df = tiny_models.demo_frame()
    trn = df[~df["is_valid"]]
    base = models.save_baseline(baseline.fit(trn["text"].tolist(), trn["label"].tolist()), name="tiny baseline",
                                corpus="demo", metrics={"accuracy": 0.8})
    members = [ids["sub"], src.name, base]
    eid = ensemble.create(members, "Shipped trio")
    said = {m: [inference.predict(m, t) for t in TEXTS] for m in members + [eid]}
    return {"ens": eid, "members": members, "said": said, **ids}


@pytest.fixture
def shipped_ens(source, tmp_path, monkeypatch):
    "The ensemble exported as the bundled model and in use as it, from a fresh, empty home."
    out = shipped.export(source["ens"], tmp_path / "sentiment", name="Bundled sentiment model",
                         extra_meta={"metrics": {"accuracy": 0.91, "test_accuracy": 0.9}, "corpus": "demo"})
    monkeypatch.setenv("ULMFIT_DEMO_BUNDLED", str(out))
    monkeypatch.setenv("ULMFIT_DEMO_HOME", str(tmp_path / "fresh"))
    assert models.list_models() == [models.get("bundled")]  # nothing of the user's: only the shipped model
    return {**source, "dir": out}


# ----------------------------------------------------------------------------------------------------------- format

def test_export_writes_the_ensemble_and_each_member_folder_with_one_manifest(source, tmp_path):
    out = tmp_path / "sentiment"
    out.mkdir()
    (out / "stale.txt").write_text("the folder there before goes whole")
    shipped.export(source["ens"], out, extra_meta={"metrics": {"accuracy": 0.91}, "id": "not-this"})
    assert sorted(p.name for p in out.iterdir()) == ["baseline", "bwd", "fwd", "manifest.json", "meta.json"]
    assert not out.with_name("sentiment.tmp").exists() and not out.with_name("sentiment.old").exists()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["kind"] == "ensemble" and meta["id"] == "bundled" and meta["source"] == "bundled"
    assert meta["name"] == "Shipped trio" and meta["metrics"] == {"accuracy": 0.91} and meta["run_id"] is None
    assert [m["id"] for m in meta["members"]] == PARTS
    assert [m["weight"] for m in meta["members"]] == pytest.approx([1 / 3] * 3)
    assert sorted(p.name for p in (out / "fwd").iterdir()) == ["meta.json", "spm.model", "weights.safetensors"]
    assert sorted(p.name for p in (out / "bwd").iterdir()) == ["meta.json", "weights.safetensors"]  # word tokens
    assert sorted(p.name for p in (out / "baseline").iterdir()) == sorted(["meta.json", *baseline_files()])
    for sub, src in zip(("fwd", "bwd", "baseline"), source["members"]):
        m = json.loads((out / sub / "meta.json").read_text())
        assert m["id"] == f"bundled.{sub}" and m["source"] == "bundled" and m["run_id"] is None
        assert m["kind"] == models.get(src)["kind"] and m["name"] == models.get(src)["name"]
    for f in ("weights.safetensors", "spm.model"):
        assert (out / "fwd" / f).read_bytes() == (models.models_dir() / source["sub"] / f).read_bytes()
    man = starter.check(out)  # every file matches its hash
    assert set(man) == {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert "fwd/weights.safetensors" in man and "baseline/meta.json" in man


def test_a_failed_export_leaves_the_folder_there_as_it_was(source, tmp_path):
    out = tmp_path / "sentiment"
    shipped.export(source["ens"], out)
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with open(models.models_dir() / source["sub"] / "weights.safetensors", "r+b") as f:  # a damaged member
        f.seek(2048)
        f.write(b"\x00\xff\x00")
    with pytest.raises(models.ModelError, match="weights file is damaged"):
        shipped.export(source["ens"], out)
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not out.with_name("sentiment.tmp").exists()
    with pytest.raises(models.ModelError, match="bundled model is a sentiment model"):
        shipped.export(source["lm"], tmp_path / "lm-as-sentiment")


# ----------------------------------------------------------------------------------------------------------- using

def test_cli_predicts_with_bundled_and_with_each_member_id(shipped_ens, capsys):
    said = shipped_ens["said"]
    rc, out, err = cli(capsys, "predict", "--model", "bundled", "--text", TEXTS[0], "--json")
    assert rc == 0, err
    got = json.loads(out)
    assert got["probs"] == pytest.approx(said[shipped_ens["ens"]][0]["probs"], abs=1e-6)
    assert [m["id"] for m in got["members"]] == PARTS
    # the default model of an empty store is the bundled one, ensemble or not
    assert models.resolve("latest", "classifier") == "bundled"
    rc, out, err = cli(capsys, "predict", "--text", TEXTS[1], "--json")
    assert rc == 0, err
    assert json.loads(out)["probs"] == pytest.approx(said[shipped_ens["ens"]][1]["probs"], abs=1e-6)
    for part, src in zip(PARTS, shipped_ens["members"]):  # each part answers as the model it was made from
        rc, out, err = cli(capsys, "predict", "--model", part, "--text", TEXTS[1], "--json")
        assert rc == 0, err
        assert json.loads(out)["probs"] == pytest.approx(said[src][1]["probs"], abs=1e-6)
        assert models.get(part)["origin"] == "bundled" and models.get(part)["part_of"] == "bundled"
    rows = inference.predict_batch("bundled", TEXTS + [" "])
    assert [r["probs"] for r in rows[:2]] == [pytest.approx(s["probs"], abs=1e-6) for s in said[shipped_ens["ens"]]]
    assert rows[2]["label"] is None
    a = inference.attributions("bundled", TEXTS[0])
    assert a["method"].startswith("Occlusion on the ensemble") and a["scored"] == a["n_words"] == 8
    rc, _, err = cli(capsys, "predict", "--model", "bundled.nope", "--text", TEXTS[0])
    assert rc == 1 and "no model 'bundled.nope'" in err and "bundled.fwd" in err


def test_models_list_shows_bundled_read_only_and_its_parts_refuse_rename_and_delete(shipped_ens, capsys):
    rc, out, _ = cli(capsys, "models", "list", "--json")
    rows = json.loads(out)
    assert rc == 0 and [(r["id"], r["kind"], r["origin"]) for r in rows] == [("bundled", "ensemble", "bundled")]
    assert models.get("bundled")["metrics"] == {"accuracy": 0.91, "test_accuracy": 0.9}
    rc, out, _ = cli(capsys, "models", "list")
    assert "[ships with the app, read-only]" in out and "made of bundled.fwd, bundled.bwd, bundled.baseline" in out
    assert [r["id"] for r in models.list_models("classifier")] == ["bundled"]  # where classifiers are asked for
    assert [r["id"] for r in models.list_models("ensemble")] == ["bundled"]
    assert models.list_models("baseline") == []  # its parts are not listed on their own
    for mid in ["bundled", *PARTS]:
        for argv in (["delete", mid], ["rename", mid, "mine"]):
            rc, _, err = cli(capsys, "models", *argv)
            assert rc == 1 and "ships with the app" in err, err
        with pytest.raises(models.ModelError, match="cannot be deleted"):
            models.delete(mid)
        with pytest.raises(models.ModelError, match="cannot be renamed"):
            models.rename(mid, "mine")
    with pytest.raises(models.ModelError, match="not a model id"):  # never a path
        registry.model_folder("bundled.../../etc")
    with pytest.raises(models.ModelError, match="no model 'bundled.side'"):
        models.get("bundled.side")
    assert sorted(p.name for p in shipped_ens["dir"].iterdir()) == ["baseline", "bwd", "fwd", "manifest.json",
                                                                     "meta.json"]
    starter.check(shipped_ens["dir"])  # nothing was touched


@pytest.mark.parametrize("damaged", ["fwd/weights.safetensors", "baseline/" + baseline_files()[0], "meta.json"])
def test_a_damaged_file_is_named_and_nothing_else_breaks(shipped_ens, damaged, ids):
    assert inference.predict("bundled", TEXTS[0])["label"]  # opened and cached first
    stamp = models.stamp("bundled")
    p = shipped_ens["dir"] / damaged
    if damaged == "meta.json":  # still valid JSON, so the listing reads it, but not the file that was shipped
        meta = json.loads(p.read_text())
        p.write_text(json.dumps(dict(meta, name="Tampered"), indent=1))
    else:
        with open(p, "r+b") as f:
            f.seek(64)
            f.write(b"\x00\xff\x00")
    assert models.stamp("bundled") != stamp  # a changed member file is seen: no cached answer is served
    for mid in ["bundled", *PARTS]:
        with pytest.raises(models.ModelError, match=f"{damaged} is damaged.*git checkout"):
            inference.predict(mid, TEXTS[0])
    assert models.get("bundled")["origin"] == "bundled"  # listing stays cheap and works
    models.list_models()
    tiny_models.install(config.home())  # the user's own models are not affected
    assert inference.predict(ids["clas"], TEXTS[0])["label"] in ("negative", "positive")


def test_a_users_ensemble_names_the_bundled_parts_not_the_bundled_ensemble(shipped_ens, capsys, tmp_path,
                                                                             monkeypatch):
    tiny_models.install(config.home())
    clas = shipped_ens["clas"]
    rc, _, err = cli(capsys, "models", "ensemble", "bundled", clas, "--name", "nested")
    assert rc == 1 and "itself an ensemble" in err and "bundled.fwd bundled.bwd bundled.baseline" in err, err
    rc, out, err = cli(capsys, "models", "ensemble", "bundled.bwd", clas, "--name", "mine", "--json")
    assert rc == 0, err
    eid = json.loads(out)["model_id"]
    want = inference.predict(eid, TEXTS[0])["probs"]
    assert [u["id"] for u in registry.used_by("bundled.bwd")] == [eid]
    data = models.bundle_bytes(eid)
    # Another machine with the same bundled model: its part is reused, only the user's classifier is copied.
    monkeypatch.setenv("ULMFIT_DEMO_HOME", str(tmp_path / "same-bundled"))
    new = models.import_bundle(data)
    assert [m["id"] for m in models.read_meta(new)["members"]][0] == "bundled.bwd"
    assert len(models.list_models()) == 3  # the ensemble, the copied classifier, and the shipped model
    assert inference.predict(new, TEXTS[0])["probs"] == pytest.approx(want, abs=1e-6)


def test_the_bundled_ensemble_travels_as_a_bundle(shipped_ens, capsys, tmp_path, monkeypatch):
    want = shipped_ens["said"][shipped_ens["ens"]]
    zpath = tmp_path / "bundled.zip"
    rc, _, err = cli(capsys, "models", "export", "bundled", "--out", zpath)
    assert rc == 0, err
    with zipfile.ZipFile(zpath) as z:
        assert sorted(z.namelist()) == ["README.md", "members/0.zip", "members/1.zip", "members/2.zip", "meta.json"]
    # A machine without this bundled model: every part is installed as a copy of its own.
    monkeypatch.setenv("ULMFIT_DEMO_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("ULMFIT_DEMO_BUNDLED", str(tmp_path / "no-bundled-here"))
    rc, out, err = cli(capsys, "models", "import", zpath)
    assert rc == 0, err
    new = out.strip()
    rows = {r["id"]: r for r in models.list_models()}
    assert len(rows) == 4 and rows[new]["kind"] == "ensemble" and rows[new]["source"] == "bundle"
    parts = [m["id"] for m in models.read_meta(new)["members"]]
    assert set(parts) == set(rows) - {new} and not any(registry.is_bundled(p) for p in parts)
    assert [rows[p]["kind"] for p in parts] == ["classifier", "classifier", "baseline"]
    assert models.read_meta(parts[1])["training"]["backwards"] is True  # the copy still reads backwards
    for t, w in zip(TEXTS, want):
        assert inference.predict(new, t)["probs"] == pytest.approx(w["probs"], abs=1e-6)
    # A machine with the same bundled model: its parts are reused, nothing is copied but the ensemble.
    monkeypatch.setenv("ULMFIT_DEMO_HOME", str(tmp_path / "same"))
    monkeypatch.setenv("ULMFIT_DEMO_BUNDLED", str(shipped_ens["dir"]))
    again = models.import_bundle(zpath)
    assert [m["id"] for m in models.read_meta(again)["members"]] == PARTS
    assert sorted(r["id"] for r in models.list_models()) == sorted([again, "bundled"])


# ----------------------------------------------------------------------------------------------------------- one

def test_a_single_classifier_exports_as_before(source, tmp_path, monkeypatch):
    out = shipped.export(source["sub"], tmp_path / "sentiment")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "meta.json", "spm.model", "weights.safetensors"]
    assert set(starter.check(out)) == {"meta.json", "spm.model", "weights.safetensors"}
    meta = json.loads((out / "meta.json").read_text())
    src = models.read_meta(source["sub"])
    assert meta == dict(src, id="bundled", source="bundled", run_id=None)
    monkeypatch.setenv("ULMFIT_DEMO_BUNDLED", str(out))
    monkeypatch.setenv("ULMFIT_DEMO_HOME", str(tmp_path / "fresh"))
    assert models.resolve("latest", "classifier") == "bundled" and models.get("bundled")["kind"] == "classifier"
    assert inference.predict("bundled", TEXTS[0])["probs"] == pytest.approx(source["said"][source["sub"]][0]["probs"],
                                                                           abs=1e-6)
    with pytest.raises(models.ModelError, match="has no members"):
        inference.predict("bundled.fwd", TEXTS[0])


# ----------------------------------------------------------------------------------------------------------- pages

def test_sentiment_page_says_what_the_bundled_ensemble_is_made_of(shipped_ens):
    at = run_page("pages/sentiment.py")
    assert at.selectbox(key="sent_model").value == "bundled"  # the default on a fresh machine
    line = ("Bundled sentiment model: the average of 3 models — a forward AWD-LSTM classifier, a backward one and a "
            "TF-IDF baseline — trained on the demo reviews.")
    assert line in [c.value for c in at.caption]
    blobs = "\n".join(m.value for m in at.markdown)
    assert "What each member says" in blobs and "tiny baseline" in blobs
    assert not any("close to guesses" in w.value for w in at.warning)
    # the Models page lists its parts by the ids that reach them, without rename or delete
    at = run_page("pages/models.py", mdl_model="bundled")
    members = next(d.value for d in at.dataframe if "member" in d.value.columns)
    assert list(members["id"]) == PARTS
    assert not [b for b in at.button if b.key in ("mdl_rename", "mdl_delete")]
