"""Train: start a ULMFiT run in a background process, watch it live, cancel/resume it, compare runs.

Everything shown comes from the run store (`ulmfit_demo.runs`), so closing the tab, reloading or restarting
Streamlit loses nothing: the worker keeps writing, and this page keeps reading. Each section is drawn by a module of
`ulmfit_demo.ui`: the new-run form (`train_form`, its Custom knobs in `train_knobs`), the label-efficiency curve
(`curve`), the full recipe's table (`train_recipe`), one run live (`train_live`) and the runs list (`train_runs`).
"""
import streamlit as st

from ulmfit_demo import system
from ulmfit_demo.runs import launcher, recipe, store
from ulmfit_demo.train import presets
from ulmfit_demo.ui import common as ui
from ulmfit_demo.ui import train_form, train_knobs, train_live, train_recipe, train_runs
from ulmfit_demo.ui.curve import form as curve_form

ui.setup_page("Train", ":material/model_training:")
st.caption("ULMFiT in three steps: a language model learns general English (stage 1, usually downloaded), is "
           "fine-tuned on your texts (stage 2), then becomes a classifier with gradual unfreezing (stage 3). "
           "Runs train in their own process: close the tab whenever you like.")

launcher.startup_check()  # runs whose worker died become INTERRUPTED; a queued run starts if nothing runs

train_knobs.init_state()

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

# ------------------------------------------------------------------------------------------------ new run

runs = store.list_runs()
train_form.new_run(runs, ON_GPU)
curve_form(runs)  # the label-efficiency curve: its own form and live table (`ui.curve`)

if not runs:
    st.info("No runs yet. Pick a preset and press Start; the Quick preset takes a few minutes on a laptop (measured: "
            "4.2 minutes on the 1,000-review IMDb sample on 2 CPU cores, less on the smaller demo corpus).")
    st.stop()

# ------------------------------------------------------------------------------------------------ full recipe

recipe_ids = recipe.recipes(runs)
if recipe_ids:
    st.subheader("Full recipe")
    if st.session_state.get("train_recipe_group") not in recipe_ids:
        st.session_state["train_recipe_group"] = recipe_ids[0]
    group = st.selectbox("Recipe", recipe_ids, key="train_recipe_group", label_visibility="collapsed")
    train_recipe.section(group, runs)

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
train_live.section(by_id[run_id])

# ------------------------------------------------------------------------------------------------ runs list

train_runs.section(runs)
