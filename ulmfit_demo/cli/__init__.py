"""`python -m ulmfit_demo ...`: the same jobs as the app, for scripts. Each command group lives in its own module
with a `register(subparsers)` function; JSON output (`--json`) is the stable interface."""
import argparse
import importlib
import sys

# Command modules, in the order `--help` lists them.
MODULES = ["data", "tokenize", "models", "train"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ulmfit_demo", description="ULMFiT Studio from the command line.")
    sub = p.add_subparsers(dest="command", required=True)
    for m in MODULES:
        importlib.import_module(f"ulmfit_demo.cli.{m}").register(sub)
    return p


def fail(msg: str, code: int = 1) -> int:
    "One line on stderr saying what went wrong; the exit code says that it did."
    print(f"error: {msg}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args) or 0
