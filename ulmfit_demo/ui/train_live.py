"""One run on the Train page, live from the run store: status, progress and ETA, Cancel/Resume, what the run says
about itself (start, judgement, from-scratch warning, errors), its curves or figures, the LM's samples per epoch,
its log and settings. The worker writes; this only reads, so a reload or a closed tab loses nothing.
"""
import html

import streamlit as st

from ulmfit_demo.runs import launcher, store, tboard, views
from ulmfit_demo.train.presets import ConfigError
from ulmfit_demo.ui.train_knobs import use_lr

# The live views poll the store only while there is something to watch: every poll is a script run for every open
# tab (store reads, charts sent again and redrawn by the browser), and a finished run's view does not change.
LIVE_EVERY_S = 2


def _resume(rid):
    try:
        launcher.resume(rid)
    except ConfigError as e:
        st.session_state["train_live_error"] = str(e)


def _status(run: dict) -> None:
    "One line of facts, the progress bar, Cancel and Resume."
    rid, status = run["id"], run["status"]
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


def _notes(run: dict, ev: list[dict]) -> None:
    "What the run said about itself: how it started, how good it is, a from-scratch warning, its error, the queue."
    status = run["status"]
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


def _lr_find(run: dict, ev: list[dict], m) -> None:
    "The LR sweep's curve, its suggestion, and a button that puts it into the Custom form."
    rid = run["id"]
    sugg = views.lr_suggestion(ev)
    st.plotly_chart(views.lr_find_figure(m, sugg), key=f"train_lrf_{rid}")
    if sugg and sugg.get("valley"):
        best = sugg["valley"]
        st.write(f"Suggested learning rate (valley): **{best:.2e}**. Other rules: " +
                 ", ".join(f"{k} {v:.1e}" for k, v in sugg.items() if isinstance(v, float) and k != "valley"))
        st.button(f"Use {best:.2e} in the form", key=f"train_use_lr_{rid}", on_click=use_lr, args=(run, best),
                  icon=":material/input:")


def _figures(run: dict) -> None:
    "A baseline's or an ensemble's figures: no epochs and no loss curve, one fit or one pass."
    rid, status = run["id"], run["status"]
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


def _curves(rid: str, ev: list[dict], m) -> None:
    "Loss with the phases as bands, LR per layer group, accuracy/perplexity per epoch, and fastai's epoch table."
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


def _samples(ev: list[dict]) -> None:
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


def _live(rid: str, polling: bool):
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
    _status(run)
    _notes(run, ev)

    if run["kind"] == "lr_find":
        _lr_find(run, ev, m)
    elif run["kind"] in ("baseline", "ensemble"):
        _figures(run)
    elif not m.empty:
        _curves(rid, ev, m)
    elif status == store.RUNNING:
        st.caption("Preparing data (tokenizing, building the vocab): curves appear with the first batches.")

    _samples(ev)
    if run["kind"] not in ("baseline", "ensemble"):  # no steps to plot
        st.caption(f"TensorBoard: this run's event files are in `{tboard.folder(rid)}`; "
                   f"`{tboard.command()}` shows every run.")
    with st.expander("Worker log and events"):
        st.code(store.read_log(rid)[-20_000:] or "(empty)", language=None)
        st.dataframe([{"level": x["level"], "kind": x["kind"], "message": x["message"]} for x in ev[-50:]],
                     hide_index=True)
    with st.expander("Settings of this run"):
        st.json(run["config"], expanded=False)


def section(run: dict) -> None:
    "The run's live view, in a fragment that polls the store while the run is queued or running."
    polling = run["status"] in store.ACTIVE
    st.fragment(_live, run_every=LIVE_EVERY_S if polling else None)(run["id"], polling)
