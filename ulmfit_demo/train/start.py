"""Where a run's language model starts: `Config.pretrained`, with "auto" resolved once per run.

- "wt103": fastai's WikiText-103 AWD-LSTM (`pretrained.find`: fastai's cache -> mirror -> download). Fits only the
  full AWD-LSTM shape (400/1152/3) with fastai's word tokens.
- "starter": the starter LM shipped in `assets/starter_lm` (see `models.starter`): its shape and its SentencePiece
  pieces.
- "none": from scratch. "run:<id>": the LM of an earlier run.
- "auto" (the default): WikiText-103 when the config has its shape and the weights are found; else the starter,
  adopting its shape and tokenizer (a run that cannot have WT103 is better served by a small pretrained model than
  by a large random one); else from scratch, said loudly.

`resolve` returns the config the run really trains with, plus what was chosen and why; the job stores both, so a
resumed run keeps its start and the Train page can say which it was.
"""
from ulmfit_demo.models import starter
from ulmfit_demo.train import pretrained
from ulmfit_demo.train.presets import WT103_ARCH, Config

LABELS = {"wt103": "fastai's WikiText-103 weights", "starter": "the bundled starter language model",
          "none": "from scratch", "run": "an earlier run's language model"}


def starter_fits(cfg: Config) -> bool:
    a = starter.arch(starter.folder(cfg.backwards))
    return a is not None and all(getattr(cfg, k) == v for k, v in a.items()) and cfg.tokenizer == "subword"


def adopt_starter(cfg: Config) -> Config:
    "The config with the starter's shape and tokenizer (everything else as it was); the backward one for a backward run."
    folder = starter.folder(cfg.backwards)
    c = starter.card(folder) or {}
    return cfg.with_(pretrained="starter", tokenizer="subword", sp_vocab_sz=int(c.get("sp_pieces", cfg.sp_vocab_sz)),
                     **starter.arch(folder))


def resolve(cfg: Config, kind: str, progress=None) -> tuple[Config, dict]:
    """(config to train with, `{"source": "wt103"|"starter"|"none"|"run", "message", "level", "tried"}`).
    Only "auto" is looked up; an explicit choice is kept (and checked when the job loads the weights)."""
    p = str(cfg.pretrained)
    if kind in ("pretrain", "baseline") or p != "auto":
        source = "run" if p.startswith("run:") else ("none" if kind == "pretrain" else p)
        return cfg, {"source": source, "message": "", "level": "info", "tried": []}
    tried = []
    if {k: getattr(cfg, k) for k in WT103_ARCH} == WT103_ARCH and cfg.tokenizer == "word":
        folder, tried = pretrained.find(cfg.backwards, progress or (lambda msg, frac: None))
        if folder is not None:
            return cfg.with_(pretrained="wt103"), {"source": "wt103", "level": "info", "tried": tried,
                                                   "message": f"Starting from fastai's WikiText-103 weights ({folder})."}
    else:
        tried.append("fastai's WikiText-103 weights: not tried (they fit only emb_sz 400, n_hid 1152, n_layers 3 "
                     "with word tokens)")
    folder = starter.folder(cfg.backwards)
    which = "backward starter" if cfg.backwards else "bundled starter"
    try:
        starter.check(folder)
    except starter.StarterError as e:
        tried.append(f"{which}: {e}" if (folder / starter.MANIFEST).exists() or not cfg.backwards
                     else f"{which}: none in {folder} (the bundled starter reads forwards)")
    else:
        new = adopt_starter(cfg)
        changed = {k: getattr(new, k) for k in ("tokenizer", "emb_sz", "n_hid", "n_layers", "sp_vocab_sz")
                   if getattr(new, k) != getattr(cfg, k)}
        c = starter.card(folder) or {}
        corp = starter.read_from(c)
        msg = (f"Starting from the bundled starter language model{' that reads backwards' if cfg.backwards else ''} "
               f"(AWD-LSTM {new.emb_sz}/{new.n_hid}/{new.n_layers}, SentencePiece {c.get('vocab_size', '?')} tokens, "
               f"pretrained on {c.get('tokens_seen', 0) / 1e6:.1f}M tokens of {corp}, held-out perplexity "
               f"{c.get('valid_perplexity', float('nan')):.0f}).")
        if changed:
            msg += " The run follows its shape and tokenizer: " + ", ".join(f"{k} {v}" for k, v in changed.items())
            msg += "."
        if tried:
            msg += " Before it: " + "; ".join(tried) + "."
        return new, {"source": "starter", "message": msg, "level": "info", "tried": tried, "changed": changed}
    msg = ("No pretrained language model could be used, so this run trains its language model FROM SCRATCH and its "
           "accuracy will be far below ULMFiT's. Tried: " + "; ".join(tried) + ". To fix: "
           + pretrained.hint(cfg.backwards)
           + (f" Or build the backward starter ({starter.REBUILD} --set directions=bwd), or read forwards "
              f"(backwards = false)." if cfg.backwards else ""))
    return cfg.with_(pretrained="none"), {"source": "none", "message": msg, "level": "warning", "tried": tried}


def describe(source: str | None) -> str:
    "A few words for the Train page and the CLI: where the run's language model started."
    return LABELS.get(source or "", source or "")
