"""Reporting by QR code in headless Chromium at 375 px: open the poster's URL, submit, see the
case number, look it up; then the grid worker sees the case in the village's list."""

from __future__ import annotations

import pytest

from geo.reportpoints import ensure_point
from tests.dashboard.conftest import APP_SETTINGS, login
from tests.dashboard.stores import serving_copy
from tests.dashboard.test_browser import _text, _wait, _wait_text

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def poster(dash_app, demo_store, demo_accounts, tmp_path_factory):
    """The served copy of the demo store and the poster of the demo grid worker's village."""
    path = tmp_path_factory.mktemp("browser-report") / "store.db"
    with serving_copy(dash_app, demo_store, path, APP_SETTINGS) as store:
        village = demo_accounts["grid_worker"].scope_code
        yield ensure_point(store.engine, village, level="village")


def test_a_phone_reports_by_qr_code_and_the_village_sees_it(chromium, live_url, poster,
                                                            demo_accounts):
    from selenium.webdriver.support.ui import Select

    chromium.set_window_size(375, 812)
    try:
        chromium.delete_all_cookies()
        chromium.gridgov_user = None
        chromium.get(f"{live_url}/report/{poster.token}")  # what scanning the poster opens
        assert _text(chromium, "#report-unit") == poster.unit_name
        Select(chromium.find_element("id", "report-category")).select_by_visible_text("城乡建设")
        chromium.find_element("id", "report-description").send_keys("楼下井盖缺失，夜里危险")
        chromium.find_element("id", "report-phone").send_keys("13900004321")
        chromium.find_element("id", "report-consent").click()
        chromium.find_element("id", "report-submit").click()
        case_id = _wait_text(chromium, "#report-case-number").strip()
        assert case_id.startswith("EWM")
        assert chromium.execute_script("return document.documentElement.scrollWidth") <= 375
        chromium.get(f"{live_url}/report/status")
        chromium.find_element("id", "status-number").send_keys(case_id)
        chromium.find_element("id", "status-digits").send_keys("4321")
        chromium.find_element("id", "status-submit").click()
        assert _wait_text(chromium, "#status-state") == "登记"
        assert _text(chromium, "#status-case") == case_id
    finally:
        chromium.set_window_size(1400, 1000)
    worker = demo_accounts["grid_worker"]
    login(chromium, live_url, worker.username, demo_accounts["password"])
    chromium.get(f"{live_url}/village?unit={worker.scope_code}")
    _wait(chromium, lambda d: case_id in d.page_source, timeout=60)
    chromium.gridgov_user = None
