"""Judging a model: calibration (ECE, temperature scaling, held-out protocol), the OOD set and the TF-IDF baseline.
Real numpy/sklearn objects on tiny inputs; one test fits the baseline on imdb_sample (seconds)."""
import csv
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ulmfit_demo.judge import baseline, calibration, ood


# ---- calibration -------------------------------------------------------------------------------------------------

def overconfident(n=4000, k=3, factor=3.0, seed=0):
    "Labels drawn from softmax(true logits), logits shown x `factor`: perfectly calibrated at T = factor."
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, size=(n, k))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = (rng.random(n)[:, None] > p.cumsum(1)).sum(1)
    return z * factor, y


def test_ece_by_hand():
    # top-class confidences 0.9, 0.8, 0.6, 0.55; 15 bins of width 1/15:
    # 0.9 -> (0.8667, 0.9333] and 0.8 -> (0.7333, 0.8], 0.6 -> (0.5333, 0.6], 0.55 -> (0.5333, 0.6]
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.45, 0.55]])
    labels = np.array([0, 0, 0, 1])  # right, wrong, right, right
    # bins: {0.9: acc 1}, {0.8: acc 0}, {0.6, 0.55: acc 1, conf 0.575}
    want = 0.25 * abs(1 - 0.9) + 0.25 * abs(0 - 0.8) + 0.5 * abs(1 - 0.575)
    assert calibration.ece(probs, labels) == pytest.approx(want, abs=1e-12)
    r = calibration.reliability(probs, labels)
    assert len(r) == 15 and r["count"].sum() == 4
    row = r[r["count"] == 2].iloc[0]
    assert row["confidence"] == pytest.approx(0.575) and row["accuracy"] == 1.0
    assert row["bin_lo"] == pytest.approx(8 / 15) and row["bin_hi"] == pytest.approx(9 / 15)
    assert r["confidence"].isna().sum() == 12  # empty bins are NaN, not zero


def test_temperature_undoes_known_overconfidence():
    logits, y = overconfident()
    T = calibration.fit_temperature(logits, y)
    assert T == pytest.approx(3.0, rel=0.1)
    before = calibration.ece(calibration.apply_temperature(logits, 1.0), y)
    after = calibration.ece(calibration.apply_temperature(logits, T), y)
    assert before > 0.1 and after < 0.03 and after < before / 4


def test_temperature_edge_cases():
    # separable: NLL keeps falling as T -> 0, the clamp holds it
    logits = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 2.0]])
    assert calibration.fit_temperature(logits, np.array([1, 0, 1])) == pytest.approx(calibration.T_MIN, rel=1e-6)
    # always wrong: the flattest allowed softmax
    assert calibration.fit_temperature(logits, np.array([0, 1, 0])) == pytest.approx(calibration.T_MAX, rel=1e-6)
    assert calibration.fit_temperature(np.zeros((0, 2)), np.zeros(0, int)) == 1.0
    p = calibration.apply_temperature(np.array([[1000.0, -1000.0]]), 0.05)  # no overflow
    assert np.isfinite(p).all() and p.sum() == pytest.approx(1.0)


def test_cross_fit_measures_on_held_out_rows():
    logits, y = overconfident(n=1000, k=2)
    r = calibration.cross_fit(logits, y, n_folds=2, seed=0)
    assert r["temperature"] == calibration.fit_temperature(logits, y)
    assert len(r["fold_temperatures"]) == 2 and r["n"] == 1000
    assert r["ece"] < r["ece_uncalibrated"] / 2 and r["nll"] < r["nll_uncalibrated"]
    assert calibration.cross_fit(logits, y, seed=0) == r  # seeded
    with pytest.raises(ValueError, match="at least 2"):
        calibration.cross_fit(logits[:1], y[:1])


def test_a_temperature_that_hurts_on_held_out_rows_is_left_off():
    from ulmfit_demo.judge import report

    # 60 rows already calibrated (T = 1 is right): the T fitted on them is noise, and on seed 2 it makes the ECE
    # measured on rows it was not fitted on worse (0.153 -> 0.179)
    logits, y = overconfident(n=60, k=2, factor=1.0, seed=2)
    cf = calibration.cross_fit(logits, y, seed=0)
    assert cf["ece"] > cf["ece_uncalibrated"] and cf["temperature"] != 1.0
    cal = report.calibrate(logits, y, seed=0)
    assert cal["applied"] is False and cal["temperature"] == 1.0  # what predictions use
    assert cal["fitted_temperature"] == cf["temperature"] and cal["ece_temperature"] == cf["ece"]  # on record
    assert cal["ece"] == cal["ece_uncalibrated"] == cf["ece_uncalibrated"]  # the ECE of what is used
    assert cal["reliability"] is None and cal["reliability_uncalibrated"]  # no curve for a scaling not applied
    m = report.calibration_metrics(cal)
    assert m["temperature"] == 1.0 and m["temperature_tried"] == cf["temperature"]
    words = report.calibration_words(m)
    assert f"(T = {cf['temperature']:.2f}) was left off" in words and f"({cf['ece']:.3f})" in words
    # where it helps, it is applied and reported as before
    logits, y = overconfident(n=1000, k=2)
    cal = report.calibrate(logits, y, seed=0)
    assert cal["applied"] is True and cal["temperature"] == pytest.approx(3.0, rel=0.15)
    assert cal["ece"] < cal["ece_uncalibrated"] and cal["reliability"]
    m = report.calibration_metrics(cal)
    assert "temperature_tried" not in m
    assert f"-> {cal['ece']:.3f} after temperature scaling (T = {cal['temperature']:.2f})" in \
        report.calibration_words(m)
    assert report.calibration_metrics(None) == {} and report.calibration_words({}) == ""


# ---- out-of-domain set -------------------------------------------------------------------------------------------

def test_ood_csv_is_a_balanced_varied_set():
    with open(ood.CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 150
    labels = [r["label"] for r in rows]
    assert set(labels) == {"positive", "negative"}
    assert abs(labels.count("positive") - labels.count("negative")) <= 0.1 * len(rows)
    assert len({r["domain"] for r in rows}) >= 4
    texts = [r["text"].strip().lower() for r in rows]
    assert len(set(texts)) == len(texts)
    assert all(r["text"].strip() for r in rows)


def test_ood_score_matches_a_hand_count():
    def says_good(texts):
        return ["positive" if ("good" in t.lower() or "love" in t.lower()) else "negative" for t in texts]

    with open(ood.CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    right = [says_good([r["text"]])[0] == r["label"] for r in rows]
    film = [ok for ok, r in zip(right, rows) if r["domain"] == "film"]
    short = [ok for ok, r in zip(right, rows) if r["phenomenon"] == "short"]
    n_pos = sum(("good" in r["text"].lower() or "love" in r["text"].lower()) for r in rows)

    s = ood.score(says_good)
    assert s["n"] == len(rows)
    assert s["ood_accuracy"] == pytest.approx(sum(right) / len(rows))
    assert s["by_domain"]["film"] == pytest.approx(sum(film) / len(film))
    assert s["by_phenomenon"]["short"] == pytest.approx(sum(short) / len(short))
    assert s["positive_rate"] == pytest.approx(n_pos / len(rows))
    assert set(s["by_domain"]) == {r["domain"] for r in rows}


def test_ood_rejects_foreign_labels():
    with pytest.raises(ValueError, match="only judges a positive/negative"):
        ood.score(lambda texts: ["pos"] * len(texts))
    with pytest.raises(ValueError, match="returned 1 labels"):
        ood.score(lambda texts: ["positive"])


# ---- baseline ----------------------------------------------------------------------------------------------------

TRAIN = [
    ("An excellent film, I loved it.", "positive"), ("Excellent acting and a great story.", "positive"),
    ("Great fun, wonderful cast.", "positive"), ("I loved the music, excellent.", "positive"),
    ("A wonderful, moving story.", "positive"), ("Great photography and excellent pacing.", "positive"),
    ("A terrible film, I hated it.", "negative"), ("Awful acting and a boring story.", "negative"),
    ("Boring, terrible cast.", "negative"), ("I hated the music, awful.", "negative"),
    ("A dull, boring story.", "negative"), ("Terrible photography and awful pacing.", "negative"),
]


@pytest.fixture(scope="module")
def tiny():
    texts, labels = zip(*TRAIN)
    return baseline.fit(list(texts), list(labels))


def test_baseline_predicts_and_explains(tiny):
    assert tiny.labels == ["negative", "positive"]
    assert tiny.predict(["an excellent story", "a boring, awful story"]) == ["positive", "negative"]
    p = tiny.predict_proba(["excellent", "awful"])
    assert p.shape == (2, 2) and np.allclose(p.sum(1), 1)
    # logits are [-d/2, d/2]: softmax equals sklearn's logistic probabilities
    from sklearn.linear_model import LogisticRegression
    texts, labels = zip(*TRAIN)
    lr = LogisticRegression(C=tiny.params["C"], max_iter=3000).fit(tiny.vectorizer.transform(texts), labels)
    assert np.allclose(p, lr.predict_proba(tiny.vectorizer.transform(["excellent", "awful"])), atol=1e-9)

    text = "The plot was Excellent, really."
    ww = tiny.word_weights(text)
    assert [w for w, _ in ww] == ["The", "plot", "was", "Excellent", "really"]  # every word, in order, as written
    score = dict(ww)
    assert score["Excellent"] > 0 and score["Excellent"] == max(score.values())
    d = float(tiny.logits([text])[0, 1] * 2)  # the decision function, toward "positive" (the predicted label)
    assert sum(s for _, s in ww) == pytest.approx(d - tiny.intercept[0], abs=1e-9)
    # toward the predicted label: for a negative text, "awful" pushes toward it
    assert dict(tiny.word_weights("awful acting"))["awful"] > 0


def test_baseline_multiclass():
    texts = ["good fun", "great fun", "bad day", "awful day", "okay meh", "fine meh"] * 2
    labels = ["pos", "pos", "neg", "neg", "mid", "mid"] * 2
    m = baseline.fit(texts, labels)
    assert m.labels == ["mid", "neg", "pos"] and m.predict_proba(["great"]).shape == (1, 3)
    assert m.predict(["good great fun"]) == ["pos"]
    ww = m.word_weights("great fun")
    assert sum(s for _, s in ww) == pytest.approx(m.logits(["great fun"])[0, 2] - m.intercept[2], abs=1e-9)


def test_baseline_save_load_round_trip(tiny, tmp_path):
    tiny.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"baseline.json", "baseline.safetensors"}
    meta = json.loads((tmp_path / "baseline.json").read_text())
    assert meta["labels"] == tiny.labels and "sklearn_version" in meta and meta["params"]["C"] == tiny.params["C"]
    back = baseline.load(tmp_path)
    probe = ["excellent", "an awful, boring film", "words never seen before", "", "Great fun but terrible music."]
    assert back.labels == tiny.labels
    assert np.abs(back.predict_proba(probe) - tiny.predict_proba(probe)).max() < 1e-9
    assert np.abs(back.logits(probe) - tiny.logits(probe)).max() < 1e-9
    (w1, s1), (w2, s2) = zip(*back.word_weights(probe[4])), zip(*tiny.word_weights(probe[4]))
    assert w1 == w2 and np.allclose(s1, s2, rtol=0, atol=1e-9)


@pytest.mark.parametrize("damage", ["truncate_json", "truncate_weights", "missing_weights", "wrong_shape"])
def test_baseline_damaged_files_say_so(tiny, tmp_path, damage):
    tiny.save(tmp_path)
    j, w = tmp_path / "baseline.json", tmp_path / "baseline.safetensors"
    if damage == "truncate_json":
        j.write_text(j.read_text()[:50])
    elif damage == "truncate_weights":
        w.write_bytes(w.read_bytes()[:20])
    elif damage == "missing_weights":
        w.unlink()
    else:
        meta = json.loads(j.read_text())
        meta["labels"] = ["a", "b", "c"]  # three labels need three coefficient rows
        j.write_text(json.dumps(meta))
    bad = j if damage == "truncate_json" else w
    with pytest.raises(ValueError, match="refit the baseline") as e:
        baseline.load(tmp_path)
    assert str(bad) in str(e.value)


def imdb_sample_csv(tmp_path: Path) -> Path:
    "imdb_sample/texts.csv extracted from the mirror: a missing archive fails under CI and skips elsewhere."
    archive = Path(os.environ.get("ULMFIT_DEMO_MIRROR") or "/work/shared/data") / "imdb_sample.tgz"
    if not archive.is_file():
        msg = f"{archive} not found (set ULMFIT_DEMO_MIRROR to the folder holding imdb_sample.tgz)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    with tarfile.open(archive) as tf:
        member = next(m for m in tf.getmembers() if m.name.endswith("imdb_sample/texts.csv") and m.isfile())
        out = tmp_path / "texts.csv"
        out.write_bytes(tf.extractfile(member).read())  # one file, written by name: no path from the archive is used
    return out


def test_baseline_on_imdb_sample(tmp_path):
    df = pd.read_csv(imdb_sample_csv(tmp_path))
    tr, va = df[~df.is_valid], df[df.is_valid]
    assert (len(tr), len(va)) == (800, 200)
    m = baseline.fit(tr.text.tolist(), tr.label.tolist())
    acc = float((np.array(m.predict(va.text.tolist())) == va.label.to_numpy()).mean())
    assert acc >= 0.85, acc
    # the held-out calibration protocol runs on the baseline's own logits
    y = np.array([m.labels.index(l) for l in va.label])
    r = calibration.cross_fit(m.logits(va.text.tolist()), y)
    assert calibration.T_MIN <= r["temperature"] <= calibration.T_MAX and 0 <= r["ece"] <= 1


def test_ood_score_of_a_tiny_real_model_equals_a_hand_count(ids):
    "The score of a real (tiny fastai) classifier through the app's batch path equals counting its one-by-one verdicts."
    from ulmfit_demo.models import inference

    df = ood.load()
    one_by_one = [inference.predict(ids["flip"], t)["label"] for t in df["text"]]
    hand = sum(v == lab for v, lab in zip(one_by_one, df["label"]))
    res = ood.score(lambda texts: [r["label"] for r in inference.predict_batch(ids["flip"], texts)])
    assert res["n"] == len(df) and res["ood_accuracy"] == pytest.approx(hand / len(df), abs=1e-12)
    # The share called positive is counted the same way. (The flip model has no key word to go on in these
    # sentences, so its verdicts sit near 0.5: on a fresh clone they once all came out positive, so the test no
    # longer asks that they go both ways.)
    assert res["positive_rate"] == pytest.approx(one_by_one.count("positive") / len(df), abs=1e-12)
