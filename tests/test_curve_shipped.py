"""The label-efficiency curves shipped with the app (`assets/curves`, saved with `curve --show GROUP --save FILE`):
read back from the real files, shown on the Models page of a machine that has measured none (and after the user's
own), a damaged file named without hiding the others, and unfinished or tiny curves refused by `--save`."""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from support import REPO, run_page
from ulmfit_demo.models import starter
from ulmfit_demo.runs import curve
from ulmfit_demo.ui import curve as curve_ui


def cli(*args):
    return subprocess.run([sys.executable, "-m", "ulmfit_demo", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))


def test_the_shipped_curves_read_back_as_measured():
    got, problems = curve.shipped()
    assert problems == []
    by = {d["dataset"]: d for d in got}
    assert set(by) == {"imdb", "yelp_sentences"}
    for d in got:
        saved = json.loads((curve.SHIPPED_DIR / d["file"]).read_text())
        # The table and the sentence are worked out again from the points, and agree with what was saved.
        assert d["sentence"] == saved["sentence"]
        assert pd.DataFrame(d["summary"])[["method", "labels", "n"]].equals(
            pd.DataFrame(saved["summary"])[["method", "labels", "n"]])
        pts = pd.DataFrame(d["points"])
        assert set(pts["method"]) == {"baseline", "ulmfit", "scratch"} and pts["accuracy"].between(0, 1).all()
        assert sorted(pts["seed"].unique()) == [42, 43, 44] and not d["tiny"] and d["status"] == "SUCCEEDED"
        assert d["measured"]["wall_s"] > 60 and "CPU" in d["measured"]["device"]
        assert d["lm_start"] == "starter" and d["measured"]["starter_built"]
    # What the measured IMDb curve says: ULMFiT ahead at the fewest labels, the lines crossing, the baseline ahead at
    # 2,000 (figures of the curve's own points, independently of `sentence`).
    imdb = pd.DataFrame(by["imdb"]["points"]).groupby(["method", "labels"])["accuracy"].mean()
    assert imdb["ulmfit", 50] > imdb["baseline", 50] and imdb["ulmfit", 2000] < imdb["baseline", 2000]
    assert all(imdb["ulmfit", n] > imdb["scratch", n] for n in (50, 100, 200, 500, 1000, 2000))
    assert by["imdb"]["sentence"].startswith("The lines cross near")


def test_the_caption_says_which_starter_and_whether_it_is_the_one_shipped_now():
    d = next(x for x in curve.shipped()[0] if x["dataset"] == "imdb")
    cap = curve_ui.shipped_caption(d)
    assert "Measured when the app was built" in cap and "CPU (2 cores)" in cap and "3 seeds" in cap
    assert d["measured"]["note"] in cap
    now = (starter.card() or {}).get("built")
    assert ("the one shipped now" in cap) == (now == d["measured"]["starter_built"])
    other = {**d, "measured": {**d["measured"], "starter_built": "2001-01-01 00:00:00"}}
    assert "not the one shipped now" in curve_ui.shipped_caption(other)
    older = {**d, "measured": {**d["measured"], "starter_built": None}}
    assert "older than the one shipped now" in curve_ui.shipped_caption(older)


def test_a_fresh_machine_shows_the_shipped_curves_on_the_models_page():
    at = run_page("pages/models.py")
    box = at.selectbox(key="mdl_curve_group")
    assert box.options and all("measured when the app was built" in o for o in box.options)
    assert any("No curve measured on this machine yet" in c.value for c in at.caption)
    d = next(x for x in curve.shipped()[0] if f"shipped:{x['file']}" == box.value)
    assert any(d["sentence"] in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) >= 1
    assert any("Measured when the app was built" in c.value for c in at.caption)
    other = next(k for k in ("shipped:imdb.json", "shipped:yelp_sentences.json") if k != box.value)
    box.set_value(other).run()
    assert not at.exception
    d2 = next(x for x in curve.shipped()[0] if f"shipped:{x['file']}" == other)
    assert any(d2["sentence"] in m.value for m in at.markdown)


def test_a_damaged_shipped_curve_is_named_and_the_others_still_show(tmp_path, monkeypatch):
    folder = tmp_path / "curves"
    folder.mkdir()
    good = (curve.SHIPPED_DIR / "imdb.json").read_bytes()
    (folder / "imdb.json").write_bytes(good)
    (folder / "broken.json").write_text('{"format": 1, "points": [')
    (folder / "odd.json").write_text(json.dumps({"format": 1, "points": [{"labels": 10, "method": "magic",
                                                                          "accuracy": 3}], "measured": {}}))
    monkeypatch.setenv("ULMFIT_DEMO_CURVES", str(folder))
    got, problems = curve.shipped()
    assert [d["file"] for d in got] == ["imdb.json"]
    assert len(problems) == 2 and all("restore it from git" in p for p in problems)
    assert any("broken.json" in p for p in problems) and any("odd.json" in p and "methods" in p for p in problems)
    at = run_page("pages/models.py")
    assert any("broken.json" in w.value for w in at.warning)
    assert at.selectbox(key="mdl_curve_group").options == ["imdb: measured when the app was built"]
    assert (folder / "broken.json").read_text() == '{"format": 1, "points": ['  # nothing is rewritten or removed


def test_no_curve_anywhere_says_how_to_start_one(tmp_path, monkeypatch):
    monkeypatch.setenv("ULMFIT_DEMO_CURVES", str(tmp_path / "none"))
    at = run_page("pages/models.py")
    assert any("No label-efficiency curve yet" in i.value for i in at.info)
    assert not any(s.key == "mdl_curve_group" for s in at.selectbox)


@pytest.mark.parametrize("args, says", [
    (["--save", "x.json"], "--save FILE goes with --show GROUP"),
    (["--show", "curve-nope", "--note", "n"], "--note goes with --save FILE"),
    (["--show", "curve-nope", "--save", "x.json"], "There is no curve 'curve-nope'"),
])
def test_save_refuses_what_it_cannot_save(tmp_path, args, says):
    p = cli("curve", *[str(tmp_path / a) if a == "x.json" else a for a in args])
    assert p.returncode == 1 and says in p.stderr, p.stderr
    assert not (tmp_path / "x.json").exists()
