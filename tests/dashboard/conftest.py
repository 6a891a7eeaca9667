"""Browser-test fixtures: a small demo store, the app served by waitress, headless Chromium.

The store is the tiny hand-made grid of tests/grids.py with 2,000 demo cases (etl.demo) and
one demo account per role (:func:`geo.accounts.create_demo_accounts`), built once per session
on SQLite. The app runs in demo mode in a thread on a free localhost port with basemap "none",
so no test ever fetches map tiles. ``chromium`` is the bare browser; ``browser`` is the same
browser logged in (through the real login page) as the city account, which sees everything.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from geo.settings import Settings

AS_OF = date(2025, 6, 30)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


APP_SETTINGS = Settings(basemap="none", mode="demo")
POLL_S = 0.05
"""How often a browser test looks again (a webdriver round trip is ~2 ms; 0.2 s cost ~0.1 s a wait)."""


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory):
    """A SQLite store: tiny grid + demo stations + 2,000 demo cases as of 2025-06-30."""
    from etl.demo import build_demo
    from geo.grid import load_units
    from geo.store import Store, make_engine, upgrade_schema
    from tests.grids import tiny_grid

    path = tmp_path_factory.mktemp("store") / "demo.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    load_units(engine, tiny_grid(), kind="bundled", note="tiny test grid")
    build_demo(Store(engine, Settings(basemap="none")), n_cases=2000, seed=3, as_of=AS_OF)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def demo_accounts(demo_store) -> dict:
    """One demo account per role on the demo store: {role: Account} and the shared password."""
    from geo.accounts import create_demo_accounts

    password, created = create_demo_accounts(demo_store, settings=APP_SETTINGS)
    return {"password": password, **{a.role: a for a in created}}


@pytest.fixture(scope="session")
def dash_app(demo_store, demo_accounts):
    """The one dashboard app of the test session, on the demo store, in demo mode.

    One per process: Dash hands the callbacks registered with ``dash.callback`` to the first app
    that serves a request, so the browser tests and the scope sweep share this app.
    """
    from dashboard.app import create_app
    from geo.store import Store

    return create_app(Store(demo_store, APP_SETTINGS))


@pytest.fixture(scope="session")
def live_url(dash_app) -> Iterator[str]:
    """Serve the dashboard on the demo store with waitress in a thread; yield its base URL."""
    from waitress import create_server

    app = dash_app
    server = create_server(app.server, host="127.0.0.1", port=_free_port(), threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.effective_port}"
    _wait_for(url)
    yield url
    server.close()


@pytest.fixture(scope="session")
def download_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where Chromium saves downloads."""
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture
def browser(chromium, live_url, demo_accounts):
    """The browser, logged in as the city account (logging in again if a test changed user)."""
    if getattr(chromium, "gridgov_user", None) != "demo-city":
        login(chromium, live_url, "demo-city", demo_accounts["password"])
    return chromium


def click(driver, element, timeout: float = 10.0) -> None:
    """Click ``element`` once the page has stopped moving it.

    Cards and lists above it arrive by their own callbacks and push it down; a click aimed
    while the layout settles lands on its neighbour (ElementClickInterceptedException). Scroll
    it to the middle and try again until it takes.
    """
    from selenium.common.exceptions import ElementClickInterceptedException
    from selenium.webdriver.support.ui import WebDriverWait

    def attempt(_driver) -> bool:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        try:
            element.click()
        except ElementClickInterceptedException:
            return False
        return True

    WebDriverWait(driver, timeout, poll_frequency=POLL_S).until(attempt)


def click_css(driver, css: str, timeout: float = 20.0) -> None:
    """Find ``css`` and click it, finding it again when the page re-rendered it meanwhile.

    A URL change re-renders the page: an element found a moment before is then stale.
    """
    from selenium.common.exceptions import (
        ElementClickInterceptedException,
        NoSuchElementException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    def attempt(_driver) -> bool:
        try:
            element = driver.find_element("css selector", css)
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
            element.click()
        except (ElementClickInterceptedException, NoSuchElementException,
                StaleElementReferenceException):
            return False
        return True

    WebDriverWait(driver, timeout, poll_frequency=POLL_S).until(attempt)


def login(driver, base_url: str, username: str, password: str) -> None:
    """Log in through the real login page; wait until the landing page has loaded."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.delete_all_cookies()
    driver.get(base_url + "/login")
    driver.find_element("id", "username").send_keys(username)
    driver.find_element("id", "password").send_keys(password)
    driver.find_element("id", "login-submit").click()
    WebDriverWait(driver, 20, poll_frequency=POLL_S).until(lambda d: "/login" not in d.current_url
                                    or d.find_elements("id", "login-error"))
    driver.gridgov_user = username if "/login" not in driver.current_url else None


@pytest.fixture(scope="session")
def chromium(download_dir: Path):
    """A headless Chromium driven by selenium, with a fresh profile and a download folder."""
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()):
        pytest.skip("Chromium is not installed (.ci/run installs it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gridgov-chrome-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--enable-unsafe-swiftshader", f"--user-data-dir={profile}",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(download_dir),
        "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
        # 我的导出 fetches a finished file by itself: allow more than one such download
        "profile.default_content_setting_values.automatic_downloads": 1,
    })
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(download_dir)})
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, timeout: float = 20.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
