"""Checkpoints: written atomically (temp file in the same folder, fsync, `os.replace`), so a crash, a kill or a full
disk in the middle of a write leaves the previous checkpoint whole. Loaded with `weights_only=True`.

Test hook (documented here, honoured only when set): `ULMFIT_DEMO_FAULT_ENOSPC_AT=N` makes the N-th checkpoint write
of the process fail with `OSError(ENOSPC)` after half the bytes reached the temp file, exactly like a disk filling up
mid-write. It lets the tests prove the "disk full" path with real files and a real worker.
"""
import errno
import io
import os
import tempfile
from pathlib import Path

FAULT_ENOSPC_ENV = "ULMFIT_DEMO_FAULT_ENOSPC_AT"
_writes = 0


def _plain(o):
    """numpy scalars and fastcore `L`s (fastai's optimizer state) -> Python numbers and lists: `weights_only=True`
    loads those."""
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)) or type(o).__name__ == "L":  # fastcore's L (the optimizer's hypers) too
        return (tuple if isinstance(o, tuple) else list)(_plain(v) for v in o)
    if type(o).__module__ == "numpy" and hasattr(o, "item"):
        return o.item()
    return o


def atomic_torch_save(obj, path: Path, count: bool = True) -> Path:
    "`torch.save` that leaves either the old file or the new one, never a torn one. `count`: a checkpoint write."
    import torch

    global _writes
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(_plain(obj), buf)
    raw = buf.getbuffer()
    fail_at = int(os.environ.get(FAULT_ENOSPC_ENV, "0") or 0) if count else 0
    if count:
        _writes += 1
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if fail_at and _writes == fail_at:
                f.write(raw[: len(raw) // 2])
                f.flush()
                raise OSError(errno.ENOSPC, f"No space left on device (simulated by {FAULT_ENOSPC_ENV})", str(tmp))
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)  # make the rename itself durable
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save(path: Path, learn, meta: dict) -> Path:
    "Model + optimizer state + where the run stands (`meta`): enough to continue the same one-cycle schedule."
    state = {"model": learn.model.state_dict(), "opt": learn.opt.state_dict() if learn.opt is not None else None,
             "meta": meta}
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
