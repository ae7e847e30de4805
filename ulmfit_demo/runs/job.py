"""One run's work (`Job`): the machinery every run kind shares, and the dispatch to the kind's stages. Shared: the
config, the run folder and its `state.json` (stages done, their steps, models and figures, where the LM started),
the store (heartbeat, summary, metrics read back), events through the sink, cancelling, and for the fastai stages
fitting phases with the store callback, checkpointed every epoch and resumed from the last one, then saving the
learner as a model. The process around it (signals, final status, the next queued run) is `worker`.

What each kind does is its stage module, mixed into `Job` (they share its state): `lm_stage` (`lm`, `pretrain`),
`clas_stage` (`clas`), `lr_find_stage` (`lr_find`); an `ulmfit` run is the LM stage then the classifier's, on one
tokenizing of its corpus (`execute_stages`). `baseline_stage`, `ensemble_stage` and `curve_stage` are kinds with a
flow of their own (no tokenizing for the first two). Stages that finished in an earlier attempt are skipped; the
stage in progress continues from its checkpoint. A run of several processes (`distrib`) runs this same class in
every process: rank 0 writes, the others follow. Never imports streamlit; imports fastai (the store callback).
"""
import contextlib
import json
import os
import time
from pathlib import Path

from ulmfit_demo import config, models, system
from ulmfit_demo.data import combined, corpora
from ulmfit_demo.models import starter
from ulmfit_demo.runs import checkpoint, distrib, store
from ulmfit_demo.runs.baseline_stage import BaselineStage
from ulmfit_demo.runs.callback import FAULT_NAN_ENV, FAULT_OOM_ENV, FaultInjector, RunReporter
from ulmfit_demo.runs.clas_stage import ClasStage
from ulmfit_demo.runs.curve_stage import CurveStage
from ulmfit_demo.runs.ensemble_stage import EnsembleStage
from ulmfit_demo.runs.lm_stage import LMStage
from ulmfit_demo.runs.lr_find_stage import LrFindStage
from ulmfit_demo.train import precision, presets, stages, start
from ulmfit_demo.train.presets import Config, ConfigError

# The stages of the kinds that tokenize their corpus and fit fastai learners (`execute_stages`), in order.
KIND_STAGES = {"ulmfit": ["lm", "clas"], "lm": ["lm"], "clas": ["clas"], "pretrain": ["pretrain"],
               "lr_find": ["lr_find"]}


class RunCancelled(Exception):
    "Cancel was asked for (flag in the store, SIGTERM, or Ctrl-C in the CLI)."


def _state_path(rdir: Path) -> Path:
    return rdir / "state.json"


class Job(LMStage, ClasStage, LrFindStage, BaselineStage, EnsembleStage, CurveStage):
    """One run: data -> stages -> models. Stages that finished in an earlier attempt are skipped; the stage in
    progress continues from its checkpoint (`checkpoints/<stage>.pth`)."""

    def __init__(self, run: dict, sink):  # sink: a worker.StoreSink (the CLI's draws a bar too)
        self.run, self.sink = run, sink
        self.id, self.kind = run["id"], run["kind"]
        self.cfg = Config.from_dict(run["config"])
        self.rdir = store.run_dir(self.id)
        self.ckdir = self.rdir / "checkpoints"
        self.stage = None  # the stage in progress
        p = _state_path(self.rdir)
        self.state = json.loads(p.read_text()) if p.exists() else {"done": [], "steps": {}, "models": {},
                                                                    "metrics": {}}

    # ------------------------------------------------------------------------------------------------ helpers
    def save_state(self):
        if distrib.is_main():  # several processes: rank 0 keeps the run's files
            config.atomic_write(_state_path(self.rdir), json.dumps(self.state, indent=2))

    def check_cancel(self):
        if self.sink.cancelled():
            raise RunCancelled()

    def source_run(self) -> dict | None:
        p = self.cfg.pretrained
        if not str(p).startswith("run:"):
            return None
        src = store.get(p[4:])
        if src is None or not (store.run_dir(src["id"]) / "lm_model.pth").exists():
            raise ConfigError(f"pretrained={p!r}: that run has no finished language model to start from. Pick a "
                              f"run whose LM stage succeeded.")
        return src

    def stage_metrics(self, stage: str) -> dict:
        "The stage's last epoch row, read back from the store (also right after a resume that had nothing left)."
        df = store.metrics(self.id)
        df = df[(df["stage"] == stage) & df["split"].isin(["train", "valid"])]
        if df.empty:
            return {}
        last = df[df["step"] == df["step"].max()]
        out = {}
        for _, r in last.iterrows():
            key = {"train": "train_loss"}.get(r["split"], "valid_loss") if r["name"] == "loss" else r["name"]
            if r["value"] == r["value"] and r["value"] is not None:  # NULL/NaN: no value
                out[key] = float(r["value"])
        return out

    def save_model(self, learn, stage: str, tok, metrics: dict, judged: dict | None = None) -> str:
        kind = "classifier" if stage == "clas" else "language_model"
        what = {"clas": "classifier", "lm": "fine-tuned LM", "pretrain": "pretrained LM"}[stage]
        tail = f" {what} ({self.run.get('preset') or 'Custom'}, run {self.id})"
        corpus = self.run["corpus"]
        room = max(8, 80 - len(tail))  # a model name holds 80 characters: a long combined corpus is shortened
        name = (corpus if len(corpus) <= room else corpus[:room - 1] + "…") + tail
        try:
            return models.save_learner(
                learn, kind=kind, name=name, corpus=self.run["corpus"], run_id=self.id,
                arch=stages.arch_meta(self.cfg, stage), tokenizer=tok.meta, metrics=metrics,
                extra={"stage": stage, "preset": self.run.get("preset"), "backwards": self.cfg.backwards,
                       "config": self.cfg.to_dict(), "device": self.device,
                       "start": self.state.get("start", {}).get("source")},
                calibration=(judged or {}).get("calibration"),
                judge={"ood": judged["ood"]} if judged and judged.get("ood") else None)
        except OSError:
            raise
        except Exception as e:  # noqa: BLE001 - a model that cannot be saved fails the run, with the reason
            raise RuntimeError(f"Training of the {what} finished, but saving the model failed: "
                               f"{type(e).__name__}: {e}") from e

    # ------------------------------------------------------------------------------------------------ fitting
    def reporter(self, stage: str, step: int, learn, phases, tok=None, vocab=None, lm: bool = False):
        def on_epoch(rep):
            if not distrib.is_main():  # rank 0 checkpoints and samples for every process of the run
                return
            meta = {"stage": stage, "phase": rep.phase, "epochs_done": rep.epoch + 1, "step": rep.step,
                    "stage_epoch": rep.stage_epoch}
            checkpoint.save(self.ckdir / f"{stage}.pth", learn, meta)
            if lm and not self.cfg.backwards and self.cfg.sample_words > 0:
                wrapped = learn.model
                learn.model = distrib.unwrap(wrapped)  # sampling is not a collective: outside DDP
                try:
                    text = stages.sample_text(learn, tok, vocab, self.cfg.sample_prompt, self.cfg.sample_words,
                                              self.cfg.seed)
                finally:
                    learn.model = wrapped
                self.sink.event("sample", text, data={"stage": stage, "epoch": rep.stage_epoch + 1,
                                                      "step": rep.step, "prompt": self.cfg.sample_prompt})

        rep = RunReporter(self.sink, stage, step=step, log_every=self.cfg.log_every, on_epoch=on_epoch,
                          total_steps=self.total_steps)
        cbs = [rep]
        if os.environ.get(FAULT_NAN_ENV):
            cbs.append(FaultInjector(int(os.environ[FAULT_NAN_ENV]), rep))
        if os.environ.get(FAULT_OOM_ENV):
            cbs.append(FaultInjector(int(os.environ[FAULT_OOM_ENV]), rep, fault="oom"))
        return rep, cbs

    def run_phases(self, stage: str, learn, phases, base_step: int, tok=None, vocab=None, lm=False) -> int:
        "Fit `phases`, continuing from this stage's checkpoint if there is one. Returns the global step after."
        ck = self.ckdir / f"{stage}.pth"
        resume_at, step, restore = (0, 0), base_step, None
        if ck.exists():
            saved = checkpoint.load(ck, map_location=self.device_type)
            meta = saved["meta"]
            resume_at, step = (meta["phase"], meta["epochs_done"]), meta["step"]
            restore = lambda l, with_opt: checkpoint.restore(l, saved, with_opt)  # noqa: E731
            self.sink.event("resumed", f"Continuing {stage} from its checkpoint after epoch {meta['stage_epoch'] + 1}"
                                       f" (step {step}).", data=meta)
        dropped = store.drop_metrics_after(self.id, step) if distrib.is_main() else 0
        if dropped:
            self.sink.event("resumed", f"Dropped {dropped} metric rows written after step {step}; those batches run again.")
        rep, cbs = self.reporter(stage, step, learn, phases, tok, vocab, lm)
        bases = [sum(p.epochs for p in phases[:i]) for i in range(len(phases))]

        def on_phase(i, ph, e0):
            rep.begin_phase(i, bases[i], e0)
            self.sink.event("phase", ph.label, data={"stage": stage, "phase": i, "label": ph.label,
                                                     "step": rep.step if e0 == 0 else None, "epochs": ph.epochs,
                                                     "start_epoch": e0, "lr": ph.lr, "freeze_to": ph.freeze_to,
                                                     "discriminative": ph.lr_div is not None})

        def fit():
            with self.parallel(learn):
                stages.fit_phases(learn, phases, cbs=cbs, start=resume_at, restore=restore, on_phase=on_phase,
                                  is_cancelled=lambda: rep.cancelled_fit)

        self.fitting(rep, fit)
        return rep.step

    def fitting(self, rep, fit):
        "`fit()` with the sink told that a fit runs; a cancel asked for during it ends the run (`RunCancelled`)."
        self.sink.in_fit = True
        try:
            out = fit()
        finally:
            self.sink.in_fit = False
        if rep.cancelled_fit or self.sink.stop:
            raise RunCancelled()
        return out

    def parallel(self, learn):
        "fastai's distributed trainer when this run has several processes (DDP over gloo or NCCL), else nothing."
        return distrib.trainer(learn) if distrib.distributed() else contextlib.nullcontext()

    def rank0_first(self, fn):
        "`fn()` on rank 0, then (once its files are written) on the other processes; returns its result."
        if not distrib.is_main():
            distrib.barrier()
        out = fn()
        if distrib.is_main():
            distrib.barrier()
        return out

    # ------------------------------------------------------------------------------------------------ run
    def execute(self) -> dict:
        "The run's work, by its kind; returns its final model id, metrics and models."
        own = {"baseline": self.execute_baseline, "ensemble": self.execute_ensemble, "curve": self.execute_curve}
        return own.get(self.kind, self.execute_stages)()

    def execute_stages(self) -> dict:
        "A kind of `KIND_STAGES`: device, starting weights, the corpus tokenized once, then each stage not yet done."
        self.setup_device()
        self.resolve_start()
        corpus, docs = self.load_docs()
        src = self.source_run()
        docs, tok = self.tokenize(docs, src)
        self.docs, self.tok, self.src = docs, tok, src

        todo = KIND_STAGES[self.kind]
        self.clas_frame = None
        if "clas" in todo:
            self.clas_frame = corpora.classifier_frame(corpora.Corpus(corpus.name, docs))
        self.total_steps = None
        for stage in todo:
            if stage in self.state["done"]:
                continue
            self.stage = stage  # what a failure message names (the worker reads it)
            getattr(self, f"stage_{stage}")()
            distrib.barrier()  # the next stage reads what rank 0 saved (the LM's encoder)
            self.check_cancel()
        saved = self.state["models"]
        final = saved.get("clas") or saved.get("lm") or saved.get("pretrain")
        metrics = {}
        for st in ("pretrain", "lm"):
            metrics.update({(f"lm_{k}" if "clas" in todo else k): v
                            for k, v in self.state["metrics"].get(st, {}).items()})
        metrics.update(self.state["metrics"].get("clas", {}))
        metrics.update(self.state["metrics"].get("lr_find", {}))
        return {"model_id": final, "metrics": metrics, "models": saved}

    def setup_device(self):
        "Threads, device and precision for this run, said in its events (and a GPU gone since, loudly)."
        cfg = self.cfg
        stages.set_threads(cfg)
        dev, prec = stages.resolve_device(cfg)
        self.device_type = dev
        info = system.device_info()
        self.device = f"{info['name'] if dev == info['device'] else 'CPU'} · {prec}"
        if distrib.is_main():
            store.heartbeat(self.id, device=self.device + (f" · {distrib.world()} processes" if distrib.distributed()
                                                           else ""))
        self.sink.event("device", f"Training on {self.device}", data={"device": dev, "precision": prec, **info})
        if cfg.device == "auto" and cfg.precision == "fp16" and dev == "cpu":
            self.sink.event("precision", "fp16 asked for, but there is no GPU: training in fp32.", level="warning")
        elif dev == "cpu" and cfg.precision == "auto":
            self.sink.event("precision", f"Training in {prec} on the CPU: {precision.cpu_default()[1]}.",
                            data={"precision": prec})
        before = self.state.get("device_type")
        if dev == "cpu" and (cfg.device == "cuda" or before == "cuda"):
            said = "asks for the GPU" if cfg.device == "cuda" else "trained on the GPU before"
            self.sink.event("device", f"This run {said}, but torch sees no GPU now (driver or device gone?): "
                                      f"continuing on the CPU in fp32, which is much slower. Cancel it and resume "
                                      f"once the GPU is back to use it again.", level="warning",
                            data={"device": "cpu", "fallback": True, "before": before or cfg.device})
        self.state["device_type"] = dev
        self.save_state()

    def tokenize(self, docs, src: dict | None):
        """(docs with their tokens, the tokenizer). Subwords start from the pieces of the weights the LM starts from
        (the starter's, or the source run's), copied so this run's folder stands on its own (a later run may start
        from it)."""
        cfg = self.cfg
        sp_model = None
        if cfg.pretrained == "starter":
            sp_model = self.rdir / "spm" / "spm.model"
            if not sp_model.exists():
                config.atomic_write(sp_model, (starter.folder(cfg.backwards) / "spm.model").read_bytes())
        if src is not None:
            scfg = src["config"]
            if scfg.get("tokenizer", "word") != cfg.tokenizer:
                raise ConfigError(f"Run {src['id']} used the {scfg.get('tokenizer')} tokenizer; this run must use "
                                  f"the same one to start from its weights.")
            if cfg.tokenizer == "subword":
                sp_model = self.rdir / "spm" / "spm.model"
                if not sp_model.exists():
                    sp_model.parent.mkdir(parents=True, exist_ok=True)
                    config.atomic_write(sp_model, (store.run_dir(src["id"]) / "spm" / "spm.model").read_bytes())
        t0 = time.time()
        self.sink.event("tokenize", f"Tokenizing {len(docs):,} texts ({cfg.tokenizer})")
        # Several processes: rank 0 tokenizes first (it writes the token cache and trains SentencePiece), the
        # others then read what it wrote.
        docs, tok = self.rank0_first(lambda: stages.tokenize_docs(docs, cfg, self.rdir, sp_model))
        self.sink.event("tokenize", f"Tokenized {len(docs):,} texts into {sum(map(len, docs['tokens'])):,} tokens "
                                    f"in {time.time() - t0:.1f}s")
        self.check_cancel()
        return docs, tok

    def load_docs(self):
        "(corpus, the run's non-empty texts): sampled as the config says and validated again (it may have changed)."
        cfg = self.cfg
        corpus = corpora.load(self.run["corpus"])
        for p in corpus.problems:
            self.sink.event("corpus", p, level="warning")
        df = corpus.df if "src_row" in corpus.df.columns else corpus.df.assign(src_row=corpus.df.index)
        docs = presets.sample_docs(df, cfg.max_docs, cfg.seed)
        docs = docs[docs["text"].str.strip() != ""].reset_index(drop=True)
        presets.validate(cfg, self.kind, corpora.Corpus(corpus.name, docs))
        self.record_rows(docs)
        if not corpora.is_combined(corpus.name):
            docs = docs.drop(columns="src_row")  # a single corpus's run reads the frame it always did
        self.check_cancel()
        return corpus, docs

    def record_rows(self, docs):
        """`rows.json` in the run folder: which rows of which corpus this run read (`combined.record`: per part, its
        counts per split x label and the row ids as ranges), and a one-line summary in the run's events and summary."""
        rec = combined.record(docs, self.run["corpus"], self.cfg.seed, self.cfg.max_docs)
        if not distrib.is_main():
            return
        config.atomic_write(self.rdir / "rows.json", json.dumps(rec))
        line = combined.summary(rec)
        store.update_summary(self.id, rows={"file": "rows.json", "n_rows": rec["n_rows"], "line": line,
                                            "sources": {k: v["n_rows"] for k, v in rec["sources"].items()}})
        self.sink.event("corpus", line, data={"n_rows": rec["n_rows"]})

    def resolve_start(self) -> Config:
        """Resolve `pretrained="auto"` once (WT103, else the bundled starter, else scratch) and keep the answer in the
        run's state, so a resumed run starts from the same weights with the same shape."""
        if "start" not in self.state:
            cfg, info = start.resolve(self.cfg, self.kind)
            self.state["start"] = {**info, "config": cfg.to_dict()}
            self.save_state()
            if info["message"]:
                data = {k: v for k, v in info.items() if k != "message"}
                if info["source"] == "none":
                    data["reason"] = "not_found"
                self.sink.event("pretrained" if info["source"] != "none" else "from_scratch", info["message"],
                                level=info["level"], data=data)
            if distrib.is_main():
                store.update_summary(self.id, start=info["source"], **({"from_scratch": "not_found"}
                                                                       if info["source"] == "none" else {}))
        self.cfg = Config.from_dict(self.state["start"]["config"])
        return self.cfg

    def precision_of(self) -> str:
        return self.device.rsplit("· ", 1)[-1]
