"""The Tokenizers page in a real browser: type a text, see fastai's tokens for it."""
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from webutil import find, screenshot, wait_for_text, wait_idle

pytestmark = pytest.mark.browser


def test_typed_text_becomes_tokens(server, driver):
    driver.get(f"{server.url}/tokenizers")
    wait_for_text(driver, "Rule by rule", timeout=180)
    wait_idle(driver, timeout=120)
    # Streamlit loads a widget's code on first use and shows a skeleton until then: wait for the real textarea.
    box = find(driver, ".st-key-tok_text textarea", timeout=60)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys("Zanzibar waffles are GREAT!!!!")
    box.send_keys(Keys.CONTROL, Keys.ENTER)  # Streamlit applies a text area on Ctrl+Enter
    # xxbos xxmaj zanzibar waffles are xxup great xxrep 4 !
    wait_for_text(driver, "10 word tokens", timeout=120)
    wait_idle(driver, timeout=120)
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "zanzibar" in body and "xxrep" in body
    chips = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".tokrow .tok")]
    assert chips[:10] == ["xxbos", "xxmaj", "zanzibar", "waffles", "are", "xxup", "great", "xxrep", "4", "!"]
    screenshot(driver, "tokenizers-typed")
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
