"""The Space app in a real headless Chromium: ``python fac_metric/fac/app.py`` serves the page on
loopback, the browser pastes a small benign example, clicks, and the score it reads off the page
must be what ``compute()`` returns for the same texts. A bad paste must show its clear message.

The browser is Debian's chromium and chromedriver (``scripts/install_browser.sh`` installs them;
selenium and gradio come from the ``test`` extra). Set ``FAC_SPACE_SCREENSHOT=docs/space_app.png``
to refresh the screenshot in the docs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import answers, free_port

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "fac_metric" / "fac" / "app.py"


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium driven by selenium, installed on first use; skipped, saying why,
    only where no browser can be installed."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra: pip install -e '.[test]'")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        done = subprocess.run(["bash", str(ROOT / "scripts" / "install_browser.sh")], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"no headless browser could be installed: {done.stdout.strip() or done.stderr.strip()}")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2200"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app as a Space runs it (``python app.py``), on a free loopback port, one thread."""
    pytest.importorskip("gradio", reason="gradio is in the test extra: pip install -e '.[test]'")
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("FAC_FEATURE_SPACE", None)
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, str(APP)], stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not answers(port, "/"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"app.py did not serve (exit {proc.returncode}); log:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _fill(driver, elem_id: str, lines: list[str]) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} textarea")
    box.clear()
    box.send_keys("\n".join(lines))  # typed as a user types: Enter is a new line in a multi-line box


def _wait_for(driver, condition, seconds: float):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.5).until(condition)


def test_the_page_shows_the_fac_that_compute_returns(browser, app_url, brown_texts, anchor_texts, tmp_path):
    from selenium.webdriver.common.by import By

    # One text per line, as the boxes read them (IFEval prompts have blank lines inside).
    data, anchor = ([" ".join(t.split()) for t in texts[:6]] for texts in (brown_texts, anchor_texts))
    browser.get(app_url)
    _wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#data textarea"), 60)
    _fill(browser, "data", data)
    _fill(browser, "anchor", anchor)
    assert browser.find_element(By.CSS_SELECTOR, "#data textarea").get_attribute("value") == "\n".join(data)
    browser.find_element(By.ID, "compute").click()
    summary = _wait_for(browser, lambda d: "FAC = " in d.find_element(By.ID, "summary").text
                        and d.find_element(By.ID, "summary").text, 600)

    import fac_metric

    expected = fac_metric.load().compute(data=data, anchor=anchor, n_missing=-1)
    assert summary.strip() == (f"FAC = {expected['fac']:.3f}: {expected['n_covered']} of {expected['n_relevant']} "
                               "relevant features covered.")
    report = browser.find_element(By.ID, "report")
    assert report.find_elements(By.CSS_SELECTOR, 'img[alt="coverage plot"]'), "the coverage plot is not on the page"
    listed = [int(h.text.split()[-1]) for h in report.find_elements(By.TAG_NAME, "h3") if h.text.startswith("Feature ")]
    assert listed and set(listed) <= set(expected["missing_features"]), "the page lists other features than compute()"
    assert report.find_elements(By.TAG_NAME, "mark"), "no highlighted span on the page"
    shot = Path(os.environ.get("FAC_SPACE_SCREENSHOT") or tmp_path / "space_app.png")
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_a_bad_paste_shows_its_message_and_scores_nothing(browser, app_url):
    from selenium.webdriver.common.by import By

    browser.get(app_url)
    _wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#data textarea"), 60)
    _fill(browser, "data", ["   "])
    browser.find_element(By.ID, "compute").click()
    _wait_for(browser, lambda d: "Data is empty" in d.find_element(By.TAG_NAME, "body").text, 60)
    assert "FAC = " not in browser.find_element(By.ID, "summary").text
