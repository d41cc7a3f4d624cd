"""The web app in a real browser: headless Chromium (Debian's chromium + chromedriver, driven by selenium) uploads an
image, edits with thinking on, continues from the result, and asks an understanding question; the page must show
the same chain of thought, image and answer as the library gives for the same inputs.

Needs gradio and selenium (requirements-app.txt) and /usr/bin/chromium + chromedriver; skips without them.
``bash scripts/test_app_browser.sh`` installs all of it and runs this test.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from PIL import Image

from inference.inferencer import BagelInferencer
from inference.settings import InferenceSettings
from tests.fixture_paths import TINY

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver")
MISSING = [name for name, ok in [
    ("gradio (pip install -r requirements-app.txt)", importlib.util.find_spec("gradio")),
    ("selenium (pip install -r requirements-app.txt)", importlib.util.find_spec("selenium")),
    (f"chromium at {CHROMIUM} (apt-get install chromium)", os.access(CHROMIUM, os.X_OK)),
    (f"chromedriver at {CHROMEDRIVER} (apt-get install chromium-driver)", os.access(CHROMEDRIVER, os.X_OK)),
] if not ok]
pytestmark = pytest.mark.skipif(bool(MISSING), reason="browser test needs " + ", ".join(MISSING) +
                                "; bash scripts/test_app_browser.sh installs everything")

SETTINGS = {"num_timesteps": 4, "max_think_token_n": 40, "vae_transform": (128, 64, 16), "vit_transform": (112, 56, 14)}
IMAGE = TINY / "cases" / "edit" / "input.png"


def _shown(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """app.py on a free localhost port with the tiny checkpoint on the CPU."""
    port = _free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    command = [sys.executable, str(REPO / "app.py"), "--model-path", str(TINY), "--device", "cpu", "--dtype", "fp32",
               "--port", str(port), *[a for k, v in SETTINGS.items() for a in ("--set", f"{k}={_shown(v)}")]]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                   # one intra-op thread: the tiny model's ops are too small to share, and two
                                   # spinning threads crawl on a busy 2-core machine
                                   env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 240
        while True:
            if process.poll() is not None:
                pytest.fail(f"app.py exited with {process.returncode}:\n{log.read_text()}")
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"app.py did not answer on {url} within 240 s:\n{log.read_text()}")
                time.sleep(1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1400",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, what: str, timeout: float = 180):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: condition(d))
    except TimeoutException:
        pytest.fail(f"timed out waiting for {what}")


def _find(driver, css: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def _value(driver, css: str) -> str:
    found = _find(driver, css)
    return found[0].get_attribute("value") if found else ""


def _as_shown(text: str) -> str:
    """A textarea's value has its line breaks normalised to \\n (HTML)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _page_image(url: str) -> Image.Image:
    with urllib.request.urlopen(url, timeout=30) as response:
        return Image.open(io.BytesIO(response.read())).convert("RGB")


def test_edit_continue_and_understand_in_a_browser(app_url, browser, tiny_bundle, tmp_path):
    from selenium.webdriver.common.by import By

    library = BagelInferencer(tiny_bundle, InferenceSettings(**SETTINGS))
    source = Image.open(IMAGE).convert("RGB")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the app process: the same summation order, so the same bits
    try:
        first, second = library.edit_turns(source, ["make the sky blue", "add a red sun"], think=True, seed=0)
        answer = library.understand(source, "What is in the picture?", think=True)
    finally:
        torch.set_num_threads(threads)

    browser.get(app_url)
    _wait(browser, lambda d: _find(d, "#edit_input input[type=file]"), "the edit tab")
    _find(browser, "#edit_input input[type=file]")[0].send_keys(str(IMAGE))
    _wait(browser, lambda d: _find(d, "#edit_input img"), "the uploaded image preview")
    _find(browser, "#edit_instruction textarea")[0].send_keys("make the sky blue")
    think = _find(browser, "#edit_think input[type=checkbox]")[0]
    if not think.is_selected():
        think.click()
    _find(browser, "#edit_button")[0].click()
    _wait(browser, lambda d: "total" in _value(d, "#edit_status textarea") and _find(d, "#edit_result img"),
          "the edited image and its timings")
    assert _value(browser, "#edit_cot textarea") == _as_shown(first.think_text) != ""
    shown = _page_image(_find(browser, "#edit_result img")[0].get_attribute("src"))
    assert shown.tobytes() == first.image.tobytes()

    instruction = _find(browser, "#edit_instruction textarea")[0]
    instruction.clear()
    instruction.send_keys("add a red sun")
    _find(browser, "#edit_continue")[0].click()
    _wait(browser, lambda d: _value(d, "#edit_status textarea").startswith("turn 2"), "the second turn")
    assert _value(browser, "#edit_cot textarea") == _as_shown(second.think_text)
    shown = _page_image(_find(browser, "#edit_result img")[0].get_attribute("src"))
    assert shown.tobytes() == second.image.tobytes()
    _wait(browser, lambda d: len(_find(d, "#edit_history img")) == 3, "input + two turns in the history gallery")
    browser.save_screenshot(str(tmp_path / "edit.png"))

    tab = [b for b in _find(browser, "button[role=tab]") if b.text.strip() == "Understanding"][0]
    tab.click()
    _wait(browser, lambda d: _find(d, "#und_input input[type=file]"), "the understanding tab")
    _find(browser, "#und_input input[type=file]")[0].send_keys(str(IMAGE))
    _wait(browser, lambda d: _find(d, "#und_input img"), "the uploaded image preview")
    _find(browser, "#und_question textarea")[0].send_keys("What is in the picture?")
    browser.find_element(By.CSS_SELECTOR, "#und_think input[type=checkbox]").click()
    _find(browser, "#und_button")[0].click()
    _wait(browser, lambda d: _value(d, "#und_status textarea") == "done", "the answer")
    assert _value(browser, "#und_answer textarea") == _as_shown(answer) != ""
    if os.environ.get("APP_SCREENSHOTS"):
        shutil.copy(tmp_path / "edit.png", Path(os.environ["APP_SCREENSHOTS"]) / "edit.png")
        browser.save_screenshot(str(Path(os.environ["APP_SCREENSHOTS"]) / "understand.png"))
