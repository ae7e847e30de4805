"""The label-efficiency curve (#19) on the mirror's real `imdb_sample`: which rows a point reads (balanced, nested,
fixed evaluation and selection rows), the schedule per number of labels, the sentence's logic, and the whole path as
a real `curve --tiny` subprocess (real background workers, fastai, SQLite) whose stored points the chart, the CSV and
the Models page read back; a point cancelled mid-classifier resumes from its checkpoint without fitting again what it
had measured."""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from support import REPO, run_page
from test_runs import wait_final, wait_for
from ulmfit_demo.data import corpora
from ulmfit_demo.runs import curve, store
from ulmfit_demo.runs.callback import DELAY_ENV
from ulmfit_demo.train import presets
from ulmfit_demo.train.presets import ConfigError


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "ulmfit_demo", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(REPO)))


@pytest.fixture
def sample(imdb_sample_archive):
    return corpora.load("imdb_sample")


def point(n, seed=42, **kw):
    return presets.QUICK.with_(**{"labels": n, "seed": seed, "eval_rows": 100, "select_rows": 40, **kw})


def test_rows_are_balanced_nested_and_the_evaluation_rows_fixed(sample):
    a = curve.rows(sample, point(50))
    b = curve.rows(sample, point(100))
    c = curve.rows(sample, point(50, seed=43))
    frame = a.frame
    for r in (a, b, c):
        assert r.eval["label"].value_counts().to_dict() == {"negative": 50, "positive": 50}
        assert r.select["label"].value_counts().to_dict() == {"negative": 20, "positive": 20}
        assert r.eval["is_valid"].all() and not r.select["is_valid"].any() and not r.labelled["is_valid"].any()
        # Never a labelled text among the held-out or evaluation rows.
        assert not set(r.labelled.index) & (set(r.select.index) | set(r.eval.index))
        assert r.pool == int((~frame["is_valid"]).sum()) - 40
    assert a.labelled["label"].value_counts().to_dict() == {"negative": 25, "positive": 25}
    assert b.labelled["label"].value_counts().to_dict() == {"negative": 50, "positive": 50}
    # The same evaluation and selection rows whatever the labels and the seed; labels nested within a seed.
    assert list(a.eval.index) == list(b.eval.index) == list(c.eval.index)
    assert list(a.select.index) == list(c.select.index)
    assert set(a.labelled.index) < set(b.labelled.index)
    assert set(a.labelled.index) != set(c.labelled.index)
    # An odd number: one more of the first label, still all distinct rows.
    odd = curve.rows(sample, point(51)).labelled
    assert odd["label"].value_counts().to_dict() == {"negative": 26, "positive": 25} and odd.index.is_unique
    with pytest.raises(ConfigError, match="Lower eval_rows"):
        curve.rows(sample, point(50, eval_rows=1000))  # imdb_sample has 200 validation rows
    with pytest.raises(ConfigError, match="5,000 labels"):
        curve.rows(sample, point(5000))


def test_schedule_holds_the_steps_between_the_bounds():
    q = presets.QUICK  # bs 16, epochs 2 + 1 + 3, 100 to 200 steps
    s50 = curve.schedule(50, q)
    assert s50["repeat"] == 6 and s50["epochs"] == [2, 1, 3] and 100 <= s50["steps"] < 130
    s500 = curve.schedule(500, q)  # 31 batches x 6 epochs = 186: within the bounds, the preset as it is
    assert (s500["repeat"], s500["epochs"], s500["steps"]) == (1, [2, 1, 3], 186)
    s1000 = curve.schedule(1000, q)
    assert s1000["repeat"] == 1 and sum(s1000["epochs"]) < 6 and s1000["steps"] <= 62 * 4
    s2000 = curve.schedule(2000, q)  # each phase still reads every labelled text once
    assert s2000["epochs"] == [1, 1, 1] and s2000["steps"] == 375
    # Fewer labels than a batch: repeated to full batches.
    tiny = curve.schedule(5, q.with_(clas_min_steps=1))
    assert tiny["repeat"] >= 4 and tiny["batches"] >= 1


def _table(rows):
    pts = pd.DataFrame([{"labels": n, "seed": s, "method": m, "accuracy": a, "seconds": 1.0}
                        for n, s, m, a in rows])
    return curve.summary_table(pts)


def test_the_sentence_says_what_the_means_show_and_where_lines_cross():
    below = _table([(50, 0, "baseline", .70), (50, 0, "ulmfit", .60), (500, 0, "baseline", .85),
                    (500, 0, "ulmfit", .80)])
    assert curve.sentence(below).startswith("The TF-IDF baseline is above ULMFiT at every measured point (from 50 "
                                            "to 500 labels), by 5.0 to 10.0 points")
    above = _table([(50, 0, "baseline", .60), (50, 0, "ulmfit", .70), (50, 0, "scratch", .55)])
    s = curve.sentence(above)
    assert s.startswith("ULMFiT is above the TF-IDF baseline at every measured point (at 50 labels)")
    assert "pretraining adds 15.0 to 15.0 points over the same classifier from scratch" in s
    # Seeds averaged: ULMFiT ahead at 100 (mean .75 vs .70), behind at 1,000; geometric midpoint of a linear cross.
    cross = _table([(100, 0, "baseline", .70), (100, 0, "ulmfit", .80), (100, 1, "ulmfit", .70),
                    (100, 1, "baseline", .70), (1000, 0, "baseline", .90), (1000, 0, "ulmfit", .85),
                    (1000, 1, "baseline", .90), (1000, 1, "ulmfit", .85)])
    s = curve.sentence(cross)
    assert s.startswith("The lines cross near 320 labels: ULMFiT is ahead at 100 labels (5.0 points), the baseline "
                        "at 1,000 (5.0 points)"), s
    tied = curve._crossings(pd.Series([.1, 0, -.1], index=[1, 10, 100]), pd.Series([0, 0, 0], index=[1, 10, 100]))
    assert tied == [10.0]
    assert curve._crossings(pd.Series([0, .1], index=[1, 10]), pd.Series([0, 0], index=[1, 10])) == []
    assert "nothing to compare" in curve.sentence(_table([(50, 0, "baseline", .7)]))
    assert curve.sentence(curve.summary_table(curve.points("nope", []))) == ("No point of this curve has been "
                                                                             "measured yet.")


@pytest.mark.slow
def test_tiny_curve_end_to_end_through_the_cli_and_its_points_read_back(sample, tmp_path):
    out_csv = tmp_path / "points.csv"
    p = cli("curve", "--dataset", "imdb_sample", "--labels", "10,20", "--seeds", "1", "--tiny", "--json",
            "--csv", str(out_csv))
    assert p.returncode == 0, p.stderr[-4000:]
    out = json.loads(p.stdout)  # strict JSON: no NaN
    assert out["status"] == store.SUCCEEDED and out["dataset"] == "imdb_sample" and out["tiny"] is True
    pts = pd.DataFrame(out["points"])
    assert sorted(zip(pts["labels"], pts["method"])) == sorted(
        (n, m) for n in (10, 20) for m in ("baseline", "ulmfit", "scratch"))
    assert pts["accuracy"].between(0, 1).all() and (pts["n_eval"] == curve.TINY["eval_rows"]).all()
    assert pts.loc[pts["method"] != "baseline", "steps"].ge(curve.TINY["clas_min_steps"]).all()

    # One LM run for the whole curve, then one run per point, in the queue order, all in `runs list`.
    listed = json.loads(cli("runs", "list", "--json").stdout)
    mine = [r for r in listed if r["run_id"] in {x["id"] for x in out["runs"]}]
    assert sorted(r["kind"] for r in mine) == ["curve", "curve", "lm"]
    lm = store.get(out["lm"])
    pts_runs = [store.get(r["id"]) for r in out["runs"] if r["role"] == "point"]
    assert all(lm["finished"] <= r["started"] + 1e-3 for r in pts_runs)
    assert all(r["config"]["pretrained"] == f"run:{lm['id']}" for r in pts_runs)
    from ulmfit_demo.runs import views

    for r in pts_runs:  # the runs list's figure: ULMFiT beside the baseline, on the point's evaluation rows
        res = r["summary"]["curve_results"]
        assert views.best_metric(r) == (f"accuracy {res['ulmfit']['accuracy']:.3f} "
                                        f"(baseline {res['baseline']['accuracy']:.3f})")

    # The summary and the chart are the stored points, averaged: read the runs' own records independently.
    direct = {}
    for r in pts_runs:
        for m, res in r["summary"]["curve_results"].items():
            direct[(r["summary"]["curve"]["n"], m)] = res["accuracy"]
    table = pd.DataFrame(out["summary"])
    for _, row in table.iterrows():
        assert row["mean"] == pytest.approx(direct[(row["labels"], row["method"])]) and row["n"] == 1
    from ulmfit_demo.ui import curve as curve_ui

    fig = curve_ui.figure(table, pts)
    assert fig.layout.xaxis.type == "log"
    lo, hi = fig.layout.yaxis.range  # within 0-100%, around every value drawn and chance
    drawn = [v for t in fig.data for v in t.y if v is not None]
    assert 0 <= lo <= min(drawn + [0.5]) and max(drawn + [0.5]) <= hi <= 1
    one = curve_ui.figure(table.head(1), None)  # a curve's first point alone: plotly padded that to 150%
    assert one.layout.yaxis.range[1] <= 1 and one.layout.yaxis.range[0] >= 0
    lines = {t.name: list(t.y) for t in fig.data if t.mode == "lines+markers"}
    assert lines[curve.METHOD_NAMES["ulmfit"]] == [direct[(10, "ulmfit")], direct[(20, "ulmfit")]]
    lead = "ULMFiT" if direct[(10, "ulmfit")] > direct[(10, "baseline")] else "baseline"
    assert lead in out["sentence"] or "level" in out["sentence"]
    csv_pts = pd.read_csv(out_csv)
    assert len(csv_pts) == 6 and set(csv_pts["method"]) == {"baseline", "ulmfit", "scratch"}

    # The Models page draws it, with the sentence.
    at = run_page("pages/models.py")
    assert len(at.get("plotly_chart")) >= 1
    assert any(out["sentence"] in m.value for m in at.markdown)
    assert at.selectbox(key="mdl_curve_group").value == out["curve"]  # this machine's own curve first

    # A tiny curve checks the path; it is no measurement to ship (`curve --show G --save F`).
    p = cli("curve", "--show", out["curve"], "--save", str(tmp_path / "c.json"))
    assert p.returncode == 1 and "tiny" in p.stderr and not (tmp_path / "c.json").exists()


@pytest.mark.slow
def test_a_cancelled_point_resumes_from_its_checkpoint(sample, monkeypatch):
    monkeypatch.setenv(DELAY_ENV, "0.05")  # every training batch sleeps: time to cancel mid-classifier
    planned = curve.plan("imdb_sample", [10], 1, tiny=True, corpus=sample, methods="baseline,ulmfit")
    # 200 steps in two epochs (10 labels repeated): the second epoch takes seconds, the cancel lands inside it.
    planned.points = [(n, s, c.with_(clas_min_steps=200, clas_max_steps=200)) for n, s, c in planned.points]
    info = curve.submit_curve("imdb_sample", corpus=sample, planned=planned)
    rid = info["points"][0]["run"]
    ck = store.run_dir(rid) / "checkpoints" / "curve_ulmfit.pth"
    wait_for(lambda: ck.exists(), "the classifier's first epoch", 300, rid)
    curve.cancel(info["curve"])
    assert wait_final(rid)["status"] == store.CANCELLED
    assert set(store.get(rid)["summary"]["curve_results"]) == {"baseline"}  # measured before the cancel, kept
    monkeypatch.delenv(DELAY_ENV)
    assert curve.resume(info["curve"]) == [rid]
    r = wait_final(rid)
    assert r["status"] == store.SUCCEEDED, r["error"]
    ev = store.events(rid)
    assert any(e["kind"] == "resumed" and "curve_ulmfit" in e["message"] for e in ev)
    assert [e["data"]["method"] for e in ev if e["kind"] == "curve_point"] == ["baseline", "ulmfit"]
    assert curve.status(info["curve"])["status"] == store.SUCCEEDED
