"""The dashboard as a person uses it: headless Chromium (Debian's ``chromium`` and its matching
``chromedriver``) driven by Selenium against ``autocompress dashboard`` serving a real study.

Click a Pareto point -> the layer view shows that trial; click export -> the downloaded file
loads and is byte-identical to ``autocompress export``. A screenshot is saved in the test's
tmp dir (its path is printed). Skipped, with the reason, where chromium, chromedriver,
selenium or dash are missing; ``.ci/setup`` installs them in CI.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from dash_studies import run_tiny_study

from autocompress.cli import main
from autocompress.policy import Policy
from autocompress.results._browse import layer_table

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists()
                                                else None)
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("headless browser test needs Debian's chromium and chromium-driver "
                "(apt-get install -y chromium chromium-driver; .ci/setup does this in CI)", allow_module_level=True)
pytest.importorskip("dash", reason="the dashboard needs the `dashboard` extra (pip install -e '.[dashboard]')")
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the `dev` extra)")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT_S = 60
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,2400")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, optuna.Study]:
    """(folder with tiny.yaml and the base-model cache, storage URL, study) of a real small search."""
    root = tmp_path_factory.mktemp("study")
    cfg = run_tiny_study(root, trials=8)
    (root / "tiny.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return root, cfg.storage, optuna.load_study(study_name=cfg.name, storage=cfg.storage)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(storage: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "autocompress.cli", "dashboard", "--storage", storage, "--port", str(port),
           "--refresh", "0"]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dashboard exited with {proc.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError(f"dashboard did not answer on {url} in {WAIT_S}s: {log.read_text()}")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(storage: str) -> str:
        proc, url = _serve(storage, tmp_path / f"server-{len(procs)}.log")
        procs.append(proc)
        return url

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Any, what: str) -> Any:
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.25).until(lambda d: condition(d), message=what)


def _panel_trial(driver: Any, slot: str = "A") -> int | None:
    tables = driver.find_elements(By.CSS_SELECTOR, f"#summary-{slot} table[id^='summary-table-']")
    return int(tables[0].get_attribute("id").rsplit("-", 1)[1]) if tables else None


def _layer_view(driver: Any) -> tuple[str, list[str]]:
    """(title, cell texts) of panel A's layer heatmap, read from the figure in the page."""
    return driver.execute_script(
        "const gd = document.querySelector('#layers-A .js-plotly-plot');"
        "return [gd.layout.title.text || '', gd.data[0].text.flat()];")


def _front_points(driver: Any) -> list[int]:
    """Trial numbers of the Pareto-front trace's points, in drawing order."""
    return driver.execute_script(
        "const gd = document.querySelector('#pareto .js-plotly-plot');"
        "const t = gd.data.find(d => d.name === 'Pareto front'); return t.customdata.map(c => c[0]);")


def _click_front_point(driver: Any, index: int) -> None:
    trace = driver.execute_script(
        "const gd = document.querySelector('#pareto .js-plotly-plot');"
        "return gd.data.findIndex(d => d.name === 'Pareto front');")
    traces = driver.find_elements(By.CSS_SELECTOR, "#pareto .scatterlayer .trace")
    point = traces[trace].find_elements(By.CSS_SELECTOR, "path.point")[index]
    ActionChains(driver).move_to_element(point).pause(0.3).click().perform()


def _downloaded(folder: Path) -> Path:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.suffix == ".yaml"]
        if done and not any(p.suffix == ".crdownload" for p in folder.iterdir()):
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no policy file downloaded into {folder}: {list(folder.iterdir())}")


def test_click_a_point_see_its_layers_and_export_it(study: tuple[Path, str, optuna.Study], serve: Any,
                                                     browser: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root, storage, st = study
    browser.get(serve(storage))
    _wait(browser, lambda d: _panel_trial(d) is not None, "panel A shows a trial")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#pareto .scatterlayer path.point"), "Pareto points")
    first, before = _panel_trial(browser), _layer_view(browser)
    assert first is not None
    tables = {t.number: layer_table(t).drop(columns="bytes").to_dict("records") for t in st.trials}
    front = _front_points(browser)
    target = next((i for i, n in enumerate(front) if tables[n] != tables[first]), None)
    assert target is not None, f"the front {front} has no trial with another policy than trial {first}"
    _click_front_point(browser, target)
    chosen = front[target]
    _wait(browser, lambda d: _panel_trial(d) == chosen, f"panel A switches to trial {chosen}")
    _wait(browser, lambda d: _layer_view(d) != before, "the layer view changes")
    title, cells = _layer_view(browser)
    assert title.startswith(f"trial {chosen}") and cells
    browser.find_element(By.CSS_SELECTOR, "#slot input[value='B']").click()  # side by side: B gets the next click
    _click_front_point(browser, front.index(first) if first in front else (target + 1) % len(front))
    _wait(browser, lambda d: _panel_trial(d, "B") not in (None, chosen), "panel B shows another trial")
    assert _panel_trial(browser) == chosen  # A kept its trial
    shot = tmp_path / "dashboard.png"
    browser.save_screenshot(str(shot))
    print(f"\ndashboard screenshot: {shot}")

    browser.find_element(By.ID, "export-A").click()
    downloaded = _downloaded(browser.downloads)
    monkeypatch.setenv("AUTOCOMPRESS_CACHE", str(root / "cache"))
    cli = tmp_path / "cli.yaml"
    assert main(["export", str(root / "tiny.yaml"), "--trial", str(chosen), "-o", str(cli)]) == 0
    assert Policy.load(downloaded) == Policy.load(cli) and Policy.load(downloaded).meta["trial"] == chosen
    assert downloaded.read_bytes() == cli.read_bytes()


def test_unopenable_storage_shows_a_message(serve: Any, browser: Any, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "study.db"
    browser.get(serve(f"sqlite:///{missing}"))
    message = _wait(browser, lambda d: d.find_element(By.ID, "storage-message").text, "a storage message")
    assert "no such file" in message and "Traceback" not in browser.page_source
    assert not missing.exists()  # the dashboard never creates a database
