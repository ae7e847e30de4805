"""LM fine-tuning throughput: the seeds' plain fastai path vs the app's worker, same data, config and device.

plain: DataBlock(TextBlock.from_df(is_lm=True), RandomSplitter(0.1)) + language_model_learner + fit_one_cycle,
       bars off: the seeds' code path on a DataFrame.
app:   the worker's own code (`runs.job.Job.run_phases`): the store callback writing metrics, heartbeat and
       cancel checks, a checkpoint written atomically after the epoch and the LM sample, to a real run store.

Both time whole `fit` calls (training + validation, plus the app's per-epoch checkpoint and sample) and count
training tokens (batches x bs x seq_len). The two alternate `--repeats` times; the median of each is compared.
Prints tokens/s of each and their ratio, and writes JSON to --out (default bench/results/train.json).

    python bench/bench_train.py --dataset imdb_sample --max-docs 600
"""
import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="imdb_sample")
    ap.add_argument("--preset", default="quick", help="model size and batch shape come from this preset")
    ap.add_argument("--max-docs", type=int, default=600)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads on CPU (0: torch's default)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "train.json"))
    args = ap.parse_args()

    # The app's store, checkpoints and models go to a throwaway home; corpora come from the usual places.
    os.environ.setdefault("ULMFIT_DEMO_MIRROR", str(REPO.parent / "shared" / "data"))
    os.environ["ULMFIT_DEMO_HOME"] = tempfile.mkdtemp(prefix="bench_train_")

    import torch
    from fastai.text.all import (AWD_LSTM, ColReader, DataBlock, Perplexity, RandomSplitter, TextBlock, accuracy,
                                 language_model_learner, set_seed)

    from ulmfit_demo import system
    from ulmfit_demo.data import corpora
    from ulmfit_demo.runs import job as runjob, store, worker
    from ulmfit_demo.train import presets, stages

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = presets.preset(args.preset).with_(max_docs=args.max_docs, pretrained="none", lm_frozen_epochs=0,
                                            lm_epochs=args.epochs, lm_lr=args.lr, cpu_threads=args.threads)
    dev, prec = stages.resolve_device(cfg)
    corpus = corpora.load(args.dataset)
    docs = presets.sample_docs(corpus.df, cfg.max_docs, cfg.seed)
    docs = docs[docs["text"].str.strip() != ""].reset_index(drop=True)
    print(f"{len(docs)} texts of {args.dataset}; AWD-LSTM emb {cfg.emb_sz} hid {cfg.n_hid} x{cfg.n_layers}; bs "
          f"{cfg.bs} seq_len {cfg.seq_len}; {dev} {prec}; {torch.get_num_threads()} threads", flush=True)

    # ---- plain fastai (the seeds' path)
    t = time.perf_counter()
    dls_plain = DataBlock(blocks=TextBlock.from_df("text", is_lm=True, min_freq=cfg.min_freq, max_vocab=cfg.max_vocab),
                          get_x=ColReader("text"), splitter=RandomSplitter(cfg.lm_valid_pct, seed=cfg.seed)
                          ).dataloaders(docs, bs=cfg.bs, seq_len=cfg.seq_len, device=dev)
    print(f"plain data: {time.perf_counter() - t:.1f}s, {len(dls_plain.train)} batches/epoch, vocab "
          f"{len(dls_plain.vocab):,}", flush=True)
    shape = {}

    def plain_fit() -> tuple[float, int]:
        set_seed(cfg.seed)
        learn = language_model_learner(dls_plain, AWD_LSTM, config=stages.lm_config(cfg), drop_mult=cfg.drop_mult_lm,
                                       pretrained=False, metrics=[accuracy, Perplexity()], wd=cfg.wd)
        learn = stages.apply_precision(learn, prec)
        learn.logger = lambda *a: None
        _sync(torch, dev)
        t0 = time.perf_counter()
        with learn.no_bar():
            learn.fit_one_cycle(args.epochs, args.lr)
        _sync(torch, dev)
        return time.perf_counter() - t0, len(dls_plain.train) * cfg.bs * cfg.seq_len * args.epochs

    # ---- the app's worker
    t = time.perf_counter()
    docs_tok, tok = stages.tokenize_docs(docs, cfg, Path(os.environ["ULMFIT_DEMO_HOME"]))
    print(f"app tokenization: {time.perf_counter() - t:.1f}s", flush=True)

    def app_fit() -> tuple[float, int]:
        set_seed(cfg.seed)
        rid = store.create_run("lm", cfg.to_dict(), preset="bench", corpus=args.dataset, foreground=True,
                               pid=os.getpid())
        assert store.claim(rid, os.getpid())
        job = runjob.Job(store.get(rid), worker.StoreSink(rid))
        job.device_type, job.device = dev, f"bench · {prec}"
        job.docs, job.tok, job.src, job.clas_frame, job.total_steps = docs_tok, tok, None, None, None
        dls, vocab = job.lm_data()
        if not shape:  # the decoder's cost grows with the vocab: both sides must have about the same
            shape.update(app_vocab=len(vocab), plain_vocab=len(dls_plain.vocab))
            print(f"app data: {len(dls.train)} batches/epoch, vocab {len(vocab):,}", flush=True)
        learn = stages.apply_precision(stages.lm_learner(dls, cfg, path=job.rdir), prec)
        learn.logger = lambda *a: None
        phases = [stages.Phase("bench", 0, args.epochs, args.lr)]
        _sync(torch, dev)
        t0 = time.perf_counter()
        job.run_phases("lm", learn, phases, 0, tok, vocab, lm=True)
        _sync(torch, dev)
        dt = time.perf_counter() - t0
        store.finish(rid, store.SUCCEEDED)
        return dt, len(dls.train) * cfg.bs * cfg.seq_len * args.epochs

    res = {"plain": [], "app": []}
    for i in range(args.repeats):
        for name, fn in (("plain", plain_fit), ("app", app_fit)):
            dt, n = fn()
            res[name].append({"seconds": dt, "tokens": n, "tokens_per_s": n / dt})
            print(f"  {name:<5} run {i + 1}: {n:,} tokens in {dt:.1f}s = {n / dt:,.0f} tokens/s", flush=True)

    med = {k: statistics.median(r["tokens_per_s"] for r in v) for k, v in res.items()}
    ratio = med["app"] / med["plain"]
    print(f"plain fastai: {med['plain']:,.0f} tokens/s   app worker: {med['app']:,.0f} tokens/s   "
          f"ratio app/plain {ratio:.3f} (overhead {100 * (1 - ratio):+.1f}%; target < 5%)")
    out = {"bench": "train_lm_epoch", "dataset": args.dataset, "n_docs": len(docs), "epochs": args.epochs,
           "config": {k: getattr(cfg, k) for k in ("emb_sz", "n_hid", "n_layers", "bs", "seq_len", "min_freq",
                                                    "max_vocab", "drop_mult_lm", "wd")},
           "vocab": shape, "lr": args.lr, "device": dev, "precision": prec, "device_info": system.device_info(),
           "threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__,
           "runs": res, "median_tokens_per_s": med, "ratio_app_over_plain": ratio,
           "overhead_pct": 100 * (1 - ratio), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


def _sync(torch, dev):
    if dev == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
