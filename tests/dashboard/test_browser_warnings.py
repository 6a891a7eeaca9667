"""The 预警 page and the grid worker's warnings in a real headless Chromium (tiny demo store).

The warnings are computed once on the browser fixtures' demo store (as the server does after an
ingest); then a user opens the 预警 page, sees the list, clicks a warning, sees its cases and
opens one; a grid worker on a 375 px phone sees their village's warnings at the top.
"""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from geo.settings import Settings
from geo.store import Store
from layers.warnings.run import run_warnings
from layers.warnings.storage import warnings_in
from tests.dashboard.conftest import POLL_S

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def warned(demo_store):
    store = Store(demo_store, Settings(basemap="none"))
    run_warnings(store)
    return warnings_in(store)


def test_the_warnings_page_lists_warnings_and_a_click_opens_the_cases(browser, live_url, warned):
    assert len(warned)
    browser.set_window_size(1400, 1000)
    browser.get_log("browser")
    browser.get(live_url + "/warnings")
    rows = _wait(browser, lambda d: d.find_elements("css selector", "#warn-grid .ag-row"))
    assert "预警列表" in browser.find_element("css selector", "#warn-count").text
    assert str(len(warned)) in browser.find_element("css selector", "#warn-count").text.replace(
        ",", "")
    rows[0].find_element("css selector", "[col-id='reason']").click()
    links = _wait(browser, lambda d: d.find_elements("css selector", "#warn-cases a"))
    reason = browser.find_element("css selector", "#warn-reason").text
    assert reason in set(warned["reason"])
    case_id = links[0].text
    assert case_id in reason or case_id in ";".join(warned["case_ids"])
    links[0].click()
    _wait(browser, lambda d: "/case/" in d.current_url)
    _wait(browser, lambda d: d.find_element("css selector", "#case-id").text == case_id)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_the_grid_worker_sees_their_village_warnings_at_375_px(browser, live_url, warned):
    village = warned[warned["unit_level"] == "village"]["unit_code"].value_counts().index[0]
    expected = warned[warned["unit_code"] == village]
    browser.set_window_size(375, 812)
    try:
        browser.get(live_url + f"/village?unit={village}")
        items = _wait(browser, lambda d: d.find_elements(
            "css selector", "#village-warnings-card .warn-item"))
        assert len(items) == min(len(expected), 5)
        card = browser.find_element("css selector", "#village-warnings-card")
        first_list = browser.find_element("css selector", "#village-body")
        assert card.location["y"] < first_list.location["y"]  # at the top of the phone view
        assert card.size["width"] <= 375
        red = int((expected["level"] == "red").sum())
        assert f"红 {red}" in card.find_element("css selector", "h2").text
        assert items[0].find_element("css selector", ".warn-reason").text in set(
            expected["reason"])
        time.sleep(0.3)
    finally:
        browser.set_window_size(1400, 1000)


def _wait(browser, find, timeout: float = 20.0):  # noqa: ANN001, ANN202
    return WebDriverWait(browser, timeout, poll_frequency=POLL_S).until(lambda d: find(d) or None)
