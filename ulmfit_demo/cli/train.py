"""`train` (a run in the foreground, with a progress bar) and `runs list|show|cancel|resume`.

`train` writes to the same store as the page, so the page shows CLI runs live too. It waits its turn if another
run is going (one job at a time). With `--json` stdout is one JSON document:
`{"run_id", "status", "model_id", "metrics": {...}, "error"}`; progress and fastai's table go to stderr. With
`--seeds N` (N > 1) it is `{"runs": [one such document per run], "summary": {metric: {"mean", "std", "min", "max",
"n"}}}`.
"""
import json
import os
import signal
import sys
import time
from dataclasses import fields
from pathlib import Path

from ulmfit_demo.cli import add_command, fail
from ulmfit_demo.data import corpora
from ulmfit_demo.models import starter
from ulmfit_demo.runs import launcher, store, views
from ulmfit_demo.train import presets, starter_build
from ulmfit_demo.train.presets import ConfigError


def register(sub):
    p = add_command(sub, "train")
    p.add_argument("--preset", default="quick", help=f"one of {', '.join(presets.PRESETS)} (default quick)")
    p.add_argument("--dataset", default="demo", help="corpus name (see `data list`), default demo")
    p.add_argument("--kind", default="ulmfit", choices=list(presets.KINDS), help="what to train (default ulmfit)")
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                   help="override a knob, e.g. --set bs=16 --set lm_lr=1e-3 (values are JSON; repeatable)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="N runs one after another that differ only by seed (seed, seed+1, ...), then the mean, std, "
                        "min and max of their figures (default 1: one run, printed as usual)")
    p.add_argument("--procs", type=int, default=None, metavar="N",
                   help="train with N data-parallel processes through Hugging Face accelerate (one per GPU on a "
                        "multi-GPU machine; on a CPU the N processes share the cores, gloo backend). Same as "
                        "--set procs=N; the run is started by the background launcher and followed here")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--out", default=None, help="--kind pretrain --preset starter only: where the starter LM is written "
                                               "(default: the app's assets/starter_lm)")
    p.add_argument("--resume", action="store_true",
                   help="--kind pretrain --preset starter only: continue a build from its last checkpoint")
    p.set_defaults(func=cmd_train)

    r = add_command(sub, "runs")
    rs = r.add_subparsers(dest="runs_command", required=True)
    q = rs.add_parser("list", help="all runs, newest first")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_list)
    q = rs.add_parser("show", help="one run: status, config, final metrics, events")
    q.add_argument("run_id")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_show)
    q = rs.add_parser("cancel", help="stop a queued or running run (checkpoints are kept)")
    q.add_argument("run_id")
    q.set_defaults(func=cmd_cancel)
    q = rs.add_parser("resume", help="continue an interrupted, cancelled or failed run in the background")
    q.add_argument("run_id")
    q.set_defaults(func=cmd_resume)


class _Bar:
    "One line on stderr: stage, step/total, loss-free (the table has the numbers), ETA."

    def __init__(self, enabled: bool):
        self.enabled, self.last = enabled and sys.stderr.isatty(), ""
        self.t0 = 0.0  # not a terminal: the first line at once, then one every 10 s

    def __call__(self, p: dict):
        step, total, rate = p.get("step") or 0, p.get("total_steps"), p.get("rate")
        frac = min(step / total, 1.0) if total else None
        bar = f"[{'#' * int((frac or 0) * 30):<30}] {frac:4.0%} " if frac is not None else ""
        eta = f" ETA {int((total - step) / rate // 60)}m{int((total - step) / rate % 60):02d}s" if rate and total else ""
        line = f"{bar}{p.get('stage', '')} step {step}/{total or '?'}{eta}"
        if self.enabled:
            sys.stderr.write("\r" + line.ljust(len(self.last)))
            sys.stderr.flush()
        elif time.time() - self.t0 > 10:  # not a terminal (a log file, CI): one line every 10 s
            print(line, file=sys.stderr, flush=True)
            self.t0 = time.time()
        self.last = line

    def newline(self):
        if self.enabled and self.last:
            sys.stderr.write("\n")
            self.last = ""


def cmd_train(args):
    if args.kind == "pretrain" and args.preset.lower() == "starter":
        return cmd_train_starter(args)
    try:
        cfg = presets.preset(args.preset).with_(**presets.parse_sets(args.set))
        if args.procs is not None:
            cfg = cfg.with_(procs=args.procs)
    except (ConfigError, TypeError) as e:
        return fail(str(e))
    preset_name = next(k for k in presets.PRESETS if k.lower() == args.preset.lower())
    if preset_name != "Custom" and args.set:
        preset_name += "*"  # a preset with edits is not that preset any more
    try:
        corpus = corpora.load(args.dataset)
        launcher.validate(args.kind, cfg, corpus)
    except (ConfigError, corpora.CorpusError) as e:
        return fail(str(e))
    if args.seeds < 1:
        return fail(f"--seeds {args.seeds}: give 1 or more runs.")
    if args.seeds == 1:
        return _report(args, _train_one(args, cfg, preset_name))
    return _train_seeds(args, cfg, preset_name)


def _train_one(args, cfg, preset_name: str) -> str:
    "One run in the foreground, to its final status; returns its id."
    from ulmfit_demo.runs import worker  # deferred: job -> callback load fastai, torch: runs list 0.5 s -> 3.3 s

    launcher.startup_check()
    if cfg.procs > 1:
        return _train_launched(args, cfg, preset_name)
    run_id = store.create_run(args.kind, cfg.to_dict(), preset=preset_name, corpus=args.dataset, foreground=True,
                              pid=os.getpid())
    print(f"run {run_id}: {args.kind} on {args.dataset} with preset {preset_name}", file=sys.stderr, flush=True)
    told = False
    while not store.claim(run_id, os.getpid()):
        r = store.get(run_id)
        if r["status"] != store.QUEUED:  # cancelled while waiting
            return run_id
        if not told:
            busy = store.running()
            print(f"waiting: run {busy[0]['id'] if busy else '?'} is training (one job at a time)...",
                  file=sys.stderr, flush=True)
            told = True
        time.sleep(2)
        launcher.startup_check()

    bar = _Bar(enabled=True)

    class Sink(worker.StoreSink):
        def progress(self, p):
            bar(p)

        def event(self, kind, message="", level="info", data=None):
            bar.newline()
            super().event(kind, message, level, data)

    sink = Sink(run_id)
    signal.signal(signal.SIGTERM, worker._on_sigterm(sink))
    try:
        worker.execute(run_id, sink)
    finally:
        bar.newline()
        launcher.start_next()
    return run_id


def _train_launched(args, cfg, preset_name: str) -> str:
    """A run of several processes: accelerate's launcher starts them (the background launcher's path, the same run
    in the store), and this command follows the run to its end. Ctrl-C asks it to cancel, as in the foreground."""
    run_id = launcher.submit(args.kind, cfg, args.dataset, preset=preset_name)
    print(f"run {run_id}: {args.kind} on {args.dataset} with preset {preset_name}, {cfg.procs} processes "
          f"(log: {store.log_path(run_id)})", file=sys.stderr, flush=True)
    bar = _Bar(enabled=True)
    try:
        while True:
            try:
                r = store.get(run_id)
                if r["status"] not in store.ACTIVE:
                    break
                if r["status"] == store.RUNNING:
                    bar({"stage": r.get("stage"), "step": r.get("step"), "total_steps": r.get("total_steps"),
                         "rate": r.get("rate")})
                time.sleep(1)
                launcher.startup_check()  # a launcher that died: INTERRUPTED, and the loop ends
            except KeyboardInterrupt:
                bar.newline()
                print("cancelling (checkpoints are kept)...", file=sys.stderr, flush=True)
                launcher.cancel(run_id)
    finally:
        bar.newline()
    return run_id


def _result(run_id: str) -> dict:
    r = store.get(run_id)
    return {"run_id": run_id, "status": r["status"], "model_id": r["model_id"],
            "metrics": r["summary"].get("metrics", {}), "error": r["error"]}


def _print_result(out: dict) -> None:
    print(f"{out['run_id']} {out['status']}" + (f" model {out['model_id']}" if out["model_id"] else "")
          + "".join(f" {k}={v:.4g}" for k, v in out["metrics"].items() if isinstance(v, (int, float))))
    if out["error"]:
        print(out["error"], file=sys.stderr)


def cmd_train_starter(args):
    """Stage 1 for the app itself: build the starter LMs (`train.starter_build`), forward into `--out` (default the
    app's assets/starter_lm) and backward beside it (`<out>_bwd`). `--dataset` lists the corpora (comma-separated;
    the default "demo" means the starter's own mix), `--set` its knobs, `--resume` continues a build."""
    known = {f.name for f in fields(starter_build.StarterConfig)}
    try:
        over = presets.parse_sets(args.set)
    except ConfigError as e:
        return fail(str(e))
    bad = sorted(set(over) - known)
    if bad:
        return fail(f"Unknown starter setting(s) {', '.join(bad)}. Known: {', '.join(sorted(known))}.")
    if args.dataset != "demo" or "corpora" in over:
        over["corpora"] = tuple(over.get("corpora") or args.dataset.split(","))
    for k in ("corpora", "skip_splits", "directions"):
        if k in over:
            over[k] = tuple([over[k]] if isinstance(over[k], str) else over[k])
    out_path = Path(args.out) if args.out else starter.DEFAULT_DIR
    try:
        cfg = starter_build.StarterConfig(**over)
        for name in cfg.corpora:
            corpora.check_name(name)
        res = starter_build.build(out_path, cfg, log=lambda m: print(m, file=sys.stderr, flush=True),
                                  resume=args.resume)
    except (corpora.CorpusError, ConfigError, starter.StarterError, TypeError) as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return fail(f"Stopped: {out_path} was left as it was; the last checkpoint is kept (continue with --resume).")
    done = all(r["status"] == "SUCCEEDED" for r in res.values())
    out = {"status": "SUCCEEDED" if done else "PAUSED", "out": str(out_path), "directions": res}
    if len(res) == 1 or "fwd" in res:  # the forward card at the top, as before
        out["card"] = res.get("fwd") or next(iter(res.values()))
    if args.json:
        print(json.dumps(out))
    else:
        for d, r in res.items():
            where = starter_build.out_dir(out_path, d)
            if r["status"] == "SUCCEEDED":
                print(f"{d}: starter LM in {where}: {r['tokens_seen']:,} tokens seen in {r['train_s'] / 3600:.2f} h, "
                      f"held-out perplexity {r['valid_perplexity']:.1f}")
            else:
                print(f"{d}: paused after shard {r['shard']}/{r.get('shards', '?')}; continue with --resume "
                      f"(checkpoint in {r['work']})")
    return 0


def _report(args, run_id):
    out = _result(run_id)
    if args.json:
        print(json.dumps(out))
    else:
        _print_result(out)
    return 0 if out["status"] == store.SUCCEEDED else 1


def _train_seeds(args, cfg, preset_name: str) -> int:
    """`--seeds N`: N runs one after another that differ only by `seed` (seed, seed+1, ...), then the mean, std, min
    and max of their figures. A cancelled run (Ctrl-C) stops the series; a failed one does not."""
    results = []
    for i in range(args.seeds):
        print(f"seed {cfg.seed + i} ({i + 1} of {args.seeds})", file=sys.stderr, flush=True)
        out = _result(_train_one(args, cfg.with_(seed=cfg.seed + i), preset_name))
        results.append(out)
        if not args.json:
            _print_result(out)
        if out["status"] == store.CANCELLED:
            break
    summary = views.seed_summary([r["metrics"] for r in results if r["status"] == store.SUCCEEDED])
    if args.json:
        print(json.dumps({"runs": results, "summary": summary}))
    else:
        print(views.seed_table(summary, len(results)))
    return 0 if results and all(r["status"] == store.SUCCEEDED for r in results) else 1


def cmd_list(args):
    launcher.startup_check()
    runs = store.list_runs()
    if args.json:
        print(json.dumps([{"run_id": r["id"], "kind": r["kind"], "status": r["status"], "corpus": r["corpus"],
                           "preset": r["preset"], "best_metric": views.best_metric(r),
                           "duration_s": views.duration(r), "device": r["device"], "model_id": r["model_id"],
                           "created": r["created"]} for r in runs]))
        return 0
    if not runs:
        print("no runs yet: `python -m ulmfit_demo train --preset quick --dataset demo` starts one")
    for _, row in views.runs_frame(runs).iterrows():
        print(f"{row['run']:<22} {row['status']:<14} {row['kind']:<8} {row['corpus']:<14} {row['preset']:<8} "
              f"{row['best metric']:<22} {row['duration']:>8}  {row['device']}")
    return 0


def cmd_show(args):
    launcher.startup_check()
    try:
        r = store.get(store.check_id(args.run_id))
    except ValueError as e:
        return fail(str(e))
    if r is None:
        return fail(f"There is no run {args.run_id!r}: `runs list` shows them.")
    m = store.metrics(r["id"])
    table = views.epoch_table(m)
    out = {"run_id": r["id"], "kind": r["kind"], "status": r["status"], "corpus": r["corpus"], "preset": r["preset"],
           "device": r["device"], "error": r["error"], "model_id": r["model_id"], "step": r["step"],
           "total_steps": r["total_steps"], "eta_s": views.eta(r), "duration_s": views.duration(r),
           "metrics": r["summary"].get("metrics", {}), "summary": r["summary"], "config": r["config"],
           "epochs": json.loads(table.to_json(orient="records")) if not table.empty else [],
           "events": [{k: e[k] for k in ("time", "level", "kind", "message")} for e in store.events(r["id"])],
           "log": str(store.log_path(r["id"]))}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"run {r['id']}: {r['kind']} on {r['corpus']} ({r['preset']}) — {r['status']}")
    if r["error"]:
        print(f"  {r['error']}")
    if not table.empty:
        print(table.to_string(index=False))
    for e in out["events"][-10:]:
        print(f"  [{e['level']}] {e['kind']}: {e['message'][:160]}")
    print(f"  log: {out['log']}")
    return 0


def cmd_cancel(args):
    try:
        status = launcher.cancel(args.run_id)
    except ValueError as e:
        return fail(str(e))
    if status is None:
        return fail(f"There is no run {args.run_id!r}: `runs list` shows them.")
    if status == "CANCELLED":
        print(f"{args.run_id} cancelled")
    elif status == "RUNNING":
        print(f"{args.run_id}: cancel requested; the worker stops within a few seconds (checkpoints are kept)")
    else:
        return fail(f"Run {args.run_id} is {status}: nothing to cancel.")
    return 0


def cmd_resume(args):
    try:
        status = launcher.resume(args.run_id)
    except (ConfigError, ValueError) as e:
        return fail(str(e))
    print(f"{args.run_id} {status}" + (" (waiting for the running job)" if status == "QUEUED" else ""))
    return 0
