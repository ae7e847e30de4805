"""Generate: the fine-tuned language model writes a review from a prompt, one word at a time, and shows the
distribution each word was drawn from."""
import html

import streamlit as st

from ulmfit_demo import models
from ulmfit_demo.models import inference, kinds
from ulmfit_demo.text import decode
from ulmfit_demo.ui import common as ui
from ulmfit_demo.ui import model_widgets as mw

ui.setup_page("Generate", ":material/edit_note:")
st.caption("A language model only ever predicts the next word. Writing a review is that, repeated: predict, draw a "
           "word from the prediction, add it, predict again.")

row = mw.pick_model(kinds.GENERATE, "gen_model", "Language model", where=st.sidebar)
if row is None:
    mw.train_link("language model")
    st.stop()

ppl = inference.perplexity(row)
if row.get("card"):  # the starter shipped with the app: what it is and how it was made, from its card
    st.markdown("**In use:** " + mw.starter_about(row["card"]), unsafe_allow_html=True)
else:
    st.markdown(
        f"**In use:** {html.escape(row['name'])}, trained on "
        f"{html.escape(mw.and_(mw.corpus_words(row.get('corpus'))) or 'an unrecorded corpus')}. "
        + (f"**Perplexity {ppl:,.1f}** on held-out text at the end of training: on average the model was as unsure "
           f"of the next word as if it picked among {ppl:,.0f} equally likely words (lower is better)."
           if ppl is not None else "Its perplexity was not recorded when it was trained."),
        unsafe_allow_html=True)

DEFAULTS = {"gen_prompt": "I liked this movie because", "gen_n_words": 40, "gen_temperature": 0.75,
            "gen_n_samples": 2, "gen_seed": 0}
for k, v in DEFAULTS.items():
    st.session_state.setdefault(k, v)


def next_seed():
    st.session_state["gen_seed"] = int(st.session_state["gen_seed"]) + st.session_state["gen_n_samples"]


left, right = st.columns([3, 2])
prompt = left.text_input("Start of the review", key="gen_prompt", max_chars=500,
                         help="The model continues from here. Leave it empty to let it start a review from scratch.")
n_words = left.slider("Words to write", 5, 200, key="gen_n_words",
                      help="Counted in tokens: punctuation and the capital-letter marker count as words too.")
temperature = right.slider("Temperature", 0.1, 2.0, step=0.05, key="gen_temperature",
                           help="How adventurous the choice of each word is. Below 1 the likeliest words win more "
                                "often (safer, more repetitive); above 1 unlikely words get more chances (wilder).")
c1, c2 = right.columns(2)
n_samples = c1.number_input("Samples", 1, 5, key="gen_n_samples", help="How many different continuations to write.")
seed = c2.number_input("Seed", 0, 2**31 - 1, key="gen_seed",
                       help="The same seed with the same settings writes the same text again.")
right.button("Write different ones", key="gen_again", on_click=next_seed, icon=":material/casino:",
             help="Moves the seed on, so new samples are drawn.")


@st.cache_data(max_entries=64, show_spinner=False)
def _generate(model_id: str, stamp: str, prompt: str, n_words: int, temperature: float, n_samples: int, seed: int):
    return inference.generate(model_id, prompt, n_words=n_words, temperature=temperature, n_samples=n_samples,
                              seed=seed)


try:
    with st.spinner("Writing..."):
        res = _generate(row["id"], models.stamp(row["id"]), prompt, int(n_words), float(temperature), int(n_samples),
                        int(seed))
except models.ModelError as e:
    st.error(str(e))
    st.stop()

st.subheader("What it wrote")


SUBWORD = bool(res.get("subword"))  # SentencePiece pieces: '\u2581' starts a word, a piece without it continues one


def joined(prompt: str, tokens: list[str]) -> tuple[str, str]:
    "The prompt as typed and the words drawn after it, spaced as a person would write them."
    rest = decode.detokenize(tokens, SUBWORD)
    starts_word = not SUBWORD or not tokens or tokens[0].startswith("\u2581")
    lead = "" if not prompt.strip() or not rest or rest[0] in ".,!?;:')" or not starts_word else " "
    return prompt.strip(), lead + rest


for i, s in enumerate(res["samples"]):
    head, rest = joined(prompt, s["tokens"])
    st.markdown(f'<div style="border-left:4px solid #4c78a8;padding:6px 12px;margin:6px 0;font-size:1.1rem">'
                f'<span style="color:#57606a">Sample {i + 1} (seed {int(seed) + i}):</span> '
                f'<b><bdi>{html.escape(head)}</bdi></b><bdi>{html.escape(rest)}</bdi></div>', unsafe_allow_html=True)
st.caption("Bold: your prompt. The rest was drawn word by word; the model never writes the unknown-word token.")

st.subheader("Why that word?")
pick = 0
if len(res["samples"]) > 1:
    pick = st.selectbox("Sample", range(len(res["samples"])), key="gen_sample", format_func=lambda i: f"Sample {i + 1}")
sample = res["samples"][min(pick, len(res["samples"]) - 1)]
n = len(sample["steps"])
if st.session_state.get("gen_step", 1) > n:
    st.session_state["gen_step"] = 1
step = st.slider("Step", 1, n, key="gen_step", help="Which generated word to explain.")
info = sample["steps"][step - 1]
before = "".join(joined(prompt, sample["tokens"][:step - 1]))
word = decode.detokenize(sample["tokens"][step - 1:step], SUBWORD) or sample["tokens"][step - 1]
a, b = st.columns([2, 3])
with a:
    st.markdown(f'<div style="font-size:1.05rem"><bdi>{html.escape(before[-400:])}</bdi> '
                f'<span style="background:#e36209;color:#fff;border-radius:4px;padding:1px 5px">'
                f'{html.escape(word)}</span></div>', unsafe_allow_html=True)
    st.caption(f"Having read the text so far, the model gave every word in its vocabulary a probability. It drew "
               f"word {step} ({word!r}, orange) with probability {info['chosen_prob']:.1%}, after "
               f"temperature {float(temperature):g}.")
with b:
    st.plotly_chart(mw.topk_figure(info, f"The {len(info['top'])} likeliest next words at step {step}"),
                    key="gen_topk_chart", config={"displayModeBar": False})
