"""What hardware the app runs on: shown on the home page and recorded with every run."""
from functools import lru_cache


@lru_cache(maxsize=1)
def device_info() -> dict:
    "`{'device': 'cuda'|'cpu', 'name', 'memory_gb', 'bf16'}`, measured once per process."
    import torch

    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        return {"device": "cuda", "name": p.name, "memory_gb": round(p.total_memory / 1024**3, 1),
                "bf16": torch.cuda.is_bf16_supported()}
    import os

    return {"device": "cpu", "name": f"CPU ({os.cpu_count()} cores)", "memory_gb": None, "bf16": False}


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset:
    "This CPU's feature flags from /proc/cpuinfo (empty where it does not exist: no measured fast path applies)."
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()
