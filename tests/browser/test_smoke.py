"""Every page opens in a real browser against a live server, shows its own content, and no exception box."""
import pytest
from selenium.webdriver.common.by import By
from webutil import find, screenshot, wait_for_text, wait_idle

pytestmark = pytest.mark.browser

# page path -> a text only that page shows once it has rendered
PAGES = {
    "": "On this machine now",
    "data": "Language-model batches",
    "tokenizers": "Tokenizers",
    "train": "Train",
    "sentiment": "Sentiment",
    "generate": "Generate",
    "models": "Models",
}


@pytest.mark.parametrize("path", list(PAGES))
def test_page_renders(server, driver, path):
    from pathlib import Path

    if path and not (Path(__file__).resolve().parents[2] / "pages" / f"{path}.py").exists():
        pytest.fail(f"pages/{path}.py is missing")
    driver.get(f"{server.url}/{path}")
    wait_for_text(driver, PAGES[path], timeout=120)
    wait_idle(driver, timeout=120)
    shot = screenshot(driver, f"page-{path or 'home'}")
    assert shot.stat().st_size > 10_000  # a real rendering, not a blank page
    errors = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not errors, errors[0].text


def test_data_page_lm_picture_follows_slider(server, driver):
    "The LM picture is rebuilt from fastai's output when bs changes: the mini-stream count in the heading follows."
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{server.url}/data")
    wait_for_text(driver, "The stream cut into 6 mini-streams", timeout=120)
    wait_idle(driver, timeout=120)
    slider = find(driver, '.st-key-data_lm_bs input[type="range"]')
    driver.execute_script("arguments[0].focus()", slider)  # the range input is visually hidden; focus takes keys
    slider.send_keys(Keys.LEFT, Keys.LEFT)
    wait_for_text(driver, "The stream cut into 4 mini-streams", timeout=60)
    screenshot(driver, "data-lm-bs4")


def test_a_deep_link_as_the_first_visit_to_a_new_server_gets_the_app_not_a_bare_page(driver, fastai_home, tmp_path):
    """A bookmark or a tab left open on /train, opened right after the server (re)started: Streamlit would run
    pages/train.py on its own (file-name sidebar, narrow layout) until app.py has run once. The page must come up
    inside the app: our titled navigation and the wide layout."""
    from liveserver import Server

    home = tmp_path / "fresh_home"
    home.mkdir()
    fresh = Server(home, fastai_home)  # no page has run on this server yet
    try:
        driver.get(f"{fresh.url}/tokenizers")
        wait_for_text(driver, "Rule by rule", timeout=120)
        wait_idle(driver, timeout=120)
        screenshot(driver, "deep-link-first-visit")
        # each link's text is its Material icon's name, a line break, then its title
        links = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a')
        nav = [a.text.strip().split("\n")[-1] for a in links]
        assert "Tokenizers" in nav and "Sentiment" in nav, nav
        assert "app" not in nav and "tokenizers" not in nav, nav  # not Streamlit's file-name pages
        width = driver.find_element(By.CSS_SELECTOR, '[data-testid="stMainBlockContainer"]').size["width"]
        assert width > 800, f"main column {width}px wide: the page ran without app.py's wide layout"
    finally:
        fresh.stop()
