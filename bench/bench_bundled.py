"""The bundled sentiment model on a fresh process: time to the first verdict, the way a user meets it.

    .venv/bin/python bench/bench_bundled.py [--repeats 5]

Each repeat is a new Python process with an empty `$ULMFIT_DEMO_HOME` that imports torch and fastai (timed apart:
every model pays it once per process), then checks the bundled files against their manifest (sha256), rebuilds the
classifier from safetensors and judges one sentence. Printed: the library import time, the load + first prediction
time (the target: under 2 s on 2 CPU cores), and a warm prediction's time.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHILD = r"""
import json, time
t0 = time.perf_counter()
import torch, fastai.text.all  # the libraries: paid once per process (the app server pays it at its first model)
t1 = time.perf_counter()
from ulmfit_demo.models import inference
r = inference.predict("bundled", "What a wonderful film! The acting is superb.")
t2 = time.perf_counter()
inference.predict("bundled", "The plot was dull and the ending made no sense.")
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_s": t2 - t1, "warm_s": t3 - t2, "label": r["label"],
                  "p": max(r["probs"].values())}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    rows = []
    for _ in range(a.repeats):
        with tempfile.TemporaryDirectory() as home:
            env = {**{k: v for k, v in os.environ.items() if k.startswith("ULMFIT_DEMO_")}, "ULMFIT_DEMO_HOME": home,
                   "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "ULMFIT_DEMO_OFFLINE": "1"}
            p = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=300)
            if p.returncode:
                print(p.stderr[-2000:], file=sys.stderr)
                return 1
            rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(r[k] for r in rows) for k in ("import_s", "first_s", "warm_s")}
    print(f"bundled model, {a.repeats} fresh processes (median): torch + fastai import {med['import_s']:.2f} s, "
          f"load + first prediction {med['first_s']:.2f} s (target < 2 s), warm prediction "
          f"{med['warm_s'] * 1000:.0f} ms; verdict {rows[0]['label']} ({rows[0]['p']:.0%})")
    print(json.dumps({"median": med, "runs": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
