"""AppTest: the Train page's preset on a machine without a GPU (#21). Quick is preselected; the ULMFiT preset, once
picked, says how long it would take on this CPU (measured here) before Start can be pressed; a link asking for
`?preset=quick` (Generate's "Quick run on the demo corpus") lands on Quick, and the choice then stays the user's."""
import re

import pytest

from support import run_page
from ulmfit_demo import system
from ulmfit_demo.runs import store

pytestmark = pytest.mark.skipif(system.device_info()["device"] == "cuda", reason="what a machine without a GPU shows")


def test_quick_is_preselected_without_a_gpu():
    at = run_page("pages/train.py")
    assert at.radio(key="train_preset").value == "Quick"
    assert any("starter" in c.value for c in at.caption)  # Quick's own description, not ULMFiT's


def test_the_ulmfit_preset_states_its_cpu_time_before_start():
    at = run_page("pages/train.py")
    at.radio(key="train_preset").set_value("ULMFiT").run()
    assert not at.exception
    said = [w.value for w in at.warning if "ULMFiT preset would train for about" in w.value]
    assert said, [w.value for w in at.warning]
    assert re.search(r"about \d[\d.,]* (seconds|minutes|hours|days)", said[0])
    assert "tokens/s" in said[0] and "400/1152/3" in said[0]
    assert at.button(key="train_start")  # drawn after the estimate, which the run above already showed
    assert store.list_runs() == []  # stating the time starts nothing


def test_a_link_asking_for_quick_lands_on_quick_once():
    from streamlit.testing.v1 import AppTest

    from support import REPO

    at = AppTest.from_file(str(REPO / "pages" / "train.py"), default_timeout=120)
    at.session_state["train_preset"] = "ULMFiT"  # a choice made earlier in the session
    at.query_params["preset"] = "quick"
    at.query_params["corpus"] = "demo"
    at.run()
    assert not at.exception
    assert at.radio(key="train_preset").value == "Quick"
    assert at.selectbox(key="train_corpus").value == "demo"
    at.radio(key="train_preset").set_value("Custom").run()  # the parameter is used once, then the user decides
    assert at.radio(key="train_preset").value == "Custom"

