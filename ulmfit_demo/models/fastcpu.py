"""The fast CPU predictor (issue #12): a copy of a classifier that runs in bf16 or with int8 LSTMs, used for
verdicts on a CPU where its measurement met both targets, and fp32 otherwise.

fastai's AWD-LSTM wraps each `nn.LSTM` in `WeightDropout`, which clones the hidden-to-hidden weights on every call
(an identity at inference) and hides the LSTM from `quantize_dynamic`. `inference_copy` rebuilds the classifier with
plain `nn.LSTM`s holding the effective weights (fp32, the same outputs: tested); `build` then casts its encoder to
bf16 (pooling and head stay fp32) or quantizes its LSTMs to int8 (`torch.ao.quantization.quantize_dynamic`; the
embedding and the head stay fp32: the head is a few thousand multiply-adds per review, quantizing it only adds error).

Which precision runs (`precision`): `$ULMFIT_DEMO_FAST_CPU` (`0`/`fp32`: fp32; `1`: the measured fast precision;
or `bf16`/`int8` by name), else `default`: the precision that met both targets below in the record
(`fastcpu.json`, written by `python bench/bench_inference.py --record`) on the measured model like this one (the
largest not larger), on a CPU with the instructions it was measured with.
Each copy is built once per loaded model (`awd.AwdModel.variants`, under the model's lock) and dropped with it.
Attributions stay on fp32 (`inference.attributions` asks for it): their scores are small differences between two
probabilities, the place where rounding shows first. bf16 rounds each number alone, so a verdict still never depends
on the other reviews in its batch; int8 quantizes each batch's activations with one scale, so there a probability
moves by up to about a point with its batch-mates (measured in tests/test_fast_cpu.py).
"""
import contextlib
import functools
import json
import os
import warnings
from pathlib import Path

from ulmfit_demo import system
from ulmfit_demo.models.arch import build_model
from ulmfit_demo.models.registry import ModelError

ENV = "ULMFIT_DEMO_FAST_CPU"
PRECISIONS = ("fp32", "bf16", "int8")
RECORD = Path(__file__).with_name("fastcpu.json")
# The issue's targets: verdicts within half a point of fp32's accuracy on 2,000 IMDb test reviews, and at least
# twice fp32's reviews/s in batch prediction.
MAX_ACC_DROP = 0.005
MIN_SPEEDUP = 2.0
# CPU instructions that make each path fast (Linux /proc/cpuinfo names). Without them bf16 is emulated and int8
# loses its dot-product instructions, so a record measured with them says nothing about such a CPU.
NEEDS = {"bf16": ("avx512_bf16", "amx_bf16"), "int8": ("avx512_vnni", "avx_vnni", "amx_int8")}


@functools.lru_cache(maxsize=1)
def record() -> dict:
    "The last recorded measurement (`fastcpu.json`), or {} when there is none."
    try:
        return json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return {}


def cpu_flags() -> frozenset:
    "This CPU's feature flags (`system.cpu_flags`; a name of its own here so tests can pretend another CPU)."
    return system.cpu_flags()


def lstm_macs(arch: dict) -> int:
    "Multiply-adds per token in an AWD-LSTM's LSTMs (the work the fast paths speed up): its size, for the rule below."
    e, h, n = int(arch["emb_sz"]), int(arch["n_hid"]), int(arch["n_layers"])
    ins = [e] + [h] * (n - 1)
    outs = [h] * (n - 1) + [e]
    return sum(4 * o * (i + o) for i, o in zip(ins, outs))


def accurate(rec: dict, prec: str) -> bool:
    "Whether `prec` kept accuracy within MAX_ACC_DROP of fp32 on every trained model in the record (one at least)."
    accs = [m["accuracy"] for m in (rec.get("models") or {}).values() if m.get("accuracy")]
    return bool(accs) and all(a["fp32"] - a.get(prec, -1.0) <= MAX_ACC_DROP for a in accs)


def measured_like(rec: dict, arch: dict | None) -> str | None:
    """The record's model whose speed speaks for a model of shape `arch`: the largest measured one that is not
    larger (the speed-ups grow with size: a smaller model would overstate them). None when `arch` is smaller than
    every measured model; with no `arch`, the smallest measured."""
    models = {k: m for k, m in (rec.get("models") or {}).items() if m.get("arch") and m.get("speedup")}
    sized = sorted(models, key=lambda k: lstm_macs(models[k]["arch"]))
    if arch is None:
        return sized[0] if sized else None
    fits = [k for k in sized if lstm_macs(models[k]["arch"]) <= lstm_macs(arch)]
    return fits[-1] if fits else None


def fastest(rec: dict, arch: dict | None) -> tuple[str | None, bool]:
    """The fastest precision that kept accuracy, measured on the model like `arch`, and whether it also met the
    speed target there: (None, False) without such a measurement."""
    key = measured_like(rec, arch)
    if key is None:
        return None, False
    speed = rec["models"][key]["speedup"]
    ok = [p for p in PRECISIONS[1:] if accurate(rec, p) and p in speed]
    if not ok:
        return None, False
    best = max(ok, key=lambda p: speed[p])
    return best, speed[best] >= MIN_SPEEDUP


def met(rec: dict, prec: str, key: str) -> bool:
    "Whether `prec` met both targets on the record's model `key` (accuracy is judged on the trained one)."
    return accurate(rec, prec) and (rec["models"][key].get("speedup") or {}).get(prec, 0) >= MIN_SPEEDUP


def default(arch: dict | None = None, rec: dict | None = None) -> str:
    """The precision a model of shape `arch` runs at when nothing is set: the fastest one that met both targets on
    the measured model like it, where this CPU has the instructions it needs; fp32 otherwise."""
    best, fast_enough = fastest(record() if rec is None else rec, arch)
    return best if best and fast_enough and cpu_flags() & set(NEEDS[best]) else "fp32"


def precision(requested: str | None = None, arch: dict | None = None) -> str:
    "The precision for verdicts of a model of shape `arch`: `requested`, else `$ULMFIT_DEMO_FAST_CPU`, else `default`."
    v = (requested if requested is not None else os.environ.get(ENV, "")).strip().lower()
    if v == "":
        return default(arch)
    if v in ("0", "false", "off", "no"):
        return "fp32"
    if v in ("1", "true", "on", "yes"):  # the fastest accurate one measured, met its speed target or not
        rec = record()
        return fastest(rec, arch if measured_like(rec, arch) else None)[0] or "bf16"
    if v in PRECISIONS:
        return v
    raise ModelError(f"{ENV}={v!r} is not a setting: use 0 (fp32), 1 (the measured fast path), fp32, bf16 or int8.")


# ----------------------------------------------------------------------------------------------------------- copies

def inference_copy(loaded):
    """The classifier rebuilt with plain `nn.LSTM`s holding its effective weights: fp32, eval mode, its own hidden
    state; outputs equal the loaded model's. `loaded` is a `store.Loaded`."""
    from torch import nn

    m = build_model(loaded.meta["model"], "classifier")
    m.load_state_dict(loaded.model.state_dict())
    awd = m[0].module
    for i, wd in enumerate(awd.rnns):
        lstm = wd.module
        plain = nn.LSTM(lstm.input_size, lstm.hidden_size, lstm.num_layers, batch_first=lstm.batch_first,
                        bidirectional=lstm.bidirectional)
        # The wrapped LSTM's own state lacks the dropped-out weights; WeightDropout keeps them as `<name>_raw`.
        state = dict(lstm.state_dict(), **{n: getattr(wd, f"{n}_raw").detach() for n in wd.layer_names})
        plain.load_state_dict(state)
        awd.rnns[i] = plain
    m.eval()
    m.reset()
    return m


def build(loaded, prec: str):
    "The model that runs `loaded` at `prec`: the loaded model itself for fp32, else a converted `inference_copy`."
    import torch
    from torch import nn

    if prec == "fp32":
        return loaded.model
    m = inference_copy(loaded)
    if prec == "bf16":
        m[0].module.to(torch.bfloat16)  # embedding and LSTMs; `_class_probs` pools the output in fp32
    elif prec == "int8":
        with warnings.catch_warnings():
            # torch says eager-mode quantization is moving to torchao; the call works and torchao is not installed.
            warnings.simplefilter("ignore")
            m = torch.ao.quantization.quantize_dynamic(m, {nn.LSTM}, dtype=torch.qint8, inplace=True)
    else:
        raise ModelError(f"Unknown precision {prec!r}: use one of {', '.join(PRECISIONS)}.")
    m[0].module.reset()  # hidden state in the encoder's new dtype
    return m


def model_for(r, prec: str | None = None):
    """The network of the opened AWD-LSTM `r` (`awd.AwdModel`) at `prec` (default: `precision()`), built on first use and kept on the runner.
    Call under `r.lock`. A model not on the CPU always runs as loaded."""
    prec = precision(prec, r.loaded.meta["model"]["config"])
    model = r.loaded.model
    if prec == "fp32" or next(model.parameters()).device.type != "cpu":
        return model
    if prec not in r.variants:
        r.variants[prec] = build(r.loaded, prec)
    return r.variants[prec]


@contextlib.contextmanager
def using(prec: str | None):
    """Within the block, verdicts run at `prec` (None: as set). It sets the environment variable, so it holds for the
    whole process: for a command (`predict --precision`) or a benchmark, not for one thread of a server."""
    if prec is None:
        yield
        return
    precision(prec)  # refuse a bad name before anything runs
    old = os.environ.get(ENV)
    os.environ[ENV] = prec
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old
