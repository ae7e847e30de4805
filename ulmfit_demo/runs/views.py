"""What the Train page (and `runs list`) show, computed from the store alone: tables, ETA, the runs list, and plotly
figures. Kept out of the page so it can be tested without Streamlit; never imports fastai or torch."""
import math
import time

import pandas as pd

from ulmfit_demo.runs import store

STAGE_NAMES = {"pretrain": "Stage 1 pretraining", "lm": "LM fine-tuning", "clas": "Classifier", "lr_find": "LR finder",
               "baseline": "Baseline (TF-IDF)", "ensemble": "Ensemble"}
BAND_COLORS = ["rgba(76,120,168,0.10)", "rgba(245,133,24,0.10)", "rgba(84,162,75,0.10)", "rgba(178,121,162,0.10)",
               "rgba(228,87,86,0.10)", "rgba(114,183,178,0.10)"]
# Streamlit markdown for a status: a Material icon (bundled with Streamlit, so it renders without emoji fonts) and
# a colour that says good / running / bad at a glance.
STATUS_MD = {"QUEUED": ":gray[:material/schedule: **QUEUED**]", "RUNNING": ":blue[:material/autorenew: **RUNNING**]",
             "SUCCEEDED": ":green[:material/check_circle: **SUCCEEDED**]",
             "FAILED": ":red[:material/error: **FAILED**]", "CANCELLED": ":gray[:material/cancel: **CANCELLED**]",
             "INTERRUPTED": ":orange[:material/warning: **INTERRUPTED**]"}


# ------------------------------------------------------------------------------------------------ numbers

def fmt_duration(s: float | None) -> str:
    if s is None or not math.isfinite(s) or s < 0:
        return ""
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def duration(run: dict) -> float | None:
    "Seconds from start to finish (or to now / the last heartbeat while it runs)."
    if not run.get("started"):
        return None
    end = run.get("finished") or (time.time() if run["status"] == store.RUNNING else run.get("heartbeat"))
    return max(0.0, (end or run["started"]) - run["started"])


def eta(run: dict) -> float | None:
    "Seconds left, from the measured steps/s (whole epochs, validation included) and the planned steps."
    if run["status"] != store.RUNNING or not run.get("rate") or not run.get("total_steps"):
        return None
    return max(0.0, (run["total_steps"] - run["step"]) / run["rate"])


def progress(run: dict) -> float | None:
    if not run.get("total_steps"):
        return None
    return min(1.0, max(0.0, run["step"] / run["total_steps"]))


def best_metric(run: dict) -> str:
    "The number a person compares runs by: classifier accuracy, else LM perplexity, else the suggested LR."
    s = run.get("summary") or {}
    if s.get("clas", {}).get("accuracy") is not None:
        b = s["clas"].get("baseline_accuracy")
        return f"accuracy {s['clas']['accuracy']:.3f}" + (f" (baseline {b:.3f})" if b is not None else "")
    for k in ("baseline", "ensemble"):
        if s.get(k, {}).get("accuracy") is not None:
            return f"accuracy {s[k]['accuracy']:.3f}"
    for st in ("lm", "pretrain"):
        if s.get(st, {}).get("perplexity") is not None:
            return f"perplexity {s[st]['perplexity']:.1f}"
    if s.get("lr_suggestion"):
        return f"suggested LR {s['lr_suggestion']:.1e}"
    return ""


# The figures a baseline run is judged by, in the order the Train page lists them, with how each is read.
BASELINE_FIGURES = (("accuracy", "validation accuracy", "{:.1%}"),
                    ("ece", "calibration error (ECE), as used (temperature-scaled where that helped)", "{:.3f}"),
                    ("ece_uncalibrated", "calibration error (ECE), as fitted", "{:.3f}"),
                    ("temperature", "temperature", "{:.2f}"),
                    ("temperature_tried", "temperature tried and left off (it made the ECE worse)", "{:.2f}"),
                    ("ood_accuracy", "accuracy on the out-of-domain sentences", "{:.1%}"),
                    ("n_train", "training texts", "{:,.0f}"), ("n_valid", "validation texts", "{:,.0f}"),
                    ("fit_seconds", "seconds to fit", "{:.1f}"),
                    ("best_member_accuracy", "its best member's accuracy on the same texts", "{:.1%}"),
                    ("eval_seconds", "seconds to measure", "{:.1f}"))


def run_figures(run: dict) -> list[dict]:
    """A finished run's final figures as rows `{figure, value}`, for runs with no epochs to tabulate (a baseline, an
    ensemble): what the Train page shows instead of curves."""
    s = run.get("summary") or {}
    m = s.get("metrics") or s.get("baseline") or s.get("ensemble") or {}
    return [{"figure": what, "value": fmt.format(m[k])} for k, what, fmt in BASELINE_FIGURES
            if isinstance(m.get(k), (int, float)) and m[k] == m[k]]


# Figures summarised over the runs of `train --seeds N`: the ones a classifier or baseline is judged by.
SEED_METRICS = ("accuracy", "baseline_accuracy", "ece", "ece_uncalibrated", "ood_accuracy")


def seed_summary(metrics: list[dict]) -> dict:
    """`{metric: {"mean", "std", "min", "max", "n"}}` over runs that differ only by seed, for each of
    `SEED_METRICS` that at least one run recorded. `std` is the sample standard deviation (n - 1), 0 for one run."""
    out = {}
    for k in SEED_METRICS:
        vals = [float(m[k]) for m in metrics if isinstance(m.get(k), (int, float)) and math.isfinite(m[k])]
        if not vals:
            continue
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
        out[k] = {"mean": mean, "std": std, "min": min(vals), "max": max(vals), "n": len(vals)}
    return out


def seed_table(summary: dict, n_runs: int) -> str:
    "`seed_summary` as a small text table for the terminal."
    if not summary:
        return f"no figures to summarise: none of the {n_runs} runs succeeded"
    lines = [f"{'over ' + str(n_runs) + ' seeds':<18} {'mean':>8} {'std':>8} {'min':>8} {'max':>8} {'n':>3}"]
    for k, s in summary.items():
        lines.append(f"{k:<18} {s['mean']:>8.4f} {s['std']:>8.4f} {s['min']:>8.4f} {s['max']:>8.4f} {s['n']:>3}")
    return "\n".join(lines)


def runs_frame(runs: list[dict]) -> pd.DataFrame:
    "The runs list: one row per run, newest first."
    rows = []
    for r in runs:
        rows.append({"run": r["id"], "status": r["status"],
                     # A forward and a backward run are told apart here, not only by their figures.
                     "kind": r["kind"] + (" · backwards" if (r.get("config") or {}).get("backwards") else ""),
                     "corpus": r["corpus"], "preset": r.get("preset") or "",
                     "best metric": best_metric(r), "duration": fmt_duration(duration(r)),
                     "device": r.get("device") or "",
                     "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"]))})
    return pd.DataFrame(rows, columns=["run", "status", "kind", "corpus", "preset", "best metric", "duration",
                                       "device", "started"])


def epoch_table(m: pd.DataFrame) -> pd.DataFrame:
    "fastai's table: one row per epoch with train/valid loss, accuracy, perplexity, time; plus tokens/s."
    if m.empty:
        return pd.DataFrame()
    e = m[m["split"].isin(["train", "valid", "epoch"])].copy()
    if e.empty:
        return pd.DataFrame()
    e["col"] = [f"{sp}_loss" if n == "loss" else n for sp, n in zip(e["split"], e["name"])]
    t = e.pivot_table(index=["stage", "epoch", "step"], columns="col", values="value", aggfunc="last").reset_index()
    t = t.sort_values("step")
    out = pd.DataFrame({"stage": t["stage"].map(lambda s: STAGE_NAMES.get(s, s)), "epoch": t["epoch"].astype(int) + 1})
    for c in ("train_loss", "valid_loss", "accuracy", "perplexity"):
        if c in t:
            out[c] = t[c].round(4)
    if "time" in t:
        out["time"] = t["time"].map(fmt_duration)
    if "tokens_per_s" in t:
        out["tokens/s"] = t["tokens_per_s"].round(0)
    if "gpu_mem_mb" in t:
        out["GPU MB"] = t["gpu_mem_mb"].round(0)
    return out.reset_index(drop=True)


def phase_bands(events: list[dict], last_step: int) -> list[dict]:
    """Stage and unfreezing phases as step ranges, from the `phase` events (the first start of each phase counts:
    a resumed phase restarts where it was)."""
    starts = {}
    for e in events:
        if e["kind"] != "phase":
            continue
        d = e["data"]
        key = (d["stage"], d["phase"])
        if key not in starts and d.get("step") is not None:
            starts[key] = {"stage": d["stage"], "phase": d["phase"], "label": d["label"], "start": d["step"],
                           "lr": d.get("lr"), "epochs": d.get("epochs")}
    bands = sorted(starts.values(), key=lambda b: b["start"])
    for i, b in enumerate(bands):
        b["end"] = bands[i + 1]["start"] if i + 1 < len(bands) else max(last_step, b["start"])
    return bands


def samples(events: list[dict]) -> list[dict]:
    "LM samples after each epoch, oldest first: {stage, epoch, step, text, prompt}."
    return [{**e["data"], "text": e["message"], "time": e["time"]} for e in events if e["kind"] == "sample"]


def scratch_warning(events: list[dict]) -> dict | None:
    "Why the LM starts from scratch, if it does: {'reason': 'not_found'|'choice'|'stage1', 'message'}."
    for e in events:
        if e["kind"] == "from_scratch":
            return {"reason": e["data"].get("reason"), "message": e["message"], "level": e["level"]}
    return None


def judge_note(events: list[dict]) -> str | None:
    "The classifier beside the baseline on the same split, its calibration and out-of-domain accuracy (one sentence)."
    for e in reversed(events):
        if e["kind"] == "judge":
            return e["message"]
    return None


def start_note(events: list[dict]) -> str | None:
    "Where the run's language model started, when it started from pretrained weights (the 'pretrained' event)."
    for e in events:
        if e["kind"] == "pretrained":
            return e["message"]
    return None


def lr_suggestion(events: list[dict]) -> dict | None:
    for e in reversed(events):
        if e["kind"] == "lr_suggestion":
            return e["data"]
    return None


# ------------------------------------------------------------------------------------------------ figures

def _layout(fig, title, height=330, **kw):
    # Legends go under the plot: above it they collide with the title on narrow columns. The top margin leaves the
    # first 30 px to Streamlit's plotly toolbar; titles (and subplot titles) sit just above the plot, below it.
    # The legend starts ~80 px under the plot, clear of tick labels and the axis title whatever the height.
    fig.update_layout(title=dict(text=title, yref="paper", y=1, yanchor="bottom", pad=dict(b=8)) if title else None,
                      height=height, margin=dict(l=10, r=10, t=70, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-80 / (height - 80), xanchor="left", x=0), **kw)
    return fig


def loss_figure(m: pd.DataFrame, bands: list[dict]):
    """Smoothed train loss every few batches and validation loss per epoch vs step, phases drawn as bands. The
    classifier's loss (~0.7) gets its own axis on the right: beside an LM's (~4-7) it would be a flat line."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, b in enumerate(bands):
        fig.add_vrect(x0=b["start"], x1=max(b["end"], b["start"] + 1e-9), fillcolor=BAND_COLORS[i % len(BAND_COLORS)],
                      line_width=0, layer="below")
        # Labels written upwards at each band's start fit however narrow the band is.
        fig.add_annotation(x=b["start"], y=0.02, xref="x", yref="paper", text=b["label"], textangle=-90,
                           showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=10, color="#555"))
    two_axes = m["stage"].eq("clas").any() and m["stage"].ne("clas").any()
    for split, name, style in (("batch", "train loss", dict(mode="lines", line=dict(width=1.6))),
                               ("valid", "valid loss", dict(mode="markers+lines", marker=dict(size=8, symbol="diamond"),
                                                            line=dict(dash="dot")))):
        part = m[(m["split"] == split) & (m["name"] == "loss")]
        for stage, g in part.groupby("stage", sort=False):
            right = two_axes and stage == "clas"
            fig.add_trace(go.Scatter(x=g["step"], y=g["value"], name=f"{name} ({STAGE_NAMES.get(stage, stage)})",
                                     yaxis="y2" if right else "y", **style))
    kw = {}
    if two_axes:
        kw["yaxis2"] = dict(title="classifier loss", overlaying="y", side="right", showgrid=False)
    return _layout(fig, "Loss", height=400, xaxis_title="training step (batches)",
                   yaxis_title="LM loss (cross-entropy)" if two_axes else "loss (cross-entropy)", **kw)


def lr_figure(m: pd.DataFrame):
    "Learning rate of each parameter group (discriminative LRs show as parallel curves)."
    import plotly.graph_objects as go

    lr = m[(m["split"] == "batch") & m["name"].str.startswith("lr/")]
    fig = go.Figure()
    for (stage, name), g in lr.groupby(["stage", "name"], sort=False):
        fig.add_trace(go.Scatter(x=g["step"], y=g["value"], mode="lines", name=f"{stage} group {name[3:]}"))
    return _layout(fig, "Learning rate per layer group", xaxis_title="training step", yaxis_title="LR",
                   yaxis=dict(type="log", tickformat=".0e", dtick=1))  # one label per decade


def epoch_figure(m: pd.DataFrame):
    "Accuracy (LM: next-word; classifier: label) and perplexity per epoch."
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("Accuracy", "LM perplexity"))
    v = m[m["split"] == "valid"]
    for stage, g in v[v["name"] == "accuracy"].groupby("stage", sort=False):
        fig.add_trace(go.Scatter(x=g["epoch"] + 1, y=g["value"], mode="lines+markers",
                                 name=f"accuracy ({STAGE_NAMES.get(stage, stage)})"), row=1, col=1)
    for stage, g in v[v["name"] == "perplexity"].groupby("stage", sort=False):
        fig.add_trace(go.Scatter(x=g["epoch"] + 1, y=g["value"], mode="lines+markers",
                                 name=f"perplexity ({STAGE_NAMES.get(stage, stage)})"), row=1, col=2)
    fig.update_xaxes(title_text="epoch", dtick=1)
    return _layout(fig, None, height=330)


def lr_find_figure(m: pd.DataFrame, sugg: dict | None):
    "fastai's LR finder plot: smoothed loss against a log-scale learning rate, suggestions marked."
    import plotly.graph_objects as go

    f = m[m["split"] == "lr_find"].pivot_table(index="step", columns="name", values="value").reset_index()
    fig = go.Figure()
    if not f.empty and {"lr", "loss"} <= set(f.columns):
        fig.add_trace(go.Scatter(x=f["lr"], y=f["loss"], mode="lines", name="smoothed loss"))
        for name, lr in (sugg or {}).items():
            if name in ("stage",) or not isinstance(lr, (int, float)):
                continue
            y = f.iloc[(f["lr"] - lr).abs().argsort().iloc[0]]["loss"]
            fig.add_trace(go.Scatter(x=[lr], y=[y], mode="markers+text", text=[f"{name} {lr:.1e}"],
                                     textposition="top center", marker=dict(size=10), name=name))
    return _layout(fig, "Learning-rate finder", xaxis_title="learning rate (log scale)", yaxis_title="loss",
                   xaxis_type="log", height=360)


def overlay_figures(runs: list[dict], m: pd.DataFrame):
    "Several runs on one figure each: smoothed train loss vs step, and validation accuracy per epoch."
    import plotly.graph_objects as go

    loss, acc = go.Figure(), go.Figure()
    for r in runs:
        g = m[m["run_id"] == r["id"]]
        label = f"{r['id']} ({r.get('preset') or ''}, {r['corpus']})"
        b = g[(g["split"] == "batch") & (g["name"] == "loss")]
        loss.add_trace(go.Scatter(x=b["step"], y=b["value"], mode="lines", name=label))
        a = g[(g["split"] == "valid") & (g["name"] == "accuracy")].copy()
        for stage, h in a.groupby("stage", sort=False):
            acc.add_trace(go.Scatter(x=list(range(1, len(h) + 1)), y=h["value"], mode="lines+markers",
                                     name=f"{label} {STAGE_NAMES.get(stage, stage)}"))
    return (_layout(loss, "Train loss, compared", xaxis_title="training step", yaxis_title="loss"),
            _layout(acc, "Validation accuracy per epoch, compared", xaxis_title="epoch", yaxis_title="accuracy"))
