"""The case page in headless Chromium: opened from a street list, a phone card and a map point.

Each path ends on the same page (信访件编号, deadlines, timeline in time order) and the
browser's back button returns to where the case was opened.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.dashboard.conftest import click
from tests.dashboard.test_browser import _text, _wait, _wait_css, _wait_text

pytestmark = pytest.mark.browser

STREET = "/street?unit=440103001000"
VILLAGE = "/village?unit=440103001001"


def _timeline(browser) -> list[tuple[datetime, str]]:
    items = browser.find_elements("css selector", "#case-timeline .timeline-item")
    out = []
    for item in items:
        at = item.find_element("css selector", ".timeline-at").text
        label = item.find_element("css selector", ".timeline-label").text
        out.append((datetime.strptime(at, "%Y-%m-%d %H:%M"), label))
    return out


def _assert_case_page(browser, case_id: str) -> None:
    _wait(browser, lambda d: "/case/" in d.current_url)
    _wait(browser, lambda d: _text(d, "#case-id") == case_id)
    events = _timeline(browser)
    assert events and events[0][1] == "登记"
    assert [at for at, _label in events] == sorted(at for at, _label in events)
    assert browser.find_elements("css selector", "#case-deadlines .deadline")
    fields = _text(browser, "#case-fields")
    assert "信访件编号" in fields and "*" in fields  # the petitioner is masked


def test_open_a_case_from_the_street_list_and_go_back(browser, live_url):
    browser.set_window_size(1400, 1000)
    browser.get(live_url + STREET)
    link = _wait_css(browser, "#street-overdue .case-link")
    case_id = link.text
    link.click()
    _assert_case_page(browser, case_id)
    assert "超期" in _text(browser, "#case-deadlines")  # it came from the 超期未办结 list
    browser.back()
    _wait(browser, lambda d: d.current_url.endswith(STREET))
    _wait_css(browser, "#street-overdue .case-link")


def test_open_a_case_from_a_phone_card(browser, live_url):
    browser.set_window_size(375, 812)
    try:
        browser.get(live_url + VILLAGE)
        card = _wait_css(browser, ".case-card-link")
        case_id = card.find_element("css selector", ".case-id").text
        click(browser, card)
        _assert_case_page(browser, case_id)
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 375  # nothing wider than the phone
        browser.back()
        _wait(browser, lambda d: d.current_url.endswith(VILLAGE))
        _wait_css(browser, ".case-card-link")
    finally:
        browser.set_window_size(1400, 1000)


def test_open_a_case_from_a_map_point(browser, live_url):
    browser.get(live_url + VILLAGE)
    point = _wait_css(browser, "path.case-point")
    browser.execute_script(  # a click on the marker, as a finger or mouse gives it
        "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", point)
    _wait(browser, lambda d: "/case/" in d.current_url)
    case_id = browser.current_url.rsplit("/case/", 1)[1]
    _assert_case_page(browser, case_id)
    browser.back()
    _wait(browser, lambda d: d.current_url.endswith(VILLAGE))


def test_an_unknown_case_says_so(browser, live_url):
    browser.get(live_url + "/case/NO-SUCH-CASE")
    assert "未找到" in _wait_text(browser, ".empty-message")
