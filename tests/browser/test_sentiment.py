"""A real browser on a live server: type a review on Sentiment and see the verdict for it; HTML typed in is shown
as text; write reviews on Generate and draw new ones.

The server's home gets the tiny test models (tests/tiny_models.py) before the server is first used; if another
browser test started it earlier, the models still appear because the registry is read from disk on every page run.
"""
import pytest
import tiny_models
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from webutil import find, screenshot, wait_for_text, wait_idle

pytestmark = pytest.mark.browser


@pytest.fixture
def live(browser_home, request):
    tiny_models.install(browser_home)
    return request.getfixturevalue("server")


def _type_review(driver, text):
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait_idle(driver)
    box = WebDriverWait(driver, 60).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, ".st-key-sent_text textarea")))
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(text)
    box.send_keys(Keys.CONTROL, Keys.ENTER)


def test_type_a_review_and_see_its_verdict(live, driver):
    driver.get(f"{live.url}/sentiment")
    wait_for_text(driver, "confident", timeout=120)
    _type_review(driver, "A marvellous, heartfelt film with a stunning cast.")
    wait_for_text(driver, "marvellous", timeout=90)  # the coloured words are those of the new review
    wait_idle(driver)
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "confident" in body and ("Positive" in body or "Negative" in body)
    assert "Which words pushed it" in body and "Occlusion" in body
    screenshot(driver, "sentiment-verdict")
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')


def test_html_typed_into_the_review_is_not_rendered(live, driver):
    driver.get(f"{live.url}/sentiment")
    wait_for_text(driver, "confident", timeout=120)
    _type_review(driver, '<b id="injected">bold</b> <img src=x onerror="document.title=1"> nice film')
    wait_for_text(driver, "nice", timeout=90)
    wait_idle(driver)
    assert not driver.find_elements(By.ID, "injected")
    assert not driver.find_elements(By.CSS_SELECTOR, 'img[src="x"]')
    assert driver.title != "1"
    assert "<" in driver.find_element(By.TAG_NAME, "body").text  # shown as characters


def test_generate_writes_reviews_and_new_seed_gives_new_ones(live, driver):
    driver.get(f"{live.url}/generate")
    wait_for_text(driver, "Sample 1 (seed 0)", timeout=120)
    wait_for_text(driver, "likeliest next words", timeout=60)
    first = driver.find_element(By.TAG_NAME, "body").text
    assert "I liked this movie because" in first and "Perplexity" in first
    find(driver, ".st-key-gen_again button").click()
    wait_for_text(driver, "Sample 1 (seed 2)", timeout=60)
    screenshot(driver, "generate")
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')


def test_a_fresh_machine_judges_reviews_with_the_bundled_model(bundled, tmp_path, fastai_home, driver):
    "Nothing trained, a server that never ran a page: the Sentiment page uses the bundled model, both ways."
    from liveserver import Server

    s = Server(tmp_path / "fresh_home", fastai_home)
    try:
        driver.get(f"{s.url}/sentiment")
        wait_for_text(driver, "Positive", timeout=120)  # the page's default review is a clear favourite
        assert "no trained sentiment classifier" not in driver.find_element(By.TAG_NAME, "body").text
        _type_review(driver, "This was the worst movie I have ever seen. Terrible acting and a boring plot.")
        wait_for_text(driver, "Negative", timeout=90)
        screenshot(driver, "bundled_sentiment")
    finally:
        s.stop()
