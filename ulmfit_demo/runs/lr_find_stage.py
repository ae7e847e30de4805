"""The `lr_find` run kind: fastai's learning-rate sweep over `lr_find_iters` batches, on the language model
(`lr_find_stage="lm"`, starting from the same weights an LM stage would) or on the classifier (on another run's
encoder, or a random one). Each batch's rate and loss go to the store as the sweep's curve; fastai's suggestions go to
the run's summary (the valley's, else the first, as `lr_suggestion`). Nothing is checkpointed or saved as a model.
Mixed into `job.Job` like `baseline_stage`.
"""
import json

from ulmfit_demo.data import corpora
from ulmfit_demo.runs import store
from ulmfit_demo.runs.callback import RunReporter
from ulmfit_demo.train import stages


class LrFindStage:
    def stage_lr_find(self):
        import torch
        from fastai.torch_core import set_seed

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
        lrs, losses, sugg = self.fitting(rep, lambda: stages.find_lr(learn, cfg.lr_find_iters))
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
