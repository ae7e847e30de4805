"""TensorBoard event files beside the run store: a tiny real run (through the worker's `execute`, so the store's sink)
is read back with TensorBoard's own `EventAccumulator` and must hold exactly the store's metric rows, at the same
steps, and the LM samples as text; a resumed run adds a file and still shows each step once; a folder that cannot be
written warns once and never fails the run."""
import os

import numpy as np
from tensorboard.backend.event_processing import event_accumulator as ea

from ulmfit_demo.runs import store, tboard, worker
from support import run_page
from test_runs import batches_per_epoch, tiny
from test_training import run_in_process


def load(folder):
    acc = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})  # 0: keep every event
    acc.Reload()
    return acc


def tb_scalars(acc) -> dict:
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def store_scalars(run_id: str) -> dict:
    "The store's rows as TensorBoard should hold them: tag -> [(step, value as float32)], in the order written."
    out = {}
    for r in store.metrics(run_id).itertuples():
        if r.value is None or r.value != r.value:
            continue
        tag = f"{r.stage}/{r.name}" if r.name.startswith("lr/") else f"{r.stage}/{r.split}/{r.name}"
        out.setdefault(tag, []).append((r.step, float(np.float32(r.value))))
    return out


def tb_samples(acc, stage="lm") -> list[tuple]:
    tag = f"{stage}/sample/text_summary"
    if tag not in acc.Tags()["tensors"]:
        return []
    return [(e.step, e.tensor_proto.string_val[0].decode()) for e in acc.Tensors(tag)]


def store_samples(run_id: str) -> list[tuple]:
    return [(e["data"]["step"], e["message"]) for e in store.events(run_id, "sample")]


def test_a_run_writes_its_metric_rows_and_lm_samples_as_tensorboard_events():
    r = run_in_process("ulmfit", tiny())
    assert r["status"] == store.SUCCEEDED, r["error"]
    rid = r["id"]
    folder = store.run_dir(rid) / "tensorboard"
    assert tboard.folder(rid) == folder
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1
    acc = load(folder)

    got, want = tb_scalars(acc), store_scalars(rid)
    assert got == want  # every row, same step, same value (to float32), nothing else
    for tag in ("lm/batch/loss", "lm/train/loss", "lm/valid/loss", "lm/valid/accuracy", "lm/valid/perplexity",
                "lm/lr/0", "lm/epoch/tokens_per_s", "clas/train/loss", "clas/valid/loss", "clas/valid/accuracy",
                "clas/lr/0", "clas/lr/1", "clas/epoch/time"):
        assert got.get(tag), f"{tag} missing from {sorted(got)}"
    assert len(got["clas/valid/accuracy"]) == 3 and len(got["lm/valid/loss"]) == 2  # one per epoch
    assert min(s for s, _ in got["clas/train/loss"]) > max(s for s, _ in got["lm/train/loss"])  # global steps

    samples = tb_samples(acc)
    assert len(samples) == 2 and samples == store_samples(rid)  # one per LM epoch, at its step, word for word
    assert all(text.strip() for _, text in samples)
    assert store.events(rid, "tensorboard") == []  # no warning: nothing went wrong

    at = run_page("pages/train.py", train_run=rid)
    shown = "\n".join(c.value for c in at.caption)
    assert str(folder) in shown and f"tensorboard --logdir {tboard.logdir()}" in shown


def test_a_resumed_run_adds_a_file_and_tensorboard_shows_each_step_once(monkeypatch):
    cfg = tiny()  # two LM epochs: a checkpoint after the first, a NaN in the second
    n = batches_per_epoch(cfg)
    monkeypatch.setenv("ULMFIT_DEMO_FAULT_NAN_AT", str(n + 3))
    r = run_in_process("lm", cfg)
    rid = r["id"]
    assert r["status"] == store.FAILED and "loss became" in r["error"], r["error"]
    assert (store.metrics(rid)["step"] > n).any()  # rows past the checkpoint, which the resume drops and rewrites
    folder = tboard.folder(rid)
    (first,) = folder.glob("events.out.tfevents.*")
    first_bytes = first.read_bytes()

    monkeypatch.delenv("ULMFIT_DEMO_FAULT_NAN_AT")
    assert store.requeue(rid) and store.claim(rid, os.getpid())
    assert worker.execute(rid) == store.SUCCEEDED
    files = sorted(folder.glob("events.out.tfevents.*"))
    assert len(files) == 2 and first in files and first.read_bytes() == first_bytes  # appended, not clobbered

    acc = load(folder)
    got, want = tb_scalars(acc), store_scalars(rid)
    assert got == want  # the first attempt's steps after the checkpoint are hidden, not drawn twice
    steps = [s for s, _ in got["lm/batch/loss"]]
    assert steps == sorted(set(steps)) and max(steps) > n + 3
    assert [s for s, _ in got["lm/valid/loss"]] == sorted(store.metrics(rid).query("split == 'valid' and "
                                                                                   "name == 'loss'")["step"])
    assert tb_samples(acc) == store_samples(rid) and len(tb_samples(acc)) == 2


def test_a_folder_that_cannot_be_written_warns_once_and_the_run_goes_on():
    rid = store.create_run("lm", tiny().to_dict(), corpus="demo")
    tboard.folder(rid).write_text("a file where the folder should be")
    sink = worker.StoreSink(rid)
    sink.metrics([("lm", 0, 0, 2, "batch", "loss", 5.0), ("lm", 0, 0, 2, "batch", "lr/0", 1e-3)])
    sink.metrics([("lm", 0, 0, 4, "batch", "loss", 4.0)])
    sink.event("sample", "the film was", data={"stage": "lm", "epoch": 1, "step": 4, "prompt": "the film"})
    sink.close()
    assert len(store.metrics(rid)) == 3  # the record is whole
    warns = store.events(rid, "tensorboard")
    assert len(warns) == 1 and warns[0]["level"] == "warning" and "TensorBoard" in warns[0]["message"]
    assert tboard.folder(rid).read_text() == "a file where the folder should be"
