"""`recipe`: the ULMFiT recipe in one command (`runs.recipe`): forward and backward ULMFiT runs, the TF-IDF baseline
and the forward + backward ensemble, queued at once in the background queue (the Train page shows them live), then
followed here to the end and summed up in one table. Ctrl-C cancels the recipe's runs (checkpoints are kept); closing
the terminal does not stop them, and `runs list` / the Train page still show them.

On a CPU it first measures how long the seeds' ULMFiT preset would take here (a few timed LM batches, extrapolated
over the corpus) and, unless `--preset ulmfit`, uses Quick. `--tiny` is the same path with a few batches per stage.
With `--json` stdout is one JSON document: `runs.recipe.status` (`recipe`, `runs`, `models`, `accuracies`, `table`,
...) plus `estimates` and `why`; progress goes to stderr.
"""
import json
import sys
import time

from ulmfit_demo import system
from ulmfit_demo.cli import add_command, fail
from ulmfit_demo.cli.follow import ctrl_c_held, say, until_ended
from ulmfit_demo.data import corpora
from ulmfit_demo.runs import launcher, recipe, store, views
from ulmfit_demo.train import presets
from ulmfit_demo.train.presets import ConfigError


def register(sub):
    p = add_command(sub, "recipe")
    p.add_argument("--dataset", default="imdb", help="corpus name (see `data list`), default imdb")
    p.add_argument("--preset", choices=["ulmfit", "quick"], default=None,
                   help="default: ulmfit on a GPU (mixed precision), quick on a CPU (after saying how long ulmfit "
                        "would take here)")
    p.add_argument("--tiny", action="store_true",
                   help="the same runs with a few batches per stage (small sample, tiny model, one epoch per phase): "
                        "checks the whole path in a minute or two")
    p.add_argument("--yes", action="store_true", help="start without asking (the full ULMFiT preset on a CPU asks)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=cmd_recipe)


def cmd_recipe(args):
    launcher.startup_check()
    try:
        corpus = corpora.load(args.dataset)
        cuda = system.device_info()["device"] == "cuda"
        planned = recipe.plan(args.dataset, args.preset or "auto", args.tiny, corpus=corpus, cuda=cuda)
    except (ConfigError, corpora.CorpusError) as e:
        return fail(str(e))
    say(planned.why)
    try:
        estimates = {} if cuda or args.tiny else measure(planned, corpus)
        if planned.preset == "ULMFiT" and estimates and not args.yes:
            if not sys.stdin.isatty():
                return fail("The full ULMFiT preset on this CPU takes the time above: add --yes to start it "
                            "anyway, or leave out --preset to use Quick.")
            if input("Start the full ULMFiT recipe on this CPU anyway? [y/N] ").strip().lower() not in ("y", "yes"):
                return fail("Not started.")
    except KeyboardInterrupt:
        return fail("Not started.")
    # A Ctrl-C while the four runs are being queued waits until they all are (a half-written row helps nobody),
    # then cancels them like a Ctrl-C while following.
    with ctrl_c_held() as asked:
        try:
            info = recipe.submit_recipe(args.dataset, corpus=corpus, planned=planned)
        except (ConfigError, corpora.CorpusError) as e:
            return fail(str(e))
    say(f"recipe {info['recipe']}: " + ", ".join(f"{role} run {rid}" for role, rid in info["runs"].items())
        + " (queued; the Train page shows them live)")
    st = follow(info["recipe"], cancel_now=bool(asked))
    out = {**st, "why": planned.why, "estimates": {k: {x: v[x] for x in ("seconds", "tokens_per_s", "batches",
                                                                           "text")}
                                                   for k, v in estimates.items()}}
    if args.json:
        print(json.dumps(out))
    else:
        print(recipe.table_text(st))
    return 0 if st["status"] == "SUCCEEDED" else 1


def measure(planned, corpus) -> dict:
    """On a CPU: how long the seeds' ULMFiT preset (and the preset chosen, if another) would take here, measured by
    `recipe.estimate` and said on stderr. Not under --tiny, where the probe would dominate: no duration is said there
    rather than one invented."""
    say("Measuring this CPU: a few language-model batches of each shape...")
    full = presets.ULMFIT.with_(max_docs=planned.configs["forward"].max_docs)
    out = {"ULMFiT": recipe.estimate(full, corpus, label="The seeds' ULMFiT preset")}
    say(out["ULMFiT"]["text"])
    if planned.preset != "ULMFiT":
        out[planned.preset] = recipe.estimate(planned.configs["forward"], corpus, label=f"The {planned.preset} preset")
        say(out[planned.preset]["text"])
    return out


def follow(group: str, cancel_now: bool = False) -> dict:
    "Print each run's progress until every run of the recipe has ended; Ctrl-C cancels them. Returns the status."
    seen, t_line = {}, [0.0]

    def report() -> bool:
        runs = recipe.runs_of(group)
        for role in recipe.ROLES:
            r = runs.get(role)
            if r is None:
                continue
            if seen.get(role) != r["status"]:
                seen[role] = r["status"]
                extra = f": {r['error']}" if r["error"] and r["status"] != store.SUCCEEDED else ""
                say(f"{recipe.ROLE_NAMES[role]} run {r['id']}: {r['status']}{extra}")
            elif r["status"] == store.RUNNING and time.time() - t_line[0] > 10:
                t_line[0] = time.time()
                left, total = views.eta(r), r.get("total_steps")
                stage = views.STAGE_NAMES.get(r.get("stage") or "", r.get("stage") or "")
                say(f"  {role}: " + (f"{stage} step {r['step']}/{total}" if total and stage else
                                     "preparing")
                    + (f", about {views.fmt_duration(left)} left" if left is not None else ""))
        return all(r["status"] not in store.ACTIVE for r in runs.values())

    return until_ended(report, cancel=lambda: recipe.cancel(group), final=lambda: recipe.status(group),
                       cancel_msg="cancelling the recipe's runs (checkpoints are kept: `runs resume ID` continues "
                                  "one)...", cancel_now=cancel_now)
