"""`python -m ulmfit_demo ...`: the same jobs as the app, for scripts. Each command group lives in its own module
with a `register(subparsers)` function, and each command is listed in COMMANDS with its module and its `--help`
line; JSON output (`--json`) is the stable interface."""
import argparse
import importlib
import sys

# The commands, in the order `--help` lists them: the module that registers and runs each, and its line in `--help`.
COMMANDS = {
    "data": ("data", "list, fetch and describe corpora"),
    "tokenize": ("tokenize", "word (and subword) tokens of a text, as fastai makes them"),
    "models": ("models", "list, export, import, rename and delete saved models"),
    "predict": ("models", "sentiment of a text, or of every row of a CSV"),
    "generate": ("models", "continue a prompt with a language model"),
    "train": ("train", "train in the foreground (same worker and store as the Train page)"),
    "runs": ("train", "list, show, cancel and resume training runs"),
    "recipe": ("recipe", "the ULMFiT recipe in one command: forward + backward ULMFiT runs, the baseline and their "
                         "ensemble, in the background queue, then one table"),
    "curve": ("curve", "the label-efficiency curve: baseline, ULMFiT and from-scratch accuracy at several numbers of "
                       "labels and seeds, in the background queue"),
}
MODULES = list(dict.fromkeys(m for m, _ in COMMANDS.values()))


def add_command(sub, name: str) -> argparse.ArgumentParser:
    "The parser of command `name`, with its line from COMMANDS."
    return sub.add_parser(name, help=COMMANDS[name][1])


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser. Only `command`'s module is imported and registers its commands; every other command is its
    name and `--help` line, which is all the usage line, the errors and `--help` show. Each module imports what its
    commands need at its top, so `data list` does not load what `train` or `predict` need, and `--help` loads none
    (measured here, CPU time: --help 0.03 s and data list 0.41 s, against about 0.45 s each when every command's
    module was imported). A word not in COMMANDS builds every module, as before."""
    p = argparse.ArgumentParser(prog="python -m ulmfit_demo", description="ULMFiT Studio from the command line.")
    sub = p.add_subparsers(dest="command", required=True)
    if command is None:  # `--help`, or no command: names and lines only
        load = set()
    else:  # a word not in COMMANDS (a typo, or a command a module registers but COMMANDS lacks): every module
        load = {COMMANDS[command][0]} if command in COMMANDS else set(MODULES)
    for m in MODULES:
        if m in load:
            importlib.import_module(f"ulmfit_demo.cli.{m}").register(sub)
        else:
            for name in (n for n, (mod, _) in COMMANDS.items() if mod == m):
                add_command(sub, name)
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
    command = next((a for a in argv if not a.startswith("-")), None)  # the top level takes no option with a value
    args = build_parser(command).parse_args(argv)
    return args.func(args) or 0
