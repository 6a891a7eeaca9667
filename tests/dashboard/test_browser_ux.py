"""What a clerk sees when something is wrong: bad links, dates outside the data, no server.

One server and one Chromium for the module (tests/dashboard/conftest.py); no fixed sleeps.
"""

from __future__ import annotations

import pytest

from tests.dashboard.test_browser import _text, _wait, _wait_css

pytestmark = pytest.mark.browser


def _severe(browser) -> list:
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.parametrize(("search", "says"), [
    ("?metric=bogus", "未知的地图指标“bogus”"),
    ("?from=2027-01-01", "开始日期 2027-01-01 晚于数据的最后一天"),
    ("?unit=440199000000", "未找到代码为 440199000000 的网格单元"),
])
def test_a_bad_link_shows_a_message_and_the_nearest_view(browser, live_url, search, says):
    browser.get_log("browser")
    browser.get(live_url + "/" + search)
    assert says in _wait_css(browser, "#param-notice").text
    _wait(browser, lambda d: len(d.find_elements("css selector", ".kpi")) > 3)
    _wait_css(browser, "path.leaflet-interactive")
    assert "—" not in _text(browser, ".kpi .kpi-value")  # the cards have numbers
    assert _severe(browser) == []  # no callback failed


def test_a_banner_while_the_server_cannot_be_reached_and_recovery_without_reload(
        browser, live_url):
    browser.get(live_url + "/")
    _wait_css(browser, "#city-trend .bars")  # the trend is drawn
    browser.execute_script("window.gridgovMarker = 1;")  # gone if the page reloads
    browser.execute_cdp_cmd("Network.enable", {})
    offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    try:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", offline)
        radio = browser.find_element("css selector", "#city-trend-rate input[value='repeat']")
        radio.click()
        banner = _wait_css(browser, "#connection-banner")
        assert "无法连接服务器" in banner.text
    finally:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", {**offline, "offline": False})
    _wait(browser, lambda d: not d.find_elements("css selector", "#connection-banner"))
    _wait(browser, lambda d: "重复信访率" in _text(d, "#city-trend .legend"))
    assert browser.execute_script("return window.gridgovMarker") == 1
    browser.get_log("browser")  # the offline failures were logged by Chromium itself
