"""Word tokens as fastai makes them: `Tokenizer(WordTokenizer())` traced rule by rule (`trace`), the final tokens
(`word_tokens`), fastai's special tokens, and what each rule changed in a text (`diff_segments`).

fastai is imported inside functions: pages import this module and must render without paying for fastai first.
"""
import difflib
import re
from dataclasses import dataclass
from functools import lru_cache

# Plain words for each rule, by function name; a rule fastai adds in a later version falls back to its docstring.
RULE_NOTES = {
    "fix_html": "Cleans web leftovers: `<br />` becomes a line break, HTML entities such as `&eacute;` become characters.",
    "replace_rep": "A character repeated 3 or more times becomes `xxrep`, the count and the character.",
    "replace_wrep": "A word repeated 3 or more times in a row becomes `xxwrep`, the count and the word.",
    "spec_add_spaces": "Puts spaces around `/` and `#` so they become tokens of their own.",
    "rm_useless_spaces": "Squeezes runs of spaces into one.",
    "replace_all_caps": "A word in ALL CAPS is lower-cased, with `xxup` in front to remember it.",
    "replace_maj": "A Capitalised word is lower-cased, with `xxmaj` in front to remember it.",
    "lowercase": "Everything left is lower-cased, and `xxbos` marks where the text begins.",
    "split": "spaCy cuts the text into words and punctuation (`don't` becomes `do` + `n't`).",
    "replace_space": "A space left inside a token becomes `▁` (fastai's post-rule, applied to each token).",
}


@lru_cache(maxsize=1)
def _spacy():
    # Building spaCy's tokenizer costs about a second; it holds no per-text state, so one is shared.
    from fastai.text.all import WordTokenizer
    return WordTokenizer()


def special_tokens() -> list[str]:
    "fastai's special tokens, in its order (xxunk, xxpad, xxbos, ...)."
    from fastai.text.all import defaults
    return list(defaults.text_spec_tok)


@dataclass
class Step:
    name: str  # the fastai function's name, or "split"
    note: str  # what it does, in plain words
    before: str | list[str]
    after: str | list[str]  # a string for rules on the text, a token list for the split and post-rules

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass
class Trace:
    text: str
    steps: list[Step]
    split_tokens: list[str]  # what `Tokenizer(WordTokenizer())(text)` returns
    tokens: list[str]  # after fastai's post-rules: what `tokenize_texts` (and so training) gives


def trace(text: str) -> Trace:
    """fastai's word tokenization of `text`, one step at a time.

    fastai (2.x) applies every rule of `defaults.text_proc_rules` to the raw string, in order, `lowercase` included
    (`Tokenizer._tokenize1` is `tok([compose(*rules)(text)])`); only then does spaCy split it. The rules that add
    `xxup`/`xxmaj` therefore work on space-separated words of the string, not on spaCy's tokens. Corpus
    tokenization (`TokenizeWithRules`) then applies `defaults.text_postproc_rules` to each token."""
    from fastai.text.all import defaults

    steps, cur = [], text
    for rule in defaults.text_proc_rules:
        nxt = rule(cur)
        steps.append(Step(rule.__name__, _note(rule), cur, nxt))
        cur = nxt
    split = [str(t) for t in next(iter(_spacy()([cur])))]
    steps.append(Step("split", RULE_NOTES["split"], cur, split))
    toks = split
    for rule in defaults.text_postproc_rules:
        nxt = [rule(t) for t in toks]
        steps.append(Step(rule.__name__, _note(rule), toks, nxt))
        toks = nxt
    return Trace(text, steps, split, toks)


def _note(rule) -> str:
    return RULE_NOTES.get(rule.__name__) or (rule.__doc__ or rule.__name__).strip()


def word_tokens(text: str) -> list[str]:
    "Final word tokens of `text`, exactly as fastai's corpus tokenization makes them."
    return trace(text).tokens


_PIECES = re.compile(r"\S+\s*|\s+")


def diff_segments(before: str, after: str, max_chars: int = 3000) -> tuple[list[tuple[str, str]], int]:
    """What a rule changed, as `(op, text)` segments, `op` one of `same`, `del`, `ins`, compared word by word
    (a word keeps its trailing spaces, so a rule that only adds spaces still shows). Covers the first `max_chars`
    characters of `after`; the second value is how many characters of `after` that leaves out."""
    # difflib is quadratic on repetitive text (20k characters of a repeated phrase take minutes), so only the
    # shown part is compared: `after`'s first `max_chars` against a slightly longer start of `before`, scaled by
    # how much the rule grew or shrank the text. What `before` has past that window is not shown.
    scale = len(before) / max(len(after), 1)
    a = _pieces_upto(before, min(int(max_chars * scale * 1.2) + 200, 4 * max_chars))
    b = _pieces_upto(after, max_chars)
    left = len(after) - len("".join(b))
    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    if left and ops and ops[-1][0] == "replace":
        # `a` runs past the window: only as much of it as `b` has left can be what the rule replaced.
        op, i1, i2, j1, j2 = ops[-1]
        ops[-1] = (op, i1, min(i2, i1 + j2 - j1), j1, j2)
    out = []
    for op, i1, i2, j1, j2 in ops:
        segs = [("same", "".join(b[j1:j2]))] if op == "equal" else \
            [("del", "".join(a[i1:i2])), ("ins", "".join(b[j1:j2]))]
        out += [(k, s) for k, s in segs if s]
    if left:
        while out and out[-1][0] == "del":  # the part of `before` past the window, not a deletion
            out.pop()
    # One 20k-character "word" (no spaces) would otherwise be shown whole.
    out = [(k, s if len(s) <= max_chars else s[:max_chars] + "…") for k, s in out]
    return out, max(left, 0)


def _pieces_upto(text: str, n_chars: int) -> list[str]:
    "Whole pieces covering at least the first `n_chars` characters (so a cut never splits a word)."
    out, n = [], 0
    for m in _PIECES.finditer(text):
        if n >= n_chars:
            break
        out.append(m.group())
        n += len(m.group())
    return out
