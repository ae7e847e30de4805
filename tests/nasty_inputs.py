"""What an audience types: the input classes #21 names, as Hypothesis strategies (`texts`, `long_texts`) for the
property tests and as fixed representatives at a given length (`classes`) for `bench/bench_inputs.py`.

Classes: emoji and ZWJ sequences, right-to-left text and bidi overrides, combining marks, zero-width characters, NUL
and other control characters, fastai's own special tokens typed in, HTML, one long "word" with no space, only
punctuation, only whitespace, ordinary review text; mixed at random, and at the lengths the app states.
"""
from hypothesis import strategies as st

EMOJI_ZWJ = ["\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466", "\U0001F3F3\ufe0f\u200d\U0001F308",
             "\U0001F44D\U0001F3FD", "\U0001F9D1\U0001F3FF\u200d\U0001F4BB", "\u2764\ufe0f\u200d\U0001F525",
             "\U0001F600", "\U0001F1EC\U0001F1E7"]
BIDI = ["\u202e", "\u202d", "\u202a", "\u202b", "\u202c", "\u2066", "\u2067", "\u2068", "\u2069", "\u200f", "\u200e"]
RTL = ["\u0641\u064a\u0644\u0645 \u0631\u0627\u0626\u0639", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
       "\u0645\u0645\u062a\u0627\u0632"]
COMBINING = [chr(c) for c in range(0x300, 0x370)] + ["\u20dd", "\u0489"]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e"]
CONTROL = [chr(c) for c in range(0, 32)] + ["\x7f"] + [chr(c) for c in range(0x80, 0xa0)]
PUNCT = list("!?.,;:'\"()[]{}<>-\u2013\u2014\u2026&*#@%$^~`|\\/_+=")
SPACE = [" ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u2028", "\u2029", "\u3000", "\u2003", "\u0085", "\x0b", "\x0c"]
HTML = ["<script>alert(1)</script>", "<b>bold</b>", "<img src=x onerror=alert(1)>", "&amp;", "</div></span>",
        "<style>body{display:none}</style>", "javascript:alert(1)", "{{7*7}}", "${x}", "%s%n", "`code`", "**b**"]
SPECIAL = ["xxbos", "xxunk", "xxpad", "xxmaj", "xxup", "xxrep 999999999 !", "xxwrep 100000 a", "\u2581xxbos",
           "xxfld", "xxeos"]
WORDS = ["great", "film", "awful", "not", "The", "acting", "LOVED", "plot", "boring", "!!!", "I", "it's"]
# Where fastai splits characters that are not text, and where Unicode's odd corners live (no lone surrogates:
# a browser cannot send them, and Python's UTF-8 encoder refuses them).
UNICODE = st.characters(exclude_categories=("Cs",))

piece = st.one_of(st.sampled_from(EMOJI_ZWJ), st.sampled_from(BIDI), st.sampled_from(RTL),
                  st.sampled_from(COMBINING), st.sampled_from(ZERO_WIDTH), st.sampled_from(CONTROL),
                  st.sampled_from(PUNCT), st.sampled_from(SPACE), st.sampled_from(HTML), st.sampled_from(SPECIAL),
                  st.sampled_from(WORDS), st.text(UNICODE, max_size=8))
mixed = st.lists(st.one_of(piece, st.just(" ")), max_size=40).map("".join)


def only(chars, min_size=1, max_size=300):
    "Text made of these pieces alone (a piece may be longer than one character, as '\\r\\n')."
    return st.lists(st.sampled_from(chars), min_size=min_size, max_size=max_size).map("".join)


def long_word(n: int):
    "One 'word' of n characters with no space: a repeated letter, emoji or combining mark."
    return st.sampled_from(["a", "\U0001F600", "e\u0301", "\u05e9", "x\u200b"]).map(lambda c: (c * n)[:n])


# Small inputs of every class, in one strategy; the long ones are given as explicit examples (they are slow to run
# through a model, so each runs once, not at Hypothesis's whim).
texts = st.one_of(mixed, st.text(UNICODE, max_size=200), only(PUNCT), only(SPACE), only(ZERO_WIDTH), only(CONTROL),
                  only(COMBINING), st.lists(st.sampled_from(EMOJI_ZWJ), max_size=30).map("".join))


def classes(n: int) -> dict[str, str]:
    """One fixed representative of each class, `n` characters long (the length a widget states as its limit)."""
    def fill(unit: str) -> str:
        return (unit * (n // max(len(unit), 1) + 1))[:n]

    review = "This film was wonderful, but the ending dragged and the cast looked tired. "
    return {
        "review": fill(review),
        "emoji_zwj": fill("".join(EMOJI_ZWJ) + " great "),
        "rtl_bidi": fill("\u202e" + RTL[0] + " \u2067" + RTL[1] + "\u2069 film "),
        "combining": fill("Z" + "".join(COMBINING[:30]) + " "),
        "zero_width": fill("gr\u200beat\u200c fi\u200dlm\ufeff "),
        "control_nul": fill("good\x00film\x01\x1b[31m\x7f\r\n\t "),
        "special_tokens": fill(" ".join(SPECIAL) + " "),
        "html": fill(" ".join(HTML) + " "),
        "one_word": fill("a"),
        "only_punct": fill("".join(PUNCT)),
        "only_space": fill(" \t\n\u00a0\u3000"),
    }
