"""The `baseline` run kind: the TF-IDF + logistic-regression yardstick fitted on exactly the rows and split a
classifier run of the same config and corpus would use, judged as a classifier is judged, saved as a model. Mixed
into `job.Job` (it shares the job's store, sink and state); no tokenizing and no torch: it takes seconds.
"""
import time

from ulmfit_demo import models
from ulmfit_demo.data import corpora
from ulmfit_demo.judge import baseline, ood, report
from ulmfit_demo.runs import store


class BaselineStage:
    def execute_baseline(self) -> dict:
        """A `baseline` run: the same texts, rows and split a classifier run of this config and corpus would use
        (`presets.sample_docs`, then `corpora.classifier_frame`), then `stage_baseline`. No tokenizing and no torch:
        scikit-learn reads the raw text, so the run takes seconds."""
        self.device = "CPU · scikit-learn"
        store.heartbeat(self.id, device=self.device, stage="baseline", step=0, total_steps=1)
        corpus, docs = self.load_docs()
        self.clas_frame = corpora.classifier_frame(corpora.Corpus(corpus.name, docs))
        if "baseline" not in self.state["done"]:
            self.stage_baseline()
        return {"model_id": self.state["models"]["baseline"], "metrics": self.state["metrics"]["baseline"],
                "models": self.state["models"]}

    def stage_baseline(self):
        """Fit the TF-IDF + logistic-regression baseline on the classifier split's training rows and judge it on its
        validation rows as a classifier is judged: accuracy, ECE before/after temperature scaling (held-out halves,
        `calibration.cross_fit`), and the out-of-domain sentences when its labels are a positive/negative pair. Saved
        as a model of kind `baseline`, with its temperature in `meta["calibration"]` where inference applies it."""
        import numpy as np

        cfg, frame = self.cfg, self.clas_frame
        trn, val = frame[~frame["is_valid"]], frame[frame["is_valid"]]
        t0 = time.time()
        self.sink.event("stage", f"Fitting the baseline (TF-IDF word 1-2-grams + logistic regression) on "
                                 f"{len(trn):,} labelled texts; judging it on {len(val):,}",
                        data={"stage": "baseline", "step": 0, "n_train": len(trn), "n_valid": len(val)})
        base = baseline.fit(trn["text"].tolist(), [str(v) for v in trn["label"]], seed=cfg.seed)
        fit_s = time.time() - t0
        self.check_cancel()
        logits = base.logits(val["text"].tolist())
        col = {lab: i for i, lab in enumerate(base.labels)}
        y = np.array([col.get(str(v), -1) for v in val["label"]])  # -1: a label never seen in training, always wrong
        metrics = {"accuracy": float((logits.argmax(1) == y).mean()), "n_valid": int(len(val)),
                   "n_train": int(len(trn)), "fit_seconds": round(fit_s, 2)}
        seen = y >= 0
        cal = report.calibrate(logits[seen], y[seen], cfg.seed)
        if cal is not None:
            metrics.update(report.calibration_metrics(cal))
        judged = None
        smap = report.sentiment_map(base.labels)
        if smap is not None:
            res = ood.score(lambda texts: [smap[p] for p in base.predict(texts)])
            metrics.update(ood_accuracy=res["ood_accuracy"], ood_positive_rate=res["positive_rate"])
            judged = {"ood": res}
        self.check_cancel()
        name = f"{self.run['corpus'][:30]} baseline (TF-IDF + LR, run {self.id})"
        try:
            model_id = models.save_baseline(base, name=name, corpus=self.run["corpus"], run_id=self.id,
                                            metrics=metrics, calibration=cal, judge=judged,
                                            extra={"stage": "baseline", "preset": self.run.get("preset"),
                                                   "config": cfg.to_dict(), "device": self.device})
        except OSError:
            raise
        except Exception as e:  # noqa: BLE001 - a model that cannot be saved fails the run, with the reason
            raise RuntimeError(f"The baseline was fitted, but saving it failed: {type(e).__name__}: {e}") from e
        msg = f"Accuracy {metrics['accuracy']:.1%} on {len(val):,} validation texts (fitted in {fit_s:.1f}s)."
        msg += report.calibration_words(metrics)
        if "ood_accuracy" in metrics:
            msg += (f" Out-of-domain sentences: {metrics['ood_accuracy']:.1%}; {metrics['ood_positive_rate']:.0%} of "
                    f"them called positive.")
        # Its own event kind: the Train page's "judge" note reads a classifier beside its baseline.
        self.sink.event("baseline_judged", msg, data=dict(metrics))
        self.state["done"].append("baseline")
        self.state["models"]["baseline"] = model_id
        self.state["metrics"]["baseline"] = metrics
        self.save_state()
        store.heartbeat(self.id, stage="baseline", step=1, total_steps=1)
        store.update_summary(self.id, baseline=metrics, baseline_model_id=model_id)
        self.sink.event("model", f"Saved the baseline as {model_id}.", data={"stage": "baseline",
                                                                            "model_id": model_id})
