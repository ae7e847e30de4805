"""TensorBoard event files beside the run store, so a run's curves also open where ML people already look:
`tensorboard --logdir $ULMFIT_DEMO_HOME/runs` shows one TensorBoard run per training run (`runs/<id>/tensorboard/`).

Every metric row the worker writes to SQLite is also a scalar here, at the same global step: `<stage>/<split>/<name>`
(`lm/train/loss`, `clas/valid/accuracy`, `lm/batch/loss`, `lm/epoch/tokens_per_s`), the learning rate of parameter
group g as `<stage>/lr/<g>`, the LR finder's curve as `lr_find/lr` and `lr_find/loss`. LM samples are text under
`<stage>/sample`. Each attempt of a run (a resume) writes a new event file in the same folder; it opens with a purge
step, so TensorBoard hides what the store dropped on resume (rows after the checkpoint, which the replayed batches
write again) instead of drawing those steps twice.

A mirror, never the record: a failure here is reported once as a warning event and training goes on. tensorboard
(and torch's writer) is imported on first write, so importing this module stays cheap for pages.
"""
from pathlib import Path

from ulmfit_demo import config
from ulmfit_demo.runs import store

FOLDER = "tensorboard"


def logdir() -> Path:
    "What to give `tensorboard --logdir`: every run's folder is under it."
    return config.sub("runs")


def folder(run_id: str) -> Path:
    "The run's event files (the folder may not exist yet: it is made on the first write)."
    return store.run_dir(run_id) / FOLDER


def command() -> str:
    return f"tensorboard --logdir {logdir()}"


def tag(stage: str, split: str, name: str) -> str:
    "A metric row's TensorBoard tag: `lm/valid/accuracy`, `clas/lr/0` (a batch row's LR), `lr_find/loss`."
    if split == "batch" and name.startswith("lr/"):
        return f"{stage}/{name}"
    if split == stage:
        return f"{stage}/{name}"
    return f"{stage}/{split}/{name}"


class Writer:
    """One attempt's event file, opened on the first write, flushed after each batch of rows, closed at the end of the
    attempt. `warn(message)` is called once if TensorBoard cannot be written; after that this writer does nothing."""

    def __init__(self, run_id: str, warn):
        self.run_id, self.warn = run_id, warn
        self._w = None
        self.failed = False

    def _open(self):
        if self._w is None:
            from torch.utils.tensorboard import SummaryWriter

            # Hide, in the files of earlier attempts, every step after the last one the store kept.
            last = store.last_step(self.run_id)
            self._w = SummaryWriter(log_dir=str(folder(self.run_id)), purge_step=0 if last is None else last + 1)
        return self._w

    def scalars(self, rows) -> None:
        "Metric rows (stage, phase, epoch, step, split, name, value); a NULL value is left out."
        if self.failed or not rows:
            return
        try:
            w = self._open()
            for stage, _phase, _epoch, step, split, name, value in rows:
                if value is not None:
                    w.add_scalar(tag(stage, split, name), float(value), int(step))
            w.flush()
        except Exception as e:  # noqa: BLE001 - whatever it was, the run goes on without TensorBoard
            self._fail(e)

    def text(self, stage: str, step: int, text: str) -> None:
        if self.failed:
            return
        try:
            w = self._open()
            w.add_text(f"{stage}/sample", text, int(step))
            w.flush()
        except Exception as e:  # noqa: BLE001
            self._fail(e)

    def close(self) -> None:
        "Flush and close this attempt's file; a later write (same process, next attempt) opens a new one."
        w, self._w = self._w, None
        if w is not None:
            try:
                w.close()
            except Exception as e:  # noqa: BLE001
                self._fail(e)

    def _fail(self, e: BaseException) -> None:
        if self.failed:
            return
        self.failed = True
        w, self._w = self._w, None
        if w is not None:
            try:
                w.close()
            except Exception:  # noqa: BLE001 - already failing; the warning below says why
                pass
        msg = (f"TensorBoard files are not written for this run ({type(e).__name__}: {e}); training goes on and "
               f"the app's own curves are unaffected.")
        try:
            self.warn(msg)
        except Exception:  # noqa: BLE001 - the warning is best effort too
            pass
