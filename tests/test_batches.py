"""Batch previews come from fastai's own objects and match the seeds' picture of language-model batching."""
import csv
import io
import re
from pathlib import Path

import pytest

from ulmfit_demo.data import batches, corpora as datasets, tokcache

SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "003_44885bef2d63d649.txt"


def seed_paragraph_and_tables():
    "The seeds' 90-token paragraph and its three bs=6, seq_len=5 tables, read from the seed notebook itself."
    if not SEED.exists():
        pytest.fail(f"{SEED} is missing: the repository expects ../shared beside it")
    src = SEED.read_text()
    stream = eval(re.search(r'^stream = (".*")$', src, re.M).group(1))  # a plain string literal in the notebook
    tables, lines = [], src.splitlines()
    for i, line in enumerate(lines):
        if line == "0,1,2,3,4":
            rows = list(csv.reader(io.StringIO("\n".join(lines[i + 1:i + 7]))))
            tables.append([[t.replace("\\n", "\n") for t in r] for r in rows])
    return stream, tables


def test_lm_picture_reproduces_the_seeds_tables():
    stream, tables = seed_paragraph_and_tables()
    assert len(tables) == 3
    tokens = tokcache.word_tokenize([stream])[0]
    assert len(tokens) == 90
    pic = batches.stream_picture(tokens, bs=6, seq_len=5)
    assert pic["mini_len"] == 15
    assert pic["batches"] == tables


def test_fastai_lm_loader_target_is_input_shifted_by_one():
    stream, _ = seed_paragraph_and_tables()
    tokens = tokcache.word_tokenize([stream])[0]
    real = batches.lm_loader_batches([tokens], bs=6, seq_len=5, max_batches=3)
    assert real["row_len"] == (90 - 1) // 6  # fastai keeps one token back for the last target
    for b in real["batches"]:
        for x, y in zip(b["x"], b["y"]):
            assert x[1:] == y[:-1]
    # rows are contiguous slices of the stream, read window after window
    row2 = [t for b in real["batches"] for t in b["x"][1]]
    assert row2 == tokens[14:28]


@pytest.mark.parametrize("bs,seq_len", [(1, 7), (4, 3), (6, 20)])
def test_stream_picture_partitions_the_stream(bs, seq_len):
    tokens = [f"t{i}" for i in range(50)]
    pic = batches.stream_picture(tokens, bs, seq_len)
    assert [t for m in pic["minis"] for t in m] == tokens[:bs * (50 // bs)]
    for r in range(bs):
        assert [t for b in pic["batches"] for t in b[r]] == pic["minis"][r]


def test_too_few_tokens_for_bs_is_a_message():
    with pytest.raises(ValueError, match="cannot fill 8 rows"):
        batches.stream_picture(["a", "b", "c"], bs=8, seq_len=2)
    with pytest.raises(ValueError, match="cannot fill 8 rows"):
        batches.lm_loader_batches([["a", "b", "c"]], bs=8, seq_len=2)


def test_classifier_batch_is_fastai_sorted_and_padded():
    tok = tokcache.tokenized(datasets.load("demo").df)
    rows = batches.classifier_batch(tok, bs=4, seq_len=72, seed=0)
    assert len(rows) == 4
    lengths = {len(r["tokens"]) for r in rows}
    assert len(lengths) == 1  # a rectangle
    for r in rows:
        assert r["label"] in ("positive", "negative")
        real = [t for t in r["tokens"] if t != "xxpad"]
        assert real[0] == "xxbos" and len(real) + r["n_pad"] == len(r["tokens"])
    assert rows == batches.classifier_batch(tok, bs=4, seq_len=72, seed=0)  # seeded: the same batch twice


def test_classifier_batch_needs_labels():
    df = tokcache.tokenized(datasets.load("demo").df.head(10).assign(label=""))
    with pytest.raises(ValueError, match="no labels"):
        batches.classifier_batch(df)
