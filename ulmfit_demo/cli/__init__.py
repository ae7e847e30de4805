"""`python -m ulmfit_demo ...`: the same jobs as the app, for scripts. Each command group lives in its own module
with a `register(subparsers)` function; JSON output (`--json`) is the stable interface."""
import argparse
import importlib
import sys

# Each command and the module that registers and runs it, in the order `--help` lists them.
COMMANDS = {"data": "data", "tokenize": "tokenize", "models": "models", "predict": "models", "generate": "models",
            "train": "train", "runs": "train", "recipe": "recipe", "curve": "curve"}
MODULES = list(dict.fromkeys(COMMANDS.values()))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser. With `command`, only the parser of its module; the other commands are bare names, so
    usage lines and errors read the same. Each module imports what its commands need at its top: this keeps
    `data list` from loading what `train` or `predict` need (measured here: 0.44 s instead of 0.52 s of CPU).
    `--help`, no command or an unknown one build them all."""
    p = argparse.ArgumentParser(prog="python -m ulmfit_demo", description="ULMFiT Studio from the command line.")
    sub = p.add_subparsers(dest="command", required=True)
    only = COMMANDS.get(command)
    for m in MODULES:
        if only is None or m == only:
            importlib.import_module(f"ulmfit_demo.cli.{m}").register(sub)
        else:
            for name in (n for n, mod in COMMANDS.items() if mod == m):
                sub.add_parser(name)
    return p


def fail(msg: str, code: int = 1) -> int:
    "One line on stderr saying what went wrong; the exit code says that it did."
    print(f"error: {msg}", file=sys.stderr)
    return code


class Bar:
    """A text progress bar on stderr, so stdout stays the result alone. On a terminal it redraws one line; in a log
    (no terminal) it writes a line per 10% instead of thousands of carriage returns."""
    def __init__(self):
        self.last = ""
        self.tty = sys.stderr.isatty()
        self.logged = -1

    def __call__(self, msg, frac):
        if not self.tty:
            step = -1 if frac is None else int(frac * 10)
            if step > self.logged:
                self.logged = step
                sys.stderr.write(f"{msg} ({frac:.0%})\n" if frac is not None else f"{msg}\n")
            return
        bar = "" if frac is None else f"[{'#' * int(frac * 30):<30}] {frac:4.0%} "
        line = f"\r{bar}{msg}"[:120]
        if line != self.last:
            sys.stderr.write(line.ljust(len(self.last)))
            sys.stderr.flush()
            self.last = line

    def close(self):
        if self.tty and self.last:
            sys.stderr.write("\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    return args.func(args) or 0
