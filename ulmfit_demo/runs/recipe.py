"""The ULMFiT recipe in one go, as four runs of the store queued at once: a forward `ulmfit` run (LM fine-tuning, then
the classifier with gradual unfreezing), the same run reading backwards (same corpus and seed: the same split), the
TF-IDF `baseline` on that split, and an `ensemble` run averaging the forward and backward classifiers, measured on
the rows they validated on. The queue runs one job at a time, oldest first, so the ensemble starts after both
members ended: the orchestration lives in the store and survives the CLI or the browser going away.

The runs share a `recipe` entry in their summary (`{"id", "role", "preset", "tiny"}`) and the preset label
"Full recipe · <preset>"; `status(group)` reads them back into one table. `TINY` shrinks the same runs to a few
batches per stage (config overrides only: the same code path), which is what CI runs.

`estimate` times a few language-model batches of a config's shape on this machine and extrapolates over the corpus:
what the CLI says on a CPU before it starts. Nothing here imports torch or fastai at module level (the page imports
this module).
"""
import math
import time
from dataclasses import dataclass, field

from ulmfit_demo import system
from ulmfit_demo.data import corpora
from ulmfit_demo.models import starter
from ulmfit_demo.runs import launcher, store, views
from ulmfit_demo.train import precision, presets, stages
from ulmfit_demo.train.presets import Config, ConfigError
from ulmfit_demo.train.tokens import Tok

PRESET_LABEL = "Full recipe"
# In queue order. The table lists them as the recipe reads: the two models, their ensemble, then the yardstick.
ROLES = ("forward", "backward", "baseline", "ensemble")
TABLE_ORDER = ("forward", "backward", "ensemble", "baseline")
KINDS = {"forward": "ulmfit", "backward": "ulmfit", "baseline": "baseline", "ensemble": "ensemble"}
ROLE_NAMES = {"forward": "forward ULMFiT", "backward": "backward ULMFiT", "ensemble": "ensemble (fwd + bwd)",
              "baseline": "baseline (TF-IDF + LR)"}

# A few batches per stage: 100 reviews (about 80 labelled for training), a one-layer AWD-LSTM of 16/32 units on word
# tokens from scratch, one epoch per phase (LM warm-up + unfrozen; classifier head, last two groups, all).
TINY = dict(max_docs=100, tokenizer="word", emb_sz=16, n_hid=32, n_layers=1, bs=16, seq_len=32, clas_seq_len=32,
            min_freq=1, max_vocab=2000, pretrained="none", lm_frozen_epochs=1, lm_frozen_lr=1e-2, lm_epochs=1,
            lm_lr=5e-3, clas_phases=({"freeze_to": -1, "epochs": 1, "lr": 2e-2},
                                     {"freeze_to": -2, "epochs": 1, "lr": 1e-2},
                                     {"freeze_to": 0, "epochs": 1, "lr": 5e-3}),
            cpu_threads=1, log_every=5, sample_words=5)


@dataclass
class Plan:
    "What `submit_recipe` will queue: the preset chosen (and why) and each role's config, validated."
    dataset: str
    preset: str  # "ULMFiT", "Quick" or "Custom"
    why: str
    tiny: bool
    cuda: bool
    configs: dict = field(default_factory=dict)  # role -> Config (the ensemble's members are filled in at submit)


def choose_preset(preset: str, cuda: bool) -> tuple[str, str]:
    "(preset name, why): 'auto' is ULMFiT on a GPU (mixed precision), Quick on a CPU."
    p = str(preset or "auto").lower()
    if p == "auto":
        if cuda:
            return "ULMFiT", "GPU found: the seeds' ULMFiT preset, in mixed precision (precision 'auto')."
        return "Quick", ("No GPU: using the Quick preset (the bundled starter's small AWD-LSTM, one LM epoch). "
                         "--preset ulmfit forces the seeds' full schedule.")
    name = next((k for k in ("ULMFiT", "Quick") if k.lower() == p), None)
    if name is None:
        raise ConfigError(f"Unknown preset {preset!r} for the recipe: pick ulmfit or quick.")
    where = "on the GPU, in mixed precision" if cuda else f"on the CPU, in {precision.cpu_default()[0]}"
    return name, f"Preset {name} (asked for), {where}."


def plan(dataset: str, preset: str = "auto", tiny: bool = False, corpus=None, base: Config | None = None,
         cuda: bool | None = None) -> Plan:
    """Choose the preset and validate every run of the recipe against the corpus; stores nothing. `base` (the Train
    page's Custom form) replaces the preset's config. Raises `ConfigError` / `corpora.CorpusError`."""
    corpus = corpus if corpus is not None else corpora.load(dataset)
    cuda = system.device_info()["device"] == "cuda" if cuda is None else cuda
    if base is not None:
        name, why = "Custom", "The settings of the Custom form."
    else:
        name, why = choose_preset(preset, cuda)
        base = presets.preset(name)
    if tiny:
        base = base.with_(**TINY)
        why += " Tiny: a few batches per stage (--tiny), to check the whole path."
    base = base.with_(backwards=False, members="", procs=1)
    p = Plan(dataset, name, why, tiny, cuda, {"forward": base, "backward": base.with_(backwards=True),
                                              "baseline": base, "ensemble": base})
    for role in ("forward", "backward", "baseline"):
        launcher.validate(KINDS[role], p.configs[role], corpus)
    # The members do not exist yet: their ids are checked against the store when the ensemble is queued.
    presets.validate(base.with_(members="forward,backward"), "ensemble", corpus, cuda=cuda)
    return p


def submit_recipe(dataset: str, preset: str = "auto", tiny: bool = False, corpus=None, base: Config | None = None,
                  planned: Plan | None = None) -> dict:
    """Queue the recipe's four runs (the first starts at once if nothing else runs). Returns `{"recipe": group id,
    "runs": {role: run id}, "preset", "why"}`. Refused with `ConfigError`/`CorpusError` before anything is stored."""
    corpus = corpus if corpus is not None else corpora.load(dataset)
    p = planned or plan(dataset, preset, tiny, corpus=corpus, base=base)
    group = "recipe-" + store.new_id()
    label = f"{PRESET_LABEL} · {p.preset}" + (" · tiny" if p.tiny else "")
    ids = {}
    try:
        for role in ROLES:
            cfg = p.configs[role]
            if role == "ensemble":
                cfg = cfg.with_(members=f"{ids['forward']},{ids['backward']}")
            ids[role] = launcher.submit(KINDS[role], cfg, dataset, preset=label, corpus=corpus)
            store.update_summary(ids[role], recipe={"id": group, "role": role, "preset": p.preset, "tiny": p.tiny})
    except BaseException:
        for rid in ids.values():  # all or nothing: a half-queued recipe would never finish
            launcher.cancel(rid)
        raise
    return {"recipe": group, "runs": ids, "preset": p.preset, "why": p.why, "dataset": dataset, "tiny": p.tiny}


def runs_of(group: str, runs: list[dict] | None = None) -> dict:
    "The recipe's runs by role (from `runs`, or the store)."
    out = {}
    for r in runs if runs is not None else store.list_runs(limit=5000):
        rec = (r.get("summary") or {}).get("recipe") or {}
        if rec.get("id") == group:
            out[rec.get("role")] = r
    return out


def recipes(runs: list[dict] | None = None) -> list[str]:
    "Recipe group ids, newest first."
    seen = []
    for r in runs if runs is not None else store.list_runs(limit=5000):
        g = ((r.get("summary") or {}).get("recipe") or {}).get("id")
        if g and g not in seen:
            seen.append(g)
    return seen


def cancel(group: str) -> None:
    "Cancel every queued or running run of the recipe (checkpoints are kept; each can be resumed)."
    for r in runs_of(group).values():
        if r["status"] in store.ACTIVE:
            launcher.cancel(r["id"])


def _accuracy(role: str, r: dict) -> float | None:
    s = r.get("summary") or {}
    m = s.get("ensemble" if role == "ensemble" else "baseline" if role == "baseline" else "clas") or {}
    v = m.get("accuracy", (s.get("metrics") or {}).get("accuracy"))
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _n_valid(role: str, r: dict) -> int | None:
    s = r.get("summary") or {}
    m = s.get("ensemble" if role == "ensemble" else "baseline" if role == "baseline" else "clas") or {}
    v = m.get("n_valid", (s.get("metrics") or {}).get("n_valid"))
    return int(v) if isinstance(v, (int, float)) else None


def status(group: str, runs: list[dict] | None = None) -> dict:
    """The recipe as one table: per model its run, status, validation accuracy, time, device and precision (from
    the runs' records). `{"recipe", "dataset", "preset", "status", "runs", "models", "accuracies", "table",
    "ensemble"}`; `status` is SUCCEEDED when all four did, RUNNING/QUEUED while one is active, else the first
    ending that was not a success."""
    by_role = runs_of(group, runs)
    if not by_role:
        raise ConfigError(f"There is no recipe {group!r}.")
    ens = by_role.get("ensemble")
    es = (ens or {}).get("summary") or {}
    # The ensemble's run scored it and each member in one pass of the app's inference over the same texts.
    in_pass = {rid: a for rid, a in (es.get("member_accuracy") or {}).items()}
    if ens is not None and _accuracy("ensemble", ens) is not None:
        in_pass[ens["id"]] = _accuracy("ensemble", ens)
    rows = []
    for role in TABLE_ORDER:
        r = by_role.get(role)
        if r is None:
            continue
        dev = (r.get("device") or "").split(" · ")
        rows.append({"model": ROLE_NAMES[role], "role": role, "run": r["id"], "status": r["status"],
                     "accuracy": _accuracy(role, r), "inference_accuracy": in_pass.get(r["id"]),
                     "n_valid": _n_valid(role, r),
                     "seconds": round(views.duration(r), 1) if views.duration(r) is not None else None,
                     "time": views.fmt_duration(views.duration(r)), "device": dev[0],
                     "precision": " · ".join(dev[1:]), "model_id": r.get("model_id"),
                     "backwards": bool(r["config"].get("backwards")) if role != "baseline" else None,
                     "start": (r.get("summary") or {}).get("start"), "error": r.get("error")})
    statuses = [by_role[role]["status"] for role in ROLES if role in by_role]
    if any(s == store.RUNNING for s in statuses):
        overall = store.RUNNING
    elif any(s == store.QUEUED for s in statuses):
        overall = store.QUEUED
    elif all(s == store.SUCCEEDED for s in statuses) and len(statuses) == len(ROLES):
        overall = store.SUCCEEDED
    else:
        overall = next((s for s in statuses if s != store.SUCCEEDED), store.FAILED)
    first = next(iter(by_role.values()))
    rec = first["summary"]["recipe"]
    return {"recipe": group, "dataset": first["corpus"], "preset": rec.get("preset"), "tiny": rec.get("tiny"),
            "status": overall,
            "runs": {role: r["id"] for role, r in by_role.items()},
            "models": {row["role"]: row["model_id"] for row in rows},
            "accuracies": {row["role"]: row["accuracy"] for row in rows},
            "table": rows,
            "ensemble": {"model_id": ens.get("model_id"), "member_runs": es.get("member_runs"),
                         "member_accuracy": es.get("member_accuracy")} if ens else None}


INFERENCE_NOTE = ("'in one pass': the ensemble and its members scored together by the app's inference (the Sentiment "
                  "page's path) on the same texts. 'accuracy': each run's own figure, for the ULMFiT runs fastai's "
                  "validation metric, whose padded batches can change a text's verdict (see models.inference._encode); "
                  "the app's inference never does, so a model near its decision boundary can differ by a few texts.")


def table_text(st: dict) -> str:
    "`status` as a table for the terminal."
    head = ["model", "accuracy", "in one pass", "valid texts", "time", "device", "precision", "status", "run"]
    body = [[row["model"], f"{row['accuracy']:.4f}" if row["accuracy"] is not None else "—",
             f"{row['inference_accuracy']:.4f}" if row["inference_accuracy"] is not None else "",
             f"{row['n_valid']:,}" if row["n_valid"] is not None else "—", row["time"] or "—",
             row["device"] or "—", row["precision"] or "—", row["status"], row["run"]] for row in st["table"]]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [f"ULMFiT recipe {st['recipe']} on {st['dataset']} ({st['preset']}{', tiny' if st.get('tiny') else ''}): "
           f"{st['status']}", line(head), line(["-" * w for w in widths])] + [line(b) for b in body]
    n = {row["n_valid"] for row in st["table"] if row["n_valid"] is not None}
    if len(n) == 1:
        out.append(f"Every accuracy is on the same {n.pop():,} validation texts (the runs' own split).")
    if any(row["inference_accuracy"] is not None for row in st["table"]):
        out.append(INFERENCE_NOTE)
    for row in st["table"]:
        if row["error"] and row["status"] != store.SUCCEEDED:
            out.append(f"{row['model']}: {row['error']}")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ CPU estimate

def human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} seconds"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def probe_rate(cfg: Config, vocab_sz: int, tokens: int = 512, batches: int = 2, budget_s: float = 5.0) -> dict:
    """Training tokens per second of an AWD-LSTM LM of `cfg`'s shape on this CPU: one warm-up batch of random tokens,
    then up to `batches` timed ones (forward, backward, optimizer step), fewer once they pass `budget_s`. A batch has
    `cfg.bs` rows (at most `tokens` / 8) of at most `cfg.seq_len` tokens, about `tokens` in all: shorter than
    training's, so the probe takes seconds. `{"tokens_per_s", "batches", "rows", "seq_len", "vocab", "precision"}`."""
    import torch
    from fastai.text.all import AWD_LSTM, get_language_model

    stages.set_threads(cfg)
    torch.manual_seed(0)
    rows = max(1, min(cfg.bs, tokens // 8))
    seq_len = max(2, min(cfg.seq_len, tokens // rows))
    model = get_language_model(AWD_LSTM, vocab_sz, config=stages.lm_config(cfg), drop_mult=cfg.drop_mult_lm)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=cfg.wd)
    # Timed in the precision the run would train in on this CPU (bf16 where measured to pay: 1.3-1.45x).
    prec = precision.cpu_precision(cfg.precision)

    def step():
        x = torch.randint(vocab_sz, (rows, seq_len))
        y = torch.randint(vocab_sz, (rows, seq_len))
        model.reset()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
            out = model(x)[0]
        torch.nn.functional.cross_entropy(out.float().reshape(-1, vocab_sz), y.reshape(-1)).backward()
        opt.step()
        opt.zero_grad()

    step()  # warm-up: first-call allocations are not the steady rate
    t0, n = time.perf_counter(), 0
    while n < batches and (n == 0 or time.perf_counter() - t0 < budget_s):
        step()
        n += 1
    return {"tokens_per_s": rows * seq_len * n / (time.perf_counter() - t0), "batches": n, "rows": rows,
            "seq_len": seq_len, "vocab": vocab_sz, "precision": prec}


def _tokens_per_word(cfg: Config, texts: list[str]) -> tuple[float | None, str]:
    "(tokens per whitespace word of the run's tokenizer on `texts`, how it was counted)."
    words = sum(len(t.split()) for t in texts)
    if not words:
        return None, "no words"
    if cfg.tokenizer == "word":
        tok = Tok("word")
    else:
        spm = starter.folder() / "spm.model"
        if cfg.pretrained not in ("auto", "starter") or not spm.exists():
            return None, "SentencePiece is trained by the run itself, so tokens are counted as whitespace words"
        tok = Tok("subword", spm)
    n = sum(len(t) for t in tok.tokenize(texts))
    return n / words, f"{n / words:.2f} {cfg.tokenizer} tokens per word, counted on {len(texts)} of its texts"


def estimate(cfg: Config, corpus, runs: int = 2, label: str = "") -> dict:
    """How long `runs` ULMFiT runs of `cfg` on `corpus` would train on this CPU: `probe_rate` applied to the training
    tokens of every epoch of both stages (the LM's texts less its validation share; the classifier's labelled
    training texts), validation passes left out. Measured, then extrapolated; `text` says how."""
    df = presets.sample_docs(corpus.df, cfg.max_docs, cfg.seed)
    df = df[df["text"].str.strip() != ""].reset_index(drop=True)
    sample = df["text"].sample(n=min(32, len(df)), random_state=0).tolist()
    ratio, how = _tokens_per_word(cfg, sample)
    words = df["text"].str.split().str.len()
    lm_tokens = float(words.sum()) * (1 - cfg.lm_valid_pct) * (ratio or 1.0)
    try:
        clas = corpora.classifier_frame(corpora.Corpus(corpus.name, df))
        clas_tokens = float(clas.loc[~clas["is_valid"], "text"].str.split().str.len().sum()) * (ratio or 1.0)
    except corpora.CorpusError:
        clas_tokens = 0.0
    lm_ep = cfg.lm_frozen_epochs + cfg.lm_epochs
    clas_ep = sum(int(p["epochs"]) for p in cfg.clas_phases)
    vocab = cfg.max_vocab if cfg.tokenizer == "word" else cfg.sp_vocab_sz
    rate = probe_rate(cfg, vocab)
    seconds = runs * (lm_tokens * lm_ep + clas_tokens * clas_ep) / rate["tokens_per_s"]
    text = (f"{label or 'These settings'}: about {human(seconds)} on this CPU for the forward and backward runs "
            f"(an extrapolation: {rate['batches']} timed LM batch{'es' if rate['batches'] > 1 else ''} of "
            f"{rate['rows']} x {rate['seq_len']} tokens, AWD-LSTM {cfg.emb_sz}/{cfg.n_hid}/{cfg.n_layers} with a "
            f"{vocab:,}-token vocabulary, ran at {rate['tokens_per_s']:,.0f} tokens/s in {rate['precision']} "
            f"(training's batches of "
            f"{cfg.bs} x {cfg.seq_len} are longer, which if anything runs faster per token); applied to "
            f"{lm_tokens / 1e6:,.2f}M LM tokens x {lm_ep} epochs and {clas_tokens / 1e6:,.2f}M classifier tokens x "
            f"{clas_ep} epochs (at the LM's rate), x {runs} runs, validation not counted; {how}).")
    return {"seconds": seconds, **rate, "lm_tokens": lm_tokens, "clas_tokens": clas_tokens, "lm_epochs": lm_ep,
            "clas_epochs": clas_ep, "tokens_per_word": ratio, "runs": runs, "text": text}
