"""Home: what ULMFiT is, in three steps, and what this machine has ready right now."""
import streamlit as st

from ulmfit_demo import config, models, system
from ulmfit_demo.data import corpora
from ulmfit_demo.models import starter
from ulmfit_demo.train import pretrained
from ulmfit_demo.ui import common as ui

ui.setup_page("ULMFiT Studio", ":material/school:")
st.markdown("**Teach a computer to judge movie reviews, by first teaching it to read.** ULMFiT (Howard & Ruder, "
            "2018) gets a good sentiment classifier from few labelled examples by reusing a language model.")

STAGES = [
    ("1", "General language model", "Learns English by predicting the next word of Wikipedia articles "
     "(fastai ships one pretrained on WikiText-103; this app ships a small one it pretrained itself)."),
    ("2", "Fine-tuned language model", "Keeps predicting the next word, now on movie reviews, so it picks up how "
     "reviewers write."),
    ("3", "Sentiment classifier", "Reuses that model's reading skills and learns positive vs negative from "
     "labelled reviews, unfreezing its layers gradually."),
]
boxes = "".join(
    f'<div style="flex:1;border:1px solid #d0d7de;border-radius:10px;padding:12px;background:#fafbfc">'
    f'<div style="font-size:0.8em;color:#57606a">STAGE {n}</div><div style="font-weight:600;margin:4px 0">{t}</div>'
    f'<div style="font-size:0.9em">{d}</div></div>'
    + ('<div style="align-self:center;font-size:1.6em;color:#8c959f">→</div>' if n != "3" else "")
    for n, t, d in STAGES)
st.markdown(f'<div style="display:flex;gap:10px;margin:8px 0 18px 0">{boxes}</div>', unsafe_allow_html=True)

st.subheader("On this machine now")
known = corpora.list_corpora()
have = [c["title"] for c in known if c["available"]]
missing = [c["title"] for c in known if not c["available"]]
dev = system.device_info()
c1, c2, c3, c4 = st.columns(4)
c1.metric("Corpora ready", len(have), help="\n".join(have))
c2.metric("Device", "GPU" if dev["device"] == "cuda" else "CPU", help=dev["name"])

# Every model a page can use now: the user's own, and the two shipped with the app (the bundled sentiment model, and
# the starter language model Generate writes with), so a fresh machine does not read "0" while both already work.
# The starter is listed only where language models are asked for; the bundled model wherever all are.
every = models.list_models()
own = [m for m in every if m["origin"] != "bundled"]
shipped = [m for m in every + models.list_models("language_model") if m["origin"] == "bundled"]
c3.metric("Models ready", len(own) + len(shipped),
          help=f"{len(own)} trained or imported on this machine"
          + (" + shipped with the app: " + ", ".join(m["name"] for m in shipped) if shipped else "") + ".")
sc = starter.card()
wt = pretrained.local()
c4.metric("Pretrained encoder", "WikiText-103" if wt else "starter LM" if sc else "not here",
          help=("fastai's WikiText-103 AWD-LSTM weights are in fastai's model cache: the ULMFiT preset starts from "
                "them. " if wt else "fastai's WikiText-103 weights are not in fastai's model cache: a ULMFiT run looks "
                "in the mirror and downloads them unless offline. ")
          + (f"The bundled starter language model (AWD-LSTM {sc['arch']['emb_sz']}/{sc['arch']['n_hid']}/"
             f"{sc['arch']['n_layers']}, pretrained here on {sc['tokens_seen'] / 1e6:.0f}M tokens of "
             f"{starter.read_from(sc)}) is the start of the Quick preset, and of any run that cannot have WikiText-103."
             if sc else "The bundled starter language model is missing: runs would train from scratch. "
             + pretrained.hint()))

st.caption(f"Models: {len(own)} trained here" + (f", {len(shipped)} shipped with the app (" + ", ".join(
    m["name"] for m in shipped) + "), ready on the Sentiment and Generate pages" if shipped else "") + ". "
           + f"Ready: {', '.join(have)}." + (f" Not fetched yet: {', '.join(missing)} (get them on the Data page)."
                                           if missing else "") + f" Running on {dev['name']}.")

st.subheader("Where to go")
LINKS = [
    ("pages/data.py", "Data", ":material/dataset:", "Get a corpus and see it as the model sees it: tokens and batches."),
    ("pages/tokenizers.py", "Tokenizers", ":material/text_fields:", "Type any text; compare word and subword tokens."),
    ("pages/train.py", "Train", ":material/model_training:", "Fine-tune a language model and a classifier in the background."),
    ("pages/sentiment.py", "Sentiment", ":material/sentiment_satisfied:", "Judge a review, and see which words decided it."),
    ("pages/generate.py", "Generate", ":material/edit_note:", "Let the language model write a review from a prompt."),
    ("pages/models.py", "Models", ":material/inventory_2:", "Trained models: compare, export, import, inspect mistakes; see where pretraining pays."),
]
for path, title, icon, what in LINKS:
    if (config.REPO / path).exists():
        a, b = st.columns([1, 4])
        with a:
            st.page_link(path, label=title, icon=icon)
        b.write(what)
