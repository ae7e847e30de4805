"""Where pretraining pays: the label-efficiency curve (ULMFiT paper, Figure 3) as runs of the store.

A curve is one `lm` run (the starter, or whatever `pretrained="auto"` resolves to, fine-tuned ONCE on a capped,
seeded sample of the corpus's texts, labels unused) and one `curve` run per number of labels and seed (a *point*,
`curve_stage`): on a balanced, seeded sample of that many labelled training texts it fits the TF-IDF baseline,
ULMFiT (a classifier on the LM run's encoder) and, where asked, the same classifier from random weights, and
measures each on the curve's fixed evaluation rows. Points are queued seed by seed (all label counts of the first
seed, then the next), so a curve stopped half way already has whole lines. The queue runs one job at a time, so the
orchestration lives in the store, as the full recipe's (`recipe`) does.

Which rows (`rows`), the same for every point and method, none chosen on the evaluation rows:
- evaluation: `eval_rows` of the corpus's validation rows (`corpora.classifier_frame`: IMDb's test reviews),
  balanced across labels, drawn with a fixed seed whatever the point's seed;
- selection: `select_rows` labelled training rows, fixed the same way and never drawn as labels: a classifier keeps
  the weights of its epoch with the best accuracy on them;
- labels: the remaining training rows; a point with seed s takes the first n/k of a seeded permutation per label,
  so the 50 texts of a seed are among its 100.

The schedule per label count (`schedule`): the preset's phases, stretched or shrunk to `clas_min_steps` to
`clas_max_steps` optimizer steps: few labels are repeated within an epoch (50 texts at bs 16 would otherwise get 18
steps), many get fewer epochs (each phase still reads every labelled text once). Nothing here imports torch.
"""
import csv
import io
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ulmfit_demo import config, system
from ulmfit_demo.data import corpora
from ulmfit_demo.models import starter
from ulmfit_demo.runs import launcher, recipe, store, views
from ulmfit_demo.train import presets
from ulmfit_demo.train.presets import Config, ConfigError

PRESET_LABEL = "Curve"  # short: a run's model name carries it (at most 80 characters in all)
# The default set, sized for about half an hour on 2 CPU cores with 3 seeds and from scratch on the first (README):
# 2,000 labels (375 steps per classifier) is left out of the default, not out of reach (--labels).
DEFAULT_LABELS = (50, 100, 200, 500, 1000)
METHOD_NAMES = {"baseline": "TF-IDF + LR baseline", "ulmfit": "ULMFiT (pretrained LM, fine-tuned)",
                "scratch": "same classifier from scratch"}
FIXED_SEED = 0  # the evaluation and selection rows: one draw for the whole curve, whatever the points' seeds
# The LM's texts: a seeded sample of the corpus (labels unused). 3,000 IMDb reviews are about 1M subword tokens,
# one epoch of the starter's shape in a few minutes on 2 cores.
LM_DOCS = 3000

# The same code path, a few batches (CI): the recipe's tiny model from scratch on word tokens, few rows.
TINY = dict(max_docs=200, tokenizer="word", emb_sz=16, n_hid=32, n_layers=1, bs=8, seq_len=32, clas_seq_len=32,
            min_freq=1, max_vocab=2000, pretrained="none", lm_frozen_epochs=1, lm_frozen_lr=1e-2, lm_epochs=1,
            lm_lr=5e-3, clas_phases=({"freeze_to": -1, "epochs": 1, "lr": 2e-2},
                                     {"freeze_to": 0, "epochs": 1, "lr": 5e-3}),
            cpu_threads=1, log_every=2, sample_words=5, eval_rows=40, select_rows=20, curve_max_words=60,
            clas_min_steps=4, clas_max_steps=8)


# ------------------------------------------------------------------------------------------------ rows

def _balanced_take(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """`n` rows of `df`, as equal a number per label as `n` allows (the remainder to the first labels in sorted
    order), each label's rows the first of a permutation seeded by `seed`: a larger `n` keeps a smaller one's rows."""
    labels = sorted(df["label"].unique())
    per = {lab: n // len(labels) + (1 if i < n % len(labels) else 0) for i, lab in enumerate(labels)}
    parts = []
    for lab in labels:
        g = df[df["label"] == lab]
        if per[lab] > len(g):
            raise ConfigError(f"{n:,} balanced rows need {per[lab]:,} labelled {lab!r}, and there are {len(g):,}. "
                              f"Ask for fewer.")
        order = np.random.RandomState(seed).permutation(len(g))
        parts.append(g.iloc[order[:per[lab]]])
    return pd.concat(parts).sort_index()


@dataclass
class Rows:
    "A point's rows of the corpus's classifier frame (`frame`): evaluation, selection, and its labelled sample."
    frame: pd.DataFrame
    eval: pd.DataFrame
    select: pd.DataFrame
    labelled: pd.DataFrame
    pool: int  # training rows the labels are drawn from


def rows(corpus, cfg: Config) -> Rows:
    """The evaluation, selection and labelled rows of a point of `cfg` (labels, seed, eval_rows, select_rows).
    Raises `ConfigError` where the corpus has too few, saying what to lower."""
    frame = corpora.classifier_frame(corpus)
    val, trn = frame[frame["is_valid"]], frame[~frame["is_valid"]]
    try:
        ev = _balanced_take(val, cfg.eval_rows, FIXED_SEED)
    except ConfigError as e:
        raise ConfigError(f"Evaluation rows of {corpus.name!r} (its validation/test split, {len(val):,} rows): {e} "
                          f"Lower eval_rows (--eval-rows).") from None
    try:
        sel = _balanced_take(trn, cfg.select_rows, FIXED_SEED)
    except ConfigError as e:
        raise ConfigError(f"Selection rows of {corpus.name!r}: {e} Lower select_rows.") from None
    pool = trn.drop(index=sel.index)
    try:
        lab = _balanced_take(pool, cfg.labels, cfg.seed)
    except ConfigError as e:
        raise ConfigError(f"{cfg.labels:,} labels of {corpus.name!r} (its training rows less {len(sel)} held out to "
                          f"choose epochs): {e}") from None
    return Rows(frame, ev, sel, lab, len(pool))


def cut_words(texts, max_words: int) -> list[str]:
    "Each text's last `max_words` words (whitespace-separated), or all of it when `max_words` is 0."
    if not max_words:
        return list(texts)
    out = []
    for t in texts:
        w = t.split()
        out.append(t if len(w) <= max_words else " ".join(w[-max_words:]))
    return out


def schedule(n: int, cfg: Config) -> dict:
    """How a point with `n` labelled texts trains its classifier: `{"repeat", "epochs": per phase, "steps",
    "batches": per epoch}`. The preset's phases give `E` epochs of `n // bs` steps; fewer than `clas_min_steps` in all
    and each epoch reads the labelled texts `repeat` times; more than `clas_max_steps` and each phase gets
    proportionally fewer epochs (at least one)."""
    eps = [int(p["epochs"]) for p in cfg.clas_phases]
    total = sum(eps)
    per = max(1, n // cfg.bs)
    repeat = 1
    if n < cfg.bs:  # at least one full batch an epoch
        repeat = math.ceil(cfg.bs / n)
        per = (n * repeat) // cfg.bs
    if total * per < cfg.clas_min_steps:
        repeat = math.ceil(repeat * cfg.clas_min_steps / (total * per))
        per = (n * repeat) // cfg.bs
    elif total * per > cfg.clas_max_steps:
        scale = cfg.clas_max_steps / (total * per)
        eps = [max(1, round(e * scale)) if e else 0 for e in eps]
    return {"repeat": repeat, "epochs": eps, "batches": per, "steps": per * sum(eps)}


# ------------------------------------------------------------------------------------------------ plan & submit

@dataclass
class Plan:
    "What `submit_curve` will queue: the preset (and why), the LM run's config and each point's."
    dataset: str
    preset: str
    why: str
    tiny: bool
    labels: list
    seeds: list
    lm: Config
    points: list = field(default_factory=list)  # (labels, seed, Config), queue order


def parse_labels(text) -> list[int]:
    "'50,100,200' -> [50, 100, 200] (sorted, each once); refuses anything else with a message."
    try:
        out = sorted({int(x) for x in str(text).replace(" ", "").split(",") if x})
    except ValueError:
        raise ConfigError(f"--labels {text!r}: write whole numbers separated by commas, e.g. 50,100,200.") from None
    if not out or out[0] < 2:
        raise ConfigError(f"--labels {text!r}: give at least one number of labels, each 2 or more.")
    return out


def plan(dataset: str, labels, seeds: int = 3, preset: str = "auto", tiny: bool = False, corpus=None,
         eval_rows: int | None = None, methods: str | None = None, scratch_seeds: int | None = None,
         lm_docs: int | None = None, cuda: bool | None = None) -> Plan:
    """Choose the preset (the recipe's rule: ULMFiT on a GPU, Quick on a CPU), build and validate every run's config,
    check the rows of every point against the corpus; stores nothing. `scratch_seeds`: the from-scratch classifier
    on the first this many seeds only (None: all). Raises `ConfigError` / `corpora.CorpusError`."""
    corpus = corpus if corpus is not None else corpora.load(dataset)
    cuda = system.device_info()["device"] == "cuda" if cuda is None else cuda
    labels = parse_labels(labels) if isinstance(labels, str) else sorted({int(x) for x in labels})
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= 20:
        raise ConfigError(f"--seeds must be 1 to 20, got {seeds!r}.")
    name, why = recipe.choose_preset(preset, cuda)
    base = presets.preset(name)
    if tiny:
        base = base.with_(**TINY)
        why += " Tiny: a few batches per point (--tiny), to check the whole path."
    base = base.with_(backwards=False, procs=1, members="")
    if eval_rows is not None:
        base = base.with_(eval_rows=int(eval_rows))
    lm = base.with_(max_docs=lm_docs or (base.max_docs if tiny else LM_DOCS))
    launcher.validate("lm", lm, corpus)
    methods = methods or base.curve_methods
    p = Plan(dataset, name, why, tiny, labels, list(range(base.seed, base.seed + seeds)), lm)
    for i, seed in enumerate(p.seeds):
        ms = [m for m in methods.split(",") if m.strip() and (m.strip() != "scratch" or scratch_seeds is None
                                                                or i < scratch_seeds)]
        for n in labels:
            cfg = base.with_(labels=n, seed=seed, curve_methods=",".join(m.strip() for m in ms),
                             pretrained="run:pending", max_docs=None)
            launcher.validate("curve", cfg, corpus)
            rows(corpus, cfg)  # enough rows for this point, or a message
            p.points.append((n, seed, cfg))
    return p


def submit_curve(dataset: str, labels=DEFAULT_LABELS, seeds: int = 3, preset: str = "auto", tiny: bool = False,
                 corpus=None, planned: Plan | None = None, **kw) -> dict:
    """Queue the curve's LM run, then its points (the first starts at once if nothing else runs). Returns
    `{"curve": group id, "lm": run id, "points": [{"labels", "seed", "run"}], "preset", "why"}`. All or nothing:
    refused with `ConfigError`/`CorpusError` before anything is stored, and a failure half way cancels what was
    queued."""
    corpus = corpus if corpus is not None else corpora.load(dataset)
    p = planned or plan(dataset, labels, seeds, preset, tiny, corpus=corpus, **kw)
    group = "curve-" + store.new_id()
    label = f"{PRESET_LABEL} · {p.preset}" + (" · tiny" if p.tiny else "")
    meta = {"id": group, "preset": p.preset, "tiny": p.tiny, "labels": p.labels, "seeds": p.seeds}
    ids, points = [], []
    try:
        lm_id = launcher.submit("lm", p.lm, dataset, preset=label, corpus=corpus)
        ids.append(lm_id)
        store.update_summary(lm_id, curve={**meta, "role": "lm"})
        for n, seed, cfg in p.points:
            rid = launcher.submit("curve", cfg.with_(pretrained=f"run:{lm_id}"), dataset, preset=label,
                                  corpus=corpus)
            ids.append(rid)
            store.update_summary(rid, curve={**meta, "role": "point", "n": n, "seed": seed, "lm": lm_id})
            points.append({"labels": n, "seed": seed, "run": rid})
    except BaseException:
        for rid in ids:
            launcher.cancel(rid)
        raise
    return {"curve": group, "lm": lm_id, "points": points, "preset": p.preset, "why": p.why, "dataset": dataset,
            "tiny": p.tiny}


# ------------------------------------------------------------------------------------------------ reading back

def runs_of(group: str, runs: list[dict] | None = None) -> list[dict]:
    "The curve's runs (its LM run first, then the points in queue order)."
    out = [r for r in (runs if runs is not None else store.list_runs(limit=5000))
           if ((r.get("summary") or {}).get("curve") or {}).get("id") == group]
    return sorted(out, key=lambda r: (r["summary"]["curve"]["role"] != "lm", r["created"], r["id"]))


def curves(runs: list[dict] | None = None) -> list[str]:
    "Curve group ids, newest first."
    seen = []
    for r in runs if runs is not None else store.list_runs(limit=5000):
        g = ((r.get("summary") or {}).get("curve") or {}).get("id")
        if g and g not in seen:
            seen.append(g)
    return seen


def cancel(group: str) -> None:
    "Cancel every queued or running run of the curve (checkpoints are kept; each can be resumed)."
    for r in runs_of(group):
        if r["status"] in store.ACTIVE:
            launcher.cancel(r["id"])


def resume(group: str) -> list[str]:
    "Queue again every interrupted, cancelled or failed run of the curve (in order); returns their ids."
    out = []
    for r in runs_of(group):
        if r["status"] in store.RESUMABLE:
            launcher.resume(r["id"])
            out.append(r["id"])
    return out


def points(group: str, runs: list[dict] | None = None) -> pd.DataFrame:
    """One row per measured (labels, seed, method): `labels, seed, method, accuracy, n_eval, seconds, steps,
    select_accuracy, run, status`. A point still running contributes the methods it has finished."""
    rows_ = []
    for r in runs_of(group, runs):
        c = r["summary"]["curve"]
        if c["role"] != "point":
            continue
        for m, res in ((r.get("summary") or {}).get("curve_results") or {}).items():
            rows_.append({"labels": int(c["n"]), "seed": int(c["seed"]), "method": m, "accuracy": res.get("accuracy"),
                          "n_eval": res.get("n_eval"), "seconds": res.get("seconds"), "steps": res.get("steps"),
                          "select_accuracy": res.get("select_accuracy"), "run": r["id"], "status": r["status"]})
    cols = ["labels", "seed", "method", "accuracy", "n_eval", "seconds", "steps", "select_accuracy", "run", "status"]
    return pd.DataFrame(rows_, columns=cols)


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    "Per method and number of labels: mean, std (0 for one seed), min, max accuracy, seeds measured, mean seconds."
    if df.empty:
        return pd.DataFrame(columns=["method", "labels", "mean", "std", "min", "max", "n", "seconds"])
    g = df.dropna(subset=["accuracy"]).groupby(["method", "labels"])
    out = g["accuracy"].agg(["mean", "std", "min", "max", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    out["seconds"] = g["seconds"].mean().values
    order = {m: i for i, m in enumerate(presets.CURVE_METHODS)}
    out = out.rename(columns={"count": "n"}).sort_values(["method", "labels"], key=lambda s: s.map(order)
                                                          if s.name == "method" else s)
    return out.reset_index(drop=True)


def _crossings(a: pd.Series, b: pd.Series) -> list[float]:
    """Label counts where line `a` minus line `b` changes sign, both indexed by labels: between two measured points
    interpolated on the log axis, or at the tied points between them. A tie with no change of sign is no crossing."""
    d = (a - b).dropna()
    xs, ys = list(d.index), list(d.values)
    out, prev = [], None  # prev: the last point with a non-zero difference
    for i, (x, y) in enumerate(zip(xs, ys)):
        if y == 0:
            continue
        if prev is not None and (ys[prev] > 0) != (y > 0):
            if i - prev > 1:  # tied in between: they meet there
                out.append(float(xs[prev + 1]))
            else:
                x0, y0 = xs[prev], ys[prev]
                t = y0 / (y0 - y)
                out.append(float(math.exp(math.log(x0) + t * (math.log(x) - math.log(x0)))))
        prev = i
    return out


def _round_labels(x: float) -> str:
    return f"{int(round(x, -1 if x < 1000 else -2)):,}" if x >= 20 else f"{x:.0f}"


def sentence(table: pd.DataFrame) -> str:
    """One sentence saying what the measured curve shows: ULMFiT against the baseline (above, below, or where they
    cross), and against the same classifier from scratch where it was measured. Built from the means alone."""
    if table.empty:
        return "No point of this curve has been measured yet."
    wide = table.pivot(index="labels", columns="method", values="mean").sort_index()
    if "ulmfit" not in wide or "baseline" not in wide or wide[["ulmfit", "baseline"]].dropna().empty:
        have = ", ".join(METHOD_NAMES.get(m, m) for m in wide.columns)
        return f"Only {have} measured so far: nothing to compare yet."
    both = wide[["ulmfit", "baseline"]].dropna()
    d = both["ulmfit"] - both["baseline"]
    lo, hi = f"{both.index.min():,}", f"{both.index.max():,}"
    span = f"at {lo} labels" if lo == hi else f"from {lo} to {hi} labels"
    cross = _crossings(both["ulmfit"], both["baseline"])
    if (d == 0).all():
        out = f"ULMFiT and the TF-IDF baseline are level at every measured point ({span})"
    elif not cross and (d >= 0).all():
        out = (f"ULMFiT is {'above' if (d > 0).all() else 'at or above'} the TF-IDF baseline at every measured point "
               f"({span}), by {d.min() * 100:.1f} to {d.max() * 100:.1f} points: pretraining pays here")
    elif not cross:
        out = (f"The TF-IDF baseline is {'above' if (d < 0).all() else 'at or above'} ULMFiT at every measured point "
               f"({span}), by {-d.max() * 100:.1f} to {-d.min() * 100:.1f} points: with this starter and schedule "
               f"pretraining does not pay yet")
    else:
        where = " and ".join(f"near {_round_labels(x)}" for x in cross)
        first = "ULMFiT" if d.iloc[0] > 0 else "the TF-IDF baseline"
        out = (f"The lines cross {where} labels: {first} is ahead at {both.index[0]:,} labels "
               f"({abs(d.iloc[0]) * 100:.1f} points), "
               f"{'ULMFiT' if d.iloc[-1] > 0 else 'the baseline'} at {both.index[-1]:,} "
               f"({abs(d.iloc[-1]) * 100:.1f} points)")
    if "scratch" in wide:
        s = wide[["ulmfit", "scratch"]].dropna()
        if not s.empty:
            ds = s["ulmfit"] - s["scratch"]
            xs = _crossings(s["ulmfit"], s["scratch"])
            if xs:
                out += ("; ULMFiT and the same classifier from scratch cross "
                        + " and ".join(f"near {_round_labels(x)}" for x in xs) + " labels")
            elif (ds >= 0).all() and (ds > 0).any():
                out += (f"; pretraining adds {ds.min() * 100:.1f} to {ds.max() * 100:.1f} points over the same "
                        f"classifier from scratch")
            elif (ds <= 0).all() and (ds < 0).any():
                out += "; the same classifier from scratch is at or above ULMFiT wherever both ran"
            else:
                out += "; the same classifier from scratch is level with ULMFiT"
    return out + "."


def status(group: str, runs: list[dict] | None = None) -> dict:
    """The curve: `{"curve", "dataset", "preset", "tiny", "status", "lm": its run, "runs": [{id, role, labels, seed,
    status, time, error}], "points": records, "summary": records, "sentence"}`; status is RUNNING/QUEUED while a
    run is active, SUCCEEDED when all did, else the first ending that was not a success."""
    rs = runs_of(group, runs)
    if not rs:
        raise ConfigError(f"There is no curve {group!r}.")
    statuses = [r["status"] for r in rs]
    if store.RUNNING in statuses:
        overall = store.RUNNING
    elif store.QUEUED in statuses:
        overall = store.QUEUED
    elif all(s == store.SUCCEEDED for s in statuses):
        overall = store.SUCCEEDED
    else:
        overall = next(s for s in statuses if s != store.SUCCEEDED)
    meta = rs[0]["summary"]["curve"]
    pts = points(group, rs)
    table = summary_table(pts)
    lm = next((r for r in rs if r["summary"]["curve"]["role"] == "lm"), None)
    return {"curve": group, "dataset": rs[0]["corpus"], "preset": meta.get("preset"), "tiny": meta.get("tiny"),
            "status": overall, "lm": lm["id"] if lm else None,
            "lm_start": ((lm or {}).get("summary") or {}).get("start"),
            "runs": [{"id": r["id"], "role": r["summary"]["curve"]["role"], "labels": r["summary"]["curve"].get("n"),
                      "seed": r["summary"]["curve"].get("seed"), "status": r["status"],
                      "time": views.fmt_duration(views.duration(r)), "error": r.get("error")} for r in rs],
            "points": _records(pts), "summary": _records(table), "sentence": sentence(table)}


def _records(df: pd.DataFrame) -> list[dict]:
    "Rows as dicts, a missing value as None (JSON has no NaN)."
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
            for r in df.astype(object).to_dict("records")]


def points_csv(pts: pd.DataFrame) -> str:
    "The measured points as CSV (one row per labels x seed x method)."
    buf = io.StringIO()
    pts.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------- curves shipped with the app

# Curves measured when the app was built (`curve --show GROUP --save assets/curves/NAME.json`): the Models page shows
# them on a machine that has measured none of its own, so the chart that says where pretraining pays is there on the
# first visit instead of half an hour of CPU later. Each is a finished curve's `status` with what it was measured on
# (`measured`). `ULMFIT_DEMO_CURVES` points elsewhere (tests).
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "assets" / "curves"
SNAPSHOT_FORMAT = 1


def shipped_dir() -> Path:
    return Path(os.environ.get("ULMFIT_DEMO_CURVES") or SHIPPED_DIR)


def snapshot(group: str, note: str = "") -> dict:
    """A finished curve as a file can keep it: its `status`, and under `measured` when it ran (`start`, `end`, unix
    seconds), for how long (`wall_s`, from the first run queued to the last one ended), on what device, and, when
    ULMFiT started from the starter, which starter (its card's `built` and what it read; None when the curve ran
    before the starter there now was built, so it cannot say which), and `note`: what the figures cannot say (e.g.
    that other work shared the machine). Refuses an unfinished curve or a tiny one."""
    st_ = status(group)
    if st_["status"] != store.SUCCEEDED:
        raise ConfigError(f"Curve {group} is {st_['status']}: only a curve whose every run succeeded can be saved "
                          f"(`curve --resume {group}` continues it).")
    if st_.get("tiny"):
        raise ConfigError(f"Curve {group} is a tiny one (a check of the path, not a measurement): it cannot be saved.")
    rs = runs_of(group)
    t0, t1 = min(r["created"] for r in rs), max(r["finished"] or r["created"] for r in rs)
    sc = starter.card() if st_.get("lm_start") == "starter" else None
    built = (sc or {}).get("built")
    try:  # the card's local time, as written by the starter build
        built_ts = time.mktime(time.strptime(built, "%Y-%m-%d %H:%M:%S")) if built else None
    except (TypeError, ValueError):
        built_ts = None
    same_starter = built_ts is not None and built_ts <= t0
    return {"format": SNAPSHOT_FORMAT, **st_, "measured": {
        "start": t0, "end": t1, "wall_s": round(t1 - t0, 1),
        "device": next((r["device"] for r in rs if r.get("device")), None),
        "starter_built": built if same_starter else None,
        "starter_read": starter.read_from(sc) if same_starter else None,
        "starter_tokens_seen": sc.get("tokens_seen") if same_starter else None, "note": str(note or "")}}


def save_snapshot(group: str, path, note: str = "") -> Path:
    return config.atomic_write(Path(path), json.dumps(snapshot(group, note), indent=1, default=float))


def shipped() -> tuple[list[dict], list[str]]:
    """The curves shipped with the app (`shipped_dir()/*.json`), by file name, each with its `summary` and
    `sentence` worked out again from its points (so they read as a curve measured here would), and `file`; plus one
    message per file that cannot be read, saying which and what to do."""
    out, problems = [], []
    folder = shipped_dir()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(d, dict) or d.get("format") != SNAPSHOT_FORMAT:
                raise ValueError(f"not a saved curve of format {SNAPSHOT_FORMAT}")
            pts = pd.DataFrame(d["points"], columns=["labels", "seed", "method", "accuracy", "n_eval", "seconds",
                                                     "steps", "select_accuracy", "run", "status"])
            if pts.empty or not pts["method"].isin(presets.CURVE_METHODS).all() \
                    or not pts["accuracy"].dropna().between(0, 1).all():
                raise ValueError("its points are missing or not accuracies of the curve's methods")
            pts["labels"] = pts["labels"].astype(int)
            table = summary_table(pts)
            m = d["measured"]
            if not isinstance(m, dict) or not isinstance(m.get("wall_s"), (int, float)):
                raise ValueError("it does not say what it was measured on")
            out.append({**d, "points": _records(pts), "summary": _records(table), "sentence": sentence(table),
                        "file": path.name})
        except (OSError, ValueError, KeyError, TypeError) as e:
            problems.append(f"The measured curve {path} cannot be read ({e}): restore it from git, or save it again "
                            f"with `curve --show GROUP --save {path}`.")
    return out, problems
