"""What a view costs the server: the callbacks Chromium sends when a view opens inside the app.

The load test (``bench/locust_sessions.py``) replays ``bench/view_callbacks.py`` for every
simulated view. Here a real browser opens each view by in-app navigation (as a click on a link
does: no page load) and records every ``/_dash-update-component`` request; the recorded set must
be that list, so the benchmark cannot drift from what users' browsers send, and a control that
starts costing a request per view (Dash fires a callback for controls arriving with a page
unless its output arrives with them) shows up here.
"""

from __future__ import annotations

import json
import time

import pytest

from bench import view_callbacks as sent
from tests.dashboard.test_browser import _wait_css

pytestmark = pytest.mark.browser

VIEWS = {
    "city": ("/?unit=440103000000", "#city-warning-counts"),
    "street": ("/street?unit=440103001000", "#street-villages"),
    "village": ("/village?unit=440103001001", ".case-item"),
}

RECORD = """
window.__sent = [];
if (!window.__recording) {
    window.__recording = true;
    var original = window.fetch;
    window.fetch = function (url, options) {
        if (String(url).indexOf('_dash-update-component') >= 0 && options && options.body) {
            var body = JSON.parse(options.body);
            var inputs = (body.inputs || []).map(function (i) { return i.id; });
            window.__sent.push([body.output, inputs]);
        }
        return original.apply(this, arguments);
    };
}
"""

GO = """
window.history.pushState({}, '', arguments[0]);
window.dispatchEvent(new CustomEvent('_dashprivate_pushstate'));
"""
"""What dcc.Link does on a click: a new URL without a page load."""


def _first_output(output: str) -> str:
    """Dash's output string ("..a.b...c.d.." or "a.b@hash") to its first ``id.property``."""
    text = output.split("@", 1)[0]
    return text.strip(".").split("...")[0]


def _sent_once_settled(browser, timeout: float = 30.0) -> list:
    """The requests recorded, once none has been added for a second."""
    deadline = time.monotonic() + timeout
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = len(browser.execute_script("return window.__sent"))
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since > 1.0:
            break
        time.sleep(0.1)
    return browser.execute_script("return window.__sent")


@pytest.mark.parametrize("page", list(VIEWS))
def test_a_view_sends_what_the_load_test_replays(browser, live_url, page):
    path, ready = VIEWS[page]
    browser.get(live_url + "/definitions")  # any page of the app; then navigate inside it
    _wait_css(browser, "#definitions-table")
    browser.execute_script(RECORD)
    browser.execute_script(GO, path)
    _wait_css(browser, ready)
    requests = _sent_once_settled(browser)
    got = sorted(_first_output(output) for output, _inputs in requests)
    assert got == sorted((sent.ROUTER, *sent.SHARED, *sent.PAGES[page])), json.dumps(
        requests, indent=1, ensure_ascii=False)
