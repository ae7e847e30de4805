"""Atomic `torch.save`: a temp file in the same folder, flush, fsync, `os.replace`, then fsync of the folder, so a
crash, a kill or a full disk in the middle of a write leaves the old file or the new one, never a torn one. Loaded
back with `torch.load(weights_only=True)`, so only plain containers, numbers and tensors are written.

The bytes/str twin is `config.atomic_write`. This module sits at the bottom of the package (it imports nothing from
it): the training stages save their start files with it, and `runs/checkpoint` its checkpoints.
"""
import errno
import io
import os
import tempfile
from pathlib import Path


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


def atomic_torch_save(obj, path: Path, simulate_enospc: str | None = None) -> Path:
    """`torch.save` that leaves either the old file or the new one, never a torn one. `simulate_enospc` (a message):
    write half the bytes, then fail with `OSError(ENOSPC)` as a filling disk would; `runs/checkpoint`'s fault hook
    for tests, never set otherwise."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(_plain(obj), buf)
    raw = buf.getbuffer()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if simulate_enospc:
                f.write(raw[: len(raw) // 2])
                f.flush()
                raise OSError(errno.ENOSPC, simulate_enospc, str(tmp))
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


def sha256(p: Path) -> str:
    "Hex sha256 of a file, read in 1 MB chunks: what model folders and the shipped assets record and check."
    import hashlib

    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
