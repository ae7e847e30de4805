"""The Train page's Custom form: every knob of `presets.Config` as a widget, in tabs, and the session state behind
them. The widgets' values live in `st.session_state` (keys `train_k_<knob>`, the phases in `train_phases`) so a
preset, the "Start the knobs from" choice or the LR finder's suggestion can fill them in before they are drawn.
"""
import pandas as pd
import streamlit as st

from ulmfit_demo.train import presets

KNOB_HELP = presets.knob_help()
GROUPS = {
    "Data": ["max_docs", "lm_valid_pct", "tokenizer", "sp_vocab_sz", "max_vocab", "min_freq", "backwards"],
    "Model": ["pretrained", "emb_sz", "n_hid", "n_layers", "drop_mult_lm", "drop_mult_clas", "wd"],
    "Batches": ["bs", "seq_len", "clas_seq_len"],
    "LM schedule": ["lm_frozen_epochs", "lm_frozen_lr", "lm_epochs", "lm_lr"],
    "Classifier schedule": ["clas_phases", "lr_div", "clas_crops"],
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


# ------------------------------------------------------------------------------------------------ state

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


def init_state() -> None:
    "Once per session: the knobs start from the ULMFiT preset."
    if _knob_key("bs") not in st.session_state:
        load_knobs(presets.ULMFIT)
    st.session_state.setdefault("train_base", "ULMFiT")


def on_base_change():
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


# ------------------------------------------------------------------------------------------------ widgets

def knob_widget(name: str, lm_runs: list[str]):
    key, help_ = _knob_key(name), KNOB_HELP.get(name)
    label = {"procs": "processes (data-parallel, via accelerate)"}.get(name, name.replace("_", " ")) \
        + (" (0 = all)" if name == "max_docs" else "")
    v = st.session_state.get(key)
    if name == "clas_phases":
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
    "Every knob's widget, a tab per group; their values as a Config (raises what `Config.from_dict` raises)."
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
