"""The Tokenizers page's input: example texts that each make one rule show itself, the cut applied to a pasted
text, a review picked from the corpus, and the corpus sample SentencePiece and the vocabulary are built from.
"""
import pandas as pd

from ulmfit_demo.data import tokcache
from ulmfit_demo.data.corpora import fingerprint

# The playground tokenizes at most this much of a pasted text: a long review is ~10k characters; a 1 MB paste
# would make the page redraw hundreds of thousands of chips while saying nothing a shorter text does not.
MAX_INPUT_CHARS = 20_000
# Documents of the current corpus used to train SentencePiece and build the word vocabulary (the seeds use 2,000).
SAMPLE_DOCS = 2000

# Examples for the input box, each there to make one rule (or one limit of word tokenization) show itself.
PRESETS = [
    ("A bit of everything",
     "Once again Mr. Costner has dragged out a movie... I LOVED the music!!!! It is very very very very long.<br />"
     "Still, don't miss it.",
     "Capitals, ALL CAPS, repeated characters and words, an HTML line break, a contraction."),
    ("HTML leftovers", "Loved it.<br /><br />The caf&eacute; scene &lt;3 and Tom &amp; Jerry on TV.",
     "fix_html turns <br /> into line breaks and entities into characters. Note '&amp;' becomes '& &': fastai "
     "replaces 'amp;' with '&' before decoding, and this page shows what fastai really does."),
    ("ALL CAPS", "I LOVE it!!!! THE BEST FILM OF THE YEAR.", "xxup marks words in capitals; xxrep marks '!!!!'."),
    ("Capitalised names", "Once again Mr. Costner has dragged out a movie for far longer than necessary.",
     "The seeds' example: xxmaj marks each capitalised word, so the word itself can be stored lower-case."),
    ("Repeated characters", "Sooooo good!!!! Wow......", "xxrep, the count, then the character."),
    ("A word repeated", "This is very very very very good", "xxwrep, the count, then the word."),
    ("Contractions", "I don't think it's worth it, you'd agree? We can't say we didn't try.",
     "spaCy splits 'don't' into 'do' + 'n't' and 'it's' into 'it' + ''s'."),
    ("A URL", "Trailer at https://www.example.com/films/trailer#top, 10/10.",
     "spec_add_spaces cuts around / and #; replace_rep even finds 'www'."),
    ("Emoji", "Loved it 😍🍿 would watch again 👍👍👍", "Emoji are tokens like any other character; 👍👍👍 is a repetition."),
    ("Non-Latin script", "Это был отличный фильм. 素晴らしい映画でした。",
     "fastai's capital rules only know A-Z, so 'Это' gets no xxmaj; Japanese has no spaces, so the word tokenizer "
     "keeps a whole sentence as one token. SentencePiece splits it into pieces."),
]


def prepare_input(text: str | None) -> tuple[str, str | None]:
    "The text the playground works on, and a message if it had to be cut."
    text = text or ""
    if len(text) <= MAX_INPUT_CHARS:
        return text, None
    return text[:MAX_INPUT_CHARS], (f"This text has {len(text):,} characters; the playground uses the first "
                                    f"{MAX_INPUT_CHARS:,}. Tokenizing the rest works the same way.")


def random_review(df: pd.DataFrame, seed: int) -> str:
    "One text of the corpus, chosen by `seed` (so a test, or the same click count, gets the same review)."
    if df.empty:
        return ""
    return str(df["text"].sample(n=1, random_state=seed).iloc[0])


def corpus_sample(df: pd.DataFrame, max_docs: int | None = SAMPLE_DOCS) -> tuple[pd.DataFrame, str]:
    "The documents SentencePiece and the vocabulary are built from (a seeded sample), and their content hash."
    part = tokcache.sample(df, max_docs)
    return part, fingerprint(part)
