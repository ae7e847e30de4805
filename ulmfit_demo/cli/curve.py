"""`curve`: the label-efficiency curve in one command (`runs.curve`): the language model fine-tuned once, then one
run per number of labels and seed fitting the TF-IDF baseline, ULMFiT and the same classifier from scratch, queued in
the background queue (the Train page shows them live), followed here to the end, then one table and one sentence.
Ctrl-C cancels the curve's runs (checkpoints are kept: `curve --resume GROUP` continues); closing the terminal does
not stop them.

`--show GROUP` prints a curve already in the store; `--save FILE` with it keeps the finished curve as a file
(`runs.curve.snapshot`), as the curves measured when the app was built are kept in `assets/curves/`. With `--json` stdout is one JSON document
(`runs.curve.status`: `curve`, `status`, `points` (labels x seed x method), `summary` (mean/std per method and
labels), `sentence`, ...) plus `wall_seconds`; `--csv FILE` writes the points. Progress goes to stderr.
"""
import json
import time

from ulmfit_demo.cli import add_command, fail
from ulmfit_demo.cli.follow import ctrl_c_held, say, until_ended
from ulmfit_demo.data import corpora
from ulmfit_demo.runs import curve, launcher, store
from ulmfit_demo.train.presets import ConfigError


def register(sub):
    p = add_command(sub, "curve")
    p.add_argument("--dataset", default="imdb", help="labelled corpus (see `data list`), default imdb")
    p.add_argument("--labels", default="50,100,200,500,1000",
                   help="numbers of labelled training texts, comma-separated (default 50,100,200,500,1000: with the "
                        "other defaults 28 minutes on 2 idle CPU cores for imdb; 2,000 adds about 2 minutes per seed "
                        "there, measured beside other work, and well under a minute on short sentences)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per number of labels (default 3)")
    p.add_argument("--preset", choices=["ulmfit", "quick"], default=None,
                   help="default: ulmfit on a GPU, quick on a CPU")
    p.add_argument("--methods", default=None,
                   help="comma-separated, of baseline,ulmfit,scratch (default: all three)")
    p.add_argument("--scratch-seeds", type=int, default=1, metavar="N",
                   help="fit the from-scratch classifier on the first N seeds only (default 1: it costs what ULMFiT "
                        "costs, and one seed keeps the default curve within about half an hour on a CPU)")
    p.add_argument("--eval-rows", type=int, default=None,
                   help="fixed evaluation rows from the test split (default 1000; 40 with --tiny)")
    p.add_argument("--lm-docs", type=int, default=None,
                   help="texts the language model is fine-tuned on, once (default 3000)")
    p.add_argument("--tiny", action="store_true",
                   help="the same runs with a tiny model and a few batches per point: checks the whole path")
    p.add_argument("--show", metavar="GROUP", default=None, help="print a curve already run (its id: curve-...)")
    p.add_argument("--resume", metavar="GROUP", default=None,
                   help="queue again the interrupted, cancelled or failed runs of a curve and follow it")
    p.add_argument("--csv", metavar="FILE", default=None, help="also write the points (labels x seed x method) here")
    p.add_argument("--save", metavar="FILE", default=None,
                   help="with --show: save the finished curve, with what it was measured on, as a file the Models "
                        "page shows on machines that measured none (assets/curves/NAME.json ships with the app)")
    p.add_argument("--note", default="", help="with --save: what the figures cannot say, kept in the file and shown "
                                               "beside the curve (e.g. that other work shared the machine)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=cmd_curve)


def cmd_curve(args):
    t0 = time.time()
    launcher.startup_check()
    if args.note and not args.save:
        return fail("--note goes with --save FILE: it is kept in the saved curve.")
    if args.save and not args.show:
        return fail("--save FILE goes with --show GROUP: it saves a curve that has finished (see `runs list` for "
                    "the curve-... ids).")
    if args.show or args.resume:
        group = args.show or args.resume
        try:
            curve.status(group)
            if args.resume:
                ids = curve.resume(group)
                say(f"queued again: {', '.join(ids) or 'nothing (every run of it ended well or is active)'}")
        except ConfigError as e:
            return fail(str(e))
        st = follow(group) if args.resume else curve.status(group)
        if args.save:
            try:
                say(f"saved curve {group} to {curve.save_snapshot(group, args.save, args.note)}")
            except ConfigError as e:
                return fail(str(e))
            except OSError as e:
                return fail(f"cannot write {args.save} ({e.strerror or e}): save it into a folder that exists and "
                            f"that you can write to. Nothing was written.")
        return output(st, args, t0)
    try:
        corpus = corpora.load(args.dataset)
        planned = curve.plan(args.dataset, args.labels, args.seeds, args.preset or "auto", args.tiny, corpus=corpus,
                             eval_rows=args.eval_rows, methods=args.methods, scratch_seeds=args.scratch_seeds,
                             lm_docs=args.lm_docs)
    except (ConfigError, corpora.CorpusError) as e:
        return fail(str(e))
    say(planned.why)
    say(f"{len(planned.points)} points ({', '.join(map(str, planned.labels))} labels x {len(planned.seeds)} seed"
        f"{'s' if len(planned.seeds) > 1 else ''}) after one LM fine-tuning on {planned.lm.max_docs:,} texts")
    with ctrl_c_held() as asked:  # a Ctrl-C while queueing waits until every run is queued, then cancels them all
        try:
            info = curve.submit_curve(args.dataset, corpus=corpus, planned=planned)
        except (ConfigError, corpora.CorpusError) as e:
            return fail(str(e))
    say(f"curve {info['curve']}: LM run {info['lm']}, point runs "
        + ", ".join(p["run"] for p in info["points"]) + " (queued; the Train page shows them live)")
    st = follow(info["curve"], cancel_now=bool(asked))
    return output(st, args, t0)


def output(st: dict, args, t0: float) -> int:
    if args.csv:
        import pandas as pd

        with open(args.csv, "w", encoding="utf-8") as f:
            f.write(curve.points_csv(pd.DataFrame(st["points"])))
    st = {**st, "wall_seconds": round(time.time() - t0, 1)}
    if args.json:
        print(json.dumps(st, default=float))
    else:
        print(table_text(st))
    return 0 if st["status"] == "SUCCEEDED" else 1


def table_text(st: dict) -> str:
    out = [f"Label-efficiency curve {st['curve']} on {st['dataset']} ({st['preset']}"
           f"{', tiny' if st.get('tiny') else ''}): {st['status']}"]
    head = ["method", "labels", "accuracy (mean)", "std", "seeds", "seconds (mean)"]
    body = [[curve.METHOD_NAMES.get(r["method"], r["method"]), f"{r['labels']:,}", f"{r['mean']:.4f}",
             f"{r['std']:.4f}", str(r["n"]), f"{r['seconds']:.0f}" if r["seconds"] == r["seconds"] else ""]
            for r in st["summary"]]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out += [line(head), line(["-" * w for w in widths])] + [line(b) for b in body]
    out.append(st["sentence"])
    for r in st["runs"]:
        if r["error"] and r["status"] != "SUCCEEDED":
            out.append(f"run {r['id']} ({r['role']}{', ' + str(r['labels']) + ' labels' if r['labels'] else ''}): "
                       f"{r['status']}: {r['error']}")
    return "\n".join(out)


def follow(group: str, cancel_now: bool = False) -> dict:
    "Say each run's status as it changes until every run of the curve has ended; Ctrl-C cancels them."
    seen = {}

    def report() -> bool:
        runs = curve.runs_of(group)
        for r in runs:
            if seen.get(r["id"]) != r["status"]:
                seen[r["id"]] = r["status"]
                c = r["summary"]["curve"]
                what = "LM fine-tuning" if c["role"] == "lm" else f"{c['n']:,} labels, seed {c['seed']}"
                res = (r.get("summary") or {}).get("curve_results") or {}
                acc = ", ".join(f"{m} {v['accuracy']:.3f}" for m, v in res.items())
                extra = f": {r['error']}" if r["error"] and r["status"] != store.SUCCEEDED else \
                    (f" ({acc})" if acc and r["status"] == store.SUCCEEDED else "")
                say(f"{what} (run {r['id']}): {r['status']}{extra}")
        return all(r["status"] not in store.ACTIVE for r in runs)

    return until_ended(report, cancel=lambda: curve.cancel(group), final=lambda: curve.status(group),
                       cancel_msg="cancelling the curve's runs (checkpoints are kept: `curve --resume GROUP` "
                                  "continues)...", cancel_now=cancel_now)
