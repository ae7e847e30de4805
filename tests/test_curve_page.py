"""The Train page's label-efficiency curve form under AppTest: bad label counts are refused with a message and store
nothing; a tiny curve on the mirror's imdb_sample is queued as real runs (one LM run, one run per point), its live
table lists them, and Cancel stops them all."""
import pytest

from support import run_page
from test_runs import wait_final
from ulmfit_demo.data import corpora
from ulmfit_demo.runs import curve, store


@pytest.fixture
def sample(imdb_sample_archive):
    return corpora.load("imdb_sample")


def test_the_curve_form_refuses_bad_labels_then_queues_a_tiny_curve(sample):
    at = run_page("pages/train.py", train_curve_corpus="imdb_sample")
    at.text_input(key="train_curve_labels").set_value("ten, 20").run()
    at.button(key="train_curve_start").click().run()
    assert not at.exception
    assert any("whole numbers separated by commas" in e.value for e in at.error)
    assert store.list_runs() == []

    at.text_input(key="train_curve_labels").set_value("10,20").run()
    at.number_input(key="train_curve_seeds").set_value(1).run()
    at.checkbox(key="train_curve_tiny").check().run()
    at.button(key="train_curve_start").click().run()
    assert not at.exception, at.exception
    runs = store.list_runs()
    assert sorted(r["kind"] for r in runs) == ["curve", "curve", "lm"]
    group = curve.curves(runs)[0]
    try:
        check_queued(at, runs, group)
    finally:  # never leave its workers running past the test
        curve.cancel(group)
        for r in runs:
            assert wait_final(r["id"])["status"] == store.CANCELLED
    assert curve.status(group)["status"] == store.CANCELLED


def check_queued(at, runs, group):
    assert any(f"Curve {group} queued" in s.value for s in at.success)
    points = [r for r in runs if r["kind"] == "curve"]
    assert sorted(r["config"]["labels"] for r in points) == [10, 20]
    assert all(r["config"]["eval_rows"] == curve.TINY["eval_rows"] for r in points)  # tiny: its own rows
    # Scratch on the first seed (the form's default), which is the only one here.
    assert all(r["config"]["curve_methods"] == "baseline,ulmfit,scratch" for r in points)
    table = next(d.value for d in at.dataframe if "what" in d.value.columns)
    assert list(table["what"]) == ["LM fine-tuning (once)", "10 labels, seed 42", "20 labels, seed 42"]
    assert not at.button(key="train_curve_cancel").disabled
    at.button(key="train_curve_cancel").click().run()
    assert not at.exception
    assert all(store.get(r["id"])["status"] == store.CANCELLED or store.get(r["id"])["cancel_requested"]
               for r in runs)
