"""Tokens back to text: what fastai's rules encoded (`xxmaj`, `xxup`, `xxrep`, `xxwrep`) decoded, the tokenizer's
spaces around punctuation removed, and tokens grouped into the words a person sees. Used by inference (generated
text, attributions) and by training (the LM samples a run shows), so it lives below both.
"""
import re

SPECIAL_PREFIX = ("xxmaj", "xxup")
SPECIAL_ARG = ("xxrep", "xxwrep")


def detokenize(tokens: list[str], subword: bool = False) -> str:
    "Readable text from tokens: capitals and repeats restored, spaces before punctuation removed."
    # SentencePiece writes special tokens with its word-start mark ('\u2581xxbos'): compare them bare.
    words = decode_specials([t for t in tokens if _bare(t) not in ("xxbos", "xxpad", "xxeos")])
    if subword:
        return tidy("".join(words).replace("\u2581", " ").strip())
    return tidy(" ".join(words))


def tidy(s: str) -> str:
    "Undo the tokenizer's spaces around punctuation and contractions: 'it 's good .' -> \"it's good.\""
    s = re.sub(r" ([.,!?;:%)\]}]|'s|'re|'ve|'ll|'d|'m|n't)(?=\s|$|[.,!?;:])", r"\1", s)
    # fastai lower-cases the one-letter "I" without an xxmaj marker; in English it is always a capital.
    s = re.sub(r"(?<![\w'])i(?=\s|$|'[a-z])", "I", s)
    return re.sub(r"([(\[{$]) ", r"\1", s)


def _bare(t: str) -> str:
    "A subword piece without its word-start marker (SentencePiece writes special tokens as '\u2581xxmaj')."
    return t[1:] if t.startswith("\u2581") else t


def _cap(t: str) -> str:
    return "\u2581" + t[1:2].upper() + t[2:] if t.startswith("\u2581") else t[:1].upper() + t[1:]


def decode_specials(tokens: list[str]) -> list[str]:
    "Apply xxmaj/xxup/xxrep/xxwrep to the tokens after them (fastai's `decode_spec_tokens`, resetting its state)."
    out, i = [], 0
    while i < len(tokens):
        b = _bare(tokens[i])
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if b in SPECIAL_PREFIX and nxt is not None and _bare(nxt) not in SPECIAL_PREFIX + SPECIAL_ARG:
            out.append(nxt.upper() if b == "xxup" else _cap(nxt))
            i += 2
        elif b in SPECIAL_PREFIX:  # a marker with no word after it (generated text can end on one): drop it
            i += 1
        elif b in SPECIAL_ARG and i + 2 < len(tokens) and _bare(tokens[i + 1]).isdigit():
            n = min(int(_bare(tokens[i + 1])), 50)
            out.extend([tokens[i + 2] * n] if b == "xxrep" else [tokens[i + 2]] * n)
            i += 3
        else:
            out.append(tokens[i])
            i += 1
    return out


def word_units(tokens: list[str], subword: bool = False) -> list[list[int]]:
    """Token positions grouped into the words a person sees: xxmaj/xxup join the word after them, xxrep/xxwrep
    their count and target, subword pieces join until the next piece that starts a word. xxbos is left out."""
    units: list[list[int]] = []
    i = 0
    while i < len(tokens):
        b = _bare(tokens[i])
        if b in ("xxbos", "xxpad", "xxeos"):
            i += 1
            continue
        j = i + 1 if b in SPECIAL_PREFIX else i + 2 if b in SPECIAL_ARG else i
        j = min(j, len(tokens) - 1)
        if subword:  # pieces that do not start with the word marker continue the word
            while j + 1 < len(tokens) and not tokens[j + 1].startswith("\u2581"):
                j += 1
        units.append(list(range(i, j + 1)))
        i = j + 1
    return units


def join_words(words: list[str], subword: bool = False) -> str:
    "Text from shown words (after a 'what if' edit)."
    return ("".join(words) if subword else tidy(" ".join(w for w in words if w))).strip()
