"""Training in fp32 vs bf16 on the CPU, through the app's own path (issue #17).

For each model shape (the starter's small AWD-LSTM and the ULMFiT size, 400/1152/3) and each precision, a fresh
process builds the LM exactly as a run does (`stages.lm_dls`, `stages.lm_learner`, `stages.apply_precision`), from the
same seed and on the same batches of real text (IMDb training reviews in the bundled starter's SentencePiece pieces),
trains `--steps` optimizer steps at a constant learning rate, then measures the validation loss in fp32 on the same
held-out reviews. Precisions alternate within each round (and which goes first alternates between rounds), so both
see the same load on a shared machine. Prints, per shape, the median step's tokens/s of each, the speed-up and the
validation loss after the same steps; `--record` writes `ulmfit_demo/train/bf16cpu.json`, which decides whether
`precision="auto"` trains in bf16 on a CPU (see `ulmfit_demo/train/precision.py`).

    OMP_WAIT_POLICY=PASSIVE python bench/bench_train_precision.py --rounds 2 --record
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHAPES = {  # name -> (emb_sz, n_hid, n_layers, steps)
    "starter": (128, 512, 2, 120),
    "ulmfit": (400, 1152, 3, 24),
}
BS, SEQ_LEN, LR = 64, 70, 3e-3


def child(args):
    "One training in one process: prints a JSON line with step times and the validation loss."
    import pandas as pd
    import torch
    from fastai.callback.core import Callback, CancelFitException
    from fastai.torch_core import set_seed

    from ulmfit_demo.train import presets, stages

    emb, hid, layers, steps = SHAPES[args.shape]
    steps = args.steps or steps
    df = pd.read_parquet(args.tokens)
    vocab = json.loads(Path(args.vocab).read_text())
    cfg = presets.QUICK.with_(emb_sz=emb, n_hid=hid, n_layers=layers, bs=BS, seq_len=SEQ_LEN, pretrained="none",
                              drop_mult_lm=0.1)
    n_valid = int((df["split"] == "valid").sum())
    splits = (list(range(len(df) - n_valid)), list(range(len(df) - n_valid, len(df))))
    df = df.assign(tokens=df["tokens"].map(list))
    set_seed(42, reproducible=True)
    dls = stages.lm_dls(df, splits, vocab, cfg, "cpu")
    learn = stages.lm_learner(dls, cfg, path=Path(tempfile.mkdtemp()))
    learn.logger = lambda row: None
    learn = stages.apply_precision(learn, args.precision)

    class Timer(Callback):
        order = 100

        def __init__(self):
            self.times, self.cpu, self.t = [], [], None

        def before_batch(self):
            if self.training:
                self.t = (time.perf_counter(), time.process_time())

        def after_batch(self):
            if self.training:
                self.times.append(time.perf_counter() - self.t[0])
                self.cpu.append(time.process_time() - self.t[1])
                if len(self.times) >= steps:
                    raise CancelFitException()

    timer = Timer()
    t0 = time.time()
    with learn.no_bar():
        learn.fit(1, LR, cbs=[timer])
    wall = time.time() - t0
    learn.to_fp32()  # both precisions are judged the same way
    with learn.no_bar():
        valid_loss = float(learn.validate()[0])
    print(json.dumps({"times": timer.times, "cpu": timer.cpu, "valid_loss": valid_loss, "wall": wall,
                      "threads": torch.get_num_threads()}))


def prepare(work: Path, n_train_tokens: int, n_valid_docs: int) -> tuple[Path, Path]:
    "IMDb training reviews in the starter's pieces: enough for the longest run, plus held-out reviews."
    import pandas as pd

    from ulmfit_demo.data import corpora
    from ulmfit_demo.models import starter
    from ulmfit_demo.train import stages

    _, vocab, spm_path, _ = starter.load()
    df = corpora.load("imdb").df
    df = df[df["split"] == "train"].sample(frac=1.0, random_state=0)
    tok = stages.Tok("subword", spm_path)
    valid = tok.tokenize(df["text"].iloc[:n_valid_docs].tolist())
    train, n, i = [], 0, n_valid_docs
    while n < n_train_tokens:
        part = tok.tokenize(df["text"].iloc[i:i + 500].tolist())
        train += part
        n += sum(map(len, part))
        i += 500
    out = pd.DataFrame({"tokens": train + valid, "split": ["train"] * len(train) + ["valid"] * len(valid)})
    out.to_parquet(work / "tokens.parquet")
    (work / "vocab.json").write_text(json.dumps(list(vocab)))
    return work / "tokens.parquet", work / "vocab.json"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--shapes", default="starter,ulmfit")
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps per training (0: per shape, see SHAPES)")
    ap.add_argument("--valid-docs", type=int, default=300)
    ap.add_argument("--record", action="store_true", help="write ulmfit_demo/train/bf16cpu.json")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "train_precision.json"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--shape", help=argparse.SUPPRESS)
    ap.add_argument("--precision", help=argparse.SUPPRESS)
    ap.add_argument("--tokens", help=argparse.SUPPRESS)
    ap.add_argument("--vocab", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("ULMFIT_DEMO_MIRROR", str(REPO.parent / "shared" / "data"))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.child:
        return child(args)

    from ulmfit_demo import system

    shapes = [s for s in args.shapes.split(",") if s]
    steps = {s: args.steps or SHAPES[s][3] for s in shapes}
    work = Path(tempfile.mkdtemp(prefix="bench_prec_"))
    t0 = time.time()
    tokens, vocab = prepare(work, max(steps.values()) * BS * SEQ_LEN * 12 // 10, args.valid_docs)
    print(f"tokenized in {time.time() - t0:.0f}s; bs {BS} x seq_len {SEQ_LEN}, lr {LR}, constant; "
          f"validation on {args.valid_docs} held-out IMDb reviews, in fp32", flush=True)
    res = {s: {"fp32": [], "bf16": []} for s in shapes}
    for r in range(args.rounds):
        for s in shapes:
            order = ("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32")
            for prec in order:
                load = os.getloadavg()[0]
                cmd = [sys.executable, __file__, "--child", "--shape", s, "--precision", prec, "--tokens",
                       str(tokens), "--vocab", str(vocab), "--steps", str(steps[s])]
                out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
                if out.returncode:
                    sys.exit(f"{s} {prec} failed:\n{out.stderr[-3000:]}")
                d = json.loads(out.stdout.strip().splitlines()[-1])
                d["load"] = round(load, 2)
                res[s][prec].append(d)
                med, cpu = statistics.median(d["times"][3:]), statistics.median(d["cpu"][3:])
                print(f"round {r + 1} {s:<8} {prec}: {BS * SEQ_LEN / med:8,.0f} tokens/s (median step "
                      f"{med * 1000:.0f} ms), {BS * SEQ_LEN / cpu:8,.0f} tokens per CPU-second, valid loss "
                      f"{d['valid_loss']:.4f}, load {load:.1f}", flush=True)

    # Speed-up is judged on tokens per CPU-second (work, which the other load on a shared machine barely moves);
    # wall tokens/s, what a person waits for, is printed and recorded beside it.
    summary = {}
    print(f"\n{'shape':<27} {'fp32 tok/s':>10} {'bf16 tok/s':>10} {'fp32 tok/cpu-s':>14} {'bf16 tok/cpu-s':>14} "
          f"{'speed-up':>8} {'fp32 loss':>9} {'bf16 loss':>9} {'gap':>7}")
    for s in shapes:
        def med(p, key):
            return statistics.median(BS * SEQ_LEN / statistics.median(d[key][3:]) for d in res[s][p])
        tps = {p: med(p, "times") for p in ("fp32", "bf16")}
        tpc = {p: med(p, "cpu") for p in ("fp32", "bf16")}
        loss = {p: statistics.median(d["valid_loss"] for d in res[s][p]) for p in ("fp32", "bf16")}
        emb, hid, layers, _ = SHAPES[s]
        summary[s] = {"arch": {"emb_sz": emb, "n_hid": hid, "n_layers": layers}, "bs": BS, "seq_len": SEQ_LEN,
                      "steps": steps[s], "rounds": args.rounds, "tokens_per_s": {p: round(v) for p, v in tps.items()},
                      "tokens_per_cpu_s": {p: round(v) for p, v in tpc.items()},
                      "speedup": round(tpc["bf16"] / tpc["fp32"], 3),
                      "speedup_wall": round(tps["bf16"] / tps["fp32"], 3),
                      "valid_loss": {p: round(v, 4) for p, v in loss.items()},
                      "loss_gap": round(loss["bf16"] - loss["fp32"], 4),
                      "load": [d["load"] for p in ("fp32", "bf16") for d in res[s][p]]}
        name = f"{s} ({emb}/{hid}/{layers}, {steps[s]} steps)"
        print(f"{name:<27} {tps['fp32']:>10,.0f} {tps['bf16']:>10,.0f} {tpc['fp32']:>14,.0f} {tpc['bf16']:>14,.0f} "
              f"{summary[s]['speedup']:>7.2f}x {loss['fp32']:>9.4f} {loss['bf16']:>9.4f} {summary[s]['loss_gap']:>+7.4f}")
    import torch

    doc = {"date": time.strftime("%Y-%m-%d"), "command": " ".join(["bench/bench_train_precision.py"] + sys.argv[1:]),
           "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "flags": sorted(system.cpu_flags() & {"avx512_bf16", "amx_bf16"}), "torch": torch.__version__,
                       "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")},
           "corpus": "imdb train reviews, the bundled starter's SentencePiece pieces", "shapes": summary}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({**doc, "runs": res}, indent=1))
    if args.record:
        from ulmfit_demo.train import precision

        precision.RECORD.write_text(json.dumps(doc, indent=1) + "\n")
        precision.record.cache_clear()
        print(f"\nrecorded in {precision.RECORD}: precision='auto' on a CPU -> {precision.cpu_default(doc)}")


if __name__ == "__main__":
    main()
