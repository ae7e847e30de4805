"""The `curve` run kind: one point of the label-efficiency curve (`runs.curve`). For `labels` balanced, seeded
labelled training texts it fits each of `curve_methods` and measures it on the curve's fixed evaluation rows:

- `baseline`: TF-IDF + logistic regression (scikit-learn, seconds);
- `ulmfit`: a classifier on the encoder of the curve's LM run (`pretrained="run:<id>"`: the starter, or whatever
  `pretrained="auto"` resolved to there, fine-tuned once on the corpus), with the preset's gradual unfreezing;
- `scratch`: the same classifier, same tokens and vocab, from random weights.

The classifiers' schedule follows `curve.schedule` (optimizer steps held between `clas_min_steps` and
`clas_max_steps`), their validation set is the curve's selection rows (held-out training rows), and the weights of
the epoch with the best accuracy there are the ones measured on the evaluation rows. Each classifier is
checkpointed every epoch like any run's stage (`Job.run_phases`), so a cancelled or interrupted point resumes where
it stopped; methods already measured are not fitted again. No model is saved (a curve makes dozens of
classifiers): each method's figures go to the run's summary (`curve_results`) as soon as it is measured.
Mixed into `job.Job` like `baseline_stage`.
"""
import hashlib
import json
import time

from ulmfit_demo import config, system
from ulmfit_demo.data import corpora
from ulmfit_demo.io import atomic_torch_save, sha256
from ulmfit_demo.judge import baseline
from ulmfit_demo.runs import curve, store
from ulmfit_demo.train import stages
from ulmfit_demo.train.presets import Config, ConfigError
from ulmfit_demo.train.tokens import Tok


def _best_keeper(path, stage_label: str):
    """A fastai callback that keeps the weights of the epoch with the best validation accuracy in `path` (atomic;
    its accuracy and epoch in the file too, so a resumed point remembers the best so far). Epochs fastai skips to
    resume train no batch and are ignored."""
    import torch
    from fastai.callback.core import Callback
    from fastai.learner import Recorder

    class BestKeeper(Callback):
        order = Recorder.order + 2  # after the Recorder and the run's reporter

        def __init__(self):
            self.best = torch.load(path, map_location="cpu", weights_only=True)["meta"] if path.exists() else None

        def before_epoch(self):
            self.trained = False

        def after_batch(self):
            if self.training:
                self.trained = True

        def after_epoch(self):
            if not self.trained or not self.recorder.values:
                return
            names = self.recorder.metric_names[1:-1]
            acc = dict(zip(names, self.recorder.values[-1])).get("accuracy")
            if acc is None:
                return
            acc = float(acc)
            if self.best is None or acc > self.best["accuracy"]:
                self.best = {"accuracy": acc, "stage": stage_label}
                state = {k: v.detach().cpu().clone() for k, v in self.learn.model.state_dict().items()}
                atomic_torch_save({"meta": self.best, "model": state}, path)

    return BestKeeper()


class CurveStage:
    def execute_curve(self) -> dict:
        "A `curve` run: the point's rows, then each method not yet measured, each result stored as it comes."
        cfg = self.cfg
        corpus = corpora.load(self.run["corpus"])
        for p in corpus.problems:
            self.sink.event("corpus", p, level="warning")
        r = curve.rows(corpus, cfg)
        methods = [m.strip() for m in cfg.curve_methods.split(",") if m.strip()]
        self.sink.event("corpus", f"{len(r.labelled):,} labelled training texts ({self._counts(r.labelled)}), drawn "
                                  f"with seed {cfg.seed} from {r.pool:,}; {len(r.select):,} held-out training rows "
                                  f"choose the epoch; {len(r.eval):,} fixed evaluation rows "
                                  f"({self._counts(r.eval)})"
                                  + (f"; every text cut to its last {cfg.curve_max_words} words"
                                     if cfg.curve_max_words else ""),
                        data={"labels": len(r.labelled), "select": len(r.select), "eval": len(r.eval),
                              "pool": r.pool, "methods": methods})
        self.rows_ = r
        results = dict((store.get(self.id).get("summary") or {}).get("curve_results") or {})
        neural = [m for m in methods if m != "baseline" and m not in self.state["done"]]
        if neural:
            self._curve_setup()
        for m in methods:
            if m in self.state["done"]:
                continue
            self.stage = m
            t0 = time.time()
            res = self._curve_baseline() if m == "baseline" else self._curve_clas(m)
            res["seconds"] = round(time.time() - t0, 1)
            results[m] = res
            self.state["done"].append(m)
            self.state["metrics"][m] = res
            self.save_state()
            store.update_summary(self.id, curve_results=results, **self._headline(results))
            self.sink.event("curve_point", f"{curve.METHOD_NAMES[m]}: accuracy {res['accuracy']:.1%} on "
                                           f"{res['n_eval']:,} evaluation rows with {cfg.labels:,} labels "
                                           f"({res['seconds']:.0f}s)", data={"method": m, **res})
            self.check_cancel()
        metrics = {f"{m}_accuracy": results[m]["accuracy"] for m in methods if m in results}
        return {"model_id": None, "metrics": metrics, "models": {}}

    @staticmethod
    def _headline(results: dict) -> dict:
        "The runs list's figure for a point: ULMFiT's accuracy beside the baseline's (else the baseline's alone)."
        u, b = results.get("ulmfit"), results.get("baseline")
        if u:
            return {"clas": {"accuracy": u["accuracy"], "n_valid": u["n_eval"],
                             **({"baseline_accuracy": b["accuracy"]} if b else {})}}
        return {"baseline": {"accuracy": b["accuracy"], "n_valid": b["n_eval"]}} if b else {}

    @staticmethod
    def _counts(df) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in df["label"].value_counts().sort_index().items())

    def _texts(self, df) -> list[str]:
        return curve.cut_words(df["text"].tolist(), self.cfg.curve_max_words)

    # ------------------------------------------------------------------------------------------------ baseline
    def _curve_baseline(self) -> dict:
        import numpy as np

        r, cfg = self.rows_, self.cfg
        store.heartbeat(self.id, stage="baseline", device=getattr(self, "device", None) or "CPU · scikit-learn")
        base = baseline.fit(self._texts(r.labelled), [str(v) for v in r.labelled["label"]], seed=cfg.seed)

        def acc(df):
            col = {lab: i for i, lab in enumerate(base.labels)}
            y = np.array([col.get(str(v), -1) for v in df["label"]])
            return float((base.logits(self._texts(df)).argmax(1) == y).mean())

        return {"accuracy": round(acc(r.eval), 6), "n_eval": len(r.eval), "select_accuracy": round(acc(r.select), 6),
                "n_labels": len(r.labelled)}

    # ------------------------------------------------------------------------------------------------ classifiers
    def _curve_setup(self):
        """Device, the LM run (its tokenizer, shape and vocab: the point adopts them) and the tokens of the point's
        rows. The evaluation and selection rows are the same for every point: their tokens are cached once."""
        src = self.source_run()  # raises with a message when the LM run left no language model
        if src["status"] != store.SUCCEEDED:
            raise ConfigError(f"The curve's language-model run {src['id']} is {src['status']}"
                              + (f" ({src['error']})" if src.get("error") else "") + f": resume it "
                              f"(`python -m ulmfit_demo runs resume {src['id']}`), then this point.")
        lm_dir = store.run_dir(src["id"])
        st = json.loads((lm_dir / "state.json").read_text()) if (lm_dir / "state.json").exists() else {}
        lm_cfg = Config.from_dict((st.get("start") or {}).get("config") or src["config"])
        shape = {k: getattr(lm_cfg, k) for k in ("tokenizer", "sp_vocab_sz", "emb_sz", "n_hid", "n_layers")}
        self.cfg = cfg = self.cfg.with_(**shape)
        stages.set_threads(cfg)
        dev, prec = stages.resolve_device(cfg)
        self.device_type = dev
        info = system.device_info()
        self.device = f"{info['name'] if dev == info['device'] else 'CPU'} · {prec}"
        store.heartbeat(self.id, device=self.device)
        self.sink.event("device", f"Training on {self.device}", data={"device": dev, "precision": prec})
        self.src = src
        self.lm_dir = lm_dir
        self.vocab = json.loads((lm_dir / "vocab.json").read_text())
        sp = lm_dir / "spm" / "spm.model"
        self.tok = Tok("subword", sp) if cfg.tokenizer == "subword" else Tok("word")
        self.sink.event("pretrained", f"ULMFiT reads the language model of run {src['id']} "
                                      f"({(st.get('start') or {}).get('source', 'its start')} fine-tuned on "
                                      f"{self.run['corpus']}); from scratch uses its tokens and vocab, random weights.",
                        data={"source": "run", "run": src["id"]})
        t0 = time.time()
        r = self.rows_
        fixed = self._fixed_tokens(r)
        self.eval_toks, self.select_toks = fixed["eval"], fixed["select"]
        self.lab_toks = self.tok.tokenize(self._texts(r.labelled))
        self.tok_seconds = time.time() - t0
        self.sink.event("tokenize", f"Tokenized {len(r.labelled):,} labelled texts ({cfg.tokenizer}) in "
                                    f"{self.tok_seconds:.1f}s" + (" (evaluation and selection rows from the curve's "
                                                                  "cache)" if fixed.get("cached") else ""))
        self.check_cancel()

    def _fixed_tokens(self, r) -> dict:
        "Tokens of the evaluation and selection rows, cached under the cache folder by their texts and tokenizer."
        ev, sel = self._texts(r.eval), self._texts(r.select)
        h = hashlib.sha256()
        h.update((self.tok.kind + (sha256(self.tok.sp_model) if self.tok.kind == "subword" else "")).encode())
        for t in ev + ["\x00"] + sel:
            h.update(t.encode("utf-8", "surrogatepass") + b"\x01")
        path = config.sub("cache") / f"curve-tokens-{h.hexdigest()[:20]}.json"
        if path.exists():
            try:
                d = json.loads(path.read_text())
                if len(d["eval"]) == len(ev) and len(d["select"]) == len(sel):
                    return {**d, "cached": True}
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache file is rebuilt
        d = {"eval": self.tok.tokenize(ev), "select": self.tok.tokenize(sel)}
        config.atomic_write(path, json.dumps(d))
        return d

    def _curve_clas(self, method: str) -> dict:
        """Fit the point's classifier (`ulmfit`: the LM run's encoder; `scratch`: random weights) on the repeated
        labelled rows with the selection rows as validation, keep its best epoch, measure it on the evaluation rows."""
        import pandas as pd
        import torch
        from fastai.torch_core import set_seed

        cfg, r = self.cfg, self.rows_
        sched = curve.schedule(len(r.labelled), cfg)
        run_cfg = cfg.with_(clas_phases=tuple({**p, "epochs": e} for p, e in zip(cfg.clas_phases, sched["epochs"])))
        set_seed(cfg.seed, reproducible=True)
        lab = pd.DataFrame({"label": r.labelled["label"].astype(str).values, "tokens": self.lab_toks})
        trn = pd.concat([lab] * sched["repeat"], ignore_index=True).assign(is_valid=False)
        val = pd.DataFrame({"label": r.select["label"].astype(str).values, "tokens": self.select_toks,
                            "is_valid": True})
        frame = pd.concat([trn, val], ignore_index=True)
        dls = stages.clas_dls(frame, self.vocab, run_cfg, self.device_type)
        encoder = None
        if method == "ulmfit":
            encoder = torch.load(self.lm_dir / "lm_encoder.pth", map_location="cpu", weights_only=True)
        learn = stages.clas_learner(dls, run_cfg, self.rdir, encoder)
        learn = stages.apply_precision(learn, self.precision_of())
        best_path = self.ckdir / f"best_{method}.pth"
        keeper = _best_keeper(best_path, method)
        learn.add_cb(keeper)
        phases = stages.clas_phases(run_cfg)
        methods = [m.strip() for m in cfg.curve_methods.split(",") if m.strip() and m.strip() != "baseline"]
        base = max([self.state["steps"].get(m, 0) for m in methods if m in self.state["done"]] + [0])
        left = [m for m in methods if m not in self.state["done"]]
        self.total_steps = base + len(dls.train) * sum(p.epochs for p in phases) * len(left)
        self.sink.event("stage", f"{curve.METHOD_NAMES[method]}: {len(r.labelled):,} labels"
                                 + (f" x {sched['repeat']} per epoch" if sched["repeat"] > 1 else "")
                                 + f", {len(dls.train)} batches per epoch, epochs {'+'.join(map(str, sched['epochs']))}"
                                 f" ({len(dls.train) * sum(p.epochs for p in phases)} steps); the epoch kept is the "
                                 f"best on {len(val)} held-out training rows",
                        data={"stage": f"curve_{method}", "step": base, "schedule": sched,
                              "batches": len(dls.train)})
        t0 = time.time()
        step = self.run_phases(f"curve_{method}", learn, phases, base)
        fit_s = time.time() - t0
        best = keeper.best
        if best_path.exists():
            saved = torch.load(best_path, map_location="cpu", weights_only=True)
            learn.model.load_state_dict(saved["model"])
        self.check_cancel()
        t0 = time.time()
        test = pd.DataFrame({"label": r.eval["label"].astype(str).values, "tokens": self.eval_toks})
        eval_dl = dls.test_dl(test, with_labels=True)
        with learn.no_bar():
            loss, acc = learn.validate(dl=eval_dl)[:2]
        self.state["steps"][method] = step
        sel = (best or {}).get("accuracy")
        return {"accuracy": round(float(acc), 6), "n_eval": len(test), "eval_loss": round(float(loss), 6),
                "select_accuracy": round(sel, 6) if sel is not None else None, "n_labels": len(r.labelled),
                "steps": step - base, "epochs": sched["epochs"], "repeat": sched["repeat"],
                "fit_seconds": round(fit_s, 1), "eval_seconds": round(time.time() - t0, 1)}
