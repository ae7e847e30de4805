"""bf16 training on a CPU (issue #17): the CPU's autocast really runs inside a fastai fit, weights and saved models stay
fp32, a run records the precision it trained in, and `precision="auto"` follows the measured record per CPU."""
import json

import pytest
import torch

from test_runs import tiny
from test_training import docs_frame, run_in_process, tiny_lm
from ulmfit_demo.runs import store
from ulmfit_demo.train import precision, presets, stages

GOOD = {"shapes": {"starter": {"speedup": 1.31, "loss_gap": -0.001}, "ulmfit": {"speedup": 1.6, "loss_gap": 0.004}}}


def test_auto_is_bf16_only_where_every_shape_was_measured_faster_at_the_same_loss_on_such_a_cpu():
    bf16_cpu = frozenset({"avx512f", "avx512_bf16"})
    assert precision.cpu_default(GOOD, bf16_cpu)[0] == "bf16"
    assert "1.31-1.60x" in precision.cpu_default(GOOD, bf16_cpu)[1]
    # Another CPU (no native bf16): emulated bf16 is slower, so fp32 whatever the record says.
    prec, why = precision.cpu_default(GOOD, frozenset({"avx2"}))
    assert prec == "fp32" and "no native bf16" in why
    slow = json.loads(json.dumps(GOOD))
    slow["shapes"]["starter"]["speedup"] = 1.05
    assert precision.cpu_default(slow, bf16_cpu) == ("fp32", "bf16 got only 1.05x fp32's tokens per CPU-second on the "
                                                             "starter shape (needs 1.15x)")
    worse = json.loads(json.dumps(GOOD))
    worse["shapes"]["ulmfit"]["loss_gap"] = 0.05
    assert precision.cpu_default(worse, bf16_cpu)[0] == "fp32"
    assert precision.cpu_default({}, bf16_cpu)[0] == "fp32"
    # An explicit choice is kept; fp16 has no CPU path.
    assert precision.cpu_precision("bf16") == "bf16" and precision.cpu_precision("fp32") == "fp32"
    assert precision.cpu_precision("auto") == precision.cpu_default()[0]


def test_the_shipped_record_matches_this_module_and_names_the_cpu_it_was_measured_on():
    rec = precision.record()
    assert rec, "ulmfit_demo/train/bf16cpu.json is missing: run bench/bench_train_precision.py --record"
    assert set(rec["shapes"]) == {"starter", "ulmfit"} and rec["machine"]["flags"]
    for m in rec["shapes"].values():
        assert m["speedup"] == pytest.approx(m["tokens_per_cpu_s"]["bf16"] / m["tokens_per_cpu_s"]["fp32"], rel=1e-2)
        assert m["loss_gap"] == pytest.approx(m["valid_loss"]["bf16"] - m["valid_loss"]["fp32"], abs=1e-3)


def test_a_fit_in_bf16_runs_under_the_cpus_autocast_and_keeps_fp32_weights(tmp_path):
    from fastai.callback.core import Callback

    cfg = tiny(tokenizer="word", pretrained="none")
    learn, _, _ = tiny_lm(cfg, docs_frame(), tmp_path)
    learn = stages.apply_precision(learn, "bf16")

    class Spy(Callback):
        order = 11  # after the precision callback (10) opened autocast

        def before_batch(self):
            self.seen = getattr(self, "seen", []) + [(torch.is_autocast_enabled("cpu"),
                                                      torch.get_autocast_dtype("cpu"))]

        def after_loss(self):
            self.loss_dtype = self.learn.loss.dtype

    spy = Spy()
    with learn.no_bar():
        learn.fit(1, 1e-2, cbs=[spy])
    assert spy.seen and all(on and dt == torch.bfloat16 for on, dt in spy.seen[:1] + spy.seen[-1:])
    assert spy.loss_dtype == torch.float32  # fastai's `to_float` on the prediction: the loss is fp32
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())
    assert torch.isfinite(torch.tensor(learn.recorder.values[-1][:2])).all()
    assert not torch.is_autocast_enabled("cpu")  # closed after every batch
    learn.to_fp32()  # fastai's own switch removes it
    assert not any(type(cb).__name__ == "CpuBf16" for cb in learn.cbs)


def test_fp16_on_a_cpu_is_refused_but_bf16_is_accepted():
    assert any("fp16 mixed precision needs a GPU" in e
               for e in presets.check_config(presets.QUICK.with_(precision="fp16", device="cpu"), "lm"))
    assert not presets.check_config(presets.QUICK.with_(precision="bf16", device="cpu"), "lm")


def test_a_run_in_bf16_on_the_cpu_records_it_and_leaves_an_fp32_model():
    r = run_in_process("ulmfit", tiny(precision="bf16", pretrained="none", tokenizer="word"))
    assert r["status"] == store.SUCCEEDED, r["error"]
    ev = [e for e in store.events(r["id"]) if e["kind"] == "device"]
    assert ev and ev[0]["data"]["precision"] == "bf16" and "bf16" in ev[0]["message"]
    assert r["device"].endswith("bf16")
    from safetensors import safe_open

    from ulmfit_demo.models import registry

    with safe_open(str(registry.model_folder(r["model_id"]) / registry.WEIGHTS), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert {d for d in dtypes if d.is_floating_point} == {torch.float32}  # (BatchNorm's counters are int64)
