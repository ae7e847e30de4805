"""The ULMFiT stages and their pieces, in-process on tiny real fastai models: presets, schedules, determinism,
starting weights (WT103 resolution order, vocab mapping), subword tokenization, checkpoints, and the stage-1 ->
stage-2 and LR-finder run kinds through the worker's `execute`."""
import io
import os
import pickle
import tarfile
from pathlib import Path

import pytest

from ulmfit_demo import config
from ulmfit_demo.data import corpora as datasets
from ulmfit_demo.runs import store, views, worker
from ulmfit_demo.train import presets, pretrained, stages as training
from test_runs import tiny


def docs_frame(n=60):
    docs = presets.sample_docs(datasets.load("demo").df, n, 0)
    return docs[docs["text"].str.strip() != ""].reset_index(drop=True)


def tiny_lm(cfg, docs, path):
    docs, tok = training.tokenize_docs(docs, cfg, path)
    trn, val = training.lm_split(len(docs), cfg.lm_valid_pct, cfg.seed)
    vocab = training.build_vocab(docs["tokens"].iloc[trn], cfg)
    dls = training.lm_dls(docs, (trn, val), vocab, cfg, "cpu")
    return training.lm_learner(dls, cfg, path), tok, vocab


def run_in_process(kind, cfg, corpus="demo") -> dict:
    rid = store.create_run(kind, cfg.to_dict(), preset="tiny", corpus=corpus, foreground=True, pid=os.getpid())
    assert store.claim(rid, os.getpid())
    worker.execute(rid)
    return store.get(rid)


# ---------------------------------------------------------------------------------------------------- presets

def test_ulmfit_preset_is_the_seeds_schedule():
    u = presets.ULMFIT
    assert (u.bs, u.seq_len, u.clas_seq_len, u.drop_mult_lm, u.drop_mult_clas) == (128, 80, 72, 0.3, 0.5)
    lm = training.lm_phases(u, "ulmfit", pretrained=True)
    assert [(p.freeze_to, p.epochs, p.lr_arg) for p in lm] == [(-1, 1, 2e-2), (0, 10, 2e-3)]
    clas = training.clas_phases(u)
    assert [(p.freeze_to, p.epochs) for p in clas] == [(-1, 1), (-2, 1), (-3, 1), (0, 2)]
    assert clas[0].lr_arg == 2e-2
    assert [p.lr_arg for p in clas[1:]] == [slice(1e-2 / 2.6**4, 1e-2), slice(5e-3 / 2.6**4, 5e-3),
                                            slice(1e-3 / 2.6**4, 1e-3)]
    # From scratch nothing is pretrained, so the first LM phase trains every layer.
    assert training.lm_phases(presets.QUICK, "lm", pretrained=False)[0].freeze_to == 0


def test_every_knob_has_a_comment_and_configs_round_trip():
    from dataclasses import fields

    assert set(presets.knob_help()) == {f.name for f in fields(presets.Config)}
    assert presets.Config.from_dict(presets.QUICK.to_dict()) == presets.QUICK
    assert presets.preset("quick") is presets.QUICK
    with pytest.raises(presets.ConfigError, match="Unknown preset"):
        presets.preset("fast")


def test_quick_preset_is_valid_for_imdb_sample(imdb_sample_archive):
    presets.validate(presets.QUICK, "ulmfit", datasets.load("imdb_sample"), cuda=False)
    assert presets.check_config(presets.ULMFIT, "ulmfit", cuda=False) == []


# ---------------------------------------------------------------------------------------------------- training

def test_a_seeded_tiny_fit_gives_the_same_losses_twice(tmp_path):
    from fastai.torch_core import set_seed

    cfg = tiny()
    docs = docs_frame()
    results = []
    for i in range(2):
        set_seed(cfg.seed, reproducible=True)
        learn, tok, vocab = tiny_lm(cfg, docs, tmp_path / str(i))
        with learn.no_bar(), learn.no_logging():
            learn.fit_one_cycle(1, 1e-2)
        results.append([round(float(v), 6) for v in learn.recorder.values[-1]])
        results.append(training.sample_text(learn, tok, vocab, "The film", 6, seed=1))
    assert results[0] == results[2] and results[1] == results[3]
    assert results[1].startswith("The film")


def test_the_lm_sample_prompt_reads_as_it_was_typed():
    "After each LM epoch the Train page shows the prompt in bold before the sample: it must come back as typed."
    tok = training.Tok("word")
    for prompt in ("I liked this movie because", "It's GREAT!!! I don't know."):
        assert tok.detok(tok.tokenize([prompt])[0]) == prompt


def _fake_wt103(tmp_path, cfg) -> tuple[Path, dict, list]:
    "A WT103-shaped archive made here from a tiny LM: fastai's layout, `wt103-fwd/{lstm_fwd.pth,itos_wt103.pkl}`."
    import torch

    learn, _, vocab = tiny_lm(cfg, docs_frame(40), tmp_path / "src")
    sd = training.lm_state(learn)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with tarfile.open(mirror / "wt103-fwd.tgz", "w:gz") as tf:
        for name, data in (("lstm_fwd.pth", None), ("itos_wt103.pkl", pickle.dumps(list(vocab)))):
            if data is None:
                buf = io.BytesIO()
                torch.save(sd, buf)
                data = buf.getvalue()
            info = tarfile.TarInfo(f"wt103-fwd/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return mirror, sd, list(vocab)


def test_wt103_is_found_through_the_mirror_then_the_cache_and_mapped_to_a_new_vocab(tmp_path, monkeypatch):
    cfg = tiny()
    monkeypatch.setenv("FASTAI_HOME", str(tmp_path / "fastai"))
    mirror, sd, old_vocab = _fake_wt103(tmp_path, cfg)
    monkeypatch.setenv("ULMFIT_DEMO_MIRROR", str(mirror))
    assert pretrained.local() is None
    folder, tried = pretrained.find()
    assert folder == config.fastai_models() / "wt103-fwd" and "mirror" in tried[-1]
    assert pretrained.local() == folder
    assert pretrained.find()[1] == [f"fastai's model cache ({folder}): found"]

    wgts, vocab = pretrained.load(folder)
    assert vocab == old_vocab
    learn, _, new_vocab = tiny_lm(cfg.with_(min_freq=2), docs_frame(70), tmp_path / "dst")
    assert new_vocab != old_vocab
    training.load_start_weights(learn, wgts, vocab)
    emb = learn.model[0].encoder.weight.detach()
    shared = [w for w in new_vocab if w in old_vocab and not w.startswith("xxfake")][:20]
    for w in shared:
        assert (emb[new_vocab.index(w)] == sd["0.encoder.weight"][old_vocab.index(w)]).all()
    assert not any(p.requires_grad for p in learn.model[0].rnns.parameters())  # frozen, as language_model_learner


def test_wt103_missing_offline_is_none_with_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTAI_HOME", str(tmp_path / "fastai"))
    monkeypatch.setenv("ULMFIT_DEMO_MIRROR", str(tmp_path))
    folder, tried = pretrained.find()
    assert folder is None
    assert any("has no wt103-fwd.tgz" in t for t in tried) and any("ULMFIT_DEMO_OFFLINE" in t for t in tried)
    assert "ULMFIT_DEMO_MIRROR" in pretrained.hint()


def test_a_vocab_pickle_cannot_run_code(tmp_path):
    p = tmp_path / "itos.pkl"
    p.write_bytes(pickle.dumps(os.system))
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        pretrained.load_vocab(p)


def test_checkpoint_write_hit_by_a_full_disk_leaves_the_old_one(tmp_path, monkeypatch):
    import errno

    import torch

    from ulmfit_demo.runs import checkpoint

    p = tmp_path / "ck.pth"
    checkpoint.atomic_torch_save({"w": torch.ones(3)}, p)
    monkeypatch.setattr(checkpoint, "_writes", 0)
    monkeypatch.setenv(checkpoint.FAULT_ENOSPC_ENV, "1")
    with pytest.raises(OSError) as e:
        checkpoint.atomic_torch_save({"w": torch.zeros(3)}, p)
    assert e.value.errno == errno.ENOSPC
    assert checkpoint.load(p)["w"].tolist() == [1.0, 1.0, 1.0]
    assert [x.name for x in tmp_path.iterdir()] == ["ck.pth"]


def test_subword_tokenizer_is_trained_on_the_corpus_and_reused(tmp_path):
    cfg = tiny(tokenizer="subword", sp_vocab_sz=300)
    docs, tok = training.tokenize_docs(docs_frame(), cfg, tmp_path)
    assert tok.meta["kind"] == "subword" and Path(tok.meta["sp_model"]).exists()
    assert docs["tokens"].iloc[0][0] == "▁xxbos" and any(t.startswith("▁") for t in docs["tokens"].iloc[0][1:])
    mtime = Path(tok.meta["sp_model"]).stat().st_mtime_ns
    training.tokenize_docs(docs_frame(), cfg, tmp_path)  # a resumed run keeps its pieces
    assert Path(tok.meta["sp_model"]).stat().st_mtime_ns == mtime
    assert "movie" in tok.detok(tok.tokenize(["A great movie"])[0]).lower()


# ---------------------------------------------------------------------------------------------------- run kinds

def test_stage1_pretraining_then_fine_tuning_from_it_and_a_subword_backwards_lm():
    cfg = tiny(tokenizer="subword", sp_vocab_sz=400, lm_epochs=1, pretrain_epochs=1)
    # Wikipedia articles are long: 3 of them make ~40k pieces, plenty for a tiny stage 1.
    pre = run_in_process("pretrain", cfg.with_(max_docs=3, bs=32, seq_len=32), corpus="wikitext2_small")
    assert pre["status"] == store.SUCCEEDED, pre["error"]
    assert views.scratch_warning(store.events(pre["id"]))["reason"] == "stage1"
    assert (store.run_dir(pre["id"]) / "lm_model.pth").exists()

    ft = run_in_process("lm", cfg.with_(max_docs=60, pretrained=f"run:{pre['id']}", backwards=True))
    assert ft["status"] == store.SUCCEEDED, ft["error"]
    ev = store.events(ft["id"])
    assert any(e["kind"] == "pretrained" and pre["id"] in e["message"] for e in ev)
    assert views.scratch_warning(ev) is None
    phases = [e["data"]["freeze_to"] for e in ev if e["kind"] == "phase"]
    assert phases == [-1, 0]  # pretrained: frozen first, as the seeds
    from ulmfit_demo import models

    meta = models.read_meta(ft["model_id"])
    assert meta["tokenizer"]["kind"] == "subword"

    # Stage 3 alone, on the fine-tuned LM's encoder and vocab (and its SentencePiece model).
    cl = run_in_process("clas", cfg.with_(max_docs=60, pretrained=f"run:{ft['id']}", backwards=True))
    assert cl["status"] == store.SUCCEEDED, cl["error"]
    assert 0 <= cl["summary"]["metrics"]["accuracy"] <= 1
    assert models.read_meta(cl["model_id"])["kind"] == "classifier"


def test_lr_find_run_records_the_curve_and_a_suggestion():
    r = run_in_process("lr_find", tiny(lr_find_iters=30))
    assert r["status"] == store.SUCCEEDED, r["error"]
    m = store.metrics(r["id"])
    curve = m[m["split"] == "lr_find"]
    lrs = curve[curve["name"] == "lr"]["value"].tolist()
    assert len(lrs) >= 10 and lrs == sorted(lrs)
    sugg = views.lr_suggestion(store.events(r["id"]))
    assert sugg and 1e-7 < sugg["valley"] < 10
    assert r["summary"]["lr_suggestion"] == sugg["valley"]
    assert views.best_metric(r).startswith("suggested LR")


def test_resume_after_the_last_checkpoint_saves_the_trained_weights():
    "Killed after the last epoch's checkpoint but before the model was saved: resume must save those weights."
    import json

    import torch

    from ulmfit_demo.runs import checkpoint

    r = run_in_process("lm", tiny())
    assert r["status"] == store.SUCCEEDED, r["error"]
    rdir = store.run_dir(r["id"])
    state = json.loads((rdir / "state.json").read_text())
    state["done"] = []  # as if the process died between the last checkpoint and saving the model
    (rdir / "state.json").write_text(json.dumps(state))
    (rdir / "lm_model.pth").unlink()
    with store.connect() as con:
        con.execute("UPDATE runs SET status='INTERRUPTED' WHERE id=?", (r["id"],))
    assert store.requeue(r["id"]) and store.claim(r["id"], os.getpid())
    assert worker.execute(r["id"]) == store.SUCCEEDED
    saved = torch.load(rdir / "lm_model.pth", weights_only=True)
    ck = checkpoint.load(rdir / "checkpoints" / "lm.pth")["model"]
    assert all(torch.equal(saved[k], ck[k]) for k in saved)
    assert store.get(r["id"])["model_id"] != r["model_id"]  # a new model from the checkpoint's weights


def test_a_one_token_last_batch_is_not_mistaken_for_a_diverged_run():
    """LMDataLoader's last batch is `bs x 1` when the stream leaves one token over. fastai's TAR penalty adds NaN to
    `loss_grad` there (it tests the batch size, not the length) although the gradients stay finite; the run must
    not stop as "loss became nan" (it did, with the Quick preset on the demo corpus at bs=16)."""
    cfg = tiny(max_docs=60, seed=0)
    docs = docs_frame(60)  # the worker's sample for max_docs=60, seed=0
    for bs in range(4, 40):  # a batch size whose last training batch is one token long on this corpus
        learn, _, _ = tiny_lm(cfg.with_(bs=bs), docs, config.sub("runs"))
        if list(learn.dls.train)[-1][0].shape[1] == 1:
            break
    else:
        pytest.fail("no batch size in 4..39 gives a one-token last batch; pick another corpus size")
    r = run_in_process("lm", cfg.with_(bs=bs))
    assert r["status"] == store.SUCCEEDED, r["error"]


def test_crops_are_short_labelled_pieces_of_the_training_texts_only():
    "`clas_crops` adds one- or two-sentence crops of training texts with their labels; judging never sees them."
    from ulmfit_demo.data.crops import crops

    texts = ["Great cast. A moving story. I loved every minute of it.", "Too short. Really.", "The plot is dull. The acting is bad too."]
    cr = crops(texts, ["pos", "x", "neg"], frac=1.0, seed=0)
    assert list(cr["label"]) == ["pos", "neg"]  # "Too short. Really." has no sentence of 3+ words
    for t, src in zip(cr["text"], [texts[0], texts[2]]):
        assert t in src and t != src and t.count(".") in (1, 2)
    assert crops(texts, ["pos", "x", "neg"], 1.0, 0).equals(cr)  # seeded
    assert crops(texts, ["pos", "x", "neg"], 0.0, 0).empty

    cfg = tiny(clas_crops=0.5, lm_epochs=1, lm_frozen_epochs=0)
    r = run_in_process("ulmfit", cfg)
    assert r["status"] == store.SUCCEEDED, r["error"]
    ev = store.events(r["id"])
    added = [e for e in ev if e["kind"] == "crops"]
    assert len(added) == 1 and added[0]["data"]["crops"] > 0
    n_trn = added[0]["data"]["texts"]
    batches = [e["data"]["batches"] for e in ev if e["kind"] == "stage" and e["data"].get("stage") == "clas"]
    # the classifier's epoch reads the crops too (fastai drops the last partial training batch)...
    assert batches == [(n_trn + added[0]["data"]["crops"]) // cfg.bs] and batches[0] > n_trn // cfg.bs
    assert r["step"] == r["total_steps"]  # the progress bar counted the crops' batches from the start
    # ...its judged figures read whole validation texts only
    assert r["summary"]["metrics"]["n_valid"] + n_trn == cfg.max_docs
