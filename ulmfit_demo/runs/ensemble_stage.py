"""The `ensemble` run kind: the classifiers of finished runs (the recipe's forward and backward ULMFiT runs) averaged
into one model (`models.ensemble`), measured on exactly the validation rows those runs validated on. Mixed into
`job.Job` like `baseline_stage`; no training and no tokenizing here: each member reads the texts as it would alone.

Queued after its members, it waits for nothing: the queue runs one job at a time, oldest first, so when it starts its
members have ended. A member that did not succeed fails it, naming that run and what to do (`launcher.check_members`,
which checks them at submit time too).

Which rows: a classifier run validates on `corpora.classifier_frame` of its texts, and its texts are
`presets.sample_docs(corpus, max_docs, seed)` without blank ones. `ensemble.evaluate_dataset` would read the whole
corpus's validation split instead (and sample it with its own seed), which differs as soon as `max_docs` is set, so
the members must share corpus, `max_docs` and `seed`, and this run rebuilds their rows the way they did.
"""
import os
import time

from ulmfit_demo.data import corpora
from ulmfit_demo.models import ensemble, registry
from ulmfit_demo.runs import store
from ulmfit_demo.runs.launcher import check_members

class EnsembleStage:
    def execute_ensemble(self) -> dict:
        "An `ensemble` run: build the members' ensemble, measure it on their validation rows, save it as a model."
        if "ensemble" not in self.state["done"]:
            # Members answer through the app's own inference path, on the CPU.
            self.device = f"CPU ({os.cpu_count()} cores) · inference"
            store.heartbeat(self.id, device=self.device, stage="ensemble", step=0)
            members = check_members(self.cfg, self.run["corpus"], finished=True)
            corpus, docs = self.load_docs()
            self.clas_frame = corpora.classifier_frame(corpora.Corpus(corpus.name, docs))
            self.stage_ensemble(members)
        return {"model_id": self.state["models"]["ensemble"], "metrics": self.state["metrics"]["ensemble"],
                "models": self.state["models"]}

    def stage_ensemble(self, members: list[dict]):
        cfg, val = self.cfg, self.clas_frame[self.clas_frame["is_valid"]]
        texts, labels = val["text"].tolist(), val["label"].astype(str).tolist()
        ids = [r["model_id"] for r in members]
        roles = ", ".join(f"run {r['id']} ({'backward ' if r['config'].get('backwards') else ''}{r['kind']})"
                          for r in members)
        name = f"{self.run['corpus'][:30]} ensemble of {len(ids)} (run {self.id})"
        ens = ensemble.plan(ids, name)
        ens.meta["run_id"] = self.id  # the registry links the model to the run that built it
        self.sink.event("stage", f"Averaging the classifiers of {roles}; measuring the ensemble and each member on "
                                 f"the {len(val):,} validation texts they validated on",
                        data={"stage": "ensemble", "step": 0, "members": [r["id"] for r in members],
                              "n_valid": len(val)})
        total = len(texts)
        store.heartbeat(self.id, stage="ensemble", step=0, total_steps=total)
        t0, last = time.time(), [0.0]

        def progress(done, _total):
            if time.time() - last[0] > 1:  # a heartbeat and a cancel check about once a second
                last[0] = time.time()
                store.heartbeat(self.id, step=done, total_steps=total,
                                rate=done / max(time.time() - t0, 1e-9) if done else None)
                self.check_cancel()

        figures = ensemble.evaluate(ens, texts, labels, progress)
        figures.update(dataset=self.run["corpus"], split="validation", n_valid=len(val), sampled=False,
                       seed=cfg.seed, max_docs=cfg.max_docs,
                       rows="the member runs' own validation rows (max_docs sample with their seed, then the "
                            "corpus's valid/test split)")
        self.check_cancel()
        seconds = round(time.time() - t0, 2)
        model_id = ensemble.save(ens, figures, extra={"run_id": self.id, "stage": "ensemble", "preset":
                                                      self.run.get("preset"), "member_runs": [r["id"] for r in members],
                                                      "config": cfg.to_dict(), "device": self.device})
        by_model = {m["id"]: m["accuracy"] for m in figures["members"]}
        metrics = {"accuracy": figures["accuracy"], "n_valid": figures["n"], "n_left_out": figures["n_left_out"],
                   "best_member_accuracy": max(by_model.values()), "eval_seconds": seconds}
        member_acc = {r["id"]: by_model.get(r["model_id"]) for r in members}
        self.sink.event("ensemble_judged", ensemble.evaluation_line(registry.read_meta(model_id)) or "",
                        data={**metrics, "member_accuracy": member_acc})
        self.state["done"].append("ensemble")
        self.state["models"]["ensemble"] = model_id
        self.state["metrics"]["ensemble"] = metrics
        self.save_state()
        store.heartbeat(self.id, stage="ensemble", step=total, total_steps=total)
        store.update_summary(self.id, ensemble=metrics, ensemble_model_id=model_id,
                             member_runs=[r["id"] for r in members], member_accuracy=member_acc)
        self.sink.event("model", f"Saved the ensemble as {model_id}.", data={"stage": "ensemble", "model_id": model_id})
