"""The classifier stage (`clas`): ULMFiT's stage 3, the second stage of an `ulmfit` run or a `clas` run of its own on
another run's language model. A classifier on the LM's vocab with the LM's encoder, gradual unfreezing with
discriminative learning rates (`stages.clas_phases`), checkpointed every epoch; then judged as every classifier is
(beside the baseline fitted on the same split, calibrated, on out-of-domain sentences) and saved as a model with
those figures. Mixed into `job.Job` like `baseline_stage`.
"""
import json
import time

from ulmfit_demo.data.crops import crops
from ulmfit_demo.runs import distrib, store
from ulmfit_demo.train import evaluate, stages


class ClasStage:
    def stage_clas(self):
        import torch
        from fastai.torch_core import set_seed

        cfg = self.cfg
        set_seed(cfg.seed, reproducible=True)
        lm_dir = store.run_dir(self.src["id"]) if self.kind == "clas" else self.rdir
        vocab = json.loads((lm_dir / "vocab.json").read_text())
        encoder = torch.load(lm_dir / "lm_encoder.pth", map_location="cpu", weights_only=True)
        dls = stages.clas_dls(self.clas_train_frame(), vocab, cfg, self.device_type)
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

    def clas_crops(self):
        """Short crops of the classifier's training texts (`text`, `label`), `clas_crops` of those with two or more
        sentences; none when it is 0. Seeded by the run's seed, so a resumed run crops the same. Made once per job:
        the LM stage counts them for the run's total steps, the classifier stage trains on them."""
        import pandas as pd

        if getattr(self, "_crops", None) is None:
            if float(self.cfg.clas_crops) <= 0:
                self._crops = pd.DataFrame(columns=["text", "label"])
            else:
                trn = self.clas_frame[~self.clas_frame["is_valid"]]
                self._crops = crops(trn["text"].tolist(), trn["label"].tolist(), float(self.cfg.clas_crops),
                                    self.cfg.seed)
        return self._crops

    def clas_train_frame(self):
        """The classifier's rows: `clas_frame` plus its crops (`clas_crops`), tokenized as the rest. Judging reads
        `clas_frame` alone: crops are training rows only."""
        import pandas as pd

        frame, cr = self.clas_frame, self.clas_crops()
        if float(self.cfg.clas_crops) <= 0:
            return frame
        n_trn = int((~frame["is_valid"]).sum())
        if cr.empty:
            self.sink.event("crops", f"clas_crops={self.cfg.clas_crops:g}: no training text has two sentences of "
                                     f"three or more words to crop; training on whole texts only.", level="warning")
            return frame
        cr = cr.assign(tokens=self.tok.tokenize(cr["text"].tolist()), is_valid=False)
        self.sink.event("crops", f"Added {len(cr):,} short crops (one or two sentences, with their text's label) to "
                                 f"the {n_trn:,} training texts.", data={"crops": len(cr), "texts": n_trn})
        return pd.concat([frame, cr[[c for c in cr.columns if c in frame.columns]]], ignore_index=True)

    def judge_classifier(self, learn) -> dict:
        "The classifier beside the baseline fitted on the same split, calibrated, and on out-of-domain sentences."
        t0 = time.time()
        out = evaluate.judge_learner(learn, self.clas_frame, self.tok, self.cfg.backwards, self.cfg.seed)
        msg = evaluate.summary(out["metrics"], int((~self.clas_frame["is_valid"]).sum()))
        self.sink.event("judge", msg + f" ({time.time() - t0:.0f}s)", data=dict(out["metrics"]))
        return out
