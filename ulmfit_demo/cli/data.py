"""`data list|get|info`: corpora from the command line."""
import json
import sys
from pathlib import Path

from ulmfit_demo.cli import Bar, add_command, fail
from ulmfit_demo.data import corpora, uploads


def register(sub):
    p = add_command(sub, "data")
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
    register_add_remove(dsub)


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


# ------------------------------------------------------------------------------------------------ add / remove
# The Data page's upload from the command line: the same functions (`data.uploads`), so the same checks and messages.

def register_add_remove(dsub):
    q = dsub.add_parser("add", help="add a corpus from a CSV (you name the columns) or a zip of one folder per "
                                    "class of .txt files, as the Data page's upload does")
    q.add_argument("name", help="the new corpus's name (letters, digits, '-' and '_'), e.g. my_reviews")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", metavar="FILE", help="a CSV with one text per row")
    src.add_argument("--zip", metavar="FILE", help="a .zip with one folder per class of .txt files (e.g. pos/, neg/), "
                                                   "optionally inside train/ and valid/")
    q.add_argument("--text-col", metavar="C", help="with --csv: the column that holds the text (required)")
    q.add_argument("--label-col", metavar="L", help="with --csv: the label column; without it the corpus can train "
                                                     "a language model only")
    q.add_argument("--valid-col", metavar="V", help="with --csv: a validation flag column (True/1/yes)")
    q.add_argument("--replace", action="store_true", help="replace an uploaded corpus of the same name")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_add)
    q = dsub.add_parser("remove", help="remove an uploaded corpus (built-in corpora stay)")
    q.add_argument("name")
    q.set_defaults(func=cmd_remove)


def _read(path: str, what: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise corpora.CorpusError(f"There is no {what} file {path!r}" + (" (it is a folder)" if p.is_dir() else "")
                                  + ": give the path of an existing file.")
    try:
        return p.read_bytes()
    except OSError as e:
        raise corpora.CorpusError(f"The {what} file {path!r} cannot be read ({e.strerror}).") from None


def cmd_add(args):
    try:
        if args.csv:
            if not args.text_col:
                raise corpora.CorpusError("--csv needs --text-col C: the column that holds the text (add "
                                          "--label-col L for a classifier, --valid-col V for a validation flag).")
            c = uploads.import_csv(args.name, _read(args.csv, "CSV"), args.text_col, args.label_col, args.valid_col,
                                   overwrite=args.replace)
        else:
            if args.text_col or args.label_col or args.valid_col:
                raise corpora.CorpusError("--text-col, --label-col and --valid-col are for --csv: a zip's labels are "
                                          "its class folders' names.")
            c = uploads.import_folder_zip(args.name, _read(args.zip, "zip"), overwrite=args.replace)
    except corpora.CorpusError as e:
        msg = str(e)
        if "choose to replace it" in msg:  # the page's checkbox is a flag here
            msg = msg.replace("choose to replace it", "add --replace")
        return fail(msg)
    labels = sorted(set(c.df["label"]) - {""})
    if args.json:
        print(json.dumps({"name": args.name, "n_docs": len(c.df), "labels": labels,
                          "splits": c.df["split"].value_counts().to_dict(), "problems": list(c.problems)}))
    else:
        print(f"Imported {len(c.df):,} texts as '{args.name}'.")
        for p in c.problems:
            print(f"note: {p}", file=sys.stderr)


def cmd_remove(args):
    try:
        corpora.check_name(args.name)
        if args.name not in corpora.NAMED and not (corpora.uploads_dir() / args.name).is_dir():
            have = [r["name"] for r in corpora.list_corpora() if r["kind"] != "named"]
            raise corpora.CorpusError(f"There is no uploaded corpus {args.name!r}. Uploaded corpora: "
                                      f"{', '.join(have) or 'none'}.")
        uploads.delete_upload(args.name)
    except corpora.CorpusError as e:
        return fail(str(e))
    print(f"Removed corpus '{args.name}'.")
