"""`data list|get|info`: corpora from the command line."""
import json
import sys

from ulmfit_demo import datasets
from ulmfit_demo.cli import fail


def register(sub):
    p = sub.add_parser("data", help="list, fetch and describe corpora")
    dsub = p.add_subparsers(dest="data_command", required=True)
    q = dsub.add_parser("list", help="corpora the app knows, and whether each is on disk")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_list)
    q = dsub.add_parser("get", help="fetch/extract a corpus (fastai cache, mirror, download) and print its path")
    q.add_argument("name")
    q.set_defaults(func=cmd_get)
    q = dsub.add_parser("info", help="document counts per split and label")
    q.add_argument("name")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_info)


def cmd_list(args):
    rows = datasets.list_corpora()
    if args.json:
        print(json.dumps([{k: r[k] for k in ("name", "available", "title", "labelled", "kind")} for r in rows]))
    else:
        for r in rows:
            print(f"{r['name']:<18} {'on disk' if r['available'] else 'not fetched':<12} {r['title']}")


class _Bar:
    """A text progress bar on stderr, so stdout stays the path alone. On a terminal it redraws one line; in a log
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


def cmd_get(args):
    bar = _Bar()
    try:
        path = datasets.fetch(args.name, bar)
    except datasets.CorpusError as e:
        bar.close()
        return fail(str(e))
    bar.close()
    print(path)


def cmd_info(args):
    bar = _Bar()
    try:
        corpus = datasets.load(args.name, bar)
    except datasets.CorpusError as e:
        bar.close()
        return fail(str(e))
    bar.close()
    out = datasets.info(corpus)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['name']}: {out['n_docs']:,} documents")
        for k, v in out["by_split"].items():
            print(f"  split {k:<8} {v:>8,}")
        for k, v in out["by_label"].items():
            print(f"  label {k or '(none)':<8} {v:>8,}")
        for p in corpus.problems:
            print(f"  note: {p}")
