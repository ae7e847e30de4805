"""A fresh machine in a real browser (#21): a live server on an empty home with only what ships with the app (the
bundled sentiment model, the starter LM). Generate writes from the default prompt with the starter; Train has Quick
preselected (no GPU here); Sentiment judges two reviews in a row and the What-if follows the second.

Screenshots go to the test's tmp dir, and to $ULMFIT_DEMO_SHOTS when set (to look at them).
"""
import os
import shutil

import pytest
from liveserver import Server
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from webutil import screenshot, wait_for_text, wait_idle

from ulmfit_demo import system
from ulmfit_demo.models import registry

pytestmark = pytest.mark.browser

FIRST = "What a wonderful film! The acting is superb and the soundtrack is gorgeous."
SECOND = "The headphones stopped working after a week. Very disappointed."


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, fastai_home):
    "A server on an empty home that sees the shipped models (the test suite hides the bundled one by default)."
    saved = {k: os.environ.get(k) for k in ("ULMFIT_DEMO_BUNDLED", "ULMFIT_DEMO_STARTER")}
    os.environ["ULMFIT_DEMO_BUNDLED"] = str(registry.BUNDLED_DIR)
    os.environ.pop("ULMFIT_DEMO_STARTER", None)
    try:
        s = Server(tmp_path_factory.mktemp("fresh_home") / "home", fastai_home)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    yield s
    s.stop()


def shot(driver, name):
    p = screenshot(driver, name)
    if os.environ.get("ULMFIT_DEMO_SHOTS"):
        os.makedirs(os.environ["ULMFIT_DEMO_SHOTS"], exist_ok=True)
        shutil.copy(p, os.path.join(os.environ["ULMFIT_DEMO_SHOTS"], p.name))
    return p


def no_exception(driver):
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')


def test_generate_writes_with_the_starter_on_an_empty_home(fresh, driver):
    driver.get(f"{fresh.url}/generate")
    wait_for_text(driver, "Sample 1", timeout=180)
    wait_idle(driver, timeout=120)
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "Starter language model" in body and "no trained language model" not in body
    assert "I liked this movie because" in body and "Why that word?" in body
    no_exception(driver)
    shot(driver, "generate-starter")


@pytest.mark.skipif(system.device_info()["device"] == "cuda", reason="what a machine without a GPU shows")
def test_train_preselects_quick_without_a_gpu(fresh, driver):
    driver.get(f"{fresh.url}/train")
    wait_for_text(driver, "Preset", timeout=120)
    wait_idle(driver)
    checked = driver.find_elements(By.CSS_SELECTOR, '.st-key-train_preset input[type="radio"]:checked')
    labels = driver.find_elements(By.CSS_SELECTOR, '.st-key-train_preset label')
    picked = [lab.text for lab in labels if lab.find_elements(By.CSS_SELECTOR, "input:checked")]
    assert len(checked) == 1 and picked == ["Quick"], picked
    no_exception(driver)
    shot(driver, "train-quick")
    # Picking ULMFiT shows its time on this CPU (measured there and then) before Start can be pressed.
    next(lab for lab in labels if lab.text == "ULMFiT").click()
    wait_for_text(driver, "would train for about", timeout=300)
    wait_idle(driver)
    shot(driver, "train-ulmfit-estimate")


def _type_review(driver, text):
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait_idle(driver)
    box = WebDriverWait(driver, 60).until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".st-key-sent_text textarea")))
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(text)
    box.send_keys(Keys.CONTROL, Keys.ENTER)


def _what_if_word(driver) -> str:
    "The word the What-if box shows, as the browser draws it ('stopped  (word 3)' -> 'stopped')."
    import re

    el = driver.find_element(By.CSS_SELECTOR, ".st-key-sent_whatif_word")
    shown = driver.execute_script("return arguments[0].innerText + ' ' + Array.from(arguments[0]"
                                  ".querySelectorAll('input')).map(i => i.value).join(' ')", el)
    m = re.search(r"(\S+)\s+\(word \d+\)", shown)
    assert m, shown
    return m.group(1)


def _settled_what_if(driver, review: str, marker: str, timeout: float = 90) -> tuple[str, str]:
    """(the What-if box's word, the page text from "What if..." on) once the page's last run drew them for `review`:
    the box shows a word of it and the preview is that review without that word (`marker`: a word only it has).
    Reading while Streamlit reruns would see a mix of two runs, so this polls; it returns the last state seen."""
    import time

    deadline, word, seen = time.time() + timeout, "", ""
    while time.time() < deadline:
        wait_idle(driver)
        try:
            word = _what_if_word(driver)
            seen = driver.find_element(By.TAG_NAME, "body").text.split("What if...", 1)[-1]
        except Exception:  # noqa: BLE001 - an element replaced mid-read: read again
            time.sleep(0.5)
            continue
        after = seen.split(f'After leaving out "{word}"', 1)
        if word in review and len(after) == 2 and marker in after[1]:
            break
        time.sleep(1)
    return word, seen


def test_sentiment_what_if_follows_the_second_review(fresh, driver):
    driver.get(f"{fresh.url}/sentiment")
    wait_for_text(driver, "confident", timeout=180)
    _type_review(driver, FIRST)
    wait_for_text(driver, "soundtrack", timeout=90)  # in the coloured words: the verdict is this review's
    first, seen = _settled_what_if(driver, FIRST, "soundtrack")
    shot(driver, "sentiment-first-review")
    assert first in FIRST.split() and "soundtrack" in seen.split(f'After leaving out "{first}"', 1)[-1], (first, seen)
    _type_review(driver, SECOND)
    wait_for_text(driver, "headphones", timeout=90)
    word, seen = _settled_what_if(driver, SECOND, "headphones")
    shot(driver, "sentiment-second-review")
    assert word in SECOND.split(), word  # a word of the second review, as the browser draws the box
    after = seen.split(f'After leaving out "{word}"', 1)[-1]
    assert "headphones" in after and "soundtrack" not in seen, seen  # the preview is the second review minus it
    no_exception(driver)


def test_home_alias_marks_home_in_the_sidebar(fresh, driver):
    def background(url):
        driver.get(url)
        wait_for_text(driver, "Where to go", timeout=120)
        wait_idle(driver)
        link = driver.find_element(By.CSS_SELECTOR, '[data-testid="stSidebarNavItems"] li:first-child a')
        return driver.execute_script("return getComputedStyle(arguments[0]).backgroundColor", link)

    at_root = background(f"{fresh.url}/")  # Streamlit marks the current page itself
    at_alias = background(f"{fresh.url}/home")
    shot(driver, "home-alias")
    assert "Models ready" in driver.find_element(By.TAG_NAME, "body").text
    assert at_alias == at_root and at_alias not in ("rgba(0, 0, 0, 0)", "transparent"), (at_root, at_alias)
