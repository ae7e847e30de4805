"""Inference speed and accuracy: plain fastai, the app in fp32, and the app's fast CPU paths (bf16, int8), side by side.

    .venv/bin/python bench/bench_inference.py [--model ID] [--size full|quick] [--n 2000] [--speed-n 300]
        [--single 50] [--rounds 3] [--threads 0] [--home DIR] [--cli] [--out F] [--record]

Reviews: a seeded sample of `--n` reviews from IMDb's 25,000 test reviews (the full corpus, "imdb", read from
`$ULMFIT_DEMO_MIRROR`, default ../shared/data, into `--home`, which is kept so the next run skips the reading).
Models: by default the bundled classifier (trained: accuracy means something) on all `--n` reviews, then a
full-size untrained classifier (emb 400, hidden 1152, 3 layers, the default ULMFiT shape; `--size quick` for a small
one) on the first `--speed-n`: its speed is the issue's baseline (17.5 vs 15.6 reviews/s), its accuracy is a coin's.
`--model ID` measures that model alone; `--size` alone, that untrained shape alone.

For each model, in the same process and on the same reviews:
- batch: reviews/s of fastai's `learn.get_preds(dl=learn.dls.test_dl(texts))` and of the app's `predict_batch` at
  each precision (tokenizing included on both sides), and CPU ms per review (less moved by other processes' load);
- single review: p50/p95 latency of fastai's `learn.predict` and of the app's `predict` at each precision;
- accuracy over all the reviews, agreement of each path's verdicts with the app's fp32 ones, largest probability gap.
The reviews are cut into `--rounds` slices; each round times every path on one slice, in a rotated order, so load
from other processes falls on all paths alike; speeds are medians over rounds and a speed-up is the median of the
per-round ratios. The load average is printed beside each round. `--cli` also times `predict --csv` as a new process.

`--record` writes the figures to `ulmfit_demo/models/fastcpu.json`, which decides the default precision
(`fastcpu.default`): a fast path is the default for models of a measured shape and larger only if it kept accuracy
within 0.5 points of fp32 on the trained model and ran at least 2x fp32's batch reviews/s on that shape.
fastai's probabilities are not temperature-scaled (the app's are), so only its verdicts are compared.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SIZES = {"full": dict(emb_sz=400, n_hid=1152, n_layers=3), "quick": dict(emb_sz=64, n_hid=128, n_layers=2)}
FAST = ("bf16", "int8")
IMDB_LABELS = {"neg": "negative", "pos": "positive"}


def build_model(size: str) -> str:
    "An untrained classifier on the IMDb-sample vocab, saved through `models.save_learner` like a training run."
    from fastai.text.all import AWD_LSTM, TextDataLoaders, awd_lstm_clas_config, text_classifier_learner

    from ulmfit_demo import models
    from ulmfit_demo.data import corpora

    df = corpora.classifier_frame(corpora.load("imdb_sample"))
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", bs=32, seq_len=72)
    cfg = dict(awd_lstm_clas_config, **SIZES[size])
    learn = text_classifier_learner(dls, AWD_LSTM, config=cfg, pretrained=False, drop_mult=0.5)
    return models.save_learner(learn, kind="classifier", name=f"bench {size} (untrained)", corpus="imdb_sample",
                               arch=dict(cfg, drop_mult=0.5, seq_len=72), tokenizer={"kind": "word"}, metrics={})


def imdb_test(n: int, seed: int = 0):
    "`n` reviews drawn (seeded) from IMDb's test split, with their labels as the bundled model names them."
    from ulmfit_demo.data import corpora

    df = corpora.load("imdb").df
    test = df[df["split"] == "test"].sample(n=n, random_state=seed)
    return test["text"].tolist(), [IMDB_LABELS.get(x, x) for x in test["label"]]


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def measure(mid: str, texts: list[str], labels: list[str] | None, rounds: int, single: int) -> dict:
    "All paths on one model: batch rounds, accuracy and agreement, then single-review latency (see the docstring)."
    import torch

    from ulmfit_demo.models import fastcpu, inference
    from ulmfit_demo.models.fastai_export import _fastai_learner

    r = inference.runner(mid)
    learn = _fastai_learner(r.loaded)
    sides = ["fastai", "fp32", *FAST]

    def batch(side, chunk):
        if side == "fastai":
            with learn.no_bar():
                return learn.get_preds(dl=learn.dls.test_dl(chunk, bs=64))[0]
        with fastcpu.using(side):
            return torch.tensor([[p["probs"][lab] for lab in r.labels] for p in inference.predict_batch(mid, chunk)])

    def one(side, text):
        if side == "fastai":
            with learn.no_bar():
                return learn.predict(text)
        with fastcpu.using(side):
            return inference.predict(mid, text)

    for side in sides:  # warm every path (model copies built, spaCy/SentencePiece started, oneDNN kernels made)
        one(side, texts[0])
        batch(side, texts[:8])

    k = -(-len(texts) // rounds)
    chunks = [texts[i:i + k] for i in range(0, len(texts), k)]
    wall = {s: [] for s in sides}
    cpu = {s: [] for s in sides}
    probs = {s: [] for s in sides}
    loads = []
    for i, chunk in enumerate(chunks):
        order = sides[i % len(sides):] + sides[:i % len(sides)]
        for side in order:
            t, c = time.perf_counter(), time.process_time()
            p = batch(side, chunk)
            wall[side].append(time.perf_counter() - t)
            cpu[side].append(time.process_time() - c)
            probs[side].append(p)
        loads.append(load())
        print(f"  round {i + 1}/{len(chunks)}: {len(chunk)} reviews, " + ", ".join(
            f"{s} {len(chunk) / wall[s][-1]:.1f}/s" for s in sides) + f"  (load {loads[-1]})", flush=True)
    n = len(texts)
    out = {"n": n, "rounds": len(chunks), "load_per_round": loads, "sides": {}}
    ref = torch.cat(probs["fp32"])
    for s in sides:
        p = torch.cat(probs[s])
        row = {"reviews_per_s": statistics.median(len(c) / w for c, w in zip(chunks, wall[s])),
               "cpu_ms_per_review": statistics.median(1e3 * t / len(c) for c, t in zip(chunks, cpu[s])),
               "agree_with_fp32": float((p.argmax(1) == ref.argmax(1)).float().mean()),
               "max_abs_prob_diff": float((p - ref).abs().max())}
        if labels is not None:
            row["accuracy"] = sum(r.labels[int(j)] == y for j, y in zip(p.argmax(1), labels)) / n
        if s != "fp32":
            row["speedup"] = statistics.median(wf / ws for wf, ws in zip(wall["fp32"], wall[s]))
            row["cpu_speedup"] = statistics.median(cf / cs for cf, cs in zip(cpu["fp32"], cpu[s]))
        out["sides"][s] = row

    lat = {s: [] for s in sides}
    for i, x in enumerate(texts[:single]):
        order = sides[i % len(sides):] + sides[:i % len(sides)]
        for side in order:
            t = time.perf_counter()
            one(side, x)
            lat[side].append(time.perf_counter() - t)
    for s in sides:
        out["sides"][s].update(p50_ms=1e3 * statistics.median(lat[s]), p95_ms=1e3 * pct(lat[s], 0.95))
    out["single_n"] = len(lat["fp32"])
    out["load_end"] = load()
    return out


def print_table(name: str, arch: dict, fig: dict, trained: bool) -> None:
    print(f"\nmodel {name}: emb {arch['emb_sz']}, hidden {arch['n_hid']}, {arch['n_layers']} layers"
          f"{'' if trained else ' (untrained: accuracy is chance)'}; {fig['n']:,} reviews in {fig['rounds']} rounds, "
          f"single-review latency over {fig['single_n']}")
    print(f"  {'path':<22}{'batch rev/s':>12}{'x fp32':>8}{'cpu ms/rev':>12}{'p50 ms':>9}{'p95 ms':>9}"
          f"{'accuracy':>10}{'agree':>8}{'max|dp|':>9}")
    names = {"fastai": "fastai get_preds/predict", "fp32": "app fp32", "bf16": "app bf16", "int8": "app int8"}
    for s, row in fig["sides"].items():
        x = f"{row['speedup']:.2f}" if "speedup" in row else ("1.00" if s == "fp32" else "")
        acc = f"{row['accuracy']:.2%}" if "accuracy" in row else "-"
        dp = "-" if s == "fastai" else f"{row['max_abs_prob_diff']:.1e}"  # fastai's are not temperature-scaled
        print(f"  {names[s][:22]:<22}{row['reviews_per_s']:>12.1f}{x:>8}{row['cpu_ms_per_review']:>12.1f}"
              f"{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}{acc:>10}{row['agree_with_fp32']:>8.2%}{dp:>9}")
    print(f"  load average (1/5/15 min) after each round: {' | '.join(fig['load_per_round'])}; at the end "
          f"{fig['load_end']}")


def record(figs: dict, args) -> dict:
    "The measurement as `fastcpu.json` holds it: per model, accuracy (trained only) and speed-ups, plus context."
    import torch

    from ulmfit_demo.models import fastcpu

    rec = {"date": datetime.date.today().isoformat(),
           "command": "bench/bench_inference.py " + " ".join(sys.argv[1:]),
           "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(),
                       "flags": sorted(fastcpu.cpu_flags() & {f for fl in fastcpu.NEEDS.values() for f in fl}),
                       "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                       "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)")},
           "targets": {"max_acc_drop": fastcpu.MAX_ACC_DROP, "min_speedup": fastcpu.MIN_SPEEDUP}, "models": {}}
    for key, (f, trained, arch) in figs.items():
        s = f["sides"]
        rec["models"][key] = {
            "arch": arch, "n": f["n"], "rounds": f["rounds"], "load_per_round": f["load_per_round"],
            "reviews_per_s": {k: round(v["reviews_per_s"], 2) for k, v in s.items()},
            "speedup": {k: round(s[k]["speedup"], 3) for k in FAST},
            "cpu_speedup": {k: round(s[k]["cpu_speedup"], 3) for k in FAST},
            "p50_ms": {k: round(v["p50_ms"], 1) for k, v in s.items()},
            "p95_ms": {k: round(v["p95_ms"], 1) for k, v in s.items()},
            "agree_with_fp32": {k: round(s[k]["agree_with_fp32"], 4) for k in FAST},
            "max_abs_prob_diff": {k: round(s[k]["max_abs_prob_diff"], 5) for k in FAST},
            **({"accuracy": {k: round(v["accuracy"], 5) for k, v in s.items()}} if trained else {})}
    rec["met"] = {k: {p: fastcpu.met(rec, p, k) for p in FAST} for k in rec["models"]}
    # What `fastcpu.default` makes of this record for each measured shape (on a CPU with the instructions used here).
    rec["default"] = {k: fastcpu.default(m["arch"], rec) for k, m in rec["models"].items()}
    return rec


def _cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


def cli_seconds(mid: str, texts: list[str]) -> float:
    "Wall time of `python -m ulmfit_demo predict --csv` as a new process (start-up, imports, model load included)."
    import pandas as pd

    csv = Path(tempfile.mkdtemp()) / "reviews.csv"
    pd.DataFrame({"review": texts}).to_csv(csv, index=False)
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "ulmfit_demo", "predict", "--model", mid, "--csv", str(csv),
                          "--text-col", "review", "--out", str(csv.with_name("out.csv"))],
                         env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(res.stderr)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a model id in --home, or 'bundled' (default: bundled, then an untrained --size)")
    ap.add_argument("--size", choices=list(SIZES), help="the untrained shape (default: full)")
    ap.add_argument("--n", type=int, default=2000, help="IMDb test reviews for a trained model (accuracy and speed)")
    ap.add_argument("--speed-n", type=int, default=300, help="reviews for an untrained model (speed only)")
    ap.add_argument("--single", type=int, default=50, help="reviews timed one by one for p50/p95")
    ap.add_argument("--rounds", "--repeat", type=int, default=3, help="rounds (slices of the reviews)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, as the app)")
    ap.add_argument("--home", default=str(Path("~/.cache/ulmfit_demo_bench").expanduser()),
                    help="$ULMFIT_DEMO_HOME for the run (kept: the IMDb corpus is read once)")
    ap.add_argument("--cli", action="store_true", help="also time `predict --csv` as a new process")
    ap.add_argument("--out", help="write the figures as JSON here")
    ap.add_argument("--record", action="store_true", help="write the figures to ulmfit_demo/models/fastcpu.json")
    args = ap.parse_args()

    os.environ.setdefault("ULMFIT_DEMO_MIRROR", str(REPO.parent / "shared" / "data"))
    os.environ["ULMFIT_DEMO_HOME"] = args.home
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ulmfit_demo import models

    if args.model:
        todo = [(args.model, args.model)]
    elif args.size:
        todo = [(args.size, None)]
    else:
        from ulmfit_demo.models import registry

        # the shipped AWD-LSTM classifier: the bundled model itself, or its forward part when it is an ensemble
        todo = [("bundled", "bundled.fwd" if registry.bundled_members() else "bundled"), ("full", None)]
    print(f"CPU {_cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} "
          f"threads, OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', '(unset)')}; load average {load()}", flush=True)
    t0 = time.perf_counter()
    texts, labels = imdb_test(args.n)
    print(f"IMDb test sample: {len(texts):,} reviews (seed 0), read in {time.perf_counter() - t0:.0f} s", flush=True)
    figs, out = {}, {}
    for key, mid in todo:
        built = mid is None
        if built:
            mid = build_model(key)
        try:
            meta = models.read_meta(mid)
            arch = {k: meta["model"]["config"][k] for k in ("emb_sz", "n_hid", "n_layers")}
            trained = not built and set(meta.get("labels") or []) == set(IMDB_LABELS.values())
            xs = texts if trained else texts[:args.speed_n]
            print(f"\n{key} ({mid}): {len(xs):,} reviews", flush=True)
            f = measure(mid, xs, labels if trained else None, args.rounds, args.single)
            if args.cli:
                f["cli_subprocess_s"] = cli_seconds(mid, xs)
            figs[key] = (f, trained, arch)
        finally:
            if built:  # the untrained model was only for this run
                models.delete(mid)
    print("\n" + "=" * 100)
    for key, (f, trained, arch) in figs.items():
        print_table(key, arch, f, trained)
        if "cli_subprocess_s" in f:
            print(f"  predict --csv as a new process: {f['n'] / f['cli_subprocess_s']:.1f} reviews/s "
                  f"({f['cli_subprocess_s']:.1f} s incl. start-up)")
    rec = record(figs, args)
    print(f"\ntargets: accuracy within {rec['targets']['max_acc_drop'] * 100:.1f} points of fp32 on the trained "
          f"model, and at least {rec['targets']['min_speedup']:.1f}x fp32's batch reviews/s (median of the rounds' "
          f"ratios) on the model measured")
    for key, m in rec["models"].items():
        for p in FAST:
            acc = [f"accuracy {(a['accuracy'][p] - a['accuracy']['fp32']) * 100:+.2f} points ({n})"
                   for n, a in rec["models"].items() if "accuracy" in a]
            print(f"  {key} {p}: {'; '.join(acc) or 'accuracy not measured'}; speed {m['speedup'][p]:.2f}x "
                  f"(cpu time {m['cpu_speedup'][p]:.2f}x) -> {'met both' if rec['met'][key][p] else 'not met'}")
    print("default from this run: " + ", ".join(
        f"{k} ({m['arch']['emb_sz']}/{m['arch']['n_hid']}/{m['arch']['n_layers']}) and larger: {rec['default'][k]}"
        for k, m in rec["models"].items()) + ("" if args.record else " (not recorded; --record writes it)"))
    if args.record:
        from ulmfit_demo.models import fastcpu

        fastcpu.RECORD.write_text(json.dumps(rec, indent=1) + "\n")
        print(f"recorded in {fastcpu.RECORD.relative_to(REPO)}")
    if args.out:
        Path(args.out).write_text(json.dumps({"record": rec, "figures": {k: v[0] for k, v in figs.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
