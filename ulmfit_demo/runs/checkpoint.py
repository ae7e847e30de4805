"""Checkpoints: written atomically (`io.atomic_torch_save`: temp file in the same folder, fsync, `os.replace`), so a
crash, a kill or a full disk in the middle of a write leaves the previous checkpoint whole. Loaded with
`weights_only=True`.

Test hook (documented here, honoured only when set): `ULMFIT_DEMO_FAULT_ENOSPC_AT=N` makes the N-th checkpoint write
of the process fail with `OSError(ENOSPC)` after half the bytes reached the temp file, exactly like a disk filling up
mid-write. It lets the tests prove the "disk full" path with real files and a real worker.
"""
import os
from pathlib import Path

from ulmfit_demo import io
from ulmfit_demo.runs.distrib import unwrap

FAULT_ENOSPC_ENV = "ULMFIT_DEMO_FAULT_ENOSPC_AT"
_writes = 0


def atomic_torch_save(obj, path: Path, count: bool = True) -> Path:
    "`io.atomic_torch_save`, counted as a checkpoint write (`count`) for the ENOSPC test hook above."
    global _writes
    fail_at = int(os.environ.get(FAULT_ENOSPC_ENV, "0") or 0) if count else 0
    if count:
        _writes += 1
    fault = (f"No space left on device (simulated by {FAULT_ENOSPC_ENV})" if fail_at and _writes == fail_at
             else None)
    return io.atomic_torch_save(obj, path, simulate_enospc=fault)


def save(path: Path, learn, meta: dict) -> Path:
    "Model + optimizer state + where the run stands (`meta`): enough to continue the same one-cycle schedule."
    # Inside a run of several processes the model is wrapped in DistributedDataParallel: save the model itself.
    state = {"model": unwrap(learn.model).state_dict(),
             "opt": learn.opt.state_dict() if learn.opt is not None else None, "meta": meta}
    return atomic_torch_save(state, path)


def load(path: Path, map_location="cpu") -> dict:
    import torch

    return torch.load(path, map_location=map_location, weights_only=True)


def restore(learn, ckpt: dict, with_opt: bool) -> None:
    "Weights always; optimizer state only when continuing inside a phase (a new phase starts with a fresh one)."
    learn.model.load_state_dict(ckpt["model"])
    if with_opt and ckpt.get("opt") is not None:
        if learn.opt is None:
            learn.create_opt()
        from fastcore.foundation import L

        learn.opt.load_state_dict({"state": L(ckpt["opt"]["state"]), "hypers": L(ckpt["opt"]["hypers"])})
