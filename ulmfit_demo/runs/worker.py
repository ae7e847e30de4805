"""The worker: `python -m ulmfit_demo.runs.worker <run_id>` runs one run to a final status, then starts the next
queued run. The CLI's foreground `train` calls `execute` in its own process: the same code, the same store.
The run's work itself is `job.Job`; here is the process around it: the sink that reports to the store, signals,
the final status with a message a person can act on, and starting the next queued run.

Never imports streamlit. Prints fastai's epoch table and any traceback to stderr, which the launcher sends to
`runs/<id>/worker.log`. A run continues from its last complete checkpoint when it is started again (resume).
"""
import errno
import os
import signal
import sys
import time
import traceback

from ulmfit_demo import config
from ulmfit_demo.data import corpora
from ulmfit_demo.runs import distrib, launcher, store, tboard
from ulmfit_demo.runs.callback import NanLoss
from ulmfit_demo.runs.job import Job, RunCancelled
from ulmfit_demo.train.presets import ConfigError


class StoreSink:
    """The callback's reports, written to the store and mirrored to TensorBoard (`tboard`). The CLI subclasses it to
    draw a progress bar too."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.stop = False  # set by SIGTERM / Ctrl-C
        self.in_fit = False
        self.tb = tboard.Writer(run_id, warn=lambda msg: self.event("tensorboard", msg, level="warning"))

    def metrics(self, rows):
        # TensorBoard first: its file opens on the first rows, purging steps after the last one the store kept.
        self.tb.scalars(rows)
        store.add_metrics(self.run_id, rows)

    def heartbeat(self, **progress):
        store.heartbeat(self.run_id, **progress)
        self.progress(progress)

    def progress(self, progress: dict) -> None:
        "Hook for a progress display; the background worker has none."

    def cancelled(self) -> bool:
        return self.stop or store.cancel_requested(self.run_id)

    def event(self, kind, message="", level="info", data=None):
        store.add_event(self.run_id, kind, message, level=level, data=data)
        if kind == "sample" and data:
            self.tb.text(data.get("stage", "lm"), data.get("step", 0), message)
        print(f"[{level}] {kind}: {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        "The attempt is over: close its TensorBoard file."
        self.tb.close()


def _final_message(e: BaseException, job: Job | None = None) -> str:
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return (f"Disk full while writing {e.filename or 'a file'}: {e.strerror}. Free some space under "
                f"{config.home()} and press Resume; the last complete checkpoint is intact.")
    if type(e).__name__ == "OutOfMemoryError":
        return _oom_message(job)
    return f"{type(e).__name__}: {e}"


def _oom_message(job: Job | None) -> str:
    "Out of GPU memory: name the knobs and their values, for the stage that ran out."
    if job is None:
        return ("The GPU ran out of memory. Lower the batch size (bs) or the sequence length and start again; "
                "checkpoints of finished epochs are kept.")
    cfg, stage = job.cfg, job.stage or "training"
    seq = ("clas_seq_len", cfg.clas_seq_len) if stage == "clas" else ("seq_len", cfg.seq_len)
    return (f"The GPU ran out of memory during {stage} with batch size bs={cfg.bs} and {seq[0]}={seq[1]}. Start a "
            f"new run with a smaller bs (try {max(1, cfg.bs // 2)}) or {seq[0]} (try {max(8, seq[1] // 2)}), or "
            f"with device 'cpu'. The checkpoint of the last finished epoch is kept in "
            f"{job.ckdir} (Resume continues from it with the same settings).")


def execute(run_id: str, sink: StoreSink | None = None) -> str:
    """Run `run_id` (already RUNNING and owned by this process) to a final status, which it returns. Every ending
    is recorded: SUCCEEDED with a model, CANCELLED, or FAILED with a message a person can act on."""
    run = store.get(run_id)
    sink = sink or StoreSink(run_id)
    print(f"== run {run_id} ({run['kind']}, preset {run.get('preset')}, corpus {run['corpus']}) pid {os.getpid()} "
          f"at {time.strftime('%Y-%m-%d %H:%M:%S')}", file=sys.stderr, flush=True)
    job = None
    many = distrib.distributed()
    try:
        job = Job(run, sink)
        result = job.execute()
    except (RunCancelled, KeyboardInterrupt):
        if many and not store.cancel_requested(run_id):
            # Stopped by accelerate's launcher because another process of this run died: not a cancel. The run
            # stays RUNNING until the launcher is gone too; then the start-up check marks it INTERRUPTED.
            return _lost(run_id, "stopped by the launcher (another process of this run ended)")
        if distrib.is_main():
            store.finish(run_id, store.CANCELLED, error="Cancelled. Checkpoints of finished epochs are kept: "
                                                        "Resume continues from the last one.")
    except NanLoss as e:
        store.finish(run_id, store.FAILED, error=str(e))
    except (ConfigError, corpora.CorpusError) as e:
        store.finish(run_id, store.FAILED, error=str(e))
    except Exception as e:  # noqa: BLE001 - whatever it was, the run must end FAILED with the reason
        traceback.print_exc()
        if many and distrib.lost_peer(e):
            return _lost(run_id, f"lost another process of this run ({type(e).__name__})")
        store.finish(run_id, store.FAILED, error=_final_message(e, job))
    else:
        if distrib.is_main():
            store.finish(run_id, store.SUCCEEDED, model_id=result["model_id"],
                         summary={"metrics": result["metrics"], "models": result["models"]})
    finally:
        sink.close()
    final = store.get(run_id)
    print(f"== run {run_id} ended {final['status']}" + (f": {final['error']}" if final["error"] else ""),
          file=sys.stderr, flush=True)
    return final["status"]


def _lost(run_id: str, why: str) -> str:
    print(f"== run {run_id}: process {distrib.rank()} of {distrib.world()} {why}; the run is interrupted and "
          f"Resume continues it from its last checkpoint", file=sys.stderr, flush=True)
    return store.INTERRUPTED


class PeerSink:
    """The sink of processes other than rank 0 in a run of several processes: rank 0 reports for all of them; these
    only print their own events to their log and heed SIGTERM (the cancel flag reaches them from rank 0)."""

    def __init__(self, run_id: str):
        self.run_id, self.stop, self.in_fit = run_id, False, False

    def metrics(self, rows): ...
    def heartbeat(self, **progress): ...
    def progress(self, progress): ...
    def close(self): ...

    def cancelled(self) -> bool:
        return self.stop

    def event(self, kind, message="", level="info", data=None):
        print(f"[rank {distrib.rank()}] [{level}] {kind}: {message}", file=sys.stderr, flush=True)


def _on_sigterm(sink: StoreSink):
    def handler(signum, frame):
        sink.stop = True
        if not sink.in_fit:  # outside fit no callback looks at the flag: stop here
            raise RunCancelled()
    return handler


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m ulmfit_demo.runs.worker RUN_ID", file=sys.stderr)
        return 2
    run_id = store.check_id(argv[0])
    try:
        # Several processes: accelerate's launcher (our parent) is the run's process in the store; rank 0 checks
        # that the run still waits for it, the others follow rank 0.
        owner = os.getppid() if distrib.distributed() else os.getpid()
        if distrib.is_main() and not store.attach(run_id, owner):
            print(f"run {run_id} is not waiting for a worker (status {(store.get(run_id) or {}).get('status')}); "
                  f"nothing to do", file=sys.stderr)
            return 0
        if distrib.distributed():
            distrib.watch_launcher()
        distrib.setup()
        sink = StoreSink(run_id) if distrib.is_main() else PeerSink(run_id)
        signal.signal(signal.SIGTERM, _on_sigterm(sink))
        status = execute(run_id, sink)
        return 0 if status == store.SUCCEEDED else 1
    finally:
        # One job at a time: whoever ends a run starts the next queued one.
        if distrib.is_main():
            launcher.start_next()


if __name__ == "__main__":
    raise SystemExit(main())
