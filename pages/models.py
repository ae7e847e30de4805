"""Models: every trained model on this machine; rename, delete, export and import them, and see where a classifier
goes wrong on its validation set."""
import html
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from ulmfit_demo import models, plots
from ulmfit_demo.data import corpora
from ulmfit_demo.models import ensemble, interpret, kinds, starter
from ulmfit_demo.ui import common as ui
from ulmfit_demo.ui import model_widgets as mw
from ulmfit_demo.ui.curve import section as curve_section

ui.setup_page("Models", ":material/inventory_2:")
st.caption("Each finished training run leaves a model here: its weights (safetensors, no code inside) and a "
           "description of how it was built.")

if "mdl_flash" in st.session_state:
    st.success(st.session_state.pop("mdl_flash"))

rows = models.list_models()
if not rows:
    mw.train_link("model")
else:
    table = pd.DataFrame([{
        "name": r["name"], "kind": mw.KIND_WORDS[r["kind"]], "corpus": r["corpus"],
        "accuracy": f"{r['metrics']['accuracy']:.1%}" if "accuracy" in r["metrics"] else "",
        "perplexity": f"{r['metrics']['perplexity']:,.1f}" if "perplexity" in r["metrics"] else "",
        "created": r["created"].replace("T", " ")[:16], "size": mw.fmt_size(r["size_bytes"])}
        for r in rows])  # id, run and where it came from are under the Model picker: the table fits the page
    st.dataframe(table, hide_index=True, key="mdl_table")
    st.caption("Accuracy: share of validation reviews a classifier got right. Perplexity: how unsure a language "
               "model is of the next word (lower is better). Both measured at the end of training.")

    by_id = {r["id"]: r for r in rows}
    if st.session_state.get("mdl_select_next") in by_id:  # a model just imported becomes the selected one
        st.session_state["mdl_model"] = st.session_state.pop("mdl_select_next")
    if st.session_state.get("mdl_model") not in by_id:
        st.session_state["mdl_model"] = rows[0]["id"]
    mid = st.selectbox("Model", list(by_id), key="mdl_model", format_func=lambda i: f"{mw.model_title(by_id[i])} — {i}")
    row = by_id[mid]
    origin = {"trained": f"trained here by run `{row['run_id']}`" if row["run_id"] else "trained here",
              "bundle": "imported from a bundle", "pkl": "imported from a fastai export (.pkl)",
              "built": "an ensemble built here from the models below"}
    st.caption(f"id `{mid}` (what the CLI's `--model` takes) · {origin.get(row['source'], row['source'])}")

    meta = models.read_meta(mid)
    if meta.get("members"):  # an ensemble: what it is made of, and what it measured beside them
        line = ensemble.evaluation_line(meta, members=False)  # each member's figure on the same rows: the table
        if line:
            st.markdown(f"**{html.escape(line)}**")
        elif not isinstance((meta.get("metrics") or {}).get("accuracy"), (int, float)):  # the bundled one has its own
            st.caption("Not measured: an ensemble's accuracy is only what was measured with it (`models ensemble ... "
                       "--eval-dataset CORPUS`). Its members' figures below are their own.")
        mems = ensemble.members(mid)
        own_corpora = any(m.get("corpus") != row["corpus"] for m in mems)  # else the table above says it once
        ev_mems = (meta.get("evaluation") or {}).get("members") or []
        same_rows = ([f"{e['accuracy']:.1%}" for e in ev_mems] if len(ev_mems) == len(mems)  # the same order
                     else [""] * len(mems))
        st.dataframe(pd.DataFrame([{
            "member": (m["current"] or {}).get("name", m["name"]), "kind": mw.KIND_WORDS.get(m["kind"], m["kind"]),
            "weight": f"{m['weight']:.2f}", **({"corpus": m.get("corpus")} if own_corpora else {}),
            **({"on the ensemble's rows": same} if line else {}),
            "own accuracy": (f"{m['current']['metrics']['accuracy']:.1%}"
                             if m["current"] and "accuracy" in m["current"]["metrics"] else ""),
            "id": m["id"] if m["current"] else f"{m['id']} (missing)"} for m, same in zip(mems, same_rows)]),
            hide_index=True, key="mdl_members")
        geo = (meta.get("rule") or "mean") == "geometric"
        st.caption("Each member's probabilities (with its own calibration) are averaged with these weights"
                   + (" as log-probabilities (a geometric mean, scaled to add up to 1), which keeps the verdict's "
                      "confidence as trustworthy as its members'" if geo else "")
                   + "." + (" On the ensemble's rows: each member alone on the rows the ensemble was measured on."
                            if line else "")
                   + " Own accuracy: what the member's run measured on its own validation reviews.")
    if kinds.can(row, kinds.CLASSIFY):
        # How good is it: beside the baseline fitted on the same split, and how far its confidence can be trusted.
        line = mw.baseline_comparison(row)
        if line:
            st.markdown(f"**{html.escape(line)}**")
        elif row["kind"] == "classifier":
            st.caption("This classifier was not judged beside a baseline when it was trained, so there is no "
                       "comparison to show.")
        # A built model (the bundled one) measured on test splits it was never chosen on.
        tests = mw.test_splits_table(meta)
        if tests is not None:
            st.markdown("**On each corpus's test split and on everyday sentences from other domains**, never used to "
                        "choose anything, beside the TF-IDF baseline fitted on the same training rows:")
            st.dataframe(tests, hide_index=True, key="mdl_test_splits")
            st.caption("Measured once, after the model was chosen on held-out training rows. ECE: expected "
                       "calibration error (0 = its confidence matches how often it is right). Called positive: the "
                       "share of texts it called positive (IMDb's test reviews and the everyday sentences are half "
                       "positive).")
        cal = meta.get("calibration") or {}
        if cal.get("reliability") or cal.get("reliability_uncalibrated"):
            st.plotly_chart(plots.reliability_figure(cal.get("reliability"), cal.get("reliability_uncalibrated"),
                                                     cal.get("ece"), cal.get("ece_uncalibrated")),
                            key="mdl_reliability_chart", config={"displayModeBar": False})
            off = cal.get("applied") is False and isinstance(cal.get("fitted_temperature"), (int, float))
            st.caption("Each point is a group of validation reviews the model was about equally sure of: how often "
                       "it was right (up) against how sure it was (across). Points on the diagonal are honest; below "
                       "it the model is over-confident. "
                       + (f"Temperature scaling (T = {cal['fitted_temperature']:.2f}) was tried and left off: on "
                          f"halves of the validation set it was not fitted on, it made the calibration error worse "
                          f"({cal['ece_uncalibrated']:.3f} -> {cal.get('ece_temperature', float('nan')):.3f}), so "
                          "the model gives its probabilities as trained." if off else
                          "Temperature scaling"
                          + (f" (T = {cal['temperature']:.2f})" if isinstance(cal.get("temperature"), (int, float))
                             else "") + " rescales its probabilities without changing any verdict; its curve is "
                          "measured on halves of the validation set it was not fitted on."))
        judged = [r for r in rows if kinds.can(r, kinds.CLASSIFY)]
        with st.expander(f"All {len(judged)} sentiment models side by side", expanded=len(judged) > 1):
            st.dataframe(mw.judge_table(judged), hide_index=True, key="mdl_judge_table")
            st.caption("Baseline accuracy: a TF-IDF + logistic-regression model fitted on the same split. ECE: "
                       "expected calibration error of its probabilities as it gives them, temperature-scaled where "
                       "that helped (0 = its confidence matches how often it is right). OOD: short everyday "
                       "sentences from other domains. Blank: not measured.")

    # The bundled model ships with the app: it cannot be renamed or deleted, so those tabs are not offered for it.
    read_only = row.get("origin") == "bundled"
    tabs = st.tabs(["Export"] if read_only else ["Export", "Rename", "Delete"])
    t_export = tabs[0]
    if read_only:
        st.caption("This model ships with the app (assets/sentiment): it cannot be renamed or deleted. Export it and "
                   "import the bundle to get a copy of your own.")
    t_rename, t_delete = (None, None) if read_only else (tabs[1], tabs[2])
    with t_export:
        st.write("**Bundle (.zip)**: the weights, the description and a README showing how to load it here or with "
                 "plain fastai. Safe to share. **fastai export (.pkl)**: what `learn.export()` writes, for "
                 "`load_learner()`; it is a pickle, so whoever opens it must trust you.")
        safe_name = "".join(c if c.isalnum() or c in "-_" else "_" for c in row["name"])[:40] or mid
        c1, c2 = st.columns(2)
        c1.download_button("Download bundle (.zip)", lambda: models.bundle_bytes(mid), file_name=f"{safe_name}.zip",
                           mime="application/zip", key="mdl_dl_bundle", icon=":material/download:")
        if why := kinds.kind_class(row["kind"]).no_fastai_export:
            c2.caption(why)
        else:
            c2.download_button("Download fastai export (.pkl)", lambda: models.fastai_bytes(mid),
                               file_name=f"{safe_name}.pkl", mime="application/octet-stream", key="mdl_dl_pkl",
                               icon=":material/download:")
    if not read_only:
        with t_rename:
            new = st.text_input("New name", value=row["name"], key=f"mdl_new_name_{mid}", max_chars=80)
            if st.button("Rename", key="mdl_rename"):
                try:
                    models.rename(mid, new)
                except models.ModelError as e:
                    st.error(str(e))
                else:
                    st.session_state["mdl_flash"] = f"Renamed to {new.strip()!r}."
                    st.rerun()
        with t_delete:
            users = ensemble.used_by(mid)
            if users:
                st.info("This model is a member of " + ", ".join(f"**{html.escape(u['name'])}**" for u in users)
                        + ": delete that ensemble first, or it would be broken.", icon=":material/info:")
            sure = st.checkbox(f"Yes, delete {row['name']!r} and its files", key="mdl_delete_confirm")
            if st.button("Delete model", key="mdl_delete", type="primary", disabled=not sure):
                try:
                    models.delete(mid)
                    from ulmfit_demo.models import inference
                    inference.forget(mid)
                except models.ModelError as e:
                    st.error(str(e))
                else:
                    st.session_state["mdl_flash"] = f"Deleted {row['name']!r}."
                    st.session_state.pop("mdl_delete_confirm", None)
                    st.rerun()

# ------------------------------------------------------------------------------------------------------ the starter
# Shipped with the app beside the bundled model, but not a model folder (no export, rename or delete): what it is,
# what it read and how well it predicts each source's held-out text.
fwd_card, bwd_card = starter.card(), starter.card(starter.folder(backwards=True))
if fwd_card:
    with st.expander("The starter language model shipped with the app: what every run starts from"):
        st.markdown(mw.starter_about(fwd_card), unsafe_allow_html=True)
        st.dataframe(pd.DataFrame(mw.starter_sources(fwd_card, bwd_card)), hide_index=True, key="mdl_starter_table")
        st.caption("Perplexity on held-out text of each source it read (text it never trained on): per SentencePiece "
                   "token, and per word (the same loss spread over words; comparable across tokenizers). Lower is "
                   "better." + (" The backward starter reads every text from its last word to its first, for the "
                                "backward half of ULMFiT's forward + backward ensemble." if bwd_card else "")
                   + " It lives in assets/starter_lm" + (" and assets/starter_lm_bwd" if bwd_card else "")
                   + ": it cannot be renamed, deleted or exported here. Generate writes with it.")

# ----------------------------------------------------------------------------------------------------------- import
st.subheader("Import a model")
up = st.file_uploader("Model bundle (.zip) or fastai export (.pkl)", type=["zip", "pkl"],
                      key=f"mdl_import_{st.session_state.get('mdl_import_round', 0)}")
if up is not None:
    name = st.text_input("Name for the imported model (optional)", key="mdl_import_name", max_chars=80)
    is_pkl = up.name.lower().endswith(".pkl")
    trust = False
    if is_pkl:
        st.warning(models.PICKLE_RISK, icon=":material/warning:")
        with tempfile.NamedTemporaryFile(suffix=".pkl") as f:
            f.write(up.getvalue())
            f.flush()
            names = models.pickle_imports(Path(f.name))
        risky = models.unexpected_imports(names)
        st.caption("Opening this file would import: " + ", ".join(f"`{html.escape(n)}`" for n in names[:40])
                   + (" ..." if len(names) > 40 else ""))
        if risky:
            st.error("It also names modules a fastai model does not need: "
                     + ", ".join(f"`{html.escape(n)}`" for n in risky[:10]) + ". Do not trust it unless you know why.")
        trust = st.checkbox("I trust this file and accept that opening it runs its code", key="mdl_trust")
    if st.button("Import", key="mdl_import_go", type="primary", disabled=is_pkl and not trust):
        try:
            with st.spinner("Checking and importing..."):
                if is_pkl:
                    with tempfile.TemporaryDirectory() as td:
                        p = Path(td) / "import.pkl"
                        p.write_bytes(up.getvalue())
                        new_id = models.import_pkl(p, trust=trust, name=name or Path(up.name).stem)
                else:
                    new_id = models.import_bundle(up.getvalue(), name=name or None)
        except models.ModelError as e:
            st.error(str(e))
        else:
            st.session_state["mdl_flash"] = f"Imported as {models.get(new_id)['name']!r} ({new_id})."
            st.session_state["mdl_select_next"] = new_id
            # A fresh uploader key empties the upload box once its file has been imported.
            st.session_state["mdl_import_round"] = st.session_state.get("mdl_import_round", 0) + 1
            st.rerun()

# ----------------------------------------------------------------------------------------------------------- interpret
clas = [r for r in rows if kinds.can(r, kinds.CLASSIFY)]
if clas:
    st.subheader("Where does a classifier go wrong?")
    st.write("The classifier judges every review of the corpus's validation set (reviews it did not train on). "
             "The table counts right and wrong answers; below are the mistakes it was most sure about.")
    cby = {r["id"]: r for r in clas}
    if st.session_state.get("mdl_interp_model") not in cby:
        st.session_state["mdl_interp_model"] = clas[0]["id"]
    a, b = st.columns(2)
    cid = a.selectbox("Classifier", list(cby), key="mdl_interp_model", format_func=lambda i: mw.model_title(cby[i]))
    avail = [c["name"] for c in corpora.list_corpora() if c["available"] and c["labelled"]]
    if st.session_state.get("mdl_interp_corpus") not in avail:
        trained_on = cby[cid].get("corpus")
        st.session_state["mdl_interp_corpus"] = trained_on if trained_on in avail else avail[0]
    cname = b.selectbox("Corpus", avail, key="mdl_interp_corpus",
                        help="The validation reviews of this corpus are scored. Pick the one the model was trained on.")
    job = (cid, models.stamp(cid), cname)
    if st.button("Score the validation set", key="mdl_interp_go"):
        try:
            bar, progress = ui.progress_bar("Scoring validation reviews")
            try:
                result = interpret.interpret(cid, ui.current_corpus(cname), progress=progress)
            finally:
                bar.empty()
            st.session_state["mdl_interp_result"] = (job, result)
        except (models.ModelError, corpora.CorpusError) as e:
            st.error(str(e))
    done = st.session_state.get("mdl_interp_result")
    if done and done[0] == job:
        it = done[1]
        c1, c2 = st.columns([1, 2])
        c1.metric("Accuracy on validation", f"{it.accuracy:.1%}", help=f"{it.n_docs:,} validation reviews scored.")
        for n in it.notes:
            c1.caption(n)
        with c2:
            st.plotly_chart(mw.confusion_figure(it.confusion), key="mdl_confusion_chart",
                            config={"displayModeBar": False})
        if it.mistakes.empty:
            st.success("No mistakes on these reviews.")
        else:
            st.markdown("**Its most confident mistakes**")
            shown = it.mistakes.assign(text=it.mistakes["text"].str.slice(0, 400))
            st.dataframe(shown[["actual", "predicted", "confidence", "loss", "text"]], hide_index=True,
                         key="mdl_mistakes",
                         column_config={"confidence": st.column_config.NumberColumn(format="percent"),
                                        "loss": st.column_config.NumberColumn(format="%.2f"),
                                        "text": st.column_config.TextColumn(width="large")})
            st.caption("Most confident mistakes first (fastai's top losses): loss is minus the log of the "
                       "probability the model gave the right answer; the surer it was of the wrong one, the higher.")

curve_section()  # where pretraining pays: the label-efficiency curves of the store (`ui.curve`)
