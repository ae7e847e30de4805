"""How text becomes tokens and ids for an AWD-LSTM, step by step, with fastai's own objects, and back.

- `words`: fastai's `Tokenizer(WordTokenizer())` traced rule by rule (`trace`), and what each rule changed.
- `subwords`: fastai's `SubwordTokenizer` (SentencePiece) trained on a corpus sample, cached on disk.
- `vocab`: fastai's `Numericalize(min_freq, max_vocab)` on a corpus's tokens, and why a token is `xxunk`.
- `sweep`: the vocabulary-size trade-off (tokens per review, unknown rate, embedding size) and its figures.
- `playground`: the Tokenizers page's example texts, input limit and corpus sample.
- `decode`: tokens back to readable text (`xxmaj`, `xxrep`... undone), and tokens grouped into words.

The Tokenizers page and the `tokenize` command use this package as one namespace, fastai's `text.all` style:
`from ulmfit_demo import text as tk; tk.trace(...)`, so the names they use are re-exported here. fastai is
imported inside functions: pages import this package and must render without paying for fastai first.
Above `data` (`tokcache`, `corpora.fingerprint`); below `train`, `models` and `runs`.
"""
from ulmfit_demo.text.playground import (MAX_INPUT_CHARS, PRESETS, SAMPLE_DOCS, corpus_sample, prepare_input,
                                         random_review)
from ulmfit_demo.text.subwords import (DEFAULT_SUBWORD_SIZES, SUBWORD_LIMITS, SubwordError, SubwordModel,
                                       cached_subword, explain_sp_error, parse_sizes, piece_ids, sp_input, spm_cache,
                                       subword_corpus, subword_tokens, train_subword)
from ulmfit_demo.text.sweep import (SUBWORD_SWEEP, WORD_SWEEP, default_emb_sz, subword_point, sweep_figures,
                                    sweep_frame, vocab_point, word_sweep)
from ulmfit_demo.text.vocab import Vocab, build_vocab, numericalize
from ulmfit_demo.text.words import RULE_NOTES, Step, Trace, diff_segments, special_tokens, trace, word_tokens

