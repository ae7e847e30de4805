"""`data list|get|info`: corpora from the command line."""
import json
import sys

from ulmfit_demo.cli import Bar, fail
from ulmfit_demo.data import corpora


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
    rows = corpora.list_corpora()
    if args.json:
        print(json.dumps([{k: r[k] for k in ("name", "available", "title", "labelled", "kind")} for r in rows]))
    else:
        for r in rows:
            print(f"{r['name']:<18} {'on disk' if r['available'] else 'not fetched':<12} {r['title']}")


def cmd_get(args):
    bar = Bar()
    try:
        path = corpora.fetch(args.name, bar)
    except corpora.CorpusError as e:
        bar.close()
        return fail(str(e))
    bar.close()
    print(path)


def cmd_info(args):
    bar = Bar()
    try:
        corpus = corpora.load(args.name, bar)
    except corpora.CorpusError as e:
        bar.close()
        return fail(str(e))
    bar.close()
    out = corpora.info(corpus)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['name']}: {out['n_docs']:,} documents")
        _print_counts(out, "  ")
        for src, o in out.get("by_source", {}).items():
            print(f"  from {src}: {o['n_docs']:,} documents")
            _print_counts(o, "    ")
        for k, v in out.get("by_domain", {}).items():
            print(f"  domain {k:<22} {v:>8,}")
        for p in corpus.problems:
            print(f"  note: {p}")


def _print_counts(out: dict, pad: str) -> None:
    "Documents per split and per label within it (`data info` without --json)."
    for sp, labs in out["by_split_label"].items():
        print(f"{pad}split {sp:<8} {sum(labs.values()):>8,}  " + ", ".join(f"{k or '(no label)'} {v:,}"
                                                                      for k, v in labs.items()))
