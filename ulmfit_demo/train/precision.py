"""Training precision on a CPU (issue #17): bf16 autocast where it was measured to pay, fp32 elsewhere.

fastai's `MixedPrecision` opens `torch.autocast("cuda", ...)`, which torch switches off (with a warning) on a machine
without a GPU, so `learn.to_bf16()` on a CPU trains in fp32. `cpu_bf16(learn)` adds the same callback with the CPU's
autocast: matrix products and the LSTM (oneDNN's bf16 RNN kernel) run in bf16 while the weights, the optimizer and
the loss stay fp32, so saved weights are fp32 as before. bf16 keeps fp32's exponent range: no loss scaling.

Which precision `precision="auto"` trains in on a CPU follows the record `bf16cpu.json` (written by
`python bench/bench_train_precision.py --record`): per model shape, fp32 and bf16 training tokens/s and the
validation loss after the same steps on a real corpus. bf16 is the default where every measured shape got at least
MIN_SPEEDUP times fp32's tokens per CPU-second and ended within MAX_LOSS_GAP of fp32's validation loss, and only on
a CPU with the bf16 instructions it was measured with (elsewhere bf16 is emulated, and slower than fp32).
This module stays light (no torch or fastai at import): the Train page reads `cpu_default` to say what a run will use.
"""
import functools
import json
from pathlib import Path

from ulmfit_demo import system

RECORD = Path(__file__).with_name("bf16cpu.json")
MIN_SPEEDUP = 1.15  # below this the rounding is not worth it
MAX_LOSS_GAP = 0.02  # nats of validation loss after the same steps (about 2% of perplexity)
NEEDS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 dot products


@functools.lru_cache(maxsize=1)
def record() -> dict:
    "The last recorded measurement (`bf16cpu.json`), or {} when there is none."
    try:
        return json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return {}


def verdict(rec: dict) -> tuple[bool, str]:
    "(bf16 met both targets on every measured shape, why), from a record alone."
    shapes = rec.get("shapes") or {}
    if not shapes:
        return False, "no bf16 training measurement recorded (bench/bench_train_precision.py --record)"
    for name, m in shapes.items():
        sp, gap = m.get("speedup"), m.get("loss_gap")
        if sp is None or gap is None:
            return False, f"the {name} shape's record is incomplete"
        if sp < MIN_SPEEDUP:
            return False, f"bf16 got only {sp:.2f}x fp32's tokens per CPU-second on the {name} shape (needs {MIN_SPEEDUP}x)"
        if gap > MAX_LOSS_GAP:
            return False, f"bf16 ended {gap:.3f} above fp32's validation loss on the {name} shape (at most {MAX_LOSS_GAP})"
    lo = min(m["speedup"] for m in shapes.values())
    hi = max(m["speedup"] for m in shapes.values())
    return True, f"measured {lo:.2f}-{hi:.2f}x fp32's tokens per CPU-second at the same validation loss"


def cpu_default(rec: dict | None = None, flags: frozenset | None = None) -> tuple[str, str]:
    "(precision, why) that `precision='auto'` trains in on this CPU."
    rec = record() if rec is None else rec
    flags = system.cpu_flags() if flags is None else flags
    ok, why = verdict(rec)
    if not ok:
        return "fp32", why
    have = set(NEEDS) & set(flags)
    if not have:
        return "fp32", "this CPU has no native bf16 instructions (avx512_bf16/amx_bf16), where bf16 was measured"
    return "bf16", why


def cpu_precision(requested: str) -> str:
    "What a run asking for `requested` trains in on a CPU: bf16 by name or where measured ('auto'), else fp32."
    if requested == "bf16":
        return "bf16"
    if requested == "auto":
        return cpu_default()[0]
    return "fp32"


@functools.lru_cache(maxsize=1)
def _cpu_bf16_callback():
    # Built on first use: fastai is heavy, and pages import this module for `cpu_default`.
    import torch
    from fastai.callback.fp16 import AMPMode, MixedPrecision
    from fastcore.foundation import L

    class CpuBf16(MixedPrecision):
        "fastai's MixedPrecision with the CPU's autocast (bf16) and no loss scaling; `to_fp32()` removes it too."

        def __init__(self):
            super().__init__(amp_mode=AMPMode.BF16)

        def before_fit(self):
            self.autocast = torch.autocast("cpu", dtype=torch.bfloat16)
            self.learn.scaler = torch.amp.GradScaler("cpu", enabled=False)
            self.scales = L()

    return CpuBf16


def cpu_bf16(learn):
    "Train `learn` in bf16 autocast on the CPU."
    return learn.add_cb(_cpu_bf16_callback()())
