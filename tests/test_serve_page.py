"""The web chat page in a real browser (Debian's chromium driven by selenium): type, send, watch the
streamed answer, stop, see the server's error; model output cannot inject HTML. Saves a screenshot
to test-artifacts/ (slow)."""

import shutil
import time

import pytest

from lmforge.models import packaged_gguf
from tests.conftest import ROOT, LiveServer

pytestmark = pytest.mark.slow
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,800",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server():
    s = LiveServer(str(packaged_gguf()), "--api-key", "page-key", "--name", "smollm2")
    yield s
    s.stop()


def wait(browser, condition, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        value = browser.execute_script(condition)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {condition}")


def send(browser, text):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = browser.find_element(By.ID, "input")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def test_the_chat_page_streams_stops_and_shows_errors(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    assert "smollm2" in browser.title
    send(browser, "What is the capital of France?")  # no API key yet: the server's 401 is shown
    error = wait(browser, "const e = document.querySelector('.error'); return e && e.textContent")
    assert "API key" in error

    browser.find_element(By.ID, "apikey").send_keys("page-key")
    browser.find_element(By.ID, "temperature").clear()
    browser.find_element(By.ID, "temperature").send_keys("0")
    send(browser, "What is the capital of France?")
    wait(browser, "return document.querySelector('.assistant') && document.body.classList.contains('busy')")
    answer = wait(
        browser,
        "const a = document.querySelectorAll('.assistant'); const last = a[a.length - 1];"
        "return last && last.dataset.state === 'done' && last.textContent",
    )
    assert "Paris" in answer
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "chat-page.png"))

    send(browser, "Write a very long story about a lighthouse keeper and his cat.")
    wait(
        browser,
        "const a = document.querySelectorAll('.assistant'); return a.length === 2 && a[1].textContent.length > 20",
    )
    browser.find_element(By.ID, "stop").click()
    state = wait(
        browser,
        "const a = document.querySelectorAll('.assistant'); return a[1].dataset.state !== 'streaming'"
        " && a[1].dataset.state",
    )
    assert state == "stopped"
    assert "busy" not in browser.find_element(By.TAG_NAME, "body").get_attribute("class")


def test_model_output_cannot_inject_html(browser, server):
    browser.get(server.url + "/")
    html = browser.execute_script(
        "return renderMarkdown(arguments[0])",
        "<img src=x onerror=alert(1)> **bold** `x<y` [a](javascript:alert(1))\n```\n<script>alert(2)</script>\n```",
    )
    assert "<img" not in html and "<script" not in html and "javascript:" not in html.split("href=")[-1][:20]
    assert "&lt;img" in html and "<strong>bold</strong>" in html and "<code>x&lt;y</code>" in html
