"""How long each text box of the app takes to answer, per class of nasty input (#21). Not a test: it prints a table.

Every widget a presenter's audience types into is run as the page runs it (Streamlit's `AppTest`, real models: the
bundled sentiment model, the shipped starter LM), once per input class of `tests/nasty_inputs.py`, at a short length
and at the limit the page states, on a fresh home with warm caches (the model loaded, the corpus tokenized, the
SentencePiece models trained: what a presenter has after the first click). It prints, per widget, the slowest input
class found and its time; a widget answers within TARGET_S or says the input is too long.

    .venv/bin/python bench/bench_inputs.py [--threads N] [--all] [--json OUT]

Two times per page run: wall-clock seconds, and CPU seconds of the process (all its threads). On a busy machine (a
training run on the same cores, the app's own background work) the wall time grows with the load; with `--threads 1`
the CPU seconds are what the run costs, an upper bound of its wall time on an idle 2-core machine. The load average
is printed beside them. With 2 torch threads on busy cores the threads wait for each other and even CPU seconds grow
several times over (seen here: one 24k-token prediction took 2.7 CPU s on 1 thread, 49 on 2).
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("ULMFIT_DEMO_HOME", tempfile.mkdtemp(prefix="bench_inputs_"))
os.environ.setdefault("ULMFIT_DEMO_OFFLINE", "1")

TARGET_S = 2.0
SHORT = 300


def limits() -> dict:
    "The lengths each page states (read from the pages' own constants, so the bench follows them)."
    import ast

    def const(page, name):
        tree = ast.parse((REPO / "pages" / page).read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                return ast.literal_eval(node.value)
        raise KeyError(f"{page}: {name}")

    from ulmfit_demo import text as tk

    return {"review": const("sentiment.py", "MAX_REVIEW"), "whatif": const("sentiment.py", "WHATIF_MAX"),
            "prompt": 500, "tokenizers": tk.MAX_INPUT_CHARS}


def app(page: str, **state):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "pages" / page), default_timeout=600)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    if at.exception:
        raise RuntimeError(f"{page}: {at.exception}")
    return at


def timed(at, set_input) -> tuple[float, float, str]:
    """Wall and CPU seconds of one page run after `set_input(at)`, and what the page said about the input (its first
    error or warning that is not there for every input)."""
    set_input(at)
    t, c = time.perf_counter(), time.process_time()
    at.run()
    dt, dc = time.perf_counter() - t, time.process_time() - c
    if at.exception:
        return dt, dc, f"EXCEPTION {at.exception[0].message[:80]}"
    said = [e.value for e in at.error] + [w.value for w in at.warning if not w.value.startswith("You asked for")]
    return dt, dc, said[0][:90] if said else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="print every (widget, class, length) row, not only the slowest")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2: the page server's default on "
                                                          "2 cores)")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import torch

    from nasty_inputs import classes

    torch.set_num_threads(args.threads)
    lim = limits()
    load0 = os.getloadavg()
    rows = []

    def run(widget, at, set_for, lengths, extra=None):
        for n in lengths:
            for name, text in {**classes(n), **(extra or {})}.items():
                if extra and name in extra and n != lengths[0]:
                    continue
                dt, dc, said = timed(at, set_for(text))
                rows.append({"widget": widget, "class": name, "chars": len(text), "s": dt, "cpu_s": dc, "said": said})
                print(f"  {widget:<22} {name:<15} {len(text):>7,} chars {dt:6.2f} s {dc:6.2f} cpu s  {said}",
                      file=sys.stderr)

    def setter(key):
        return lambda text: (lambda at: at.text_area(key=key).set_value(text) if key != "gen_prompt"
                             else at.text_input(key=key).set_value(text))

    # Warm-up: models loaded, corpus and SentencePiece models built, as after a presenter's first click.
    sent = app("sentiment.py")
    run("Sentiment: review", sent, setter("sent_text"), [SHORT, lim["review"]],
        extra={"over_limit": ("A long review. " * 7000)[:100_000]})

    def edit(text):
        def go(at):
            at.text_area(key="sent_text").set_value(("The plot was dull but the acting was fine. " * 30)[:1000])
            at.run()
            at.text_input(key="sent_whatif_new").set_value(text)
        return go

    run("Sentiment: What-if", sent, edit, [lim["whatif"]])
    gen = app("generate.py")
    run("Generate: prompt", gen, setter("gen_prompt"), [SHORT, lim["prompt"]])
    tok = app("tokenizers.py")
    run("Tokenizers: text", tok, setter("tok_text"), [SHORT, lim["tokenizers"]],
        extra={"over_limit": "a" * 100_000})
    load1 = os.getloadavg()

    print(f"\nbench_inputs: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, load average "
          f"{load0[0]:.1f} at start, {load1[0]:.1f} at end; target {TARGET_S:g} s per answer\n")
    print(f"{'widget':<22} {'slowest class':<15} {'chars':>8} {'wall s':>7} {'cpu s':>6}  verdict (cpu s vs target)")
    for w in dict.fromkeys(r["widget"] for r in rows):
        mine = [r for r in rows if r["widget"] == w]
        worst = max(mine, key=lambda r: r["cpu_s"])
        verdict = ("ok" if worst["cpu_s"] <= TARGET_S else "OVER") + (
            f" (says: {worst['said'][:60]})" if worst["said"] else "")
        print(f"{w:<22} {worst['class']:<15} {worst['chars']:>8,} {worst['s']:>7.2f} {worst['cpu_s']:>6.2f}  {verdict}")
    if args.all:
        print()
        for r in rows:
            print(f"{r['widget']:<22} {r['class']:<15} {r['chars']:>8,} {r['s']:>7.2f} {r['cpu_s']:>6.2f}  "
                  f"{r['said'][:60]}")
    if args.json:
        Path(args.json).write_text(json.dumps({"load": [load0, load1], "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
