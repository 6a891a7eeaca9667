"""Parameter fuzz: malformed values for every URL parameter and every callback input, no 500.

The callbacks come from the app itself (``/_dash-dependencies`` through
:class:`tests.dashboard.dash_client.DashClient`), so a callback added later is fuzzed without
editing this file: every input and state of every server-side callback receives each hostile
value in turn (the others at a valid view), as a crafted request can send it. The URL
parameters of every page, the case page's id and the download routes get the same treatment,
and a refused parameter must be named on the page (the 参数无效 notice) instead of failing.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import pytest

from tests.dashboard.dash_client import DashClient

VILLAGE = "440103001001"
STREET = "440103001000"
QUERIES = {
    "city": {"page": "city", "search": "", "scope": "440100000000", "unit": "440100000000"},
    "street": {"page": "street", "search": f"?unit={STREET}", "scope": STREET, "unit": STREET},
    "village": {"page": "village", "search": f"?unit={VILLAGE}", "scope": VILLAGE,
                "unit": VILLAGE},
}
HOSTILE = [
    None, "", 0, 10**20, True, [], {}, [None, 3, {"a": 1}], {"a": [1, {"b": None}]},
    "x" * 20_000, "\x00\u202e\u200b../../etc/passwd", "{{7*7}}${7*7}`<script>alert(1)</script>",
    "440103001001",
]
"""Values any input may receive: wrong types, empty, huge, control characters, templates."""
FORGED_QUERIES = [
    {"page": "city"}, {"page": "nope", "search": ""}, {"page": "city", "search": 5},
    {"page": ["city"], "search": None},
    {"page": "city", "search": "?unit=abc&metric=zzz&show=%3Cx%3E&from=x&to=2025-99-99&status=y"},
    {"page": "village", "search": f"?unit={VILLAGE}", "scope": "440100000000"},  # forged scope
    {"page": "street", "search": "?unit=440103999000"},  # no such street
    {"page": "city", "search": "?" + "unit=1&" * 1_000},
]
"""Crafted states of the page's query store (view-query.data)."""
EXTRA = {
    "view-query.data": FORGED_QUERIES,
    "map-units.clickData": [{"properties": {"code": "<img src=x>"}}, {"properties": "x"},
                            {"properties": {"code": 440103000000}}, {"points": []}],
    "_pages_location.pathname": ["/case/%3Cscript%3E", "/case/" + "x" * 5_000, "/case/%00",
                                 "/case/", "/nowhere", "//evil.example/", "/street/../.."],
    "_pages_location.search": ["?unit=%00", "?metric=__proto__", "?show=" + "%3C" * 500,
                               "?from=0000-00-00&to=9999-99-99", "?unit=440103001001&unit=x"],
}
PARAMS = ("unit", "metric", "show", "from", "to", "status", "category", "purpose", "channel")
BAD_PARAM_VALUES = ["<script>alert(1)</script>", "x" * 3_000, "\x00", "2025-02-30", "-1",
                    "{{7*7}}", "440103999999"]
REFUSED = {"unit", "metric", "show", "from", "to", "status"}
"""Parameters whose every value above is refused (filter values are free text, matched as is)."""


@pytest.fixture(scope="module")
def client(dash_app, demo_accounts) -> DashClient:
    """Logged in as the city account: the fuzz reaches the callbacks, not the login gate."""
    client = DashClient(dash_app.server.test_client())
    client.login("demo-city", demo_accounts["password"])
    return client


def _baseline(callback, page: str = "city") -> dict:
    values = {f"{s['id']}.{s['property']}": None for s in callback.inputs + callback.state}
    if "view-query.data" in values:
        values["view-query.data"] = QUERIES[page]
    if "_pages_location.pathname" in values:
        values["_pages_location.pathname"] = "/"
        values["_pages_location.search"] = ""
    return values


def test_every_callback_input_survives_hostile_values(client):
    callbacks = client.callbacks()
    names = {c.name for c in callbacks}
    # the fuzz cannot pass by finding nothing: the known callbacks are there
    assert {"url.search", "view-nav.data", "map-units.data", "city-kpis.children", "village-body.children",
            "_pages_content.children"} <= names, names
    failures = []
    calls = 0
    for callback in callbacks:
        for page in QUERIES:  # each page's valid view first: the baseline itself must work
            response = client.call(callback, _baseline(callback, page))
            calls += 1
            if response.status_code >= 500:
                failures.append((callback.name, page, "baseline"))
        slots = [f"{s['id']}.{s['property']}" for s in callback.inputs + callback.state]
        inputs = {f"{s['id']}.{s['property']}" for s in callback.inputs}
        for slot in slots:
            for value in HOSTILE + EXTRA.get(slot, []):
                values = _baseline(callback, "village")
                values[slot] = value
                response = client.call(callback, values,
                                       triggered=[slot] if slot in inputs else None)
                calls += 1
                if response.status_code >= 500:
                    failures.append((callback.name, slot, json.dumps(value)[:60]))
    assert calls > 300
    assert failures == []


def test_every_url_parameter_is_parsed_or_refused_with_a_message(client):
    router = next(c for c in client.callbacks() if c.name == "_pages_content.children")
    failures = []
    for path in ("/", "/street", "/village"):
        for param in PARAMS:  # every value on the city page; one on the others (same parser)
            for value in BAD_PARAM_VALUES if path == "/" else BAD_PARAM_VALUES[:1]:
                search = "?" + urlencode({param: value})
                response = client.call(router, {"_pages_location.pathname": path,
                                                "_pages_location.search": search})
                body = response.get_data(as_text=True)
                if response.status_code != 200:
                    failures.append((path, param, value[:20], response.status_code))
                elif param in REFUSED and "param-notice" not in body:
                    failures.append((path, param, value[:20], "no notice"))
    assert failures == []


def test_the_case_page_and_downloads_refuse_crafted_values(client):
    router = next(c for c in client.callbacks() if c.name == "_pages_content.children")
    for case_id in ["<script>alert(1)</script>", "x" * 300, "\x00", "%00", "\ud800", "../..",
                    " ", "{{7*7}}"]:
        response = client.call(router, {"_pages_location.pathname":
                                        "/case/" + quote(case_id, safe="", errors="replace"),
                                        "_pages_location.search": ""})
        assert response.status_code == 200, case_id
        assert "未找到" in response.get_data(as_text=True)
    http = client.http
    for page in ("city", "street", "village", "nope", "%00"):
        for param in PARAMS:
            response = http.get(f"/download/{page}/cases.csv?"
                                + urlencode({param: "<x>\x00" + "y" * 2_000}))
            assert response.status_code in (400, 404), (page, param, response.status_code)
            assert response.status_code == 404 or "无法导出" in response.get_data(as_text=True)
    assert http.get("/download/village/map.html?unit=440103001001&show=points").status_code == 200
    assert http.get("/?" + urlencode({"unit": "<script>", "from": "\x00"})).status_code == 200
    assert http.post("/_dash-update-component", data="{not json",
                     content_type="application/json").status_code < 500


def test_every_response_carries_the_security_headers(client):
    for path in ("/", "/case/x", "/download/city/cases.csv?unit=abc", "/_dash-dependencies",
                 "/assets/gridgov.js", "/no/such/page.txt"):
        response = client.http.get(path)
        headers = response.headers
        response.close()
        policy = headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in policy and "script-src 'self' 'sha256-" in policy
        assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";")[0]
        assert "unsafe-eval" not in policy
        assert headers.get("X-Frame-Options") == "DENY", path
        assert headers.get("X-Content-Type-Options") == "nosniff", path
        assert headers.get("Referrer-Policy") == "same-origin", path
