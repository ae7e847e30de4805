"""One run's work (`Job`): its corpus tokenized once, then each stage in order (pretrain, LM fine-tuning, classifier,
or the LR finder), each fitted through `train.stages` with the store callback, checkpointed every epoch and saved
as a model. Stages that finished in an earlier attempt are skipped; the stage in progress continues from its
checkpoint. The process around it (signals, final status, the next queued run) is `worker`. A `baseline` run
(`baseline_stage`) skips all of that: scikit-learn fits the TF-IDF baseline on the raw text; so does an `ensemble`
run (`ensemble_stage`), which averages finished runs' classifiers and measures them.

About 520 lines in one class on purpose: the stages share the job's state (documents, tokenizer, source run,
device, step count, where the LM started), and splitting them apart would only pass that state around. A run of
several processes (`distrib`) runs this same class in every process: rank 0 writes, the others follow. Never imports
streamlit; fastai and torch are imported inside methods.
"""
import json
import os
import time
from pathlib import Path

from ulmfit_demo import config
from ulmfit_demo.data import corpora
from ulmfit_demo.runs import distrib, store
from ulmfit_demo.runs.baseline_stage import BaselineStage
from ulmfit_demo.runs.curve_stage import CurveStage
from ulmfit_demo.runs.ensemble_stage import EnsembleStage
from ulmfit_demo.train import precision, presets
from ulmfit_demo.train.presets import Config, ConfigError


class RunCancelled(Exception):
    "Cancel was asked for (flag in the store, SIGTERM, or Ctrl-C in the CLI)."


def _state_path(rdir: Path) -> Path:
    return rdir / "state.json"


class Job(BaselineStage, EnsembleStage, CurveStage):
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
        from ulmfit_demo import models
        from ulmfit_demo.train import stages

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

    def reporter(self, stage: str, step: int, learn, phases, tok=None, vocab=None, lm: bool = False):
        from ulmfit_demo.runs import checkpoint
        from ulmfit_demo.runs.callback import FAULT_NAN_ENV, FAULT_OOM_ENV, FaultInjector, RunReporter
        from ulmfit_demo.train import stages

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
        from ulmfit_demo.runs import checkpoint
        from ulmfit_demo.train import stages

        ck = self.ckdir / f"{stage}.pth"
        start, step, restore = (0, 0), base_step, None
        if ck.exists():
            saved = checkpoint.load(ck, map_location=self.device_type)
            meta = saved["meta"]
            start, step = (meta["phase"], meta["epochs_done"]), meta["step"]
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

        self.sink.in_fit = True
        try:
            with self.parallel(learn):
                stages.fit_phases(learn, phases, cbs=cbs, start=start, restore=restore, on_phase=on_phase,
                                  is_cancelled=lambda: rep.cancelled_fit)
        finally:
            self.sink.in_fit = False
        if rep.cancelled_fit or self.sink.stop:
            raise RunCancelled()
        return rep.step

    def parallel(self, learn):
        "fastai's distributed trainer when this run has several processes (DDP over gloo or NCCL), else nothing."
        import contextlib

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
        from ulmfit_demo import system
        from ulmfit_demo.train import stages

        if self.kind == "curve":  # a label-efficiency curve point: its own stage (`curve_stage`)
            return self.execute_curve()
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

        cfg = self.resolve_start()
        corpus, docs = self.load_docs()

        src = self.source_run()
        sp_model = None
        if cfg.pretrained == "starter":
            # The starter's pieces, copied so this run's folder stands on its own (a later run may start from it).
            from ulmfit_demo.train import starter

            sp_model = self.rdir / "spm" / "spm.model"
            if not sp_model.exists():
                config.atomic_write(sp_model, (starter.folder(cfg.backwards) / "spm.model").read_bytes())
        if src is not None:
            scfg = src["config"]
            if scfg.get("tokenizer", "word") != cfg.tokenizer:
                raise ConfigError(f"Run {src['id']} used the {scfg.get('tokenizer')} tokenizer; this run must use "
                                  f"the same one to start from its weights.")
            if cfg.tokenizer == "subword":
                # Same pieces as the weights were trained on; copied so this run's folder stands on its own
                # (a later run may start from this one).
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
        self.docs, self.tok, self.src = docs, tok, src

        stages = {"ulmfit": ["lm", "clas"], "lm": ["lm"], "clas": ["clas"], "pretrain": ["pretrain"],
                  "lr_find": ["lr_find"]}[self.kind]
        self.clas_frame = None
        if "clas" in stages:
            self.clas_frame = corpora.classifier_frame(corpora.Corpus(corpus.name, docs))
        self.total_steps = None
        for stage in stages:
            if stage in self.state["done"]:
                continue
            self.stage = stage  # what a failure message names (the worker reads it)
            getattr(self, f"stage_{stage}")()
            distrib.barrier()  # the next stage reads what rank 0 saved (the LM's encoder)
            self.check_cancel()
        models = self.state["models"]
        final = models.get("clas") or models.get("lm") or models.get("pretrain")
        metrics = {}
        for st in ("pretrain", "lm"):
            metrics.update({(f"lm_{k}" if "clas" in stages else k): v
                            for k, v in self.state["metrics"].get(st, {}).items()})
        metrics.update(self.state["metrics"].get("clas", {}))
        metrics.update(self.state["metrics"].get("lr_find", {}))
        return {"model_id": final, "metrics": metrics, "models": models}

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
        from ulmfit_demo.data import combined

        rec = combined.record(docs, self.run["corpus"], self.cfg.seed, self.cfg.max_docs)
        if not distrib.is_main():
            return
        config.atomic_write(self.rdir / "rows.json", json.dumps(rec))
        line = combined.summary(rec)
        store.update_summary(self.id, rows={"file": "rows.json", "n_rows": rec["n_rows"], "line": line,
                                            "sources": {k: v["n_rows"] for k, v in rec["sources"].items()}})
        self.sink.event("corpus", line, data={"n_rows": rec["n_rows"]})

    def _lm_steps(self, n_batches: int, phases) -> int:
        from ulmfit_demo.train import stages

        total = n_batches * sum(p.epochs for p in phases)
        if self.clas_frame is not None:
            n = int((~self.clas_frame["is_valid"]).sum()) // self.cfg.bs
            total += n * sum(p.epochs for p in stages.clas_phases(self.cfg))
        return total

    def resolve_start(self) -> Config:
        """Resolve `pretrained="auto"` once (WT103, else the bundled starter, else scratch) and keep the answer in the
        run's state, so a resumed run starts from the same weights with the same shape."""
        from ulmfit_demo.train import start

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

    def start_weights(self, stage: str):
        "(state dict, vocab) to start the LM from, or None (from scratch), with the reason recorded as an event."
        import torch

        from ulmfit_demo.train import pretrained

        cfg = self.cfg
        if stage == "pretrain":
            self.sink.event("from_scratch", "Stage 1: the language model is pretrained from scratch on this corpus.",
                            data={"reason": "stage1"})
            return None
        if cfg.pretrained == "none":
            self.sink.event("from_scratch", "Training the language model from scratch (pretrained = 'none'): no "
                            "general-English knowledge to transfer, so expect much lower accuracy than ULMFiT's.",
                            level="warning", data={"reason": "choice"})
            return None
        if cfg.pretrained == "starter":
            from ulmfit_demo.train import starter

            wgts, vocab, _, _ = starter.load(starter.folder(cfg.backwards))
            if self.state["start"].get("source") != "starter":  # chosen explicitly: say so (auto already did)
                self.sink.event("pretrained", f"Starting from the bundled starter language model "
                                              f"({starter.folder(cfg.backwards)}).", data={"source": "starter"})
            return wgts, vocab
        if cfg.pretrained == "wt103":
            folder, tried = pretrained.find(cfg.backwards, lambda msg, frac: None)
            if folder is None:
                self.sink.event(
                    "from_scratch",
                    "No pretrained WikiText-103 weights could be found, so this run trains its language model FROM "
                    "SCRATCH and its accuracy will be far below ULMFiT's. Tried: " + "; ".join(tried) + ". To fix: "
                    + pretrained.hint(cfg.backwards), level="warning", data={"reason": "not_found", "tried": tried})
                store.update_summary(self.id, from_scratch="not_found")
                return None
            wgts, vocab = pretrained.load(folder)
            self.sink.event("pretrained", f"Starting from fastai's WikiText-103 weights ({folder}).",
                            data={"source": "wt103", "path": str(folder)})
            return wgts, vocab
        src_dir = store.run_dir(self.src["id"])
        wgts = torch.load(src_dir / "lm_model.pth", map_location="cpu", weights_only=True)
        vocab = json.loads((src_dir / "vocab.json").read_text())
        self.sink.event("pretrained", f"Starting from the language model of run {self.src['id']}.",
                        data={"source": "run", "run": self.src["id"]})
        return wgts, vocab

    def lm_data(self):
        from ulmfit_demo.train import stages

        cfg, docs = self.cfg, self.docs
        trn, val = stages.lm_split(len(docs), cfg.lm_valid_pct, cfg.seed)
        vpath = self.rdir / "vocab.json"
        if vpath.exists():  # a resumed run keeps the vocab its checkpoints index
            vocab = json.loads(vpath.read_text())
        elif cfg.pretrained == "starter":
            # The starter's vocab is its SentencePiece pieces, whole: the same rows the weights were trained on.
            from ulmfit_demo.train import starter

            vocab = json.loads((starter.folder(cfg.backwards) / "vocab.json").read_text())
            config.atomic_write(vpath, json.dumps(list(vocab)))
        else:
            vocab = stages.build_vocab(docs["tokens"].iloc[trn], cfg, self.tok.sp_model)
            config.atomic_write(vpath, json.dumps(list(vocab)))
        return stages.lm_dls(docs, (trn, val), vocab, cfg, self.device_type), vocab

    def stage_lm(self, stage: str = "lm"):
        from fastai.torch_core import set_seed

        from ulmfit_demo.train import stages

        cfg = self.cfg
        set_seed(cfg.seed, reproducible=True)
        dls, vocab = self.lm_data()
        start = self.start_weights(stage)
        learn = stages.lm_learner(dls, cfg, path=self.rdir)
        if start is not None:
            stages.load_start_weights(learn, *start)
        learn = stages.apply_precision(learn, self.precision_of())
        phases = stages.lm_phases(cfg, self.kind, pretrained=start is not None)
        self.total_steps = -(-self._lm_steps(len(dls.train), phases) // distrib.world())  # per process
        self.sink.event("stage", f"{'Pretraining' if stage == 'pretrain' else 'Fine-tuning'} the language model: "
                                 f"{len(vocab):,} tokens in the vocab, {len(dls.train)} batches per epoch",
                        data={"stage": stage, "vocab": len(vocab), "batches": len(dls.train), "step": 0})
        step = self.run_phases(stage, learn, phases, 0, self.tok, vocab, lm=True)
        if not distrib.is_main():  # the step count goes on in the next stage: every process must agree on it
            self.state["done"].append(stage)
            self.state["steps"][stage] = step
            return
        metrics = self.stage_metrics(stage)
        stages.save_start_files(self.rdir, learn, vocab)
        model_id = self.save_model(learn, stage, self.tok, metrics)
        self.state["done"].append(stage)
        self.state["steps"][stage] = step
        self.state["models"][stage] = model_id
        self.state["metrics"][stage] = metrics
        self.save_state()
        store.update_summary(self.id, **{stage: metrics, f"{stage}_model_id": model_id})
        self.sink.event("model", f"Saved the language model as {model_id}.", data={"stage": stage,
                                                                                  "model_id": model_id})

    def stage_pretrain(self):
        self.stage_lm("pretrain")

    def stage_clas(self):
        import torch
        from fastai.torch_core import set_seed

        from ulmfit_demo.train import stages

        cfg = self.cfg
        set_seed(cfg.seed, reproducible=True)
        lm_dir = store.run_dir(self.src["id"]) if self.kind == "clas" else self.rdir
        vocab = json.loads((lm_dir / "vocab.json").read_text())
        encoder = torch.load(lm_dir / "lm_encoder.pth", map_location="cpu", weights_only=True)
        dls = stages.clas_dls(self.clas_frame, vocab, cfg, self.device_type)
        learn = stages.clas_learner(dls, cfg, self.rdir, encoder)
        learn = stages.apply_precision(learn, self.precision_of())
        phases = stages.clas_phases(cfg)
        base = self.state["steps"].get("lm", 0)
        if self.total_steps is None:
            self.total_steps = base + -(-len(dls.train) // distrib.world()) * sum(p.epochs for p in phases)
        self.sink.event("stage", f"Training the classifier: labels {', '.join(dls.vocab[1])}, {len(dls.train)} "
                                 f"batches per epoch", data={"stage": "clas", "labels": list(dls.vocab[1]),
                                                             "batches": len(dls.train), "step": base})
        step = self.run_phases("clas", learn, phases, base)
        if not distrib.is_main():
            self.state["done"].append("clas")
            self.state["steps"]["clas"] = step
            return
        metrics = self.stage_metrics("clas")
        judged = self.judge_classifier(learn)
        metrics.update({k: v for k, v in judged["metrics"].items() if k != "accuracy"})
        model_id = self.save_model(learn, "clas", self.tok, metrics, judged)
        self.state["done"].append("clas")
        self.state["steps"]["clas"] = step
        self.state["models"]["clas"] = model_id
        self.state["metrics"]["clas"] = metrics
        self.save_state()
        store.update_summary(self.id, clas=metrics, clas_model_id=model_id)
        self.sink.event("model", f"Saved the classifier as {model_id}.", data={"stage": "clas",
                                                                              "model_id": model_id})

    def judge_classifier(self, learn) -> dict:
        "The classifier beside the baseline fitted on the same split, calibrated, and on out-of-domain sentences."
        from ulmfit_demo.train import evaluate

        t0 = time.time()
        out = evaluate.judge_learner(learn, self.clas_frame, self.tok, self.cfg.backwards, self.cfg.seed)
        msg = evaluate.summary(out["metrics"], int((~self.clas_frame["is_valid"]).sum()))
        self.sink.event("judge", msg + f" ({time.time() - t0:.0f}s)", data=dict(out["metrics"]))
        return out

    def stage_lr_find(self):
        import torch
        from fastai.torch_core import set_seed

        from ulmfit_demo.runs.callback import RunReporter
        from ulmfit_demo.train import stages

        cfg = self.cfg
        set_seed(cfg.seed, reproducible=True)
        if cfg.lr_find_stage == "lm":
            dls, vocab = self.lm_data()
            start = self.start_weights("lm")
            learn = stages.lm_learner(dls, cfg, path=self.rdir)
            if start is not None:
                stages.load_start_weights(learn, *start)
            stages.set_trainable(learn, stages.lm_phases(cfg, "lm", start is not None)[0].freeze_to)
        else:
            if self.src is not None:
                lm_dir = store.run_dir(self.src["id"])
                vocab = json.loads((lm_dir / "vocab.json").read_text())
                encoder = torch.load(lm_dir / "lm_encoder.pth", map_location="cpu", weights_only=True)
            else:
                vocab, encoder = stages.build_vocab(self.docs["tokens"], cfg, self.tok.sp_model), None
                self.sink.event("from_scratch", "No LM run given (pretrained='run:<id>'): the classifier's encoder "
                                "is random in this sweep.", level="warning", data={"reason": "choice"})
            frame = corpora.classifier_frame(corpora.Corpus(self.run["corpus"], self.docs))
            dls = stages.clas_dls(frame, vocab, cfg, self.device_type)
            learn = stages.clas_learner(dls, cfg, self.rdir, encoder)
        learn = stages.apply_precision(learn, self.precision_of())
        rep = RunReporter(self.sink, "lr_find", probe=True, total_steps=cfg.lr_find_iters)
        learn.add_cb(rep)
        self.sink.event("stage", f"Learning-rate sweep over {cfg.lr_find_iters} batches ({cfg.lr_find_stage})",
                        data={"stage": "lr_find", "step": 0})
        self.sink.in_fit = True
        try:
            lrs, losses, sugg = stages.find_lr(learn, cfg.lr_find_iters)
        finally:
            self.sink.in_fit = False
        if rep.cancelled_fit or self.sink.stop:
            raise RunCancelled()
        store.drop_metrics_after(self.id, -1)
        rows = []
        for i, (lr, loss) in enumerate(zip(lrs, losses)):
            rows += [("lr_find", 0, 0, i, "lr_find", "lr", lr), ("lr_find", 0, 0, i, "lr_find", "loss", loss)]
        self.sink.metrics(rows)
        best = sugg.get("valley") or next(iter(sugg.values()), None)
        self.sink.event("lr_suggestion", f"Suggested learning rate: {best:.2e} (valley)" if best else
                        "The sweep found no clear learning rate.", data={"stage": cfg.lr_find_stage, **sugg})
        self.state["done"].append("lr_find")
        self.state["metrics"]["lr_find"] = {"lr_suggestion": best} if best else {}
        self.save_state()
        store.update_summary(self.id, lr_suggestion=best, lr_suggestions=sugg, lr_find_stage=cfg.lr_find_stage)

    def precision_of(self) -> str:
        return self.device.rsplit("· ", 1)[-1]
