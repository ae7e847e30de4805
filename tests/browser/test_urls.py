"""Every page answers at its own URL path typed into the address bar, `/home` included (Streamlit serves the default
page at `/` only), and the Data page's uploader states the upload limit the server really applies."""
import re
import tomllib
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from webutil import find, screenshot, wait_for_text, wait_idle

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]

# url path -> (the page's title, as its heading shows it; a text only that page shows once it has rendered)
PAGES = {
    "": ("ULMFiT Studio", "On this machine now"),
    "home": ("ULMFiT Studio", "On this machine now"),
    "data": ("Data", "Language-model batches"),
    "tokenizers": ("Tokenizers", "Rule by rule"),
    "train": ("Train", "ULMFiT in three steps"),
    "sentiment": ("Sentiment", "which words pushed it there"),
    "generate": ("Generate", "only ever predicts the next word"),
    "models": ("Models", "Each finished training run leaves a model here"),
}


def _not_found(driver) -> bool:
    body = driver.find_element(By.TAG_NAME, "body").text
    return "Page not found" in body or bool(driver.find_elements(By.CSS_SELECTOR, '[role="dialog"]'))


@pytest.mark.parametrize("path", list(PAGES))
def test_each_page_opens_at_its_own_url(server, driver, path):
    title, own_text = PAGES[path]
    driver.get(f"{server.url}/{path}")
    wait_for_text(driver, own_text, timeout=120)
    wait_idle(driver, timeout=120)
    screenshot(driver, f"url-{path or 'root'}")
    assert not _not_found(driver), f"/{path}: Streamlit says the page does not exist"
    h1 = find(driver, '[data-testid="stMain"] h1').text
    assert h1.split("\n")[-1].strip().endswith(title), f"/{path} shows the page titled {h1!r}, not {title!r}"
    assert driver.current_url.rstrip("/") == f"{server.url}/{path}".rstrip("/")  # no redirect: Back keeps working
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')


def test_an_unknown_path_still_says_page_not_found(server, driver):
    "The check above can tell: a path no page has gets Streamlit's dialog."
    driver.get(f"{server.url}/no-such-page")
    wait_for_text(driver, "Page not found", timeout=120)


def test_the_uploader_states_the_limit_the_server_applies(server, driver):
    limit = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]
    driver.get(f"{server.url}/data")
    wait_for_text(driver, "Upload your own corpus", timeout=120)
    wait_idle(driver, timeout=120)
    uploader = [e for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stExpander"] summary')
                if "Upload your own corpus" in e.text]
    assert uploader, "no 'Upload your own corpus' expander on the Data page"
    uploader[0].click()
    wait_for_text(driver, "Files up to", timeout=60)
    screenshot(driver, "data-upload-limit")
    body = driver.find_element(By.TAG_NAME, "body").text
    said = re.search(r"Files up to (\d+) MB", body)
    assert said and int(said.group(1)) == limit, f"caption says {said and said.group(0)!r}, config says {limit}"
    assert "--server.maxUploadSize" in body  # what to do with a bigger file
    # Streamlit's own dropzone text comes from the limit the server enforces
    zone = find(driver, '[data-testid="stFileUploaderDropzoneInstructions"]').text
    assert f"{limit}MB" in zone.replace(" ", ""), zone


def test_the_tab_icon_comes_from_the_app_not_from_the_internet(server, driver):
    "A Material page_icon makes Streamlit's frontend fetch the favicon from fonts.gstatic.com on every page load."
    driver.get(f"{server.url}/data")
    wait_for_text(driver, "Language-model batches", timeout=120)
    href = driver.execute_script("return document.querySelector(\"link[rel='shortcut icon']\").href")
    assert href.startswith(("data:", server.url)), href
