"""Inference on tiny real models: predictions, batch scoring, seeded generation, attributions, interpretation, the
CLI commands, and the bad inputs of the issue (empty, 1 MB, emoji-only, HTML, CSV without the column)."""
import io
import json
import threading

import pandas as pd
import pytest
import tiny_models

from ulmfit_demo import models
from ulmfit_demo.cli import main
from ulmfit_demo.data import corpora as datasets
from ulmfit_demo.models import inference, interpret, kinds


@pytest.fixture
def ids(home):
    return tiny_models.install(home)


# ----------------------------------------------------------------------------------------------------------- predict

def test_predict_shape_and_tokenization_matches_training(ids):
    res = inference.predict(ids["clas"], "This movie was GREAT!!!! I loved it.")
    assert set(res["probs"]) == {"negative", "positive"} and res["label"] in res["probs"]
    assert sum(res["probs"].values()) == pytest.approx(1.0)
    r = inference.runner(ids["clas"])
    toks = r.tokenize(["This movie was GREAT!!!! I loved it."])[0]
    assert toks[:3] == ["xxbos", "xxmaj", "this"] and "xxup" in toks and "xxrep" in toks  # fastai's rules


def test_predict_batch_matches_single_predictions_in_order(ids):
    texts = ["Short.", "A much longer review that goes on and on about the plot, the actors and the music, " * 5,
             "", "Middling film with a good cast.", None]
    batch = inference.predict_batch(ids["clas"], texts)
    assert len(batch) == len(texts)
    for t, b in zip(texts, batch):
        if t:
            single = inference.predict(ids["clas"], t)
            assert b["label"] == single["label"]
            assert list(b["probs"].values()) == pytest.approx(list(single["probs"].values()), abs=1e-6)
        else:
            assert b["label"] is None and "empty" in b["error"]


def test_a_verdict_does_not_depend_on_the_other_reviews_in_its_batch(ids):
    """Lengths chosen so that a long review's end-padding covers the first column of a chunk where shorter reviews
    are still running (fastai's SentenceEncoder would drop those rows there) and short ones share the last window
    with their own padding (fastai's pooling would then read a pad as the last word)."""
    words = "the plot was slow but the cast was lovely and the music quite good".split()
    texts = [" ".join(words[i % len(words)] for i in range(n)) for n in (300, 262, 250, 241, 40, 33, 17, 9, 3)]
    batch = inference.predict_batch(ids["clas"], texts)
    for t, b in zip(texts, batch):
        single = inference.predict(ids["clas"], t)["probs"]
        assert list(b["probs"].values()) == pytest.approx(list(single.values()), abs=1e-6), len(t)


def test_batch_prediction_in_steps_reports_progress_and_gives_the_same_verdicts(ids, monkeypatch):
    words = "a warm funny film with a dull middle and a great end".split()
    texts = [" ".join(words[(i + k) % len(words)] for k in range(3 + 7 * i % 40)) for i in range(23)] + ["", "ok"]
    whole = inference.predict_batch(ids["clas"], texts)
    monkeypatch.setattr(kinds, "PROGRESS_STEP", 5)
    calls = []
    stepped = inference.predict_batch(ids["clas"], texts, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(5, 24), (10, 24), (15, 24), (20, 24), (24, 24)]  # the blank text is not scored
    for w, s in zip(whole, stepped):
        assert w["label"] == s["label"]
        assert list(w["probs"].values()) == pytest.approx(list(s["probs"].values()), abs=1e-6)


def test_empty_text_is_refused_with_a_message(ids):
    for t in ("", "   \n\t "):
        with pytest.raises(inference.InferenceError, match="empty"):
            inference.predict(ids["clas"], t)
        with pytest.raises(inference.InferenceError, match="empty"):
            inference.attributions(ids["clas"], t)


def test_one_megabyte_text_is_cut_and_said(ids):
    text = ("A decent film with fine acting. " * 40_000)[:1_000_000]
    res = inference.predict(ids["clas"], text)
    assert res["truncated"] is True and res["label"] in ("negative", "positive")
    attr = inference.attributions(ids["clas"], text)
    assert attr["truncated"] and attr["scored"] < attr["n_words"]  # occlusion is bounded on long texts


def test_emoji_only_text_gets_a_verdict(ids):
    res = inference.predict(ids["clas"], "😀😀😀 🎬🍿")
    assert res["label"] in ("negative", "positive") and sum(res["probs"].values()) == pytest.approx(1.0)
    attr = inference.attributions(ids["clas"], "😀😀😀 🎬🍿")
    assert [w["text"] for w in attr["words"]] and all(w["score"] is not None for w in attr["words"])


def test_html_in_input_is_just_text(ids):
    text = '<script>alert(1)</script><b onmouseover="x">bold</b> good film'
    attr = inference.attributions(ids["clas"], text)
    shown = " ".join(w["text"] for w in attr["words"])
    assert "script" in shown and "<" in shown  # kept as characters: the page escapes them (see page tests)
    from ulmfit_demo.ui import model_widgets as mw
    html_out = mw.attribution_html(attr, ["negative", "positive"])
    assert "<script" not in html_out and "<b " not in html_out and "&lt;" in html_out


def test_literal_pad_token_in_text_does_not_break_batching(ids):
    res = inference.predict_batch(ids["clas"], ["xxpad xxpad great", "fine"])
    assert all(r["label"] for r in res)


def test_wrong_kind_is_refused(ids):
    with pytest.raises(inference.InferenceError, match="language model"):
        inference.predict(ids["lm"], "hello")
    with pytest.raises(inference.InferenceError, match="needs a language model"):
        inference.generate(ids["clas"], "hello")


def test_concurrent_predictions_agree(ids):
    "The model keeps hidden state inside; the per-model lock keeps threads from mixing it up."
    texts = [f"review number {i}: " + "good " * (i % 7) + "bad " * (i % 5) for i in range(12)]
    expected = [inference.predict(ids["clas"], t)["probs"] for t in texts]
    got = [None] * len(texts)

    def work(i):
        got[i] = inference.predict(ids["clas"], texts[i])["probs"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_reloads_after_model_files_change(ids, home, tmp_path):
    first = inference.runner(ids["clas"])
    assert inference.runner(ids["clas"]) is first  # cached
    w = home / "models" / ids["clas"] / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(models.ModelError, match="truncated"):
        inference.runner(ids["clas"])


# ----------------------------------------------------------------------------------------------------------- generate

def test_seeded_generation_is_repeatable_and_seed_matters(ids):
    a = inference.generate(ids["lm"], "The film was", n_words=20, temperature=1.0, n_samples=2, seed=7)
    b = inference.generate(ids["lm"], "The film was", n_words=20, temperature=1.0, n_samples=2, seed=7)
    c = inference.generate(ids["lm"], "The film was", n_words=20, temperature=1.0, n_samples=2, seed=8)
    assert a["texts"] == b["texts"]
    assert a["texts"] != c["texts"]
    assert a["texts"][0] != a["texts"][1]  # each sample has its own stream
    assert all(t.startswith("The film was") for t in a["texts"])
    # sample i depends on seed + i only: asking for fewer samples keeps the first one
    one = inference.generate(ids["lm"], "The film was", n_words=20, temperature=1.0, n_samples=1, seed=7)
    assert one["texts"][0] == a["texts"][0]


def test_generation_steps_expose_the_distribution_each_word_came_from(ids):
    g = inference.generate(ids["lm"], "I liked this movie because", n_words=8, temperature=0.7, seed=3, top_k=5)
    s = g["samples"][0]
    assert len(s["tokens"]) == len(s["steps"]) == 8
    for tok, step in zip(s["tokens"], s["steps"]):
        assert step["chosen"] == tok and tok != "xxunk"
        probs = [p for _, p in step["top"]]
        assert len(probs) == 5 and probs == sorted(probs, reverse=True) and probs[0] <= 1.0
        assert step["chosen_prob"] <= probs[0] + 1e-9


def test_low_temperature_concentrates_the_distribution(ids):
    hot = inference.generate(ids["lm"], "The", n_words=1, temperature=1.5, seed=0)["samples"][0]["steps"][0]
    cold = inference.generate(ids["lm"], "The", n_words=1, temperature=0.2, seed=0)["samples"][0]["steps"][0]
    assert cold["top"][0][1] > hot["top"][0][1]


def test_empty_prompt_starts_a_review_from_scratch(ids):
    g = inference.generate(ids["lm"], "", n_words=6, seed=0)
    assert g["prompt_tokens"] == ["xxbos"] and len(g["samples"][0]["tokens"]) == 6


@pytest.mark.parametrize("kw,msg", [({"temperature": 0}, "Temperature"), ({"n_words": 0}, "Number of words"),
                                    ({"n_samples": 50}, "Number of samples")])
def test_generation_arguments_checked(ids, kw, msg):
    with pytest.raises(inference.InferenceError, match=msg):
        inference.generate(ids["lm"], "The film", **kw)


def test_detokenize_restores_what_the_rules_changed():
    toks = ["xxbos", "xxmaj", "it", "'s", "xxup", "great", "xxrep", "3", "!", "i", "do", "n't", "know", "."]
    assert inference.detokenize(toks) == "It's GREAT!!! I don't know."


# ----------------------------------------------------------------------------------------------------------- attributions

def test_attributions_give_the_deciding_word_the_largest_score(ids):
    for text, key, label in (("the film was superb and the plot long", tiny_models.KEY_POS, "positive"),
                             ("a scene with superb music in it", tiny_models.KEY_POS, "positive"),
                             ("the plot was awful and the cast quite long", tiny_models.KEY_NEG, "negative")):
        attr = inference.attributions(ids["flip"], text)
        assert attr["label"] == label
        best = max(attr["words"], key=lambda w: w["score"])
        assert best["text"] == key, [(w["text"], round(w["score"], 3)) for w in attr["words"]]
        assert attr["method"].startswith("Occlusion")
    # and leaving that word out is what the score says: the drop in confidence
    attr = inference.attributions(ids["flip"], "the film was superb")
    without = inference.predict(ids["flip"], "the film was")["probs"]["positive"]
    superb = next(w for w in attr["words"] if w["text"] == "superb")
    assert superb["score"] == pytest.approx(attr["prob"] - without, abs=1e-5)


def test_attribution_words_are_what_a_person_sees(ids):
    attr = inference.attributions(ids["clas"], "The ACTING was sooooo bad!!!")
    words = [w["text"] for w in attr["words"]]
    assert words[:2] == ["The", "ACTING"] and "xxmaj" not in words and "xxbos" not in words


def test_subword_model_predicts_and_attributes(ids):
    res = inference.predict(ids["sub"], "An unforgettable performance.")
    assert res["label"] in ("negative", "positive")
    attr = inference.attributions(ids["sub"], "An unforgettable performance.")
    assert "".join(w["text"] for w in attr["words"]).replace(" ", "").lower().startswith("anunforgettable")


# ----------------------------------------------------------------------------------------------------------- CSV

def test_score_csv_adds_columns_and_escapes_formulas(ids):
    data = b"id,review\n1,=HYPERLINK(\"http://x\")\n2,+1 great\n3,\n4,@SUM(A1)\n5,\"-2, awful\"\n6,\ttab\n"
    out = inference.score_csv(ids["clas"], data, "review")
    assert list(out.columns[:2]) == ["id", "review"]
    assert {"prediction", "confidence", "p_negative", "p_positive", "note"} <= set(out.columns)
    assert out.loc[2, "prediction"] == "" and "empty" in out.loc[2, "note"]
    csv = inference.safe_csv(out).decode()
    back = pd.read_csv(io.StringIO(csv), dtype=str, keep_default_na=False)
    for cell in back["review"]:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert back.loc[0, "review"] == "'=HYPERLINK(\"http://x\")"
    assert back.loc[4, "review"] == "'-2, awful"


def test_csv_without_the_column_gets_a_message(ids):
    with pytest.raises(inference.InferenceError, match="no column 'text'.*'id', 'review'"):
        inference.score_csv(ids["clas"], b"id,review\n1,good\n", "text")
    with pytest.raises(inference.InferenceError, match="empty"):
        inference.score_csv(ids["clas"], b"", "text")


# ----------------------------------------------------------------------------------------------------------- interpret

def test_interpretation_confusion_and_top_mistakes(ids):
    corpus = datasets.load("demo")
    it = interpret.interpret(ids["clas"], corpus, top=5)
    valid = datasets.classifier_frame(corpus).query("is_valid")
    assert it.n_docs == len(valid) == int(it.confusion.values.sum())
    assert list(it.confusion.index) == list(it.confusion.columns) == ["negative", "positive"]
    diag = sum(it.confusion.loc[k, k] for k in it.labels)
    assert it.accuracy == pytest.approx(diag / it.n_docs)
    assert len(it.mistakes) == min(5, it.n_docs - diag)
    assert (it.mistakes["actual"] != it.mistakes["predicted"]).all()
    assert list(it.mistakes["loss"]) == sorted(it.mistakes["loss"], reverse=True)


def test_interpretation_samples_large_validation_sets(ids):
    it = interpret.interpret(ids["flip"], datasets.Corpus("flip", tiny_models.flip_frame().assign(
        split=lambda d: d["is_valid"].map({True: "valid", False: "train"}))[["text", "label", "split"]]),
        max_docs=20)
    assert it.n_docs == 20 and it.n_valid == 48 and any("sample" in n for n in it.notes)
    assert it.accuracy > 0.6  # a third of these texts carry no key word and a coin-flip label


def test_interpretation_refuses_an_unlabelled_corpus(ids):
    df = pd.DataFrame({"text": ["a", "b"], "label": ["", ""], "split": ["train", "valid"]})
    with pytest.raises(datasets.CorpusError, match="no labels"):
        interpret.interpret(ids["clas"], datasets.Corpus("u", df))


# ----------------------------------------------------------------------------------------------------------- CLI

def test_cli_predict_generate_and_models(ids, capsys, tmp_path):
    assert main(["predict", "--model", ids["clas"], "--text", "Loved it <b>a lot</b>", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"label", "probs"} and out["label"] in out["probs"]

    args = ["generate", "--model", "latest", "--prompt", "The film", "--n-words", "6", "--temperature", "0.8",
            "--seed", "4", "--n-samples", "2", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == first and len(first["texts"]) == 2

    assert main(["models", "list", "--json"]) == 0
    assert {r["id"] for r in json.loads(capsys.readouterr().out)} >= {ids["lm"], ids["clas"]}
    zpath = tmp_path / "m.zip"
    assert main(["models", "export", ids["clas"], "--out", str(zpath)]) == 0
    capsys.readouterr()
    assert main(["models", "import", str(zpath)]) == 0
    new = capsys.readouterr().out.strip()
    assert main(["models", "rename", new, "imported copy"]) == 0
    assert models.get(new)["name"] == "imported copy"
    assert main(["models", "delete", new]) == 0
    assert new not in {r["id"] for r in models.list_models()}


def test_cli_predict_csv_and_its_errors(ids, capsys, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,review\n1,=1+1 lovely\n2,dull and slow\n")
    out = tmp_path / "out.csv"
    assert main(["predict", "--model", "latest", "--csv", str(src), "--text-col", "review", "--out", str(out)]) == 0
    df = pd.read_csv(out, dtype=str)
    assert len(df) == 2 and df.loc[0, "review"] == "'=1+1 lovely" and set(df["prediction"]) <= {"negative", "positive"}
    assert "Scored 2 of 2 texts" in capsys.readouterr().err  # progress on stderr; stdout keeps the summary
    assert main(["predict", "--csv", str(src), "--text-col", "text", "--out", str(out)]) == 1
    assert "no column 'text'" in capsys.readouterr().err
    assert main(["predict", "--model", ids["lm"], "--text", "x"]) == 1
    assert "is not a classifier" in capsys.readouterr().err
    assert main(["predict", "--text", ""]) == 1
    assert "empty" in capsys.readouterr().err


def test_cli_without_models_says_what_to_do(capsys):
    assert main(["predict", "--model", "latest", "--text", "good"]) == 1
    assert "train one first" in capsys.readouterr().err
    assert main(["models", "list"]) == 0
    assert "No models yet" in capsys.readouterr().out
