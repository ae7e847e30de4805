"""Corpora and what fastai makes of them before a model sees them.

- `download`: the one download path (fastai's `urlsave`, written to `.part` and renamed when complete).
- `extract`: safe tar/zip extraction (no absolute paths, `..`, links or devices; limits on size, count and ratio).
- `catalog`: what a corpus is (`Corpus`, `CorpusError`, `SPLITS`, its counts) and the names the app knows (`NAMED`,
  the uploads' folder, the shape of a combined name): below `combined` and `corpora`.
- `combined`: several corpora read as one (`imdb+yelp_sentences:25000`): the spec, caps, the join, what a run read,
  the saved combinations. It never reads a corpus itself, so it imports `catalog`, not `corpora`.
- `corpora`: named corpora (fastai's cache, then the mirror, then a download), listing, loading into one
  `text`/`label`/`split` frame (a combined name part by part, joined by `combined`), statistics, the classifier
  split and the content hash.
- `uploads`: an uploaded CSV or zip of class folders stored as a corpus.
- `tokcache`: fastai word tokenization of a corpus, cached on disk by content hash.
- `batches`: classifier batches and the language-model stream picture, from fastai's own loaders.

Below `text`, `train`, `models` and `runs`; imports only `config` from the package.
"""
