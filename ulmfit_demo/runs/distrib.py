"""Several processes for one run (`procs` > 1), through Hugging Face `accelerate` and fastai's `distrib_ctx`.

The launcher starts `accelerate launch --multi_gpu --num_processes N -m ulmfit_demo.runs.worker <run_id>` instead of
the worker itself: accelerate's launcher (torch's elastic agent, in that one process) starts N copies of the worker
and watches them. The run's pid in the store is that launcher's, so when any copy dies the agent stops the others,
exits, and the start-up check marks the run INTERRUPTED; Resume continues from the last checkpoint like any run.

Inside the worker, every process runs the same `Job`. fastai's `DistributedTrainer` (via `learn.distrib_ctx`) wraps
the model in DistributedDataParallel and gives each process its share of every batch; on a GPU machine one process
per GPU (NCCL), on a CPU-only machine N processes with the gloo backend. Rank 0 alone writes: the store (metrics,
events, heartbeats, the final status), checkpoints, state.json, saved models, caches. The others wait at a barrier
where rank 0 writes files they then read (tokens, SentencePiece model, the LM encoder). The cancel flag is read by
rank 0 and shared with an all-reduce at the same step on every process, so all of them stop together.

Several machines: the app does not invent its own distribution. Accelerate's multi-node launch (`accelerate config`
with num_machines > 1, then `accelerate launch --machine_rank R --main_process_ip ... -m ulmfit_demo.runs.worker ID`
on each machine, with the home on a shared file system) runs the same worker; see README.md.
"""
import contextlib
import os
import socket
import sys

LOCAL_ENV = "LOCAL_RANK"


def world() -> int:
    "How many processes train this run (1 unless started by accelerate's launcher)."
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def is_main() -> bool:
    return rank() == 0


def distributed() -> bool:
    return world() > 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(run_id: str, procs: int) -> list[str]:
    "The command that starts `procs` workers for `run_id` through accelerate, talking over loopback."
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(int(procs)),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_ip", "127.0.0.1", "--main_process_port", str(_free_port()),
            "-m", "ulmfit_demo.runs.worker", run_id]


def available() -> str | None:
    "None if several processes can be used here, else why not (a message a person can act on)."
    try:
        import accelerate  # noqa: F401
    except ImportError:
        return ("procs > 1 needs Hugging Face accelerate, which is not installed: run `pip install -r "
                "requirements.txt` in the app's environment, or set procs to 1.")
    return None


def setup() -> None:
    """Join the process group before any work (barriers are used from tokenization on): gloo on a CPU, NCCL with
    one GPU per process on a GPU machine."""
    if not distributed():
        return
    import torch
    from accelerate import PartialState

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get(LOCAL_ENV, "0")))
    PartialState(cpu=not cuda)


def watch_launcher(every_s: float = 1.0) -> None:
    """End this process if accelerate's launcher (its parent, the run's pid in the store) dies: killed on its own,
    the launcher cannot stop its workers, and an orphan would go on training a run already marked INTERRUPTED."""
    import threading
    import time

    parent = os.getppid()

    def watch():
        while True:
            time.sleep(every_s)
            if os.getppid() != parent:
                print(f"[rank {rank()}] the launcher (pid {parent}) is gone: stopping", file=sys.stderr, flush=True)
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="watch-launcher").start()


@contextlib.contextmanager
def trainer(learn):
    """fastai's `distrib_ctx` for this run: its `DistributedTrainer` (an accelerate `Accelerator` wraps the model in
    DistributedDataParallel; each process gets its slice of every epoch). fastai's `DistributedDL` broadcasts the
    epoch's order as a CUDA tensor (NCCL only takes those); on a CPU the order goes over gloo as a CPU tensor."""
    import torch
    from fastai.distributed import DistributedDL, DistributedTrainer

    cuda = torch.cuda.is_available()

    from fastai.text.data import LMDataLoader

    class OrderDL(DistributedDL):
        def get_idxs(self):
            if not isinstance(self.dl, LMDataLoader):
                return super().get_idxs()
            # A language model's batch i+1 continues the streams of batch i, and item k of the epoch belongs to
            # batch k // bs: cut the epoch into whole batches, a contiguous block of them per process (the last
            # blocks padded with the first batches), never a batch split across processes.
            idxs = self._broadcast(list(self.dl.get_idxs()), 0)
            bs = self.dl.bs
            batches = [idxs[i:i + bs] for i in range(0, len(idxs), bs)]
            per = -(-len(batches) // self.world_size)
            padded = (batches * (per * self.world_size // max(len(batches), 1) + 1))[:per * self.world_size]
            self.n, self.n_padded = len(idxs), sum(map(len, padded))
            return [i for b in padded[self.rank * per:(self.rank + 1) * per] for i in b]

        def _broadcast(self, t, rank):
            if cuda:
                return super()._broadcast(t, rank)
            import torch.distributed as dist

            t = torch.LongTensor(t)
            dist.broadcast(t, rank)
            return t.tolist()

    class Trainer(DistributedTrainer):
        def _wrap_dl(self, dl):
            return dl if isinstance(dl, DistributedDL) else OrderDL(dl, device=self.learn.model.device)

    cb = Trainer(sync_bn=False, **({} if cuda else {"cpu": True}))  # the CPU must be asked for, or no DDP
    learn.add_cb(cb)
    try:
        yield learn
    finally:
        learn.remove_cb(cb)


def barrier() -> None:
    if distributed():
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()


def any_true(flag: bool) -> bool:
    "True on every process if it is True on any (a collective: every process must call it at the same point)."
    if not distributed():
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device="cuda" if torch.cuda.is_available() else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def unwrap(model):
    "The model inside DistributedDataParallel (what checkpoints and samples use), or the model itself."
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model


def lost_peer(e: BaseException) -> bool:
    """Whether `e` is what a process sees when another process of its run died (a collective that cannot finish),
    rather than a failure of its own."""
    try:
        import torch.distributed as dist

        if isinstance(e, dist.DistError):
            return True
    except (ImportError, AttributeError):
        pass
    msg = str(e).lower()
    return any(s in msg for s in ("connection closed by peer", "connection reset by peer", "gloo", "nccl",
                                  "broken pipe", "socket timeout"))
