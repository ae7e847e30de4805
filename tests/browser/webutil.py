"""Waiting and screenshots for browser tests (`from webutil import wait_for_text, ...`)."""
import time
from pathlib import Path


def wait_for_text(driver, text: str, timeout: float = 60) -> None:
    "Wait until `text` is visible in the page body; fail with the page's visible text otherwise."
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    body = ""
    while time.time() < deadline:
        try:
            body = driver.find_element(By.TAG_NAME, "body").text
        except Exception:  # noqa: BLE001 - the page may be mid-rerender
            body = ""
        if text in body:
            return
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not shown within {timeout}s. Page text:\n{body[-2000:]}")


def wait_idle(driver, timeout: float = 60) -> None:
    "Wait until Streamlit has finished running the script (its status widget disappears)."
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    time.sleep(0.5)
    while time.time() < deadline:
        if not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'):
            return
        time.sleep(0.5)


def screenshot(driver, name: str) -> Path:
    p = Path(driver.shots_dir) / f"{name}.png"
    driver.save_screenshot(str(p))
    return p


def find(driver, css: str, timeout: float = 60):
    "The first element matching `css`, waiting for Streamlit to (re)render it."
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))


def click_button(driver, label_end: str, timeout: float = 60) -> None:
    """Click the first button whose label ends with `label_end`. A live fragment redraws its buttons every second, so
    an element found a moment ago may be gone (stale) by the time it is read or clicked: find it again until the
    click lands, and fail with the buttons seen if none does in `timeout`."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    seen: list[str] = []
    while time.time() < deadline:
        try:
            buttons = driver.find_elements(By.TAG_NAME, "button")
            seen = [b.text.strip() for b in buttons]
            hit = [b for b, t in zip(buttons, seen) if t.endswith(label_end)]
            if hit:
                hit[0].click()
                return
        except StaleElementReferenceException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"no button ending {label_end!r} within {timeout}s; buttons seen: {seen}")
