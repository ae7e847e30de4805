"""A worker SIGKILLed while it tokenizes: real worker processes on a tiny config, killed through the documented test
hook `ULMFIT_DEMO_TEST_TOKENIZE_DELAY` (`data.tokcache`), which pauses between chunks so the kill lands mid-way.
Afterwards no half-written file passes for a cache entry or a SentencePiece model, the start-up check marks the run
INTERRUPTED, and Resume takes it to SUCCEEDED with a complete entry / a loadable model."""
import json

import pyarrow.parquet as pq
import pytest

from test_runs import kill_and_check_interrupted, tiny, wait_final, wait_for
from ulmfit_demo import config
from ulmfit_demo.data import corpora, tokcache
from ulmfit_demo.runs import launcher, store
from ulmfit_demo.train import presets

# Fast once tokenized: one LM epoch from scratch, a one-word sample.
FAST = dict(lm_frozen_epochs=0, lm_epochs=1, sample_words=1)


def run_docs(cfg):
    "The texts the worker tokenizes for `cfg` on the demo corpus, sampled and filtered as `Job.load_docs` does."
    docs = presets.sample_docs(corpora.load("demo").df, cfg.max_docs, cfg.seed)
    return docs[docs["text"].str.strip() != ""].reset_index(drop=True)


def resume_to_success(rid: str, monkeypatch) -> dict:
    monkeypatch.delenv(tokcache.TOKENIZE_DELAY_ENV)  # the resumed worker runs at full speed
    assert launcher.resume(rid) == store.RUNNING
    r = wait_final(rid)
    assert r["status"] == store.SUCCEEDED, r["error"]
    # The killed attempt started tokenizing and never finished; the resumed one did both.
    assert [e["message"].split()[0] for e in store.events(rid, "tokenize")] == ["Tokenizing", "Tokenizing", "Tokenized"]
    return r


def test_sigkill_mid_word_tokenization_leaves_no_entry_then_resume_succeeds(monkeypatch):
    cfg = tiny(**FAST)
    docs = run_docs(cfg)
    assert len(docs) > 64  # more than two of the 32-doc chunks: the kill lands between chunks
    cache = config.sub("cache")
    monkeypatch.setenv(tokcache.TOKENIZE_DELAY_ENV, "4")
    rid = launcher.submit("lm", cfg, "demo", preset="tiny")

    def half_written():
        # A temp file with at least one chunk in it (more than parquet's 4-byte header), the worker paused after it.
        return [p for p in cache.glob(".tok-word-*.tmp") if p.stat().st_size > 4]

    tmps = wait_for(half_written, "the tokenizer's temp file with a chunk in it", run_id=rid)
    kill_and_check_interrupted(rid)

    (tmp,) = tmps
    assert tmp.exists()  # the kill left it where it was: half a parquet, no footer
    with pytest.raises(Exception):
        pq.read_table(tmp)
    final = cache / (tmp.name[1:].split(".parquet.")[0] + ".parquet")  # `.<key>.parquet.<pid>.<random>.tmp`
    assert not final.exists() and not final.with_suffix(".json").exists()
    assert tokcache.read_entry(final) is None

    resume_to_success(rid, monkeypatch)
    entry = tokcache.read_entry(final)  # the same key, now complete
    assert entry is not None and len(entry) == len(docs)
    assert entry["text"].tolist() == docs["text"].tolist()
    assert (entry["n_tokens"] == entry["tokens"].map(len)).all() and entry["n_tokens"].min() > 0
    assert not list(cache.glob(".tok-word-*.tmp"))  # the dead worker's temp file was swept, the new one renamed
    assert list(cache.glob("tok-word-*.parquet")) == [final]


def test_a_parquet_without_its_sidecar_is_not_an_entry():
    "The json sidecar is the commit point: a parquet renamed into place by a worker killed before it is a miss."
    df = corpora.load("demo").df.head(40)
    first = tokcache.tokenized(df, max_docs=None)
    (path,) = config.sub("cache").glob("tok-word-*.parquet")
    meta = path.with_suffix(".json")
    assert tokcache.read_entry(path) is not None
    meta.unlink()
    assert tokcache.read_entry(path) is None
    meta.write_text('{"n_docs": 41, "max_docs": null}')  # a sidecar that disagrees with its parquet
    assert tokcache.read_entry(path) is None
    again = tokcache.tokenized(df, max_docs=None)  # tokenized again and committed
    assert again["tokens"].tolist() == first["tokens"].tolist()
    assert tokcache.read_entry(path)["tokens"].tolist() == first["tokens"].tolist()


@pytest.mark.parametrize("moment", ["input", "trained"])
def test_sigkill_while_sentencepiece_trains_leaves_no_model_then_resume_succeeds(monkeypatch, moment):
    """`input`: killed while SentencePiece's input is half written; `trained`: killed after SentencePiece wrote a
    whole model into `.training`, before it was moved into place."""
    import sentencepiece as spm

    cfg = tiny(tokenizer="subword", sp_vocab_sz=200, **FAST)
    assert len(run_docs(cfg)) > 64
    monkeypatch.setenv(tokcache.TOKENIZE_DELAY_ENV, "4")
    rid = launcher.submit("lm", cfg, "demo", preset="tiny")
    folder = store.run_dir(rid) / "spm"
    work = folder / ".training"

    def at_moment():
        if moment == "input":
            raw = work / "texts.out"
            return raw.exists() and raw.stat().st_size > 0 and not (work / "spm.model").exists()
        return (work / "spm.model").exists()

    wait_for(at_moment, f"SentencePiece training ({moment})", run_id=rid)
    kill_and_check_interrupted(rid)

    assert not (folder / "spm.model").exists()
    if moment == "trained":
        assert (work / "spm.model").exists()  # whole, but never committed: Resume must not pick it up from here

    resume_to_success(rid, monkeypatch)
    assert not work.exists()
    sp = spm.SentencePieceProcessor(model_file=str(folder / "spm.model"))
    assert 100 < sp.get_piece_size() <= 200
    assert (folder / "spm.vocab").exists()
    vocab = json.loads((store.run_dir(rid) / "vocab.json").read_text())
    assert set(vocab) >= {sp.id_to_piece(i) for i in range(sp.get_piece_size())}  # the run's vocab is these pieces
