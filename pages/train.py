"""Train: start a ULMFiT run in a background process, watch it live, cancel/resume it, compare runs.

Everything shown comes from the run store (`ulmfit_demo.runs`), so closing the tab, reloading or restarting
Streamlit loses nothing: the worker keeps writing, and this page keeps reading. Just over 400 lines: the form, the
live view, the recipe's table and the runs list read the same store rows and session state, and share helpers.
"""
import html

import streamlit as st

from ulmfit_demo import system
from ulmfit_demo.data import corpora
from ulmfit_demo.runs import launcher, recipe, store, tboard, views
from ulmfit_demo.train import presets, pretrained, starter
from ulmfit_demo.train.presets import ConfigError
from ulmfit_demo.ui import common as ui
from ulmfit_demo.ui.curve import form as curve_form

ui.setup_page("Train", ":material/model_training:")
st.caption("ULMFiT in three steps: a language model learns general English (stage 1, usually downloaded), is "
           "fine-tuned on your texts (stage 2), then becomes a classifier with gradual unfreezing (stage 3). "
           "Runs train in their own process: close the tab whenever you like.")

launcher.startup_check()  # runs whose worker died become INTERRUPTED; a queued run starts if nothing runs

KNOB_HELP = presets.knob_help()
GROUPS = {
    "Data": ["max_docs", "lm_valid_pct", "tokenizer", "sp_vocab_sz", "max_vocab", "min_freq", "backwards"],
    "Model": ["pretrained", "emb_sz", "n_hid", "n_layers", "drop_mult_lm", "drop_mult_clas", "wd"],
    "Batches": ["bs", "seq_len", "clas_seq_len"],
    "LM schedule": ["lm_frozen_epochs", "lm_frozen_lr", "lm_epochs", "lm_lr"],
    "Classifier schedule": ["clas_phases", "lr_div"],
    "Stage 1 / LR finder": ["pretrain_epochs", "pretrain_lr", "lr_find_stage", "lr_find_iters"],
    "Hardware & run": ["device", "precision", "cpu_threads", "procs", "seed", "log_every", "sample_prompt",
                       "sample_words"],
    "Ensemble": ["members"],
    # Set per point by the label-efficiency curve (its own form below); here so every knob stays editable.
    "Curve point": ["labels", "curve_methods", "eval_rows", "select_rows", "curve_max_words", "clas_min_steps",
                    "clas_max_steps"],
}
CHOICES = {"tokenizer": ["word", "subword"], "device": ["auto", "cpu", "cuda"],
           "precision": ["auto", "fp32", "fp16", "bf16"], "lr_find_stage": ["lm", "clas"]}


# ------------------------------------------------------------------------------------------------ form state

def _knob_key(name: str) -> str:
    return f"train_k_{name}"


def load_knobs(cfg: presets.Config) -> None:
    "Put a config's values into the Custom form's widgets (called from callbacks, before widgets are drawn)."
    for k, v in cfg.to_dict().items():
        if k == "clas_phases":
            st.session_state["train_phases"] = [dict(p) for p in v]
            st.session_state["train_phases_ver"] = st.session_state.get("train_phases_ver", 0) + 1
        elif k == "max_docs":
            st.session_state[_knob_key(k)] = int(v or 0)
        else:
            st.session_state[_knob_key(k)] = v


def _on_base_change():
    load_knobs(presets.preset(st.session_state["train_base"]))


def use_lr(run: dict, lr: float) -> None:
    "The LR finder's suggestion into the form: Custom, with the sweep's settings and its first phase's LR."
    cfg = presets.Config.from_dict(run["config"])
    st.session_state["train_preset"] = "Custom"
    load_knobs(cfg)
    if cfg.lr_find_stage == "clas":
        st.session_state["train_phases"][0]["lr"] = float(lr)
        st.session_state["train_kind"] = "clas" if str(cfg.pretrained).startswith("run:") else "ulmfit"
    else:
        st.session_state[_knob_key("lm_frozen_lr" if cfg.lm_frozen_epochs > 0 else "lm_lr")] = float(lr)
        st.session_state["train_kind"] = "ulmfit"
    st.session_state["train_flash"] = f"Learning rate {lr:.2e} put into the Custom form below."


if _knob_key("bs") not in st.session_state:
    load_knobs(presets.ULMFIT)
st.session_state.setdefault("train_base", "ULMFiT")

# Without a GPU the ULMFiT preset takes hours: one click on Start must not queue that, so Quick is preselected there
# (as the CLI's `train` default). A link that asks for a preset (`?preset=quick`, Generate's and Sentiment's "Quick run
# on the demo corpus") gets it, with the demo corpus, once: the parameter is dropped so the choice stays the user's.
ON_GPU = system.device_info()["device"] == "cuda"
asked = str(st.query_params.get("preset", "")).lower()
if asked:
    match = next((p for p in presets.PRESETS if p.lower() == asked), None)
    if match:
        st.session_state["train_preset"] = match
        if st.query_params.get("corpus"):
            st.session_state["train_corpus"] = st.query_params["corpus"]
    for k in ("preset", "corpus"):
        st.query_params.pop(k, None)
st.session_state.setdefault("train_preset", "ULMFiT" if ON_GPU else "Quick")


@st.cache_data(show_spinner="Timing a few ULMFiT-sized batches on this CPU...", max_entries=8)
def ulmfit_estimate(corpus: str, stamp: str) -> dict:
    "How long one ULMFiT-preset run would train on this CPU on `corpus` (`runs.recipe.estimate`: measured, extrapolated)."
    return recipe.estimate(presets.ULMFIT, ui.current_corpus(corpus), runs=1)


def knob_widget(name: str, lm_runs: list[str]):
    key, help_ = _knob_key(name), KNOB_HELP.get(name)
    label = {"procs": "processes (data-parallel, via accelerate)"}.get(name, name.replace("_", " ")) \
        + (" (0 = all)" if name == "max_docs" else "")
    v = st.session_state.get(key)
    if name == "clas_phases":
        import pandas as pd

        st.caption("Gradual unfreezing: each row is one `fit_one_cycle`. freeze_to −1 trains the head only, −2/−3 "
                   "the last layer groups, 0 everything; rows after the first use slice(lr / lr_div, lr).")
        df = st.data_editor(pd.DataFrame(st.session_state["train_phases"], columns=["freeze_to", "epochs", "lr"]),
                            num_rows="dynamic", hide_index=True,
                            key=f"train_phases_editor_{st.session_state.get('train_phases_ver', 0)}",
                            column_config={"lr": st.column_config.NumberColumn(format="%.2e")})
        return [{"freeze_to": int(r.freeze_to), "epochs": int(r.epochs), "lr": float(r.lr)}
                for r in df.dropna().itertuples()]
    if name == "pretrained":
        opts = ["auto", "starter", "wt103", "none"] + [f"run:{r}" for r in lm_runs]
        if v not in opts:
            opts.append(v)
        return st.selectbox(label, opts, key=key, help=help_)
    if name in CHOICES:
        return st.selectbox(label, CHOICES[name], key=key, help=help_)
    if isinstance(v, bool):
        return st.checkbox(label, key=key, help=help_)
    if isinstance(v, str):
        return st.text_input(label, key=key, help=help_)
    if isinstance(v, int):
        # No min_value: a 0 or negative entry reaches validation, which says what is wrong with it.
        return int(st.number_input(label, step=1, key=key, help=help_))
    fmt = "%.2e" if "lr" in name and name != "lr_div" else "%.3f"
    return float(st.number_input(label, step=1e-4 if fmt == "%.2e" else 0.01, format=fmt, key=key, help=help_))


def custom_config(lm_runs: list[str]) -> presets.Config:
    values = {}
    tabs = st.tabs(list(GROUPS))
    for tab, names in zip(tabs, GROUPS.values()):
        with tab:
            cols = st.columns(2)
            for i, name in enumerate(names):
                with (cols[i % 2] if name != "clas_phases" else tab):
                    values[name] = knob_widget(name, lm_runs)
    values["max_docs"] = values["max_docs"] or None
    return presets.Config.from_dict(values)


# ------------------------------------------------------------------------------------------------ new run

runs = store.list_runs()
lm_runs = [r["id"] for r in runs if r["status"] == store.SUCCEEDED and r["kind"] in ("ulmfit", "lm", "pretrain")]

with st.expander("Start a new run", expanded=not runs or st.session_state.get("train_preset") == "Custom"):
    if "train_flash" in st.session_state:
        st.success(st.session_state.pop("train_flash"))
    c1, c2, c3 = st.columns([2, 2, 3])
    with c1:
        kind = st.radio("What to train", list(presets.KINDS), key="train_kind",
                        format_func=lambda k: presets.KINDS[k])
        if kind == "baseline":
            st.caption("Of the preset's settings only `max_docs` and `seed` apply: the baseline reads the raw "
                       "text, with no language model, so there are no epochs or learning rates.")
    with c2:
        choices = [r for r in corpora.list_corpora() if r["available"]]
        names = [r["name"] for r in choices]
        titles = {r["name"]: r["title"] for r in choices}
        if st.session_state.get("train_corpus") not in names:
            st.session_state["train_corpus"] = st.session_state.get("corpus") if st.session_state.get("corpus") in names else "demo"
        corpus_name = st.selectbox("Corpus", names, key="train_corpus", format_func=lambda n: titles.get(n, n),
                                   help="Corpora on this machine; the Data page gets IMDb or takes uploads.")
        preset_name = st.radio("Preset", list(presets.PRESETS), key="train_preset", horizontal=True)
        st.caption(presets.PRESET_ABOUT[preset_name])
    with c3:
        if preset_name == "Custom":
            st.selectbox("Start the knobs from", ["ULMFiT", "Quick"], key="train_base", on_change=_on_base_change)
        else:
            cfg_p = presets.preset(preset_name)
            wt = pretrained.local()
            sc = starter.card()
            wt_shape = {k: getattr(cfg_p, k) for k in presets.WT103_ARCH} == presets.WT103_ARCH
            if cfg_p.pretrained in ("wt103", "auto") and wt_shape and wt:
                st.success(f"Starts from fastai's WikiText-103 weights ({wt}).")
            elif cfg_p.pretrained in ("auto", "starter") and sc:
                st.success(f"Starts from the bundled starter language model: AWD-LSTM {sc['arch']['emb_sz']}/"
                           f"{sc['arch']['n_hid']}/{sc['arch']['n_layers']} pretrained on "
                           f"{sc['tokens_seen'] / 1e6:.0f}M tokens of {starter.read_from(sc)} (held-out perplexity "
                           f"{sc['valid_perplexity']:.0f})."
                           + (" WikiText-103 weights are looked for first (mirror, then download unless offline)."
                              if wt_shape else ""))
            elif cfg_p.pretrained in ("wt103", "auto"):
                st.warning("No pretrained weights on this machine yet: the run will look in the mirror "
                           "(ULMFIT_DEMO_MIRROR) and download them unless offline, or else train from scratch "
                           "(it will say so, loudly).")
            if preset_name == "ULMFiT" and not ON_GPU:  # said before Start can be pressed, not after
                try:
                    est = ulmfit_estimate(corpus_name, ui.corpus_stamp(corpus_name))
                except (corpora.CorpusError, ConfigError, ValueError) as e:
                    st.warning(f"There is no GPU here, and how long the ULMFiT preset would take on this CPU "
                               f"could not be measured ({e}). Expect hours; Quick takes minutes.")
                else:
                    st.warning(f"**No GPU here: the ULMFiT preset would train for about {recipe.human(est['seconds'])} "
                               f"on this CPU** on {html.escape(titles.get(corpus_name, corpus_name))} (measured "
                               f"{est['tokens_per_s']:,.0f} tokens/s in {est['precision']} on a few batches of its AWD-LSTM "
                               f"{presets.ULMFIT.emb_sz}/{presets.ULMFIT.n_hid}/{presets.ULMFIT.n_layers}, applied "
                               f"to {est['lm_tokens'] / 1e6:,.2f}M LM tokens x {est['lm_epochs']} epochs and "
                               f"{est['clas_tokens'] / 1e6:,.2f}M classifier tokens x {est['clas_epochs']} epochs). "
                               f"Quick takes minutes.", icon=":material/schedule:")
            with st.popover("All settings of this preset"):
                st.dataframe([{"knob": k, "value": str(v), "what it does": KNOB_HELP.get(k, "")}
                              for k, v in cfg_p.to_dict().items()], hide_index=True)

    cfg = None
    if preset_name == "Custom":
        try:
            cfg = custom_config(lm_runs)
        except (ConfigError, TypeError, ValueError) as e:
            st.error(f"These settings cannot be read: {e}")
    else:
        cfg = presets.preset(preset_name)
    buttons = st.container(horizontal=True)
    start = buttons.button("Start", type="primary", key="train_start", disabled=cfg is None,
                           icon=":material/play_arrow:")
    # The whole recipe as four queued runs (`runs.recipe`, as `python -m ulmfit_demo recipe`), whatever the kind.
    full = buttons.button("Full recipe", key="train_recipe", disabled=cfg is None, icon=":material/account_tree:",
                          help="Forward and backward ULMFiT runs, the TF-IDF baseline and the forward + backward "
                               "ensemble on this corpus with this preset (Custom: the form's settings), queued at "
                               "once, then one table. On a CPU pick Quick: the ULMFiT preset takes days on the full "
                               "IMDb (`python -m ulmfit_demo recipe` measures how long on this machine).")
    if start or full:
        try:
            if full:
                info = recipe.submit_recipe(corpus_name, preset_name, corpus=ui.current_corpus(corpus_name),
                                            base=cfg if preset_name == "Custom" else None)
                run_id = info["runs"]["forward"]
                st.session_state["train_recipe_group"] = info["recipe"]
            else:
                run_id = launcher.submit(kind, cfg, corpus_name, preset=preset_name,
                                         corpus=ui.current_corpus(corpus_name))
        except (ConfigError, corpora.CorpusError) as e:
            st.error(str(e))
        else:
            st.session_state["train_run"] = run_id
            st.session_state["train_flash_run"] = run_id
            st.rerun()

curve_form(runs)  # the label-efficiency curve: its own form and live table (`ui.curve`)

if not runs:
    st.info("No runs yet. Pick a preset and press Start; the Quick preset takes a few minutes on a laptop (measured: "
            "4.2 minutes on the 1,000-review IMDb sample on 2 CPU cores, less on the smaller demo corpus).")
    st.stop()

# ------------------------------------------------------------------------------------------------ full recipe

RECIPE_EVERY_S = 5


def recipe_view(group: str, polling: bool):
    "The recipe's runs in one table; once all have ended, each model's accuracy side by side."
    rs = recipe.status(group)
    if (rs["status"] in store.ACTIVE) != polling:
        st.rerun()
    st.markdown(f"`{group}` on **{rs['dataset']}**, preset {rs['preset']}{' (tiny)' if rs.get('tiny') else ''}: "
                + views.STATUS_MD.get(rs["status"], rs["status"]))
    pct = lambda v: f"{v:.1%}" if v is not None else ""  # noqa: E731
    st.dataframe([{"model": row["model"], "accuracy": pct(row["accuracy"]),
                   "in one pass": pct(row["inference_accuracy"]),
                   "valid texts": row["n_valid"], "time": row["time"], "device": row["device"],
                   "precision": row["precision"], "status": row["status"], "run": row["run"]} for row in rs["table"]],
                 hide_index=True, key=f"train_recipe_table_{group}")
    if rs["status"] in store.ACTIVE:
        st.caption("One run at a time, in this order: forward, backward, baseline, then the ensemble of the first two "
                   "(pick a run below to watch it). Closing the tab stops nothing.")
    else:
        st.caption(recipe.INFERENCE_NOTE)
    for row in rs["table"]:
        if row["error"] and row["status"] != store.SUCCEEDED:
            st.warning(f"{row['model']}: {row['error']}")


recipe_ids = recipe.recipes(runs)
if recipe_ids:
    st.subheader("Full recipe")
    if st.session_state.get("train_recipe_group") not in recipe_ids:
        st.session_state["train_recipe_group"] = recipe_ids[0]
    group = st.selectbox("Recipe", recipe_ids, key="train_recipe_group", label_visibility="collapsed")
    recipe_polling = recipe.status(group, runs)["status"] in store.ACTIVE
    st.fragment(recipe_view, run_every=RECIPE_EVERY_S if recipe_polling else None)(group, recipe_polling)

# ------------------------------------------------------------------------------------------------ live view

ids = [r["id"] for r in runs]
by_id = {r["id"]: r for r in runs}
if st.session_state.get("train_run") not in ids:
    st.session_state["train_run"] = ids[0]
if "train_flash_run" in st.session_state:
    r = by_id.get(st.session_state.pop("train_flash_run"))
    if r:
        st.success(f"Run {r['id']} {'started' if r['status'] == store.RUNNING else 'queued: it starts when the running one ends'}.")

st.subheader("Run")
run_id = st.selectbox("Run", ids, key="train_run", label_visibility="collapsed",
                      format_func=lambda i: f"{i} · {by_id[i]['kind']} · {by_id[i]['corpus']} · "
                                            f"{by_id[i].get('preset') or ''}")


def _resume(rid):
    try:
        launcher.resume(rid)
    except ConfigError as e:
        st.session_state["train_live_error"] = str(e)


# The live views poll the store only while there is something to watch: every poll is a script run for every open
# tab (store reads, charts sent again and redrawn by the browser), and a finished run's view does not change.
LIVE_EVERY_S, LIST_EVERY_S = 2, 5


def live(rid: str, polling: bool):
    launcher.startup_check()
    run = store.get(rid)
    if run is None:
        st.info("This run was deleted.")
        return
    status = run["status"]
    if (status in store.ACTIVE) != polling:
        st.rerun()  # started or ended since the page last ran: a whole-page run turns polling on or off (and the list)
    ev = store.events(rid)
    m = store.metrics(rid)
    total, left = run.get("total_steps"), views.eta(run)
    facts = [views.STATUS_MD.get(status, f"**{status}**"),
             f"stage **{views.STAGE_NAMES.get(run.get('stage') or '', run.get('stage') or '—')}**",
             f"step **{run['step']}** of {total}" if total else f"step **{run['step']}**",
             f"ETA **{views.fmt_duration(left)}**" if left is not None else None,
             f"ran {views.fmt_duration(views.duration(run))}" if run.get("started") else None,
             f"on {run['device']}" if run.get("device") else None]
    st.markdown(" · ".join(f for f in facts if f),
                help="ETA comes from the measured steps per second over whole epochs (validation included).")
    if views.progress(run) is not None:
        st.progress(views.progress(run))

    bar = st.container(horizontal=True, vertical_alignment="center")
    if status in store.ACTIVE:
        bar.button("Cancel", key=f"train_cancel_{rid}", on_click=launcher.cancel, args=(rid,),
                   icon=":material/stop:", help="Stops after the current batch; checkpoints are kept.")
        if run.get("cancel_requested"):
            bar.caption("Cancel requested: stopping after the current batch...")
    # A baseline or an ensemble has no checkpoints: resuming it simply runs it again (seconds).
    if status in store.RESUMABLE and (run["kind"] in ("baseline", "ensemble")
                                      or (store.run_dir(rid) / "checkpoints").exists()):
        bar.button("Resume", key=f"train_resume_{rid}", on_click=_resume, args=(rid,), type="primary",
                   icon=":material/replay:", help="Continues from the last complete checkpoint.")
    if "train_live_error" in st.session_state:
        st.error(st.session_state.pop("train_live_error"))

    warn = views.scratch_warning(ev)
    note = views.start_note(ev)
    if note:
        st.info(note, icon=":material/school:")
    verdict = views.judge_note(ev)
    if verdict:
        st.info("**How good is it?** " + verdict + " The baseline is the yardstick: a network that does not beat it "
                "has not earned its cost yet.", icon=":material/balance:")
    if warn and warn["reason"] == "not_found":
        st.error("**This run trains its language model from scratch.** " + warn["message"], icon="⚠️")
    elif warn and warn["reason"] == "choice":
        st.warning(warn["message"], icon="⚠️")
    elif warn:
        st.info(warn["message"])
    if run.get("error") and status != store.SUCCEEDED:
        (st.error if status == store.FAILED else st.warning)(run["error"])
    if status == store.QUEUED:
        st.info("Queued: one run trains at a time; this one starts when the running one ends.")

    if run["kind"] == "lr_find":
        sugg = views.lr_suggestion(ev)
        st.plotly_chart(views.lr_find_figure(m, sugg), key=f"train_lrf_{rid}")
        if sugg and sugg.get("valley"):
            best = sugg["valley"]
            st.write(f"Suggested learning rate (valley): **{best:.2e}**. Other rules: " +
                     ", ".join(f"{k} {v:.1e}" for k, v in sugg.items() if isinstance(v, float) and k != "valley"))
            st.button(f"Use {best:.2e} in the form", key=f"train_use_lr_{rid}", on_click=use_lr, args=(run, best),
                      icon=":material/input:")
    elif run["kind"] in ("baseline", "ensemble"):  # no epochs and no loss curve: one fit or one pass, then figures
        figures = views.run_figures(run)
        if figures and run["kind"] == "ensemble":
            st.markdown("**The ensemble's figures** (the members' probabilities averaged, measured on the validation "
                        "texts the members validated on)")
        elif figures:
            st.markdown("**The baseline's figures** (TF-IDF word 1-2-grams + logistic regression, fitted on the "
                        "classifier's training split and judged on its validation split)")
            st.dataframe(figures, hide_index=True, key=f"train_base_figs_{rid}")
            if run.get("model_id"):
                st.caption(f"Saved as model `{run['model_id']}`: pick it on the Sentiment page, or compare it with "
                           f"ULMFiT classifiers on the Models page.")
        elif status == store.RUNNING:
            st.caption("Fitting the baseline: it takes seconds, and has no curves to draw.")
    elif not m.empty:
        last = int(m["step"].max())
        st.plotly_chart(views.loss_figure(m, views.phase_bands(ev, last)), key=f"train_loss_{rid}")
        g1, g2 = st.columns(2)
        with g1:
            st.plotly_chart(views.lr_figure(m), key=f"train_lr_{rid}")
        with g2:
            if m["split"].eq("valid").any():
                st.plotly_chart(views.epoch_figure(m), key=f"train_epoch_{rid}")
            else:
                st.caption("Accuracy and perplexity per epoch appear when the first epoch ends.")
        table = views.epoch_table(m)
        if not table.empty:
            st.markdown("**Epochs** (fastai's table)")
            for c in table.columns[2:]:
                if c != "time":  # fastai prints numbers, and nothing where a metric does not apply
                    fmt = "{:,.0f}" if c in ("tokens/s", "GPU MB") else "{:.4f}"
                    table[c] = table[c].map(lambda v, f=fmt: "" if v != v or v is None else f.format(v))
            st.dataframe(table, hide_index=True)
    elif status == store.RUNNING:
        st.caption("Preparing data (tokenizing, building the vocab): curves appear with the first batches.")

    samples = views.samples(ev)
    if samples:
        st.markdown("**What the language model writes after each epoch** (same prompt, same seed)")
        items = []
        for s in samples:
            prompt, text = s.get("prompt") or "", s["text"]
            n = len(prompt) if text.lower().startswith(prompt.lower()) else 0
            # Generated text is data, not markup: escaped, the prompt in bold.
            items.append(f"<li><span style='color:#888'>epoch {s['epoch']} · step {s['step']}</span> "
                         f"<b>{html.escape(text[:n])}</b>{html.escape(text[n:])}</li>")
        st.markdown("<ul class='samples'>" + "".join(items) + "</ul>", unsafe_allow_html=True)
    if run["kind"] not in ("baseline", "ensemble"):  # no steps to plot
        st.caption(f"TensorBoard: this run's event files are in `{tboard.folder(rid)}`; "
                   f"`{tboard.command()}` shows every run.")
    with st.expander("Worker log and events"):
        st.code(store.read_log(rid)[-20_000:] or "(empty)", language=None)
        st.dataframe([{"level": x["level"], "kind": x["kind"], "message": x["message"]} for x in ev[-50:]],
                     hide_index=True)
    with st.expander("Settings of this run"):
        st.json(run["config"], expanded=False)


polling = by_id[run_id]["status"] in store.ACTIVE
st.fragment(live, run_every=LIVE_EVERY_S if polling else None)(run_id, polling)

# ------------------------------------------------------------------------------------------------ runs list


def runs_list(polling: bool):
    rows = store.list_runs()
    if any(r["status"] in store.ACTIVE for r in rows) != polling:
        st.rerun()
    st.subheader("All runs")
    st.caption("Select several rows to overlay their curves.")
    frame = views.runs_frame(rows)
    sel = st.dataframe(frame, hide_index=True, on_select="rerun", selection_mode="multi-row", key="train_runs_table")
    picked = [rows[i] for i in (sel.selection.rows if sel else []) if i < len(rows)]
    if picked:
        mm = store.metrics([r["id"] for r in picked])
        f1, f2 = views.overlay_figures(picked, mm)
        c1, c2 = st.columns(2)
        c1.plotly_chart(f1, key="train_overlay_loss")
        c2.plotly_chart(f2, key="train_overlay_acc")


any_active = any(r["status"] in store.ACTIVE for r in runs)
st.fragment(runs_list, run_every=LIST_EVERY_S if any_active else None)(any_active)
