"""The Quick preset end to end, as a user runs it: `train --preset quick --dataset imdb_sample --json` in a fresh
process and an empty home, from the bundled starter language model.

    .venv/bin/python bench/bench_quick.py [--seeds 42 43 44]

Prints, per seed, the wall time of the whole command (process start, tokenizing, LM epoch, classifier, judging; the
target: under 5 minutes on 2 CPU cores) and the run's figures beside the TF-IDF baseline fitted on the same split:
accuracy, ECE before/after temperature scaling, out-of-domain accuracy; then their mean over the seeds.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KEYS = ("accuracy", "baseline_accuracy", "ece_uncalibrated", "ece", "ood_accuracy", "ood_positive_rate")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    a = ap.parse_args()
    rows = []
    for seed in a.seeds:
        with tempfile.TemporaryDirectory() as home:
            env = dict(os.environ, ULMFIT_DEMO_HOME=home, ULMFIT_DEMO_OFFLINE="1", PYTHONPATH=str(REPO))
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "ulmfit_demo", "train", "--preset", "quick", "--dataset",
                                "imdb_sample", "--set", f"seed={seed}", "--json"], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=1800)
            wall = time.perf_counter() - t0
        if p.returncode:
            print(p.stderr[-3000:], file=sys.stderr)
            return 1
        out = json.loads(p.stdout.strip().splitlines()[-1])
        m = {k: out["metrics"].get(k) for k in KEYS}
        rows.append({"seed": seed, "wall_s": round(wall, 1), **m})
        print(f"seed {seed}: {wall / 60:.1f} min (target < 5); accuracy {m['accuracy']:.3f} vs baseline "
              f"{m['baseline_accuracy']:.3f}; ECE {m['ece_uncalibrated']:.3f} -> {m['ece']:.3f}; out-of-domain "
              f"{m['ood_accuracy']:.3f} ({m['ood_positive_rate']:.0%} called positive)", flush=True)
    if len(rows) > 1:
        print("mean: " + ", ".join(f"{k} {statistics.mean(r[k] for r in rows):.3f}" for k in ("wall_s",) + KEYS))
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
