"""The label-efficiency curve in the app: the Train page's form and live table (`form`), and the chart with its
sentence, table and downloads (`section`, on the Models page). Everything is read from the run store through
`runs.curve`, so a curve started from the CLI shows here too, live.
"""
import json
import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ulmfit_demo.data import corpora
from ulmfit_demo.models import starter
from ulmfit_demo.runs import curve, store, views
from ulmfit_demo.train import presets
from ulmfit_demo.train.presets import ConfigError
from ulmfit_demo.ui import common

COLORS = {"baseline": "#8c8c8c", "ulmfit": "#1f77b4", "scratch": "#ff7f0e"}
SHORT = {"baseline": "TF-IDF baseline", "ulmfit": "ULMFiT", "scratch": "from scratch"}  # table columns, chips
EVERY_S = 5


def figure(table: pd.DataFrame, points: pd.DataFrame | None = None, title: str = "") -> go.Figure:
    """Accuracy against labelled training texts on a log axis: per method its mean over seeds (line), the spread
    (min to max over seeds, a band) and each seed's figure (dots)."""
    fig = go.Figure()
    for m in presets.CURVE_METHODS:
        t = table[table["method"] == m].sort_values("labels")
        if t.empty:
            continue
        name, color = curve.METHOD_NAMES[m], COLORS[m]
        if (t["n"] > 1).any():
            fig.add_trace(go.Scatter(x=list(t["labels"]) + list(t["labels"])[::-1],
                                     y=list(t["max"]) + list(t["min"])[::-1], fill="toself", fillcolor=color,
                                     opacity=0.15, line={"width": 0}, hoverinfo="skip", showlegend=False,
                                     name=f"{name} (min to max over seeds)"))
        fig.add_trace(go.Scatter(
            x=t["labels"], y=t["mean"], mode="lines+markers", name=name, line={"color": color, "width": 3},
            marker={"size": 9}, customdata=t[["std", "n", "min", "max"]].values,
            hovertemplate=(f"<b>{name}</b><br>%{{x:,}} labels: %{{y:.1%}} mean<br>std %{{customdata[0]:.1%}} over "
                           f"%{{customdata[1]}} seed(s), min %{{customdata[2]:.1%}}, max %{{customdata[3]:.1%}}"
                           f"<extra></extra>")))
        if points is not None and not points.empty:
            p = points[(points["method"] == m) & points["accuracy"].notna()]
            if len(p) > len(t):  # several seeds: each one's figure too
                fig.add_trace(go.Scatter(x=p["labels"], y=p["accuracy"], mode="markers", showlegend=False,
                                         marker={"color": color, "size": 5, "opacity": 0.5}, name=f"{name}, one seed",
                                         hovertemplate="seed %{text}: %{y:.1%}<extra></extra>",
                                         text=p["seed"]))
    ticks = sorted(table["labels"].unique()) if not table.empty else []
    # Accuracy lives in [0, 1]: plotly's own padding around one point or a narrow spread reached 150%. The axis
    # spans the values and chance for two labels (50%), a little margin, never past 0% or 100%.
    vals = [v for c in ("min", "max", "mean") if c in table for v in table[c].dropna()]
    if points is not None and not points.empty:
        vals += list(points["accuracy"].dropna())
    lo, hi = min(vals + [0.5]), max(vals + [0.5])
    y_range = [max(0.0, lo - 0.04), min(1.0, hi + 0.04)]
    fig.update_layout(
        title=title or None, height=430, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0}, hovermode="closest",
        xaxis={"type": "log", "title": "labelled training texts (log scale)", "tickvals": ticks,
               "ticktext": [f"{v:,}" for v in ticks]},
        yaxis={"title": "accuracy on the fixed evaluation rows", "tickformat": ".0%", "range": y_range})
    return fig


def _status_rows(st_: dict) -> list[dict]:
    out = []
    for r in st_["runs"]:
        res = {p["method"]: p["accuracy"] for p in st_["points"] if p["run"] == r["id"]}
        out.append({"run": r["id"], "what": "LM fine-tuning (once)" if r["role"] == "lm" else
                    f"{r['labels']:,} labels, seed {r['seed']}", "status": r["status"], "time": r["time"],
                    **{SHORT[m]: (f"{res[m]:.1%}" if res.get(m) is not None else "")
                       for m in presets.CURVE_METHODS}})
    return out


def _live(group: str, polling: bool):
    st_ = curve.status(group)
    if (st_["status"] in store.ACTIVE) != polling:
        st.rerun()
    st.markdown(f"`{group}` on **{st_['dataset']}**, preset {st_['preset']}{' (tiny)' if st_.get('tiny') else ''}: "
                + views.STATUS_MD.get(st_["status"], st_["status"]))
    st.dataframe(_status_rows(st_), hide_index=True, key=f"train_curve_table_{group}")
    st.caption(st_["sentence"] + " The chart is on the Models page.")
    for r in st_["runs"]:
        if r["error"] and r["status"] != store.SUCCEEDED:
            st.warning(f"Run {r['id']}: {r['error']}")


def form(runs: list[dict]) -> None:
    "The Train page's form: start a curve; then its runs, live, with cancel and resume."
    groups = curve.curves(runs)
    with st.expander("Label-efficiency curve: where pretraining pays", expanded=False):
        st.caption("For several numbers of labelled training texts (balanced, seeded samples), fit the TF-IDF baseline, "
                   "ULMFiT (the starter language model fine-tuned once on this corpus's texts) and the same "
                   "classifier from random weights, each measured on the same fixed evaluation rows. Every point is "
                   "a run below (cancel or resume it like any run); the chart is on the Models page. Same as "
                   "`python -m ulmfit_demo curve`.")
        names = [r["name"] for r in corpora.list_corpora() if r["available"]]
        if st.session_state.get("train_curve_corpus") not in names:
            st.session_state["train_curve_corpus"] = "imdb" if "imdb" in names else names[0]
        c1, c2, c3 = st.columns(3)
        corpus_name = c1.selectbox("Corpus", names, key="train_curve_corpus")
        labels = c2.text_input("Numbers of labels", ",".join(map(str, curve.DEFAULT_LABELS)), key="train_curve_labels",
                               help="Labelled training texts per point, separated by commas.")
        seeds = c3.number_input("Seeds", 1, 10, 3, key="train_curve_seeds",
                                help="Each number of labels is drawn and trained this many times.")
        c1, c2, c3 = st.columns([3, 2, 2])  # room for the three method chips
        methods = c1.multiselect("Methods", list(presets.CURVE_METHODS), list(presets.CURVE_METHODS),
                                 key="train_curve_methods", format_func=SHORT.get,
                                 help="; ".join(f"{SHORT[m]}: {curve.METHOD_NAMES[m]}" for m in SHORT))
        scratch = c2.number_input("From scratch on the first N seeds", 0, 10, 1, key="train_curve_scratch",
                                  help="The from-scratch classifier costs as much as ULMFiT's: on a CPU, one seed "
                                       "keeps the default curve within about half an hour.")
        eval_rows = c3.number_input("Evaluation rows", 10, 25000, 1000, step=100, key="train_curve_eval",
                                    help="Fixed rows of the corpus's test split, the same for every point.")
        tiny = st.checkbox("Tiny (a few batches per point: checks the path)", key="train_curve_tiny")
        if st.button("Start the curve", key="train_curve_start", icon=":material/show_chart:",
                     disabled=not methods):
            try:
                info = curve.submit_curve(corpus_name, labels, int(seeds), tiny=tiny,
                                          corpus=ui_corpus(corpus_name),
                                          eval_rows=None if tiny else int(eval_rows),
                                          methods=",".join(methods), scratch_seeds=int(scratch))
            except (ConfigError, corpora.CorpusError) as e:
                st.error(str(e))
            else:
                st.session_state["train_curve_group"] = info["curve"]
                st.session_state["train_run"] = info["lm"]  # the live view follows the curve's first run
                st.session_state["train_curve_flash"] = (f"Curve {info['curve']} queued: the LM run "
                                                         f"{info['lm']}, then {len(info['points'])} points.")
                st.rerun()
        if "train_curve_flash" in st.session_state:
            st.success(st.session_state.pop("train_curve_flash"))
        if not groups:
            return
        if st.session_state.get("train_curve_group") not in groups:
            st.session_state["train_curve_group"] = groups[0]
        group = st.selectbox("Curve", groups, key="train_curve_group")
        polling = curve.status(group, runs)["status"] in store.ACTIVE
        resumable = any(r["status"] in store.RESUMABLE for r in curve.runs_of(group, runs))
        b = st.container(horizontal=True)
        if b.button("Cancel the curve", key="train_curve_cancel", disabled=not polling, icon=":material/stop:"):
            curve.cancel(group)
            st.rerun()
        if b.button("Resume the curve", key="train_curve_resume", disabled=polling or not resumable, icon=":material/replay:"):
            curve.resume(group)
            st.rerun()
        st.fragment(_live, run_every=EVERY_S if polling else None)(group, polling)


def ui_corpus(name: str):
    return common.current_corpus(name)


def section() -> None:
    """The Models page's section: a curve's chart, its sentence, its table and the points as CSV/JSON. The curves
    measured on this machine first, then those measured when the app was built (`curve.shipped`), so a fresh machine
    shows where pretraining pays before it has measured anything."""
    groups = curve.curves()
    measured, problems = curve.shipped()
    st.subheader("Where pretraining pays: label-efficiency curves")
    for msg in problems:
        st.warning(msg)
    if not groups and not measured:
        st.info("No label-efficiency curve yet: start one on the Train page (Label-efficiency curve) or with "
                "`python -m ulmfit_demo curve --dataset imdb`.")
        return
    shipped_by = {f"shipped:{d['file']}": d for d in measured}
    if not groups:
        st.caption("No curve measured on this machine yet: below are the ones measured when the app was built. "
                   "Start your own on the Train page (Label-efficiency curve); it shows here, live.")
    group = st.selectbox("Curve", groups + list(shipped_by), key="mdl_curve_group",
                         format_func=lambda g: f"{shipped_by[g]['dataset']}: measured when the app was built"
                         if g in shipped_by else g)
    if group in shipped_by:
        st_ = shipped_by[group]
        st.caption(shipped_caption(st_))
    else:
        st_ = curve.status(group)
    pts = pd.DataFrame(st_["points"])
    table = pd.DataFrame(st_["summary"])
    start = {"starter": "the starter language model fine-tuned once on the corpus's texts",
             "wt103": "fastai's WikiText-103 weights fine-tuned once on the corpus's texts",
             "none": "a language model trained from scratch on the corpus's texts (no pretrained start)"}.get(
        st_.get("lm_start") or "", f"the language model of run {st_.get('lm')}")
    if group not in shipped_by:
        st.caption(f"`{group}` on **{st_['dataset']}**, preset {st_['preset']}{' (tiny)' if st_.get('tiny') else ''}; "
                   f"ULMFiT's encoder is {start}: " + views.STATUS_MD.get(st_["status"], st_["status"]))
    if table.empty:
        st.info("No point measured yet: the chart fills in as the points finish.")
        return
    st.markdown(f"**{st_['sentence']}**")
    st.plotly_chart(figure(table, pts), key="mdl_curve_chart", config={"displayModeBar": False})
    n_eval = sorted({int(v) for v in pts["n_eval"].dropna()})
    st.caption(f"Accuracy on the same {', '.join(f'{v:,}' for v in n_eval)} evaluation rows of the test split for "
               f"every point and method (never used to choose anything); lines are the mean over seeds, the band "
               f"min to max, dots single seeds. Each classifier keeps its best epoch on held-out training rows.")
    shown = table.assign(method=table["method"].map(curve.METHOD_NAMES),
                         mean=table["mean"].map("{:.1%}".format),
                         # one seed has no spread to speak of: a dash, not a measured-looking 0.0%
                         std=[f"{v:.1%}" if n > 1 else "—" for v, n in zip(table["std"], table["n"])])
    st.dataframe(shown[["method", "labels", "mean", "std", "n", "seconds"]], hide_index=True,
                 key="mdl_curve_table", column_config={"n": "seeds", "seconds": st.column_config.NumberColumn(
                     "seconds (mean)", format="%.0f")})
    b = st.container(horizontal=True)
    name = st_.get("curve") or group
    b.download_button("Points (CSV)", curve.points_csv(pts), file_name=f"{name}.csv", mime="text/csv",
                      key="mdl_curve_csv")
    b.download_button("Curve (JSON)", json.dumps(st_, default=float), file_name=f"{name}.json",
                      mime="application/json", key="mdl_curve_json")


def shipped_caption(d: dict) -> str:
    """Where a curve shipped with the app was measured, in one caption: the machine, the day, the wall time, which
    starter (and whether it is the one shipped now), and the note saved with it."""
    m = d["measured"]
    seeds = sorted({p["seed"] for p in d["points"]})
    day = time.strftime("%d %b %Y", time.gmtime(m["start"])) if isinstance(m.get("start"), (int, float)) else "?"
    if m.get("starter_built"):
        now = (starter.card() or {}).get("built")
        enc = (f"the starter language model ({m['starter_read']}"
               + (f", {m['starter_tokens_seen'] / 1e6:.1f}M tokens read" if m.get("starter_tokens_seen") else "")
               + ("; the one shipped now" if now == m["starter_built"] else f"; built {m['starter_built']}, not the "
                  "one shipped now") + ")")
    elif d.get("lm_start") == "starter":
        enc = "a starter language model older than the one shipped now"
    else:
        enc = {"wt103": "fastai's WikiText-103 weights", "none": "a language model trained from scratch"}.get(
            d.get("lm_start") or "", "a language model")
    return (f"Measured when the app was built, {day}, on {m.get('device') or 'an unrecorded device'}: "
            f"**{d['dataset']}**, preset {d['preset']}, {len(seeds)} seed{'s' if len(seeds) != 1 else ''}, "
            f"{views.fmt_duration(m['wall_s'])} in all. ULMFiT's encoder is {enc}, fine-tuned once on the corpus's "
            f"texts." + (f" {m['note']}" if m.get("note") else ""))
