"""The one fastai callback that reports a run: it is how training talks to the outside (CONVENTIONS.md #2).

Every `log_every` training batches: the smoothed train loss and the learning rate of each parameter group. Every
epoch: fastai's table row (train/valid loss, accuracy, perplexity), epoch time, tokens/s, peak GPU memory; then a
checkpoint and, for language models, a sample. About once a second: the heartbeat and the cancel flag (-> fastai's
`CancelFitException`). A non-finite loss stops the run before its gradients touch the weights (`NanLoss`).

Test hooks, honoured only when set: `ULMFIT_DEMO_FAULT_NAN_AT=N` turns the loss of global training step N into NaN
(through `FaultInjector`, upstream of the check); `ULMFIT_DEMO_FAULT_OOM_AT=N` raises `torch.cuda.OutOfMemoryError` at
global training step N, from inside the fit, as a GPU that runs out of memory would;
`ULMFIT_DEMO_TEST_BATCH_DELAY=seconds` sleeps after each batch, so
tests can kill, cancel or reload the page mid-epoch of a tiny model.
"""
import math
import os
import time

from fastai.callback.core import Callback, CancelFitException
from fastai.learner import Recorder

from ulmfit_demo.runs import distrib

FAULT_NAN_ENV = "ULMFIT_DEMO_FAULT_NAN_AT"
FAULT_OOM_ENV = "ULMFIT_DEMO_FAULT_OOM_AT"
DELAY_ENV = "ULMFIT_DEMO_TEST_BATCH_DELAY"


class NanLoss(RuntimeError):
    "The loss stopped being a number: the run fails with a message, and no checkpoint of broken weights is written."


class Sink:
    "Where reports go. The worker's writes to the store; the CLI's also draws a progress bar."
    def metrics(self, rows: list[tuple]) -> None: ...
    def heartbeat(self, **progress) -> None: ...
    def cancelled(self) -> bool: return False
    def event(self, kind: str, message: str = "", level: str = "info", data: dict | None = None) -> None: ...


class FaultInjector(Callback):
    """Test hook: at one global step, a NaN loss (`fault="nan"`) or CUDA running out of memory (`fault="oom"`).
    Runs before `RunReporter` so the real checks are what stop the run."""
    order = Recorder.order - 5

    def __init__(self, at_step: int, reporter: "RunReporter", fault: str = "nan"):
        self.at_step, self.reporter, self.fault = at_step, reporter, fault

    def after_loss(self):
        if self.training and self.reporter.step + 1 == self.at_step:
            if self.fault == "oom":
                import torch

                raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (simulated by {FAULT_OOM_ENV}). Tried to "
                                                  f"allocate 2.00 GiB.")
            self.learn.loss_grad = self.learn.loss_grad * float("nan")
            self.learn.loss = self.learn.loss_grad.clone()


class RunReporter(Callback):
    "Writes a run's progress to a `Sink`, checks the cancel flag, stops on NaN, checkpoints each epoch."
    order = Recorder.order + 1  # after the Recorder: its smoothed loss and epoch values are ready
    remove_on_fetch = True

    def __init__(self, sink: Sink, stage: str, step: int = 0, log_every: int = 10, on_epoch=None,
                 total_steps: int | None = None, probe: bool = False, check_every_s: float = 1.0):
        self.sink, self.stage, self.step, self.log_every = sink, stage, step, max(1, int(log_every))
        self.on_epoch = on_epoch  # f(reporter) after the metrics of an epoch: checkpoint, sample
        self.total_steps, self.probe, self.check_every_s = total_steps, probe, check_every_s
        self.phase, self.epoch_base, self.start_epoch = 0, 0, 0
        self.cancelled_fit = False
        self.rate = None  # steps per second, measured over whole epochs once one has passed
        self._last_check = 0.0
        self._pending: list[tuple] = []
        self._delay = float(os.environ.get(DELAY_ENV, "0") or 0)
        self._gpu = None
        self._world = distrib.world()  # processes training this run (rank 0 reports)
        self._t_train, self._steps0, self._t0 = 0.0, step, time.perf_counter()

    # -- called by the stage runner
    def begin_phase(self, phase: int, epoch_base: int, start_epoch: int) -> None:
        self.phase, self.epoch_base, self.start_epoch = phase, epoch_base, start_epoch

    @property
    def stage_epoch(self) -> int:
        return self.epoch_base + self.epoch

    # -- fastai events
    def before_fit(self):
        self.cancelled_fit = False  # set only when the cancel flag stopped the fit (the LR finder cancels too)
        self._gpu = self.dls.device is not None and getattr(self.dls.device, "type", str(self.dls.device)) == "cuda"
        self._check(force=True)

    def before_epoch(self):
        self._t_epoch, self._tokens, self._t_train, self._steps0 = time.perf_counter(), 0, 0.0, self.step
        if self._gpu:
            import torch

            torch.cuda.reset_peak_memory_stats()

    def before_train(self):
        self._t0 = time.perf_counter()

    def after_loss(self):
        # On CPU `.item()` is free; on a GPU it is a sync point, so there the loss is checked at log points and
        # before every checkpoint instead of every batch (the weights of a NaN epoch are never saved either way).
        if self.training and (not self._gpu or (self.step + 1) % self.log_every == 0):
            # `learn.loss` (what fastai records), not `loss_grad`: fastai's TAR penalty adds the mean of an empty
            # tensor, NaN, to `loss_grad` on a one-token batch (LMDataLoader's last batch when the stream leaves
            # one token over) while its gradient, and so training, stays finite.
            loss = float(self.learn.loss.detach().float().mean().item())
            if not math.isfinite(loss):
                raise NanLoss(f"The training loss became {loss} at step {self.step + 1} ({self.stage}, epoch "
                              f"{self.stage_epoch + 1}): the learning rate is probably too high for this model. "
                              f"Lower it (the LR finder suggests one) and start again; the last good checkpoint "
                              f"is kept.")

    def after_batch(self):
        if self.training:
            self.step += 1
            self._tokens += self.xb[0].numel()
            if not self.probe and self.step % self.log_every == 0:
                t = self.stage, self.phase, self.stage_epoch, self.step
                self._pending.append((*t, "batch", "loss", _num(self.recorder.losses[-1])))
                for g, h in enumerate(self.opt.hypers):
                    self._pending.append((*t, "batch", f"lr/{g}", float(h["lr"])))
                self._flush()
            if self._delay:
                time.sleep(self._delay)
        self._check()

    def after_train(self):
        self._t_train = time.perf_counter() - self._t0

    def after_epoch(self):
        if self.epoch < self.start_epoch or self.probe:
            return  # an epoch fastai skipped to resume (SkipToEpoch still fires after_epoch)
        t = self.stage, self.phase, self.stage_epoch, self.step
        rows = []
        names = self.recorder.metric_names[1:-1]
        for name, v in zip(names, self.recorder.values[-1] if self.recorder.values else []):
            split, metric = ("train", "loss") if name == "train_loss" else ("valid", "loss") if name == "valid_loss" \
                else ("valid", name)
            rows.append((*t, split, metric, _num(v)))
        elapsed = time.perf_counter() - self._t_epoch
        rows.append((*t, "epoch", "time", elapsed))
        if self._t_train > 0:  # every process reads as many tokens as this one (DistributedDL evens them out)
            rows.append((*t, "epoch", "tokens_per_s", self._tokens * self._world / self._t_train))
        if self._gpu:
            import torch

            rows.append((*t, "epoch", "gpu_mem_mb", torch.cuda.max_memory_allocated() / 2**20))
        self._pending.extend(rows)
        self._flush()
        losses = [v for (*_, split, metric, v) in rows if metric == "loss"]
        if any(v is None or not math.isfinite(v) for v in losses):
            raise NanLoss(f"The loss became NaN during epoch {self.stage_epoch + 1} of {self.stage}: the learning "
                          f"rate is probably too high. Lower it and start again; the last good checkpoint is kept.")
        if self.step > self._steps0 and elapsed > 0:
            self.rate = (self.step - self._steps0) / elapsed
        if self.on_epoch is not None:
            self.on_epoch(self)
        self.sink.heartbeat(stage=self.stage, step=self.step, total_steps=self.total_steps, rate=self.rate)

    def after_fit(self):
        self._flush()

    # -- helpers
    def _flush(self):
        if self._pending:
            rows, self._pending = self._pending, []
            self.sink.metrics(rows)

    def _check(self, force: bool = False):
        now = time.monotonic()
        if self._world > 1:
            # Several processes: all of them must look at the flag at the same step (a collective), so the check
            # goes by training steps, not by the clock.
            if not force and not (self.training and self.step % self.log_every == 0):
                return
        elif not force and now - self._last_check < self.check_every_s:
            return
        self._last_check = now
        rate = self.rate
        if rate is None and self._t_train == 0 and self.step > self._steps0:
            rate = (self.step - self._steps0) / max(time.perf_counter() - self._t0, 1e-9)  # first epoch: so far
        self.sink.heartbeat(stage=self.stage, step=self.step, total_steps=self.total_steps, rate=rate)
        stop = self.sink.cancelled()
        if self._world > 1:
            stop = distrib.any_true(stop)
        if stop:
            self._flush()
            self.cancelled_fit = True
            raise CancelFitException()


def _num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else float("nan")
