"""One label vocabulary. Sentiment reads `negative`/`positive` everywhere; models stored before the `imdb` corpus said
so (it read `neg`/`pos` from its folder names) keep theirs, and wherever labels of two sources are matched (ensemble
members, a corpus measured against a model) they go through `canonical`. Uploaded corpora keep the user's labels:
nothing here rewrites data, it only says which names mean the same class.
"""

ALIASES = {"neg": "negative", "pos": "positive"}


def canonical(label) -> str:
    "The label's name in the app's vocabulary: `neg` -> `negative`, `pos` -> `positive`, anything else as it is."
    s = str(label)
    return ALIASES.get(s, s)


def same(a, b) -> bool:
    "Whether two label lists name the same classes (in any order, aliases allowed)."
    return sorted(map(canonical, a)) == sorted(map(canonical, b))
