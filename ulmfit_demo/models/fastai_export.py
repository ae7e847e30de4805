"""fastai's own format, for fastai users: a model exported as `learn.export()`'s pickle (`export_fastai`, opened with
`load_learner`), and a fastai `export.pkl` imported as a model (`import_pkl`). Opening a pickle runs it, so the
import refuses unless the person said they trust the file (`trust=True`; see `pickles` for what it would import).
"""
import os
import tempfile
from pathlib import Path

from ulmfit_demo.models.pickles import PICKLE_RISK
from ulmfit_demo.models.registry import ModelError
from ulmfit_demo.models.store import Loaded, _save_model, load, sp_model_path


def _fastai_learner(loaded: Loaded):
    """A fastai Learner around the loaded model whose DataLoaders tokenize and numericalize like training did, so
    that `load_learner(...).predict(text)` works for fastai users."""
    import pandas as pd
    from fastai.text.all import (CategoryBlock, ColReader, CrossEntropyLossFlat, DataBlock, LMLearner,
                                 SentencePieceTokenizer, TextBlock, TextLearner, Tokenizer, WordTokenizer)

    tok = loaded.meta["tokenizer"]
    if tok.get("kind") == "subword":
        tok_tfm = Tokenizer(SentencePieceTokenizer(sp_model=str(sp_model_path(loaded)), cache_dir=str(loaded.folder)),
                            sep="")
    else:
        tok_tfm = Tokenizer(WordTokenizer())
    if loaded.kind == "classifier":
        df = pd.DataFrame({"text": ["xxunk"] * len(loaded.labels), "label": loaded.labels})
        block = DataBlock(blocks=(TextBlock(tok_tfm, vocab=loaded.vocab), CategoryBlock(vocab=loaded.labels)),
                          get_x=ColReader("text"), get_y=ColReader("label"), splitter=lambda items: (list(range(len(items))), []))
        dls = block.dataloaders(df, bs=2)
        learn = TextLearner(dls, loaded.model, loss_func=CrossEntropyLossFlat())
    else:
        df = pd.DataFrame({"text": ["xxunk " * 40]})
        seq_len = int(loaded.meta.get("arch", {}).get("seq_len", 72) or 72)
        block = DataBlock(blocks=TextBlock(tok_tfm, vocab=loaded.vocab, is_lm=True, seq_len=seq_len),
                          get_x=ColReader("text"), splitter=lambda items: ([0], []))
        dls = block.dataloaders(df, bs=1, seq_len=seq_len)
        learn = LMLearner(dls, loaded.model, loss_func=CrossEntropyLossFlat())
    return learn


def export_fastai(model_id: str, out: Path) -> Path:
    "fastai's `learn.export()` pickle of the model, for fastai users (`load_learner(out)`); written atomically."
    loaded = load(model_id)
    if loaded.kind == "baseline":
        raise ModelError(f"{loaded.meta['name']!r} is a TF-IDF + logistic-regression baseline (scikit-learn), not a "
                         f"fastai model: it has no fastai export. Export it as a bundle (.zip) instead.")
    learn = _fastai_learner(loaded)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as td:
        learn.path = Path(td)
        learn.model_dir = "."
        learn.export("export.pkl")
        os.replace(Path(td) / "export.pkl", out)
    return out


def fastai_bytes(model_id: str) -> bytes:
    with tempfile.TemporaryDirectory() as td:
        return export_fastai(model_id, Path(td) / "export.pkl").read_bytes()


def import_pkl(path: Path, *, trust: bool = False, name: str | None = None, corpus: str | None = None) -> str:
    """Import fastai's `export.pkl`. Opening it runs the pickle, so without `trust=True` this refuses before the file
    is read at all."""
    path = Path(path)
    if not trust:
        raise ModelError("Refused: importing a .pkl needs an explicit trust confirmation. " + PICKLE_RISK)
    if not path.is_file():
        raise ModelError(f"No such file: {path}.")
    from fastai.text.all import LMLearner, SentencePieceTokenizer, load_learner

    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fastai's pickle warning: the person has just accepted that risk
            learn = load_learner(path, cpu=True)
    except Exception as e:  # noqa: BLE001 - any failure of a foreign pickle becomes one message
        raise ModelError(f"fastai could not load {path.name}: {type(e).__name__}: {e}") from None
    kind = "language_model" if isinstance(learn, LMLearner) else "classifier"
    tok = {"kind": "word"}
    inner = getattr(_find_tokenizer(learn), "tokenizer", None)
    if isinstance(inner, SentencePieceTokenizer):
        sp = Path(getattr(inner, "sp_model", None) or Path(inner.cache_dir) / "spm.model")
        if not sp.is_file():
            raise ModelError(f"{path.name} uses a SentencePiece tokenizer whose model file ({sp}) is not on this "
                             f"machine: it cannot be imported without it.")
        tok = {"kind": "subword", "vocab_sz": getattr(inner, "vocab_sz", None), "sp_model": str(sp)}
    vocab = learn.dls.vocab
    return _save_model(learn.model, kind=kind, name=name or path.stem, corpus=corpus or "(imported)", run_id=None,
                       arch={}, vocab=[str(v) for v in (vocab[0] if kind == "classifier" else vocab)],
                       labels=[str(c) for c in vocab[1]] if kind == "classifier" else [], tokenizer=tok, metrics={},
                       extra={"imported_from": path.name}, source="pkl")


def _find_tokenizer(learn):
    "The fastai `Tokenizer` transform inside an exported learner's DataLoaders, if there is one."
    from fastai.text.all import Tokenizer

    try:
        for tfm in learn.dls.train_ds.tfms[0].fs if hasattr(learn.dls.train_ds, "tfms") else []:
            if isinstance(tfm, Tokenizer):
                return tfm
    except (AttributeError, IndexError, TypeError):
        pass
    return None
