"""The model store: save -> load in a fresh process, the registry, export/import, and every way a model file can be
bad (damaged weights, vocab that does not fit, a pickle that would run code)."""
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tiny_models

from ulmfit_demo import models
from ulmfit_demo.models import fastai_export, inference

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def ids(home):
    return tiny_models.install(home)


def test_save_learner_contract_and_files(ids, home):
    rows = {r["id"]: r for r in models.list_models()}
    assert {ids["lm"], ids["clas"], ids["flip"], ids["sub"]} <= set(rows)
    for r in rows.values():
        assert {"id", "name", "kind", "run_id", "corpus", "metrics", "created", "size_bytes"} <= set(r)
        assert r["size_bytes"] > 0
    # the user's language model first, then the starter shipped with the app (listed where an LM is asked for)
    assert [(r["id"], r["kind"]) for r in models.list_models("language_model")] == [
        (ids["lm"], "language_model"), ("starter", "language_model")]
    assert "starter" not in rows  # not among the models the Models page manages: it has no model folder
    assert rows[ids["clas"]]["run_id"] == "run-test" and "accuracy" in rows[ids["clas"]]["metrics"]
    folder = home / "models" / ids["clas"]
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "weights.safetensors"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["labels"] == ["negative", "positive"] and meta["vocab"][:2] == ["xxunk", "xxpad"]
    assert meta["model"]["config"]["emb_sz"] == 16 and meta["arch"]["seq_len"] == 16
    assert meta["versions"]["fastai"] and meta["versions"]["torch"]
    # the LM's three tied copies of the embedding are stored once
    lm_meta = models.read_meta(ids["lm"])
    assert set(lm_meta["weights"]["tied"]) == {"0.encoder_dp.emb.weight", "1.decoder.weight"}
    # subword: the SentencePiece model travels with the weights
    assert (home / "models" / ids["sub"] / "spm.model").is_file()
    assert models.read_meta(ids["sub"])["tokenizer"]["sp_model"] == "spm.model"


def test_reload_in_fresh_process_gives_identical_probabilities(ids, home):
    code = ("import json, sys, torch; torch.set_num_threads(1)\n"
            "from ulmfit_demo.models import inference\n"
            "print(json.dumps(inference.predict(sys.argv[1], sys.argv[2])['probs']))")
    env = dict(os.environ, ULMFIT_DEMO_HOME=str(home), PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code, ids["clas"], ids["ref"]["text"]], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    probs = json.loads(out.stdout.strip().splitlines()[-1])
    # the reloaded model gives what the trained learner's own learn.predict gave, to float precision
    assert list(probs.values()) == pytest.approx(ids["ref"]["probs"], abs=1e-6)
    assert sum(probs.values()) == pytest.approx(1.0)


def test_resolve_latest_picks_newest_of_kind(ids):
    assert models.resolve("latest", "language_model") == ids["lm"]
    assert models.resolve("latest", "classifier") == models.list_models("classifier")[0]["id"]
    assert models.resolve("tiny LM") == ids["lm"]
    with pytest.raises(models.ModelError, match="not a sentiment|not a classifier"):
        models.resolve(ids["lm"], "classifier")


def test_resolve_latest_without_models_says_train_first():
    with pytest.raises(models.ModelError, match="train one first"):
        models.resolve("latest", "classifier")


def test_rename_and_delete(ids, home):
    models.rename(ids["clas"], "  My reviews model ")
    assert models.get(ids["clas"])["name"] == "My reviews model"
    assert models.read_meta(ids["clas"])["name"] == "My reviews model"
    with pytest.raises(models.ModelError, match="empty"):
        models.rename(ids["clas"], "   ")
    models.delete(ids["flip"])
    assert ids["flip"] not in {r["id"] for r in models.list_models()}
    assert not (home / "models" / ids["flip"]).exists()
    assert not [p for p in (home / "models").iterdir() if p.name.startswith(".trash")]
    with pytest.raises(models.ModelError, match="no model"):
        models.get(ids["flip"])


def test_registry_rebuilt_from_folders_if_a_row_is_lost(ids, home):
    import sqlite3
    con = sqlite3.connect(home / "models" / "registry.db")
    con.execute("DELETE FROM models WHERE id = ?", (ids["lm"],))
    con.commit()
    con.close()
    assert ids["lm"] in {r["id"] for r in models.list_models()}


def test_ids_cannot_be_paths(ids):
    with pytest.raises(models.ModelError, match="not a model id"):
        models.read_meta("../../etc")


@pytest.mark.parametrize("damage", ["flip_bytes", "truncate"])
def test_damaged_weights_give_a_message_and_leave_registry_intact(ids, home, damage):
    w = home / "models" / ids["clas"] / "weights.safetensors"
    raw = bytearray(w.read_bytes())
    if damage == "flip_bytes":
        mid = len(raw) // 2
        raw[mid:mid + 64] = bytes(64)
        w.write_bytes(bytes(raw))
        expect = "damaged"
    else:
        w.write_bytes(bytes(raw[: len(raw) // 3]))
        expect = "truncated"
    before = models.list_models()
    with pytest.raises(models.ModelError, match=expect):
        models.load(ids["clas"])
    with pytest.raises(models.ModelError, match=expect):
        inference.predict(ids["clas"], "A fine film.")
    assert models.list_models() == before
    assert inference.predict(ids["flip"], "superb")["label"] == "positive"  # the others still work


def test_safetensors_header_garbage_is_refused_even_without_recorded_hash(ids, home):
    folder = home / "models" / ids["clas"]
    meta = json.loads((folder / "meta.json").read_text())
    w = folder / "weights.safetensors"
    w.write_bytes(b"\xff" * meta["weights"]["bytes"])
    meta["weights"].pop("sha256")
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(models.ModelError, match="cannot be read"):
        models.load(ids["clas"])


def test_bundle_roundtrip(ids, tmp_path):
    out = models.export_bundle(ids["clas"], tmp_path / "b.zip")
    with zipfile.ZipFile(out) as z:
        assert sorted(z.namelist()) == ["README.md", "meta.json", "weights.safetensors"]
        readme = z.read("README.md").decode()
    assert "load_file" in readme and "models import" in readme
    new = models.import_bundle(out, name="copy")
    assert new != ids["clas"] and models.get(new)["source"] == "bundle"
    text = "Dreadful acting, but a lovely score."
    assert inference.predict(new, text)["probs"] == inference.predict(ids["clas"], text)["probs"]


@pytest.mark.parametrize("kind", ["clas", "lm"])
def test_bundle_readme_code_loads_the_model_with_plain_fastai(ids, tmp_path, monkeypatch, kind):
    import torch

    out = models.export_bundle(ids[kind], tmp_path / "b.zip")
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(out) as z:
        z.extractall(folder)
    readme = (folder / "README.md").read_text()
    code = readme.split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(folder)
    ns: dict = {}
    exec(code, ns)  # the README's own snippet, as a fastai user would run it
    x = torch.tensor([[2, 5, 7, 9, 11]])
    ours = inference.runner(ids[kind]).loaded.model
    with torch.no_grad():
        ours.reset()
        ns["model"].reset()
        assert torch.equal(ns["model"](x)[0], ours(x)[0])


def test_subword_bundle_roundtrip_keeps_sentencepiece(ids, tmp_path):
    out = models.export_bundle(ids["sub"], tmp_path / "s.zip")
    with zipfile.ZipFile(out) as z:
        assert "spm.model" in z.namelist()
    new = models.import_bundle(out.read_bytes())
    text = "Unbelievably wonderful!"
    assert inference.predict(new, text)["probs"] == inference.predict(ids["sub"], text)["probs"]


def _rewrite_bundle(src: Path, edit_meta) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(buf, "w") as zout:
        for n in zin.namelist():
            data = zin.read(n)
            if n == "meta.json":
                data = json.dumps(edit_meta(json.loads(data))).encode()
            zout.writestr(n, data)
    return buf.getvalue()


def test_bundle_with_vocab_not_matching_weights_is_refused(ids, tmp_path, home):
    src = models.export_bundle(ids["clas"], tmp_path / "b.zip")

    def grow(meta):
        meta["vocab"] = meta["vocab"] + [f"extra{i}" for i in range(8)]
        meta["model"]["vocab_sz"] = len(meta["vocab"])
        return meta

    before = models.list_models()
    with pytest.raises(models.ModelError, match="do not belong together"):
        models.import_bundle(_rewrite_bundle(src, grow))
    assert models.list_models() == before
    assert not [p for p in (home / "models").iterdir() if p.name.startswith(".")]


def test_bad_bundles_are_refused_with_messages(ids, tmp_path):
    with pytest.raises(models.ModelError, match="not a model bundle"):
        models.import_bundle(b"this is not a zip")
    with pytest.raises(models.ModelError, match="empty"):
        models.import_bundle(b"")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../../evil.txt", "x")
    with pytest.raises(models.ModelError, match="no meta.json"):
        models.import_bundle(buf.getvalue())
    src = models.export_bundle(ids["clas"], tmp_path / "b.zip")
    with pytest.raises(models.ModelError, match="not a ULMFiT Studio model"):
        models.import_bundle(_rewrite_bundle(src, lambda m: {**m, "format": "other"}))


class _Evil:
    "A pickle that creates a file when opened: the import must refuse it before it is ever opened."
    path = ""

    def __reduce__(self):
        return (open, (self.path, "w"))


def _evil_pickle(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned.txt"
    ev = _Evil()
    ev.path = str(marker)
    p = tmp_path / "export.pkl"
    p.write_bytes(pickle.dumps(ev))
    return p, marker


def test_malicious_pickle_refused_without_trust_and_file_never_appears(tmp_path):
    p, marker = _evil_pickle(tmp_path)
    with pytest.raises(models.ModelError, match="trust") as e:
        models.import_pkl(p)
    assert "runs whatever code" in str(e.value)
    assert not marker.exists()
    # what the page shows before asking: the pickle names `open` (pickled as io.open), which a fastai model never
    # needs; it is read without running the pickle
    names = models.pickle_imports(p)
    assert names == ["io.open"] and models.unexpected_imports(names) == ["io.open"]
    assert not marker.exists()
    assert models.list_models() == []


def test_malicious_pickle_refused_by_cli_without_trust(tmp_path, home):
    p, marker = _evil_pickle(tmp_path)
    env = dict(os.environ, ULMFIT_DEMO_HOME=str(home), PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-m", "ulmfit_demo", "models", "import", str(p)], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "--trust" in out.stderr
    assert not marker.exists()


def test_fastai_export_loads_in_fastai_and_imports_with_trust(ids, tmp_path):
    from fastai.text.all import load_learner

    p = models.export_fastai(ids["clas"], tmp_path / "clas.pkl")
    assert models.unexpected_imports(models.pickle_imports(p)) == []
    learn = load_learner(p)  # our own file, just written: trusted
    text = "A slow start, then a gripping and beautiful second half."
    with learn.no_bar():
        fastai_probs = [float(x) for x in learn.predict(text)[2]]
    assert fastai_probs == pytest.approx(list(inference.predict(ids["clas"], text)["probs"].values()), abs=1e-6)
    new = models.import_pkl(p, trust=True, name="from pkl")
    assert models.get(new)["source"] == "pkl"
    assert list(inference.predict(new, text)["probs"].values()) == pytest.approx(fastai_probs, abs=1e-6)


def test_fastai_export_of_language_model_generates(ids, tmp_path):
    from fastai.text.all import load_learner

    p = models.export_fastai(ids["lm"], tmp_path / "lm.pkl")
    learn = load_learner(p)
    with learn.no_bar():
        out = learn.predict("The film", n_words=5, no_bar=True)
    assert out.lower().startswith("xxbos the film") or out.lower().startswith("the film")
    new = models.import_pkl(p, trust=True)
    assert models.get(new)["kind"] == "language_model"
    assert len(inference.generate(new, "The film", n_words=5, seed=1)["samples"][0]["tokens"]) == 5


def test_save_learner_refuses_unknown_kind_and_missing_sp_model(ids, tmp_path):
    r = inference.runner(ids["clas"])
    learn = fastai_export._fastai_learner(r.loaded)
    with pytest.raises(models.ModelError, match="Unknown model kind"):
        models.save_learner(learn, kind="vision", name="x", corpus="demo")
    with pytest.raises(models.ModelError, match="SentencePiece model"):
        models.save_learner(learn, kind="classifier", name="x", corpus="demo",
                            tokenizer={"kind": "subword", "sp_model": str(tmp_path / "missing.model")})
