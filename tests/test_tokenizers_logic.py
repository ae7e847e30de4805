"""The tokenizer playground's logic on real fastai, spaCy and SentencePiece objects with tiny inputs."""
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from ulmfit_demo import text as tk
from ulmfit_demo.data import corpora as datasets, tokcache, uploads

REPO = Path(__file__).resolve().parent.parent

THREE = ["The cat sat on the mat.", "A dog barked at the cat!", "We all went home happy."]

# Texts that exercise each rule, spaCy's splitting and the corners of both (whitespace tokens, HTML, scripts).
EXAMPLES = [p[1] for p in tk.PRESETS] + [
    "I LOVE it!!!!", "This is very very very very good", "", "   ", "a\n b  c\n\n  d", "THE END. OK? I AM",
    "x", "Sooooo goooood", "<br /><br />", "#hashtag and/or path\\to", "Tom &amp; Jerry &#39; &quot; nbsp;",
    "Hello   World\tTAB", "Mr. O'Neil's U.S.A. trip", "don't DON'T Don't", "!!!! ???", "1,000,000 dollars $5",
    "École Über ÉCOLE", "😀😀😀😀 lol", "word word word", "New York New York New York New York",
    "A\r\nB", "x" * 300,
]


@pytest.fixture(scope="module")
def fastai_tok():
    from fastai.text.all import Tokenizer, WordTokenizer
    return Tokenizer(WordTokenizer())


def tiny_corpus(name: str, texts: list[str]) -> pd.DataFrame:
    df = pd.DataFrame({"text": texts, "label": ["pos", "neg"] * (len(texts) // 2) + ["pos"] * (len(texts) % 2)})
    return uploads.import_csv(name, df.to_csv(index=False).encode(), "text", "label").df


# ----------------------------------------------------------------------------------------------------------- word

def test_all_caps_and_char_repetition_by_hand():
    # replace_rep: "!!!!" -> " xxrep 4 ! "; replace_all_caps: "LOVE" -> "xxup love" ("I" is one letter: no xxup);
    # lowercase adds xxbos; spaCy splits on the spaces.
    tr = tk.trace("I LOVE it!!!!")
    assert tr.tokens == ["xxbos", "i", "xxup", "love", "it", "xxrep", "4", "!"]
    steps = {s.name: s for s in tr.steps}
    assert steps["replace_rep"].after == "I LOVE it xxrep 4 ! "
    assert steps["replace_all_caps"].after == "i xxup love it xxrep 4 ! "
    assert not steps["replace_wrep"].changed and not steps["spec_add_spaces"].changed
    assert steps["rm_useless_spaces"].changed is False  # only single spaces here


def test_word_repetition_by_hand():
    tr = tk.trace("This is very very very very good")
    assert tr.tokens == ["xxbos", "xxmaj", "this", "is", "xxwrep", "4", "very", "good"]
    # Three in a row is already a repetition for fastai's regex; two is not.
    assert tk.word_tokens("so very very very good")[2:5] == ["xxwrep", "3", "very"]
    assert "xxwrep" not in tk.word_tokens("very very good")


def test_seed_sentence():
    assert tk.word_tokens("Once again Mr. Costner has dragged out a movie")[:9] == \
        ["xxbos", "xxmaj", "once", "again", "xxmaj", "mr", ".", "xxmaj", "costner"]


def test_trace_follows_fastais_rule_list():
    from fastai.text.all import defaults
    names = [s.name for s in tk.trace("Hello").steps]
    assert names == [r.__name__ for r in defaults.text_proc_rules] + ["split"] + \
        [r.__name__ for r in defaults.text_postproc_rules]
    assert all(s.note for s in tk.trace("Hello").steps)


@pytest.mark.parametrize("text", EXAMPLES)
def test_trace_ends_where_fastai_does(text, fastai_tok):
    tr = tk.trace(text)
    assert tr.split_tokens == list(fastai_tok(text))
    assert tr.tokens == tokcache.word_tokenize([text])[0]  # the corpus path: post-rules included
    # Each step starts where the previous one ended.
    for prev, nxt in zip(tr.steps, tr.steps[1:]):
        assert nxt.before == prev.after


def test_post_rule_changes_whitespace_tokens(fastai_tok):
    tr = tk.trace("a\n b")
    assert "\n " in tr.split_tokens and "\n▁" in tr.tokens
    assert tr.steps[-1].changed


def test_non_latin_and_emoji():
    toks = tk.word_tokens("Это был отличный фильм. 素晴らしい映画でした。 Loved it 😍🍿")
    assert "это" in toks and "xxmaj" not in toks[:2]  # fastai's capital rules only know A-Z
    assert "素晴らしい映画でした" in toks and "😍" in toks and "🍿" in toks


def test_diff_segments_rebuild_both_texts():
    for s in tk.trace(tk.PRESETS[0][1]).steps[:8]:
        segs, left = tk.diff_segments(s.before, s.after)
        assert left == 0
        assert "".join(t for k, t in segs if k != "del") == s.after
        assert "".join(t for k, t in segs if k != "ins") == s.before
    segs, _ = tk.diff_segments("Hello World", "xxmaj hello xxmaj world")
    assert ("ins", "xxmaj hello xxmaj world") in segs or any(k == "ins" and "xxmaj" in t for k, t in segs)


def test_diff_of_a_long_repetitive_text_is_cut():
    # difflib would take minutes comparing 20k characters of one repeated phrase; only the shown part is compared.
    text = ("Hello World THE END. " * 1000)[:tk.MAX_INPUT_CHARS]
    tr = tk.trace(text)
    step = next(s for s in tr.steps if s.name == "replace_maj")
    segs, left = tk.diff_segments(step.before, step.after, 500)
    shown = "".join(t for k, t in segs if k != "del")
    assert step.after.startswith(shown) and 500 <= len(shown) < 600
    assert left == len(step.after) - len(shown)
    one_word = "a" * 20000  # no spaces: one piece, cut for display
    segs, _ = tk.diff_segments(one_word, one_word, 100)
    assert all(len(t) <= 101 for _, t in segs)


def test_input_limits():
    assert tk.prepare_input("") == ("", None)
    assert tk.prepare_input(None) == ("", None)
    big = "".join(f"word{i % 97} " for i in range(200_000))[:1_000_000]  # 1 MB
    text, note = tk.prepare_input(big)
    assert len(text) == tk.MAX_INPUT_CHARS and "1,000,000" in note and f"{tk.MAX_INPUT_CHARS:,}" in note
    assert len(tk.word_tokens(text)) > 2000


def test_random_review_is_from_the_corpus_and_repeatable():
    df = datasets.load("demo").df
    a, b = tk.random_review(df, 3), tk.random_review(df, 3)
    assert a == b and a in set(df["text"])
    assert tk.random_review(df.iloc[:0], 1) == ""


# ----------------------------------------------------------------------------------------------------------- subword

@pytest.fixture(scope="module")
def demo_sample():
    return tk.corpus_sample(datasets.load("demo").df)


def test_subword_model_is_fastais_and_cached(demo_sample, home):
    part, fp = demo_sample
    texts = part["text"].tolist()
    m = tk.train_subword(texts, 200, fp)
    assert m.n_pieces == 200 and m.note is None and m.path.parent == home / "cache" / "spm"
    pcs = tk.subword_tokens(m, "I LOVE it!!!!")
    # Pieces rebuild the text fastai's rules made (▁ is the space), and the special tokens are pieces of their own.
    assert "".join(pcs).replace("▁", " ").strip() == tk.sp_input("I LOVE it!!!!").strip()
    assert "▁xxup" in pcs and "▁xxbos" in pcs
    assert all(0 <= i < 200 for i in tk.piece_ids(m, pcs))
    mtime = m.path.stat().st_mtime_ns
    again = tk.train_subword(texts, 200, fp)
    assert again == m and m.path.stat().st_mtime_ns == mtime  # loaded, not retrained
    assert not [p for p in m.path.parent.iterdir() if p.name.startswith(".")]  # no training folders left
    raw = tk.train_subword(texts, 200, fp, with_rules=False)
    assert raw.path != m.path and "▁I" in tk.subword_tokens(raw, "I LOVE it")  # raw text keeps capitals


def test_subword_tokens_match_fastai_direct(demo_sample, tmp_path):
    "The same pieces as fastai's own `SubwordTokenizer.setup` + call, as in fastai's tutorial."
    from fastai.text.all import SubwordTokenizer, defaults
    part, fp = demo_sample
    texts = part["text"].tolist()
    sp = SubwordTokenizer(vocab_sz=300, cache_dir=tmp_path)
    sp.setup(texts, rules=defaults.text_proc_rules)
    text = "Once again Mr. Costner has dragged out a movie"
    ours = tk.train_subword(texts, 300, fp)
    assert tk.subword_tokens(ours, text) == list(next(iter(sp([tk.sp_input(text)]))))


def test_too_large_vocab_says_the_largest_that_works(tmp_path):
    df = tiny_corpus("three", THREE)
    part, fp = tk.corpus_sample(df)
    m = tk.train_subword(part["text"].tolist(), 1000, fp)
    assert m.n_pieces < 1000 and f"{m.n_pieces:,} is the largest that works" in m.note
    # And it is the largest: SentencePiece with a hard limit accepts n_pieces and refuses n_pieces + 1, saying so.
    import sentencepiece as spm
    raw = tmp_path / "t.txt"
    raw.write_text("".join(tk.sp_input(t) + "\n" for t in part["text"]))
    specials = ",".join("▁" + t for t in tk.special_tokens())
    args = (f"--input={raw} --model_type=unigram --character_coverage=0.99999 --unk_id=9 --pad_id=-1 --bos_id=-1 "
            f"--eos_id=-1 --minloglevel=2 --user_defined_symbols={specials} --hard_vocab_limit=true")
    spm.SentencePieceTrainer.Train(f"{args} --vocab_size={m.n_pieces} --model_prefix={tmp_path / 'ok'}")
    with pytest.raises(RuntimeError) as e:
        spm.SentencePieceTrainer.Train(f"{args} --vocab_size={m.n_pieces + 1} --model_prefix={tmp_path / 'no'}")
    err = tk.explain_sp_error(str(e.value), m.n_pieces + 1)
    assert err.largest == m.n_pieces and f"largest that works here is {m.n_pieces:,}" in str(err)


def test_too_small_vocab_says_the_smallest_that_works():
    df = tiny_corpus("three", THREE)
    part, fp = tk.corpus_sample(df)
    with pytest.raises(tk.SubwordError) as e:
        tk.train_subword(part["text"].tolist(), 10, fp)
    need = e.value.smallest
    assert need > 10 and f"smallest that works here is {need:,}" in str(e.value)
    assert tk.train_subword(part["text"].tolist(), need, fp).n_pieces == need
    assert not [p for p in tk.spm_cache().iterdir() if p.name.startswith(".")]


def test_unknown_sentencepiece_error_is_still_a_message():
    err = tk.explain_sp_error("something else broke", 500)
    assert isinstance(err, tk.SubwordError) and "500" in str(err) and "something else broke" in str(err)


def test_subword_on_non_latin_text(demo_sample):
    part, fp = demo_sample
    m = tk.train_subword(part["text"].tolist(), 200, fp)
    text = "素晴らしい映画でした 😍"
    pcs = tk.subword_tokens(m, text)
    assert len(pcs) > 1 and "".join(pcs).replace("▁", " ").strip() == tk.sp_input(text).strip()


def test_empty_sample_is_refused():
    with pytest.raises(tk.SubwordError, match="no text"):
        tk.train_subword(["", "  "], 100, "empty")


@pytest.mark.parametrize("raw,want", [("200, 1000, 10000", [200, 1000, 10000]), ("500", [500]),
                                      ("300 300;40", [300, 40]), ("1_000", [1000])])
def test_parse_sizes(raw, want):
    assert tk.parse_sizes(raw) == want


@pytest.mark.parametrize("raw,msg", [("", "Type one or more"), ("abc", "not a whole number"),
                                     ("5", "out of range"), ("100000", "out of range"),
                                     ("1,2,3,4,5,6,7", "out of range"), ("11,12,13,14,15,16,17", "At most 6")])
def test_parse_sizes_refuses(raw, msg):
    with pytest.raises(ValueError, match=msg):
        tk.parse_sizes(raw)


# ----------------------------------------------------------------------------------------------------------- ids

DOCS = [["xxbos", "a", "b", "a", "c"], ["xxbos", "a", "b", "d", "a"], ["xxbos", "a", "e", "b", "a"]]  # a:6 b:3


def test_numericalize_matches_fastai_and_explains_unknowns():
    from fastai.text.all import Numericalize
    v = tk.build_vocab(DOCS, min_freq=2, max_vocab=60000)
    num = Numericalize(min_freq=2, max_vocab=60000)
    num.setup(DOCS)
    assert v.itos == list(num.vocab) and v.size % 8 == 0
    toks = ["xxbos", "a", "b", "c", "zebra"]
    t = tk.numericalize(v, toks)
    assert t["id"].tolist() == [int(i) for i in num(toks)]
    assert t["in_vocab"].tolist() == [True, True, True, False, False]
    assert t["corpus_count"].tolist() == [3, 6, 3, 1, 0]
    assert t.loc[3, "why_unknown"] == "seen 1 time; min_freq is 2"
    assert t.loc[4, "why_unknown"] == "never seen in the corpus"
    # 15 tokens, c, d and e (once each) are unknown: 12/15 covered. Asking twice does not change the answer
    # (fastai's o2i is a defaultdict that grows with every unknown token looked up).
    assert v.coverage == pytest.approx(12 / 15)
    tk.numericalize(v, ["zebra", "c"])
    assert v.coverage == pytest.approx(12 / 15) and not v.known("zebra")


def test_max_vocab_cut_is_explained():
    # With max_vocab 10 the 9 special tokens leave one slot: 'a' (6 times) gets it, 'b' (3 times) does not.
    v = tk.build_vocab(DOCS, min_freq=1, max_vocab=10)
    t = tk.numericalize(v, ["a", "b"])
    assert t["in_vocab"].tolist() == [True, False]
    assert "vocabulary is full (max_vocab 10)" in t.loc[1, "why_unknown"]


def test_vocab_on_a_three_sentence_corpus():
    df = tiny_corpus("three", THREE)
    docs = tokcache.tokenized(df, max_docs=None)["tokens"].tolist()
    v = tk.build_vocab(docs)  # fastai's defaults: min_freq 3
    assert v.size == 16 and v.known("the") and not v.known("cat")  # the: 3 times, cat: 2
    assert v.counter["xxbos"] == 3


# ----------------------------------------------------------------------------------------------------------- sweep

def direct(docs, min_freq, max_vocab, specials):
    "The numbers computed by hand from fastai's documented rule (most frequent first, specials first, pad to 8)."
    cnt = Counter(t for d in docs for t in d)
    words = [w for w, c in sorted(cnt.items(), key=lambda kv: -kv[1]) if c >= min_freq][:max_vocab]
    vocab = (specials + [w for w in words if w not in specials])[:max_vocab]
    rows = len(vocab) + 8 - len(vocab) % 8
    total = sum(cnt.values())
    unk = sum(c for w, c in cnt.items() if w not in vocab)
    return rows, total / len(docs), unk / total


def test_word_sweep_matches_direct_computation():
    df = tiny_corpus("small", [f"Film {i}: a good story, a bad ending. Actor {i % 3} was fine." for i in range(40)])
    docs = tokcache.tokenized(df, max_docs=None)["tokens"].tolist()
    rows = tk.word_sweep(docs, min_freq=2, emb_sz=16, sizes=(10, 15, 20, 30, 60000))
    specials = tk.special_tokens()
    assert [r["setting"] for r in rows] == [10, 15, 20, 30]  # 60000 gives the same vocabulary as 30: dropped
    for r in rows:
        want_rows, want_mean, want_unk = direct(docs, 2, r["setting"], specials)
        assert r["vocab_rows"] == want_rows and r["emb_params"] == want_rows * 16
        assert r["mean_tokens"] == pytest.approx(want_mean) and r["unk_rate"] == pytest.approx(want_unk)
    assert rows[0]["unk_rate"] > rows[-1]["unk_rate"]

    figs = tk.sweep_figures(tk.sweep_frame(rows), 16)
    assert set(figs) == {"tokens", "unk", "params"}
    for key, col in (("tokens", "mean_tokens"), ("unk", "unk_rate"), ("params", "emb_params")):
        (trace,) = figs[key].data
        assert trace.name == "word"
        assert list(trace.x) == [r["vocab_rows"] for r in rows]
        assert list(trace.y) == pytest.approx([r[col] for r in rows])


def test_subword_point_matches_direct_computation():
    df = datasets.load("demo").df.head(80)
    part, fp = tk.corpus_sample(df)
    texts = part["text"].tolist()
    pts = []
    for size in (100, 300):
        m = tk.train_subword(texts, size, fp)
        docs = tk.subword_corpus(m, texts)
        assert docs[5] == tk.subword_tokens(m, texts[5])
        p = tk.subword_point(m, docs, min_freq=1, emb_sz=8)
        want_rows, want_mean, want_unk = direct(docs, 1, 60000, tk.special_tokens())
        assert (p["vocab_rows"], p["emb_params"]) == (want_rows, want_rows * 8)
        assert p["mean_tokens"] == pytest.approx(want_mean) and p["unk_rate"] == pytest.approx(want_unk) == 0
        pts.append(p)
        assert m.n_pieces == size
    assert pts[0]["mean_tokens"] > pts[1]["mean_tokens"]  # more pieces, fewer tokens per review
    figs = tk.sweep_figures(tk.sweep_frame(pts), 8)
    (trace,) = figs["tokens"].data
    assert trace.name == "subword" and list(trace.y) == pytest.approx([p["mean_tokens"] for p in pts])


def test_default_embedding_size_is_fastais():
    from fastai.text.all import awd_lstm_lm_config
    assert tk.default_emb_sz() == awd_lstm_lm_config["emb_sz"] == 400


# ----------------------------------------------------------------------------------------------------------- CLI

def cli(*args):
    return subprocess.run([sys.executable, "-m", "ulmfit_demo", "tokenize", *args], cwd=REPO, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONIOENCODING="utf-8"), timeout=300)


def test_cli_word_tokens_of_the_seed_sentence():
    r = cli("--text", "Once again Mr. Costner has dragged out a movie", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert list(out) == ["word"]
    assert out["word"][:9] == ["xxbos", "xxmaj", "once", "again", "xxmaj", "mr", ".", "xxmaj", "costner"]


def test_cli_subword_tokens_and_notes(home):
    r = cli("--text", "I LOVE it!!!!", "--corpus", "demo", "--subword-vocab", "10000", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)  # stdout is the JSON alone: SentencePiece's log and the note go to stderr
    assert out["word"] == ["xxbos", "i", "xxup", "love", "it", "xxrep", "4", "!"]
    assert "▁xxup" in out["subword"] and "largest that works" in r.stderr
    assert list((home / "cache" / "spm").glob("*.model"))


def test_cli_refuses_with_a_message():
    r = cli("--text", "hi", "--corpus", "demo")
    assert r.returncode == 1 and "--subword-vocab" in r.stderr
    r = cli("--text", "hi", "--subword-vocab", "20")
    assert r.returncode == 1 and "smallest that works" in r.stderr
    r = cli("--text", "hi", "--corpus", "no_such_corpus", "--subword-vocab", "200")
    assert r.returncode == 1 and "no_such_corpus" in r.stderr
    r = cli("--text", "hi", "--subword-vocab", "5")
    assert r.returncode == 1 and "out of range" in r.stderr
