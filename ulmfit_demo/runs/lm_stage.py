"""The language-model stages: `lm` (ULMFiT's stage 2, fine-tuning on the run's corpus; the first stage of an `ulmfit`
run) and `pretrain` (stage 1, from scratch on general text). The LM starts from the weights `Job.resolve_start`
chose (WikiText-103, the bundled starter, another run's LM, or none), on a vocab kept in the run folder so a resumed
run indexes its checkpoints the same way; every epoch it is checkpointed and, forwards, samples a few words. Saved as
a model, with the files a later run starts from (`lm_model.pth`, `lm_encoder.pth`, `vocab.json`). Mixed into `job.Job`
like `baseline_stage`; `lm_data` and `start_weights` also serve the LR finder's LM sweep.
"""
import json

from ulmfit_demo import config
from ulmfit_demo.models import starter
from ulmfit_demo.runs import distrib, store
from ulmfit_demo.train import pretrained, stages


class LMStage:
    def lm_data(self):
        cfg, docs = self.cfg, self.docs
        trn, val = stages.lm_split(len(docs), cfg.lm_valid_pct, cfg.seed)
        vpath = self.rdir / "vocab.json"
        if vpath.exists():  # a resumed run keeps the vocab its checkpoints index
            vocab = json.loads(vpath.read_text())
        elif cfg.pretrained == "starter":
            # The starter's vocab is its SentencePiece pieces, whole: the same rows the weights were trained on.
            vocab = json.loads((starter.folder(cfg.backwards) / "vocab.json").read_text())
            config.atomic_write(vpath, json.dumps(list(vocab)))
        else:
            vocab = stages.build_vocab(docs["tokens"].iloc[trn], cfg, self.tok.sp_model)
            config.atomic_write(vpath, json.dumps(list(vocab)))
        return stages.lm_dls(docs, (trn, val), vocab, cfg, self.device_type), vocab

    def start_weights(self, stage: str):
        "(state dict, vocab) to start the LM from, or None (from scratch), with the reason recorded as an event."
        import torch

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

    def _lm_steps(self, n_batches: int, phases) -> int:
        "Steps of the whole run from here: this LM stage's, plus the classifier's when one follows."
        total = n_batches * sum(p.epochs for p in phases)
        if self.clas_frame is not None:
            n = (int((~self.clas_frame["is_valid"]).sum()) + len(self.clas_crops())) // self.cfg.bs
            total += n * sum(p.epochs for p in stages.clas_phases(self.cfg))
        return total

    def stage_lm(self, stage: str = "lm"):
        from fastai.torch_core import set_seed

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
