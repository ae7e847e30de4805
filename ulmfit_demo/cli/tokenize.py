"""`tokenize`: fastai's word tokens of a text, and subword tokens from a SentencePiece model trained on a corpus."""
import json
import sys

from ulmfit_demo import text as tk
from ulmfit_demo.cli import add_command, fail
from ulmfit_demo.data import corpora


def register(sub):
    p = add_command(sub, "tokenize")
    p.add_argument("--text", required=True, help="the text to tokenize; '-' reads it from stdin")
    p.add_argument("--corpus", help="corpus to train SentencePiece on (with --subword-vocab; default: demo)")
    p.add_argument("--subword-vocab", type=int, metavar="N",
                   help="also give subword tokens from a SentencePiece model of N pieces trained on --corpus")
    p.add_argument("--json", action="store_true", help='print {"word": [...], "subword": [...]}')
    p.set_defaults(func=cmd_tokenize)


def cmd_tokenize(args):
    text = sys.stdin.read() if args.text == "-" else args.text
    text, note = tk.prepare_input(text)
    if note:
        print(f"note: {note}", file=sys.stderr)
    if args.corpus and args.subword_vocab is None:
        return fail("--corpus says which text to train subword pieces on: add --subword-vocab N (e.g. 1000).")
    out = {"word": tk.word_tokens(text)}
    if args.subword_vocab is not None:
        lo, hi = tk.SUBWORD_LIMITS
        if not lo <= args.subword_vocab <= hi:
            return fail(f"--subword-vocab {args.subword_vocab} is out of range: use {lo:,} to {hi:,}.")
        try:
            corpus = corpora.load(args.corpus or "demo")
            part, fp = tk.corpus_sample(corpus.df)
            model = tk.train_subword(part["text"].tolist(), args.subword_vocab, fp)
        except (corpora.CorpusError, tk.SubwordError) as e:
            return fail(str(e))
        if model.note:
            print(f"note: {model.note}", file=sys.stderr)
        out["subword"] = tk.subword_tokens(model, text)
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        for k, toks in out.items():
            print(f"{k}: {' '.join(toks)}")
