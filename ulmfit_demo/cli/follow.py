"""Following a group of background runs from the terminal, as `recipe` and `curve` do: queue them with Ctrl-C held
back, then poll until every run has ended. The first Ctrl-C cancels the group (checkpoints are kept) and goes on
following it to the end; a second one stops following and leaves the runs to end by themselves. Closing the
terminal does not stop them: they are the background queue's. Progress goes to stderr, so stdout stays the result.
"""
import contextlib
import signal
import sys
import time

from ulmfit_demo.runs import launcher


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def ctrl_c_held():
    """A Ctrl-C inside the block waits until it ends (a group half queued helps nobody). Yields a list that is not
    empty once a Ctrl-C came, so the caller can cancel what it queued."""
    asked = []
    before = signal.signal(signal.SIGINT, lambda *_: asked.append(True))
    try:
        yield asked
    finally:
        signal.signal(signal.SIGINT, before)


def until_ended(report, cancel, final, cancel_msg: str, cancel_now: bool = False):
    """About once a second: the start-up check (a worker that died: INTERRUPTED, and the next queued run starts),
    then `report()`, which says what changed and returns True once every run has ended; then `final()` is the
    result. Ctrl-C: `cancel()`, saying `cancel_msg`; `cancel_now`: a Ctrl-C came while queueing."""
    cancelling = cancel_now
    if cancel_now:
        say(cancel_msg)
        cancel()
    while True:
        try:
            launcher.startup_check()
            if report():
                return final()
            time.sleep(1)
        except KeyboardInterrupt:
            if cancelling:
                say("still stopping; the runs end by themselves (`runs list` shows them)")
                return final()
            cancelling = True
            say(cancel_msg)
            cancel()
