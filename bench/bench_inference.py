"""Inference speed: the app's path against plain fastai, on the same model and the same 1,000 IMDb-sample reviews.

    .venv/bin/python bench/bench_inference.py [--model ID] [--size full|quick] [--n 1000] [--single 50] [--out F]

Measures, on CPU:
- batch: `python -m ulmfit_demo predict --csv ... --out ...` (the CLI path, in-process: `inference.score_csv`), and the
  same command as a fresh subprocess (process start, imports and model load included); beside fastai's
  `learn.get_preds(dl=learn.dls.test_dl(texts))`. Printed as reviews/s.
- single review: p50 latency of `inference.predict` beside fastai's `learn.predict` (the seeds' one-review call).

Without `--model`, a classifier with the default ULMFiT AWD-LSTM shape (`--size full`: emb 400, hidden 1152, 3 layers)
or a small one (`--size quick`) is built on the IMDb-sample vocab in a throwaway home, untrained: speed does not
depend on the weights' values. Both sides use the same weights (the fastai learner wraps the loaded model).
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
sys.path.insert(0, str(REPO))

SIZES = {"full": dict(emb_sz=400, n_hid=1152, n_layers=3), "quick": dict(emb_sz=64, n_hid=128, n_layers=2)}


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a model id in $ULMFIT_DEMO_HOME (default: build an untrained one)")
    ap.add_argument("--size", choices=list(SIZES), default="full")
    ap.add_argument("--n", type=int, default=1000, help="reviews in the batch")
    ap.add_argument("--single", type=int, default=50, help="reviews timed one by one for the p50")
    ap.add_argument("--repeat", type=int, default=1, help="batch runs per side (best is kept)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()

    os.environ.setdefault("ULMFIT_DEMO_MIRROR", str(REPO.parent / "shared" / "data"))
    if not args.model:
        os.environ["ULMFIT_DEMO_HOME"] = tempfile.mkdtemp(prefix="bench-inference-")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from ulmfit_demo import models
    from ulmfit_demo.data import corpora
    from ulmfit_demo.models import inference

    mid = args.model or build_model(args.size)
    texts = corpora.load("imdb_sample").df["text"].tolist()[: args.n]
    import pandas as pd

    csv = Path(tempfile.mkdtemp()) / "reviews.csv"
    pd.DataFrame({"review": texts}).to_csv(csv, index=False)
    data = csv.read_bytes()
    meta = models.read_meta(mid)["model"]

    # Warm both paths once (model load, spaCy start-up) so the timings are of steady-state work.
    r = inference.runner(mid)
    inference.predict(mid, texts[0])
    learn = models._fastai_learner(r.loaded)
    with learn.no_bar():
        learn.predict(texts[0])

    # Interleaved (app, fastai, app, fastai...) and best-of-`repeat`: on a shared machine, load from other
    # processes then falls on both sides alike instead of on whichever ran second.
    app_batch = fastai_batch = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        out = inference.score_csv(mid, data, "review")
        app_batch = min(app_batch, time.perf_counter() - t)
        with learn.no_bar():
            t = time.perf_counter()
            preds = learn.get_preds(dl=learn.dls.test_dl(texts, bs=64))[0]
            fastai_batch = min(fastai_batch, time.perf_counter() - t)
    assert len(out) == len(texts)
    mine = torch.tensor(out[[f"p_{lab}" for lab in r.labels]].to_numpy(dtype="float32"))
    # fastai's batched path differs a little from its own one-review `predict` (see inference._encode); ours
    # equals `predict`. The CSV rounds to 4 decimals.
    diff = float((mine - preds).abs().max())

    t = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-m", "ulmfit_demo", "predict", "--model", mid, "--csv", str(csv),
                          "--text-col", "review", "--out", str(csv.with_name("out.csv"))], env=env, cwd=REPO,
                         capture_output=True, text=True)
    cli_wall = time.perf_counter() - t
    if res.returncode:
        print(res.stderr, file=sys.stderr)
        return 1

    app_t, fastai_t = [], []
    with learn.no_bar():
        for x in texts[: args.single]:
            t = time.perf_counter()
            inference.predict(mid, x)
            app_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            learn.predict(x)
            fastai_t.append(time.perf_counter() - t)
    app_p50, fastai_p50 = statistics.median(app_t), statistics.median(fastai_t)


    fig = {
        "model": mid, "architecture": {k: meta["config"][k] for k in ("emb_sz", "n_hid", "n_layers")},
        "device": "cpu", "repeat": args.repeat, "torch_threads": torch.get_num_threads(), "n_reviews": len(texts),
        "batch": {"app_reviews_per_s": len(texts) / app_batch, "cli_subprocess_reviews_per_s": len(texts) / cli_wall,
                  "cli_subprocess_wall_s": cli_wall, "fastai_get_preds_reviews_per_s": len(texts) / fastai_batch,
                  "ratio_app_over_fastai": fastai_batch / app_batch, "max_abs_prob_diff": diff},
        "single": {"n": len(app_t), "app_predict_p50_ms": app_p50 * 1e3, "fastai_learn_predict_p50_ms": fastai_p50 * 1e3,
                   "ratio_fastai_over_app": fastai_p50 / app_p50},
    }
    b, s = fig["batch"], fig["single"]
    print(f"model {mid}  {fig['architecture']}  cpu, {fig['torch_threads']} torch threads, {len(texts)} reviews")
    print(f"batch   app (CLI path, in-process)   {b['app_reviews_per_s']:8.1f} reviews/s")
    print(f"batch   app (CLI as a new process)   {b['cli_subprocess_reviews_per_s']:8.1f} reviews/s "
          f"({cli_wall:.1f} s incl. start-up)")
    print(f"batch   fastai get_preds(test_dl)    {b['fastai_get_preds_reviews_per_s']:8.1f} reviews/s  "
          f"(app/fastai speed {b['ratio_app_over_fastai']:.2f}x; probabilities differ by <= {diff:.1e})")
    print(f"single  app predict p50              {s['app_predict_p50_ms']:8.1f} ms")
    print(f"single  fastai learn.predict p50     {s['fastai_learn_predict_p50_ms']:8.1f} ms  "
          f"(fastai/app {s['ratio_fastai_over_app']:.2f}x)")
    if args.out:
        Path(args.out).write_text(json.dumps(fig, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
