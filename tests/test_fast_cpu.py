"""The fast CPU predictor (`models.fastcpu`) on the real bundled classifier: its fp32 copy with plain LSTMs equals the
fastai model, bf16 and int8 give fp32's verdicts on real reviews, the setting turns it off (seen in the cached
model's modules), attributions stay on fp32, and the default follows the recorded measurement. No timing here: speed
lives in bench/bench_inference.py."""
import pytest

from ulmfit_demo.cli import main
from ulmfit_demo.data import corpora
from ulmfit_demo.models import ModelError, awd, fastcpu, inference

# Largest |p_fast - p_fp32| measured on these 80 reviews with the bundled model, doubled: bf16 0.0042, int8 0.041
# (on 2,000 IMDb test reviews: see fastcpu.json). int8 quantizes each batch's activations with one scale, so its
# probabilities also move with the batch (0.009 here, scored alone against in a batch of 12).
TOL = {"bf16": 0.01, "int8": 0.08}


_FP32: dict = {}


@pytest.fixture
def reviews(home):
    "40 short reviews written for the project and 40 IMDb ones (several hundred tokens: many BPTT chunks)."
    demo = corpora.load("demo").df.sample(n=40, random_state=0)["text"].tolist()
    imdb = corpora.load("imdb_sample").df.sample(n=40, random_state=0)["text"].tolist()
    return demo + imdb


@pytest.fixture
def fp32(bundled_awd, reviews):
    "The bundled AWD-LSTM classifier's fp32 probabilities of `reviews` (computed once per test process)."
    if "p" not in _FP32:
        _FP32["p"] = probs(reviews, "fp32", bundled_awd)
    return _FP32["p"]


def probs(texts, prec, model):
    with fastcpu.using(prec):
        return [p["probs"]["positive"] for p in inference.predict_batch(model, texts)]


def rnn_types(model):
    return {type(m) for m in model[0].module.rnns}


def test_the_plain_lstm_copy_gives_the_fastai_models_outputs(bundled_awd, reviews):
    "The copy that bf16 and int8 start from: WeightDropout unwrapped, the raw weights in plain nn.LSTMs."
    import torch
    from fastai.text.all import WeightDropout

    r = inference.runner(bundled_awd)
    assert rnn_types(r.loaded.model) == {WeightDropout}
    copy = fastcpu.inference_copy(r.loaded)
    assert rnn_types(copy) == {torch.nn.LSTM}
    seqs = [r.numericalize(t) for t in r.tokenize(reviews[30:50])]  # 10 short, 10 long
    with r.lock:
        mine = awd.class_probs(r, seqs, precision="fp32")[:, 1].tolist()
        r.loaded.model, saved = copy, r.loaded.model  # the same code path, the copy in the fastai model's place
        try:
            theirs = awd.class_probs(r, seqs, precision="fp32")[:, 1].tolist()
        finally:
            r.loaded.model = saved
    assert theirs == pytest.approx(mine, abs=1e-6)


@pytest.mark.parametrize("prec", ["bf16", "int8"])
def test_fast_paths_give_fp32s_verdicts_on_real_reviews(bundled_awd, reviews, fp32, prec):
    fast = probs(reviews, prec, bundled_awd)
    for t, a, b in zip(reviews, fp32, fast):
        assert b == pytest.approx(a, abs=TOL[prec]), t[:80]
        assert (a > 0.5) == (b > 0.5), t[:80]  # the closest call here is 0.021 from the fence


def test_bf16_keeps_a_verdict_independent_of_its_batch(bundled_awd, reviews):
    "bf16 rounds each number alone, so one review scored alone or in a batch gets the same probability."
    batch = probs(reviews[-12:], "bf16", bundled_awd)
    alone = [probs([t], "bf16", bundled_awd)[0] for t in reviews[-12:]]
    assert alone == pytest.approx(batch, abs=1e-5)


def test_int8_depends_on_its_batch_only_within_the_tolerance(bundled_awd, reviews):
    "int8 quantizes a batch's activations with one scale: a review's probability moves a little with its batch-mates."
    batch = probs(reviews[-12:], "int8", bundled_awd)
    alone = [probs([t], "int8", bundled_awd)[0] for t in reviews[-12:]]
    assert alone == pytest.approx(batch, abs=TOL["int8"])


def test_the_setting_picks_the_model_that_runs_and_each_copy_is_cached_once(bundled_awd, monkeypatch):
    import torch
    from fastai.text.all import WeightDropout
    from torch.ao.nn.quantized.dynamic import LSTM as QLSTM

    text = "A warm, funny film with a dull middle and a great end."
    r = inference.runner(bundled_awd)
    r.variants.clear()
    monkeypatch.delenv(fastcpu.ENV, raising=False)
    inference.predict(bundled_awd, text)
    # As recorded (fastcpu.json): no fast path reached 2x on the bundled model's size, so it stays fp32 by default.
    assert fastcpu.default(r.meta["model"]["config"]) == "fp32" and r.variants == {}
    monkeypatch.setenv(fastcpu.ENV, "0")
    inference.predict(bundled_awd, text)
    assert r.variants == {}  # nothing but the loaded fastai model ran
    with r.lock:
        assert fastcpu.model_for(r) is r.loaded.model and rnn_types(r.loaded.model) == {WeightDropout}

    monkeypatch.setenv(fastcpu.ENV, "int8")
    inference.predict(bundled_awd, text)
    assert set(r.variants) == {"int8"} and rnn_types(r.variants["int8"]) == {QLSTM}
    q = r.variants["int8"]
    monkeypatch.setenv(fastcpu.ENV, "bf16")
    inference.predict_batch(bundled_awd, [text, text + " Really."])
    b = r.variants["bf16"]
    assert rnn_types(b) == {torch.nn.LSTM} and b[0].module.rnns[0].weight_hh_l0.dtype == torch.bfloat16
    assert {m.weight.dtype for m in b[1].modules() if isinstance(m, torch.nn.Linear)} == {torch.float32}  # the head
    monkeypatch.setenv(fastcpu.ENV, "int8")
    inference.predict(bundled_awd, text)
    assert inference.runner(bundled_awd) is r and r.variants["int8"] is q and r.variants["bf16"] is b  # built once

    monkeypatch.setenv(fastcpu.ENV, "fast please")
    with pytest.raises(ModelError, match="ULMFIT_DEMO_FAST_CPU"):
        inference.predict(bundled_awd, text)


def test_attributions_run_on_fp32_whatever_the_setting(bundled_awd, monkeypatch):
    text = "The plot was slow, but the acting was superb and the music lovely."
    monkeypatch.setenv(fastcpu.ENV, "0")
    ref = inference.attributions(bundled_awd, text)
    for prec in ("bf16", "int8"):
        monkeypatch.setenv(fastcpu.ENV, prec)
        attr = inference.attributions(bundled_awd, text)
        assert attr["label"] == ref["label"] and attr["prob"] == pytest.approx(ref["prob"], abs=1e-6)
        assert [w["score"] for w in attr["words"]] == pytest.approx([w["score"] for w in ref["words"]], abs=1e-6)
    assert max(ref["words"], key=lambda w: w["score"])["text"] in ("superb", "lovely.", "lovely")


def test_cli_precision_flag_and_the_setting_is_restored(bundled_awd, capsys, monkeypatch):
    import json

    monkeypatch.delenv(fastcpu.ENV, raising=False)
    out = {}
    for prec in ("fp32", "bf16", "int8"):
        assert main(["predict", "--model", bundled_awd, "--text", "Loved every minute of it.", "--precision", prec,
                     "--json"]) == 0
        out[prec] = json.loads(capsys.readouterr().out)
        assert fastcpu.ENV not in __import__("os").environ
    assert {o["label"] for o in out.values()} == {"positive"}
    assert out["bf16"]["probs"]["positive"] == pytest.approx(out["fp32"]["probs"]["positive"], abs=TOL["bf16"])
    assert set(inference.runner(bundled_awd).variants) >= {"bf16", "int8"}


# ----------------------------------------------------------------------------------------------------------- the rule

BUNDLED = {"emb_sz": 128, "n_hid": 512, "n_layers": 2}
FULL = {"emb_sz": 400, "n_hid": 1152, "n_layers": 3}
TINY = {"emb_sz": 16, "n_hid": 32, "n_layers": 2}


def rec(bundled_speed, full_speed, acc_bf16=0.880, acc_int8=0.879):
    return {"models": {
        "bundled": {"arch": BUNDLED, "accuracy": {"fp32": 0.880, "bf16": acc_bf16, "int8": acc_int8},
                    "speedup": bundled_speed},
        "full": {"arch": FULL, "speedup": full_speed}}}


def test_the_default_is_the_fast_path_only_where_it_met_both_targets(monkeypatch):
    monkeypatch.setattr(fastcpu, "cpu_flags", lambda: frozenset({"avx512_bf16", "avx512_vnni"}))
    r = rec({"bf16": 1.8, "int8": 1.7}, {"bf16": 1.9, "int8": 2.6})
    assert fastcpu.default(BUNDLED, r) == "fp32"  # neither reached 2x on the bundled shape
    assert fastcpu.default(FULL, r) == "int8"
    assert fastcpu.default({"emb_sz": 800, "n_hid": 2000, "n_layers": 4}, r) == "int8"  # larger: the full figures
    assert fastcpu.default(TINY, r) == "fp32"  # smaller than anything measured
    assert fastcpu.default(FULL, rec({"bf16": 1.8, "int8": 1.7}, {"bf16": 1.9, "int8": 2.6}, acc_int8=0.870)) == "fp32"
    assert fastcpu.default(BUNDLED, rec({"bf16": 2.2, "int8": 2.1}, {"bf16": 2.1, "int8": 2.6})) == "bf16"
    assert fastcpu.default(FULL, {}) == "fp32"  # nothing recorded
    monkeypatch.setattr(fastcpu, "cpu_flags", lambda: frozenset({"avx2"}))  # a CPU without int8 dot products
    assert fastcpu.default(FULL, r) == "fp32"


def test_the_setting_overrides_the_default(monkeypatch):
    monkeypatch.setattr(fastcpu, "record", lambda: rec({"bf16": 1.8, "int8": 1.7}, {"bf16": 1.9, "int8": 2.6}))
    monkeypatch.setattr(fastcpu, "cpu_flags", lambda: frozenset({"avx512_bf16", "avx512_vnni"}))
    monkeypatch.delenv(fastcpu.ENV, raising=False)
    assert fastcpu.precision(arch=FULL) == "int8" and fastcpu.precision(arch=BUNDLED) == "fp32"
    monkeypatch.setenv(fastcpu.ENV, "0")
    assert fastcpu.precision(arch=FULL) == "fp32"
    monkeypatch.setenv(fastcpu.ENV, "1")
    assert fastcpu.precision(arch=BUNDLED) == "bf16"  # the fastest accurate one there, though under 2x
    assert fastcpu.precision(arch=TINY) == "bf16"
    monkeypatch.setenv(fastcpu.ENV, "int8")
    assert fastcpu.precision(arch=BUNDLED) == "int8"
    assert fastcpu.precision("fp32", arch=FULL) == "fp32"


def test_the_recorded_measurement_is_complete():
    "The shipped record names both targets' figures for the trained model and the full-size one."
    r = fastcpu.record()
    assert {"date", "machine", "models"} <= set(r)
    assert set(r["models"]["bundled"]["accuracy"]) >= {"fp32", "bf16", "int8"}
    assert r["models"]["bundled"]["n"] >= 2000
    assert set(r["models"]["full"]["speedup"]) >= {"bf16", "int8"}
    assert r["models"]["full"]["arch"] == FULL
    for key, m in r["models"].items():
        assert r["default"][key] == fastcpu.default(m["arch"], r) or not fastcpu.cpu_flags()
