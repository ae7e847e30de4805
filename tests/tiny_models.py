"""Tiny real fastai models for tests, trained once per test process and copied into each test's home.

Three models, all saved through `models.save_learner` exactly as the training worker does:
- `lm`: a word-level AWD-LSTM language model fine-tuned for one short epoch on the demo corpus;
- `clas`: a classifier on the LM's vocab, one short epoch on the demo corpus;
- `flip`: a classifier trained on a synthetic corpus in which one word decides the label (`superb` -> positive,
  `awful` -> negative; every other word is filler; texts without either word have a coin-flip label), so
  attributions have a known right answer.
"""
import functools
import os
import random
import shutil
import tempfile
from pathlib import Path

FILLER = ("the film was a with and plot story actors scene movie it of this to in its director cast music long "
          "quite really").split()
KEY_POS, KEY_NEG = "superb", "awful"

LM_CFG = dict(emb_sz=16, n_hid=32, n_layers=2, pad_token=1, bidir=False, output_p=0.1, hidden_p=0.15, input_p=0.25,
              embed_p=0.02, weight_p=0.2, tie_weights=True, out_bias=True)
CLAS_CFG = dict(emb_sz=16, n_hid=32, n_layers=2, pad_token=1, bidir=False, output_p=0.4, hidden_p=0.3, input_p=0.4,
                embed_p=0.05, weight_p=0.5)


def demo_frame():
    from ulmfit_demo.data import corpora as datasets

    try:
        corpus = datasets.load("demo")
    except (OSError, datasets.CorpusError):  # the demo csv not written yet: the IMDb sample from the mirror
        corpus = datasets.load("imdb_sample")
    return datasets.classifier_frame(corpus)


def flip_frame(n: int = 240, seed: int = 0):
    import pandas as pd

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(4, 9))]
        pos = rng.random() < 0.5
        # A third of the texts have no key word and a coin-flip label: the model learns that without a key word
        # it cannot tell (p ~ 0.5), so leaving the key word out of a text is what moves its verdict.
        if i % 3:
            words.insert(rng.randint(0, len(words)), KEY_POS if pos else KEY_NEG)
        rows.append((" ".join(words), "positive" if pos else "negative", i % 5 == 0))
    return pd.DataFrame(rows, columns=["text", "label", "is_valid"])


def _train(home: Path) -> dict:
    import torch
    from fastai.text.all import (AWD_LSTM, TextDataLoaders, accuracy, language_model_learner,
                                 text_classifier_learner)

    from ulmfit_demo import models

    torch.set_num_threads(1)
    torch.manual_seed(0)
    random.seed(0)
    df = demo_frame()
    dls_lm = TextDataLoaders.from_df(df, text_col="text", is_lm=True, valid_col="is_valid", bs=16, seq_len=16, seed=0)
    lm = language_model_learner(dls_lm, AWD_LSTM, config=dict(LM_CFG), pretrained=False, drop_mult=0.5)
    with lm.no_bar(), lm.no_logging():
        lm.fit(1, 1e-2)
        val = lm.validate()
    ids = {}
    ids["lm"] = models.save_learner(lm, kind="language_model", name="tiny LM", corpus="demo", run_id="run-test",
                                    arch=dict(LM_CFG, drop_mult=0.5, seq_len=16), tokenizer={"kind": "word"},
                                    metrics={"perplexity": float(torch.exp(torch.tensor(val[0]))),
                                             "valid_loss": float(val[0])})
    dls = TextDataLoaders.from_df(df, text_col="text", label_col="label", valid_col="is_valid", text_vocab=dls_lm.vocab,
                                  bs=16, seq_len=16, seed=0)
    clas = text_classifier_learner(dls, AWD_LSTM, config=dict(CLAS_CFG), seq_len=16, pretrained=False,
                                   metrics=accuracy, drop_mult=0.5)
    with clas.no_bar(), clas.no_logging():
        clas.fit(1, 1e-2)
        val = clas.validate()
    ids["clas"] = models.save_learner(clas, kind="classifier", name="tiny classifier", corpus="demo",
                                      run_id="run-test", arch=dict(CLAS_CFG, drop_mult=0.5, seq_len=16),
                                      tokenizer={"kind": "word"},
                                      metrics={"valid_loss": float(val[0]), "accuracy": float(val[1])})
    fdf = flip_frame()
    dls_f = TextDataLoaders.from_df(fdf, text_col="text", label_col="label", valid_col="is_valid", bs=16, seq_len=16,
                                    seed=0, min_freq=1)
    flip = text_classifier_learner(dls_f, AWD_LSTM, config=dict(CLAS_CFG), seq_len=16, pretrained=False,
                                   metrics=accuracy, drop_mult=0.1)
    with flip.no_bar(), flip.no_logging():
        # One cycle, not a constant rate: with fit(8, 3e-2) the `awful` case sometimes ended at p 0.56-0.61 and, about
        # one test process in ten, on the wrong side; one cycle gave p >= 0.81 on all three cases over 12 seeds.
        flip.fit_one_cycle(8, 3e-2)
        val = flip.validate()
    ids["flip"] = models.save_learner(flip, kind="classifier", name="flip-word classifier", corpus="synthetic",
                                      arch=dict(CLAS_CFG, drop_mult=0.1, seq_len=16), tokenizer={"kind": "word"},
                                      metrics={"valid_loss": float(val[0]), "accuracy": float(val[1])})
    ids["sub"] = _train_subword(home, df)
    # What the trained fastai learner itself said, to compare with a reload in another process.
    with clas.no_bar():
        ref = {"text": REF_TEXT, "probs": [float(p) for p in clas.predict(REF_TEXT)[2]]}
    return {**ids, "ref": ref}


REF_TEXT = "An honest, moving film. I was not bored for a single minute!"


def _train_subword(home: Path, df) -> str:
    "A classifier on SentencePiece pieces (fastai's SubwordTokenizer), to exercise the subword path."
    from fastai.text.all import (AWD_LSTM, CategoryBlock, ColReader, ColSplitter, DataBlock, SubwordTokenizer,
                                 TextBlock, text_classifier_learner)

    from ulmfit_demo import models

    sp_dir = home / "sp"
    block = DataBlock(blocks=(TextBlock.from_df("text", tok=SubwordTokenizer(vocab_sz=200, cache_dir=sp_dir)),
                              CategoryBlock), get_x=ColReader("text"), get_y=ColReader("label"),
                      splitter=ColSplitter("is_valid"))
    dls = block.dataloaders(df, bs=16, seq_len=16)
    learn = text_classifier_learner(dls, AWD_LSTM, config=dict(CLAS_CFG), seq_len=16, pretrained=False)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-2)
    return models.save_learner(learn, kind="classifier", name="tiny subword classifier", corpus="demo",
                               arch=dict(CLAS_CFG, drop_mult=0.5, seq_len=16),
                               tokenizer={"kind": "subword", "vocab_sz": 200, "sp_model": str(sp_dir / "spm.model")},
                               metrics={})


@functools.lru_cache(maxsize=1)
def template() -> tuple[Path, dict]:
    """Train the models once per process into a private home; returns (home, ids): ids maps 'lm', 'clas', 'flip',
    'sub' to model ids, and 'ref' to the trained classifier's own `learn.predict` on REF_TEXT."""
    home = Path(tempfile.mkdtemp(prefix="tiny-models-"))
    old = os.environ.get("ULMFIT_DEMO_HOME")
    os.environ["ULMFIT_DEMO_HOME"] = str(home)
    try:
        ids = _train(home)
    finally:
        if old is None:
            os.environ.pop("ULMFIT_DEMO_HOME", None)
        else:
            os.environ["ULMFIT_DEMO_HOME"] = old
    import atexit

    atexit.register(shutil.rmtree, home, True)
    return home, ids


def install(home: Path) -> dict:
    "Copy the tiny models (folders and registry) into `home`; returns their ids (see `template`)."
    src, ids = template()
    dst = Path(home) / "models"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "models", dst, dirs_exist_ok=True)
    return dict(ids)
