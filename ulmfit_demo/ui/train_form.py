"""The Train page's "Start a new run" expander: what to train, on which corpus, with which preset (and what that preset
starts from, or how long it would take on this CPU), the Custom knobs (`train_knobs`), then Start or Full recipe.
Both buttons only queue runs in the store (`runs.launcher`, `runs.recipe`); the worker process does the training.
"""
import html

import streamlit as st

from ulmfit_demo.data import corpora
from ulmfit_demo.models import starter
from ulmfit_demo.runs import launcher, recipe, store
from ulmfit_demo.train import presets, pretrained
from ulmfit_demo.train.presets import ConfigError
from ulmfit_demo.ui import common as ui
from ulmfit_demo.ui.train_knobs import KNOB_HELP, custom_config, on_base_change


@st.cache_data(show_spinner="Timing a few ULMFiT-sized batches on this CPU...", max_entries=8)
def ulmfit_estimate(corpus: str, stamp: str) -> dict:
    "How long one ULMFiT-preset run would train on this CPU on `corpus` (`runs.recipe.estimate`: measured, extrapolated)."
    return recipe.estimate(presets.ULMFIT, ui.current_corpus(corpus), runs=1)


def preset_note(preset_name: str, corpus_name: str, title: str, on_gpu: bool) -> None:
    "Where the preset's language model starts from, the CPU time of the ULMFiT preset, and all its settings."
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
    if preset_name == "ULMFiT" and not on_gpu:  # said before Start can be pressed, not after
        try:
            est = ulmfit_estimate(corpus_name, ui.corpus_stamp(corpus_name))
        except (corpora.CorpusError, ConfigError, ValueError) as e:
            st.warning(f"There is no GPU here, and how long the ULMFiT preset would take on this CPU "
                       f"could not be measured ({e}). Expect hours; Quick takes minutes.")
        else:
            st.warning(f"**No GPU here: the ULMFiT preset would train for about {recipe.human(est['seconds'])} "
                       f"on this CPU** on {html.escape(title)} (measured "
                       f"{est['tokens_per_s']:,.0f} tokens/s in {est['precision']} on a few batches of its AWD-LSTM "
                       f"{presets.ULMFIT.emb_sz}/{presets.ULMFIT.n_hid}/{presets.ULMFIT.n_layers}, applied "
                       f"to {est['lm_tokens'] / 1e6:,.2f}M LM tokens x {est['lm_epochs']} epochs and "
                       f"{est['clas_tokens'] / 1e6:,.2f}M classifier tokens x {est['clas_epochs']} epochs). "
                       f"Quick takes minutes.", icon=":material/schedule:")
    with st.popover("All settings of this preset"):
        st.dataframe([{"knob": k, "value": str(v), "what it does": KNOB_HELP.get(k, "")}
                      for k, v in cfg_p.to_dict().items()], hide_index=True)


def new_run(runs: list[dict], on_gpu: bool) -> None:
    "The expander; open when there is no run yet or the Custom preset is picked. A started run is flashed, then shown."
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
                shared = st.session_state.get("corpus")  # the corpus the other pages use, when it is on disk
                st.session_state["train_corpus"] = shared if shared in names else "demo"
            corpus_name = st.selectbox("Corpus", names, key="train_corpus", format_func=lambda n: titles.get(n, n),
                                       help="Corpora on this machine; the Data page gets IMDb or takes uploads.")
            preset_name = st.radio("Preset", list(presets.PRESETS), key="train_preset", horizontal=True)
            st.caption(presets.PRESET_ABOUT[preset_name])
        with c3:
            if preset_name == "Custom":
                st.selectbox("Start the knobs from", ["ULMFiT", "Quick"], key="train_base", on_change=on_base_change)
            else:
                preset_note(preset_name, corpus_name, titles.get(corpus_name, corpus_name), on_gpu)

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
